"""pgcluster.py: scratch PostgreSQL clusters for pgvault's end-to-end tests.

A PgCluster is one data directory with its own port, socket directory and
log file, all inside one temporary directory.  Clusters are cheap: the first
one of a session runs initdb into a template directory, every later one
copies the template (cp -a is several times faster than initdb), so a test
that needs a fresh server waits about half a second.  Clusters copied from
the template share its system identifier; pass fresh_initdb=True when a test
needs clusters that are really distinct (e.g. two sources in one repository).

Invariants (the reason this module exists):

1. Every server started here is stopped again, whatever happens to the test:
   PgCluster.destroy() does `pg_ctl stop -m immediate`, then SIGKILLs the
   postmaster and its children if they are still alive.  The pytest fixtures
   call destroy() in their teardown, conftest.py calls destroy_all() at
   session end and from atexit and SIGTERM, and a watchdog process (started
   with the first cluster, in its own session) kills whatever is left if the
   test process dies without cleaning up (kill -9, CI timeout).
2. All of a session's clusters live under one session directory, so the
   watchdog and destroy_all() can find them even if the Python objects are
   gone.
3. When the tests run as root, the server runs as an unprivileged user
   (PGVAULT_TEST_PGUSER, else `postgres`, else a `pgvault-test` user that
   is created) via runuser; the cluster directories are chowned to it.
   Clients (psycopg, pgvault) run as the test process and connect over TCP
   to 127.0.0.1 as the superuser "postgres" (trust authentication).
4. PG* variables of the test process never leak into the server or into
   the tools this module runs.

Settings: the harness writes its own base settings (port, sockets, WAL,
logging) to pgvault_test.conf, included from postgresql.conf; tests change
settings with set_auto_conf()/restart(**settings), which edit
postgresql.auto.conf, so they always win over the base settings.
"""

import atexit
import os
import pwd
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

DEFAULT_PG_BINDIR = "/usr/lib/postgresql/15/bin"
SUPERUSER = "postgres"
TCP_HOST = "127.0.0.1"

# The settings every cluster starts with; tests override them through
# postgresql.auto.conf.  fsync is off for speed: these are throw-away
# servers, never benchmarks or durability tests.
BASE_SETTINGS = {
    "listen_addresses": TCP_HOST,
    "wal_level": "replica",
    "archive_mode": "on",
    "archive_command": "/bin/true",
    "max_wal_senders": 10,
    "max_replication_slots": 10,
    "fsync": "off",
    "shared_buffers": "32MB",
    "max_connections": 40,
    "logging_collector": "off",
    "log_line_prefix": "%m [%p] %q%u@%d ",
    "lc_messages": "C",
    "dynamic_shared_memory_type": "posix",
}

_lock = threading.RLock()
_live = {}  # id(cluster) -> PgCluster, every cluster not yet destroyed
_session_dir = None
_watchdog = None
_templates = {}  # (bindir, initdb args) -> template data directory


class PgClusterError(RuntimeError):
    """A cluster could not be created, started or stopped."""


# --------------------------------------------------------------------------
# Environment: binaries, the server user, ports
# --------------------------------------------------------------------------

def find_bindir():
    """Return (bindir, None) or (None, reason) when PostgreSQL is missing."""
    override = os.environ.get("PGVAULT_PG_BINDIR")
    if override:
        if os.access(os.path.join(override, "pg_ctl"), os.X_OK):
            return override, None
        return None, "PGVAULT_PG_BINDIR=%s has no pg_ctl" % override
    pg_config = os.path.join(DEFAULT_PG_BINDIR, "pg_config")
    if not os.access(pg_config, os.X_OK):
        return None, ("PostgreSQL 15 server binaries not found (%s); install "
                      "postgresql-15 or set PGVAULT_PG_BINDIR" % pg_config)
    try:
        out = subprocess.run([pg_config, "--bindir"], check=True,
                             capture_output=True, text=True, timeout=30)
        bindir = out.stdout.strip()
    except (OSError, subprocess.SubprocessError) as e:
        return None, "%s --bindir failed: %s" % (pg_config, e)
    for tool in ("initdb", "pg_ctl", "postgres"):
        if not os.access(os.path.join(bindir, tool), os.X_OK):
            return None, "%s not found in %s" % (tool, bindir)
    return bindir, None


def server_user():
    """The user the server runs as: None when not root (run as ourselves)."""
    if os.geteuid() != 0:
        return None
    name = os.environ.get("PGVAULT_TEST_PGUSER")
    candidates = [name] if name else ["postgres", "pgvault-test"]
    for n in candidates:
        try:
            pwd.getpwnam(n)
            return n
        except KeyError:
            pass
    n = candidates[-1]
    subprocess.run(["useradd", "--system", "--no-create-home",
                    "--shell", "/usr/sbin/nologin", n], check=True)
    return n


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port():
    """A TCP port on 127.0.0.1 that nobody listens on right now.

    Chosen at random below the kernel's ephemeral range: a port the kernel
    handed out (bind to 0) is soon handed out again to some outgoing
    connection of the busy test machine, which could take it before the
    server the caller starts binds it.  Ports below the range are only taken
    by explicit binds."""
    rnd = random.SystemRandom()
    high = min(_ephemeral_low(), 65536) - 1
    for _ in range(200):
        port = rnd.randint(20000, high) if high > 20000 else rnd.randint(1024, 65535)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((TCP_HOST, port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((TCP_HOST, 0))
        return s.getsockname()[1]


def clean_env(extra=None):
    """os.environ without PG* variables (PGVAULT_* included), plus extra."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.setdefault("LC_ALL", "C.UTF-8")
    if extra:
        env.update(extra)
    return env


def _chown_tree(path, user):
    if user is None:
        return
    pw = pwd.getpwnam(user)
    for root, dirs, files in os.walk(path):
        os.chown(root, pw.pw_uid, pw.pw_gid)
        for f in files:
            os.chown(os.path.join(root, f), pw.pw_uid, pw.pw_gid,
                     follow_symlinks=False)


def _as_user(user, argv):
    return argv if user is None else ["runuser", "-u", user, "--"] + argv


def _pid_alive(pid):
    """True if pid exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (OSError, IndexError):
        return False


def _children(pid):
    """Pids whose parent is pid (the postmaster's backends and workers)."""
    kids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid:
            kids.append(int(d))
    return kids


def _is_postgres(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            cmd = f.read().split(b"\0")[0]
        return os.path.basename(cmd) in (b"postgres", b"postmaster") or \
            cmd.startswith(b"postgres:")
    except OSError:
        return False


def kill_postmaster(pid, grace=3.0):
    """SIGQUIT (immediate shutdown), then SIGKILL the postmaster and its
    children if they outlive grace seconds.  Safe on a pid that is gone."""
    if not pid or not _pid_alive(pid) or not _is_postgres(pid):
        return
    kids = _children(pid)
    try:
        os.kill(pid, signal.SIGQUIT)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and _pid_alive(pid):
        time.sleep(0.05)
    for p in [pid] + kids:
        if _pid_alive(p) and _is_postgres(p):
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and _pid_alive(pid):
        time.sleep(0.05)


def read_postmaster_pid(datadir):
    try:
        with open(os.path.join(datadir, "postmaster.pid")) as f:
            return int(f.readline().strip())
    except (OSError, ValueError):
        return None


# --------------------------------------------------------------------------
# Session directory and the watchdog
# --------------------------------------------------------------------------

_WATCHDOG = r"""
import os, sys, time, signal, shutil
parent, root, keep = int(sys.argv[1]), sys.argv[2], sys.argv[3] == "1"
sys.path.insert(0, sys.argv[4])
import pgcluster
while True:
    try:
        os.kill(parent, 0)
    except ProcessLookupError:
        break
    except PermissionError:
        pass
    if not os.path.isdir(root):
        sys.exit(0)
    time.sleep(1)
for dirpath, dirs, files in os.walk(root):
    if "postmaster.pid" in files:
        pgcluster.kill_postmaster(pgcluster.read_postmaster_pid(dirpath))
if not keep:
    shutil.rmtree(root, ignore_errors=True)
"""


def session_dir():
    """The directory that holds every cluster of this test process."""
    global _session_dir, _watchdog
    with _lock:
        if _session_dir is None:
            base = os.environ.get("PGVAULT_TEST_TMPDIR") or "/tmp"
            _session_dir = tempfile.mkdtemp(prefix="pgvault-e2e-", dir=base)
            os.chmod(_session_dir, 0o711)  # the server user must traverse it
            keep = "1" if os.environ.get("PGVAULT_TEST_KEEP") else "0"
            _watchdog = subprocess.Popen(
                [sys.executable, "-c", _WATCHDOG, str(os.getpid()),
                 _session_dir, keep, os.path.dirname(os.path.abspath(__file__))],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, start_new_session=True,
                env=clean_env())
        return _session_dir


def destroy_all():
    """Stop every cluster still alive; remove the session directory.
    Called at session end, from atexit and on SIGTERM: idempotent."""
    global _session_dir, _watchdog
    with _lock:
        for c in list(_live.values()):
            try:
                c.destroy()
            except Exception as e:  # keep going: stop the others
                print("pgcluster: destroying %s: %s" % (c.name, e),
                      file=sys.stderr)
        if _session_dir is not None:
            # Anything started outside a PgCluster object (should not happen)
            for dirpath, dirs, files in os.walk(_session_dir):
                if "postmaster.pid" in files:
                    kill_postmaster(read_postmaster_pid(dirpath))
            if not os.environ.get("PGVAULT_TEST_KEEP"):
                shutil.rmtree(_session_dir, ignore_errors=True)
            _session_dir = None
            _templates.clear()  # they lived in the session directory
        if _watchdog is not None:
            if _watchdog.poll() is None:
                _watchdog.kill()
            _watchdog.wait()
            _watchdog = None


atexit.register(destroy_all)


def _template(bindir, user, initdb_args):
    """A freshly initdb'd data directory to copy clusters from."""
    key = (bindir, tuple(initdb_args))
    with _lock:
        if key not in _templates:
            tdir = tempfile.mkdtemp(prefix="template-", dir=session_dir())
            _chown_tree(tdir, user)
            datadir = os.path.join(tdir, "data")
            _run_initdb(bindir, user, datadir, initdb_args, cwd=tdir)
            _templates[key] = datadir
        return _templates[key]


def _run_initdb(bindir, user, datadir, initdb_args, cwd):
    argv = [os.path.join(bindir, "initdb"), "-D", datadir, "-U", SUPERUSER,
            "-A", "trust", "-N", "-E", "UTF8", "--locale=C"] + list(initdb_args)
    r = subprocess.run(_as_user(user, argv), cwd=cwd, env=clean_env(),
                       capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise PgClusterError("initdb failed (%d):\n%s%s" %
                             (r.returncode, r.stdout, r.stderr))


# --------------------------------------------------------------------------
# Settings files
# --------------------------------------------------------------------------

def format_setting(value):
    """A value as postgresql.conf wants it: always single-quoted."""
    if value is True:
        value = "on"
    elif value is False:
        value = "off"
    return "'" + str(value).replace("\\", "\\\\").replace("'", "''") + "'"


_AUTO_LINE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*=")


def _edit_conf(path, settings, owner):
    """Set (value) or remove (None) settings in a postgresql.conf-style file."""
    lines = []
    if os.path.exists(path):
        with open(path) as f:
            lines = f.read().splitlines()
    names = {k.lower() for k in settings}
    kept = [ln for ln in lines
            if not (_AUTO_LINE.match(ln) and
                    _AUTO_LINE.match(ln).group(1).lower() in names)]
    for k, v in settings.items():
        if v is not None:
            kept.append("%s = %s" % (k, format_setting(v)))
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(kept) + "\n")
    if owner is not None:
        pw = pwd.getpwnam(owner)
        os.chown(tmp, pw.pw_uid, pw.pw_gid)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


# --------------------------------------------------------------------------
# The cluster
# --------------------------------------------------------------------------

class PgCluster:
    """One scratch PostgreSQL server.  Attributes:

    name      label used in directory names and messages
    port      TCP port on 127.0.0.1
    host      the unix socket directory (clients here use TCP, see conninfo)
    datadir   the data directory
    bindir    the PostgreSQL binaries
    basedir   the cluster's temporary directory (data, sockets, log, scratch)
    logfile   the server log
    user      the OS user the server runs as (None: this process's user)
    """

    def __init__(self, name="pg", bindir=None, settings=None,
                 initdb_args=("--data-checksums",), fresh_initdb=False):
        if bindir is None:
            bindir, reason = find_bindir()
            if bindir is None:
                raise PgClusterError(reason)
        self.name = re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:40]
        self.bindir = bindir
        self.user = server_user()
        self.basedir = tempfile.mkdtemp(prefix=self.name + "-",
                                        dir=session_dir())
        self.datadir = os.path.join(self.basedir, "data")
        self.host = os.path.join(self.basedir, "sock")
        self.logfile = os.path.join(self.basedir, "server.log")
        self.port = free_port()
        self.pid = None
        self._destroyed = False
        with _lock:
            _live[id(self)] = self
        try:
            os.mkdir(self.host, 0o755)
            if fresh_initdb:
                _chown_tree(self.basedir, self.user)
                _run_initdb(bindir, self.user, self.datadir, initdb_args,
                            cwd=self.basedir)
            else:
                tmpl = _template(bindir, self.user, initdb_args)
                subprocess.run(["cp", "-a", tmpl, self.datadir], check=True)
                _chown_tree(self.basedir, self.user)
            with open(os.path.join(self.datadir, "postgresql.conf"), "a") as f:
                f.write("\ninclude 'pgvault_test.conf'\n")
            self._write_base_conf()
            if settings:
                self.set_auto_conf(**settings)
        except BaseException:
            self.destroy()
            raise

    def __repr__(self):
        return "<PgCluster %s port=%d %s>" % (
            self.name, self.port, "running" if self.is_running() else "stopped")

    # -- configuration ----------------------------------------------------

    def _write_base_conf(self):
        base = dict(BASE_SETTINGS, port=self.port,
                    unix_socket_directories=self.host)
        path = os.path.join(self.datadir, "pgvault_test.conf")
        if os.path.exists(path):
            os.unlink(path)
        _edit_conf(path, base, self.user)

    def set_auto_conf(self, **settings):
        """Set settings in postgresql.auto.conf (None removes one).  They
        take effect at the next reload() or restart()."""
        _edit_conf(os.path.join(self.datadir, "postgresql.auto.conf"),
                   settings, self.user)

    def auto_conf(self):
        """The settings currently in postgresql.auto.conf, as a dict."""
        out = {}
        path = os.path.join(self.datadir, "postgresql.auto.conf")
        with open(path) as f:
            for ln in f:
                m = re.match(r"^\s*([A-Za-z_][\w.]*)\s*=\s*'(.*)'\s*$", ln)
                if m:
                    out[m.group(1)] = m.group(2).replace("''", "'")
        return out

    # -- running ----------------------------------------------------------

    def bin(self, tool):
        return os.path.join(self.bindir, tool)

    def _pg_ctl(self, *args, timeout=60):
        argv = [self.bin("pg_ctl"), "-D", self.datadir] + list(args)
        return subprocess.run(_as_user(self.user, argv), cwd=self.basedir,
                              env=clean_env(), capture_output=True, text=True,
                              timeout=timeout)

    def start(self, timeout=60):
        """Start the server and wait until it accepts connections.  If the
        port was taken meanwhile, pick another one and try again."""
        for attempt in range(5):
            r = self._pg_ctl("-l", self.logfile, "-w", "-t", str(timeout),
                             "start", timeout=timeout + 10)
            if r.returncode == 0:
                self.pid = read_postmaster_pid(self.datadir)
                return self
            self.kill()
            log = self.log_tail(4000)
            if "could not bind" in log or "Address already in use" in log:
                self.port = free_port()
                self._write_base_conf()
                continue
            break
        raise PgClusterError("pg_ctl start failed for %s (%d): %s%s\n"
                             "--- server log ---\n%s" %
                             (self.name, r.returncode, r.stdout, r.stderr,
                              self.log_tail()))

    def stop(self, mode="fast", timeout=60):
        """Stop the server cleanly (mode: smart, fast, immediate)."""
        if not self.is_running():
            self.pid = None
            return
        r = self._pg_ctl("-m", mode, "-w", "-t", str(timeout), "stop",
                         timeout=timeout + 10)
        if r.returncode != 0 and self.is_running():
            raise PgClusterError("pg_ctl stop failed for %s: %s%s" %
                                 (self.name, r.stdout, r.stderr))
        self.pid = None

    def kill(self):
        """Stop at once: immediate shutdown, then SIGKILL what is left."""
        pid = self.pid or read_postmaster_pid(self.datadir)
        if pid and _pid_alive(pid):
            try:
                self._pg_ctl("-m", "immediate", "-w", "-t", "10", "stop",
                             timeout=20)
            except subprocess.SubprocessError:
                pass
            kill_postmaster(pid)
        self.pid = None

    def restart(self, **settings):
        """Apply settings to postgresql.auto.conf and restart the server."""
        if settings:
            self.set_auto_conf(**settings)
        self.stop()
        return self.start()

    def reload(self, **settings):
        if settings:
            self.set_auto_conf(**settings)
        # SIGHUP is asynchronous: wait until the postmaster has reloaded (a
        # new backend inherits its pg_conf_load_time(); the postmaster has
        # then signalled its children too) instead of sleeping a fixed time,
        # which a loaded machine can outlast.
        before = self.scalar("SELECT pg_conf_load_time()")
        r = self._pg_ctl("reload")
        if r.returncode != 0:
            raise PgClusterError("pg_ctl reload failed: %s" % r.stderr)
        deadline = time.monotonic() + 60
        while self.scalar("SELECT pg_conf_load_time()") <= before:
            if time.monotonic() > deadline:
                raise PgClusterError("the server did not reload its configuration "
                                     "within 60 s:\n%s" % self.log_tail())
            time.sleep(0.05)
        time.sleep(0.1)  # children (the archiver) apply it when they next wake

    def is_running(self):
        pid = self.pid or read_postmaster_pid(self.datadir)
        return bool(pid) and _pid_alive(pid) and _is_postgres(pid)

    def destroy(self):
        """Kill the server and forget the cluster.  Idempotent.  The files
        go with the session directory (kept if PGVAULT_TEST_KEEP is set)."""
        if self._destroyed:
            return
        try:
            self.kill()
        finally:
            self._destroyed = True
            with _lock:
                _live.pop(id(self), None)
            if not os.environ.get("PGVAULT_TEST_KEEP"):
                shutil.rmtree(self.basedir, ignore_errors=True)

    def mkdir(self, name):
        """A directory inside the cluster's temp dir that the server user
        owns (e.g. a WAL archive that archive_command writes to)."""
        path = os.path.join(self.basedir, name)
        os.makedirs(path, exist_ok=True)
        _chown_tree(path, self.user)
        return path

    def log_tail(self, nbytes=3000):
        try:
            with open(self.logfile, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - nbytes))
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    # -- clients ----------------------------------------------------------

    def conninfo(self, dbname="postgres", user=SUPERUSER, **extra):
        """A libpq connection string over TCP to this server."""
        parts = {"host": TCP_HOST, "port": self.port, "dbname": dbname,
                 "user": user}
        parts.update(extra)
        return " ".join("%s=%s" % (k, _quote_conninfo(v))
                        for k, v in parts.items())

    def env(self, dbname="postgres", user=SUPERUSER):
        """PG* variables pointing at this server, for client tools."""
        return {"PGHOST": TCP_HOST, "PGPORT": str(self.port),
                "PGUSER": user, "PGDATABASE": dbname}

    def connect(self, db="postgres", user=SUPERUSER, autocommit=True, **kw):
        """A psycopg connection (the caller closes it)."""
        import psycopg
        return psycopg.connect(self.conninfo(db, user), autocommit=autocommit,
                               connect_timeout=10, **kw)

    def psql(self, sql, db="postgres", user=SUPERUSER, params=None):
        """Run one statement in autocommit mode; return its rows (a list of
        tuples, [] for statements without a result)."""
        with self.connect(db, user) as conn:
            cur = conn.execute(sql, params)
            return cur.fetchall() if cur.description else []

    def execute(self, sql, db="postgres", user=SUPERUSER, params=None):
        """Run statements (several allowed without params); no result."""
        with self.connect(db, user) as conn:
            conn.execute(sql, params)

    def scalar(self, sql, db="postgres", user=SUPERUSER, params=None):
        rows = self.psql(sql, db, user, params)
        return rows[0][0] if rows else None

    def run_tool(self, tool, *args, as_server_user=False, check=True,
                 input=None, timeout=300, dbname="postgres"):
        """Run a binary from bindir (pgbench, pg_controldata, psql, ...)
        with PG* pointing at this server."""
        argv = [self.bin(tool)] + [str(a) for a in args]
        if as_server_user:
            argv = _as_user(self.user, argv)
        r = subprocess.run(argv, env=clean_env(self.env(dbname)),
                           cwd=self.basedir, input=input, capture_output=True,
                           text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise PgClusterError("%s failed (%d): %s%s" %
                                 (tool, r.returncode, r.stdout, r.stderr))
        return r

    def controldata(self):
        """pg_controldata as a dict (works on a stopped server too)."""
        r = self.run_tool("pg_controldata", "-D", self.datadir,
                          as_server_user=True)
        out = {}
        for ln in r.stdout.splitlines():
            k, _, v = ln.partition(":")
            out[k.strip()] = v.strip()
        return out


def _quote_conninfo(v):
    v = str(v)
    if v and re.fullmatch(r"[A-Za-z0-9_./:-]+", v):
        return v
    return "'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'"


def new_cluster(name="pg", start=True, **kw):
    """Create (and by default start) a cluster; destroy it on failure."""
    c = PgCluster(name, **kw)
    if start:
        try:
            c.start()
        except BaseException:
            c.destroy()
            raise
    return c


def install_sigterm_handler():
    """On SIGTERM, stop every cluster before dying (atexit does not run
    when a signal kills Python)."""
    prev = signal.getsignal(signal.SIGTERM)

    def handler(signum, frame):
        destroy_all()
        if callable(prev) and prev not in (signal.SIG_DFL, signal.SIG_IGN):
            prev(signum, frame)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handler)
