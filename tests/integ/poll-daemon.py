"""snapkeepd's [poll.NAME] pollers against a real Dovecot: a snapshot arriving
while the poller waits in IMAP IDLE is taken within seconds (the interval is
five minutes); a kill -9 of snapkeepd in the middle of a large pass and a
restart leave every message stored once and moved once; wrong credentials and
a server that goes away are logged with clear errors and retried with backoff
until they are fixed, without a crash; SIGHUP starts a new section; `-n`
rejects a bad section."""
import importlib.util
import os
import re
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
pl.need_tools(t, [pl.DOVECOT])
snapkeepd = program("snapkeepd")
program("snapkeep-parse")
d = tempdir("sk-poll-daemon-")
dc = pl.Dovecot(os.path.join(d, "dovecot"), {"idle": "", "big": "", "away": "", "bad": "", "late": ""})
pw = pl.write_password(d)
snaps = pl.sim_mails(os.path.join(d, "sim"), devices=40, days=14)
N = len(snaps)
conf = os.path.join(d, "snapkeep.conf")
db = new_store(d)


def section(name, user, extra=""):
    return ("[poll.%s]\nurl = %s\npassword_file = %s\ninterval = 300\nbackoff_min = 1\nbackoff_max = 2\n"
            "timeout = 5\n%s\n" % (name, dc.url("imap", user), pw, extra))


def write_conf(sections):
    with open(conf, "w") as f:
        f.write("[daemon]\nuser =\nstate_dir = %s\nlog_level = debug\n[store]\n%s"
                "[smtp]\nlisten = 127.0.0.1:0\n\n" % (d, store_config(db)))
        f.write("".join(sections))


class Daemon:
    def __init__(self):
        self.log = os.path.join(d, "snapkeepd.log")
        self.out = open(self.log, "ab")
        self.proc = subprocess.Popen([snapkeepd, "-f", "-c", conf], stdout=self.out, stderr=self.out)
        if not pl.wait_for(lambda: "event=ready" in self.text(), timeout=15):
            raise RuntimeError("snapkeepd did not start: " + self.text()[-2000:])

    def text(self):
        with open(self.log, errors="replace") as f:
            return f.read()

    def kill(self, sig=signal.SIGTERM):
        self.proc.send_signal(sig)
        rc = self.proc.wait(timeout=30)
        self.out.close()
        return rc


def messages():
    return pl.count(db, "SELECT count(*) n FROM messages")


def arrivals():
    return pl.count(db, "SELECT count(*) n FROM intake_log")


daemon = None
try:
    dc.start()
    write_conf([section("broken", "idle", "after = sometimes\n")])
    r = run([snapkeepd, "-n", "-c", conf])
    t.ok(r.returncode != 0 and b"after" in r.stderr and b"sometimes" in r.stderr, "-n: a bad section is refused",
         r.stderr)

    # --- IDLE: new mail is taken within seconds -------------------------------------------
    big = []
    for rnd in range(4):
        big += [b"X-Round: %d\r\n" % rnd + m for m in snaps]
    dc.deliver("big", big)
    dc.deliver("idle", snaps[:5])
    write_conf([section("idle", "idle"), section("big", "big", "batch_size = 20\n")])
    r = run([snapkeepd, "-n", "-c", conf])
    t.ok(r.returncode == 0, "-n: the poll sections are accepted", r.stderr)
    daemon = Daemon()
    t.ok(pl.wait_for(lambda: "event=idle name=idle" in daemon.text(), timeout=15), "the idle poller waits in IDLE")
    pl.wait_for(lambda: dc.count("idle") == 0, timeout=15)
    before = arrivals()
    start = time.time()
    dc.append("idle", b"X-Test: idle\r\n" + snaps[7])
    took = pl.wait_for(lambda: arrivals() > before and dc.count("idle") == 0, timeout=20)
    secs = time.time() - start
    t.ok(took and secs < 5, "a mail arriving during IDLE is stored and moved in %.2f s (interval 300 s)" % secs)

    # --- kill -9 in the middle of the big pass ---------------------------------------------
    got = pl.wait_for(lambda: messages() >= 6 + len(big) // 3, timeout=60)
    daemon.kill(signal.SIGKILL)
    daemon = None
    stored = messages()
    t.ok(got and stored < 6 + len(big), "kill -9 of snapkeepd in the middle of the pass (%d stored)" % stored)
    daemon = Daemon()
    done = pl.wait_for(lambda: dc.count("big") == 0, timeout=60)
    t.ok(done, "after the restart the mailbox is drained")
    big_db = pl.count(db, "SELECT count(*) n FROM intake_log WHERE peer LIKE 'imap://big@%'")
    t.eq(messages(), 6 + len(big), "every message stored once")
    t.eq(dc.count("big", "snapkeep/processed"), len(big), "every message moved once")
    t.ok(big_db - len(big) <= 20 + 8, "at most a batch fetched again (%d)" % (big_db - len(big)))

    # --- wrong password and a server that goes away: errors, retries, recovery -----------------
    bad_pw = pl.write_password(d, "wrong")
    with open(conf, "a") as f:
        f.write(section("bad", "bad").replace(pw, bad_pw))
        f.write(section("late", "late"))
    dc.deliver("bad", snaps[:3])
    daemon.proc.send_signal(signal.SIGHUP)
    t.ok(pl.wait_for(lambda: "event=start name=late" in daemon.text(), timeout=10), "SIGHUP starts a new section")
    t.ok(pl.wait_for(lambda: "login denied for user bad" in daemon.text(), timeout=10),
         "wrong password: a clear error in the log")
    t.ok(pl.wait_for(lambda: len(re.findall(r"event=retry name=bad", daemon.text())) >= 2, timeout=10),
         "wrong password: retried with backoff")
    t.ok("event=reload kept=2 stopped=0 started=2" in daemon.text(), "SIGHUP leaves the unchanged pollers running")
    with open(bad_pw, "w") as f:
        f.write(pl.PASSWORD + "\n")
    t.ok(pl.wait_for(lambda: dc.count("bad") == 0, timeout=15), "password fixed: the next retry drains the mailbox")
    t.ok("event=recovered name=bad" in daemon.text(), "recovery is logged")

    dc.stop()
    t.ok(pl.wait_for(lambda: re.search(r"pass-failed name=(idle|late)[^\n]*(cannot reach|lost)", daemon.text()),
                     timeout=15), "server gone: a clear error in the log")
    t.ok(daemon.proc.poll() is None, "server gone: snapkeepd keeps running")
    dc.start()
    dc.append("late", b"X-Test: back\r\n" + snaps[9])
    t.ok(pl.wait_for(lambda: dc.count("late") == 0, timeout=20), "server back: the poller recovers and takes new mail")
    st = pl.db_rows(db, "SELECT mailbox, last_error FROM poll_status WHERE mailbox LIKE 'imap://late@%'")
    t.ok(st and st[0]["last_error"] is None, "poll_status shows the recovery", st)
    rc = daemon.kill(signal.SIGTERM)
    daemon = None
    t.eq(rc, 0, "SIGTERM: snapkeepd stops the pollers and exits 0")
finally:
    if daemon is not None:
        daemon.kill(signal.SIGKILL)
    dc.stop()
    if t.failed:
        t.diag(open(os.path.join(d, "snapkeepd.log"), errors="replace").read()[-4000:]
               if os.path.exists(os.path.join(d, "snapkeepd.log")) else "no daemon log")
        t.diag(dc.log())
    cleanup(d)
t.done()
