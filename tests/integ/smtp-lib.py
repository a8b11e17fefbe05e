# smtp-lib.py: shared pieces of the SMTP integration tests (loaded with
# importlib by tests/integ/smtp-*.py; not a test itself).
#
# Daemon starts the real snapkeepd from the build tree in the foreground, on
# an ephemeral loopback port (listen 127.0.0.1:0, the port is read from the
# log), with a temporary state directory and database, and stops it.  The
# database is state_dir/snapkeep.db, or with SK_TEST_BACKEND=postgresql a new
# PostgreSQL database (sklib.new_store) named in [store].
# Tap prints TAP (it is sklib.Tap).  Nothing here fakes a result: every
# check talks to the running daemon or reads its database (sklib.db_rows).
import atexit
import hashlib
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sklib  # noqa: E402

TOP_BUILDDIR = os.environ.get("SK_TOP_BUILDDIR")
TOP_SRCDIR = os.environ.get("SK_TOP_SRCDIR")
TESTDATA = os.environ.get("SK_TESTDATA")


def Tap():
    """sklib's Tap, with failure details in full.  Its last result checks for
    sanitizer reports: Daemon.stop() hands it the daemon's log."""
    return sklib.Tap(detail_lines=None)


def require_env(tap):
    if not TOP_BUILDDIR or not TESTDATA:
        tap.bail("SK_TOP_BUILDDIR and SK_TESTDATA must be set (run through make check)")
    if not os.path.exists(os.path.join(TOP_BUILDDIR, "snapkeepd")):
        tap.bail("snapkeepd is not built in " + TOP_BUILDDIR)


def require_tool(tap, tool, package):
    if shutil.which(tool) is None:
        tap.bail("%s is missing: apt-get install %s" % (tool, package))


def example(name="futuresmart-mfp.eml"):
    with open(os.path.join(TESTDATA, "examples", name), "rb") as f:
        return f.read()


def crlf(data):
    """LF -> CRLF, as an SMTP client sends lines."""
    return re.sub(rb"\r?\n", b"\r\n", data)


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def mail_reply(s, raw):
    """Sends raw (CRLF lines) on the open smtplib connection s from
    mfp@fleet.example to fleet-intake@fleet.example: (code, text) of the
    reply to it, (250, "ok") when accepted; code None for anything but an
    SMTP reply (a dropped connection, a timeout)."""
    import smtplib
    try:
        s.sendmail("mfp@fleet.example", ["fleet-intake@fleet.example"], raw)
        return 250, "ok"
    except (smtplib.SMTPDataError, smtplib.SMTPSenderRefused) as e:
        return e.smtp_code, e.smtp_error.decode(errors="replace")
    except smtplib.SMTPRecipientsRefused as e:
        code, text = next(iter(e.recipients.values()))
        return code, text.decode(errors="replace")
    except (smtplib.SMTPException, OSError) as e:
        return None, repr(e)


def send_mail(port, raw, timeout):
    """One mail (mail_reply) on a new smtplib connection to 127.0.0.1:port,
    closed after it: (code, text); code None for anything but an SMTP
    reply (no connection, a dropped one, a timeout)."""
    import smtplib
    try:
        s = smtplib.SMTP("127.0.0.1", port, timeout=timeout)
    except (smtplib.SMTPException, OSError) as e:
        return None, repr(e)
    try:
        return mail_reply(s, raw)
    finally:
        try:
            s.quit()
        except (smtplib.SMTPException, OSError):
            s.close()


def unique_message(base, tag):
    """base with a unique Message-ID (and so unique bytes), CRLF lines."""
    text = crlf(base)
    mid = b"Message-ID: <%s@snapkeep.test>\r\n" % tag.encode()
    text = re.sub(rb"(?im)^Message-ID:[^\r\n]*\r\n", b"", text)
    return mid + text


class Daemon:
    def __init__(self, tap, settings=None, extra_args=(), workdir=None):
        self.tap = tap
        self.dir = workdir or tempfile.mkdtemp(prefix="sk-smtp-")
        self.settings = {
            "daemon": {"user": "", "state_dir": self.dir, "log_level": "info"},
            "smtp": {"listen": "127.0.0.1:0", "hostname": "mx.test"},
            # Not the default 127.0.0.1:8080, which a running snapkeepd or
            # another test may hold.
            "web": {"listen": "127.0.0.1:0"},
            "intake": {"parse_workers": "1"},
        }
        # SQLite: the daemon's default, snapkeep.db in state_dir.
        self.db = sklib.new_store(self.dir)
        if sklib.is_pg(self.db):
            self.settings["store"] = sklib.store_settings(self.db)
        for section, keys in (settings or {}).items():
            self.settings.setdefault(section, {}).update(keys)
        self.extra_args = list(extra_args)
        self.proc = None
        self.port = None
        self.log_path = os.path.join(self.dir, "snapkeepd.log")
        self.write_config()
        # A test that dies on an exception leaves no daemon behind.
        atexit.register(self._kill_left_over)

    def _kill_left_over(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)

    def write_config(self):
        self.conf = os.path.join(self.dir, "snapkeep.conf")
        with open(self.conf, "w") as f:
            for section, keys in self.settings.items():
                f.write("[%s]\n" % section)
                for k, v in keys.items():
                    f.write("%s = %s\n" % (k, v))

    def start(self, wait=True):
        self.log = open(self.log_path, "ab")
        self.log_offset = os.path.getsize(self.log_path)
        self.proc = subprocess.Popen(
            [os.path.join(TOP_BUILDDIR, "snapkeepd"), "--config", self.conf, "--foreground"]
            + self.extra_args,
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        if wait:
            self.wait_log(r"daemon: event=ready", since=self.log_offset)
            m = re.findall(r"event=listening address=([0-9.]+|\[[0-9a-f:]+\]):(\d+)",
                           self.log_text(self.log_offset))
            if not m:
                self.tap.bail("no listening address in the log:\n" + self.log_text())
            self.host = m[-1][0].strip("[]")
            self.port = int(m[-1][1])
        return self

    def log_text(self, since=0):
        with open(self.log_path, "rb") as f:
            f.seek(since)
            return f.read().decode("utf-8", "replace")

    def wait_log(self, pattern, timeout=30, since=0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            text = self.log_text(since)
            m = re.search(pattern, text)
            if m:
                return m
            if self.proc is not None and self.proc.poll() is not None:
                self.tap.bail("snapkeepd exited (%s) while waiting for %r:\n%s"
                              % (self.proc.returncode, pattern, text[-3000:]))
            time.sleep(0.05)
        self.tap.bail("timeout waiting for %r in the log:\n%s" % (pattern, self.log_text()[-3000:]))

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM, timeout=60):
        if self.proc is None:
            return None
        proc, self.proc = self.proc, None
        return sklib.stop_daemon(proc, self.log, lambda: self.log_text(self.log_offset),
                                 "snapkeepd", sig, timeout)

    def query(self, sql, args=()):
        """The rows of one query as tuples (? placeholders, either backend)."""
        return sklib.db_query(self.db, sql, args)[1]

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class Raw:
    """A raw SMTP connection for exact transcripts."""

    def __init__(self, port, host="127.0.0.1", greet=True, timeout=10):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""
        self.greeting = self.reply() if greet else None

    def send(self, data):
        self.sock.sendall(data)

    def line(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                line, self.buf = self.buf, b""
                return line
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line + b"\n"

    def reply(self):
        """One whole (possibly multi-line) reply, as bytes."""
        out = b""
        while True:
            line = self.line()
            out += line
            if len(line) < 4 or line[3:4] != b"-":
                return out

    def cmd(self, text):
        self.send(text.encode() + b"\r\n")
        return self.reply()

    def rest(self):
        """Everything until the server closes."""
        out = self.buf
        self.buf = b""
        while True:
            try:
                chunk = self.sock.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not chunk:
                break
            out += chunk
        return out

    def starttls(self, cafile=None):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        self.sock = ctx.wrap_socket(self.sock)
        self.buf = b""

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def make_cert(tap, directory):
    """A self-signed certificate made with certtool (gnutls-bin)."""
    require_tool(tap, "certtool", "gnutls-bin")
    key = os.path.join(directory, "key.pem")
    cert = os.path.join(directory, "cert.pem")
    tmpl = os.path.join(directory, "cert.cfg")
    with open(tmpl, "w") as f:
        f.write('cn = "mx.test"\ndns_name = "mx.test"\nexpiration_days = 30\n'
                "tls_www_server\nencryption_key\nsigning_key\n")
    subprocess.run(["certtool", "--generate-privkey", "--key-type", "ecdsa", "--outfile", key],
                   check=True, capture_output=True)
    subprocess.run(["certtool", "--generate-self-signed", "--load-privkey", key, "--template",
                    tmpl, "--outfile", cert], check=True, capture_output=True)
    return cert, key


def make_users(tap, directory, users):
    """user:crypt-hash lines, hashed with openssl passwd -6 (SHA-512 crypt)."""
    require_tool(tap, "openssl", "openssl")
    path = os.path.join(directory, "users")
    with open(path, "w") as f:
        for user, password in users.items():
            h = subprocess.run(["openssl", "passwd", "-6", password], check=True,
                               capture_output=True, text=True).stdout.strip()
            f.write("%s:%s\n" % (user, h))
    return path


def rss_peak_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return None
