/* intake.h: THE one funnel.  Every source of mail (SMTP, pollers, files,
 * stdin) hands raw bytes and where they came from to intake_accept, which
 * returns only once the message is durable; parsing happens afterwards in
 * isolated worker processes, and the rows are committed idempotently.
 *
 *   source --raw--> intake_accept --(group commit)--> store: messages+intake_log
 *                        |                 (now the source may acknowledge)
 *                        v
 *            parse scheduler --raw--> snapkeep-parse worker (own process,
 *                        ^              CPU, memory and wall-clock limits)
 *                        +--snapshot JSON--+ --> store_result_commit
 *
 * A worker that crashes, hangs or hits a limit costs one message: it is
 * marked failed with the reason and the next worker carries on.  Pending
 * messages found at start (a crash between accept and parse) are parsed.
 * Thread-safe: intake_accept may be called from many threads at once. */
#ifndef SK_INTAKE_H
#define SK_INTAKE_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#include "devxml/devxml.h"
#include "mime/mime.h"
#include "store/store.h"

struct intake;

struct intake_settings {
	const char *db_path;
	const char *worker_path;        /* NULL: found beside the program, then in pkglibexecdir */
	unsigned parse_workers;         /* worker processes; default 2 */
	unsigned parse_timeout_ms;      /* wall clock per message; default 30000 */
	unsigned parse_cpu_seconds;     /* CPU per message; default 20 */
	unsigned parse_memory_mb;       /* address space of a worker; default 1024 */
	unsigned parse_nice;            /* niceness of workers and parse threads; default 10 */
	unsigned commit_batch_max;      /* messages per group commit; default 256 */
	unsigned commit_delay_us;       /* wait for more arrivals before commit; default 0 */
	size_t queue_max_bytes;         /* raw bytes waiting for commit; default 256 MiB */
	unsigned sweep_interval_ms;     /* PostgreSQL: look for pending messages no node parses; default 30000, 0 never */
	bool parse;                     /* run the parse scheduler (false: accept only) */
	struct store_settings store;
	struct mime_limits mime;
	struct devxml_limits xml;
};

void intake_settings_default(struct intake_settings *settings);

/* Opens the store, recovers pending messages and starts the threads. */
int intake_open(const struct intake_settings *settings, struct intake **intake_r, char **error_r);
/* Stops accepting, finishes the commit queue, waits for parses in flight up
 * to a bound, and frees.  Accepts NULL. */
void intake_free(struct intake **intake);

/* Makes raw durable and records the arrival; blocks until committed.
 * 0 with *receipt_r, or -1 with *error_r (the source must then refuse
 * temporarily: SMTP 451, no IMAP move, exit 75). */
int intake_accept(struct intake *intake, const struct store_arrival *arrival, GBytes *raw,
		  struct store_receipt *receipt_r, char **error_r);

/* intake_accept for the len bytes of file fd from offset 0 (a spool file),
 * read in one streaming pass: memory stays small whatever the size. */
int intake_accept_fd(struct intake *intake, const struct store_arrival *arrival, int fd, size_t len,
		     struct store_receipt *receipt_r, char **error_r);

/* Asks the scheduler to (re)parse these messages (reparse). */
void intake_queue_reparse(struct intake *intake, const int64_t *message_ids, size_t count);
/* Blocks until nothing is pending, or timeout_ms (0: forever).  0 or -1 on timeout. */
int intake_drain(struct intake *intake, unsigned timeout_ms);

/* Latency histograms for /metrics: fixed bucket upper bounds in seconds
 * (Prometheus convention: each count includes every faster one). */
#define INTAKE_LATENCY_BUCKETS 14
extern const double intake_latency_bounds[INTAKE_LATENCY_BUCKETS];
struct intake_latency {
	uint64_t buckets[INTAKE_LATENCY_BUCKETS]; /* cumulative: observations <= bound */
	uint64_t count;
	double sum_seconds;
};

/* Counters for /metrics and the log. */
struct intake_stats {
	uint64_t accepted, duplicates, commits, commit_errors;
	uint64_t parsed_stored, parsed_duplicate, parsed_not_snapshot, parsed_failed;
	uint64_t worker_restarts;
	uint64_t queued;     /* waiting to be parsed */
	/* intake_accept: from the call (hashing, compressing, queueing) to
	 * the group commit that made the message durable, i.e. what a
	 * sender waits for its 250. */
	struct intake_latency accept;
	/* From durable to its parse result committed (queue wait, worker,
	 * rows): how far the views lag behind the acknowledgement. */
	struct intake_latency parse;
};
void intake_get_stats(struct intake *intake, struct intake_stats *stats_r);

/* The worker side, used by snapkeep-parse and by tests: parses raw into a
 * result.  Returns the outcome (STORED for a snapshot, NOT_SNAPSHOT, FAILED)
 * with *snap_r and hints filled.  Runs in the worker process. */
enum store_outcome intake_parse_message(const void *raw, size_t len, const struct mime_limits *mime,
					const struct devxml_limits *xml, struct snapshot **snap_r,
					struct mime_result *hints_r, char **detail_r);

#endif
