#!/usr/bin/python3
"""pg-restart.py: snapkeepd on PostgreSQL through restarts of the server,
without restarting snapkeepd.  TAP output.

A private PostgreSQL (sklib.PgServer, started here: this runs in plain
make check) holds a fresh database; one snapkeepd uses it with
[intake] sweep_interval = 2s, SMTP and web on 127.0.0.1 (port 0, read
from its log).  The mails are snapkeep-sim's (one snapshot each, all
expected 'stored'), sent with smtplib; every reply is recorded with the
SHA-256 of the bytes sent (CRLF lines, as on the wire).  Each restart is
sklib.PgServer.restart(): a fast shutdown (the server ends every session),
then the same data directory on the same port.

1. Idle restart: mails acknowledged and parsed, the web view asked by
   several clients at once (several pooled store connections); PostgreSQL
   restarted while snapkeepd idles.  Then every mail gets 250 at the first
   try (no 451), is stored and parsed, no store error is logged, and
   /healthz and /api/devices answer 200 to several clients at once.
2. Restart under load: client threads, each on its own SMTP connection,
   send a stream of mails (a 4xx is kept for one retry after the stream,
   as a sender would).  PostgreSQL is shut down once some mails are
   acknowledged and kept down until a mail got a 4xx (/healthz must then
   answer 503, not hang).  Every reply is 250 or 4xx (never 5xx, a dropped
   connection or a wait beyond HANG_S); nothing sent and answered while
   the server was down got 250; every mail sent after it is back gets 250;
   every retried 4xx gets 250.  Every acknowledged mail is in messages
   exactly once with an intake row per acknowledgement, nothing stays
   pending (polled: the node's sweep parses what a failed parse commit
   left), every snapshot is stored, /healthz and /api/devices answer 200
   again, and snapkeepd's log has one smtp commit-failed line per 4xx,
   naming the lost connection.
3. Restart inside a group commit, reached with table locks of the test's
   own sessions rather than timing (see group_commit_restart): a commit of
   several mails is waiting inside its transaction when the server goes.
   The mail committed before gets 250, the others 250 or 4xx; the refused
   ones are acknowledged when sent again; all stored once and parsed.
Finally: one snapkeepd throughout (same pid, started once), each message
parsed once (by its log), a clean stop, and no sanitizer report in its
log (the check of sklib.Tap.done).  Every wait has a deadline; about 5 s
in all (ASan: 7 s); a failed run keeps its files in
/tmp/sk-pgrestart-*.failed."""
import concurrent.futures
import importlib.util
import json
import os
import re
import shutil
import smtplib
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sklib  # noqa: E402

_spec = importlib.util.spec_from_file_location(
    "smtplib_sk", os.path.join(os.path.dirname(os.path.abspath(__file__)), "smtp-lib.py"))
smtp_lib = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(smtp_lib)
sha256, crlf, reply_of = smtp_lib.sha256, smtp_lib.crlf, smtp_lib.mail_reply

t = sklib.Tap(detail_lines=60)
if sklib.psycopg2 is None:
    t.bail("psycopg2 is missing: apt-get install python3-psycopg2")
SIM, DAEMON = sklib.program("snapkeep-sim"), sklib.program("snapkeepd")

SWEEP_S = 2
PHASE1_N = 5           # mails before the idle restart, and again after it
CLIENTS = 4            # SMTP connections of the stream
PACE_S = 0.02          # a client's pause between two mails
BACKOFF_S = 0.3        # its pause after a 4xx
BEFORE_N = 16          # mails acknowledged in the stream before the shutdown
AFTER_N = 12           # ... and after the server is back, before it ends
HANG_S = 10            # no reply may take longer
WEB_CLIENTS = 4        # concurrent web requests (several pooled connections)
GROUP_N = 4            # mails in the group commit a restart interrupts (step 3)
PARSED_RE = re.compile(r"intake: event=parsed message=(\d+) outcome=(\S+)")
# Store errors on a message's way (a sweep that runs while the server is
# down fails too, harmlessly: it is not counted here).
STORE_ERROR_RE = re.compile(r"(smtp: event=commit-failed|intake: event=(accept-failed|batch-failed|commit-failed|"
                            r"claim-failed|load-failed))[^\n]*")
SMTP_FAILED_RE = re.compile(r"smtp: event=commit-failed [^\n]*")


class Daemon:
    """snapkeepd in the foreground, its log in its state directory."""

    def __init__(self, root, db):
        self.dir = os.path.join(root, "node")
        os.makedirs(self.dir)
        self.log_path = os.path.join(self.dir, "snapkeepd.log")
        self.conf = os.path.join(self.dir, "snapkeep.conf")
        with open(self.conf, "w") as f:
            f.write(sklib.daemon_config(self.dir, db, 2, SWEEP_S, "pg-restart.test"))
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([DAEMON, "--config", self.conf, "--foreground"],
                                     stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        self.smtp_port = self.web_port = None

    def text(self, since=0):
        with open(self.log_path, "rb") as f:
            f.seek(since)
            return f.read().decode("utf-8", "replace")

    def mark(self):
        return os.path.getsize(self.log_path)

    def wait_ready(self, timeout):
        self.smtp_port, self.web_port = sklib.wait_daemon_ready(self.proc, self.text, "snapkeepd",
                                                                time.monotonic() + timeout)

    def get(self, path, timeout=HANG_S):
        """(status or None, body, seconds)."""
        t0 = time.monotonic()
        st, body = sklib.http_get(self.web_port, path, timeout)
        return st, body, time.monotonic() - t0

    def get_many(self, path, n=WEB_CLIENTS):
        """n concurrent GETs (so the web view uses several of its pooled
        store connections): [(status, body, seconds)]."""
        with concurrent.futures.ThreadPoolExecutor(n) as ex:
            return list(ex.map(lambda _: self.get(path), range(n)))

    def stop(self):
        proc, self.proc = self.proc, None
        return sklib.stop_daemon(proc, self.log, self.text, "snapkeepd")


def send_one(port, raw):
    """One mail on a new connection: (code, text); code None for anything
    but an SMTP reply (a dropped connection, a timeout)."""
    return smtp_lib.send_mail(port, raw, HANG_S + 2)


class Stream:
    """CLIENTS threads, each on its own SMTP connection (a new one after
    anything but an SMTP reply), take mails from one list until stop() or
    the list ends.  replies: dicts (client, sha, raw, t0, t1, code, text)."""

    def __init__(self, port, mails):
        self.port = port
        self.mails = list(mails)
        self.lock = threading.Lock()
        self.replies = []
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(k,), daemon=True) for k in range(CLIENTS)]

    def take(self):
        with self.lock:
            return self.mails.pop(0) if self.mails else None

    def run(self, k):
        s = None
        while not self.stopping.is_set():
            raw = self.take()
            if raw is None:
                break
            t0 = time.monotonic()
            if s is None:
                try:
                    s = smtplib.SMTP("127.0.0.1", self.port, timeout=HANG_S + 2)
                except (smtplib.SMTPException, OSError) as e:
                    s, code, text = None, None, "connect: %r" % e
            if s is not None:
                code, text = reply_of(s, raw)
                if code is None or code == 421:
                    s.close()
                    s = None
            with self.lock:
                self.replies.append({"client": k, "sha": sha256(raw), "raw": raw, "t0": t0,
                                     "t1": time.monotonic(), "code": code, "text": text})
            self.stopping.wait(BACKOFF_S if code != 250 else PACE_S)
        if s is not None:
            try:
                s.quit()
            except (smtplib.SMTPException, OSError):
                s.close()

    def count(self, pred):
        with self.lock:
            return sum(1 for r in self.replies if pred(r))

    def start(self):
        for th in self.threads:
            th.start()

    def stop(self, timeout):
        self.stopping.set()
        deadline = time.monotonic() + timeout
        for th in self.threads:
            th.join(max(0.1, deadline - time.monotonic()))
        return not any(th.is_alive() for th in self.threads)


def outcomes(db, shas):
    """sha256 -> [outcome, ...] of the messages with those hashes (one each
    if messages.sha256 holds every mail once)."""
    out = {}
    rows = sklib.db_rows(db, "SELECT sha256, outcome FROM messages")
    for r in rows:
        if r["sha256"] in shas:
            out.setdefault(r["sha256"], []).append(r["outcome"])
    return out


def check_web(d, db, when):
    """/healthz and /api/devices from WEB_CLIENTS concurrent clients."""
    hz = d.get_many("/healthz")
    t.ok(all(st == 200 and body == b"ok\n" for st, body, _ in hz),
         "%s: /healthz answers 200 to %d concurrent clients" % (when, len(hz)),
         [(st, body[:200], round(s, 2)) for st, body, s in hz])
    api = d.get_many("/api/devices?per_page=1000&sort=serial&order=asc")
    serials = sorted(r["serial"] for r in sklib.db_rows(db, "SELECT serial FROM devices"))
    bad = []
    for st, body, s in api:
        try:
            got = sorted(x["serial"] for x in json.loads(body).get("devices", []))
        except (ValueError, AttributeError, KeyError, TypeError):
            got = None
        if st != 200 or got != serials:
            bad.append((st, body[:300], round(s, 2)))
    t.ok(serials and not bad, "%s: /api/devices answers 200 with all %d devices to %d concurrent clients"
         % (when, len(serials), len(api)), bad)


def waiting(db, table, query_prefix, not_pid=0):
    """Sessions waiting for a lock on table whose statement starts with
    query_prefix (other than not_pid)."""
    try:
        return sklib.db_rows(db, "SELECT count(*) n FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
                                 " WHERE NOT l.granted AND l.relation = CAST(? AS regclass)"
                                 " AND a.query LIKE ? AND a.pid <> ?",
                             (table, query_prefix + "%", not_pid))[0]["n"]
    except sklib.DB_ERRORS:
        return 0


def unread_by_server(smtp_port, client_ports):
    """Bytes the clients at client_ports sent that snapkeepd has not read
    yet (the receive queues of its sockets, /proc/net/tcp); None while one
    of the connections is not found."""
    total, seen = 0, set()
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            local, remote = int(fields[1].split(":")[1], 16), int(fields[2].split(":")[1], 16)
            if local == smtp_port and remote in client_ports:
                seen.add(remote)
                total += int(fields[4].split(":")[1], 16)
    return total if seen == set(client_ports) else None


def send_marked(port, raw, info):
    """One mail on a new connection, its DATA by hand so that info["sent"]
    says when the whole body is written; info gets "port" (the client's),
    "reply" ((code, text, seconds)) at the end."""
    t0 = time.monotonic()
    code, text = None, ""
    s = None
    try:
        s = smtplib.SMTP("127.0.0.1", port, timeout=HANG_S + 2)
        info["port"] = s.sock.getsockname()[1]
        s.ehlo()
        for cmd, arg, want in (("MAIL", "FROM:<mfp@fleet.example>", 250),
                               ("RCPT", "TO:<fleet-intake@fleet.example>", 250), ("DATA", "", 354)):
            code, text = s.docmd(cmd, arg)
            if code != want:
                raise smtplib.SMTPResponseException(code, text)
        body = re.sub(rb"(?m)^\.", b"..", raw)
        s.send(body + (b"" if body.endswith(b"\r\n") else b"\r\n") + b".\r\n")
        info["sent"] = time.monotonic()
        code, text = s.getreply()
    except smtplib.SMTPResponseException as e:
        code, text = e.smtp_code, e.smtp_error
    except (smtplib.SMTPException, OSError) as e:
        code, text = None, repr(e)
    finally:
        if s is not None:
            try:
                s.quit()
            except (smtplib.SMTPException, OSError):
                s.close()
    info["reply"] = (code, text.decode(errors="replace") if isinstance(text, bytes) else text,
                     time.monotonic() - t0)


def group_commit_restart(d, db, server, mails):
    """Step 3, one attempt: PostgreSQL restarted while a group commit of
    several mails is inside its transaction, held there by table locks of
    this test's own sessions: session 1 locks intake, so mail A's commit
    waits inside its transaction while GROUP_N more mails arrive (all read
    by snapkeepd) and queue behind it; session 2 asks for messages (it
    waits for A); session 1 commits: A is done, session 2 holds messages,
    and the next group commit waits at its first INSERT INTO messages.
    Then the restart.  Returns ([(mail, (code, text, seconds))], the
    log offset where the attempt began)."""
    pg = sklib.psycopg2
    mark = d.mark()
    infos = [{} for _ in mails]
    threads = [threading.Thread(target=send_marked, args=(d.smtp_port, raw, info), daemon=True)
               for raw, info in zip(mails, infos)]
    s1 = pg.connect(db, connect_timeout=30)
    s2 = pg.connect(db, connect_timeout=30)
    try:
        s1.cursor().execute("LOCK TABLE intake IN EXCLUSIVE MODE")
        threads[0].start()
        if not sklib.wait_until(lambda: waiting(db, "intake", "INSERT INTO intake"), 20, 0.02):
            t.bail("step 3: mail A's commit does not wait for the lock on intake")
        for th in threads[1:]:
            th.start()
        # The group's bodies are written and read by snapkeepd (it queues
        # them for the commit as it reads their final dot).
        if not sklib.wait_until(lambda: all("sent" in i for i in infos[1:]) and
                          unread_by_server(d.smtp_port, [i["port"] for i in infos[1:]]) == 0, 20, 0.01):
            t.bail("step 3: the group's mails were not sent or not read by snapkeepd: %s" % infos[1:])
        s2pid = s2.get_backend_pid()

        def lock_messages():
            try:
                s2.cursor().execute("LOCK TABLE messages IN EXCLUSIVE MODE")
            except pg.Error:
                pass  # ended by the restart
        locker = threading.Thread(target=lock_messages, daemon=True)
        locker.start()
        if not sklib.wait_until(lambda: waiting(db, "messages", "LOCK TABLE messages"), 20, 0.02):
            t.bail("step 3: session 2 does not wait for the lock on messages")
        s1.commit()
        if not sklib.wait_until(lambda: waiting(db, "messages", "INSERT INTO messages", s2pid), 20, 0.02):
            t.bail("step 3: the group commit after A does not wait for the lock on messages:\n%s"
                   % d.text(mark)[-2000:])
        try:
            down_s, _ = server.restart()
        except sklib.PgError as e:
            t.bail("PostgreSQL restart: %s" % e)
        locker.join(HANG_S)
        for th in threads:
            th.join(HANG_S + 5)
    finally:
        for c in (s1, s2):
            try:
                c.close()
            except pg.Error:
                pass
    t.diag("group commit restart: PostgreSQL down for %.2f s" % down_s)
    return [(raw, i.get("reply")) for raw, i in zip(mails, infos)], mark


def main(tmp, server, daemons):
    t0 = time.monotonic()
    db = server.create_database("sk_pgrestart")
    d = Daemon(tmp, db)
    daemons.append(d)
    d.wait_ready(60)
    pid = d.proc.pid

    mail_dir = os.path.join(tmp, "mails")
    r = sklib.run([SIM, "--out", mail_dir, "-n", "15", "--seed", "31", "--days", "20", "--start", "2025-06-01",
                   "--schedule", "1d", "--log-capacity", "30", "--job-log-capacity", "30", "--variants", "mix",
                   "-q", "-m", os.path.join(tmp, "manifest.jsonl")])
    if r.returncode != 0:
        t.bail("snapkeep-sim --out: %s" % r.stderr.decode(errors="replace")[-500:])
    with open(os.path.join(tmp, "manifest.jsonl")) as f:
        expect = {json.loads(line)["expect"] for line in f if line.strip()}
    if expect != {"stored"}:
        t.bail("snapkeep-sim made mails that are not plain snapshots: %s" % sorted(expect))
    mails = []
    for name in sorted(os.listdir(mail_dir)):
        with open(os.path.join(mail_dir, name), "rb") as f:
            mails.append(crlf(f.read()))
    if len({sha256(m) for m in mails}) != len(mails):
        t.bail("snapkeep-sim made two mails alike")

    # ---- 1. a restart while snapkeepd idles ------------------------------------------
    first, mails = mails[:PHASE1_N], mails[PHASE1_N:]
    replies = [send_one(d.smtp_port, m) for m in first]
    t.eq([c for c, _ in replies], [250] * PHASE1_N, "%d mails acknowledged before the restart" % PHASE1_N,
         replies)
    shas1 = {sha256(m) for m in first}
    got = sklib.wait_until(lambda: outcomes(db, shas1) == {s: ["stored"] for s in shas1}, 30)
    t.ok(got, "... and parsed (stored)", outcomes(db, shas1))
    check_web(d, db, "before the restarts")

    mark1 = d.mark()
    try:
        down_s, _ = server.restart()
    except sklib.PgError as e:
        t.bail("PostgreSQL restart: %s" % e)
    t.diag("idle restart: PostgreSQL down and up again in %.2f s (port %d)" % (down_s, server.port))
    t.ok(d.proc.poll() is None, "snapkeepd still runs after PostgreSQL's restart")

    second, mails = mails[:PHASE1_N], mails[PHASE1_N:]
    replies = [send_one(d.smtp_port, m) for m in second]
    t.eq([c for c, _ in replies], [250] * PHASE1_N,
         "after an idle restart: the next %d mails are acknowledged with 250 at the first try" % PHASE1_N,
         replies)
    shas2 = {sha256(m) for m in second}
    got = sklib.wait_until(lambda: outcomes(db, shas2) == {s: ["stored"] for s in shas2}, 30)
    t.ok(got, "... stored once each and parsed", outcomes(db, shas2))
    check_web(d, db, "after the idle restart")
    errors = STORE_ERROR_RE.findall(d.text(mark1))
    t.eq([e[0] for e in errors], [], "after an idle restart: no store error in snapkeepd's log",
         "\n".join(m.group(0) for m in STORE_ERROR_RE.finditer(d.text(mark1))))

    # ---- 2. a restart under a stream of mails ----------------------------------------
    mark2 = d.mark()
    stream = Stream(d.smtp_port, mails)
    stream.start()
    if not sklib.wait_until(lambda: stream.count(lambda r: r["code"] == 250) >= BEFORE_N, 60, 0.02):
        stream.stop(HANG_S + 5)
        t.bail("the stream did not get %d acknowledgements before the restart: %s"
               % (BEFORE_N, [(r["code"], r["text"]) for r in stream.replies][:10]))
    window = {}

    def while_down():
        window["down"] = time.monotonic()
        # Mails reach snapkeepd while nothing listens on PostgreSQL's port.
        got = sklib.wait_until(lambda: stream.count(lambda r: r["t0"] >= window["down"] and r["code"] != 250), 10, 0.02)
        window["healthz"] = d.get("/healthz")
        window["up"] = time.monotonic()
        return got

    try:
        down_s, down_4xx = server.restart(while_down=while_down)
    except sklib.PgError as e:
        stream.stop(HANG_S + 5)
        t.bail("PostgreSQL restart: %s" % e)
    t_back = time.monotonic()
    before = stream.count(lambda r: r["t1"] <= window["down"] and r["code"] == 250)
    t.diag("restart under load: PostgreSQL down for %.2f s, after %d acknowledged mails" % (down_s, before))
    st, body, secs = window["healthz"]
    t.ok(st == 503 and secs < HANG_S, "while PostgreSQL is down: /healthz answers 503 (%.2f s)" % secs,
         (st, body[:300]))
    t.ok(down_4xx, "while PostgreSQL is down: mails are refused (%d replies)" % (down_4xx or 0))

    after = sklib.wait_until(lambda: stream.count(lambda r: r["t0"] >= t_back and r["code"] == 250) >= AFTER_N,
                       60, 0.05)
    ended = stream.stop(HANG_S + 5)
    t.ok(ended, "the stream's clients finished")
    t.ok(after, "the stream went on after the restart (%d acknowledged mails started after it)"
         % stream.count(lambda r: r["t0"] >= t_back and r["code"] == 250))
    reps = list(stream.replies)
    codes = {}
    for r in reps:
        codes[r["code"]] = codes.get(r["code"], 0) + 1
    t.diag("the stream: %d mails on %d connections, replies %s"
           % (len(reps), CLIENTS, ", ".join("%s: %d" % kv for kv in sorted(codes.items(), key=str))))
    bad = [(r["client"], r["code"], r["text"]) for r in reps
           if not (r["code"] == 250 or (r["code"] is not None and 400 <= r["code"] < 500))]
    t.eq(bad, [], "every mail of the stream got 250 or a 4xx (no 5xx, no dropped connection)")
    slow = max(r["t1"] - r["t0"] for r in reps)
    t.ok(slow < HANG_S, "no reply took %d s or more (slowest %.2f s)" % (HANG_S, slow))
    t.ok(codes.get(250, 0) > BEFORE_N and sum(n for c, n in codes.items() if c and 400 <= c < 500) > 0,
         "the restart met the stream: %d acknowledged, %d refused with 4xx"
         % (codes.get(250, 0), sum(n for c, n in codes.items() if c and 400 <= c < 500)))
    while_off = [(r["client"], r["text"]) for r in reps
                 if r["t0"] >= window["down"] and r["t1"] <= window["up"] and r["code"] == 250]
    t.eq(while_off, [], "no mail sent and answered while PostgreSQL was down was acknowledged")
    late = [(r["client"], r["code"], r["text"]) for r in reps if r["t0"] >= t_back and r["code"] != 250]
    t.eq(late, [], "every mail sent after PostgreSQL was back got 250 at the first try")

    # The senders retry what got a 4xx.
    refused = [r for r in reps if r["code"] != 250]
    retried = [(send_one(d.smtp_port, r["raw"]), r["sha"]) for r in refused]
    t.eq([c for (c, _), _ in retried if c != 250], [],
         "each of the %d mails refused with 4xx is acknowledged when sent again" % len(refused),
         [(c, x) for (c, x), _ in retried if c != 250])

    # Every acknowledgement: the message once, an arrival per acknowledgement.
    acks = [r["sha"] for r in reps if r["code"] == 250] + [s for (c, _), s in retried if c == 250]
    acked = set(acks)
    done = sklib.wait_until(lambda: sklib.pending_counts(db) == {"m": 0, "i": 0}, 30, 0.2)
    t.ok(done, "nothing pending %.1f s after PostgreSQL was back (sweep_interval %d s)"
         % (time.monotonic() - t_back, SWEEP_S), sklib.pending_counts(db))
    outs = outcomes(db, acked)
    missing = sorted(s for s in acked if s not in outs)
    t.eq(missing, [], "all %d acknowledged mails of the stream are in messages" % len(acked))
    twice = {s: o for s, o in outs.items() if len(o) != 1}
    t.eq(twice, {}, "... each exactly once")
    not_stored = {s: o for s, o in outs.items() if o != ["stored"]}
    t.eq(not_stored, {}, "... each parsed, its snapshot stored")
    arrivals = {}
    for row in sklib.db_rows(db, "SELECT m.sha256, i.outcome FROM intake i JOIN messages m ON m.id = i.message_id"):
        arrivals.setdefault(row["sha256"], []).append(row["outcome"])
    short = [(s, acks.count(s), len(arrivals.get(s, []))) for s in acked if len(arrivals.get(s, [])) < acks.count(s)]
    t.eq(short, [], "an intake row for every acknowledgement")
    dup_sha = sklib.db_rows(db, "SELECT sha256, count(*) n FROM messages GROUP BY sha256 HAVING count(*) > 1")
    t.eq(dup_sha, [], "messages.sha256 is unique")
    snaps = sklib.db_rows(db, "SELECT s.message_id, count(*) n FROM snapshots s GROUP BY s.message_id")
    stored = {r["id"] for r in sklib.db_rows(db, "SELECT id FROM messages WHERE outcome = 'stored'")}
    t.ok({r["message_id"] for r in snaps} == stored and all(r["n"] == 1 for r in snaps),
         "one snapshot per stored message (%d)" % len(stored))

    # The web view serves again, from the same snapkeepd.
    check_web(d, db, "after the restart under load")

    # The log: the store errors of the interruption.
    text2 = d.text(mark2)
    failed = SMTP_FAILED_RE.findall(text2)
    t.eq(len(failed), len(refused), "snapkeepd's log: one smtp commit-failed line per 4xx reply",
         "\n".join(failed[:20]))
    lost = [l for l in failed if re.search(r"connection|terminat|server closed|could not", l, re.I)]
    t.ok(failed and lost, "... naming the lost connection to PostgreSQL (%d of %d)" % (len(lost), len(failed)),
         "\n".join(failed[:10]))
    accept_errors = re.findall(r"intake: event=accept-failed [^\n]*", text2)
    in_tx = [l for l in accept_errors if "BEGIN" not in l]
    t.diag("accept errors: %d at BEGIN (no connection), %d inside a transaction%s"
           % (len(accept_errors) - len(in_tx), len(in_tx), "".join("\n  " + l[:250] for l in in_tx)))
    for m in STORE_ERROR_RE.finditer(text2):
        if not m.group(0).startswith(("smtp: ", "intake: event=accept-failed")):
            t.diag("store error: %s" % m.group(0)[:250])
    left = re.findall(r"intake: event=commit-failed message=(\d+)", text2)
    if left:
        t.diag("parse commits that failed (left pending, parsed later): %s" % left[:20])

    # ---- 3. a restart inside a group commit ------------------------------------------
    # The group's mails reach the commit queue as snapkeepd reads them, a
    # moment after their last byte: under load the next group commit may
    # begin with only some of them.  Up to 3 attempts reach the state.
    rest = list(stream.mails)
    replies3, batches, inside, attempts = [], [], [], 0
    mark3_first = d.mark()
    while not inside and attempts < 3 and len(rest) >= GROUP_N + 1:
        attempts += 1
        got, mark3 = group_commit_restart(d, db, server, rest[:GROUP_N + 1])
        rest = rest[GROUP_N + 1:]
        replies3.append(got)
        found = [(int(n), e) for n, e in
                 re.findall(r"intake: event=batch-failed size=(\d+) error=\"([^\n]*)", d.text(mark3))]
        batches += found
        inside = [(n, e) for n, e in found if n >= 2 and "BEGIN" not in e]
    t.ok(inside, "group commit: the restart met a group commit of %s mails inside its transaction "
         "(attempt %d)" % ("/".join(str(n) for n, _ in inside), attempts), batches)
    t.ok(all(got[0][1] is not None and got[0][1][0] == 250 for got in replies3),
         "group commit: mail A, committed before the restart, is acknowledged",
         [got[0][1] for got in replies3])
    sent3 = [(raw, r) for got in replies3 for raw, r in got]
    bad = [r for _, r in sent3 if r is None or r[0] is None or not (r[0] == 250 or 400 <= r[0] < 500)
           or r[2] >= HANG_S]
    t.eq(bad, [], "group commit: the %d mails got 250 or 4xx in time" % len(sent3))
    refused3 = [raw for raw, r in sent3 if r is None or r[0] != 250]
    again = [send_one(d.smtp_port, raw)[0] for raw in refused3]
    t.eq([c for c in again if c != 250], [],
         "group commit: each of the %d mails refused is acknowledged when sent again" % len(refused3))
    failed3 = SMTP_FAILED_RE.findall(d.text(mark3_first))
    t.eq(len(failed3), len(refused3), "group commit: one smtp commit-failed line per 4xx reply",
         "\n".join(failed3[:10]))
    shas3 = {sha256(raw) for raw, _ in sent3}
    done = sklib.wait_until(lambda: sklib.pending_counts(db) == {"m": 0, "i": 0} and outcomes(db, shas3) ==
                      {s: ["stored"] for s in shas3}, 30, 0.2)
    t.ok(done, "group commit: all %d mails stored once each and parsed, nothing pending" % len(shas3),
         (sklib.pending_counts(db), outcomes(db, shas3)))
    check_web(d, db, "after the restart inside a group commit")

    # One snapkeepd throughout; each message parsed once.
    text = d.text()
    t.ok(d.proc.poll() is None and d.proc.pid == pid and text.count("daemon: event=ready") == 1,
         "the same snapkeepd served through every restart (pid %d, started once)" % pid)
    parsed = {}
    for mid, outcome in PARSED_RE.findall(text):
        parsed.setdefault(int(mid), []).append(outcome)
    ids = {r["id"] for r in sklib.db_rows(db, "SELECT id FROM messages")}
    t.eq({m: v for m, v in parsed.items() if len(v) != 1}, {}, "each message parsed once (by the log)")
    t.eq(sorted(ids - set(parsed)), [], "every message's parse is logged")
    t.eq(d.stop(), 0, "snapkeepd stops cleanly")
    t.diag("wall time %.1f s" % (time.monotonic() - t0))
    return True


def run():
    server = sklib.PgServer()
    tmp = sklib.tempdir("sk-pgrestart-")
    finished = False
    daemons = []
    try:
        try:
            server.start()
        except sklib.PgError as e:
            t.bail("PostgreSQL for the test: %s" % e)
        finished = main(tmp, server, daemons)
    finally:
        for d in daemons:
            if d.proc is not None and d.proc.poll() is None:
                d.proc.kill()
                d.proc.wait()
        server.stop()
        if t.failed or not finished:
            keep = tmp + ".failed"
            shutil.rmtree(keep, ignore_errors=True)
            shutil.move(tmp, keep)
            t.diag("files kept in %s" % keep)
        else:
            sklib.cleanup(tmp)
    t.done()


run()
