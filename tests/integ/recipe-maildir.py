# recipe-maildir.py: contrib/maildir/ end to end.  A real Postfix (a
# temporary instance on a loopback port, as root) delivers mail for
# snapshots@example.com with its virtual(8) agent into a Maildir, as the
# unprivileged owner the recipe names; snapkeepd, configured with the
# recipe's [poll.maildir] section, takes the messages from the Maildir
# (inotify), stores them, and flags them (new/ -> cur/ with :2,S).
#
# The recipe files are used as written; only their Debian paths and the
# uid/gid are rewritten for the temporary instance.
import configparser
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
rl.require_root("recipe-maildir")
rl.require_tool("postfix", "postfix")
nobody = pwd.getpwnam("nobody")

work = tempfile.mkdtemp(prefix="sk-recipe-maildir-")
os.chmod(work, 0o755)
mailbase = os.path.join(work, "mail")
os.mkdir(mailbase, 0o755)
maildir = os.path.join(mailbase, "snapkeep")
# The recipe's install -d -o snapkeep -g snapkeep -m 0700 DIR DIR/cur DIR/new DIR/tmp
for sub in ("", "cur", "new", "tmp"):
    os.mkdir(os.path.join(maildir, sub), 0o700)
    os.chown(os.path.join(maildir, sub), nobody.pw_uid, nobody.pw_gid)

pf = rl.Postfix(
    "maildir",
    main_extra=rl.recipe("maildir/main.cf", [("/etc/postfix/transport", "PFCONF/transport")]),
    master_extra=rl.recipe("maildir/master.cf", [
        ("virtual_mailbox_base=/var/mail", "virtual_mailbox_base=" + mailbase),
        ("hash:/etc/postfix/snapkeep-mailbox", "hash:PFCONF/snapkeep-mailbox"),
        ("virtual_uid_maps=static:998", "virtual_uid_maps=static:%d" % nobody.pw_uid),
        ("virtual_gid_maps=static:998", "virtual_gid_maps=static:%d" % nobody.pw_gid)]),
    maps={"transport": rl.recipe("maildir/transport"),
          "snapkeep-mailbox": rl.recipe("maildir/snapkeep-mailbox")},
    hashed=["transport", "snapkeep-mailbox"])
for f in ("main.cf", "master.cf"):
    p = os.path.join(pf.conf, f)
    rl.write(p, rl.read(p).replace("PFCONF", pf.conf))

# snapkeepd with the recipe's poller section.
ini = configparser.ConfigParser()
ini.read_string(rl.recipe("maildir/snapkeep.conf", [("maildir:/var/mail/snapkeep",
                                                      "maildir:" + maildir)]))
tap.eq(ini.sections(), ["poll.maildir"], "the recipe's snapkeep.conf has one [poll.maildir] section")
state = os.path.join(work, "state")
os.mkdir(state)
d = rl.Snapkeepd(rl.sk.program("snapkeepd"), state,
                 dict({s: dict(ini[s]) for s in ini.sections()}, web={"enabled": "false"}))
try:
    pf.start()
    d.start()
    serials = []
    for name, path, expected in rl.examples():
        tap.eq(rl.send_mail(pf.port, "snapshots@example.com", rl.read(path, "rb")), {},
               "Postfix accepts %s for snapshots@example.com" % name)
        serials.append(expected["serial"])
    tap.ok(rl.wait_for(lambda: "delivered to maildir" in pf.log(), 30),
           "Postfix's virtual agent logs delivery to the Maildir", pf.log()[-2000:])
    got = rl.wait_for(lambda: rl.db_serials(d.db) >= set(serials), timeout=60)
    # The recipe's interval is 5 minutes: only inotify takes them this fast.
    tap.ok(got, "snapkeepd's poller stores every snapshot from the Maildir within 60 s (inotify)",
           d.log_text()[-3000:] + pf.log()[-1500:])
    rows = rl.db_query(d.db, "SELECT source, outcome, count(*) FROM intake_log GROUP BY 1, 2") \
        if got else []
    tap.eq(rows, [("maildir", "stored", len(serials))],
           "intake_log: %d messages from source maildir, all stored" % len(serials))

    def flagged():
        cur = os.listdir(os.path.join(maildir, "cur"))
        new = os.listdir(os.path.join(maildir, "new"))
        return not new and len(cur) == len(serials) and all(n.endswith(":2,S") for n in cur)
    tap.ok(rl.wait_for(flagged, 30), "after = flag: new/ is empty, cur/ has each message with :2,S",
           (os.listdir(os.path.join(maildir, "new")), os.listdir(os.path.join(maildir, "cur"))))
    owners = {os.stat(os.path.join(maildir, "cur", n)).st_uid
              for n in os.listdir(os.path.join(maildir, "cur"))}
    tap.ok("event=no-inotify" not in d.log_text() and "event=pass-failed" not in d.log_text(),
           "the poller watches the Maildir with inotify, no pass failed", d.log_text()[-3000:])
    tap.eq(owners, {nobody.pw_uid}, "Postfix delivered as the recipe's static uid")
    st = rl.db_query(d.db, "SELECT taken, failed FROM poll_status")
    tap.eq(st, [(len(serials), 0)], "poll_status: %d taken, none failed" % len(serials))
finally:
    tap.eq(pf.stop(), 0, "postfix -c DIR stop")
    tap.eq(d.stop(), 0, "snapkeepd stops (exit 0)")
    pf.cleanup()
    shutil.rmtree(work, ignore_errors=True)

tap.done()
