"""sklib: small helpers for snapkeep's integration tests (TAP output).

Tests run under automake's TAP driver with /usr/bin/python3; they find the
built programs through SK_TOP_BUILDDIR and test data through SK_TESTDATA.
"""
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile

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


def tempdir(prefix="sk-test-"):
    d = tempfile.mkdtemp(prefix=prefix)
    return d


def cleanup(d):
    shutil.rmtree(d, ignore_errors=True)


def db_rows(db, sql, args=()):
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
    con.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in con.execute(sql, args)]
    finally:
        con.close()


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
