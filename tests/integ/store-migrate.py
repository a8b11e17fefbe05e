"""`snapkeep migrate --from FILE.db --to postgresql://...`: a SQLite store
with real content (the example mails, a few hundred snapkeep-sim mails with
faults, a Maildir polled with --after keep so the poll tables have rows,
messages pruned by retention, and a delta whose base has a larger id than
itself) is copied into a private PostgreSQL 15 (sklib.PgServer, started
here) and then:
  - every table and every public view holds the same rows on both sides,
    and `snapkeep devices` / `snapkeep show` print the same from either;
  - a second migrate into the same database is refused (exit 73), and so
    are a source with an older schema (65), a missing source (66) and a
    target that is not a postgresql:// URL (64);
  - a copy of the source with one byte of one message's blob flipped
    migrates, but the verification fails (exit 1) naming that message;
  - snapkeep import into the migrated store continues every id after the
    copied ones, and snapkeep verify reads every message back.
TAP output; needs postgresql-15 and python3-psycopg2 (Debian)."""
import datetime
import os
import re
import sqlite3
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sklib  # noqa: E402
from sklib import Tap, cleanup, db_query, program, run, tempdir  # noqa: E402

t = Tap()
snapkeep = program("snapkeep")
sim = program("snapkeep-sim")
if sklib.psycopg2 is None:
    t.bail("python3-psycopg2 is missing (apt-get install python3-psycopg2)")

VIEWS = ("device_status", "supply_status", "supply_history", "counter_history", "media_counter_history",
         "counter_regressions", "event_log", "snapshot_list", "intake_log", "new_events", "poll_status")

d = tempdir(prefix="sk-migrate-")
server = sklib.PgServer()
try:
    server.start()
except sklib.PgError as e:
    cleanup(d)
    t.bail("PostgreSQL for the test: %s" % e)


def new_pg(name):
    return server.create_database(name)


def must(r, what):
    if r.returncode != 0:
        t.diag(r.stdout.decode(errors="replace")[-2000:] + r.stderr.decode(errors="replace")[-2000:])
        t.bail("%s failed (exit %d)" % (what, r.returncode))
    return r


def utc(ts):
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def norm(v):
    return bytes(v) if isinstance(v, memoryview) else v


def rows_of(db, sql):
    names, rows = db_query(db, sql)
    return names, [tuple(norm(v) for v in row) for row in rows]


def column_names(db, rel):
    return db_query(db, "SELECT * FROM %s LIMIT 0" % rel)[0]


def ordered(db, rel, names=None):
    """Every row of a table or view (its columns names, or all), ordered by
    all those columns."""
    names = names or column_names(db, rel)
    order = ", ".join("%d NULLS FIRST" % (i + 1) for i in range(len(names)))
    return rows_of(db, "SELECT %s FROM %s ORDER BY %s" % (", ".join('"%s"' % n for n in names), rel, order))


def migrate(src, dst, *extra):
    return run([snapkeep, "migrate", "--no-progress", "--from", src, "--to", dst] + list(extra), timeout=600)


try:
    src = os.path.join(d, "src.db")
    # 1. The source: the example mails first (pruned below) ...
    must(run([snapkeep, "import", "--db", src, os.path.join(sklib.TESTDATA, "examples")]), "import of the examples")
    split = int(time.time()) + 2
    while time.time() < split:
        time.sleep(0.1)
    # ... then a simulated fleet with faults (alerts, duplicates, broken XML,
    # counter resets, clock skew): a few hundred mails.
    mails = os.path.join(d, "mails")
    must(run([sim, "-n", "8", "--seed", "7", "--start", "2025-03-01", "--days", "24", "--schedule", "1d",
              "--out", mails, "--faults", "alert_mail,duplicate_resend,truncated_xml,same_snapshot_new_mail,"
              "counter_reset,clock_skew,missing_attachment", "--fault-rate", "0.15"], timeout=300), "snapkeep-sim")
    files = sorted(os.listdir(mails))
    # A delta whose base is newer than itself: the device's first mail fails
    # (1 ms parse limit), the others are stored, a reparse then stores it as a
    # delta of the device's latest message, which has a larger id.
    first = files[0]
    must(run([snapkeep, "import", "--db", src, "--parse-timeout", "1", "--parse-workers", "1",
              os.path.join(mails, first)]), "import with a 1 ms parse limit")
    must(run([snapkeep, "import", "--db", src, mails], timeout=600), "import of the simulated mails")
    must(run([snapkeep, "reparse", "--db", src, "--failed"], timeout=300), "reparse --failed")
    # A Maildir drained with --after keep: poll_mailboxes and poll_seen rows.
    md = os.path.join(d, "Maildir")
    must(run([sim, "-n", "3", "--seed", "21", "--start", "2025-04-01", "--days", "6", "--schedule", "1d",
              "--maildir", md], timeout=300), "snapkeep-sim --maildir")
    must(run([snapkeep, "import", "--db", src, "--after", "keep", "maildir:" + md], timeout=300),
         "import of the Maildir")
    # Retention: the messages received before the split lose their bytes.
    must(run([snapkeep, "prune", "--db", src, "--days", "1", "--now", utc(split + 86400)]), "prune")

    counts = {n: db_query(src, "SELECT count(*) FROM %s" % n)[1][0][0]
              for n in ("messages", "intake", "snapshots", "events", "poll_mailboxes", "poll_seen")}
    pruned = db_query(src, "SELECT count(*) FROM messages WHERE method = 'pruned'")[1][0][0]
    forward = db_query(src, "SELECT count(*) FROM messages WHERE base_id > id")[1][0][0]
    deltas = db_query(src, "SELECT count(*) FROM messages WHERE method = 'skc1'")[1][0][0]
    t.diag("source: %s, %d pruned, %d deltas, %d with a newer base" % (counts, pruned, deltas, forward))
    t.ok(counts["messages"] >= 200 and counts["poll_seen"] > 0 and pruned >= 3 and deltas > 100 and forward >= 1,
         "the source has a few hundred messages, polled mailboxes, pruned messages and a newer-base delta",
         "%s pruned=%d deltas=%d forward=%d" % (counts, pruned, deltas, forward))
    # The SQLite schema's tables, to check that all of them are copied.
    tables = [r[0] for r in db_query(src, "SELECT name FROM sqlite_schema WHERE type = 'table'"
                                          " AND name NOT LIKE 'sqlite_%' ORDER BY name")[1]]

    # 2. The migration.
    url = new_pg("sk_migrated")
    r = migrate(src, url)
    out = r.stdout.decode(errors="replace")
    t.eq(r.returncode, 0, "migrate exits 0", out + r.stderr.decode(errors="replace"))
    m = re.search(r"^migrate: ok: (\d+) tables, (\d+) rows, ([\d.]+) MB copied in ([\d.]+) s \(([\d.]+) rows/s,"
                  r" ([\d.]+) MB/s\); (\d+) messages verified \(([\d.]+) MB raw, (\d+) pruned\)", out, re.M)
    t.ok(m is not None, "migrate prints its summary line", out)
    if m:
        t.diag(m.group(0))
        total = sum(db_query(src, "SELECT count(*) FROM %s" % n)[1][0][0] for n in tables)
        t.eq((int(m.group(1)), int(m.group(2)), int(m.group(7)) + int(m.group(9)), int(m.group(9))),
             (len(tables), total, counts["messages"], pruned),
             "the summary counts every table, row and message (pruned ones apart)")

    # 3. The same rows on both sides: every table, every public view.
    # (The order of a table's columns may differ: PostgreSQL's messages has
    # pruned_utc after blob, see schema/postgresql/006-retention.sql.)
    columns = {}
    for name in tables:
        columns[name] = column_names(src, name)
        t.eq(sorted(column_names(url, name)), sorted(columns[name]), "table %s: the same columns" % name)
        a, b = ordered(src, name, columns[name]), ordered(url, name, columns[name])
        t.ok(a[1] == b[1], "table %s: the same %d rows" % (name, len(a[1])),
             "first difference: %r" % (next(((x, y) for x, y in zip(a[1], b[1]) if x != y), (len(a[1]), len(b[1]))),))
    for view in VIEWS:
        a, b = ordered(src, view), ordered(url, view)
        t.eq(b[0], a[0], "view %s: the same columns" % view)
        same = a[1] == b[1]
        t.ok(same and len(a[1]) > 0, "view %s: the same %d rows, in the same order" % (view, len(a[1])),
             "same rows in another order" if not same and sorted(map(repr, a[1])) == sorted(map(repr, b[1]))
             else "first difference: %r" % (next(((x, y) for x, y in zip(a[1], b[1]) if x != y),
                                                 (len(a[1]), len(b[1]))),))
    sequences_ok = all(
        db_query(url, "SELECT last_value >= (SELECT coalesce(max(id), 0) FROM %s) FROM %s"
                 % (n, db_query(url, "SELECT pg_get_serial_sequence('%s', 'id')" % n)[1][0][0]))[1][0][0]
        for n in tables if "id" in columns[n])
    t.ok(sequences_ok, "every identity sequence is at its table's largest id")

    # 4. The command line reads the same from either.
    for args in (["devices"], ["devices", "--json"]):
        a = run([snapkeep] + args + ["--db", src])
        b = run([snapkeep] + args + ["--db", url])
        t.ok(a.returncode == 0 and a.stdout == b.stdout and len(a.stdout) > 0,
             "snapkeep %s: the same output from the file and from PostgreSQL" % " ".join(args),
             "file:\n%s\npostgresql:\n%s%s" % (a.stdout.decode(errors="replace")[:1500],
                                               b.stdout.decode(errors="replace")[:1500],
                                               b.stderr.decode(errors="replace")))
    serials = [r[0] for r in db_query(src, "SELECT serial FROM device_status ORDER BY serial")[1]]
    differ = []
    for serial in serials:
        for args in (["show", serial], ["show", "--json", serial]):
            a = run([snapkeep] + args[:1] + ["--db", src] + args[1:])
            b = run([snapkeep] + args[:1] + ["--db", url] + args[1:])
            if a.returncode != 0 or a.stdout != b.stdout:
                differ.append((args, a.returncode, b.returncode, a.stdout[:600], b.stdout[:600], b.stderr[:300]))
    t.ok(not differ and len(serials) >= 11, "snapkeep show (text and --json) of each of the %d devices: the same"
         " output" % len(serials), "\n".join(repr(x) for x in differ[:2]))

    # 5. Refusals.
    before = db_query(url, "SELECT count(*), max(id) FROM messages")[1]
    r = migrate(src, url)
    t.eq(r.returncode, 73, "a second migrate into the same database is refused (exit 73)")
    t.ok(b"not empty" in r.stderr, "... saying the target is not empty", r.stderr)
    t.eq(db_query(url, "SELECT count(*), max(id) FROM messages")[1], before, "... and leaves it as it was")
    old = os.path.join(d, "old.db")
    con, dst = sqlite3.connect(src), sqlite3.connect(old)
    con.backup(dst)
    con.close()
    dst.execute("PRAGMA user_version = 6")
    dst.commit()
    dst.close()
    r = migrate(old, new_pg("sk_old_schema"))
    t.eq(r.returncode, 65, "a source with an older schema is refused (exit 65)", r.stderr)
    t.ok(b"run the current snapkeep on it once" in r.stderr, "... saying to run the current snapkeep on it", r.stderr)
    r = migrate(os.path.join(d, "missing.db"), new_pg("sk_no_source"))
    t.eq(r.returncode, 66, "a missing source is refused (exit 66)", r.stderr)
    r = migrate(src, os.path.join(d, "other.db"))
    t.eq(r.returncode, 64, "a target that is not a postgresql:// URL is a usage error (exit 64)", r.stderr)

    # 6. A damaged source blob: copied as it is, caught by the verification.
    bad = os.path.join(d, "damaged.db")
    con, dst = sqlite3.connect(src), sqlite3.connect(bad)
    con.backup(dst)
    con.close()
    # A message that other messages use as their base.
    victim, blob = dst.execute("SELECT id, blob FROM messages WHERE id = (SELECT min(base_id) FROM messages"
                               " WHERE method = 'skc1')").fetchone()
    blob = bytearray(blob)
    blob[len(blob) // 2] ^= 0x5a
    dst.execute("UPDATE messages SET blob = ? WHERE id = ?", (bytes(blob), victim))
    dst.commit()
    dependants = dst.execute("SELECT count(*) FROM messages WHERE base_id = ?", (victim,)).fetchone()[0]
    dst.close()
    r = migrate(bad, new_pg("sk_damaged"))
    out = r.stdout.decode(errors="replace")
    t.eq(r.returncode, 1, "migrating a source with a damaged blob fails the verification (exit 1)",
         out + r.stderr.decode(errors="replace"))
    named = re.search(r"^mismatch: message %d: " % victim, out, re.M)
    t.ok(named is not None, "... naming the damaged message %d (the base of %d others)" % (victim, dependants), out)
    t.ok(re.search(r"^migrate: FAILED: .* [1-9]\d* problems$", out, re.M) is not None,
         "... and its summary says FAILED with the number of problems", out)

    # 7. Text SQLite kept as it came (an SMTP client's HELO in Latin-1, a
    # NUL) but PostgreSQL refuses: copied with U+FFFD, each one reported.
    odd = os.path.join(d, "latin1.db")
    con, dst = sqlite3.connect(src), sqlite3.connect(odd)
    con.backup(dst)
    con.close()
    odd_id = dst.execute("SELECT max(id) FROM intake").fetchone()[0]
    dst.execute("UPDATE intake SET helo = CAST(? AS TEXT), peer = CAST(? AS TEXT) WHERE id = ?",
                (b"drucker-k\xfcche.example", b"a\x00b", odd_id))
    dst.commit()
    dst.close()
    odd_url = new_pg("sk_latin1")
    r = migrate(odd, odd_url)
    t.eq(r.returncode, 0, "a source with text that is not UTF-8 migrates (exit 0)",
         r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace"))
    for col in ("helo", "peer"):
        t.ok(("table intake, row id %d, column %s: not valid UTF-8" % (odd_id, col)).encode() in r.stderr,
             "... naming the row and column %s" % col, r.stderr)
    t.ok(b"2 text values were not valid UTF-8" in r.stdout, "... and counting them in the summary", r.stdout)
    t.eq(db_query(odd_url, "SELECT helo, peer FROM intake WHERE id = ?", (odd_id,))[1],
         [("drucker-k\ufffdche.example", "a\ufffdb")], "... with U+FFFD for the bad bytes")

    # 8. Life goes on in PostgreSQL: an import continues every id.
    maxima = {n: db_query(url, "SELECT coalesce(max(id), 0) FROM %s" % n)[1][0][0]
              for n in ("messages", "intake", "snapshots", "devices", "events", "supplies")}
    more = os.path.join(d, "more")
    must(run([sim, "-n", "3", "--seed", "99", "--start", "2025-05-01", "--days", "4", "--schedule", "1d",
              "--out", more], timeout=300), "snapkeep-sim (more)")
    r = run([snapkeep, "import", "--db", url, more, os.path.join(mails, files[-1])], timeout=300)
    t.eq(r.returncode, 0, "snapkeep import into the migrated store exits 0", r.stderr)
    t.ok(re.search(rb" 1 duplicate,", r.stdout) is not None,
         "... a mail already migrated is recognised as a duplicate", r.stdout)
    new_ids = {n: db_query(url, "SELECT min(id), count(*) FROM %s WHERE id > ?" % n, (maxima[n],))[1][0]
               for n in maxima}
    t.ok(all(new_ids[n][0] == maxima[n] + 1 for n in ("messages", "intake", "snapshots", "devices")),
         "new messages, arrivals, snapshots and devices continue right after the copied ids",
         "copied max %s, new (min, count) %s" % (maxima, new_ids))
    t.eq(db_query(url, "SELECT count(*) FROM messages WHERE outcome = 'pending'")[1][0][0], 0,
         "every new message is parsed")
    r = run([snapkeep, "verify", "--db", url], timeout=300)
    t.eq(r.returncode, 0, "snapkeep verify of the PostgreSQL store exits 0", r.stdout + r.stderr)
finally:
    server.stop()
    cleanup(d)
t.done()
