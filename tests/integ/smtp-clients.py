# smtp-clients.py: real SMTP clients against the real snapkeepd: swaks
# (plain, PIPELINING, STARTTLS, AUTH PLAIN and LOGIN), Python's smtplib
# (plain, STARTTLS + AUTH), curl's SMTP client (plain, STARTTLS).  Each
# client sends its own message; the test then finds exactly that message in
# the database: the SHA-256 of the bytes the client sent (lines in CRLF,
# after dot-unstuffing) is in intake_log, once, with the envelope.
import importlib.util
import os
import re
import smtplib
import ssl
import subprocess

spec = importlib.util.spec_from_file_location(
    "smtplib_sk", os.path.join(os.path.dirname(os.path.abspath(__file__)), "smtp-lib.py"))
sk = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sk)

tap = sk.Tap()
sk.require_env(tap)
sk.require_tool(tap, "swaks", "swaks")
sk.require_tool(tap, "curl", "curl")

d = sk.Daemon(tap)
cert, key = sk.make_cert(tap, d.dir)
users = sk.make_users(tap, d.dir, {"alice": "s3cret pass", "bob": "other"})
d.settings["smtp"].update({
    "recipients": "snap@fleet.test, @print.test",
    "tls_cert_file": cert,
    "tls_key_file": key,
    "auth_users_file": users,
})
d.write_config()
d.start()
sent = {}  # name -> (sha256, mail_from, rcpt)
base = sk.example()


def message(name):
    # A line starting with a dot checks dot-stuffing by the client and
    # unstuffing by the server, end to end.
    m = sk.unique_message(base, name)
    m = m.replace(b"\r\n\r\n", b"\r\n\r\n.A line that starts with a dot (%s)\r\n" % name.encode(), 1)
    path = os.path.join(d.dir, name + ".eml")
    with open(path, "wb") as f:
        f.write(m)
    return m, path


def swaks(name, *args, rcpt="snap@fleet.test"):
    m, path = message(name)
    r = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(d.port), "--from",
                        "printer@fleet.test", "--to", rcpt, "--helo", "printer.fleet.test",
                        "--data", "@" + path, "--timeout", "20"] + list(args),
                       capture_output=True, text=True)
    ok = tap.ok(r.returncode == 0 and re.search(r"<[-~]  250 2.0.0 Ok: queued as", r.stdout),
                "swaks %s: 250 after the final dot" % name, r.stdout[-2000:] + r.stderr)
    if ok:
        # swaks ends the data with one more CRLF before the dot.
        sent[name] = (sk.sha256(m + b"\r\n"), "printer@fleet.test", rcpt)
    return r


def ehlo_lines(out):
    return [l[4:] for l in out.splitlines() if re.match(r"<[-~]  250[- ]", l)]


r = swaks("swaks-plain")
tap.eq(ehlo_lines(r.stdout)[:7], ["250-mx.test", "250-PIPELINING", "250-SIZE 33554432",
                                  "250-8BITMIME", "250-ENHANCEDSTATUSCODES", "250 STARTTLS",
                                  "250 2.1.0 Ok"],
       "EHLO before TLS offers PIPELINING, SIZE, 8BITMIME, ENHANCEDSTATUSCODES, STARTTLS; no AUTH")
r = swaks("swaks-pipelining", "--pipeline")
tap.ok("MAIL FROM:<printer@fleet.test>\n -> RCPT TO:<snap@fleet.test>\n -> DATA" in r.stdout,
       "swaks --pipeline sent MAIL, RCPT and DATA in one group", r.stdout[-1500:])
r = swaks("swaks-starttls", "--tls", rcpt="someone@print.test")
tap.ok("250 AUTH PLAIN LOGIN" in ehlo_lines(r.stdout) and "250 STARTTLS" not in ehlo_lines(r.stdout)[6:],
       "EHLO after TLS offers AUTH PLAIN LOGIN, no more STARTTLS", ehlo_lines(r.stdout))
swaks("swaks-auth-plain", "--tls", "--auth", "PLAIN", "--auth-user", "alice", "--auth-password",
      "s3cret pass")
swaks("swaks-auth-login", "--tls", "--auth", "LOGIN", "--auth-user", "bob", "--auth-password",
      "other")

m, path = message("swaks-auth-wrong")
r = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(d.port), "--from", "a@b",
                    "--to", "snap@fleet.test", "--tls", "--auth", "PLAIN", "--auth-user", "alice",
                    "--auth-password", "wrong", "--data", "@" + path],
                   capture_output=True, text=True)
tap.ok(r.returncode != 0 and "535 5.7.8 Error: authentication failed" in r.stdout,
       "swaks with a wrong password gets 535 5.7.8", r.stdout[-1500:])
r = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(d.port), "--from", "a@b",
                    "--to", "snap@fleet.test", "--auth", "PLAIN", "--auth-user", "alice",
                    "--auth-password", "s3cret pass", "--data", "@" + path],
                   capture_output=True, text=True)
tap.ok(r.returncode != 0 and not any("AUTH" in l for l in ehlo_lines(r.stdout)),
       "without TLS, AUTH is not offered (swaks gives up)", r.stdout[-1500:])
m, path = message("swaks-relay")
r = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(d.port), "--from", "a@b",
                    "--to", "victim@elsewhere.test", "--data", "@" + path],
                   capture_output=True, text=True)
tap.ok(r.returncode != 0 and
       "<** 554 5.7.1 <victim@elsewhere.test>: Relay access denied" in r.stdout,
       "a recipient outside the accepted list: 554 5.7.1 relay denied", r.stdout[-1500:])

# Python smtplib: plain, then STARTTLS + LOGIN (smtplib prefers PLAIN? it
# tries CRAM-MD5, PLAIN, LOGIN in its order of preference among offered).
m, _ = message("smtplib-plain")
with smtplib.SMTP("127.0.0.1", d.port, local_hostname="printer.fleet.test", timeout=20) as s:
    code, _ = s.ehlo()
    refused = s.sendmail("printer@fleet.test", ["snap@fleet.test"], m)
    tap.ok(code == 250 and refused == {}, "smtplib: plain delivery")
    sent["smtplib-plain"] = (sk.sha256(m), "printer@fleet.test", "snap@fleet.test")
m, _ = message("smtplib-tls-auth")
with smtplib.SMTP("127.0.0.1", d.port, timeout=20) as s:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    s.starttls(context=ctx)
    code, text = s.login("alice", "s3cret pass")
    tap.eq((code, text), (235, b"2.7.0 Authentication successful"), "smtplib: STARTTLS + login")
    refused = s.sendmail("printer@fleet.test", ["snap@fleet.test", "x@print.test"], m)
    tap.ok(refused == {}, "smtplib: delivery after AUTH with two recipients")
    sent["smtplib-tls-auth"] = (sk.sha256(m), "printer@fleet.test", "snap@fleet.test,x@print.test")
    # smtplib reads 503 "already authenticated" as success, and returns it.
    tap.eq(s.login("alice", "s3cret pass"), (503, b"5.5.1 Error: already authenticated"),
           "smtplib: a second AUTH gets 503 5.5.1")

# curl's SMTP client.
for name, extra in (("curl-plain", []), ("curl-starttls", ["--ssl-reqd", "-k"])):
    m, path = message(name)
    r = subprocess.run(["curl", "-sS", "-v", "smtp://127.0.0.1:%d/printer.fleet.test" % d.port,
                        "--mail-from", "printer@fleet.test", "--mail-rcpt", "snap@fleet.test",
                        "--upload-file", path, "--max-time", "20"] + extra,
                       capture_output=True, text=True)
    ok = tap.ok(r.returncode == 0 and "< 250 2.0.0 Ok: queued as" in r.stderr,
                "curl %s: 250" % name, r.stderr[-2000:])
    if ok:
        sent[name] = (sk.sha256(m), "printer@fleet.test", "snap@fleet.test")
    if name == "curl-starttls":
        tap.ok("STARTTLS" in r.stderr and "SSL connection using" in r.stderr,
               "curl used STARTTLS", r.stderr[-2000:])

# Every 250 is in the database, once, with its envelope.
d.wait_log(r"event=accepted .*", since=0)
rows = d.query("SELECT sha256, mail_from, rcpt_to, source, peer, helo FROM intake_log")
by_sha = {}
for row in rows:
    by_sha.setdefault(row[0], []).append(row)
for name, (digest, mail_from, rcpt) in sorted(sent.items()):
    found = by_sha.get(digest, [])
    tap.ok(len(found) == 1 and found[0][1] == mail_from and found[0][2] == rcpt and
           found[0][3] == "smtp" and found[0][4] == "127.0.0.1",
           "%s: stored once, byte-exact (SHA-256), with its envelope" % name,
           "rows: %r" % found)
tap.eq(len(rows), len(sent), "no other arrivals were recorded")
auth_lines = [l for l in d.log_text().splitlines() if "event=auth " in l]
tap.ok(len(auth_lines) >= 3 and all("s3cret" not in l for l in d.log_text().splitlines()),
       "AUTH is logged with the user, never the password")

# A client speaking 8-bit: HELO and a header in Latin-1, a NUL in the body.
# SQLite keeps text as bytes, PostgreSQL's text must be UTF-8: either way
# the mail is acknowledged and stored byte-exact (the envelope text on
# PostgreSQL with U+FFFD for what is not UTF-8).
import socket  # noqa: E402
raw = (b"Subject: Device Snapshot caf\xe9\r\nFrom: printer@fleet.test\r\n"
       b"Message-ID: <latin1@fleet.test>\r\n\r\nbody \xff with a \x00 NUL\r\n")
with socket.create_connection(("127.0.0.1", d.port), timeout=20) as c:
    f = c.makefile("rb")

    def reply():
        line = f.readline()
        while line[3:4] == b"-":
            line = f.readline()
        return line

    replies = [reply()]
    for cmd in (b"EHLO caf\xe9.fleet.test\r\n", b"MAIL FROM:<printer@fleet.test>\r\n",
                b"RCPT TO:<snap@fleet.test>\r\n", b"DATA\r\n"):
        c.sendall(cmd)
        replies.append(reply())
    c.sendall(raw + b".\r\n")
    replies.append(reply())
    c.sendall(b"QUIT\r\n")
tap.ok(replies[-1].startswith(b"250 2.0.0"), "8-bit HELO and headers: acknowledged with 250", replies)
tap.eq(d.query("SELECT count(*) FROM intake_log WHERE sha256 = ?", (sk.sha256(raw),)), [(1,)],
       "8-bit HELO and headers: stored once, byte-exact (SHA-256)")
tap.eq(d.stop(), 0, "snapkeepd exits 0 on SIGTERM")
d.cleanup()
tap.done()
