/* auth.c: see auth.h. */
#include "config.h"

#include "smtp/auth.h"

#include <crypt.h>
#include <glib.h>
#include <string.h>

struct smtp_auth {
	GHashTable *users; /* name -> crypt hash */
	char *dummy;	   /* hash of nothing, checked for unknown users */
};

static bool
smtp_auth_is_crypt(const char *hash)
{
	static const char des_chars[] =
	    "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
	if (hash[0] == '$')
		return strchr(hash + 1, '$') != NULL && strlen(hash) >= 8;
	/* Traditional DES: 13 characters of the salt alphabet. */
	return strlen(hash) == 13 && strspn(hash, des_chars) == 13;
}

int
smtp_auth_load(const char *path, struct smtp_auth **auth_r, char **error_r)
{
	gchar *text = NULL;
	gsize len = 0;
	GError *gerr = NULL;
	gchar **lines = NULL;
	struct smtp_auth *auth = NULL;
	int ret = -1;

	if (!g_file_get_contents(path, &text, &len, &gerr)) {
		*error_r = g_strdup_printf("auth_users_file: %s", gerr->message);
		goto out;
	}
	if (len > SMTP_AUTH_FILE_MAX) {
		*error_r = g_strdup_printf("auth_users_file: %s: larger than %d bytes", path,
					   SMTP_AUTH_FILE_MAX);
		goto out;
	}
	auth = g_new0(struct smtp_auth, 1);
	auth->users = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	lines = g_strsplit(text, "\n", -1);
	for (guint i = 0; lines[i] != NULL; i++) {
		char *line = g_strstrip(lines[i]);
		if (line[0] == '\0' || line[0] == '#')
			continue;
		gchar **fields = g_strsplit(line, ":", 3);
		const char *hash = fields[1];
		if (hash != NULL && g_str_has_prefix(hash, "{CRYPT}"))
			hash += strlen("{CRYPT}");
		if (fields[0][0] == '\0' || hash == NULL || !smtp_auth_is_crypt(hash)) {
			*error_r = g_strdup_printf("auth_users_file: %s line %u: expected "
						   "user:crypt-hash",
						   path, i + 1);
			g_strfreev(fields);
			goto out;
		}
		g_hash_table_replace(auth->users, g_strdup(fields[0]), g_strdup(hash));
		g_strfreev(fields);
	}
	/* A hash in the style of the first user's, for unknown users. */
	{
		GHashTableIter it;
		gpointer key, value;
		const char *prefix = "$6$";
		g_hash_table_iter_init(&it, auth->users);
		if (g_hash_table_iter_next(&it, &key, &value)) {
			const char *h = value;
			if (h[0] == '$') {
				const char *end = strchr(h + 1, '$');
				char *p = g_strndup(h, (gsize)(end - h + 1));
				char *setting = crypt_gensalt_ra(p, 0, NULL, 0);
				if (setting != NULL) {
					struct crypt_data *cd = g_new0(struct crypt_data, 1);
					const char *d = crypt_r("", setting, cd);
					if (d != NULL && d[0] != '*')
						auth->dummy = g_strdup(d);
					g_free(cd);
					free(setting);
				}
				g_free(p);
			}
		}
		if (auth->dummy == NULL) {
			char *setting = crypt_gensalt_ra(prefix, 0, NULL, 0);
			struct crypt_data *cd = g_new0(struct crypt_data, 1);
			const char *d = setting != NULL ? crypt_r("", setting, cd) : NULL;
			auth->dummy = g_strdup(d != NULL ? d : "*");
			g_free(cd);
			free(setting);
		}
	}
	*auth_r = g_steal_pointer(&auth);
	ret = 0;
out:
	if (text != NULL)
		explicit_bzero(text, len);
	g_free(text);
	g_strfreev(lines);
	g_clear_error(&gerr);
	smtp_auth_free(&auth);
	return ret;
}

void
smtp_auth_free(struct smtp_auth **auth)
{
	if (*auth == NULL)
		return;
	g_hash_table_destroy((*auth)->users);
	g_free((*auth)->dummy);
	g_free(*auth);
	*auth = NULL;
}

unsigned
smtp_auth_count(const struct smtp_auth *auth)
{
	return g_hash_table_size(auth->users);
}

bool
smtp_auth_verify(const struct smtp_auth *auth, const char *user, const char *password)
{
	const char *hash = g_hash_table_lookup(auth->users, user);
	bool known = hash != NULL;
	struct crypt_data *cd = g_new0(struct crypt_data, 1);
	const char *result;
	bool ok = false;

	if (!known)
		hash = auth->dummy;
	result = crypt_r(password, hash, cd);
	if (result != NULL && result[0] != '*') {
		size_t a = strlen(result), b = strlen(hash);
		unsigned char diff = a != b;
		for (size_t i = 0; i < a && i < b; i++)
			diff |= (unsigned char)(result[i] ^ hash[i]);
		ok = diff == 0 && known;
	}
	explicit_bzero(cd, sizeof(*cd));
	g_free(cd);
	return ok;
}
