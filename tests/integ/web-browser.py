# web-browser.py: the web view in a real browser (tests/browser/web-browser.mjs).
#
# Builds a database the simulator filled (snapkeep-sim: 12 devices, 120
# days of daily snapshots, a mix of models and dialects, written as .eml
# files and read by `snapkeep import`), adds the mail whose host name is
# <script>alert(1)</script>, starts snapkeepd with the web view on an
# ephemeral port, and runs the browser script (Debian's chromium, headless,
# through playwright-core) against it.  Its TAP lines are passed through.
# Screenshots: tests/browser/artifacts/ (SK_ARTIFACTS overrides), which CI
# keeps.  Needs: chromium (apt-get install chromium), node and npm.  The
# pinned playwright-core (tests/browser/package-lock.json) is used from
# tests/browser/node_modules when present, else installed with `npm ci`
# into the build tree (the source tree may be read-only, as in distcheck).
import importlib.util
import os
import shutil
import subprocess
import tempfile

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
