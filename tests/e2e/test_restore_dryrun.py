"""test_restore_dryrun.py: `pgvault restore ... --dry-run` for both kinds
(issue 7, item 5), and the WAL gap check every physical restore makes
before it writes anything (issue 5: "a missing WAL segment in the middle is
reported as a gap by restore").

A dry run prints the plan (which backup and why, the WAL it needs, bytes to
fetch, what it found at the target, the safety backup --clean would take,
an estimate or why there is none), writes and creates nothing, and fails
with exactly the error the real restore gives.  Physical tests run pgvault
as the server's user (physical_helpers.py); logical ones as in
test_logical.py.
"""

import json
import os
import shutil
import tempfile
import time

import psycopg

from pgvault_cli import conn_args, run_pgvault, run_pgvault_json, tools_env
from physical_helpers import (SOURCE, archive_to, backup, make_repo, ok, pv,
                              switch_wal, wait_archived)


def listing(top, skip=()):
    """(path, size, mtime) of everything below top, but paths under skip."""
    out = []
    for root, dirs, files in os.walk(top):
        for n in dirs + files:
            p = os.path.join(root, n)
            rel = os.path.relpath(p, top)
            if rel.split("/")[0] in skip:
                continue
            st = os.lstat(p)
            out.append((rel, st.st_size, st.st_mtime_ns))
    return sorted(out)


def stderr_error(err):
    """The error and hint lines, without the log prefix (time, pid)."""
    out = []
    for ln in err.splitlines():
        if " error: " in ln:
            out.append(ln.split(" error: ", 1)[1])
        elif ln.startswith("HINT"):
            out.append(ln)
    assert out, err
    return out


# ---------------------------------------------------------------- physical

def test_physical_dry_run_plan_and_refusals(pg):
    repo = make_repo(pg)
    archive_to(pg, repo)
    pg.execute("CREATE TABLE t AS SELECT g FROM generate_series(1, 10000) g")
    b1 = backup(pg, repo)[0]
    time.sleep(0.3)
    between = pg.scalar("SELECT clock_timestamp()").isoformat()
    time.sleep(0.3)
    pg.execute("INSERT INTO t SELECT g FROM generate_series(1, 10) g")
    b2 = backup(pg, repo)[0]
    wait_archived(pg, switch_wal(pg))
    os.chmod(pg.basedir, 0o777)
    # the running server keeps archiving: the rest of the repository must not move
    repo_before = listing(repo, skip=("wal",))

    target = os.path.join(pg.basedir, "new")
    r = ok(pg, "restore", "latest", "--repo", repo, "--source", SOURCE, "--pgdata", target,
           "--dry-run", "--json")
    plan = json.loads(r.out)
    assert plan["dry_run"] is True and plan["kind"] == "physical", plan
    assert plan["id"] == b2 and plan["choice"].startswith("latest: the newest physical backup"), plan
    assert plan["pgdata"] == target and plan["pgdata_state"] == "empty or absent", plan
    assert plan["target"] == "the end of the archived WAL" and plan["delta"] is False, plan
    wal = plan["wal"]
    assert wal["complete"] is True and wal["to_archive_end"] is True, plan
    assert wal["first"] <= wal["consistent_at"] <= wal["last"] and wal["segments"] >= 1, plan
    assert plan["files"] > 900 and plan["bytes"] > 20 * 1024 * 1024, plan
    assert plan["safety_backup"] is None and plan["estimate"] is None, plan
    assert not os.path.exists(target)
    assert listing(repo, skip=("wal",)) == repo_before

    # 'latest' with a target before B2: B1 is the choice, and the plan says why
    r = ok(pg, "restore", "latest", "--repo", repo, "--source", SOURCE, "--pgdata", target,
           "--target-time", between, "--dry-run", "--json")
    plan = json.loads(r.out)
    assert plan["id"] == b1, plan
    assert "that can reach time" in plan["choice"], plan
    assert plan["wal"]["to_archive_end"] is True, plan
    # text: the same plan for people, and no estimate without earlier drills
    r = ok(pg, "restore", "latest", "--repo", repo, "--source", SOURCE, "--pgdata", target,
           "--target-time", between, "--dry-run")
    assert r.out.startswith("dry run: nothing was written\n"), r.out
    assert "backup:        %s (latest: the newest physical backup of source '%s' that can " \
        "reach time" % (b1, SOURCE) in r.out, r.out
    assert "WAL needed:    %s.." % plan["wal"]["first"] in r.out, r.out
    assert "estimate:      none: no earlier drill or restore of this source" in r.out, r.out
    assert not os.path.exists(target)

    # refusals: the very errors of the real restore, and nothing touched
    busy = pv(pg, "restore", b2, "--repo", repo, "--pgdata", pg.datadir)
    dry = pv(pg, "restore", b2, "--repo", repo, "--pgdata", pg.datadir, "--dry-run")
    assert busy.rc == dry.rc == 5, (busy, dry)
    assert "a server is running in" in dry.err
    assert stderr_error(dry.err) == stderr_error(busy.err), (busy.err, dry.err)
    other = os.path.join(pg.basedir, "notempty")
    os.makedirs(other)
    with open(os.path.join(other, "precious"), "w") as f:
        f.write("keep me")
    real = pv(pg, "restore", b2, "--repo", repo, "--pgdata", other)
    dry = pv(pg, "restore", b2, "--repo", repo, "--pgdata", other, "--dry-run")
    assert real.rc == dry.rc == 5, (real, dry)
    assert "directory '%s' is not empty" % other in dry.err, dry.err
    assert stderr_error(dry.err) == stderr_error(real.err), (real.err, dry.err)
    assert os.listdir(other) == ["precious"]
    real = pv(pg, "restore", b1, "--repo", repo, "--pgdata", target, "--target-lsn", "0/10")
    dry = pv(pg, "restore", b1, "--repo", repo, "--pgdata", target, "--target-lsn", "0/10",
             "--dry-run")
    assert real.rc == dry.rc == 2 and "cannot be restored to LSN 0/10" in dry.err, (real, dry)
    assert stderr_error(dry.err) == stderr_error(real.err)
    assert listing(repo, skip=("wal",)) == repo_before and not os.path.exists(target)


def test_wal_gap_fails_restore_and_dry_run_before_writing(pg):
    repo = make_repo(pg)
    archive_to(pg, repo)
    doc = json.loads(ok(pg, "backup", "--physical", "--repo", repo, "--source", SOURCE,
                        "--pgdata", pg.datadir, "-h", "127.0.0.1", "-p", str(pg.port),
                        "-U", "postgres", "-d", "postgres", "--json").out)
    segs, lsns = [], []
    for i in range(4):
        pg.execute("CREATE TABLE g%d AS SELECT 1 AS x" % i)
        lsns.append(pg.scalar("SELECT pg_current_wal_lsn()::text"))
        segs.append(switch_wal(pg))
    wait_archived(pg, segs[-1])
    tl1 = os.path.join(repo, "wal", SOURCE, "00000001")
    os.unlink(os.path.join(tl1, segs[2]))
    os.chmod(pg.basedir, 0o777)
    target = os.path.join(pg.basedir, "restored")

    want = ("restore of backup %s into '%s' failed: WAL segment %s is missing from the archive "
            "of source '%s' (a gap of 1 segment): recovery from backup %s cannot reach "
            % (doc["id"], target, segs[2], SOURCE, doc["id"]))
    errors = {}
    for extra in ([], ["--dry-run"], ["--target-time", "2999-01-01 00:00:00Z"],
                  ["--target-lsn", "FF/0"], ["--target-name", "somewhere"], ["--delta"],
                  ["--target-name", "somewhere", "--dry-run"]):
        r = pv(pg, "restore", doc["id"], "--repo", repo, "--source", SOURCE, "--pgdata", target,
               "--archive-mode", "off", *extra)
        assert r.rc == 3, (extra, r)
        assert want in r.err, (extra, r.err)
        assert len([ln for ln in r.err.splitlines() if " error: " in ln]) == 1, r.err
        assert not os.path.exists(target), extra
        errors[" ".join(extra)] = stderr_error(r.err)
    assert errors[""] == errors["--dry-run"], errors
    assert errors["--target-name somewhere"] == errors["--target-name somewhere --dry-run"]
    assert errors[""][0].endswith("cannot reach the end of the archived WAL"), errors
    assert errors["--target-lsn FF/0"][0].endswith("cannot reach LSN FF/0"), errors
    # a target before the gap needs none of the missing WAL: fine
    r = ok(pg, "restore", doc["id"], "--repo", repo, "--source", SOURCE, "--pgdata", target,
           "--target-lsn", lsns[1], "--dry-run", "--json")
    plan = json.loads(r.out)
    assert plan["wal"]["last"] == segs[1] and plan["wal"]["to_archive_end"] is False, plan
    assert not os.path.exists(target)
    # the target immediately after the backup needs only its own WAL
    r = ok(pg, "restore", doc["id"], "--repo", repo, "--source", SOURCE, "--pgdata", target,
           "--target-immediate", "--dry-run", "--json")
    assert json.loads(r.out)["wal"]["last"] == doc["stop_wal"]
    # the real restore to before the gap writes the directory
    ok(pg, "restore", doc["id"], "--repo", repo, "--source", SOURCE, "--pgdata", target,
       "--target-lsn", lsns[1], "--archive-mode", "off")
    assert os.path.exists(os.path.join(target, "global", "pg_control"))
    shutil.rmtree(target)


# ----------------------------------------------------------------- logical

def lpv(cluster, repo, *args):
    return run_pgvault(*args, "--repo", repo, env=tools_env(cluster))


def db_state(c, db):
    """What a dry run must not change: databases, and db's relations and rows."""
    dbs = c.psql("SELECT datname FROM pg_database ORDER BY 1")
    rels = c.psql("SELECT relname, relkind FROM pg_class WHERE relnamespace = "
                  "'public'::regnamespace ORDER BY 1", db=db)
    return dbs, rels, c.scalar("SELECT count(*) FROM items", db=db)


def test_logical_dry_run_plan_and_refusals(pg, tmp_path):
    c = pg
    c.execute("CREATE DATABASE shop")
    c.execute("CREATE TABLE items (id int PRIMARY KEY, name text);"
              "INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 2000) g",
              db="shop")
    repo = str(tmp_path / "repo")
    assert run_pgvault("init", "--repo", repo).rc == 0
    rc, doc, err = run_pgvault_json("backup", "--logical", *conn_args(c, "shop"), "--repo", repo,
                                    env=tools_env(c))
    assert rc == 0, err
    state = db_state(c, "shop")
    repo_before = listing(repo)

    # a new database: it would be created, nothing to refuse
    rc, plan, err = run_pgvault_json("restore", "latest", "--target-db", "shop_copy",
                                     *conn_args(c), "--repo", repo, "--dry-run",
                                     env=tools_env(c))
    assert rc == 0, err
    assert plan["dry_run"] is True and plan["kind"] == "logical" and plan["id"] == doc["id"], plan
    assert plan["choice"] == "latest: the newest logical backup (of database 'shop')" and plan["bytes"] > 0, plan
    assert plan["databases"] == [{"database": "shop_copy", "source_database": "shop",
                                  "exists": False, "relations": 0, "other_sessions": 0,
                                  "terminate_sessions": False, "action": "create the database",
                                  "safety_backup": None}], plan
    assert plan["estimate"] is None
    # the source database itself, with --clean: a safety backup would be taken first
    rc, plan, err = run_pgvault_json("restore", doc["id"], "--target-db", "shop", "--clean",
                                     *conn_args(c), "--repo", repo, "--dry-run",
                                     env=tools_env(c))
    assert rc == 0, err
    d = plan["databases"][0]
    assert d["exists"] is True and d["relations"] >= 2 and d["other_sessions"] == 0, plan
    assert d["action"] == "drop the backup's objects, then restore", plan
    assert d["safety_backup"] == "of the whole database", plan
    r = lpv(c, repo, "restore", doc["id"], "--target-db", "shop", "--clean",
            "--no-safety-backup", *conn_args(c), "--dry-run")
    assert r.rc == 0, r
    assert r.out.startswith("dry run: nothing was written\n"), r.out
    assert "database:      'shop' (from 'shop'): drop the backup's objects" in r.out, r.out
    assert "safety backup: none" in r.out and "estimate:      none" in r.out, r.out
    assert c.scalar("SELECT count(*) FROM pg_database WHERE datname = 'shop_copy'") == 0
    assert db_state(c, "shop") == state and listing(repo) == repo_before

    # refusals, word for word those of the real restore: not empty ...
    real = lpv(c, repo, "restore", doc["id"], "--target-db", "shop", *conn_args(c))
    dry = lpv(c, repo, "restore", doc["id"], "--target-db", "shop", *conn_args(c), "--dry-run")
    assert real.rc == dry.rc == 5, (real, dry)
    assert "check: database 'shop' is not empty" in dry.err, dry.err
    assert stderr_error(dry.err) == stderr_error(real.err), (real.err, dry.err)
    # ... and in use by another session (named)
    holder = psycopg.connect(c.conninfo("shop"))
    try:
        pid = holder.info.backend_pid
        real = lpv(c, repo, "restore", doc["id"], "--target-db", "shop", "--clean",
                   *conn_args(c))
        dry = lpv(c, repo, "restore", doc["id"], "--target-db", "shop", "--clean",
                  *conn_args(c), "--dry-run")
        assert real.rc == dry.rc == 5, (real, dry)
        assert "in use by 1 other session: pid %d" % pid in dry.err, dry.err
        assert stderr_error(dry.err) == stderr_error(real.err), (real.err, dry.err)
        # --terminate-connections: the plan says the session would be ended, and leaves it
        rc, plan, err = run_pgvault_json("restore", doc["id"], "--target-db", "shop", "--clean",
                                         "--terminate-connections", *conn_args(c), "--repo",
                                         repo, "--dry-run", env=tools_env(c))
        assert rc == 0, err
        assert plan["databases"][0]["other_sessions"] == 1, plan
        assert plan["databases"][0]["terminate_sessions"] is True, plan
        assert holder.execute("SELECT 1").fetchone() == (1,)
    finally:
        holder.close()
    assert db_state(c, "shop") == state
    # (the refused real restores above took and released the repository lock)
    assert [e for e in listing(repo) if not e[0].startswith("locks")] == \
        [e for e in repo_before if not e[0].startswith("locks")]

    # after a drill of this source, the plan has an estimate built on it
    drills = tempfile.mkdtemp(prefix="pvdr", dir="/tmp")  # short: sockets live there
    os.chmod(drills, 0o777)
    try:
        rc, rep, err = run_pgvault_json("drill", doc["id"], "--repo", repo, timeout=300,
                                        env=dict(tools_env(c), PGVAULT_DRILL_DIR=drills))
    finally:
        shutil.rmtree(drills, ignore_errors=True)
    assert rc == 0 and rep["ok"] is True, (rep, err)
    rc, plan, err = run_pgvault_json("restore", doc["id"], "--target-db", "shop_copy",
                                     *conn_args(c), "--repo", repo, "--dry-run",
                                     env=tools_env(c))
    assert rc == 0, err
    est = plan["estimate"]
    assert est["estimate_ms"] > 0 and est["bytes_per_second"] > 0, plan
    assert [b["record"] for b in est["basis"]] == [rep["record"]["id"]], plan
    r = lpv(c, repo, "restore", doc["id"], "--target-db", "shop_copy", *conn_args(c),
            "--dry-run")
    assert r.rc == 0 and "estimate:      about " in r.out, r
    assert "from 1 earlier drill or restore of this source" in r.out, r.out
    assert c.scalar("SELECT count(*) FROM pg_database WHERE datname = 'shop_copy'") == 0


def test_logical_dry_run_of_an_all_backup(pg, tmp_path):
    c = pg
    c.execute("CREATE DATABASE app1")
    c.execute("CREATE TABLE t (x int); INSERT INTO t VALUES (1), (2)", db="app1")
    c.execute("CREATE DATABASE app2")
    repo = str(tmp_path / "repo")
    assert run_pgvault("init", "--repo", repo).rc == 0
    rc, doc, err = run_pgvault_json("backup", "--logical", "--all", *conn_args(c), "--repo", repo,
                                    env=tools_env(c))
    assert rc == 0, err
    # (the real restores compared below take and release the repository lock)
    before = (c.psql("SELECT datname FROM pg_database ORDER BY 1"),
              c.psql("SELECT rolname FROM pg_roles ORDER BY 1"), listing(repo, skip=("locks",)))

    rc, plan, err = run_pgvault_json("restore", doc["id"], "--logical", "--clean", *conn_args(c),
                                     "--repo", repo, "--dry-run", env=tools_env(c))
    assert rc == 0, err
    dbs = {d["database"]: d for d in plan["databases"]}
    assert {"app1", "app2", "postgres"} <= set(dbs), plan
    assert dbs["app1"]["relations"] == 1 and dbs["app1"]["safety_backup"] == \
        "of the whole database", plan
    assert dbs["app2"]["relations"] == 0 and dbs["app2"]["safety_backup"] is None, plan
    # one database of it, renamed: a new database
    rc, plan, err = run_pgvault_json("restore", doc["id"], "--database", "app1", "--target-db",
                                     "app1_copy", *conn_args(c), "--repo", repo, "--dry-run",
                                     env=tools_env(c))
    assert rc == 0, err
    assert [(d["database"], d["source_database"], d["exists"]) for d in plan["databases"]] == \
        [("app1_copy", "app1", False)], plan
    # usage errors as the real restore gives them
    for args in (["--logical", "--target-db", "x"], ["--logical", "--table", "t"]):
        real = lpv(c, repo, "restore", doc["id"], *args, *conn_args(c))
        dry = lpv(c, repo, "restore", doc["id"], *args, *conn_args(c), "--dry-run")
        assert real.rc == dry.rc == 2, (real, dry)
        assert stderr_error(dry.err) == stderr_error(real.err), (real.err, dry.err)
    assert (c.psql("SELECT datname FROM pg_database ORDER BY 1"),
            c.psql("SELECT rolname FROM pg_roles ORDER BY 1"), listing(repo, skip=("locks",))) \
        == before
