/* sim-schedule.c: AutoSend schedule arithmetic, as the printer's web page
 * offers it: every N days, weeks or months, or every N printed pages
 * (50-30000).
 *
 * Time schedules are computed in the device's local time from a fixed
 * anchor (the moment AutoSend was enabled), never by repeated addition, so
 * that months keep the anchor's day, clamped to short months (Jan 31 ->
 * Feb 28/29 -> Mar 31), and days keep the anchor's wall-clock time across
 * daylight-saving changes.  Pure functions; no clock is read. */
#include "config.h"

#include "sim/sim.h"

#include <errno.h>
#include <string.h>

int
sim_schedule_parse(const char *text, struct sim_schedule *sched_r, char **error_r)
{
	const char *p = text;
	char *end = NULL;
	guint64 n;
	enum sim_schedule_unit unit;

	if (text == NULL || *text == '\0')
		goto bad;
	if (g_str_has_prefix(p, "days:") || g_str_has_prefix(p, "weeks:") ||
	    g_str_has_prefix(p, "months:") || g_str_has_prefix(p, "pages:")) {
		char c = p[0];
		p = strchr(p, ':') + 1;
		unit = c == 'd'	  ? SIM_SCHED_DAYS
		       : c == 'w' ? SIM_SCHED_WEEKS
		       : c == 'm' ? SIM_SCHED_MONTHS
				  : SIM_SCHED_PAGES;
		if (g_ascii_string_to_unsigned(p, 10, 1, 1000000, &n, NULL) == FALSE)
			goto bad;
	} else {
		errno = 0;
		n = g_ascii_strtoull(p, &end, 10);
		if (end == p || errno != 0 || n == 0 || n > 1000000)
			goto bad;
		if (strcmp(end, "d") == 0)
			unit = SIM_SCHED_DAYS;
		else if (strcmp(end, "w") == 0)
			unit = SIM_SCHED_WEEKS;
		else if (strcmp(end, "m") == 0)
			unit = SIM_SCHED_MONTHS;
		else if (strcmp(end, "p") == 0)
			unit = SIM_SCHED_PAGES;
		else
			goto bad;
	}
	if (unit == SIM_SCHED_PAGES && (n < SIM_SCHED_PAGES_MIN || n > SIM_SCHED_PAGES_MAX)) {
		*error_r =
		    g_strdup_printf("schedule '%s': pages must be %d-%d (as AutoSend offers)", text,
				    SIM_SCHED_PAGES_MIN, SIM_SCHED_PAGES_MAX);
		return -1;
	}
	if (unit != SIM_SCHED_PAGES && n > 366) {
		*error_r = g_strdup_printf("schedule '%s': interval too long", text);
		return -1;
	}
	sched_r->unit = unit;
	sched_r->every = (unsigned)n;
	return 0;
bad:
	*error_r = g_strdup_printf("schedule '%s': expected Nd, Nw, Nm or Np (e.g. 7d, 1m, 500p)",
				   text != NULL ? text : "");
	return -1;
}

char *
sim_schedule_describe(const struct sim_schedule *sched)
{
	static const char *const names[] = {"?", "days", "weeks", "months", "pages"};
	unsigned u = (unsigned)sched->unit <= SIM_SCHED_PAGES ? (unsigned)sched->unit : 0;
	return g_strdup_printf("every %u %s", sched->every, names[u]);
}

int64_t
sim_schedule_time_k(const struct sim_schedule *sched, GTimeZone *tz, int64_t anchor, unsigned k)
{
	GTimeZone *zone = tz != NULL ? g_time_zone_ref(tz) : g_time_zone_new_utc();
	GDateTime *a, *base = NULL, *r = NULL;
	int64_t result = -1;

	a = g_date_time_new_from_unix_utc(anchor);
	if (a == NULL)
		goto out;
	base = g_date_time_to_timezone(a, zone);
	if (base == NULL)
		goto out;

	switch (sched->unit) {
	case SIM_SCHED_DAYS:
	case SIM_SCHED_WEEKS: {
		/* Same wall-clock time k x N days later. */
		unsigned days = sched->every * k * (sched->unit == SIM_SCHED_WEEKS ? 7 : 1);
		r = g_date_time_add_days(base, (gint)days);
		break;
	}
	case SIM_SCHED_MONTHS: {
		/* g_date_time_add_months clamps to the month's last day and is
		 * applied to the anchor each time, so the day is kept. */
		r = g_date_time_add_months(base, (gint)(sched->every * k));
		break;
	}
	case SIM_SCHED_PAGES:
	default:
		goto out;
	}
	if (r != NULL)
		result = g_date_time_to_unix(r);
out:
	if (r != NULL)
		g_date_time_unref(r);
	if (base != NULL)
		g_date_time_unref(base);
	if (a != NULL)
		g_date_time_unref(a);
	g_time_zone_unref(zone);
	return result;
}

int64_t
sim_schedule_pages_k(const struct sim_schedule *sched, int64_t anchor_pages, unsigned k)
{
	if (sched->unit != SIM_SCHED_PAGES)
		return -1;
	return anchor_pages + (int64_t)sched->every * k;
}
