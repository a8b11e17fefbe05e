# recipe-postfix.py: the Postfix recipes of contrib/postfix/ with a real
# Postfix (a temporary instance on a loopback port, started as root).
#
#  pipe   contrib/postfix/pipe/: a message for snapshots@example.com sent to
#         Postfix with smtplib reaches snapkeep's database through the pipe
#         transport (`snapkeep import -`, run as an unprivileged user); while
#         the database is unavailable the import exits 75 and the mail stays
#         deferred in Postfix's queue; once it is back, `postqueue -f`
#         delivers it.
#  relay  contrib/postfix/relay/: the message is relayed over SMTP to a
#         running snapkeepd; while snapkeepd is down Postfix defers it, and
#         delivers it after snapkeepd is back and the queue is flushed.
#
# The recipe files are used as written; only their Debian paths, the user
# and the port are rewritten for the temporary instance.
import importlib.util
import os
import pwd
import shutil
import tempfile

_spec = importlib.util.spec_from_file_location(
    "recipelib", os.path.join(os.path.dirname(os.path.abspath(__file__)), "recipe-lib.py"))
rl = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rl)

tap = rl.Tap()
rl.require_root("recipe-postfix")
rl.require_tool("postfix", "postfix")
rl.require_tool("postqueue", "postfix")
examples = rl.examples()
nobody = pwd.getpwnam("nobody")


def message(i):
    name, path, expected = examples[i]
    return rl.read(path, "rb"), expected["serial"]


def in_queue(pf):
    return [m for m in pf.queue_ids()]


def deferred_reason(pf):
    return " ".join(r.get("delay_reason", "") for m in pf.queue_ids()
                    for r in m.get("recipients", []))


# --- pipe: snapkeep import - ---------------------------------------------
work = tempfile.mkdtemp(prefix="sk-recipe-pipe-")
os.chmod(work, 0o755)
bins = rl.private_copy(["snapkeep", "snapkeep-parse"], os.path.join(work, "bin"))
dbdir = os.path.join(work, "db")
os.mkdir(dbdir, 0o750)
os.chown(dbdir, nobody.pw_uid, nobody.pw_gid)
db = os.path.join(dbdir, "snapkeep.db")

pf = rl.Postfix(
    "pipe",
    main_extra=rl.recipe("postfix/pipe/main.cf", [("/etc/postfix/transport", "PFCONF/transport")]),
    master_extra=rl.recipe("postfix/pipe/master.cf", [
        ("user=snapkeep", "user=nobody"),
        ("/usr/bin/snapkeep", bins["snapkeep"]),
        ("/var/lib/snapkeep/snapkeep.db", db)]),
    maps={"transport": rl.recipe("postfix/pipe/transport")},
    hashed=["transport"])
# The config directory is known only now.
main_cf = os.path.join(pf.conf, "main.cf")
rl.write(main_cf, rl.read(main_cf).replace("PFCONF", pf.conf))
try:
    pf.start()
    tap.ok(True, "pipe: a Postfix instance with the recipe's main.cf, master.cf and transport "
           "starts (port %d)" % pf.port)

    data, serial = message(0)
    tap.eq(rl.send_mail(pf.port, "snapshots@example.com", data), {},
           "pipe: Postfix accepts mail for snapshots@example.com")
    got = rl.wait_for(lambda: serial in rl.db_serials(db), timeout=60)
    tap.ok(got, "pipe: the snapshot reaches the database through snapkeep import -",
           pf.log()[-2000:])
    rows = rl.db_query(db, "SELECT source, outcome FROM intake_log WHERE serial = ?", (serial,)) \
        if got else []
    tap.eq(rows, [("stdin", "stored")], "pipe: intake_log: source stdin, outcome stored")
    tap.ok(rl.wait_for(lambda: "status=sent (delivered via snapkeep service)" in pf.log(), 20),
           "pipe: Postfix logs the delivery via the snapkeep service", pf.log()[-2000:])
    st = os.stat(db)
    tap.eq(st.st_uid, nobody.pw_uid, "pipe: the import runs as the recipe's user= (owns the "
           "database it created)")

    # The database becomes unavailable: its directory is gone.
    away = dbdir + ".away"
    os.rename(dbdir, away)
    data2, serial2 = message(1)
    tap.eq(rl.send_mail(pf.port, "snapshots@example.com", data2), {},
           "pipe: Postfix accepts a second message while the database is away")
    deferred = rl.wait_for(lambda: "status=deferred" in pf.log(), timeout=60)
    tap.ok(deferred, "pipe: snapkeep import exits 75, Postfix defers the mail", pf.log()[-2000:])
    q = in_queue(pf)
    tap.ok(len(q) == 1 and q[0].get("queue_name") == "deferred",
           "pipe: the mail waits in the deferred queue", q)
    reason = deferred_reason(pf)
    tap.ok("temporary failure" in reason and "snapkeep import" in reason, "pipe: the deferral reason is a temporary failure "
           "with snapkeep's message", reason)

    os.rename(away, dbdir)
    r = pf.flush()
    tap.eq(r.returncode, 0, "pipe: postqueue -f after the database is back")
    got2 = rl.wait_for(lambda: serial2 in rl.db_serials(db), timeout=60)
    tap.ok(got2, "pipe: the deferred mail is delivered into the database", pf.log()[-2000:])
    tap.ok(rl.wait_for(lambda: not pf.queue_ids(), timeout=30), "pipe: Postfix's queue is empty",
           pf.queue_ids())
    tap.eq(sorted(rl.db_serials(db)), sorted([serial, serial2]),
           "pipe: both snapshots stored, each once")
finally:
    tap.eq(pf.stop(), 0, "pipe: postfix -c DIR stop")
    pf.cleanup()
    shutil.rmtree(work, ignore_errors=True)

# --- relay: Postfix -> snapkeepd over SMTP -------------------------------
work = tempfile.mkdtemp(prefix="sk-recipe-relay-")
port = rl.free_port()
d = rl.Snapkeepd(rl.sk.program("snapkeepd"), work,
                 {"smtp": {"listen": "127.0.0.1:%d" % port}, "web": {"enabled": "false"}})
d.start()
pf = rl.Postfix(
    "relay",
    main_extra=rl.recipe("postfix/relay/main.cf", [("/etc/postfix/transport", "PFCONF/transport")]),
    maps={"transport": rl.recipe("postfix/relay/transport",
                                 [("[127.0.0.1]:2525", "[127.0.0.1]:%d" % port)])},
    hashed=["transport"])
main_cf = os.path.join(pf.conf, "main.cf")
rl.write(main_cf, rl.read(main_cf).replace("PFCONF", pf.conf))
try:
    pf.start()
    data, serial = message(2)
    tap.eq(rl.send_mail(pf.port, "snapshots@example.com", data), {},
           "relay: Postfix accepts mail for snapshots@example.com")
    got = rl.wait_for(lambda: serial in rl.db_serials(d.db), timeout=60)
    tap.ok(got, "relay: the snapshot reaches snapkeepd's database over SMTP",
           pf.log()[-2000:] + d.log_text()[-2000:])
    rows = rl.db_query(d.db, "SELECT source, peer, helo, rcpt_to, outcome FROM intake_log "
                       "WHERE serial = ?", (serial,)) if got else []
    tap.ok(len(rows) == 1 and rows[0][0] == "smtp" and rows[0][1].startswith("127.0.0.1")
           and rows[0][2] == "mta.example.com" and "snapshots@example.com" in rows[0][3]
           and rows[0][4] == "stored",
           "relay: intake_log: smtp from Postfix (helo mta.example.com), rcpt "
           "snapshots@example.com, stored", rows)
    tap.ok(rl.wait_for(lambda: "relay=127.0.0.1[127.0.0.1]:%d" % port in pf.log()
                       and "status=sent" in pf.log(), 20),
           "relay: Postfix logs status=sent via the relay transport", pf.log()[-2000:])

    # snapkeepd is down: Postfix keeps the mail and retries.
    tap.eq(d.stop(), 0, "relay: snapkeepd stops (SIGTERM, exit 0)")
    data2, serial2 = message(1)
    tap.eq(rl.send_mail(pf.port, "snapshots@example.com", data2), {},
           "relay: Postfix accepts mail while snapkeepd is down")
    tap.ok(rl.wait_for(lambda: "status=deferred" in pf.log(), timeout=60),
           "relay: Postfix defers it (connection refused)", pf.log()[-2000:])
    tap.eq(len(pf.queue_ids()), 1, "relay: one mail in Postfix's queue")
    d.start()
    tap.eq(pf.flush().returncode, 0, "relay: postqueue -f once snapkeepd is back")
    tap.ok(rl.wait_for(lambda: serial2 in rl.db_serials(d.db), timeout=60),
           "relay: the deferred mail reaches snapkeepd", pf.log()[-2000:])
    tap.ok(rl.wait_for(lambda: not pf.queue_ids(), timeout=30), "relay: Postfix's queue is empty",
           pf.queue_ids())
finally:
    tap.eq(pf.stop(), 0, "relay: postfix -c DIR stop")
    pf.cleanup()
    tap.eq(d.stop(), 0, "relay: snapkeepd stops (exit 0)")
    shutil.rmtree(work, ignore_errors=True)

tap.done()
