/* intake.c: the one funnel (see intake.h for the picture).
 *
 * Threads:
 *  - callers of intake_accept (SMTP sessions, pollers, the CLI) queue a
 *    request and sleep on it;
 *  - the committer takes every queued request (up to commit_batch_max),
 *    archives them in ONE transaction on a synchronous=FULL connection and
 *    wakes their callers: group commit, so the disk's flush rate bounds
 *    batches, not messages.  A batch that fails is retried one by one, so a
 *    bad request cannot fail its neighbours;
 *  - parse_workers parse threads, each with its own store connection and its
 *    own snapkeep-parse process, take committed message ids and commit the
 *    rows (synchronous=NORMAL: rows can always be re-derived by reparse).
 *
 * Invariants:
 *  1. intake_accept returns 0 only after the raw bytes are committed.
 *  2. Every committed new message is queued for parsing exactly once per
 *     process; messages still pending at start (crash) are queued by open.
 *  3. The raw bytes waiting for commit never exceed queue_max_bytes: beyond
 *     it intake_accept fails at once with a temporary error. */
#include "config.h"

#include "intake/intake.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "intake/worker.h"
#include "util/log.h"

const double intake_latency_bounds[INTAKE_LATENCY_BUCKETS] = {
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
};

struct intake_request {
	const struct store_arrival *arrival;
	size_t len;                      /* of the raw message */
	struct store_prepared *prepared; /* hashed and compressed by the caller; owned */
	struct store_receipt receipt;
	char *error;
	int result;
	bool done;
};

struct intake {
	struct intake_settings settings;
	char *db_path;
	char *worker_path;

	GMutex lock;
	GCond cond;          /* signalled on every state change */
	/* SQLite: held across every write transaction of this process, so the
	 * committer and the parse threads queue here instead of meeting
	 * DB_BUSY, whose retry sleeps (up to 100 ms) would idle the disk.
	 * PostgreSQL has no single writer (its row locks order what must be
	 * ordered): there the lock is not taken, and the acknowledgements do
	 * not wait for parse commits. */
	GMutex write_lock;
	bool serialize_writes;
	GQueue accept_queue; /* struct intake_request * */
	size_t accept_bytes;
	GQueue parse_queue;  /* struct intake_queued *, whose ids key parse_set */
	GHashTable *parse_set;
	unsigned parse_inflight;
	unsigned committing;
	bool stopping;

	struct store *accept_store;
	GThread *committer;
	/* Several nodes on PostgreSQL: messages left pending by a node that
	 * died are found by the others' sweeps. */
	struct store *sweep_store;
	GThread *sweeper;
	GPtrArray *parsers;

	struct intake_stats stats;
};

void
intake_settings_default(struct intake_settings *s)
{
	memset(s, 0, sizeof(*s));
	s->db_path = "snapkeep.db";
	s->parse_workers = 2;
	s->parse_timeout_ms = 30000;
	s->parse_cpu_seconds = 20;
	s->parse_memory_mb = 1024;
	s->parse_nice = 10;
	s->commit_batch_max = 256;
	s->commit_delay_us = 0;
	s->queue_max_bytes = 256u * 1024 * 1024;
	s->sweep_interval_ms = 30000;
	s->parse = true;
	store_settings_default(&s->store);
	mime_limits_default(&s->mime);
	devxml_limits_default(&s->xml);
}

/* Tries of a parse commit that PostgreSQL ended as a deadlock's loser. */
#define INTAKE_COMMIT_TRIES 3

static void
write_lock(struct intake *in)
{
	if (in->serialize_writes)
		g_mutex_lock(&in->write_lock);
}

static void
write_unlock(struct intake *in)
{
	if (in->serialize_writes)
		g_mutex_unlock(&in->write_lock);
}

struct intake_queued {
	int64_t id; /* first: the parse_set key points here */
	int64_t queued_us; /* monotonic */
	bool reparse;      /* asked for (may be parsed already), not found pending */
};

/* Queues id for parsing unless already queued; lock held. */
static void
intake_queue_parse_locked(struct intake *in, int64_t id, bool reparse)
{
	if (g_hash_table_contains(in->parse_set, &id))
		return;
	struct intake_queued *q = g_new(struct intake_queued, 1);
	q->id = id;
	q->queued_us = g_get_monotonic_time();
	q->reparse = reparse;
	g_hash_table_add(in->parse_set, &q->id);
	g_queue_push_tail(&in->parse_queue, q);
	in->stats.queued = in->parse_queue.length;
}

/* Adds one observation; lock held. */
static void
intake_latency_observe(struct intake_latency *l, int64_t elapsed_us)
{
	double secs = elapsed_us > 0 ? (double)elapsed_us / 1e6 : 0.0;
	for (int i = 0; i < INTAKE_LATENCY_BUCKETS; i++)
		if (secs <= intake_latency_bounds[i])
			l->buckets[i]++;
	l->count++;
	l->sum_seconds += secs;
}

static int
intake_commit_one(struct intake *in, struct intake_request *req)
{
	char *error = NULL;
	write_lock(in);
	if (store_begin(in->accept_store, &error) < 0)
		goto fail;
	if (store_message_add_prepared(in->accept_store, req->arrival, req->prepared, &req->receipt,
				       &error) < 0) {
		store_rollback(in->accept_store);
		goto fail;
	}
	if (store_commit(in->accept_store, &error) < 0)
		goto fail;
	write_unlock(in);
	req->result = 0;
	return 0;
fail:
	write_unlock(in);
	req->result = -1;
	req->error = error != NULL ? error : g_strdup("store: unknown error");
	return -1;
}

static void
intake_commit_batch(struct intake *in, GPtrArray *batch)
{
	char *error = NULL;
	guint i;

	if (batch->len == 1) {
		intake_commit_one(in, g_ptr_array_index(batch, 0));
		return;
	}
	write_lock(in);
	if (store_begin(in->accept_store, &error) < 0)
		goto one_by_one;
	for (i = 0; i < batch->len; i++) {
		struct intake_request *req = g_ptr_array_index(batch, i);
		if (store_message_add_prepared(in->accept_store, req->arrival, req->prepared,
					       &req->receipt, &error) < 0) {
			store_rollback(in->accept_store);
			goto one_by_one;
		}
	}
	if (store_commit(in->accept_store, &error) < 0)
		goto one_by_one;
	write_unlock(in);
	for (i = 0; i < batch->len; i++)
		((struct intake_request *)g_ptr_array_index(batch, i))->result = 0;
	return;
one_by_one:
	write_unlock(in);
	log_warnx("intake: event=batch-failed size=%u error=\"%s\" action=retry-singly", batch->len,
		  error ? error : "?");
	g_free(error);
	for (i = 0; i < batch->len; i++)
		intake_commit_one(in, g_ptr_array_index(batch, i));
}

static gpointer
intake_committer_main(gpointer data)
{
	struct intake *in = data;
	GPtrArray *batch = g_ptr_array_new();

	g_mutex_lock(&in->lock);
	for (;;) {
		while (in->accept_queue.length == 0 && !in->stopping)
			g_cond_wait(&in->cond, &in->lock);
		if (in->accept_queue.length == 0 && in->stopping)
			break;
		if (in->settings.commit_delay_us > 0 &&
		    in->accept_queue.length < in->settings.commit_batch_max) {
			gint64 until = g_get_monotonic_time() + in->settings.commit_delay_us;
			while (in->accept_queue.length < in->settings.commit_batch_max &&
			       g_cond_wait_until(&in->cond, &in->lock, until))
				;
		}
		g_ptr_array_set_size(batch, 0);
		while (in->accept_queue.length > 0 && batch->len < in->settings.commit_batch_max)
			g_ptr_array_add(batch, g_queue_pop_head(&in->accept_queue));
		in->committing = batch->len;
		g_mutex_unlock(&in->lock);

		intake_commit_batch(in, batch);

		g_mutex_lock(&in->lock);
		in->stats.commits++;
		for (guint i = 0; i < batch->len; i++) {
			struct intake_request *req = g_ptr_array_index(batch, i);
			in->accept_bytes -= req->len;
			if (req->result == 0) {
				in->stats.accepted++;
				if (req->receipt.duplicate)
					in->stats.duplicates++;
				else if (in->settings.parse)
					intake_queue_parse_locked(in, req->receipt.message_id, false);
			} else {
				in->stats.commit_errors++;
			}
			req->done = true;
		}
		in->committing = 0;
		g_cond_broadcast(&in->cond);
	}
	g_mutex_unlock(&in->lock);
	g_ptr_array_free(batch, TRUE);
	return NULL;
}

/* Queues a prepared message for the group commit and waits for it. */
static int
intake_accept_prepared(struct intake *in, const struct store_arrival *arrival, size_t len,
		       struct store_prepared *prepared, int64_t started_us,
		       struct store_receipt *receipt_r, char **error_r)
{
	struct intake_request req = {
		.arrival = arrival, .len = len, .prepared = prepared, .result = -1,
	};

	g_mutex_lock(&in->lock);
	if (in->stopping) {
		g_mutex_unlock(&in->lock);
		store_prepared_free(&req.prepared);
		*error_r = g_strdup("intake: shutting down");
		return -1;
	}
	if (in->accept_bytes > 0 && in->accept_bytes + len > in->settings.queue_max_bytes) {
		g_mutex_unlock(&in->lock);
		store_prepared_free(&req.prepared);
		*error_r = g_strdup_printf("intake: commit queue full (queue_max_bytes=%zu)",
					   in->settings.queue_max_bytes);
		return -1;
	}
	in->accept_bytes += len;
	g_queue_push_tail(&in->accept_queue, &req);
	g_cond_broadcast(&in->cond);
	while (!req.done)
		g_cond_wait(&in->cond, &in->lock);
	if (req.result == 0)
		intake_latency_observe(&in->stats.accept, g_get_monotonic_time() - started_us);
	g_mutex_unlock(&in->lock);
	store_prepared_free(&req.prepared);

	if (req.result < 0) {
		log_warnx("intake: event=accept-failed source=%s error=\"%s\"", arrival->source,
			  req.error);
		*error_r = req.error;
		return -1;
	}
	*receipt_r = req.receipt;
	log_debug("intake: event=accepted source=%s message=%lld intake=%lld duplicate=%d",
		  arrival->source, (long long)req.receipt.message_id,
		  (long long)req.receipt.intake_id, req.receipt.duplicate);
	return 0;
}

int
intake_accept(struct intake *in, const struct store_arrival *arrival, GBytes *raw,
	      struct store_receipt *receipt_r, char **error_r)
{
	struct store_prepared *prepared = NULL;
	int64_t started_us = g_get_monotonic_time();
	size_t len = g_bytes_get_size(raw);

	/* Hash and compress here, in the arriving thread, so that concurrent
	 * arrivals use every core and the committer only inserts. */
	if (store_message_prepare(g_bytes_get_data(raw, NULL), len, in->settings.store.archive_level,
				  &prepared, error_r) < 0)
		return -1;
	return intake_accept_prepared(in, arrival, len, prepared, started_us, receipt_r, error_r);
}

int
intake_accept_fd(struct intake *in, const struct store_arrival *arrival, int fd, size_t len,
		 struct store_receipt *receipt_r, char **error_r)
{
	struct store_prepared *prepared = NULL;
	int64_t started_us = g_get_monotonic_time();

	if (store_message_prepare_fd(fd, len, in->settings.store.archive_level, &prepared,
				     error_r) < 0)
		return -1;
	return intake_accept_prepared(in, arrival, len, prepared, started_us, receipt_r, error_r);
}

/* Parses one message and commits its result.  Returns 0, or -1 when the
 * message must stay pending (store or worker start failure). */
static int
intake_parse_one(struct intake *in, struct store *store, struct worker *worker, int64_t id)
{
	GBytes *raw = NULL;
	char *error = NULL;
	struct worker_result res = { 0 };
	struct snapshot *snap = NULL;
	enum store_outcome final = STORE_OUTCOME_PENDING;
	int ret = -1;

	if (store_message_get(store, id, &raw, &error) < 0) {
		log_warnx("intake: event=load-failed message=%lld error=\"%s\"", (long long)id, error);
		goto out;
	}
	gsize len = 0;
	const void *data = g_bytes_get_data(raw, &len);
	if (worker_parse(worker, data, len, &res, &error) < 0) {
		log_errorx("intake: event=worker-start-failed error=\"%s\"", error);
		goto out;
	}
	if (res.outcome == STORE_OUTCOME_STORED &&
	    snapshot_from_json(res.snapshot_json, strlen(res.snapshot_json), &snap, &error) < 0) {
		res.outcome = STORE_OUTCOME_FAILED;
		g_free(res.detail);
		res.detail = g_strdup_printf("parse: bad worker answer: %s", error);
		g_clear_pointer(&error, g_free);
	}
	struct store_hints hints = {
		.subject = res.subject,
		.header_from = res.header_from,
		.date_utc = res.date_utc,
		.message_id_header = res.message_id,
		.subject_serial = res.subject_serial,
		.subject_time_utc = res.subject_time_utc,
	};
	/* The delta repack's compression, before the write lock is taken. */
	/* The answer's text is parsed: free it before the repack needs memory. */
	g_clear_pointer(&res.snapshot_json, g_free);
	(void)store_repack_prepare(store, id, g_steal_pointer(&raw), res.outcome, snap, &hints);
	/* PostgreSQL may end one of two transactions that wait for each other
	 * (a deadlock: DB_BUSY); the loser runs again, at most
	 * INTAKE_COMMIT_TRIES times, before the message is left pending. */
	for (unsigned attempt = 1;; attempt++) {
		(void)db_take_failure(store_db(store));
		write_lock(in);
		int committed = store_begin(store, &error) == 0 &&
				store_result_commit(store, id, res.outcome, res.detail, snap, &hints, &final,
						    &error) == 0 &&
				store_commit(store, &error) == 0;
		int code = committed ? DB_OK : db_take_failure(store_db(store));
		if (!committed)
			store_rollback(store);
		write_unlock(in);
		if (committed)
			break;
		if (attempt >= INTAKE_COMMIT_TRIES || code != DB_BUSY)
			goto db_error;
		log_info("intake: event=commit-retry message=%lld attempt=%u error=\"%s\"", (long long)id,
			 attempt, error);
		g_clear_pointer(&error, g_free);
		final = STORE_OUTCOME_PENDING;
	}
	ret = 0;
	if (final == STORE_OUTCOME_FAILED)
		log_warnx("intake: event=parsed message=%lld outcome=failed reason=\"%s\"",
			  (long long)id, res.detail ? res.detail : "");
	else
		log_info("intake: event=parsed message=%lld outcome=%s serial=%s", (long long)id,
			 store_outcome_name(final), snap && snap->serial ? snap->serial : "-");
	goto out;
db_error:
	log_errorx("intake: event=commit-failed message=%lld error=\"%s\" action=left-pending",
		   (long long)id, error);
out:
	g_mutex_lock(&in->lock);
	switch (final) {
	case STORE_OUTCOME_STORED:
		in->stats.parsed_stored++;
		break;
	case STORE_OUTCOME_DUPLICATE:
		in->stats.parsed_duplicate++;
		break;
	case STORE_OUTCOME_NOT_SNAPSHOT:
		in->stats.parsed_not_snapshot++;
		break;
	case STORE_OUTCOME_FAILED:
		in->stats.parsed_failed++;
		break;
	case STORE_OUTCOME_PENDING:
		break;
	}
	g_mutex_unlock(&in->lock);
	snapshot_free(&snap);
	worker_result_clear(&res);
	if (raw != NULL)
		g_bytes_unref(raw);
	g_free(error);
	return ret;
}

struct intake_parser {
	struct intake *in;
	GThread *thread;
	struct store *store;
	struct worker *worker;
};

static gpointer
intake_parser_main(gpointer data)
{
	struct intake_parser *p = data;
	struct intake *in = p->in;

	/* Linux: niceness is per thread.  Parsing is background work; the
	 * threads that accept and acknowledge keep the CPU. */
	if (in->settings.parse_nice > 0 &&
	    setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), (int)in->settings.parse_nice) < 0)
		log_debug("intake: event=nice-failed error=\"%s\"", g_strerror(errno));

	g_mutex_lock(&in->lock);
	for (;;) {
		while (in->parse_queue.length == 0 && !in->stopping)
			g_cond_wait(&in->cond, &in->lock);
		if (in->stopping)
			break;
		struct intake_queued *q = g_queue_pop_head(&in->parse_queue);
		int64_t id = q->id, queued_us = q->queued_us;
		bool reparse = q->reparse;
		g_hash_table_remove(in->parse_set, &q->id);
		g_free(q);
		in->stats.queued = in->parse_queue.length;
		in->parse_inflight++;
		g_mutex_unlock(&in->lock);

		/* Several nodes on PostgreSQL: the message is parsed by the one
		 * that claims it (another may have it in hand, or be done). */
		unsigned before = worker_restarts(p->worker);
		char *error = NULL;
		int claimed = store_parse_claim(p->store, id, !reparse, &error);
		if (claimed > 0) {
			intake_parse_one(in, p->store, p->worker, id);
			store_parse_release(p->store, id);
		} else if (claimed == 0) {
			log_debug("intake: event=claimed-elsewhere message=%lld", (long long)id);
		} else {
			log_warnx("intake: event=claim-failed message=%lld error=\"%s\" action=left-pending",
				  (long long)id, error);
		}
		g_free(error);
		unsigned restarted = worker_restarts(p->worker) - before;

		g_mutex_lock(&in->lock);
		intake_latency_observe(&in->stats.parse, g_get_monotonic_time() - queued_us);
		in->stats.worker_restarts += restarted;
		in->parse_inflight--;
		g_cond_broadcast(&in->cond);
	}
	g_mutex_unlock(&in->lock);
	return NULL;
}

/* Queues every pending message (store: a connection of the calling
 * thread's own). */
static int
intake_recover(struct intake *in, struct store *store, const char *event, char **error_r)
{
	GArray *ids = g_array_new(FALSE, FALSE, sizeof(int64_t));
	int64_t after = 0;
	unsigned total = 0;

	for (;;) {
		g_array_set_size(ids, 0);
		if (store_message_list(store, STORE_SELECT_PENDING, after, 1000, ids,
				       error_r) < 0) {
			g_array_free(ids, TRUE);
			return -1;
		}
		if (ids->len == 0)
			break;
		g_mutex_lock(&in->lock);
		for (guint i = 0; i < ids->len; i++)
			intake_queue_parse_locked(in, g_array_index(ids, int64_t, i), false);
		g_cond_broadcast(&in->cond);
		g_mutex_unlock(&in->lock);
		after = g_array_index(ids, int64_t, ids->len - 1);
		total += ids->len;
	}
	g_array_free(ids, TRUE);
	if (total > 0)
		log_info("intake: event=%s pending=%u", event, total);
	return 0;
}

static gpointer
intake_sweeper_main(gpointer data)
{
	struct intake *in = data;

	g_mutex_lock(&in->lock);
	for (;;) {
		gint64 until = g_get_monotonic_time() + (gint64)in->settings.sweep_interval_ms * 1000;
		while (!in->stopping && g_cond_wait_until(&in->cond, &in->lock, until))
			;
		if (in->stopping)
			break;
		g_mutex_unlock(&in->lock);
		char *error = NULL;
		if (intake_recover(in, in->sweep_store, "swept", &error) < 0)
			log_warnx("intake: event=sweep-failed error=\"%s\"", error);
		g_free(error);
		g_mutex_lock(&in->lock);
	}
	g_mutex_unlock(&in->lock);
	return NULL;
}

int
intake_open(const struct intake_settings *settings, struct intake **intake_r, char **error_r)
{
	struct intake *in = g_new0(struct intake, 1);
	struct store_settings ss;

	/* A dead parse worker must give EPIPE, not kill the process. */
	signal(SIGPIPE, SIG_IGN);
	mime_global_init();
	devxml_global_init();

	in->settings = *settings;
	in->db_path = g_strdup(settings->db_path);
	in->settings.db_path = in->db_path;
	if (in->settings.parse_workers == 0)
		in->settings.parse_workers = 1;
	if (in->settings.commit_batch_max == 0)
		in->settings.commit_batch_max = 1;
	g_mutex_init(&in->lock);
	g_mutex_init(&in->write_lock);
	g_cond_init(&in->cond);
	g_queue_init(&in->accept_queue);
	g_queue_init(&in->parse_queue);
	in->parse_set = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, NULL);
	in->parsers = g_ptr_array_new();

	ss = settings->store;
	ss.path = in->db_path;
	ss.readonly = false;
	ss.durable = true;
	if (store_open(&ss, &in->accept_store, error_r) < 0)
		goto fail;
	in->serialize_writes = db_engine(store_db(in->accept_store)) == DB_ENGINE_SQLITE;

	if (in->settings.parse) {
		in->worker_path = settings->worker_path != NULL ? g_strdup(settings->worker_path)
								 : worker_find_program();
		if (in->worker_path == NULL) {
			*error_r = g_strdup("intake: the parse worker snapkeep-parse was not found "
					    "(set SNAPKEEP_PARSE_WORKER)");
			goto fail;
		}
		struct worker_config wc = {
			.path = in->worker_path,
			.timeout_ms = settings->parse_timeout_ms,
			.cpu_seconds = settings->parse_cpu_seconds,
			.memory_mb = settings->parse_memory_mb,
			.nice = settings->parse_nice,
			.max_message_size = settings->mime.max_message_size,
			.max_header_size = settings->mime.max_header_size,
			.max_depth = settings->mime.max_depth,
			.max_parts = settings->mime.max_parts,
			.max_xml_size = settings->mime.max_xml_size,
			.xml_max_depth = settings->xml.max_depth,
			.xml_max_string_len = settings->xml.max_string_len,
			.xml_max_events = settings->xml.max_events,
		};
		if (intake_recover(in, in->accept_store, "recovered", error_r) < 0)
			goto fail;
		for (unsigned i = 0; i < in->settings.parse_workers; i++) {
			struct intake_parser *p = g_new0(struct intake_parser, 1);
			ss.durable = false;
			p->in = in;
			if (store_open(&ss, &p->store, error_r) < 0) {
				g_free(p);
				goto fail;
			}
			p->worker = worker_new(&wc);
			g_ptr_array_add(in->parsers, p);
			p->thread = g_thread_new("sk-parse", intake_parser_main, p);
		}
	}
	in->committer = g_thread_new("sk-commit", intake_committer_main, in);
	if (in->settings.parse && in->settings.sweep_interval_ms > 0 &&
	    db_engine(store_db(in->accept_store)) == DB_ENGINE_POSTGRESQL) {
		ss.durable = false;
		ss.readonly = true;
		if (store_open(&ss, &in->sweep_store, error_r) < 0)
			goto fail;
		in->sweeper = g_thread_new("sk-sweep", intake_sweeper_main, in);
	}
	*intake_r = in;
	return 0;
fail:
	intake_free(&in);
	return -1;
}

void
intake_queue_reparse(struct intake *in, const int64_t *ids, size_t count)
{
	g_mutex_lock(&in->lock);
	for (size_t i = 0; i < count; i++)
		intake_queue_parse_locked(in, ids[i], true);
	g_cond_broadcast(&in->cond);
	g_mutex_unlock(&in->lock);
}

int
intake_drain(struct intake *in, unsigned timeout_ms)
{
	gint64 until = timeout_ms ? g_get_monotonic_time() + (gint64)timeout_ms * 1000 : 0;
	int ret = 0;

	g_mutex_lock(&in->lock);
	while (in->accept_queue.length > 0 || in->committing > 0 ||
	       (in->parsers->len > 0 && (in->parse_queue.length > 0 || in->parse_inflight > 0))) {
		if (until == 0) {
			g_cond_wait(&in->cond, &in->lock);
		} else if (!g_cond_wait_until(&in->cond, &in->lock, until)) {
			ret = -1;
			break;
		}
	}
	g_mutex_unlock(&in->lock);
	return ret;
}

void
intake_get_stats(struct intake *in, struct intake_stats *stats_r)
{
	g_mutex_lock(&in->lock);
	*stats_r = in->stats;
	stats_r->queued = in->parse_queue.length + in->parse_inflight;
	g_mutex_unlock(&in->lock);
}

void
intake_free(struct intake **intake)
{
	struct intake *in;

	if (intake == NULL || *intake == NULL)
		return;
	in = *intake;
	*intake = NULL;

	/* The committer finishes every queued request before it exits; parse
	 * threads finish the message in hand, the rest stays pending. */
	g_mutex_lock(&in->lock);
	in->stopping = true;
	g_cond_broadcast(&in->cond);
	g_mutex_unlock(&in->lock);
	if (in->committer != NULL)
		g_thread_join(in->committer);
	if (in->sweeper != NULL)
		g_thread_join(in->sweeper);
	store_free(&in->sweep_store);
	for (guint i = 0; i < in->parsers->len; i++) {
		struct intake_parser *p = g_ptr_array_index(in->parsers, i);
		if (p->thread != NULL)
			g_thread_join(p->thread);
		worker_free(&p->worker);
		store_free(&p->store);
		g_free(p);
	}
	g_ptr_array_free(in->parsers, TRUE);
	store_free(&in->accept_store);
	g_queue_clear_full(&in->parse_queue, g_free);
	g_hash_table_destroy(in->parse_set);
	g_mutex_clear(&in->lock);
	g_mutex_clear(&in->write_lock);
	g_cond_clear(&in->cond);
	g_free(in->worker_path);
	g_free(in->db_path);
	g_free(in);
}
