/* server.h: the SMTP listener: sockets, connections, STARTTLS and the hand
 * over of each message to the intake funnel.
 *
 * Concurrency: all socket I/O runs in one GLib main context (non-blocking
 * sockets, one GSource per connection), so a slow client costs a few bytes
 * of state and never blocks anyone.  DATA is spooled to an unlinked file
 * (O_TMPFILE) in spool_dir; at the final dot intake_accept_fd reads it in
 * one streaming pass on a worker thread (up to max_pending_commits at once,
 * and at most max_pending_size bytes of messages), which is how
 * concurrent sessions share one group commit; the reply is sent when it
 * returns: 250 only once the message is durable, 451 if not.
 *
 * Security posture: each connection is checked against allowed_networks and
 * the total and per-address connection limits before the greeting; command
 * and DATA timeouts bound idle clients; the output kept for a client that
 * does not read is bounded (SMTP_SERVER_OUTPUT_MAX: input is not read
 * meanwhile).  Everything protocol-level is in session.c.  Privileges: the
 * sockets, the certificate and the users file are opened by smtp_server_new,
 * which the daemon calls before dropping root. */
#ifndef SK_SMTP_SERVER_H
#define SK_SMTP_SERVER_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#include "intake/intake.h"
#include "smtp/session.h"

#define SMTP_SERVER_OUTPUT_MAX (64 * 1024)

struct smtp_server_settings {
	struct smtp_session_settings session; /* hostname NULL: the host's name */
	char **listen;			      /* "ADDR:PORT", "[V6]:PORT", "*:PORT" */
	unsigned max_connections;	      /* all clients */
	unsigned max_connections_per_ip;
	char **allowed_networks; /* CIDR; NULL or empty: any */
	unsigned command_timeout_ms;
	unsigned data_timeout_ms;     /* between reads in DATA, and for the commit */
	unsigned greet_pause_ms;      /* wait before the greeting (pregreet test) */
	unsigned shutdown_timeout_ms; /* used by the daemon */
	const char *tls_cert_file;    /* both set: STARTTLS offered */
	const char *tls_key_file;
	const char *tls_priority;
	const char *auth_users_file;  /* set: AUTH offered over TLS */
	const char *spool_dir;	      /* unlinked spool files */
	uint64_t min_free_space;      /* in spool_dir and db_dir, else 452 */
	const char *db_dir;	      /* where the database lives (free space) */
	unsigned max_pending_commits; /* intake_accept calls at once */
	uint64_t max_pending_size;    /* bytes of messages in those calls */
};

void smtp_server_settings_default(struct smtp_server_settings *settings);

struct smtp_server;

/* Binds every listen address and loads the certificate and users file.
 * Nothing is accepted until smtp_server_start.  0 or -1 with *error_r. */
int smtp_server_new(const struct smtp_server_settings *settings, struct smtp_server **server_r,
		    char **error_r);
/* Checks settings as smtp_server_new would, without binding: addresses,
 * networks, certificate, users file.  0 or -1 with *error_r (snapkeepd -n). */
int smtp_server_check(const struct smtp_server_settings *settings, char **error_r);
/* The bound addresses ("127.0.0.1:2525"), e.g. to learn port 0's port. */
const char *const *smtp_server_addresses(struct smtp_server *server);

/* Starts accepting in context (NULL: the default context). */
int smtp_server_start(struct smtp_server *server, struct intake *intake, GMainContext *context,
		      char **error_r);
/* New limits, allow-lists, recipients, certificate and users file for new
 * sessions; sessions keep what they started with.  listen and spool_dir
 * are not changed (a warning is logged).  0, or -1 with the old settings
 * kept. */
int smtp_server_reload(struct smtp_server *server, const struct smtp_server_settings *settings,
		       char **error_r);
/* Stops accepting, says 421 to idle sessions; sessions in DATA finish. */
void smtp_server_stop(struct smtp_server *server);
/* Open connections. */
unsigned smtp_server_connections(struct smtp_server *server);
/* Closes every connection at once (those in DATA get no reply), waits for
 * commits in flight, frees.  Accepts NULL. */
void smtp_server_free(struct smtp_server **server);

struct smtp_server_stats {
	uint64_t connections, refused_connections, messages, message_bytes, temp_failures;
	unsigned open;
};
void smtp_server_get_stats(struct smtp_server *server, struct smtp_server_stats *stats_r);

#endif
