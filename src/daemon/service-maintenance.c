/* service-maintenance.c: the daemon's periodic pass over the store: repack
 * parsed messages still stored plain (the delta repack was skipped or
 * interrupted), then apply retention ([store] retention_days,
 * retention_failed_days) with store_prune, which keeps every delta chain
 * decodable and the parsed rows intact.
 *
 * The first pass runs a minute after start (or after one interval, when
 * that is shorter), then every [store] maintenance_interval (0: never).  The pass runs on its own thread
 * with its own database connection, in short transactions, so intake keeps
 * committing meanwhile.  SIGHUP changes the retention and the interval. */
#include "config.h"

#include "daemon/service.h"
#include "store/store.h"
#include "util/log.h"
#include "util/sktime.h"

#define MAINTENANCE_FIRST_DELAY_US (60 * G_USEC_PER_SEC)
#define MAINTENANCE_REPACK_MAX 10000

struct maintenance {
	GMutex lock;
	GCond cond;
	GThread *thread;
	bool stopping;
	bool running;
	char *db_path;
	unsigned interval_ms;
	unsigned retention_days;
	unsigned retention_failed_days;
	int busy_timeout_ms;
};

static void
maintenance_read(struct maintenance *m, const struct config *config)
{
	m->interval_ms = config_get_ms(config, "store", "maintenance_interval");
	m->retention_days = config_get_uint(config, "store", "retention_days");
	m->retention_failed_days = config_get_uint(config, "store", "retention_failed_days");
	m->busy_timeout_ms = (int)config_get_ms(config, "store", "busy_timeout");
}

static int
maintenance_check(const struct config *config, char **error_r)
{
	unsigned days = config_get_uint(config, "store", "retention_days");
	unsigned failed = config_get_uint(config, "store", "retention_failed_days");
	if (days > 0 && failed > 0 && failed < days) {
		*error_r = g_strdup_printf("retention_failed_days (%u) is shorter than retention_days "
					   "(%u): failed messages are kept at least as long",
					   failed, days);
		return -1;
	}
	return 0;
}

static void
maintenance_pass(struct maintenance *m)
{
	struct store_settings ss;
	struct store *store = NULL;
	char *error = NULL;
	unsigned repacked = 0;
	gint64 started = g_get_monotonic_time();

	store_settings_default(&ss);
	g_mutex_lock(&m->lock);
	ss.path = m->db_path;
	ss.durable = true;
	ss.busy_timeout_ms = m->busy_timeout_ms;
	ss.retention_days = m->retention_days;
	ss.retention_failed_days = m->retention_failed_days;
	g_mutex_unlock(&m->lock);

	if (store_open(&ss, &store, &error) < 0) {
		log_warnx("maintenance: event=open-failed error=\"%s\"", error);
		g_free(error);
		return;
	}
	if (store_repack_backlog(store, MAINTENANCE_REPACK_MAX, &repacked, &error) < 0) {
		log_warnx("maintenance: event=repack-failed error=\"%s\"", error);
		g_clear_pointer(&error, g_free);
	}
	struct store_prune_stats st = { 0 };
	/* retention_days 0 keeps everything, failed messages included. */
	if (ss.retention_days > 0) {
		if (store_prune(store, sk_time_now(), false, &st, &error) < 0) {
			log_warnx("maintenance: event=prune-failed error=\"%s\"", error);
			g_clear_pointer(&error, g_free);
		}
	}
	store_free(&store);
	log_info("maintenance: event=pass repacked=%u pruned=%llu pruned_raw_bytes=%llu "
		 "reencoded=%llu retention_days=%u retention_failed_days=%u duration_ms=%lld",
		 repacked, (unsigned long long)st.pruned, (unsigned long long)st.pruned_raw_bytes,
		 (unsigned long long)st.reencoded, ss.retention_days, ss.retention_failed_days,
		 (long long)((g_get_monotonic_time() - started) / 1000));
}

static gint64
maintenance_first(const struct maintenance *m)
{
	return g_get_monotonic_time() + MIN(MAINTENANCE_FIRST_DELAY_US, (gint64)m->interval_ms * 1000);
}

static gpointer
maintenance_main(gpointer data)
{
	struct maintenance *m = data;

	g_mutex_lock(&m->lock);
	gint64 next = maintenance_first(m);

	while (!m->stopping) {
		if (m->interval_ms == 0) {
			g_cond_wait(&m->cond, &m->lock);
			next = maintenance_first(m);
			continue;
		}
		if (g_get_monotonic_time() < next) {
			g_cond_wait_until(&m->cond, &m->lock, next);
			continue;
		}
		m->running = true;
		g_mutex_unlock(&m->lock);
		maintenance_pass(m);
		g_mutex_lock(&m->lock);
		m->running = false;
		next = g_get_monotonic_time() + (gint64)m->interval_ms * 1000;
		g_cond_broadcast(&m->cond);
	}
	g_mutex_unlock(&m->lock);
	return NULL;
}

static int
maintenance_prepare(const struct config *config, void **state_r, char **error_r)
{
	struct maintenance *m = g_new0(struct maintenance, 1);
	g_mutex_init(&m->lock);
	g_cond_init(&m->cond);
	m->db_path = g_strdup(config_store_target(config));
	maintenance_read(m, config);
	*state_r = m;
	return 0;
}

static int
maintenance_start(void *state, struct intake *intake, GMainContext *context, char **error_r)
{
	struct maintenance *m = state;
	m->thread = g_thread_new("sk-maint", maintenance_main, m);
	return 0;
}

static int
maintenance_reload(void *state, const struct config *config, char **error_r)
{
	struct maintenance *m = state;
	if (maintenance_check(config, error_r) < 0)
		return -1;
	g_mutex_lock(&m->lock);
	maintenance_read(m, config);
	g_cond_broadcast(&m->cond);
	g_mutex_unlock(&m->lock);
	return 0;
}

static void
maintenance_stop(void *state)
{
	struct maintenance *m = state;
	g_mutex_lock(&m->lock);
	m->stopping = true;
	g_cond_broadcast(&m->cond);
	g_mutex_unlock(&m->lock);
}

static bool
maintenance_busy(void *state)
{
	struct maintenance *m = state;
	g_mutex_lock(&m->lock);
	bool running = m->running;
	g_mutex_unlock(&m->lock);
	return running;
}

static unsigned
maintenance_stop_timeout_ms(const struct config *config)
{
	/* A pass works in short transactions; one of them is all we wait for. */
	return 5000;
}

static void
maintenance_free(void **state)
{
	struct maintenance *m;
	if (state == NULL || *state == NULL)
		return;
	m = *state;
	*state = NULL;
	maintenance_stop(m);
	if (m->thread != NULL)
		g_thread_join(m->thread);
	g_mutex_clear(&m->lock);
	g_cond_clear(&m->cond);
	g_free(m->db_path);
	g_free(m);
}

const struct daemon_service_ops daemon_service_maintenance = {
	.name = "maintenance",
	.check = maintenance_check,
	.prepare = maintenance_prepare,
	.start = maintenance_start,
	.reload = maintenance_reload,
	.stop = maintenance_stop,
	.busy = maintenance_busy,
	.stop_timeout_ms = maintenance_stop_timeout_ms,
	.free = maintenance_free,
};
