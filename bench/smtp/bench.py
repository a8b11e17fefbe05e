# bench/smtp/bench.py: SMTP intake throughput and memory, in one run on one
# machine, with ratios:
#
#   - SQLite's flush rate: single-row commits/s with synchronous=FULL (WAL),
#     the floor of any receiver that commits once per message;
#   - snapkeepd (durable: 250 only after the group commit) at 1, 8 and 32
#     connections, realistic snapshot mails from snapkeep-sim (unique bytes);
#   - Postfix's smtp-sink (accepts and discards: SMTP's ceiling here), same
#     client, same mails;
#   - a straightforward receiver: aiosmtpd + email + ElementTree + sqlite3,
#     one commit per message (baseline-aiosmtpd.py);
#   - the same against smtp-source (Postfix's load client; it repeats one
#     file, so snapkeepd records duplicates after the first message);
#   - snapkeepd's peak RSS with 100 concurrent sessions each sending a 3 MB
#     snapshot (snapkeep-sim --detailed-errors).
#
# Usage: SK_TOP_BUILDDIR=build python3 bench/smtp/bench.py [--seconds 8]
#        [--conns 1,8,32] [--quick]
# Needs: snapkeepd and snapkeep-sim built, smtp-sink and smtp-source
# (apt-get install postfix), python3-aiosmtpd.  The client is this script
# (one process per connection; every message has a unique X-Bench header);
# its CPU shares the machine with the server, the same for every server.
import argparse
import multiprocessing as mp
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.environ.get("SK_TOP_BUILDDIR", os.getcwd())
sys.path.insert(0, os.path.dirname(HERE))
from smtpload import reply, send_mail  # noqa: E402  (bench/smtpload.py)


def die(msg):
    print("bench: " + msg, file=sys.stderr)
    sys.exit(1)


def need(tool, package):
    if shutil.which(tool) is None and not os.path.exists(tool):
        die("%s is missing: apt-get install %s" % (tool, package))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    die("nothing listens on %d" % port)


def stuff(data):
    """CRLF lines, dot-stuffed, as sent in DATA (without the final dot)."""
    data = re.sub(rb"\r?\n", b"\r\n", data)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return re.sub(rb"(?m)^\.", b"..", data)


# ---- the client -------------------------------------------------------------

def client(port, mails, deadline, count, start, tag, out):
    sock = socket.create_connection(("127.0.0.1", port), timeout=120)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    f = sock.makefile("rb")
    reply(f)
    sock.sendall(b"EHLO bench.test\r\n")
    reply(f)
    start.wait()
    n = nbytes = 0
    t0 = time.time()
    while (count and n < count) or (not count and time.time() < deadline):
        body = b"X-Bench: %s-%d\r\n" % (tag.encode(), n) + mails[n % len(mails)]
        send_mail(sock, f, body)
        n += 1
        nbytes += len(body)
    elapsed = time.time() - t0
    sock.sendall(b"QUIT\r\n")
    sock.close()
    out.put((n, nbytes, elapsed))


def load(port, mails, conns, seconds=0, count=0, tag="b"):
    """conns processes, one connection each, for seconds (or count messages
    each).  Returns (messages/s, MB/s, messages)."""
    start = mp.Barrier(conns + 1)
    out = mp.Queue()
    t_end = time.time() + 2.0 + 0.05 * conns + seconds if seconds else 0
    procs = [mp.Process(target=client, args=(port, mails, t_end, count, start,
                                             "%s%d" % (tag, i), out)) for i in range(conns)]
    for p in procs:
        p.start()
    start.wait()
    results = [out.get(timeout=seconds + 600) for _ in procs]
    for p in procs:
        p.join()
    n = sum(r[0] for r in results)
    nbytes = sum(r[1] for r in results)
    elapsed = max(r[2] for r in results)
    return n / elapsed, nbytes / elapsed / 1e6, n


# ---- the servers ------------------------------------------------------------

class Snapkeepd:
    name = "snapkeepd (durable, parsing)"

    def __init__(self, extra=None):
        self.dir = tempfile.mkdtemp(prefix="bench-snapkeepd-")
        self.port = free_port()
        conf = os.path.join(self.dir, "snapkeep.conf")
        settings = {"daemon": {"user": "", "state_dir": self.dir, "log_level": "warning"},
                    "smtp": {"listen": "127.0.0.1:%d" % self.port, "max_connections": "300",
                             "max_connections_per_ip": "300", "hostname": "bench.test"}}
        for k, v in (extra or {}).items():
            settings.setdefault(k, {}).update(v)
        with open(conf, "w") as f:
            for s, kv in settings.items():
                f.write("[%s]\n" % s + "".join("%s = %s\n" % i for i in kv.items()))
        self.log = open(os.path.join(self.dir, "log"), "wb")
        self.proc = subprocess.Popen([os.path.join(BUILD, "snapkeepd"), "--config", conf,
                                      "--foreground"], stdout=self.log, stderr=self.log)
        wait_port(self.port)

    def rss_peak_kb(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])

    def rss_kb(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(120)
        self.log.close()
        db = os.path.join(self.dir, "snapkeep.db")
        con = sqlite3.connect(db)
        rows = con.execute("SELECT count(*), count(DISTINCT message_id) FROM intake").fetchone()
        con.close()
        shutil.rmtree(self.dir, ignore_errors=True)
        return rows


class SnapkeepdAcceptOnly(Snapkeepd):
    """[intake] parse_workers = 0: the SMTP and commit path alone."""
    name = "snapkeepd (durable, accept only)"

    def __init__(self):
        super().__init__({"intake": {"parse_workers": "0"}})


class SmtpSink:
    name = "smtp-sink (discards)"

    def __init__(self):
        self.port = free_port()
        args = ["smtp-sink", "127.0.0.1:%d" % self.port, "1024"]
        if os.geteuid() == 0:
            args[1:1] = ["-u", "nobody"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(30)


class Aiosmtpd:
    name = "aiosmtpd+email+ElementTree+sqlite3"

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="bench-aiosmtpd-")
        self.port = free_port()
        self.proc = subprocess.Popen(["/usr/bin/python3", os.path.join(HERE, "baseline-aiosmtpd.py"),
                                      str(self.port), os.path.join(self.dir, "baseline.db")],
                                     stdout=subprocess.DEVNULL)
        wait_port(self.port)

    def stop(self):
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(30)
        shutil.rmtree(self.dir, ignore_errors=True)


# ---- the rest ---------------------------------------------------------------

def sqlite_flush_rate(seconds=3.0):
    d = tempfile.mkdtemp(prefix="bench-sqlite-")
    con = sqlite3.connect(os.path.join(d, "t.db"), isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=FULL")
    con.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    n = 0
    t0 = time.time()
    while time.time() - t0 < seconds:
        con.execute("BEGIN")
        con.execute("INSERT INTO t (v) VALUES (?)", ("x" * 100,))
        con.execute("COMMIT")
        n += 1
    rate = n / (time.time() - t0)
    con.close()
    shutil.rmtree(d, ignore_errors=True)
    return rate


def smtp_source(port, lf_file, conns, count):
    t0 = time.time()
    r = subprocess.run(["smtp-source", "-s", str(conns), "-m", str(count), "-d", "-F", lf_file,
                        "-f", "bench@fleet.test", "-t", "snap@fleet.test", "-M", "bench.test",
                        "127.0.0.1:%d" % port], capture_output=True, text=True, timeout=900)
    elapsed = time.time() - t0
    if r.returncode != 0:
        die("smtp-source failed: %s" % r.stderr[-500:])
    return count / elapsed, count * os.path.getsize(lf_file) / elapsed / 1e6


def memory_run(big_mails, sessions=100, cls=None):
    """sessions concurrent clients, each sending one ~3 MB snapshot at once."""
    srv = (cls or Snapkeepd)()
    before = srv.rss_kb()
    start = threading.Barrier(sessions)
    results = []

    def one(i):
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=300)
        f = s.makefile("rb")
        reply(f)
        s.sendall(b"EHLO mem.test\r\n")
        reply(f)
        start.wait()
        for cmd in (b"MAIL FROM:<m@fleet.test>\r\n", b"RCPT TO:<snap@fleet.test>\r\n", b"DATA\r\n"):
            s.sendall(cmd)
            reply(f)
        s.sendall(b"X-Bench: mem-%d\r\n" % i + big_mails[i % len(big_mails)] + b".\r\n")
        results.append(reply(f))
        s.close()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(sessions)]
    t0 = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.time() - t0
    peak = srv.rss_peak_kb()
    ok = sum(1 for r in results if r.startswith(b"250"))
    rows = srv.stop()
    return before, peak, ok, elapsed, rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=8)
    ap.add_argument("--conns", default="1,8,32")
    ap.add_argument("--quick", action="store_true", help="2 s runs, 20 devices")
    args = ap.parse_args()
    conns_list = [int(c) for c in args.conns.split(",")]
    seconds = 2 if args.quick else args.seconds
    need(os.path.join(BUILD, "snapkeepd"), "(build snapkeep)")
    need(os.path.join(BUILD, "snapkeep-sim"), "(build snapkeep)")
    need("smtp-sink", "postfix")
    need("smtp-source", "postfix")
    try:
        import aiosmtpd  # noqa: F401
    except ImportError:
        die("aiosmtpd is missing: apt-get install python3-aiosmtpd")

    work = tempfile.mkdtemp(prefix="bench-smtp-")
    sim = os.path.join(BUILD, "snapkeep-sim")
    subprocess.run([sim, "--out", os.path.join(work, "mails"), "-n", "20" if args.quick else "40",
                    "-d", "20", "-s", "7"], check=True, capture_output=True)
    subprocess.run([sim, "--out", os.path.join(work, "big"), "-n", "4", "--test",
                    "--detailed-errors", "-s", "8"], check=True, capture_output=True)
    names = sorted(os.listdir(os.path.join(work, "mails")))
    mails = [stuff(open(os.path.join(work, "mails", n), "rb").read()) for n in names]
    big = [stuff(open(os.path.join(work, "big", n), "rb").read())
           for n in sorted(os.listdir(os.path.join(work, "big")))]
    avg_kb = sum(len(m) for m in mails) / len(mails) / 1024
    big_mb = sum(len(m) for m in big) / len(big) / 1e6
    lf_file = os.path.join(work, "one.eml")
    with open(lf_file, "wb") as f:
        f.write(open(os.path.join(work, "mails", names[0]), "rb").read().replace(b"\r\n", b"\n"))

    print("bench/smtp: %d CPUs, %d snapkeep-sim mails averaging %.0f KB; %d s per run"
          % (os.cpu_count(), len(mails), avg_kb, seconds))
    flush = sqlite_flush_rate()
    print("SQLite single-row commits/s, synchronous=FULL (WAL): %.0f" % flush)
    print()

    table = {}
    for cls in (Snapkeepd, SnapkeepdAcceptOnly, SmtpSink, Aiosmtpd):
        for c in conns_list:
            srv = cls()
            rate, mbs, n = load(srv.port, mails, c, seconds=seconds, tag=cls.__name__)
            extra = srv.stop()
            table[(cls.name, c)] = (rate, mbs)
            check = ""
            if issubclass(cls, Snapkeepd):
                check = "  (db: %d arrivals, %d distinct messages)" % extra
            print("%-36s %2d conn: %7.1f msg/s %7.1f MB/s  (%d msgs)%s"
                  % (cls.name, c, rate, mbs, n, check), flush=True)
    print()
    print("smtp-source (one file repeated; %s):" % names[0])
    for cls in (Snapkeepd, SmtpSink):
        for c in conns_list:
            srv = cls()
            count = max(100, int(c * 60))
            rate, mbs = smtp_source(srv.port, lf_file, c, count)
            srv.stop()
            table[("source " + cls.name, c)] = (rate, mbs)
            print("%-36s %2d conn: %7.1f msg/s %7.1f MB/s  (%d msgs)"
                  % ("smtp-source -> " + cls.name.split()[0], c, rate, mbs, count), flush=True)
    print()
    print("Ratios (messages/s; parsing = default configuration, accept = parse_workers 0):")
    for c in conns_list:
        sk = table[(Snapkeepd.name, c)][0]
        ska = table[(SnapkeepdAcceptOnly.name, c)][0]
        sink = table[(SmtpSink.name, c)][0]
        base = table[(Aiosmtpd.name, c)][0]
        ssk = table[("source " + Snapkeepd.name, c)][0]
        ssink = table[("source " + SmtpSink.name, c)][0]
        print("  %2d conn: vs smtp-sink %.2f (accept %.2f)   vs aiosmtpd baseline %.1fx "
              "(accept %.1fx)   vs SQLite flush rate %.2fx (accept %.2fx)   smtp-source: %.2f"
              % (c, sk / sink, ska / sink, sk / base, ska / base, sk / flush, ska / flush,
                 ssk / ssink))
    print()
    for cls in (Snapkeepd, SnapkeepdAcceptOnly):
        before, peak, ok, elapsed, rows = memory_run(big, cls=cls)
        print("Memory, %s: 100 concurrent sessions x %.1f MB: %d x 250 in %.1f s; "
              "RSS %.1f MB idle, peak %.1f MB  (db: %d arrivals)"
              % (cls.name, big_mb, ok, elapsed, before / 1024, peak / 1024, rows[0]))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
