# systemd-notify.py: snapkeepd's readiness protocol (src/daemon/notify.c),
# as systemd's Type=notify sees it.  The test binds the unix datagram socket
# that $NOTIFY_SOCKET names and checks that
#  - READY=1 (with a STATUS=) arrives, and at that moment the SMTP and web
#    ports already accept: one connection attempt each, no retry;
#  - the parse workers do not inherit NOTIFY_SOCKET;
#  - SIGHUP gives RELOADING=1 with a current MONOTONIC_USEC, then READY=1;
#    a reload with a broken file still ends with READY=1 and says so;
#  - SIGTERM gives STOPPING=1 and exit 0;
#  - an abstract socket (@name) works too;
#  - a start that fails (port taken) reports STATUS= with the reason, never
#    READY=1, and exits 1.
import importlib.util
import os
import signal
import socket
import tempfile
import time

_spec = importlib.util.spec_from_file_location(
    "recipelib", os.path.join(os.path.dirname(os.path.abspath(__file__)), "recipe-lib.py"))
rl = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rl)

tap = rl.Tap()
SNAPKEEPD = rl.sk.program("snapkeepd")
work = tempfile.mkdtemp(prefix="sk-notify-")


def ready(m):
    return m.get("READY") == "1"


def children(pid):
    out = []
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            out += [int(c) for c in rl.read("/proc/%d/task/%s/children" % (pid, tid)).split()]
        except OSError:
            pass
    return out


# Fixed ports, so that the test knows them before the daemon logs anything.
smtp_port, web_port = rl.free_port(), rl.free_port()
notify = rl.Notify(work)
d = rl.Snapkeepd(SNAPKEEPD, work, {"smtp": {"listen": "127.0.0.1:%d" % smtp_port},
                                   "web": {"listen": "127.0.0.1:%d" % web_port}},
                 env={"NOTIFY_SOCKET": notify.address})
d.start(wait=False)
msg = notify.wait(ready, timeout=60)
# At once, before anything else: the ports must accept now.
try:
    with socket.create_connection(("127.0.0.1", smtp_port), timeout=10) as s:
        greeting = s.recv(512)
except OSError as e:
    greeting = repr(e).encode()
try:
    status, body = rl.http_get(web_port, "/healthz")
except OSError as e:
    status, body = None, repr(e)
tap.ok(msg is not None, "READY=1 arrives on $NOTIFY_SOCKET", notify.messages or d.log_text())
tap.ok(greeting.startswith(b"220 "), "when READY=1 arrives the SMTP port already greets (first "
       "attempt)", greeting)
tap.eq((status, body), (200, "ok\n"), "when READY=1 arrives the web port already answers "
       "/healthz (first attempt)")
tap.ok(msg is not None and msg.get("STATUS", "").startswith("Running"),
       "READY=1 comes with a STATUS= line", msg)
tap.ok("event=ready" in d.log_text(), "the log says event=ready as well")

# A stored message, so that a parse worker runs; it must not see the socket.
name, path, expected = rl.examples()[0]
rl.send_mail(smtp_port, "snapshots@example.com", rl.read(path, "rb"))
tap.ok(rl.wait_for(lambda: expected["serial"] in rl.db_serials(d.db), 60),
       "a snapshot is stored while running under the notify socket")
kids = children(d.proc.pid)
envs = []
for k in kids:
    try:
        envs.append(rl.read("/proc/%d/environ" % k, "rb"))
    except OSError:
        pass
tap.ok(envs and all(b"NOTIFY_SOCKET=" not in e for e in envs),
       "the parse workers (%d) do not inherit NOTIFY_SOCKET" % len(envs), kids)

# SIGHUP: RELOADING=1 + MONOTONIC_USEC, then READY=1.
notify.messages.clear()
before = time.monotonic()
d.proc.send_signal(signal.SIGHUP)
reloading = notify.wait(lambda m: m.get("RELOADING") == "1", 30)
again = notify.wait(ready, 30)
tap.ok(reloading is not None and again is not None
       and notify.messages.index(reloading) < notify.messages.index(again),
       "SIGHUP: RELOADING=1, then READY=1", notify.messages)
usec = int(reloading.get("MONOTONIC_USEC", "0")) if reloading else 0
tap.ok(before * 1e6 - 1e6 <= usec <= time.monotonic() * 1e6 + 1e6,
       "RELOADING=1 carries the current CLOCK_MONOTONIC in MONOTONIC_USEC", reloading)
tap.ok(again is not None and "reloaded" in again.get("STATUS", ""),
       "READY=1 after the reload says reloaded", again)

# A broken file: the old settings stay, READY=1 still follows.
good = rl.read(d.conf)
rl.write(d.conf, good + "[smtp]\nno_such_key = 1\n")
notify.messages.clear()
d.proc.send_signal(signal.SIGHUP)
again = notify.wait(ready, 30)
tap.ok(again is not None and "reload failed" in again.get("STATUS", "")
       and "no_such_key" in again.get("STATUS", ""),
       "a failed reload: READY=1 with a STATUS= naming the error", notify.messages)
rl.write(d.conf, good)
with socket.create_connection(("127.0.0.1", smtp_port), timeout=10) as s:
    tap.ok(s.recv(512).startswith(b"220 "), "still accepting after the failed reload")

# SIGTERM: STOPPING=1, exit 0.
notify.messages.clear()
d.proc.send_signal(signal.SIGTERM)
stopping = notify.wait(lambda m: m.get("STOPPING") == "1", 30)
tap.ok(stopping is not None and "Stopping" in stopping.get("STATUS", ""),
       "SIGTERM: STOPPING=1 with a STATUS=", notify.messages)
tap.eq(d.stop(), 0, "snapkeepd exits 0")
notify.close()

# An abstract socket.
work2 = tempfile.mkdtemp(prefix="sk-notify-")
notify = rl.Notify(work2, abstract=True)
d = rl.Snapkeepd(SNAPKEEPD, work2, env={"NOTIFY_SOCKET": notify.address})
d.start(wait=False)
tap.ok(notify.wait(ready, 60) is not None, "READY=1 over an abstract socket (%s)" % notify.address,
       d.log_text()[-2000:])
d.read_ports()
tap.ok(d.smtp_port is not None and rl.send_mail(d.smtp_port, "a@example.com",
                                                rl.read(path, "rb")) == {},
       "and the daemon takes mail")
tap.eq(d.stop(), 0, "snapkeepd exits 0")
notify.close()

# A start that fails: the SMTP port is taken.
work3 = tempfile.mkdtemp(prefix="sk-notify-")
notify = rl.Notify(work3)
blocker = socket.socket()
blocker.bind(("127.0.0.1", 0))
blocker.listen(1)
taken = blocker.getsockname()[1]
d = rl.Snapkeepd(SNAPKEEPD, work3, {"smtp": {"listen": "127.0.0.1:%d" % taken}},
                 env={"NOTIFY_SOCKET": notify.address})
d.start(wait=False)
try:
    rc = d.proc.wait(60)
except Exception:
    rc = None
d.stop()
notify.wait(lambda m: False, timeout=0.5)
failed = [m for m in notify.messages if m.get("STATUS", "").startswith("Start failed")]
tap.eq(rc, 1, "port taken: snapkeepd exits 1")
tap.ok(failed and "%d" % taken in failed[0]["STATUS"] and not any(map(ready, notify.messages)),
       "port taken: STATUS=Start failed naming the address, no READY=1", notify.messages)
blocker.close()
notify.close()

for w in (work, work2, work3):
    rl.sk.cleanup(w)
tap.done()
