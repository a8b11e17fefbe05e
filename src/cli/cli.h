/* cli.h: the snapkeep command line: one function per subcommand, sharing
 * the option conventions (--db everywhere, --json where output is data).
 * Exit codes follow sysexits.h where an MTA reads them (import -). */
#ifndef SK_CLI_H
#define SK_CLI_H

#include <json-glib/json-glib.h>
#include "store/db.h"
#include <stdbool.h>

#define CLI_EX_OK 0
#define CLI_EX_USAGE 64
#define CLI_EX_DATAERR 65
#define CLI_EX_NOINPUT 66
#define CLI_EX_SOFTWARE 70
#define CLI_EX_CANTCREAT 73
#define CLI_EX_TEMPFAIL 75

int cli_import(int argc, char **argv);
int cli_devices(int argc, char **argv);
int cli_show(int argc, char **argv);
int cli_reparse(int argc, char **argv);
int cli_check(int argc, char **argv);
int cli_prune(int argc, char **argv);
int cli_verify(int argc, char **argv);
int cli_backup(int argc, char **argv);
int cli_stats(int argc, char **argv);
int cli_migrate(int argc, char **argv);

/* The database path: --db, else $SNAPKEEP_DB, else snapkeep.db. */
const char *cli_default_db(void);

/* Prints the rows of a prepared statement as an aligned table, or as a
 * JSON array of objects (column names as keys) when json is set.  Steps the
 * statement to the end.  0 or -1. */
int cli_print_rows(struct db_stmt *stmt, bool json, const char *indent);

/* The rows of a prepared statement as a JSON array of objects (caller
 * unrefs); *rc_r is the last sqlite3_step result (DB_DONE on success). */

JsonNode *cli_rows_to_json(struct db_stmt *stmt, int *rc_r);
/* Prints a JSON node, pretty, with a newline. */
void cli_print_json(JsonNode *root);

/* Opens the database read-only for queries; prints the reason on failure. */
struct store;
int cli_open_readonly(const char *path, struct store **store_r);

#endif
