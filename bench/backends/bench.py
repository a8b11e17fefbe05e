# bench/backends/bench.py: SQLite against PostgreSQL as snapkeep's store,
# in one run on one machine, with ratios against the SQLite single node:
#
#   1. Durable accept throughput.  The same pre-generated snapkeep-sim mails
#      (--out, realistic size: 200-entry event logs) go over SMTP to
#        - snapkeepd on SQLite (one node, synchronous=FULL),
#        - snapkeepd on PostgreSQL (one node),
#        - two snapkeepd nodes on the same PostgreSQL (two SMTP ports; the
#          connections alternate between them, each sends its share),
#      each with a fresh store and CONNS concurrent connections (this
#      script's client: one process per connection, every mail sent once,
#      each 250 counted).  PostgreSQL runs durable: fsync, full_page_writes
#      and synchronous_commit on (sklib.PgServer(durable=True)), like
#      SQLite's synchronous=FULL; data directory and SQLite file on the same
#      file system.  Reported: messages/s acknowledged with 250 (time to
#      the last 250), and messages/s parsed (time until no intake row is
#      pending), both from the first MAIL FROM; the store is then checked
#      (one intake row, one message and one snapshot per mail sent).  The
#      same three again accept only ([intake] parse_workers = 0: the SMTP
#      side and the store's commits without parsing beside them).
#   2. Device-page latency on the same data.  Other snapkeep-sim mails (a
#      daily snapshot over a year, 20-entry event logs) are imported with
#      `snapkeep import --db` into a SQLite file and into a PostgreSQL
#      database (both imports at once; their times are printed; then
#      VACUUM ANALYZE on PostgreSQL, as its autovacuum does soon after);
#      then one snapkeepd per store serves the web view (both running,
#      idle), and one keep-alive client per daemon asks, alternating
#      between the two, for GET /devices/SERIAL (the default one-year
#      range) and GET /api/devices/SERIAL/counters?interval=day over
#      random devices, the same sequence for both, after a warm-up.
#      Server time from the Server-Timing header snapkeep adds (request
#      line to answer queued); the client's round trip beside it.  Median
#      and p99 per backend.
#
# Usage: SK_TOP_BUILDDIR=build python3 bench/backends/bench.py [--conns 8]
#        [--devices 100] [--days 4] [--web-devices 10] [--web-days 365]
#        [--requests 300] [--quick] [--keep] [--web-only]
# Needs: snapkeepd, snapkeep and snapkeep-sim built; PostgreSQL 15 from
# Debian (apt-get install postgresql-15; run as root, the server runs as
# the system user postgres).  The default run takes 2.5 to 4 minutes on two
# cores; the mails take about 0.5 GB in a temporary directory.
import argparse
import http.client
import multiprocessing as mp
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

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
BUILD = os.environ.get("SK_TOP_BUILDDIR", os.getcwd())
sys.path.insert(0, os.path.join(TOP, "tests", "integ"))
import sklib  # noqa: E402  (PgServer: a private PostgreSQL server)
sys.path.insert(0, os.path.join(TOP, "bench"))
from smtpload import reply, send_mail  # noqa: E402  (bench/smtpload.py)


def die(msg):
    print("bench: " + msg, file=sys.stderr)
    sys.exit(1)


def program(name):
    path = os.path.join(BUILD, name)
    if not os.access(path, os.X_OK):
        die("%s is not built (set SK_TOP_BUILDDIR)" % path)
    return path


def stuff(data):
    """CRLF lines, dot-stuffed, as sent in DATA (without the final dot)."""
    data = re.sub(rb"\r?\n", b"\r\n", data)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return re.sub(rb"(?m)^\.", b"..", data)


def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100.0 * (len(s) - 1))))]


# ---- stores -----------------------------------------------------------------

def psql(url, sql):
    r = subprocess.run([os.path.join(sklib.PG_BIN, "psql"), "-X", "-At", "-F", "|", "-d", url,
                        "-c", sql], capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise RuntimeError("psql: %s" % r.stderr.strip())
    return [line.split("|") for line in r.stdout.splitlines()]


def query(store, sql):
    """Rows of one read-only query, on a SQLite file or a PostgreSQL URL
    (values as text)."""
    if sklib.is_pg(store):
        return psql(store, sql)
    con = sqlite3.connect("file:%s?mode=ro" % store, uri=True, timeout=30)
    try:
        return [[str(v) for v in row] for row in con.execute(sql)]
    finally:
        con.close()


def intake_counts(store):
    """(intake rows, pending rows); (0, 0) before the schema exists."""
    try:
        row = query(store, "SELECT count(*), coalesce(sum(CASE WHEN outcome = 'pending' THEN 1 ELSE 0 END), 0)"
                           " FROM intake")[0]
        return int(row[0]), int(row[1])
    except (sqlite3.Error, RuntimeError):
        return 0, 0


def store_summary(store):
    """[intake rows, distinct messages, snapshots, stored outcomes]."""
    row = query(store, "SELECT (SELECT count(*) FROM intake), (SELECT count(DISTINCT message_id) FROM intake),"
                       " (SELECT count(*) FROM snapshots),"
                       " (SELECT count(*) FROM intake WHERE outcome = 'stored')")[0]
    return [int(v) for v in row]


# ---- the daemons ------------------------------------------------------------

class Node:
    """One snapkeepd in the foreground: its own state directory (spool),
    the given store, SMTP (and the web view when web is set, else none) on
    free loopback ports.  Maintenance is off (its first pass would start a
    minute in)."""

    def __init__(self, work, name, store, web=False, parse_workers=None):
        self.dir = os.path.join(work, name)
        os.makedirs(self.dir)
        self.smtp = sklib.free_port()
        self.http = sklib.free_port() if web else None
        conf = os.path.join(self.dir, "snapkeep.conf")
        with open(conf, "w") as f:
            f.write("[daemon]\nuser =\nstate_dir = %s\nlog_level = warning\n" % self.dir)
            f.write("[store]\n%smaintenance_interval = 0\n" % sklib.store_config(store))
            if parse_workers is not None:
                f.write("[intake]\nparse_workers = %d\n" % parse_workers)
            f.write("[smtp]\nlisten = 127.0.0.1:%d\nmax_connections = 300\n"
                    "max_connections_per_ip = 300\nhostname = %s.bench.test\n" % (self.smtp, name))
            f.write("[web]\n" + ("listen = 127.0.0.1:%d\n" % self.http if web else "enabled = false\n"))
        self.log_path = os.path.join(self.dir, "snapkeepd.log")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([program("snapkeepd"), "--config", conf, "--foreground"],
                                     stdout=self.log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout=300):
        """Until SMTP greets (the store is open and migrated by then) and
        the web view, if any, answers /healthz."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                die("snapkeepd exited with %s:\n%s" % (self.proc.returncode, self.log_text()[-2000:]))
            try:
                s = socket.create_connection(("127.0.0.1", self.smtp), timeout=5)
                greeting = s.makefile("rb").readline()
                s.close()
                if greeting.startswith(b"220"):
                    break
            except OSError:
                pass
            time.sleep(0.1)
        else:
            die("snapkeepd does not greet on %d:\n%s" % (self.smtp, self.log_text()[-2000:]))
        while self.http and time.time() < deadline:
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.http, timeout=60)
                c.request("GET", "/healthz")
                ok = c.getresponse().status == 200
                c.close()
                if ok:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        if self.http:
            die("the web view on %d does not answer" % self.http)

    def log_text(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


# ---- the SMTP client --------------------------------------------------------

def client(port, mails, start, out):
    """One connection: every mail of its share once; puts (sent, time of
    the last 250, error)."""
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=300)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        f = sock.makefile("rb")
        reply(f)
        sock.sendall(b"EHLO bench.test\r\n")
        reply(f)
    except (OSError, ConnectionError) as e:
        start.wait()
        out.put((0, 0.0, "connect: %s" % e))
        return
    start.wait()
    n = 0
    last = time.time()
    try:
        for body in mails:
            send_mail(sock, f, body)
            n += 1
            last = time.time()
        sock.sendall(b"QUIT\r\n")
        sock.close()
        out.put((n, last, None))
    except (OSError, ConnectionError) as e:
        out.put((n, last, str(e)))


def throughput(name, work, store, nodes, mails, conns, parse=True):
    """Starts `nodes` snapkeepd on store, sends every mail once over conns
    connections (connection i to node i % nodes, mail j on connection
    j % conns), waits until nothing is pending.  Returns (acknowledged
    msg/s, parsed msg/s, [intake, messages, snapshots, stored]).  Without
    parse, the nodes run with [intake] parse_workers = 0 (accept only):
    parsed msg/s is None and the messages stay pending."""
    daemons = [Node(work, "%s-%d" % (name, i), store, parse_workers=None if parse else 0)
               for i in range(nodes)]
    for d in daemons:
        d.wait_ready()
    start = mp.Barrier(conns + 1)
    out = mp.Queue()
    procs = [mp.Process(target=client, args=(daemons[i % nodes].smtp, mails[i::conns], start, out))
             for i in range(conns)]
    for p in procs:
        p.start()
    start.wait()
    t0 = time.time()
    results = [out.get(timeout=3600) for _ in procs]
    for p in procs:
        p.join()
    errors = [r[2] for r in results if r[2]]
    if errors:
        for d in daemons:
            d.stop()
        die("%s: %s" % (name, errors[0]))
    sent = sum(r[0] for r in results)
    acked_s = max(r[1] for r in results) - t0
    while parse:
        n, pending = intake_counts(store)
        if n >= sent and pending == 0:
            break
        if any(d.proc.poll() is not None for d in daemons):
            die("%s: a snapkeepd exited" % name)
        time.sleep(0.1)
    parsed_s = time.time() - t0
    for d in daemons:
        d.stop()
    return sent / acked_s, sent / parsed_s if parse else None, store_summary(store)


# ---- the web view -----------------------------------------------------------

def timing(resp):
    """Server wall ms from snapkeep's Server-Timing header."""
    m = re.search(r"app;dur=([0-9.]+)", resp.getheader("Server-Timing") or "")
    return float(m.group(1)) if m else float("nan")


class Web:
    def __init__(self, port):
        self.c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def get(self, path):
        t = time.perf_counter()
        self.c.request("GET", path)
        r = self.c.getresponse()
        body = r.read()
        wall = (time.perf_counter() - t) * 1000
        if r.status != 200:
            die("GET %s: %d %s" % (path, r.status, body[:200]))
        return timing(r), wall, len(body)


def latency(work, stores, serials, requests, warmup, seed):
    """Both stores served at once; the same random paths asked of each in
    turn.  Returns {(kind, backend): (server ms list, round trip ms list,
    sizes)}."""
    nodes = {b: Node(work, "web-" + b, s, web=True) for b, s in stores.items()}
    for n in nodes.values():
        n.wait_ready()
    webs = {b: Web(n.http) for b, n in nodes.items()}
    kinds = {
        "device page": lambda s: "/devices/" + s,
        "counter API": lambda s: "/api/devices/%s/counters?interval=day" % s,
    }
    rnd = random.Random(seed)
    out = {}
    for kind, path in kinds.items():
        for _ in range(warmup):
            p = path(rnd.choice(serials))
            for w in webs.values():
                w.get(p)
        for b in webs:
            out[(kind, b)] = ([], [], [])
        for i in range(requests):
            p = path(rnd.choice(serials))
            order = list(webs) if i % 2 == 0 else list(reversed(list(webs)))
            for b in order:
                srv, wall, size = webs[b].get(p)
                out[(kind, b)][0].append(srv)
                out[(kind, b)][1].append(wall)
                out[(kind, b)][2].append(size)
    for w in webs.values():
        w.c.close()
    for n in nodes.values():
        n.stop()
    return out


# ---- the run ----------------------------------------------------------------

def simulate(out, devices, days, seed, log_capacity, job_log_capacity):
    start = time.strftime("%Y-%m-%d", time.gmtime(time.time() - (days + 1) * 86400))
    r = subprocess.run([program("snapkeep-sim"), "--out", out, "--devices", str(devices),
                        "--days", str(days), "--start", start, "--schedule", "1d",
                        "--seed", str(seed), "--log-capacity", str(log_capacity),
                        "--job-log-capacity", str(job_log_capacity), "-q"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        die("snapkeep-sim failed: %s" % r.stderr[-2000:])
    return [os.path.join(out, n) for n in sorted(os.listdir(out))]


def main():
    ap = argparse.ArgumentParser(description="snapkeep on SQLite and on PostgreSQL, one run")
    ap.add_argument("--conns", type=int, default=8, help="concurrent SMTP connections (8)")
    ap.add_argument("--devices", type=int, default=100, help="devices in the throughput mails (100)")
    ap.add_argument("--days", type=int, default=4, help="daily snapshots per device, throughput (4)")
    ap.add_argument("--log-capacity", type=int, default=200,
                    help="event log entries of the throughput mails (200, snapkeep-sim's default)")
    ap.add_argument("--web-devices", type=int, default=10, help="devices in the web data (10)")
    ap.add_argument("--web-days", type=int, default=365, help="daily snapshots per device, web (365)")
    ap.add_argument("--requests", type=int, default=300, help="timed requests per kind and backend (300)")
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="a small run (about a minute)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (mails, SQLite files, logs)")
    ap.add_argument("--web-only", action="store_true", help="the web view only (part 2), no throughput runs")
    args = ap.parse_args()
    if args.quick:
        args.devices, args.days, args.web_devices, args.web_days, args.requests = 40, 3, 5, 60, 60
    for name in ("snapkeepd", "snapkeep", "snapkeep-sim"):
        program(name)
    if args.conns < 1:
        die("--conns must be at least 1")

    work = tempfile.mkdtemp(prefix="sk-bench-backends-")
    pg = sklib.PgServer(durable=True)
    try:
        t_begin = time.time()
        try:
            pg.start()
        except sklib.PgError as e:
            die(str(e))
        flags = dict(psql(pg.admin_url, "SELECT name, setting FROM pg_settings WHERE name IN"
                                        " ('fsync', 'synchronous_commit', 'full_page_writes')"))
        files = [] if args.web_only else simulate(os.path.join(work, "mails"), args.devices, args.days,
                                                  args.seed, args.log_capacity, args.log_capacity)
        mails = [stuff(open(f, "rb").read()) for f in files]
        web_dir = os.path.join(work, "web-mails")
        web_files = simulate(web_dir, args.web_devices, args.web_days, args.seed + 1, 20, 10)
        version = psql(pg.admin_url, "SHOW server_version")[0][0]
        print("bench/backends: %d CPUs; PostgreSQL %s (fsync=%s, synchronous_commit=%s,"
              " full_page_writes=%s) and SQLite %s (synchronous=FULL, WAL), same file system"
              % (os.cpu_count(), version, flags["fsync"], flags["synchronous_commit"],
                 flags["full_page_writes"], sqlite3.sqlite_version))
        if mails:
            print("throughput mails: %d devices x %d days = %d mails averaging %.0f KB; %d connections"
                  % (args.devices, args.days, len(mails), sum(len(m) for m in mails) / len(mails) / 1024,
                     args.conns))
        print(flush=True)

        # 1. Throughput: each configuration with parsing (the default
        # configuration), then accept only ([intake] parse_workers = 0).
        configs = [("SQLite, 1 node", "sqlite1", 1), ("PostgreSQL, 1 node", "pg1", 1),
                   ("PostgreSQL, 2 nodes", "pg2", 2)]
        rates = {}
        for parse in (True, False) if mails else ():
            for label, key, nodes in configs:
                run = key + ("" if parse else "_accept")
                store = os.path.join(work, run + ".db") if key.startswith("sqlite") \
                    else pg.create_database("bench_" + run)
                acked, parsed, summary = throughput(run, work, store, nodes, mails, args.conns, parse)
                rates[(key, parse)] = (acked, parsed)
                want = [len(mails)] * 4 if parse else [len(mails), len(mails), 0, 0]
                print("%-36s %7.1f msg/s acknowledged%s  store: %d intake rows, %d messages,"
                      " %d snapshots, %d stored" % ((label + ("" if parse else ", accept only"), acked,
                                                     "  %7.1f msg/s parsed" % parsed if parse else "")
                                                    + tuple(summary)), flush=True)
                if summary != want:
                    die("%s: the store does not hold each mail once (want %r)" % (run, want))

        # 2. Device page latency: the same mails imported into both stores.
        print()
        stores = {"SQLite": os.path.join(work, "web.db"), "PostgreSQL": pg.create_database("bench_web")}
        t0 = time.time()
        imports = {b: subprocess.Popen([program("snapkeep"), "import", "--db", s, "--no-progress", "-q",
                                        web_dir], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
                   for b, s in stores.items()}
        import_s = {}
        while len(import_s) < len(imports):
            for b, p in imports.items():
                if b not in import_s and p.poll() is not None:
                    import_s[b] = time.time() - t0
                    if p.returncode != 0:
                        die("snapkeep import into %s failed: %s" % (b, p.stdout.read()[-2000:]))
            time.sleep(0.1)
        # What autovacuum does within a minute or two of the import: ANALYZE
        # (the plans depend on it) and VACUUM (inserts trigger it too, since
        # PostgreSQL 13; it marks the pages all-visible, which index-only
        # scans need).  Left to autovacuum, its pass fell in the middle of
        # the measurements, on the same two cores, and until it had run the
        # index-only scans read the table for every entry.  The SQLite store
        # stays as snapkeep leaves it (it never runs ANALYZE).
        psql(stores["PostgreSQL"], "VACUUM ANALYZE")
        summaries = {b: store_summary(s) for b, s in stores.items()}
        if summaries["SQLite"] != summaries["PostgreSQL"] or summaries["SQLite"][2] != len(web_files):
            die("the imports differ: %r (mails: %d)" % (summaries, len(web_files)))
        serials = [r[0] for r in query(stores["SQLite"], "SELECT serial FROM device_status ORDER BY serial")]
        pg_serials = [r[0] for r in query(stores["PostgreSQL"], "SELECT serial FROM device_status ORDER BY serial")]
        if serials != pg_serials:
            die("the devices differ between the stores")
        print("web data: %d devices x %d days = %d snapshots (20-entry event logs), imported at once:"
              " SQLite %.0f s (%.0f msg/s), PostgreSQL %.0f s (%.0f msg/s)"
              % (len(serials), args.web_days, len(web_files), import_s["SQLite"],
                 len(web_files) / import_s["SQLite"], import_s["PostgreSQL"],
                 len(web_files) / import_s["PostgreSQL"]), flush=True)
        lat = latency(work, stores, serials, args.requests, args.warmup, args.seed)

        # The tables.
        if mails:
            base_a, base_p = rates[("sqlite1", True)]
            base_o = rates[("sqlite1", False)][0]
            print()
            print("Durable throughput, %d mails, %d connections   acknowledged (250)   parsed (none pending)"
                  "   accept only (250)" % (len(mails), args.conns))
            for label, key, _ in configs:
                a, p = rates[(key, True)]
                o = rates[(key, False)][0]
                print("  %-38s %6.1f msg/s %5.2fx   %6.1f msg/s %5.2fx   %6.1f msg/s %5.2fx"
                      % (label, a, a / base_a, p, p / base_p, o, o / base_o))
            print("  (ratios: against SQLite, 1 node; accept only: [intake] parse_workers = 0)")
        print()
        print("Web view, %d requests per row over %d devices    server median    p99   round trip median    p99"
              "   size" % (args.requests, len(serials)))
        for kind in ("device page", "counter API"):
            for b in stores:
                srv, wall, size = lat[(kind, b)]
                print("  %-12s %-33s %8.2f ms %6.2f ms      %8.2f ms %6.2f ms %4.0f KB"
                      % (kind, b, statistics.median(srv), pct(srv, 99), statistics.median(wall),
                         pct(wall, 99), statistics.median(size) / 1024))
            ratio = statistics.median(lat[(kind, "PostgreSQL")][0]) / statistics.median(lat[(kind, "SQLite")][0])
            print("  %-12s %-33s %7.2fx" % (kind, "PostgreSQL / SQLite (median)", ratio))
        print()
        print("whole run: %.0f s" % (time.time() - t_begin))
    finally:
        if args.keep:
            print("work directory kept: %s (PostgreSQL stopped)" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)
        pg.stop()


if __name__ == "__main__":
    main()
