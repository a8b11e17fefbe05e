# smtp-load.py: durability under load against the real daemon.
#
# 1. SIGTERM during load: several connections deliver in a loop; one client
#    is in the middle of DATA when SIGTERM arrives.  That client's message
#    still gets 250 (then 421 4.3.2), idle sessions get 421 at once, new
#    connections are refused, the daemon exits 0, and every message that got
#    250 is in the database once.
# 2. kill -9 during a load of a few thousand messages over several
#    connections; restart on the same database: every message that got 250
#    is there exactly once (by the SHA-256 of the bytes the client sent),
#    and nothing else.  The clients then resend what was not acknowledged
#    and one acknowledged message (a lost 250): everything is there, the
#    resent one recorded as a duplicate arrival, not a second message; and
#    every arrival's outcome eventually leaves 'pending'.
import importlib.util
import os
import re
import signal
import socket
import threading
import time

spec = importlib.util.spec_from_file_location(
    "smtplib_sk", os.path.join(os.path.dirname(os.path.abspath(__file__)), "smtp-lib.py"))
sk = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sk)

tap = sk.Tap()
sk.require_env(tap)
BASE = sk.example()
QUEUED = re.compile(rb"^250 2\.0\.0 Ok: queued as (\d+)\r\n$")


class Loader(threading.Thread):
    """Delivers messages tagged name-N on one connection until told to stop
    or the connection breaks; records the SHA-256 of each acknowledged one."""

    def __init__(self, port, name, count, reconnect=False):
        super().__init__(daemon=True)
        self.port, self.name, self.count, self.reconnect = port, name, count, reconnect
        self.acked, self.unacked, self.replies = [], [], []
        self.stop_flag = False
        self.error = None

    def run(self):
        i = 0
        c = None
        try:
            while i < self.count and not self.stop_flag:
                if c is None:
                    c = sk.Raw(self.port)
                    c.send(b"EHLO load.test\r\n")
                    c.reply()
                msg = sk.unique_message(BASE, "%s-%d" % (self.name, i))
                c.send(b"MAIL FROM:<load@fleet.test>\r\nRCPT TO:<snap@fleet.test>\r\nDATA\r\n")
                r = c.reply() + c.reply() + c.reply()
                if not r.endswith(b"354 End data with <CR><LF>.<CR><LF>\r\n"):
                    self.replies.append(r)
                    self.unacked.append(msg)
                    break
                c.send(msg + b".\r\n")
                r = c.reply()
                self.replies.append(r)
                if QUEUED.match(r):
                    self.acked.append(sk.sha256(msg))
                else:
                    self.unacked.append(msg)
                    break
                i += 1
        except (OSError, ConnectionError) as e:
            self.error = e
            if i < self.count:
                self.unacked.append(sk.unique_message(BASE, "%s-%d" % (self.name, i)))
        finally:
            self.next_index = i + 1
            if c is not None:
                c.close()


def deliver_all(port, messages):
    c = sk.Raw(port)
    c.send(b"EHLO retry.test\r\n")
    c.reply()
    acked = []
    for msg in messages:
        c.send(b"MAIL FROM:<load@fleet.test>\r\nRCPT TO:<snap@fleet.test>\r\nDATA\r\n")
        c.reply(), c.reply(), c.reply()
        c.send(msg + b".\r\n")
        if QUEUED.match(c.reply()):
            acked.append(sk.sha256(msg))
    c.close()
    return acked


# ---- 1. SIGTERM during load ------------------------------------------------
d = sk.Daemon(tap, {"smtp": {"shutdown_timeout": "20s"}})
d.start()
loaders = [Loader(d.port, "term%d" % i, 100000) for i in range(4)]
for t in loaders:
    t.start()
idle = sk.Raw(d.port)
mid = sk.Raw(d.port)
mid.send(b"EHLO mid.test\r\n")
mid.reply()
mid.send(b"MAIL FROM:<mid@fleet.test>\r\nRCPT TO:<snap@fleet.test>\r\nDATA\r\n")
mid.reply(), mid.reply(), mid.reply()
mid_msg = sk.unique_message(BASE, "in-data-at-sigterm")
mid.send(mid_msg[:4000])
time.sleep(1.5)
d.send_signal(signal.SIGTERM)
d.wait_log(r"smtp: event=stopping")
tap.eq(idle.rest(), b"421 4.3.2 mx.test Service shutting down\r\n",
       "SIGTERM: an idle session gets 421 4.3.2 at once")
try:
    socket.create_connection(("127.0.0.1", d.port), timeout=2).close()
    refused = False
except OSError:
    refused = True
tap.ok(refused, "SIGTERM: new connections are refused")
time.sleep(0.5)
mid.send(mid_msg[4000:] + b".\r\n")
out = mid.rest()
m = re.match(rb"^250 2\.0\.0 Ok: queued as \d+\r\n421 4\.3\.2 mx\.test Service shutting down\r\n$",
             out)
tap.ok(m is not None, "a session in DATA at SIGTERM finishes: 250, then 421", out)
for t in loaders:
    t.join(30)
rc = d.stop(timeout=60)
tap.eq(rc, 0, "snapkeepd exits 0 after SIGTERM under load")
acked = [h for t in loaders for h in t.acked] + ([sk.sha256(mid_msg)] if m else [])
tap.ok(len(acked) > 20, "the load got messages through before SIGTERM (%d)" % len(acked))
rows = d.query("SELECT sha256, count(*) FROM intake_log GROUP BY sha256")
stored = dict(rows)
missing = [h for h in acked if stored.get(h) != 1]
tap.ok(not missing, "every acknowledged message is in the database once (%d)" % len(acked),
       "missing or doubled: %r" % missing[:5])
tap.ok(all(not t.is_alive() for t in loaders), "every loading client was answered or closed")
d.cleanup()

# ---- 2. kill -9 during a load of a few thousand messages --------------------
d = sk.Daemon(tap, {"intake": {"parse_workers": "1"}})
d.start()
N, CONNS = 750, 4
loaders = [Loader(d.port, "crash%d" % i, N) for i in range(CONNS)]
for t in loaders:
    t.start()
deadline = time.time() + 120
while time.time() < deadline:
    if sum(len(t.acked) for t in loaders) >= 1000:
        break
    time.sleep(0.05)
d.proc.kill()  # SIGKILL
d.proc.wait()
for t in loaders:
    t.join(30)
acked = [h for t in loaders for h in t.acked]
tap.ok(len(acked) >= 1000, "kill -9 after %d acknowledged messages" % len(acked))
rows = d.query("SELECT sha256, count(*) FROM intake_log GROUP BY sha256")
stored = dict(rows)
missing = [h for h in acked if h not in stored]
doubled = [h for h, n in stored.items() if n != 1]
tap.ok(not missing, "after kill -9: every acknowledged message is in the database",
       "%d missing, e.g. %r" % (len(missing), missing[:3]))
tap.ok(not doubled, "after kill -9: no message twice", doubled[:3])
extra = set(stored) - set(acked)
tap.ok(len(extra) <= CONNS, "at most one unacknowledged message per connection was committed "
       "(its 250 was lost in the kill): %d" % len(extra))
d.log.close()
d.start()
rows = d.query("SELECT count(*) FROM intake_log")
tap.eq(rows[0][0], len(stored), "restart on the same database: the same arrivals")
# The clients retry what they did not get a 250 for, plus one acknowledged
# message whose 250 they "lost".
retry = [msg for t in loaders for msg in t.unacked]
for t in loaders:
    for i in range(t.next_index, N):
        retry.append(sk.unique_message(BASE, "%s-%d" % (t.name, i)))
lost_ack = sk.unique_message(BASE, "crash0-0")
retried = deliver_all(d.port, retry + [lost_ack])
tap.eq(len(retried), len(retry) + 1, "the retries are all acknowledged")
rows = d.query("SELECT sha256, count(*), min(outcome), max(outcome) FROM intake_log "
               "GROUP BY sha256")
counts = {r[0]: r[1] for r in rows}
all_messages = set(acked) | set(retried)
tap.eq(len(all_messages), N * CONNS, "every message of the load acknowledged in the end")
tap.ok(all(h in counts for h in all_messages), "every acknowledged message is stored")
dup = sk.sha256(lost_ack)
tap.eq(counts.get(dup), 2, "the resent message has a second arrival")
tap.eq(d.query("SELECT count(*) FROM messages WHERE sha256 = ?", (dup,))[0][0], 1,
       "but one stored message")
tap.eq(d.query("SELECT outcome FROM intake_log WHERE sha256 = ? ORDER BY id", (dup,))[-1][0],
       "duplicate", "recorded as a duplicate arrival")
deadline = time.time() + 240
pending = None
while time.time() < deadline:
    pending = d.query("SELECT count(*) FROM intake_log WHERE outcome = 'pending'")[0][0]
    if pending == 0:
        break
    time.sleep(1)
tap.eq(pending, 0, "every arrival's outcome leaves 'pending' (parsed after the restart)")
tap.eq(d.stop(), 0, "stop")
d.cleanup()
tap.done()
