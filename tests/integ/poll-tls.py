"""The pollers over TLS against a real Dovecot with `ssl = required` and a
certificate made by certtool: imaps://, pop3s:// and imap:// with STARTTLS
work with the test CA (tls_ca_file); verification is on by default, so
without the CA the certificate is refused with a clear error."""
import importlib.util
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sklib import Tap, cleanup, program, run, tempdir  # noqa: E402

spec = importlib.util.spec_from_file_location("poll_lib", os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                                        "poll-lib.py"))
pl = importlib.util.module_from_spec(spec)
spec.loader.exec_module(pl)

t = Tap()
pl.need_tools(t, [pl.DOVECOT, "certtool"])
snapkeep = program("snapkeep")
program("snapkeep-parse")
d = tempdir("sk-poll-tls-")
dc = pl.Dovecot(os.path.join(d, "dovecot"), {"a": "", "b": "", "c": ""}, ssl=True)
pw = pl.write_password(d)
snaps = pl.sim_mails(os.path.join(d, "sim"), devices=10, days=10)
N = len(snaps)


def imp(db, url, *opts):
    return run([snapkeep, "import", "--db", db, "--password-file", pw, "--no-progress", url] + list(opts),
               timeout=60)


try:
    dc.start()
    for u in ("a", "b", "c"):
        dc.deliver(u, snaps)
    db = os.path.join(d, "tls.db")

    r = imp(db, dc.url("imaps", "a"))
    t.eq(r.returncode, 75, "imaps without the CA: refused (verification is on by default)")
    t.ok(b"TLS certificate of 127.0.0.1" in r.stderr and b"tls_ca_file" in r.stderr,
         "imaps without the CA: says why and what to set", r.stderr)
    t.eq(pl.count(db, "SELECT count(*) n FROM intake_log"), 0, "nothing taken over an unverified connection")

    r = imp(db, dc.url("imaps", "a"), "--tls-ca-file", dc.ca)
    t.ok(r.returncode == 0, "imaps with the CA: exit 0", r.stderr)
    t.eq(pl.count(db, "SELECT count(*) n FROM intake_log WHERE source = 'imap'"), N, "imaps: every mail taken")

    r = imp(db, dc.url("pop3s", "b"), "--tls-ca-file", dc.ca)
    t.ok(r.returncode == 0, "pop3s with the CA: exit 0", r.stderr)
    t.eq(pl.count(db, "SELECT count(*) n FROM intake_log WHERE source = 'pop3'"), N, "pop3s: every mail taken")

    r = imp(db, dc.url("imap", "c"), "--tls-ca-file", dc.ca, "--starttls", "required")
    t.ok(r.returncode == 0, "imap:// with STARTTLS: exit 0", r.stderr)
    t.eq(dc.count("c"), 0, "imap:// with STARTTLS: mailbox drained")
    t.eq(pl.count(db, "SELECT count(*) n FROM messages"), N, "the same mails over three protocols: stored once each")
finally:
    dc.stop()
    if t.failed:
        t.diag(dc.log())
    cleanup(d)
t.done()
