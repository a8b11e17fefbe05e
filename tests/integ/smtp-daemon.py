# smtp-daemon.py: snapkeepd as a program: -n, flags over the file, no
# configuration at all, detaching with a pid file, privilege drop after
# binding a privileged port, and refusing to run as root without a user.
import importlib.util
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

spec = importlib.util.spec_from_file_location(
    "smtplib_sk", os.path.join(os.path.dirname(os.path.abspath(__file__)), "smtp-lib.py"))
sk = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sk)

tap = sk.Tap()
sk.require_env(tap)
SNAPKEEPD = os.path.join(sk.TOP_BUILDDIR, "snapkeepd")
work = tempfile.mkdtemp(prefix="sk-daemon-")


def run(args, **kw):
    return subprocess.run([SNAPKEEPD] + args, capture_output=True, text=True, timeout=60, **kw)


def conf(name, text):
    path = os.path.join(work, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def deliver(port, tag):
    c = sk.Raw(port)
    c.send(b"EHLO t\r\n")
    c.reply()
    c.send(b"MAIL FROM:<a@b>\r\nRCPT TO:<x@y>\r\nDATA\r\n")
    c.reply(), c.reply(), c.reply()
    c.send(sk.unique_message(sk.example(), tag) + b".\r\nQUIT\r\n")
    out = c.rest()
    c.close()
    return out


# -n
good = conf("good.conf", "[daemon]\nuser =\nstate_dir = %s\n[smtp]\nlisten = 127.0.0.1:0\n" % work)
r = run(["-n", "--config", good])
tap.ok(r.returncode == 0 and "configuration OK" in r.stdout, "-n: a good file is OK", r)
for name, text, want in (
        ("typo", "[smtp]\nlisen = 127.0.0.1:25\n", 'unknown key "lisen"'),
        ("size", "[smtp]\nmax_message_size = big\n", "max_message_size"),
        ("listen", "[smtp]\nlisten = localhost:25\n", "listen"),
        ("network", "[smtp]\nallowed_networks = 10.0.0.0/33\n", "allowed_networks"),
        ("cert", "[smtp]\ntls_cert_file = /nonexistent/c.pem\ntls_key_file = /nonexistent/k.pem\n",
         "/nonexistent/c.pem"),
        ("auth", "[smtp]\nrequire_auth = true\n", "require_auth needs auth_users_file"),
        ("tls", "[smtp]\nrequire_tls = true\n", "require_tls needs tls_cert_file"),
        ("state", "[daemon]\nstate_dir = /nonexistent/dir\n", "state_dir")):
    path = conf(name + ".conf", "[daemon]\nuser =\n" + text if not text.startswith("[daemon]")
                else text)
    r = run(["-n", "--config", path])
    tap.ok(r.returncode == 1 and want in r.stderr, "-n: %s is refused, naming it" % name,
           r.stderr)
r = run(["--no-such-flag"])
tap.eq(r.returncode, 2, "an unknown flag: exit 2")

# --db and --smtp-listen override the file; -n does not bind (the port is
# in use by the running daemon).
# On PostgreSQL the file names the daemon's own database (backend and url)
# and --db another one.
flag_db = sk.sklib.new_store(work, "from-flag")
d = sk.Daemon(tap, {"store": {"db": os.path.join(work, "from-file.db")}},
              extra_args=["--db", flag_db, "--smtp-listen",
                          "127.0.0.1:0", "--smtp-listen", "[::1]:0"])
d.start()
tap.ok(re.search(r"event=listening address=\[::1\]:\d+", d.log_text()) is not None,
       "--smtp-listen given twice: both addresses", d.log_text())
port = int(re.findall(r"event=listening address=127\.0\.0\.1:(\d+)", d.log_text())[0])
r = run(["-n", "--config", d.conf, "--smtp-listen", "127.0.0.1:%d" % port])
tap.ok(r.returncode == 0, "-n on a port in use: OK (nothing is bound)", r)
out = deliver(port, "flags")
tap.ok(out.startswith(b"250 2.0.0 Ok"), "delivery", out)
tap.eq(sk.sklib.db_query(flag_db, "SELECT count(*) FROM messages")[1], [(1,)],
       "--db wins over [store]: the mail is in the --db store")
tap.ok(not os.path.exists(os.path.join(work, "from-file.db")), "[store] db is not made")
if sk.sklib.is_pg(d.db):
    tap.eq(d.query("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"),
           [(0,)], "[store] url is not touched (no schema made there)")
tap.eq(d.stop(), 0, "stop")
d.cleanup()

# The other engine on the command line: a file over [store] backend =
# postgresql, a postgresql:// URL over [store] db.
if sk.sklib.is_pg(flag_db):
    file_db = os.path.join(work, "flag-file.db")
    d = sk.Daemon(tap, extra_args=["--db", file_db])
    d.start()
    out = deliver(d.port, "flag-file")
    tap.ok(out.startswith(b"250 2.0.0 Ok"), "--db FILE with [store] backend = postgresql: delivery", out)
    tap.eq(sk.sklib.db_query(file_db, "SELECT count(*) FROM messages")[1], [(1,)],
           "--db FILE wins over [store] backend = postgresql")
    tap.eq(d.stop(), 0, "stop")
    d.cleanup()
    url_db = sk.sklib.new_store(work, "flag-url")
    d = sk.Daemon(tap, {"store": {"backend": "sqlite", "db": os.path.join(work, "file-url.db")}},
                  extra_args=["--db", url_db])
    d.start()
    tap.ok(re.search(r"event=ready[^\n]*postgresql://", d.log_text()) is not None,
           "--db URL: the ready line names the URL", d.log_text()[-2000:])
    out = deliver(d.port, "flag-url")
    tap.ok(out.startswith(b"250 2.0.0 Ok"), "--db URL with [store] db: delivery", out)
    tap.eq(sk.sklib.db_query(url_db, "SELECT count(*) FROM messages")[1], [(1,)],
           "--db postgresql://... wins over [store] db")
    tap.ok(not os.path.exists(os.path.join(work, "file-url.db")), "[store] db is not made")
    tap.eq(d.stop(), 0, "stop")
    d.cleanup()

# As root: refuse without a user to become; drop to the user after binding
# a privileged port.  The dropped daemon starts its parse workers from the
# build tree, so nobody must be able to reach it.
def nobody_reaches_build_tree():
    nb = pwd.getpwnam("nobody")
    r = subprocess.run(["setpriv", "--reuid=%d" % nb.pw_uid, "--regid=%d" % nb.pw_gid,
                        "--clear-groups", "test", "-x",
                        os.path.join(sk.TOP_BUILDDIR, "snapkeep-parse")])
    return r.returncode == 0


if os.geteuid() == 0 and not nobody_reaches_build_tree():
    tap.diag("the build tree %s is private (not reachable by nobody): the privilege-drop "
             "cases need a build directory other users can enter" % sk.TOP_BUILDDIR)
elif os.geteuid() == 0:
    nobody = pwd.getpwnam("nobody")
    state = tempfile.mkdtemp(prefix="sk-nobody-")
    os.chown(state, nobody.pw_uid, nobody.pw_gid)
    path = conf("root.conf", "[daemon]\nstate_dir = %s\n[smtp]\nlisten = 127.0.0.1:0\n" % state)
    r = run(["--foreground", "--config", path])
    tap.ok(r.returncode == 1 and 'no user "snapkeep"' in r.stderr,
           "as root with the default user missing: refuses to start", r.stderr)
    low = None
    for p in range(700, 1000):
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", p))
            low = p
            break
        except OSError:
            continue
        finally:
            s.close()
    d = sk.Daemon(tap, {"daemon": {"user": "nobody", "state_dir": state},
                        "smtp": {"listen": "127.0.0.1:%d" % low}})
    d.start()
    status = open("/proc/%d/status" % d.proc.pid).read()
    uid = re.search(r"^Uid:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)", status, re.M).groups()
    gid = re.search(r"^Gid:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)", status, re.M).groups()
    tap.eq(uid, (str(nobody.pw_uid),) * 4, "runs as nobody (real, effective, saved, fs uid)")
    tap.eq(gid, (str(nobody.pw_gid),) * 4, "with nobody's group")
    groups = re.search(r"^Groups:\s*(.*)$", status, re.M).group(1).split()
    tap.ok("0" not in groups, "root's groups are gone", groups)
    out = deliver(low, "nobody")
    tap.ok(out.startswith(b"250 2.0.0 Ok"), "delivers on privileged port %d" % low, out)
    if sk.sklib.is_pg(d.db):
        tap.eq(d.query("SELECT count(*) FROM messages"), [(1,)], "stored by the daemon running as nobody")
    else:
        db = os.path.join(state, "snapkeep.db")
        tap.eq(os.stat(db).st_uid, nobody.pw_uid, "the database belongs to nobody")
    tap.eq(d.stop(), 0, "stop")
    d.cleanup()
    shutil.rmtree(state, ignore_errors=True)

    # No configuration at all, as an ordinary user: ./snapkeep.db and
    # 127.0.0.1:2525.
    cwd = tempfile.mkdtemp(prefix="sk-noconf-")
    os.chown(cwd, nobody.pw_uid, nobody.pw_gid)
    probe = socket.socket()
    try:
        probe.bind(("127.0.0.1", 2525))
        free = True
    except OSError:
        free = False
    finally:
        probe.close()
    if not free or os.path.exists("/etc/snapkeep/snapkeep.conf"):
        tap.ok(True, "# SKIP no-configuration run: 127.0.0.1:2525 busy or a system "
               "configuration exists")
    else:
        log = open(os.path.join(cwd, "log"), "wb")
        p = subprocess.Popen(["setpriv", "--reuid", str(nobody.pw_uid), "--regid",
                              str(nobody.pw_gid), "--clear-groups", SNAPKEEPD, "--foreground"],
                             cwd=cwd, stdout=log, stderr=log,
                             env=dict(os.environ, SNAPKEEP_PARSE_WORKER=os.path.join(
                                 sk.TOP_BUILDDIR, "snapkeep-parse")))
        deadline = time.time() + 20
        text = ""
        while time.time() < deadline and "event=ready" not in text:
            time.sleep(0.1)
            text = open(os.path.join(cwd, "log")).read()
        tap.ok("event=listening address=127.0.0.1:2525" in text and "event=ready" in text,
               "no configuration: listens on 127.0.0.1:2525", text)
        out = deliver(2525, "noconf")
        tap.ok(out.startswith(b"250 2.0.0 Ok"), "and accepts", out)
        tap.ok(os.path.exists(os.path.join(cwd, "snapkeep.db")), "into ./snapkeep.db")
        p.send_signal(signal.SIGINT)
        tap.eq(p.wait(30), 0, "SIGINT: exit 0")
        log.close()
    shutil.rmtree(cwd, ignore_errors=True)
else:
    tap.ok(True, "# SKIP privilege tests need root")

# Detaching: the command returns once the daemon is ready, with a pid file;
# a start-up failure after detaching still gives exit 1.
state = tempfile.mkdtemp(prefix="sk-detach-")
pidfile = os.path.join(state, "snapkeepd.pid")
path = conf("detach.conf", "[daemon]\nuser =\nstate_dir = %s\npid_file = %s\n"
            "[smtp]\nlisten = 127.0.0.1:0\n" % (state, pidfile))
log = open(os.path.join(state, "log"), "wb")
r = subprocess.run([SNAPKEEPD, "--config", path], stdout=log, stderr=log, timeout=60)
tap.eq(r.returncode, 0, "without --foreground: exits 0 once the daemon is ready")
pid = int(open(pidfile).read())
tap.ok(os.path.exists("/proc/%d" % pid), "the daemon runs, pid file written")
text = open(os.path.join(state, "log")).read()
port = int(re.findall(r"event=listening address=127\.0\.0\.1:(\d+)", text)[0])
out = deliver(port, "detached")
tap.ok(out.startswith(b"250 2.0.0 Ok"), "the detached daemon accepts", out)
os.kill(pid, signal.SIGTERM)
deadline = time.time() + 30
while os.path.exists("/proc/%d" % pid) and time.time() < deadline:
    time.sleep(0.05)
tap.ok(not os.path.exists("/proc/%d" % pid) and not os.path.exists(pidfile),
       "SIGTERM: stopped, pid file removed")
log.close()
path = conf("detach-bad.conf", "[daemon]\nuser =\nstate_dir = %s\n[store]\ndb = %s\n"
            "[smtp]\nlisten = 127.0.0.1:0\n" % (state, "/nonexistent/dir/x.db"))
r = subprocess.run([SNAPKEEPD, "--config", path], capture_output=True, text=True, timeout=60)
tap.ok(r.returncode == 1 and "event=start-failed" in r.stderr,
       "a database that cannot be opened: exit 1 from the detaching command", r.stderr)
shutil.rmtree(state, ignore_errors=True)
shutil.rmtree(work, ignore_errors=True)
tap.done()
