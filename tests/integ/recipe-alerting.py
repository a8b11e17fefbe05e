# recipe-alerting.py: contrib/alerting/ against real data and real tools.
#
#  nagios.cfg        each service's check_command is expanded through its
#                    command definition ($ARGn$) and run: exit codes and the
#                    status line follow the thresholds the service passes
#  icinga2.conf      every option the CheckCommand passes is one that
#                    `snapkeep check` accepts
#  low-toner-report  with SENDMAIL=cat: the report lists exactly the supplies
#                    the example snapshots give as low (from their expected
#                    values), and sends nothing when none is; with Postfix's
#                    sendmail into a temporary Postfix instance: the report
#                    arrives in a Maildir
#  snapkeep.rules.yml  parses (promtool check rules when Debian's prometheus
#                    package is installed; always python3-yaml), has the
#                    structure of a rules file, and every metric, label and
#                    label value it uses appears in a live snapkeepd /metrics;
#                    the supply thresholds select the expected series
import importlib.util
import os
import pwd
import re
import shlex
import shutil
import subprocess
import tempfile

_spec = importlib.util.spec_from_file_location(
    "recipelib", os.path.join(os.path.dirname(os.path.abspath(__file__)), "recipe-lib.py"))
rl = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rl)

try:
    import yaml
except ImportError:
    rl.bail("python3-yaml is missing: apt-get install python3-yaml")

tap = rl.Tap()
rl.require_tool("sqlite3", "sqlite3")
SNAPKEEP = rl.sk.program("snapkeep")
work = tempfile.mkdtemp(prefix="sk-recipe-alerting-")
os.chmod(work, 0o755)
examples = rl.examples()


def make_db(name, which):
    db = os.path.join(work, name + ".db")
    r = rl.sk.run([SNAPKEEP, "import", "--quiet", "--db", db] + [p for n, p, e in examples
                                                                   if n in which])
    if r.returncode != 0:
        rl.bail("snapkeep import failed: %s" % r.stderr)
    return db


all_db = make_db("all", [n for n, p, e in examples])
color_db = make_db("color", ["futuresmart-color-mfp"])
legacy_db = make_db("legacy", ["legacy-color-mfp"])

# --- nagios.cfg -----------------------------------------------------------
cfg = rl.read(os.path.join(rl.TOP_SRCDIR, "contrib", "alerting", "nagios.cfg"))
objects = []
for kind, body in re.findall(r"(?ms)^define\s+(\w+)\s*\{(.*?)^\}", cfg):
    fields = {}
    for line in body.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            k, _, v = line.partition(" ")
            fields[k] = v.strip()
    objects.append((kind, fields))
commands = {f["command_name"]: f["command_line"] for k, f in objects if k == "command"}
services = {f["service_description"]: f["check_command"] for k, f in objects if k == "service"}
tap.eq(sorted(commands), ["check_snapkeep", "check_snapkeep_supplies"], "nagios.cfg: two commands")
tap.eq(len(services), 2, "nagios.cfg: two services")


def nagios_run(service, db):
    """Expands the service's check_command as Nagios does and runs it."""
    parts = services[service].split("!")
    line = commands[parts[0]]
    for i, arg in enumerate(parts[1:], 1):
        line = line.replace("$ARG%d$" % i, arg)
    if "$ARG" in line:
        return None, "unexpanded macro: " + line
    line = line.replace("/var/lib/snapkeep/snapkeep.db", db)
    argv = shlex.split(line)
    if argv[0] != "/usr/bin/snapkeep":
        return None, "not /usr/bin/snapkeep: " + line
    r = rl.sk.run([SNAPKEEP] + argv[1:])
    return r.returncode, r.stdout.decode()


def status_line_ok(out, state):
    first = out.splitlines()[0] if out else ""
    return re.match(r"SNAPKEEP %s - .* \| devices=\d+ " % state, first) is not None


rc, out = nagios_run("snapkeep printer fleet", all_db)
tap.ok(rc == 2 and status_line_ok(out, "CRITICAL") and "supplies_out=2;" in out,
       "nagios fleet service (20/5): CRITICAL, exit 2, two supplies out, perfdata", out)
rc, out = nagios_run("snapkeep supplies", all_db)
tap.ok(rc == 2 and "supplies_low=1;" in out and "supplies_out=1;" in out
       and "overdue=0;" in out,
       "nagios supplies service (15/3): 4% is a warning, 0% critical; no overdue check", out)
rc, out = nagios_run("snapkeep supplies", legacy_db)
tap.ok(rc == 1 and status_line_ok(out, "WARNING"),
       "nagios supplies service on a device at 4%: WARNING, exit 1", out)
rc, out = nagios_run("snapkeep supplies", color_db)
tap.ok(rc == 0 and status_line_ok(out, "OK"), "nagios supplies service, nothing low: OK, exit 0",
       out)
rc, out = nagios_run("snapkeep supplies", os.path.join(work, "missing.db"))
tap.eq(rc, 3, "nagios supplies service without a database: UNKNOWN, exit 3")

# --- icinga2.conf ---------------------------------------------------------
ic = rl.read(os.path.join(rl.TOP_SRCDIR, "contrib", "alerting", "icinga2.conf"))
helptext = rl.sk.run([SNAPKEEP, "check", "--help"]).stdout.decode()
accepted = set(re.findall(r"(--[a-z-]+)", helptext))
passed = re.findall(r'"(--[a-z-]+)"\s*=', ic)
tap.ok(passed and set(passed) <= accepted,
       "icinga2.conf: every argument (%d) is an option of snapkeep check" % len(passed),
       set(passed) - accepted)
tap.ok('command = [ "/usr/bin/snapkeep", "check" ]' in ic, "icinga2.conf: runs snapkeep check")

# --- low-toner-report -----------------------------------------------------
script = os.path.join(rl.TOP_SRCDIR, "contrib", "alerting", "low-toner-report")
tap.ok(os.access(script, os.X_OK), "low-toner-report is executable")


def report(db, **env):
    e = {"SNAPKEEP_DB": db, "SENDMAIL": "cat", "REPORT_TO": "printers@example.com"}
    e.update(env)
    r = rl.sk.run(["/bin/sh", script], env=e)
    return r.returncode, r.stdout.decode(), r.stderr.decode()


def expected_low(low):
    """(serial, color, level) of the example supplies at or below low % or
    reported low/out/empty: from the examples' expected values, not the db."""
    out = set()
    for n, p, e in examples:
        for s in e["supplies"]:
            if s.get("state") in ("low", "out", "empty") or (
                    s.get("level_percent") is not None and s["level_percent"] <= low):
                out.add((e["serial"], s.get("color"), s.get("level_percent")))
    return out


def listed(text):
    rows = set()
    for line in text.splitlines():
        m = re.match(r"(PHB\w+)\s+.*?\s(black|cyan|magenta|yellow)\s+(\d+)\b", line)
        if m:
            rows.add((m.group(1), m.group(2), int(m.group(3))))
    return rows


for low in (20, 3):
    rc, out, err = report(all_db, LOW_PERCENT=str(low))
    want = expected_low(low)
    head, _, body = out.partition("\n\n")
    tap.ok(rc == 0 and "To: printers@example.com" in head
           and "Subject: snapkeep: %d supplies low" % len(want) in head,
           "low-toner-report (LOW_PERCENT=%d): a mail with headers, %d supplies in the subject"
           % (low, len(want)), out + err)
    tap.eq(listed(body), want, "low-toner-report (LOW_PERCENT=%d): lists exactly the low supplies"
           % low)
rc, out, err = report(color_db)
tap.ok(rc == 0 and out == "", "low-toner-report: nothing low, nothing sent", out + err)
rc, out, err = report(color_db, REPORT_EMPTY="1")
tap.ok(rc == 0 and "Subject: snapkeep: 0 supplies low" in out,
       "low-toner-report: REPORT_EMPTY=1 sends the empty report", out + err)
rc, out, err = report(all_db, LOW_PERCENT="5; DROP TABLE x")
tap.ok(rc == 1 and out == "" and "whole number" in err,
       "low-toner-report: a LOW_PERCENT that is not a number is refused", out + err)
rc, out, err = report(os.path.join(work, "missing.db"))
tap.ok(rc == 1 and "cannot read" in err, "low-toner-report: a missing database is an error (exit 1)",
       out + err)

# Through Postfix's sendmail into a Maildir of a temporary instance.
if os.geteuid() == 0 and shutil.which("postfix"):
    nobody = pwd.getpwnam("nobody")
    mail = os.path.join(work, "mail")
    os.mkdir(mail, 0o755)
    os.mkdir(os.path.join(mail, "printers"), 0o700)
    os.chown(os.path.join(mail, "printers"), nobody.pw_uid, nobody.pw_gid)
    pf = rl.Postfix("alerting", main_extra="""
mydestination =
virtual_mailbox_domains = example.com
virtual_mailbox_base = {mail}
virtual_mailbox_maps = hash:PFCONF/vmailbox
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{gid}
""".format(mail=mail, uid=nobody.pw_uid, gid=nobody.pw_gid),
        maps={"vmailbox": "printers@example.com printers/\n"}, hashed=["vmailbox"])
    p = os.path.join(pf.conf, "main.cf")
    rl.write(p, rl.read(p).replace("PFCONF", pf.conf))
    try:
        pf.start()
        rc, out, err = report(all_db, SENDMAIL="/usr/sbin/sendmail -C %s -t -oi" % pf.conf,
                              REPORT_FROM="snapkeep@example.com")
        tap.ok(rc == 0 and out == "", "low-toner-report through Postfix's sendmail -t: exit 0",
               out + err)
        new = os.path.join(mail, "printers", "new")

        def delivered():
            files = os.listdir(new) if os.path.isdir(new) else []
            return files and rl.read(os.path.join(new, files[0]))
        msg = rl.wait_for(delivered, 30)
        tap.ok(msg and "Subject: snapkeep: %d supplies low" % len(expected_low(20)) in msg
               and listed(msg) == expected_low(20),
               "the report arrives in printers@example.com's Maildir, with its table",
               (msg or "") + pf.log()[-2000:])
    finally:
        tap.eq(pf.stop(), 0, "postfix -c DIR stop")
        pf.cleanup()
else:
    tap.ok(False, "low-toner-report through Postfix's sendmail needs root and postfix "
           "(apt-get install postfix)")

# --- snapkeep.rules.yml -----------------------------------------------------
rules_path = os.path.join(rl.TOP_SRCDIR, "contrib", "alerting", "snapkeep.rules.yml")
promtool = shutil.which("promtool")
if promtool:
    r = subprocess.run([promtool, "check", "rules", rules_path], capture_output=True, text=True)
    tap.ok(r.returncode == 0, "promtool check rules", r.stdout + r.stderr)
else:
    tap.diag("promtool not installed (Debian package prometheus, about 100 MB): the rules are "
             "checked with python3-yaml and a live /metrics instead")
doc = yaml.safe_load(rl.read(rules_path))
rules = [r for g in doc.get("groups", []) for r in g.get("rules", [])]
duration = re.compile(r"^\d+[smhdwy]$")
tap.ok(rules and all(isinstance(g.get("name"), str) for g in doc["groups"]) and all(
    set(r) <= {"alert", "expr", "for", "labels", "annotations"}
    and re.match(r"^[A-Z][A-Za-z]+$", r.get("alert", ""))
    and isinstance(r.get("expr"), str)
    and ("for" not in r or duration.match(str(r["for"])))
    and r.get("labels", {}).get("severity") in ("warning", "critical")
    and "summary" in r.get("annotations", {}) for r in rules),
    "snapkeep.rules.yml: %d alerting rules, each with alert, expr, severity, summary" % len(rules),
    rules)

state = os.path.join(work, "daemon")
os.mkdir(state)
d = rl.Snapkeepd(rl.sk.program("snapkeepd"), state)
d.start()
try:
    for n, p, e in examples:
        rl.send_mail(d.smtp_port, "snapshots@example.com", rl.read(p, "rb"))
    rl.wait_for(lambda: len(rl.db_serials(d.db)) == len(examples), 60)
    status, metrics = rl.http_get(d.web_port, "/metrics")
    tap.eq(status, 200, "live /metrics of snapkeepd after the examples arrived")
finally:
    tap.eq(d.stop(), 0, "snapkeepd stops (exit 0)")

# name -> list of label dicts, from the exposition text.
series = {}
for line in metrics.splitlines():
    m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$", line)
    if m:
        labels = dict(re.findall(r'([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        series.setdefault(m.group(1), []).append((labels, float(m.group(3))))
problems = []
for r in rules:
    names = set(re.findall(r"\b(snapkeep_[a-z_]+)\b", r["expr"]))
    if not names:
        problems.append("%s: no snapkeep metric" % r["alert"])
    for name in names:
        if name not in series:
            problems.append("%s: %s is not in /metrics" % (r["alert"], name))
            continue
        for sel in re.findall(name + r"\{([^}]*)\}", r["expr"]):
            for k, v in re.findall(r'(\w+)="([^"]*)"', sel):
                if not any(lab.get(k) == v for lab, _ in series[name]):
                    problems.append('%s: %s{%s="%s"} matches no series' % (r["alert"], name, k, v))
        text = " ".join(str(v) for v in r.get("annotations", {}).values())
        for k in re.findall(r"\$labels\.(\w+)", text):
            if not all(k in lab for lab, _ in series[name]):
                problems.append("%s: label %s is not on %s" % (r["alert"], k, name))
tap.ok(not problems, "snapkeep.rules.yml: every metric, label and label value is in /metrics",
       "\n".join(problems))

# The supply rules select the expected series (simple "metric <= N" exprs).
for r in rules:
    m = re.match(r"^snapkeep_device_supply_level_percent <= (\d+)$", r["expr"])
    if not m:
        continue
    low = int(m.group(1))
    firing = {(lab["serial"], lab["color"], int(v))
              for lab, v in series["snapkeep_device_supply_level_percent"] if v <= low}
    want = {(s, c, lv) for s, c, lv in expected_low(100) if lv is not None and lv <= low}
    tap.eq(firing, want, "%s (<= %d%%) fires for the example supplies at or below it"
           % (r["alert"], low))

shutil.rmtree(work, ignore_errors=True)
tap.done()
