/* worker.h: the parent's handle on one snapkeep-parse process.
 *
 * Wire format on the worker's stdin/stdout, all lengths u32 big-endian:
 *   request:  [len][raw message]
 *   response: [len][meta JSON {"outcome","detail","hints":{...}}]
 *             [len][snapshot JSON, or len 0]
 * The parent enforces the wall-clock limit with poll deadlines and kills the
 * worker (SIGKILL) when it is exceeded; the worker sets its own CPU (per
 * message) and address-space limits.  A dead worker is restarted on the next
 * call; the message it was working on is reported failed with the reason. */
#ifndef SK_INTAKE_WORKER_H
#define SK_INTAKE_WORKER_H

#include <glib.h>
#include <stddef.h>

#include "store/store.h"

#define WORKER_FRAME_MAX (256u * 1024 * 1024)

struct worker_config {
	const char *path;         /* the snapkeep-parse program */
	unsigned timeout_ms;
	unsigned cpu_seconds;
	unsigned memory_mb;       /* 0: no address-space limit */
	unsigned nice;            /* scheduling niceness of the worker */
	size_t max_message_size;
	size_t max_header_size;
	unsigned max_depth;
	unsigned max_parts;
	size_t max_xml_size;
	unsigned xml_max_depth;
	size_t xml_max_string_len;
	unsigned xml_max_events;
};

struct worker;

struct worker_result {
	enum store_outcome outcome;
	char *detail;
	char *snapshot_json;     /* NULL unless a snapshot was parsed */
	char *subject, *header_from, *date_utc, *message_id, *subject_serial, *subject_time_utc;
};

struct worker *worker_new(const struct worker_config *config);
void worker_free(struct worker **worker);

/* Parses one message in the worker process.  Always fills *result_r (free
 * with worker_result_clear): a crash, timeout or limit is a FAILED outcome
 * with the reason.  Returns 0, or -1 when the worker could not even be
 * started (*error_r set): the message should stay pending. */
int worker_parse(struct worker *worker, const void *raw, size_t len,
		 struct worker_result *result_r, char **error_r);
void worker_result_clear(struct worker_result *result);

/* Number of times a worker process had to be (re)started. */
unsigned worker_restarts(const struct worker *worker);

/* Finds snapkeep-parse: $SNAPKEEP_PARSE_WORKER, beside the running
 * program, then in pkglibexecdir.  Returns a g_free'd path or NULL. */
char *worker_find_program(void);

/* Worker-process side helpers shared with worker-main.c. */
int worker_read_frame(int fd, GByteArray *buf, size_t max);
int worker_write_frame(int fd, const void *data, size_t len);

#endif
