"""emulators.py: real object-store servers for the storage end-to-end tests.

Servers (each on 127.0.0.1, a free port, TLS with a self-signed certificate
whose subjectAltName holds IP:127.0.0.1 plus DNS:127.0.0.1, localhost and
*.s3.localhost for virtual-hosted bucket names):

  s3rver   (npm, pinned)  quick, but checks no signature and no conditional
                          header: good for S3 traffic, not as the only S3
  azurite  (npm, pinned)  Azure Blob, checks Shared Key and SAS signatures
  swift    (Debian)       OpenStack Swift with s3api: checks SigV4 and
                          multipart rules; used when its packages are
                          installed (scripts/install-deps.sh), skipped
                          with the reason otherwise

The npm packages are installed by the fixtures themselves, once, into
tests/e2e/.npm (gitignored) with `npm install --no-audit --no-fund` under a
file lock; tests skip with the reason only when node or npm is missing.

Invariants:
1. Every server started here is stopped at the end (fixture teardown, then
   atexit), and dies with the test process anyway: it is started with
   PR_SET_PDEATHSIG, so a killed pytest leaves no emulator behind.
2. Servers listen on 127.0.0.1 only; nothing here talks to the internet
   except npm's registry at install time.

Fixtures (session scope): emu_tls (cert and key paths), s3rver, azurite,
swift; the same outside fixtures (backends.py): workdir(), tls(),
server(cls).  Each server object has .endpoint, .env (credentials as the
cloud CLIs name them), .opts (storage_tool -o settings) and .stop().  The
work directory and certificate are readable by all, so pgvault run by a test
server's own user (archive_command) can read the CA file.
StorageTool wraps bench/storage_tool for the tests.
"""

import base64
import ctypes
import fcntl
import hashlib
import hmac
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))
NPM_DIR = os.path.join(HERE, ".npm")
NPM_PACKAGES = ["s3rver@3.7.1", "azurite@3.35.0"]

# Azurite's well-known development account (public: Azurite's documentation).
AZ_ACCOUNT = "devstoreaccount1"
AZ_KEY = ("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/"
          "K1SZFPTOtr/KBHBeksoGMGw==")

_started = []


def _stop_all():
    for p in list(_started):
        _kill(p)


import atexit  # noqa: E402

atexit.register(_stop_all)


def _kill(proc, sig=signal.SIGTERM):
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    if proc in _started:
        _started.remove(proc)


def _die_with_parent():
    os.setsid()
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def free_port():
    import pgcluster  # below the ephemeral range: see there
    return pgcluster.free_port()


def wait_port(port, proc, timeout, logfile):
    timeout = max(timeout, 60)  # emulators start slowly on a loaded CI machine
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("server exited with %s; log:\n%s" %
                               (proc.returncode, _tail(logfile)))
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server not listening on %d after %ss; log:\n%s" %
                       (port, timeout, _tail(logfile)))


def _tail(path, n=30):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return "(no log)"


def start(argv, logfile, env=None, cwd=None):
    log = open(logfile, "ab")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, env=env, cwd=cwd,
                            preexec_fn=_die_with_parent)
    log.close()
    _started.append(proc)
    return proc


# ---- npm ----

def npm_bin(name):
    """Path of an installed npm executable; installs the pinned packages
    first if needed; pytest.skip when node or npm is not installed."""
    path = os.path.join(NPM_DIR, "node_modules", ".bin", name)
    if shutil.which("node") is None:
        pytest.skip("node is not installed (scripts/install-deps.sh installs "
                    "it): no S3/Azure emulators")
    if os.access(path, os.X_OK):
        return path
    if shutil.which("npm") is None:
        pytest.skip("node and npm are not installed (scripts/install-deps.sh "
                    "installs them): no S3/Azure emulators")
    os.makedirs(NPM_DIR, exist_ok=True)
    with open(os.path.join(NPM_DIR, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.access(path, os.X_OK):
            r = subprocess.run(["npm", "install", "--no-audit", "--no-fund",
                                "--prefix", NPM_DIR] + NPM_PACKAGES,
                               capture_output=True, text=True, timeout=600)
            if r.returncode != 0:
                pytest.fail("npm install %s failed:\n%s%s" %
                            (" ".join(NPM_PACKAGES), r.stdout, r.stderr))
    if not os.access(path, os.X_OK):
        pytest.fail("npm install did not provide %s" % path)
    return path


# ---- TLS ----

class Tls:
    def __init__(self, directory):
        self.cert = os.path.join(directory, "cert.pem")
        self.key = os.path.join(directory, "key.pem")
        san = ("subjectAltName=IP:127.0.0.1,DNS:127.0.0.1,DNS:localhost,"
               "DNS:s3.localhost,DNS:*.s3.localhost")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                        "-nodes", "-keyout", self.key, "-out", self.cert,
                        "-days", "7", "-subj", "/CN=127.0.0.1",
                        "-addext", san],
                       check=True, capture_output=True)


# ---- servers ----

class Server:
    name = "?"
    scheme = "?"

    def __init__(self, tls, workdir):
        self.tls = tls
        self.dir = tempfile.mkdtemp(prefix=self.name + "-", dir=workdir)
        self.port = free_port()
        self.log = os.path.join(self.dir, "server.log")
        self.proc = None

    @property
    def endpoint(self):
        return "https://127.0.0.1:%d" % self.port

    def stop(self):
        if self.proc is not None:
            _kill(self.proc)
            self.proc = None

    def log_tail(self):
        return _tail(self.log)


class S3rver(Server):
    """s3rver; credentials are not checked (any key signs)."""
    name = "s3rver"
    scheme = "s3"
    buckets = ("pgv", "pgv2", "pgv3", "pgv4")

    def start(self):
        argv = [npm_bin("s3rver"), "-d", os.path.join(self.dir, "data"),
                "-a", "127.0.0.1", "-p", str(self.port), "--silent",
                "--key", self.tls.key, "--cert", self.tls.cert,
                "--service-endpoint", "localhost"]
        os.makedirs(os.path.join(self.dir, "data"))
        for b in self.buckets:
            argv += ["--configure-bucket", b]
        env = dict(os.environ)
        # Node 17+: paged listings fail with 500 without the legacy provider.
        env["NODE_OPTIONS"] = "--openssl-legacy-provider"
        self.proc = start(argv, self.log, env=env)
        wait_port(self.port, self.proc, 20, self.log)
        return self

    env = {"AWS_ACCESS_KEY_ID": "S3RVER", "AWS_SECRET_ACCESS_KEY": "S3RVER"}

    @property
    def opts(self):
        # s3rver ignores If-None-Match: the documented HEAD-first fallback.
        return {"s3-endpoint": self.endpoint, "s3-ca-file": self.tls.cert,
                "s3-if-none-match": "off", "s3-region": "us-east-1"}


class Azurite(Server):
    """azurite's blob service; checks Shared Key and SAS signatures."""
    name = "azurite"
    scheme = "azure"

    def start(self):
        argv = [npm_bin("azurite-blob"), "--blobHost", "127.0.0.1",
                "--blobPort", str(self.port), "--cert", self.tls.cert,
                "--key", self.tls.key, "-l", os.path.join(self.dir, "data"),
                "--silent", "--disableTelemetry"]
        os.makedirs(os.path.join(self.dir, "data"))
        self.proc = start(argv, self.log)
        wait_port(self.port, self.proc, 30, self.log)
        return self

    @property
    def endpoint(self):
        return "https://127.0.0.1:%d/%s" % (self.port, AZ_ACCOUNT)

    env = {"AZURE_STORAGE_ACCOUNT": AZ_ACCOUNT, "AZURE_STORAGE_KEY": AZ_KEY}

    @property
    def opts(self):
        return {"azure-endpoint": self.endpoint, "azure-ca-file": self.tls.cert}

    def account_sas(self, permissions="rwdlac", hours=1):
        """An account SAS for the blob service, signed with the account key."""
        expiry = time.strftime("%Y-%m-%dT%H:%M:%SZ",
                               time.gmtime(time.time() + hours * 3600))
        fields = {"sv": "2021-12-02", "ss": "b", "srt": "sco",
                  "sp": permissions, "se": expiry, "spr": "https"}
        sts = "\n".join([AZ_ACCOUNT, fields["sp"], fields["ss"], fields["srt"],
                         "", fields["se"], "", fields["spr"], fields["sv"],
                         ""]) + "\n"
        sig = base64.b64encode(hmac.new(base64.b64decode(AZ_KEY),
                                        sts.encode(), hashlib.sha256).digest())
        fields["sig"] = sig.decode()
        return urllib.parse.urlencode(fields)


# ---- OpenStack Swift with s3api (a verifying S3) ----

SWIFT_BINARIES = ("swift-proxy-server", "swift-account-server",
                  "swift-container-server", "swift-object-server",
                  "swift-ring-builder", "memcached")


def swift_missing():
    """None when Swift can run here, else why not."""
    missing = [b for b in SWIFT_BINARIES
               if shutil.which(b) is None and
               not os.access(os.path.join("/usr/bin", b), os.X_OK)]
    if missing:
        return ("OpenStack Swift is not installed (%s missing; "
                "scripts/install-deps.sh installs it)" % ", ".join(missing))
    return None


class Swift(Server):
    """Swift's proxy with s3api and tempauth, one account/container/object
    server each, a one-device ring, all under one directory."""
    name = "swift"
    scheme = "s3"

    def start(self):
        d = self.dir
        self.ports = {k: free_port() for k in ("account", "container",
                                               "object", "memcached")}
        # Devices on tmpfs when there is one: Swift fsyncs every object.
        shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else d
        dev = tempfile.mkdtemp(prefix="pgvault-swift-", dir=shm)
        self.devdir = dev
        os.makedirs(os.path.join(dev, "sdb1"))
        os.makedirs(os.path.join(d, "run"))
        os.makedirs(os.path.join(d, "cache"))
        common = ("[DEFAULT]\nswift_dir = {d}\ndevices = {dev}\n"
                  "mount_check = false\nbind_ip = 127.0.0.1\nbind_port = {port}\n"
                  "workers = 1\nuser = {user}\nlog_name = {name}\n"
                  "disable_fallocate = true\nfallocate_reserve = 0\n")
        user = os.environ.get("USER") or "root"
        with open(os.path.join(d, "swift.conf"), "w") as f:
            f.write("[swift-hash]\nswift_hash_path_suffix = pgvault\n"
                    "swift_hash_path_prefix = test\n"
                    "[storage-policy:0]\nname = gold\ndefault = yes\n")
        for kind in ("account", "container", "object"):
            with open(os.path.join(d, kind + "-server.conf"), "w") as f:
                f.write(common.format(d=d, dev=dev, port=self.ports[kind],
                                      user=user, name=kind))
                f.write("\n[pipeline:main]\npipeline = {k}-server\n\n"
                        "[app:{k}-server]\nuse = egg:swift#{k}\n".format(k=kind))
                if kind == "object":
                    f.write("\n[object-replicator]\n[object-updater]\n"
                            "[object-auditor]\n")
                else:
                    f.write("\n[{k}-replicator]\n[{k}-auditor]\n".format(k=kind))
                    if kind == "container":
                        f.write("[container-updater]\n[container-sync]\n")
        with open(os.path.join(d, "proxy-server.conf"), "w") as f:
            f.write(common.format(d=d, dev=dev, port=self.port, user=user,
                                  name="proxy"))
            f.write("cert_file = {c}\nkey_file = {k}\n".format(
                c=self.tls.cert, k=self.tls.key))
            f.write(
                "\n[pipeline:main]\npipeline = catch_errors gatekeeper "
                "proxy-logging cache s3api tempauth copy dlo slo "
                "proxy-logging proxy-server\n\n"
                "[app:proxy-server]\nuse = egg:swift#proxy\n"
                "account_autocreate = true\n\n"
                "[filter:catch_errors]\nuse = egg:swift#catch_errors\n"
                "[filter:gatekeeper]\nuse = egg:swift#gatekeeper\n"
                "[filter:proxy-logging]\nuse = egg:swift#proxy_logging\n"
                "[filter:cache]\nuse = egg:swift#memcache\n"
                "memcache_servers = 127.0.0.1:%d\n"
                "[filter:s3api]\nuse = egg:swift#s3api\n"
                "location = us-east-1\nforce_swift_request_proxy_log = false\n"
                "[filter:tempauth]\nuse = egg:swift#tempauth\n"
                "user_test_tester = testing .admin\n"
                "[filter:copy]\nuse = egg:swift#copy\n"
                "[filter:dlo]\nuse = egg:swift#dlo\n"
                "[filter:slo]\nuse = egg:swift#slo\n" % self.ports["memcached"])
        # One Python process builds the three one-device rings
        # (swift-ring-builder takes over a second per call).
        script = ("import sys\nfrom swift.common.ring import RingBuilder\n"
                  "for kind, port in zip(('account', 'container', 'object'), sys.argv[2:]):\n"
                  "    b = RingBuilder(10, 1, 1)\n"
                  "    b.add_dev({'region': 1, 'zone': 1, 'ip': '127.0.0.1', 'port': int(port),"
                  " 'device': 'sdb1', 'weight': 1})\n"
                  "    b.rebalance()\n"
                  "    b.get_ring().save('%s/%s.ring.gz' % (sys.argv[1], kind))\n")
        subprocess.run(["/usr/bin/python3", "-c", script, d,
                        str(self.ports["account"]), str(self.ports["container"]),
                        str(self.ports["object"])], check=True, capture_output=True)
        self.procs = [start(["memcached", "-l", "127.0.0.1", "-p",
                             str(self.ports["memcached"]), "-U", "0", "-u",
                             user], self.log)]
        for kind in ("account", "container", "object"):
            self.procs.append(start(["swift-%s-server" % kind,
                                     os.path.join(d, kind + "-server.conf")],
                                    self.log))
        self.proc = start(["swift-proxy-server",
                           os.path.join(d, "proxy-server.conf")], self.log)
        self.procs.append(self.proc)
        for kind in ("account", "container", "object"):
            wait_port(self.ports[kind], self.procs[1], 30, self.log)
        wait_port(self.port, self.proc, 30, self.log)
        return self

    def stop(self):
        # Throw-away servers: no graceful shutdown to wait for.
        for p in getattr(self, "procs", []):
            _kill(p, signal.SIGKILL)
        self.procs = []
        self.proc = None
        if getattr(self, "devdir", None):
            shutil.rmtree(self.devdir, ignore_errors=True)

    env = {"AWS_ACCESS_KEY_ID": "test:tester", "AWS_SECRET_ACCESS_KEY": "testing"}

    @property
    def opts(self):
        # Swift 2.30's s3api answers conditional PUTs with 501 NotImplemented.
        return {"s3-endpoint": self.endpoint, "s3-ca-file": self.tls.cert,
                "s3-region": "us-east-1", "s3-if-none-match": "off"}


# ---- storage_tool ----

def tool_path():
    """bench/storage_tool next to the pgvault binary under test."""
    pgv = os.environ.get("PGVAULT_BIN") or os.path.join(REPO_ROOT, "build",
                                                         "pgvault")
    path = os.path.join(os.path.dirname(os.path.abspath(pgv)), "bench",
                        "storage_tool")
    if not os.access(path, os.X_OK):
        pytest.fail("storage_tool not found at %s: build the project (it is "
                    "bench/storage_tool.c) or set PGVAULT_BIN" % path,
                    pytrace=False)
    return path


class StorageTool:
    """Run storage_tool against one location: url, settings and env."""

    def __init__(self, url, opts=None, env=None):
        self.url = url
        self.opts = dict(opts or {})
        self.env = dict(env or {})

    def with_opts(self, **kw):
        o = dict(self.opts)
        o.update({k.replace("_", "-"): v for k, v in kw.items()})
        return StorageTool(self.url, o, self.env)

    def with_env(self, **kw):
        e = dict(self.env)
        e.update(kw)
        return StorageTool(self.url, self.opts, e)

    def run(self, *args, input=None, check=False, timeout=120, verbose=False):
        """storage_tool ... args; verbose adds -v (debug log of every request)."""
        argv = [tool_path()] + (["-v"] if verbose else [])
        for k, v in self.opts.items():
            argv += ["-o", "%s=%s" % (k, v)]
        argv += [self.url] + [str(a) for a in args]
        env = {k: v for k, v in os.environ.items()
               if not (k.startswith("AWS_") or k.startswith("AZURE_"))}
        env.update(self.env)
        r = subprocess.run(argv, input=input, capture_output=True, env=env,
                           timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError("storage_tool %s failed (%d): %s" %
                                 (" ".join(map(str, args)), r.returncode,
                                  r.stderr.decode(errors="replace")))
        return r

    def put(self, key, data, *flags):
        return self.run("put", key, *flags, input=data)

    def get(self, key, *rng):
        r = self.run("get", key, *rng, check=True)
        return r.stdout

    def listing(self, prefix=""):
        r = self.run("list", prefix, check=True)
        out = {}
        for line in r.stdout.decode().splitlines():
            k, size = line.split("\t")
            out[k] = int(size)
        return out


# ---- fixtures ----

_shared = {}


def _cleanup_workdir():
    for srv in list(_servers.values()):
        srv.stop()
    d = _shared.get("workdir")
    if d and not os.environ.get("PGVAULT_TEST_KEEP"):
        shutil.rmtree(d, ignore_errors=True)


def workdir():
    """The session's emulator directory.  Readable by all (0755), so a test
    server's own user (archive_command, restore_command) can read the CA
    certificate; the private key stays 0600."""
    if "workdir" not in _shared:
        _shared["workdir"] = tempfile.mkdtemp(prefix="pgvault-emu-")
        os.chmod(_shared["workdir"], 0o755)
        atexit.register(_cleanup_workdir)
    return _shared["workdir"]


def tls():
    """The session's self-signed certificate (cert readable by all)."""
    if "tls" not in _shared:
        _shared["tls"] = Tls(workdir())
        os.chmod(_shared["tls"].cert, 0o644)
    return _shared["tls"]


def server(cls):
    """The session's running server of class cls (S3rver, Azurite, Swift),
    started on first use; for code outside fixtures (backends.py)."""
    if cls is Swift:
        why = swift_missing()
        if why:
            pytest.skip(why)
    return _server_fixture(cls, tls(), workdir())


@pytest.fixture(scope="session")
def emu_workdir():
    return workdir()


@pytest.fixture(scope="session")
def emu_tls(emu_workdir):
    return tls()


_servers = {}


def _server_fixture(cls, tls, workdir):
    """One server of a kind per test session, shared by every module that
    imports the fixtures (pytest would otherwise start one per module)."""
    srv = _servers.get(cls)
    if srv is not None and srv.proc is not None and srv.proc.poll() is None:
        return srv
    srv = cls(tls, workdir)
    try:
        srv.start()
    except Exception:
        srv.stop()
        raise
    _servers[cls] = srv
    return srv


@pytest.fixture(scope="session")
def s3rver(emu_tls, emu_workdir):
    srv = _server_fixture(S3rver, emu_tls, emu_workdir)
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def azurite(emu_tls, emu_workdir):
    srv = _server_fixture(Azurite, emu_tls, emu_workdir)
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def swift(emu_tls, emu_workdir):
    why = swift_missing()
    if why:
        pytest.skip(why)
    srv = _server_fixture(Swift, emu_tls, emu_workdir)
    yield srv
    srv.stop()


def random_bytes(n, seed):
    """Deterministic test data, quickly (SHA-256 in counter mode)."""
    out = bytearray()
    i = 0
    while len(out) < n:
        out += hashlib.sha256(b"%d:%d" % (seed, i)).digest() * 32
        i += 1
    return bytes(out[:n])


if __name__ == "__main__":
    sys.exit("emulators.py is a pytest helper module")
