/* tls.c: see tls.h. */
#include "config.h"

#include "smtp/tls.h"

#include <glib.h>

struct smtp_tls {
	gint refs;
	gnutls_certificate_credentials_t cred;
	gnutls_priority_t priority;
};

int
smtp_tls_load(const char *cert_file, const char *key_file, const char *priority,
	      struct smtp_tls **tls_r, char **error_r)
{
	struct smtp_tls *tls = g_new0(struct smtp_tls, 1);
	const char *err_pos = NULL;
	int rc;

	tls->refs = 1;
	rc = gnutls_certificate_allocate_credentials(&tls->cred);
	if (rc < 0)
		goto fail;
	rc = gnutls_certificate_set_x509_key_file(tls->cred, cert_file, key_file,
						  GNUTLS_X509_FMT_PEM);
	if (rc < 0) {
		*error_r =
		    g_strdup_printf("tls: %s / %s: %s", cert_file, key_file, gnutls_strerror(rc));
		goto fail_set;
	}
	rc = gnutls_priority_init(&tls->priority, priority != NULL ? priority : "NORMAL", &err_pos);
	if (rc < 0) {
		*error_r = g_strdup_printf("tls_priority: %s at \"%s\"", gnutls_strerror(rc),
					   err_pos != NULL ? err_pos : "");
		goto fail_set;
	}
	*tls_r = tls;
	return 0;
fail:
	*error_r = g_strdup_printf("tls: %s", gnutls_strerror(rc));
fail_set:
	smtp_tls_unref(&tls);
	return -1;
}

struct smtp_tls *
smtp_tls_ref(struct smtp_tls *tls)
{
	g_atomic_int_inc(&tls->refs);
	return tls;
}

void
smtp_tls_unref(struct smtp_tls **tls)
{
	struct smtp_tls *t = *tls;
	if (t == NULL)
		return;
	*tls = NULL;
	if (!g_atomic_int_dec_and_test(&t->refs))
		return;
	if (t->priority != NULL)
		gnutls_priority_deinit(t->priority);
	if (t->cred != NULL)
		gnutls_certificate_free_credentials(t->cred);
	g_free(t);
}

int
smtp_tls_session_new(struct smtp_tls *tls, int fd, gnutls_session_t *session_r, char **error_r)
{
	gnutls_session_t s = NULL;
	int rc = gnutls_init(&s, GNUTLS_SERVER | GNUTLS_NONBLOCK);
	if (rc < 0)
		goto fail;
	if ((rc = gnutls_priority_set(s, tls->priority)) < 0 ||
	    (rc = gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, tls->cred)) < 0)
		goto fail;
	gnutls_certificate_server_set_request(s, GNUTLS_CERT_IGNORE);
	gnutls_transport_set_int(s, fd);
	*session_r = s;
	return 0;
fail:
	*error_r = g_strdup_printf("tls: %s", gnutls_strerror(rc));
	if (s != NULL)
		gnutls_deinit(s);
	return -1;
}
