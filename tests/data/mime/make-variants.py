#!/usr/bin/python3
"""Writes the MIME variants in this folder from device.xml (run by hand;
the outputs are committed).  Every file uses LF line ends; test-mime also
feeds each one with CRLF line ends and requires the same result."""
import base64, quopri, os

here = os.path.dirname(os.path.abspath(__file__))
xml = open(os.path.join(here, "device.xml"), "rb").read()
b64 = base64.encodebytes(xml).decode()          # 76-column lines
qp = quopri.encodestring(xml).decode()           # soft breaks, =XX escapes
HDR = ("From: HP LaserJet MFP <npi123456@printers.example>\n"
       "To: fleet@example.org\n"
       "Subject: Device Snapshot (Feb 11, 2015 5:54:22 AM) - CD646A - CNBXD9SP0B\n"
       "Date: Wed, 11 Feb 2015 14:54:22 +0900\n"
       "Message-ID: <variant@printers.example>\n"
       "MIME-Version: 1.0\n")
TEXT = ("--b1\nContent-Type: text/plain; charset=UTF-8\nContent-Transfer-Encoding: 7bit\n\n"
        "See the attachments for the information.\n\n")

def mixed(part, hdr=HDR, boundary="b1", text=True):
    return (hdr + 'Content-Type: multipart/mixed; boundary="%s"\n\n' % boundary
            + (TEXT if text else "") + "--%s\n" % boundary + part + "\n--%s--\n" % boundary)

def att(ctype="text/xml", name='name="Device.xml"', disp='attachment; filename="Device.xml"',
        cte="base64", body=None):
    h = "Content-Type: %s%s\n" % (ctype, "; " + name if name else "")
    if disp:
        h += "Content-Disposition: %s\n" % disp
    if cte:
        h += "Content-Transfer-Encoding: %s\n" % cte
    if body is None:
        body = {"base64": b64, "quoted-printable": qp}.get(cte, xml.decode())
    return h + "\n" + body.rstrip("\n")

snapshot = mixed(att())
files = {
    "base64.eml": snapshot,
    "quoted-printable.eml": mixed(att(cte="quoted-printable")),
    "7bit.eml": mixed(att(cte="7bit", body=xml.decode().replace("용지 걸림 - 트레이 2", "jam"))),
    "base64-crlf-content.eml": mixed(att(body=base64.encodebytes(xml.replace(b"\n", b"\r\n")).decode())),
    "8bit.eml": mixed(att(cte="8bit")),
    "binary.eml": mixed(att(cte="binary")),
    "no-encoding.eml": mixed(att(cte=None)),
    "unknown-encoding.eml": mixed(att(cte="x-unknown", body=xml.decode())),
    "octet-stream.eml": mixed(att(ctype="application/octet-stream")),
    "application-xml.eml": mixed(att(ctype="application/xml")),
    "disposition-only.eml": mixed(att(name=None)),
    "content-type-only.eml": mixed(att(disp=None)),
    "inline-disposition.eml": mixed(att(disp='inline; filename="Device.xml"', name=None)),
    "rfc2231.eml": mixed(att(name=None, disp="attachment; filename*=UTF-8''Device%2Exml")),
    "rfc2231-continued.eml": mixed(att(name="name*0=\"Dev\"; name*1=\"ice.x\"; name*2=\"ml\"", disp=None)),
    "rfc2047-name.eml": mixed(att(name='name="=?UTF-8?B?RGV2aWNlLnhtbA==?="', disp='attachment; filename="=?iso-8859-1?q?Device=2Exml?="')),
    "lowercase.eml": mixed(att(name='name="device.xml"', disp='attachment; filename="DEVICE.XML"')),
    "single-part.eml": HDR + 'Content-Type: text/xml; name="Device.xml"\nContent-Disposition: attachment; filename="Device.xml"\nContent-Transfer-Encoding: base64\n\n' + b64,
    "legacy-no-text.eml": mixed(att(), hdr=HDR.replace(
        "Subject: Device Snapshot (Feb 11, 2015 5:54:22 AM) - CD646A - CNBXD9SP0B\n",
        "Subject: =?UTF-8?B?UHJpbnRlciBTbmFwc2hvdCAoTm92IDI4LDIwMDcgNTo0NDoxOCBQTSkg4oCTIEM1?=\n"
        " =?UTF-8?B?OTU4QSDigJMgU0c3M0NCMTAxOA==?=\n"), text=False),
    "nested-multipart.eml": HDR + 'Content-Type: multipart/mixed; boundary="outer"\n\n--outer\n'
        'Content-Type: multipart/alternative; boundary="alt"\n\n--alt\nContent-Type: text/plain\n\nhello\n'
        '--alt\nContent-Type: multipart/related; boundary="rel"\n\n--rel\nContent-Type: text/html\n\n<p>hi</p>\n--rel\n'
        + att() + "\n--rel--\n--alt--\n--outer--\n",
    "digest.eml": HDR + 'Content-Type: multipart/digest; boundary="dig"\n\n--dig\n\n'
        + mixed(att()) + "\n--dig--\n",
    "no-attachment.eml": mixed(att(name='name="Other.xml"', disp='attachment; filename="Other.xml"')),
    "alert.eml": HDR.replace("Subject: Device Snapshot (Feb 11, 2015 5:54:22 AM) - CD646A - CNBXD9SP0B",
        "Subject: [Alert Message - Test] - HP LaserJet color flow MFP M575")
        + "Content-Type: text/plain; charset=UTF-8\n\nThis is a test alert from the printer.\n",
    "header-only.eml": HDR.rstrip("\n") + "\n",
}

def forward(inner, level):
    return (("From: Admin <admin@example.org>\nTo: fleet@example.org\nSubject: Fwd: level %d\n"
             "Date: Thu, 12 Feb 2015 08:00:00 +0000\nMessage-ID: <fwd%d@example.org>\nMIME-Version: 1.0\n"
             'Content-Type: multipart/mixed; boundary="fwd%d"\n\n--fwd%d\nContent-Type: text/plain\n\nForwarded.\n\n'
             "--fwd%d\nContent-Type: message/rfc822\nContent-Disposition: inline\n\n") % ((level,) * 5)
            + inner + "\n--fwd%d--\n" % level)

files["forwarded-1.eml"] = forward(snapshot, 1)
files["forwarded-2.eml"] = forward(files["forwarded-1.eml"], 2)
files["forwarded-bare.eml"] = ("From: admin@example.org\nSubject: Fwd\nMIME-Version: 1.0\n"
                               "Content-Type: message/rfc822\n\n" + snapshot)

files["mbox-from-line.eml"] = "From npi123456@printers.example Wed Feb 11 05:54:22 2015\n" + snapshot
files["device-ascii.xml"] = xml.decode().replace("용지 걸림 - 트레이 2", "jam")

for name, text in files.items():
    with open(os.path.join(here, name), "w", encoding="utf-8", newline="\n") as f:
        f.write(text if text.endswith("\n") else text + "\n")
