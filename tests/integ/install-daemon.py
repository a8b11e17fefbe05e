# install-daemon.py: `make install DESTDIR=...` from the build tree, the
# files it installs, and the INSTALLED programs run from there.
#
#  1. make install into a temporary DESTDIR: the programs (snapkeep-parse in
#     pkglibexecdir), the four man pages, the schema migrations, the web
#     assets, the sample configuration, the systemd unit and sysusers file,
#     the state directory and the recipes land where the configured
#     directories say, with the source's bytes; an admin's snapkeep.conf
#     survives a second make install.
#  2. In a private mount namespace the DESTDIR tree is laid over the real
#     directories (overlayfs, read-only), so the installed programs run at
#     their configured paths with nothing from the build tree: snapkeepd
#     reads the admin's $(sysconfdir)/snapkeep/snapkeep.conf by default,
#     finds $(pkglibexecdir)/snapkeep-parse by itself, reports READY=1 on
#     $NOTIFY_SOCKET, takes the example snapshots over SMTP (smtplib) and
#     serves them on its web view; the installed snapkeep reads them back.
#  3. make uninstall removes everything but the admin's snapkeep.conf.
# Needs root (the mount namespace); the rest is loopback and temp dirs.
import ctypes
import filecmp
import importlib.util
import json
import os
import re
import shutil
import subprocess
import tempfile

_spec = importlib.util.spec_from_file_location(
    "recipelib", os.path.join(os.path.dirname(os.path.abspath(__file__)), "recipe-lib.py"))
rl = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rl)

tap = rl.Tap()
SRC = rl.TOP_SRCDIR
DIRS = ["prefix", "bindir", "sbindir", "pkglibexecdir", "sysconfdir", "localstatedir", "mandir",
        "pkgdatadir", "docdir", "systemdsystemunitdir", "sysusersdir", "man_MANS",
        "SK_SCHEMA_FILES", "SK_WEB_FILES", "PACKAGE_VERSION"]
v = rl.make_vars(DIRS)
missing = [k for k in DIRS if k not in v]
if missing:
    rl.bail("the Makefile does not define %s" % missing)
work = tempfile.mkdtemp(prefix="sk-install-")
os.chmod(work, 0o755)
dest = os.path.join(work, "dest")


def D(path):
    return dest + path


def make(*targets):
    return subprocess.run(["make", "-s", "-C", rl.TOP_BUILDDIR] + list(targets) +
                          ["DESTDIR=" + dest], capture_output=True, text=True, env=rl.make_env(),
                          timeout=600)


r = make("install")
if not tap.ok(r.returncode == 0, "make install DESTDIR=%s" % dest, r.stdout + r.stderr):
    rl.bail("make install failed")

# --- the files -------------------------------------------------------------
progs = [("bindir", "snapkeep"), ("bindir", "snapkeep-sim"), ("sbindir", "snapkeepd"),
         ("pkglibexecdir", "snapkeep-parse")]
bad = [os.path.join(v[d], p) for d, p in progs if not os.access(D(os.path.join(v[d], p)), os.X_OK)]
tap.ok(not bad, "programs: snapkeep, snapkeep-sim in bindir, snapkeepd in sbindir, "
       "snapkeep-parse in pkglibexecdir", bad)

mans = v["man_MANS"].split()
tap.eq(sorted(os.path.basename(m) for m in mans),
       ["snapkeep-sim.1", "snapkeep.1", "snapkeep.conf.5", "snapkeepd.8"], "man_MANS has the four pages")
bad = []
for m in mans:
    name = os.path.basename(m)
    inst = D(os.path.join(v["mandir"], "man" + name.rsplit(".", 1)[1], name))
    if not os.path.exists(inst) or not filecmp.cmp(inst, os.path.join(SRC, m), shallow=False):
        bad.append(inst)
tap.ok(not bad, "man pages installed under mandir/manN, as in the source", bad)

schema = v["SK_SCHEMA_FILES"].split()
src_sql = sorted(f for f in os.listdir(os.path.join(SRC, "schema")) if f.endswith(".sql"))
tap.eq(sorted(os.path.basename(f) for f in schema), src_sql,
       "every migration of schema/ is in SK_SCHEMA_FILES")
bad = [f for f in schema + ["schema/README"]
       if not filecmp.cmp(D(os.path.join(v["pkgdatadir"], "schema", os.path.basename(f))),
                          os.path.join(SRC, f), shallow=False)] \
    if all(os.path.exists(D(os.path.join(v["pkgdatadir"], "schema", os.path.basename(f))))
           for f in schema + ["schema/README"]) else ["missing"]
tap.ok(not bad, "schema migrations and README in pkgdatadir/schema", bad)

web = v["SK_WEB_FILES"].split()
bad = [f for f in web if not os.path.exists(D(os.path.join(v["pkgdatadir"], f)))
       or not filecmp.cmp(D(os.path.join(v["pkgdatadir"], f)), os.path.join(SRC, f),
                          shallow=False)]
tap.ok(web and not bad, "web assets (%d) in pkgdatadir/web" % len(web), bad)

confdir = os.path.join(v["sysconfdir"], "snapkeep")
sample = D(os.path.join(confdir, "snapkeep.conf.sample"))
tap.ok(os.path.exists(sample) and filecmp.cmp(sample, os.path.join(SRC, "contrib",
                                                                  "snapkeep.conf.sample"),
                                              shallow=False),
       "the annotated sample in sysconfdir/snapkeep/snapkeep.conf.sample")
tap.ok(not os.path.exists(D(os.path.join(confdir, "snapkeep.conf"))),
       "make install writes no snapkeep.conf")
unit = D(os.path.join(v["systemdsystemunitdir"], "snapkeepd.service"))
tap.ok(os.path.exists(unit) and "ExecStart=%s/snapkeepd --foreground" % v["sbindir"]
       in rl.read(unit), "snapkeepd.service in %s with ExecStart in sbindir"
       % v["systemdsystemunitdir"])
tap.ok(os.path.exists(D(os.path.join(v["sysusersdir"], "snapkeep.conf"))),
       "sysusers.d/snapkeep.conf in %s" % v["sysusersdir"])
tap.ok(os.path.isdir(D(os.path.join(v["localstatedir"], "lib", "snapkeep"))),
       "the state directory localstatedir/lib/snapkeep")
ex = os.path.join(v["docdir"], "examples")
want = ["postfix/pipe/master.cf", "postfix/pipe/main.cf", "postfix/pipe/transport",
        "postfix/relay/main.cf", "postfix/relay/transport", "maildir/main.cf",
        "maildir/master.cf", "maildir/snapkeep.conf", "maildir/snapkeepd.service.d/maildir.conf",
        "alerting/nagios.cfg", "alerting/icinga2.conf", "alerting/snapkeep.rules.yml"]
bad = [w for w in want if not os.path.exists(D(os.path.join(ex, w)))]
tap.ok(not bad and os.access(D(os.path.join(ex, "alerting", "low-toner-report")), os.X_OK),
       "the recipes in docdir/examples (low-toner-report executable)", bad)

# --- an admin's configuration survives a second make install ---------------
state = os.path.join(work, "state")
os.mkdir(state)
admin = rl.Snapkeepd("/nonexistent", state)  # only for its config text
admin.settings["store"]["db"] = "snapkeep.db"  # relative to state_dir
admin_conf = "# the admin's own file\n" + admin.config_text()
rl.write(D(os.path.join(confdir, "snapkeep.conf")), admin_conf)
r = make("install")
tap.ok(r.returncode == 0 and rl.read(D(os.path.join(confdir, "snapkeep.conf"))) == admin_conf,
       "a second make install leaves the admin's snapkeep.conf alone", r.stderr)

# --- the installed programs, in place ----------------------------------------
rl.require_root("running the installed tree in place (a private mount namespace)")
libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNS = 0x00020000
if libc.unshare(CLONE_NEWNS) != 0:
    rl.bail("unshare(CLONE_NEWNS): %s" % os.strerror(ctypes.get_errno()))
r = subprocess.run(["mount", "--make-rprivate", "/"], capture_output=True, text=True)
if r.returncode != 0:
    rl.bail("mount --make-rprivate /: " + r.stderr)


def existing_ancestor(path):
    while not os.path.isdir(path):
        path = os.path.dirname(path)
    return path


tops = sorted({existing_ancestor(v[k]) for k in ("bindir", "sbindir", "pkglibexecdir",
                                                 "sysconfdir", "pkgdatadir")})
tops = [t for t in tops if not any(t != o and t.startswith(o.rstrip("/") + "/") for o in tops)]
if "/" in tops:
    rl.bail("cannot lay the install over / (configure with a --prefix whose parent exists)")
errors = []
for t in tops:
    r = subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                        "lowerdir=%s:%s" % (D(t), t), t], capture_output=True, text=True)
    if r.returncode != 0:
        errors.append("%s: %s" % (t, r.stderr.strip()))
tap.ok(not errors, "the DESTDIR tree laid over %s (overlayfs, private mount namespace)"
       % ", ".join(tops), errors)

SNAPKEEPD = os.path.join(v["sbindir"], "snapkeepd")
SNAPKEEP = os.path.join(v["bindir"], "snapkeep")
env = rl.make_env()
env.pop("SNAPKEEP_PARSE_WORKER", None)
env.pop("SNAPKEEP_DB", None)


def run(args):
    return rl.sk.run(args, env=env)


r = run([SNAPKEEPD, "--version"])
tap.eq(r.stdout.decode().strip(), "snapkeepd %s" % v["PACKAGE_VERSION"],
       "the installed snapkeepd --version")
r = run([SNAPKEEPD, "-n"])
tap.ok(r.returncode == 0 and ("%s/snapkeep.conf: configuration OK" % confdir) in r.stdout.decode(),
       "snapkeepd -n reads the admin's file at its default path", r.stdout + r.stderr)
r = run([SNAPKEEPD, "-n", "--config", os.path.join(confdir, "snapkeep.conf.sample")])
tap.ok(r.returncode == 0 and b"configuration OK" in r.stdout,
       "the installed sample is a valid configuration", r.stdout + r.stderr)
tap.eq(run([os.path.join(v["bindir"], "snapkeep-sim"), "--help"]).returncode, 0,
       "the installed snapkeep-sim runs")

notify = rl.Notify(work)
d = rl.Snapkeepd(SNAPKEEPD, state, env={"NOTIFY_SOCKET": notify.address},
                 config_path=os.path.join(confdir, "snapkeep.conf"), write_config=False)
d.start(wait=False)
ready = notify.wait(lambda m: m.get("READY") == "1", 60)
tap.ok(ready is not None, "the installed snapkeepd (no --config) reports READY=1",
       d.log_text()[-3000:])
if ready is None:
    d.stop()
    rl.bail("the installed snapkeepd did not start")
d.read_ports()
serials = set()
for name, path, expected in rl.examples():
    rl.send_mail(d.smtp_port, "snapshots@example.com", rl.read(path, "rb"))
    serials.add(expected["serial"])


def devices():
    r = run([SNAPKEEP, "devices", "--json", "--db", d.db])
    return r.returncode == 0 and json.loads(r.stdout)


got = rl.wait_for(lambda: (lambda j: j and {x["serial"] for x in j} >= serials and j)(devices()),
                  60)
tap.ok(got, "the installed snapkeep lists the %d snapshots sent over SMTP" % len(serials),
       d.log_text()[-3000:])
kids = []
for tid in os.listdir("/proc/%d/task" % d.proc.pid):
    try:
        kids += rl.read("/proc/%d/task/%s/children" % (d.proc.pid, tid)).split()
    except OSError:
        pass
exes = {os.readlink("/proc/%s/exe" % k) for k in kids}
tap.eq(exes, {os.path.join(v["pkglibexecdir"], "snapkeep-parse")},
       "the parse workers are the installed pkglibexecdir/snapkeep-parse")
rows = rl.db_query(d.db, "SELECT outcome, count(*) FROM intake_log GROUP BY 1")
tap.eq(rows, [("stored", len(serials))], "intake_log: every message parsed and stored")
for name, path, expected in rl.examples():
    r = run([SNAPKEEP, "show", "--json", "--db", d.db, expected["serial"]])
    shown = json.loads(r.stdout) if r.returncode == 0 else {}
    text = json.dumps(shown)
    tap.ok(expected["model"] in text and str(expected["counters"].get("TotalImpressions", ""))
           in text, "snapkeep show %s: model and total impressions" % expected["serial"],
           r.stderr or text[:500])
tap.eq(run([SNAPKEEP, "check", "--db", d.db, "--no-overdue"]).returncode, 2,
       "the installed snapkeep check: CRITICAL (a supply is out)")
status, body = rl.http_get(d.web_port, "/")
tap.ok(status == 200 and all(s in body for s in serials), "the web view lists the devices",
       body[:500])
status, body = rl.http_get(d.web_port, "/metrics")
tap.ok(status == 200 and re.search(r"(?m)^snapkeep_devices %d$" % len(serials), body),
       "/metrics: snapkeep_devices %d" % len(serials))
tap.eq(d.stop(), 0, "the installed snapkeepd stops on SIGTERM (exit 0)")

# The installed command line parses with the installed worker too (what a
# Postfix pipe runs): snapkeep import - of one example into a new database.
name, path, expected = rl.examples()[0]
db2 = os.path.join(work, "import.db")
r = subprocess.run([SNAPKEEP, "import", "--quiet", "--db", db2, "-"], input=rl.read(path, "rb"),
                   capture_output=True, env=env, timeout=120)
rl.sk.check_sanitizer_output([SNAPKEEP], r.stderr)
tap.ok(r.returncode == 0 and rl.db_query(db2, "SELECT serial, outcome FROM intake_log")
       == [(expected["serial"], "stored")],
       "the installed snapkeep import - parses and stores a snapshot (exit 0)", r.stderr)
notify.close()
for t in reversed(tops):
    subprocess.run(["umount", t], capture_output=True)

# --- make uninstall ------------------------------------------------------------
r = make("uninstall")
left = sorted(os.path.relpath(os.path.join(p, f), dest) for p, _, fs in os.walk(dest) for f in fs)
tap.ok(r.returncode == 0 and left == [os.path.relpath(D(os.path.join(confdir, "snapkeep.conf")),
                                                      dest)],
       "make uninstall removes every installed file, keeps the admin's snapkeep.conf",
       r.stderr + "\n".join(left))

shutil.rmtree(work, ignore_errors=True)
tap.done()
