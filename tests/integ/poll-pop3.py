"""`snapkeep import pop3://...` against a real Dovecot: a maildrop of simulator
snapshots plus other mail is drained exactly once with after = delete, and
taken once but left in place with after = keep (UIDLs remembered, forgotten
when the message goes); a kill -9 in the middle of a pass followed by a new
run stores every message once and deletes every one; wrong credentials and
settings POP3 cannot follow give clear errors."""
import importlib.util
import os
import poplib
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sklib import Tap, cleanup, new_store, program, run, tempdir  # noqa: E402

spec = importlib.util.spec_from_file_location("poll_lib", os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                                        "poll-lib.py"))
pl = importlib.util.module_from_spec(spec)
spec.loader.exec_module(pl)

t = Tap()
pl.need_tools(t, [pl.DOVECOT])
snapkeep = program("snapkeep")
program("snapkeep-parse")
d = tempdir("sk-poll-pop3-")
dc = pl.Dovecot(os.path.join(d, "dovecot"), {"pdel": "", "pkeep": "", "pbig": "", "perr": ""})
pw = pl.write_password(d)
snaps = pl.sim_mails(os.path.join(d, "sim"), devices=40, days=14)
others = pl.other_mails(5)
N, K = len(snaps), len(others)
t.diag("%d simulator mails, %d other mails" % (N, K))


def imp(db, user, *opts):
    return run([snapkeep, "import", "--db", db, "--password-file", pw, "--no-progress",
                dc.url("pop3", user)] + list(opts), timeout=120)


def db_counts(db):
    return (pl.count(db, "SELECT count(*) n FROM messages"),
            pl.count(db, "SELECT count(*) n FROM intake_log"),
            pl.count(db, "SELECT count(*) n FROM snapshot_list"),
            pl.count(db, "SELECT count(*) n FROM intake_log WHERE outcome = 'not-snapshot'"))


try:
    dc.start()
    for u in ("pdel", "pkeep"):
        dc.deliver(u, snaps + others)

    # --- after = delete (the default for POP3) ----------------------------------------------
    db = new_store(d, "del")
    r = imp(db, "pdel")
    t.ok(r.returncode == 0, "delete: import exits 0", r.stderr)
    t.eq(db_counts(db), (N + K, N + K, N, K), "delete: every mail stored once")
    t.eq(dc.pop3_count("pdel"), 0, "delete: maildrop empty")
    rows = pl.db_rows(db, "SELECT source, source_name FROM intake_log ORDER BY id LIMIT 1")
    t.eq(rows[0]["source"], "pop3", "delete: arrivals from pop3, named by UIDL")
    r = imp(db, "pdel")
    t.eq((r.returncode, db_counts(db)[1]), (0, N + K), "delete: second run takes nothing")

    # --- after = keep -------------------------------------------------------------------------
    db = new_store(d, "keep")
    r = imp(db, "pkeep", "--after", "keep")
    t.ok(r.returncode == 0, "keep: import exits 0", r.stderr)
    t.eq(db_counts(db), (N + K, N + K, N, K), "keep: every mail stored once")
    t.eq(dc.pop3_count("pkeep"), N + K, "keep: maildrop unchanged")
    t.eq(pl.count(db, "SELECT count(*) n FROM poll_seen"), N + K, "keep: every UIDL remembered")
    r = imp(db, "pkeep", "--after", "keep")
    t.eq((r.returncode, db_counts(db)[1]), (0, N + K), "keep: second run fetches nothing")
    dc.deliver("pkeep", [b"X-Test: late\r\n" + snaps[0]])
    # Dovecot finishes the previous session's sync after its QUIT; the
    # arrival must be in the maildrop as a POP3 client sees it first.
    deadline = time.time() + 15
    while dc.pop3_count("pkeep") != N + K + 1 and time.time() < deadline:
        time.sleep(0.2)
    t.eq(dc.pop3_count("pkeep"), N + K + 1, "keep: the new arrival is in the maildrop")
    r = imp(db, "pkeep", "--after", "keep")
    t.eq(db_counts(db)[:2], (N + K + 1, N + K + 1), "keep: a new arrival is taken once")
    p = poplib.POP3("127.0.0.1", dc.pop3_port)
    p.user("pkeep")
    p.pass_(pl.PASSWORD)
    p.dele(1)
    p.dele(2)
    p.quit()
    r = imp(db, "pkeep", "--after", "keep")
    t.eq(pl.count(db, "SELECT count(*) n FROM poll_seen"), N + K - 1, "keep: UIDLs of removed mail forgotten")
    t.eq(db_counts(db)[1], N + K + 1, "keep: and nothing fetched again")

    # --- kill -9 in the middle, then again ------------------------------------------------
    big = []
    for rnd in range(3):
        big += [b"X-Round: %d\r\n" % rnd + m for m in snaps]
    dc.deliver("pbig", big)
    db = new_store(d, "big")
    args = [snapkeep, "import", "--db", db, "--password-file", pw, "--no-progress", "--batch-size", "20",
            dc.url("pop3", "pbig")]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    got = pl.wait_for(lambda: pl.count(db, "SELECT count(*) n FROM messages") >= len(big) // 3, timeout=60)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    stored = pl.count(db, "SELECT count(*) n FROM messages")
    t.ok(got and 0 < stored < len(big), "kill -9 in the middle of the pass (%d of %d stored)" % (stored, len(big)))
    t.eq(dc.pop3_count("pbig"), len(big), "no QUIT, so nothing was deleted")
    r = run(args, timeout=120)
    t.ok(r.returncode == 0, "the next run exits 0", r.stderr)
    t.eq(pl.count(db, "SELECT count(*) n FROM messages"), len(big), "every message stored once")
    t.eq(dc.pop3_count("pbig"), 0, "every message deleted")

    # --- errors --------------------------------------------------------------------------------
    db = new_store(d, "err")
    bad = pl.write_password(d, "wrong")
    r = run([snapkeep, "import", "--db", db, "--password-file", bad, "--no-progress", dc.url("pop3", "perr")])
    t.eq(r.returncode, 75, "wrong password: exit 75")
    t.ok(b"login denied for user perr" in r.stderr, "wrong password: says so", r.stderr)
    r = imp(db, "perr", "--after", "move")
    t.ok(r.returncode != 0 and b"after = delete or keep" in r.stderr, "after = move: refused for POP3", r.stderr)
    r = run([snapkeep, "import", "--db", db, "--password-file", pw, "--no-progress",
             "pop3://perr@127.0.0.1:%d/INBOX" % dc.pop3_port])
    t.ok(r.returncode != 0 and b"names no mailbox" in r.stderr, "a mailbox in a pop3 url is refused", r.stderr)
finally:
    dc.stop()
    if t.failed:
        t.diag(dc.log())
    cleanup(d)
t.done()
