"""test_physical.py: physical backups of a real PostgreSQL 15 cluster, end
to end: full backup and restore compared with pg_dump of every database,
incremental backups storing only what changed, page checksum failures
reported, refusals (non-empty or running target directory), broken WAL
archiving failing the backup clearly, and kill -9 in the middle of a backup.

Every pgvault command runs as the server's user (see physical_helpers.py).
"""

import json
import os
import shutil
import signal
import subprocess
import time

import pytest

from backends import make_repo
from pgcluster import _as_user, clean_env
from pgvault_cli import slowdown  # deadlines of polls grow under sanitizers
from physical_helpers import (SOURCE, archive_to, backup, conn, dump_all,
                              ok, pv, restore_to, switch_wal, wait_archived)
from pgvault_cli import pgvault_bin

BLCKSZ = 8192


def backups(cluster, repo):
    r = ok(cluster, "list", "--repo", repo, "--json")
    return json.loads(r.out)["backups"]


def populate(pg):
    pg.execute("CREATE DATABASE app")
    pg.execute("""
        CREATE TABLE orders (id bigserial PRIMARY KEY, customer text NOT NULL,
                             amount numeric(12,2), created timestamptz DEFAULT now());
        INSERT INTO orders (customer, amount)
            SELECT 'c' || (g % 97), g * 1.25 FROM generate_series(1, 20000) g;
        CREATE INDEX ON orders (customer);
        CREATE UNLOGGED TABLE scratch AS SELECT g FROM generate_series(1, 1000) g;
        CREATE VIEW big_orders AS SELECT * FROM orders WHERE amount > 1000;
        CREATE SEQUENCE s START 42;
        SELECT nextval('s');
    """, db="app")
    pg.execute("CREATE TABLE notes AS SELECT g AS id, repeat('x', g % 50) AS body "
               "FROM generate_series(1, 5000) g")


@pytest.mark.backends
def test_full_backup_restore_equals_source(pg, pg_factory, repo_backend):
    repo = make_repo(pg)
    archive_to(pg, repo)
    populate(pg)
    r = ok(pg, "backup", "--physical", "--repo", repo, "--source", SOURCE,
           "--pgdata", pg.datadir, *conn(pg), "--json")
    doc = json.loads(r.out)
    assert doc["kind"] == "physical" and doc["parent"] is None, doc
    assert doc["checksums_verified"] is True and doc["checksum_failures"] == 0
    assert doc["files"] > 900 and doc["files_reused"] == 0, doc
    # the unlogged table comes back empty, as after any crash: compare the rest
    want = dump_all(pg, "--exclude-table-data=scratch")

    c = restore_to(pg_factory, repo, doc["id"], "--target-immediate",
                   "--target-action", "promote", "--archive-mode", "off")
    # what restore writes for the server
    auto = c.auto_conf()
    assert auto["recovery_target"] == "immediate"
    assert "archive-get" in auto["restore_command"], auto
    assert auto["archive_mode"] == "off"
    for f in ("backup_label", "recovery.signal", "global/pg_control"):
        assert os.path.exists(os.path.join(c.datadir, f)), f
    assert not os.path.exists(os.path.join(c.datadir, "postmaster.pid"))
    assert os.listdir(os.path.join(c.datadir, "pg_wal")) == ["archive_status"]
    c.start()
    deadline = time.time() + 30 * slowdown()
    while c.scalar("SELECT pg_is_in_recovery()") and time.time() < deadline:
        time.sleep(0.1)
    got = dump_all(c, "--exclude-table-data=scratch")
    assert sorted(got) == sorted(want) == ["app", "postgres", "template1"]
    for db in want:
        assert got[db] == want[db], db
    assert "COPY public.orders" in got["app"]
    assert c.scalar("SELECT count(*) FROM orders", db="app") == 20000
    assert c.scalar("SELECT count(*) FROM scratch", db="app") == 0
    assert c.scalar("SELECT last_value FROM s", db="app") == 42


def test_incremental_stores_far_fewer_bytes(pg, pg_factory):
    repo = make_repo(pg)
    archive_to(pg, repo)
    pg.execute("CREATE TABLE big AS SELECT g AS id, md5(g::text) AS h, "
               "repeat(md5((g * 7)::text), 4) AS pad FROM generate_series(1, 150000) g")
    # settle hint bits and the visibility map first: reading the table later
    # must not rewrite every page (with checksums, hint bits are WAL-logged)
    pg.execute("VACUUM (FREEZE) big")
    pg.execute("CHECKPOINT")
    time.sleep(1.1)  # file times older than the first backup's start
    first = json.loads(ok(pg, "backup", "--physical", "--repo", repo, "--source",
                          SOURCE, *conn(pg), "--pgdata", pg.datadir, "--json").out)
    pg.execute("UPDATE big SET h = 'changed' WHERE id <= 200")
    pg.execute("CHECKPOINT")
    second = json.loads(ok(pg, "backup", "--physical", "--repo", repo, "--source",
                           SOURCE, *conn(pg), "--pgdata", pg.datadir, "--json").out)
    assert second["parent"] == first["id"]
    assert second["files_reused"] > 0.8 * second["files"], second
    # the 40 MB table changed in a few pages: far less is stored the second time
    assert first["new_bytes"] > 5 * 1024 * 1024, first
    assert second["new_bytes"] < first["new_bytes"] / 10, (first, second)
    assert second["bytes_read"] < first["bytes_read"], (first, second)
    assert second["logical_bytes"] >= first["logical_bytes"] * 0.9

    c = restore_to(pg_factory, repo, second["id"], "--target-immediate",
                   "--target-action", "promote", "--archive-mode", "off")
    c.start()
    deadline = time.time() + 30 * slowdown()
    while c.scalar("SELECT pg_is_in_recovery()") and time.time() < deadline:
        time.sleep(0.1)
    assert c.scalar("SELECT count(*) FROM big WHERE h = 'changed'") == 200
    assert c.scalar("SELECT count(*) FROM big") == 150000
    assert c.scalar("SELECT h FROM big WHERE id = 201") == \
        pg.scalar("SELECT h FROM big WHERE id = 201")

    # --full reads everything again but stores nothing new
    full = json.loads(ok(pg, "backup", "--physical", "--full", "--repo", repo,
                         "--source", SOURCE, *conn(pg), "--pgdata", pg.datadir,
                         "--json").out)
    assert full["files_reused"] == 0
    assert full["new_bytes"] < first["new_bytes"] / 10, full


def test_restore_refuses_running_and_nonempty_directories(pg):
    repo = make_repo(pg)
    archive_to(pg, repo)
    bid = backup(pg, repo)[0]
    r = pv(pg, "restore", bid, "--repo", repo, "--pgdata", pg.datadir)
    assert r.rc == 5, r
    assert "a server is running in" in r.err, r.err
    other = os.path.join(pg.basedir, "notempty")
    os.makedirs(other)
    with open(os.path.join(other, "precious"), "w") as f:
        f.write("keep me")
    os.chmod(pg.basedir, 0o777)
    r = pv(pg, "restore", bid, "--repo", repo, "--pgdata", other)
    assert r.rc == 5, r
    assert "is not empty" in r.err, r.err
    assert os.listdir(other) == ["precious"]
    r = pv(pg, "restore", bid, "--repo", repo, "--pgdata", other + "2",
           "--target-time", "2000-01-01 00:00:00Z")
    assert r.rc == 2 and "cannot be restored to time" in r.err, r
    r = pv(pg, "restore", "latest", "--repo", repo, "--pgdata", other + "2",
           "--target-lsn", "0/10")
    assert r.rc == 1 and "no physical backup" in r.err, r
    r = pv(pg, "restore", "latest", "--repo", repo, "--pgdata", other + "2",
           "--target-lsn", "0/10", "--target-xid", "5")
    assert r.rc == 2 and "only one recovery target" in r.err, r
    assert not os.path.exists(other + "2")


def test_broken_archiving_fails_the_backup_clearly(pg):
    repo = make_repo(pg)
    archive_to(pg, repo)
    pg.reload(archive_command="/bin/false")
    r = pv(pg, "backup", "--physical", "--repo", repo, "--source", SOURCE,
           "--pgdata", pg.datadir, *conn(pg), "--archive-wait-timeout", "30s")
    assert r.rc != 0, r
    assert "WAL archiving is failing" in r.err, r.err
    assert "nothing was recorded" in r.err, r.err
    assert "HINT" in r.err and "archive_command" in r.err, r.err
    assert backups(pg, repo) == []
    # archiving off altogether is refused before anything is copied
    pg.restart(archive_mode="off")
    r = pv(pg, "backup", "--physical", "--repo", repo, "--source", SOURCE,
           "--pgdata", pg.datadir, *conn(pg))
    assert r.rc == 5 and "archive_mode = off" in r.err, r
    assert backups(pg, repo) == []


def test_kill_during_backup_leaves_no_backup_and_next_works(pg, pg_factory):
    repo = make_repo(pg, "repo", "--pack-size", "1MiB")  # packs reach storage early
    archive_to(pg, repo)
    pg.execute("CREATE TABLE t AS SELECT g FROM generate_series(1, 100000) g")
    # held-back archiving keeps the backup waiting for its WAL: kill it there.
    # The WAL waits for a gate the test opens only after the kill (a fixed
    # delay could run out first on a loaded machine, and the backup finish).
    slow = pg.basedir + "/slow.sh"
    gate = pg.basedir + "/archive-gate"
    with open(slow, "w") as f:
        f.write("#!/bin/sh\nwhile [ ! -e %s ]; do sleep 0.1; done\n"
                "exec %s archive-push --repo %s --source %s \"$1\"\n"
                % (gate, pgvault_bin(), repo, SOURCE))
    os.chmod(slow, 0o755)
    pg.reload(archive_command=slow + " %p")
    argv = _as_user(pg.user, [pgvault_bin(), "backup", "--physical", "--repo", repo,
                              "--source", SOURCE, "--pgdata", pg.datadir] + conn(pg))
    p = subprocess.Popen(argv, env=clean_env(), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, cwd=pg.basedir)
    deadline = time.time() + 20 * slowdown()
    while time.time() < deadline:
        if pg.scalar("SELECT count(*) FROM pg_stat_activity WHERE "
                     "application_name = 'pgvault backup'") and \
                os.path.isdir(os.path.join(repo, "data")) and os.listdir(os.path.join(repo, "data")):
            break
        time.sleep(0.05)
    else:
        raise AssertionError("the backup never started writing packs")
    time.sleep(1.0)  # copying takes well under a second; the WAL waits for the gate
    # runuser's child is pgvault: kill the whole group
    for pid in subprocess.run(["pgrep", "-f", "-P", str(p.pid), "pgvault"],
                              capture_output=True, text=True).stdout.split():
        os.kill(int(pid), signal.SIGKILL)
    p.kill()
    p.wait(timeout=10)
    open(gate, "w").close()
    assert backups(pg, repo) == []
    r = ok(pg, "verify", "--repo", repo)
    archive_to(pg, repo, restart=False)
    # the killed session's backup was cancelled by the server: a new one starts
    bid, out, err = backup(pg, repo)
    assert [b["id"] for b in backups(pg, repo)] == [bid]
    ok(pg, "verify", "--repo", repo)


def corrupt_page(pg, table, block):
    path = os.path.join(pg.datadir, pg.scalar("SELECT pg_relation_filepath(%s)",
                                              params=(table,)))
    pg.stop()
    with open(path, "r+b") as f:
        f.seek(block * BLCKSZ + 4000)
        f.write(b"\xde\xad\xbe\xef" * 8)
    pg.start()
    return path


def test_page_checksum_failure_is_reported(pg):
    repo = make_repo(pg)
    archive_to(pg, repo)
    pg.execute("CREATE TABLE victim AS SELECT g, md5(g::text) FROM generate_series(1, 5000) g")
    pg.execute("CHECKPOINT")
    corrupt_page(pg, "victim", 3)
    rel = pg.scalar("SELECT pg_relation_filepath('victim')")
    r = pv(pg, "backup", "--physical", "--repo", repo, "--source", SOURCE,
           "--pgdata", pg.datadir, *conn(pg), "--json")
    assert r.rc == 3, r
    doc = json.loads(r.out)
    assert doc["checksum_failures"] == 1, doc
    assert "page checksum verification failed in file '%s', block 3" % rel in r.err, r.err
    assert "damaged pages" in r.err
    # the backup exists and its manifest names the page
    assert [b["id"] for b in backups(pg, repo)] == [doc["id"]]
    r = ok(pg, "show", doc["id"], "--repo", repo, "--json")
    assert rel in r.out and "checksum_failures" in r.out, r.out[:2000]


def test_tablespaces_backed_up_and_restored_elsewhere(pg, pg_factory):
    repo = make_repo(pg)
    archive_to(pg, repo)
    loc = pg.mkdir("ts1")
    pg.execute("CREATE TABLESPACE ts1 LOCATION '%s'" % loc)
    pg.execute("CREATE TABLE far (id int, v text) TABLESPACE ts1")
    pg.execute("INSERT INTO far SELECT g, md5(g::text) FROM generate_series(1, 3000) g")
    oid = str(pg.scalar("SELECT oid FROM pg_tablespace WHERE spcname = 'ts1'"))
    r = ok(pg, "backup", "--physical", "--repo", repo, "--source", SOURCE,
           "--pgdata", pg.datadir, *conn(pg), "--json")
    bid = json.loads(r.out)["id"]
    md = json.loads(ok(pg, "show", bid, "--repo", repo, "--json").out)["metadata"]
    assert md["tablespaces"] == [{"oid": oid, "location": loc}], md["tablespaces"]
    assert md["tablespace_map"].startswith(oid + " " + loc), md["tablespace_map"]
    want = pg.psql("SELECT count(*), sum(hashtext(v)) FROM far")

    # the original location is in use: refused, with the way out
    r = pv(pg, "restore", bid, "--repo", repo, "--pgdata", pg.basedir + "/r1")
    assert r.rc == 5, r
    assert "tablespace %s" % oid in r.err and "is not empty" in r.err, r.err
    assert "--tablespace-map %s=DIR" % oid in r.err, r.err
    assert not os.path.exists(pg.basedir + "/r1")  # refused before writing anything
    r = pv(pg, "restore", bid, "--repo", repo, "--pgdata", pg.basedir + "/r2",
           "--tablespace-map", "999=/tmp/x")
    assert r.rc == 2 and "no tablespace with oid 999" in r.err, r

    c = pg_factory("tsrestored", start=False)
    newloc = os.path.join(c.basedir, "ts1-restored")
    shutil.rmtree(c.datadir)
    ok(c, "restore", bid, "--repo", repo, "--source", SOURCE, "--pgdata", c.datadir,
       "--tablespace-map", "%s=%s" % (oid, newloc), "--archive-mode", "off",
       "--target-immediate", "--target-action", "promote")
    c._write_base_conf()
    assert os.readlink(os.path.join(c.datadir, "pg_tblspc", oid)) == newloc
    c.start()
    deadline = time.time() + 30 * slowdown()
    while c.scalar("SELECT pg_is_in_recovery()") and time.time() < deadline:
        time.sleep(0.1)
    assert c.psql("SELECT count(*), sum(hashtext(v)) FROM far") == want
    assert c.scalar("SELECT pg_tablespace_location(%s)" % oid) == newloc


def test_help_of_the_physical_modes(pg):
    r = pv(pg, "backup", "--physical", "--help")
    assert r.rc == 0 and "pg_backup_start" in r.out and "Examples:" in r.out, r
    r = pv(pg, "restore", "--pgdata", "x", "--help")
    assert r.rc == 0 and "--target-time" in r.out and "Examples:" in r.out, r
    r = pv(pg, "backup", "--physical", "--checkpoint", "slow")
    assert r.rc == 2 and "--checkpoint must be" in r.err, r
    r = pv(pg, "restore", "latest", "--pgdata", "x", "--archive-mode", "maybe")
    assert r.rc == 2 and "--archive-mode must be" in r.err, r
    r = pv(pg, "restore", "latest", "--pgdata", "x", "--tablespace-map", "abc")
    assert r.rc == 2 and "OID=DIR" in r.err, r


def test_wal_gaps_found_by_restore(pg, pg_factory):
    repo = make_repo(pg)
    archive_to(pg, repo)
    doc = json.loads(ok(pg, "backup", "--physical", "--repo", repo, "--source", SOURCE,
                        "--pgdata", pg.datadir, *conn(pg), "--json").out)
    segs = []
    for i in range(3):
        pg.execute("CREATE TABLE g%d AS SELECT 1 AS x" % i)
        segs.append(switch_wal(pg))
    wait_archived(pg, segs[-1])
    tl1 = os.path.join(repo, "wal", SOURCE, "00000001")
    os.unlink(os.path.join(tl1, segs[1]))
    c = pg_factory("gap", start=False)
    shutil.rmtree(c.datadir)
    # a hole before the archive's end is a gap: refused, naming it (test_restore_dryrun.py)
    r = pv(c, "restore", doc["id"], "--repo", repo, "--pgdata", c.datadir,
           "--archive-mode", "off")
    assert r.rc == 3, r
    assert "WAL segment %s is missing from the archive" % segs[1] in r.err, r.err
    assert not os.path.exists(c.datadir)
    # the WAL the backup itself needs is gone: refused before writing anything
    os.unlink(os.path.join(tl1, doc["start_wal"]))
    r = pv(c, "restore", doc["id"], "--repo", repo, "--pgdata", c.datadir + "2")
    assert r.rc == 3, r
    assert "WAL segment %s, which backup %s needs" % (doc["start_wal"], doc["id"]) in r.err, r.err
    assert not os.path.exists(c.datadir + "2")
