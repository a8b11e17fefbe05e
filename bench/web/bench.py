# bench/web/bench.py: the web view's server-side latency on a realistic
# database, and the time to build that database.
#
#   1. Build: snapkeepd (SMTP, the intake funnel, parse workers) receives
#      every snapshot of DEVICES devices x DAYS days (daily AutoSend) from
#      snapkeep-sim over SMTP; the time until the last one is parsed and
#      committed is "build".  Skipped when --db names an existing database.
#   2. Measure: snapkeepd serves the web view on that database; one
#      keep-alive client asks N times for the fleet page (the first page,
#      filtered, sorted and later pages), a device page (random devices,
#      the default one-year range) and the counter API (random devices, two
#      years at a daily interval), after a short warm-up; the server's own
#      time comes from the Server-Timing header snapkeep adds (from the
#      request line to the answer queued, and the thread's CPU time), the
#      client's round trip is printed beside it.  The first fleet request
#      after a new snapshot rebuilds the fleet table; that "cold" time is
#      measured separately.
#
# Usage: SK_TOP_BUILDDIR=build python3 bench/web/bench.py [--devices 1000]
#        [--days 730] [--db FILE] [--keep] [--requests 300] [--warmup 20]
# Needs snapkeepd and snapkeep-sim built.  The full size takes about an hour
# and 8 GB of disk on two cores (snapshots are generated with 20-entry event
# logs, so the mails are ~40 KB instead of ~400 KB; the distinct events
# stored are the same, the archive is smaller).
import argparse
import http.client
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

BUILD = os.environ.get("SK_TOP_BUILDDIR", os.getcwd())


def die(msg):
    print("bench: " + msg, file=sys.stderr)
    sys.exit(1)


def program(name):
    path = os.path.join(BUILD, name)
    if not os.access(path, os.X_OK):
        die("%s is not built (set SK_TOP_BUILDDIR)" % path)
    return path


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, proc, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            die("snapkeepd exited with %s" % proc.returncode)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    die("nothing listens on %d" % port)


def write_conf(path, sections):
    with open(path, "w") as f:
        for name, keys in sections.items():
            f.write("[%s]\n" % name)
            for k, v in keys.items():
                f.write("%s = %s\n" % (k, v))


class Daemon:
    def __init__(self, work, db, web=False):
        self.smtp = free_port()
        self.http = free_port()
        conf = os.path.join(work, "snapkeep-%d.conf" % self.smtp)
        sections = {
            "daemon": {"user": "", "state_dir": work, "log_level": "warning"},
            "store": {"db": db},
            "smtp": {"listen": "127.0.0.1:%d" % self.smtp, "max_connections": "64"},
        }
        if web:
            sections["web"] = {"listen": "127.0.0.1:%d" % self.http}
        write_conf(conf, sections)
        self.log = open(os.path.join(work, "snapkeepd-%d.log" % self.smtp), "w")
        self.proc = subprocess.Popen([program("snapkeepd"), "--config", conf, "--foreground"],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        wait_port(self.smtp, self.proc)
        if web:
            wait_port(self.http, self.proc)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=300)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def counts(db):
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=30)
    try:
        row = con.execute("SELECT count(*), sum(outcome = 'pending') FROM intake").fetchone()
        return row[0] or 0, row[1] or 0
    except sqlite3.Error:
        return 0, 0
    finally:
        con.close()


def build(args, work, db):
    t0 = time.time()
    d = Daemon(work, db)
    sim = [program("snapkeep-sim"), "--seed", str(args.seed), "--devices", str(args.devices),
           "--start", args.start, "--days", str(args.days), "--schedule", "1d",
           "--log-capacity", "20", "--job-log-capacity", "10",
           "--smtp", "smtp://127.0.0.1:%d" % d.smtp, "--connections", "4", "-q"]
    r = subprocess.run(sim, capture_output=True, text=True)
    if r.returncode != 0:
        d.stop()
        die("snapkeep-sim failed: %s" % r.stderr[-2000:])
    sent_s = time.time() - t0
    while True:
        n, pending = counts(db)
        if pending == 0 and n > 0:
            break
        time.sleep(2)
    d.stop()
    total = time.time() - t0
    n, _ = counts(db)
    size = os.path.getsize(db)
    print("build: %d devices x %d days: %d snapshots in %.0f s (%.0f msg/s; all sent after %.0f s);"
          " database %.2f GB" % (args.devices, args.days, n, total, n / total, sent_s, size / 1e9))
    sys.stdout.flush()


def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100.0 * (len(s) - 1))))]


def timing(resp):
    """(server wall ms, server CPU ms) from snapkeep's Server-Timing header."""
    h = resp.getheader("Server-Timing") or ""
    app = re.search(r"app;dur=([0-9.]+)", h)
    cpu = re.search(r"cpu;dur=([0-9.]+)", h)
    return (float(app.group(1)) if app else float("nan"), float(cpu.group(1)) if cpu else float("nan"))


def measure(args, work, db):
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
    serials = [r[0] for r in con.execute("SELECT serial FROM device_status")]
    models = [r[0] for r in con.execute("SELECT DISTINCT model FROM device_status")]
    snaps = con.execute("SELECT count(*) FROM snapshots").fetchone()[0]
    con.close()
    print("database: %s, %d devices, %d snapshots" % (db, len(serials), snaps))
    t0 = time.time()
    d = Daemon(work, db, web=True)
    # The port is bound before the database is opened (and migrated): wait
    # until the web view answers.
    while True:
        try:
            probe = http.client.HTTPConnection("127.0.0.1", d.http, timeout=600)
            probe.request("GET", "/healthz")
            if probe.getresponse().status == 200:
                probe.close()
                break
        except OSError:
            pass
        if time.time() - t0 > 3600:
            die("the web view did not come up")
        time.sleep(0.2)
    print("daemon start (opening and migrating the database): %.1f s" % (time.time() - t0))
    rnd = random.Random(1)
    c = http.client.HTTPConnection("127.0.0.1", d.http, timeout=60)

    def get(path):
        t = time.perf_counter()
        c.request("GET", path)
        r = c.getresponse()
        body = r.read()
        wall = (time.perf_counter() - t) * 1000
        if r.status != 200:
            die("GET %s: %d %s" % (path, r.status, body[:200]))
        srv, cpu = timing(r)
        return srv, cpu, wall, len(body)

    # The first fleet request builds the fleet table (cold), as after every
    # new snapshot; later ones filter, sort and page the kept table.
    cold = get("/")
    print("fleet page, cold (builds the fleet table): server %.1f ms (CPU %.1f ms), round trip %.1f ms"
          % cold[:3])

    kinds = {
        "fleet page": lambda: rnd.choice(["/", "/?page=2", "/?sort=ppd", "/?sort=supply&order=asc",
                                          "/?state=low", "/?model=" + models[0].replace(" ", "+"),
                                          "/?q=" + serials[0][:6]]),
        "device page": lambda: "/devices/" + rnd.choice(serials),
        "device, 2 y": lambda: "/devices/%s?range=2y" % rnd.choice(serials),
        "counter API": lambda: "/api/devices/%s/counters?interval=day" % rnd.choice(serials),
    }
    # Warm up: each worker thread compiles its statements once.
    for gen in kinds.values():
        for _ in range(args.warmup):
            get(gen())
    results = {}
    for name, gen in kinds.items():
        srv, cpu, wall, size = [], [], [], []
        for _ in range(args.requests):
            s, u, w, n = get(gen())
            srv.append(s)
            cpu.append(u)
            wall.append(w)
            size.append(n)
        results[name] = (srv, wall, size)
        print("%-12s server median %6.2f ms  p99 %6.2f ms (CPU median %5.2f, p99 %5.2f)"
              " | round trip median %6.2f ms  p99 %6.2f ms | %d requests, %.0f KB median"
              % (name, statistics.median(srv), pct(srv, 99), statistics.median(cpu), pct(cpu, 99),
                 statistics.median(wall), pct(wall, 99), len(srv), statistics.median(size) / 1024))
        sys.stdout.flush()
    c.close()
    d.stop()
    return results


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--days", type=int, default=730)
    ap.add_argument("--start", default=None, help="first day (default: DAYS before today)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--db", help="database to use (built when missing)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--build-only", action="store_true")
    args = ap.parse_args()
    if args.start is None:
        args.start = time.strftime("%Y-%m-%d", time.gmtime(time.time() - args.days * 86400))
    work = tempfile.mkdtemp(prefix="sk-bench-web-")
    db = args.db or os.path.join(work, "bench.db")
    try:
        if not os.path.exists(db):
            build(args, work, db)
        if not args.build_only:
            measure(args, work, db)
    finally:
        if args.keep or args.db:
            print("work directory kept: %s" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
