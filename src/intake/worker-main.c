/* snapkeep-parse: the parse worker.  Reads framed raw messages on stdin,
 * answers framed results on stdout (see worker.h), forever, until EOF.
 *
 * It runs the hostile-input code (GMime, libxml2) away from the daemon:
 * an address-space limit is set once (--memory-mb), a CPU-time limit anew
 * for every message (--cpu-seconds: SIGXCPU ends the process), and the
 * parent kills it when a message takes longer than its wall-clock limit.
 * It opens no files and no sockets.  Exit status 3 means out of memory. */
#include "config.h"

#include <errno.h>
#include <glib.h>
#include <json-glib/json-glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "intake/intake.h"
#include "intake/worker.h"
#include "util/log.h"

static gint64 opt_cpu = 20, opt_mem = 1024, opt_msg = 0, opt_hdr = 0, opt_xml = 0, opt_strlen = 0;
static gint opt_depth = 0, opt_parts = 0, opt_xml_depth = 0, opt_events = 0, opt_nice = 0;

static void
worker_set_cpu_limit(void)
{
	struct rusage ru;
	struct rlimit rl;

	if (opt_cpu <= 0 || getrusage(RUSAGE_SELF, &ru) < 0)
		return;
	rlim_t used = (rlim_t)ru.ru_utime.tv_sec + (rlim_t)ru.ru_stime.tv_sec + 1;
	if (getrlimit(RLIMIT_CPU, &rl) < 0)
		return;
	rl.rlim_cur = used + (rlim_t)opt_cpu;
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_cur > rl.rlim_max)
		rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_CPU, &rl);
}

static void
worker_set_memory_limit(void)
{
#if defined(__SANITIZE_ADDRESS__)
	/* AddressSanitizer reserves terabytes of address space. */
	return;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
	return;
#endif
#endif
	if (opt_mem <= 0)
		return;
	struct rlimit rl = { .rlim_cur = (rlim_t)opt_mem * 1024 * 1024,
			     .rlim_max = (rlim_t)opt_mem * 1024 * 1024 };
	setrlimit(RLIMIT_AS, &rl);
}

static void
worker_add_hint(JsonBuilder *b, const char *name, const char *value)
{
	if (value == NULL)
		return;
	json_builder_set_member_name(b, name);
	json_builder_add_string_value(b, value);
}

static int
worker_answer(enum store_outcome outcome, const char *detail, const struct mime_result *hints,
	      const struct snapshot *snap)
{
	JsonBuilder *b = json_builder_new();
	json_builder_begin_object(b);
	json_builder_set_member_name(b, "outcome");
	json_builder_add_string_value(b, store_outcome_name(outcome));
	worker_add_hint(b, "detail", detail);
	json_builder_set_member_name(b, "hints");
	json_builder_begin_object(b);
	worker_add_hint(b, "subject", hints->subject);
	worker_add_hint(b, "from", hints->from);
	worker_add_hint(b, "date_utc", hints->date_utc);
	worker_add_hint(b, "message_id", hints->message_id);
	worker_add_hint(b, "subject_serial", hints->subject_serial);
	worker_add_hint(b, "subject_time_utc", hints->subject_time_utc);
	json_builder_end_object(b);
	json_builder_end_object(b);
	JsonGenerator *gen = json_generator_new();
	JsonNode *root = json_builder_get_root(b);
	json_generator_set_root(gen, root);
	gsize meta_len = 0;
	gchar *meta = json_generator_to_data(gen, &meta_len);
	json_node_unref(root);
	g_object_unref(gen);
	g_object_unref(b);

	char *snap_json = snap != NULL ? snapshot_to_json(snap) : NULL;
	int r = worker_write_frame(STDOUT_FILENO, meta, meta_len);
	if (r == 0)
		r = worker_write_frame(STDOUT_FILENO, snap_json, snap_json ? strlen(snap_json) : 0);
	g_free(meta);
	g_free(snap_json);
	return r;
}

int
main(int argc, char **argv)
{
	GOptionEntry entries[] = {
		{ "cpu-seconds", 0, 0, G_OPTION_ARG_INT64, &opt_cpu, "CPU seconds per message", "N" },
		{ "memory-mb", 0, 0, G_OPTION_ARG_INT64, &opt_mem, "address space limit", "MB" },
		{ "nice", 0, 0, G_OPTION_ARG_INT, &opt_nice, "scheduling niceness", "N" },
		{ "max-message-size", 0, 0, G_OPTION_ARG_INT64, &opt_msg, "bytes", "N" },
		{ "max-header-size", 0, 0, G_OPTION_ARG_INT64, &opt_hdr, "bytes", "N" },
		{ "max-mime-depth", 0, 0, G_OPTION_ARG_INT, &opt_depth, "levels", "N" },
		{ "max-mime-parts", 0, 0, G_OPTION_ARG_INT, &opt_parts, "parts", "N" },
		{ "max-xml-size", 0, 0, G_OPTION_ARG_INT64, &opt_xml, "bytes", "N" },
		{ "max-xml-depth", 0, 0, G_OPTION_ARG_INT, &opt_xml_depth, "levels", "N" },
		{ "max-string-length", 0, 0, G_OPTION_ARG_INT64, &opt_strlen, "bytes", "N" },
		{ "max-events", 0, 0, G_OPTION_ARG_INT, &opt_events, "entries", "N" },
		{ NULL, 0, 0, 0, NULL, NULL, NULL },
	};
	GOptionContext *ctx = g_option_context_new("- snapkeep parse worker (started by the funnel)");
	GError *gerr = NULL;
	struct mime_limits mime;
	struct devxml_limits xml;

	log_init("snapkeep-parse", LOG_LEVEL_WARN);
	g_option_context_add_main_entries(ctx, entries, NULL);
	if (!g_option_context_parse(ctx, &argc, &argv, &gerr)) {
		log_errorx("parse: %s", gerr->message);
		g_error_free(gerr);
		g_option_context_free(ctx);
		return 2;
	}
	g_option_context_free(ctx);
	if (isatty(STDIN_FILENO)) {
		log_errorx("parse: this program is started by snapkeep and snapkeepd, not by hand");
		return 2;
	}

	mime_limits_default(&mime);
	devxml_limits_default(&xml);
	if (opt_msg > 0)
		mime.max_message_size = (size_t)opt_msg;
	if (opt_hdr > 0)
		mime.max_header_size = (size_t)opt_hdr;
	if (opt_depth > 0)
		mime.max_depth = (unsigned)opt_depth;
	if (opt_parts > 0)
		mime.max_parts = (unsigned)opt_parts;
	if (opt_xml > 0)
		mime.max_xml_size = xml.max_xml_size = (size_t)opt_xml;
	if (opt_xml_depth > 0)
		xml.max_depth = (unsigned)opt_xml_depth;
	if (opt_strlen > 0)
		xml.max_string_len = (size_t)opt_strlen;
	if (opt_events > 0)
		xml.max_events = (unsigned)opt_events;

	worker_set_memory_limit();
	if (opt_nice > 0 && setpriority(PRIO_PROCESS, 0, MIN(opt_nice, 19)) < 0)
		log_warn("parse: setpriority");
	mime_global_init();
	devxml_global_init();

	GByteArray *buf = g_byte_array_new();
	for (;;) {
		if (worker_read_frame(STDIN_FILENO, buf, WORKER_FRAME_MAX) < 0)
			break; /* EOF: the parent is done with us */
		worker_set_cpu_limit();

		struct mime_result hints;
		struct snapshot *snap = NULL;
		char *detail = NULL;
		enum store_outcome outcome =
		    intake_parse_message(buf->data, buf->len, &mime, &xml, &snap, &hints, &detail);
		int r = worker_answer(outcome, detail, &hints, snap);
		snapshot_free(&snap);
		mime_result_clear(&hints);
		g_free(detail);
		if (r < 0)
			break;
	}
	g_byte_array_free(buf, TRUE);
	return 0;
}
