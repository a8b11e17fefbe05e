"""Maildir intake: `snapkeep import maildir:DIR` on a Maildir the simulator
delivered into (plus mail that is not a snapshot) with after = flag, move,
delete and keep, each drained exactly once; files that cannot be read (no
permission for the user snapkeep runs as, a FIFO, a symlink) are left in
place with a warning and the rest is taken; and snapkeepd's Maildir poller
does not touch a message while it is being written in tmp/, then takes it
within seconds of its rename into new/ (inotify)."""
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sklib import Tap, cleanup, new_store, program, run, store_config, tempdir  # noqa: E402

spec = importlib.util.spec_from_file_location("poll_lib", os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                                        "poll-lib.py"))
pl = importlib.util.module_from_spec(spec)
spec.loader.exec_module(pl)

t = Tap()
snapkeep = program("snapkeep")
snapkeepd = program("snapkeepd")
sim = program("snapkeep-sim")
program("snapkeep-parse")
d = tempdir("sk-poll-maildir-")
others = pl.other_mails(4)
K = len(others)


def make_maildir(name):
    md = os.path.join(d, name)
    r = run([sim, "-n", "30", "-d", "28", "--seed", "7", "--start", "2025-03-01", "--maildir", md, "--log-capacity", "5",
             "--job-log-capacity", "5", "-q"])
    if r.returncode != 0:
        raise RuntimeError(r.stderr)
    for i, raw in enumerate(others):
        with open(os.path.join(md, "tmp", "other%d" % i), "wb") as f:
            f.write(raw)
        os.rename(os.path.join(md, "tmp", "other%d" % i), os.path.join(md, "new", "9999999999.other%d.test" % i))
    return md, len(os.listdir(os.path.join(md, "new"))) - K


def ls(*parts):
    p = os.path.join(*parts)
    return sorted(os.listdir(p)) if os.path.isdir(p) else None


def db_counts(db):
    return (pl.count(db, "SELECT count(*) n FROM messages"),
            pl.count(db, "SELECT count(*) n FROM intake_log"),
            pl.count(db, "SELECT count(*) n FROM intake_log WHERE outcome = 'not-snapshot'"))


def imp(db, md, *opts):
    return run([snapkeep, "import", "--db", db, "--no-progress", "maildir:" + md] + list(opts), timeout=120)


daemon = None
try:
    # --- flag (the default): new/ -> cur/ with :2,S --------------------------------------------
    md, N = make_maildir("flag")
    t.diag("%d simulator mails, %d other mails" % (N, K))
    t.ok(N >= 100, "the simulator delivered into the Maildir", N)
    db = new_store(d, "flag")
    r = imp(db, md)
    t.ok(r.returncode == 0, "flag: import exits 0", r.stderr)
    t.eq(db_counts(db), (N + K, N + K, K), "flag: every mail stored once")
    t.eq(ls(md, "new"), [], "flag: new/ empty")
    cur = ls(md, "cur")
    t.ok(len(cur) == N and all(n.endswith(":2,S") for n in cur), "flag: the snapshots in cur/ with :2,S", cur[:3])
    t.eq(len(ls(md, ".snapkeep.failed", "cur")), K, "flag: other mail in the .snapkeep.failed folder")
    r = imp(db, md)
    t.eq(db_counts(db)[1], N + K, "flag: a second run takes nothing")

    # --- move to a folder, and to an absolute path ----------------------------------------------
    md, N = make_maildir("move")
    db = new_store(d, "move")
    r = imp(db, md, "--after", "move")
    t.ok(r.returncode == 0, "move: import exits 0", r.stderr)
    t.eq(db_counts(db), (N + K, N + K, K), "move: every mail stored once")
    t.eq((ls(md, "new"), ls(md, "cur")), ([], []), "move: new/ and cur/ empty")
    t.eq(len(ls(md, ".snapkeep.processed", "cur")), N, "move: snapshots in .snapkeep.processed/cur")
    t.ok(os.path.exists(os.path.join(md, ".snapkeep.processed", "maildirfolder")), "move: a Maildir++ folder")
    md2, _ = make_maildir("move-abs")
    target = os.path.join(d, "archive")
    r = imp(db, md2, "--after", "move", "--move-to", target, "--failed-to", "")
    t.ok(r.returncode == 0, "move to an absolute path: exit 0", r.stderr)
    t.eq(len(ls(target, "cur")), N + K, "move to an absolute path: a Maildir of its own (failed_to empty: all there)")
    t.eq(db_counts(db)[0], N + K, "the same mails from another Maildir: stored once")

    # --- delete ---------------------------------------------------------------------------------
    md, N = make_maildir("delete")
    db = new_store(d, "delete")
    r = imp(db, md, "--after", "delete")
    t.ok(r.returncode == 0, "delete: import exits 0", r.stderr)
    t.eq(db_counts(db), (N + K, N + K, K), "delete: every mail stored once")
    t.eq((ls(md, "new"), ls(md, "cur")), ([], []), "delete: removed")
    t.eq(len(ls(md, ".snapkeep.failed", "cur")), K, "delete: other mail kept in .snapkeep.failed")

    # --- keep -----------------------------------------------------------------------------------
    md, N = make_maildir("keep")
    db = new_store(d, "keep")
    before = ls(md, "new")
    r = imp(db, md, "--after", "keep")
    t.ok(r.returncode == 0, "keep: import exits 0", r.stderr)
    t.eq(db_counts(db), (N + K, N + K, K), "keep: every mail stored once")
    t.eq(ls(md, "new"), before, "keep: nothing moved")
    r = imp(db, md, "--after", "keep")
    t.eq(db_counts(db)[1], N + K, "keep: a second run takes nothing")

    # --- keep, two pollers at once on one shared store -------------------------------------------
    # On PostgreSQL the nodes sharing a store take turns on a mailbox: of two
    # passes at the same time one is skipped, so nothing is taken twice.
    if os.environ.get("SK_TEST_BACKEND") == "postgresql":
        md, N = make_maildir("keep-shared")
        db = new_store(d, "keep-shared")
        cmd = [snapkeep, "import", "--db", db, "--no-progress", "maildir:" + md, "--after", "keep"]
        procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
        outs = [p.communicate(timeout=120) for p in procs]
        t.ok(all(p.returncode == 0 for p in procs), "shared: both imports exit 0",
             b"".join(o[1] for o in outs).decode(errors="replace"))
        t.eq(db_counts(db), (N + K, N + K, K), "shared: every mail taken once by one of the two")
        # The passes overlap (a second or two each): the later one is
        # skipped and says so, or finds everything seen.
        skipped = sum(b"event=pass-skipped" in o[1] for o in outs)
        t.diag("passes skipped because the other held the mailbox: %d" % skipped)
    else:
        t.skip("shared: two pollers at once take every mail once", "PostgreSQL only (nodes sharing a store)")

    # --- files that cannot be read ------------------------------------------------------------
    md, N = make_maildir("unreadable")
    names = ls(md, "new")
    secret = os.path.join(md, "new", names[0])
    os.chmod(secret, 0)
    os.mkfifo(os.path.join(md, "new", "1.fifo.test"))
    os.symlink("/etc/passwd", os.path.join(md, "new", "2.link.test"))
    db = new_store(d, "unreadable")
    # As an unprivileged user (root reads anything): the user snapkeep runs as.
    for root, dirs, files in os.walk(d):
        for x in dirs + files:
            p = os.path.join(root, x)
            if not os.path.islink(p):
                os.chown(p, pl.MAIL_UID, pl.MAIL_UID)
    os.chown(d, pl.MAIL_UID, pl.MAIL_UID)
    drop = ["setpriv", "--reuid=%d" % pl.MAIL_UID, "--regid=%d" % pl.MAIL_UID, "--clear-groups"]
    probe = run(drop + [snapkeep, "--version"]) if os.geteuid() == 0 and shutil.which("setpriv") else None
    if probe is None or probe.returncode != 0:
        t.diag("cannot run snapkeep as nobody (not root, or the build directory is private): "
               "the permission case runs as the current user")
        drop = []
    start = time.time()
    r = run(drop + [snapkeep, "import", "--db", db, "--no-progress", "maildir:" + md], timeout=60)
    t.ok(r.returncode == 0 and time.time() - start < 30, "unreadable files: import exits 0 (a FIFO does not block)",
         r.stderr)
    t.ok(b"event=unreadable" in r.stderr and b"a symbolic link" in r.stderr and b"not a regular file" in r.stderr,
         "unreadable files: a warning for each", r.stderr)
    expect_left = 3 if drop else 2
    if drop:
        t.ok(b"Permission denied" in r.stderr, "unreadable files: permission denied is named", r.stderr)
    t.eq(len(ls(md, "new")), expect_left, "unreadable files: left in new/, the rest taken")
    t.eq(pl.count(db, "SELECT count(*) n FROM messages"), N + K - (expect_left - 2),
         "unreadable files: every readable mail stored")
    t.ok(os.path.exists(secret) == bool(drop), "unreadable files: the file without permission stays")

    # --- snapkeepd: a message being written is left alone until it is complete ---------------
    md = os.path.join(d, "live")
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(md, sub))
    db = new_store(d, "live")
    conf = os.path.join(d, "live.conf")
    with open(conf, "w") as f:
        f.write("[daemon]\nuser =\nstate_dir = %s\n[store]\n%s[smtp]\nlisten = 127.0.0.1:0\n"
                "[poll.live]\nurl = maildir:%s\ninterval = 300\n" % (d, store_config(db), md))
    log = open(os.path.join(d, "live.log"), "wb")
    daemon = subprocess.Popen([snapkeepd, "-f", "-c", conf], stdout=log, stderr=log)
    pl.wait_for(lambda: "event=ready" in open(os.path.join(d, "live.log"), errors="replace").read(), timeout=15)
    with open(os.path.join(d, "flag", "cur", ls(d, "flag", "cur")[0]), "rb") as f:
        raw = f.read()
    name = "%d.M1P1.live" % int(time.time())
    tmp = os.path.join(md, "tmp", name)
    with open(tmp, "wb") as f:
        f.write(raw[: len(raw) // 2])
        f.flush()
        time.sleep(1.0)
        t.eq(pl.count(db, "SELECT count(*) n FROM intake_log"), 0, "a message half written in tmp/ is not taken")
        f.write(raw[len(raw) // 2:])
    start = time.time()
    os.rename(tmp, os.path.join(md, "new", name))
    took = pl.wait_for(lambda: pl.count(db, "SELECT count(*) n FROM intake_log") == 1 and ls(md, "new") == [],
                       timeout=10)
    secs = time.time() - start
    t.ok(took and secs < 3, "renamed into new/: taken and flagged in %.2f s (interval 300 s)" % secs)
    got = pl.db_rows(db, "SELECT raw_size FROM messages")
    t.eq(got[0]["raw_size"] if got else None, len(raw), "the whole message, not the half")
    t.eq(ls(md, "cur"), [name + ":2,S"], "flagged as seen in cur/")
    daemon.send_signal(signal.SIGTERM)
    t.eq(daemon.wait(timeout=30), 0, "snapkeepd stops cleanly")
    daemon = None
finally:
    if daemon is not None:
        daemon.kill()
        daemon.wait()
    cleanup(d)
t.done()
