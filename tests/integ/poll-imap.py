"""`snapkeep import imap://...` against a real Dovecot: a mailbox of simulator
snapshots plus mail that is not a snapshot is drained exactly once for each of
after = move, flag, delete and keep (counts checked in snapkeep's database and
in the mailbox), also on a server without MOVE, UIDPLUS and IDLE and with '.'
as the hierarchy separator; a second run takes nothing twice; a kill -9 in the
middle of a large pass followed by a new run leaves every message stored once
and moved once; wrong credentials, a missing mailbox and a server that is not
there give clear errors and exit 75, not crashes."""
import importlib.util
import os
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sklib import Tap, cleanup, new_store, program, run, tempdir  # noqa: E402

spec = importlib.util.spec_from_file_location("poll_lib", os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                                        "poll-lib.py"))
pl = importlib.util.module_from_spec(spec)
spec.loader.exec_module(pl)

t = Tap()
pl.need_tools(t, [pl.DOVECOT, "certtool"])
snapkeep = program("snapkeep")
program("snapkeep-parse")
d = tempdir("sk-poll-imap-")
users = {"move": "", "flag": "", "delete": "", "keep": "", "big": "", "errors": "",
         # An older server: no MOVE, UIDPLUS or IDLE, '.' between folder levels.
         "plain": "imap_capability=IMAP4rev1 namespace/inbox/separator=."}
dc = pl.Dovecot(os.path.join(d, "dovecot"), users)
pw = pl.write_password(d)
snaps = pl.sim_mails(os.path.join(d, "sim"), devices=40, days=14)
others = pl.other_mails(7)
N, K = len(snaps), len(others)
t.diag("%d simulator mails, %d other mails" % (N, K))
t.ok(N >= 150, "a few hundred simulator mails", N)


def imp(db, user, *opts, url=None):
    return run([snapkeep, "import", "--db", db, "--password-file", pw, "--no-progress",
                url or dc.url("imap", user)] + list(opts), timeout=120)


def db_counts(db):
    return (pl.count(db, "SELECT count(*) n FROM messages"),
            pl.count(db, "SELECT count(*) n FROM intake_log"),
            pl.count(db, "SELECT count(*) n FROM snapshot_list"),
            pl.count(db, "SELECT count(*) n FROM intake_log WHERE outcome = 'not-snapshot'"))


try:
    dc.start()
    for u in ("move", "flag", "delete", "keep", "plain"):
        dc.deliver(u, snaps + others)

    # --- after = move (the default) -------------------------------------------------------
    db = new_store(d, "move")
    r = imp(db, "move")
    t.eq(r.returncode, 0, "move: import exits 0")
    t.ok(b"to snapkeep/failed" in r.stdout, "move: summary names the failed folder", r.stdout + r.stderr)
    t.eq(db_counts(db), (N + K, N + K, N, K), "move: every mail stored once, N snapshots, K not snapshots")
    t.eq(dc.count("move"), 0, "move: INBOX drained")
    t.eq(dc.count("move", "snapkeep/processed"), N, "move: snapshots in snapkeep/processed")
    t.eq(dc.count("move", "snapkeep/failed"), K, "move: other mail in snapkeep/failed")
    t.eq(dc.folder_state("move", "snapkeep/failed")[1], 0, "move: failed mail left unseen for people")
    r = imp(db, "move")
    t.eq((r.returncode, db_counts(db)), (0, (N + K, N + K, N, K)), "move: second run takes nothing")
    rows = pl.db_rows(db, "SELECT source, source_name, peer FROM intake_log ORDER BY id LIMIT 1")
    t.eq((rows[0]["source"], rows[0]["source_name"][:4], rows[0]["peer"]),
         ("imap", "uid ", "imap://move@127.0.0.1:%d/INBOX" % dc.imap_port), "move: arrival names the mailbox")
    st = pl.db_rows(db, "SELECT * FROM poll_status")[0]
    t.eq((st["taken"], st["failed"], st["last_error"]), (N + K, K, None), "move: poll_status counts")

    # --- after = flag ----------------------------------------------------------------------
    db = new_store(d, "flag")
    r = imp(db, "flag", "--after", "flag")
    t.eq(r.returncode, 0, "flag: import exits 0")
    t.eq(db_counts(db), (N + K, N + K, N, K), "flag: every mail stored once")
    t.eq(dc.folder_state("flag"), (N, N, 0), "flag: snapshots stay in INBOX, all \\Seen")
    t.eq(dc.count("flag", "snapkeep/failed"), K, "flag: other mail moved to snapkeep/failed")
    r = imp(db, "flag", "--after", "flag")
    t.eq(db_counts(db)[1], N + K, "flag: second run fetches nothing (UID checkpoint)")
    dc.append("flag", b"X-Test: again\r\n" + snaps[0])
    r = imp(db, "flag", "--after", "flag")
    t.eq((r.returncode, db_counts(db)[:2]), (0, (N + K + 1, N + K + 1)), "flag: a new arrival is taken once")
    t.eq(dc.folder_state("flag"), (N + 1, N + 1, 0), "flag: and flagged")

    # --- after = delete --------------------------------------------------------------------
    db = new_store(d, "delete")
    r = imp(db, "delete", "--after", "delete")
    t.eq(r.returncode, 0, "delete: import exits 0")
    t.eq(db_counts(db), (N + K, N + K, N, K), "delete: every mail stored once")
    t.eq(dc.count("delete"), 0, "delete: INBOX empty")
    t.eq(dc.count("delete", "snapkeep/failed"), K, "delete: other mail kept in snapkeep/failed")
    t.eq(dc.count("delete", "snapkeep/processed"), None, "delete: no processed folder")

    # --- after = keep ----------------------------------------------------------------------
    db = new_store(d, "keep")
    r = imp(db, "keep", "--after", "keep")
    t.eq(r.returncode, 0, "keep: import exits 0")
    t.eq(db_counts(db), (N + K, N + K, N, K), "keep: every mail stored once")
    t.eq(dc.folder_state("keep"), (N + K, 0, 0), "keep: mailbox unchanged, nothing marked \\Seen")
    r = imp(db, "keep", "--after", "keep")
    t.eq(db_counts(db)[1], N + K, "keep: second run fetches nothing")

    # --- an older server: COPY + STORE \Deleted + EXPUNGE, '.' separator ----------------
    db = new_store(d, "plain")
    r = imp(db, "plain", "--move-to", "done/snapshots")
    t.ok(r.returncode == 0, "no MOVE/UIDPLUS: import exits 0", r.stderr)
    t.eq(db_counts(db), (N + K, N + K, N, K), "no MOVE/UIDPLUS: every mail stored once")
    t.eq(dc.count("plain"), 0, "no MOVE/UIDPLUS: INBOX drained (COPY, \\Deleted, EXPUNGE)")
    t.ok(os.path.isdir(os.path.join(dc.maildir("plain"), ".done.snapshots")),
         "no MOVE/UIDPLUS: done/snapshots created as done.snapshots")
    t.eq(len(os.listdir(os.path.join(dc.maildir("plain"), ".done.snapshots", "cur"))) +
         len(os.listdir(os.path.join(dc.maildir("plain"), ".done.snapshots", "new"))), N,
         "no MOVE/UIDPLUS: snapshots copied once")

    # --- kill -9 in the middle of a large pass, then again --------------------------------
    big = []
    for rnd in range(4):
        big += [b"X-Round: %d\r\n" % rnd + m for m in snaps]
    dc.deliver("big", big)
    total = len(big)
    db = new_store(d, "big")
    args = [snapkeep, "import", "--db", db, "--password-file", pw, "--no-progress", "--batch-size", "20",
            dc.url("imap", "big")]
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    got = pl.wait_for(lambda: pl.count(db, "SELECT count(*) n FROM messages") >= total // 3, timeout=60)
    p.send_signal(signal.SIGKILL)
    p.wait()
    stored = pl.count(db, "SELECT count(*) n FROM messages")
    left = dc.count("big")
    t.ok(got and 0 < stored < total, "kill -9 in the middle of the pass (%d of %d stored)" % (stored, total))
    t.ok(left >= total - stored, "nothing was moved before it was stored (%d left)" % left)
    r = run(args, timeout=120)
    t.ok(r.returncode == 0, "the next run exits 0", r.stderr)
    t.eq(pl.count(db, "SELECT count(*) n FROM messages"), total, "every message stored once")
    t.eq(dc.count("big"), 0, "INBOX drained")
    t.eq(dc.count("big", "snapkeep/processed"), total, "every message moved once")
    again = pl.count(db, "SELECT count(*) n FROM intake_log") - total
    t.ok(0 <= again <= 20 + 8, "at most a batch fetched again (%d)" % again)

    # --- errors: clear messages, exit 75, no crash -------------------------------------------
    db = new_store(d, "errors")
    bad = pl.write_password(d, "wrong")
    r = run([snapkeep, "import", "--db", db, "--password-file", bad, "--no-progress", dc.url("imap", "errors")])
    t.eq(r.returncode, 75, "wrong password: exit 75")
    t.ok(b"login denied for user errors" in r.stderr and b"password_file" in r.stderr,
         "wrong password: says so", r.stderr)
    r = imp(db, "errors", url=dc.url("imap", "errors", "Nope"))
    t.eq(r.returncode, 75, "missing mailbox: exit 75")
    t.ok(b"mailbox Nope" in r.stderr and b"exist" in r.stderr, "missing mailbox: says so", r.stderr)
    r = imp(db, "errors", url="imap://errors@127.0.0.1:%d/INBOX" % pl.free_port())
    t.eq(r.returncode, 75, "no server: exit 75")
    t.ok(b"cannot reach 127.0.0.1" in r.stderr, "no server: says so", r.stderr)
    r = run([snapkeep, "import", "--db", db, "--no-progress", dc.url("imap", "errors")])
    t.eq(r.returncode, 75, "no password file: refused")
    t.ok(b"--password-file" in r.stderr, "no password file: says how", r.stderr)
    r = run([snapkeep, "import", "--db", db, "--no-progress", "imap://errors:pw@127.0.0.1/INBOX"])
    t.ok(r.returncode != 0 and b"password_file" in r.stderr, "a password in the url is refused", r.stderr)
    r = imp(db, "errors", "--starttls", "required")
    t.eq(r.returncode, 75, "STARTTLS required but not offered: refused")
    t.ok(b"does not offer STARTTLS" in r.stderr, "STARTTLS required: says so", r.stderr)
    st = pl.db_rows(db, "SELECT last_error FROM poll_status WHERE mailbox LIKE '%INBOX'")
    t.ok(st and st[0]["last_error"], "the last error is in poll_status", st)
finally:
    dc.stop()
    if t.failed:
        t.diag(dc.log())
    cleanup(d)
t.done()
