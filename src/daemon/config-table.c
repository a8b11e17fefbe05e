/* config-table.c: the settings table and its GKeyFile reader (see config-table.h).
 * Limits: the file is read whole by GKeyFile; CONFIG_FILE_MAX bounds it. */
#include "config.h"

#include "daemon/config-table.h"

#include "store/db.h"

#include <string.h>

#include "util/log.h"

#define CONFIG_FILE_MAX (1024 * 1024)

/* Keep this table, snapkeep.conf.5 and snapkeep.conf.sample in the same
 * order, with the same defaults. */
/* clang-format off */
const struct config_key config_keys[] = {
	/* [daemon] */
	{ "daemon", "user", CONFIG_STRING, "snapkeep",
	  "Started as root, snapkeepd binds its ports, reads the TLS key and the users file, then "
	  "runs as this user (and its group).  Empty: stay as started (a warning when that is "
	  "root)." },
	{ "daemon", "state_dir", CONFIG_PATH, ".",
	  "The working directory: relative paths (the database, spool files) are taken from "
	  "here.  Must be writable by user." },
	{ "daemon", "log_level", CONFIG_LEVEL, "info",
	  "Log lines at this level and more severe go to standard error: error, warning, info "
	  "or debug." },
	{ "daemon", "pid_file", CONFIG_PATH, "",
	  "Written after start when not running in the foreground.  Empty: none." },

	/* [store] */
	{ "store", "backend", CONFIG_STRING, "sqlite",
	  "Where raw messages, the intake log and the snapshots are stored: sqlite (the file "
	  "[store] db, on this machine) or postgresql (the database [store] url, which several "
	  "snapkeepd nodes may share)." },
	{ "store", "db", CONFIG_PATH, "snapkeep.db",
	  "The SQLite database (backend = sqlite).  Created and migrated when missing." },
	{ "store", "url", CONFIG_STRING, "",
	  "The PostgreSQL database (backend = postgresql), as a libpq connection URI: "
	  "postgresql://USER@HOST:PORT/DBNAME?sslmode=verify-full.  The schema is created and "
	  "migrated when missing.  Keep the password out of it: password_file, or libpq's "
	  "PGPASSFILE (~/.pgpass) or PGPASSWORD." },
	{ "store", "password_file", CONFIG_PATH, "",
	  "A file holding the PostgreSQL password on its first line (a systemd credential, for "
	  "one), read at start.  Empty: libpq's own ways." },
	{ "store", "busy_timeout", CONFIG_DURATION, "10s",
	  "How long a writer waits for a lock held by another connection before failing." },
	{ "store", "min_free_space", CONFIG_SIZE, "64M",
	  "Below this much free space (plus the size a client declares) in the database's and "
	  "the spool's file systems, new messages are refused with 452 until space is freed." },
	{ "store", "archive_level", CONFIG_UINT, "1",
	  "zstd compression level of raw messages as they arrive, before the acknowledgement; "
	  "snapshots are compressed again afterwards against their device's previous one, so "
	  "the fastest level serves best here." },
	{ "store", "archive_keyframe_interval", CONFIG_UINT, "32",
	  "Messages of one device stored as deltas between two complete copies." },
	{ "store", "archive_cache_size", CONFIG_SIZE, "8M",
	  "Decompressed messages each parse thread keeps to compress the next message of the "
	  "same device against; one larger than an eighth of this is not kept." },
	{ "store", "retention_days", CONFIG_UINT, "0",
	  "Days raw messages are kept after they arrived; the rows parsed from them stay.  "
	  "0: forever." },
	{ "store", "retention_failed_days", CONFIG_UINT, "365",
	  "Days messages that failed to parse or were not snapshots are kept, so that a fixed "
	  "parser can still read them; at least retention_days.  0: forever." },
	{ "store", "maintenance_interval", CONFIG_DURATION, "24h",
	  "How often the daemon repacks messages left uncompressed against their device's "
	  "previous one and applies the retention; the first pass runs a minute after start.  "
	  "0: never." },

	/* [intake] */
	{ "intake", "parse_workers", CONFIG_UINT, "2",
	  "Parse worker processes; each parses one message at a time.  0: accept only; messages "
	  "stay pending until snapkeep reparse, or a start with workers, parses them." },
	{ "intake", "parse_timeout", CONFIG_DURATION, "30s",
	  "Wall-clock time a worker may spend on one message before it is killed and the "
	  "message marked failed." },
	{ "intake", "parse_cpu_time", CONFIG_DURATION, "20s",
	  "CPU time a worker may spend on one message (RLIMIT_CPU)." },
	{ "intake", "parse_memory_limit", CONFIG_SIZE, "1G",
	  "Address space of a worker process (RLIMIT_AS)." },
	{ "intake", "parse_nice", CONFIG_UINT, "10",
	  "Scheduling niceness of parsing (worker processes and the threads that commit their "
	  "rows), so that accepting and acknowledging messages wins the CPU; parsing catches up.  "
	  "0 to 19." },
	{ "intake", "commit_batch_max", CONFIG_UINT, "256",
	  "Most messages committed together in one transaction (group commit)." },
	{ "intake", "commit_delay", CONFIG_DURATION, "0ms",
	  "Wait this long for more arrivals before a commit.  0: commit at once; concurrent "
	  "arrivals still share a commit." },
	{ "intake", "queue_max_size", CONFIG_SIZE, "256M",
	  "Raw bytes waiting for their commit; beyond it arrivals are refused temporarily (SMTP "
	  "451)." },
	{ "intake", "sweep_interval", CONFIG_DURATION, "30s",
	  "With backend = postgresql: how often this node looks for pending messages that no "
	  "node is parsing (one whose node died) and parses them.  0: never." },
	{ "intake", "worker_path", CONFIG_PATH, "",
	  "The snapkeep-parse program.  Empty: beside snapkeepd, then in the package's libexec "
	  "directory." },

	/* [smtp] */
	{ "smtp", "listen", CONFIG_LIST, "127.0.0.1:2525",
	  "Addresses to accept SMTP on: ADDRESS:PORT, [IPV6]:PORT or *:PORT (every address), "
	  "comma-separated.  Port 0 picks a free port (logged)." },
	{ "smtp", "hostname", CONFIG_STRING, "",
	  "The name in the greeting and replies.  Empty: the system's host name." },
	{ "smtp", "recipients", CONFIG_LIST, "",
	  "Accepted recipients: addresses (snapshots@example.com) and whole domains "
	  "(@example.com), compared without case.  Others get 550 (a known domain) or 554 "
	  "(relay denied).  Empty: any recipient.  snapkeepd is a final destination and never "
	  "relays." },
	{ "smtp", "allowed_networks", CONFIG_LIST, "",
	  "Clients allowed to connect, as CIDR networks (192.0.2.0/24, 2001:db8::/32); others get "
	  "554 at connect.  Empty: any client." },
	{ "smtp", "max_connections", CONFIG_UINT, "200",
	  "Open SMTP connections at once; more get 421.  0: no limit." },
	{ "smtp", "max_connections_per_ip", CONFIG_UINT, "50",
	  "Open connections from one client address; more get 421.  0: no limit." },
	{ "smtp", "max_message_size", CONFIG_SIZE, "32M",
	  "Largest message accepted, announced with SIZE.  A larger one is read to its end and "
	  "refused with 552.  A snapshot with a 3 MB Device.xml is about 4 MB." },
	{ "smtp", "max_recipients", CONFIG_UINT, "100",
	  "Recipients per message; more get 452." },
	{ "smtp", "line_length_limit", CONFIG_UINT, "2048",
	  "Longest command line, in bytes without CRLF; a longer one gets 500.  Message lines "
	  "have no limit." },
	{ "smtp", "command_timeout", CONFIG_DURATION, "300s",
	  "A client silent this long outside DATA gets 421 and is disconnected." },
	{ "smtp", "data_timeout", CONFIG_DURATION, "300s",
	  "A client silent this long within DATA gets 421 and is disconnected." },
	{ "smtp", "greet_pause", CONFIG_DURATION, "0s",
	  "Wait this long before the greeting; a client that talks first gets 554 (input "
	  "before the greeting is refused with or without a pause)." },
	{ "smtp", "shutdown_timeout", CONFIG_DURATION, "30s",
	  "On SIGTERM, sessions receiving a message get this long to finish it." },
	{ "smtp", "max_errors", CONFIG_UINT, "10",
	  "Error replies in one session before 421 and disconnect.  0: no limit." },
	{ "smtp", "max_auth_failures", CONFIG_UINT, "3",
	  "Failed AUTH attempts in one session before 421 and disconnect." },
	{ "smtp", "require_tls", CONFIG_BOOL, "false",
	  "Refuse MAIL (530) until the client has used STARTTLS.  Needs tls_cert_file." },
	{ "smtp", "require_auth", CONFIG_BOOL, "false",
	  "Refuse MAIL (530) until the client has authenticated.  Needs auth_users_file." },
	{ "smtp", "tls_cert_file", CONFIG_PATH, "",
	  "PEM certificate chain for STARTTLS.  With tls_key_file, STARTTLS is offered.  "
	  "Reloaded on SIGHUP." },
	{ "smtp", "tls_key_file", CONFIG_PATH, "",
	  "PEM private key of tls_cert_file (read before privileges are dropped, and again on "
	  "SIGHUP)." },
	{ "smtp", "tls_priority", CONFIG_STRING, "NORMAL",
	  "GnuTLS priority string for the protocol versions and ciphers." },
	{ "smtp", "auth_users_file", CONFIG_PATH, "",
	  "user:crypt-hash lines (as made by mkpasswd or openssl passwd -6).  When set, AUTH "
	  "PLAIN and LOGIN are offered, over TLS only.  Reloaded on SIGHUP." },
	{ "smtp", "max_pending_commits", CONFIG_UINT, "64",
	  "Messages handed to the store at once (they share group commits); further finished "
	  "messages wait in their spool files." },
	{ "smtp", "max_pending_size", CONFIG_SIZE, "16M",
	  "Bytes of messages handed to the store at once (each read from its spool file, "
	  "hashed and compressed); bounds the daemon's memory under many large messages." },

	/* [poll.NAME]: one per polled mailbox (src/poll/, service-poll.c) */
	{ "poll.*", "url", CONFIG_STRING, "",
	  "The mailbox: imap://USER@HOST[:PORT]/MAILBOX or imaps://... (MAILBOX defaults to "
	  "INBOX), pop3://USER@HOST[:PORT] or pop3s://..., or maildir:/PATH.  Never a password "
	  "(see password_file)." },
	{ "poll.*", "password_file", CONFIG_PATH, "",
	  "File whose first line is the password for the url's user.  Read at each connection, "
	  "as the daemon's user, so it can be changed without a reload." },
	{ "poll.*", "interval", CONFIG_DURATION, "60s",
	  "Time between passes over the mailbox.  With IDLE (IMAP) or inotify (Maildir) new "
	  "mail is taken within seconds and this is the longest pause." },
	{ "poll.*", "after", CONFIG_STRING, "",
	  "What happens to a message once it is stored: move (IMAP: to move_to; Maildir: to the"
	  " move_to folder), flag (IMAP: \\Seen; Maildir: new/ to cur/ with :2,S), delete, or "
	  "keep (remember what was taken).  Empty: move for IMAP, delete for POP3, flag for "
	  "Maildir." },
	{ "poll.*", "move_to", CONFIG_STRING, "snapkeep/processed",
	  "Folder for stored messages with after = move, '/' separating levels; created when "
	  "missing.  For a Maildir, a relative name is a Maildir++ folder "
	  "(.snapkeep.processed), an absolute path a Maildir on the same file system." },
	{ "poll.*", "failed_to", CONFIG_STRING, "snapkeep/failed",
	  "Folder for messages that are not snapshots, do not parse, or are larger than "
	  "max_message_size (those are not stored).  Empty: they are treated like the others." },
	{ "poll.*", "tls_verify", CONFIG_BOOL, "true",
	  "Verify the server's certificate and name (imaps, pop3s, STARTTLS)." },
	{ "poll.*", "tls_ca_file", CONFIG_PATH, "",
	  "PEM file of the certificate authorities to trust.  Empty: the system's." },
	{ "poll.*", "starttls", CONFIG_STRING, "auto",
	  "For imap:// and pop3:// urls: required (refuse a server without STARTTLS), no (plain"
	  " text), or auto (required unless the host is a loopback address)." },
	{ "poll.*", "batch_size", CONFIG_UINT, "100",
	  "Messages fetched and stored before they are moved, flagged or deleted together." },
	{ "poll.*", "idle", CONFIG_BOOL, "true",
	  "Wait for new mail with IMAP IDLE (when the server offers it) or inotify on a "
	  "Maildir, instead of only every interval." },
	{ "poll.*", "idle_restart", CONFIG_DURATION, "25m",
	  "Re-issue IDLE after this long (servers end IDLE after 30 minutes)." },
	{ "poll.*", "timeout", CONFIG_DURATION, "60s",
	  "Connecting, and a server that sends nothing for this long, fail the pass." },
	{ "poll.*", "backoff_min", CONFIG_DURATION, "5s",
	  "Wait after a failed pass (wrong password, server away, missing mailbox), or after "
	  "an IDLE connection that failed, before the next try; doubled after each further "
	  "failure." },
	{ "poll.*", "backoff_max", CONFIG_DURATION, "15m",
	  "Longest wait between failed passes, and between IDLE connections that failed "
	  "(those never wait longer than interval)." },
	{ "poll.*", "max_message_size", CONFIG_SIZE, "64M",
	  "Larger messages are not fetched; they go to failed_to (or stay where they are)." },
	{ "poll.*", "parse_wait", CONFIG_DURATION, "10s",
	  "How long to wait for a stored message's parse result to choose between move_to and "
	  "failed_to; a message still unparsed then counts as stored." },
	{ "poll.*", "pass_max", CONFIG_UINT, "10000",
	  "Messages taken in one pass; the next pass follows at once.  Bounds the list kept in "
	  "memory." },
	{ "poll.*", "accept_jobs", CONFIG_UINT, "8",
	  "Messages of one poller handed to the store at once (they share commits)." },

	/* [web]: the web view (src/web/, service-web.c) */
	{ "web", "enabled", CONFIG_BOOL, "true",
	  "Serve the web view (fleet, devices, snapshots, attention, intake; JSON under /api/, "
	  "CSV, /metrics, /healthz).  Changed by a restart." },
	{ "web", "listen", CONFIG_STRING, "127.0.0.1:8080",
	  "ADDRESS:PORT or [IPV6]:PORT of the web view.  Port 0 picks a free port (logged).  "
	  "When the default address is taken the daemon runs without the web view and logs a "
	  "warning; an address set here must be free.  A non-loopback address needs "
	  "tls_cert_file, tls_key_file and users_file, or allow_insecure_remote." },
	{ "web", "tls_cert_file", CONFIG_PATH, "",
	  "PEM certificate chain: with tls_key_file the web view speaks HTTPS only.  Reloaded "
	  "on SIGHUP." },
	{ "web", "tls_key_file", CONFIG_PATH, "",
	  "PEM private key of tls_cert_file (read before privileges are dropped, and again on "
	  "SIGHUP)." },
	{ "web", "users_file", CONFIG_PATH, "",
	  "user:crypt-hash lines (mkpasswd, openssl passwd -6): when set, every page but "
	  "/healthz needs HTTP Basic authentication, and reprocessing needs a logged-in user.  "
	  "Reloaded on SIGHUP." },
	{ "web", "display_timezone", CONFIG_STRING, "",
	  "Time zone of the times shown (an IANA name such as Europe/Berlin, or UTC); UTC is "
	  "shown on hover.  Empty: the system's zone." },
	{ "web", "allow_insecure_remote", CONFIG_BOOL, "false",
	  "Allow a non-loopback listen address without TLS and authentication (logged as a "
	  "warning at start)." },
	{ "web", "allowed_hosts", CONFIG_LIST, "",
	  "Host names the web view answers to besides localhost, the listen address and the "
	  "system's host name (IP addresses always work); other Host headers get 421, which "
	  "stops DNS rebinding.  * allows any name (not recommended)." },
	{ "web", "max_connections", CONFIG_UINT, "64",
	  "Open HTTP connections at once." },
	{ "web", "max_connections_per_ip", CONFIG_UINT, "16",
	  "Open HTTP connections from one client address." },
	{ "web", "connection_timeout", CONFIG_DURATION, "30s",
	  "An idle HTTP connection is closed after this long." },
	{ "web", "threads", CONFIG_UINT, "4",
	  "Threads serving requests, each with its own read-only database connection." },
	{ "web", "max_request_size", CONFIG_SIZE, "32K",
	  "Request line and headers of one request; larger requests are refused." },
	{ "web", "max_url_length", CONFIG_UINT, "2048",
	  "Longest URL, in bytes; longer ones get 414." },
	{ "web", "max_query_params", CONFIG_UINT, "32",
	  "Query parameters in one URL; more get 400." },
	{ "web", "max_post_size", CONFIG_SIZE, "4K",
	  "Largest form body (the reprocess action); larger ones get 413." },
	{ "web", "page_size", CONFIG_UINT, "100",
	  "Rows per page of the fleet and the JSON lists, unless per_page says otherwise." },
	{ "web", "max_page_size", CONFIG_UINT, "1000",
	  "Largest per_page a request may ask for." },
	{ "web", "recent_days", CONFIG_UINT, "30",
	  "The window of \"recent\" pages per day, recent errors and the supply slope behind "
	  "days-to-empty." },
	{ "web", "overdue_percent", CONFIG_UINT, "200",
	  "A device is overdue when its last snapshot is older than this share of its usual "
	  "sending interval (200: twice the interval)." },
	{ "web", "overdue_default_interval", CONFIG_DURATION, "168h",
	  "The sending interval assumed for a device with a single snapshot." },
	{ "web", "attention_days", CONFIG_UINT, "7",
	  "The attention page lists devices first seen, and error events first reported, within "
	  "this many days." },
	{ "web", "max_api_points", CONFIG_UINT, "100000",
	  "Most rows in one counter or supply history answer (JSON and CSV); ask for a shorter "
	  "range or a longer interval beyond it." },
	{ "web", "auth_cache_time", CONFIG_DURATION, "5m",
	  "A verified login is remembered this long (as a hash), so that Basic authentication "
	  "does not run crypt(3) on every request." },
	{ "web", "db_cache_size", CONFIG_SIZE, "32M",
	  "SQLite page cache of each of the web view's database connections (one per thread)." },
	{ "web", "db_mmap_size", CONFIG_SIZE, "1G",
	  "How much of the database each web connection reads through a memory map (0: none); "
	  "address space, not memory: the pages are the kernel's page cache." },
	{ "web", "assets_dir", CONFIG_PATH, "",
	  "A directory with templates/ and static/ to use instead of the built-in templates, "
	  "CSS and JavaScript (a copy of the installed share/snapkeep/web).  Read at start and "
	  "on SIGHUP." },
};
/* clang-format on */

const size_t config_keys_count = G_N_ELEMENTS(config_keys);

struct config {
	GKeyFile *file;
	char *path;
	GHashTable *overrides; /* "section\nkey" -> value */
};

static const char *const config_type_names[] = {
    "string", "path", "list", "boolean", "integer", "size", "duration", "level",
};

const char *
config_type_name(enum config_type type)
{
	return config_type_names[type];
}

/* The table row for section (concrete: "poll.x" matches "poll.*") and key. */
static const struct config_key *
config_find(const char *section, const char *key)
{
	for (size_t i = 0; i < config_keys_count; i++) {
		const struct config_key *k = &config_keys[i];
		size_t n = strlen(k->section);
		bool section_ok = strcmp(k->section, section) == 0;
		if (!section_ok && n > 2 && strcmp(k->section + n - 2, ".*") == 0)
			section_ok =
			    strncmp(section, k->section, n - 1) == 0 && section[n - 1] != '\0';
		if (section_ok && (key == NULL || strcmp(k->key, key) == 0))
			return k;
	}
	return NULL;
}

static int
parse_bool(const char *value, bool *b_r)
{
	static const char *const yes[] = {"true", "yes", "on", "1"};
	static const char *const no[] = {"false", "no", "off", "0"};
	for (size_t i = 0; i < G_N_ELEMENTS(yes); i++) {
		if (g_ascii_strcasecmp(value, yes[i]) == 0) {
			*b_r = true;
			return 0;
		}
		if (g_ascii_strcasecmp(value, no[i]) == 0) {
			*b_r = false;
			return 0;
		}
	}
	return -1;
}

/* "<digits><suffix>" with one of suffixes/multipliers. */
static int
parse_scaled(const char *value, const char *const *suffixes, const uint64_t *mult, size_t n,
	     uint64_t *out_r)
{
	size_t digits = strspn(value, "0123456789");
	guint64 number;
	char *num;
	int ok;

	if (digits == 0 || digits > 19)
		return -1;
	num = g_strndup(value, digits);
	ok = g_ascii_string_to_unsigned(num, 10, 0, G_MAXUINT64, &number, NULL);
	g_free(num);
	if (!ok)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (g_ascii_strcasecmp(value + digits, suffixes[i]) == 0) {
			if (mult[i] != 0 && number > G_MAXUINT64 / mult[i])
				return -1;
			*out_r = number * mult[i];
			return 0;
		}
	}
	return -1;
}

static int
parse_size(const char *value, uint64_t *size_r)
{
	static const char *const suffixes[] = {"", "K", "M", "G", "T"};
	static const uint64_t mult[] = {1, 1024, 1024 * 1024, 1024 * 1024 * 1024,
					1024ull * 1024 * 1024 * 1024};
	return parse_scaled(value, suffixes, mult, G_N_ELEMENTS(suffixes), size_r);
}

static int
parse_ms(const char *value, uint64_t *ms_r)
{
	static const char *const suffixes[] = {"", "ms", "s", "m", "h"};
	static const uint64_t mult[] = {1000, 1, 1000, 60 * 1000, 3600 * 1000};
	if (parse_scaled(value, suffixes, mult, G_N_ELEMENTS(suffixes), ms_r) < 0)
		return -1;
	return *ms_r <= G_MAXUINT ? 0 : -1;
}

int
config_value_check(enum config_type type, const char *value, char **error_r)
{
	uint64_t u;
	guint64 g;
	bool b;
	enum log_level level;

	switch (type) {
	case CONFIG_STRING:
	case CONFIG_PATH:
	case CONFIG_LIST:
		if (strchr(value, '\n') != NULL)
			goto bad;
		return 0;
	case CONFIG_BOOL:
		if (parse_bool(value, &b) < 0)
			goto bad;
		return 0;
	case CONFIG_UINT:
		if (!g_ascii_string_to_unsigned(value, 10, 0, G_MAXUINT, &g, NULL))
			goto bad;
		return 0;
	case CONFIG_SIZE:
		if (parse_size(value, &u) < 0)
			goto bad;
		return 0;
	case CONFIG_DURATION:
		if (parse_ms(value, &u) < 0)
			goto bad;
		return 0;
	case CONFIG_LEVEL:
		if (log_level_parse(value, &level) < 0)
			goto bad;
		return 0;
	}
bad:
	*error_r = g_strdup_printf("\"%s\" is not a valid %s", value, config_type_name(type));
	return -1;
}

int
config_load(const char *path, struct config **config_r, char **error_r)
{
	struct config *config = g_new0(struct config, 1);
	GError *gerr = NULL;
	gchar **groups = NULL;
	gchar *text = NULL;
	gsize len = 0;
	int ret = -1;

	config->file = g_key_file_new();
	config->overrides = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	g_key_file_set_list_separator(config->file, ',');
	if (path != NULL) {
		config->path = g_strdup(path);
		if (!g_file_get_contents(path, &text, &len, &gerr)) {
			*error_r = g_strdup_printf("%s", gerr->message);
			goto out;
		}
		if (len > CONFIG_FILE_MAX) {
			*error_r =
			    g_strdup_printf("%s: larger than %d bytes", path, CONFIG_FILE_MAX);
			goto out;
		}
		if (!g_key_file_load_from_data(config->file, text, len, G_KEY_FILE_NONE, &gerr)) {
			*error_r = g_strdup_printf("%s: %s", path, gerr->message);
			goto out;
		}
	}
	groups = g_key_file_get_groups(config->file, NULL);
	for (gsize i = 0; groups[i] != NULL; i++) {
		gchar **keys = g_key_file_get_keys(config->file, groups[i], NULL, NULL);
		if (config_find(groups[i], NULL) == NULL) {
			*error_r = g_strdup_printf("%s: unknown section [%s]", path, groups[i]);
			g_strfreev(keys);
			goto out;
		}
		for (gsize j = 0; keys != NULL && keys[j] != NULL; j++) {
			const struct config_key *k = config_find(groups[i], keys[j]);
			char *value, *why = NULL;
			if (k == NULL) {
				*error_r = g_strdup_printf("%s: [%s] unknown key \"%s\"", path,
							   groups[i], keys[j]);
				g_strfreev(keys);
				goto out;
			}
			value = g_key_file_get_string(config->file, groups[i], keys[j], &gerr);
			if (value == NULL) {
				*error_r = g_strdup_printf("%s: [%s] %s: %s", path, groups[i],
							   keys[j], gerr->message);
				g_strfreev(keys);
				goto out;
			}
			if (config_value_check(k->type, g_strstrip(value), &why) < 0) {
				*error_r = g_strdup_printf("%s: [%s] %s: %s", path, groups[i],
							   keys[j], why);
				g_free(why);
				g_free(value);
				g_strfreev(keys);
				goto out;
			}
			g_free(value);
		}
		g_strfreev(keys);
	}
	*config_r = g_steal_pointer(&config);
	ret = 0;
out:
	g_clear_error(&gerr);
	g_strfreev(groups);
	g_free(text);
	config_free(&config);
	return ret;
}

void
config_free(struct config **config)
{
	if (*config == NULL)
		return;
	g_key_file_free((*config)->file);
	g_hash_table_destroy((*config)->overrides);
	g_free((*config)->path);
	g_free(*config);
	*config = NULL;
}

const char *
config_file(const struct config *config)
{
	return config->path;
}

int
config_set(struct config *config, const char *section, const char *key, const char *value,
	   char **error_r)
{
	const struct config_key *k = config_find(section, key);
	char *why = NULL;
	if (k == NULL) {
		*error_r = g_strdup_printf("unknown setting [%s] %s", section, key);
		return -1;
	}
	if (config_value_check(k->type, value, &why) < 0) {
		*error_r = g_strdup_printf("[%s] %s: %s", section, key, why);
		g_free(why);
		return -1;
	}
	g_hash_table_replace(config->overrides, g_strdup_printf("%s\n%s", section, key),
			     g_strdup(value));
	return 0;
}

/* The text of a setting: override, file, default.  The returned string is
 * owned by the config (file values are cached as overrides). */
const char *
config_get(const struct config *config, const char *section, const char *key)
{
	const struct config_key *k = config_find(section, key);
	char *id;
	const char *value;

	if (k == NULL)
		g_error("config: [%s] %s is not in the settings table", section, key);
	id = g_strdup_printf("%s\n%s", section, key);
	value = g_hash_table_lookup(config->overrides, id);
	if (value == NULL) {
		char *v = g_key_file_get_string(config->file, section, key, NULL);
		if (v != NULL) {
			g_strstrip(v);
			g_hash_table_replace(config->overrides, g_strdup(id), v);
			value = v;
		} else {
			value = k->default_value;
		}
	}
	g_free(id);
	return value;
}

static const struct config_key *
config_typed(const char *section, const char *key, enum config_type type)
{
	const struct config_key *k = config_find(section, key);
	if (k == NULL || k->type != type)
		g_error("config: [%s] %s is not a %s in the settings table", section, key,
			config_type_name(type));
	return k;
}

const char *
config_store_target(const struct config *config)
{
	if (strcmp(config_get(config, "store", "backend"), "postgresql") == 0)
		return config_get(config, "store", "url");
	return config_get(config, "store", "db");
}

int
config_store_check(const struct config *config, char **error_r)
{
	const char *backend = config_get(config, "store", "backend");
	const char *url = config_get(config, "store", "url");

	if (strcmp(backend, "sqlite") == 0)
		return 0;
	if (strcmp(backend, "postgresql") != 0) {
		*error_r = g_strdup_printf("[store] backend: %s is neither sqlite nor postgresql", backend);
		return -1;
	}
	if (!db_target_is_postgresql(url)) {
		*error_r = g_strdup_printf("[store] url: backend = postgresql needs a postgresql:// URL, not \"%s\"",
					   url);
		return -1;
	}
	return 0;
}

bool
config_get_bool(const struct config *config, const char *section, const char *key)
{
	bool b = false;
	config_typed(section, key, CONFIG_BOOL);
	parse_bool(config_get(config, section, key), &b);
	return b;
}

unsigned
config_get_uint(const struct config *config, const char *section, const char *key)
{
	guint64 u = 0;
	config_typed(section, key, CONFIG_UINT);
	g_ascii_string_to_unsigned(config_get(config, section, key), 10, 0, G_MAXUINT, &u, NULL);
	return (unsigned)u;
}

uint64_t
config_get_size(const struct config *config, const char *section, const char *key)
{
	uint64_t u = 0;
	config_typed(section, key, CONFIG_SIZE);
	parse_size(config_get(config, section, key), &u);
	return u;
}

unsigned
config_get_ms(const struct config *config, const char *section, const char *key)
{
	uint64_t u = 0;
	config_typed(section, key, CONFIG_DURATION);
	parse_ms(config_get(config, section, key), &u);
	return (unsigned)u;
}

char **
config_get_list(const struct config *config, const char *section, const char *key)
{
	config_typed(section, key, CONFIG_LIST);
	gchar **items = g_strsplit(config_get(config, section, key), ",", -1);
	guint j = 0;
	for (guint i = 0; items[i] != NULL; i++) {
		g_strstrip(items[i]);
		if (items[i][0] == '\0')
			g_free(items[i]);
		else
			items[j++] = items[i];
	}
	items[j] = NULL;
	return items;
}

char **
config_sections(const struct config *config, const char *prefix)
{
	gchar **groups = g_key_file_get_groups(config->file, NULL);
	GPtrArray *names = g_ptr_array_new();
	size_t n = strlen(prefix);
	for (gsize i = 0; groups[i] != NULL; i++)
		if (strncmp(groups[i], prefix, n) == 0 && groups[i][n] == '.' &&
		    groups[i][n + 1] != '\0')
			g_ptr_array_add(names, g_strdup(groups[i] + n + 1));
	g_ptr_array_add(names, NULL);
	g_strfreev(groups);
	return (char **)g_ptr_array_free(names, FALSE);
}
