"""test_statuspage.py: the daemon's status page ("/") in a real browser.

A daemon makes a few file backups and a verify into a real repository; its
schedules are then reloaded to hourly ones (and status-interval to an hour)
so the snapshot stands still.  Headless Chromium (Debian's chromium) loads
the page, runs its script and dumps the DOM: the charts must be drawn (one
mark per backup on the timeline, three points per backup in the size chart,
one per backup in the duration chart, SVG paths for the series) and every
figure the page shows must equal the /status and /history documents served
at the same moment.  A screenshot must not be blank.  The page must load
nothing from elsewhere (it works offline).

Skipped, with the reason, only when no Chromium binary is installed.
"""

import html.parser
import json
import os
import shutil
import signal
import struct
import subprocess
import time
import zlib

import pytest

from daemon_helpers import DaemonProc, free_port, init_repo, read_joblog, wait_until, write_config

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--no-first-run", "--disable-component-update", "--disable-sync"]


def chromium_binary():
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return None


class DomIndex(html.parser.HTMLParser):
    """Every element as {"tag", "attrs", "text", "start", "end"}: text is all the text inside it,
    elements[start + 1:end] are the elements inside it."""

    VOID = {"meta", "link", "br", "img", "input", "hr", "col", "area", "base", "source", "wbr"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.elements, self.stack = [], []

    def _add(self, tag, attrs):
        e = {"tag": tag, "attrs": dict(attrs), "text": "", "start": len(self.elements)}
        e["end"] = e["start"] + 1
        self.elements.append(e)
        return e

    def handle_starttag(self, tag, attrs):
        e = self._add(tag, attrs)
        if tag not in self.VOID:
            self.stack.append(e)

    def handle_startendtag(self, tag, attrs):
        self._add(tag, attrs)

    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i]["tag"] == tag:
                for e in self.stack[i:]:
                    e["end"] = len(self.elements)
                del self.stack[i:]
                break

    def handle_data(self, data):
        for e in self.stack:
            e["text"] += data

    @staticmethod
    def _match(e, tag, attrs):
        return (tag is None or e["tag"] == tag) and \
            all(e["attrs"].get(k.replace("_", "-")) == v for k, v in attrs.items())

    def find(self, tag=None, **attrs):
        return [e for e in self.elements if self._match(e, tag, attrs)]

    def one(self, tag=None, **attrs):
        found = self.find(tag, **attrs)
        assert len(found) == 1, (tag, attrs, len(found))
        return found[0]

    def within(self, parent, tag=None, **attrs):
        return [e for e in self.elements[parent["start"] + 1:parent["end"]] if self._match(e, tag, attrs)]


def png_is_drawn(path):
    """The PNG decodes and is not one flat colour."""
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            width = struct.unpack(">I", body[:4])[0]
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw = zlib.decompress(idat)
    return width > 0 and len(set(raw[:: max(1, len(raw) // 20000)])) > 8


def run_chromium(binary, tmp_path, url, *mode):
    profile = tmp_path / ("chromium-profile-%d" % len(os.listdir(tmp_path)))
    r = subprocess.run([binary] + CHROMIUM_FLAGS + ["--user-data-dir=%s" % profile, "--virtual-time-budget=3000",
                                                    "--window-size=1280,1800"] + list(mode) + [url],
                       capture_output=True, text=True, timeout=90)
    return r


def test_status_page_in_headless_chromium(tmp_path):
    chromium = chromium_binary()
    if chromium is None:
        pytest.skip("no chromium binary (Debian package 'chromium', see scripts/install-deps.sh)")
    data = tmp_path / "postgresql.conf"
    data.write_text("shared_buffers = 1GB\n" * 2000)
    repo = init_repo(str(tmp_path / "repo"))
    state = str(tmp_path / "state")
    port = free_port()
    conf = str(tmp_path / "pgvault.conf")
    text = ("[global]\nrepo = %s\ndaemon-listen = 127.0.0.1:%d\ndaemon-state-dir = %s\nstatus-interval = 1s\n"
            "schedule-verify = @every 3s\n\n[source:files]\nschedule-file = @every 2s\nbackup-files = %s\n"
            % (repo, port, state, data))
    write_config(conf, text)
    d = DaemonProc(conf, str(tmp_path)).start(port)
    try:
        jl = os.path.join(state, "jobs.jsonl")
        wait_until(lambda: len([e for e in read_joblog(jl) if e["job"] == "files/file"]) >= 4 and
                   any(e["job"] == "verify" and e["outcome"] == "success" for e in read_joblog(jl)),
                   timeout=40, what="4 backups and a verify")
        # Freeze the picture: nothing scheduled soon, no periodic re-read.
        # (@every runs fall on multiples of the interval since the epoch: with
        # 1h a top of the hour during the test would run both jobs.)
        write_config(conf, text.replace("@every 3s", "@every 3650d").replace("@every 2s", "@every 3650d")
                     .replace("status-interval = 1s", "status-interval = 1h"))
        d.signal(signal.SIGHUP)
        wait_until(lambda: all(j["schedule"] == "@every 3650d" and not j["running"]
                               for j in d.json("/status")["daemon"]["jobs"]), timeout=20, what="the reload")

        def settled():
            a = d.json("/status")
            time.sleep(1.5)  # longer than the old status-interval the watcher may still be waiting out
            b = d.json("/status")
            return a if a == b and len(a["groups"]) == 1 and a["groups"][0]["verify"] else None
        status = wait_until(settled, timeout=20, what="a settled snapshot")
        history = d.json("/history")

        st, hdr, body = d.get("/")
        page = body.decode()
        assert st == 200 and hdr["Content-Type"].startswith("text/html")
        assert "default-src 'none'" in hdr["Content-Security-Policy"]
        for external in ('src="http', "src='http", 'href="http', "@import", "url(http"):
            assert external not in page, external

        r = run_chromium(chromium, tmp_path, d.url("/"), "--dump-dom", "--enable-logging=stderr", "--v=0")
        assert r.returncode == 0, r.stderr[-2000:]
        assert "Uncaught" not in r.stderr, r.stderr[-3000:]
        dom = DomIndex()
        dom.feed(r.stdout)
        assert dom.one("body")["attrs"].get("data-rendered") == "true", "the page's script did not finish"
        assert d.json("/status") == status, "the snapshot moved while the page loaded"

        # Header figures.
        assert dom.one(id="overall")["text"].strip() == status["status"] == "OK"
        assert dom.one(id="summary")["text"].strip() == status["summary"]
        assert dom.one(id="repository")["text"].strip() == status["repository"] == repo
        assert dom.one(id="asof")["attrs"]["data-value"] == status["time"]

        # The group's figures.
        g = status["groups"][0]
        row = dom.one("tr", data_group="files/file")
        fields = {e["attrs"]["data-field"]: e for e in dom.within(row) if "data-field" in e["attrs"]}
        assert fields["backups"]["attrs"]["data-value"] == str(g["backups"])
        assert fields["newest"]["attrs"]["data-value"] == g["newest"]["id"]
        assert g["newest"]["id"] in fields["newest"]["text"]
        assert fields["age_seconds"]["attrs"]["data-value"] == str(g["newest"]["age_seconds"])
        assert fields["verify"]["attrs"]["data-value"] == ("ok" if g["verify"]["ok"] else "failed")
        assert fields["drill"]["attrs"]["data-value"] == "none" and g["drill"] is None
        assert fields["status"]["text"].strip() == g["status"]

        # Charts: drawn, one mark or point per backup.
        ours = [b for b in history if b["source"] == "files"]
        assert len(ours) == g["backups"] >= 4
        timeline = dom.one("svg", data_chart="timeline", data_source="files")
        assert timeline["attrs"]["data-points"] == str(len(ours))
        assert len(dom.within(timeline, "rect", **{"class": "mark"})) == len(ours)
        size = dom.one("svg", data_chart="size", data_source="files")
        assert size["attrs"]["data-points"] == str(3 * len(ours))
        points = dom.within(size, "circle", **{"class": "point"})
        assert len(points) == 3 * len(ours)
        assert sorted(float(p["attrs"]["data-value"]) for p in points if p["attrs"]["data-series"] == "logical") == \
            sorted(float(b["size"]) for b in ours)
        assert sorted(float(p["attrs"]["data-value"]) for p in points if p["attrs"]["data-series"] == "stored") == \
            sorted(float(b["stored"]) for b in ours)
        assert {p["attrs"]["data-series"] for p in dom.within(size, "path", **{"class": "series"})} == \
            {"logical", "stored", "new"}
        duration = dom.one("svg", data_chart="duration", data_source="files")
        assert duration["attrs"]["data-points"] == str(len(ours))
        assert dom.within(duration, "path", **{"class": "series"})

        # Recoverable window, alerts, jobs, repository.
        win = dom.one(data_field="recoverable_window")
        assert win["attrs"]["data-from"] == min(b["start_time"] for b in ours)
        problems = [e for e in dom.find("li") if "data-level" in e["attrs"]]
        if status["problems"]:
            assert len(problems) == len(status["problems"])
        else:
            assert [p["attrs"]["data-level"] for p in problems] == ["none"]
        for job in status["daemon"]["jobs"]:
            jr = dom.one("tr", data_job=job["name"])
            jf = {e["attrs"]["data-field"]: e["text"].strip() for e in dom.within(jr) if "data-field" in e["attrs"]}
            assert jf["runs_success"] == str(job["runs_success"])
            assert jf["runs_failure"] == str(job["runs_failure"])
            assert jf["outcome"] == job["last"]["outcome"]
        rs = status["repository_stats"]
        assert dom.one(data_field="repo_backups")["attrs"]["data-value"] == str(rs["backups"])
        assert dom.one(data_field="repo_stored_bytes")["attrs"]["data-value"] == str(rs["stored_bytes"])

        # The embedded data is the snapshot itself.
        embedded = dom.one("script", id="pgvault-data")["text"]
        assert json.loads(embedded) == {"status": status, "history": history}

        # And it is really drawn on screen.
        shot = tmp_path / "page.png"
        r = run_chromium(chromium, tmp_path, d.url("/"), "--screenshot=%s" % shot)
        assert r.returncode == 0 and shot.exists(), r.stderr[-2000:]
        assert png_is_drawn(str(shot))
    finally:
        assert d.stop() == 0, d.log()
