# smtp-memory.py: snapkeepd's SMTP side never holds whole messages: 100
# concurrent sessions each sending a ~3.5 MB snapshot (snapkeep-sim
# --detailed-errors, or an example padded to that size) all get 250, every
# message is in the database, and the daemon's peak RSS (VmHWM) stays under
# 64 MB.  Parsing is switched off here ([intake] parse_workers = 0) so the
# figure is the SMTP and commit path's; bench/smtp measures the default
# configuration, parse workers included.
import importlib.util
import os
import re
import subprocess
import threading
import time

spec = importlib.util.spec_from_file_location(
    "smtplib_sk", os.path.join(os.path.dirname(os.path.abspath(__file__)), "smtp-lib.py"))
sk = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sk)

tap = sk.Tap()
sk.require_env(tap)
SESSIONS = 100
LIMIT_KB = 64 * 1024

d = sk.Daemon(tap, {"smtp": {"max_connections": "300", "max_connections_per_ip": "300"},
                    "intake": {"parse_workers": "0"}})
sim = os.path.join(sk.TOP_BUILDDIR, "snapkeep-sim")
big = []
if os.path.exists(sim):
    out = os.path.join(d.dir, "big")
    subprocess.run([sim, "--out", out, "-n", "2", "--test", "--detailed-errors", "-s", "5"],
                   check=True, capture_output=True)
    big = [sk.crlf(open(os.path.join(out, n), "rb").read()) for n in sorted(os.listdir(out))]
if not big:
    base = sk.crlf(sk.example())
    pad = b"X-Pad: " + b"p" * 70 + b"\r\n"
    big = [pad * (3500000 // len(pad)) + base]
big = [re.sub(rb"(?m)^\.", b"..", m) for m in big]
size_mb = sum(len(m) for m in big) / len(big) / 1e6
tap.ok(size_mb > 3.0, "messages of %.1f MB" % size_mb)
d.start()
with open("/proc/%d/status" % d.proc.pid) as f:
    idle_kb = int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))

start = threading.Barrier(SESSIONS)
replies = {}


def one(i):
    try:
        c = sk.Raw(d.port, timeout=300)
        c.send(b"EHLO mem.test\r\n")
        c.reply()
        start.wait()
        c.send(b"MAIL FROM:<m@fleet.test>\r\nRCPT TO:<snap@fleet.test>\r\nDATA\r\n")
        c.reply(), c.reply(), c.reply()
        msg = b"X-Session: %d\r\n" % i + big[i % len(big)]
        c.send(msg + b".\r\n")
        replies[i] = (c.reply(), sk.sha256(msg.replace(b"\r\n..", b"\r\n.")))
        c.close()
    except Exception as e:  # a failure is a missing 250 below
        replies[i] = (repr(e).encode(), None)


threads = [threading.Thread(target=one, args=(i,)) for i in range(SESSIONS)]
t0 = time.time()
for t in threads:
    t.start()
for t in threads:
    t.join()
elapsed = time.time() - t0
peak_kb = sk.rss_peak_kb(d.proc.pid)
ok = [i for i, (r, _) in replies.items() if r.startswith(b"250 2.0.0 Ok")]
tap.eq(len(ok), SESSIONS, "%d concurrent sessions of %.1f MB: all 250 (%.1f s)"
       % (SESSIONS, size_mb, elapsed))
stored = {r[0] for r in d.query("SELECT sha256 FROM intake_log")}
tap.ok(all(replies[i][1] in stored for i in ok), "every acknowledged message is in the database")
if os.environ.get("SK_SANITIZERS") == "yes":
    # ASan's shadow memory and quarantine make RSS meaningless as a bound.
    tap.ok(True, "peak RSS %.1f MB # SKIP not bounded under AddressSanitizer" % (peak_kb / 1024))
else:
    tap.ok(peak_kb < LIMIT_KB, "peak RSS %.1f MB (idle %.1f MB) is under 64 MB"
           % (peak_kb / 1024, idle_kb / 1024))
tap.eq(d.stop(), 0, "stop")
d.cleanup()
tap.done()
