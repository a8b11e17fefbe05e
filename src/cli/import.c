/* import.c: `snapkeep import [--db FILE] PATH...`: .eml files, directories
 * of them (recursively), Maildirs (cur/ and new/), mbox files, or "-" for
 * one message on standard input (a Postfix pipe transport or an aliases
 * entry delivers this way).
 *
 * Every message goes through the funnel (intake_accept), several at a time
 * so the store commits them in groups; at most --jobs messages are held in
 * memory at once.  Exit status: 0 when every message was stored or
 * deliberately ignored (duplicate, not a snapshot, or kept as failed: it is
 * archived and can be reparsed), 75 (EX_TEMPFAIL) when the store could not
 * take a message so the MTA retries, 66 when a path does not exist. */
#include "config.h"

#include "cli/cli.h"

#include <errno.h>
#include <gmime/gmime.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "intake/intake.h"
#include "poll/poll.h"
#include "util/log.h"

struct import_job {
	GBytes *raw;
	char *name;
};

struct import_ctx {
	struct intake *intake;
	const char *source;
	GMutex lock;
	GCond cond;
	unsigned inflight;
	unsigned jobs_max;
	unsigned total_known;
	unsigned done;
	unsigned failed;     /* accept failures: store unavailable */
	unsigned unreadable; /* paths that could not be read */
	unsigned skipped;    /* files in directories that are not mail */
	size_t bytes;
	bool progress;
	gint64 last_progress;
};

static void
import_progress(struct import_ctx *ctx, bool final)
{
	if (!ctx->progress)
		return;
	gint64 now = g_get_monotonic_time();
	if (!final && now - ctx->last_progress < 100000)
		return;
	ctx->last_progress = now;
	unsigned total = MAX(ctx->total_known, ctx->done);
	unsigned width = 30, fill = total ? (unsigned)((guint64)ctx->done * width / total) : 0;
	char bar[64];
	for (unsigned i = 0; i < width; i++)
		bar[i] = i < fill ? '#' : '.';
	bar[width] = '\0';
	fprintf(stderr, "\rimport: [%s] %u/%u messages, %.1f MB", bar, ctx->done, total,
		ctx->bytes / 1e6);
	if (final)
		fputc('\n', stderr);
	fflush(stderr);
}

static void
import_job_run(gpointer data, gpointer user_data)
{
	struct import_job *job = data;
	struct import_ctx *ctx = user_data;
	struct store_arrival arrival = {
		.source = ctx->source,
		.source_name = job->name,
	};
	struct store_receipt receipt;
	char *error = NULL;
	int r = intake_accept(ctx->intake, &arrival, job->raw, &receipt, &error);

	if (r < 0) {
		fprintf(stderr, "snapkeep: import: %s: %s\n", job->name, error);
		g_free(error);
	}
	g_mutex_lock(&ctx->lock);
	ctx->inflight--;
	ctx->done++;
	ctx->bytes += g_bytes_get_size(job->raw);
	if (r < 0)
		ctx->failed++;
	import_progress(ctx, false);
	g_cond_broadcast(&ctx->cond);
	g_mutex_unlock(&ctx->lock);
	g_bytes_unref(job->raw);
	g_free(job->name);
	g_free(job);
}

static void
import_submit(struct import_ctx *ctx, GThreadPool *pool, GBytes *raw, const char *name)
{
	struct import_job *job = g_new0(struct import_job, 1);
	job->raw = raw;
	job->name = g_strdup(name);
	g_mutex_lock(&ctx->lock);
	while (ctx->inflight >= ctx->jobs_max)
		g_cond_wait(&ctx->cond, &ctx->lock);
	ctx->inflight++;
	g_mutex_unlock(&ctx->lock);
	g_thread_pool_push(pool, job, NULL);
}

static void
import_unreadable(struct import_ctx *ctx, const char *path, const char *why)
{
	fprintf(stderr, "snapkeep: import: %s: %s\n", path, why);
	g_mutex_lock(&ctx->lock);
	ctx->unreadable++;
	g_mutex_unlock(&ctx->lock);
}

/* An mbox file: GMime splits it; each message's bytes are taken from the
 * start of its headers to the end of its body, as they are in the file. */
static void
import_mbox(struct import_ctx *ctx, GThreadPool *pool, const char *path, GMappedFile *map)
{
	const char *data = g_mapped_file_get_contents(map);
	gsize len = g_mapped_file_get_length(map);
	GMimeStream *stream = g_mime_stream_mem_new_with_buffer(data, len);
	GMimeParser *parser = g_mime_parser_new_with_stream(stream);
	unsigned n = 0;

	g_mime_parser_set_format(parser, GMIME_FORMAT_MBOX);
	while (!g_mime_parser_eos(parser)) {
		GMimeMessage *msg = g_mime_parser_construct_message(parser, NULL);
		if (msg == NULL)
			break;
		gint64 begin = g_mime_parser_get_headers_begin(parser);
		gint64 end = g_mime_parser_tell(parser);
		g_object_unref(msg);
		if (begin < 0 || end <= begin || (gsize)end > len)
			continue;
		/* The blank line before the next "From " belongs to the mbox. */
		gsize stop = (gsize)end;
		if (stop < len && stop > (gsize)begin && data[stop - 1] == '\n' &&
		    stop >= 2 && data[stop - 2] == '\n')
			stop--;
		char *name = g_strdup_printf("%s#%u", path, ++n);
		import_submit(ctx, pool, g_bytes_new(data + begin, stop - (gsize)begin), name);
		g_free(name);
	}
	g_object_unref(parser);
	g_object_unref(stream);
	if (n == 0)
		import_unreadable(ctx, path, "no message found in mbox file");
}

/* Whether data starts like a message or an mbox: a header field ("Name:")
 * or a "From " line.  Used for files found by walking a directory, so that
 * notes, JSON or scripts beside the mails are not archived as messages. */
static bool
import_looks_like_mail(const char *data, gsize len)
{
	gsize i;
	if (len >= 5 && memcmp(data, "From ", 5) == 0)
		return true;
	for (i = 0; i < len && i < 998; i++) {
		unsigned char c = (unsigned char)data[i];
		if (c == ':')
			return i > 0;
		if (c <= 32 || c >= 127)
			return false;
	}
	return false;
}

static void
import_file(struct import_ctx *ctx, GThreadPool *pool, const char *path, bool explicit)
{
	GError *gerr = NULL;
	GMappedFile *map = g_mapped_file_new(path, FALSE, &gerr);

	if (map == NULL) {
		import_unreadable(ctx, path, gerr->message);
		g_error_free(gerr);
		return;
	}
	const char *data = g_mapped_file_get_contents(map);
	gsize len = g_mapped_file_get_length(map);
	if (!explicit && !import_looks_like_mail(data, len)) {
		g_mutex_lock(&ctx->lock);
		ctx->skipped++;
		g_mutex_unlock(&ctx->lock);
	} else if (len >= 5 && memcmp(data, "From ", 5) == 0) {
		import_mbox(ctx, pool, path, map);
	} else if (len == 0) {
		import_unreadable(ctx, path, "empty file");
	} else {
		import_submit(ctx, pool, g_mapped_file_get_bytes(map), path);
	}
	g_mapped_file_unref(map);
}

static gint
import_name_cmp(gconstpointer a, gconstpointer b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Collects the files under path; names of files met inside a directory
 * get a leading '\1' so import_file knows they were not named explicitly. */
static void
import_collect(const char *path, GPtrArray *files, unsigned depth)
{
	GDir *dir;
	const char *name;

	if (depth > 32)
		return;
	if (!g_file_test(path, G_FILE_TEST_IS_DIR)) {
		g_ptr_array_add(files, depth == 0 ? g_strdup(path) : g_strconcat("\1", path, NULL));
		return;
	}
	dir = g_dir_open(path, 0, NULL);
	if (dir == NULL) {
		/* Reported as unreadable by import_file. */
		g_ptr_array_add(files, g_strdup(path));
		return;
	}
	GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
	while ((name = g_dir_read_name(dir)) != NULL) {
		/* Hidden files; a Maildir's tmp/ holds messages still being written. */
		if (name[0] == '.' || strcmp(name, "tmp") == 0)
			continue;
		g_ptr_array_add(names, g_strdup(name));
	}
	g_dir_close(dir);
	g_ptr_array_sort(names, import_name_cmp);
	for (guint i = 0; i < names->len; i++) {
		char *child = g_build_filename(path, g_ptr_array_index(names, i), NULL);
		if (g_file_test(child, G_FILE_TEST_IS_DIR) ||
		    g_file_test(child, G_FILE_TEST_IS_REGULAR))
			import_collect(child, files, depth + 1);
		g_free(child);
	}
	g_ptr_array_free(names, TRUE);
}

/* Reads one message from stdin; NULL with *too_large_r set when it exceeds
 * max (a permanent error for the MTA), else a read error (temporary). */
static GBytes *
import_read_stdin(size_t max, bool *too_large_r, char **error_r)
{
	GByteArray *buf = g_byte_array_new();
	unsigned char chunk[65536];
	for (;;) {
		ssize_t n = read(STDIN_FILENO, chunk, sizeof(chunk));
		if (n == 0)
			break;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			*error_r = g_strdup_printf("stdin: %s", g_strerror(errno));
			g_byte_array_free(buf, TRUE);
			return NULL;
		}
		if (buf->len + (size_t)n > max) {
			*too_large_r = true;
			*error_r = g_strdup_printf("stdin: message larger than %zu bytes", max);
			g_byte_array_free(buf, TRUE);
			return NULL;
		}
		g_byte_array_append(buf, chunk, (guint)n);
	}
	return g_byte_array_free_to_bytes(buf);
}

int
cli_import(int argc, char **argv)
{
	g_autofree gchar *db = NULL;
	gint jobs = 16, workers = 0, parse_timeout = 0, parse_cpu = 0, parse_memory = 0;
	gboolean quiet = FALSE, no_progress = FALSE;
	gint64 max_size = 64 * 1024 * 1024;
	GOptionEntry entries[] = {
		{ "db", 'd', 0, G_OPTION_ARG_FILENAME, &db,
		  "database file or postgresql:// URL (default snapkeep.db)", "FILE|URL" },
		{ "jobs", 'j', 0, G_OPTION_ARG_INT, &jobs, "messages accepted at once (default 16)", "N" },
		{ "parse-workers", 0, 0, G_OPTION_ARG_INT, &workers, "parse worker processes (default: CPUs)", "N" },
		{ "parse-timeout", 0, 0, G_OPTION_ARG_INT, &parse_timeout, "wall-clock limit per message in ms (default 30000)", "MS" },
		{ "parse-cpu", 0, 0, G_OPTION_ARG_INT, &parse_cpu, "CPU limit per message in s (default 20)", "S" },
		{ "parse-memory", 0, 0, G_OPTION_ARG_INT, &parse_memory, "address-space limit of a worker in MB (default 1024)", "MB" },
		{ "max-message-size", 0, 0, G_OPTION_ARG_INT64, &max_size, "largest message read from stdin (bytes)", "N" },
		{ "no-progress", 0, 0, G_OPTION_ARG_NONE, &no_progress, "no progress bar", NULL },
		{ "quiet", 'q', 0, G_OPTION_ARG_NONE, &quiet, "no summary line", NULL },
		{ NULL, 0, 0, 0, NULL, NULL, NULL },
	};
	GOptionContext *octx = g_option_context_new("PATH... - import snapshot mails (.eml, dirs, Maildir, mbox, - for stdin)");
	GError *gerr = NULL;
	struct import_ctx ctx = { 0 };
	struct intake_settings is;
	char *error = NULL;
	int ret = CLI_EX_OK;

	g_option_context_add_main_entries(octx, entries, NULL);
	g_option_context_add_group(octx, poll_cli_option_group()); /* mailbox urls: src/poll/ */
	if (!g_option_context_parse(octx, &argc, &argv, &gerr)) {
		fprintf(stderr, "snapkeep import: %s\n", gerr->message);
		g_error_free(gerr);
		g_option_context_free(octx);
		return CLI_EX_USAGE;
	}
	g_option_context_free(octx);
	if (argc < 2) {
		fprintf(stderr, "snapkeep import: give at least one PATH (or - for stdin)\n");
		return CLI_EX_USAGE;
	}
	if (jobs < 1)
		jobs = 1;

	GPtrArray *files = g_ptr_array_new_with_free_func(g_free);
	bool use_stdin = false, stdin_too_large = false;
	GPtrArray *urls = g_ptr_array_new(); /* imap://, pop3s://, maildir:... (src/poll/) */
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-") == 0) {
			use_stdin = true;
			continue;
		}
		if (poll_cli_is_url(argv[i])) {
			g_ptr_array_add(urls, argv[i]);
			continue;
		}
		if (!g_file_test(argv[i], G_FILE_TEST_EXISTS)) {
			fprintf(stderr, "snapkeep import: %s: no such file or directory\n", argv[i]);
			g_ptr_array_free(files, TRUE);
			g_ptr_array_free(urls, TRUE);
			return CLI_EX_NOINPUT;
		}
		import_collect(argv[i], files, 0);
	}

	intake_settings_default(&is);
	is.db_path = db != NULL ? db : cli_default_db();
	is.parse_workers = workers > 0 ? (unsigned)workers : MAX(1u, g_get_num_processors());
	is.mime.max_message_size = (size_t)max_size;
	if (parse_timeout > 0)
		is.parse_timeout_ms = (unsigned)parse_timeout;
	if (parse_cpu > 0)
		is.parse_cpu_seconds = (unsigned)parse_cpu;
	if (parse_memory > 0)
		is.parse_memory_mb = (unsigned)parse_memory;
	gint64 started = g_get_monotonic_time();
	if (intake_open(&is, &ctx.intake, &error) < 0) {
		fprintf(stderr, "snapkeep import: %s\n", error);
		g_free(error);
		g_ptr_array_free(files, TRUE);
		g_ptr_array_free(urls, TRUE);
		return CLI_EX_TEMPFAIL;
	}
	struct intake_stats before;
	intake_get_stats(ctx.intake, &before);

	g_mutex_init(&ctx.lock);
	g_cond_init(&ctx.cond);
	ctx.jobs_max = (unsigned)jobs;
	ctx.total_known = files->len + (use_stdin ? 1 : 0);
	ctx.progress = !no_progress && isatty(STDERR_FILENO) && ctx.total_known > 1;
	GThreadPool *pool = g_thread_pool_new(import_job_run, &ctx, jobs, FALSE, NULL);

	if (use_stdin) {
		ctx.source = "stdin";
		GBytes *raw = import_read_stdin((size_t)max_size, &stdin_too_large, &error);
		if (raw == NULL) {
			fprintf(stderr, "snapkeep import: %s\n", error);
			g_clear_pointer(&error, g_free);
			ctx.unreadable++;
		} else if (g_bytes_get_size(raw) == 0) {
			fprintf(stderr, "snapkeep import: stdin: empty message ignored\n");
			g_bytes_unref(raw);
		} else {
			import_submit(&ctx, pool, raw, "-");
		}
		/* Wait for it before files are given another source name. */
		g_mutex_lock(&ctx.lock);
		while (ctx.inflight > 0)
			g_cond_wait(&ctx.cond, &ctx.lock);
		g_mutex_unlock(&ctx.lock);
	}
	ctx.source = "file";
	for (guint i = 0; i < files->len; i++) {
		const char *f = g_ptr_array_index(files, i);
		bool explicit = f[0] != '\1';
		import_file(&ctx, pool, explicit ? f : f + 1, explicit);
	}
	g_thread_pool_free(pool, FALSE, TRUE);
	import_progress(&ctx, true);

	/* Mailbox urls: one pass each through src/poll/, which acts on a
	 * message (move, flag, delete) only after the funnel committed it. */
	for (guint i = 0; i < urls->len; i++) {
		const char *url = g_ptr_array_index(urls, i);
		if (poll_cli_import(ctx.intake, is.db_path, url, !no_progress, quiet, &error) < 0) {
			fprintf(stderr, "snapkeep import: %s: %s\n", url, error);
			g_clear_pointer(&error, g_free);
			ctx.failed++;
		}
	}
	g_ptr_array_free(urls, TRUE);

	intake_drain(ctx.intake, 0);
	struct intake_stats st;
	intake_get_stats(ctx.intake, &st);
	intake_free(&ctx.intake);
	double secs = (g_get_monotonic_time() - started) / 1e6;

	if (!quiet)
		printf("import: %llu messages (%.1f MB from files) in %.2f s (%.1f msg/s): %llu stored, "
		       "%llu duplicate, %llu not-snapshot, %llu failed, %u unreadable, %u not accepted, "
		       "%u skipped (not mail)\n",
		       (unsigned long long)(st.accepted - before.accepted), ctx.bytes / 1e6, secs,
		       secs > 0 ? (st.accepted - before.accepted) / secs : 0.0,
		       (unsigned long long)(st.parsed_stored - before.parsed_stored),
		       (unsigned long long)(st.duplicates - before.duplicates +
					    st.parsed_duplicate - before.parsed_duplicate),
		       (unsigned long long)(st.parsed_not_snapshot - before.parsed_not_snapshot),
		       (unsigned long long)(st.parsed_failed - before.parsed_failed),
		       ctx.unreadable, ctx.failed, ctx.skipped);
	if (ctx.failed > 0)
		ret = CLI_EX_TEMPFAIL;
	else if (stdin_too_large)
		ret = CLI_EX_DATAERR;
	else if (ctx.unreadable > 0)
		ret = use_stdin && files->len == 0 ? CLI_EX_TEMPFAIL : CLI_EX_DATAERR;
	g_mutex_clear(&ctx.lock);
	g_cond_clear(&ctx.cond);
	g_ptr_array_free(files, TRUE);
	return ret;
}
