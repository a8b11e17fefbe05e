"""Keeping it for years: `snapkeep stats` against direct SQL counts,
`snapkeep verify` on a good archive and on one whose blob was damaged with
the sqlite3 shell, and `snapkeep prune`: parsed rows and public views stay
exactly as they were, old raw messages become unavailable with a clear
reason, newer delta chains (rebuilt where their base went) still verify.

The mails come from snapkeep-sim: daily snapshots of a few devices, imported
in two halves a few seconds apart, so that a retention cut-off can fall
between the halves (prune --now is moved forward by the retention period)."""
import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sklib import Tap, cleanup, db_rows, is_pg, program, run, tempdir  # noqa: E402

t = Tap()
snapkeep = program("snapkeep")
sim = program("snapkeep-sim")
sqlite3_shell = shutil.which("sqlite3")
if sqlite3_shell is None:
    t.bail("the sqlite3 shell is missing (Debian package sqlite3)")
d = tempdir()
db = os.path.join(d, "snapkeep.db")

VIEWS = ["device_status", "supply_status", "supply_history", "counter_history", "media_counter_history",
         "counter_regressions", "event_log", "new_events", "snapshot_list", "intake_log"]


def count(sql, args=()):
    return db_rows(db, sql, args)[0]["n"]


def dump_views():
    return {v: db_rows(db, "SELECT * FROM %s ORDER BY 1, 2, 3" % v) for v in VIEWS}


def utc(ts):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def sql_shell(sql):
    return subprocess.run([sqlite3_shell, db, sql], capture_output=True, timeout=60)


# --- mails: 4 devices x 24 days (both dialects), split by day ------------------------------
out = os.path.join(d, "mails")
r = run([sim, "-n", "4", "--days", "24", "--schedule", "1d", "--seed", "7", "-o", out, "-q"])
t.eq(r.returncode, 0, "snapkeep-sim wrote the mails")
names = sorted(os.listdir(out))
half = len(names) // 2
first, second = names[:half], names[half:]
t.ok(len(names) >= 90, "about 96 mails", len(names))

r = run([snapkeep, "import", "-q", "--db", db, "--no-progress"] + [os.path.join(out, n) for n in first])
t.eq(r.returncode, 0, "first half imported", r.stderr)
time.sleep(1.5)
cut = int(time.time())
time.sleep(1.5)
r = run([snapkeep, "import", "-q", "--db", db, "--no-progress"] + [os.path.join(out, n) for n in second])
t.eq(r.returncode, 0, "second half imported", r.stderr)
t.eq(count("SELECT count(*) n FROM messages WHERE method = 'skc1'"), len(names), "every message repacked")
old_ids = [row["id"] for row in db_rows(db, "SELECT id FROM messages WHERE first_received_us < ?",
                                         (cut * 1000000,))]
t.eq(len(old_ids), len(first), "the first half was received before the cut")
# Messages of the second half that build on one of the first half.
crossing = count("SELECT count(*) n FROM messages m JOIN messages b ON b.id = m.base_id"
                 " WHERE m.first_received_us >= ?1 AND b.first_received_us < ?1", (cut * 1000000,))
t.ok(crossing >= 1, "some chains cross the cut", crossing)

# --- stats against SQL -------------------------------------------------------------------------
r = run([snapkeep, "stats", "--db", db, "--json"])
t.eq(r.returncode, 0, "stats --json exits 0", r.stderr)
st = json.loads(r.stdout)
agg = db_rows(db, "SELECT count(*) n, sum(raw_size) raw, sum(stored_size) stored,"
                  " sum(method = 'skc1') delta, sum(method = 'zstd') plain FROM messages")[0]
t.eq(st["archive"]["messages"], agg["n"], "stats: messages")
t.eq(st["archive"]["raw_bytes"], agg["raw"], "stats: raw bytes")
t.eq(st["archive"]["stored_bytes"], agg["stored"], "stats: stored bytes")
t.eq((st["archive"]["delta"], st["archive"]["plain"], st["archive"]["pruned"]), (agg["delta"], agg["plain"], 0),
     "stats: messages by form")
t.ok(abs(st["archive"]["compression_ratio"] - agg["raw"] / agg["stored"]) < 1e-6, "stats: ratio = raw / stored",
     st["archive"])
t.ok(st["archive"]["compression_ratio"] > 50, "a daily series compresses far better than 1/20",
     st["archive"]["compression_ratio"])
tables = [r["name"] for r in db_rows(db, "SELECT name FROM sqlite_schema WHERE type = 'table'"
                                         " AND name NOT LIKE 'sqlite_%'")]
t.eq(sorted(st["tables"]), sorted(tables), "stats: every table listed")
t.eq({k: count('SELECT count(*) n FROM "%s"' % k) for k in tables}, st["tables"], "stats: rows per table")
span = db_rows(db, "SELECT min(taken_utc) a, max(taken_utc) b FROM snapshots")[0]
t.eq((st["oldest_snapshot_utc"], st["newest_snapshot_utc"]), (span["a"], span["b"]), "stats: oldest and newest snapshot")
pages = db_rows(db, "SELECT * FROM pragma_page_count, pragma_page_size")[0]
t.eq((st["page_count"], st["page_size"]), (pages["page_count"], pages["page_size"]), "stats: pages")
t.eq(st["file_bytes"], os.path.getsize(db), "stats: file size")
r = run([snapkeep, "stats", "--db", db])
t.ok(r.returncode == 0 and b"compression ratio 1/" in r.stdout and b"snapshots  oldest " in r.stdout,
     "stats as text", r.stdout)

# --- verify: all good ----------------------------------------------------------------------------
r = run([snapkeep, "verify", "--db", db])
t.eq(r.returncode, 0, "verify: a good archive exits 0", r.stdout + r.stderr)
t.ok(b"verify: ok: %d messages: %d verified" % (len(names), len(names)) in r.stdout, "verify summary", r.stdout)
t.ok((b"; database PostgreSQL data_checksums o" if is_pg(db) else b"; database quick_check ok;") in r.stdout,
     "verify names the database check of its engine", r.stdout)

# --- prune ---------------------------------------------------------------------------------------
views_before = dump_views()
methods_before = db_rows(db, "SELECT id, method, hex(blob) b FROM messages ORDER BY id")
now = utc(cut + 86400)    # retention 1 day: the first half is older, the second newer
r = run([snapkeep, "prune", "--db", db, "--days", "1", "--now", now, "--dry-run"])
t.eq(r.returncode, 0, "prune --dry-run exits 0", r.stderr)
t.ok(b"would prune %d messages" % len(first) in r.stdout, "dry run counts the first half", r.stdout)
t.eq(db_rows(db, "SELECT id, method, hex(blob) b FROM messages ORDER BY id"), methods_before,
     "dry run changes nothing")

r = run([snapkeep, "prune", "--db", db, "--days", "1", "--now", now])
t.eq(r.returncode, 0, "prune exits 0", r.stderr)
t.ok(b"%d messages pruned" % len(first) in r.stdout, "prune reports the first half", r.stdout)
t.ok(b"%d re-encoded as keyframes" % crossing in r.stdout, "the chains crossing the cut were re-encoded", r.stdout)
t.eq(count("SELECT count(*) n FROM messages WHERE method = 'pruned' AND blob IS NULL"), len(first),
     "the first half's raw bytes are gone")
t.eq(dump_views(), views_before, "every public view is unchanged")
r = run([snapkeep, "reparse", "--db", db, "--id", str(old_ids[0])])
t.ok(r.returncode != 0 and b"pruned by retention" in r.stderr, "an old message is unavailable, and says why",
     r.stderr)
r = run([snapkeep, "verify", "--db", db])
t.eq(r.returncode, 0, "verify after prune: the newer chains decode", r.stdout + r.stderr)
t.ok(b"%d verified" % len(second) in r.stdout and b"%d pruned" % len(first) in r.stdout,
     "verify counts verified and pruned", r.stdout)
r = run([snapkeep, "stats", "--db", db, "--json"])
st = json.loads(r.stdout)
t.eq((st["archive"]["pruned"], st["archive"]["pruned_raw_bytes"]),
     (len(first), count("SELECT sum(raw_size) n FROM messages WHERE method = 'pruned'")), "stats: pruned")
r = run([snapkeep, "prune", "--db", db, "--days", "1", "--now", now])
t.ok(r.returncode == 0 and b" 0 messages pruned" in r.stdout, "a second prune has nothing to do", r.stdout)
r = run([snapkeep, "prune", "--db", db])
t.ok(r.returncode == 0 and b"retention is off" in r.stdout, "without --days retention is off", r.stdout)

# --- verify: a damaged blob ------------------------------------------------------------------------
victim = db_rows(db, "SELECT id FROM messages WHERE method = 'skc1' AND base_id IS NULL"
                     " AND id IN (SELECT base_id FROM messages) ORDER BY id LIMIT 1")[0]["id"]
dependants = count("WITH RECURSIVE s(id) AS (SELECT id FROM messages WHERE base_id = ?1"
                   " UNION ALL SELECT m.id FROM messages m JOIN s ON m.base_id = s.id) SELECT count(*) n FROM s",
                   (victim,))
r = sql_shell("UPDATE messages SET blob = substr(blob, 1, 20) || x'5a5a5a5a' || substr(blob, 25) WHERE id = %d"
              % victim)
t.eq(r.returncode, 0, "one blob damaged with the sqlite3 shell", r.stderr)
r = run([snapkeep, "verify", "--db", db])
t.eq(r.returncode, 1, "verify exits 1 on damage", r.stdout)
t.ok(b"damaged: message %d:" % victim in r.stdout, "the damaged message is named", r.stdout)
t.ok(b"%d damaged" % (1 + dependants) in r.stdout, "and so are the messages built on it", r.stdout)
other = count("WITH RECURSIVE s(id) AS (SELECT ?1 UNION ALL SELECT m.id FROM messages m JOIN s ON m.base_id = s.id)"
              " SELECT max(id) n FROM messages WHERE method = 'skc1' AND id NOT IN (SELECT id FROM s)", (victim,))
r = sql_shell("UPDATE messages SET sha256 = '%s' WHERE id = %d" % ("0" * 64, other))
t.eq(r.returncode, 0, "one message's hash changed with the sqlite3 shell", r.stderr)
r = run([snapkeep, "verify", "--db", db])
t.ok(r.returncode == 1 and b"damaged: message %d: store: message %d fails its SHA-256 check" % (other, other)
     in r.stdout, "a wrong hash is found", r.stdout)

cleanup(d)
t.done()
