"""The funnel end to end through `snapkeep import` and `snapkeep reparse`:
duplicates are stored once, every arrival is logged with its outcome, bad
input is kept with a reason in bounded time, the parse worker's limits hold,
and reparse is idempotent."""
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sklib import Tap, cleanup, db_rows, examples, new_store, program, run, tempdir, unavailable_store  # noqa: E402
import mails  # noqa: E402

t = Tap()
snapkeep = program("snapkeep")
d = tempdir()
db = new_store(d)


def count(sql, args=()):
    return db_rows(db, sql, args)[0]["n"]


def write(name, data):
    p = os.path.join(d, name)
    with open(p, "wb") as fh:
        fh.write(data)
    return p


ex = examples()
paths = [e[1] for e in ex]
r = run([snapkeep, "import", "--db", db] + paths)
t.eq(r.returncode, 0, "first import exits 0", r.stderr)
r = run([snapkeep, "import", "--db", db] + paths)
t.eq(r.returncode, 0, "second import of the same files exits 0")
t.ok(b"3 duplicate" in r.stdout, "second import reports 3 duplicates", r.stdout)
t.eq(count("SELECT count(*) n FROM intake_log"), 6, "six arrivals logged")
t.eq(count("SELECT count(*) n FROM messages"), 3, "three raw messages archived")
t.eq(count("SELECT count(*) n FROM snapshot_list"), 3, "three snapshots")
t.eq(count("SELECT count(*) n FROM intake_log WHERE outcome='duplicate'"), 3, "three duplicate outcomes")

# The same snapshot in a new mail (other Message-ID, other bytes): one snapshot.
raw = open(paths[0], "rb").read()
resent = re.sub(rb"Message-ID: <[^>]*>", b"Message-ID: <resent-1@test>", raw, count=1)
t.ok(resent != raw, "resent mail differs in bytes")
r = run([snapkeep, "import", "--db", db, write("resent.eml", resent)])
t.eq(r.returncode, 0, "import of a resent snapshot exits 0")
t.eq(count("SELECT count(*) n FROM snapshot_list"), 3, "same snapshot in a new mail stays one snapshot")
rows = db_rows(db, "SELECT outcome, detail FROM intake_log ORDER BY id DESC LIMIT 1")
t.eq(rows[0]["outcome"], "duplicate", "resent snapshot has outcome duplicate")
events_before = count("SELECT count(*) n FROM event_log")

# Not a snapshot, and snapshots that cannot be parsed: kept, with reasons.
xml = mails.example_xml("futuresmart-mfp")
bad = {
    "alert.eml": (mails.alert_mail(), "not-snapshot", None),
    "truncated.eml": (mails.snapshot_mail(xml[: len(xml) // 2]), "failed", "xml"),
    "bomb.eml": (mails.snapshot_mail(
        b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaaaaaaaa">'
        + b"".join(b'<!ENTITY %c "&%c;&%c;&%c;&%c;&%c;&%c;&%c;&%c;&%c;&%c;">' % ((98 + i,) + (97 + i,) * 10) for i in range(8))
        + b']><DeviceService>&i;</DeviceService>'), "failed", "DOCTYPE"),
    "xxe.eml": (mails.snapshot_mail(
        b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b'<DeviceService><SerialNumber>&x;</SerialNumber></DeviceService>'), "failed", "DOCTYPE"),
    "notxml.eml": (mails.snapshot_mail(b"\x00\x01 this is not XML at all"), "failed", "xml"),
    "gmime-loop.eml": (mails.gmime_loop_mail(), None, None),
    "parts.eml": (mails.many_parts_mail(100000), "failed", "parts"),
    "deep.eml": (mails.deep_mail(20000), "failed", "nest"),
}
for name, (data, _, _) in bad.items():
    write(name, data)
start = time.monotonic()
r = run([snapkeep, "import", "--db", db, "--parse-timeout", "10000"] +
        [os.path.join(d, n) for n in bad], timeout=120)
elapsed = time.monotonic() - start
t.eq(r.returncode, 0, "hostile and non-snapshot mails import with exit 0 (kept, not lost)")
t.ok(elapsed < 60, "hostile mails are handled in bounded time (%.1f s)" % elapsed)
for name, (data, outcome, reason) in bad.items():
    rows = db_rows(db, "SELECT outcome, detail FROM intake_log WHERE source_name LIKE ?", ("%/" + name,))
    if not t.eq(len(rows), 1, "%s: one arrival row" % name):
        continue
    got = rows[0]
    if outcome is None:
        t.ok(got["outcome"] in ("not-snapshot", "failed"), "%s: left pending state (%s: %s)" % (name, got["outcome"], got["detail"]))
        continue
    t.eq(got["outcome"], outcome, "%s: outcome %s" % (name, outcome))
    if reason:
        t.ok(got["detail"] is not None and reason.lower() in got["detail"].lower(),
             "%s: reason mentions %r" % (name, reason), got["detail"])
t.ok("root:" not in str(db_rows(db, "SELECT * FROM event_log")) and
     "root:" not in str(db_rows(db, "SELECT * FROM device_status")),
     "no byte of /etc/passwd reached the views")
t.eq(count("SELECT count(*) n FROM intake_log WHERE outcome='pending'"), 0, "no arrival stays pending")

# Worker limits: a wall-clock limit too small for a 3 MB document kills the
# worker; the message is failed with the reason, the next one still parses.
entry = re.search(rb"<log:Entry>.*?</log:Entry>", mails.example_xml("futuresmart-color-mfp"), re.S)
big_xml = mails.example_xml("futuresmart-color-mfp")
filler = entry.group(0) * (3 * 1024 * 1024 // len(entry.group(0)))
big_xml = big_xml.replace(b"</log:Entries>", filler + b"</log:Entries>", 1)
# A later snapshot of the same device, so it is new, not a duplicate.
big_xml = big_xml.replace(b"2025-03-08T23:00:00.752-07:00", b"2025-03-09T23:00:00.752-07:00", 1)
t.ok(len(big_xml) > 3 * 1024 * 1024, "a 3 MB Device.xml (%d bytes)" % len(big_xml))
big = write("big.eml", mails.snapshot_mail(big_xml, msgid="<big@test>"))
r = run([snapkeep, "import", "--db", db, "--parse-timeout", "1", "--parse-workers", "1", big])
t.eq(r.returncode, 0, "import with a 1 ms parse limit exits 0 (message kept)")
rows = db_rows(db, "SELECT id, outcome, detail FROM intake_log WHERE source_name LIKE '%/big.eml'")
t.ok(len(rows) == 1 and rows[0]["outcome"] == "failed" and "timed out" in (rows[0]["detail"] or ""),
     "a parse over the wall-clock limit is failed with 'timed out'", rows)

# reparse --failed with normal limits recovers it; the hostile ones stay failed.
failed_before = count("SELECT count(*) n FROM intake_log WHERE outcome='failed'")
r = run([snapkeep, "reparse", "--db", db, "--failed"], timeout=120)
t.eq(r.returncode, 0, "reparse --failed exits 0")
rows = db_rows(db, "SELECT outcome FROM intake_log WHERE source_name LIKE '%/big.eml'")
t.eq(rows[0]["outcome"], "stored", "the 3 MB snapshot is stored after reparse")
t.eq(count("SELECT count(*) n FROM intake_log WHERE outcome='failed'"), failed_before - 1,
     "only the recovered message changed outcome")
# The big document repeats one event thousands of times: stored once.
t.eq(count("SELECT count(*) n FROM event_log WHERE serial='PHB6820301'"), 9,
     "an event repeated thousands of times is stored once")

# reparse --all is idempotent.
snap_before = db_rows(db, "SELECT * FROM snapshot_list ORDER BY snapshot_id")
ev_before = db_rows(db, "SELECT serial, log, sequence, code, occurred_utc FROM event_log ORDER BY 1,2,3,4,5")
ctr_before = db_rows(db, "SELECT * FROM counter_history ORDER BY 1,2,3")
r = run([snapkeep, "reparse", "--db", db, "--all"], timeout=120)
t.eq(r.returncode, 0, "reparse --all exits 0")
t.eq(db_rows(db, "SELECT * FROM snapshot_list ORDER BY snapshot_id"), snap_before, "reparse --all: same snapshots")
t.eq(db_rows(db, "SELECT serial, log, sequence, code, occurred_utc FROM event_log ORDER BY 1,2,3,4,5"), ev_before,
     "reparse --all: same events")
t.eq(db_rows(db, "SELECT * FROM counter_history ORDER BY 1,2,3"), ctr_before, "reparse --all: same counters")
t.eq(count("SELECT count(*) n FROM event_log"), events_before, "events unchanged since the first import")
one = db_rows(db, "SELECT message_id FROM intake_log WHERE outcome='stored' LIMIT 1")[0]["message_id"]
r = run([snapkeep, "reparse", "--db", db, "--id", str(one)])
t.eq(r.returncode, 0, "reparse --id exits 0")
r = run([snapkeep, "reparse", "--db", db, "--id", "999999"])
t.ok(r.returncode != 0 and b"999999" in r.stderr, "reparse of an unknown id is an error", r.stderr)

# stdin, as an MTA pipe delivers: 0 when stored or ignored, 75 when the store is unavailable.
r = run([snapkeep, "import", "--db", db, "-"], stdin=mails.snapshot_mail(xml, msgid="<stdin@test>"))
t.eq(r.returncode, 0, "import - (stdin) exits 0")
t.eq(db_rows(db, "SELECT source FROM intake_log ORDER BY id DESC LIMIT 1")[0]["source"], "stdin",
     "stdin arrival recorded with source stdin")
r = run([snapkeep, "import", "--db", db, "-"], stdin=mails.alert_mail())
t.eq(r.returncode, 0, "import - of a non-snapshot exits 0 (deliberately ignored, kept)")
r = run([snapkeep, "import", "--db", unavailable_store(), "-"], stdin=mails.alert_mail())
t.eq(r.returncode, 75, "import - with the store unavailable exits 75 (EX_TEMPFAIL)")
r = run([snapkeep, "import", "--db", db, os.path.join(d, "no-such-file.eml")])
t.eq(r.returncode, 66, "import of a missing path exits 66")

# Maildir and mbox.
md = os.path.join(d, "Maildir")
for sub in ("cur", "new", "tmp"):
    os.makedirs(os.path.join(md, sub))
write("Maildir/new/1.eml", mails.snapshot_mail(xml, msgid="<md1@test>"))
write("Maildir/cur/2.eml:2,S", mails.alert_mail().replace(b"alert-1", b"alert-md"))
write("Maildir/tmp/3.eml", b"partial")
mbox = (b"From mfp@fleet.example Sat Mar  8 23:00:00 2025\n" + mails.snapshot_mail(xml, msgid="<mb1@test>").replace(b"\r\n", b"\n") +
        b"\nFrom mfp@fleet.example Sat Mar  8 23:00:01 2025\n" + mails.alert_mail().replace(b"alert-1", b"alert-mb").replace(b"\r\n", b"\n") + b"\n")
write("inbox.mbox", mbox)
before = count("SELECT count(*) n FROM intake_log")
r = run([snapkeep, "import", "--db", db, md, os.path.join(d, "inbox.mbox")])
t.eq(r.returncode, 0, "Maildir + mbox import exits 0")
t.eq(count("SELECT count(*) n FROM intake_log") - before, 4, "Maildir cur+new and two mbox messages (tmp/ skipped)")
rows = db_rows(db, "SELECT source_name, outcome FROM intake_log WHERE source_name LIKE '%inbox.mbox#%' ORDER BY source_name")
t.eq([r["outcome"] for r in rows], ["duplicate", "not-snapshot"], "mbox: snapshot (already known) and alert")

cleanup(d)
t.done()
