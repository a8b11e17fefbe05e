"""web-lib: helpers for the web view's integration tests (TAP output).

WebDaemon starts the real snapkeepd from the build tree in the foreground,
with SMTP and the web view on ephemeral loopback ports read back from its
log, on a new store (SQLite or PostgreSQL: sklib.new_store); get()/post()
are urllib requests that never follow redirects and return (status,
headers, body) for any status.  Mails are built from the test data (the
hostile one carries markup in its host name and model).
"""
import base64
import crypt
import os
import re
import signal
import smtplib
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sklib  # noqa: E402

TOP_BUILDDIR = os.environ.get("SK_TOP_BUILDDIR", os.getcwd())
TOP_SRCDIR = os.environ.get("SK_TOP_SRCDIR", os.path.join(os.path.dirname(__file__), "..", ".."))
TESTDATA = os.environ.get("SK_TESTDATA", os.path.join(TOP_SRCDIR, "tests", "data"))

XSS_HOST = "<script>alert(1)</script>"
XSS_MODEL = 'Evil"><img src=x onerror=alert(2)> 9000'
XSS_SERIAL = "XSS0000001"


def Tap():
    """sklib's Tap.  Its last result checks for sanitizer reports:
    WebDaemon.stop() hands it the daemon's log."""
    return sklib.Tap()


def program(tap, name):
    path = os.path.join(TOP_BUILDDIR, name)
    if not os.access(path, os.X_OK):
        tap.bail("%s is not built at %s" % (name, path))
    return path


# ---- mails ----

def example_path(name):
    return os.path.join(TESTDATA, "examples", name)


def examples():
    return [example_path(n) for n in ("futuresmart-color-mfp.eml", "futuresmart-mfp.eml",
                                      "legacy-color-mfp.eml")]


def xss_xml():
    with open(os.path.join(TESTDATA, "xml", "variant-fs-noprefix.xml"), encoding="utf-8") as f:
        xml = f.read()

    def esc(s):
        return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    return (xml.replace("NOPFX00001", XSS_SERIAL).replace("NPI000001", esc(XSS_HOST))
            .replace("HP LaserJet Enterprise M609", esc(XSS_MODEL)))


def mail_with_xml(xml, subject="Device Snapshot <b>bold</b>", sender="evil@fleet.example"):
    b64 = base64.encodebytes(xml.encode("utf-8") if isinstance(xml, str) else xml).decode()
    return ("From: %s\r\nTo: fleet-intake@fleet.example\r\nSubject: %s\r\n"
            "Message-ID: <%d@test>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n"
            "--b1\r\nContent-Type: text/plain\r\n\r\nsee attachment\r\n"
            "--b1\r\nContent-Type: text/xml; name=\"Device.xml\"\r\n"
            "Content-Disposition: attachment; filename=\"Device.xml\"\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n%s\r\n--b1--\r\n"
            % (sender, subject, time.time_ns(), b64.replace("\n", "\r\n"))).encode()


def xss_mail():
    return mail_with_xml(xss_xml())


def broken_mail():
    """A snapshot mail whose Device.xml is cut short: parses as failed."""
    return mail_with_xml("<?xml version=\"1.0\"?><DeviceService><TicketMetaData><TimeStamp>2025",
                         subject="Device Snapshot (truncated)", sender="broken@fleet.example")


def users_file(directory, users):
    """name:sha512crypt lines, as `openssl passwd -6` makes them."""
    path = os.path.join(directory, "web-users")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        lines = ["%s:%s" % (u, crypt.crypt(p, crypt.mksalt(crypt.METHOD_SHA512)))
                 for u, p in users.items()]
    with open(path, "w") as f:
        f.write("# web users\n" + "\n".join(lines) + "\n")
    return path


def make_cert(tap, directory, name="localhost"):
    """A self-signed certificate for 127.0.0.1 and localhost (certtool)."""
    if not os.path.exists("/usr/bin/certtool"):
        tap.bail("certtool is missing: apt-get install gnutls-bin")
    key = os.path.join(directory, "web-key.pem")
    cert = os.path.join(directory, "web-cert.pem")
    tmpl = os.path.join(directory, "web-cert.cfg")
    with open(tmpl, "w") as f:
        f.write('cn = "%s"\ndns_name = "localhost"\nip_address = "127.0.0.1"\n'
                "expiration_days = 2\ntls_www_server\nsigning_key\nencryption_key\n" % name)
    for args in (["certtool", "--generate-privkey", "--key-type=ecdsa", "--outfile", key],
                 ["certtool", "--generate-self-signed", "--load-privkey", key, "--template", tmpl,
                  "--outfile", cert]):
        r = subprocess.run(args, capture_output=True)
        if r.returncode != 0:
            tap.bail("certtool failed: %s" % r.stderr.decode(errors="replace"))
    return cert, key


# ---- the daemon ----

class WebDaemon:
    def __init__(self, tap, settings=None, workdir=None, db=None):
        self.tap = tap
        self.dir = workdir or tempfile.mkdtemp(prefix="sk-web-")
        self.db = db or sklib.new_store(self.dir)
        self.settings = {
            "daemon": {"user": "", "state_dir": self.dir, "log_level": "info"},
            "store": sklib.store_settings(self.db),
            "smtp": {"listen": "127.0.0.1:0", "hostname": "mx.test"},
            "intake": {"parse_workers": "1"},
            "web": {"listen": "127.0.0.1:0", "display_timezone": "UTC"},
        }
        for section, keys in (settings or {}).items():
            self.settings.setdefault(section, {}).update(keys)
        self.proc = None
        self.conf = os.path.join(self.dir, "snapkeep.conf")
        self.log_path = os.path.join(self.dir, "snapkeepd.log")
        self.write_config()

    def write_config(self):
        with open(self.conf, "w") as f:
            for section, keys in self.settings.items():
                f.write("[%s]\n" % section)
                for k, v in keys.items():
                    f.write("%s = %s\n" % (k, v))

    def check(self):
        return subprocess.run([program(self.tap, "snapkeepd"), "--config", self.conf, "-n"],
                              capture_output=True, text=True)

    def start(self):
        self.log = open(self.log_path, "ab")
        self.offset = os.path.getsize(self.log_path)
        self.proc = subprocess.Popen([program(self.tap, "snapkeepd"), "--config", self.conf,
                                      "--foreground"], stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=self.log)
        text = self.wait_log(r"daemon: event=ready")
        m = re.findall(r"web: event=listen address=(\S+) port=(\d+) tls=(\w+)", text)
        if not m:
            self.tap.bail("no web listen line in the log:\n" + text)
        self.web_port = int(m[-1][1])
        self.tls = m[-1][2] == "yes"
        m = re.findall(r"event=listening address=([0-9.]+):(\d+)", text)
        self.smtp_port = int(m[-1][1]) if m else None
        return self

    def log_text(self):
        with open(self.log_path, "rb") as f:
            f.seek(self.offset)
            return f.read().decode("utf-8", "replace")

    def wait_log(self, pattern, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            text = self.log_text()
            if re.search(pattern, text):
                return text
            if self.proc.poll() is not None:
                self.tap.bail("snapkeepd exited (%s) waiting for %r:\n%s"
                              % (self.proc.returncode, pattern, text[-3000:]))
            time.sleep(0.05)
        self.tap.bail("timeout waiting for %r:\n%s" % (pattern, self.log_text()[-3000:]))

    def reload(self):
        self.proc.send_signal(signal.SIGHUP)
        self.wait_log(r"daemon: event=reloaded")

    def stop(self):
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        sklib.stop_daemon(proc, self.log, self.log_text, "snapkeepd")

    def send(self, raw):
        s = smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=30)
        s.sendmail("mfp@fleet.example", ["fleet-intake@fleet.example"], raw)
        s.quit()

    def wait_parsed(self, count, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                n, pending = self.query(
                    "SELECT count(*), coalesce(sum(CASE WHEN outcome = 'pending' THEN 1 ELSE 0 END), 0)"
                    " FROM intake")[0]
            except sklib.DB_ERRORS:
                n, pending = 0, 1
            if n >= count and pending == 0:
                return
            time.sleep(0.1)
        self.tap.bail("messages not parsed in time")

    def query(self, sql, args=()):
        """The rows of one query as tuples (? placeholders, either backend)."""
        return sklib.db_query(self.db, sql, args)[1]

    def url(self, path):
        return "%s://127.0.0.1:%d%s" % ("https" if self.tls else "http", self.web_port, path)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def request(url, method="GET", data=None, headers=None, user=None, context=None, timeout=30):
    """(status, headers as a dict of lower-case names, body bytes)."""
    hdrs = dict(headers or {})
    if user is not None:
        hdrs["Authorization"] = "Basic " + base64.b64encode(user.encode()).decode()
    req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
    handlers = [NoRedirect()]
    if context is not None:
        handlers.append(urllib.request.HTTPSHandler(context=context))
    opener = urllib.request.build_opener(*handlers)
    try:
        with opener.open(req, timeout=timeout) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def raw_http(port, data, timeout=10):
    """Sends bytes on a fresh connection, returns what comes back until close."""
    import socket
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(data)
    out = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    except OSError:
        pass
    s.close()
    return out
