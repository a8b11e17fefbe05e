/* poller.c: a poller's life: passes at the interval (or when IMAP IDLE or
 * inotify says something arrived), backoff after errors, state for the log,
 * /metrics and the intake page; the daemon's set of pollers and the
 * one-shot pass of `snapkeep import URL`.
 *
 * States of one poller thread:
 *
 *   start --> PASS --ok, more waiting (pass_max)--> PASS
 *              |  \--ok--> WAIT (IDLE / inotify / sleep, until interval) --> PASS
 *              \--error--> BACKOFF (backoff_min doubling to backoff_max,
 *                          connections dropped) --> PASS
 *   stop (any state): the message being accepted is finished, the thread
 *   ends; what was not acted on is taken by the next run (duplicate).
 *
 * The IMAP IDLE connection is opened after a successful pass and followed
 * by one more pass, so mail that arrived between the listing and the
 * EXAMINE is not left waiting for the interval. */
#include "config.h"

#include "poll/poll-private.h"

#include <errno.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "intake/intake.h"
#include "util/log.h"
#include "util/sktime.h"

/* --- one pass ------------------------------------------------------------------------ */

struct pass_env {
	const struct poll_settings *settings;
	struct intake *intake;
	struct store *store;
	int64_t mailbox_id;
	volatile gint *stop;
	GHashTable *warned;
	struct poll_curl pc; /* IMAP: kept between passes */
	bool pc_open;
	char *mailbox_wire; /* IMAP: learnt by the last pass */
	void (*progress)(void *ctx, const struct poll_pass_stats *stats, unsigned total);
	void *progress_ctx;
	bool skipped_busy;  /* the last pass was skipped: another node held the mailbox */
};

static void
env_close_connection(struct pass_env *env)
{
	if (env->pc_open)
		poll_curl_close(&env->pc);
	env->pc_open = false;
}

static int
env_run_pass(struct pass_env *env, struct poll_pass_stats *stats_r, char **error_r)
{
	const struct poll_settings *s = env->settings;
	struct poll_pass pass;
	char *db_error = NULL;
	int r = -1;

	/* Nodes sharing one PostgreSQL store take turns on a mailbox: a pass
	 * while another node's is under way is skipped (nothing is taken twice,
	 * and no two nodes move or flag the same message). */
	int claimed = store_mailbox_claim(env->store, env->mailbox_id, error_r);
	env->skipped_busy = claimed == 0;
	if (claimed <= 0) {
		memset(stats_r, 0, sizeof(*stats_r));
		if (claimed == 0)
			log_info("poll: event=pass-skipped name=%s mailbox=%s reason=\"another node is polling it\"",
				 s->name, s->key);
		return claimed;
	}
	poll_pass_init(&pass, s, env->intake, env->store, env->mailbox_id, env->stop);
	pass.warned = env->warned;
	pass.progress = env->progress;
	pass.progress_ctx = env->progress_ctx;
	switch (s->kind) {
	case POLL_KIND_IMAP:
		if (!env->pc_open) {
			if (poll_curl_open(&env->pc, s, env->stop, error_r) < 0)
				break;
			env->pc_open = true;
		}
		r = poll_imap_pass(&pass, &env->pc, error_r);
		if (pass.imap_mailbox_wire != NULL) {
			g_free(env->mailbox_wire);
			env->mailbox_wire = g_strdup(pass.imap_mailbox_wire);
		}
		if (r < 0)
			env_close_connection(env); /* a fresh connection next time */
		break;
	case POLL_KIND_POP3:
		r = poll_pop3_pass(&pass, error_r);
		break;
	case POLL_KIND_MAILDIR:
		r = poll_maildir_pass(&pass, error_r);
		break;
	}
	poll_pass_deinit(&pass);
	*stats_r = pass.stats;
	if (poll_state_pass_done(env->store, env->mailbox_id, stats_r, r < 0 ? *error_r : NULL,
				 &db_error) < 0) {
		log_warnx("poll: event=state-not-saved name=%s error=\"%s\"", s->name, db_error);
		g_free(db_error);
	}
	store_mailbox_release(env->store, env->mailbox_id);
	return r;
}

static int
env_open(struct pass_env *env, const struct poll_settings *s, struct intake *intake,
	 const char *db_path, volatile gint *stop, char **error_r)
{
	struct store_settings ss;

	memset(env, 0, sizeof(*env));
	env->settings = s;
	env->intake = intake;
	env->stop = stop;
	env->warned = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	store_settings_default(&ss);
	ss.path = db_path;
	if (store_open(&ss, &env->store, error_r) < 0)
		return -1;
	return poll_state_mailbox(env->store, s, &env->mailbox_id, error_r);
}

static void
env_close(struct pass_env *env)
{
	env_close_connection(env);
	store_free(&env->store);
	if (env->warned != NULL)
		g_hash_table_destroy(env->warned);
	env->warned = NULL;
	g_free(env->mailbox_wire);
	env->mailbox_wire = NULL;
}

static void
log_pass(const struct poll_settings *s, const struct poll_pass_stats *st, gint64 started,
	 const char *error)
{
	unsigned ms = (unsigned)((g_get_monotonic_time() - started) / 1000);

	if (error != NULL)
		log_warnx("poll: event=pass-failed name=%s mailbox=%s taken=%u duplicates=%u "
			  "failed=%u ms=%u error=\"%s\"",
			  s->name, s->key, st->taken, st->duplicates, st->failed, ms, error);
	else if (st->taken + st->duplicates + st->failed + st->skipped > 0)
		log_info("poll: event=pass name=%s mailbox=%s listed=%u taken=%u duplicates=%u "
			 "failed=%u skipped=%u "
			 "bytes=%" G_GUINT64_FORMAT " ms=%u%s",
			 s->name, s->key, st->listed, st->taken, st->duplicates, st->failed,
			 st->skipped, (guint64)st->bytes, ms, st->more ? " more=yes" : "");
	else
		log_debug("poll: event=pass name=%s mailbox=%s listed=0 ms=%u", s->name, s->key,
			  ms);
}

int
poll_run_once(struct intake *intake, const char *db_path, const struct poll_settings *settings,
	      bool progress, struct poll_pass_stats *stats_r, char **error_r)
{
	struct pass_env env;
	struct poll_progress bar = {.label = settings->key};
	int r;

	memset(stats_r, 0, sizeof(*stats_r));
	if (env_open(&env, settings, intake, db_path, NULL, error_r) < 0) {
		env_close(&env);
		return -1;
	}
	if (progress) {
		env.progress = poll_progress_draw;
		env.progress_ctx = &bar;
	}
	gint64 started = g_get_monotonic_time();
	r = env_run_pass(&env, stats_r, error_r);
	if (progress)
		poll_progress_end(&bar);
	if (env.skipped_busy) /* said once, to whoever ran the command */
		log_warnx("poll: event=pass-skipped name=%s mailbox=%s reason=\"another process is polling it"
			  " through the same store; nothing taken\"",
			  settings->name, settings->key);
	log_pass(settings, stats_r, started, r < 0 ? *error_r : NULL);
	env_close(&env);
	return r;
}

/* --- the poller thread ------------------------------------------------------------------ */

struct poller {
	struct poll_settings *settings;
	struct intake *intake;
	char *db_path;
	GThread *thread;
	volatile gint stop;
	volatile gint finished;
	int wake[2];
	struct poll_state_entry *entry;
};

static void
wake_drain(int fd)
{
	char buf[64];

	while (read(fd, buf, sizeof(buf)) > 0)
		;
}

/* Sleeps until deadline (monotonic us), a wake-up or fd (may be -1) is
 * readable: 1 fd readable, 0 otherwise. */
static int
wait_until(struct poller *p, gint64 deadline, int fd)
{
	while (g_atomic_int_get(&p->stop) == 0) {
		gint64 now = g_get_monotonic_time();
		if (now >= deadline)
			return 0;
		struct pollfd fds[2] = {{.fd = p->wake[0], .events = POLLIN},
					{.fd = fd, .events = POLLIN}};
		int ms = (int)MIN((deadline - now + 999) / 1000, 60000);
		int r = poll(fds, fd >= 0 ? 2 : 1, ms);
		if (r < 0 && errno != EINTR)
			return 0;
		if (r > 0 && (fds[0].revents & POLLIN) != 0) {
			wake_drain(p->wake[0]);
			return 0;
		}
		if (r > 0 && fd >= 0 && (fds[1].revents & POLLIN) != 0)
			return 1;
	}
	return 0;
}

static unsigned
backoff_next(const struct poll_settings *s, unsigned current)
{
	unsigned next = current == 0 ? s->backoff_min_s : MIN(current * 2, s->backoff_max_s);

	return MAX(next, s->backoff_min_s);
}

static gpointer
poller_main(gpointer data)
{
	struct poller *p = data;
	const struct poll_settings *s = p->settings;
	struct pass_env env = {0};
	struct poll_idle *idle = NULL;
	bool idle_unsupported = false;
	int watch_fd = -1;
	unsigned backoff = 0, idle_backoff = 0;
	char *error = NULL;

	log_info("poll: event=start name=%s mailbox=%s after=%s interval=%u idle=%s", s->name,
		 s->key, poll_after_name(s->after), s->interval_s, s->idle ? "yes" : "no");
	/* The store may be briefly unavailable at start: retry like any error. */
	while (g_atomic_int_get(&p->stop) == 0) {
		if (env_open(&env, s, p->intake, p->db_path, &p->stop, &error) == 0)
			break;
		env_close(&env);
		backoff = backoff_next(s, backoff);
		log_warnx("poll: event=store-unavailable name=%s error=\"%s\" retry_s=%u", s->name,
			  error, backoff);
		struct poll_pass_stats none = {0};
		poll_registry_pass(p->entry, &none, error,
				   sk_time_now_us() + (int64_t)backoff * G_USEC_PER_SEC);
		g_clear_pointer(&error, g_free);
		wait_until(p, g_get_monotonic_time() + (gint64)backoff * G_USEC_PER_SEC, -1);
	}
	if (g_atomic_int_get(&p->stop) != 0) {
		env_close(&env);
		g_atomic_int_set(&p->finished, 1);
		return NULL;
	}
	backoff = 0;
	if (s->kind == POLL_KIND_MAILDIR && s->idle) {
		watch_fd = poll_maildir_watch_open(s->path);
		if (watch_fd < 0)
			log_warnx(
			    "poll: event=no-inotify name=%s path=%s detail=\"polling every %us\"",
			    s->name, s->path, s->interval_s);
	}

	while (g_atomic_int_get(&p->stop) == 0) {
		struct poll_pass_stats stats;
		gint64 started = g_get_monotonic_time();
		if (watch_fd >= 0)
			poll_maildir_watch_drain(watch_fd);
		int r = env_run_pass(&env, &stats, &error);
		if (g_atomic_int_get(&p->stop) != 0)
			break;
		log_pass(s, &stats, started, r < 0 ? error : NULL);
		if (r < 0) {
			bool first = backoff == 0;
			backoff = backoff_next(s, backoff);
			poll_registry_pass(p->entry, &stats, error,
					   sk_time_now_us() + (int64_t)backoff * G_USEC_PER_SEC);
			log_warnx("poll: event=retry name=%s in_s=%u%s", s->name, backoff,
				  first ? " first=yes" : "");
			g_clear_pointer(&error, g_free);
			poll_idle_free(&idle);
			wait_until(p, g_get_monotonic_time() + (gint64)backoff * G_USEC_PER_SEC,
				   -1);
			continue;
		}
		if (backoff != 0)
			log_info("poll: event=recovered name=%s mailbox=%s", s->name, s->key);
		backoff = 0;
		gint64 due = g_get_monotonic_time() + (gint64)s->interval_s * G_USEC_PER_SEC;
		poll_registry_pass(p->entry, &stats, NULL,
				   sk_time_now_us() + (int64_t)s->interval_s * G_USEC_PER_SEC);
		if (stats.more)
			continue;

		if (s->kind == POLL_KIND_IMAP && s->idle && !idle_unsupported && idle == NULL &&
		    env.mailbox_wire != NULL) {
			int ir = poll_idle_open(s, env.mailbox_wire, &p->stop, &idle, &error);
			if (ir < 0) {
				/* A server that offers IDLE but could not be reached
				 * for it (restarting, a connection limit): try again
				 * with backoff, a pass first, not only after interval
				 * (new mail would wait that long). */
				idle_backoff = backoff_next(s, idle_backoff);
				due = MIN(due, g_get_monotonic_time() +
						   (gint64)idle_backoff * G_USEC_PER_SEC);
				log_warnx("poll: event=idle-failed name=%s error=\"%s\" "
					  "retry_s=%u",
					  s->name, error,
					  (unsigned)((due - g_get_monotonic_time() + G_USEC_PER_SEC - 1) /
						     G_USEC_PER_SEC));
				g_clear_pointer(&error, g_free);
			} else if (ir > 0) {
				idle_unsupported = true;
				log_info("poll: event=no-idle name=%s detail=\"server offers no "
					 "IDLE; polling every %us\"",
					 s->name, s->interval_s);
			} else {
				idle_backoff = 0;
				log_info("poll: event=idle name=%s mailbox=%s", s->name, s->key);
				continue; /* one more pass: mail may have come before EXAMINE */
			}
		}
		if (idle != NULL) {
			poll_registry_idle(p->entry, true,
					   sk_time_now_us() +
					       (int64_t)s->interval_s * G_USEC_PER_SEC);
			while (g_atomic_int_get(&p->stop) == 0) {
				gint64 now = g_get_monotonic_time();
				if (now >= due)
					break;
				unsigned ms = (unsigned)MIN((due - now) / 1000 + 1,
							    (gint64)s->idle_restart_s * 1000);
				int ir = poll_idle_wait(idle, ms, p->wake[0], &error);
				if (ir < 0) {
					log_warnx("poll: event=idle-lost name=%s error=\"%s\"",
						  s->name, error);
					g_clear_pointer(&error, g_free);
					poll_idle_free(&idle);
					break;
				}
				if (ir > 0) {
					log_debug("poll: event=idle-wake name=%s", s->name);
					break;
				}
				/* Woken by poll_set_wake or the stop request? */
				char c;
				if (read(p->wake[0], &c, 1) > 0) {
					wake_drain(p->wake[0]);
					break;
				}
			}
			poll_registry_idle(p->entry, false, 0);
			continue;
		}
		poll_registry_idle(p->entry, watch_fd >= 0,
				   sk_time_now_us() + (due - g_get_monotonic_time()));
		if (wait_until(p, due, watch_fd) > 0)
			g_usleep(20000); /* let a burst of deliveries land together */
		poll_registry_idle(p->entry, false, 0);
	}
	poll_idle_free(&idle);
	if (watch_fd >= 0)
		close(watch_fd);
	env_close(&env);
	g_free(error);
	log_info("poll: event=stop name=%s", s->name);
	g_atomic_int_set(&p->finished, 1);
	return NULL;
}

static struct poller *
poller_start(struct intake *intake, const char *db_path, const struct poll_settings *settings,
	     char **error_r)
{
	struct poller *p = g_new0(struct poller, 1);
	GError *gerr = NULL;

	if (!g_unix_open_pipe(p->wake, FD_CLOEXEC, &gerr)) {
		*error_r = g_strdup_printf("poll: pipe: %s", gerr->message);
		g_error_free(gerr);
		g_free(p);
		return NULL;
	}
	fcntl(p->wake[0], F_SETFL, O_NONBLOCK);
	fcntl(p->wake[1], F_SETFL, O_NONBLOCK);
	p->settings = poll_settings_copy(settings);
	p->intake = intake;
	p->db_path = g_strdup(db_path);
	p->entry = poll_registry_add(p->settings);
	char *thread_name = g_strdup_printf("poll-%s", settings->name);
	p->thread = g_thread_new(thread_name, poller_main, p);
	g_free(thread_name);
	return p;
}

static void
poller_wake(struct poller *p)
{
	if (write(p->wake[1], "w", 1) < 0 && errno != EAGAIN)
		log_warn("poll: event=wake-failed name=%s", p->settings->name);
}

static void
poller_stop(struct poller *p)
{
	if (p == NULL)
		return;
	g_atomic_int_set(&p->stop, 1);
	poller_wake(p);
	g_thread_join(p->thread);
	poll_registry_remove(&p->entry);
	close(p->wake[0]);
	close(p->wake[1]);
	poll_settings_free(&p->settings);
	g_free(p->db_path);
	g_free(p);
}

/* --- the set --------------------------------------------------------------------------------- */

struct poll_set {
	struct intake *intake;
	char *db_path;
	GPtrArray *pollers; /* struct poller * */
};

int
poll_set_start(struct intake *intake, const char *db_path, GPtrArray *settings,
	       struct poll_set **set_r, char **error_r)
{
	struct poll_set *set = g_new0(struct poll_set, 1);

	set->intake = intake;
	set->db_path = g_strdup(db_path);
	set->pollers = g_ptr_array_new();
	for (guint i = 0; settings != NULL && i < settings->len; i++) {
		struct poller *p =
		    poller_start(intake, db_path, g_ptr_array_index(settings, i), error_r);
		if (p == NULL) {
			poll_set_free(&set);
			return -1;
		}
		g_ptr_array_add(set->pollers, p);
	}
	*set_r = set;
	return 0;
}

/* Everything a poller does depends on these; a change restarts it. */
static char *
settings_fingerprint(const struct poll_settings *s)
{
	return g_strdup_printf("%s|%s|%s|%u|%d|%s|%s|%d|%s|%d|%u|%d|%u|%u|%u|%u|%zu|%u|%u|%u",
			       s->name, s->url, s->password_file ? s->password_file : "",
			       s->interval_s, (int)s->after, s->move_to, s->failed_to,
			       (int)s->tls_verify, s->tls_ca_file ? s->tls_ca_file : "",
			       (int)s->starttls, s->batch_size, (int)s->idle, s->idle_restart_s,
			       s->timeout_s, s->backoff_min_s, s->backoff_max_s,
			       s->max_message_size, s->parse_wait_s, s->pass_max, s->accept_jobs);
}

int
poll_set_reload(struct poll_set *set, GPtrArray *settings, char **error_r)
{
	GPtrArray *keep = g_ptr_array_new();
	unsigned started = 0, stopped = 0, kept = 0;

	for (guint i = 0; i < set->pollers->len; i++) {
		struct poller *p = g_ptr_array_index(set->pollers, i);
		char *old = settings_fingerprint(p->settings);
		bool same = false;
		for (guint j = 0; settings != NULL && j < settings->len && !same; j++) {
			char *fp = settings_fingerprint(g_ptr_array_index(settings, j));
			same = strcmp(fp, old) == 0;
			g_free(fp);
		}
		g_free(old);
		if (same) {
			g_ptr_array_add(keep, p);
			kept++;
		} else {
			poller_stop(p);
			stopped++;
		}
	}
	g_ptr_array_set_size(set->pollers, 0);
	for (guint i = 0; i < keep->len; i++)
		g_ptr_array_add(set->pollers, g_ptr_array_index(keep, i));
	g_ptr_array_unref(keep);
	int ret = 0;
	for (guint j = 0; settings != NULL && j < settings->len; j++) {
		const struct poll_settings *s = g_ptr_array_index(settings, j);
		bool running = false;
		for (guint i = 0; i < set->pollers->len && !running; i++)
			running = strcmp(((struct poller *)g_ptr_array_index(set->pollers, i))
					     ->settings->name,
					 s->name) == 0;
		if (running)
			continue;
		struct poller *p = poller_start(set->intake, set->db_path, s, error_r);
		if (p == NULL) {
			ret = -1;
			break;
		}
		g_ptr_array_add(set->pollers, p);
		started++;
	}
	log_info("poll: event=reload kept=%u stopped=%u started=%u", kept, stopped, started);
	return ret;
}

void
poll_set_wake(struct poll_set *set)
{
	for (guint i = 0; set != NULL && i < set->pollers->len; i++)
		poller_wake(g_ptr_array_index(set->pollers, i));
}

void
poll_set_stop(struct poll_set *set)
{
	for (guint i = 0; set != NULL && i < set->pollers->len; i++) {
		struct poller *p = g_ptr_array_index(set->pollers, i);
		g_atomic_int_set(&p->stop, 1);
		poller_wake(p);
	}
}

bool
poll_set_busy(struct poll_set *set)
{
	for (guint i = 0; set != NULL && i < set->pollers->len; i++)
		if (g_atomic_int_get(
			&((struct poller *)g_ptr_array_index(set->pollers, i))->finished) == 0)
			return true;
	return false;
}

void
poll_set_free(struct poll_set **setp)
{
	struct poll_set *set = *setp;

	if (set == NULL)
		return;
	/* Ask all to stop first, so they wind down in parallel. */
	poll_set_stop(set);
	for (guint i = 0; i < set->pollers->len; i++)
		poller_stop(g_ptr_array_index(set->pollers, i));
	g_ptr_array_unref(set->pollers);
	g_free(set->db_path);
	g_free(set);
	*setp = NULL;
}
