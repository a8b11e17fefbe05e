/* worker.c: runs snapkeep-parse processes and talks to them (see worker.h).
 *
 * Security posture: everything the worker returns is treated as untrusted
 * too (it parsed hostile input): frames are bounded by WORKER_FRAME_MAX and
 * JSON is parsed with json-glib.  A worker that writes garbage is killed. */
#include "config.h"

#include "intake/worker.h"

#include <errno.h>
#include <fcntl.h>
#include <json-glib/json-glib.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"

extern char **environ;

struct worker {
	struct worker_config config;
	char *path;
	pid_t pid;
	int to_fd;    /* worker's stdin */
	int from_fd;  /* worker's stdout */
	unsigned restarts;
};

static int64_t
worker_now_ms(void)
{
	return g_get_monotonic_time() / 1000;
}

char *
worker_find_program(void)
{
	const char *env = g_getenv("SNAPKEEP_PARSE_WORKER");
	if (env != NULL && *env != '\0')
		return g_strdup(env);

	char *self = g_file_read_link("/proc/self/exe", NULL);
	if (self != NULL) {
		char *dir = g_path_get_dirname(self);
		char *beside = g_build_filename(dir, "snapkeep-parse", NULL);
		g_free(dir);
		g_free(self);
		if (g_file_test(beside, G_FILE_TEST_IS_EXECUTABLE))
			return beside;
		g_free(beside);
	}
	char *installed = g_build_filename(SK_PKGLIBEXECDIR, "snapkeep-parse", NULL);
	if (g_file_test(installed, G_FILE_TEST_IS_EXECUTABLE))
		return installed;
	g_free(installed);
	return NULL;
}

struct worker *
worker_new(const struct worker_config *config)
{
	struct worker *w = g_new0(struct worker, 1);
	w->config = *config;
	w->path = g_strdup(config->path);
	w->config.path = w->path;
	w->pid = -1;
	w->to_fd = -1;
	w->from_fd = -1;
	return w;
}

static void
worker_stop(struct worker *w, bool kill_it)
{
	if (w->to_fd >= 0)
		close(w->to_fd);
	if (w->from_fd >= 0)
		close(w->from_fd);
	w->to_fd = w->from_fd = -1;
	if (w->pid > 0) {
		if (kill_it)
			kill(w->pid, SIGKILL);
		int status;
		while (waitpid(w->pid, &status, 0) < 0 && errno == EINTR)
			;
	}
	w->pid = -1;
}

void
worker_free(struct worker **worker)
{
	if (worker == NULL || *worker == NULL)
		return;
	worker_stop(*worker, false);
	g_free((*worker)->path);
	g_free(*worker);
	*worker = NULL;
}

unsigned
worker_restarts(const struct worker *worker)
{
	return worker->restarts;
}

static int
worker_start(struct worker *w, char **error_r)
{
	int in_pipe[2], out_pipe[2];
	posix_spawn_file_actions_t fa;
	GPtrArray *argv = g_ptr_array_new_with_free_func(g_free);
	int ret = -1;

	if (pipe2(in_pipe, O_CLOEXEC) < 0) {
		*error_r = g_strdup_printf("intake: pipe: %s", g_strerror(errno));
		g_ptr_array_free(argv, TRUE);
		return -1;
	}
	if (pipe2(out_pipe, O_CLOEXEC) < 0) {
		*error_r = g_strdup_printf("intake: pipe: %s", g_strerror(errno));
		close(in_pipe[0]);
		close(in_pipe[1]);
		g_ptr_array_free(argv, TRUE);
		return -1;
	}
	g_ptr_array_add(argv, g_strdup(w->path));
	g_ptr_array_add(argv, g_strdup_printf("--cpu-seconds=%u", w->config.cpu_seconds));
	g_ptr_array_add(argv, g_strdup_printf("--memory-mb=%u", w->config.memory_mb));
	g_ptr_array_add(argv, g_strdup_printf("--nice=%u", w->config.nice));
	g_ptr_array_add(argv, g_strdup_printf("--max-message-size=%zu", w->config.max_message_size));
	g_ptr_array_add(argv, g_strdup_printf("--max-header-size=%zu", w->config.max_header_size));
	g_ptr_array_add(argv, g_strdup_printf("--max-mime-depth=%u", w->config.max_depth));
	g_ptr_array_add(argv, g_strdup_printf("--max-mime-parts=%u", w->config.max_parts));
	g_ptr_array_add(argv, g_strdup_printf("--max-xml-size=%zu", w->config.max_xml_size));
	g_ptr_array_add(argv, g_strdup_printf("--max-xml-depth=%u", w->config.xml_max_depth));
	g_ptr_array_add(argv, g_strdup_printf("--max-string-length=%zu", w->config.xml_max_string_len));
	g_ptr_array_add(argv, g_strdup_printf("--max-events=%u", w->config.xml_max_events));
	g_ptr_array_add(argv, NULL);

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in_pipe[0], STDIN_FILENO);
	posix_spawn_file_actions_adddup2(&fa, out_pipe[1], STDOUT_FILENO);
	int r = posix_spawn(&w->pid, w->path, &fa, NULL, (char **)argv->pdata, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(in_pipe[0]);
	close(out_pipe[1]);
	if (r != 0) {
		*error_r = g_strdup_printf("intake: cannot start parse worker %s: %s", w->path,
					   g_strerror(r));
		close(in_pipe[1]);
		close(out_pipe[0]);
		w->pid = -1;
		goto out;
	}
	w->to_fd = in_pipe[1];
	w->from_fd = out_pipe[0];
	/* A worker that dies must not kill us with SIGPIPE. */
	fcntl(w->to_fd, F_SETFL, fcntl(w->to_fd, F_GETFL) | O_NONBLOCK);
	fcntl(w->from_fd, F_SETFL, fcntl(w->from_fd, F_GETFL) | O_NONBLOCK);
	w->restarts++;
	ret = 0;
out:
	g_ptr_array_free(argv, TRUE);
	return ret;
}

/* Writes all of buf before deadline; 0, or -1 (errno ETIMEDOUT or the error). */
static int
worker_write_all(int fd, const void *buf, size_t len, int64_t deadline)
{
	const char *p = buf;
	while (len > 0) {
		/* SIGPIPE is ignored by intake_open: a dead worker gives EPIPE. */
		ssize_t n = write(fd, p, len);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return -1;
		int64_t left = deadline - worker_now_ms();
		if (left <= 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		struct pollfd pfd = { .fd = fd, .events = POLLOUT };
		if (poll(&pfd, 1, (int)left) < 0 && errno != EINTR)
			return -1;
	}
	return 0;
}

static int
worker_read_all(int fd, void *buf, size_t len, int64_t deadline)
{
	char *p = buf;
	while (len > 0) {
		ssize_t n = read(fd, p, len);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n == 0) {
			errno = EPIPE;
			return -1;
		}
		if (errno != EAGAIN && errno != EINTR)
			return -1;
		int64_t left = deadline - worker_now_ms();
		if (left <= 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		if (poll(&pfd, 1, (int)left) < 0 && errno != EINTR)
			return -1;
	}
	return 0;
}

static int
worker_read_frame_deadline(int fd, GByteArray *buf, size_t max, int64_t deadline)
{
	unsigned char hdr[4];
	if (worker_read_all(fd, hdr, 4, deadline) < 0)
		return -1;
	uint32_t len = ((uint32_t)hdr[0] << 24) | ((uint32_t)hdr[1] << 16) |
		       ((uint32_t)hdr[2] << 8) | hdr[3];
	if (len > max) {
		errno = EMSGSIZE;
		return -1;
	}
	g_byte_array_set_size(buf, len);
	if (len > 0 && worker_read_all(fd, buf->data, len, deadline) < 0)
		return -1;
	return 0;
}

int
worker_read_frame(int fd, GByteArray *buf, size_t max)
{
	return worker_read_frame_deadline(fd, buf, max, INT64_MAX);
}

static int
worker_write_frame_deadline(int fd, const void *data, size_t len, int64_t deadline)
{
	unsigned char hdr[4] = { (unsigned char)(len >> 24), (unsigned char)(len >> 16),
				 (unsigned char)(len >> 8), (unsigned char)len };
	if (len > WORKER_FRAME_MAX) {
		errno = EMSGSIZE;
		return -1;
	}
	if (worker_write_all(fd, hdr, 4, deadline) < 0)
		return -1;
	return len > 0 ? worker_write_all(fd, data, len, deadline) : 0;
}

int
worker_write_frame(int fd, const void *data, size_t len)
{
	return worker_write_frame_deadline(fd, data, len, INT64_MAX);
}

void
worker_result_clear(struct worker_result *result)
{
	g_free(result->detail);
	g_free(result->snapshot_json);
	g_free(result->subject);
	g_free(result->header_from);
	g_free(result->date_utc);
	g_free(result->message_id);
	g_free(result->subject_serial);
	g_free(result->subject_time_utc);
	memset(result, 0, sizeof(*result));
}

static char *
worker_json_string(JsonObject *obj, const char *member)
{
	JsonNode *node = json_object_get_member(obj, member);
	if (node == NULL || JSON_NODE_TYPE(node) != JSON_NODE_VALUE ||
	    json_node_get_value_type(node) != G_TYPE_STRING)
		return NULL;
	return g_strdup(json_node_get_string(node));
}

static int
worker_decode_meta(const GByteArray *meta, struct worker_result *result)
{
	JsonParser *parser = json_parser_new();
	int ret = -1;

	if (!json_parser_load_from_data(parser, (const char *)meta->data, (gssize)meta->len, NULL))
		goto out;
	JsonNode *root = json_parser_get_root(parser);
	if (root == NULL || !JSON_NODE_HOLDS_OBJECT(root))
		goto out;
	JsonObject *obj = json_node_get_object(root);
	char *outcome = worker_json_string(obj, "outcome");
	if (outcome == NULL)
		goto out;
	if (strcmp(outcome, "stored") == 0)
		result->outcome = STORE_OUTCOME_STORED;
	else if (strcmp(outcome, "not-snapshot") == 0)
		result->outcome = STORE_OUTCOME_NOT_SNAPSHOT;
	else
		result->outcome = STORE_OUTCOME_FAILED;
	g_free(outcome);
	result->detail = worker_json_string(obj, "detail");
	JsonNode *hints = json_object_get_member(obj, "hints");
	if (hints != NULL && JSON_NODE_HOLDS_OBJECT(hints)) {
		JsonObject *h = json_node_get_object(hints);
		result->subject = worker_json_string(h, "subject");
		result->header_from = worker_json_string(h, "from");
		result->date_utc = worker_json_string(h, "date_utc");
		result->message_id = worker_json_string(h, "message_id");
		result->subject_serial = worker_json_string(h, "subject_serial");
		result->subject_time_utc = worker_json_string(h, "subject_time_utc");
	}
	ret = 0;
out:
	g_object_unref(parser);
	return ret;
}

static char *
worker_death_reason(struct worker *w, int64_t started, bool timed_out)
{
	int status = 0;
	pid_t pid = w->pid;

	if (timed_out)
		kill(pid, SIGKILL);
	if (w->to_fd >= 0)
		close(w->to_fd);
	if (w->from_fd >= 0)
		close(w->from_fd);
	w->to_fd = w->from_fd = -1;
	/* The worker closed its pipe: it exits or is about to; make sure. */
	int64_t deadline = worker_now_ms() + 2000;
	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid || (r < 0 && errno != EINTR))
			break;
		if (worker_now_ms() > deadline) {
			kill(pid, SIGKILL);
			while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
				;
			break;
		}
		g_usleep(1000);
	}
	w->pid = -1;
	if (timed_out)
		return g_strdup_printf("parse: timed out after %u ms (worker killed)",
				       w->config.timeout_ms);
	if (WIFSIGNALED(status)) {
		int sig = WTERMSIG(status);
		if (sig == SIGXCPU)
			return g_strdup_printf("parse: CPU limit of %u s exceeded",
					       w->config.cpu_seconds);
		return g_strdup_printf("parse: worker died of signal %d (%s) after %lld ms", sig,
				       strsignal(sig), (long long)(worker_now_ms() - started));
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 3)
		return g_strdup_printf("parse: memory limit of %u MB exceeded", w->config.memory_mb);
	if (WIFEXITED(status))
		return g_strdup_printf("parse: worker exited with status %d", WEXITSTATUS(status));
	return g_strdup("parse: worker lost");
}

int
worker_parse(struct worker *w, const void *raw, size_t len, struct worker_result *result_r,
	     char **error_r)
{
	GByteArray *meta = NULL, *snap = NULL;
	int64_t started = worker_now_ms();
	int64_t deadline = started + w->config.timeout_ms;
	bool timed_out = false;

	memset(result_r, 0, sizeof(*result_r));
	if (w->pid < 0 && worker_start(w, error_r) < 0)
		return -1;

	if (worker_write_frame_deadline(w->to_fd, raw, len, deadline) < 0) {
		timed_out = errno == ETIMEDOUT;
		goto dead;
	}
	meta = g_byte_array_new();
	snap = g_byte_array_new();
	if (worker_read_frame_deadline(w->from_fd, meta, 1024 * 1024, deadline) < 0 ||
	    worker_read_frame_deadline(w->from_fd, snap, WORKER_FRAME_MAX, deadline) < 0) {
		timed_out = errno == ETIMEDOUT;
		goto dead;
	}
	if (worker_decode_meta(meta, result_r) < 0) {
		worker_stop(w, true);
		result_r->outcome = STORE_OUTCOME_FAILED;
		result_r->detail = g_strdup("parse: worker answered garbage");
		goto out;
	}
	if (result_r->outcome == STORE_OUTCOME_STORED) {
		if (snap->len == 0) {
			result_r->outcome = STORE_OUTCOME_FAILED;
			g_free(result_r->detail);
			result_r->detail = g_strdup("parse: worker sent no snapshot");
		} else {
			result_r->snapshot_json = g_strndup((const char *)snap->data, snap->len);
		}
	}
	goto out;
dead:
	worker_result_clear(result_r);
	result_r->outcome = STORE_OUTCOME_FAILED;
	result_r->detail = worker_death_reason(w, started, timed_out);
	log_warnx("intake: event=worker-lost reason=\"%s\"", result_r->detail);
out:
	if (meta != NULL)
		g_byte_array_free(meta, TRUE);
	if (snap != NULL)
		g_byte_array_free(snap, TRUE);
	return 0;
}
