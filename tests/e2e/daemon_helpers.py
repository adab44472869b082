"""daemon_helpers.py: run `pgvault daemon` in end-to-end tests.

DaemonProc starts the daemon as a child of the test with a clean environment
(pgcluster.clean_env), its stderr in a file (read with .log()), and its
endpoints on a free port of 127.0.0.1.  Every daemon started here is stopped
in .stop() (SIGTERM, then SIGKILL after a timeout); the `daemon` fixture of
test_daemon.py and test_statuspage.py calls it in its teardown, so a failing
test leaves no process behind.

Also: a webhook receiver (a tiny threaded HTTP server that records the JSON
bodies it gets), a Prometheus text parser wrapper (python3-prometheus-client)
and wait_until() for polling with a deadline instead of fixed sleeps.
"""

import http.server
import json
import os
import signal
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pgcluster
from pgcluster import clean_env
from pgvault_cli import pgvault_bin, run_pgvault, slowdown


def free_port():
    return pgcluster.free_port()  # below the ephemeral range: see there


def wait_until(pred, timeout=30.0, interval=0.1, what="condition"):
    """Poll pred() until it returns a true value (which is returned).  The
    deadline grows with slowdown() (sanitizer builds)."""
    timeout *= slowdown()
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError("timed out after %.0fs waiting for %s (last: %r)" %
                         (timeout, what, last))


def init_repo(path):
    r = run_pgvault("init", "--repo", path)
    assert r.rc == 0, r.err
    return path


def write_config(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def read_joblog(path):
    """The job log's entries (one JSON object per line); [] before it exists."""
    try:
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []


def parse_metrics(text):
    """{(name, frozenset(labels.items())): value} from the Prometheus text
    format, parsed by the reference parser (python3-prometheus-client)."""
    from prometheus_client.parser import text_string_to_metric_families
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def metric(samples, name, **labels):
    """The value of one sample; None when absent."""
    return samples.get((name, frozenset(labels.items())))


class DaemonProc:
    def __init__(self, config, workdir, env=None, args=()):
        self.config = config
        self.port = None
        self.workdir = workdir
        self.env = dict(env or {})
        self.args = list(args)
        self.proc = None
        self.logpath = os.path.join(workdir, "daemon-%d.log" % time.monotonic_ns())
        self.token = None
        self.cafile = None  # set: the endpoints speak HTTPS with a certificate from this CA

    def start(self, port, wait=True):
        self.port = port
        argv = [pgvault_bin(), "daemon", "--config", self.config] + self.args
        self._logf = open(self.logpath, "w")
        self.proc = subprocess.Popen(argv, env=clean_env(self.env), cwd=self.workdir,
                                     stdin=subprocess.DEVNULL,
                                     stdout=self._logf, stderr=self._logf)
        if wait:
            wait_until(lambda: self._health_ok() or self.proc.poll() is not None,
                       timeout=20, what="the daemon's /health")
            assert self.proc.poll() is None, "daemon exited:\n" + self.log()
        return self

    def _health_ok(self):
        try:
            st, _, _ = self.get("/health")
            return st == 200
        except (OSError, ssl.SSLError):
            return False

    def url(self, path):
        return "%s://127.0.0.1:%d%s" % ("https" if self.cafile else "http", self.port, path)

    def get(self, path, token=None, headers=None, timeout=10):
        """(status, headers, body bytes); HTTP errors are returned, not raised."""
        h = dict(headers or {})
        tok = token if token is not None else self.token
        if tok:
            h["Authorization"] = "Bearer " + tok
        req = urllib.request.Request(self.url(path), headers=h)
        ctx = ssl.create_default_context(cafile=self.cafile) if self.cafile else None
        try:
            with urllib.request.urlopen(req, timeout=timeout, context=ctx) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def json(self, path):
        st, _, body = self.get(path)
        assert st == 200, (st, body)
        return json.loads(body)

    def metrics(self):
        st, hdr, body = self.get("/metrics")
        assert st == 200, (st, body)
        assert hdr.get("Content-Type", "").startswith("text/plain; version=0.0.4")
        return parse_metrics(body.decode())

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=30):
        """SIGTERM, wait; SIGKILL if it does not stop.  Returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._logf.close()
        return self.proc.returncode

    def log(self):
        try:
            with open(self.logpath, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""


class WebhookReceiver:
    """A local HTTP server that records every POSTed JSON body."""

    def __init__(self, status=200):
        self.bodies = []
        self.status = status
        self.lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                with outer.lock:
                    outer.bodies.append({"path": self.path,
                                         "content_type": self.headers.get("Content-Type"),
                                         "json": json.loads(body)})
                self.send_response(outer.status)
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path="/hook"):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def events(self, event=None, key=None):
        with self.lock:
            out = [b["json"] for b in self.bodies]
        return [e for e in out if (event is None or e.get("event") == event) and
                (key is None or e.get("key") == key)]

    def close(self):
        self.server.shutdown()
        self.server.server_close()
