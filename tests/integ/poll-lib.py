"""poll-lib: a real Dovecot for the pollers' integration tests, and mailbox helpers.

Dovecot (Debian's dovecot-imapd and dovecot-pop3d) runs from its own
dovecot.conf in a temporary directory: passwd-file users, Maildirs under the
directory, IMAP and POP3 on free loopback ports, `ssl = no`, or
`ssl = required` with a certificate made by certtool (gnutls-bin) and the
imaps/pop3s ports.  It is started with `dovecot -F -c CONF` and stopped at the
end.  Loaded by the poll-*.py tests with importlib (the file name has a dash).
"""
import imaplib
import os
import poplib
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sklib import DB_NOT_READY, TOP_BUILDDIR, bail, db_rows  # noqa: E402

DOVECOT = "/usr/sbin/dovecot"
PASSWORD = "secret-pw"
MAIL_UID = 65534  # nobody: Dovecot refuses uid 0 for mail users


def need_tools(tap, tools):
    for t in tools:
        if shutil.which(t) is None and not os.access(t, os.X_OK):
            tap.bail("%s is missing: apt-get install dovecot-imapd dovecot-pop3d gnutls-bin" % t)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def make_cert(d):
    """A CA and a server certificate for 127.0.0.1/localhost (certtool); returns (ca, cert, key)."""
    def run(args):
        subprocess.run(args, check=True, capture_output=True)
    ca_key, ca, key, cert = (os.path.join(d, n) for n in ("ca.key", "ca.pem", "server.key", "server.pem"))
    with open(os.path.join(d, "ca.tmpl"), "w") as f:
        f.write('cn = "snapkeep test CA"\nca\ncert_signing_key\nexpiration_days = 2\n')
    with open(os.path.join(d, "server.tmpl"), "w") as f:
        f.write('cn = "localhost"\ndns_name = "localhost"\nip_address = "127.0.0.1"\n'
                'tls_www_server\nencryption_key\nsigning_key\nexpiration_days = 2\n')
    run(["certtool", "--generate-privkey", "--key-type=ecdsa", "--outfile", ca_key])
    run(["certtool", "--generate-self-signed", "--load-privkey", ca_key,
         "--template", os.path.join(d, "ca.tmpl"), "--outfile", ca])
    run(["certtool", "--generate-privkey", "--key-type=ecdsa", "--outfile", key])
    run(["certtool", "--generate-certificate", "--load-privkey", key, "--load-ca-certificate", ca,
         "--load-ca-privkey", ca_key, "--template", os.path.join(d, "server.tmpl"), "--outfile", cert])
    os.chmod(key, 0o600)
    return ca, cert, key


class Dovecot:
    """users: {name: extra userdb fields ("" for none)}."""

    def __init__(self, d, users, ssl=False):
        self.d = d
        self.ssl = ssl
        self.users = users
        self.imap_port, self.pop3_port = free_port(), free_port()
        self.imaps_port = self.pop3s_port = 0
        self.proc = None
        for sub in ("run", "state", "mail"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        # The mail user (nobody) must reach its Maildir below the test's directory.
        p = d
        while p not in ("/", "/tmp"):
            os.chmod(p, os.stat(p).st_mode | 0o711)
            p = os.path.dirname(p)
        os.chown(os.path.join(d, "mail"), MAIL_UID, MAIL_UID)
        with open(os.path.join(d, "passwd"), "w") as f:
            for u, extra in users.items():
                f.write("%s:{PLAIN}%s:%d:%d::%s::%s\n" % (u, PASSWORD, MAIL_UID, MAIL_UID,
                                                          os.path.join(d, "mail", u), extra))
        ssl_conf = "ssl = no\n"
        if ssl:
            self.ca, cert, key = make_cert(d)
            self.imaps_port, self.pop3s_port = free_port(), free_port()
            ssl_conf = "ssl = required\nssl_cert = <%s\nssl_key = <%s\n" % (cert, key)
        conf = """
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
protocols = imap pop3
listen = 127.0.0.1
{ssl_conf}
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
default_login_user = dovenull
default_internal_user = root
default_internal_group = root
first_valid_uid = 1
mail_location = maildir:{d}/mail/%u
namespace inbox {{
  inbox = yes
  separator = /
}}
pop3_uidl_format = %08Xu%08Xv
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {d}/passwd
}}
userdb {{
  driver = passwd-file
  args = {d}/passwd
}}
service imap-login {{
  inet_listener imap {{
    port = {imap}
  }}
  inet_listener imaps {{
    port = {imaps}
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = {pop3}
  }}
  inet_listener pop3s {{
    port = {pop3s}
  }}
}}
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
""".format(d=d, ssl_conf=ssl_conf, imap=self.imap_port, imaps=self.imaps_port, pop3=self.pop3_port,
           pop3s=self.pop3s_port)
        self.conf = os.path.join(d, "dovecot.conf")
        with open(self.conf, "w") as f:
            f.write(conf)

    def start(self):
        self.proc = subprocess.Popen([DOVECOT, "-F", "-c", self.conf], stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(self.d, "dovecot.err"), "w"))
        ports = [self.imap_port, self.pop3_port] + ([self.imaps_port, self.pop3s_port] if self.ssl else [])
        deadline = time.time() + 10
        for p in ports:
            while True:
                try:
                    socket.create_connection(("127.0.0.1", p), timeout=1).close()
                    break
                except OSError:
                    if time.time() > deadline or self.proc.poll() is not None:
                        raise RuntimeError("dovecot did not start: " + self.log())
                    time.sleep(0.05)

    def stop(self):
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def log(self):
        out = ""
        for n in ("dovecot.err", "dovecot.log"):
            p = os.path.join(self.d, n)
            if os.path.exists(p):
                out += open(p, errors="replace").read()[-3000:]
        return out

    def maildir(self, user, folder=None):
        base = os.path.join(self.d, "mail", user)
        if folder:
            # Maildir++ layout: separator '/' in names, '.' on disk.
            base = os.path.join(base, "." + folder.replace("/", "."))
        return base

    def deliver(self, user, mails):
        """Writes mails (bytes) into user's INBOX new/ (as an MTA would).
        A poller may be taking them (and Dovecot moving them) while this
        runs: each file belongs to the mail user before it appears in new/,
        and only the directories are walked afterwards."""
        md = self.maildir(user)
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(md, sub), exist_ok=True)
        for i, raw in enumerate(mails):
            name = "%d.M%dP%dQ%d.test" % (int(time.time()), i, os.getpid(), i)
            tmp = os.path.join(md, "tmp", name)
            with open(tmp, "wb") as f:
                f.write(raw)
            os.chown(tmp, MAIL_UID, MAIL_UID)
            os.rename(tmp, os.path.join(md, "new", name))
        for root, dirs, files in os.walk(self.maildir(user)):
            os.chown(root, MAIL_UID, MAIL_UID)
        os.chown(os.path.join(self.d, "mail", user), MAIL_UID, MAIL_UID)

    def imap(self, user):
        m = imaplib.IMAP4("127.0.0.1", self.imap_port)
        m.login(user, PASSWORD)
        return m

    def folder_state(self, user, folder="INBOX"):
        """(count, seen count, deleted count) of a folder; None if missing."""
        m = self.imap(user)
        try:
            typ, _ = m.select('"%s"' % folder, readonly=True)
            if typ != "OK":
                return None
            typ, data = m.fetch("1:*", "(FLAGS)") if int(m.response("EXISTS")[1][0] or 0) else ("OK", [])
            n = seen = deleted = 0
            for item in data:
                if item is None:
                    continue
                line = item if isinstance(item, bytes) else item[0]
                n += 1
                seen += b"\\Seen" in line
                deleted += b"\\Deleted" in line
            return n, seen, deleted
        finally:
            try:
                m.logout()
            except Exception:
                pass

    def count(self, user, folder="INBOX"):
        st = self.folder_state(user, folder)
        return None if st is None else st[0]

    def append(self, user, raw, folder="INBOX"):
        m = self.imap(user)
        m.append(folder, None, None, raw)
        m.logout()

    def pop3_count(self, user):
        p = poplib.POP3("127.0.0.1", self.pop3_port)
        p.user(user)
        p.pass_(PASSWORD)
        n = p.stat()[0]
        p.quit()
        return n

    def url(self, kind, user, mailbox="INBOX"):
        port = {"imap": self.imap_port, "imaps": self.imaps_port, "pop3": self.pop3_port,
                "pop3s": self.pop3s_port}[kind]
        return "%s://%s@127.0.0.1:%d%s" % (kind, user, port, "/" + mailbox if kind.startswith("imap") else "")


def sim_mails(out_dir, devices=30, days=20, max_mails=None, seed=1):
    """Simulator mails (small: short logs) as a list of bytes, with their manifest."""
    sim = os.path.join(TOP_BUILDDIR, "snapkeep-sim")
    if not os.access(sim, os.X_OK):
        bail("snapkeep-sim is not built")
    os.makedirs(out_dir, exist_ok=True)
    args = [sim, "-n", str(devices), "-d", str(days), "--seed", str(seed), "--out", out_dir,
            "--log-capacity", "5", "--job-log-capacity", "5", "-q"]
    if max_mails:
        args += ["--max-mails", str(max_mails)]
    subprocess.run(args, check=True, capture_output=True)
    mails = []
    for name in sorted(os.listdir(out_dir)):
        if name.endswith(".eml"):
            with open(os.path.join(out_dir, name), "rb") as f:
                mails.append(f.read())
    return mails


def other_mails(n):
    """Mail that is not a snapshot: alerts and a note from a person."""
    out = []
    for i in range(n):
        out.append(("From: mfp-%d@fleet.example\r\nTo: fleet@fleet.example\r\n"
                    "Subject: [Alert Message - Toner Low] %d\r\nMessage-ID: <alert-%d@poll.test>\r\n"
                    "\r\nCartridge low.\r\n" % (i, i, i)).encode())
    return out


def write_password(d, pw=PASSWORD):
    p = os.path.join(d, "pw-%s" % re.sub(r"\W", "_", pw))
    with open(p, "w") as f:
        f.write(pw + "\n")
    os.chmod(p, 0o600)
    return p


def count(db, sql, args=()):
    """A count from the store; 0 while it is still being created."""
    try:
        return db_rows(db, sql, args)[0]["n"]
    except DB_NOT_READY:
        return 0


def wait_for(pred, timeout=20, step=0.05):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()
