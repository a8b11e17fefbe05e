/* tls.h: GnuTLS server credentials for STARTTLS (RFC 3207).
 *
 * One struct smtp_tls holds a certificate chain with its key and the
 * priority string; it is reference-counted so that SIGHUP can load a new
 * certificate while sessions keep the one they started with.  Sessions are
 * non-blocking (GNUTLS_NONBLOCK) on the connection's socket.  Client
 * certificates are not requested. */
#ifndef SK_SMTP_TLS_H
#define SK_SMTP_TLS_H

#include <gnutls/gnutls.h>

struct smtp_tls;

/* Loads the PEM certificate chain and key.  priority NULL: "NORMAL". */
int smtp_tls_load(const char *cert_file, const char *key_file, const char *priority,
		  struct smtp_tls **tls_r, char **error_r);
struct smtp_tls *smtp_tls_ref(struct smtp_tls *tls);
/* Drops a reference.  Accepts NULL. */
void smtp_tls_unref(struct smtp_tls **tls);

/* A server session on fd with these credentials.  0 or -1. */
int smtp_tls_session_new(struct smtp_tls *tls, int fd, gnutls_session_t *session_r, char **error_r);

#endif
