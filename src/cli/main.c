/* snapkeep: the command line.  `snapkeep COMMAND [OPTIONS] [ARGS]`; each
 * command parses its own options with GOptionContext. */
#include "config.h"

#include <glib.h>
#include <locale.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "util/log.h"

struct cli_command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

static const struct cli_command cli_commands[] = {
	{ "import", cli_import, "import snapshot mails: files, directories, Maildirs, mbox, - (stdin)" },
	{ "devices", cli_devices, "list the devices" },
	{ "show", cli_show, "show one device: identity, counters, supplies, events" },
	{ "check", cli_check, "monitoring plugin: low supplies, overdue devices, new errors (exit 0-3)" },
	{ "reparse", cli_reparse, "parse archived messages again (--failed, --all, --id N)" },
	{ "prune", cli_prune, "remove raw messages past their retention (--days N), keep parsed rows" },
	{ "verify", cli_verify, "check every archived message (hash, chains) and the database file" },
	{ "backup", cli_backup, "an online, consistent copy of the database: backup FILE" },
	{ "stats", cli_stats, "database size, rows per table, archive bytes and compression" },
	{ "migrate", cli_migrate, "copy a SQLite installation into an empty PostgreSQL: --from FILE --to URL" },
};

static void
cli_usage(FILE *out)
{
	fprintf(out, "usage: snapkeep COMMAND [OPTIONS] [ARGS]\n\ncommands:\n");
	for (size_t i = 0; i < G_N_ELEMENTS(cli_commands); i++)
		fprintf(out, "  %-10s %s\n", cli_commands[i].name, cli_commands[i].summary);
	fprintf(out, "\n`snapkeep COMMAND --help` describes a command's options.\n"
		     "The database is --db FILE (or a postgresql:// URL), else $SNAPKEEP_DB, else ./snapkeep.db.\n");
}

int
main(int argc, char **argv)
{
	enum log_level level = LOG_LEVEL_WARN;
	const char *env_level = g_getenv("SNAPKEEP_LOG_LEVEL");

	setlocale(LC_ALL, "");
	if (env_level != NULL)
		log_level_parse(env_level, &level);
	log_init("snapkeep", level);
	if (argc < 2) {
		cli_usage(stderr);
		return CLI_EX_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		cli_usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("snapkeep %s\n", PACKAGE_VERSION);
		return 0;
	}
	for (size_t i = 0; i < G_N_ELEMENTS(cli_commands); i++) {
		if (strcmp(argv[1], cli_commands[i].name) == 0) {
			/* The command sees itself as argv[0]: "snapkeep import". */
			char *name = g_strdup_printf("snapkeep %s", argv[1]);
			argv[1] = name;
			int r = cli_commands[i].run(argc - 1, argv + 1);
			g_free(name);
			return r;
		}
	}
	fprintf(stderr, "snapkeep: unknown command '%s'\n", argv[1]);
	cli_usage(stderr);
	return CLI_EX_USAGE;
}
