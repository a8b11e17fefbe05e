# recipe-lib.py: shared pieces of the install, systemd and recipe tests
# (loaded with importlib by tests/integ/install-*.py, systemd-*.py and
# recipe-*.py; not a test itself).
#
#   Snapkeepd  a real snapkeepd (any binary: the build tree's or an installed
#              one) in the foreground with a temporary state directory, its
#              ports picked by the kernel (listen ...:0) and read from its log
#   Notify     a unix datagram socket standing in for systemd's
#              $NOTIFY_SOCKET, collecting the daemon's reports
#   Postfix    a temporary Postfix instance (own config, queue and data
#              directories, loopback smtpd on an ephemeral port), started with
#              `postfix -c DIR start` as root, with mail_owner = postfix
#   recipe()   a contrib/ file with its Debian paths rewritten for a test
#
# Nothing here fakes a result: the tests talk to the running programs and
# read the database with sqlite3.
import importlib.util
import os
import pwd
import re
import shutil
import signal
import smtplib
import socket
import sqlite3
import subprocess
import tempfile
import time
import urllib.request

_here = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("sklib", os.path.join(_here, "sklib.py"))
sk = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sk)

TOP_BUILDDIR = sk.TOP_BUILDDIR
TOP_SRCDIR = sk.TOP_SRCDIR
TESTDATA = sk.TESTDATA
Tap = sk.Tap
bail = sk.bail


def require_tool(tool, package):
    path = shutil.which(tool) or (tool if os.path.isabs(tool) and os.access(tool, os.X_OK) else None)
    if path is None:
        bail("%s is missing: apt-get install %s (build.sh installs it)" % (tool, package))
    return path


def require_root(what):
    if os.geteuid() != 0:
        bail("%s needs root (the tests start servers as root on loopback ports)" % what)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def examples():
    return sk.examples()


def read(path, mode="r"):
    with open(path, mode) as f:
        return f.read()


def write(path, text, mode=0o644):
    with open(path, "wb" if isinstance(text, bytes) else "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


def recipe(relpath, subst=()):
    """The text of contrib/RELPATH with each (old, new) of subst replaced;
    every old must occur (a recipe that changed under the test fails it)."""
    text = read(os.path.join(TOP_SRCDIR, "contrib", relpath))
    for old, new in subst:
        if old not in text:
            bail("contrib/%s no longer contains %r (update the test)" % (relpath, old))
        text = text.replace(old, new)
    return text


def wait_for(fn, timeout=30, step=0.1):
    """fn() until it returns something true; that value, or None at timeout."""
    deadline = time.time() + timeout
    while True:
        try:
            v = fn()
        except (sqlite3.Error, OSError):
            v = None
        if v:
            return v
        if time.time() >= deadline:
            return None
        time.sleep(step)


def db_query(db, sql, args=()):
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=30)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def db_serials(db):
    """Serials stored in db (empty when it does not exist yet)."""
    if not os.path.exists(db):
        return set()
    return {r[0] for r in db_query(db, "SELECT serial FROM device_status")}


def send_mail(port, rcpt, data, sender="printer@devices.example.com", host="127.0.0.1"):
    """One message over SMTP with smtplib; the refusals dict (empty: accepted)."""
    with smtplib.SMTP(host, port, timeout=30) as s:
        s.ehlo("printer.example.com")
        return s.sendmail(sender, [rcpt], data)


def http_get(port, path, host="127.0.0.1"):
    """(status, body) of GET path."""
    try:
        with urllib.request.urlopen("http://%s:%d%s" % (host, port, path), timeout=30) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")


class Notify:
    """A unix datagram socket standing in for systemd's notification socket."""

    def __init__(self, directory, abstract=False):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = "sk-notify-%d-%d" % (os.getpid(), int(time.time() * 1000) % 1000000)
            self.sock.bind("\0" + name)
            self.address = "@" + name
        else:
            self.address = os.path.join(directory, "notify.sock")
            self.sock.bind(self.address)
        self.messages = []

    def wait(self, predicate, timeout=30):
        """Reads reports until one satisfies predicate(dict); that dict or None.
        Every report read is kept in self.messages (as dicts of VAR: VALUE)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.time()))
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                break
            msg = {}
            for line in data.decode("utf-8", "replace").split("\n"):
                if "=" in line:
                    k, v = line.split("=", 1)
                    msg[k] = v
            msg["_raw"] = data
            self.messages.append(msg)
            if predicate(msg):
                return msg
        return None

    def close(self):
        self.sock.close()


class Snapkeepd:
    """snapkeepd in the foreground.  settings: {section: {key: value}} added
    to (or replacing) the defaults; config=None writes no file and passes no
    --config (the installed default path is used)."""

    def __init__(self, binary, workdir, settings=None, env=None, write_config=True,
                 config_path=None):
        self.binary = binary
        self.dir = workdir
        self.settings = {
            "daemon": {"user": "", "state_dir": workdir, "log_level": "info"},
            "store": {"db": os.path.join(workdir, "snapkeep.db")},
            "smtp": {"listen": "127.0.0.1:0", "hostname": "snapkeep.test"},
            "web": {"listen": "127.0.0.1:0"},
            "intake": {"parse_workers": "1"},
        }
        for section, keys in (settings or {}).items():
            self.settings.setdefault(section, {}).update(keys)
        self.db = self.settings["store"]["db"]
        self.env = dict(os.environ)
        self.env.pop("NOTIFY_SOCKET", None)
        self.env.pop("SNAPKEEP_PARSE_WORKER", None)
        self.env.update(env or {})
        self.conf = config_path or os.path.join(workdir, "snapkeep.conf")
        self.pass_config = config_path is None
        if write_config:
            self.write_config()
        self.log_path = os.path.join(workdir, "snapkeepd.log")
        self.proc = None
        self.smtp_port = self.web_port = None

    def config_text(self):
        out = []
        for section, keys in self.settings.items():
            out.append("[%s]" % section)
            out.extend("%s = %s" % kv for kv in keys.items())
        return "\n".join(out) + "\n"

    def write_config(self):
        write(self.conf, self.config_text())

    def start(self, wait=True, args=()):
        self.log = open(self.log_path, "ab")
        self.log_offset = os.path.getsize(self.log_path)
        cmd = [self.binary, "--foreground"] + (["--config", self.conf] if self.pass_config else [])
        self.proc = subprocess.Popen(cmd + list(args), stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=self.log, env=self.env, cwd=self.dir)
        if wait:
            self.wait_ready()
        return self

    def log_text(self, since=0):
        with open(self.log_path, "rb") as f:
            f.seek(since)
            return f.read().decode("utf-8", "replace")

    def wait_log(self, pattern, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            m = re.search(pattern, self.log_text(self.log_offset))
            if m:
                return m
            if self.proc.poll() is not None:
                bail("snapkeepd exited (%s) while waiting for %r:\n%s"
                     % (self.proc.returncode, pattern, self.log_text()[-3000:]))
            time.sleep(0.05)
        bail("timeout waiting for %r in snapkeepd's log:\n%s" % (pattern, self.log_text()[-3000:]))

    def wait_ready(self):
        self.wait_log(r"daemon: event=ready")
        self.read_ports()

    def read_ports(self):
        text = self.log_text(self.log_offset)
        m = re.findall(r"smtp: event=listening address=127\.0\.0\.1:(\d+)", text)
        self.smtp_port = int(m[-1]) if m else None
        m = re.findall(r"web: event=listen address=127\.0\.0\.1 port=(\d+)", text)
        self.web_port = int(m[-1]) if m else None

    def stop(self, sig=signal.SIGTERM, timeout=60):
        if self.proc is None:
            return None
        proc, self.proc = self.proc, None
        return sk.stop_daemon(proc, self.log, self.log_text, self.binary, sig, timeout)


# The services a Postfix instance needs for SMTP in, queueing, bounces and
# delivery (local, virtual, smtp/relay; pipe services come from a recipe).
POSTFIX_MASTER_BASE = """\
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
showq     unix  n       -       n       -       -       showq
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
postlog   unix-dgram n  -       n       -       1       postlogd
"""


class Postfix:
    """A temporary Postfix instance on a loopback port.  main_extra and
    master_extra are appended to its main.cf and master.cf (a recipe's
    lines); maps {name: text} are written into the config directory and
    indexed with postmap when their name is in hashed."""

    def __init__(self, name, main_extra="", master_extra="", maps=None, hashed=()):
        self.postfix = require_tool("postfix", "postfix")
        require_root("a temporary Postfix instance")
        try:
            pwd.getpwnam("postfix")
        except KeyError:
            bail("no postfix user: apt-get install postfix")
        self.top = tempfile.mkdtemp(prefix="sk-postfix-%s-" % name)
        os.chmod(self.top, 0o755)  # the postfix user walks into it
        self.conf = os.path.join(self.top, "conf")
        self.queue = os.path.join(self.top, "queue")
        self.data = os.path.join(self.top, "data")
        for d in (self.conf, self.queue, self.data):
            os.mkdir(d, 0o755)
        pw = pwd.getpwnam("postfix")
        os.chown(self.data, pw.pw_uid, pw.pw_gid)
        self.maillog = os.path.join(self.top, "maillog")
        self.port = free_port()
        self.name = name
        main = """\
# A temporary Postfix instance of snapkeep's tests (tests/integ/recipe-lib.py).
compatibility_level = 3.6
queue_directory = {queue}
data_directory = {data}
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
shlib_directory = /usr/lib/postfix
meta_directory = /etc/postfix
mail_owner = postfix
setgid_group = postdrop
syslog_name = sk-postfix-{name}
maillog_file = {maillog}
maillog_file_prefixes = {top}
inet_interfaces = loopback-only
inet_protocols = ipv4
myhostname = mta.example.com
mydomain = example.com
myorigin = $mydomain
mydestination = example.com
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
smtpd_banner = $myhostname ESMTP
biff = no
queue_run_delay = 300s
minimal_backoff_time = 300s
maximal_backoff_time = 600s
""".format(queue=self.queue, data=self.data, maillog=self.maillog, top=self.top, name=name)
        # A parameter the extra lines set replaces the base's (no "overriding
        # earlier entry" warnings).
        keys = set(re.findall(r"(?m)^(\w+)\s*=", main_extra))
        main = "".join(line for line in main.splitlines(True)
                       if re.match(r"(\w+)\s*=", line) is None
                       or re.match(r"(\w+)", line).group(1) not in keys)
        write(os.path.join(self.conf, "main.cf"), main + main_extra)
        master = "127.0.0.1:%d inet n - n - - smtpd\n" % self.port + POSTFIX_MASTER_BASE
        write(os.path.join(self.conf, "master.cf"), master + master_extra)
        for mapname, text in (maps or {}).items():
            write(os.path.join(self.conf, mapname), text)
        for mapname in hashed:
            r = self.cmd(["postmap", "-c", self.conf, "hash:" + os.path.join(self.conf, mapname)])
            if r.returncode != 0:
                bail("postmap %s failed: %s" % (mapname, r.stderr))

    def cmd(self, args, **kw):
        return subprocess.run(args, capture_output=True, text=True, timeout=60, **kw)

    def start(self):
        r = self.cmd([self.postfix, "-c", self.conf, "start"])
        ok = r.returncode == 0 and wait_for(self.accepting, timeout=20)
        if not ok:
            bail("postfix -c %s start failed (%d): %s\n%s" % (self.conf, r.returncode, r.stderr,
                                                               self.log()[-3000:]))
        return self

    def accepting(self):
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            return s.recv(512).startswith(b"220 ")

    def log(self):
        return read(self.maillog) if os.path.exists(self.maillog) else ""

    def queue_ids(self):
        """Queue ids of the messages in the queue (postqueue -j)."""
        import json
        r = self.cmd(["postqueue", "-c", self.conf, "-j"])
        return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]

    def flush(self):
        return self.cmd(["postqueue", "-c", self.conf, "-f"])

    def stop(self):
        r = self.cmd([self.postfix, "-c", self.conf, "stop"])
        # master exits after its children; wait for its pid file to go.
        pid = os.path.join(self.queue, "pid", "master.pid")
        wait_for(lambda: not os.path.exists(pid) or not _alive(pid), timeout=20)
        return r.returncode

    def cleanup(self):
        shutil.rmtree(self.top, ignore_errors=True)


def _alive(pidfile):
    try:
        pid = int(read(pidfile).split()[0])
        os.kill(pid, 0)
        return True
    except (OSError, ValueError, IndexError):
        return False


def private_copy(programs, directory, owner=None):
    """Copies build-tree programs into directory (mode 755) so that an
    unprivileged user (a Postfix pipe's user=) can run them wherever the
    build tree is; snapkeep-parse is found beside snapkeep."""
    os.makedirs(directory, exist_ok=True)
    os.chmod(directory, 0o755)
    out = {}
    for p in programs:
        dst = os.path.join(directory, p)
        shutil.copy2(sk.program(p), dst)
        os.chmod(dst, 0o755)
        out[p] = dst
    return out


def make_env():
    """The environment for a nested make: without the jobserver and flags of
    the make check that runs the test."""
    env = dict(os.environ)
    for k in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "GNUMAKEFLAGS"):
        env.pop(k, None)
    return env


def make_vars(names, builddir=None):
    """{name: value} of the build tree's Makefile variables, as make expands
    them (prefix, sbindir, sysconfdir, ...)."""
    builddir = builddir or TOP_BUILDDIR
    fd, extra = tempfile.mkstemp(suffix=".mk")
    with os.fdopen(fd, "w") as f:
        f.write("sk-print-vars:\n")
        for n in names:
            f.write("\t@echo '%s=$(%s)'\n" % (n, n))
    try:
        r = subprocess.run(["make", "-s", "-C", builddir, "-f", "Makefile", "-f", extra,
                            "sk-print-vars"], capture_output=True, text=True, env=make_env(),
                           timeout=120)
    finally:
        os.unlink(extra)
    if r.returncode != 0:
        bail("make could not print the build's directories: %s" % r.stderr)
    out = {}
    for line in r.stdout.splitlines():
        k, sep, v = line.partition("=")
        if sep and k in names:
            out[k] = v
    return out
