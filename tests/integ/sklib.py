"""sklib: small helpers for snapkeep's integration tests (TAP output).

Tests run under automake's TAP driver with /usr/bin/python3; they find the
built programs through SK_TOP_BUILDDIR and test data through SK_TESTDATA.

Stores: a test asks new_store() for a fresh store and gets a string that is
both what `snapkeep --db` takes and what db_rows()/db_exec() read: the path
of a SQLite file (not yet created), or, when SK_TEST_BACKEND=postgresql, the
URL of a new database on the private PostgreSQL server whose admin URL is in
SK_TEST_PG_URL (tests/integ/with-postgresql starts it and sets both).
store_config() gives a daemon's [store] lines for it.  PgServer is that
server: PostgreSQL 15 from Debian (postgresql-15), initdb in a temporary
directory, trust authentication on 127.0.0.1 only, a free port, stopped
with a fast shutdown.  PostgreSQL is read with /usr/bin/python3's psycopg2
(python3-psycopg2), imported only when a PostgreSQL store is used.
"""
import itertools
import json
import os
import pwd
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time

TOP_BUILDDIR = os.environ.get("SK_TOP_BUILDDIR", os.getcwd())
TOP_SRCDIR = os.environ.get("SK_TOP_SRCDIR", os.path.join(os.path.dirname(__file__), "..", ".."))
TESTDATA = os.environ.get("SK_TESTDATA", os.path.join(TOP_SRCDIR, "tests", "data"))


# Sanitizer reports seen in the stderr of any program a test ran (the parse
# workers' reports reach only stderr, not the exit status).
SANITIZER_MARKS = (b"ERROR: AddressSanitizer", b"ERROR: LeakSanitizer", b"runtime error:")
SANITIZER_REPORTS = []


def check_sanitizer_output(args, stderr):
    if stderr and any(m in stderr for m in SANITIZER_MARKS):
        SANITIZER_REPORTS.append((" ".join(str(a) for a in args), stderr))


def bail(why):
    """Stops the test: TAP's "Bail out!" line, exit status 1."""
    print("Bail out! " + why)
    sys.stdout.flush()
    sys.exit(1)


class Tap:
    """The TAP writer of every integration test (smtp-lib, web-lib and
    recipe-lib hand out this class too).

    ok()/eq() print one numbered result, with a failure's detail as "# "
    comments (at most detail_lines of them; None: all); diag() prints
    comments; bail() prints "Bail out!" and exits 1; done() prints the plan
    at the end and exits non-zero if anything failed.  Unless
    sanitizer_check is False, done() first adds one result: no sanitizer
    report in the stderr of any program run through run() (or given to
    check_sanitizer_output()).
    """

    def __init__(self, sanitizer_check=True, detail_lines=40):
        self.n = 0
        self.failed = 0
        self.sanitizer_check = sanitizer_check
        self.detail_lines = detail_lines

    def ok(self, cond, name, detail=None):
        self.n += 1
        if not cond:
            self.failed += 1
        print("%s %d - %s" % ("ok" if cond else "not ok", self.n, name))
        if not cond and detail is not None:
            for line in str(detail).splitlines()[:self.detail_lines]:
                print("# " + line)
        sys.stdout.flush()
        return cond

    def eq(self, got, want, name, detail=None):
        """ok(got == want); a failure shows both, then detail if given."""
        more = "" if detail is None else "\n%s" % detail
        return self.ok(got == want, name, "got:  %r\nwant: %r%s" % (got, want, more))

    def skip(self, name, reason):
        """One result that did not run here: "ok N - name # SKIP reason"
        (the TAP driver counts it as SKIP, not PASS)."""
        self.n += 1
        print("ok %d - %s # SKIP %s" % (self.n, name, reason))
        sys.stdout.flush()

    def diag(self, text):
        for line in str(text).splitlines():
            print("# " + line)
        sys.stdout.flush()

    def bail(self, why):
        bail(why)

    def done(self):
        if self.sanitizer_check:
            self.ok(not SANITIZER_REPORTS, "no sanitizer reports from any program run",
                    "\n".join("%s:\n%s" % (c, e.decode(errors="replace")[-3000:]) for c, e in SANITIZER_REPORTS))
        print("1..%d" % self.n)
        sys.stdout.flush()
        sys.exit(1 if self.failed else 0)


def program(name):
    path = os.path.join(TOP_BUILDDIR, name)
    if not os.access(path, os.X_OK):
        bail("%s is not built at %s" % (name, path))
    return path


def run(args, stdin=None, timeout=120, env=None):
    """Runs a command; returns CompletedProcess with text stdout/stderr."""
    e = dict(os.environ)
    if env:
        e.update(env)
    r = subprocess.run(args, input=stdin, capture_output=True, timeout=timeout, env=e)
    check_sanitizer_output(args, r.stderr)
    return r


def stop_daemon(proc, log, log_text, name, sig=signal.SIGTERM, timeout=60):
    """Stops a daemon a test started: sig unless it has exited, a kill after
    timeout seconds.  Then closes its log (the file object it writes to)
    and hands log_text() (its text of this run) to the sanitizer check.
    Returns the exit status."""
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        rc = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        rc = proc.wait()
    log.close()
    check_sanitizer_output([name], log_text().encode())
    return rc


def wait_until(cond, timeout, step=0.1):
    """cond() every step seconds until it is true or timeout seconds have
    passed; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(step)


def daemon_config(state_dir, db, workers, sweep_s, hostname):
    """A snapkeepd configuration: state_dir, log_level info, the store db,
    workers parse workers and sweep_s seconds between sweeps, SMTP and web
    on 127.0.0.1 port 0 (read from its log: wait_daemon_ready)."""
    return ("[daemon]\nuser =\nstate_dir = %s\nlog_level = info\n" % state_dir +
            "[store]\n" + store_config(db) +
            "[intake]\nparse_workers = %d\nsweep_interval = %ds\n" % (workers, sweep_s) +
            "[smtp]\nlisten = 127.0.0.1:0\nhostname = %s\n" % hostname +
            "[web]\nlisten = 127.0.0.1:0\ndisplay_timezone = UTC\n")


def wait_daemon_ready(proc, text, name, deadline):
    """Waits (until time.monotonic() deadline) for snapkeepd proc's
    "daemon: event=ready" in text() (its log); returns (SMTP port, web
    port) from its listening lines.  Bails if it exits first, is not ready
    in time, or logs no port."""
    while time.monotonic() < deadline:
        log = text()
        if "daemon: event=ready" in log:
            smtp = re.findall(r"smtp: event=listening address=127\.0\.0\.1:(\d+)", log)
            web = re.findall(r"web: event=listen address=\S+ port=(\d+)", log)
            if not smtp or not web:
                bail("%s: no SMTP or web port in its log:\n%s" % (name, log[-3000:]))
            return int(smtp[-1]), int(web[-1])
        if proc.poll() is not None:
            bail("%s exited (%s) at start:\n%s" % (name, proc.returncode, log[-3000:]))
        time.sleep(0.05)
    bail("%s not ready in time:\n%s" % (name, text()[-3000:]))


def http_get(port, path, timeout):
    """GET http://127.0.0.1:port/path: (status or None, body); None with
    the error as body when no HTTP answer came."""
    import urllib.error
    import urllib.request
    url = "http://127.0.0.1:%d%s" % (port, path)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except OSError as e:
        return None, str(e).encode()


def tempdir(prefix="sk-test-"):
    d = tempfile.mkdtemp(prefix=prefix)
    return d


def cleanup(d):
    shutil.rmtree(d, ignore_errors=True)


def examples():
    """[(name, eml_path, expected_dict)] for the example mails."""
    d = os.path.join(TESTDATA, "examples")
    out = []
    for f in sorted(os.listdir(d)):
        if f.endswith(".eml"):
            base = f[:-4]
            with open(os.path.join(d, base + ".expected.json")) as fh:
                out.append((base, os.path.join(d, f), json.load(fh)))
    return out


# ---- stores: a SQLite file or a database on a private PostgreSQL --------------------

BACKEND = os.environ.get("SK_TEST_BACKEND") or "sqlite"
if BACKEND not in ("sqlite", "postgresql"):
    bail("SK_TEST_BACKEND is %r: sqlite or postgresql" % BACKEND)

PG_BIN = "/usr/lib/postgresql/15/bin"
PG_PACKAGE = "postgresql-15"
PG_USER = "snapkeep"  # the superuser initdb makes; every test database is its own

try:
    import psycopg2
    DB_ERRORS = (sqlite3.Error, psycopg2.Error)
except ImportError:
    psycopg2 = None
    DB_ERRORS = (sqlite3.Error,)
# What reading a store that is not there yet raises (the tables are made by
# the first program that opens it): a missing SQLite file, or a PostgreSQL
# database without its tables.
DB_NOT_READY = (sqlite3.OperationalError,) + ((psycopg2.Error,) if psycopg2 else ())

_store_seq = itertools.count(1)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def is_pg(db):
    return db.startswith(("postgresql://", "postgres://"))


def _pg():
    if psycopg2 is None:
        bail("psycopg2 is missing: apt-get install python3-psycopg2")
    return psycopg2


def pg_admin_url():
    url = os.environ.get("SK_TEST_PG_URL")
    if not url:
        bail("SK_TEST_BACKEND=postgresql needs SK_TEST_PG_URL, the admin URL of a running "
             "server: run the test through tests/integ/with-postgresql")
    return url


def pg_url(admin_url, dbname):
    """admin_url with its database replaced by dbname."""
    import urllib.parse
    return urllib.parse.urlsplit(admin_url)._replace(path="/" + dbname).geturl()


def pg_create_database(admin_url, dbname, icu_locale=None):
    """CREATE DATABASE dbname (psql, as the server's superuser); returns its URL.
    icu_locale (e.g. "en-US"): the database sorts text by that ICU locale
    by default (from template0, UTF8, LC_CTYPE C.utf8); None: the server's
    default (no locale: bytes)."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", dbname):
        raise ValueError("not a plain database name: %r" % dbname)
    if icu_locale is not None and not re.fullmatch(r"[A-Za-z0-9_@=-]{1,64}", icu_locale):
        raise ValueError("not a plain ICU locale name: %r" % icu_locale)
    sql = "CREATE DATABASE %s" % dbname
    if icu_locale is not None:
        sql += (" TEMPLATE template0 ENCODING 'UTF8' LOCALE_PROVIDER icu ICU_LOCALE '%s' LOCALE 'C.utf8'"
                % icu_locale)
    r = subprocess.run([os.path.join(PG_BIN, "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
                        "-d", admin_url, "-c", sql],
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError("CREATE DATABASE %s failed: %s" % (dbname, (r.stdout + r.stderr).strip()))
    return pg_url(admin_url, dbname)


def _pg_name(kind, name):
    tag = re.sub(r"[^a-z0-9_]", "_", name.lower())
    return ("sk_%s%d_%d_%s" % (kind, os.getpid(), next(_store_seq), tag))[:63]


def new_store(directory, name="snapkeep"):
    """A fresh store for one daemon or test: the path DIRECTORY/NAME.db of a
    SQLite file (made by the first program that opens it), or, with
    SK_TEST_BACKEND=postgresql, the URL of a new empty database on the test
    server.  Either is what `snapkeep --db` takes and db_rows() reads."""
    if BACKEND == "sqlite":
        return os.path.join(directory, name + ".db")
    try:
        return pg_create_database(pg_admin_url(), _pg_name("", name))
    except (OSError, RuntimeError, subprocess.TimeoutExpired) as e:
        bail("cannot create a PostgreSQL database for the test: %s" % e)


def missing_store(directory):
    """A store that was never made: a SQLite path with no file, or a
    database the PostgreSQL server does not have."""
    if BACKEND == "sqlite":
        return os.path.join(directory, "missing.db")
    return pg_url(pg_admin_url(), _pg_name("missing_", "db"))


def unavailable_store():
    """A store that cannot be reached: a SQLite file in a directory that
    does not exist, or a PostgreSQL URL on a port where nothing listens."""
    if BACKEND == "sqlite":
        return "/nonexistent-dir/x.db"
    return "postgresql://%s@127.0.0.1:%d/unavailable" % (PG_USER, free_port())


def store_settings(db):
    """The [store] settings of a daemon using db, as a dict."""
    if is_pg(db):
        return {"backend": "postgresql", "url": db}
    return {"db": db}


def store_config(db):
    """The [store] lines of a daemon's configuration for db (no header):
    "db = FILE" or "backend = postgresql" and "url = URL"."""
    return "".join("%s = %s\n" % kv for kv in store_settings(db).items())


def pg_sql(sql):
    """SQLite's ? placeholders as psycopg2's %s, and every literal % doubled
    (psycopg2 formats the whole text); ? inside '...' or "..." is kept."""
    out = []
    quote = None
    for c in sql:
        if quote:
            if c == quote:
                quote = None
        elif c in "'\"":
            quote = c
        elif c == "?":
            out.append("%s")
            continue
        out.append("%%" if c == "%" else c)
    return "".join(out)


def _pg_connect(db, readonly):
    con = _pg().connect(db, connect_timeout=30)
    con.set_session(readonly=readonly, autocommit=True)
    return con


def db_query(db, sql, args=()):
    """One query, read-only: (column names, rows as tuples); sql uses ?
    placeholders on either backend."""
    if is_pg(db):
        con = _pg_connect(db, True)
        try:
            cur = con.cursor()
            cur.execute(pg_sql(sql), tuple(args))
            return [c.name for c in cur.description], cur.fetchall()
        finally:
            con.close()
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=30)
    try:
        cur = con.execute(sql, args)
        return [c[0] for c in cur.description], cur.fetchall()
    finally:
        con.close()


def db_rows(db, sql, args=()):
    """The rows of one query as dicts by column name (see db_query)."""
    names, rows = db_query(db, sql, args)
    return [dict(zip(names, row)) for row in rows]


def db_exec(db, sql, args=()):
    """One statement that changes the store (committed); returns the number
    of rows it changed."""
    if is_pg(db):
        con = _pg_connect(db, False)
        try:
            cur = con.cursor()
            cur.execute(pg_sql(sql), tuple(args))
            return cur.rowcount
        finally:
            con.close()
    con = sqlite3.connect(db, timeout=30)
    try:
        n = con.execute(sql, args).rowcount
        con.commit()
        return n
    finally:
        con.close()


class WriteLock:
    """Holds what a writer of store db waits for until release(): SQLite's
    write lock (BEGIN IMMEDIATE) or, on PostgreSQL, EXCLUSIVE locks on the
    tables an arrival writes first (intake, messages), which leave readers
    alone.  A writer whose busy_timeout (lock_timeout) runs out fails."""

    def __init__(self, db):
        if is_pg(db):
            self.con = _pg().connect(db, connect_timeout=30)
            self.con.cursor().execute("LOCK TABLE intake, messages IN EXCLUSIVE MODE")
        else:
            self.con = sqlite3.connect(db, isolation_level=None, timeout=30)
            self.con.execute("BEGIN IMMEDIATE")

    def release(self):
        self.con.rollback()
        self.con.close()


def pending_counts(db):
    """{"m": messages pending, "i": intake rows pending} in store db;
    -1 each (and "error") when it cannot be read."""
    try:
        return db_rows(db, "SELECT (SELECT count(*) FROM messages WHERE outcome = 'pending') m,"
                           " (SELECT count(*) FROM intake WHERE outcome = 'pending') i")[0]
    except DB_ERRORS as e:
        return {"m": -1, "i": -1, "error": str(e)}


class PgError(Exception):
    pass


class PgServer:
    """A private PostgreSQL 15 server for the tests: initdb into a new
    temporary directory (owned by the system user postgres when run as
    root: PostgreSQL refuses to run as root), superuser snapkeep, trust
    authentication, listening on 127.0.0.1 at a free port and a socket in
    its directory only, fsync off (the data is thrown away).  stop() shuts
    it down fast (SIGINT to the postmaster) and removes the directory.
    PgServer(durable=True) sets fsync, full_page_writes and
    synchronous_commit on instead (PostgreSQL's defaults: a commit is on
    disk when it returns), for benchmarks that compare durable commits.
    restart() shuts it down fast and starts it again on the same data
    directory and port (a PostgreSQL restart, as its clients see one)."""

    def __init__(self, durable=False):
        self.durable = durable
        self.dir = None
        self.proc = None
        self.port = None
        self.exit_status = None
        self._as_pg = []
        self.restarts = 0

    def _tool(self, name):
        path = os.path.join(PG_BIN, name)
        if not os.access(path, os.X_OK):
            raise PgError("%s is missing: apt-get install %s" % (path, PG_PACKAGE))
        return path

    def log_text(self):
        try:
            with open(os.path.join(self.dir, "postgres.log"), errors="replace") as f:
                return f.read()
        except (OSError, TypeError):
            return ""

    def postmaster_pid(self):
        try:
            with open(os.path.join(self.dir, "postmaster.pid")) as f:
                return int(f.readline())
        except (OSError, ValueError, TypeError):
            return None

    @property
    def admin_url(self):
        return "postgresql://%s@127.0.0.1:%d/postgres" % (PG_USER, self.port)

    def create_database(self, name, icu_locale=None):
        """A new database on this server (see pg_create_database); its URL."""
        return pg_create_database(self.admin_url, name, icu_locale)

    def start(self, timeout=60):
        initdb, postgres, isready = (self._tool(n) for n in ("initdb", "postgres", "pg_isready"))
        self._tool("psql")
        self.dir = tempfile.mkdtemp(prefix="sk-pg-")
        as_pg = []
        if os.geteuid() == 0:
            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                self.stop()
                raise PgError("no system user postgres (made by Debian's postgresql-common: "
                              "apt-get install %s)" % PG_PACKAGE)
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            as_pg = ["runuser", "-u", "postgres", "--"]
        self._as_pg = as_pg
        r = subprocess.run(as_pg + [initdb, "-D", self.dir, "-U", PG_USER, "--auth=trust",
                                    "-E", "UTF8", "--no-locale"],
                           capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            self.stop()
            raise PgError("initdb failed (exit %d): %s" % (r.returncode, (r.stdout + r.stderr)[-3000:]))
        for attempt in range(3):
            self.port = free_port()
            if self._launch(postgres, isready, timeout):
                return self
            if self.proc.poll() is not None and "could not bind" in self.log_text() and attempt < 2:
                continue  # the free port was taken meanwhile: another one
            break
        why = self._why_not_up(timeout)
        text = self.log_text()[-3000:]
        self.stop()
        raise PgError("postgres %s:\n%s" % (why, text))

    def _launch(self, postgres, isready, timeout):
        """Starts the postmaster on self.dir and self.port (its output
        appended to postgres.log); True once it accepts connections, False
        if it exited or did not within timeout seconds."""
        with open(os.path.join(self.dir, "postgres.log"), "ab") as log:
            self.proc = subprocess.Popen(
                self._as_pg + [postgres, "-D", self.dir, "-k", self.dir, "-h", "127.0.0.1",
                               "-p", str(self.port), "-c", "max_connections=200"] +
                (["-c", "fsync=on", "-c", "full_page_writes=on", "-c", "synchronous_commit=on"]
                 if self.durable else ["-c", "fsync=off", "-c", "full_page_writes=off"]),
                stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            if subprocess.run([isready, "-q", "-h", "127.0.0.1", "-p", str(self.port), "-t", "1"]
                              ).returncode == 0:
                return True
            time.sleep(0.1)
        return False

    def _why_not_up(self, timeout):
        return "exited (%s)" % self.proc.returncode if self.proc.poll() is not None else \
            "does not accept connections after %d s" % timeout

    def restart(self, timeout=60, while_down=None):
        """A restart of the running server: fast shutdown (as stop(): its
        clients' sessions are terminated), then the postmaster again on the
        same data directory, port and settings.  while_down(), if given,
        runs between the two (the server is down meanwhile).  Returns
        (seconds down: from the shutdown signal to accepting connections
        again, while_down's result).  Raises PgError if it does not come
        back; stop() still cleans up."""
        if self.proc is None or self.dir is None:
            raise PgError("restart: the server is not running")
        postgres, isready = self._tool("postgres"), self._tool("pg_isready")
        t0 = time.monotonic()
        self._shutdown(timeout)
        if self.exit_status != 0:
            raise PgError("restart: the fast shutdown ended with status %s:\n%s"
                          % (self.exit_status, self.log_text()[-3000:]))
        got = while_down() if while_down is not None else None
        if not self._launch(postgres, isready, timeout):
            raise PgError("restart: postgres %s on port %d:\n%s"
                          % (self._why_not_up(timeout), self.port, self.log_text()[-3000:]))
        self.restarts += 1
        return time.monotonic() - t0, got

    def _shutdown(self, timeout):
        """Fast shutdown (SIGINT to the postmaster), a kill after timeout
        seconds; the directory stays."""
        if self.proc is not None:
            if self.proc.poll() is None:
                pid = self.postmaster_pid()
                try:
                    os.kill(pid, signal.SIGINT) if pid else self.proc.send_signal(signal.SIGINT)
                except ProcessLookupError:
                    pass
                try:
                    self.proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    for p in (pid, self.proc.pid):
                        try:
                            if p:
                                os.kill(p, signal.SIGKILL)
                        except ProcessLookupError:
                            pass
                    self.proc.wait()
            self.exit_status = self.proc.returncode
            self.proc = None

    def stop(self, timeout=60):
        """Fast shutdown (SIGINT to the postmaster), a kill after timeout
        seconds; then the directory goes.  Safe to call twice."""
        self._shutdown(timeout)
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None
