"""The PostgreSQL migrations (schema/postgresql/) against the SQLite ones
(schema/): a real PostgreSQL 15 started by the test in a temporary directory
on a loopback port (sklib.PgServer), every migration applied in order with psql (each file in
one transaction, as the store's runner does), then:

* the same migration file names in both folders;
* the same public views, each with the same columns in the same order, of
  the same kind (SQLite INTEGER: bigint, TEXT: text, REAL: double precision);
* the same tables with the same columns, kinds and NOT NULLs, every SQLite
  index name present, every text column of a table in collation "C";
* rows with explicit ids (a device, a message, a snapshot, an intake row,
  counters, supplies, events, a mailbox) go into both databases, and every
  view then returns the same rows with the same values on both; the
  database uses an ICU locale where 'a1' sorts before 'B1', so ORDER BY on
  a text column shows that the columns sort in byte order as on SQLite;
* supply_status over a fleet with history (20 devices x 60 snapshots x 4
  units): the same rows on both and as 002-views.sql's definition (whole,
  and filtered on level_percent and state), and PostgreSQL estimates its
  rows as the fleet's current supplies (002's inner join on supply_levels'
  two key columns was estimated at a few: see 008-supply-status-plan.sql);
* the constraints bite: the method and pruned/blob checks of
  006-retention.sql, the foreign key intake.snapshot_id added after its
  table, the events_key expression index with the store's ON CONFLICT, and
  identity columns continue after setval as `snapkeep migrate` leaves them.

The server is sklib.PgServer (PostgreSQL 15 from Debian, postgresql-15:
initdb as the user postgres when run as root, trust authentication on
127.0.0.1 at a free port); the test database is made on it with an ICU
locale (PgServer.create_database(icu_locale=...))."""
import json
import os
import re
import sqlite3
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sklib  # noqa: E402
from sklib import TOP_SRCDIR, Tap, cleanup, tempdir  # noqa: E402

t = Tap(sanitizer_check=False)

SQLITE_DIR = os.path.join(TOP_SRCDIR, "schema")
PG_DIR = os.path.join(TOP_SRCDIR, "schema", "postgresql")
MIGRATION = re.compile(r"^[0-9]{3}-[a-z0-9-]+\.sql$")
PSQL = os.path.join(sklib.PG_BIN, "psql")

# SQLite declared type -> PostgreSQL type of the same kind.
KIND = {"INTEGER": "bigint", "TEXT": "text", "REAL": "double precision", "BLOB": "bytea"}
# View columns that are expressions (SQLite declares no type for them).
EXPRESSION_KIND = {
    ("supply_status", "supply_serial"): "text",      # NULLIF(text, '')
    ("supply_history", "supply_serial"): "text",
    ("event_log", "is_new"): "integer",              # CASE ... THEN 1 ELSE 0 END
}

# psql gets no PG* variables from the caller's environment.
ENV = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
ENV["PGCONNECT_TIMEOUT"] = "5"


def migrations(folder):
    return sorted(f for f in os.listdir(folder) if MIGRATION.match(f))


class Postgres:
    """The test database on a running sklib.PgServer, through psql."""

    def __init__(self, server):
        self.server = server
        self.url = None

    @property
    def port(self):
        return self.server.port

    def psql(self, sql=None, file=None):
        args = [PSQL, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", self.url]
        args += ["-1", "-f", file] if file else ["-c", sql]
        return subprocess.run(args, capture_output=True, text=True, timeout=120, env=ENV)

    def json(self, sql):
        """The rows of a query as a list of [column, value] lists (column order
        kept), through row_to_json."""
        r = self.psql("SELECT coalesce(json_agg(row_to_json(q)), '[]') FROM (%s) q" % sql)
        if r.returncode != 0:
            raise RuntimeError("%s\n%s" % (sql, r.stderr))
        return [[[k, v] for k, v in row.items()] for row in json.loads(r.stdout)]


def sqlite_json(con, sql):
    cur = con.execute(sql)
    names = [c[0] for c in cur.description]
    return [[[n, v] for n, v in zip(names, row)] for row in cur.fetchall()]


# --- SQLite: the reference -------------------------------------------------------------------
sqlite_files = migrations(SQLITE_DIR)
pg_files = migrations(PG_DIR)
t.ok(len(sqlite_files) >= 7, "schema/ has the SQLite migrations", sqlite_files)
t.eq(pg_files, sqlite_files, "schema/postgresql/ has the same migrations, numbered alike")

d = tempdir("sk-pgschema-")
lite = sqlite3.connect(os.path.join(d, "snapkeep.db"))
for f in sqlite_files:
    with open(os.path.join(SQLITE_DIR, f)) as fh:
        lite.executescript("BEGIN;\n" + fh.read() + "\nCOMMIT;")
lite.execute("PRAGMA foreign_keys = ON")

server = sklib.PgServer()
pg = Postgres(server)
pg_dir = None
try:
    try:
        server.start()
    except sklib.PgError as e:
        t.bail("PostgreSQL for the test: %s" % e)
    pg_dir = server.dir
    t.ok(True, "PostgreSQL started on 127.0.0.1:%d" % pg.port)
    try:
        pg.url = server.create_database("snapkeep_test", icu_locale="en-US")
    except RuntimeError as e:
        t.diag("no ICU database (%s): the default locale C is used; the collation is then checked by name"
               % str(e).strip())
        try:
            pg.url = server.create_database("snapkeep_test")
            why = ""
        except RuntimeError as e2:
            why = str(e2)
        t.eq(pg.url is not None, True, "database created", why)
    else:
        r = pg.psql("SELECT string_agg(x, ' ' ORDER BY x) FROM (VALUES ('a1'), ('B1')) v(x)")
        t.eq(r.stdout.strip(), "a1 B1", "the test database sorts by a locale (not bytes) by default", r.stderr)

    # --- the migrations, in order ----------------------------------------------------------------
    for f in pg_files:
        r = pg.psql(file=os.path.join(PG_DIR, f))
        t.ok(r.returncode == 0 and "ERROR" not in r.stderr, "psql -1 -f %s" % f, r.stderr)

    # --- views --------------------------------------------------------------------------------------
    lite_views = sorted(r[0] for r in lite.execute("SELECT name FROM sqlite_master WHERE type = 'view'"))
    pg_views = sorted(r[0][1] for r in pg.json("SELECT table_name FROM information_schema.views"
                                               " WHERE table_schema = 'public'"))
    t.eq(pg_views, lite_views, "the same public views")

    def pg_columns(rel):
        return pg.json("SELECT column_name, data_type, is_nullable FROM information_schema.columns"
                       " WHERE table_schema = 'public' AND table_name = '%s' ORDER BY ordinal_position" % rel)

    for v in lite_views:
        lc = [(row[1], row[2].upper()) for row in lite.execute("PRAGMA table_info(%s)" % v)]
        pc = [(c[0][1], c[1][1]) for c in pg_columns(v)]
        t.eq([c[0] for c in pc], [c[0] for c in lc], "view %s: the same columns in the same order" % v)
        want = []
        for name, decl in lc:
            kind = KIND.get(decl) if decl else EXPRESSION_KIND.get((v, name))
            want.append((name, kind or "(no known kind for SQLite type %r)" % decl))
        t.eq(pc, want, "view %s: column kinds match SQLite's" % v)

    # --- tables and indexes ---------------------------------------------------------------------
    lite_tables = sorted(r[0] for r in lite.execute("SELECT name FROM sqlite_master WHERE type = 'table'"
                                                    " AND name NOT LIKE 'sqlite_%'"))
    pg_tables = sorted(r[0][1] for r in pg.json("SELECT table_name FROM information_schema.tables"
                                                " WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"))
    t.eq(pg_tables, lite_tables, "the same tables")
    for tb in lite_tables:
        # Column order may differ (messages.pruned_utc: appended by ALTER TABLE in 006).
        lc = sorted((row[1], KIND.get(row[2].upper(), row[2]), "NO" if row[3] or row[5] else "YES")
                    for row in lite.execute("PRAGMA table_info(%s)" % tb))
        pc = sorted((c[0][1], c[1][1], c[2][1]) for c in pg_columns(tb))
        t.eq(pc, lc, "table %s: the same columns, kinds and NOT NULLs" % tb)
    not_c = pg.json("SELECT c.table_name, c.column_name, c.collation_name FROM information_schema.columns c"
                    " JOIN information_schema.tables t USING (table_schema, table_name)"
                    " WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE' AND c.data_type = 'text'"
                    " AND c.collation_name IS DISTINCT FROM 'C'")
    t.eq(not_c, [], "every text column of a table has collation \"C\"")
    lite_indexes = sorted(r[0] for r in lite.execute("SELECT name FROM sqlite_master WHERE type = 'index'"
                                                     " AND name NOT LIKE 'sqlite_autoindex_%'"))
    pg_indexes = set(r[0][1] for r in pg.json("SELECT indexname FROM pg_indexes WHERE schemaname = 'public'"))
    t.eq([i for i in lite_indexes if i not in pg_indexes], [], "every SQLite index exists by name")
    # PostgreSQL prints the expressions with casts: drop them to compare.
    r = pg.psql("SELECT pg_get_indexdef('events_key'::regclass)")
    got = re.sub(r"::\w+", "", r.stdout.strip()).replace("('-1')", "-1").replace("'-1'", "-1")
    got = got.split(" USING btree ")[-1] if "UNIQUE INDEX events_key ON" in got else got
    t.eq(got, "(device_id, COALESCE(log, ''), COALESCE(sequence, -1), COALESCE(code, ''),"
         " COALESCE(occurred_utc, ''))", "events_key is the unique expression index of SQLite", r.stderr)

    # --- the same rows in both, with explicit ids ---------------------------------------------------
    # {blob}: a blob literal in each dialect.
    ROWS = [
        "INSERT INTO devices (id, serial, model, first_seen_utc, first_received_utc, last_snapshot_id,"
        " last_snapshot_utc, last_received_utc, snapshot_count, total_impressions)"
        " VALUES (7, 'a1', 'HP Color LaserJet', '2025-03-01T08:00:00Z', '2025-03-01T08:00:05Z', 22,"
        " '2025-03-02T08:00:00Z', '2025-03-02T08:00:04Z', 2, 1500)",
        "INSERT INTO devices (id, serial, first_seen_utc, first_received_utc)"
        " VALUES (8, 'B1', '2025-03-01T09:00:00Z', '2025-03-01T09:00:01Z')",
        "INSERT INTO messages (id, sha256, raw_size, method, stored_size, device_id, first_received_utc,"
        " first_received_us, outcome, blob) VALUES (11, 'aa', 300, 'zstd', 4, 7, '2025-03-01T08:00:05Z',"
        " 1740816005000000, 'stored', {blob})",
        "INSERT INTO messages (id, sha256, raw_size, method, base_id, chain_depth, stored_size, device_id,"
        " first_received_utc, first_received_us, outcome, blob) VALUES (12, 'bb', 310, 'skc1', 11, 1, 4, 7,"
        " '2025-03-02T08:00:04Z', 1740902404000000, 'stored', {blob})",
        "INSERT INTO snapshots (id, device_id, message_id, taken_utc, taken_unix, taken_offset_min,"
        " taken_source, received_utc, clock_skew_s, firmware) VALUES (21, 7, 11, '2025-03-01T08:00:00Z',"
        " 1740816000, 60, 'xml', '2025-03-01T08:00:05Z', 5, 'fw1')",
        "INSERT INTO snapshots (id, device_id, message_id, taken_utc, taken_unix, taken_source,"
        " received_utc, clock_skew_s) VALUES (22, 7, 12, '2025-03-02T08:00:00Z', 1740902400, 'subject',"
        " '2025-03-02T08:00:04Z', 4)",
        "INSERT INTO intake (id, received_utc, received_us, source, peer, subject, outcome, serial,"
        " message_id, snapshot_id) VALUES (31, '2025-03-01T08:00:05Z', 1740816005000000, 'smtp',"
        " '127.0.0.1', 'a1 report', 'stored', 'a1', 11, 21)",
        "INSERT INTO intake (id, received_utc, received_us, source, outcome, detail, message_id)"
        " VALUES (32, '2025-03-02T08:00:04Z', 1740902404000000, 'file', 'failed', 'no Device.xml', 12)",
        "INSERT INTO counter_names (id, name) VALUES (41, 'TotalImpressions'), (42, 'ColorImpressions')",
        "INSERT INTO counters (snapshot_id, name_id, value, value_real) VALUES (21, 41, 1600, NULL),"
        " (22, 41, 1500, NULL), (22, 42, 12, 12.5)",
        "INSERT INTO media_counters (snapshot_id, media_size, name_id, value, value_real)"
        " VALUES (22, 'iso_a4_210x297mm', 41, 900, NULL)",
        "INSERT INTO counter_drops (snapshot_id, name_id, previous_snapshot_id, previous_value, value)"
        " VALUES (22, 41, 21, 1600, 1500)",
        "INSERT INTO supplies (id, device_id, supply_key, supply_serial, color, type, first_snapshot_id,"
        " first_reported_utc, last_reported_utc) VALUES (51, 7, 'K', '', 'black', 'tonerCartridge', 21,"
        " '2025-03-01T08:00:00Z', '2025-03-02T08:00:00Z'), (52, 7, 'C', 'CY123', 'cyan', 'tonerCartridge',"
        " 21, '2025-03-01T08:00:00Z', '2025-03-02T08:00:00Z')",
        "INSERT INTO supply_levels (snapshot_id, supply_id, level_percent, low_threshold, pages, state)"
        " VALUES (21, 51, 80, 10, NULL, 'ok'), (22, 51, 75, 10, 1200, 'ok'), (22, 52, 5, 10, NULL, 'low')",
        "INSERT INTO supply_current (device_id, supply_key, supply_id, snapshot_id, reported_utc)"
        " VALUES (7, 'K', 51, 22, '2025-03-02T08:00:00Z'), (7, 'C', 52, 22, '2025-03-02T08:00:00Z'),"
        # No report of unit 52 in snapshot 21: supply_status has no row for it.
        " (8, 'C', 52, 21, '2025-03-01T08:00:00Z')",
        "INSERT INTO events (id, device_id, log, sequence, code, occurred_utc, description, page_count,"
        " first_snapshot_id, first_reported_utc, last_snapshot_id, last_reported_utc) VALUES"
        " (61, 7, 'error', 3, '13.B2.D1', '2025-03-01T07:00:00Z', 'jam', 1550, 21, '2025-03-01T08:00:00Z',"
        " 22, '2025-03-02T08:00:00Z'),"
        " (62, 7, 'error', 4, '44.A0.4B', NULL, 'scanner', NULL, 22, '2025-03-02T08:00:00Z', 22,"
        " '2025-03-02T08:00:00Z')",
        "INSERT INTO poll_mailboxes (id, mailbox, poller, last_uid, taken, updated_utc)"
        " VALUES (71, 'imap://u@host:993/INBOX', 'main', 17, 2, '2025-03-02T08:00:10Z')",
        "INSERT INTO poll_seen (mailbox_id, key, message_id, taken_utc)"
        " VALUES (71, 'uidl-1', 11, '2025-03-01T08:00:05Z')",
    ]
    bad = []
    for sql in ROWS:
        try:
            lite.execute(sql.format(blob="X'00ff'"))
        except sqlite3.Error as e:
            bad.append("sqlite: %s: %s" % (e, sql))
        r = pg.psql(sql.format(blob="'\\x00ff'::bytea"))
        if r.returncode != 0:
            bad.append("postgresql: %s%s" % (r.stderr, sql))
    lite.commit()
    t.eq(bad, [], "rows with explicit ids insert into both databases")

    for v in lite_views:
        order = "ORDER BY 1, 2, 3"
        got = pg.json("SELECT * FROM %s %s" % (v, order))
        want = sqlite_json(lite, "SELECT * FROM %s %s" % (v, order))
        t.eq(got, want, "view %s: the same rows and values on both" % v)
        if v in ("device_status", "supply_status", "event_log"):
            t.ok(len(want) >= 2, "view %s: the comparison has rows" % v, want)
    serials = [row[0][1] for row in pg.json("SELECT serial FROM device_status ORDER BY serial")]
    t.eq(serials, ["B1", "a1"], "device_status ORDER BY serial sorts bytes, as SQLite does")

    # --- the constraints -------------------------------------------------------------------------
    def refused(sql, constraint, name):
        r = pg.psql(sql)
        t.ok(r.returncode != 0 and constraint in r.stderr, name, r.stdout + r.stderr)

    refused("INSERT INTO messages (sha256, raw_size, method, stored_size, first_received_utc,"
            " first_received_us, blob) VALUES ('cc', 1, 'gzip', 1, 'x', 1, '\\x00')",
            "messages_method_check", "an unknown method is refused")
    refused("UPDATE messages SET method = 'pruned' WHERE id = 12",
            "messages_pruned_blob_check", "method 'pruned' with a blob is refused")
    refused("UPDATE messages SET blob = NULL WHERE id = 12",
            "messages_pruned_blob_check", "a NULL blob of a method other than 'pruned' is refused")
    r = pg.psql("UPDATE messages SET method = 'pruned', blob = NULL, stored_size = 0,"
                " pruned_utc = '2026-03-01T00:00:00Z' WHERE id = 12")
    t.eq(r.returncode, 0, "a message can be pruned (method 'pruned', blob NULL, pruned_utc)", r.stderr)
    r = pg.psql("SELECT count(*) FROM intake_log WHERE id = 32 AND sha256 = 'bb'")
    t.eq(r.stdout.strip(), "1", "intake_log still shows the pruned message's arrival", r.stderr)
    refused("INSERT INTO intake (received_utc, received_us, source, message_id, snapshot_id)"
            " VALUES ('x', 1, 'file', 11, 999)", "intake_snapshot_id_fkey",
            "intake.snapshot_id must name a snapshot (the foreign key added after snapshots)")
    refused("INSERT INTO snapshots (device_id, message_id, taken_utc, taken_unix, taken_source,"
            " received_utc, clock_skew_s) VALUES (7, 11, '2025-03-03T00:00:00Z', 1, 'guess', 'x', 0)",
            "snapshots_taken_source_check", "an unknown taken_source is refused")
    refused("INSERT INTO events (device_id, log, sequence, code, occurred_utc, first_snapshot_id,"
            " first_reported_utc, last_snapshot_id, last_reported_utc)"
            " VALUES (7, 'error', 4, '44.A0.4B', NULL, 22, 'x', 22, 'x')",
            "events_key", "the same event (NULL time) twice is refused by events_key")
    r = pg.psql("INSERT INTO events (device_id, log, sequence, code, occurred_utc, first_snapshot_id,"
                " first_reported_utc, last_snapshot_id, last_reported_utc)"
                " VALUES (7, 'error', 4, '44.A0.4B', NULL, 22, 'x', 22, 'x'),"
                " (7, 'error', 5, '44.A0.4B', NULL, 22, 'x', 22, 'x')"
                " ON CONFLICT (device_id, COALESCE(log, ''), COALESCE(sequence, -1), COALESCE(code, ''),"
                " COALESCE(occurred_utc, '')) DO NOTHING RETURNING sequence")
    t.eq((r.returncode, r.stdout.split()), (0, ["5"]),
         "ON CONFLICT on the events_key expression: the new entry only", r.stderr)
    r = pg.psql("SELECT setval(pg_get_serial_sequence(t, 'id'), m) FROM (VALUES"
                " ('devices', (SELECT max(id) FROM devices)),"
                " ('counter_names', (SELECT max(id) FROM counter_names))) v(t, m);"
                " INSERT INTO devices (serial, first_seen_utc, first_received_utc) VALUES ('c1', 'x', 'x')"
                " RETURNING id;"
                " INSERT INTO counter_names (name) VALUES ('JamEvents') RETURNING id")
    t.eq((r.returncode, r.stdout.split()[-2:]), (0, ["9", "43"]),
         "after setval, identity ids continue after the copied ones", r.stderr)
    # --- supply_status over a fleet with history -------------------------------------------------
    # 20 devices x 60 snapshots x 4 supply units, the same rows in both.
    # PostgreSQL must estimate the view's rows as the fleet's current
    # supplies: 002-views.sql's inner join on supply_levels' two key columns
    # was estimated at a few rows (the columns taken as independent) and
    # planned as nested loops over every report of each unit (on 150 devices
    # x 365 days: 71 000 buffers); 008-supply-status-plan.sql reads each
    # report by its key.  And the view keeps the rows of 002's definition.
    def level(dev, j, k):
        return (dev * 13 + j * 29 + k * 7) % 100

    fleet = []
    for dev in range(1001, 1021):
        last = dev * 100 + 60
        fleet.append("INSERT INTO devices (id, serial, first_seen_utc, first_received_utc, last_snapshot_id,"
                     " last_snapshot_utc, snapshot_count) VALUES (%d, 'F%d', '2025-01-01T00:00:00Z',"
                     " '2025-01-01T00:00:00Z', %d, '2025-03-01T00:00:00Z', 60)" % (dev, dev, last))
        fleet.append("INSERT INTO snapshots (id, device_id, message_id, taken_utc, taken_unix, taken_source,"
                     " received_utc, clock_skew_s) VALUES " + ", ".join(
                         "(%d, %d, 11, '2025-01-%02dT%02d:00:00Z', %d, 'xml', 'x', 0)"
                         % (dev * 100 + k, dev, 1 + k // 24, k % 24, 1735689600 + k * 3600)
                         for k in range(1, 61)))
        fleet.append("INSERT INTO supplies (id, device_id, supply_key, color, first_snapshot_id,"
                     " first_reported_utc, last_reported_utc) VALUES " + ", ".join(
                         "(%d, %d, '%s', '%s', %d, 'x', 'x')" % (dev * 10 + j, dev, key, color, dev * 100 + 1)
                         for j, (key, color) in enumerate((("K", "black"), ("C", "cyan"), ("M", "magenta"),
                                                           ("Y", "yellow")))))
        fleet.append("INSERT INTO supply_levels (snapshot_id, supply_id, level_percent, low_threshold, state)"
                     " VALUES " + ", ".join(
                         "(%d, %d, %d, 10, '%s')" % (dev * 100 + k, dev * 10 + j, level(dev, j, k),
                                                    "low" if level(dev, j, k) < 10 else "ok")
                         for k in range(1, 61) for j in range(4)))
        fleet.append("INSERT INTO supply_current (device_id, supply_key, supply_id, snapshot_id, reported_utc)"
                     " VALUES " + ", ".join("(%d, '%s', %d, %d, 'x')" % (dev, key, dev * 10 + j, last)
                                            for j, key in enumerate("KCMY")))
    def load_both(name, statements, what):
        """The same statements into both engines (psql from a file: they
        are longer than an argument may be), then ANALYZE on PostgreSQL."""
        with open(os.path.join(d, name), "w") as fh:
            fh.write(";\n".join(statements) + ";\nANALYZE;\n")
        r = pg.psql(file=os.path.join(d, name))
        t.eq((r.returncode, "ERROR" in r.stderr), (0, False), what + ": loaded into PostgreSQL", r.stderr)
        for sql in statements:
            lite.execute(sql)
        lite.commit()

    load_both("fleet.sql", fleet, "a fleet with history")
    old_def = ("SELECT d.serial, sc.supply_key AS supply, s.type, s.color, l.level_percent, l.state,"
               " l.low_threshold, NULLIF(s.supply_serial, '') AS supply_serial, s.installed_date,"
               " sc.reported_utc, s.label, s.description, s.product_number, s.brand, l.pages,"
               " sc.snapshot_id, s.id AS supply_id, d.id AS device_id"
               " FROM supply_current sc JOIN devices d ON d.id = sc.device_id"
               " JOIN supplies s ON s.id = sc.supply_id"
               " JOIN supply_levels l ON l.snapshot_id = sc.snapshot_id AND l.supply_id = sc.supply_id")
    for where in ("", " WHERE level_percent <= 10", " WHERE state IN ('low', 'out')"):
        order = " ORDER BY serial, supply"
        got = pg.json("SELECT * FROM supply_status" + where + order)
        want = sqlite_json(lite, "SELECT * FROM supply_status" + where + order)
        t.eq(got, want, "supply_status%s: the same rows on both engines" % where)
        old = pg.json("SELECT * FROM (%s) v%s%s" % (old_def, where, order))
        t.eq(got, old, "supply_status%s: the rows of 002-views.sql's definition" % where)
        t.ok(len(got) >= (80 if not where else 1), "supply_status%s: the comparison has rows" % where, len(got))
    r = pg.psql("EXPLAIN (FORMAT JSON) SELECT * FROM supply_status")
    est = json.loads(r.stdout)[0]["Plan"]["Plan Rows"] if r.returncode == 0 else None
    rows = len(pg.json("SELECT * FROM supply_status"))
    t.ok(est is not None and rows / 2 <= est <= rows * 2,
         "PostgreSQL estimates supply_status at the fleet's current supplies (%s rows for %d)" % (est, rows),
         r.stderr)
    # --- event_log over the fleet by time -------------------------------------------------------
    # 200 events per device over 200 hours, the same in both.  A fleet-wide
    # range on occurred_utc (snapkeep check without --serial; alerting
    # scripts) reads the events in it through 009-events-time.sql's index
    # on both engines, not every event of the fleet.
    events = []
    for dev in range(1001, 1021):
        events.append("INSERT INTO events (id, device_id, log, sequence, code, occurred_utc, description,"
                      " first_snapshot_id, first_reported_utc, last_snapshot_id, last_reported_utc) VALUES "
                      + ", ".join("(%d, %d, '%s', %d, '10.00.%02d', '2025-01-%02dT%02d:%02d:00Z', 'e%d', %d,"
                                  " 'x', %d, 'x')" % (dev * 1000 + k, dev, ("error", "info", "system")[k % 3],
                                                     k, k % 100,
                                                     1 + k // 24, k % 24, dev - 1001, k, dev * 100 + 1,
                                                     dev * 100 + 1)
                                  for k in range(200)))
    load_both("events.sql", events, "the fleet's events")
    recent = ("SELECT serial, code, occurred_utc, description FROM event_log"
              " WHERE log IN ('error', 'system') AND occurred_utc >= '2025-01-09T00:00:00Z'"
              " AND occurred_utc < '2025-01-10T00:00:00Z'"
              " ORDER BY occurred_utc DESC, serial")
    got = pg.json(recent)
    t.eq(got, sqlite_json(lite, recent), "event_log over the fleet by time: the same rows on both engines")
    t.eq(len(got), 20 * 5, "event_log over the fleet by time: the comparison has the range's rows")
    r = pg.psql("EXPLAIN (FORMAT JSON) " + recent)

    def plan_nodes(node):
        yield node
        for child in node.get("Plans", []):
            yield from plan_nodes(child)

    nodes = list(plan_nodes(json.loads(r.stdout)[0]["Plan"])) if r.returncode == 0 else []
    t.ok(any(n.get("Index Name") == "events_occurred" for n in nodes)
         and not any(n["Node Type"] == "Seq Scan" and n.get("Relation Name") == "events" for n in nodes),
         "PostgreSQL reads the range through events_occurred, not every event", r.stdout + r.stderr)
    plan = " / ".join(row[3] for row in lite.execute("EXPLAIN QUERY PLAN " + recent))
    t.ok("events_occurred" in plan, "SQLite reads the range through events_occurred", plan)
finally:
    server.stop()
    lite.close()
    cleanup(d)
t.ok(server.proc is None and not os.path.exists(d) and not (pg_dir and os.path.exists(pg_dir)),
     "PostgreSQL stopped and its directory removed")
t.done()
