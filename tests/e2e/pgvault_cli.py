"""pgvault_cli.py: run the pgvault binary under test.

The binary is $PGVAULT_BIN, else build/pgvault under the repository root.
run_pgvault() gives every call a clean environment: PG* and PGVAULT_*
variables of the test process are dropped (a developer's PGHOST must not
change what a test means), and only what the caller passes in env= is set.
Secrets (passwords, passphrases) go through env= or input=, never argv:
argv is visible to every user of the machine in ps, and the helper refuses
arguments that look like an inline secret.
"""

import collections
import json
import os
import re
import subprocess

from pgcluster import clean_env

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))

Result = collections.namedtuple("Result", "rc out err")

_SECRET_ARG = re.compile(r"(password|passphrase|secret)\s*=", re.I)


def pgvault_bin():
    """Path of the binary under test; raises if it was not built."""
    path = os.environ.get("PGVAULT_BIN") or os.path.join(REPO_ROOT, "build",
                                                         "pgvault")
    path = os.path.abspath(path)
    if not os.access(path, os.X_OK):
        raise FileNotFoundError(
            "pgvault binary not found at %s: build it (make) or set "
            "PGVAULT_BIN" % path)
    return path


_slowdown = []


def slowdown():
    """How many times slower than a plain build the binary under test may be:
    $PGVAULT_TEST_SLOWDOWN, else 4 for an AddressSanitizer build (2-5x
    slower, more on a loaded machine), else 1.  Deadlines of waits and
    subprocess timeouts are multiplied by it; it never changes what a test
    checks, only how long it waits before calling a missing event a failure."""
    if not _slowdown:
        v = os.environ.get("PGVAULT_TEST_SLOWDOWN")
        if v:
            _slowdown.append(float(v))
        else:
            try:
                with open(pgvault_bin(), "rb") as f:
                    sanitized = b"__asan_init" in f.read()
            except OSError:
                sanitized = False
            _slowdown.append(4.0 if sanitized else 1.0)
    return _slowdown[0]


def run_pgvault(*args, env=None, input=None, timeout=120, cwd=None):
    """Run pgvault with args; return Result(rc, out, err) (a 3-tuple).

    env: variables to set on top of the cleaned environment.
    input: text for standard input (default: empty, never the terminal).
    """
    argv = [pgvault_bin()] + [str(a) for a in args]
    for a in argv[1:]:
        if _SECRET_ARG.search(a):
            raise ValueError("secret in argv (%r): pass it through env= or "
                             "input=" % a)
    r = subprocess.run(argv, env=clean_env(env), input=input or "",
                       capture_output=True, text=True, errors="replace",
                       timeout=timeout * slowdown(), cwd=cwd)
    return Result(r.returncode, r.stdout, r.stderr)


def run_pgvault_json(*args, **kw):
    """Run pgvault with --json; return (rc, parsed stdout, stderr).
    Fails with the raw output if stdout is not one JSON document."""
    rc, out, err = run_pgvault(*args, "--json", **kw)
    try:
        doc = json.loads(out)
    except ValueError as e:
        raise AssertionError("pgvault %s --json printed no valid JSON (%s); "
                             "rc=%d\nstdout:\n%s\nstderr:\n%s" %
                             (" ".join(map(str, args)), e, rc, out, err))
    return rc, doc, err


def conn_args(cluster, dbname="postgres", user="postgres"):
    """The -h/-p/-U/-d options that point pgvault at cluster over TCP."""
    return ["-h", "127.0.0.1", "-p", str(cluster.port), "-U", user,
            "-d", dbname]


def tools_env(cluster):
    """PATH with the cluster's PostgreSQL binaries first, so pgvault finds
    the client tools (pg_dump, pg_restore) of the server's major version."""
    return {"PATH": cluster.bindir + os.pathsep + os.environ.get("PATH", "")}
