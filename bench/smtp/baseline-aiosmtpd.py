# baseline-aiosmtpd.py PORT DB: the straightforward receiver bench/smtp
# compares snapkeepd with: aiosmtpd, Python's email to find Device.xml,
# ElementTree to read the serial, and one SQLite commit (synchronous=FULL)
# per message before the 250.  Runs until SIGINT/SIGTERM.
import email
import hashlib
import signal
import sqlite3
import sys
import threading
import xml.etree.ElementTree as ET

from aiosmtpd.controller import Controller


class Handler:
    def __init__(self, path):
        self.lock = threading.Lock()
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("CREATE TABLE IF NOT EXISTS messages (id INTEGER PRIMARY KEY, "
                        "sha256 TEXT, serial TEXT, raw BLOB)")

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        msg = email.message_from_bytes(raw)
        serial = None
        for part in msg.walk():
            if (part.get_filename() or "").lower() == "device.xml":
                xml = part.get_payload(decode=True)
                try:
                    root = ET.fromstring(xml)
                    for el in root.iter():
                        if el.tag.rsplit("}", 1)[-1] == "SerialNumber" and el.text:
                            serial = el.text
                            break
                except ET.ParseError:
                    pass
                break
        with self.lock:
            self.db.execute("BEGIN")
            self.db.execute("INSERT INTO messages (sha256, serial, raw) VALUES (?, ?, ?)",
                            (hashlib.sha256(raw).hexdigest(), serial, raw))
            self.db.execute("COMMIT")
        return "250 2.0.0 Ok"


def main():
    port, path = int(sys.argv[1]), sys.argv[2]
    controller = Controller(Handler(path), hostname="127.0.0.1", port=port,
                            data_size_limit=64 * 1024 * 1024)
    controller.start()
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *a: stop.set())
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
