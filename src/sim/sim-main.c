/* sim-main.c: snapkeep-sim, a fleet of virtual HP printers that sends
 * AutoSend snapshot mails like the real ones (see man/snapkeep-sim.1).
 *
 * Modes: backfill (--start DATE --days N: history replayed as fast as the
 * receiver accepts it), accelerated real time (--speed X), and --test (one
 * snapshot from every device now).  Mails go to --out DIR, --maildir DIR or
 * --smtp URL; --manifest FILE gets one JSON line per mail with what it
 * carries and its outcome.  Deterministic for a given --seed: all choices
 * come from GRand instances seeded from it, never from the clock (only
 * --test and a backfill without --start read the clock, for the start). */
#include "config.h"

#include "sim/sim-mail.h"
#include "sim/sim-send.h"
#include "sim/sim.h"
#include "util/log.h"
#include "util/sktime.h"

#include <errno.h>
#include <gmime/gmime.h>
#include <libxml/parser.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct opts {
	gint devices;
	gint64 seed;
	char *start;
	gint days;
	double speed;
	gboolean test;
	char *schedule;
	char *dialect;
	char **templates;
	gboolean detailed;
	char *variants;
	char *faults;
	double fault_rate;
	gint64 clock_skew;
	gint oversize_mb;
	char *out, *maildir, *smtp;
	char **to;
	char *from_domain, *forward_from;
	char *user, *password, *auth;
	gboolean starttls, insecure;
	char *cacert;
	gint connections, max_attempts, retry_base_ms, timeout_s, slow_bps;
	char *manifest;
	gint max_mails;
	gint log_capacity, job_log_capacity;
	gboolean quiet;
	char *log_level;
};

struct run {
	struct opts *o;
	struct sim_fleet *fleet;
	struct sim_sink *sink;
	struct sim_mail_settings mail;
	struct sim_variant variant;
	bool variant_mix;
	enum sim_fault *faults;
	unsigned n_faults, fault_next;
	double fault_rate;
	GRand *rand; /* run-level choices: variants, faults */
	FILE *manifest;
	unsigned mails;
	unsigned snapshots;
	uint64_t xml_bytes, mail_bytes;
	uint64_t xml_fs_bytes, xml_legacy_bytes;
	unsigned n_fs, n_legacy;
	size_t xml_max;
	int64_t gen_us;
	bool warned_smtp_only;
};

static void
on_done(struct sim_outgoing *out, gpointer data)
{
	struct run *run = data;
	JsonObject *obj = out->user;
	static const char *const status[] = {"pending", "sent", "failed", "dropped"};
	if (obj == NULL || run->manifest == NULL)
		return;
	JsonObject *d = json_object_new();
	json_object_set_string_member(d, "status", status[out->status]);
	json_object_set_int_member(d, "attempts", out->attempts);
	if (out->reply_code != 0)
		json_object_set_int_member(d, "reply_code", out->reply_code);
	if (out->reply != NULL)
		json_object_set_string_member(d, "reply", out->reply);
	if (out->path != NULL)
		json_object_set_string_member(d, "path", out->path);
	json_object_set_double_member(d, "latency_ms", out->latency_ms);
	json_object_set_object_member(obj, "delivery", d);
	char *line = sim_manifest_line(obj);
	fputs(line, run->manifest);
	g_free(line);
}

static void
send_mail(struct run *run, const struct sim_device *dev, struct sim_mail *mail, JsonObject *obj,
	  enum sim_fault fault)
{
	char name[64];
	g_snprintf(name, sizeof(name), "%06u-%s", ++run->mails, dev->serial);
	struct sim_outgoing *out = sim_outgoing_new(mail->raw, mail->from, name);
	out->slow = fault == SIM_FAULT_SLOW_SENDER;
	out->drop = fault == SIM_FAULT_DROP_IN_DATA;
	if (obj != NULL) {
		json_object_set_int_member(obj, "mail", run->mails);
		out->user = json_object_ref(obj);
		out->user_free = (GDestroyNotify)json_object_unref;
	}
	run->mail_bytes += g_bytes_get_size(mail->raw);
	sim_sink_submit(run->sink, out);
}

static enum sim_fault
pick_fault(struct run *run)
{
	if (run->n_faults == 0 || run->fault_rate <= 0)
		return SIM_FAULT_NONE;
	if (g_rand_double(run->rand) >= run->fault_rate)
		return SIM_FAULT_NONE;
	for (unsigned tries = 0; tries < run->n_faults; tries++) {
		enum sim_fault f = run->faults[run->fault_next++ % run->n_faults];
		if (sim_fault_smtp_only(f) && run->o->smtp == NULL) {
			if (!run->warned_smtp_only)
				log_warnx(
				    "sim: event=fault_skipped fault=%s reason=\"needs --smtp\"",
				    sim_fault_name(f));
			run->warned_smtp_only = true;
			continue;
		}
		return f;
	}
	return SIM_FAULT_NONE;
}

static void
emit_snapshot(struct run *run, struct sim_device *dev, int64_t t)
{
	int64_t t0 = sk_time_now_us();
	struct sim_variant v = run->variant;
	enum sim_fault fault = pick_fault(run);
	int64_t taken_ms = t * 1000 + g_rand_int_range(dev->rand, 0, 1000);
	int64_t skew = 0;

	if (run->variant_mix)
		sim_variant_random(run->rand, &v);
	if (run->o->smtp != NULL)
		v.lf = false; /* SMTP carries CRLF; bare LF is a stored-file variant */
	if (fault == SIM_FAULT_COUNTER_RESET)
		sim_device_counter_reset(dev, t);
	if (fault == SIM_FAULT_CLOCK_SKEW) {
		skew = run->o->clock_skew != 0
			   ? run->o->clock_skew
			   : (g_rand_boolean(run->rand) ? 1 : -1) *
				 (int64_t)g_rand_int_range(run->rand, 3600, 400 * 86400);
	}
	struct sim_doc_options doc = {
	    .detailed_errors = run->o->detailed,
	    .force_korean = v.nonascii,
	    .clock_skew = skew,
	};
	GBytes *xml = sim_device_write_xml(dev, taken_ms, &doc);
	if (xml == NULL) {
		log_errorx("sim: event=write_failed serial=%s", dev->serial);
		return;
	}
	gsize xml_len = g_bytes_get_size(xml);
	run->xml_bytes += xml_len;
	if (xml_len > run->xml_max)
		run->xml_max = xml_len;
	if (dev->model->dialect == SNAPSHOT_DIALECT_LEGACY) {
		run->xml_legacy_bytes += xml_len;
		run->n_legacy++;
	} else {
		run->xml_fs_bytes += xml_len;
		run->n_fs++;
	}
	GBytes *doc_bytes = sim_fault_apply_xml(xml, fault, run->rand);
	int64_t send_ms = taken_ms + skew * 1000;

	if (fault == SIM_FAULT_ALERT_MAIL) {
		struct sim_mail *alert =
		    sim_mail_alert(dev, send_ms - 60000, dev->mails++, &run->mail);
		JsonObject *aobj = sim_manifest_object(dev, taken_ms, skew, &v,
						       SIM_FAULT_ALERT_MAIL, alert, 0, G_MAXINT64);
		json_object_set_string_member(aobj, "kind", "alert");
		send_mail(run, dev, alert, aobj, SIM_FAULT_NONE);
		json_object_unref(aobj);
		sim_mail_free(&alert);
	}
	enum sim_fault first =
	    (fault == SIM_FAULT_ALERT_MAIL || fault == SIM_FAULT_DUPLICATE_RESEND ||
	     fault == SIM_FAULT_SAME_SNAPSHOT_NEW_MAIL)
		? SIM_FAULT_NONE
		: fault;
	struct sim_mail *mail =
	    sim_mail_snapshot(dev, send_ms, doc_bytes, &v, first, dev->mails++, &run->mail);
	JsonObject *obj =
	    sim_manifest_object(dev, taken_ms, skew, &v, first, mail, xml_len, dev->last_sent_seq);
	json_object_set_string_member(obj, "kind", "snapshot");
	run->gen_us += sk_time_now_us() - t0;
	send_mail(run, dev, mail, obj, first);
	json_object_unref(obj);

	if (fault == SIM_FAULT_DUPLICATE_RESEND || fault == SIM_FAULT_SAME_SNAPSHOT_NEW_MAIL) {
		struct sim_mail *again =
		    fault == SIM_FAULT_DUPLICATE_RESEND
			? NULL
			: sim_mail_snapshot(dev, send_ms + 3600 * 1000, doc_bytes, &v,
					    SIM_FAULT_NONE, dev->mails++, &run->mail);
		struct sim_mail *m2 = again != NULL ? again : mail;
		JsonObject *o2 = sim_manifest_object(dev, taken_ms, skew, &v, fault, m2, xml_len,
						     dev->last_sent_seq);
		json_object_set_string_member(o2, "kind", "snapshot");
		send_mail(run, dev, m2, o2, SIM_FAULT_NONE);
		json_object_unref(o2);
		sim_mail_free(&again);
	}
	/* Events up to now have been reported. */
	for (unsigned l = 0; l < 2; l++) {
		const struct sim_event *ev = sim_ring_get(&dev->logs[l], 0);
		if (ev != NULL && ev->seq > dev->last_sent_seq)
			dev->last_sent_seq = ev->seq;
	}
	run->snapshots++;
	sim_mail_free(&mail);
	g_bytes_unref(doc_bytes);
	g_bytes_unref(xml);
}

/* ---- the schedule queue ------------------------------------------------- */

struct due {
	int64_t t;
	struct sim_device *dev;
};

static gint
due_cmp(gconstpointer a, gconstpointer b, gpointer data)
{
	const struct due *x = a, *y = b;
	(void)data;
	if (x->t != y->t)
		return x->t < y->t ? -1 : 1;
	return x->dev->index < y->dev->index ? -1 : x->dev->index > y->dev->index ? 1 : 0;
}

static void
queue_device(GSequence *q, struct sim_device *dev, int64_t horizon)
{
	int64_t t = sim_device_next_due(dev, horizon);
	if (t < 0)
		return;
	struct due *d = g_new(struct due, 1);
	d->t = t;
	d->dev = dev;
	g_sequence_insert_sorted(q, d, due_cmp, NULL);
}

static void
run_schedule(struct run *run, int64_t start, int64_t end)
{
	GSequence *q = g_sequence_new(g_free);
	int64_t real0 = sk_time_now_us();
	for (unsigned i = 0; i < run->fleet->devices->len; i++)
		queue_device(q, g_ptr_array_index(run->fleet->devices, i), end);
	while (g_sequence_get_length(q) > 0) {
		if (run->o->max_mails > 0 && run->snapshots >= (unsigned)run->o->max_mails)
			break;
		GSequenceIter *it = g_sequence_get_begin_iter(q);
		struct due *d = g_sequence_get(it);
		int64_t t = d->t;
		struct sim_device *dev = d->dev;
		g_sequence_remove(it);
		if (run->o->speed > 0) {
			/* Accelerated real time: wait until the simulated moment. */
			int64_t target =
			    real0 + (int64_t)((double)(t - start) * 1e6 / run->o->speed);
			for (;;) {
				int64_t now = sk_time_now_us();
				if (now >= target)
					break;
				int64_t wait_ms = (target - now) / 1000 + 1;
				if (run->o->smtp != NULL)
					sim_sink_pump(run->sink,
						      wait_ms > 200 ? 200 : (int)wait_ms);
				else
					g_usleep((gulong)((wait_ms > 200 ? 200 : wait_ms) * 1000));
			}
		}
		sim_device_advance(dev, t);
		emit_snapshot(run, dev, t);
		sim_device_snapshot_taken(dev);
		queue_device(q, dev, end);
	}
	g_sequence_free(q);
}

/* ---- options ------------------------------------------------------------ */

static int
parse_start(const char *text, int64_t *t_r)
{
	char utc[SK_UTC_SIZE];
	return sk_time_parse_iso8601(text, utc, t_r, NULL, NULL);
}

static int
setup_faults(struct run *run, char **error_r)
{
	const char *list = run->o->faults;
	if (list == NULL)
		return 0;
	char **items = g_strsplit(list, ",", -1);
	GArray *a = g_array_new(FALSE, FALSE, sizeof(enum sim_fault));
	int ret = 0;
	for (char **p = items; *p != NULL; p++) {
		char *s = g_strstrip(*p);
		enum sim_fault f;
		if (*s == '\0')
			continue;
		if (strcmp(s, "all") == 0) {
			for (unsigned i = 1; i < SIM_FAULT_COUNT; i++) {
				f = (enum sim_fault)i;
				g_array_append_val(a, f);
			}
			continue;
		}
		if (sim_fault_parse(s, &f) < 0 || f == SIM_FAULT_NONE) {
			*error_r = g_strdup_printf("unknown fault '%s'", s);
			ret = -1;
			break;
		}
		g_array_append_val(a, f);
	}
	g_strfreev(items);
	run->n_faults = a->len;
	run->faults = (enum sim_fault *)(void *)g_array_free(a, FALSE);
	run->fault_rate = run->o->fault_rate >= 0 ? run->o->fault_rate : 0.05;
	return ret;
}

int
main(int argc, char **argv)
{
	struct opts o = {
	    .devices = 10,
	    .seed = 1,
	    .days = 30,
	    .fault_rate = -1,
	    .oversize_mb = 72,
	    .connections = 4,
	    .max_attempts = 6,
	    .retry_base_ms = 500,
	    .timeout_s = 600,
	    .slow_bps = 256,
	    .log_capacity = SIM_LOG_CAPACITY_DEFAULT,
	    .job_log_capacity = SIM_JOB_LOG_CAPACITY_DEFAULT,
	};
	GOptionEntry entries[] = {
	    {"devices", 'n', 0, G_OPTION_ARG_INT, &o.devices, "Number of devices (10)", "N"},
	    {"seed", 's', 0, G_OPTION_ARG_INT64, &o.seed, "Seed: same seed, same mails (1)", "N"},
	    {"start", 0, 0, G_OPTION_ARG_STRING, &o.start,
	     "Simulated start (YYYY-MM-DD or ISO 8601)", "DATE"},
	    {"days", 'd', 0, G_OPTION_ARG_INT, &o.days, "Days to simulate (30)", "N"},
	    {"speed", 0, 0, G_OPTION_ARG_DOUBLE, &o.speed, "Run in real time, X times faster", "X"},
	    {"test", 0, 0, G_OPTION_ARG_NONE, &o.test,
	     "One snapshot from every device now (EWS Test button)", NULL},
	    {"schedule", 0, 0, G_OPTION_ARG_STRING, &o.schedule,
	     "AutoSend for all devices: Nd, Nw, Nm or Np (default: a mix)", "SPEC"},
	    {"dialect", 0, 0, G_OPTION_ARG_STRING, &o.dialect, "Only futuresmart or legacy models",
	     "NAME"},
	    {"template", 't', 0, G_OPTION_ARG_FILENAME_ARRAY, &o.templates,
	     "Real Device.xml or snapshot mail to imitate (repeatable)", "FILE"},
	    {"detailed-errors", 0, 0, G_OPTION_ARG_NONE, &o.detailed,
	     "Add detailed error information (2-3 MB documents)", NULL},
	    {"variants", 0, 0, G_OPTION_ARG_STRING, &o.variants,
	     "Mail variants: mix, or a list of base64 qp 7bit text/xml application/xml "
	     "application/octet-stream forward lf nonascii",
	     "LIST"},
	    {"faults", 0, 0, G_OPTION_ARG_STRING, &o.faults,
	     "Faults to inject (comma list, or all)", "LIST"},
	    {"fault-rate", 0, 0, G_OPTION_ARG_DOUBLE, &o.fault_rate,
	     "Share of snapshots with a fault (0.05 with --faults)", "R"},
	    {"clock-skew", 0, 0, G_OPTION_ARG_INT64, &o.clock_skew,
	     "Seconds of skew for the clock_skew fault (default: random)", "S"},
	    {"oversize-mb", 0, 0, G_OPTION_ARG_INT, &o.oversize_mb,
	     "Size of the oversized fault's extra part (72)", "MB"},
	    {"out", 'o', 0, G_OPTION_ARG_FILENAME, &o.out, "Write .eml files into DIR", "DIR"},
	    {"maildir", 0, 0, G_OPTION_ARG_FILENAME, &o.maildir, "Deliver into a Maildir", "DIR"},
	    {"smtp", 0, 0, G_OPTION_ARG_STRING, &o.smtp, "Send to smtp://host:port (or smtps://)",
	     "URL"},
	    {"to", 0, 0, G_OPTION_ARG_STRING_ARRAY, &o.to,
	     "Recipient (repeatable; fleet-intake@fleet.example)", "ADDR"},
	    {"from-domain", 0, 0, G_OPTION_ARG_STRING, &o.from_domain,
	     "Domain of the devices' From addresses", "DOMAIN"},
	    {"forward-from", 0, 0, G_OPTION_ARG_STRING, &o.forward_from,
	     "Who forwards mails in the forward variant", "ADDR"},
	    {"user", 0, 0, G_OPTION_ARG_STRING, &o.user, "SMTP AUTH user", "USER"},
	    {"password", 0, 0, G_OPTION_ARG_STRING, &o.password,
	     "SMTP AUTH password (or SNAPKEEP_SIM_PASSWORD)", "PASS"},
	    {"auth", 0, 0, G_OPTION_ARG_STRING, &o.auth, "SASL mechanism (PLAIN, LOGIN, ...)",
	     "MECH"},
	    {"starttls", 0, 0, G_OPTION_ARG_NONE, &o.starttls, "Require STARTTLS", NULL},
	    {"insecure", 'k', 0, G_OPTION_ARG_NONE, &o.insecure,
	     "Do not verify the server certificate", NULL},
	    {"cacert", 0, 0, G_OPTION_ARG_FILENAME, &o.cacert,
	     "CA bundle for the server certificate", "FILE"},
	    {"connections", 'c', 0, G_OPTION_ARG_INT, &o.connections,
	     "SMTP connections in parallel (4)", "N"},
	    {"max-attempts", 0, 0, G_OPTION_ARG_INT, &o.max_attempts, "Attempts per mail (6)", "N"},
	    {"retry-base-ms", 0, 0, G_OPTION_ARG_INT, &o.retry_base_ms,
	     "First retry backoff, doubled each time (500)", "MS"},
	    {"timeout", 0, 0, G_OPTION_ARG_INT, &o.timeout_s, "Seconds per SMTP transfer (600)",
	     "S"},
	    {"slow-bps", 0, 0, G_OPTION_ARG_INT, &o.slow_bps,
	     "Bytes per second of the slow_sender fault (256)", "N"},
	    {"manifest", 'm', 0, G_OPTION_ARG_FILENAME, &o.manifest, "Write one JSON line per mail",
	     "FILE"},
	    {"max-mails", 0, 0, G_OPTION_ARG_INT, &o.max_mails, "Stop after N snapshots", "N"},
	    {"log-capacity", 0, 0, G_OPTION_ARG_INT, &o.log_capacity, "Entries per event log (200)",
	     "N"},
	    {"job-log-capacity", 0, 0, G_OPTION_ARG_INT, &o.job_log_capacity,
	     "Legacy job log entries (1000)", "N"},
	    {"quiet", 'q', 0, G_OPTION_ARG_NONE, &o.quiet, "No summary", NULL},
	    {"log-level", 0, 0, G_OPTION_ARG_STRING, &o.log_level, "error, warning, info, debug",
	     "LEVEL"},
	    {NULL, 0, 0, 0, NULL, NULL, NULL},
	};
	GOptionContext *ctx =
	    g_option_context_new("- a fleet of virtual printers sending AutoSend snapshot mails");
	GError *gerr = NULL;
	char *error = NULL;
	struct run run = {0};
	struct sim_fleet_settings fs;
	struct sim_schedule sched;
	struct sim_sink_settings ss;
	GPtrArray *tmodels = NULL;
	int ret = 1;

	setlocale(LC_ALL, "");
	log_init("snapkeep-sim", LOG_LEVEL_WARN);
	g_option_context_add_main_entries(ctx, entries, NULL);
	g_option_context_set_summary(
	    ctx, "Writes snapshot mails to --out DIR, --maildir DIR or --smtp URL.");
	if (!g_option_context_parse(ctx, &argc, &argv, &gerr)) {
		fprintf(stderr, "snapkeep-sim: %s\n", gerr->message);
		g_error_free(gerr);
		g_option_context_free(ctx);
		return 2;
	}
	if (o.log_level != NULL) {
		enum log_level lvl;
		if (log_level_parse(o.log_level, &lvl) < 0) {
			fprintf(stderr, "snapkeep-sim: bad --log-level '%s'\n", o.log_level);
			goto out;
		}
		log_set_level(lvl);
	}
	if ((o.out != NULL) + (o.maildir != NULL) + (o.smtp != NULL) > 1) {
		fprintf(stderr, "snapkeep-sim: choose one of --out, --maildir, --smtp\n");
		goto out;
	}
	if (o.devices < 1 || o.devices > 1000000 || o.days < 0 || o.log_capacity < 1 ||
	    o.log_capacity > 100000 || o.job_log_capacity < 1 || o.job_log_capacity > 100000 ||
	    o.connections < 1 || o.connections > 256 || o.speed < 0) {
		fprintf(stderr, "snapkeep-sim: an option is out of range (see --help)\n");
		goto out;
	}
	if (o.password == NULL && g_getenv("SNAPKEEP_SIM_PASSWORD") != NULL)
		o.password = g_strdup(g_getenv("SNAPKEEP_SIM_PASSWORD"));

	g_mime_init();
	xmlInitParser();
	run.o = &o;
	guint32 seed_words[2] = {(guint32)o.seed, 0xFA17u};
	run.rand = g_rand_new_with_seed_array(seed_words, 2);

	sim_fleet_settings_default(&fs);
	fs.seed = (guint32)o.seed;
	fs.devices = (unsigned)o.devices;
	fs.detailed_errors = o.detailed;
	fs.log_capacity = (unsigned)o.log_capacity;
	fs.job_log_capacity = (unsigned)o.job_log_capacity;
	fs.dialect = o.dialect;
	if (o.from_domain != NULL)
		fs.from_domain = o.from_domain;
	if (o.schedule != NULL) {
		if (sim_schedule_parse(o.schedule, &sched, &error) < 0)
			goto fail;
		fs.schedule = &sched;
	}
	int64_t now = sk_time_now();
	if (o.start != NULL) {
		if (parse_start(o.start, &fs.start) < 0) {
			error = g_strdup_printf("bad --start '%s'", o.start);
			goto fail;
		}
	} else {
		fs.start = o.test || o.speed > 0 ? now : now - (int64_t)o.days * 86400;
	}
	if (o.templates != NULL) {
		tmodels = g_ptr_array_new();
		for (char **p = o.templates; *p != NULL; p++) {
			struct sim_model *m;
			if (sim_template_load(*p, &m, &error) < 0)
				goto fail;
			g_ptr_array_add(tmodels, m);
		}
		fs.models = tmodels;
	}
	if (o.variants != NULL && strcmp(o.variants, "mix") == 0) {
		run.variant_mix = true;
		sim_variant_default(&run.variant);
	} else if (o.variants != NULL) {
		if (sim_variant_parse(o.variants, &run.variant, &error) < 0)
			goto fail;
	} else {
		sim_variant_default(&run.variant);
	}
	if (setup_faults(&run, &error) < 0)
		goto fail;

	sim_mail_settings_default(&run.mail);
	if (o.to != NULL)
		run.mail.to = (const char *const *)o.to;
	if (o.forward_from != NULL)
		run.mail.forward_from = o.forward_from;
	run.mail.oversize_bytes = (size_t)(o.oversize_mb > 0 ? o.oversize_mb : 1) * 1024 * 1024;

	sim_sink_settings_default(&ss);
	ss.kind = o.out != NULL	      ? SIM_SINK_OUT
		  : o.maildir != NULL ? SIM_SINK_MAILDIR
		  : o.smtp != NULL    ? SIM_SINK_SMTP
				      : SIM_SINK_NONE;
	ss.dir = o.out != NULL ? o.out : o.maildir;
	ss.url = o.smtp;
	ss.rcpt = run.mail.to;
	ss.user = o.user;
	ss.password = o.password;
	char *login = o.auth != NULL ? g_strdup_printf("AUTH=%s", o.auth) : NULL;
	ss.login_options = login;
	ss.starttls = o.starttls;
	ss.insecure = o.insecure;
	ss.ca_file = o.cacert;
	ss.connections = (unsigned)o.connections;
	ss.max_attempts = (unsigned)(o.max_attempts > 0 ? o.max_attempts : 1);
	ss.retry_base_ms = (unsigned)(o.retry_base_ms > 0 ? o.retry_base_ms : 1);
	ss.timeout_s = (unsigned)(o.timeout_s > 0 ? o.timeout_s : 1);
	ss.slow_bps = o.slow_bps > 0 ? o.slow_bps : 1;
	int r = sim_sink_new(&ss, on_done, &run, &run.sink, &error);
	g_free(login);
	if (r < 0)
		goto fail;
	if (o.manifest != NULL) {
		run.manifest = fopen(o.manifest, "we");
		if (run.manifest == NULL) {
			error = g_strdup_printf("%s: %s", o.manifest, g_strerror(errno));
			goto fail;
		}
	}

	int64_t t_gen0 = sk_time_now_us();
	run.fleet = sim_fleet_new(&fs);
	int64_t fleet_us = sk_time_now_us() - t_gen0;
	if (o.test) {
		for (unsigned i = 0; i < run.fleet->devices->len; i++) {
			struct sim_device *dev = g_ptr_array_index(run.fleet->devices, i);
			int64_t t = fs.start + (int64_t)i * 7;
			sim_device_advance(dev, t);
			emit_snapshot(&run, dev, t);
			sim_device_snapshot_taken(dev);
		}
	} else {
		int64_t end = o.speed > 0 && o.days == 0 ? fs.start + 10LL * 365 * 86400
							 : fs.start + (int64_t)o.days * 86400;
		run_schedule(&run, fs.start, end);
	}
	sim_sink_finish(run.sink);

	struct sim_sink_stats st;
	sim_sink_get_stats(run.sink, &st);
	double secs = (double)(st.finished_us - st.started_us) / 1e6;
	if (!o.quiet) {
		fprintf(stderr,
			"snapkeep-sim: devices=%u snapshots=%u mails=%" G_GUINT64_FORMAT
			" sent=%" G_GUINT64_FORMAT " retried=%" G_GUINT64_FORMAT
			" failed=%" G_GUINT64_FORMAT " dropped=%" G_GUINT64_FORMAT
			" elapsed_s=%.2f msg_per_s=%.1f\n",
			run.fleet->devices->len, run.snapshots, st.submitted, st.sent, st.retried,
			st.failed, st.dropped, secs, secs > 0 ? (double)st.sent / secs : 0.0);
		fprintf(stderr,
			"snapkeep-sim: xml_mb=%.1f avg_futuresmart_kb=%.0f avg_legacy_kb=%.0f "
			"max_kb=%.0f "
			"mail_mb=%.1f fleet_s=%.2f generate_s=%.2f snapshots_per_s=%.1f\n",
			(double)run.xml_bytes / 1e6,
			run.n_fs > 0 ? (double)run.xml_fs_bytes / run.n_fs / 1024.0 : 0.0,
			run.n_legacy > 0 ? (double)run.xml_legacy_bytes / run.n_legacy / 1024.0
					 : 0.0,
			(double)run.xml_max / 1024.0, (double)run.mail_bytes / 1e6,
			(double)fleet_us / 1e6, (double)run.gen_us / 1e6,
			run.gen_us > 0 ? run.snapshots / ((double)run.gen_us / 1e6) : 0.0);
		if (o.smtp != NULL)
			fprintf(stderr,
				"snapkeep-sim: latency_ms p50=%.1f p90=%.1f p99=%.1f max=%.1f\n",
				st.p50_ms, st.p90_ms, st.p99_ms, st.max_ms);
	}
	ret = st.failed > 0 ? 3 : 0;
	goto out;
fail:
	fprintf(stderr, "snapkeep-sim: %s\n", error != NULL ? error : "error");
	ret = 1;
out:
	if (run.manifest != NULL && fclose(run.manifest) != 0) {
		fprintf(stderr, "snapkeep-sim: %s: %s\n", o.manifest, g_strerror(errno));
		ret = 1;
	}
	sim_sink_free(&run.sink);
	sim_fleet_free(&run.fleet);
	if (tmodels != NULL) {
		for (unsigned i = 0; i < tmodels->len; i++) {
			struct sim_model *m = g_ptr_array_index(tmodels, i);
			sim_model_free(&m);
		}
		g_ptr_array_unref(tmodels);
	}
	if (run.rand != NULL)
		g_rand_free(run.rand);
	g_free(run.faults);
	g_free(error);
	g_free(o.start);
	g_free(o.schedule);
	g_free(o.dialect);
	g_strfreev(o.templates);
	g_free(o.variants);
	g_free(o.faults);
	g_free(o.out);
	g_free(o.maildir);
	g_free(o.smtp);
	g_strfreev(o.to);
	g_free(o.from_domain);
	g_free(o.forward_from);
	g_free(o.user);
	g_free(o.password);
	g_free(o.auth);
	g_free(o.cacert);
	g_free(o.manifest);
	g_free(o.log_level);
	g_option_context_free(ctx);
	return ret;
}
