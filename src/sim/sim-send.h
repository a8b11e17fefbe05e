/* sim-send.h: where the simulator's mails go: .eml files (--out), a Maildir
 * (--maildir: tmp/ then rename into new/), or an SMTP server through
 * libcurl (--smtp), several connections in parallel, with retries and
 * backoff on 4xx replies and lost connections, as an MTA does.
 *
 * The sink reports every mail's final outcome through the done callback,
 * in completion order, from the caller's thread (inside submit, pump or
 * finish). */
#ifndef SK_SIM_SEND_H
#define SK_SIM_SEND_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

enum sim_sink_kind {
	SIM_SINK_NONE = 0, /* generate only (counting, benchmarks) */
	SIM_SINK_OUT,
	SIM_SINK_MAILDIR,
	SIM_SINK_SMTP,
};

struct sim_sink_settings {
	enum sim_sink_kind kind;
	const char *dir;	 /* --out or --maildir */
	const char *url;	 /* smtp://host:port[/helo] or smtps:// */
	const char *const *rcpt; /* envelope recipients, NULL-terminated */
	const char *user, *password;
	const char *login_options; /* e.g. "AUTH=PLAIN" */
	bool starttls;		   /* require STARTTLS */
	bool insecure;		   /* do not verify the server certificate */
	const char *ca_file;
	unsigned connections;	/* parallel transfers; default 4 */
	unsigned max_attempts;	/* per mail; default 6 */
	unsigned retry_base_ms; /* first backoff, doubled each time; default 500 */
	unsigned retry_max_ms;	/* backoff cap; default 30000 */
	unsigned timeout_s;	/* one transfer; default 600 */
	long slow_bps;		/* slow-sender fault: bytes per second; default 256 */
	unsigned queue_max;	/* mails waiting before submit blocks; default 4 x connections */
};

void sim_sink_settings_default(struct sim_sink_settings *settings);

enum sim_delivery {
	SIM_DELIVERY_PENDING = 0,
	SIM_DELIVERY_SENT,    /* written, delivered, or accepted (2xx) */
	SIM_DELIVERY_FAILED,  /* permanent error, or attempts exhausted */
	SIM_DELIVERY_DROPPED, /* the drop-in-DATA fault did its job */
};

struct sim_outgoing {
	GBytes *raw;
	char *mail_from;
	char *name;    /* file name hint: "000042-CNBX123456" */
	bool slow;     /* slow-sender fault */
	bool drop;     /* drop-in-DATA fault */
	gpointer user; /* caller's (e.g. the manifest object) */
	GDestroyNotify user_free;
	/* results */
	enum sim_delivery status;
	unsigned attempts;
	long reply_code;
	char *reply;	   /* last server reply line, or a local error */
	char *path;	   /* file written (out, maildir) */
	double latency_ms; /* final attempt */
	/* internal */
	int64_t not_before_us;
	int64_t started_us;
	gsize offset;
};

struct sim_outgoing *sim_outgoing_new(GBytes *raw, const char *mail_from, const char *name);
void sim_outgoing_free(struct sim_outgoing **out);

typedef void (*sim_sink_done_fn)(struct sim_outgoing *out, gpointer data);

struct sim_sink_stats {
	uint64_t submitted, sent, failed, dropped, retried, bytes;
	int64_t started_us, finished_us;
	double p50_ms, p90_ms, p99_ms, max_ms;
};

struct sim_sink;

/* 0 or -1 with *error_r.  done is called once per outgoing, which the sink
 * frees after the call. */
int sim_sink_new(const struct sim_sink_settings *settings, sim_sink_done_fn done, gpointer data,
		 struct sim_sink **sink_r, char **error_r);
/* Takes ownership of out; blocks (making progress) while the queue is full. */
void sim_sink_submit(struct sim_sink *sink, struct sim_outgoing *out);
/* Makes progress for up to timeout_ms (0: one non-blocking round). */
void sim_sink_pump(struct sim_sink *sink, int timeout_ms);
/* Waits until every submitted mail has its outcome. */
void sim_sink_finish(struct sim_sink *sink);
void sim_sink_get_stats(struct sim_sink *sink, struct sim_sink_stats *stats_r);
void sim_sink_free(struct sim_sink **sink);

#endif
