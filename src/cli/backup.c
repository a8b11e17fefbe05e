/* backup.c: `snapkeep backup [--db FILE] [--force] BACKUP`: an online,
 * consistent copy of the database while snapkeepd keeps writing.
 *
 * How: SQLite's VACUUM INTO on a read-only connection.  It copies one read
 * transaction's snapshot (WAL mode: writers go on meanwhile), compacted (the
 * pages freed by repacks and prunes are left out) into a temporary file
 * beside BACKUP, which is then checked (PRAGMA quick_check, schema version),
 * fsync'ed and renamed to BACKUP -- so BACKUP is either the old file or a
 * complete new copy, never half of one.  (The stepped sqlite3_backup API
 * restarts whenever another connection writes, so under a busy daemon it
 * may never finish; VACUUM INTO does not restart.)  An existing BACKUP is
 * refused (exit 73) unless --force.
 *
 * Restore: stop snapkeepd, remove DB-wal and DB-shm if present, copy BACKUP
 * to DB, start snapkeepd (the copy is in rollback-journal mode; it returns
 * to WAL on first open, and newer migrations are applied then). */
#include "config.h"

#include "cli/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "store/store.h"

/* fsync of a file or directory by name; 0 or -1 with errno. */
static int
backup_fsync_path(const char *path, int flags)
{
	int fd = open(path, flags | O_CLOEXEC);
	int r;

	if (fd < 0)
		return -1;
	r = fsync(fd);
	if (close(fd) < 0)
		r = -1;
	return r;
}

/* Checks the copy: quick_check ok and the same schema version.  NULL or the
 * reason (g_free). */
static char *
backup_check(const char *path, int want_version)
{
	struct db *db = NULL;
	struct db_stmt *stmt = NULL;
	char *problem = NULL;

	struct db_open_settings dbs = { .target = path, .readonly = true };
	char *error = NULL;

	if (db_open(&dbs, &db, &error) < 0) {
		problem = g_strdup_printf("cannot open the copy: %s", error);
		g_free(error);
		goto out;
	}
	if (db_prepare(db, "PRAGMA quick_check", &stmt) != DB_OK ||
	    db_step(stmt) != DB_ROW) {
		problem = g_strdup_printf("checking the copy: %s", db_errmsg(db));
		goto out;
	}
	if (strcmp((const char *)db_column_text(stmt, 0), "ok") != 0) {
		problem = g_strdup_printf("the copy fails PRAGMA quick_check: %s",
					  (const char *)db_column_text(stmt, 0));
		goto out;
	}
	db_finalize(stmt);
	stmt = NULL;
	if (db_prepare(db, "PRAGMA user_version", &stmt) != DB_OK ||
	    db_step(stmt) != DB_ROW || db_column_int(stmt, 0) != want_version)
		problem = g_strdup_printf("the copy has not the database's schema version %d",
					  want_version);
out:
	db_finalize(stmt);
	db_close(&db);
	return problem;
}

int
cli_backup(int argc, char **argv)
{
	g_autofree gchar *db = NULL;
	gboolean force = FALSE, quiet = FALSE;
	GOptionEntry entries[] = {
	    {"db", 'd', 0, G_OPTION_ARG_FILENAME, &db, "database file", "FILE"},
	    {"force", 'f', 0, G_OPTION_ARG_NONE, &force, "replace BACKUP if it exists", NULL},
	    {"quiet", 'q', 0, G_OPTION_ARG_NONE, &quiet, "no summary line", NULL},
	    {NULL, 0, 0, 0, NULL, NULL, NULL},
	};
	GOptionContext *octx =
	    g_option_context_new("BACKUP - an online, consistent copy of the database");
	GError *gerr = NULL;
	struct store *store = NULL;
	struct db_stmt *stmt = NULL;
	char *tmp = NULL, *dir = NULL, *problem = NULL;
	const char *path, *target;
	int ret = 1;

	g_option_context_add_main_entries(octx, entries, NULL);
	if (!g_option_context_parse(octx, &argc, &argv, &gerr)) {
		fprintf(stderr, "snapkeep backup: %s\n", gerr->message);
		g_error_free(gerr);
		g_option_context_free(octx);
		return CLI_EX_USAGE;
	}
	g_option_context_free(octx);
	if (argc != 2) {
		fprintf(stderr, "snapkeep backup: name one BACKUP file\n");
		return CLI_EX_USAGE;
	}
	target = argv[1];
	path = db != NULL ? db : cli_default_db();
	if (!force && g_file_test(target, G_FILE_TEST_EXISTS)) {
		fprintf(stderr, "snapkeep backup: %s exists (--force replaces it)\n", target);
		return CLI_EX_CANTCREAT;
	}
	if (db_target_is_postgresql(path)) {
		fprintf(stderr, "snapkeep backup: copies a SQLite database; back up PostgreSQL with its own"
				" tools (pg_dump, pg_basebackup, a replica)\n");
		return CLI_EX_USAGE;
	}
	if (cli_open_readonly(path, &store) < 0)
		return CLI_EX_NOINPUT;

	gint64 started = g_get_monotonic_time();
	dir = g_path_get_dirname(target);
	tmp = g_strdup_printf("%s.tmp-%d", target, (int)getpid());
	(void)g_unlink(tmp);
	if (db_prepare(store_db(store), "VACUUM INTO ?1", &stmt) != DB_OK) {
		problem = g_strdup(db_errmsg(store_db(store)));
		goto fail;
	}
	db_bind_text(stmt, 1, tmp, -1, DB_STATIC);
	if (db_step(stmt) != DB_DONE) {
		problem = g_strdup_printf("copying: %s", db_errmsg(store_db(store)));
		goto fail;
	}
	problem = backup_check(tmp, store_schema_version(store));
	if (problem != NULL)
		goto fail;
	if (backup_fsync_path(tmp, O_RDONLY) < 0) {
		problem = g_strdup_printf("fsync %s: %s", tmp, g_strerror(errno));
		goto fail;
	}
	if (force) {
		if (g_rename(tmp, target) < 0) {
			problem = g_strdup_printf("rename to %s: %s", target, g_strerror(errno));
			goto fail;
		}
	} else if (link(tmp, target) < 0) {
		/* link() refuses an existing target atomically, where the
		 * file system has hard links. */
		int e = errno;
		if (e == EEXIST) {
			fprintf(stderr, "snapkeep backup: %s exists (--force replaces it)\n",
				target);
			ret = CLI_EX_CANTCREAT;
			goto cleanup;
		}
		if ((e != EPERM && e != ENOTSUP && e != EOPNOTSUPP) ||
		    g_file_test(target, G_FILE_TEST_EXISTS) || g_rename(tmp, target) < 0) {
			problem = g_strdup_printf("%s: %s", target, g_strerror(e));
			goto fail;
		}
	} else {
		(void)g_unlink(tmp);
	}
	if (backup_fsync_path(dir, O_RDONLY | O_DIRECTORY) < 0 && !quiet)
		fprintf(stderr, "snapkeep backup: warning: fsync %s: %s\n", dir, g_strerror(errno));
	if (!quiet) {
		GStatBuf st;
		g_autofree char *size =
		    g_format_size(g_stat(target, &st) == 0 ? (guint64)st.st_size : 0);
		printf("backup: %s: %s, schema %d, consistent copy of %s in %.2f s\n"
		       "restore: stop snapkeepd, remove %s-wal and %s-shm, copy %s to %s\n",
		       target, size, store_schema_version(store), path,
		       (double)(g_get_monotonic_time() - started) / 1e6, path, path, target, path);
	}
	ret = CLI_EX_OK;
	goto cleanup;
fail:
	fprintf(stderr, "snapkeep backup: %s; %s not written\n", problem, target);
	ret = 1;
cleanup:
	(void)g_unlink(tmp);
	db_finalize(stmt);
	store_free(&store);
	g_free(problem);
	g_free(tmp);
	g_free(dir);
	return ret;
}
