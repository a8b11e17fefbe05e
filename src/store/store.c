/* store.c: the SQLite store (see store.h): migrations embedded from
 * schema/NNN-*.sql, the raw archive (archive.h) and the rows of snapshots.
 *
 * Connection set-up: WAL, a busy timeout, foreign keys on, synchronous FULL
 * on durable connections (the accept path: an acknowledged message must
 * survive power loss) and NORMAL otherwise (rows can be re-derived from the
 * archive by reparse).  A read-only connection is opened with
 * SQLITE_OPEN_READONLY, never migrates and refuses a schema older than this
 * program's.
 *
 * Archive states of a message (messages.method), and who moves them:
 *
 *   (accept) --store_message_add--> 'zstd' --store_result_commit, device known-->
 *   'skc1' (delta on the device's latest 'skc1' message, or a keyframe every
 *   archive_keyframe_interval links) --store_prune, past retention--> 'pruned'
 *   (row kept, blob NULL).
 *
 *   The repack is built by store_repack_prepare before the write transaction
 *   (repack_build: pack, compress, read back, hash checked) and applied by
 *   store_result_commit inside it (repack_apply: the base must still be the
 *   same 'skc1' message at the same depth, else the message stays 'zstd'
 *   until store_repack_backlog).  Without a prepared repack the whole repack
 *   runs inside the transaction.  The only rewrite of an 'skc1' message is
 *   store_prune's re-encoding as a keyframe (same container, verified) when
 *   its base is about to be pruned; a message a kept 'skc1' message still
 *   uses as its base is never pruned (checked in each prune transaction).
 *   Only 'skc1' messages are bases and a delta is one link deeper than its
 *   base, so a chain has no cycle and at most archive_keyframe_interval
 *   links.
 *
 * Every statement is prepared once (cached on the struct) with bound
 * parameters; the only SQL built at run time is the integer of
 * PRAGMA user_version and store_stats_get's row counts (table names from
 * sqlite_schema, quoted with %w).  Functions that write run inside the
 * caller's transaction (a savepoint), or their own BEGIN IMMEDIATE when
 * there is none; store_prune and store_repack_backlog run their own short
 * transactions. */
#include "config.h"

#include "store/store.h"

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <string.h>

#include "store/archive.h"
#include "util/log.h"
#include "util/sktime.h"

/* From the generated schema-resources.c (glib-compile-resources). */
GResource *store_schema_get_resource(void);

#define SCHEMA_RESOURCE_DIR "/org/snapkeep/schema"
/* PostgreSQL's migrations, numbered alike (schema/postgresql/). */
#define SCHEMA_RESOURCE_DIR_PG "/org/snapkeep/schema/postgresql"
/* The advisory lock key under which PostgreSQL migrations run, so that
 * nodes starting together migrate one after the other (message ids, the
 * keys of parse claims, are positive; see PG_LOCK_MAILBOX_BASE). */
#define PG_MIGRATE_LOCK_KEY -1
/* Links followed when reading a chain; a sane chain has at most
 * archive_keyframe_interval, this only stops a damaged database. */
#define ARCHIVE_CHAIN_MAX 4096
/* Messages past their retention (see store_prune; ?1 and ?2 are cut-offs in
 * microseconds).  Pending messages are never pruned. */
#define PRUNE_CRITERIA \
	"method IN ('zstd', 'skc1') AND ((outcome IN ('stored', 'duplicate') AND first_received_us < ?1)" \
	" OR (outcome IN ('failed', 'not-snapshot') AND first_received_us < ?2))"

enum stmt_id {
	STMT_MSG_FIND,
	STMT_MSG_INSERT,
	STMT_MSG_ROW,
	STMT_MSG_STATE,
	STMT_MSG_HINTS,
	STMT_MSG_OUTCOME,
	STMT_MSG_LIST_ALL,
	STMT_MSG_LIST_OUTCOME,
	STMT_INTAKE_INSERT,
	STMT_INTAKE_OUTCOME,
	STMT_INTAKE_SERIAL,
	STMT_DEV_FIND,
	STMT_DEV_LOCK,
	STMT_DEV_INSERT,
	STMT_DEV_SEEN,
	STMT_DEV_LATEST,
	STMT_SNAP_FIND,
	STMT_SNAP_INSERT,
	STMT_SNAP_PREV,
	STMT_SNAP_NEXT,
	STMT_NAME_FIND,
	STMT_NAME_INSERT,
	STMT_COUNTER_INSERT,
	STMT_MEDIA_INSERT,
	STMT_DROPS,
	STMT_SUPPLY_FIND,
	STMT_SUPPLY_INSERT,
	STMT_SUPPLY_UPDATE,
	STMT_SUPPLY_FIRST,
	STMT_LEVEL_INSERT,
	STMT_SUPPLY_CURRENT,
	STMT_EVENT_FIND,
	STMT_EVENT_INSERT,
	STMT_EVENT_FIRST,
	STMT_EVENT_LAST,
	STMT_EVENTS_UPSERT,
	STMT_ARCH_BASE,
	STMT_ARCH_UPDATE,
	STMT_ARCH_BASE_CHECK,
	STMT_ARCH_BACKLOG,
	STMT_SNAP_REFRESH,
	STMT_COUNTERS_CLEAR,
	STMT_MEDIA_CLEAR,
	STMT_DROPS_CLEAR,
	STMT_LEVELS_CLEAR,
	STMT_CURRENT_CLEAR,
	STMT_CURRENT_FILL,
	STMT_SUPPLY_ORPHANS,
	STMT_SUPPLY_SPAN,
	STMT_DROPS_DEPENDENTS,
	STMT_PRUNE_CANDIDATES,
	STMT_PRUNE_DEPENDANTS,
	STMT_PRUNE_REENCODE,
	STMT_PRUNE_DEPTHS,
	STMT_PRUNE_BATCH_CLEAR,
	STMT_PRUNE_BATCH_ADD,
	STMT_PRUNE_BATCH_LOCK,
	STMT_PRUNE_BATCH_KEEP,
	STMT_PRUNE_BATCH_SUM,
	STMT_PRUNE_APPLY,
	STMT_VERIFY_LIST,
	STMT_COUNT
};

static const char *const stmt_sql[STMT_COUNT] = {
	[STMT_MSG_FIND] = "SELECT m.id, d.serial FROM messages m LEFT JOIN devices d ON d.id = m.device_id"
			  " WHERE m.sha256 = ?1",
	[STMT_MSG_INSERT] = "INSERT INTO messages (sha256, raw_size, method, stored_size,"
			    " first_received_utc, first_received_us, blob)"
			    " VALUES (?1, ?2, 'zstd', ?3, ?4, ?5, ?6)"
			    " ON CONFLICT (sha256) DO NOTHING RETURNING id",
	[STMT_MSG_ROW] = "SELECT method, base_id, raw_size, sha256, chain_depth, blob, pruned_utc FROM messages"
			 " WHERE id = ?1",
	[STMT_MSG_STATE] = "SELECT outcome, device_id, first_received_utc, first_received_us"
			   " FROM messages WHERE id = ?1",
	[STMT_MSG_HINTS] = "UPDATE messages SET hint_subject = ?2, hint_from = ?3, hint_date_utc = ?4,"
			   " hint_message_id = ?5, hint_serial = ?6, hint_time_utc = ?7 WHERE id = ?1",
	[STMT_MSG_OUTCOME] = "UPDATE messages SET outcome = ?2, detail = ?3,"
			     " device_id = COALESCE(?4, device_id) WHERE id = ?1",
	/* Pruned messages have no bytes to parse again. */
	[STMT_MSG_LIST_ALL] = "SELECT id FROM messages WHERE id > ?1 AND method <> 'pruned' ORDER BY id LIMIT ?2",
	[STMT_MSG_LIST_OUTCOME] = "SELECT id FROM messages WHERE outcome = ?3 AND id > ?1 AND method <> 'pruned'"
				  " ORDER BY id LIMIT ?2",
	[STMT_INTAKE_INSERT] = "INSERT INTO intake (received_utc, received_us, source, source_name, peer,"
			       " helo, mail_from, rcpt_to, subject, outcome, detail, serial, message_id)"
			       " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) RETURNING id",
	[STMT_INTAKE_OUTCOME] = "UPDATE intake SET outcome = ?2, detail = ?3, serial = COALESCE(?4, serial),"
				" snapshot_id = COALESCE(?5, snapshot_id)"
				" WHERE message_id = ?1 AND outcome IN ('pending', 'failed')",
	[STMT_INTAKE_SERIAL] = "UPDATE intake SET serial = ?2, snapshot_id = COALESCE(snapshot_id, ?3)"
			       " WHERE message_id = ?1 AND serial IS NULL",
	[STMT_DEV_FIND] = "SELECT id FROM devices WHERE serial = ?1",
	[STMT_DEV_LOCK] = "SELECT id FROM devices WHERE id = ?1",
	[STMT_DEV_INSERT] = "INSERT INTO devices (serial, first_seen_utc, first_received_utc)"
			    " VALUES (?1, ?2, ?3) ON CONFLICT (serial) DO NOTHING RETURNING id",
	[STMT_DEV_SEEN] = "UPDATE devices SET snapshot_count = snapshot_count + 1,"
			  " first_seen_utc = MIN(first_seen_utc, ?2),"
			  " first_received_utc = MIN(first_received_utc, ?3),"
			  " last_received_utc = MAX(COALESCE(last_received_utc, ''), ?3) WHERE id = ?1",
	[STMT_DEV_LATEST] = "UPDATE devices SET product_number = COALESCE(?2, product_number),"
			    " model = COALESCE(?3, model), firmware = COALESCE(?4, firmware),"
			    " firmware_date = COALESCE(?5, firmware_date), hostname = COALESCE(?6, hostname),"
			    " ip_address = COALESCE(?7, ip_address), mac_address = COALESCE(?8, mac_address),"
			    " device_uuid = COALESCE(?9, device_uuid), locale = COALESCE(?10, locale),"
			    " dialect = COALESCE(?11, dialect), last_snapshot_id = ?12, last_snapshot_utc = ?13,"
			    " total_impressions = ?14, mono_impressions = ?15, color_impressions = ?16"
			    " WHERE id = ?1 AND (last_snapshot_utc IS NULL OR last_snapshot_utc <= ?13)",
	[STMT_SNAP_FIND] = "SELECT id, message_id FROM snapshots WHERE device_id = ?1 AND taken_utc = ?2",
	[STMT_SNAP_INSERT] = "INSERT INTO snapshots (device_id, message_id, taken_utc, taken_unix,"
			     " taken_offset_min, taken_source, received_utc, clock_skew_s, dialect, firmware,"
			     " hostname, ip_address)"
			     " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) RETURNING id",
	[STMT_SNAP_PREV] = "SELECT id FROM snapshots WHERE device_id = ?1 AND taken_utc < ?2"
			   " ORDER BY taken_utc DESC LIMIT 1",
	[STMT_SNAP_NEXT] = "SELECT id FROM snapshots WHERE device_id = ?1 AND taken_utc > ?2"
			   " ORDER BY taken_utc LIMIT 1",
	[STMT_NAME_FIND] = "SELECT id FROM counter_names WHERE name = ?1",
	[STMT_NAME_INSERT] = "INSERT INTO counter_names (name) VALUES (?1)"
			      " ON CONFLICT (name) DO NOTHING RETURNING id",
	[STMT_COUNTER_INSERT] = "INSERT INTO counters (snapshot_id, name_id, value, value_real)"
				" VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
	[STMT_MEDIA_INSERT] = "INSERT INTO media_counters (snapshot_id, media_size, name_id, value,"
			      " value_real) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
	[STMT_DROPS] = "INSERT INTO counter_drops (snapshot_id, name_id, previous_snapshot_id,"
		       " previous_value, value)"
		       " SELECT c.snapshot_id, c.name_id, p.snapshot_id, p.value, c.value"
		       " FROM counters c JOIN counters p ON p.snapshot_id = ?2 AND p.name_id = c.name_id"
		       " WHERE c.snapshot_id = ?1 AND c.value < p.value ON CONFLICT DO NOTHING",
	[STMT_SUPPLY_FIND] = "SELECT id FROM supplies WHERE device_id = ?1 AND supply_key = ?2"
			     " AND supply_serial = ?3",
	[STMT_SUPPLY_INSERT] = "INSERT INTO supplies (device_id, supply_key, supply_serial, label, color,"
			       " type, description, product_number, brand, installed_date,"
			       " first_snapshot_id, first_reported_utc, last_reported_utc)"
			       " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12) RETURNING id",
	[STMT_SUPPLY_UPDATE] = "UPDATE supplies SET label = ?2, color = ?3, type = ?4, description = ?5,"
			       " product_number = ?6, brand = ?7, installed_date = ?8,"
			       " last_reported_utc = ?9 WHERE id = ?1 AND last_reported_utc <= ?9",
	[STMT_SUPPLY_FIRST] = "UPDATE supplies SET first_snapshot_id = ?2, first_reported_utc = ?3"
			      " WHERE id = ?1 AND first_reported_utc > ?3",
	[STMT_LEVEL_INSERT] = "INSERT INTO supply_levels (snapshot_id, supply_id, level_percent,"
			      " low_threshold, pages, state) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
			      " ON CONFLICT DO NOTHING",
	[STMT_SUPPLY_CURRENT] = "INSERT INTO supply_current (device_id, supply_key, supply_id, snapshot_id,"
				" reported_utc) VALUES (?1, ?2, ?3, ?4, ?5)"
				" ON CONFLICT (device_id, supply_key) DO UPDATE SET"
				" supply_id = excluded.supply_id, snapshot_id = excluded.snapshot_id,"
				" reported_utc = excluded.reported_utc"
				" WHERE excluded.reported_utc >= supply_current.reported_utc",
	[STMT_EVENT_FIND] = "SELECT id, first_reported_utc, last_reported_utc FROM events"
			    " WHERE device_id = ?1 AND COALESCE(log, '') = ?2"
			    " AND COALESCE(sequence, -1) = ?3 AND COALESCE(code, '') = ?4"
			    " AND COALESCE(occurred_utc, '') = ?5",
	[STMT_EVENT_INSERT] = "INSERT INTO events (device_id, log, sequence, code, occurred_utc,"
			      " occurred_offset_min, description, page_count, payload_json,"
			      " first_snapshot_id, first_reported_utc, last_snapshot_id, last_reported_utc)"
			      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?10, ?11)",
	[STMT_EVENT_FIRST] = "UPDATE events SET first_snapshot_id = ?2, first_reported_utc = ?3"
			     " WHERE id = ?1 AND first_reported_utc > ?3",
	[STMT_EVENT_LAST] = "UPDATE events SET last_snapshot_id = ?2, last_reported_utc = ?3"
			    " WHERE id = ?1 AND last_reported_utc < ?3",
	/* PostgreSQL only (stmt_sql_pg): insert_events in one statement. */
	[STMT_EVENTS_UPSERT] = "SELECT 1",
	[STMT_ARCH_BASE] = "SELECT id, chain_depth, sha256 FROM messages WHERE device_id = ?1 AND method = 'skc1'"
			   " AND id <> ?2 ORDER BY id DESC LIMIT 1",
	[STMT_ARCH_UPDATE] = "UPDATE messages SET method = 'skc1', base_id = ?2, chain_depth = ?3,"
			     " stored_size = ?4, blob = ?5 WHERE id = ?1 AND method = 'zstd' AND sha256 = ?6",
	[STMT_ARCH_BASE_CHECK] = "SELECT 1 FROM messages WHERE id = ?1 AND method = 'skc1' AND sha256 = ?2"
				 " AND chain_depth = ?3",
	[STMT_ARCH_BACKLOG] = "SELECT id, device_id FROM messages WHERE method = 'zstd' AND device_id IS NOT NULL"
			      " AND outcome IN ('stored', 'duplicate') AND id > ?1 ORDER BY id LIMIT ?2",
	/* The refresh of a snapshot by a reparse of its own message. */
	[STMT_SNAP_REFRESH] = "UPDATE snapshots SET taken_unix = ?2, taken_offset_min = ?3, taken_source = ?4,"
			      " received_utc = ?5, clock_skew_s = ?6, dialect = ?7, firmware = ?8,"
			      " hostname = ?9, ip_address = ?10 WHERE id = ?1",
	[STMT_COUNTERS_CLEAR] = "DELETE FROM counters WHERE snapshot_id = ?1",
	[STMT_MEDIA_CLEAR] = "DELETE FROM media_counters WHERE snapshot_id = ?1",
	[STMT_DROPS_CLEAR] = "DELETE FROM counter_drops WHERE snapshot_id = ?1 OR previous_snapshot_id = ?1",
	[STMT_LEVELS_CLEAR] = "DELETE FROM supply_levels WHERE snapshot_id = ?1",
	[STMT_CURRENT_CLEAR] = "DELETE FROM supply_current WHERE snapshot_id = ?1",
	/* Supply keys of the device left without a current report: the latest
	 * remaining report of each (ties: the newer supply unit). */
	[STMT_CURRENT_FILL] = "INSERT INTO supply_current (device_id, supply_key, supply_id, snapshot_id,"
			      " reported_utc)"
			      " SELECT ?1, supply_key, supply_id, snapshot_id, taken_utc FROM"
			      " (SELECT s.supply_key, l.supply_id, l.snapshot_id, sn.taken_utc,"
			      "   row_number() OVER (PARTITION BY s.supply_key"
			      "     ORDER BY sn.taken_utc DESC, l.supply_id DESC) AS rn"
			      "  FROM supplies s JOIN supply_levels l ON l.supply_id = s.id"
			      "  JOIN snapshots sn ON sn.id = l.snapshot_id"
			      "  WHERE s.device_id = ?1 AND s.supply_key NOT IN"
			      "   (SELECT supply_key FROM supply_current WHERE device_id = ?1)) AS latest"
			      " WHERE rn = 1 ON CONFLICT DO NOTHING",
	[STMT_SUPPLY_ORPHANS] = "DELETE FROM supplies WHERE device_id = ?1"
				" AND NOT EXISTS (SELECT 1 FROM supply_levels l WHERE l.supply_id = supplies.id)"
				" AND NOT EXISTS (SELECT 1 FROM supply_current c WHERE c.supply_id = supplies.id)",
	/* First and last report of the device's supply units that the
	 * refreshed snapshot was (or may have been) the first or last of. */
	[STMT_SUPPLY_SPAN] = "UPDATE supplies SET"
			     " (first_snapshot_id, first_reported_utc) = (SELECT l.snapshot_id, sn.taken_utc"
			     "   FROM supply_levels l JOIN snapshots sn ON sn.id = l.snapshot_id"
			     "   WHERE l.supply_id = supplies.id ORDER BY sn.taken_utc LIMIT 1),"
			     " last_reported_utc = (SELECT max(sn.taken_utc) FROM supply_levels l"
			     "   JOIN snapshots sn ON sn.id = l.snapshot_id WHERE l.supply_id = supplies.id)"
			     " WHERE device_id = ?1 AND (first_snapshot_id = ?2 OR last_reported_utc = ?3)"
			     " AND EXISTS (SELECT 1 FROM supply_levels l WHERE l.supply_id = supplies.id)",
	[STMT_DROPS_DEPENDENTS] = "SELECT DISTINCT d.snapshot_id, sn.taken_utc FROM counter_drops d"
				  " JOIN snapshots sn ON sn.id = d.snapshot_id WHERE d.previous_snapshot_id = ?1",
	/* Retention: ?1 the cut-off (first_received_us) of parsed messages,
	 * ?2 that of failed and not-snapshot ones.  Dependants before their
	 * bases (a delta is one deeper than its base). */
	[STMT_PRUNE_CANDIDATES] = "SELECT id, raw_size, stored_size FROM messages WHERE " PRUNE_CRITERIA
				  " ORDER BY chain_depth DESC, id DESC",
	[STMT_PRUNE_DEPENDANTS] = "SELECT id FROM messages WHERE base_id = ?1 AND method = 'skc1'",
	[STMT_PRUNE_REENCODE] = "UPDATE messages SET base_id = NULL, chain_depth = 0, stored_size = ?3, blob = ?4"
				" WHERE id = ?1 AND method = 'skc1' AND base_id = ?2 AND sha256 = ?5",
	/* The depths below a message that became a keyframe. */
	[STMT_PRUNE_DEPTHS] = "WITH RECURSIVE sub(id, depth) AS ("
			      " SELECT id, 1 FROM messages WHERE base_id = ?1 AND method = 'skc1'"
			      " UNION ALL SELECT m.id, sub.depth + 1 FROM messages m JOIN sub ON m.base_id = sub.id"
			      " WHERE m.method = 'skc1' AND sub.depth < " G_STRINGIFY(ARCHIVE_CHAIN_MAX) ")"
			      " UPDATE messages SET chain_depth = (SELECT min(depth) FROM sub WHERE sub.id = messages.id)"
			      " WHERE id IN (SELECT id FROM sub)",
	[STMT_PRUNE_BATCH_CLEAR] = "DELETE FROM prune_batch",
	[STMT_PRUNE_BATCH_ADD] = "INSERT INTO prune_batch (id) SELECT id FROM messages"
				 " WHERE id = ?3 AND " PRUNE_CRITERIA " ON CONFLICT DO NOTHING",
	[STMT_PRUNE_BATCH_LOCK] = "SELECT count(*) FROM messages WHERE id IN (SELECT id FROM prune_batch)",
	/* Never prune a base that a message staying in the archive still needs. */
	[STMT_PRUNE_BATCH_KEEP] = "DELETE FROM prune_batch WHERE id IN (SELECT m.base_id FROM messages m"
				  " WHERE m.base_id IN (SELECT id FROM prune_batch) AND m.method = 'skc1'"
				  " AND m.id NOT IN (SELECT id FROM prune_batch))",
	[STMT_PRUNE_BATCH_SUM] = "SELECT count(*), coalesce(sum(raw_size), 0), coalesce(sum(stored_size), 0)"
				 " FROM messages WHERE id IN (SELECT id FROM prune_batch)",
	[STMT_PRUNE_APPLY] = "UPDATE messages SET method = 'pruned', blob = NULL, stored_size = 0, base_id = NULL,"
			     " chain_depth = 0, pruned_utc = ?1 WHERE id IN (SELECT id FROM prune_batch)",
	/* Device by device: a chain's containers stay in the cache. */
	[STMT_VERIFY_LIST] = "SELECT id, method, device_id IS NOT NULL AND outcome IN ('stored', 'duplicate'),"
			     " raw_size FROM messages ORDER BY device_id, id",
};

/* PostgreSQL's spelling where SQLite's differs (NULL: the same text). */
static const char *const stmt_sql_pg[STMT_COUNT] = {
	/* Result commits of one device (on any node) one after the other: what
	 * they derive from the device's other snapshots (latest, previous,
	 * first reported) is then read after the other's commit. */
	[STMT_DEV_LOCK] = "SELECT id FROM devices WHERE id = ?1 FOR UPDATE",
	/* A snapshot's event log in one round trip instead of one or two per
	 * entry (a log holds hundreds): ?2 is a JSON array of the entries.  The
	 * first of entries with the same key counts, and new rows get their
	 * ids in the log's order, as the statements per entry do on SQLite;
	 * a known entry moves its first or last report only when this
	 * snapshot is earlier or later. */
	[STMT_EVENTS_UPSERT] =
	    "INSERT INTO events (device_id, log, sequence, code, occurred_utc, occurred_offset_min,"
	    " description, page_count, payload_json, first_snapshot_id, first_reported_utc,"
	    " last_snapshot_id, last_reported_utc)"
	    " SELECT ?1, log, sequence, code, occurred_utc, occurred_offset_min, description, page_count,"
	    "  payload_json, ?3, ?4, ?3, ?4 FROM"
	    " (SELECT DISTINCT ON (COALESCE(log, ''), COALESCE(sequence, -1), COALESCE(code, ''),"
	    "   COALESCE(occurred_utc, '')) *"
	    "  FROM ROWS FROM (json_to_recordset(CAST(?2 AS json)) AS (log text, sequence bigint, code text,"
	    "   occurred_utc text, occurred_offset_min bigint, description text, page_count bigint,"
	    "   payload_json text)) WITH ORDINALITY AS e(log, sequence, code, occurred_utc,"
	    "   occurred_offset_min, description, page_count, payload_json, n)"
	    "  ORDER BY COALESCE(log, ''), COALESCE(sequence, -1), COALESCE(code, ''),"
	    "   COALESCE(occurred_utc, ''), n) AS first_of_each ORDER BY n"
	    " ON CONFLICT (device_id, COALESCE(log, ''), COALESCE(sequence, -1), COALESCE(code, ''),"
	    "  COALESCE(occurred_utc, '')) DO UPDATE SET"
	    " first_snapshot_id = CASE WHEN excluded.first_reported_utc < events.first_reported_utc"
	    "  THEN excluded.first_snapshot_id ELSE events.first_snapshot_id END,"
	    " first_reported_utc = LEAST(events.first_reported_utc, excluded.first_reported_utc),"
	    " last_snapshot_id = CASE WHEN excluded.last_reported_utc > events.last_reported_utc"
	    "  THEN excluded.last_snapshot_id ELSE events.last_snapshot_id END,"
	    " last_reported_utc = GREATEST(events.last_reported_utc, excluded.last_reported_utc)"
	    " WHERE excluded.first_reported_utc < events.first_reported_utc"
	    "  OR excluded.last_reported_utc > events.last_reported_utc",
	/* A repack and a prune on two nodes: the repack holds its base (FOR
	 * SHARE) until it commits, and the prune locks its batch (FOR UPDATE)
	 * before it looks for dependants, so that either the prune sees the
	 * new delta and keeps its base, or the repack sees the base pruned and
	 * leaves the message plain. */
	[STMT_ARCH_BASE_CHECK] = "SELECT 1 FROM messages WHERE id = ?1 AND method = 'skc1' AND sha256 = ?2"
				 " AND chain_depth = ?3 FOR SHARE",
	[STMT_PRUNE_BATCH_LOCK] = "SELECT count(*) FROM (SELECT id FROM messages"
				  " WHERE id IN (SELECT id FROM prune_batch) FOR UPDATE) AS locked",
	[STMT_DEV_SEEN] = "UPDATE devices SET snapshot_count = snapshot_count + 1,"
			  " first_seen_utc = LEAST(first_seen_utc, ?2),"
			  " first_received_utc = LEAST(first_received_utc, ?3),"
			  " last_received_utc = GREATEST(COALESCE(last_received_utc, ''), ?3) WHERE id = ?1",
};

/* A decompressed container, kept for the next delta or read of its chain. */
struct container_cache_entry {
	int64_t message_id;
	char sha256[ARCHIVE_SHA256_HEX_LEN + 1];
	GBytes *container;
	uint64_t used;
};

/* A delta repack computed outside the write transaction
 * (store_repack_prepare), applied inside it if its base is still what it
 * was (repack_apply). */
struct repack_prep {
	int64_t message_id;
	char sha256[ARCHIVE_SHA256_HEX_LEN + 1];
	int64_t base_id;          /* 0: a keyframe */
	char base_sha256[ARCHIVE_SHA256_HEX_LEN + 1];
	int64_t base_depth;       /* the base's chain_depth when prepared */
	GBytes *frame;            /* the verified new blob */
	GBytes *container;        /* for the cache once applied */
	size_t raw_size;
};

struct store {
	struct db *db;
	char *path;
	struct store_settings settings;
	int schema_version;
	struct db_stmt *stmts[STMT_COUNT];
	struct container_cache_entry *cache;
	unsigned cache_size;
	size_t cache_bytes;         /* sum of the cached containers' sizes */
	uint64_t cache_clock;
	unsigned savepoint_depth;
	struct repack_prep *prep;   /* at most one prepared repack */
};

static void
repack_prep_free(struct repack_prep **prepp)
{
	struct repack_prep *prep = *prepp;

	if (prep == NULL)
		return;
	*prepp = NULL;
	if (prep->frame != NULL)
		g_bytes_unref(prep->frame);
	if (prep->container != NULL)
		g_bytes_unref(prep->container);
	g_free(prep);
}

void
store_settings_default(struct store_settings *settings)
{
	memset(settings, 0, sizeof(*settings));
	settings->path = "snapkeep.db";
	settings->busy_timeout_ms = 10000;
	settings->archive_keyframe_interval = 32;
	settings->archive_level = 1;
	settings->archive_repack_level = 6;
	settings->archive_cache_entries = 16;
	settings->archive_cache_bytes = 8u << 20;
	settings->retention_days = 0;
	settings->retention_failed_days = 365;
	settings->prune_batch = 256;
}

const char *
store_outcome_name(enum store_outcome outcome)
{
	switch (outcome) {
	case STORE_OUTCOME_PENDING:
		return "pending";
	case STORE_OUTCOME_STORED:
		return "stored";
	case STORE_OUTCOME_DUPLICATE:
		return "duplicate";
	case STORE_OUTCOME_NOT_SNAPSHOT:
		return "not-snapshot";
	case STORE_OUTCOME_FAILED:
		return "failed";
	}
	return "failed";
}

/* --- statements ----------------------------------------------------------- */

static void
set_db_error(struct store *store, const char *what, char **error_r)
{
	if (error_r != NULL && *error_r == NULL)
		*error_r = g_strdup_printf("store: %s: %s", what, db_errmsg(store->db));
}

/* The cached statement id, reset and with its bindings cleared. */
static struct db_stmt *
stmt_get(struct store *store, enum stmt_id id, char **error_r)
{
	struct db_stmt *stmt = store->stmts[id];

	if (stmt == NULL) {
		const char *sql = stmt_sql[id];
		if (db_engine(store->db) == DB_ENGINE_POSTGRESQL && stmt_sql_pg[id] != NULL)
			sql = stmt_sql_pg[id];
		if (db_prepare(store->db, sql, &stmt) != DB_OK) {
			set_db_error(store, "prepare", error_r);
			return NULL;
		}
		store->stmts[id] = stmt;
	}
	db_reset(stmt);
	db_clear_bindings(stmt);
	return stmt;
}

static void
bind_text(struct db_stmt *stmt, int i, const char *text)
{
	if (text == NULL)
		db_bind_null(stmt, i);
	else
		db_bind_text(stmt, i, text, -1, DB_TRANSIENT);
}

/* Binds an int64 that may be SNAPSHOT_ABSENT (NULL). */
static void
bind_opt_int(struct db_stmt *stmt, int i, int64_t v)
{
	if (v == SNAPSHOT_ABSENT)
		db_bind_null(stmt, i);
	else
		db_bind_int64(stmt, i, v);
}

static void
bind_id(struct db_stmt *stmt, int i, int64_t id)
{
	if (id <= 0)
		db_bind_null(stmt, i);
	else
		db_bind_int64(stmt, i, id);
}

/* Steps a statement that returns no rows.  0 or -1. */
static int
stmt_exec(struct store *store, struct db_stmt *stmt, const char *what, char **error_r)
{
	int rc = db_step(stmt);

	db_reset(stmt);
	if (rc != DB_DONE) {
		set_db_error(store, what, error_r);
		return -1;
	}
	return 0;
}

/* Steps a statement that returns at most one row: 1 row (leave the
 * statement to the caller, who resets it), 0 none, -1 error. */
static int
stmt_row(struct store *store, struct db_stmt *stmt, const char *what, char **error_r)
{
	int rc = db_step(stmt);

	if (rc == DB_ROW)
		return 1;
	db_reset(stmt);
	if (rc == DB_DONE)
		return 0;
	set_db_error(store, what, error_r);
	return -1;
}

/* Steps an INSERT ... RETURNING id: 1 with *id_r (a new row), 0 when ON
 * CONFLICT DO NOTHING left the existing row, -1 error. */
static int
stmt_insert_id(struct store *store, struct db_stmt *stmt, const char *what, int64_t *id_r, char **error_r)
{
	int rc = stmt_row(store, stmt, what, error_r);

	if (rc > 0) {
		*id_r = db_column_int64(stmt, 0);
		db_reset(stmt);
	}
	return rc;
}

/* Looks up one id by one text parameter: 1 found, 0 not, -1 error. */
static int
id_lookup(struct store *store, enum stmt_id sid, const char *text, int64_t *id_r, char **error_r)
{
	struct db_stmt *stmt = stmt_get(store, sid, error_r);
	int rc;

	if (stmt == NULL)
		return -1;
	bind_text(stmt, 1, text);
	rc = stmt_row(store, stmt, "lookup", error_r);
	if (rc > 0) {
		*id_r = db_column_int64(stmt, 0);
		db_reset(stmt);
	}
	return rc;
}

static int
exec_sql(struct store *store, const char *sql, char **error_r)
{
	char *msg = NULL;

	if (db_exec(store->db, sql, &msg) != DB_OK) {
		if (*error_r == NULL) /* the first error tells why */
			*error_r = g_strdup_printf("store: %s: %s", sql, msg != NULL ? msg : "error");
		g_free(msg);
		return -1;
	}
	return 0;
}

/* --- transactions ------------------------------------------------------------ */

struct tx {
	bool own;       /* we began the transaction: commit or roll it back */
};

/* Enters a savepoint inside the caller's transaction, or begins our own. */
static int
tx_enter(struct store *store, struct tx *tx, char **error_r)
{
	tx->own = db_get_autocommit(store->db) != 0;
	if (tx->own)
		return exec_sql(store, "BEGIN IMMEDIATE", error_r);
	return exec_sql(store, "SAVEPOINT store_op", error_r);
}

static int
tx_leave(struct store *store, struct tx *tx, bool ok, char **error_r)
{
	char *ignored = NULL;
	int ret = 0;

	if (tx->own) {
		if (ok)
			ret = exec_sql(store, "COMMIT", error_r);
		if (!ok || ret < 0)
			(void)exec_sql(store, "ROLLBACK", &ignored);
	} else {
		if (!ok) {
			(void)exec_sql(store, "ROLLBACK TO store_op", &ignored);
			g_clear_pointer(&ignored, g_free); /* (both fail on a lost connection) */
		}
		ret = exec_sql(store, "RELEASE store_op", ok ? error_r : &ignored);
	}
	g_free(ignored);
	return ok ? ret : -1;
}

int
store_begin(struct store *store, char **error_r)
{
	return exec_sql(store, "BEGIN IMMEDIATE", error_r);
}

int
store_commit(struct store *store, char **error_r)
{
	return exec_sql(store, "COMMIT", error_r);
}

void
store_rollback(struct store *store)
{
	char *ignored = NULL;

	if (store == NULL || db_get_autocommit(store->db))
		return;
	(void)exec_sql(store, "ROLLBACK", &ignored);
	g_free(ignored);
}

/* --- open and migrations ------------------------------------------------------ */

struct migration {
	int version;
	char *name;
};

static gint
migration_cmp(gconstpointer a, gconstpointer b)
{
	const struct migration *x = a, *y = b;

	return (x->version > y->version) - (x->version < y->version);
}

/* The embedded migrations, sorted by version ("NNN-name.sql"). */
static const char *
migrations_dir(struct store *store)
{
	return db_engine(store->db) == DB_ENGINE_POSTGRESQL ? SCHEMA_RESOURCE_DIR_PG : SCHEMA_RESOURCE_DIR;
}

static int
migrations_list(struct store *store, GArray **list_r, char **error_r)
{
	GError *gerr = NULL;
	char **names = g_resource_enumerate_children(store_schema_get_resource(), migrations_dir(store),
						     G_RESOURCE_LOOKUP_FLAGS_NONE, &gerr);
	GArray *list = g_array_new(FALSE, FALSE, sizeof(struct migration));

	if (names == NULL) {
		*error_r = g_strdup_printf("store: no embedded schema: %s", gerr->message);
		g_error_free(gerr);
		g_array_free(list, TRUE);
		return -1;
	}
	for (char **n = names; *n != NULL; n++) {
		char *end = NULL;
		guint64 v;
		if (!g_str_has_suffix(*n, ".sql"))
			continue;
		v = g_ascii_strtoull(*n, &end, 10);
		if (end == *n || *end != '-' || v == 0 || v > 9999) {
			*error_r = g_strdup_printf("store: badly named migration %s", *n);
			goto fail;
		}
		struct migration m = { (int)v, g_strdup(*n) };
		g_array_append_val(list, m);
	}
	g_array_sort(list, migration_cmp);
	for (guint i = 0; i < list->len; i++) {
		const struct migration *m = &g_array_index(list, struct migration, i);
		if (m->version != (int)i + 1) {
			*error_r = g_strdup_printf("store: migrations not numbered 1..n at %s", m->name);
			goto fail;
		}
	}
	g_strfreev(names);
	*list_r = list;
	return 0;
fail:
	for (guint i = 0; i < list->len; i++)
		g_free(g_array_index(list, struct migration, i).name);
	g_array_free(list, TRUE);
	g_strfreev(names);
	return -1;
}

static void
migrations_free(GArray *list)
{
	for (guint i = 0; i < list->len; i++)
		g_free(g_array_index(list, struct migration, i).name);
	g_array_free(list, TRUE);
}

/* One integer from SQL without parameters (pragmas, counts). */
static int
query_int64(struct store *store, const char *sql, int64_t *v_r, char **error_r)
{
	struct db_stmt *stmt = NULL;
	int rc;

	if (db_prepare(store->db, sql, &stmt) != DB_OK) {
		set_db_error(store, sql, error_r);
		return -1;
	}
	rc = db_step(stmt);
	if (rc == DB_ROW)
		*v_r = db_column_int64(stmt, 0);
	else
		set_db_error(store, sql, error_r);
	db_finalize(stmt);
	return rc == DB_ROW ? 0 : -1;
}

/* SQLite: PRAGMA user_version.  PostgreSQL: the row of table
 * snapkeep_schema (no table: 0). */
static int
read_user_version(struct store *store, int *version_r, char **error_r)
{
	int64_t v = 0;

	if (db_engine(store->db) == DB_ENGINE_POSTGRESQL) {
		if (query_int64(store, "SELECT to_regclass('snapkeep_schema') IS NOT NULL", &v, error_r) < 0)
			return -1;
		if (v != 0 && query_int64(store, "SELECT coalesce(max(version), 0) FROM snapkeep_schema", &v,
					  error_r) < 0)
			return -1;
	} else if (query_int64(store, "PRAGMA user_version", &v, error_r) < 0) {
		return -1;
	}
	*version_r = (int)v;
	return 0;
}

/* Fails when PRAGMA foreign_key_check reports any row. */
static int
foreign_key_check(struct store *store, char **error_r)
{
	struct db_stmt *stmt = NULL;
	int rc;

	if (db_prepare(store->db, "PRAGMA foreign_key_check", &stmt) != DB_OK) {
		set_db_error(store, "checking foreign keys", error_r);
		return -1;
	}
	rc = db_step(stmt);
	if (rc == DB_ROW)
		*error_r = g_strdup_printf("store: after migrating, table %s row %lld breaks a foreign key to %s",
					   (const char *)db_column_text(stmt, 0),
					   (long long)db_column_int64(stmt, 1),
					   (const char *)db_column_text(stmt, 2));
	else if (rc != DB_DONE)
		set_db_error(store, "checking foreign keys", error_r);
	db_finalize(stmt);
	return rc == DB_DONE ? 0 : -1;
}

/* Applies the migrations newer than PRAGMA user_version, all in one
 * transaction (another process migrating at the same time waits on the
 * busy timeout and then finds nothing left to do).  Foreign keys are off
 * meanwhile (a migration may rebuild a table: SQLite's 12-step procedure)
 * and checked with PRAGMA foreign_key_check before the commit; the caller
 * turns them on afterwards. */
static int
store_migrate(struct store *store, char **error_r)
{
	GArray *list = NULL;
	int current = 0, latest;
	bool in_tx = false, pg = db_engine(store->db) == DB_ENGINE_POSTGRESQL;

	if (migrations_list(store, &list, error_r) < 0)
		return -1;
	latest = (int)list->len;
	if (pg) {
		/* Foreign keys stay on: PostgreSQL's migrations alter in place. */
		if (exec_sql(store, "BEGIN", error_r) < 0)
			goto fail;
		in_tx = true;
		if (exec_sql(store, "SELECT pg_advisory_xact_lock(" G_STRINGIFY(PG_MIGRATE_LOCK_KEY) ")", error_r) < 0 ||
		    exec_sql(store, "CREATE TABLE IF NOT EXISTS snapkeep_schema (version integer NOT NULL)",
			     error_r) < 0)
			goto fail;
	} else {
		if (exec_sql(store, "PRAGMA foreign_keys = OFF", error_r) < 0 ||
		    exec_sql(store, "BEGIN IMMEDIATE", error_r) < 0)
			goto fail;
		in_tx = true;
	}
	if (read_user_version(store, &current, error_r) < 0)
		goto fail;
	if (current > latest) {
		*error_r = g_strdup_printf("store: %s has schema version %d, newer than this snapkeep's %d",
					   store->path, current, latest);
		goto fail;
	}
	for (int v = current + 1; v <= latest; v++) {
		const struct migration *m = &g_array_index(list, struct migration, v - 1);
		char *res = g_strconcat(migrations_dir(store), "/", m->name, NULL);
		GBytes *sql = g_resource_lookup_data(store_schema_get_resource(), res,
						     G_RESOURCE_LOOKUP_FLAGS_NONE, NULL);
		g_free(res);
		if (sql == NULL) {
			*error_r = g_strdup_printf("store: migration %s missing", m->name);
			goto fail;
		}
		/* GResource data is NUL-terminated. */
		char *msg = NULL;
		int rc = db_exec(store->db, g_bytes_get_data(sql, NULL), &msg);
		g_bytes_unref(sql);
		if (rc != DB_OK) {
			*error_r = g_strdup_printf("store: migration %s: %s", m->name,
						   msg != NULL ? msg : "error");
			g_free(msg);
			goto fail;
		}
		log_info("store: event=migrate version=%d name=%s", v, m->name);
	}
	if (!pg && current < latest && foreign_key_check(store, error_r) < 0)
		goto fail;
	if (current < latest) {
		/* PRAGMA takes no parameters: the integer is ours. */
		char *pragma = pg ? g_strdup_printf("DELETE FROM snapkeep_schema;"
						    " INSERT INTO snapkeep_schema (version) VALUES (%d)", latest)
				  : g_strdup_printf("PRAGMA user_version = %d", latest);
		int rc = exec_sql(store, pragma, error_r);
		g_free(pragma);
		if (rc < 0)
			goto fail;
	}
	if (exec_sql(store, "COMMIT", error_r) < 0)
		goto fail;
	store->schema_version = latest;
	migrations_free(list);
	return 0;
fail:
	if (in_tx)
		store_rollback(store);
	migrations_free(list);
	return -1;
}

static int
store_check_version(struct store *store, char **error_r)
{
	GArray *list = NULL;
	int current = 0, latest;

	if (migrations_list(store, &list, error_r) < 0)
		return -1;
	latest = (int)list->len;
	migrations_free(list);
	if (read_user_version(store, &current, error_r) < 0)
		return -1;
	if (current == 0) {
		*error_r = g_strdup_printf("store: %s has no snapkeep schema (open it read-write once"
					   " to create it)", store->path);
		return -1;
	}
	if (current < latest) {
		*error_r = g_strdup_printf("store: %s has schema version %d, older than this snapkeep's %d:"
					   " open it read-write once (snapkeepd or snapkeep import) to migrate",
					   store->path, current, latest);
		return -1;
	}
	store->schema_version = current;
	return 0;
}

int
store_open(const struct store_settings *settings, struct store **store_r, char **error_r)
{
	struct store *store = g_new0(struct store, 1);

	*store_r = NULL;
	if (settings->path == NULL || settings->path[0] == '\0') {
		*error_r = g_strdup("store: no database path");
		g_free(store);
		return -1;
	}
	store->settings = *settings;
	store->path = g_strdup(settings->path);
	store->settings.path = store->path;
	if (store->settings.busy_timeout_ms < 0)
		store->settings.busy_timeout_ms = 0;
	if (store->settings.archive_keyframe_interval == 0)
		store->settings.archive_keyframe_interval = 1;
	store->cache_size = settings->archive_cache_entries;
	store->cache = g_new0(struct container_cache_entry, MAX(store->cache_size, 1));

	struct db_open_settings dbs = {
		.target = settings->path,
		.readonly = settings->readonly,
		.create = !settings->readonly,
		.busy_timeout_ms = store->settings.busy_timeout_ms,
		.password_file = settings->password_file,
	};
	char *db_error = NULL;
	if (db_open(&dbs, &store->db, &db_error) < 0) {
		*error_r = g_strdup_printf("store: cannot open %s: %s",
					   db_target_is_postgresql(settings->path) ? "the PostgreSQL database"
										   : settings->path,
					   db_error);
		g_free(db_error);
		goto fail;
	}
	/* Messages name the store without a password. */
	g_free(store->path);
	store->path = g_strdup(db_display_name(store->db));
	store->settings.path = store->path;
	if (db_engine(store->db) == DB_ENGINE_SQLITE) {
		if (!settings->readonly) {
			/* Persistent; readers of the file then run in WAL mode too. */
			struct db_stmt *stmt = NULL;
			bool wal = db_prepare(store->db, "PRAGMA journal_mode = WAL", &stmt) == DB_OK &&
				   db_step(stmt) == DB_ROW &&
				   g_ascii_strcasecmp((const char *)db_column_text(stmt, 0), "wal") == 0;
			db_finalize(stmt);
			if (!wal) {
				*error_r = g_strdup_printf("store: cannot use WAL mode on %s: %s", store->path,
							   db_errmsg(store->db));
				goto fail;
			}
		}
		if (exec_sql(store, settings->durable ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL",
			     error_r) < 0)
			goto fail;
	} else if (!settings->durable &&
		   exec_sql(store, "SET synchronous_commit = off", error_r) < 0) {
		/* Rows can be re-derived from the archive by reparse, as with
		 * SQLite's synchronous = NORMAL; the accept path stays durable. */
		goto fail;
	}
	if (settings->readonly ? store_check_version(store, error_r) < 0 : store_migrate(store, error_r) < 0)
		goto fail;
	if (db_engine(store->db) == DB_ENGINE_SQLITE && exec_sql(store, "PRAGMA foreign_keys = ON", error_r) < 0)
		goto fail;
	*store_r = store;
	return 0;
fail:
	store_free(&store);
	return -1;
}

static void
cache_drop(struct store *store, struct container_cache_entry *e)
{
	if (e->container == NULL)
		return;
	store->cache_bytes -= g_bytes_get_size(e->container);
	g_bytes_unref(e->container);
	e->container = NULL;
}

static void
cache_clear(struct store *store)
{
	for (unsigned i = 0; i < store->cache_size; i++) {
		cache_drop(store, &store->cache[i]);
		memset(&store->cache[i], 0, sizeof(store->cache[i]));
	}
}

void
store_free(struct store **storep)
{
	struct store *store = *storep;

	if (store == NULL)
		return;
	*storep = NULL;
	for (unsigned i = 0; i < STMT_COUNT; i++)
		db_finalize(store->stmts[i]);
	db_close(&store->db);
	cache_clear(store);
	repack_prep_free(&store->prep);
	g_free(store->cache);
	g_free(store->path);
	g_free(store);
}

struct db *
store_db(struct store *store)
{
	return store->db;
}

int
store_schema_version(struct store *store)
{
	return store->schema_version;
}

/* --- the archive -------------------------------------------------------------- */

/* The container cache: keyed by message id and hash, so that an id reused
 * after a rolled-back insert never matches. */
static GBytes *
cache_lookup(struct store *store, int64_t message_id, const char *sha256)
{
	for (unsigned i = 0; i < store->cache_size; i++) {
		struct container_cache_entry *e = &store->cache[i];
		if (e->container != NULL && e->message_id == message_id && strcmp(e->sha256, sha256) == 0) {
			e->used = ++store->cache_clock;
			return g_bytes_ref(e->container);
		}
	}
	return NULL;
}

/* Keeps container, evicting the least recently used entries until both the
 * entry count and archive_cache_bytes hold.  A container larger than an
 * eighth of the budget is not kept: a few large messages (megabytes of
 * error logs) would flush the many usual ones, and holding them doubles a
 * parse thread's memory for little gain. */
static void
cache_put(struct store *store, int64_t message_id, const char *sha256, GBytes *container)
{
	size_t size = g_bytes_get_size(container);
	struct container_cache_entry *slot = NULL;

	if (store->cache_size == 0 || size > store->settings.archive_cache_bytes / 8)
		return;
	for (unsigned i = 0; i < store->cache_size; i++)
		if (store->cache[i].message_id == message_id)
			cache_drop(store, &store->cache[i]);
	for (;;) {
		struct container_cache_entry *lru = NULL;
		slot = NULL;
		for (unsigned i = 0; i < store->cache_size; i++) {
			struct container_cache_entry *e = &store->cache[i];
			if (e->container == NULL)
				slot = e;
			else if (lru == NULL || e->used < lru->used)
				lru = e;
		}
		if (slot != NULL && store->cache_bytes + size <= store->settings.archive_cache_bytes)
			break;
		cache_drop(store, lru); /* non-NULL: the budget or a slot is taken */
	}
	slot->message_id = message_id;
	g_strlcpy(slot->sha256, sha256, sizeof(slot->sha256));
	slot->container = g_bytes_ref(container);
	slot->used = ++store->cache_clock;
	store->cache_bytes += size;
}

struct msg_row {
	int64_t id;
	bool delta_form;       /* method 'skc1' */
	int64_t base_id;       /* 0: none */
	int64_t chain_depth;
	size_t raw_size;
	char sha256[ARCHIVE_SHA256_HEX_LEN + 1];
	GBytes *blob;
};

static void
msg_row_clear(struct msg_row *row)
{
	if (row->blob != NULL)
		g_bytes_unref(row->blob);
	row->blob = NULL;
}

/* 1 found, 0 no such message, -1 error. */
static int
msg_row_read(struct store *store, int64_t id, struct msg_row *row, char **error_r)
{
	struct db_stmt *stmt = stmt_get(store, STMT_MSG_ROW, error_r);
	int rc;

	memset(row, 0, sizeof(*row));
	if (stmt == NULL)
		return -1;
	db_bind_int64(stmt, 1, id);
	rc = stmt_row(store, stmt, "reading a message", error_r);
	if (rc <= 0)
		return rc;
	const char *method = (const char *)db_column_text(stmt, 0);
	const char *sha = (const char *)db_column_text(stmt, 3);
	int64_t raw_size = db_column_int64(stmt, 2);
	if (method != NULL && strcmp(method, "pruned") == 0) {
		const char *when = (const char *)db_column_text(stmt, 6);
		*error_r = g_strdup_printf("store: message %" G_GINT64_FORMAT " was pruned by retention on %s:"
					   " its raw bytes are no longer kept (the rows parsed from it are)",
					   id, when != NULL ? when : "an unknown date");
		db_reset(stmt);
		return -1;
	}
	row->id = id;
	row->delta_form = method != NULL && strcmp(method, "skc1") == 0;
	row->base_id = db_column_int64(stmt, 1);
	row->chain_depth = db_column_int64(stmt, 4);
	if (sha == NULL || strlen(sha) != ARCHIVE_SHA256_HEX_LEN || raw_size < 0 ||
	    (method == NULL || (!row->delta_form && strcmp(method, "zstd") != 0))) {
		db_reset(stmt);
		*error_r = g_strdup_printf("store: message %" G_GINT64_FORMAT " has a damaged archive row", id);
		return -1;
	}
	row->raw_size = (size_t)raw_size;
	g_strlcpy(row->sha256, sha, sizeof(row->sha256));
	row->blob = g_bytes_new(db_column_blob(stmt, 5), (gsize)db_column_bytes(stmt, 5));
	db_reset(stmt);
	return 1;
}

/* The raw bytes of a 'zstd' row, verified. */
static int
raw_from_zstd_row(const struct msg_row *row, GBytes **raw_r, char **error_r)
{
	char sha[ARCHIVE_SHA256_HEX_LEN + 1];
	gsize len;
	const void *data = g_bytes_get_data(row->blob, &len);
	GBytes *raw = NULL;

	if (archive_decompress(data, len, NULL, 0, row->raw_size, &raw, error_r) < 0)
		return -1;
	data = g_bytes_get_data(raw, &len);
	archive_sha256_hex(data, len, sha);
	if (len != row->raw_size || strcmp(sha, row->sha256) != 0) {
		g_bytes_unref(raw);
		*error_r = g_strdup_printf("store: message %" G_GINT64_FORMAT " fails its SHA-256 check", row->id);
		return -1;
	}
	*raw_r = raw;
	return 0;
}

/* The container of an 'skc1' message, following its chain back to a
 * keyframe or a cached container.  *container_r is g_bytes_unref'd by the caller. */
static int
container_get(struct store *store, int64_t message_id, GBytes **container_r, char **error_r)
{
	GArray *chain = g_array_new(FALSE, TRUE, sizeof(struct msg_row));
	GBytes *prefix = NULL;
	int64_t cur = message_id;
	int ret = -1;

	for (unsigned depth = 0;; depth++) {
		struct msg_row row;
		int rc;
		if (depth >= ARCHIVE_CHAIN_MAX) {
			*error_r = g_strdup_printf("store: archive chain of message %" G_GINT64_FORMAT
						   " is too long (damaged?)", message_id);
			goto out;
		}
		rc = msg_row_read(store, cur, &row, error_r);
		if (rc < 0 && cur != message_id) {
			char *inner = *error_r;
			*error_r = g_strdup_printf("store: archive chain of message %" G_GINT64_FORMAT ": %s",
						   message_id, inner);
			g_free(inner);
		}
		if (rc <= 0) {
			if (rc == 0)
				*error_r = g_strdup_printf("store: archive chain of message %" G_GINT64_FORMAT
							   " refers to missing message %" G_GINT64_FORMAT,
							   message_id, cur);
			goto out;
		}
		if (!row.delta_form) {
			msg_row_clear(&row);
			*error_r = g_strdup_printf("store: message %" G_GINT64_FORMAT " in a chain is not in"
						   " container form", cur);
			goto out;
		}
		prefix = cache_lookup(store, row.id, row.sha256);
		if (prefix != NULL) {
			msg_row_clear(&row);
			break;
		}
		g_array_append_val(chain, row);
		if (row.base_id <= 0)
			break;
		cur = row.base_id;
	}
	for (guint i = chain->len; i-- > 0;) {
		struct msg_row *row = &g_array_index(chain, struct msg_row, i);
		GBytes *container = NULL;
		gsize len, plen = 0;
		const void *data = g_bytes_get_data(row->blob, &len);
		const void *pdata = prefix != NULL ? g_bytes_get_data(prefix, &plen) : NULL;
		if (archive_decompress(data, len, pdata, plen, archive_container_bound(row->raw_size),
				       &container, error_r) < 0) {
			char *inner = *error_r;
			*error_r = g_strdup_printf("store: message %" G_GINT64_FORMAT ": %s", row->id, inner);
			g_free(inner);
			goto out;
		}
		cache_put(store, row->id, row->sha256, container);
		if (prefix != NULL)
			g_bytes_unref(prefix);
		prefix = container;
	}
	*container_r = prefix;
	prefix = NULL;
	ret = 0;
out:
	if (prefix != NULL)
		g_bytes_unref(prefix);
	for (guint i = 0; i < chain->len; i++)
		msg_row_clear(&g_array_index(chain, struct msg_row, i));
	g_array_free(chain, TRUE);
	return ret;
}

static int
raw_from_container(const struct msg_row *row, GBytes *container, GBytes **raw_r, char **error_r)
{
	char sha[ARCHIVE_SHA256_HEX_LEN + 1];
	gsize len;
	const void *data = g_bytes_get_data(container, &len);
	GBytes *raw = NULL;

	if (archive_container_unpack(data, len, row->raw_size, &raw, error_r) < 0)
		return -1;
	data = g_bytes_get_data(raw, &len);
	archive_sha256_hex(data, len, sha);
	if (len != row->raw_size || strcmp(sha, row->sha256) != 0) {
		g_bytes_unref(raw);
		*error_r = g_strdup_printf("store: message %" G_GINT64_FORMAT " fails its SHA-256 check", row->id);
		return -1;
	}
	*raw_r = raw;
	return 0;
}

int
store_message_get(struct store *store, int64_t message_id, GBytes **raw_r, char **error_r)
{
	struct msg_row row;
	GBytes *container = NULL;
	int rc, ret = -1;

	rc = msg_row_read(store, message_id, &row, error_r);
	if (rc <= 0) {
		if (rc == 0)
			*error_r = g_strdup_printf("store: no message %" G_GINT64_FORMAT, message_id);
		return -1;
	}
	if (!row.delta_form) {
		ret = raw_from_zstd_row(&row, raw_r, error_r);
	} else if (container_get(store, message_id, &container, error_r) == 0) {
		ret = raw_from_container(&row, container, raw_r, error_r);
		g_bytes_unref(container);
	}
	msg_row_clear(&row);
	return ret;
}

/* Builds the 'skc1' form of a 'zstd' message row of device_id (0: device
 * not known yet, a keyframe): packs its container, picks the device's
 * latest 'skc1' message as the base (or none, every
 * archive_keyframe_interval links), compresses, and reads the new frame
 * back.  raw: the message's bytes if the caller has them, already checked
 * against the row's hash, a reference this call takes over (NULL:
 * decompressed from the row, hash checked); it is released as soon as the
 * container is checked against it, before the compression needs its memory.
 * Only reads: runs inside or outside a transaction.  1 with *prep_r, 0 when
 * the message does not repack (*warn_r says why), -1 on database errors. */
static int
repack_build(struct store *store, const struct msg_row *row, GBytes *raw, int64_t device_id,
	     struct repack_prep **prep_r, char **warn_r, char **error_r)
{
	struct repack_prep *prep = g_new0(struct repack_prep, 1);
	GBytes *base = NULL, *check = NULL;
	struct db_stmt *stmt;
	int rc, ret = -1;

	prep->message_id = row->id;
	g_strlcpy(prep->sha256, row->sha256, sizeof(prep->sha256));
	prep->raw_size = row->raw_size;
	prep->base_depth = -1;
	if (raw == NULL && raw_from_zstd_row(row, &raw, warn_r) < 0)
		goto not_repacked;
	gsize raw_len, clen;
	const void *raw_data = g_bytes_get_data(raw, &raw_len);
	prep->container = archive_container_pack(raw_data, raw_len, NULL);
	const void *cdata = g_bytes_get_data(prep->container, &clen);
	/* The container gives back exactly the message (compared in place). */
	if (archive_container_check(cdata, clen, raw_data, raw_len, warn_r) < 0)
		goto not_repacked;
	g_clear_pointer(&raw, g_bytes_unref);

	if (device_id > 0) {
		stmt = stmt_get(store, STMT_ARCH_BASE, error_r);
		if (stmt == NULL)
			goto out;
		db_bind_int64(stmt, 1, device_id);
		db_bind_int64(stmt, 2, row->id);
		rc = stmt_row(store, stmt, "finding a delta base", error_r);
		if (rc < 0)
			goto out;
		if (rc > 0) {
			int64_t id = db_column_int64(stmt, 0);
			int64_t d = db_column_int64(stmt, 1);
			const char *sha = (const char *)db_column_text(stmt, 2);
			char base_sha[ARCHIVE_SHA256_HEX_LEN + 1];
			g_strlcpy(base_sha, sha != NULL ? sha : "", sizeof(base_sha));
			db_reset(stmt);
			if (d + 1 < (int64_t)store->settings.archive_keyframe_interval) {
				char *why = NULL;
				if (container_get(store, id, &base, &why) == 0) {
					prep->base_id = id;
					prep->base_depth = d;
					g_strlcpy(prep->base_sha256, base_sha, sizeof(prep->base_sha256));
				} else {
					log_warnx("store: event=repack-base-unreadable message=%" G_GINT64_FORMAT
						  " base=%" G_GINT64_FORMAT " reason=\"%s\"", row->id, id, why);
					g_free(why);
				}
			}
		}
	}

	gsize blen = 0, flen;
	const void *bdata = base != NULL ? g_bytes_get_data(base, &blen) : NULL;
	if (archive_compress(cdata, clen, bdata, blen, store->settings.archive_repack_level, &prep->frame,
			     warn_r) < 0) {
		ret = 0;
		goto out;
	}
	const void *fdata = g_bytes_get_data(prep->frame, &flen);
	/* Never lose bytes: read the new form back before it may replace the
	 * old; it must be the container checked above. */
	if (archive_decompress(fdata, flen, bdata, blen, archive_container_bound(row->raw_size), &check,
			       warn_r) < 0)
		goto not_repacked;
	if (!g_bytes_equal(check, prep->container)) {
		*warn_r = g_strdup("store: the compressed container reads back different");
		goto not_repacked;
	}
	*prep_r = prep;
	prep = NULL;
	ret = 1;
	goto out;
not_repacked:
	ret = 0;
out:
	repack_prep_free(&prep);
	if (raw != NULL)
		g_bytes_unref(raw);
	if (base != NULL)
		g_bytes_unref(base);
	if (check != NULL)
		g_bytes_unref(check);
	return ret;
}

/* Replaces the message's blob by the prepared one if the message is still
 * the same 'zstd' message and the base is still the same 'skc1' message at
 * the same depth; otherwise leaves it (plain zstd: correct, only bigger;
 * store_repack_backlog may repack it later).  Cheap: no compression.  Runs
 * inside the caller's write transaction.  0 (applied or skipped) or -1. */
static int
repack_apply(struct store *store, const struct repack_prep *prep, bool *applied_r, char **error_r)
{
	struct db_stmt *stmt;
	int rc;

	*applied_r = false;
	if (prep->base_id > 0) {
		stmt = stmt_get(store, STMT_ARCH_BASE_CHECK, error_r);
		if (stmt == NULL)
			return -1;
		db_bind_int64(stmt, 1, prep->base_id);
		bind_text(stmt, 2, prep->base_sha256);
		db_bind_int64(stmt, 3, prep->base_depth);
		rc = stmt_row(store, stmt, "checking a delta base", error_r);
		if (rc < 0)
			return -1;
		db_reset(stmt);
		if (rc == 0) {
			log_info("store: event=repack-stale message=%" G_GINT64_FORMAT " base=%" G_GINT64_FORMAT
				 " action=left-plain", prep->message_id, prep->base_id);
			return 0;
		}
	}
	gsize flen;
	const void *fdata = g_bytes_get_data(prep->frame, &flen);
	stmt = stmt_get(store, STMT_ARCH_UPDATE, error_r);
	if (stmt == NULL)
		return -1;
	db_bind_int64(stmt, 1, prep->message_id);
	bind_id(stmt, 2, prep->base_id);
	db_bind_int64(stmt, 3, prep->base_id > 0 ? prep->base_depth + 1 : 0);
	db_bind_int64(stmt, 4, (int64_t)flen);
	db_bind_blob64(stmt, 5, fdata, flen, DB_STATIC);
	bind_text(stmt, 6, prep->sha256);
	if (stmt_exec(store, stmt, "repacking a message", error_r) < 0)
		return -1;
	if (db_changes(store->db) == 0)
		return 0;   /* repacked meanwhile, or not the same message */
	cache_put(store, prep->message_id, prep->sha256, prep->container);
	*applied_r = true;
	log_debug("store: event=repack message=%" G_GINT64_FORMAT " base=%" G_GINT64_FORMAT
		  " raw=%zu container=%zu stored=%zu", prep->message_id, prep->base_id, prep->raw_size,
		  g_bytes_get_size(prep->container), (size_t)flen);
	return 0;
}

/* The repack step of store_result_commit, inside its transaction: the
 * prepared repack of this message if there is one (cheap), else the whole
 * repack here (the slow path, for callers that do not prepare).  0 also
 * when nothing was done; -1 only for database errors. */
static int
archive_repack(struct store *store, int64_t message_id, int64_t device_id, char **error_r)
{
	struct repack_prep *prep = NULL;
	struct msg_row row;
	char *warn = NULL;
	bool applied;
	int rc, ret = -1;

	if (store->prep != NULL && store->prep->message_id == message_id) {
		prep = store->prep;
		store->prep = NULL;
		ret = repack_apply(store, prep, &applied, error_r);
		repack_prep_free(&prep);
		return ret;
	}
	rc = msg_row_read(store, message_id, &row, error_r);
	if (rc <= 0) {
		if (rc == 0)
			*error_r = g_strdup_printf("store: no message %" G_GINT64_FORMAT, message_id);
		return -1;
	}
	if (row.delta_form) {
		ret = 0;
		goto out;
	}
	rc = repack_build(store, &row, NULL, device_id, &prep, &warn, error_r);
	if (rc < 0)
		goto out;
	if (rc == 0) {
		log_warnx("store: event=repack-skipped message=%" G_GINT64_FORMAT " reason=\"%s\"", message_id,
			  warn != NULL ? warn : "unknown");
		ret = 0;
		goto out;
	}
	ret = repack_apply(store, prep, &applied, error_r);
out:
	repack_prep_free(&prep);
	g_free(warn);
	msg_row_clear(&row);
	return ret;
}

/* The serial a parse result will be stored under (store_result_commit's
 * rule), or NULL. */
static const char *
result_serial(const struct snapshot *snap, const struct store_hints *hints)
{
	if (snap != NULL && snap->serial != NULL && snap->serial[0] != '\0')
		return snap->serial;
	if (hints != NULL && hints->subject_serial != NULL && hints->subject_serial[0] != '\0')
		return hints->subject_serial;
	return NULL;
}

bool
store_repack_prepare(struct store *store, int64_t message_id, GBytes *raw, enum store_outcome outcome,
		     const struct snapshot *snap, const struct store_hints *hints)
{
	struct repack_prep *prep = NULL;
	struct msg_row row;
	const char *serial = result_serial(snap, hints);
	char *warn = NULL, *error = NULL;
	int64_t device_id = 0;
	int rc;

	repack_prep_free(&store->prep);
	if ((outcome != STORE_OUTCOME_STORED && outcome != STORE_OUTCOME_DUPLICATE) || snap == NULL ||
	    serial == NULL)
		goto not_repacked;
	rc = msg_row_read(store, message_id, &row, &error);
	if (rc <= 0)
		goto fail;
	if (row.delta_form) {
		msg_row_clear(&row);
		goto not_repacked;
	}
	if (raw != NULL) {
		/* The caller's bytes must be this message's. */
		char sha[ARCHIVE_SHA256_HEX_LEN + 1];
		gsize len;
		const void *data = g_bytes_get_data(raw, &len);
		archive_sha256_hex(data, len, sha);
		if (len != row.raw_size || strcmp(sha, row.sha256) != 0)
			g_clear_pointer(&raw, g_bytes_unref);
	}
	/* An unknown device gets a keyframe; the device row comes with the commit. */
	if (id_lookup(store, STMT_DEV_FIND, serial, &device_id, &error) < 0)
		goto fail;
	rc = repack_build(store, &row, g_steal_pointer(&raw), device_id, &prep, &warn, &error);
	msg_row_clear(&row);
	if (rc < 0)
		goto fail;
	if (rc == 0) {
		log_warnx("store: event=repack-skipped message=%" G_GINT64_FORMAT " reason=\"%s\"", message_id,
			  warn != NULL ? warn : "unknown");
		g_free(warn);
		return false;
	}
	store->prep = prep;
	return true;
fail:
	msg_row_clear(&row);
	log_warnx("store: event=repack-prepare-failed message=%" G_GINT64_FORMAT " error=\"%s\"", message_id,
		  error != NULL ? error : "no such message");
	g_free(error);
not_repacked:
	if (raw != NULL)
		g_bytes_unref(raw);
	return false;
}

int
store_repack_backlog(struct store *store, unsigned max, unsigned *repacked_r, char **error_r)
{
	GArray *ids = g_array_new(FALSE, FALSE, sizeof(int64_t) * 2);
	int64_t after = 0;
	unsigned done = 0, seen = 0;
	int ret = -1;

	*repacked_r = 0;
	while (max == 0 || seen < max) {
		struct db_stmt *stmt = stmt_get(store, STMT_ARCH_BACKLOG, error_r);
		int rc;
		if (stmt == NULL)
			goto out;
		g_array_set_size(ids, 0);
		db_bind_int64(stmt, 1, after);
		db_bind_int64(stmt, 2, 256);
		while ((rc = db_step(stmt)) == DB_ROW) {
			int64_t pair[2] = { db_column_int64(stmt, 0), db_column_int64(stmt, 1) };
			g_array_append_val(ids, pair);
		}
		db_reset(stmt);
		if (rc != DB_DONE) {
			set_db_error(store, "listing plain messages", error_r);
			goto out;
		}
		if (ids->len == 0)
			break;
		for (guint i = 0; i < ids->len && (max == 0 || seen < max); i++) {
			const int64_t *pair = &g_array_index(ids, int64_t, 2 * i);
			struct repack_prep *prep = NULL;
			struct msg_row row;
			char *warn = NULL;
			bool applied = false;
			struct tx tx;
			after = pair[0];
			seen++;
			/* Build outside any transaction, apply in a short one. */
			rc = msg_row_read(store, pair[0], &row, error_r);
			if (rc < 0)
				goto out;
			if (rc == 0 || row.delta_form) {
				msg_row_clear(&row);
				continue;
			}
			rc = repack_build(store, &row, NULL, pair[1], &prep, &warn, error_r);
			msg_row_clear(&row);
			if (rc < 0)
				goto out;
			if (rc == 0) {
				log_warnx("store: event=repack-skipped message=%" G_GINT64_FORMAT " reason=\"%s\"",
					  pair[0], warn != NULL ? warn : "unknown");
				g_free(warn);
				continue;
			}
			if (tx_enter(store, &tx, error_r) < 0) {
				repack_prep_free(&prep);
				goto out;
			}
			rc = repack_apply(store, prep, &applied, error_r);
			repack_prep_free(&prep);
			if (tx_leave(store, &tx, rc == 0, error_r) < 0)
				goto out;
			if (applied)
				done++;
		}
	}
	ret = 0;
out:
	*repacked_r = done;
	g_array_free(ids, TRUE);
	return ret;
}

/* --- messages and arrivals ----------------------------------------------------- */

int
store_message_find(struct store *store, const char *sha256_hex, int64_t *message_id_r, char **error_r)
{
	struct db_stmt *stmt = stmt_get(store, STMT_MSG_FIND, error_r);
	int rc;

	if (stmt == NULL)
		return -1;
	bind_text(stmt, 1, sha256_hex);
	rc = stmt_row(store, stmt, "finding a message", error_r);
	if (rc <= 0)
		return rc;
	*message_id_r = db_column_int64(stmt, 0);
	db_reset(stmt);
	return 1;
}

struct store_prepared {
	char sha[ARCHIVE_SHA256_HEX_LEN + 1];
	size_t len;
	GBytes *frame;
};

int
store_message_prepare(const void *raw, size_t len, int level, struct store_prepared **prepared_r,
		      char **error_r)
{
	struct store_prepared *p;

	if (raw == NULL && len > 0) {
		*error_r = g_strdup("store: no message bytes");
		return -1;
	}
	p = g_new0(struct store_prepared, 1);
	archive_sha256_hex(raw != NULL ? raw : "", len, p->sha);
	p->len = len;
	if (archive_compress(raw != NULL ? raw : "", len, NULL, 0, level, &p->frame, error_r) < 0) {
		g_free(p);
		return -1;
	}
	*prepared_r = p;
	return 0;
}

int
store_message_prepare_fd(int fd, size_t len, int level, struct store_prepared **prepared_r,
			 char **error_r)
{
	struct store_prepared *p = g_new0(struct store_prepared, 1);

	p->len = len;
	if (archive_hash_compress_fd(fd, len, level, p->sha, &p->frame, error_r) < 0) {
		g_free(p);
		return -1;
	}
	*prepared_r = p;
	return 0;
}

void
store_prepared_free(struct store_prepared **prepared)
{
	if (prepared == NULL || *prepared == NULL)
		return;
	g_bytes_unref((*prepared)->frame);
	g_free(*prepared);
	*prepared = NULL;
}

int
store_message_add(struct store *store, const struct store_arrival *arrival, const void *raw,
		  size_t len, struct store_receipt *receipt_r, char **error_r)
{
	struct store_prepared *p = NULL;
	int r;

	memset(receipt_r, 0, sizeof(*receipt_r));
	/* Compress before the transaction: it is the slow part. */
	if (store_message_prepare(raw, len, store->settings.archive_level, &p, error_r) < 0)
		return -1;
	r = store_message_add_prepared(store, arrival, p, receipt_r, error_r);
	store_prepared_free(&p);
	return r;
}

int
store_message_add_prepared(struct store *store, const struct store_arrival *arrival,
			   const struct store_prepared *prepared, struct store_receipt *receipt_r,
			   char **error_r)
{
	const char *sha = prepared->sha;
	size_t len = prepared->len;
	char received_utc[SK_UTC_SIZE];
	char *serial = NULL, *detail = NULL;
	GBytes *frame = g_bytes_ref(prepared->frame);
	int64_t received_us, message_id = 0;
	bool duplicate = false;
	struct db_stmt *stmt;
	struct tx tx;
	int rc;

	memset(receipt_r, 0, sizeof(*receipt_r));
	if (arrival == NULL || arrival->source == NULL) {
		*error_r = g_strdup("store: an arrival needs a source");
		g_bytes_unref(frame);
		return -1;
	}
	received_us = arrival->received_us != 0 ? arrival->received_us : sk_time_now_us();
	sk_time_format_utc(received_us / G_USEC_PER_SEC, received_utc);

	if (tx_enter(store, &tx, error_r) < 0) {
		g_bytes_unref(frame);
		return -1;
	}

	/* Found, or inserted; or, on PostgreSQL, inserted meanwhile by another
	 * node (ON CONFLICT DO NOTHING returns no row): found on the second try. */
	for (int attempt = 0; message_id == 0 && attempt < 2; attempt++) {
		stmt = stmt_get(store, STMT_MSG_FIND, error_r);
		if (stmt == NULL)
			goto fail;
		bind_text(stmt, 1, sha);
		rc = stmt_row(store, stmt, "finding a message", error_r);
		if (rc < 0)
			goto fail;
		if (rc > 0) {
			message_id = db_column_int64(stmt, 0);
			serial = g_strdup((const char *)db_column_text(stmt, 1));
			db_reset(stmt);
			duplicate = true;
			detail = g_strdup_printf("same bytes as message %" G_GINT64_FORMAT, message_id);
			break;
		}
		gsize flen;
		const void *fdata = g_bytes_get_data(frame, &flen);
		stmt = stmt_get(store, STMT_MSG_INSERT, error_r);
		if (stmt == NULL)
			goto fail;
		bind_text(stmt, 1, sha);
		db_bind_int64(stmt, 2, (int64_t)len);
		db_bind_int64(stmt, 3, (int64_t)flen);
		bind_text(stmt, 4, received_utc);
		db_bind_int64(stmt, 5, received_us);
		db_bind_blob64(stmt, 6, fdata, flen, DB_STATIC);
		if (stmt_insert_id(store, stmt, "archiving a message", &message_id, error_r) < 0)
			goto fail;
	}
	if (message_id == 0) {
		*error_r = g_strdup_printf("store: message %s neither found nor inserted", sha);
		goto fail;
	}

	stmt = stmt_get(store, STMT_INTAKE_INSERT, error_r);
	if (stmt == NULL)
		goto fail;
	bind_text(stmt, 1, received_utc);
	db_bind_int64(stmt, 2, received_us);
	bind_text(stmt, 3, arrival->source);
	bind_text(stmt, 4, arrival->source_name);
	bind_text(stmt, 5, arrival->peer);
	bind_text(stmt, 6, arrival->helo);
	bind_text(stmt, 7, arrival->mail_from);
	bind_text(stmt, 8, arrival->rcpt_to);
	bind_text(stmt, 9, arrival->subject);
	bind_text(stmt, 10, store_outcome_name(duplicate ? STORE_OUTCOME_DUPLICATE : STORE_OUTCOME_PENDING));
	bind_text(stmt, 11, detail);
	bind_text(stmt, 12, serial);
	db_bind_int64(stmt, 13, message_id);
	if (stmt_insert_id(store, stmt, "recording an arrival", &receipt_r->intake_id, error_r) <= 0)
		goto fail;
	receipt_r->message_id = message_id;
	receipt_r->duplicate = duplicate;
	if (tx_leave(store, &tx, true, error_r) < 0)
		goto out_fail;
	g_bytes_unref(frame);
	g_free(serial);
	g_free(detail);
	return 0;
fail:
	(void)tx_leave(store, &tx, false, error_r);
out_fail:
	memset(receipt_r, 0, sizeof(*receipt_r));
	g_bytes_unref(frame);
	g_free(serial);
	g_free(detail);
	return -1;
}

static int
list_ids(struct store *store, struct db_stmt *stmt, GArray *ids, char **error_r)
{
	int rc;

	while ((rc = db_step(stmt)) == DB_ROW) {
		int64_t id = db_column_int64(stmt, 0);
		g_array_append_val(ids, id);
	}
	db_reset(stmt);
	if (rc != DB_DONE) {
		set_db_error(store, "listing messages", error_r);
		return -1;
	}
	return 0;
}

int
store_pending_list(struct store *store, unsigned max, GArray *message_ids, char **error_r)
{
	return store_message_list(store, STORE_SELECT_PENDING, 0, max, message_ids, error_r);
}

int
store_message_list(struct store *store, enum store_select which, int64_t after_id, unsigned max,
		   GArray *message_ids, char **error_r)
{
	struct db_stmt *stmt;

	if (which == STORE_SELECT_ALL) {
		stmt = stmt_get(store, STMT_MSG_LIST_ALL, error_r);
	} else {
		stmt = stmt_get(store, STMT_MSG_LIST_OUTCOME, error_r);
		if (stmt != NULL)
			bind_text(stmt, 3, store_outcome_name(which == STORE_SELECT_FAILED ? STORE_OUTCOME_FAILED
										  : STORE_OUTCOME_PENDING));
	}
	if (stmt == NULL)
		return -1;
	db_bind_int64(stmt, 1, after_id);
	db_bind_int64(stmt, 2, max);
	return list_ids(store, stmt, message_ids, error_r);
}

/* --- parse results --------------------------------------------------------------- */

/* The state of a message before a result is committed. */
struct msg_state {
	char outcome[16];
	int64_t device_id;
	char received_utc[SK_UTC_SIZE];
	int64_t received_unix;
};

static int
msg_state_read(struct store *store, int64_t message_id, struct msg_state *st, char **error_r)
{
	struct db_stmt *stmt = stmt_get(store, STMT_MSG_STATE, error_r);
	int rc;

	memset(st, 0, sizeof(*st));
	if (stmt == NULL)
		return -1;
	db_bind_int64(stmt, 1, message_id);
	rc = stmt_row(store, stmt, "reading a message", error_r);
	if (rc <= 0) {
		if (rc == 0)
			*error_r = g_strdup_printf("store: no message %" G_GINT64_FORMAT, message_id);
		return -1;
	}
	g_strlcpy(st->outcome, (const char *)db_column_text(stmt, 0), sizeof(st->outcome));
	st->device_id = db_column_int64(stmt, 1);
	g_strlcpy(st->received_utc, (const char *)db_column_text(stmt, 2), sizeof(st->received_utc));
	st->received_unix = db_column_int64(stmt, 3) / G_USEC_PER_SEC;
	db_reset(stmt);
	return 0;
}

/* --- several nodes: advisory locks (PostgreSQL) ----------------------------------- */

/* One bigint key space for the session advisory locks: message ids as they
 * are (positive), mailboxes below PG_LOCK_MAILBOX_BASE. */
#define PG_LOCK_MAILBOX_BASE (-((int64_t)1 << 40))

static int
pg_try_lock(struct store *store, int64_t key, char **error_r)
{
	struct db_stmt *stmt = NULL;
	int rc, ret = -1;

	if (db_prepare(store->db, "SELECT pg_try_advisory_lock(?1)", &stmt) != DB_OK) {
		set_db_error(store, "claiming", error_r);
		return -1;
	}
	db_bind_int64(stmt, 1, key);
	rc = db_step(stmt);
	if (rc == DB_ROW)
		ret = db_column_int64(stmt, 0) != 0 ? 1 : 0;
	else
		set_db_error(store, "claiming", error_r);
	db_finalize(stmt);
	return ret;
}

static void
pg_unlock(struct store *store, int64_t key)
{
	struct db_stmt *stmt = NULL;

	if (db_prepare(store->db, "SELECT pg_advisory_unlock(?1)", &stmt) == DB_OK) {
		db_bind_int64(stmt, 1, key);
		if (db_step(stmt) != DB_ROW)
			log_warnx("store: event=unlock-failed key=%lld error=\"%s\"", (long long)key,
				  db_errmsg(store->db));
	}
	db_finalize(stmt);
}

int
store_parse_claim(struct store *store, int64_t message_id, bool pending_only, char **error_r)
{
	struct msg_state st;
	int rc;

	if (db_engine(store->db) != DB_ENGINE_POSTGRESQL)
		return 1;
	rc = pg_try_lock(store, message_id, error_r);
	if (rc <= 0 || !pending_only)
		return rc;
	rc = msg_state_read(store, message_id, &st, error_r);
	if (rc == 0 && strcmp(st.outcome, "pending") == 0)
		return 1;
	pg_unlock(store, message_id);
	return rc < 0 ? -1 : 0;
}

void
store_parse_release(struct store *store, int64_t message_id)
{
	if (db_engine(store->db) == DB_ENGINE_POSTGRESQL)
		pg_unlock(store, message_id);
}

int
store_mailbox_claim(struct store *store, int64_t mailbox_id, char **error_r)
{
	if (db_engine(store->db) != DB_ENGINE_POSTGRESQL)
		return 1;
	return pg_try_lock(store, PG_LOCK_MAILBOX_BASE - mailbox_id, error_r);
}

void
store_mailbox_release(struct store *store, int64_t mailbox_id)
{
	if (db_engine(store->db) == DB_ENGINE_POSTGRESQL)
		pg_unlock(store, PG_LOCK_MAILBOX_BASE - mailbox_id);
}


static int
record_outcome(struct store *store, int64_t message_id, enum store_outcome outcome, const char *detail,
	       const char *serial, int64_t device_id, int64_t snapshot_id, char **error_r)
{
	struct db_stmt *stmt = stmt_get(store, STMT_MSG_OUTCOME, error_r);

	if (stmt == NULL)
		return -1;
	db_bind_int64(stmt, 1, message_id);
	bind_text(stmt, 2, store_outcome_name(outcome));
	bind_text(stmt, 3, detail);
	bind_id(stmt, 4, device_id);
	if (stmt_exec(store, stmt, "recording an outcome", error_r) < 0)
		return -1;

	stmt = stmt_get(store, STMT_INTAKE_OUTCOME, error_r);
	if (stmt == NULL)
		return -1;
	db_bind_int64(stmt, 1, message_id);
	bind_text(stmt, 2, store_outcome_name(outcome));
	bind_text(stmt, 3, detail);
	bind_text(stmt, 4, serial);
	bind_id(stmt, 5, snapshot_id);
	if (stmt_exec(store, stmt, "recording an outcome", error_r) < 0)
		return -1;

	if (serial == NULL)
		return 0;
	/* Arrivals of the same bytes learn the serial too. */
	stmt = stmt_get(store, STMT_INTAKE_SERIAL, error_r);
	if (stmt == NULL)
		return -1;
	db_bind_int64(stmt, 1, message_id);
	bind_text(stmt, 2, serial);
	bind_id(stmt, 3, snapshot_id);
	return stmt_exec(store, stmt, "recording an outcome", error_r);
}

static int
store_hints_record(struct store *store, int64_t message_id, const struct store_hints *hints,
		   char **error_r)
{
	struct db_stmt *stmt;

	if (hints == NULL)
		return 0;
	stmt = stmt_get(store, STMT_MSG_HINTS, error_r);
	if (stmt == NULL)
		return -1;
	db_bind_int64(stmt, 1, message_id);
	bind_text(stmt, 2, hints->subject);
	bind_text(stmt, 3, hints->header_from);
	bind_text(stmt, 4, hints->date_utc);
	bind_text(stmt, 5, hints->message_id_header);
	bind_text(stmt, 6, hints->subject_serial);
	bind_text(stmt, 7, hints->subject_time_utc);
	return stmt_exec(store, stmt, "recording hints", error_r);
}


static int
counter_name_id(struct store *store, const char *name, int64_t *id_r, char **error_r)
{
	struct db_stmt *stmt;
	int rc = id_lookup(store, STMT_NAME_FIND, name, id_r, error_r);

	if (rc != 0)
		return rc < 0 ? -1 : 0;
	stmt = stmt_get(store, STMT_NAME_INSERT, error_r);
	if (stmt == NULL)
		return -1;
	bind_text(stmt, 1, name);
	rc = stmt_insert_id(store, stmt, "adding a counter name", id_r, error_r);
	if (rc == 0) /* another node's transaction added it meanwhile */
		rc = id_lookup(store, STMT_NAME_FIND, name, id_r, error_r) > 0 ? 1 : -1;
	return rc < 0 ? -1 : 0;
}

static void
bind_counter_value(struct db_stmt *stmt, int i, const struct snapshot_counter *c)
{
	db_bind_int64(stmt, i, c->value);
	/* value_real only when it is the fractional value behind value. */
	if (c->value_real != (double)c->value && c->value_real > -9.0e15 && c->value_real < 9.0e15 &&
	    (int64_t)c->value_real == c->value)
		db_bind_double(stmt, i + 1, c->value_real);
	else
		db_bind_null(stmt, i + 1);
}

static int
cmp_str(gconstpointer a, gconstpointer b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The ids of the counter names the snapshot uses, looked up or added in
 * name order: on PostgreSQL two commits adding the same new names then
 * wait for each other in one order, never both ways (a deadlock). */
static GHashTable *
counter_name_ids(struct store *store, const struct snapshot *snap, char **error_r)
{
	GHashTable *ids = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, g_free);
	GPtrArray *names = g_ptr_array_new();
	GPtrArray *lists[2] = { snap->counters, snap->media_counters };

	for (int l = 0; l < 2; l++)
		for (guint i = 0; lists[l] != NULL && i < lists[l]->len; i++) {
			const struct snapshot_counter *c = g_ptr_array_index(lists[l], i);
			/* (as insert_counters takes them: totals, then per media size) */
			if (c != NULL && c->name != NULL && c->value != SNAPSHOT_ABSENT &&
			    (c->media_size == NULL) == (l == 0) && !g_hash_table_contains(ids, c->name)) {
				g_hash_table_insert(ids, c->name, NULL);
				g_ptr_array_add(names, c->name);
			}
		}
	g_ptr_array_sort(names, cmp_str);
	for (guint i = 0; i < names->len; i++) {
		int64_t id;
		if (counter_name_id(store, g_ptr_array_index(names, i), &id, error_r) < 0) {
			g_hash_table_destroy(ids);
			ids = NULL;
			break;
		}
		int64_t *copy = g_new(int64_t, 1);
		*copy = id;
		g_hash_table_insert(ids, g_ptr_array_index(names, i), copy);
	}
	g_ptr_array_free(names, TRUE);
	return ids;
}

static int
insert_counters(struct store *store, int64_t snapshot_id, const struct snapshot *snap, char **error_r)
{
	GHashTable *ids = counter_name_ids(store, snap, error_r);
	int ret = -1;

	if (ids == NULL)
		return -1;
	for (guint i = 0; snap->counters != NULL && i < snap->counters->len; i++) {
		const struct snapshot_counter *c = g_ptr_array_index(snap->counters, i);
		struct db_stmt *stmt;
		if (c == NULL || c->name == NULL || c->media_size != NULL || c->value == SNAPSHOT_ABSENT)
			continue;
		stmt = stmt_get(store, STMT_COUNTER_INSERT, error_r);
		if (stmt == NULL)
			goto out;
		db_bind_int64(stmt, 1, snapshot_id);
		db_bind_int64(stmt, 2, *(const int64_t *)g_hash_table_lookup(ids, c->name));
		bind_counter_value(stmt, 3, c);
		if (stmt_exec(store, stmt, "storing a counter", error_r) < 0)
			goto out;
	}
	for (guint i = 0; snap->media_counters != NULL && i < snap->media_counters->len; i++) {
		const struct snapshot_counter *c = g_ptr_array_index(snap->media_counters, i);
		struct db_stmt *stmt;
		if (c == NULL || c->name == NULL || c->media_size == NULL || c->value == SNAPSHOT_ABSENT)
			continue;
		stmt = stmt_get(store, STMT_MEDIA_INSERT, error_r);
		if (stmt == NULL)
			goto out;
		db_bind_int64(stmt, 1, snapshot_id);
		bind_text(stmt, 2, c->media_size);
		db_bind_int64(stmt, 3, *(const int64_t *)g_hash_table_lookup(ids, c->name));
		bind_counter_value(stmt, 4, c);
		if (stmt_exec(store, stmt, "storing a media counter", error_r) < 0)
			goto out;
	}
	ret = 0;
out:
	g_hash_table_destroy(ids);
	return ret;
}

/* Flags the device totals of later_id that are lower than in earlier_id. */
static int
flag_drops(struct store *store, int64_t later_id, int64_t earlier_id, char **error_r)
{
	struct db_stmt *stmt = stmt_get(store, STMT_DROPS, error_r);
	int before;

	if (stmt == NULL)
		return -1;
	db_bind_int64(stmt, 1, later_id);
	db_bind_int64(stmt, 2, earlier_id);
	before = db_total_changes(store->db);
	if (stmt_exec(store, stmt, "flagging counters", error_r) < 0)
		return -1;
	if (db_total_changes(store->db) != before)
		log_warnx("store: event=counter-backwards snapshot=%" G_GINT64_FORMAT
			  " previous=%" G_GINT64_FORMAT, later_id, earlier_id);
	return 0;
}

static int
neighbour_snapshot(struct store *store, enum stmt_id sid, int64_t device_id, const char *taken_utc,
		   int64_t *id_r, char **error_r)
{
	struct db_stmt *stmt = stmt_get(store, sid, error_r);
	int rc;

	if (stmt == NULL)
		return -1;
	db_bind_int64(stmt, 1, device_id);
	bind_text(stmt, 2, taken_utc);
	rc = stmt_row(store, stmt, "finding a neighbour snapshot", error_r);
	if (rc > 0) {
		*id_r = db_column_int64(stmt, 0);
		db_reset(stmt);
	}
	return rc;
}

static int
check_counter_drops(struct store *store, int64_t device_id, int64_t snapshot_id, const char *taken_utc,
		    char **error_r)
{
	int64_t other;
	int rc;

	rc = neighbour_snapshot(store, STMT_SNAP_PREV, device_id, taken_utc, &other, error_r);
	if (rc < 0 || (rc > 0 && flag_drops(store, snapshot_id, other, error_r) < 0))
		return -1;
	/* A snapshot arriving late sits before a later one: check that one too. */
	rc = neighbour_snapshot(store, STMT_SNAP_NEXT, device_id, taken_utc, &other, error_r);
	if (rc < 0 || (rc > 0 && flag_drops(store, other, snapshot_id, error_r) < 0))
		return -1;
	return 0;
}

/* A supply's stable key: as devxml gives it, else its label, type or position. */
static char *
supply_key(const struct snapshot_supply *s, guint index)
{
	if (s->key != NULL && s->key[0] != '\0')
		return g_strdup(s->key);
	if (s->label != NULL && s->label[0] != '\0')
		return g_strdup(s->label);
	if (s->type != NULL && s->type[0] != '\0')
		return g_strdup(s->type);
	return g_strdup_printf("supply%u", index + 1);
}

static int
insert_supplies(struct store *store, int64_t device_id, int64_t snapshot_id, const char *taken_utc,
		const struct snapshot *snap, char **error_r)
{
	for (guint i = 0; snap->supplies != NULL && i < snap->supplies->len; i++) {
		const struct snapshot_supply *s = g_ptr_array_index(snap->supplies, i);
		const char *serial;
		char *key;
		int64_t supply_id = 0;
		struct db_stmt *stmt;
		int rc;

		if (s == NULL)
			continue;
		key = supply_key(s, i);
		serial = s->serial != NULL ? s->serial : "";
		stmt = stmt_get(store, STMT_SUPPLY_FIND, error_r);
		if (stmt == NULL)
			goto fail;
		db_bind_int64(stmt, 1, device_id);
		bind_text(stmt, 2, key);
		bind_text(stmt, 3, serial);
		rc = stmt_row(store, stmt, "finding a supply", error_r);
		if (rc < 0)
			goto fail;
		if (rc > 0) {
			supply_id = db_column_int64(stmt, 0);
			db_reset(stmt);
			stmt = stmt_get(store, STMT_SUPPLY_UPDATE, error_r);
			if (stmt == NULL)
				goto fail;
			db_bind_int64(stmt, 1, supply_id);
			bind_text(stmt, 2, s->label);
			bind_text(stmt, 3, s->color);
			bind_text(stmt, 4, s->type);
			bind_text(stmt, 5, s->description);
			bind_text(stmt, 6, s->product_number);
			bind_text(stmt, 7, s->brand);
			bind_text(stmt, 8, s->installed_date);
			bind_text(stmt, 9, taken_utc);
			if (stmt_exec(store, stmt, "updating a supply", error_r) < 0)
				goto fail;
			stmt = stmt_get(store, STMT_SUPPLY_FIRST, error_r);
			if (stmt == NULL)
				goto fail;
			db_bind_int64(stmt, 1, supply_id);
			db_bind_int64(stmt, 2, snapshot_id);
			bind_text(stmt, 3, taken_utc);
			if (stmt_exec(store, stmt, "updating a supply", error_r) < 0)
				goto fail;
		} else {
			stmt = stmt_get(store, STMT_SUPPLY_INSERT, error_r);
			if (stmt == NULL)
				goto fail;
			db_bind_int64(stmt, 1, device_id);
			bind_text(stmt, 2, key);
			bind_text(stmt, 3, serial);
			bind_text(stmt, 4, s->label);
			bind_text(stmt, 5, s->color);
			bind_text(stmt, 6, s->type);
			bind_text(stmt, 7, s->description);
			bind_text(stmt, 8, s->product_number);
			bind_text(stmt, 9, s->brand);
			bind_text(stmt, 10, s->installed_date);
			db_bind_int64(stmt, 11, snapshot_id);
			bind_text(stmt, 12, taken_utc);
			if (stmt_insert_id(store, stmt, "adding a supply", &supply_id, error_r) <= 0) {
				set_db_error(store, "adding a supply: it exists", error_r);
				goto fail;
			}
		}

		stmt = stmt_get(store, STMT_LEVEL_INSERT, error_r);
		if (stmt == NULL)
			goto fail;
		db_bind_int64(stmt, 1, snapshot_id);
		db_bind_int64(stmt, 2, supply_id);
		bind_opt_int(stmt, 3, s->level_percent);
		bind_opt_int(stmt, 4, s->low_threshold);
		bind_opt_int(stmt, 5, s->pages);
		bind_text(stmt, 6, s->state);
		if (stmt_exec(store, stmt, "storing a supply level", error_r) < 0)
			goto fail;

		stmt = stmt_get(store, STMT_SUPPLY_CURRENT, error_r);
		if (stmt == NULL)
			goto fail;
		db_bind_int64(stmt, 1, device_id);
		bind_text(stmt, 2, key);
		db_bind_int64(stmt, 3, supply_id);
		db_bind_int64(stmt, 4, snapshot_id);
		bind_text(stmt, 5, taken_utc);
		if (stmt_exec(store, stmt, "updating the current supply", error_r) < 0)
			goto fail;
		g_free(key);
		continue;
fail:
		g_free(key);
		return -1;
	}
	return 0;
}

static int
event_update(struct store *store, enum stmt_id sid, int64_t event_id, int64_t snapshot_id,
	     const char *taken_utc, char **error_r)
{
	struct db_stmt *stmt = stmt_get(store, sid, error_r);

	if (stmt == NULL)
		return -1;
	db_bind_int64(stmt, 1, event_id);
	db_bind_int64(stmt, 2, snapshot_id);
	bind_text(stmt, 3, taken_utc);
	return stmt_exec(store, stmt, "updating an event", error_r);
}

static void
json_add_opt_int(JsonBuilder *b, const char *name, int64_t v)
{
	json_builder_set_member_name(b, name);
	if (v == SNAPSHOT_ABSENT)
		json_builder_add_null_value(b);
	else
		json_builder_add_int_value(b, v);
}

static void
json_add_opt_text(JsonBuilder *b, const char *name, const char *v)
{
	json_builder_set_member_name(b, name);
	if (v == NULL)
		json_builder_add_null_value(b);
	else
		json_builder_add_string_value(b, v);
}

/* PostgreSQL: the whole event log in one statement (STMT_EVENTS_UPSERT). */
static int
insert_events_pg(struct store *store, int64_t device_id, int64_t snapshot_id, const char *taken_utc,
		 const struct snapshot *snap, char **error_r)
{
	JsonBuilder *b = json_builder_new();
	JsonGenerator *gen = json_generator_new();
	struct db_stmt *stmt;
	int ret = -1;

	json_builder_begin_array(b);
	for (guint i = 0; i < snap->events->len; i++) {
		const struct snapshot_event *e = g_ptr_array_index(snap->events, i);
		if (e == NULL)
			continue;
		json_builder_begin_object(b);
		json_add_opt_text(b, "log", e->log);
		json_add_opt_int(b, "sequence", e->sequence);
		json_add_opt_text(b, "code", e->code);
		json_add_opt_text(b, "occurred_utc", e->occurred_utc);
		json_add_opt_int(b, "occurred_offset_min",
				 e->occurred_utc != NULL ? e->occurred_offset_min : SNAPSHOT_ABSENT);
		json_add_opt_text(b, "description", e->description);
		json_add_opt_int(b, "page_count", e->page_count);
		json_add_opt_text(b, "payload_json", e->payload_json);
		json_builder_end_object(b);
	}
	json_builder_end_array(b);
	JsonNode *root = json_builder_get_root(b);
	json_generator_set_root(gen, root);
	char *text = json_generator_to_data(gen, NULL);
	json_node_unref(root);

	stmt = stmt_get(store, STMT_EVENTS_UPSERT, error_r);
	if (stmt != NULL) {
		db_bind_int64(stmt, 1, device_id);
		bind_text(stmt, 2, text);
		db_bind_int64(stmt, 3, snapshot_id);
		bind_text(stmt, 4, taken_utc);
		ret = stmt_exec(store, stmt, "storing events", error_r);
	}
	g_free(text);
	g_object_unref(gen);
	g_object_unref(b);
	return ret;
}

static int
insert_events(struct store *store, int64_t device_id, int64_t snapshot_id, const char *taken_utc,
	      const struct snapshot *snap, char **error_r)
{
	if (snap->events == NULL || snap->events->len == 0)
		return 0;
	if (db_engine(store->db) == DB_ENGINE_POSTGRESQL)
		return insert_events_pg(store, device_id, snapshot_id, taken_utc, snap, error_r);
	for (guint i = 0; snap->events != NULL && i < snap->events->len; i++) {
		const struct snapshot_event *e = g_ptr_array_index(snap->events, i);
		int64_t seq;
		struct db_stmt *stmt;
		int rc;

		if (e == NULL)
			continue;
		seq = e->sequence == SNAPSHOT_ABSENT ? -1 : e->sequence;
		stmt = stmt_get(store, STMT_EVENT_FIND, error_r);
		if (stmt == NULL)
			return -1;
		db_bind_int64(stmt, 1, device_id);
		bind_text(stmt, 2, e->log != NULL ? e->log : "");
		db_bind_int64(stmt, 3, seq);
		bind_text(stmt, 4, e->code != NULL ? e->code : "");
		bind_text(stmt, 5, e->occurred_utc != NULL ? e->occurred_utc : "");
		rc = stmt_row(store, stmt, "finding an event", error_r);
		if (rc < 0)
			return -1;
		if (rc > 0) {
			/* Known: move its first or last report only when this
			 * snapshot is earlier or later (the statements would be
			 * no-ops otherwise; they are most of a commit's time). */
			int64_t event_id = db_column_int64(stmt, 0);
			const char *first = (const char *)db_column_text(stmt, 1);
			const char *last = (const char *)db_column_text(stmt, 2);
			bool earlier = first == NULL || strcmp(taken_utc, first) < 0;
			bool later = last == NULL || strcmp(taken_utc, last) > 0;
			db_reset(stmt);
			if ((earlier && event_update(store, STMT_EVENT_FIRST, event_id, snapshot_id, taken_utc,
						     error_r) < 0) ||
			    (later && event_update(store, STMT_EVENT_LAST, event_id, snapshot_id, taken_utc,
						   error_r) < 0))
				return -1;
			continue;
		}
		stmt = stmt_get(store, STMT_EVENT_INSERT, error_r);
		if (stmt == NULL)
			return -1;
		db_bind_int64(stmt, 1, device_id);
		bind_text(stmt, 2, e->log);
		bind_opt_int(stmt, 3, e->sequence);
		bind_text(stmt, 4, e->code);
		bind_text(stmt, 5, e->occurred_utc);
		if (e->occurred_utc != NULL)
			db_bind_int(stmt, 6, e->occurred_offset_min);
		bind_text(stmt, 7, e->description);
		bind_opt_int(stmt, 8, e->page_count);
		bind_text(stmt, 9, e->payload_json);
		db_bind_int64(stmt, 10, snapshot_id);
		bind_text(stmt, 11, taken_utc);
		if (stmt_exec(store, stmt, "storing an event", error_r) < 0)
			return -1;
	}
	return 0;
}

static const struct snapshot_counter *
total_counter(const struct snapshot *snap, const char *name)
{
	for (guint i = 0; snap->counters != NULL && i < snap->counters->len; i++) {
		const struct snapshot_counter *c = g_ptr_array_index(snap->counters, i);
		if (c != NULL && c->name != NULL && c->media_size == NULL && strcmp(c->name, name) == 0 &&
		    c->value != SNAPSHOT_ABSENT)
			return c;
	}
	return NULL;
}

static void
bind_counter_or_null(struct db_stmt *stmt, int i, const struct snapshot *snap, const char *name)
{
	const struct snapshot_counter *c = total_counter(snap, name);

	if (c == NULL)
		db_bind_null(stmt, i);
	else
		db_bind_int64(stmt, i, c->value);
}

static const char *
dialect_name(enum snapshot_dialect dialect)
{
	switch (dialect) {
	case SNAPSHOT_DIALECT_FUTURESMART:
		return "futuresmart";
	case SNAPSHOT_DIALECT_LEGACY:
		return "legacy";
	}
	return NULL;
}

/* Finds or creates the device and records that it was seen. */
static int
device_seen(struct store *store, const char *serial, const char *taken_utc, const char *received_utc,
	    int64_t *device_id_r, char **error_r)
{
	struct db_stmt *stmt;
	int rc = id_lookup(store, STMT_DEV_FIND, serial, device_id_r, error_r);

	if (rc < 0)
		return -1;
	if (rc == 0) {
		stmt = stmt_get(store, STMT_DEV_INSERT, error_r);
		if (stmt == NULL)
			return -1;
		bind_text(stmt, 1, serial);
		bind_text(stmt, 2, taken_utc);
		bind_text(stmt, 3, received_utc);
		rc = stmt_insert_id(store, stmt, "adding a device", device_id_r, error_r);
		if (rc < 0)
			return -1;
		if (rc == 0 && id_lookup(store, STMT_DEV_FIND, serial, device_id_r, error_r) <= 0)
			return -1; /* (0: another node's transaction added it meanwhile) */
		if (rc > 0)
			log_info("store: event=new-device serial=%s", serial);
	}
	if (db_engine(store->db) == DB_ENGINE_POSTGRESQL) {
		stmt = stmt_get(store, STMT_DEV_LOCK, error_r);
		if (stmt == NULL)
			return -1;
		db_bind_int64(stmt, 1, *device_id_r);
		rc = stmt_row(store, stmt, "locking a device", error_r);
		if (rc <= 0)
			return -1;
		db_reset(stmt);
	}
	return 0;
}

/* Identity and totals follow the latest snapshot by snapshot time: nothing
 * happens unless snapshot_id is (or becomes) the device's latest. */
static int
device_latest(struct store *store, int64_t device_id, int64_t snapshot_id, const char *taken_utc,
	      const struct snapshot *snap, char **error_r)
{
	struct db_stmt *stmt = stmt_get(store, STMT_DEV_LATEST, error_r);

	if (stmt == NULL)
		return -1;
	db_bind_int64(stmt, 1, device_id);
	bind_text(stmt, 2, snap->product_number);
	bind_text(stmt, 3, snap->model);
	bind_text(stmt, 4, snap->firmware);
	bind_text(stmt, 5, snap->firmware_date);
	bind_text(stmt, 6, snap->hostname);
	bind_text(stmt, 7, snap->ip_address);
	bind_text(stmt, 8, snap->mac_address);
	bind_text(stmt, 9, snap->device_uuid);
	bind_text(stmt, 10, snap->locale);
	bind_text(stmt, 11, dialect_name(snap->dialect));
	db_bind_int64(stmt, 12, snapshot_id);
	bind_text(stmt, 13, taken_utc);
	bind_counter_or_null(stmt, 14, snap, "TotalImpressions");
	bind_counter_or_null(stmt, 15, snap, "MonochromeImpressions");
	bind_counter_or_null(stmt, 16, snap, "ColorImpressions");
	return stmt_exec(store, stmt, "updating a device", error_r);
}

static int
device_update(struct store *store, int64_t device_id, int64_t snapshot_id, const char *taken_utc,
	      const char *received_utc, const struct snapshot *snap, char **error_r)
{
	struct db_stmt *stmt = stmt_get(store, STMT_DEV_SEEN, error_r);

	if (stmt == NULL)
		return -1;
	db_bind_int64(stmt, 1, device_id);
	bind_text(stmt, 2, taken_utc);
	bind_text(stmt, 3, received_utc);
	if (stmt_exec(store, stmt, "updating a device", error_r) < 0)
		return -1;
	return device_latest(store, device_id, snapshot_id, taken_utc, snap, error_r);
}

/* The snapshot time: the XML's, else the subject's, else the Date header,
 * else the receive time (deterministic per message, so reparse agrees). */
static int
snapshot_time(const struct snapshot *snap, const struct store_hints *hints, const struct msg_state *st,
	      char utc_r[SK_UTC_SIZE], int64_t *unix_r, const char **source_r)
{
	const char *candidates[3] = { snap->taken_utc, hints != NULL ? hints->subject_time_utc : NULL,
				      hints != NULL ? hints->date_utc : NULL };
	static const char *const sources[3] = { "xml", "subject", "date" };

	for (unsigned i = 0; i < 3; i++) {
		if (candidates[i] != NULL && sk_time_parse_iso8601(candidates[i], utc_r, unix_r, NULL, NULL) == 0) {
			*source_r = sources[i];
			return 0;
		}
	}
	g_strlcpy(utc_r, st->received_utc, SK_UTC_SIZE);
	*unix_r = st->received_unix;
	*source_r = "received";
	return 0;
}

/* Runs a cached statement whose only parameters are ?1 (and ?2, ?3 when
 * given: > 0 / non-NULL). */
static int
exec_ids(struct store *store, enum stmt_id sid, int64_t id1, int64_t id2, const char *text3,
	 const char *what, char **error_r)
{
	struct db_stmt *stmt = stmt_get(store, sid, error_r);

	if (stmt == NULL)
		return -1;
	db_bind_int64(stmt, 1, id1);
	if (id2 > 0)
		db_bind_int64(stmt, 2, id2);
	if (text3 != NULL)
		bind_text(stmt, 3, text3);
	return stmt_exec(store, stmt, what, error_r);
}

/* Snapshots flagged against snapshot_id (counter_drops.previous_snapshot_id),
 * with their times, so that they can be checked again. */
struct dependent {
	int64_t id;
	char taken_utc[SK_UTC_SIZE];
};

static int
drops_dependents(struct store *store, int64_t snapshot_id, GArray *out, char **error_r)
{
	struct db_stmt *stmt = stmt_get(store, STMT_DROPS_DEPENDENTS, error_r);
	int rc;

	if (stmt == NULL)
		return -1;
	db_bind_int64(stmt, 1, snapshot_id);
	while ((rc = db_step(stmt)) == DB_ROW) {
		struct dependent d = { .id = db_column_int64(stmt, 0) };
		g_strlcpy(d.taken_utc, (const char *)db_column_text(stmt, 1), sizeof(d.taken_utc));
		g_array_append_val(out, d);
	}
	db_reset(stmt);
	if (rc != DB_DONE) {
		set_db_error(store, "finding flagged counters", error_r);
		return -1;
	}
	return 0;
}

/* A reparse of the message a snapshot came from: the snapshot's counters,
 * media counters, supply readings and identity columns are replaced by the
 * new parse; derived rows (counter_drops, supply_current, supplies' first
 * and last report, the device's latest columns) are recomputed; events are
 * added, never removed (other snapshots may report them too).  Doing it
 * twice with the same parse leaves the same rows. */
static int
snapshot_refresh(struct store *store, int64_t device_id, int64_t snapshot_id, const struct msg_state *st,
		 const struct snapshot *snap, const char *taken_utc, int64_t taken_unix,
		 const char *taken_source, char **error_r)
{
	GArray *dependents = g_array_new(FALSE, FALSE, sizeof(struct dependent));
	struct db_stmt *stmt;
	int ret = -1;

	stmt = stmt_get(store, STMT_SNAP_REFRESH, error_r);
	if (stmt == NULL)
		goto out;
	db_bind_int64(stmt, 1, snapshot_id);
	db_bind_int64(stmt, 2, taken_unix);
	if (strcmp(taken_source, "xml") == 0 && snap->taken_has_offset)
		db_bind_int(stmt, 3, snap->taken_offset_min);
	bind_text(stmt, 4, taken_source);
	bind_text(stmt, 5, st->received_utc);
	db_bind_int64(stmt, 6, st->received_unix - taken_unix);
	bind_text(stmt, 7, dialect_name(snap->dialect));
	bind_text(stmt, 8, snap->firmware);
	bind_text(stmt, 9, snap->hostname);
	bind_text(stmt, 10, snap->ip_address);
	if (stmt_exec(store, stmt, "refreshing a snapshot", error_r) < 0)
		goto out;

	if (drops_dependents(store, snapshot_id, dependents, error_r) < 0 ||
	    exec_ids(store, STMT_DROPS_CLEAR, snapshot_id, 0, NULL, "clearing flags", error_r) < 0 ||
	    exec_ids(store, STMT_COUNTERS_CLEAR, snapshot_id, 0, NULL, "clearing counters", error_r) < 0 ||
	    exec_ids(store, STMT_MEDIA_CLEAR, snapshot_id, 0, NULL, "clearing counters", error_r) < 0 ||
	    exec_ids(store, STMT_LEVELS_CLEAR, snapshot_id, 0, NULL, "clearing supply levels", error_r) < 0 ||
	    exec_ids(store, STMT_CURRENT_CLEAR, snapshot_id, 0, NULL, "clearing supply levels", error_r) < 0)
		goto out;

	if (insert_counters(store, snapshot_id, snap, error_r) < 0 ||
	    check_counter_drops(store, device_id, snapshot_id, taken_utc, error_r) < 0)
		goto out;
	/* Snapshots that were flagged against this one: against their
	 * previous snapshot again (usually this one). */
	for (guint i = 0; i < dependents->len; i++) {
		const struct dependent *d = &g_array_index(dependents, struct dependent, i);
		int64_t prev;
		int rc = neighbour_snapshot(store, STMT_SNAP_PREV, device_id, d->taken_utc, &prev, error_r);
		if (rc < 0 || (rc > 0 && flag_drops(store, d->id, prev, error_r) < 0))
			goto out;
	}

	if (insert_supplies(store, device_id, snapshot_id, taken_utc, snap, error_r) < 0 ||
	    exec_ids(store, STMT_CURRENT_FILL, device_id, 0, NULL, "updating current supplies", error_r) < 0 ||
	    exec_ids(store, STMT_SUPPLY_ORPHANS, device_id, 0, NULL, "removing supplies", error_r) < 0 ||
	    exec_ids(store, STMT_SUPPLY_SPAN, device_id, snapshot_id, taken_utc, "updating supplies",
		     error_r) < 0 ||
	    insert_events(store, device_id, snapshot_id, taken_utc, snap, error_r) < 0 ||
	    device_latest(store, device_id, snapshot_id, taken_utc, snap, error_r) < 0)
		goto out;
	ret = 0;
out:
	g_array_free(dependents, TRUE);
	return ret;
}

/* Stores the rows of a snapshot; sets *outcome_r, *detail_r (g_free'd),
 * *device_id_r and *snapshot_id_r. */
static int
commit_snapshot(struct store *store, int64_t message_id, const struct msg_state *st,
		const struct snapshot *snap, const char *serial, const struct store_hints *hints,
		enum store_outcome *outcome_r, char **detail_r, int64_t *device_id_r,
		int64_t *snapshot_id_r, char **error_r)
{
	char taken_utc[SK_UTC_SIZE];
	int64_t taken_unix, device_id = 0, snapshot_id;
	const char *taken_source;
	struct db_stmt *stmt;
	int rc;

	(void)snapshot_time(snap, hints, st, taken_utc, &taken_unix, &taken_source);
	if (device_seen(store, serial, taken_utc, st->received_utc, &device_id, error_r) < 0)
		return -1;
	*device_id_r = device_id;

	stmt = stmt_get(store, STMT_SNAP_FIND, error_r);
	if (stmt == NULL)
		return -1;
	db_bind_int64(stmt, 1, device_id);
	bind_text(stmt, 2, taken_utc);
	rc = stmt_row(store, stmt, "finding a snapshot", error_r);
	if (rc < 0)
		return -1;
	if (rc > 0) {
		int64_t existing_message = db_column_int64(stmt, 1);
		*snapshot_id_r = db_column_int64(stmt, 0);
		db_reset(stmt);
		if (existing_message == message_id) {
			/* A reparse of the snapshot's own message: the new parse is
			 * what the archive says now. */
			if (snapshot_refresh(store, device_id, *snapshot_id_r, st, snap, taken_utc, taken_unix,
					     taken_source, error_r) < 0)
				return -1;
			*outcome_r = STORE_OUTCOME_STORED;
		} else {
			*outcome_r = STORE_OUTCOME_DUPLICATE;
			*detail_r = g_strdup_printf("snapshot %" G_GINT64_FORMAT " (%s at %s) already stored"
						    " from message %" G_GINT64_FORMAT,
						    *snapshot_id_r, serial, taken_utc, existing_message);
		}
		return 0;
	}

	stmt = stmt_get(store, STMT_SNAP_INSERT, error_r);
	if (stmt == NULL)
		return -1;
	db_bind_int64(stmt, 1, device_id);
	db_bind_int64(stmt, 2, message_id);
	bind_text(stmt, 3, taken_utc);
	db_bind_int64(stmt, 4, taken_unix);
	if (strcmp(taken_source, "xml") == 0 && snap->taken_has_offset)
		db_bind_int(stmt, 5, snap->taken_offset_min);
	bind_text(stmt, 6, taken_source);
	bind_text(stmt, 7, st->received_utc);
	db_bind_int64(stmt, 8, st->received_unix - taken_unix);
	bind_text(stmt, 9, dialect_name(snap->dialect));
	bind_text(stmt, 10, snap->firmware);
	bind_text(stmt, 11, snap->hostname);
	bind_text(stmt, 12, snap->ip_address);
	if (stmt_insert_id(store, stmt, "storing a snapshot", &snapshot_id, error_r) <= 0) {
		set_db_error(store, "storing a snapshot: it exists", error_r);
		return -1;
	}
	*snapshot_id_r = snapshot_id;

	if (insert_counters(store, snapshot_id, snap, error_r) < 0 ||
	    check_counter_drops(store, device_id, snapshot_id, taken_utc, error_r) < 0 ||
	    insert_supplies(store, device_id, snapshot_id, taken_utc, snap, error_r) < 0 ||
	    insert_events(store, device_id, snapshot_id, taken_utc, snap, error_r) < 0 ||
	    device_update(store, device_id, snapshot_id, taken_utc, st->received_utc, snap, error_r) < 0)
		return -1;
	*outcome_r = STORE_OUTCOME_STORED;
	return 0;
}

int
store_result_commit(struct store *store, int64_t message_id, enum store_outcome outcome,
		    const char *detail, const struct snapshot *snap, const struct store_hints *hints,
		    enum store_outcome *outcome_r, char **error_r)
{
	struct msg_state st;
	enum store_outcome recorded = outcome;
	char *own_detail = NULL;
	const char *serial = NULL;
	int64_t device_id = 0, snapshot_id = 0;
	struct tx tx;

	if (outcome == STORE_OUTCOME_PENDING) {
		*error_r = g_strdup("store: a parse result cannot be 'pending'");
		return -1;
	}
	if ((outcome == STORE_OUTCOME_STORED || outcome == STORE_OUTCOME_DUPLICATE) && snap == NULL) {
		*error_r = g_strdup("store: a stored result needs its snapshot");
		return -1;
	}
	if (tx_enter(store, &tx, error_r) < 0)
		return -1;
	if (msg_state_read(store, message_id, &st, error_r) < 0 ||
	    store_hints_record(store, message_id, hints, error_r) < 0)
		goto fail;

	if (outcome == STORE_OUTCOME_STORED || outcome == STORE_OUTCOME_DUPLICATE) {
		serial = result_serial(snap, hints);
		if (serial == NULL) {
			recorded = STORE_OUTCOME_FAILED;
			detail = "the snapshot names no serial number (document nor subject)";
		}
	}

	if (recorded == STORE_OUTCOME_STORED || recorded == STORE_OUTCOME_DUPLICATE) {
		if (commit_snapshot(store, message_id, &st, snap, serial, hints, &recorded, &own_detail,
				    &device_id, &snapshot_id, error_r) < 0)
			goto fail;
		if (own_detail != NULL)
			detail = own_detail;
		if (record_outcome(store, message_id, recorded, detail, serial, device_id, snapshot_id,
				   error_r) < 0 ||
		    archive_repack(store, message_id, device_id, error_r) < 0)
			goto fail;
	} else if (strcmp(st.outcome, "stored") == 0) {
		/* A reparse that fails where an earlier parse stored rows: the
		 * rows stay, and so does the outcome. */
		log_warnx("store: event=reparse-regression message=%" G_GINT64_FORMAT " outcome=%s detail=\"%s\"",
			  message_id, store_outcome_name(recorded), detail != NULL ? detail : "");
		recorded = STORE_OUTCOME_STORED;
	} else {
		const char *hint_serial = hints != NULL ? hints->subject_serial : NULL;
		if (record_outcome(store, message_id, recorded, detail, hint_serial, 0, 0, error_r) < 0)
			goto fail;
	}
	if (tx_leave(store, &tx, true, error_r) < 0)
		goto out_fail;
	g_free(own_detail);
	if (outcome_r != NULL)
		*outcome_r = recorded;
	return 0;
fail:
	(void)tx_leave(store, &tx, false, error_r);
out_fail:
	g_free(own_detail);
	return -1;
}

/* --- retention ---------------------------------------------------------------- */

struct prune_reencode {
	int64_t id;       /* a message that stays */
	int64_t base_id;  /* its base, to be pruned */
};

/* Rewrites a kept 'skc1' message as a keyframe (its base is about to be
 * pruned): built from its chain outside any transaction, verified, then
 * swapped in a short transaction if the row is still the same.  The depths
 * of the messages that build on it are recomputed.  1 done, 0 skipped (the
 * base is then kept), -1 database error. */
static int
prune_reencode(struct store *store, const struct prune_reencode *r, char **error_r)
{
	struct msg_row row;
	GBytes *container = NULL, *frame = NULL, *check = NULL, *raw = NULL;
	char *warn = NULL;
	struct db_stmt *stmt;
	struct tx tx;
	int rc, ret = -1;

	rc = msg_row_read(store, r->id, &row, error_r);
	if (rc <= 0)
		return rc;
	if (!row.delta_form || row.base_id != r->base_id) {
		ret = 0;
		goto out;
	}
	if (container_get(store, r->id, &container, &warn) < 0 ||
	    raw_from_container(&row, container, &raw, &warn) < 0)
		goto skip;
	gsize clen, flen;
	const void *cdata = g_bytes_get_data(container, &clen);
	if (archive_compress(cdata, clen, NULL, 0, store->settings.archive_repack_level, &frame, &warn) < 0)
		goto skip;
	const void *fdata = g_bytes_get_data(frame, &flen);
	g_bytes_unref(raw);
	raw = NULL;
	if (archive_decompress(fdata, flen, NULL, 0, archive_container_bound(row.raw_size), &check, &warn) < 0 ||
	    raw_from_container(&row, check, &raw, &warn) < 0)
		goto skip;

	if (tx_enter(store, &tx, error_r) < 0)
		goto out;
	stmt = stmt_get(store, STMT_PRUNE_REENCODE, error_r);
	bool ok = stmt != NULL;
	if (ok) {
		db_bind_int64(stmt, 1, r->id);
		db_bind_int64(stmt, 2, r->base_id);
		db_bind_int64(stmt, 3, (int64_t)flen);
		db_bind_blob64(stmt, 4, fdata, flen, DB_STATIC);
		bind_text(stmt, 5, row.sha256);
		ok = stmt_exec(store, stmt, "re-encoding a message", error_r) == 0;
	}
	bool changed = ok && db_changes(store->db) > 0;
	if (changed)
		ok = exec_ids(store, STMT_PRUNE_DEPTHS, r->id, 0, NULL, "recomputing chain depths", error_r) == 0;
	if (tx_leave(store, &tx, ok, error_r) < 0)
		goto out;
	ret = changed ? 1 : 0;
	if (changed)
		log_debug("store: event=reencode message=%" G_GINT64_FORMAT " old-base=%" G_GINT64_FORMAT
			  " stored=%zu", r->id, r->base_id, (size_t)flen);
	goto out;
skip:
	log_warnx("store: event=reencode-skipped message=%" G_GINT64_FORMAT " base=%" G_GINT64_FORMAT
		  " reason=\"%s\" action=base-kept", r->id, r->base_id, warn != NULL ? warn : "unknown");
	ret = 0;
out:
	g_free(warn);
	if (container != NULL)
		g_bytes_unref(container);
	if (frame != NULL)
		g_bytes_unref(frame);
	if (check != NULL)
		g_bytes_unref(check);
	if (raw != NULL)
		g_bytes_unref(raw);
	msg_row_clear(&row);
	return ret;
}

/* Prunes one batch of candidates in one transaction. */
static int
prune_batch(struct store *store, const int64_t *ids, guint n, int64_t cut_ok_us, int64_t cut_failed_us,
	    const char *now_utc, struct store_prune_stats *stats, char **error_r)
{
	struct db_stmt *stmt;
	int64_t added = 0, count = 0, raw = 0, stored = 0;
	struct tx tx;
	bool ok = false;

	if (tx_enter(store, &tx, error_r) < 0)
		return -1;
	if (exec_ids(store, STMT_PRUNE_BATCH_CLEAR, 0, 0, NULL, "pruning", error_r) < 0)
		goto out;
	added = 0;
	for (guint i = 0; i < n; i++) {
		stmt = stmt_get(store, STMT_PRUNE_BATCH_ADD, error_r);
		if (stmt == NULL)
			goto out;
		db_bind_int64(stmt, 1, cut_ok_us);
		db_bind_int64(stmt, 2, cut_failed_us);
		db_bind_int64(stmt, 3, ids[i]);
		if (stmt_exec(store, stmt, "pruning", error_r) < 0)
			goto out;
		added += db_changes(store->db);
	}
	if (db_engine(store->db) == DB_ENGINE_POSTGRESQL) {
		stmt = stmt_get(store, STMT_PRUNE_BATCH_LOCK, error_r);
		if (stmt == NULL || stmt_row(store, stmt, "locking the prune batch", error_r) <= 0)
			goto out;
		db_reset(stmt);
	}
	/* Until nothing changes: a base kept may be the dependant of another
	 * message of the batch, which must then be kept too. */
	for (guint round = 0; round <= n; round++) {
		if (exec_ids(store, STMT_PRUNE_BATCH_KEEP, 0, 0, NULL, "pruning", error_r) < 0)
			goto out;
		if (db_changes(store->db) == 0)
			break;
	}
	stmt = stmt_get(store, STMT_PRUNE_BATCH_SUM, error_r);
	if (stmt == NULL || stmt_row(store, stmt, "pruning", error_r) <= 0)
		goto out;
	count = db_column_int64(stmt, 0);
	raw = db_column_int64(stmt, 1);
	stored = db_column_int64(stmt, 2);
	db_reset(stmt);
	stmt = stmt_get(store, STMT_PRUNE_APPLY, error_r);
	if (stmt == NULL)
		goto out;
	bind_text(stmt, 1, now_utc);
	if (stmt_exec(store, stmt, "pruning", error_r) < 0)
		goto out;
	ok = true;
out:
	if (tx_leave(store, &tx, ok, error_r) < 0)
		return -1;
	stats->pruned += (uint64_t)count;
	stats->pruned_raw_bytes += (uint64_t)raw;
	stats->pruned_stored_bytes += (uint64_t)stored;
	stats->kept_as_base += (uint64_t)(added - count);
	return 0;
}

int
store_prune(struct store *store, int64_t now, bool dry_run, struct store_prune_stats *stats_r,
	    char **error_r)
{
	const struct store_settings *set = &store->settings;
	GArray *ids = g_array_new(FALSE, FALSE, sizeof(int64_t));
	GArray *reencode = g_array_new(FALSE, FALSE, sizeof(struct prune_reencode));
	GHashTable *doomed = g_hash_table_new(g_int64_hash, g_int64_equal);
	char now_utc[SK_UTC_SIZE];
	int64_t cut_ok_us, cut_failed_us;
	struct db_stmt *stmt;
	int rc, ret = -1;

	memset(stats_r, 0, sizeof(*stats_r));
	if (set->readonly) {
		*error_r = g_strdup("store: pruning needs a writable database");
		goto out;
	}
	if (!db_get_autocommit(store->db)) {
		*error_r = g_strdup("store: store_prune runs its own transactions, not inside one");
		goto out;
	}
	if (set->retention_days == 0) {
		ret = 0;
		goto out;
	}
	sk_time_format_utc(now, now_utc);
	cut_ok_us = (now - (int64_t)set->retention_days * 86400) * G_USEC_PER_SEC;
	/* Failed and not-snapshot messages: never before the parsed ones. */
	cut_failed_us = set->retention_failed_days == 0
				? INT64_MIN
				: (now - (int64_t)MAX(set->retention_days, set->retention_failed_days) * 86400) *
					  G_USEC_PER_SEC;

	/* 1. The candidates, dependants before their bases. */
	stmt = stmt_get(store, STMT_PRUNE_CANDIDATES, error_r);
	if (stmt == NULL)
		goto out;
	db_bind_int64(stmt, 1, cut_ok_us);
	db_bind_int64(stmt, 2, cut_failed_us);
	while ((rc = db_step(stmt)) == DB_ROW) {
		int64_t id = db_column_int64(stmt, 0);
		g_array_append_val(ids, id);
		if (dry_run) {
			stats_r->pruned_raw_bytes += (uint64_t)db_column_int64(stmt, 1);
			stats_r->pruned_stored_bytes += (uint64_t)db_column_int64(stmt, 2);
		}
	}
	db_reset(stmt);
	if (rc != DB_DONE) {
		set_db_error(store, "listing messages to prune", error_r);
		goto out;
	}
	stats_r->candidates = ids->len;
	for (guint i = 0; i < ids->len; i++)
		g_hash_table_add(doomed, &g_array_index(ids, int64_t, i));

	/* 2. Kept messages built on a candidate. */
	for (guint i = 0; i < ids->len; i++) {
		int64_t base = g_array_index(ids, int64_t, i);
		stmt = stmt_get(store, STMT_PRUNE_DEPENDANTS, error_r);
		if (stmt == NULL)
			goto out;
		db_bind_int64(stmt, 1, base);
		while ((rc = db_step(stmt)) == DB_ROW) {
			struct prune_reencode r = { db_column_int64(stmt, 0), base };
			if (!g_hash_table_contains(doomed, &r.id))
				g_array_append_val(reencode, r);
		}
		db_reset(stmt);
		if (rc != DB_DONE) {
			set_db_error(store, "finding delta dependants", error_r);
			goto out;
		}
	}
	if (dry_run) {
		stats_r->pruned = ids->len;
		stats_r->reencoded = reencode->len;
		ret = 0;
		goto out;
	}

	/* 3. Cut the chains: those become keyframes. */
	for (guint i = 0; i < reencode->len; i++) {
		rc = prune_reencode(store, &g_array_index(reencode, struct prune_reencode, i), error_r);
		if (rc < 0)
			goto out;
		stats_r->reencoded += (uint64_t)rc;
	}

	/* 4. Remove the bytes, a batch per transaction. */
	if (exec_sql(store, db_engine(store->db) == DB_ENGINE_POSTGRESQL
				    ? "CREATE TEMP TABLE IF NOT EXISTS prune_batch (id bigint PRIMARY KEY)"
				    : "CREATE TEMP TABLE IF NOT EXISTS prune_batch (id INTEGER PRIMARY KEY)",
		     error_r) < 0)
		goto out;
	guint batch = MAX(set->prune_batch, 1u);
	for (guint i = 0; i < ids->len; i += batch) {
		guint n = MIN(batch, ids->len - i);
		if (prune_batch(store, &g_array_index(ids, int64_t, i), n, cut_ok_us, cut_failed_us, now_utc,
				stats_r, error_r) < 0)
			goto out;
	}
	log_info("store: event=prune retention_days=%u failed_days=%u candidates=%" G_GUINT64_FORMAT
		 " pruned=%" G_GUINT64_FORMAT " raw_bytes=%" G_GUINT64_FORMAT " stored_bytes=%" G_GUINT64_FORMAT
		 " reencoded=%" G_GUINT64_FORMAT " kept_as_base=%" G_GUINT64_FORMAT,
		 set->retention_days, set->retention_failed_days, stats_r->candidates, stats_r->pruned,
		 stats_r->pruned_raw_bytes, stats_r->pruned_stored_bytes, stats_r->reencoded,
		 stats_r->kept_as_base);
	ret = 0;
out:
	g_hash_table_destroy(doomed);
	g_array_free(ids, TRUE);
	g_array_free(reencode, TRUE);
	return ret;
}

/* --- verification and statistics -------------------------------------------------- */

/* A read transaction around a series of reads, when the caller has none. */
static int
read_begin(struct store *store, bool *own_r, char **error_r)
{
	*own_r = db_get_autocommit(store->db) != 0;
	/* One snapshot of the database for the whole read (SQLite: any read
	 * transaction; PostgreSQL: REPEATABLE READ). */
	if (!*own_r)
		return 0;
	return exec_sql(store, db_engine(store->db) == DB_ENGINE_POSTGRESQL
				       ? "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY" : "BEGIN",
			error_r);
}

static void
read_end(struct store *store, bool own)
{
	char *ignored = NULL;

	if (own && !db_get_autocommit(store->db))
		(void)exec_sql(store, "COMMIT", &ignored);
	g_free(ignored);
}

int
store_archive_verify(struct store *store, struct store_verify_stats *stats_r, GPtrArray *problems,
		     unsigned max_problems, char **error_r)
{
	struct db_stmt *stmt;
	bool own;
	int rc, ret = -1;

	memset(stats_r, 0, sizeof(*stats_r));
	if (read_begin(store, &own, error_r) < 0)
		return -1;
	stmt = stmt_get(store, STMT_VERIFY_LIST, error_r);
	if (stmt == NULL)
		goto out;
	while ((rc = db_step(stmt)) == DB_ROW) {
		int64_t id = db_column_int64(stmt, 0);
		const char *method = (const char *)db_column_text(stmt, 1);
		bool parsed = db_column_int(stmt, 2) != 0;
		GBytes *raw = NULL;
		char *why = NULL;

		stats_r->messages++;
		if (method != NULL && strcmp(method, "pruned") == 0) {
			stats_r->pruned++;
			continue;
		}
		if (store_message_get(store, id, &raw, &why) < 0) {
			stats_r->damaged++;
			log_warnx("store: event=verify-damaged message=%" G_GINT64_FORMAT " reason=\"%s\"", id, why);
			if (problems != NULL && problems->len < max_problems)
				g_ptr_array_add(problems, g_strdup_printf("message %" G_GINT64_FORMAT ": %s", id, why));
			g_free(why);
			continue;
		}
		stats_r->verified++;
		stats_r->raw_bytes += g_bytes_get_size(raw);
		if (parsed && method != NULL && strcmp(method, "zstd") == 0)
			stats_r->plain_parsed++;
		g_bytes_unref(raw);
	}
	db_reset(stmt);
	if (rc != DB_DONE) {
		set_db_error(store, "listing the archive", error_r);
		goto out;
	}
	ret = 0;
out:
	read_end(store, own);
	return ret;
}

static char *
column_dup(struct db_stmt *stmt, int i)
{
	const char *t = (const char *)db_column_text(stmt, i);
	return t != NULL ? g_strdup(t) : NULL;
}

static int64_t
file_size(const char *path)
{
	GStatBuf st;

	return g_stat(path, &st) == 0 ? (int64_t)st.st_size : 0;
}

void
store_stats_clear(struct store_stats *stats)
{
	if (stats == NULL)
		return;
	if (stats->tables != NULL) {
		for (guint i = 0; i < stats->tables->len; i++)
			g_free(g_array_index(stats->tables, struct store_table_rows, i).name);
		g_array_free(stats->tables, TRUE);
	}
	g_free(stats->oldest_snapshot_utc);
	g_free(stats->newest_snapshot_utc);
	g_free(stats->oldest_received_utc);
	g_free(stats->newest_received_utc);
	memset(stats, 0, sizeof(*stats));
}

int
store_stats_get(struct store *store, struct store_stats *stats_r, char **error_r)
{
	struct db_stmt *stmt = NULL, *count = NULL;
	char *wal;
	bool own, pg = db_engine(store->db) == DB_ENGINE_POSTGRESQL;
	int rc, ret = -1;

	memset(stats_r, 0, sizeof(*stats_r));
	stats_r->tables = g_array_new(FALSE, TRUE, sizeof(struct store_table_rows));
	if (read_begin(store, &own, error_r) < 0)
		goto fail;
	if (pg) {
		/* The database's size in PostgreSQL's blocks; its free space is
		 * vacuum's business, and the WAL is the server's. */
		if (query_int64(store, "SELECT current_setting('block_size')::bigint", &stats_r->page_size,
				error_r) < 0 ||
		    query_int64(store, "SELECT pg_database_size(current_database())", &stats_r->file_bytes,
				error_r) < 0)
			goto fail;
		stats_r->page_count = stats_r->file_bytes / MAX(stats_r->page_size, 1);
	} else {
		if (query_int64(store, "PRAGMA page_size", &stats_r->page_size, error_r) < 0 ||
		    query_int64(store, "PRAGMA page_count", &stats_r->page_count, error_r) < 0 ||
		    query_int64(store, "PRAGMA freelist_count", &stats_r->freelist_count, error_r) < 0)
			goto fail;
		stats_r->file_bytes = file_size(store->path);
		wal = g_strconcat(store->path, "-wal", NULL);
		stats_r->wal_bytes = file_size(wal);
		g_free(wal);
	}

	/* Rows per table.  Table names come from the schema itself and are
	 * quoted as identifiers; nothing else is built at run time. */
	if (db_prepare(store->db,
		       pg ? "SELECT table_name::text FROM information_schema.tables"
			    " WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
			    " ORDER BY table_name"
			  : "SELECT name FROM sqlite_schema WHERE type = 'table'"
			    " AND name NOT LIKE 'sqlite!_%' ESCAPE '!' ORDER BY name",
		       &stmt) != DB_OK) {
		set_db_error(store, "listing tables", error_r);
		goto fail;
	}
	while ((rc = db_step(stmt)) == DB_ROW) {
		struct store_table_rows t = { column_dup(stmt, 0), 0 };
		GString *sql = g_string_new("SELECT count(*) FROM \"");
		for (const char *c = t.name; *c != '\0'; c++) {
			if (*c == '"')
				g_string_append_c(sql, '"');
			g_string_append_c(sql, *c);
		}
		g_string_append_c(sql, '"');
		rc = query_int64(store, sql->str, &t.rows, error_r);
		g_string_free(sql, TRUE);
		g_array_append_val(stats_r->tables, t);
		if (rc < 0)
			goto fail;
	}
	if (rc != DB_DONE) {
		set_db_error(store, "listing tables", error_r);
		goto fail;
	}

	if (db_prepare(store->db,
			       "SELECT count(*), coalesce(sum(CASE WHEN method = 'zstd' THEN 1 END), 0),"
			       " coalesce(sum(CASE WHEN method = 'skc1' THEN 1 END), 0),"
			       " coalesce(sum(CASE WHEN method = 'pruned' THEN 1 END), 0),"
			       " coalesce(sum(CASE WHEN method <> 'pruned' THEN raw_size END), 0),"
			       " coalesce(sum(CASE WHEN method <> 'pruned' THEN stored_size END), 0),"
			       " coalesce(sum(CASE WHEN method = 'pruned' THEN raw_size END), 0),"
			       " min(first_received_utc), max(first_received_utc),"
			       " (SELECT min(taken_utc) FROM snapshots), (SELECT max(taken_utc) FROM snapshots)"
			       " FROM messages", &count) != DB_OK ||
	    db_step(count) != DB_ROW) {
		set_db_error(store, "summing the archive", error_r);
		goto fail;
	}
	stats_r->messages = db_column_int64(count, 0);
	stats_r->messages_plain = db_column_int64(count, 1);
	stats_r->messages_delta = db_column_int64(count, 2);
	stats_r->messages_pruned = db_column_int64(count, 3);
	stats_r->raw_bytes = db_column_int64(count, 4);
	stats_r->stored_bytes = db_column_int64(count, 5);
	stats_r->pruned_raw_bytes = db_column_int64(count, 6);
	stats_r->oldest_received_utc = column_dup(count, 7);
	stats_r->newest_received_utc = column_dup(count, 8);
	stats_r->oldest_snapshot_utc = column_dup(count, 9);
	stats_r->newest_snapshot_utc = column_dup(count, 10);
	ret = 0;
	goto out;
fail:
	store_stats_clear(stats_r);
out:
	db_finalize(stmt);
	db_finalize(count);
	read_end(store, own);
	return ret;
}
