"""snapkeepd's maintenance pass: with [store] retention_days set, raw
messages older than that are pruned while the rows parsed from them stay,
and the archive still verifies."""
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sklib import (Tap, cleanup, db_exec, db_rows, examples, free_port, new_store, program, run,  # noqa: E402
                   store_config, tempdir)

t = Tap()
snapkeep = program("snapkeep")
snapkeepd = program("snapkeepd")
d = tempdir()
db = new_store(d)

r = run([snapkeep, "import", "-q", "--db", db] + [e[1] for e in examples()])
t.eq(r.returncode, 0, "examples imported", r.stderr)
before = db_rows(db, "SELECT * FROM counter_history ORDER BY 1, 2, 3")

# Two of the three messages arrived 10 days ago.
t.eq(db_exec(db, "UPDATE messages SET first_received_us = first_received_us - ?"
             " WHERE id IN (SELECT id FROM messages ORDER BY id LIMIT 2)", (10 * 86400 * 1000000,)),
     2, "two messages made 10 days older")

conf = os.path.join(d, "snapkeep.conf")
with open(conf, "w") as fh:
    fh.write("[daemon]\nuser =\nstate_dir = %s\n[store]\n%sretention_days = 5\n"
             "maintenance_interval = 1s\n[smtp]\nlisten = 127.0.0.1:%d\n[web]\nenabled = false\n"
             % (d, store_config(db), free_port()))
log = open(os.path.join(d, "snapkeepd.log"), "w+b")
p = subprocess.Popen([snapkeepd, "--config", conf, "--foreground"], stderr=log)
deadline = time.monotonic() + 30
seen = b""
while time.monotonic() < deadline and b"maintenance: event=pass" not in seen:
    time.sleep(0.2)
    log.seek(0)
    seen = log.read()
t.ok(b"maintenance: event=pass" in seen, "the daemon ran a maintenance pass", seen[-2000:])
t.ok(b"pruned=2 " in seen, "the pass pruned the two old messages", seen[-2000:])
p.send_signal(signal.SIGTERM)
t.eq(p.wait(timeout=30), 0, "SIGTERM: exit 0")

rows = db_rows(db, "SELECT id, method FROM messages ORDER BY id")
t.eq([r["method"] for r in rows][:2], ["pruned", "pruned"], "old raw messages pruned")
t.ok(rows[2]["method"] != "pruned", "the recent message is kept")
t.eq(db_rows(db, "SELECT * FROM counter_history ORDER BY 1, 2, 3"), before, "parsed rows stay")
t.eq(len(db_rows(db, "SELECT * FROM device_status")), 3, "devices stay")
r = run([snapkeep, "verify", "--db", db])
t.ok(r.returncode == 0, "snapkeep verify: the archive is sound", r.stdout + r.stderr)
r = run([snapkeep, "reparse", "--db", db, "--id", str(rows[0]["id"])])
t.ok(r.returncode != 0 and b"pruned" in r.stderr, "a pruned message says so", r.stderr)

cleanup(d)
t.done()
