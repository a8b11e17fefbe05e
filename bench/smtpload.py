"""smtpload.py: the lean SMTP client of the benchmarks (bench/smtp,
bench/backends): raw sockets, one transaction at a time, so that the
client costs the machine as little as possible next to the server."""


def reply(f):
    """The last line of one (possibly multi-line) reply read from f."""
    while True:
        line = f.readline()
        if not line:
            raise ConnectionError("closed")
        if line[3:4] != b"-":
            return line


def send_mail(sock, f, body):
    """One transaction on an open session: body is CRLF lines, dot-stuffed,
    without the final dot.  Raises ConnectionError unless the server
    answers 250 to it."""
    for cmd in (b"MAIL FROM:<bench@fleet.test>\r\n", b"RCPT TO:<snap@fleet.test>\r\n", b"DATA\r\n"):
        sock.sendall(cmd)
        r = reply(f)
        if r[:1] not in (b"2", b"3"):
            raise ConnectionError("refused: %r" % r)
    sock.sendall(body + b".\r\n")
    r = reply(f)
    if not r.startswith(b"250"):
        raise ConnectionError("not accepted: %r" % r)
