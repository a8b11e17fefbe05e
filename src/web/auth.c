/* auth.c: HTTP Basic users from a file of crypt(3) hashes, and CSRF tokens.
 *
 * The users file has one "name:hash" per line ('#' starts a comment); the
 * hash is anything libxcrypt's crypt(3) knows with a "$id$" prefix
 * (yescrypt "$y$" from mkpasswd, sha512crypt "$6$" from `openssl passwd
 * -6`, bcrypt "$2b$").  Limits: WEB_USERS_MAX users, WEB_USERS_LINE_MAX
 * bytes per line, WEB_USERS_FILE_MAX bytes in all.
 *
 * Security posture: passwords are never logged or kept; a successful check
 * is remembered for cache_seconds as the SHA-256 of (name, password, hash),
 * because Basic authentication sends the password with every request and a
 * modern hash costs tens of milliseconds by design.  Comparisons of hashes
 * and tokens run in constant time.
 *
 * CSRF tokens are "EXPIRY.HEX" where HEX is HMAC-SHA256(server secret,
 * user NUL EXPIRY); a token is valid until EXPIRY (a day) for the user it
 * was made for (the empty user when authentication is off).  The secret is
 * random per server start. */
#include "config.h"

#include <crypt.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "util/sktime.h"
#include "web/internal.h"

#define WEB_USERS_MAX 10000
#define WEB_USERS_LINE_MAX 1024
#define WEB_USERS_FILE_MAX (4 * 1024 * 1024)
#define WEB_AUTH_CACHE_MAX 1024
#define WEB_CSRF_LIFETIME (24 * 3600)

struct web_users {
	GHashTable *hashes; /* name -> crypt hash */
	GMutex lock;
	GHashTable *verified; /* sha256 hex -> expiry (Unix seconds, as pointer-sized int) */
	unsigned cache_seconds;
};

static bool
const_eq(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	unsigned char diff = la != lb;
	for (size_t i = 0; i < la && i < lb; i++)
		diff |= (unsigned char)(a[i] ^ b[i]);
	return diff == 0;
}

int
web_users_load(const char *path, unsigned cache_seconds, struct web_users **users_r, char **error_r)
{
	GError *gerr = NULL;
	char *text = NULL;
	gsize len = 0;
	struct web_users *u = NULL;
	char **lines = NULL;
	unsigned lineno = 0;

	if (!g_file_get_contents(path, &text, &len, &gerr)) {
		*error_r = g_strdup_printf("web: users file: %s", gerr->message);
		g_error_free(gerr);
		return -1;
	}
	if (len > WEB_USERS_FILE_MAX || memchr(text, '\0', len) != NULL) {
		*error_r = g_strdup_printf("web: users file %s is too large or binary", path);
		goto fail;
	}
	u = g_new0(struct web_users, 1);
	u->hashes = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	u->verified = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	u->cache_seconds = cache_seconds;
	g_mutex_init(&u->lock);
	lines = g_strsplit(text, "\n", -1);
	for (char **l = lines; *l != NULL; l++) {
		lineno++;
		char *line = g_strstrip(*l);
		if (*line == '\0' || *line == '#')
			continue;
		if (strlen(line) > WEB_USERS_LINE_MAX) {
			*error_r =
			    g_strdup_printf("web: users file %s line %u: too long", path, lineno);
			goto fail;
		}
		char *colon = strchr(line, ':');
		if (colon == NULL || colon == line || colon[1] != '$' ||
		    !g_utf8_validate(line, -1, NULL)) {
			*error_r = g_strdup_printf(
			    "web: users file %s line %u: want name:$id$hash (crypt(3), e.g."
			    " from mkpasswd or openssl passwd -6)",
			    path, lineno);
			goto fail;
		}
		*colon = '\0';
		if (g_hash_table_size(u->hashes) >= WEB_USERS_MAX) {
			*error_r = g_strdup_printf("web: users file %s: more than %u users", path,
						   WEB_USERS_MAX);
			goto fail;
		}
		if (g_hash_table_contains(u->hashes, line)) {
			*error_r = g_strdup_printf("web: users file %s line %u: user %s twice",
						   path, lineno, line);
			goto fail;
		}
		g_hash_table_insert(u->hashes, g_strdup(line), g_strdup(colon + 1));
	}
	if (g_hash_table_size(u->hashes) == 0) {
		*error_r = g_strdup_printf("web: users file %s has no users", path);
		goto fail;
	}
	g_strfreev(lines);
	g_free(text);
	*users_r = u;
	return 0;
fail:
	g_strfreev(lines);
	g_free(text);
	web_users_free(&u);
	return -1;
}

void
web_users_free(struct web_users **usersp)
{
	struct web_users *u = *usersp;
	if (u == NULL)
		return;
	*usersp = NULL;
	g_hash_table_destroy(u->hashes);
	g_hash_table_destroy(u->verified);
	g_mutex_clear(&u->lock);
	g_free(u);
}

unsigned
web_users_count(const struct web_users *users)
{
	return users != NULL ? g_hash_table_size(users->hashes) : 0;
}

static char *
cache_key(const char *name, const char *password, const char *hash)
{
	GChecksum *ck = g_checksum_new(G_CHECKSUM_SHA256);
	g_checksum_update(ck, (const guchar *)name, (gssize)strlen(name) + 1);
	g_checksum_update(ck, (const guchar *)password, (gssize)strlen(password) + 1);
	g_checksum_update(ck, (const guchar *)hash, (gssize)strlen(hash));
	char *key = g_strdup(g_checksum_get_string(ck));
	g_checksum_free(ck);
	return key;
}

bool
web_users_check(struct web_users *u, const char *name, const char *password)
{
	const char *hash;
	char *key;
	bool ok = false;
	int64_t now = sk_time_now();

	if (u == NULL || name == NULL || password == NULL)
		return false;
	hash = g_hash_table_lookup(u->hashes, name);
	if (hash == NULL)
		return false;
	key = cache_key(name, password, hash);
	g_mutex_lock(&u->lock);
	gpointer exp = NULL;
	if (g_hash_table_lookup_extended(u->verified, key, NULL, &exp) &&
	    (int64_t)GPOINTER_TO_SIZE(exp) > now)
		ok = true;
	g_mutex_unlock(&u->lock);
	if (ok) {
		g_free(key);
		return true;
	}

	struct crypt_data *cd = g_new0(struct crypt_data, 1);
	const char *out = crypt_rn(password, hash, cd, (int)sizeof(*cd));
	ok = out != NULL && out[0] != '*' && const_eq(out, hash);
	memset(cd, 0, sizeof(*cd));
	g_free(cd);

	if (ok && u->cache_seconds > 0) {
		g_mutex_lock(&u->lock);
		if (g_hash_table_size(u->verified) >= WEB_AUTH_CACHE_MAX)
			g_hash_table_remove_all(u->verified);
		g_hash_table_replace(u->verified, key,
				     GSIZE_TO_POINTER((gsize)(now + u->cache_seconds)));
		key = NULL;
		g_mutex_unlock(&u->lock);
	}
	g_free(key);
	return ok;
}

static char *
csrf_mac(const guint8 *secret, size_t secret_len, const char *user, int64_t expiry)
{
	char exp[32];
	g_snprintf(exp, sizeof(exp), "%" G_GINT64_FORMAT, expiry);
	GHmac *h = g_hmac_new(G_CHECKSUM_SHA256, secret, secret_len);
	g_hmac_update(h, (const guchar *)(user != NULL ? user : ""),
		      (gssize)strlen(user != NULL ? user : "") + 1);
	g_hmac_update(h, (const guchar *)exp, (gssize)strlen(exp));
	char *mac = g_strdup(g_hmac_get_string(h));
	g_hmac_unref(h);
	return mac;
}

char *
web_csrf_token(const guint8 *secret, size_t secret_len, const char *user)
{
	int64_t expiry = sk_time_now() + WEB_CSRF_LIFETIME;
	char *mac = csrf_mac(secret, secret_len, user, expiry);
	char *token = g_strdup_printf("%" G_GINT64_FORMAT ".%s", expiry, mac);
	g_free(mac);
	return token;
}

bool
web_csrf_check(const guint8 *secret, size_t secret_len, const char *user, const char *token)
{
	const char *dot;
	char *end = NULL;
	int64_t expiry;
	bool ok;

	if (token == NULL || (dot = strchr(token, '.')) == NULL || dot == token || dot - token > 20)
		return false;
	errno = 0;
	expiry = g_ascii_strtoll(token, &end, 10);
	if (errno != 0 || end != dot || expiry < sk_time_now() ||
	    expiry > sk_time_now() + WEB_CSRF_LIFETIME)
		return false;
	char *mac = csrf_mac(secret, secret_len, user, expiry);
	ok = const_eq(mac, dot + 1);
	g_free(mac);
	return ok;
}
