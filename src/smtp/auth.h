/* auth.h: the SMTP AUTH users file and password checks.
 *
 * The file has one "user:hash" per line (further ":fields" are ignored, so
 * htpasswd and Dovecot passwd-files work; a "{CRYPT}" prefix is dropped).
 * Blank lines and lines starting with '#' are skipped.  The hash is a
 * crypt(3) string ($y$ yescrypt, $6$ SHA-512, $2b$ bcrypt, ...); a line
 * whose password is not a crypt hash is refused at load time, so a plaintext
 * password can never be compared.  Limits: SMTP_AUTH_FILE_MAX bytes.
 * Security posture: the check costs the same work for an unknown user as for
 * a known one (a dummy hash is computed) and compares in constant time. */
#ifndef SK_SMTP_AUTH_H
#define SK_SMTP_AUTH_H

#include <stdbool.h>

#define SMTP_AUTH_FILE_MAX (1024 * 1024)

struct smtp_auth;

/* Loads path.  0 with *auth_r, or -1 with *error_r naming the line. */
int smtp_auth_load(const char *path, struct smtp_auth **auth_r, char **error_r);
void smtp_auth_free(struct smtp_auth **auth);
/* Users in the file. */
unsigned smtp_auth_count(const struct smtp_auth *auth);
/* Thread-safe; slow on purpose (the hash's cost): call off the main loop. */
bool smtp_auth_verify(const struct smtp_auth *auth, const char *user, const char *password);

#endif
