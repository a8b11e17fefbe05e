# web-browser.py: the web view in a real browser (tests/browser/web-browser.mjs).
#
# Builds a database the simulator filled (snapkeep-sim: 12 devices, 120
# days of daily snapshots, a mix of models and dialects, written as .eml
# files and read by `snapkeep import`), adds the mail whose host name is
# <script>alert(1)</script>, starts snapkeepd with the web view on an
# ephemeral port, checks each current supply's level per day in the API
# against the store's reports, and runs the browser script (Debian's chromium, headless,
# through playwright-core) against it.  Its TAP lines are passed through.
# Screenshots: tests/browser/artifacts/ (SK_ARTIFACTS overrides), which CI
# keeps.  Needs: chromium (apt-get install chromium), node and npm.  The
# pinned playwright-core (tests/browser/package-lock.json) is used from
# tests/browser/node_modules when present, else installed with `npm ci`
# into the build tree (the source tree may be read-only, as in distcheck).
import calendar
import importlib.util
import json
import os
import shutil
import subprocess
import tempfile
import time

spec = importlib.util.spec_from_file_location(
    "weblib", os.path.join(os.path.dirname(os.path.abspath(__file__)), "web-lib.py"))
w = importlib.util.module_from_spec(spec)
spec.loader.exec_module(w)

tap = w.Tap()
browser_dir = os.path.join(w.TOP_SRCDIR, "tests", "browser")
node = shutil.which("node")
if node is None:
    tap.bail("node is missing: apt-get install nodejs npm")
if not os.path.exists("/usr/bin/chromium"):
    tap.bail("/usr/bin/chromium is missing: apt-get install chromium")
src_browser_dir = browser_dir
if not os.path.isdir(os.path.join(browser_dir, "node_modules", "playwright-core")):
    # ESM resolves packages from the script's folder: run a copy beside them.
    browser_dir = os.path.join(w.TOP_BUILDDIR, "tests", "browser")
    os.makedirs(browser_dir, exist_ok=True)
    for f in os.listdir(src_browser_dir):
        if f.endswith((".mjs", ".json")):
            shutil.copyfile(os.path.join(src_browser_dir, f), os.path.join(browser_dir, f))
    if not os.path.isdir(os.path.join(browser_dir, "node_modules", "playwright-core")):
        npm = shutil.which("npm")
        if npm is None:
            tap.bail("npm is missing: apt-get install npm")
        r = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                           cwd=browser_dir, capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            tap.bail("npm ci in %s failed: %s" % (browser_dir, (r.stdout + r.stderr)[-2000:]))

artifacts = os.environ.get("SK_ARTIFACTS", os.path.join(src_browser_dir, "artifacts"))
try:
    os.makedirs(artifacts, exist_ok=True)
    probe = os.path.join(artifacts, ".probe")
    open(probe, "w").close()
    os.unlink(probe)
except OSError:
    artifacts = os.path.join(w.TOP_BUILDDIR, "tests", "browser-artifacts")
    os.makedirs(artifacts, exist_ok=True)

work = tempfile.mkdtemp(prefix="sk-web-browser-")
db = w.sklib.new_store(work)
mails = os.path.join(work, "mails")
d = None
try:
    r = subprocess.run([w.program(tap, "snapkeep-sim"), "--seed", "11", "--devices", "12",
                        "--start", "2025-01-01", "--days", "120", "--schedule", "1d",
                        "--log-capacity", "40", "--out", mails, "-q"], capture_output=True, text=True)
    if r.returncode != 0:
        tap.bail("snapkeep-sim failed: " + r.stderr[-2000:])
    with open(os.path.join(mails, "zz-xss.eml"), "wb") as f:
        f.write(w.xss_mail())
    r = subprocess.run([w.program(tap, "snapkeep"), "import", "--db", db, mails],
                       capture_output=True, text=True, timeout=900)
    tap.ok(r.returncode == 0, "the simulator's mails are imported", r.stderr[-2000:])
    n = len(os.listdir(mails))
    stored = w.sklib.db_rows(db, "SELECT count(*) n FROM snapshots")[0]["n"]
    tap.ok(stored == n, "every mail became a snapshot (%d of %d)" % (stored, n))

    d = w.WebDaemon(tap, workdir=work, db=db).start()

    # Each current supply's level per day (days to empty) against the
    # least-squares slope of its reports read from the store here: its 60
    # newest by snapshot, those of the last recent_days (30) before its
    # latest report, at least 3.
    def slope(supply_id, reported):
        pts = sorted((calendar.timegm(time.strptime(r["taken_utc"], "%Y-%m-%dT%H:%M:%SZ")),
                      r["level_percent"]) for r in w.sklib.db_rows(
            db, "SELECT taken_utc, level_percent FROM supply_history WHERE supply_id = ?"
                " AND level_percent IS NOT NULL ORDER BY snapshot_id DESC LIMIT 60", (supply_id,)))
        keep = []
        for t, v in reversed(pts):
            if len(keep) >= 3 and reported - t > 30 * 86400:
                break
            keep.insert(0, (t, v))
        if len(keep) < 2:
            return None
        xs = [(t - keep[0][0]) / 86400.0 for t, _ in keep]
        ys = [v for _, v in keep]
        n = len(keep)
        den = n * sum(x * x for x in xs) - sum(xs) ** 2
        if abs(den) < 1e-9:
            return None
        return (n * sum(x * y for x, y in zip(xs, ys)) - sum(xs) * sum(ys)) / den

    checked, wrong = 0, []
    for r in w.sklib.db_rows(db, "SELECT serial FROM device_status ORDER BY serial"):
        st, _, body = w.request(d.url("/api/devices/%s/supplies" % r["serial"]))
        for s in json.loads(body)["supplies"] if st == 200 else [{"status": st}]:
            reported = s.get("reported_utc") or "1970-01-01T00:00:00Z"
            want = slope(s.get("supply_id"),
                         calendar.timegm(time.strptime(reported, "%Y-%m-%dT%H:%M:%SZ")))
            got = s.get("level_per_day")
            checked += want is not None
            if (want is None) != (got is None) or (want is not None and abs(want - got) > 0.0051):
                wrong.append((r["serial"], s.get("supply"), got, want))
    tap.ok(checked >= 40 and not wrong, "api supplies: level per day from each supply's newest"
           " reports (%d supplies)" % checked, wrong[:5])
    env = dict(os.environ, SK_WEB_URL="http://127.0.0.1:%d" % d.web_port,
               SK_XSS_SERIAL=w.XSS_SERIAL, SK_ARTIFACTS=artifacts)
    r = subprocess.run([node, os.path.join(browser_dir, "web-browser.mjs")], cwd=browser_dir,
                       env=env, capture_output=True, text=True, timeout=600)
    # Pass the script's TAP lines through, renumbered after ours.
    inner_fail = False
    for line in r.stdout.splitlines():
        if line.startswith("ok ") or line.startswith("not ok "):
            good = line.startswith("ok ")
            name = line.split(" - ", 1)[1] if " - " in line else line
            inner_fail |= not good
            tap.ok(good, "browser: " + name)
        elif line.startswith("# "):
            print(line)
        elif line.startswith("Bail out!"):
            tap.bail(line[len("Bail out! "):])
    tap.ok(r.returncode == 0 or inner_fail, "the browser script ran to its end", r.stderr[-3000:])
    tap.ok(os.path.exists(os.path.join(artifacts, "device.png")),
           "screenshots saved in " + artifacts)
finally:
    if d is not None:
        d.stop()
    shutil.rmtree(work, ignore_errors=True)
tap.done()
