"""test_restore_records.py: real restores leave a record in the repository
(records/restores/<backup id>/<record id>.ok, docs/repository-format.md
section 13), and `restore --dry-run` estimates from them as from drills
(issue 7, item 5: "from the measured times of earlier drills and restores
of this source").

- a logical restore into a new database: data restored, one record, and a
  later dry run's estimate has that restore (kind "restore", its duration)
  as its basis; the dry run itself writes no record;
- a physical restore with --start: the same, with the measured recovery;
- a restore whose record cannot be written (records/restores is a regular
  file, so even root cannot create the record under it): exit 0, one
  warning line, data restored, no estimate.

Physical tests run pgvault as the server's user (physical_helpers.py);
logical ones as root or whoever runs the tests, as in test_logical.py.
"""

import json
import os
import re
import shutil
import time

from pgvault_cli import slowdown  # deadlines of polls grow under sanitizers
from pgvault_cli import conn_args, run_pgvault, run_pgvault_json, tools_env
from physical_helpers import (SOURCE, archive_to, backup, dump_all, make_repo, ok, switch_wal,
                              wait_archived)

RECORD = re.compile(r"\d{8}T\d{6}\.\d{3}Z-[0-9a-f]{6}\.(ok|failed)")


def restore_records(repo, backup_id):
    d = os.path.join(repo, "records", "restores", backup_id)
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def shop(c, db="shop"):
    c.execute("CREATE DATABASE %s" % db)
    c.execute("CREATE TABLE items (id int PRIMARY KEY, name text);"
              "INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 3000) g",
              db=db)


def content(c, db):
    return c.psql("SELECT count(*), md5(string_agg(id || ':' || name, ',' ORDER BY id)) FROM items",
                  db=db)


def logical_backup(c, repo, db="shop"):
    assert run_pgvault("init", "--repo", repo).rc == 0
    rc, doc, err = run_pgvault_json("backup", "--logical", *conn_args(c, db), "--repo", repo,
                                    env=tools_env(c))
    assert rc == 0, err
    return doc["id"]


def test_logical_restore_recorded_and_estimated(pg, tmp_path):
    c = pg
    shop(c)
    repo = str(tmp_path / "repo")
    bid = logical_backup(c, repo)
    assert restore_records(repo, bid) == []

    rc, res, err = run_pgvault_json("restore", bid, "--target-db", "shop_copy", *conn_args(c),
                                    "--repo", repo, env=tools_env(c))
    assert rc == 0, err
    assert "not recorded" not in err, err
    assert content(c, "shop_copy") == content(c, "shop") and content(c, "shop")[0][0] == 3000
    recs = restore_records(repo, bid)
    assert len(recs) == 1 and RECORD.fullmatch(recs[0]) and recs[0].endswith(".ok"), recs

    rc, plan, err = run_pgvault_json("restore", bid, "--target-db", "shop_copy2", *conn_args(c),
                                     "--repo", repo, "--dry-run", env=tools_env(c))
    assert rc == 0, err
    est = plan["estimate"]
    assert est is not None, plan
    basis = est["basis"]
    assert len(basis) == 1, est
    b = basis[0]
    assert b["kind"] == "restore" and b["backup"] == bid, est
    assert b["record"] + ".ok" == recs[0], (est, recs)
    assert b["restore_ms"] == res["duration_ms"] > 0, (est, res)
    assert b["recovery_ms"] == 0 and b["size"] > 0, est
    assert est["bytes_per_second"] > 0 and est["estimate_ms"] >= 0, est
    # the dry run wrote no record and created nothing
    assert restore_records(repo, bid) == recs
    assert c.scalar("SELECT count(*) FROM pg_database WHERE datname = 'shop_copy2'") == 0

    r = run_pgvault("restore", bid, "--target-db", "shop_copy2", *conn_args(c), "--repo", repo,
                    "--dry-run", env=tools_env(c))
    assert r.rc == 0, r
    assert re.search(r"^estimate:      about .+, from 1 earlier drill or restore of this source$",
                     r.out, re.M), r.out

    # a partial restore (--table) is recorded, but does not count for whole-restore estimates
    rc, res2, err = run_pgvault_json("restore", bid, "--target-db", "shop_part", "--table", "items",
                                     *conn_args(c), "--repo", repo, env=tools_env(c))
    assert rc == 0, err
    assert content(c, "shop_part") == content(c, "shop")
    assert len(restore_records(repo, bid)) == 2
    rc, plan, err = run_pgvault_json("restore", bid, "--target-db", "shop_copy2", *conn_args(c),
                                     "--repo", repo, "--dry-run", env=tools_env(c))
    assert rc == 0, err
    assert [x["record"] for x in plan["estimate"]["basis"]] == [b["record"]], plan


def test_restore_record_cannot_be_written(pg, tmp_path):
    """The record's directory is a regular file: the record cannot be
    written (whoever runs the tests, root too), the restore still succeeds."""
    c = pg
    shop(c)
    repo = str(tmp_path / "repo")
    bid = logical_backup(c, repo)
    os.makedirs(os.path.join(repo, "records"), exist_ok=True)
    with open(os.path.join(repo, "records", "restores"), "w") as f:
        f.write("not a directory\n")

    r = run_pgvault("restore", bid, "--target-db", "shop_copy", *conn_args(c), "--repo", repo,
                    env=tools_env(c))
    assert r.rc == 0, r
    warn = [ln for ln in r.err.splitlines() if "not recorded" in ln]
    assert len(warn) == 1, r.err
    assert "warning: the restore succeeded but was not recorded for later estimates: " \
        "cannot record the restore of backup '%s'" % bid in warn[0], r.err
    assert content(c, "shop_copy") == content(c, "shop") and content(c, "shop")[0][0] == 3000
    assert open(os.path.join(repo, "records", "restores")).read() == "not a directory\n"

    # nothing was recorded: the dry run has no estimate (and says why)
    r = run_pgvault("restore", bid, "--target-db", "shop_copy2", *conn_args(c), "--repo", repo,
                    "--dry-run", env=tools_env(c))
    assert r.rc == 0, r
    assert "estimate:      none: no earlier drill or restore of this source" in r.out, r.out


def test_physical_restore_recorded_and_estimated(pg, pg_factory):
    repo = make_repo(pg)
    archive_to(pg, repo)
    pg.execute("CREATE TABLE t AS SELECT g, md5(g::text) AS h FROM generate_series(1, 20000) g")
    bid = backup(pg, repo)[0]
    wait_archived(pg, switch_wal(pg))
    want = dump_all(pg)

    c = pg_factory("restored", start=False)
    shutil.rmtree(c.datadir)
    r = ok(c, "restore", bid, "--repo", repo, "--source", SOURCE, "--pgdata", c.datadir,
           "--target-immediate", "--target-action", "promote", "--archive-mode", "off",
           "--start", "--start-options", "-p %d -k %s" % (c.port, c.host), "--json")
    res = json.loads(r.out)
    assert "not recorded" not in r.err, r.err
    assert res["id"] == bid and res["duration_ms"] > 0 and res["recovery_ms"] > 0, res
    deadline = time.time() + 30 * slowdown()
    while c.scalar("SELECT pg_is_in_recovery()") and time.time() < deadline:
        time.sleep(0.1)
    assert dump_all(c) == want
    recs = restore_records(repo, bid)
    assert len(recs) == 1 and RECORD.fullmatch(recs[0]) and recs[0].endswith(".ok"), recs

    target = os.path.join(pg.basedir, "new")
    r = ok(pg, "restore", bid, "--repo", repo, "--source", SOURCE, "--pgdata", target,
           "--dry-run", "--json")
    est = json.loads(r.out)["estimate"]
    assert est is not None and len(est["basis"]) == 1, est
    b = est["basis"][0]
    assert b["kind"] == "restore" and b["backup"] == bid, est
    assert b["record"] + ".ok" == recs[0], (est, recs)
    assert b["restore_ms"] == res["duration_ms"], (est, res)
    assert b["recovery_ms"] == res["recovery_ms"] == est["recovery_ms"], (est, res)
    assert b["size"] > 20 * 1024 * 1024 and est["estimate_ms"] >= res["recovery_ms"], est
    assert not os.path.exists(target)
    assert restore_records(repo, bid) == recs      # the dry run wrote nothing
    r = ok(pg, "restore", bid, "--repo", repo, "--source", SOURCE, "--pgdata", target,
           "--dry-run")
    assert re.search(r"^estimate:      about .+ \(restore and recovery\), from 1 earlier "
                     r"drill or restore of this source$", r.out, re.M), r.out
