/* config-table.h: snapkeepd's configuration: one table of every setting, read
 * from an INI file with GKeyFile.
 *
 * config_keys[] is THE list: {section, key, type, default, doc}.  The
 * manual page snapkeep.conf(5) and contrib/snapkeep.conf.sample list the
 * same keys with the same types and defaults, in the same order
 * (tests/unit/test-smtp-config.c compares the three).  A part of the daemon
 * that needs a setting adds a row here, a paragraph to the manual page and
 * a line to the sample.
 *
 * Sections: "daemon", "store", "intake", "smtp", and, for settings that
 * repeat per instance, a pattern "poll.*" that every [poll.NAME] section
 * matches (config_sections() lists the NAMEs).
 *
 * Values: text, as in the table's defaults.  Types:
 *   string, path     text (paths relative to [daemon] state_dir)
 *   list             comma-separated; empty items are dropped
 *   boolean          true/false (yes/no, on/off, 1/0)
 *   integer          0 .. 2^32-1
 *   size             bytes: 1048576, 64K, 32M, 1G (powers of 1024)
 *   duration         500ms, 30s, 5m, 1h (a plain number is seconds)
 *   level            error, warning, info, debug
 * An unknown section or key, or a value that does not parse, is an error
 * naming the file, section and key: admins learn about typos at start (and
 * with snapkeepd -n), not when the setting is first needed. */
#ifndef SK_DAEMON_CONFIG_H
#define SK_DAEMON_CONFIG_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

enum config_type {
	CONFIG_STRING,
	CONFIG_PATH,
	CONFIG_LIST,
	CONFIG_BOOL,
	CONFIG_UINT,
	CONFIG_SIZE,
	CONFIG_DURATION,
	CONFIG_LEVEL,
};

struct config_key {
	const char *section; /* "smtp", or "poll.*" */
	const char *key;
	enum config_type type;
	const char *default_value; /* "" for none */
	const char *doc;	   /* a sentence or two for the manual page */
};

extern const struct config_key config_keys[];
extern const size_t config_keys_count;

/* "string", "path", "list", "boolean", "integer", "size", "duration", "level". */
const char *config_type_name(enum config_type type);
/* Checks value against type: 0, or -1 with *error_r. */
int config_value_check(enum config_type type, const char *value, char **error_r);

struct config;

/* Reads path (NULL: no file, every default).  0, or -1 with *error_r. */
int config_load(const char *path, struct config **config_r, char **error_r);
void config_free(struct config **config);
/* The file read, or NULL. */
const char *config_file(const struct config *config);

/* Overrides (command-line flags); checked like file values.  0 or -1. */
int config_set(struct config *config, const char *section, const char *key, const char *value,
	       char **error_r);

/* Getters for keys of the table (asking for a key not in it is a bug and
 * aborts).  section may be a concrete "poll.NAME". */
const char *config_get(const struct config *config, const char *section, const char *key);
/* The store the settings name: [store] url when backend = postgresql, else
 * [store] db.  config_store_check says what is wrong with them (0 or -1). */
const char *config_store_target(const struct config *config);
int config_store_check(const struct config *config, char **error_r);
bool config_get_bool(const struct config *config, const char *section, const char *key);
unsigned config_get_uint(const struct config *config, const char *section, const char *key);
uint64_t config_get_size(const struct config *config, const char *section, const char *key);
unsigned config_get_ms(const struct config *config, const char *section, const char *key);
/* A new NULL-terminated list (g_strfreev); empty when unset. */
char **config_get_list(const struct config *config, const char *section, const char *key);

/* The NAMEs of the sections "prefix.NAME" present in the file (g_strfreev). */
char **config_sections(const struct config *config, const char *prefix);

#endif
