#!/usr/bin/python3
"""multinode.py: two snapkeepd nodes on one PostgreSQL, one killed with
SIGKILL while the simulator sends to both.  TAP output.

A private PostgreSQL (sklib.PgServer, started here: this runs in plain
make check) holds one database; nodes A and B share it, each with its own
state directory, SMTP and web ports (127.0.0.1, port 0, read from the log)
and [intake] sweep_interval = 2s.  They start together (the schema is made
once, under the migration lock).  Load, all at once:
  - snapkeep-sim seed 21 to A, and the same run (same seed: the same mails,
    byte for byte, paced at the same moments) to B: every mail reaches both
    nodes, the second insert of the same SHA-256 meets the first (ON
    CONFLICT); faults: resent bytes, alert mails, truncated XML, a snapshot
    in a second mail, a connection dropped in DATA;
  - snapkeep-sim seed 22 to B only (a fleet of its own, unpaced);
  - this script's smtplib clients, in lock step, one round per mail of a
    third fleet: the same bytes to A and B at the same moment, or two new
    mails of one snapshot (other Message-IDs) to A and B at the same moment
    (the unique (device, taken_utc) decides which is stored).
Node A gets SIGKILL once it has acknowledged KILL_AFTER mails, while its
simulator is still sending and as the smtplib clients resume from halfway.
Then, with A dead:
  - every mail acknowledged with 250 (the simulators' manifests, the
    smtplib clients' records) is archived once, under the SHA-256 of the
    bytes sent (messages.sha256 unique), with an intake row per arrival;
  - nothing stays pending: node B's sweep parses what A left; the messages
    pending at the kill are parsed by B;
  - every message is parsed once: `intake: event=parsed` per message id
    across both logs at most once (and missing only for what A may have
    committed as it died), its outcome the one stored; one snapshot per
    (device, taken_utc) and per message; the outcomes the manifests expect;
  - A's parse workers do not outlive it; `snapkeep verify` reads every
    message back;
  - node B's web view and /api/devices list every device.
Node A is started again: both nodes' /api/devices answer the same.
Everything listens on 127.0.0.1 only; every wait has a deadline (about 10 s
in all, 60 s at most per step); a failed run keeps its logs in
/tmp/sk-multinode-*.failed."""
import importlib.util
import json
import os
import re
import shutil
import signal
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
sha256, crlf = smtp_lib.sha256, smtp_lib.crlf

t = sklib.Tap(detail_lines=60)
if sklib.psycopg2 is None:
    t.bail("psycopg2 is missing: apt-get install python3-psycopg2")
SIM, DAEMON, CLI = sklib.program("snapkeep-sim"), sklib.program("snapkeepd"), sklib.program("snapkeep")

SWEEP_S = 2
A_WORKERS = 1          # node A parses slowly: it dies with a backlog
KILL_AFTER = 24        # node A's acknowledged mails before the SIGKILL
SIM_COMMON = ["--start", "2025-06-01", "--schedule", "1d", "--log-capacity", "30",
              "--job-log-capacity", "30", "--variants", "mix", "--connections", "2",
              "--max-attempts", "3", "--retry-base-ms", "50", "--timeout", "20", "-q"]
SIM_FAULTS = ["--faults", "duplicate_resend,alert_mail,truncated_xml,same_snapshot_new_mail,drop_in_data",
              "--fault-rate", "0.3"]
PARSED_RE = re.compile(r"intake: event=parsed message=(\d+) outcome=(\S+)")


class Node:
    """One snapkeepd in the foreground; its log file is kept across restarts."""

    def __init__(self, name, root, db, workers):
        self.name = name
        self.dir = os.path.join(root, name)
        os.makedirs(self.dir)
        self.log_path = os.path.join(self.dir, "snapkeepd.log")
        self.conf = os.path.join(self.dir, "snapkeep.conf")
        with open(self.conf, "w") as f:
            f.write(sklib.daemon_config(self.dir, db, workers, SWEEP_S, "node-%s.test" % name.lower()))
        self.proc = None
        self.log = None
        self.offset = 0
        self.smtp_port = self.web_port = None

    def start(self):
        self.log = open(self.log_path, "ab")
        self.offset = os.path.getsize(self.log_path)
        self.proc = subprocess.Popen([DAEMON, "--config", self.conf, "--foreground"],
                                     stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)

    def text(self, since=None):
        with open(self.log_path, "rb") as f:
            f.seek(self.offset if since is None else since)
            return f.read().decode("utf-8", "replace")

    def wait_ready(self, deadline):
        self.smtp_port, self.web_port = sklib.wait_daemon_ready(self.proc, self.text, "node " + self.name,
                                                                deadline)

    def children(self):
        """Pids of the daemon's child processes (its parse workers)."""
        out = set()
        try:
            for task in os.listdir("/proc/%d/task" % self.proc.pid):
                with open("/proc/%d/task/%s/children" % (self.proc.pid, task)) as f:
                    out.update(int(p) for p in f.read().split())
        except OSError:
            pass
        return out

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.log.close()
        sklib.check_sanitizer_output([DAEMON, self.name, "killed"], self.text().encode())
        self.proc = None

    def stop(self):
        if self.proc is None:
            return None
        proc, self.proc = self.proc, None
        return sklib.stop_daemon(proc, self.log, self.text, "snapkeepd " + self.name)

    def get(self, path, timeout=20):
        return sklib.http_get(self.web_port, path, timeout)

    def api_devices(self):
        st, body = self.get("/api/devices?per_page=1000&sort=serial&order=asc")
        try:
            return st, json.loads(body)
        except ValueError:
            return st, {"unparsable": body[:300].decode(errors="replace")}


class Pairs:
    """smtplib in lock step against both nodes, one round per mail: the
    same bytes to A and to B, or (every other mail) two new mails of its
    snapshot, other Message-IDs, one to each.  Every 250 is recorded with the SHA-256
    of the bytes sent (CRLF lines, as on the wire before dot-stuffing)."""

    def __init__(self, mails, nodes):
        self.rounds = []
        for i, raw in enumerate(mails):
            raw = crlf(raw)
            if i % 2 == 0:
                self.rounds.append(("same-bytes", [raw, raw]))
            else:
                self.rounds.append(("same-snapshot", [self.remid(raw, "pair-%d-%s@multinode.test" % (i, n))
                                                      for n in ("a", "b")]))
        self.nodes = nodes
        self.barrier = threading.Barrier(len(nodes))
        self.lock = threading.Lock()
        self.acks = []      # (node name, sha256, round kind, round)
        self.refused = []   # (node name, sha256, why)
        self.attempts = 0
        self.threads = [threading.Thread(target=self.run, args=(k,), daemon=True) for k in range(len(nodes))]
        # Halfway the clients wait for go: the kill comes as they resume.
        self.hold_at = len(self.rounds) // 2
        self.held = threading.Semaphore(0)
        self.go = threading.Event()

    @staticmethod
    def remid(raw, mid):
        out, n = re.subn(rb"(?im)^Message-ID:[^\r\n]*\r\n", b"Message-ID: <%s>\r\n" % mid.encode(), raw, count=1)
        if n != 1:
            t.bail("a simulator mail without Message-ID")
        return out

    def run(self, k):
        node = self.nodes[k]
        for i, (kind, mails) in enumerate(self.rounds):
            raw = mails[k]
            if i == self.hold_at:
                self.held.release()
                self.go.wait(120)
            try:
                self.barrier.wait(timeout=60)
            except threading.BrokenBarrierError:
                pass
            with self.lock:
                self.attempts += 1
            code, text = smtp_lib.send_mail(node.smtp_port, raw, 20)
            with self.lock:
                if code == 250:
                    self.acks.append((node.name, sha256(raw), kind, i))
                else:
                    self.refused.append((node.name, sha256(raw), "%s %s" % (code, text)))

    def start(self):
        for th in self.threads:
            th.start()

    def join(self, timeout):
        for th in self.threads:
            th.join(timeout)
        return not any(th.is_alive() for th in self.threads)


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(") ")[-1][:1] != "Z"
    except OSError:
        return False


def manifest(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def main(tmp, server, nodes, procs):
    t0 = time.monotonic()
    db = server.create_database("sk_multinode")
    a = Node("A", tmp, db, A_WORKERS)
    b = Node("B", tmp, db, 2)
    nodes.extend([a, b])
    # Both at once on an empty database: one of them migrates, the other waits.
    a.start()
    b.start()
    deadline = time.monotonic() + 60
    a.wait_ready(deadline)
    b.wait_ready(deadline)
    ver = sklib.db_rows(db, "SELECT count(*) n FROM messages")[0]["n"]
    t.eq(ver, 0, "both nodes started together on one new database (schema made once)")

    # The smtplib clients' mails: a fleet of its own.
    pair_dir = os.path.join(tmp, "pairs")
    r = sklib.run([SIM, "--out", pair_dir, "-n", "4", "--seed", "23", "--days", "4"] + SIM_COMMON)
    if r.returncode != 0:
        t.bail("snapkeep-sim --out: %s" % r.stderr.decode(errors="replace")[-500:])
    pair_mails = [open(os.path.join(pair_dir, f), "rb").read() for f in sorted(os.listdir(pair_dir))]

    sims = {}
    # A and B-same: paced (a simulated day in 0.86 s), the same mails at the
    # same moments to both nodes; B-own: as fast as B takes them.
    paced = ["--speed", "100000"]
    for name, node, seed, days, more in (("A", a, 21, 6, SIM_FAULTS + paced),
                                         ("B-same", b, 21, 6, SIM_FAULTS + paced),
                                         ("B-own", b, 22, 4, [])):
        m = os.path.join(tmp, "manifest-%s.jsonl" % name)
        err = open(os.path.join(tmp, "sim-%s.err" % name), "wb")
        p = subprocess.Popen([SIM, "--smtp", "smtp://127.0.0.1:%d" % node.smtp_port, "-n", "6",
                              "--seed", str(seed), "--days", str(days), "--manifest", m]
                             + SIM_COMMON + more, stdout=subprocess.DEVNULL, stderr=err)
        procs.append(p)
        sims[name] = (p, m, err)
    pairs = Pairs(pair_mails, [a, b])
    pairs.start()

    # SIGKILL to A once it has acknowledged KILL_AFTER mails, its simulator
    # still sending, as the smtplib clients resume from halfway.
    accepted_re = re.compile(r"smtp: event=accepted .*? message_id=(\d+) duplicate=(\w+)")
    for _ in pairs.threads:
        if not pairs.held.acquire(timeout=60):
            t.bail("the smtplib clients did not reach halfway")
    sklib.wait_until(lambda: len(accepted_re.findall(a.text())) >= KILL_AFTER or sims["A"][0].poll() is not None,
               60, 0.02)
    sim_a_running = sims["A"][0].poll() is None
    a_children = a.children()
    pairs.go.set()
    a.kill()
    killed_at = time.monotonic() - t0
    pending_at_kill = {row["id"] for row in sklib.db_rows(db, "SELECT id FROM messages WHERE outcome = 'pending'")}
    a_text_1 = a.text()
    a_inserted = {int(mid) for mid, dup in accepted_re.findall(a_text_1) if dup == "no"}
    t.ok(sim_a_running, "node A killed (SIGKILL) at %.1f s after %d acknowledged mails, its simulator "
         "still sending" % (killed_at, len(accepted_re.findall(a_text_1))))
    t.diag("at the kill: %d messages pending, %d of them archived first by A, A's workers %s"
           % (len(pending_at_kill), len(pending_at_kill & a_inserted), sorted(a_children)))
    t.ok(a_children and sklib.wait_until(lambda: not any(alive(p) for p in a_children), 10),
         "node A's parse workers exit after it died", sorted(p for p in a_children if alive(p)))

    # The load ends: A's simulator gives up on what A cannot take any more.
    results = {}
    for name, (p, m, err) in sims.items():
        try:
            p.wait(120)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        err.close()
        with open(err.name, "rb") as f:
            sklib.check_sanitizer_output([SIM, name], f.read())
        results[name] = (p.returncode, manifest(m) if os.path.exists(m) else [])
    t.ok(pairs.join(120), "the smtplib clients finished")
    for name in ("B-same", "B-own"):
        t.eq(results[name][0], 0, "simulator %s: every mail to node B acknowledged" % name)
    lines_a = results["A"][1]
    unsent_a = [l for l in lines_a if l["delivery"]["status"] == "failed"]
    t.ok(results["A"][0] == 3 and unsent_a,
         "simulator A: %d mails acknowledged by A, %d not (A is dead; exit %s)"
         % (sum(1 for l in lines_a if l["delivery"]["status"] == "sent"), len(unsent_a), results["A"][0]))

    # Acknowledged mails: (node, sha256) per 250 reply.
    acks = []
    for name, (rc, lines) in results.items():
        for l in lines:
            if l["delivery"]["status"] == "sent":
                acks.append((name[0], l["sha256"]))
    acks += [(n, s) for n, s, _, _ in pairs.acks]
    pair_acks_a = sum(1 for n, _, _, _ in pairs.acks if n == "A")
    t.ok(pair_acks_a > 0 and any(n == "A" for n, _, _ in pairs.refused),
         "smtplib: %d mails acknowledged by A before the kill, %d by B, %d refused"
         % (pair_acks_a, len(pairs.acks) - pair_acks_a, len(pairs.refused)))
    t.ok(not [r for r in pairs.refused if r[0] == "B"], "node B acknowledged every smtplib mail",
         [r for r in pairs.refused if r[0] == "B"][:5])

    # Node B's sweep parses what A left: nothing stays pending.
    done = sklib.wait_until(lambda: sklib.pending_counts(db) == {"m": 0, "i": 0}, 30, 0.2)
    t.ok(done, "no message or arrival pending after node B's sweeps (%.1f s)" % (time.monotonic() - t0),
         sklib.pending_counts(db))

    msgs = {r["sha256"]: r for r in sklib.db_rows(db, "SELECT id, sha256, outcome FROM messages")}
    by_id = {r["id"]: r for r in msgs.values()}
    dup_sha = sklib.db_rows(db, "SELECT sha256, count(*) n FROM messages GROUP BY sha256 HAVING count(*) > 1")
    t.eq(dup_sha, [], "messages.sha256 is unique")
    missing = sorted({s for _, s in acks if s not in msgs})
    t.ok(not missing, "all %d acknowledged arrivals (%d distinct mails) are archived"
         % (len(acks), len({s for _, s in acks})), missing[:5])
    both = {s for n, s in acks if n == "A"} & {s for n, s in acks if n == "B"}
    t.ok(len(both) >= 10, "%d mails acknowledged by both nodes are one message each" % len(both))

    intake = sklib.db_rows(db, "SELECT i.id, i.outcome, i.snapshot_id, m.sha256, m.id mid, m.outcome moutcome"
                               " FROM intake i JOIN messages m ON m.id = i.message_id")
    arrivals = {}
    for row in intake:
        arrivals.setdefault(row["sha256"], []).append(row)
    acked_n = {}
    for _, s in acks:
        acked_n[s] = acked_n.get(s, 0) + 1
    short = [(s, n, len(arrivals.get(s, []))) for s, n in acked_n.items() if len(arrivals.get(s, [])) < n]
    t.ok(not short, "an intake row for every acknowledged arrival", short[:5])
    attempts = sum(l["delivery"]["attempts"] for _, lines in results.values() for l in lines) + pairs.attempts
    t.ok(len(acks) <= len(intake) <= attempts,
         "intake rows: %d, between the %d acknowledgements and the %d attempts" % (len(intake), len(acks), attempts))
    bad = []
    for s, rows in arrivals.items():
        outs = [r["outcome"] for r in rows]
        mo = rows[0]["moutcome"]
        if not set(outs) <= {mo, "duplicate"} or (mo != "duplicate" and outs.count(mo) != 1):
            bad.append((rows[0]["mid"], mo, outs))
    t.ok(not bad, "each message: its first arrival has its outcome, the others are duplicates", bad[:5])
    no_arrival = [m["id"] for m in msgs.values() if m["sha256"] not in arrivals]
    t.eq(no_arrival, [], "no message without an arrival")

    # Snapshots: one per (device, taken_utc) and per message, from 'stored' messages.
    snaps = sklib.db_rows(db, "SELECT s.id, s.message_id, s.taken_utc, d.serial FROM snapshots s"
                              " JOIN devices d ON d.id = s.device_id")
    keys = {}
    for s in snaps:
        keys.setdefault((s["serial"], s["taken_utc"]), []).append(s["id"])
    t.eq([k for k, v in keys.items() if len(v) > 1], [], "one snapshot per (device, taken_utc) (%d)" % len(snaps))
    per_msg = {}
    for s in snaps:
        per_msg.setdefault(s["message_id"], []).append(s["id"])
    t.eq([m for m, v in per_msg.items() if len(v) > 1], [], "no message parsed into two snapshots")
    stored = {m["id"] for m in msgs.values() if m["outcome"] == "stored"}
    t.eq(set(per_msg), stored, "the snapshots are exactly those of the messages stored")
    stored_rows = [r for r in intake if r["outcome"] == "stored"]
    t.ok(all(r["snapshot_id"] in per_msg.get(r["mid"], []) for r in stored_rows),
         "stored arrivals point at their message's snapshot")

    # The outcomes the simulators expect; one 'stored' per snapshot sent in several mails.
    want = {"stored": {"stored"}, "not_snapshot": {"not-snapshot"}, "failed": {"failed"},
            "duplicate": {"stored"}, "duplicate_snapshot": {"stored", "duplicate"}}
    carriers = {}  # (serial, taken_utc) -> distinct sha256 of every mail carrying it
    sim_lines = [l for _, lines in results.values() for l in lines]
    for l in sim_lines:
        if l.get("kind") == "snapshot" and l["expect"] in ("stored", "duplicate", "duplicate_snapshot"):
            carriers.setdefault((l["serial"], l["taken_utc"]), set()).add(l["sha256"])
    wrong = []
    for l in sim_lines:
        if l["delivery"]["status"] != "sent":
            continue
        allowed = want[l["expect"]]
        if len(carriers.get((l.get("serial"), l.get("taken_utc")), ())) > 1:
            allowed = {"stored", "duplicate"}
        got = msgs.get(l["sha256"], {}).get("outcome")
        if got not in allowed:
            wrong.append("%s %s %s: %s" % (l["serial"], l["fault"], l["expect"], got))
    t.ok(not wrong, "each simulator mail has the outcome its manifest expects", wrong[:5])
    lost = [k for k in carriers if k not in keys and any(
        l["sha256"] in msgs and l["delivery"]["status"] == "sent" for l in sim_lines
        if (l.get("serial"), l.get("taken_utc")) == k)]
    t.eq(lost, [], "every acknowledged snapshot is in the snapshots table")
    dropped = [l for l in sim_lines if l["delivery"]["status"] == "dropped"]
    t.ok(dropped and not [l for l in dropped if l["sha256"] in msgs], "%d mails dropped in DATA not archived"
         % len(dropped))

    # One new snapshot in two mails to A and B at once: one stored, one duplicate.
    both_acked, pair_wrong, pair_ids = 0, [], []
    for i, (kind, mails) in enumerate(pairs.rounds):
        if kind != "same-snapshot" or not any(r == i for _, _, _, r in pairs.acks):
            continue
        outs = sorted(msgs[sha256(m)]["outcome"] for m in mails if sha256(m) in msgs)
        if len(outs) == 2:
            both_acked += 1
            pair_ids.append([msgs[sha256(m)]["id"] for m in mails])
            ok = outs == ["duplicate", "stored"]
        else:
            ok = outs == ["stored"]
        if not ok:
            pair_wrong.append((i, outs))
    t.ok(both_acked > 0 and not pair_wrong, "a snapshot in new mails to both nodes at once is stored once "
         "(%d rounds archived on both)" % both_acked, pair_wrong)

    # Parsed once: the parse log lines of both nodes.
    b_text = b.text()
    parsed = {}
    for who, text in (("A", a_text_1), ("B", b_text)):
        for mid, outcome in PARSED_RE.findall(text):
            parsed.setdefault(int(mid), []).append((who, outcome))
    twice = {m: v for m, v in parsed.items() if len(v) > 1}
    t.eq(twice, {}, "each message id parsed at most once across both nodes (%d parsed: A %d, B %d)"
         % (len(parsed), sum(1 for v in parsed.values() if v[0][0] == "A"),
            sum(1 for v in parsed.values() if v[0][0] == "B")))
    unlogged = sorted(m for m in by_id if m not in parsed)
    t.ok(len(unlogged) <= A_WORKERS, "every message's parse is logged but for what A committed as it died "
         "(at most %d): %s" % (A_WORKERS, unlogged), unlogged)
    mismatch = [(m, v, by_id[m]["outcome"]) for m, v in parsed.items() if m in by_id and v[0][1] != by_id[m]["outcome"]]
    t.eq(mismatch, [], "the logged outcomes are the stored ones")
    left = sorted(pending_at_kill)
    by_b = [m for m in left if parsed.get(m, [("?",)])[0][0] == "B"]
    if left:
        t.ok(len(by_b) == len(left), "the %d messages pending at the kill (%d archived by A) were parsed by B"
             % (len(left), len(set(left) & a_inserted)), [(m, parsed.get(m)) for m in left if m not in by_b][:5])
    else:
        t.skip("messages pending at the kill parsed by B", "node A had parsed everything when killed")
    t.diag("the two mails of one snapshot parsed by: %s"
           % " ".join("/".join(parsed.get(m, [("-",)])[0][0] for m in ids) for ids in pair_ids))
    # B parses what it archived itself; what A archived and left pending only
    # B's sweep can find.
    if set(left) & a_inserted:
        t.ok(re.search(r"intake: event=swept pending=[1-9]", b.text()) is not None,
             "node B's sweep found the pending messages A left")
    else:
        t.skip("node B's sweep found the pending messages A left", "A left none of its own pending")
    commit_failed = re.findall(r"intake: event=commit-failed[^\n]*", b_text)
    t.eq(commit_failed, [], "node B: no parse commit failed")
    for who, text in (("A", a_text_1), ("B", b_text)):
        warns = [l for l in text.splitlines() if re.search(r": (warning|error): ", l)
                 and "event=running-as-root" not in l and "outcome=failed" not in l]
        if warns:
            t.diag("node %s warned:\n%s" % (who, "\n".join(warns[:20])))

    r = sklib.run([CLI, "verify", "--db", db], timeout=120)
    t.ok(r.returncode == 0, "snapkeep verify: every message reads back to its SHA-256 (exit %d)" % r.returncode,
         (r.stdout + r.stderr).decode(errors="replace")[-2000:])

    # Node B serves the view and the API for the whole fleet.
    serials = sorted(x["serial"] for x in sklib.db_rows(db, "SELECT serial FROM devices"))
    acked_serials = {l["serial"] for l in sim_lines if l["delivery"]["status"] == "sent" and l.get("kind") == "snapshot"
                     and msgs.get(l["sha256"], {}).get("outcome") in ("stored", "duplicate")}
    st, jb = b.api_devices()
    got = sorted(d["serial"] for d in jb.get("devices", []))
    t.ok(st == 200 and jb.get("total") == len(serials) and got == serials and acked_serials <= set(got),
         "node B: /api/devices lists all %d devices" % len(serials), (st, jb.get("total"), got, serials))
    st, page = b.get("/")
    page = page.decode(errors="replace")
    t.ok(st == 200 and all(s in page for s in serials), "node B: the fleet page shows every device",
         (st, [s for s in serials if s not in page]))
    one = serials[0]
    st, body = b.get("/api/devices/%s/snapshots" % one)
    n_one = sum(1 for k in keys if k[0] == one)
    try:
        total = json.loads(body).get("total")
    except ValueError:
        total = None
    t.eq((st, total), (200, n_one), "node B: /api/devices/%s/snapshots has its %d snapshots" % (one, n_one))

    # Node A again: both nodes answer the same.
    a.start()
    a.wait_ready(time.monotonic() + 30)
    st, ja = a.api_devices()
    st_b, jb = b.api_devices()
    t.ok(st == 200 and st_b == 200 and ja == jb and len(ja.get("devices", [])) == len(serials),
         "node A restarted: both nodes' /api/devices agree (%d devices)" % len(serials),
         json.dumps(ja)[:1500] + "\n" + json.dumps(jb)[:1500])
    t.eq(sklib.pending_counts(db), {"m": 0, "i": 0}, "still nothing pending")
    a_text_2 = a.text()
    again = [m for m, _ in PARSED_RE.findall(a_text_2)]
    t.eq(again, [], "restarted node A parses nothing again")

    t.eq(a.stop(), 0, "node A stops cleanly")
    t.eq(b.stop(), 0, "node B stops cleanly")
    t.diag("wall time %.1f s" % (time.monotonic() - t0))
    return True


def run():
    server = sklib.PgServer()
    tmp = sklib.tempdir("sk-multinode-")
    nodes, procs, finished = [], [], False
    try:
        try:
            server.start()
        except sklib.PgError as e:
            t.bail("PostgreSQL for the test: %s" % e)
        finished = main(tmp, server, nodes, procs)
    finally:
        for p in procs + [n.proc for n in nodes if n.proc is not None]:
            if p.poll() is None:
                p.kill()
                p.wait()
        server.stop()
        if t.failed or not finished:
            keep = tmp + ".failed"
            shutil.rmtree(keep, ignore_errors=True)
            shutil.move(tmp, keep)
            t.diag("logs kept in %s" % keep)
        else:
            sklib.cleanup(tmp)
    t.done()


run()
