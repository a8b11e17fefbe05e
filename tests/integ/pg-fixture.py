"""The PostgreSQL fixture the .pg test variants run on (sklib.PgServer and
tests/integ/with-postgresql), checked on its own: the private server starts
as the user postgres on 127.0.0.1, databases are created and are separate,
psycopg2 reads and writes through sklib's ? placeholders, db_rows cannot
write, a fast shutdown leaves no process and no directory; the wrapper
passes a test's TAP and exit status through, gives it a fresh database
through sklib.new_store, and stops its server when the test fails and when
it is itself terminated.  Needs postgresql-15 and python3-psycopg2."""
import os
import pwd
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sklib  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
WRAPPER = os.path.join(HERE, "with-postgresql")

t = sklib.Tap()
if sklib.psycopg2 is None:
    t.bail("psycopg2 is missing: apt-get install python3-psycopg2")


def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def processes_naming(text):
    """Command lines of running processes that mention text (ps)."""
    out = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True).stdout
    return [line.strip() for line in out.splitlines() if text in line]


def uid_of(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Uid:"):
                return int(line.split()[1])


def gone(directory, pid, timeout=10):
    """The server of directory is down: no postmaster, no process naming
    the directory, the directory removed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (alive(pid) or processes_naming(directory)):
        time.sleep(0.1)
    return not alive(pid) and not processes_naming(directory) and not os.path.exists(directory)


# ---- the server on its own ----
server = sklib.PgServer()
try:
    server.start()
except sklib.PgError as e:
    t.bail(str(e))
work = sklib.tempdir("sk-pg-fixture-")
try:
    pgdir, pid = server.dir, server.postmaster_pid()
    t.ok(pid is not None and alive(pid), "the server starts (postmaster %s)" % pid)
    r = subprocess.run([os.path.join(sklib.PG_BIN, "pg_isready"), "-h", "127.0.0.1", "-p", str(server.port)],
                       capture_output=True, text=True)
    t.eq(r.returncode, 0, "pg_isready: accepting connections on 127.0.0.1:%d" % server.port, r.stdout)
    t.ok(any("-D %s" % pgdir in p for p in processes_naming(pgdir)), "ps shows postgres on its own directory",
         processes_naming(pgdir))
    if os.geteuid() == 0:
        t.eq(uid_of(pid), pwd.getpwnam("postgres").pw_uid, "as root: the server runs as the user postgres")
    else:
        t.skip("the server runs as the user postgres", "not root: it runs as the current user")

    a = server.create_database("sk_fixture_a")
    b = server.create_database("sk_fixture_b")
    t.eq(a, "postgresql://snapkeep@127.0.0.1:%d/sk_fixture_a" % server.port, "a database's URL")
    t.eq(sklib.store_config(a), "backend = postgresql\nurl = %s\n" % a, "[store] lines for it")
    t.eq(sklib.db_rows(a, "SELECT current_user AS u, current_database() AS d"),
         [{"u": "snapkeep", "d": "sk_fixture_a"}], "psycopg2 connects as snapkeep to that database")
    try:
        server.create_database("sk_fixture_a")
        again = None
    except RuntimeError as e:
        again = str(e)
    t.ok(again is not None and "already exists" in again, "creating it twice fails, saying why", again)

    sklib.db_exec(a, "CREATE TABLE intake (id bigint PRIMARY KEY, source_name text, outcome text)")
    n = sklib.db_exec(a, "INSERT INTO intake VALUES (?, ?, ?), (?, ?, ?), (?, ?, ?)",
                      (1, "/x/big.eml", "failed", 2, "inbox.mbox#1", "stored", 864000000000, "?", "stored"))
    t.eq(n, 3, "db_exec: ? placeholders, a bigint, a row count")
    t.eq(sklib.db_rows(a, "SELECT id, outcome FROM intake WHERE source_name LIKE '%/big.eml'"),
         [{"id": 1, "outcome": "failed"}], "db_rows: a literal % in the SQL stays a wildcard")
    t.eq(sklib.db_rows(a, "SELECT count(*) n FROM intake WHERE outcome = ? AND source_name LIKE ?",
                       ("stored", "%mbox#%")), [{"n": 1}], "db_rows: ? placeholders with % in the values")
    t.eq(sklib.db_rows(a, "SELECT id FROM intake WHERE source_name = '?'"), [{"id": 864000000000}],
         "db_rows: a ? inside quotes is text")
    t.eq(sklib.db_query(a, "SELECT id, outcome FROM intake ORDER BY id LIMIT 1"),
         (["id", "outcome"], [(1, "failed")]), "db_query: names and tuples")
    try:
        sklib.db_rows(a, "DELETE FROM intake")
        err = None
    except sklib.DB_ERRORS as e:
        err = e
    t.ok(err is not None and "read-only" in str(err), "db_rows cannot write", err)
    t.eq(sklib.db_rows(a, "SELECT count(*) n FROM intake")[0]["n"], 3, "nothing was deleted")
    try:
        sklib.db_rows(b, "SELECT count(*) n FROM intake")
        err = None
    except sklib.DB_NOT_READY as e:
        err = e
    t.ok(err is not None and "does not exist" in str(err), "another database is separate (no such table there)",
         err)

    server.stop()
    t.eq(server.exit_status, 0, "fast shutdown: the server exits 0")
    t.ok(gone(pgdir, pid), "after stop: no postgres process, no directory", processes_naming(pgdir))
    server.stop()
    t.ok(True, "stop() twice is harmless")

    # ---- the wrapper ----
    child = os.path.join(work, "child.py")
    info = os.path.join(work, "info")
    with open(child, "w") as f:
        f.write("""import os, sys, time
sys.path.insert(0, @HERE@)
import sklib
db = sklib.new_store(@WORK@)
sklib.db_exec(db, "CREATE TABLE t (a int)")
d = sklib.db_rows(db, "SELECT setting FROM pg_settings WHERE name = 'data_directory'")[0]["setting"]
with open(d + "/postmaster.pid") as f:
    pid = f.readline().strip()
with open(@INFO@ + ".tmp", "w") as f:
    f.write("\\n".join([d, pid, db, os.environ["SK_TEST_BACKEND"], ""]))
os.rename(@INFO@ + ".tmp", @INFO@)
print("ok 1 - the child ran")
print("1..1")
sys.stdout.flush()
if sys.argv[0].endswith("sleep.py"):
    time.sleep(120)
sys.exit(3)
""".replace("@HERE@", repr(HERE)).replace("@WORK@", repr(work)).replace("@INFO@", repr(info)))

    def read_info():
        """What the child wrote: its server's directory and postmaster, its
        store and backend (a server that cannot exist if it wrote nothing)."""
        try:
            with open(info) as f:
                d, p, db, backend = f.read().split("\n")[:4]
            os.unlink(info)
            return d, int(p), db, backend
        except (OSError, ValueError):
            return "/nonexistent-pg-dir", 0, "", ""

    r = subprocess.run(["/usr/bin/python3", WRAPPER, child], capture_output=True, text=True, timeout=120)
    t.eq(r.returncode, 3, "with-postgresql passes the test's exit status back", r.stdout + r.stderr)
    t.ok("ok 1 - the child ran\n1..1\n" in r.stdout, "and its TAP through", r.stdout)
    d, p, db, backend = read_info()
    t.ok(backend == "postgresql" and db.startswith("postgresql://snapkeep@127.0.0.1:") and "/sk_" in db,
         "the test ran with SK_TEST_BACKEND=postgresql and got a fresh database from new_store", (backend, db))
    t.ok(gone(d, p), "a failing test: the server is stopped and its directory removed", processes_naming(d))

    sleeper = os.path.join(work, "sleep.py")
    os.rename(child, sleeper)
    w = subprocess.Popen(["/usr/bin/python3", WRAPPER, sleeper], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not os.path.exists(info) and time.monotonic() < deadline and w.poll() is None:
        time.sleep(0.1)
    if not t.ok(os.path.exists(info), "the wrapped test is running"):
        w.kill()
        w.wait()
    else:
        d, p, db, backend = read_info()
        w.send_signal(signal.SIGTERM)
        out, err = w.communicate(timeout=90)
        t.eq(w.returncode, 128 + signal.SIGTERM, "SIGTERM to the wrapper: it exits 143", err)
        t.ok(gone(d, p), "and stops the server, removes its directory", processes_naming(d))
        t.eq(processes_naming(sleeper), [], "and the test it ran is gone")

    bad = os.path.join(work, "bad.pg")
    with open(bad, "w") as f:
        f.write("../../etc/passwd\n")
    r = subprocess.run(["/usr/bin/python3", WRAPPER, bad], capture_output=True, text=True, timeout=60)
    t.ok(r.returncode == 1 and r.stdout.startswith("Bail out!") and "bad.pg" in r.stdout,
         "a .pg file naming no script of tests/integ: Bail out!", r.stdout)
finally:
    server.stop()
    sklib.cleanup(work)
t.done()
