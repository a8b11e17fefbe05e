/* sktime.h: the project's one notion of time.
 *
 * Stored times are UTC text "YYYY-MM-DDTHH:MM:SSZ" (SK_UTC_LEN characters);
 * where a device gave an offset it is kept beside, in minutes east of UTC. */
#ifndef SK_SKTIME_H
#define SK_SKTIME_H

#include <stdint.h>

#define SK_UTC_LEN 20
#define SK_UTC_SIZE (SK_UTC_LEN + 1)

/* Parses ISO 8601 with or without an offset ("2015-02-11T14:54:22.729+09:00";
 * without one, UTC is assumed and *has_offset_r is 0).  Writes the UTC text
 * form, the Unix time and the offset.  0 on success, -1 if unparsable. */
int sk_time_parse_iso8601(const char *text, char utc_r[SK_UTC_SIZE], int64_t *unix_r,
			  int *offset_min_r, int *has_offset_r);

/* Formats a Unix time as UTC text. */
void sk_time_format_utc(int64_t unix_time, char utc_r[SK_UTC_SIZE]);

/* Parses our own UTC text back; 0 or -1. */
int sk_time_parse_utc(const char *utc, int64_t *unix_r);

/* Current time: Unix seconds, and microseconds (wall clock). */
int64_t sk_time_now(void);
int64_t sk_time_now_us(void);

#endif
