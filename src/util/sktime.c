/* sktime.c: ISO 8601 through GLib's GDateTime; see sktime.h. */
#include "config.h"

#include "util/sktime.h"

#include <glib.h>
#include <string.h>

void
sk_time_format_utc(int64_t unix_time, char utc_r[SK_UTC_SIZE])
{
	GDateTime *dt = g_date_time_new_from_unix_utc(unix_time);
	if (dt == NULL) {
		g_strlcpy(utc_r, "1970-01-01T00:00:00Z", SK_UTC_SIZE);
		return;
	}
	gchar *s = g_date_time_format(dt, "%Y-%m-%dT%H:%M:%SZ");
	g_strlcpy(utc_r, s, SK_UTC_SIZE);
	g_free(s);
	g_date_time_unref(dt);
}

int
sk_time_parse_iso8601(const char *text, char utc_r[SK_UTC_SIZE], int64_t *unix_r,
		      int *offset_min_r, int *has_offset_r)
{
	GTimeZone *utc = g_time_zone_new_utc();
	char buf[64];
	size_t len;
	int has_offset;

	if (text == NULL)
		goto fail;
	while (*text == ' ' || *text == '\t' || *text == '\r' || *text == '\n')
		text++;
	len = strlen(text);
	while (len > 0 && (text[len - 1] == ' ' || text[len - 1] == '\t' ||
			   text[len - 1] == '\r' || text[len - 1] == '\n'))
		len--;
	if (len < 10 || len >= sizeof(buf))
		goto fail;
	memcpy(buf, text, len);
	buf[len] = '\0';
	/* An offset is a trailing Z, or +hh:mm / -hh:mm / +hhmm after the time. */
	has_offset = buf[len - 1] == 'Z' || buf[len - 1] == 'z';
	if (!has_offset) {
		const char *t = strchr(buf, 'T');
		if (t != NULL && (strchr(t, '+') != NULL || strchr(t, '-') != NULL))
			has_offset = 1;
	}
	if (strchr(buf, 'T') == NULL && len == 10) {
		/* A plain date. */
		g_strlcat(buf, "T00:00:00", sizeof(buf));
	}

	GDateTime *dt = g_date_time_new_from_iso8601(buf, utc);
	if (dt == NULL)
		goto fail;
	int64_t unix_time = g_date_time_to_unix(dt);
	int offset_min = (int)(g_date_time_get_utc_offset(dt) / G_TIME_SPAN_MINUTE);
	g_date_time_unref(dt);
	sk_time_format_utc(unix_time, utc_r);
	if (unix_r != NULL)
		*unix_r = unix_time;
	if (offset_min_r != NULL)
		*offset_min_r = has_offset ? offset_min : 0;
	if (has_offset_r != NULL)
		*has_offset_r = has_offset;
	g_time_zone_unref(utc);
	return 0;
fail:
	g_time_zone_unref(utc);
	return -1;
}

int
sk_time_parse_utc(const char *utc, int64_t *unix_r)
{
	char buf[SK_UTC_SIZE];
	return sk_time_parse_iso8601(utc, buf, unix_r, NULL, NULL);
}

int64_t
sk_time_now(void)
{
	return g_get_real_time() / G_USEC_PER_SEC;
}

int64_t
sk_time_now_us(void)
{
	return g_get_real_time();
}
