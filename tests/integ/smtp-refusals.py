# smtp-refusals.py: exact transcripts of snapkeepd's refusals and of the
# smuggling and injection probes, over real sockets to the real daemon; the
# limits (size, line length, errors, connections per address, command and
# DATA timeouts); a slow client that does not hold up a fast one; pregreet;
# and SIGHUP changing networks, limits and the certificate without dropping
# an open session.
import importlib.util
import os
import re
import signal
import threading
import time

spec = importlib.util.spec_from_file_location(
    "smtplib_sk", os.path.join(os.path.dirname(os.path.abspath(__file__)), "smtp-lib.py"))
sk = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sk)

tap = sk.Tap()
sk.require_env(tap)

EHLO = (b"250-mx.test\r\n250-PIPELINING\r\n250-SIZE 65536\r\n250-8BITMIME\r\n"
        b"250-ENHANCEDSTATUSCODES\r\n250 STARTTLS\r\n")
ENVELOPE = b"MAIL FROM:<printer@fleet.test>\r\nRCPT TO:<snap@fleet.test>\r\nDATA\r\n"
ENVELOPE_OK = b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
QUEUED = re.compile(rb"^250 2\.0\.0 Ok: queued as (\d+)\r\n$")

d = sk.Daemon(tap, {"smtp": {
    "recipients": "snap@fleet.test",
    "max_message_size": "64K",
    "max_connections_per_ip": "5",
    "max_errors": "3",
    "command_timeout": "2s",
    "data_timeout": "2s",
}})
cert, key = sk.make_cert(tap, d.dir)
d.settings["smtp"].update({"tls_cert_file": cert, "tls_key_file": key})
d.write_config()
d.start()
port = d.port


def count():
    return d.query("SELECT count(*) FROM intake_log")[0][0]


def session():
    c = sk.Raw(port)
    tap.eq(c.greeting, b"220 mx.test ESMTP snapkeep\r\n", "greeting")
    return c


def ehlo(c):
    c.send(b"EHLO printer.test\r\n")
    return c.reply()


# HTTP to the SMTP port.
for probe in (b"GET / HTTP/1.1\r\nHost: mx.test\r\n\r\n", b"POST /api HTTP/1.1\r\n",
              b"CONNECT mx.test:443 HTTP/1.1\r\n"):
    c = session()
    c.send(probe)
    tap.eq(c.rest(), b"521 5.7.0 Error: this is an SMTP server\r\n",
           "HTTP %s: 521 and closed" % probe.split()[0].decode())
    c.close()

# Pipelining past a synchronisation point.
c = session()
c.send(b"EHLO printer.test\r\nMAIL FROM:<a@b>\r\n")
tap.eq(c.rest(), EHLO + b"554 5.5.0 Error: SMTP protocol synchronization\r\n",
       "a command pipelined after EHLO: 554 5.5.0 and closed")
c.close()
c = session()
ehlo(c)
before = count()
c.send(ENVELOPE + b"Subject: early\r\n\r\nbody\r\n.\r\n")
tap.eq(c.rest(), ENVELOPE_OK + b"554 5.5.0 Error: SMTP protocol synchronization\r\n",
       "message content sent with DATA, before 354: 554 5.5.0")
c.close()

# Smuggling: no other dot form ends DATA; one message, stored byte-exact.
c = session()
ehlo(c)
c.send(ENVELOPE)
tap.eq(c.reply() + c.reply() + c.reply(), ENVELOPE_OK, "envelope for the smuggling probe")
body = (b"Subject: smuggling probe\r\n\r\nline\r\n"
        b"a\n.\nMAIL FROM:<evil@x>\nRCPT TO:<snap@fleet.test>\nDATA\nsmuggled\n.\n"
        b"b\r.\rMAIL FROM:<evil@x>\r"
        b"c\r\n.\nMAIL FROM:<evil@x>\r\n"
        b"d\n.\r\nMAIL FROM:<evil@x>\r\n"
        b"e\r\n.\rMAIL FROM:<evil@x>\r\n"
        b"\0nul and ..dots\r\n..\r\n")
stored = (b"Subject: smuggling probe\r\n\r\nline\r\n"
          b"a\n.\nMAIL FROM:<evil@x>\nRCPT TO:<snap@fleet.test>\nDATA\nsmuggled\n.\n"
          b"b\r.\rMAIL FROM:<evil@x>\r"
          b"c\r\n\nMAIL FROM:<evil@x>\r\n"
          b"d\n.\r\nMAIL FROM:<evil@x>\r\n"
          b"e\r\n\rMAIL FROM:<evil@x>\r\n"
          b"\0nul and ..dots\r\n.\r\n")
c.send(body + b".\r\nQUIT\r\n")
out = c.rest()
m = re.match(rb"^250 2\.0\.0 Ok: queued as (\d+)\r\n221 2\.0\.0 Bye\r\n$", out)
tap.ok(m is not None, "smuggling probe: one 250 for the whole message, then 221", out)
rows = d.query("SELECT sha256, raw_size, mail_from FROM intake_log WHERE id = ?",
               (int(m.group(1)) if m else -1,))
tap.eq(rows, [(sk.sha256(stored), len(stored), "printer@fleet.test")],
       "smuggling probe: stored as one message, bare CR/LF kept, dots unstuffed only after CRLF")
tap.eq(d.query("SELECT count(*) FROM intake_log WHERE mail_from = 'evil@x'")[0][0], 0,
       "no smuggled transaction")
c.close()

# STARTTLS command injection (CVE-2011-0411 class).
c = session()
ehlo(c)
injected = b"RSET\r\nMAIL FROM:<injected@x>\r\n"
c.send(b"STARTTLS\r\n" + injected)
tap.eq(c.reply(), b"220 2.0.0 Ready to start TLS\r\n", "STARTTLS: 220")
c.starttls()
c.send(b"MAIL FROM:<a@b>\r\n")
tap.eq(c.reply(), b"503 5.5.1 Error: send HELO/EHLO first\r\n",
       "after the handshake: the plaintext commands were discarded, EHLO is needed again")
c.send(b"EHLO printer.test\r\n")
tap.eq(c.reply(), b"250-mx.test\r\n250-PIPELINING\r\n250-SIZE 65536\r\n250-8BITMIME\r\n"
       b"250 ENHANCEDSTATUSCODES\r\n", "EHLO over TLS: no STARTTLS offered again")
c.send(b"QUIT\r\n")
tap.eq(c.rest(), b"221 2.0.0 Bye\r\n", "QUIT over TLS")
c.close()
d.wait_log(r"event=starttls-injection session=\w+ peer=127\.0\.0\.1 discarded=%d" % len(injected))
tap.ok(True, "the injection is logged with the bytes discarded")

# Sizes.
c = session()
ehlo(c)
c.send(b"MAIL FROM:<a@b> SIZE=70000\r\n")
tap.eq(c.reply(), b"552 5.3.4 Message size exceeds fixed limit\r\n", "SIZE over the limit: 552")
before = count()
c.send(ENVELOPE)
tap.eq(c.reply() + c.reply() + c.reply(), ENVELOPE_OK, "envelope without SIZE")
big = (b"X" * 998 + b"\r\n") * 80
c.send(big + b".\r\n")
tap.eq(c.reply(), b"552 5.3.4 Error: message file too big\r\n",
       "80 KB without SIZE: read to the end, then 552")
c.send(b"RSET\r\n")
tap.eq(c.reply(), b"250 2.0.0 Ok\r\n", "the session goes on after 552")
tap.eq(count(), before, "nothing stored for the oversized message")
c.close()

# Command line limits, NUL, errors.
c = session()
c.send(b"NOOP " + b"x" * 3000 + b"\r\n")
tap.eq(c.reply(), b"500 5.5.2 Error: line too long\r\n", "a 3000-byte command: 500")
c.send(b"NO\0OP\r\n")
tap.eq(c.reply(), b"500 5.5.2 Error: NUL character in command\r\n", "NUL in a command: 500")
c.send(b"XYZZY\r\n")
tap.eq(c.rest(), b"502 5.5.2 Error: command not recognized\r\n"
       b"421 4.7.0 mx.test Error: too many errors\r\n", "third error: 421 and closed")
c.close()

# Recipients.
c = session()
ehlo(c)
for cmd, want, name in (
        (b"MAIL FROM:<a@b>", b"250 2.1.0 Ok\r\n", "MAIL"),
        (b"RCPT TO:<who@fleet.test>", b"550 5.1.1 <who@fleet.test>: Recipient address rejected: "
         b"User unknown\r\n", "unknown user in our domain: 550 5.1.1"),
        (b"RCPT TO:<victim@example.net>", b"554 5.7.1 <victim@example.net>: Relay access denied\r\n",
         "another domain: 554 5.7.1"),
        (b"VRFY root", b"252 2.0.0 Cannot VRFY user, but will accept message and attempt "
         b"delivery\r\n", "VRFY: 252")):
    c.send(cmd + b"\r\n")
    tap.eq(c.reply(), want, name)
c.close()

# Connections per address.
time.sleep(0.3)
held = [session() for _ in range(5)]
c = sk.Raw(port, greet=False)
tap.eq(c.rest(), b"421 4.7.0 mx.test Error: too many connections from 127.0.0.1\r\n",
       "sixth connection from one address: 421")
c.close()
for h in held:
    h.close()
time.sleep(0.3)

# Timeouts.
c = session()
t0 = time.time()
out = c.rest()
tap.eq(out, b"421 4.4.2 mx.test Error: timeout exceeded\r\n", "silent client: 421 4.4.2")
tap.ok(1.5 <= time.time() - t0 <= 4.5, "after command_timeout (2s)", time.time() - t0)
c.close()
c = session()
ehlo(c)
before = count()
c.send(ENVELOPE)
c.reply(), c.reply(), c.reply()
c.send(b"Subject: half\r\n\r\nhalf a mess")
tap.eq(c.rest(), b"421 4.4.2 mx.test Error: timeout exceeded\r\n", "silent in DATA: 421 4.4.2")
tap.eq(count(), before, "a message cut by the timeout is not stored")
c.close()

# A slow client does not hold up a fast one.
slow_result = {}


def slow_client():
    s = sk.Raw(port)
    ehlo(s)
    s.send(ENVELOPE)
    s.reply(), s.reply(), s.reply()
    msg = sk.unique_message(sk.example(), "slow")[:3000] + b"\r\n"
    for i in range(0, len(msg), 30):
        s.send(msg[i:i + 30])
        time.sleep(0.02)
    s.send(b".\r\n")
    slow_result["reply"] = s.reply()
    s.close()


t = threading.Thread(target=slow_client)
t.start()
time.sleep(0.2)
fast_times = []
for i in range(5):
    t0 = time.time()
    f = sk.Raw(port)
    ehlo(f)
    f.send(ENVELOPE)
    f.reply(), f.reply(), f.reply()
    f.send(sk.unique_message(sk.example(), "fast%d" % i) + b".\r\n")
    r = f.reply()
    fast_times.append(time.time() - t0)
    f.close()
    if not QUEUED.match(r):
        tap.ok(False, "fast client got 250", r)
tap.ok(t.is_alive() and max(fast_times) < 1.0,
       "five fast deliveries complete while a slow client is still sending",
       "fast: %r, slow alive: %s" % (fast_times, t.is_alive()))
t.join()
tap.ok(QUEUED.match(slow_result.get("reply", b"")) is not None, "the slow client gets its 250",
       slow_result)

# Commands pipelined after the final dot are answered after the 250.
c = session()
ehlo(c)
c.send(ENVELOPE)
c.reply(), c.reply(), c.reply()
c.send(sk.unique_message(sk.example(), "pipelined") + b".\r\n" + ENVELOPE)
r = c.reply()
tap.ok(QUEUED.match(r) is not None, "250 for the first message", r)
tap.eq(c.reply() + c.reply() + c.reply(), ENVELOPE_OK, "then the pipelined envelope")
c.send(b".\r\nQUIT\r\n")
tap.ok(re.match(rb"^250 2\.0\.0 Ok: queued as \d+\r\n221 2\.0\.0 Bye\r\n$", c.rest()) is not None,
       "an empty second message, then QUIT")
c.close()
tap.eq(d.stop(), 0, "first daemon stops with 0")

# A second daemon: pregreet with greet_pause, then SIGHUP.
d2 = sk.Daemon(tap, {"smtp": {"greet_pause": "400ms", "max_message_size": "64K"}})
d2.start()
c = sk.Raw(d2.port, greet=False)
c.send(b"EHLO early.test\r\n")
tap.eq(c.rest(), b"554 5.5.0 mx.test Error: input before greeting\r\n",
       "talking before the greeting: 554 and closed")
c.close()
patient = sk.Raw(d2.port)
tap.eq(patient.greeting, b"220 mx.test ESMTP snapkeep\r\n", "a client that waits is greeted")
tap.eq(ehlo(patient), b"250-mx.test\r\n250-PIPELINING\r\n250-SIZE 65536\r\n250-8BITMIME\r\n"
       b"250 ENHANCEDSTATUSCODES\r\n", "no STARTTLS before the reload")
cert2, key2 = sk.make_cert(tap, d2.dir)
d2.settings["smtp"].update({"allowed_networks": "10.0.0.0/8, ::1/128", "max_message_size": "1M",
                            "tls_cert_file": cert2, "tls_key_file": key2, "greet_pause": "0s"})
d2.write_config()
since = os.path.getsize(d2.log_path)
d2.send_signal(signal.SIGHUP)
d2.wait_log(r"smtp: event=reloaded tls=yes auth=no networks=2", since=since)
c = sk.Raw(d2.port, greet=False)
tap.eq(c.rest(), b"554 5.7.1 mx.test Error: access denied for 127.0.0.1\r\n",
       "after SIGHUP, a client outside allowed_networks: 554 at connect")
c.close()
patient.send(ENVELOPE.replace(b"RCPT TO:<snap@fleet.test>", b"RCPT TO:<any@where.test>"))
tap.eq(patient.reply() + patient.reply() + patient.reply(), ENVELOPE_OK,
       "the session opened before SIGHUP goes on")
patient.send(sk.unique_message(sk.example(), "across-reload") + b".\r\n")
tap.ok(QUEUED.match(patient.reply()) is not None, "and delivers, with its old settings")
patient.close()
d2.settings["smtp"]["allowed_networks"] = "127.0.0.0/8"
d2.write_config()
since = os.path.getsize(d2.log_path)
d2.send_signal(signal.SIGHUP)
d2.wait_log(r"smtp: event=reloaded", since=since)
c = sk.Raw(d2.port)
tap.eq(ehlo(c), b"250-mx.test\r\n250-PIPELINING\r\n250-SIZE 1048576\r\n250-8BITMIME\r\n"
       b"250-ENHANCEDSTATUSCODES\r\n250 STARTTLS\r\n",
       "new sessions get the new size limit and STARTTLS with the new certificate")
c.send(b"STARTTLS\r\n")
c.reply()
c.starttls()
c.send(b"EHLO again.test\r\n")
tap.ok(c.reply().startswith(b"250-mx.test\r\n"), "the reloaded certificate works")
c.close()
d2.settings["smtp"]["tls_key_file"] = "/nonexistent/key.pem"
d2.write_config()
since = os.path.getsize(d2.log_path)
d2.send_signal(signal.SIGHUP)
d2.wait_log(r"daemon: event=reload-failed service=smtp error=.*action=kept-old", since=since)
c = sk.Raw(d2.port)
tap.ok(b"250 STARTTLS" in ehlo(c), "a reload with a broken key keeps the running settings")
c.close()
tap.eq(d2.stop(), 0, "second daemon stops with 0")

# A third daemon: the total connection limit, a full disk (452), a storage
# failure (451: another process holds the database's write lock longer than
# busy_timeout), a failed TLS handshake.
d3 = sk.Daemon(tap, {"smtp": {"max_connections": "2"},
                     "store": {"busy_timeout": "300ms"}})
cert3, key3 = sk.make_cert(tap, d3.dir)
d3.settings["smtp"].update({"tls_cert_file": cert3, "tls_key_file": key3})
d3.write_config()
d3.start()
a, b = sk.Raw(d3.port), sk.Raw(d3.port)
c = sk.Raw(d3.port, greet=False)
tap.eq(c.rest(), b"421 4.7.0 mx.test Error: too many connections\r\n",
       "third connection over max_connections = 2: 421")
c.close()
b.close()
ehlo(a)
a.send(ENVELOPE)
tap.eq(a.reply() + a.reply() + a.reply(), ENVELOPE_OK, "envelope while the database is locked")
locker = sk.sklib.WriteLock(d3.db)
since = os.path.getsize(d3.log_path)
lost = sk.unique_message(sk.example(), "locked-out")
a.send(lost + b".\r\n")
tap.eq(a.reply(), b"451 4.3.0 Error: temporary failure storing the message, try again later\r\n",
       "the database cannot be written: 451 4.3.0 after the dot")
d3.wait_log(r"smtp: event=commit-failed session=\w+ peer=127\.0\.0\.1", since=since)
locker.release()
tap.eq(d3.query("SELECT count(*) FROM intake_log WHERE sha256 = ?", (sk.sha256(lost),))[0][0], 0,
       "the refused message is not stored")
a.send(ENVELOPE)
a.reply(), a.reply(), a.reply()
a.send(lost + b".\r\n")
tap.ok(QUEUED.match(a.reply()) is not None, "the client's retry in the same session: 250")
tap.eq(d3.query("SELECT count(*) FROM intake_log WHERE sha256 = ?", (sk.sha256(lost),))[0][0], 1,
       "and it is stored once")
a.close()
d3.stop()
d3.settings["store"]["min_free_space"] = "1000T"
d3.write_config()
d3.start()
c = sk.Raw(d3.port)
ehlo(c)
c.send(b"MAIL FROM:<a@b> SIZE=1000\r\n")
tap.eq(c.reply(), b"452 4.3.1 Insufficient system storage\r\n",
       "less free space than min_free_space: 452 4.3.1 at MAIL")
c.close()
d3.wait_log(r"smtp: event=low-space session=\w+ dir=\S+ available=\d+ needed=\d+")
c = sk.Raw(d3.port)
ehlo(c)
c.send(b"STARTTLS\r\n")
c.reply()
c.send(b"\x16\x03\x01\x00\x05hello, not a ClientHello\r\n")
tap.eq(c.rest()[:1], b"", "garbage instead of a TLS handshake: closed")
c.close()
d3.wait_log(r"smtp: event=tls-failed session=\w+ peer=127\.0\.0\.1 error=")
tap.eq(d3.stop(), 0, "third daemon stops with 0")

for line in d.log_text().splitlines() + d2.log_text().splitlines() + d3.log_text().splitlines():
    if "event=refused" in line or ("event=closed" in line and " cmd=" in line):
        if not re.search(r"reason=[a-z-]+ code=[245]\d\d status=[245]\.\d+\.\d+", line):
            tap.ok(False, "refusal log line has reason, code and status", line)
            break
else:
    tap.ok(True, "every refusal log line has reason, code and status")
d.cleanup()
d2.cleanup()
d3.cleanup()
tap.done()
