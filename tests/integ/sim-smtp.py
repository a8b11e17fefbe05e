#!/usr/bin/python3
# sim-smtp.py: snapkeep-sim against a real SMTP server (Debian's aiosmtpd,
# in this process, on 127.0.0.1 with an ephemeral port), compared with the
# manifest: every mail reported sent arrived byte for byte (SHA-256) from
# the device's address; 4xx replies were retried; the oversized mail was
# refused (552); the mail dropped in DATA never arrived.  Also checks that
# the program is deterministic (same seed, same .eml bytes) and that
# --maildir delivers into new/.  TAP output.
import glob
import hashlib
import json
import os
import socket
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sklib import Tap, cleanup, program, run, tempdir  # noqa: E402

t = Tap()
try:
    from aiosmtpd.controller import Controller
except ImportError:
    t.bail("aiosmtpd is missing: apt-get install python3-aiosmtpd")

sim = program("snapkeep-sim")


class Handler:
    """Keeps every message's raw bytes; refuses the first attempt of some
    messages with 451 so that the sender must retry."""

    def __init__(self):
        self.lock = threading.Lock()
        self.received = []
        self.seen = set()
        self.tempfails = 0

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content
        digest = hashlib.sha256(raw).hexdigest()
        with self.lock:
            if digest not in self.seen and int(digest[:2], 16) % 4 == 0:
                self.seen.add(digest)
                self.tempfails += 1
                return "451 4.3.0 Try again later"
            self.seen.add(digest)
            self.received.append((envelope.mail_from, list(envelope.rcpt_tos), raw, digest))
        return "250 2.0.0 OK queued"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


tmp = tempdir(prefix="sim-smtp-")
handler = Handler()
port = free_port()
controller = Controller(handler, hostname="127.0.0.1", port=port, data_size_limit=1500000)
controller.start()

manifest = os.path.join(tmp, "manifest.jsonl")
args = [sim, "--smtp", "smtp://127.0.0.1:%d" % port, "--to", "intake@lab.example",
        "--to", "copy@lab.example", "-n", "6", "--seed", "45", "--start", "2025-03-01",
        "--days", "10", "--connections", "3", "--manifest", manifest,
        "--faults", "oversized,drop_in_data,duplicate_resend,alert_mail,slow_sender,clock_skew",
        "--fault-rate", "0.4", "--oversize-mb", "2", "--slow-bps", "400000",
        "--retry-base-ms", "50", "--variants", "mix", "--log-capacity", "60"]
proc = run(args, timeout=120)
controller.stop()
summary = proc.stderr.decode(errors="replace")
# Exit 3 means some mail failed for good: the oversized one is meant to.
t.ok(proc.returncode in (0, 3), "snapkeep-sim --smtp ran (exit %d)" % proc.returncode)
lines = [json.loads(l) for l in open(manifest)] if os.path.exists(manifest) else []
t.ok(len(lines) >= 10, "manifest has %d lines" % len(lines))

by_digest = {}
for mail_from, rcpts, raw, digest in handler.received:
    by_digest.setdefault(digest, []).append((mail_from, rcpts, raw))

sent = [l for l in lines if l["delivery"]["status"] == "sent"]
failed = [l for l in lines if l["delivery"]["status"] == "failed"]
dropped = [l for l in lines if l["delivery"]["status"] == "dropped"]
t.ok(sent, "%d mails sent" % len(sent))
missing = [l["message_id"] for l in sent if l["sha256"] not in by_digest]
t.ok(not missing, "every sent mail arrived byte for byte (missing: %s)" % missing[:3])
wrong_from = [l["message_id"] for l in sent
              if l["sha256"] in by_digest and by_digest[l["sha256"]][0][0] != l["from"]]
t.ok(not wrong_from, "envelope sender is the device's (or forwarder's) address")
t.ok(all(r[1] == ["intake@lab.example", "copy@lab.example"]
         for v in by_digest.values() for r in v), "both recipients on every mail")
t.ok(len(handler.received) == len(sent),
     "arrivals (%d) = mails reported sent (%d)" % (len(handler.received), len(sent)))
manifest_digests = {l["sha256"] for l in lines}
t.ok(all(d in manifest_digests for d in by_digest), "nothing arrived that the manifest lacks")

# Retries: the 451s were answered by retries, which the summary counts.
retried = [l for l in sent if l["delivery"]["attempts"] > 1]
t.ok(handler.tempfails > 0 and len(retried) == handler.tempfails,
     "every 451 retried (%d temp failures, %d retried mails)" % (handler.tempfails, len(retried)))
t.ok("retried=%d" % handler.tempfails in summary, "summary counts the retries")
t.ok("latency_ms p50=" in summary and "msg_per_s=" in summary, "summary has rate and latencies")

# Faults.
over = [l for l in lines if l["fault"] == "oversized"]
t.ok(over and all(l["delivery"]["status"] == "failed" and l["delivery"].get("reply_code") == 552
                  for l in over), "oversized mail refused with 552 (%d)" % len(over))
t.ok(all(l["fault"] == "oversized" for l in failed), "only the oversized mails failed")
drops = [l for l in lines if l["fault"] == "drop_in_data"]
t.ok(drops and all(l["delivery"]["status"] == "dropped" and l["sha256"] not in by_digest
                   for l in drops), "mail dropped in DATA never arrived (%d)" % len(drops))
t.ok(len(dropped) == len(drops), "dropped = drop_in_data faults")
dups = [l for l in lines if l["fault"] == "duplicate_resend"]
t.ok(dups and all(len(by_digest.get(l["sha256"], [])) == 2 for l in dups),
     "duplicate resend arrived twice with the same bytes (%d)" % len(dups))
alerts = [l for l in lines if l.get("kind") == "alert"]
t.ok(alerts and all(l["sha256"] in by_digest and b"Device.xml" not in by_digest[l["sha256"]][0][2]
                    for l in alerts), "alert mails arrived without a Device.xml (%d)" % len(alerts))
slow = [l for l in lines if l["fault"] == "slow_sender"]
t.ok(slow and all(l["delivery"]["status"] == "sent" for l in slow),
     "slow sender delivered (%d)" % len(slow))
skew = [l for l in lines if l["fault"] == "clock_skew"]
t.ok(skew and all(l["clock_skew_s"] != 0 and l["taken_utc"] != l["true_utc"] for l in skew),
     "clock skew marked with both times (%d)" % len(skew))
crlf = all(b"\n" not in raw.replace(b"\r\n", b"") for v in by_digest.values() for _, _, raw in v)
t.ok(crlf, "SMTP mails use CRLF only")

# Determinism of the program: same seed, same bytes; another seed differs.
def eml_set(seed, name):
    d = os.path.join(tmp, name)
    r = run([sim, "--out", d, "-n", "4", "--seed", str(seed), "--start", "2025-01-01",
             "--days", "8", "--variants", "mix", "--faults", "all", "--fault-rate",
             "0.3", "--oversize-mb", "1", "-q", "--log-capacity", "40"], timeout=120)
    if r.returncode != 0:
        t.bail("snapkeep-sim --out (seed %d) exited %d: %s"
               % (seed, r.returncode, r.stderr.decode(errors="replace")[-500:]))
    return {os.path.basename(p): open(p, "rb").read() for p in glob.glob(d + "/*.eml")}

a, b, c = eml_set(9, "a"), eml_set(9, "b"), eml_set(10, "c")
t.ok(a and a == b, "same seed, same %d files byte for byte" % len(a))
t.ok(not set(a.values()) & set(c.values()), "another seed, other mails")

# Maildir: new/ holds the mails, tmp/ is empty.
md = os.path.join(tmp, "md")
r = run([sim, "--maildir", md, "-n", "3", "--test", "--start", "2025-05-05T12:00:00Z",
         "-q", "--log-capacity", "20"], timeout=60)
t.ok(r.returncode == 0 and len(os.listdir(os.path.join(md, "new"))) == 3
     and not os.listdir(os.path.join(md, "tmp")), "--maildir --test delivers one mail per device")

# Accelerated real time: 2 simulated days at 345600x take about 0.5 s.
sp = os.path.join(tmp, "speed")
import time as _time
t0 = _time.monotonic()
r = run([sim, "--out", sp, "-n", "3", "--speed", "345600", "--days", "2", "--start",
         "2025-01-01", "--schedule", "1d", "-q", "--log-capacity", "20"], timeout=60)
elapsed = _time.monotonic() - t0
t.ok(r.returncode == 0 and len(os.listdir(sp)) == 6 and 0.4 <= elapsed < 10,
     "--speed paces the run (%.2f s for 2 days at 345600x)" % elapsed)

cleanup(tmp)
t.done()
