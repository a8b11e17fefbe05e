"""`snapkeep check` as a monitoring plugin: exit codes 0-3, one status line
with performance data, one line per problem, thresholds as options."""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sklib import Tap, cleanup, examples, missing_store, new_store, program, run, tempdir  # noqa: E402

t = Tap()
snapkeep = program("snapkeep")
d = tempdir()
db = new_store(d)
NOW = "2025-03-09T12:00:00Z"  # just after the examples' snapshots

r = run([snapkeep, "check", "--db", missing_store(d)])
t.eq(r.returncode, 3, "missing database: UNKNOWN (3)")
t.ok(r.stdout.startswith(b"SNAPKEEP UNKNOWN"), "UNKNOWN status line", r.stdout)

r = run([snapkeep, "import", "-q", "--db", db] + [e[1] for e in examples()])
t.eq(r.returncode, 0, "examples imported", r.stderr)


def check(*args):
    r = run([snapkeep, "check", "--db", db, "--now", NOW] + list(args))
    lines = r.stdout.decode().splitlines()
    return r.returncode, lines


code, lines = check()
t.eq(code, 2, "an empty toner (0%, state out) is CRITICAL (2)")
status = lines[0]
t.ok(re.match(r"^SNAPKEEP CRITICAL - .* \| devices=3 supplies_low=\d+;;;0 supplies_out=2;;;0 overdue=0;;;0 new_errors=\d+;;;0$", status),
     "status line with performance data", status)
t.ok(any("PHB4165700" in l and "out" in l for l in lines[1:]), "detail names the device with the empty toner", lines)
t.ok(any("PHB0336102" in l and "4%" in l for l in lines[1:]), "detail names the 4% toner", lines)

code, lines = check("--serial", "PHB6820301", "--errors-hours", "1")
t.eq(code, 0, "a healthy device: OK (0)")
t.ok(lines[0].startswith("SNAPKEEP OK - 1 devices"), "OK status line", lines)

code, lines = check("--serial", "PHB6820301", "--warning-level", "35", "--errors-hours", "1")
t.eq(code, 1, "supplies under a raised warning level: WARNING (1)")
t.ok("supplies_low=2" in lines[0], "two supplies at or below 35% (31% and 30%)", lines[0])

code, lines = check("--serial", "PHB6820301", "--errors-hours", "24")
t.eq(code, 1, "an error event in the last 24 hours: WARNING")
t.ok(any("13.B2.D1" in l for l in lines), "the new error event is listed", lines)

# The fleet's error events (one statement over the fleet by time) are each
# device's (another statement, per device).
_, fleet = check("--no-supplies", "--no-overdue", "--errors-hours", "720")
per_device = []
for serial in ("PHB6820301", "PHB4165700", "PHB0336102"):
    per_device += check("--serial", serial, "--no-supplies", "--no-overdue", "--errors-hours", "720")[1][1:]
t.ok(len(per_device) > 1 and sorted(fleet[1:]) == sorted(per_device),
     "the fleet's error events are its devices' (%d)" % len(per_device), (fleet, per_device))
t.ok(re.search(r"new_errors=%d;" % len(per_device), fleet[0]) is not None, "and counted", fleet[0])

r = run([snapkeep, "check", "--db", db, "--now", "2025-04-30T00:00:00Z", "--no-supplies", "--no-errors"])
t.eq(r.returncode, 1, "devices silent for seven weeks: WARNING")
t.ok(b"overdue=3" in r.stdout, "three overdue devices", r.stdout)
r = run([snapkeep, "check", "--db", db, "--now", "2025-04-30T00:00:00Z", "--no-supplies", "--no-errors", "--stale-hours", "2000"])
t.eq(r.returncode, 0, "--stale-hours raises the limit for devices with one snapshot")

r = run([snapkeep, "check", "--db", db, "--serial", "NOPE"])
t.eq(r.returncode, 3, "unknown serial: UNKNOWN")
r = run([snapkeep, "check", "--db", db, "--warning-level", "5", "--critical-level", "10"])
t.eq(r.returncode, 3, "critical above warning: UNKNOWN")
r = run([snapkeep, "check", "--db", db, "--bogus"])
t.eq(r.returncode, 3, "unknown option: UNKNOWN")

cleanup(d)
t.done()
