#!/usr/bin/python3
# sim-snapkeepd.py: snapkeep-sim sends to the real snapkeepd (127.0.0.1,
# ephemeral port, a new store: SQLite or PostgreSQL, see sklib) with faults;
# the store is then compared with the manifest: every mail the simulator
# saw accepted is archived once (by SHA-256) with the outcome the manifest
# expects, the mail dropped in DATA is not there, and the snapshots table
# holds one row per distinct (serial, snapshot time) with the manifest's
# counters.  TAP output.
import json
import os
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sklib import (DB_ERRORS, Tap, check_sanitizer_output, cleanup, db_rows, new_store, program, run,  # noqa: E402
                   store_config, tempdir)

t = Tap()
sim, daemon = program("snapkeep-sim"), program("snapkeepd")

tmp = tempdir(prefix="sim-snapkeepd-")
db = new_store(tmp)
conf = os.path.join(tmp, "snapkeep.conf")
open(conf, "w").write("[daemon]\nuser=\n[store]\n" + store_config(db))
s = socket.socket()
s.bind(("127.0.0.1", 0))
port = s.getsockname()[1]
s.close()

d = subprocess.Popen([daemon, "-f", "-c", conf, "--smtp-listen", "127.0.0.1:%d" % port],
                     stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "daemon.log"), "w"))
for _ in range(100):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        break
    except OSError:
        if d.poll() is not None:
            t.bail("snapkeepd exited: %s" % open(os.path.join(tmp, "daemon.log")).read()[-500:])
        time.sleep(0.1)
else:
    d.kill()
    t.bail("snapkeepd does not listen on %d" % port)

manifest = os.path.join(tmp, "m.jsonl")
r = run([sim, "--smtp", "smtp://127.0.0.1:%d" % port, "-n", "5", "--seed", "3",
         "--start", "2025-06-01", "--days", "6", "--schedule", "1d", "--log-capacity", "40",
         "--connections", "3", "--manifest", manifest, "--variants", "mix",
         "--faults", "missing_attachment,truncated_xml,entity_bomb,external_entity,"
         "duplicate_resend,same_snapshot_new_mail,alert_mail,drop_in_data,counter_reset,clock_skew",
         "--fault-rate", "0.5", "--retry-base-ms", "100"], timeout=180)
t.ok(r.returncode == 0, "snapkeep-sim delivered everything (exit %d) %s"
     % (r.returncode, r.stderr.decode(errors="replace").strip()[-300:]))
lines = [json.loads(l) for l in open(manifest)]
sent = [l for l in lines if l["delivery"]["status"] == "sent"]

# Wait for the parse workers to finish.
for _ in range(300):
    try:
        if db_rows(db, "SELECT count(*) n FROM messages WHERE outcome = 'pending'")[0]["n"] == 0:
            break
    except DB_ERRORS:
        pass
    time.sleep(0.1)
d.send_signal(signal.SIGTERM)
try:
    d.wait(timeout=30)
except subprocess.TimeoutExpired:
    d.kill()
with open(os.path.join(tmp, "daemon.log"), "rb") as fh:
    check_sanitizer_output([daemon], fh.read())
t.ok(d.returncode == 0, "snapkeepd stopped cleanly (%s)" % d.returncode)

outcome = {r["sha256"]: r["outcome"] for r in db_rows(db, "SELECT sha256, outcome FROM messages")}
arrivals = db_rows(db, "SELECT count(*) n FROM intake_log")[0]["n"]
t.ok(arrivals == len(sent), "one intake_log row per accepted mail (%d = %d)" % (arrivals, len(sent)))
want = {"stored": ("stored",), "not_snapshot": ("not-snapshot",), "failed": ("failed",),
        "duplicate": ("stored",), "duplicate_snapshot": ("stored", "duplicate")}
# A snapshot sent again in a new mail (same_snapshot_new_mail) makes two
# messages of one (serial, time): the parse workers run in parallel, so
# either may be parsed first and be 'stored', the other 'duplicate'.
# Exactly one per (serial, time) is stored.
copies = {}
for l in sent:
    if l.get("kind") == "snapshot" and l["expect"] in ("stored", "duplicate_snapshot"):
        copies.setdefault((l["serial"], l["taken_utc"]), set()).add(l["sha256"])
bad = []
for l in sent:
    got = outcome.get(l["sha256"])
    allowed = want[l["expect"]]
    if l["expect"] == "stored" and len(copies.get((l.get("serial"), l.get("taken_utc")), ())) > 1:
        allowed = ("stored", "duplicate")
    if got not in allowed:
        bad.append("%s %s: %s" % (l["fault"], l["expect"], got))
t.ok(not bad, "every message has the outcome the manifest expects %s" % bad[:4])
stored_twice = [k for k, shas in copies.items()
                if sum(1 for sha in shas if outcome.get(sha) == "stored") != 1]
t.ok(not stored_twice, "each snapshot sent in several mails is stored by exactly one of them %s"
     % stored_twice[:4])
faults = {l["fault"] for l in lines}
t.ok({"truncated_xml", "entity_bomb", "alert_mail", "drop_in_data"} <= faults,
     "faults exercised: %s" % sorted(f for f in faults if f))
dropped = [l for l in lines if l["delivery"]["status"] == "dropped"]
t.ok(dropped and all(l["sha256"] not in outcome for l in dropped), "mail dropped in DATA not archived")
dups = [l for l in lines if l["fault"] == "duplicate_resend"]
t.ok(all(len(set(x["sha256"] for x in lines if x["sha256"] == l["sha256"])) == 1 for l in dups)
     and len(outcome) == len({l["sha256"] for l in sent}), "resent bytes archived once")

# Snapshots: one per (serial, time), with the manifest's counters.
expect = {}
for l in sent:
    if l["expect"] in ("stored", "duplicate", "duplicate_snapshot") and l.get("kind") == "snapshot":
        expect[(l["serial"], l["taken_utc"])] = l
rows = db_rows(db, "SELECT d.serial, s.taken_utc, s.id FROM snapshots s JOIN devices d ON d.id = s.device_id")
got = {(r["serial"], r["taken_utc"]): r["id"] for r in rows}
t.ok(set(got) == set(expect), "snapshots = distinct (serial, time) expected (%d vs %d)" % (len(got), len(expect)))
mismatch = []
for key, sid in got.items():
    l = expect.get(key)
    if l is None:
        continue
    for name in ("TotalImpressions", "MonochromeImpressions", "ColorImpressions", "DuplexSheets"):
        if name not in l["counters"]:
            continue
        try:
            v = db_rows(db, "SELECT value FROM counter_history WHERE snapshot_id = ? AND counter = ?",
                        (sid, name))
        except DB_ERRORS as e:
            mismatch.append(str(e))
            break
        v = (v[0]["value"],) if v else None
        if v is None or v[0] != l["counters"][name]:
            mismatch.append("%s %s %s: %s != %s" % (key[0], key[1], name, v, l["counters"][name]))
t.ok(not mismatch, "stored counters equal the manifest's %s" % mismatch[:3])
cleanup(tmp)
t.done()
