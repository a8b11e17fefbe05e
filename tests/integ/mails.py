"""mails: builds test mails with Python's email package (for the tests only)."""
import base64
import email.utils
import os

from sklib import TESTDATA


def example_xml(name):
    """The decoded Device.xml of an example mail."""
    import email
    with open(os.path.join(TESTDATA, "examples", name + ".eml"), "rb") as fh:
        msg = email.message_from_binary_file(fh)
    for part in msg.walk():
        if (part.get_filename() or "").lower() == "device.xml":
            return part.get_payload(decode=True)
    raise RuntimeError("no Device.xml in " + name)


def snapshot_mail(xml, subject="Device Snapshot (Mar 9, 2025 6:00:00 AM) - 3GY25A - PHB6820301",
                  msgid=None, sender="mfp@fleet.example"):
    """A FutureSmart-shaped mail carrying xml (bytes) as Device.xml, base64, CRLF."""
    boundary = "=_test_%d" % (abs(hash((xml[:64], msgid))) % 10**8)
    b64 = base64.encodebytes(xml).replace(b"\n", b"\r\n")
    head = ("From: %s\r\nTo: fleet@fleet.example\r\nSubject: %s\r\nDate: %s\r\n"
            "Message-ID: %s\r\nMIME-Version: 1.0\r\n"
            "Content-Type: multipart/mixed; boundary=\"%s\"\r\n\r\n" % (
                sender, subject, email.utils.formatdate(0), msgid or email.utils.make_msgid(),
                boundary)).encode()
    body = ("--%s\r\nContent-Type: text/plain\r\n\r\nSee the attachments for the information.\r\n"
            "--%s\r\nContent-Type: text/xml; name=\"Device.xml\"\r\n"
            "Content-Disposition: attachment; filename=\"Device.xml\"\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n" % (boundary, boundary)).encode()
    return head + body + b64 + ("--%s--\r\n" % boundary).encode()


def alert_mail():
    return (b"From: mfp@fleet.example\r\nTo: fleet@fleet.example\r\n"
            b"Subject: [Alert Message - Test] - HP LaserJet color flow MFP M575\r\n"
            b"Message-ID: <alert-1@mfp>\r\n\r\nThis is a test alert.\r\n")


def gmime_loop_mail():
    """A Content-Type on which GMime 3.2.13 can loop forever when it
    re-encodes the parameters (fixed in 3.2.15)."""
    return (b"From: x@y\r\nSubject: loop\r\nContent-Type: multipart/mixed;\r\n "
            + "\u045c".encode() * 36 + b"=\"" + "\u045c".encode() + b"\";\r\n\r\nbody\r\n")


def many_parts_mail(n):
    parts = [b"From: x@y\r\nSubject: parts\r\nMIME-Version: 1.0\r\n"
             b"Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"]
    for i in range(n):
        parts.append(b"--b\r\nContent-Type: text/plain\r\n\r\n%d\r\n" % i)
    parts.append(b"--b--\r\n")
    return b"".join(parts)


def deep_mail(depth):
    out = [b"From: x@y\r\nSubject: deep\r\nMIME-Version: 1.0\r\n"]
    for i in range(depth):
        out.append(b"Content-Type: multipart/mixed; boundary=\"b%d\"\r\n\r\n--b%d\r\n" % (i, i))
    out.append(b"Content-Type: text/plain\r\n\r\nx\r\n")
    return b"".join(out)
