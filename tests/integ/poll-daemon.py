"""snapkeepd's [poll.NAME] pollers against a real Dovecot: a snapshot arriving
while the poller waits in IMAP IDLE is taken within seconds (the interval is
five minutes); a kill -9 of snapkeepd in the middle of a large pass and a
restart leave every message stored once and moved once; wrong credentials and
a server that goes away are logged with clear errors and retried with backoff
until they are fixed, without a crash; SIGHUP starts a new section; `-n`
rejects a bad section.  On PostgreSQL, two snapkeepd nodes sharing the store
poll one mailbox: they take turns (a pass while the other's is under way is
skipped and logged), mail arriving while both wait in IDLE is taken once, and
a kill -9 of the node in the middle of its pass leaves the mailbox to the
other, which drains it: every message stored once and moved once."""
import importlib.util
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sklib import Tap, cleanup, is_pg, new_store, program, run, store_config, tempdir  # noqa: E402

spec = importlib.util.spec_from_file_location("poll_lib", os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                                        "poll-lib.py"))
pl = importlib.util.module_from_spec(spec)
spec.loader.exec_module(pl)

t = Tap()
pl.need_tools(t, [pl.DOVECOT])
snapkeepd = program("snapkeepd")
program("snapkeep-parse")
d = tempdir("sk-poll-daemon-")
dc = pl.Dovecot(os.path.join(d, "dovecot"), {"idle": "", "big": "", "away": "", "bad": "", "late": "",
                                                 "shared": "", "limited": ""})
pw = pl.write_password(d)
snaps = pl.sim_mails(os.path.join(d, "sim"), devices=40, days=14)
N = len(snaps)
conf = os.path.join(d, "snapkeep.conf")
db = new_store(d)


def section(name, user, extra="", interval=300):
    return ("[poll.%s]\nurl = %s\npassword_file = %s\ninterval = %d\nbackoff_min = 1\nbackoff_max = 2\n"
            "timeout = 5\n%s\n" % (name, dc.url("imap", user), pw, interval, extra))


def write_conf(sections, path=conf, state_dir=d):
    with open(path, "w") as f:
        f.write("[daemon]\nuser =\nstate_dir = %s\nlog_level = debug\n[store]\n%s"
                "[smtp]\nlisten = 127.0.0.1:0\n\n" % (state_dir, store_config(db)))
        f.write("".join(sections))


class Daemon:
    def __init__(self, path=conf, state_dir=d):
        self.log = os.path.join(state_dir, "snapkeepd.log")
        self.out = open(self.log, "ab")
        self.mark = self.out.tell()
        self.proc = subprocess.Popen([snapkeepd, "-f", "-c", path], stdout=self.out, stderr=self.out)
        if not pl.wait_for(lambda: "event=ready" in self.text()[self.mark:], timeout=15):
            raise RuntimeError("snapkeepd did not start: " + self.text()[-2000:])

    def text(self):
        with open(self.log, errors="replace") as f:
            return f.read()

    def kill(self, sig=signal.SIGTERM):
        self.proc.send_signal(sig)
        rc = self.proc.wait(timeout=30)
        self.out.close()
        return rc


class OneConnectionProxy:
    """A TCP proxy on 127.0.0.1 to the port: forwards its first connection,
    closes every later one as soon as it is accepted (refused counts them)."""

    def __init__(self, port):
        self.target = port
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.refused = 0
        self.open = []
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        first = True
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            if not first:
                self.refused += 1
                c.close()
                continue
            first = False
            u = socket.create_connection(("127.0.0.1", self.target))
            self.open += [c, u]
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=self.pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def pipe(a, b):
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                b.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.sock.close()
        for s in self.open:
            s.close()


def messages():
    return pl.count(db, "SELECT count(*) n FROM messages")


def arrivals():
    return pl.count(db, "SELECT count(*) n FROM intake_log")


def time_to_take(user, raw):
    """Appends raw to user's INBOX: (stored and moved within 20 s, seconds)."""
    before = arrivals()
    start = time.time()
    dc.append(user, raw)
    took = pl.wait_for(lambda: arrivals() > before and dc.count(user) == 0, timeout=20)
    return took, time.time() - start


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
    took, secs = time_to_take("idle", b"X-Test: idle\r\n" + snaps[7])
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

    # --- an IDLE connection refused: retried with backoff, not left for interval -------------
    # The poller reaches the server through a proxy that forwards its first
    # connection only (the one the passes keep) and closes every later one
    # (each IDLE connection) at once: the poller tries IDLE again after
    # backoff_min..backoff_max, a pass first each time, so new mail waits
    # seconds, not the 300 s interval.
    proxy = OneConnectionProxy(dc.imap_port)
    lim_dir = os.path.join(d, "node-limited")
    os.makedirs(lim_dir)
    lim_conf = os.path.join(lim_dir, "snapkeep.conf")
    write_conf([section("limited", "limited").replace(":%d/" % dc.imap_port, ":%d/" % proxy.port)],
               lim_conf, lim_dir)
    daemon = Daemon(lim_conf, lim_dir)
    t.ok(pl.wait_for(lambda: re.search(r"event=idle-failed name=limited [^\n]*retry_s=[12]\b", daemon.text()),
                     timeout=20),
         "an IDLE connection the server closes is logged with its retry in backoff_min..max",
         daemon.text()[-3000:])
    took, secs = time_to_take("limited", b"X-Test: limited\r\n" + snaps[8])
    t.ok(took and secs < 10, "without IDLE, new mail is taken by the retries in %.2f s (interval 300 s)" % secs)
    t.ok(proxy.refused >= 2, "the proxy refused the IDLE connections (%d)" % proxy.refused)
    t.eq(daemon.kill(signal.SIGTERM), 0, "snapkeepd stops with 0")
    daemon = None
    proxy.close()

    # --- two nodes, one mailbox (PostgreSQL): turns, IDLE, a node killed mid-pass ---------
    if not is_pg(db):
        t.skip("two nodes poll one mailbox: each message taken once", "PostgreSQL only (nodes sharing a store)")
    else:
        def node(name):
            nd = os.path.join(d, "node-" + name)
            os.makedirs(nd, exist_ok=True)
            path = os.path.join(nd, "snapkeep.conf")
            write_conf([section("shared", "shared", "batch_size = 20\n", interval=1)], path, nd)
            return Daemon(path, nd)

        def shared_rows():
            return pl.db_rows(db, "SELECT count(*) n, count(DISTINCT sha256) u FROM intake_log"
                                  " WHERE peer LIKE 'imap://shared@%'")[0]

        first = [b"X-Shared: first\r\n" + m for m in snaps[:120]]
        base = messages()
        dc.deliver("shared", first)
        nodes = {"a": node("a"), "b": node("b")}
        t.ok(pl.wait_for(lambda: dc.count("shared") == 0, timeout=60), "two nodes: the mailbox is drained")
        t.eq(messages(), base + len(first), "two nodes: every message stored once")
        t.eq(dc.count("shared", "snapkeep/processed"), len(first), "two nodes: every message moved once")
        r = shared_rows()
        t.eq((r["n"], r["u"]), (len(first), len(first)), "two nodes: no message taken by both (one arrival each)")
        t.ok(pl.wait_for(lambda: all("event=idle name=shared" in n.text() for n in nodes.values()), timeout=15),
             "two nodes: both wait in IDLE on the mailbox")

        # New mail wakes both nodes at once: one of them takes it.
        late = [b"X-Shared: late %d\r\n" % i + snaps[i] for i in range(8)]
        for m in late:
            dc.append("shared", m)
            time.sleep(0.2)
        t.ok(pl.wait_for(lambda: dc.count("shared") == 0, timeout=30), "two nodes in IDLE: new mail is taken")
        r = shared_rows()
        t.eq((r["n"], r["u"]), (len(first) + len(late),) * 2, "two nodes in IDLE: each new mail taken once")

        # Node b stops; node a starts a long pass; b comes back and finds
        # the mailbox taken; a dies in the middle; b drains the rest.
        t.eq(nodes["b"].kill(signal.SIGTERM), 0, "node b stops")
        third = [b"X-Shared: third\r\n" + m for m in snaps] + [b"X-Shared: third 2\r\n" + m for m in snaps]
        base = messages()
        dc.deliver("shared", third)
        t.ok(pl.wait_for(lambda: messages() > base, timeout=20), "node a takes new mail alone")
        nodes["b"] = node("b")
        b_mark = nodes["b"].mark
        skipped = pl.wait_for(lambda: re.search(r"event=pass-skipped name=shared [^\n]*another node",
                                                nodes["b"].text()[b_mark:]), timeout=20)
        t.ok(skipped, "node b skips the mailbox while node a's pass is under way, and logs it",
             nodes["b"].text()[-2000:])
        mid = pl.wait_for(lambda: messages() >= base + len(third) // 3, timeout=60)
        taken_before_kill = messages() - base
        t.ok(mid and taken_before_kill < len(third), "node a killed with SIGKILL in the middle of its pass "
             "(%d of %d taken)" % (taken_before_kill, len(third)))
        nodes["a"].kill(signal.SIGKILL)
        del nodes["a"]
        t.ok(pl.wait_for(lambda: dc.count("shared") == 0, timeout=90), "node b drains the rest of the mailbox")
        t.eq(messages(), base + len(third), "after the kill: every message stored once")
        t.eq(dc.count("shared", "snapkeep/processed"), len(first) + len(late) + len(third),
             "after the kill: every message moved once")
        r = shared_rows()
        total = len(first) + len(late) + len(third)
        t.eq(r["u"], total, "after the kill: every message arrived")
        t.ok(r["n"] - total <= 20 + 8, "after the kill: at most a batch fetched again (%d)" % (r["n"] - total))
        t.ok(re.search(r"event=pass name=shared [^\n]*taken=[1-9]", nodes["b"].text()[b_mark:]) is not None,
             "node b's passes took the mail node a left")
        t.eq(nodes.pop("b").kill(signal.SIGTERM), 0, "node b stops with 0")
finally:
    if daemon is not None:
        daemon.kill(signal.SIGKILL)
    for n in locals().get("nodes", {}).values():
        if n.proc.poll() is None:
            n.kill(signal.SIGKILL)
    dc.stop()
    if t.failed:
        t.diag(open(os.path.join(d, "snapkeepd.log"), errors="replace").read()[-4000:]
               if os.path.exists(os.path.join(d, "snapkeepd.log")) else "no daemon log")
        t.diag(dc.log())
    cleanup(d)
t.done()
