"""test_daemon.py: `pgvault daemon` end to end.

Every test starts a real daemon (daemon_helpers.DaemonProc) on a free port
with a configuration whose jobs run every second or two ("@every 2s"), into
a real repository, and judges it from the outside: the job log, the
repository (pgvault list / verify / restore), the HTTP endpoints, a
Prometheus text parser, a local webhook receiver and a local SMTP server
with STARTTLS and AUTH.  No fixed sleeps where polling works: waits have
deadlines and say what they waited for.
"""

import json
import os
import re
import signal
import ssl
import shutil
import subprocess
import tempfile
import time

import pytest

import pgcluster
from daemon_helpers import (DaemonProc, WebhookReceiver, free_port, init_repo, metric, read_joblog,
                            wait_until, write_config)
from pgvault_cli import run_pgvault, run_pgvault_json


@pytest.fixture
def daemons():
    """daemons(config, workdir, port, env=..., args=..., token=..., wait=...) starts a daemon;
    every one is stopped at the end (its log printed when it did not exit cleanly)."""
    started = []

    def start(config, workdir, port, env=None, args=(), token=None, cafile=None, wait=True):
        d = DaemonProc(config, str(workdir), env=env, args=args)
        d.token = token
        d.cafile = cafile
        started.append(d)
        return d.start(port, wait=wait)

    yield start
    for d in started:
        rc = d.stop(timeout=20)
        if rc not in (0, None):
            print("--- daemon log (exit %s) ---\n%s" % (rc, d.log()))


def config_text(repo, state, port, source="", extra_global=""):
    return ("[global]\nrepo = %s\ndaemon-listen = 127.0.0.1:%d\ndaemon-state-dir = %s\n"
            "status-interval = 1s\n%s\n%s" % (repo, port, state, extra_global, source))


def make_setup(tmp_path, source="", extra_global="", port=None):
    repo = init_repo(str(tmp_path / "repo"))
    state = str(tmp_path / "state")
    port = port or free_port()
    conf = write_config(str(tmp_path / "pgvault.conf"), config_text(repo, state, port, source, extra_global))
    return repo, state, port, conf


def start_daemon(daemons, conf, tmp_path, port, env=None, args=(), token=None, cafile=None):
    return daemons(conf, tmp_path, port, env=env, args=args, token=token, cafile=cafile)


def list_ids(repo, source=None):
    rc, doc, err = run_pgvault_json("list", "--repo", repo)
    assert rc == 0, err
    return [b["id"] for b in doc["backups"] if source is None or b.get("source") == source]


def entries_of(state, job=None, outcome=None):
    return [e for e in read_joblog(os.path.join(state, "jobs.jsonl"))
            if (job is None or e["job"] == job) and (outcome is None or e["outcome"] == outcome)]


def iso_secs(s):
    """Unix seconds of an ISO time as pgvault writes it ("...T04:05:26.001Z")."""
    from datetime import datetime
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


# ---------------------------------------------------------------------------


def test_check_validates_and_lists_jobs(tmp_path):
    repo, state, port, conf = make_setup(tmp_path, source=(
        "[source:files]\nschedule-file = @every 2s\nbackup-files = /etc/hostname\n"
        "schedule-expire = 0 3 1-7 * sun\ntime-zone = Europe/Berlin\n"))
    r = run_pgvault("daemon", "--check", "--config", conf)
    assert r.rc == 0, r.err
    assert "files/file" in r.out and "files/expire" in r.out
    rc, jobs, err = run_pgvault_json("daemon", "--check", "--config", conf)
    assert rc == 0, err
    by = {j["name"]: j for j in jobs}
    assert by["files/expire"]["schedule"] == "0 3 1-7 * sun"
    assert by["files/expire"]["zone"] == "Europe/Berlin"
    # first Sundays, 03:00 Berlin time
    for t in by["files/expire"]["next_runs"]:
        assert re.match(r"\d{4}-\d\d-0[1-7]T03:00:00\+0[12]:00$", t), t
    assert len(by["files/file"]["next_runs"]) == 3

    # A bad schedule: refused with the file and line, by --check and by the daemon itself.
    lines = open(conf).read().splitlines()
    n = next(i for i, l in enumerate(lines) if l.startswith("schedule-file")) + 1
    lines[n - 1] = "schedule-file = 61 * * * *"
    write_config(conf, "\n".join(lines) + "\n")
    want = "%s:%d: invalid schedule '61 * * * *': minute 61 is out of range (0-59)" % (conf, n)
    r = run_pgvault("daemon", "--check", "--config", conf)
    assert r.rc == 2 and want in r.err, r.err
    r = run_pgvault("daemon", "--config", conf, timeout=20)
    assert r.rc == 2 and want in r.err, r.err


def test_file_backups_and_expire_on_schedule(tmp_path, daemons):
    data = tmp_path / "data.txt"
    data.write_text("pg_hba line\n" * 500)
    repo, state, port, conf = make_setup(tmp_path, source=(
        "[source:files]\nschedule-file = @every 2s\nbackup-files = %s\n" % data),
        extra_global="schedule-expire = @every 5s\nkeep-within = 1s\nkeep-min = 1\n")
    d = start_daemon(daemons, conf, tmp_path, port)

    def expired_some():
        return any(re.match(r"expired [1-9]", n) for e in entries_of(state, "expire", "success") for n in e["notes"])
    wait_until(lambda: len(entries_of(state, "files/file", "success")) >= 4 and expired_some(), timeout=40,
               what="4 file backups and an expire that expired some")
    h = d.json("/health")
    assert h["status"] == "ok" and h["pid"] == d.proc.pid

    # Quiet moment: no job running, and the watcher has read the repository since the last run.
    def quiet():
        st = d.json("/status")
        jobs = st["daemon"]["jobs"]
        if any(j["running"] for j in jobs):
            return None
        last_end = max(iso_secs(j["last"]["end"]) for j in jobs if j["last"])
        if iso_secs(st["daemon"].get("watched", "1970-01-01T00:00:00Z")) < last_end:
            return None
        return st
    # Jobs keep running every 2 s: metrics, job log, listing and /status are
    # compared only when no job started or ended while they were read (else
    # the next quiet moment is tried).
    def jobs_of(st):
        return [(j["name"], j["running"], j["last"]) for j in st["daemon"]["jobs"]]

    def settled():
        st = quiet()
        if st is None:
            return None
        m = d.metrics()
        files = entries_of(state, "files/file")
        rc, listing, err = run_pgvault_json("list", "--repo", repo)
        assert rc == 0, err
        again = d.json("/status")
        if jobs_of(again) != jobs_of(st) or any(j["running"] for j in again["daemon"]["jobs"]):
            return None
        return st, m, files, listing
    st, m, files, listing = wait_until(settled, timeout=30, interval=0.05,
                                       what="a moment without running jobs")
    ok = [e for e in files if e["outcome"] == "success"]
    ids = [b["id"] for b in listing["backups"] if b.get("source") == "files"]

    # Metrics agree with what happened (job log, repository).
    lab = dict(job="files/file", source="files", kind="file")
    assert metric(m, "pgvault_job_runs_total", outcome="success", **lab) == len(ok)
    assert metric(m, "pgvault_job_runs_total", outcome="failure", **lab) == 0
    assert metric(m, "pgvault_job_running", **lab) == 0
    assert metric(m, "pgvault_job_skipped_total", **lab) == 0
    assert metric(m, "pgvault_backup_last_size_bytes", source="files", kind="file") == data.stat().st_size
    newest = max((b for b in listing["backups"] if b["source"] == "files"), key=lambda b: b["stop_time"])
    assert abs(metric(m, "pgvault_backup_last_success_timestamp_seconds", source="files", kind="file") -
               iso_secs(newest["stop_time"])) < 1.01
    assert metric(m, "pgvault_backups", source="files", kind="file", database="") == len(ids)
    assert metric(m, "pgvault_repository_stored_bytes", repository=repo) > 0
    assert metric(m, "pgvault_repository_dedup_ratio", repository=repo) > 1
    assert metric(m, "pgvault_status", repository=repo) == 0
    assert metric(m, "pgvault_config_last_reload_success") == 1

    # /status is "pgvault status --json" plus the daemon's part.
    group = next(g for g in st["groups"] if g["source"] == "files")
    assert group["status"] == "OK" and group["backups"] == len(ids)
    assert {j["name"] for j in st["daemon"]["jobs"]} == {"files/file", "expire"}
    rc, cli_status, _ = run_pgvault_json("status", "--config", conf)
    assert set(cli_status) <= set(st)

    # The counters move with the next run.
    before = metric(m, "pgvault_job_runs_total", outcome="success", **lab)
    wait_until(lambda: metric(d.metrics(), "pgvault_job_runs_total", outcome="success", **lab) > before,
               timeout=10, what="the success counter to grow")

    # One JSON line per job, with the runbook template's fields; on time; never two at once.
    files = entries_of(state, "files/file")
    for e in files:
        assert e["type"] == "file" and e["source"] == "files" and e["trigger"] == "scheduled"
        assert e["outcome"] == "success" and e["location"] == repo and e["verified"] is None
        assert e["size"] == data.stat().st_size and e["stored_bytes"] > 0 and e["backup_id"]
        assert e["duration_ms"] == round((iso_secs(e["end"]) - iso_secs(e["date"])) * 1000)
        assert iso_secs(e["date"]) % 2 < 1.5, "ran late: %s" % e["date"]
    spans = sorted((iso_secs(e["date"]), iso_secs(e["end"])) for e in files)
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:])), spans
    expires = entries_of(state, "expire")
    assert expires and all(e["outcome"] == "success" and e["type"] == "expire" and e["source"] is None
                           for e in expires)
    assert any("expired" in n for e in expires for n in e["notes"])
    # Expire ran: fewer backups remain than were made.
    assert len(list_ids(repo, "files")) < len([e for e in files if e["outcome"] == "success"])

    # The same log is in the repository ("pgvault log").  Jobs still run: an
    # entry just written locally may reach the repository a moment later.
    def repo_has_local_log():
        local = {(e["job"], e["date"]) for e in read_joblog(os.path.join(state, "jobs.jsonl"))}
        rc, repo_log, err = run_pgvault_json("log", "--config", conf, "-n", "0")
        assert rc == 0, err
        return not local - {(e["job"], e["date"]) for e in repo_log}
    wait_until(repo_has_local_log, timeout=20, what="the local job log in the repository")
    r = run_pgvault("log", "--config", conf, "--kind", "file", "-n", "3")
    assert r.rc == 0 and len(r.out.strip().splitlines()) == 4 and "files/file" in r.out, r.out

    # The newest backup restores to the same bytes.
    assert d.stop() == 0
    assert "daemon stopped" in d.log()
    out = tmp_path / "restored"
    r = run_pgvault("restore", "latest", "--repo", repo, "--target-dir", out)
    assert r.rc == 0, r.err
    assert (out / str(data).lstrip("/")).read_bytes() == data.read_bytes()


def test_bearer_token_is_required(tmp_path, daemons):
    token = "t0k3n-" + os.urandom(8).hex()
    (tmp_path / "token").write_text(token + "\n")
    repo, state, port, conf = make_setup(tmp_path, extra_global="daemon-token-file = %s\n" % (tmp_path / "token"))
    d = start_daemon(daemons, conf, tmp_path, port, token=token)
    for path in ("/metrics", "/status", "/history", "/health", "/"):
        st, hdr, _ = d.get(path, token="")
        assert st == 401 and hdr.get("WWW-Authenticate", "").startswith("Bearer"), (path, st)
        st, _, _ = d.get(path, token="wrong" + token)
        assert st == 401, path
        st, _, _ = d.get(path)
        assert st == 200, path
    st, hdr, body = d.get("/?token=" + token, token="")
    assert st == 200 and b"<html" in body and "default-src 'none'" in hdr["Content-Security-Policy"]
    st, _, _ = d.get("/?token=nope", token="")
    assert st == 401
    st, _, _ = d.get("/metrics?token=" + token, token="")
    assert st == 401, "the query token is for the page only"
    st, _, _ = d.get("/nothing-here")
    assert st == 404
    assert token not in d.log()
    r = run_pgvault("config", "--config", conf)
    assert token not in r.out


def test_sighup_with_bad_config_keeps_the_old_one(tmp_path, daemons):
    data = tmp_path / "data.txt"
    data.write_text("x\n")
    src = "[source:files]\nschedule-file = @every 2s\nbackup-files = %s\n" % data
    repo, state, port, conf = make_setup(tmp_path, source=src)
    d = start_daemon(daemons, conf, tmp_path, port)
    wait_until(lambda: entries_of(state, "files/file", "success"), timeout=15, what="a first backup")

    good = open(conf).read()
    bad = good.replace("schedule-file = @every 2s", "schedule-file = 61 * * * *")
    write_config(conf, bad)
    line = bad.splitlines().index("schedule-file = 61 * * * *") + 1
    d.signal(signal.SIGHUP)
    want = "%s:%d: invalid schedule '61 * * * *': minute 61 is out of range (0-59)" % (conf, line)
    wait_until(lambda: "configuration reload refused" in d.log(), timeout=10, what="the refusal")
    assert want in d.log()
    st = d.json("/status")
    assert want in st["daemon"]["reload_error"]
    assert metric(d.metrics(), "pgvault_config_last_reload_success") == 0
    n = len(entries_of(state, "files/file", "success"))
    wait_until(lambda: len(entries_of(state, "files/file", "success")) >= n + 2, timeout=15,
               what="runs on the old schedule")

    # A file that does not even parse: refused with its line too.
    write_config(conf, good + "[nonsense\n")
    d.signal(signal.SIGHUP)
    wait_until(lambda: d.log().count("configuration reload refused") >= 2, timeout=10, what="the second refusal")
    assert re.search(re.escape(conf) + r":\d+: ", d.json("/status")["daemon"]["reload_error"])

    # A good one is taken, and the refusal is forgotten.
    write_config(conf, good.replace("@every 2s", "@every 1h"))
    d.signal(signal.SIGHUP)
    wait_until(lambda: d.json("/status")["daemon"]["reload_error"] is None, timeout=10, what="the reload")
    job = next(j for j in d.json("/status")["daemon"]["jobs"] if j["name"] == "files/file")
    assert job["schedule"] == "@every 1h"
    assert metric(d.metrics(), "pgvault_config_last_reload_success") == 1
    assert d.proc.poll() is None


def test_sigterm_aborts_running_backup_cleanly(tmp_path, daemons):
    # 2 GiB of zeros, sparse: no disk used, yet every run reads, chunks and hashes it all
    # (seconds of work each time, deduplicated to a few bytes in the repository).
    big = tmp_path / "big.bin"
    with open(big, "wb") as f:
        f.truncate(2 << 30)
    repo, state, port, conf = make_setup(tmp_path, source=(
        "[source:files]\nschedule-file = @every 1s\nbackup-files = %s\n" % big),
        extra_global="daemon-grace-period = 120s\n")
    d = start_daemon(daemons, conf, tmp_path, port)

    def busy_and_skipping():
        j = d.json("/status")["daemon"]["jobs"][0]
        return j["running"] and j["runs_skipped"] >= 1
    wait_until(busy_and_skipping, timeout=30, interval=0.05,
               what="a long run that made a later one skip (no overlapping runs)")
    assert "is skipped: the previous run" in d.log()
    t0 = time.monotonic()
    d.signal(signal.SIGTERM)
    rc = d.proc.wait(timeout=110)
    took = time.monotonic() - t0
    assert rc == 0, d.log()
    # the run was signalled, not waited out: well under the 120 s grace
    # period, with room for a sanitizer build on a loaded machine
    assert took < 60, "stopping took %.1fs" % took
    log = d.log()
    assert "stopping: 1 running job signalled" in log and "daemon stopped" in log

    entries = entries_of(state, "files/file")
    aborted = [e for e in entries if e["outcome"] == "aborted"]
    assert len(aborted) == 1 and aborted[0]["backup_id"] is None
    assert any("shutdown" in n for n in aborted[0]["notes"])
    # A backup exists if and only if its manifest does: exactly the successful runs' backups.
    assert sorted(list_ids(repo)) == sorted(e["backup_id"] for e in entries if e["outcome"] == "success")
    r = run_pgvault("verify", "--repo", repo, timeout=120)
    assert r.rc == 0, r.out + r.err


def test_webhook_failure_then_recovery_rate_limited(tmp_path, daemons):
    hook = WebhookReceiver()
    try:
        data = tmp_path / "pg_hba.conf"
        repo, state, port, conf = make_setup(tmp_path, source=(
            "[source:files]\nschedule-file = @every 2s\nbackup-files = %s\n" % data),
            extra_global="notify-webhook = %s\nnotify-interval = 1h\n" % hook.url())
        d = start_daemon(daemons, conf, tmp_path, port)
        wait_until(lambda: len(entries_of(state, "files/file", "failure")) >= 3, timeout=20,
                   what="three failed runs")
        wait_until(lambda: metric(d.metrics(), "pgvault_notifications_total", result="suppressed") >= 2,
                   timeout=10, what="held-back notifications")
        fails = hook.events("failure", "job:files/file")
        assert len(fails) == 1, fails
        f = fails[0]
        assert "FAILED" in f["subject"] and "files/file" in f["subject"]
        assert "cannot open '%s'" % data in f["text"]
        assert f["details"]["outcome"] == "failure" and f["details"]["job"] == "files/file"
        m = d.metrics()
        assert metric(m, "pgvault_job_consecutive_failures", job="files/file", source="files", kind="file") >= 3
        # The status alert: a configured source without any backup.
        wait_until(lambda: hook.events("alert"), timeout=10, what="the alert")
        alert = hook.events("alert")[0]
        assert "has no backup" in alert["text"] and alert["key"].startswith("problem:")

        data.write_text("host all all 127.0.0.1/32 trust\n")
        wait_until(lambda: hook.events("recovery", "job:files/file"), timeout=15, what="the recovery")
        rec = hook.events("recovery", "job:files/file")[0]
        assert "recovered" in rec["subject"] and rec["details"]["outcome"] == "success"
        wait_until(lambda: hook.events("recovery", alert["key"]), timeout=15, what="the alert's recovery")
        n = len(entries_of(state, "files/file", "success"))
        wait_until(lambda: len(entries_of(state, "files/file", "success")) >= n + 2, timeout=15,
                   what="more successful runs")
        assert len(hook.events("recovery", "job:files/file")) == 1
        assert len(hook.events("failure")) == 1
        assert hook.events("success") == []
        assert all(b["content_type"] == "application/json" for b in hook.bodies)
    finally:
        hook.close()


def _self_signed(tmp_path):
    cert, key = str(tmp_path / "cert.pem"), str(tmp_path / "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    return cert, key


def test_email_over_smtp_starttls_auth_and_slack(tmp_path, daemons):
    aiosmtpd = pytest.importorskip("aiosmtpd.controller", reason="python3-aiosmtpd is not installed")
    from aiosmtpd.smtp import AuthResult, LoginPassword

    password = "pw-" + os.urandom(6).hex()
    cert, key = _self_signed(tmp_path)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    got = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            got.append({"from": envelope.mail_from, "to": envelope.rcpt_tos,
                        "data": envelope.content.decode("utf-8", "replace"),
                        "tls": session.ssl is not None, "auth": session.authenticated,
                        "login": session.login_data})
            return "250 OK"

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login == b"alice" and
              auth_data.password == password.encode())
        return AuthResult(success=ok, handled=False)

    smtp_port = free_port()
    ctl = aiosmtpd.Controller(Handler(), hostname="127.0.0.1", port=smtp_port, tls_context=ctx,
                              require_starttls=True, auth_required=True, authenticator=authenticator)
    ctl.start()
    slack = WebhookReceiver()
    try:
        data = tmp_path / "postgresql.conf"
        repo, state, port, conf = make_setup(tmp_path, source=(
            "[source:files]\nschedule-file = @every 2s\nbackup-files = %s\n" % data), extra_global=(
            "notify-on = failure, recovery\nnotify-email-to = ops@example.com, dba@example.com\n"
            "notify-email-from = pgvault@example.com\nnotify-smtp-url = smtp://127.0.0.1:%d\n"
            "notify-smtp-user = alice\nnotify-ca-file = %s\n"
            "notify-webhook = %s\nnotify-webhook-format = slack\n" % (smtp_port, cert, slack.url("/services/T0/B0/x"))))
        d = start_daemon(daemons, conf, tmp_path, port, env={"PGVAULT_SMTP_PASSWORD": password})
        wait_until(lambda: got, timeout=30, what="a mail")
        mail = got[0]
        assert mail["tls"] and mail["auth"], mail
        assert mail["from"] == "pgvault@example.com"
        assert sorted(mail["to"]) == ["dba@example.com", "ops@example.com"]
        text = mail["data"]
        assert re.search(r"^Subject: pgvault: files/file FAILED\r?$", text, re.M), text
        assert re.search(r"^Date: \w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d \+0000\r?$", text, re.M)
        assert re.search(r"^Message-ID: <[^>]+@[^>]+>\r?$", text, re.M)
        assert "To: ops@example.com, dba@example.com" in text
        assert "cannot open '%s'" % data in text
        wait_until(lambda: slack.bodies, timeout=10, what="the Slack payload")
        s = slack.bodies[0]
        assert s["path"] == "/services/T0/B0/x" and set(s["json"]) == {"text", "username"}
        assert s["json"]["text"].startswith(":x: *pgvault: files/file FAILED*")

        data.write_text("shared_buffers = 128MB\n")
        wait_until(lambda: any("recovered" in m["data"] for m in got), timeout=20, what="the recovery mail")
        assert len([m for m in got if "FAILED" in m["data"]]) == 1
        wait_until(lambda: any(b["json"]["text"].startswith(":white_check_mark:") for b in slack.bodies),
                   timeout=10, what="the Slack recovery")
        assert d.stop() == 0
        assert password not in d.log()
    finally:
        ctl.stop()
        slack.close()


def test_secrets_never_logged(tmp_path, daemons):
    hook_secret = "hooks/T000/B000/" + os.urandom(8).hex()
    password = "smtp-" + os.urandom(8).hex()
    data = tmp_path / "missing.conf"
    repo, state, port, conf = make_setup(tmp_path, source=(
        "[source:files]\nschedule-file = @every 2s\nbackup-files = %s\n" % data), extra_global=(
        "notify-webhook = http://127.0.0.1:%d/%s\nnotify-email-to = ops@example.com\n"
        "notify-smtp-url = smtp://127.0.0.1:%d\nnotify-smtp-user = bob\nnotify-smtp-password = %s\n"
        % (free_port(), hook_secret, free_port(), password)))
    d = start_daemon(daemons, conf, tmp_path, port, args=["--log-level", "debug"])
    wait_until(lambda: "not delivered" in d.log() and "not mailed" in d.log(), timeout=30,
               what="failed deliveries to be logged")
    log = d.log()
    assert hook_secret not in log and password not in log
    assert hook_secret not in json.dumps(d.json("/status"))
    r = run_pgvault("config", "--config", conf)
    assert hook_secret not in r.out and password not in r.out and "********" in r.out


def test_catch_up_runs_a_missed_run_once(tmp_path, daemons):
    data = tmp_path / "data.txt"
    data.write_text("catch me\n")
    # @every runs fall on multiples of the interval since the epoch: with 1h,
    # a top of the hour during the test would add a scheduled run.  Ten years
    # (boundaries 2019-12-20 and 2029-12-18) leave one missed run and none due.
    every = 3650 * 86400
    src = ("[source:files]\nschedule-file = @every 3650d\nbackup-files = %s\ncatch-up = on\n"
           % data)
    repo, state, port, conf = make_setup(tmp_path, source=src)
    os.makedirs(state)
    boundary = int(time.time()) // every * every
    assert int(time.time()) + 3600 < boundary + every
    last_due = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(boundary - every))
    with open(os.path.join(state, "daemon-state.json"), "w") as f:
        json.dump({"format": 1, "jobs": {"files/file": {"last_due": last_due}}}, f)
    d = start_daemon(daemons, conf, tmp_path, port)
    wait_until(lambda: entries_of(state, "files/file", "success"), timeout=15, what="the catch-up run")
    time.sleep(2.5)
    runs = entries_of(state, "files/file")
    assert len(runs) == 1 and runs[0]["trigger"] == "catch-up", runs
    assert "was missed while the daemon was down" in d.log()
    st = json.load(open(os.path.join(state, "daemon-state.json")))
    assert st["jobs"]["files/file"]["last_due"] > last_due
    assert d.stop() == 0

    # With catch-up off, the same state does not make it run.
    write_config(conf, open(conf).read().replace("catch-up = on", "catch-up = off"))
    with open(os.path.join(state, "daemon-state.json"), "w") as f:
        json.dump({"format": 1, "jobs": {"files/file": {"last_due": last_due}}}, f)
    start_daemon(daemons, conf, tmp_path, port)
    time.sleep(2.5)
    assert len(entries_of(state, "files/file")) == 1


def test_logical_backups_prechecks_verify_and_drill_failure(pg, tmp_path, daemons):
    """Logical backups of a real server: pre-backup checks carried into the job log,
    each backup verified after it is made, and a drill that fails (the fault hook
    deletes a row in the scratch copy) notified as a drill failure."""
    pg.execute("CREATE DATABASE shop")
    pg.execute("CREATE TABLE t (id int PRIMARY KEY, v text);"
               "INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 2000) g;", db="shop")
    hook = WebhookReceiver()
    drills = None
    try:
        src = ("[source:shop]\nconninfo = host=127.0.0.1 port=%d user=postgres dbname=shop\n"
               "bindir = %s\nschedule-logical = @every 3s\nverify-after-backup = on\n"
               % (pg.port, pg.bindir))
        # Short: the scratch cluster's socket path must fit in sun_path.
        drills = tempfile.mkdtemp(prefix="pvd-", dir="/tmp")
        pgcluster._chown_tree(drills, pg.user)
        repo, state, port, conf = make_setup(tmp_path, source=src, extra_global=(
            "notify-webhook = %s\nlong-transaction-threshold = 1s\ndrill-dir = %s\n"
            % (hook.url(), drills)))
        # A transaction left open on the source: the pre-backup checks must say so.
        import psycopg
        idle = psycopg.connect(host="127.0.0.1", port=pg.port, user="postgres", dbname="shop")
        idle.execute("SELECT count(*) FROM t")
        env = {"PATH": pg.bindir + os.pathsep + os.environ.get("PATH", ""),
               "PGVAULT_DRILL_FAULT_SQL": "DELETE FROM t WHERE id = 7"}
        time.sleep(1.5)  # the transaction is older than the threshold before any backup starts
        d = start_daemon(daemons, conf, tmp_path, port, env=env)
        e = wait_until(lambda: entries_of(state, "shop/logical", "success"), timeout=40,
                       what="a logical backup")[0]
        idle.close()
        assert e["type"] == "logical" and e["source"] == "shop" and e["backup_id"]
        assert e["verified"] is True, e
        assert e["size"] > 0 and e["stored_bytes"] > 0
        assert any(n.startswith("pre-check long_transactions warning: 1 transaction(s) open longer than 1s") for n in e["notes"]), e["notes"]

        # Now a drill of the latest backup, with the fault hook: it must fail and be notified.
        write_config(conf, open(conf).read().replace("verify-after-backup = on",
                                                     "verify-after-backup = on\nschedule-drill = @every 2s"))
        d.signal(signal.SIGHUP)
        dr = wait_until(lambda: entries_of(state, "shop/drill"), timeout=60, what="a drill")[0]
        assert dr["outcome"] == "failure" and dr["exit_status"] == 3, (dr, d.log()[-3000:])
        assert any(n.startswith("check tables failed") for n in dr["notes"]), dr["notes"]
        ev = wait_until(lambda: hook.events("drill", "job:shop/drill"), timeout=10, what="the drill notification")
        assert "shop/drill FAILED" in ev[0]["subject"]
        assert hook.events("failure", "job:shop/drill") == []
        # The backups restore: the newest one, into a new database.
        r = run_pgvault("restore", "latest", "--repo", repo, "--target-db", "shop_restored",
                        "-h", "127.0.0.1", "-p", str(pg.port), "-U", "postgres", "-d", "postgres",
                        env={"PATH": env["PATH"]}, timeout=120)
        assert r.rc == 0, r.err
        assert pg.scalar("SELECT count(*) FROM t", db="shop_restored") == 2000
    finally:
        hook.close()
        if drills:
            shutil.rmtree(drills, ignore_errors=True)


def test_cli_help_and_bad_options(tmp_path):
    for cmd in ("daemon", "log"):
        r = run_pgvault(cmd, "--help")
        assert r.rc == 0 and r.out.startswith("pgvault %s: " % cmd) and "Common options:" in r.out
        r = run_pgvault(cmd, "--bogus")
        assert r.rc == 2 and "pgvault %s: error: unknown option '--bogus'" % cmd in r.err
    r = run_pgvault("daemon", "--source", "x")
    assert r.rc == 2 and "--source does not apply" in r.err
    r = run_pgvault("daemon", "extra")
    assert r.rc == 2 and "unexpected argument 'extra'" in r.err
    r = run_pgvault("log", "--outcome", "maybe")
    assert r.rc == 2 and "--outcome must be success, failure or aborted, not 'maybe'" in r.err
    r = run_pgvault("log", "--kind", "nightly")
    assert r.rc == 2 and "unknown kind 'nightly'" in r.err
    r = run_pgvault("log", "--since", "someday")
    assert r.rc == 2 and "invalid time 'someday'" in r.err
    r = run_pgvault("log", "--file", str(tmp_path / "none.jsonl"))
    assert r.rc == 1 and "cannot open job log '%s'" % (tmp_path / "none.jsonl") in r.err
    # No configuration file: the daemon says what it needs.
    r = run_pgvault("daemon", timeout=20)
    assert r.rc == 2 and "the daemon needs a configuration file" in r.err


def test_https_endpoints(tmp_path, daemons):
    cert, key = _self_signed(tmp_path)
    repo, state, port, conf = make_setup(tmp_path, extra_global="daemon-tls-cert = %s\ndaemon-tls-key = %s\n"
                                         % (cert, key))
    d = start_daemon(daemons, conf, tmp_path, port, cafile=cert)
    st, _, body = d.get("/health")
    assert st == 200 and json.loads(body)["status"] == "ok"
    assert "endpoints on https 127.0.0.1:%d" % port in d.log()
    # Plain HTTP gets no answer it could use.
    plain = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5",
                            "http://127.0.0.1:%d/health" % port], capture_output=True, text=True)
    assert plain.stdout.strip() != "200"
    # Only one of the pair: refused at start-up.
    write_config(conf, open(conf).read().replace("daemon-tls-key = %s\n" % key, ""))
    r = run_pgvault("daemon", "--config", conf, timeout=20)
    assert r.rc == 2 and "daemon-tls-cert and daemon-tls-key go together" in r.err


def test_scheduled_verify_is_incremental_with_a_verify_period(tmp_path, daemons):
    """With verify-period set, the daemon's scheduled verify runs 'verify --new': the first run
    reads every pack (none was read yet), the next ones read none until something is new."""
    data = tmp_path / "data.bin"
    data.write_bytes(os.urandom(2 * 1024 * 1024))
    repo, state, port, conf = make_setup(tmp_path, extra_global=(
        "schedule-verify = @every 2s\nverify-period = 30d\n"))
    r = run_pgvault("backup", "--repo", repo, "--file", str(data))
    assert r.rc == 0, r.err
    start_daemon(daemons, conf, tmp_path, port)
    runs = wait_until(lambda: (lambda v: v if len(v) >= 2 else None)(entries_of(state, "verify", "success")),
                      timeout=40, what="two scheduled verifies")
    read = [int(re.search(r"(\d+) packs read", " ".join(e["notes"])).group(1)) for e in runs[:2]]
    assert read[0] >= 1 and read[1] == 0, [e["notes"] for e in runs[:2]]
