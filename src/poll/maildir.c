/* maildir.c: one pass over a Maildir (https://cr.yp.to/proto/maildir.html,
 * Maildir++ subfolders as Dovecot and Courier lay them out).
 *
 * Candidates: every file of new/, and those of cur/ that still need taking
 * (after = flag: without the S flag; keep: not taken before; move, delete:
 * all).  Never tmp/: a delivery writes there and renames into new/ when the
 * message is complete, so a file in new/ is whole.
 *
 * After the funnel committed a message:
 *   flag    rename new/NAME -> cur/NAME:2,S (or add S to cur/NAME:2,FLAGS)
 *   move    rename to the move_to folder's cur/ with S: a path relative to
 *           the Maildir is a Maildir++ folder ("snapkeep/processed" ->
 *           .snapkeep.processed/), an absolute path a Maildir of its own
 *           (same file system: rename(2) cannot cross one)
 *   delete  unlink
 *   keep    remember the unique name (the part before ':')
 * Not snapshots, unparsable and too large messages go to failed_to the
 * same way, without S, when failed_to is set.
 *
 * Files that vanish between listing and reading were taken by someone
 * else: skipped quietly.  Files that cannot be read (permissions, not a
 * regular file, a symlink: O_NOFOLLOW) stay, are warned about once per
 * poller and counted as skipped.
 *
 * Security posture: names come from readdir and are used only inside the
 * Maildir (no '/' can occur); files are opened with O_NOFOLLOW and
 * O_NONBLOCK (a FIFO cannot block the poller) and read up to
 * max_message_size. */
#include "config.h"

#include "poll/poll-private.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/log.h"

#define INFO_SEP ':'

bool
poll_maildir_has_seen(const char *name)
{
	const char *info = strrchr(name, INFO_SEP);

	return info != NULL && g_str_has_prefix(info + 1, "2,") && strchr(info + 3, 'S') != NULL;
}

char *
poll_maildir_seen_name(const char *name)
{
	const char *info = strrchr(name, INFO_SEP);

	if (info == NULL || !g_str_has_prefix(info + 1, "2,"))
		return g_strdup_printf("%.*s%c2,S",
				       info != NULL ? (int)(info - name) : (int)strlen(name), name,
				       INFO_SEP);
	if (strchr(info + 3, 'S') != NULL)
		return g_strdup(name);
	/* Flags stay in ASCII order. */
	GString *out = g_string_new_len(name, info + 3 - name);
	const char *f = info + 3;
	bool added = false;
	for (; *f != '\0'; f++) {
		if (!added && *f > 'S') {
			g_string_append_c(out, 'S');
			added = true;
		}
		g_string_append_c(out, *f);
	}
	if (!added)
		g_string_append_c(out, 'S');
	return g_string_free(out, FALSE);
}

/* The unique part of a name (before the info). */
static char *
unique_name(const char *name)
{
	const char *info = strrchr(name, INFO_SEP);

	return info != NULL ? g_strndup(name, (gsize)(info - name)) : g_strdup(name);
}

struct md_file {
	char *sub; /* "new" or "cur" */
	char *name;
};

static gint
md_file_cmp(gconstpointer a, gconstpointer b)
{
	const struct md_file *x = *(struct md_file *const *)a, *y = *(struct md_file *const *)b;

	return strcmp(x->name, y->name);
}

static void
md_file_free(gpointer p)
{
	struct md_file *f = p;

	g_free(f->sub);
	g_free(f->name);
	g_free(f);
}

static int
list_dir(struct poll_pass *pass, const char *sub, GPtrArray *files, GHashTable *present,
	 char **error_r)
{
	const struct poll_settings *s = pass->settings;
	char *dir = g_build_filename(s->path, sub, NULL);
	GError *gerr = NULL;
	GDir *d = g_dir_open(dir, 0, &gerr);
	const char *name;

	if (d == NULL) {
		*error_r = g_strdup_printf("Maildir %s: %s", s->path, gerr->message);
		g_error_free(gerr);
		g_free(dir);
		return -1;
	}
	while ((name = g_dir_read_name(d)) != NULL) {
		if (name[0] == '.')
			continue;
		bool is_cur = strcmp(sub, "cur") == 0;
		if (present != NULL)
			g_hash_table_add(present, unique_name(name));
		if (is_cur && s->after == POLL_AFTER_FLAG && poll_maildir_has_seen(name))
			continue;
		struct md_file *f = g_new0(struct md_file, 1);
		f->sub = g_strdup(sub);
		f->name = g_strdup(name);
		g_ptr_array_add(files, f);
	}
	g_dir_close(d);
	g_free(dir);
	return 0;
}

/* Reads one file: 0 with *raw_r, 1 gone, 2 unreadable or too large
 * (*why_r), never -1: a file is never a reason to fail the pass. */
static int
read_file(const char *path, size_t max, GBytes **raw_r, bool *too_large_r, char **why_r)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);

	*too_large_r = false;
	if (fd < 0) {
		if (errno == ENOENT)
			return 1;
		*why_r = g_strdup(errno == ELOOP ? "a symbolic link" : g_strerror(errno));
		return 2;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		*why_r = g_strdup("not a regular file");
		close(fd);
		return 2;
	}
	if ((uint64_t)st.st_size > max) {
		*too_large_r = true;
		*why_r = g_strdup_printf("larger than max_message_size (%zu bytes)", max);
		close(fd);
		return 2;
	}
	if (st.st_size == 0) {
		*why_r = g_strdup("empty file");
		close(fd);
		return 2;
	}
	size_t len = (size_t)st.st_size, got = 0;
	guint8 *buf = g_malloc(len);
	while (got < len) {
		ssize_t n = read(fd, buf + got, len - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			*why_r =
			    g_strdup(n < 0 ? g_strerror(errno) : "file shrank while being read");
			g_free(buf);
			close(fd);
			return 2;
		}
		got += (size_t)n;
	}
	close(fd);
	*raw_r = g_bytes_new_take(buf, len);
	return 0;
}

/* The directory of a folder setting; NULL when empty. */
static char *
folder_dir(const struct poll_settings *s, const char *folder)
{
	if (folder == NULL || *folder == '\0')
		return NULL;
	if (folder[0] == '/')
		return g_strdup(folder);
	char *dotted = g_strdup(folder);
	for (char *p = dotted; *p != '\0'; p++)
		if (*p == '/')
			*p = '.';
	char *leaf = g_strconcat(".", dotted, NULL);
	char *dir = g_build_filename(s->path, leaf, NULL);
	g_free(leaf);
	g_free(dotted);
	return dir;
}

static int
folder_ensure(const char *dir, char **error_r)
{
	static const char *const subs[] = {"", "cur", "new", "tmp"};

	for (size_t i = 0; i < G_N_ELEMENTS(subs); i++) {
		char *p = g_build_filename(dir, subs[i], NULL);
		if (g_mkdir_with_parents(p, 0700) < 0) {
			*error_r = g_strdup_printf("cannot create %s: %s", p, g_strerror(errno));
			g_free(p);
			return -1;
		}
		g_free(p);
	}
	/* Dovecot's Maildir++ marks a folder with this file. */
	char *marker = g_build_filename(dir, "maildirfolder", NULL);
	int fd = open(marker, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd >= 0)
		close(fd);
	g_free(marker);
	return 0;
}

/* Acts on one file; 0 or -1 with *error_r. */
static int
act(struct poll_pass *pass, const struct md_file *f, enum poll_fate fate, char **error_r)
{
	const struct poll_settings *s = pass->settings;
	char *from = g_build_filename(s->path, f->sub, f->name, NULL);
	char *to = NULL, *dir = NULL, *name = NULL;
	int ret = -1;

	if (fate == POLL_FATE_FAILED) {
		dir = folder_dir(s, s->failed_to);
		name = g_strdup(f->name);
	} else if (s->after == POLL_AFTER_MOVE) {
		dir = folder_dir(s, s->move_to);
		name = poll_maildir_seen_name(f->name);
	} else if (s->after == POLL_AFTER_FLAG) {
		dir = g_strdup(s->path);
		name = poll_maildir_seen_name(f->name);
	} else if (s->after == POLL_AFTER_DELETE) {
		if (unlink(from) < 0 && errno != ENOENT) {
			*error_r = g_strdup_printf("unlink %s: %s", from, g_strerror(errno));
			goto out;
		}
		ret = 0;
		goto out;
	} else {
		ret = 0; /* keep */
		goto out;
	}
	if (fate == POLL_FATE_FAILED && strchr(name, INFO_SEP) == NULL) {
		char *with_info = g_strdup_printf("%s%c2,", name, INFO_SEP);
		g_free(name);
		name = with_info;
	}
	if (dir != NULL && strcmp(dir, s->path) != 0 && folder_ensure(dir, error_r) < 0)
		goto out;
	to = g_build_filename(dir, "cur", name, NULL);
	if (rename(from, to) < 0 && errno != ENOENT) {
		*error_r = g_strdup_printf("rename %s to %s: %s", from, to, g_strerror(errno));
		goto out;
	}
	ret = 0;
out:
	g_free(from);
	g_free(to);
	g_free(dir);
	g_free(name);
	return ret;
}

int
poll_maildir_pass(struct poll_pass *pass, char **error_r)
{
	const struct poll_settings *s = pass->settings;
	GPtrArray *files = g_ptr_array_new_with_free_func(md_file_free);
	GHashTable *present = NULL;
	struct poll_item *items = NULL;
	bool keep = s->after == POLL_AFTER_KEEP;
	bool have_failed_to = s->failed_to[0] != '\0' && !keep;
	int ret = -1;

	if (!g_file_test(s->path, G_FILE_TEST_IS_DIR)) {
		*error_r = g_strdup_printf("Maildir %s: no such directory", s->path);
		goto out;
	}
	if (keep)
		present = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	if (list_dir(pass, "new", files, present, error_r) < 0 ||
	    list_dir(pass, "cur", files, present, error_r) < 0)
		goto out;
	g_ptr_array_sort(files, md_file_cmp);
	if (keep) {
		char *error = NULL;
		if (poll_state_seen_sweep(pass->store, pass->mailbox_id, present, &error) < 0) {
			log_warnx("poll: event=sweep-failed name=%s error=\"%s\"", s->name, error);
			g_free(error);
		}
		/* Drop what was taken before. */
		GPtrArray *todo = g_ptr_array_new_with_free_func(md_file_free);
		for (guint i = 0; i < files->len; i++) {
			struct md_file *f = g_ptr_array_index(files, i);
			char *key = unique_name(f->name);
			int r = poll_state_seen_has(pass->store, pass->mailbox_id, key, error_r);
			g_free(key);
			if (r < 0) {
				g_ptr_array_unref(todo);
				goto out;
			}
			if (r == 0) {
				g_ptr_array_add(todo, f);
				files->pdata[i] = NULL;
			}
		}
		g_ptr_array_set_free_func(files, NULL);
		for (guint i = 0; i < files->len; i++)
			if (files->pdata[i] != NULL)
				md_file_free(files->pdata[i]);
		g_ptr_array_unref(files);
		files = todo;
	}
	if (files->len > s->pass_max) {
		g_ptr_array_set_size(files, s->pass_max);
		pass->stats.more = true;
	}
	pass->stats.listed = files->len;
	pass->total = files->len;
	poll_pass_report(pass);

	items = g_new0(struct poll_item, s->batch_size);
	for (guint start = 0; start < files->len; start += s->batch_size) {
		size_t n = MIN(s->batch_size, files->len - start);
		char *act_error = NULL;
		for (size_t i = 0; i < n; i++) {
			const struct md_file *f = g_ptr_array_index(files, start + i);
			struct poll_item *it = &items[i];
			*it = (struct poll_item){.uid = start + i, .accept_result = 2};
			it->key = unique_name(f->name);
			if (poll_pass_stopping(pass))
				continue;
			char *path = g_build_filename(s->path, f->sub, f->name, NULL);
			GBytes *raw = NULL;
			char *why = NULL;
			int r = read_file(path, s->max_message_size, &raw, &it->too_large, &why);
			if (r == 0) {
				char *name = g_build_filename(f->sub, f->name, NULL);
				poll_pass_accept(pass, it, raw, "maildir", name);
				g_free(name);
			} else if (r == 1) {
				it->accept_result = 1;
			} else {
				if (pass->warned == NULL ||
				    !g_hash_table_contains(pass->warned, path)) {
					log_warnx("poll: event=unreadable name=%s file=%s "
						  "reason=\"%s\"%s",
						  s->name, path, why,
						  it->too_large && have_failed_to
						      ? " action=failed_to"
						      : "");
					if (pass->warned != NULL)
						g_hash_table_add(pass->warned, g_strdup(path));
				}
				g_free(why);
			}
			g_free(path);
			poll_pass_report(pass);
		}
		poll_pass_classify(pass, items, n, have_failed_to);
		poll_pass_report(pass);
		int r = 0;
		for (size_t i = 0; i < n && r == 0; i++)
			if (items[i].fate != POLL_FATE_NONE)
				r = act(pass, g_ptr_array_index(files, start + i), items[i].fate,
					&act_error);
		if (r == 0 && keep)
			r = poll_state_seen_add(pass->store, pass->mailbox_id, items, n,
						&act_error);
		for (size_t i = 0; i < n; i++)
			poll_item_clear(&items[i]);
		if (r < 0) {
			*error_r = g_strdup_printf("after storing: %s", act_error);
			g_free(act_error);
			goto out;
		}
		if (poll_pass_stopping(pass)) {
			*error_r = g_strdup("stopped");
			goto out;
		}
		if (pass->accept_error != NULL) {
			*error_r = g_strdup_printf("the store did not take a message: %s",
						   pass->accept_error);
			goto out;
		}
	}
	ret = 0;
out:
	g_free(items);
	if (present != NULL)
		g_hash_table_destroy(present);
	g_ptr_array_unref(files);
	return ret;
}

int
poll_maildir_watch_open(const char *path)
{
	int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);

	if (fd < 0)
		return -1;
	const char *subs[] = {"new", "cur"};
	for (size_t i = 0; i < G_N_ELEMENTS(subs); i++) {
		char *dir = g_build_filename(path, subs[i], NULL);
		int w = inotify_add_watch(fd, dir, IN_MOVED_TO | IN_CLOSE_WRITE | IN_CREATE);
		g_free(dir);
		if (w < 0) {
			close(fd);
			return -1;
		}
	}
	return fd;
}

void
poll_maildir_watch_drain(int fd)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));

	while (read(fd, buf, sizeof(buf)) > 0)
		;
}
