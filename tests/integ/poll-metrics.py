"""A [poll.NAME] section's state reaches the daemon's /metrics and the
intake page: the Maildir poller takes a snapshot; its counters, last
success and up-ness are exported, the whole exposition parses as
Prometheus text, and /intake lists the poller with what it took."""
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sklib import TESTDATA, Tap, check_sanitizer_output, cleanup, program, tempdir  # noqa: E402

t = Tap()
try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:
    t.bail("python3-prometheus-client is missing: apt-get install python3-prometheus-client")
snapkeepd = program("snapkeepd")
d = tempdir()
md = os.path.join(d, "Maildir")
for sub in ("cur", "new", "tmp"):
    os.makedirs(os.path.join(md, sub))
shutil.copyfile(os.path.join(TESTDATA, "examples", "futuresmart-mfp.eml"), os.path.join(md, "new", "1.eml"))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


web = free_port()
conf = os.path.join(d, "snapkeep.conf")
with open(conf, "w") as fh:
    fh.write("[daemon]\nuser =\nstate_dir = %s\n[store]\ndb = %s/snapkeep.db\n[smtp]\nlisten = 127.0.0.1:%d\n"
             "[web]\nlisten = 127.0.0.1:%d\n[poll.box]\nurl = maildir:%s\ninterval = 1s\n"
             % (d, d, free_port(), web, md))
p = subprocess.Popen([snapkeepd, "--config", conf, "--foreground"], stderr=open(os.path.join(d, "log"), "wb"))
text = ""
deadline = time.monotonic() + 30
while time.monotonic() < deadline:
    try:
        text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % web, timeout=5).read().decode()
        if 'snapkeep_poll_messages_total{poller="box",result="stored"} 1' in text:
            break
    except OSError:
        pass
    time.sleep(0.2)
fams = {f.name: f for f in text_string_to_metric_families(text)}
t.ok("snapkeep_poll_messages" in fams, "poller message counters exported", text[-1500:])
samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
           for f in fams.values() for s in f.samples}
t.eq(samples.get(("snapkeep_poll_messages_total", (("poller", "box"), ("result", "stored")))), 1.0,
     "the snapshot taken from the Maildir is counted")
t.eq(samples.get(("snapkeep_poll_up", (("poller", "box"),))), 1.0, "the poller is up")
last = samples.get(("snapkeep_poll_last_success_timestamp_seconds", (("poller", "box"),)))
t.ok(last is not None and abs(last - time.time()) < 60, "last success is a recent Unix time", last)
page = ""
deadline = time.monotonic() + 10
while time.monotonic() < deadline:
    page = urllib.request.urlopen("http://127.0.0.1:%d/intake" % web, timeout=5).read().decode()
    if "<td>box</td>" in page and ">1</td>" in page.split("pollers", 1)[-1]:
        break
    time.sleep(0.2)
t.ok("<h2>Mailboxes</h2>" in page, "the intake page has a Mailboxes section", page[:500])
rows = page.split("pollers", 1)[-1].split("</table>", 1)[0]
t.ok("<td>box</td>" in rows and "maildir:" in rows, "it lists the poller and its mailbox", rows)
t.ok('<td class="num">1</td>' in rows, "with the message it took", rows)
p.terminate()
t.eq(p.wait(timeout=30), 0, "SIGTERM: exit 0")
with open(os.path.join(d, "log"), "rb") as fh:
    check_sanitizer_output([snapkeepd], fh.read())
cleanup(d)
t.done()
