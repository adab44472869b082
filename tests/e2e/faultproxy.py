"""faultproxy.py: a fault-injecting HTTPS proxy in front of an emulator.

FaultProxy(upstream_port, tls) listens on 127.0.0.1 (TLS, the emulator's
own certificate, so clients keep verifying) and forwards each request to
the emulator, except when a planned fault says otherwise.  It understands
just enough HTTP/1.1 for our clients: requests with Content-Length bodies,
keep-alive; responses are read whole from upstream and re-sent with a
Content-Length.

Faults are planned per request, first matching rule wins:

    proxy.plan("500", count=3, method="PUT")     next 3 PUTs answer 500
    proxy.plan("503", count=2)                   SlowDown (S3) / ServerBusy
    proxy.plan("drop", count=1, method="PUT")    read half the body, reset
    proxy.plan("cut", count=1, method="GET")     forward, then send half the
                                                 response body and reset
    proxy.plan("slow", count=1, delay=3)         wait, then forward
    proxy.plan("corrupt", count=1, method="PUT") flip one byte of the body,
                                                 then forward
    proxy.plan("500", count=None)                every matching request

Only "cut" and "corrupt" let a request reach the emulator: every other fault stops it
before it is forwarded, so a retried write is the first one the emulator
sees (no false "already exists").  proxy.seen counts requests per method
and proxy.faults the faults injected.  The proxy runs in a thread of the
test process; stop() closes it.
"""

import http.client
import socket
import ssl
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_BODIES = {
    "500": (500, "InternalError", "We encountered an internal error. Please try again. (injected)"),
    "503": (503, "SlowDown", "Please reduce your request rate. (injected)"),
}


class _Rule:
    def __init__(self, kind, count, method, path, delay):
        self.kind = kind
        self.count = count
        self.method = method
        self.path = path
        self.delay = delay

    def matches(self, method, path):
        return ((self.method is None or self.method == method) and
                (self.path is None or self.path in path))


class FaultProxy:
    def __init__(self, upstream_port, tls):
        self.upstream_port = upstream_port
        self.rules = []
        self.lock = threading.Lock()
        self.seen = {}
        self.faults = 0
        self.upstream_ctx = ssl.create_default_context(cafile=tls.cert)
        proxy = self

        class Handler(_Handler):
            owner = proxy

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(tls.cert, tls.key)
        self.server.socket = ctx.wrap_socket(self.server.socket,
                                             server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def plan(self, kind, count=1, method=None, path=None, delay=0.0):
        assert kind in ("500", "503", "drop", "cut", "slow", "corrupt"), kind
        with self.lock:
            self.rules.append(_Rule(kind, count, method, path, delay))

    def clear(self):
        with self.lock:
            self.rules = []
            self.seen = {}
            self.faults = 0

    def _take(self, method, path):
        with self.lock:
            self.seen[method] = self.seen.get(method, 0) + 1
            for r in self.rules:
                if r.matches(method, path) and (r.count is None or r.count > 0):
                    if r.count is not None:
                        r.count -= 1
                    self.faults += 1
                    return r
        return None

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    owner = None

    def log_message(self, fmt, *args):
        pass

    def _reset(self):
        """Close with RST: what a dropped connection looks like."""
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close_connection = True
        try:
            self.connection.close()
        except OSError:
            pass

    def _error(self, kind):
        status, code, msg = _BODIES[kind]
        body = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>%s"
                "</Code><Message>%s</Message></Error>" % (code, msg)).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-ms-error-code", code)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _handle(self):
        length = int(self.headers.get("Content-Length") or 0)
        rule = self.owner._take(self.command, self.path)
        if rule is not None and rule.kind == "drop":
            if length > 0:
                self.rfile.read(length // 2)
            self._reset()
            return
        body = self.rfile.read(length) if length > 0 else b""
        if rule is not None and rule.kind in ("500", "503"):
            self._error(rule.kind)
            return
        if rule is not None and rule.kind == "slow":
            time.sleep(rule.delay)
        if rule is not None and rule.kind == "corrupt" and body:
            i = len(body) // 2
            body = body[:i] + bytes([body[i] ^ 0x5A]) + body[i + 1:]
        conn = http.client.HTTPSConnection("127.0.0.1", self.owner.upstream_port,
                                           context=self.owner.upstream_ctx,
                                           timeout=60)
        try:
            headers = {k: v for k, v in self.headers.items()
                       if k.lower() not in ("connection", "keep-alive",
                                            "proxy-connection")}
            conn.request(self.command, self.path, body=body if length else None,
                         headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        finally:
            conn.close()
        self.send_response(resp.status, resp.reason)
        for k, v in resp.getheaders():
            if k.lower() not in ("transfer-encoding", "connection", "keep-alive",
                                 "content-length"):
                self.send_header(k, v)
        if self.command == "HEAD":
            cl = resp.getheader("Content-Length")
            if cl is not None:
                self.send_header("Content-Length", cl)
            self.end_headers()
            return
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if rule is not None and rule.kind == "cut":
            self.wfile.write(data[:len(data) // 2])
            self.wfile.flush()
            self._reset()
            return
        self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle
