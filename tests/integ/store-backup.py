"""`snapkeep backup`: an online copy taken while another process keeps
writing (snapkeep import in a loop) is consistent (PRAGMA integrity_check,
snapkeep verify on the copy, its rows a state the writer went through); an
existing file is refused without --force; restore by copying the file back
(after removing -wal and -shm) gives the same database."""
import os
import shutil
import sqlite3
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sklib import Tap, check_sanitizer_output, cleanup, db_rows, program, run, tempdir  # noqa: E402

t = Tap()
snapkeep = program("snapkeep")
sim = program("snapkeep-sim")
d = tempdir()
db = os.path.join(d, "snapkeep.db")


def integrity(path):
    con = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
    try:
        return con.execute("PRAGMA integrity_check").fetchall()
    finally:
        con.close()


def snapshot_of(path):
    """The rows that must agree with each other in any consistent state."""
    return db_rows(path, "SELECT (SELECT count(*) FROM messages) messages, (SELECT count(*) FROM intake) intake,"
                         " (SELECT count(*) FROM snapshots) snapshots,"
                         " (SELECT sum(snapshot_count) FROM devices) counted,"
                         " (SELECT count(*) FROM intake WHERE outcome = 'pending') pending")[0]


out = os.path.join(d, "mails")
r = run([sim, "-n", "6", "--days", "12", "--schedule", "1d", "--seed", "11", "-o", out, "-q"])
t.eq(r.returncode, 0, "snapkeep-sim wrote the mails")
names = sorted(os.listdir(out))
seed, rest = names[:12], names[12:]
r = run([snapkeep, "import", "-q", "--db", db, "--no-progress"] + [os.path.join(out, n) for n in seed])
t.eq(r.returncode, 0, "a first batch imported", r.stderr)

# The writer: one import per mail, in another process, until told to stop.
stop = os.path.join(d, "stop")
writer_script = (
    "import os, subprocess, sys\n"
    "for p in sys.argv[3:]:\n"
    "    if os.path.exists(sys.argv[2]): break\n"
    "    r = subprocess.run([sys.argv[1], 'import', '-q', '--no-progress', '--db', %r, p], capture_output=True)\n"
    "    sys.stderr.buffer.write(r.stderr)\n"
    "    if r.returncode != 0: sys.exit(r.returncode)\n" % db)
writer = subprocess.Popen([sys.executable, "-c", writer_script, snapkeep, stop] + [os.path.join(out, n) for n in rest],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
start = snapshot_of(db)["messages"]
deadline = time.time() + 60
while snapshot_of(db)["messages"] < start + 3 and time.time() < deadline:
    time.sleep(0.05)

copies = []
for i in range(3):
    copy = os.path.join(d, "backup-%d.db" % i)
    alive_before = writer.poll() is None
    before = snapshot_of(db)["messages"]
    r = run([snapkeep, "backup", "--db", db, copy])
    after = snapshot_of(db)["messages"]
    alive_after = writer.poll() is None
    t.eq(r.returncode, 0, "backup %d while the writer runs exits 0" % i, r.stderr)
    t.ok(alive_before and alive_after and after > start, "backup %d ran while another process wrote" % i,
         (alive_before, alive_after, start, before, after))
    t.ok(b"consistent copy of" in r.stdout and b"restore:" in r.stdout, "backup %d says how to restore" % i, r.stdout)
    copies.append((copy, before, after))
    time.sleep(0.3)

with open(stop, "w"):
    pass
_, err = writer.communicate(timeout=120)
check_sanitizer_output(["writer"], err)
t.eq(writer.returncode, 0, "the writer's imports all succeeded", err)

for i, (copy, before, after) in enumerate(copies):
    t.eq(integrity(copy), [("ok",)], "backup %d: PRAGMA integrity_check ok" % i)
    r = run([snapkeep, "verify", "--db", copy])
    t.eq(r.returncode, 0, "backup %d: snapkeep verify ok" % i, r.stdout + r.stderr)
    s = snapshot_of(copy)
    t.ok(before <= s["messages"] <= after, "backup %d holds a state between the start and the end of the copy" % i,
         (before, s, after))
    t.ok(s["snapshots"] == s["counted"] and s["messages"] <= s["intake"],
         "backup %d: rows agree with each other (one transaction's state)" % i, s)

# Refuse an existing file; --force replaces it.
copy = copies[0][0]
mtime = os.stat(copy).st_mtime_ns
r = run([snapkeep, "backup", "--db", db, copy])
t.eq(r.returncode, 73, "an existing backup file is refused (73)", r.stderr)
t.ok(b"--force" in r.stderr, "the refusal names --force", r.stderr)
t.eq(os.stat(copy).st_mtime_ns, mtime, "the refused file is untouched")
r = run([snapkeep, "backup", "--db", db, "--force", copy])
t.eq(r.returncode, 0, "--force replaces it", r.stderr)
t.eq(snapshot_of(copy), snapshot_of(db), "the new copy holds the final state")
t.eq([f for f in os.listdir(d) if ".tmp-" in f], [], "no temporary file left behind")
r = run([snapkeep, "backup", "--db", os.path.join(d, "missing.db"), os.path.join(d, "x.db")])
t.eq(r.returncode, 66, "a missing database: 66")
r = run([snapkeep, "backup", "--db", db, os.path.join(d, "no-such-dir", "x.db")])
t.eq(r.returncode, 1, "an unwritable target fails", r.stderr)

# Restore: copy the backup over a database (its -wal/-shm removed) and use it.
restored = os.path.join(d, "restored.db")
shutil.copyfile(copy, restored)
r = run([snapkeep, "import", "-q", "--no-progress", "--db", restored, os.path.join(out, rest[0])])
t.eq(r.returncode, 0, "the restored database takes imports", r.stderr)
t.eq(db_rows(restored, "SELECT count(*) n FROM intake WHERE outcome = 'duplicate'")[0]["n"],
     db_rows(db, "SELECT count(*) n FROM intake WHERE outcome = 'duplicate'")[0]["n"] + 1,
     "a mail it holds is recognised as a duplicate")
t.eq(db_rows(restored, "SELECT * FROM device_status ORDER BY serial"),
     db_rows(db, "SELECT * FROM device_status ORDER BY serial"), "device_status restored")
r = run([snapkeep, "verify", "--db", restored])
t.eq(r.returncode, 0, "the restored database verifies", r.stdout)

cleanup(d)
t.done()
