/* main.c: snapkeepd, the one long-running process of snapkeep.
 *
 *   snapkeepd [--config FILE] [--db FILE|URL] [--smtp-listen ADDR:PORT]... [--foreground]
 *   snapkeepd -n [--config FILE] ...      check the configuration and exit
 *
 * Start-up order (each step's errors reach the caller's terminal and the
 * exit status): read the configuration -> chdir to state_dir -> services
 * prepare (bind ports, read the certificate and users file, as root) -> drop
 * privileges to [daemon] user -> detach unless --foreground (the parent
 * waits until the child is ready and exits with its status) -> open the
 * intake funnel (database, parse workers) -> services start -> "ready".
 *
 * Signals (in the main loop, via g_unix_signal_add): SIGTERM and SIGINT stop
 * accepting, let work under way finish within each service's stop timeout,
 * let intake commit its queue, and exit 0; a second one cuts the wait short.
 * SIGHUP re-reads the configuration file (the command-line flags still
 * override it) and hands it to every service; settings that need a restart
 * are named in a warning.  SIGPIPE is ignored.
 *
 * Under a service manager ($NOTIFY_SOCKET, systemd's Type=notify; run with
 * --foreground) it reports READY=1 once the ports accept, RELOADING=1 and
 * READY=1 around a SIGHUP, STOPPING=1, and STATUS= lines (notify.c).
 *
 * Security posture: no network input is handled here.  Running as root
 * without a user to become is refused unless [daemon] user is set empty. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <grp.h>
#include <malloc.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/config-table.h"
#include "daemon/notify.h"
#include "daemon/service.h"
#include "intake/intake.h"
#include "store/db.h"
#include "util/log.h"

/* Every service snapkeepd runs; [web] and [poll.NAME] join here. */
static const struct daemon_service_ops *const services[] = {
    &daemon_service_web, /* first: freed first, its /metrics reads the others */
    &daemon_service_smtp,
    &daemon_service_poll,
    &daemon_service_maintenance,
};
#define N_SERVICES G_N_ELEMENTS(services)

struct daemon {
	char *config_path;
	GPtrArray *overrides; /* "section", "key", "value" triples */
	struct config *config;
	void *state[N_SERVICES];
	struct intake *intake;
	GMainLoop *loop;
	GSource *stop_timer;
	int64_t stop_deadline_us;
	unsigned stop_signals;
	int ready_fd; /* to the waiting parent, or -1 */
};

/* The running daemon, for daemon_service_state(). */
static struct daemon *daemon_running;

void *
daemon_service_state(const char *name)
{
	if (daemon_running == NULL)
		return NULL;
	for (size_t i = 0; i < N_SERVICES; i++)
		if (strcmp(services[i]->name, name) == 0)
			return daemon_running->state[i];
	return NULL;
}

static int
daemon_config_read(struct daemon *d, struct config **config_r, char **error_r)
{
	struct config *config = NULL;
	if (config_load(d->config_path, &config, error_r) < 0)
		return -1;
	for (guint i = 0; i + 2 < d->overrides->len; i += 3) {
		if (config_set(config, g_ptr_array_index(d->overrides, i),
			       g_ptr_array_index(d->overrides, i + 1),
			       g_ptr_array_index(d->overrides, i + 2), error_r) < 0) {
			config_free(&config);
			return -1;
		}
	}
	*config_r = config;
	return 0;
}

static void
daemon_override(struct daemon *d, const char *section, const char *key, const char *value)
{
	g_ptr_array_add(d->overrides, g_strdup(section));
	g_ptr_array_add(d->overrides, g_strdup(key));
	g_ptr_array_add(d->overrides, g_strdup(value));
}

static void
daemon_intake_settings(const struct config *config, struct intake_settings *s)
{
	const char *worker = config_get(config, "intake", "worker_path");
	intake_settings_default(s);
	s->db_path = config_store_target(config);
	s->worker_path = worker[0] != '\0' ? worker : NULL;
	s->parse_workers = config_get_uint(config, "intake", "parse_workers");
	/* 0: accept only; messages stay pending for snapkeep reparse or the
	 * next start with workers. */
	s->parse = s->parse_workers > 0;
	s->parse_timeout_ms = config_get_ms(config, "intake", "parse_timeout");
	s->parse_cpu_seconds = MAX(1u, config_get_ms(config, "intake", "parse_cpu_time") / 1000);
	s->parse_memory_mb =
	    (unsigned)MAX(1u, config_get_size(config, "intake", "parse_memory_limit") >> 20);
	s->parse_nice = MIN(19u, config_get_uint(config, "intake", "parse_nice"));
	s->commit_batch_max = config_get_uint(config, "intake", "commit_batch_max");
	s->commit_delay_us = config_get_ms(config, "intake", "commit_delay") * 1000u;
	s->queue_max_bytes = (size_t)config_get_size(config, "intake", "queue_max_size");
	s->sweep_interval_ms = config_get_ms(config, "intake", "sweep_interval");
	s->store.busy_timeout_ms = (int)config_get_ms(config, "store", "busy_timeout");
	s->store.archive_level = (int)config_get_uint(config, "store", "archive_level");
	s->store.archive_keyframe_interval =
	    config_get_uint(config, "store", "archive_keyframe_interval");
	s->store.archive_cache_bytes = (size_t)config_get_size(config, "store", "archive_cache_size");
}

static int
daemon_drop_privileges(const struct config *config, char **error_r)
{
	const char *user = config_get(config, "daemon", "user");
	struct passwd *pw;

	if (geteuid() != 0)
		return 0;
	if (user[0] == '\0') {
		log_warnx("daemon: event=running-as-root reason=\"[daemon] user is empty\"");
		return 0;
	}
	errno = 0;
	pw = getpwnam(user);
	if (pw == NULL) {
		*error_r = g_strdup_printf("[daemon] user: no user \"%s\" (create it, or set user "
					   "empty to stay root)",
					   user);
		return -1;
	}
	if (initgroups(pw->pw_name, pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 ||
	    setuid(pw->pw_uid) < 0) {
		*error_r = g_strdup_printf("cannot become %s: %s", user, g_strerror(errno));
		return -1;
	}
	if (pw->pw_uid != 0 && setuid(0) == 0) {
		*error_r = g_strdup("privileges could be regained after setuid");
		return -1;
	}
	log_info("daemon: event=privileges-dropped user=%s uid=%ld gid=%ld", user, (long)pw->pw_uid,
		 (long)pw->pw_gid);
	return 0;
}

/* Forks; the parent waits for the child's "ready" (or its error) and exits.
 * Returns in the child with *ready_fd_r to report on. */
static int
daemon_detach(int *ready_fd_r, char **error_r)
{
	int fds[2];
	pid_t pid;

	if (pipe2(fds, O_CLOEXEC) < 0) {
		*error_r = g_strdup_printf("pipe: %s", g_strerror(errno));
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		*error_r = g_strdup_printf("fork: %s", g_strerror(errno));
		return -1;
	}
	if (pid > 0) {
		char status = 1;
		close(fds[1]);
		ssize_t n = read(fds[0], &status, 1);
		_exit(n == 1 && status == 0 ? 0 : 1);
	}
	close(fds[0]);
	if (setsid() < 0) {
		*error_r = g_strdup_printf("setsid: %s", g_strerror(errno));
		return -1;
	}
	int null = open("/dev/null", O_RDWR);
	if (null >= 0) {
		dup2(null, STDIN_FILENO);
		dup2(null, STDOUT_FILENO);
		if (null > STDERR_FILENO)
			close(null);
	}
	*ready_fd_r = fds[1];
	return 0;
}

static void
daemon_report_ready(struct daemon *d, bool ok)
{
	if (d->ready_fd < 0)
		return;
	char status = ok ? 0 : 1;
	ssize_t n = write(d->ready_fd, &status, 1);
	(void)n;
	close(d->ready_fd);
	d->ready_fd = -1;
}

static bool
daemon_busy(struct daemon *d)
{
	for (size_t i = 0; i < N_SERVICES; i++)
		if (d->state[i] != NULL && services[i]->busy(d->state[i]))
			return true;
	return false;
}

static gboolean
daemon_stop_tick(gpointer data)
{
	struct daemon *d = data;
	if (!daemon_busy(d)) {
		g_main_loop_quit(d->loop);
		return G_SOURCE_REMOVE;
	}
	if (g_get_monotonic_time() >= d->stop_deadline_us) {
		log_warnx("daemon: event=stop-timeout action=closing-remaining");
		g_main_loop_quit(d->loop);
		return G_SOURCE_REMOVE;
	}
	return G_SOURCE_CONTINUE;
}

static gboolean
daemon_on_stop(gpointer data)
{
	struct daemon *d = data;
	d->stop_signals++;
	if (d->stop_signals > 1) {
		log_warnx("daemon: event=stop-now reason=\"second signal\"");
		g_main_loop_quit(d->loop);
		return G_SOURCE_CONTINUE;
	}
	unsigned timeout_ms = 0;
	for (size_t i = 0; i < N_SERVICES; i++) {
		if (d->state[i] == NULL)
			continue;
		services[i]->stop(d->state[i]);
		timeout_ms = MAX(timeout_ms, services[i]->stop_timeout_ms(d->config));
	}
	log_info("daemon: event=stopping timeout_ms=%u", timeout_ms);
	daemon_notify("STOPPING=1", "Stopping: finishing work under way (at most %u ms)", timeout_ms);
	d->stop_deadline_us = g_get_monotonic_time() + (int64_t)timeout_ms * 1000;
	d->stop_timer = g_timeout_source_new(50);
	g_source_set_callback(d->stop_timer, daemon_stop_tick, d, NULL);
	g_source_attach(d->stop_timer, NULL);
	daemon_stop_tick(d);
	return G_SOURCE_CONTINUE;
}

static gboolean
daemon_on_reload(gpointer data)
{
	struct daemon *d = data;
	struct config *config = NULL;
	char *error = NULL;
	enum log_level level;

	daemon_notify_reloading("Reloading the configuration");
	if (daemon_config_read(d, &config, &error) < 0) {
		log_errorx("daemon: event=reload-failed error=\"%s\" action=kept-old", error);
		daemon_notify("READY=1", "Running; the reload failed, old settings kept: %s", error);
		g_free(error);
		return G_SOURCE_CONTINUE;
	}
	for (size_t i = 0; i < N_SERVICES; i++) {
		if (d->state[i] == NULL)
			continue;
		if (services[i]->reload(d->state[i], config, &error) < 0) {
			log_errorx("daemon: event=reload-failed service=%s error=\"%s\" "
				   "action=kept-old",
				   services[i]->name, error);
			g_clear_pointer(&error, g_free);
		}
	}
	static const struct {
		const char *section, *key;
	} restart[] = {{"store", "db"},
		       {"store", "backend"},
		       {"store", "url"},
		       {"store", "password_file"},
		       {"daemon", "user"},
		       {"daemon", "state_dir"},
		       {"intake", "parse_workers"}};
	for (size_t i = 0; i < G_N_ELEMENTS(restart); i++)
		if (strcmp(config_get(config, restart[i].section, restart[i].key),
			   config_get(d->config, restart[i].section, restart[i].key)) != 0)
			log_warnx("daemon: event=reload-ignored key=%s.%s reason=\"restart to "
				  "change\"",
				  restart[i].section, restart[i].key);
	if (log_level_parse(config_get(config, "daemon", "log_level"), &level) == 0)
		log_set_level(level);
	config_free(&d->config);
	d->config = config;
	log_info("daemon: event=reloaded config=%s", d->config_path != NULL ? d->config_path : "-");
	char *shown = db_target_display(config_store_target(d->config));
	daemon_notify("READY=1", "Running (reloaded): database %s", shown);
	g_free(shown);
	return G_SOURCE_CONTINUE;
}

/* [store] password_file, read once as root (a credential the dropped user
 * may not read), for every PostgreSQL connection. */
static int
daemon_read_password(const struct config *config, char **error_r)
{
	const char *path = config_get(config, "store", "password_file");
	char *text = NULL;
	GError *gerr = NULL;

	if (path[0] == '\0')
		return 0;
	if (!g_file_get_contents(path, &text, NULL, &gerr)) {
		*error_r = g_strdup_printf("[store] password_file: %s", gerr->message);
		g_error_free(gerr);
		return -1;
	}
	text[strcspn(text, "\r\n")] = '\0';
	db_set_default_password(text);
	memset(text, 0, strlen(text));
	g_free(text);
	return 0;
}

static int
daemon_check(struct daemon *d, char **error_r)
{
	const char *state_dir = config_get(d->config, "daemon", "state_dir");
	if (config_store_check(d->config, error_r) < 0)
		return -1;
	if (!g_file_test(state_dir, G_FILE_TEST_IS_DIR)) {
		*error_r = g_strdup_printf("[daemon] state_dir: %s is not a directory", state_dir);
		return -1;
	}
	for (size_t i = 0; i < N_SERVICES; i++) {
		char *why = NULL;
		if (services[i]->check(d->config, &why) < 0) {
			*error_r = g_strdup_printf("[%s] %s", services[i]->name, why);
			g_free(why);
			return -1;
		}
	}
	return 0;
}

int
main(int argc, char **argv)
{
	struct daemon d = {.ready_fd = -1};
	gchar *config_path = NULL, *db = NULL;
	gchar **listen = NULL;
	gboolean foreground = FALSE, check = FALSE, version = FALSE;
	GError *gerr = NULL;
	char *error = NULL;
	enum log_level level;
	int status = 1;
	GOptionEntry entries[] = {
	    {"config", 'c', 0, G_OPTION_ARG_FILENAME, &config_path,
	     "Configuration file (default " SK_SYSCONFDIR "/snapkeep/snapkeep.conf if it exists)",
	     "FILE"},
	    {"db", 0, 0, G_OPTION_ARG_FILENAME, &db,
	     "Database file or postgresql:// URL ([store] db, url)", "FILE|URL"},
	    {"smtp-listen", 0, 0, G_OPTION_ARG_STRING_ARRAY, &listen,
	     "Accept SMTP on ADDR:PORT ([smtp] listen); repeatable", "ADDR:PORT"},
	    {"foreground", 'f', 0, G_OPTION_ARG_NONE, &foreground,
	     "Stay in the foreground (for systemd and tests)", NULL},
	    {"check", 'n', 0, G_OPTION_ARG_NONE, &check, "Check the configuration and exit", NULL},
	    {"version", 'V', 0, G_OPTION_ARG_NONE, &version, "Print the version and exit", NULL},
	    {NULL, 0, 0, 0, NULL, NULL, NULL},
	};
	GOptionContext *opts = g_option_context_new("- receive device snapshots by SMTP");

	log_init("snapkeepd", LOG_LEVEL_INFO);
	daemon_notify_init(); /* $NOTIFY_SOCKET: systemd's Type=notify (notify.c) */
	/* Large buffers (messages being committed, parsed, repacked) come and
	 * go by the megabyte in many threads: a fixed mmap threshold gives them
	 * back to the system when freed (glibc's dynamic threshold would keep
	 * them in the heaps), and few arenas limit fragmentation.  Measured
	 * with 100 concurrent 3 MB sessions: peak RSS 168 MB -> 98 MB. */
	mallopt(M_MMAP_THRESHOLD, 256 * 1024);
	mallopt(M_ARENA_MAX, 2);
	g_option_context_add_main_entries(opts, entries, NULL);
	if (!g_option_context_parse(opts, &argc, &argv, &gerr)) {
		fprintf(stderr, "snapkeepd: %s\n", gerr->message);
		g_error_free(gerr);
		g_option_context_free(opts);
		return 2;
	}
	g_option_context_free(opts);
	if (version) {
		printf("snapkeepd %s\n", PACKAGE_VERSION);
		return 0;
	}
	signal(SIGPIPE, SIG_IGN);

	d.overrides = g_ptr_array_new_with_free_func(g_free);
	if (config_path != NULL) {
		d.config_path = g_canonicalize_filename(config_path, NULL);
	} else {
		char *sys = g_build_filename(SK_SYSCONFDIR, "snapkeep", "snapkeep.conf", NULL);
		if (g_file_test(sys, G_FILE_TEST_EXISTS))
			d.config_path = sys;
		else
			g_free(sys);
	}
	/* --db wins over the file's [store], whichever engine either names. */
	if (db != NULL && db_target_is_postgresql(db)) {
		daemon_override(&d, "store", "backend", "postgresql");
		daemon_override(&d, "store", "url", db);
	} else if (db != NULL) {
		char *abs = g_canonicalize_filename(db, NULL);
		daemon_override(&d, "store", "backend", "sqlite");
		daemon_override(&d, "store", "db", abs);
		g_free(abs);
	}
	if (listen != NULL) {
		char *joined = g_strjoinv(",", listen);
		daemon_override(&d, "smtp", "listen", joined);
		g_free(joined);
	}
	if (daemon_config_read(&d, &d.config, &error) < 0)
		goto fail;
	if (log_level_parse(config_get(d.config, "daemon", "log_level"), &level) == 0)
		log_set_level(level);
	if (daemon_check(&d, &error) < 0)
		goto fail;
	if (daemon_read_password(d.config, &error) < 0)
		goto fail;
	if (check) {
		printf("snapkeepd: %s: configuration OK\n",
		       d.config_path != NULL ? d.config_path : "(defaults)");
		status = 0;
		goto out;
	}

	if (chdir(config_get(d.config, "daemon", "state_dir")) < 0) {
		error =
		    g_strdup_printf("[daemon] state_dir: %s: %s",
				    config_get(d.config, "daemon", "state_dir"), g_strerror(errno));
		goto fail;
	}
	for (size_t i = 0; i < N_SERVICES; i++) {
		char *why = NULL;
		if (services[i]->prepare(d.config, &d.state[i], &why) < 0) {
			error = g_strdup_printf("[%s] %s", services[i]->name, why);
			g_free(why);
			goto fail;
		}
	}
	if (daemon_drop_privileges(d.config, &error) < 0)
		goto fail;
	if (!foreground && daemon_detach(&d.ready_fd, &error) < 0)
		goto fail;

	struct intake_settings is;
	daemon_intake_settings(d.config, &is);
	if (intake_open(&is, &d.intake, &error) < 0)
		goto fail;
	d.loop = g_main_loop_new(NULL, FALSE);
	daemon_running = &d;
	for (size_t i = 0; i < N_SERVICES; i++) {
		char *why = NULL;
		if (d.state[i] == NULL)
			continue;
		if (services[i]->start(d.state[i], d.intake, NULL, &why) < 0) {
			error = g_strdup_printf("[%s] %s", services[i]->name, why);
			g_free(why);
			goto fail;
		}
	}
	g_unix_signal_add(SIGTERM, daemon_on_stop, &d);
	g_unix_signal_add(SIGINT, daemon_on_stop, &d);
	g_unix_signal_add(SIGHUP, daemon_on_reload, &d);

	const char *pid_file = config_get(d.config, "daemon", "pid_file");
	if (!foreground && pid_file[0] != '\0') {
		char *pid = g_strdup_printf("%ld\n", (long)getpid());
		if (!g_file_set_contents(pid_file, pid, -1, &gerr)) {
			log_warnx("daemon: event=pid-file-failed error=\"%s\"", gerr->message);
			g_clear_error(&gerr);
		}
		g_free(pid);
	}
	/* (a password in [store] url stays out of logs and the unit's status) */
	char *shown = db_target_display(config_store_target(d.config));
	log_info("daemon: event=ready pid=%ld db=%s config=%s", (long)getpid(), shown,
		 d.config_path != NULL ? d.config_path : "-");
	daemon_report_ready(&d, true);
	daemon_notify("READY=1", "Running: database %s", shown);
	g_free(shown);

	g_main_loop_run(d.loop);

	if (d.stop_timer != NULL) {
		g_source_destroy(d.stop_timer);
		g_source_unref(d.stop_timer);
	}
	for (size_t i = 0; i < N_SERVICES; i++)
		if (d.state[i] != NULL)
			services[i]->free(&d.state[i]);
	intake_free(&d.intake);
	if (!foreground && pid_file[0] != '\0')
		unlink(pid_file);
	log_info("daemon: event=stopped");
	status = 0;
	goto out;
fail:
	log_errorx("daemon: event=start-failed error=\"%s\"", error);
	daemon_notify(NULL, "Start failed: %s", error);
	daemon_report_ready(&d, false);
	for (size_t i = 0; i < N_SERVICES; i++)
		if (d.state[i] != NULL)
			services[i]->free(&d.state[i]);
	intake_free(&d.intake);
	status = 1;
out:
	g_free(error);
	if (d.loop != NULL)
		g_main_loop_unref(d.loop);
	config_free(&d.config);
	g_ptr_array_free(d.overrides, TRUE);
	g_free(d.config_path);
	g_free(config_path);
	g_free(db);
	g_strfreev(listen);
	return status;
}
