"""test_status.py: `pgvault status [--check] [--json]` (issue 7).

Spec under test: per source, kind and database the newest backup's age, the
last verify and the last drill with their outcomes, each source's WAL
archive lag; judged against backup-age-warning/-critical,
verify-age-warning, drill-age-warning, archive-lag-warning/-critical;
--check prints one line "PGVAULT <LEVEL> - <summary>" and exits 0 OK,
1 WARNING, 2 CRITICAL, 3 UNKNOWN, as monitoring plugins do.

Scenarios: fresh backups (OK), a stale backup (WARNING, then CRITICAL), a
failed drill (CRITICAL) and a passing one after it (OK again), a drill that
only exceeded its RTO (WARNING), damage found by verify (CRITICAL), a
stopped WAL archive (WARNING/CRITICAL), a configured source without
backups (CRITICAL), an unreadable repository (UNKNOWN).
"""

import glob
import os
import shutil
import time

import pytest

from pgvault_cli import conn_args, run_pgvault, run_pgvault_json, tools_env


def pv(cluster, repo, *args, env=None, json_out=False, timeout=180):
    e = dict(tools_env(cluster))
    e.update(env or {})
    base = list(args) + ["--repo", repo]
    if json_out:
        return run_pgvault_json(*base, env=e, timeout=timeout)
    return run_pgvault(*base, env=e, timeout=timeout)


def conf(tmp_path, text, name="pgvault.conf"):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def check(env, config, repo=None):
    rc, out, err = pv(env["cluster"], repo or env["repo"], "status", "--check", "--config", config)
    assert out.count("\n") == 1, (out, err)
    return rc, out.strip()


@pytest.fixture(scope="module")
def env(pg_module, pgvault_bin, tmp_path_factory):
    c = pg_module
    c.execute("CREATE DATABASE app")
    c.execute("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 100)", db="app")
    base = tmp_path_factory.mktemp("status")
    repo = str(base / "repo")
    assert run_pgvault("init", "--repo", repo).rc == 0
    src = base / "source.conf"
    src.write_text("[source:prod]\n")
    rc, doc, err = pv(c, repo, "backup", "--logical", "--config", str(src), "--source", "prod",
                      *conn_args(c, "app"), json_out=True)
    assert rc == 0, err
    return {"cluster": c, "repo": repo, "backup": doc["id"], "drill_dir": c.mkdir("drills")}


def drill(env, *args, fault=None):
    e = {"PGVAULT_DRILL_DIR": env["drill_dir"]}
    if fault:
        e["PGVAULT_DRILL_FAULT_SQL"] = fault
    return pv(env["cluster"], env["repo"], "drill", env["backup"], *args, env=e)


def test_fresh_backup_is_ok(env, tmp_path):
    rc, line = check(env, conf(tmp_path, ""))
    assert rc == 0 and line == "PGVAULT OK - 1 backup group OK"
    rc, doc, err = pv(env["cluster"], env["repo"], "status", "--config", conf(tmp_path, ""), json_out=True)
    assert rc == 0, err
    assert doc["status"] == "OK" and len(doc["groups"]) == 1
    g = doc["groups"][0]
    assert (g["source"], g["kind"], g["database"]) == ("prod", "logical", "app")
    assert g["newest"]["id"] == env["backup"] and 0 <= g["newest"]["age_seconds"] < 600
    rc, out, err = pv(env["cluster"], env["repo"], "status", "--config", conf(tmp_path, ""))
    assert rc == 0 and "prod" in out and env["backup"] in out and "status: OK" in out


def test_stale_backup(env, tmp_path):
    time.sleep(2.1)
    rc, line = check(env, conf(tmp_path, "[global]\nbackup-age-warning = 1s\n"))
    assert rc == 1, line
    assert line.startswith("PGVAULT WARNING - prod logical app: newest backup %s is " % env["backup"])
    assert line.endswith("old (warning after 1s)")
    rc, line = check(env, conf(tmp_path, "[global]\nbackup-age-warning = 1s\nbackup-age-critical = 1s\n"))
    assert rc == 2 and "(critical after 1s)" in line, line
    # a source's own thresholds win over the global ones
    rc, line = check(env, conf(tmp_path, "[global]\nbackup-age-critical = 1s\n"
                               "[source:prod]\nbackup-age-critical = 1h\n"))
    assert rc == 0, line


def test_drills_decide(env, tmp_path):
    cfg = conf(tmp_path, "[global]\ndrill-age-warning = 1h\n")
    rc, line = check(env, cfg)
    assert rc == 1 and line == "PGVAULT WARNING - prod logical app: never drilled", line

    r = drill(env, fault="DELETE FROM t WHERE id = 1")
    assert r.rc == 3, r
    rc, line = check(env, cfg)
    assert rc == 2, line
    assert line.startswith("PGVAULT CRITICAL - prod logical app: the last drill (")
    assert line.endswith("backup %s) failed" % env["backup"])
    rc, doc, err = pv(env["cluster"], env["repo"], "status", "--config", cfg, json_out=True)
    assert doc["groups"][0]["drill"]["ok"] is False and doc["groups"][0]["drill"]["integrity_ok"] is False

    r = drill(env, "--rto", "1s")
    assert r.rc == 1, r
    rc, line = check(env, cfg)
    assert rc == 1 and "exceeded the RTO" in line, line

    r = drill(env)
    assert r.rc == 0, r
    rc, line = check(env, cfg)
    assert rc == 0, line
    rc, out, err = pv(env["cluster"], env["repo"], "status", "--config", cfg)
    assert "passed" in out


def test_verify_damage_is_critical(env, tmp_path):
    c = env["cluster"]
    repo = str(tmp_path / "repo")
    shutil.copytree(env["repo"], repo)
    cfg = conf(tmp_path, "[global]\nverify-age-warning = 1h\n")
    rc, line = check(env, cfg, repo)
    assert rc == 1 and "never verified" in line, line
    assert pv(c, repo, "verify").rc == 0
    rc, line = check(env, cfg, repo)
    assert rc == 0, line
    for p in glob.glob(os.path.join(repo, "data", "*", "*")):
        with open(p, "r+b") as f:
            f.seek(10)
            b = f.read(1)
            f.seek(10)
            f.write(bytes([b[0] ^ 0xFF]))
    assert pv(c, repo, "verify").rc == 3
    rc, line = check(env, cfg, repo)
    assert rc == 2, line
    assert "the last verify (" in line and "found backup %s damaged" % env["backup"] in line


def test_stopped_archive(env, tmp_path):
    c = env["cluster"]
    seg = c.scalar("SELECT pg_walfile_name(pg_current_wal_lsn())")
    c.execute("CREATE TEMP TABLE IF NOT EXISTS _switch(x int); SELECT pg_switch_wal()")
    r = pv(c, env["repo"], "archive-push", "--source", "prod", os.path.join(c.datadir, "pg_wal", seg))
    assert r.rc == 0, r
    rc, doc, err = pv(c, env["repo"], "status", "--config", conf(tmp_path, ""), json_out=True)
    assert rc == 0, err
    arch = {a["source"]: a for a in doc["archives"]}
    assert arch["prod"]["newest_segment"] == seg and arch["prod"]["status"] == "OK"
    time.sleep(2.1)
    rc, line = check(env, conf(tmp_path, "[global]\narchive-lag-warning = 1s\n"))
    assert rc == 1, line
    assert "prod WAL archive: newest segment %s archived" % seg in line and "(warning after 1s)" in line
    rc, line = check(env, conf(tmp_path, "[global]\narchive-lag-warning = 1s\narchive-lag-critical = 1s\n"))
    assert rc == 2 and "(critical after 1s)" in line, line


def test_source_without_backups_and_unknown(env, tmp_path):
    rc, line = check(env, conf(tmp_path, "[source:prod]\n[source:forgotten]\n"))
    assert rc == 2 and line == "PGVAULT CRITICAL - source 'forgotten' has no backup in this repository", line
    # --source narrows the view
    rc, out, err = pv(env["cluster"], env["repo"], "status", "--check", "--source", "prod",
                      "--config", conf(tmp_path, "[source:prod]\n[source:forgotten]\n"))
    assert rc == 0, (out, err)
    rc, out, err = pv(env["cluster"], str(tmp_path / "nothing-here"), "status", "--check")
    assert rc == 3 and out.startswith("PGVAULT UNKNOWN - "), (out, err)
    rc, out, err = run_pgvault("status", "--bogus")
    assert rc == 2 and "unknown option '--bogus'" in err
