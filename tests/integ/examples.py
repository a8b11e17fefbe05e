"""The three example mails import through `snapkeep import`, and every value
in their .expected.json is found through the public views, field by field."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sklib import Tap, cleanup, db_rows, examples, new_store, program, run, tempdir  # noqa: E402

t = Tap()
snapkeep = program("snapkeep")
d = tempdir()
db = new_store(d)
ex = examples()
t.eq(len(ex), 3, "three example mails with expected values")

r = run([snapkeep, "import", "--db", db] + [e[1] for e in ex])
t.eq(r.returncode, 0, "snapkeep import exits 0", r.stderr)
t.ok(b"3 stored" in r.stdout, "summary line says 3 stored", r.stdout + r.stderr)

for name, path, want in ex:
    serial = want["serial"]
    dev = db_rows(db, "SELECT * FROM device_status WHERE serial = ?", (serial,))
    if not t.eq(len(dev), 1, "%s: one device_status row" % name):
        continue
    dev = dev[0]
    for field in ("product_number", "model", "hostname", "firmware", "ip_address"):
        if field in want:
            t.eq(dev[field], want[field], "%s: device_status.%s" % (name, field))
    t.eq(dev["last_snapshot_utc"], want["taken_utc"], "%s: last_snapshot_utc = taken_utc" % name)
    t.eq(dev["dialect"], want["dialect"], "%s: dialect" % name)
    t.eq(dev["snapshot_count"], 1, "%s: one snapshot" % name)

    intake = db_rows(db, "SELECT outcome FROM intake_log WHERE serial = ?", (serial,))
    t.eq([i["outcome"] for i in intake], ["stored"], "%s: kind snapshot -> intake outcome stored" % name)

    counters = {r["counter"]: r["value"] for r in db_rows(
        db, "SELECT counter, value FROM counter_history WHERE serial = ? AND taken_utc = ?",
        (serial, want["taken_utc"]))}
    for cname, value in want["counters"].items():
        t.eq(counters.get(cname), value, "%s: counter %s" % (name, cname))
    short = {"TotalImpressions": "total_impressions", "MonochromeImpressions": "mono_impressions",
             "ColorImpressions": "color_impressions"}
    for cname, col in short.items():
        t.eq(dev[col], want["counters"].get(cname), "%s: device_status.%s" % (name, col))

    media = {r["media_size"]: r["value"] for r in db_rows(
        db, "SELECT media_size, value FROM media_counter_history WHERE serial = ? AND counter = 'TotalImpressions'",
        (serial,))}
    for size, value in want.get("media_total_impressions", {}).items():
        t.eq(media.get(size), value, "%s: TotalImpressions on %s" % (name, size))

    supplies = db_rows(db, "SELECT * FROM supply_status WHERE serial = ?", (serial,))
    t.eq(len(supplies), len(want["supplies"]), "%s: number of supplies" % name)
    for s in want["supplies"]:
        match = [x for x in supplies if x["color"] == s["color"] and x["type"] == s["type"]]
        if not t.eq(len(match), 1, "%s: supply %s/%s present once" % (name, s["color"], s["type"])):
            continue
        m = match[0]
        t.eq(m["level_percent"], s["level_percent"], "%s: %s level_percent" % (name, s["color"] or s["type"]))
        t.eq(m["supply_serial"], s["serial"], "%s: %s supply_serial" % (name, s["color"] or s["type"]))
        t.eq(m["state"], s["state"], "%s: %s state" % (name, s["color"] or s["type"]))
        t.eq(m["reported_utc"], want["taken_utc"], "%s: %s reported_utc" % (name, s["color"] or s["type"]))

    events = db_rows(db, "SELECT * FROM event_log WHERE serial = ?", (serial,))
    t.eq(len(events), len(want["events"]), "%s: number of events" % name)
    by_seq = {e["sequence"]: e for e in events}
    for e in want["events"]:
        got = by_seq.get(e["sequence"])
        if not t.ok(got is not None, "%s: event %d present" % (name, e["sequence"])):
            continue
        for field in ("code", "occurred_utc", "page_count"):
            t.eq(got[field], e[field], "%s: event %d %s" % (name, e["sequence"], field))

# The command line shows the same data.
r = run([snapkeep, "devices", "--db", db, "--json"])
t.eq(r.returncode, 0, "snapkeep devices --json exits 0")
import json  # noqa: E402
devs = json.loads(r.stdout)
t.eq(sorted(x["serial"] for x in devs), sorted(e[2]["serial"] for e in ex), "devices --json lists the three serials")
r = run([snapkeep, "show", "--db", db, "--json", ex[0][2]["serial"]])
t.eq(r.returncode, 0, "snapkeep show --json exits 0")
shown = json.loads(r.stdout)
t.eq(shown["device"]["serial"], ex[0][2]["serial"], "show --json: device serial")
t.eq(len(shown["supplies"]), len(ex[0][2]["supplies"]), "show --json: supplies")
r = run([snapkeep, "show", "--db", db, "NOSUCHSERIAL"])
t.eq(r.returncode, 1, "show of an unknown serial exits 1")
r = run([snapkeep, "show", "--db", db, ex[2][2]["serial"]])
t.ok(r.returncode == 0 and ex[2][2]["serial"].encode() in r.stdout and b"Supplies" in r.stdout,
     "show prints the device as tables", r.stdout + r.stderr)

cleanup(d)
t.done()
