"""test_restore_delta.py: `pgvault restore ID --pgdata DIR --delta` over a
data directory that still holds the (stopped) cluster, on a real
PostgreSQL 15 server (issue 5, item 4).

The cluster is backed up, then changed (rows inserted, a table dropped, a
file added, a config file edited), stopped, and restored over itself with
--delta to the backup point: pg_dump of every database must equal the one
taken at the backup, the added file must be gone, and --json must show that
only a small part of the data was rewritten.  --delta is refused for a
running server, and without --delta a non-empty directory is refused with
a hint naming --delta.

Every pgvault command runs as the server's user (see physical_helpers.py).
"""

import json
import os
import time

from pgvault_cli import slowdown  # deadlines of polls grow under sanitizers
from physical_helpers import (SOURCE, archive_to, backup, dump_all, make_repo,
                              ok, pv, switch_wal, wait_archived)


def tree(top):
    """Every entry below top with its size, mode and modification time."""
    out = []
    for root, dirs, files in os.walk(top):
        for n in dirs + files:
            p = os.path.join(root, n)
            st = os.lstat(p)
            out.append((os.path.relpath(p, top), st.st_size, st.st_mode, st.st_mtime_ns))
    return sorted(out)


def wait_promoted(c, timeout=30):
    deadline = time.time() + timeout * slowdown()
    while c.scalar("SELECT pg_is_in_recovery()") and time.time() < deadline:
        time.sleep(0.1)
    assert not c.scalar("SELECT pg_is_in_recovery()"), c.log_tail()


def test_delta_restore_rewrites_only_what_changed(pg):
    repo = make_repo(pg)
    archive_to(pg, repo)
    pg.execute("CREATE TABLE big AS SELECT g AS id, md5(g::text) AS h, "
               "repeat(md5((g * 7)::text), 4) AS pad FROM generate_series(1, 120000) g")
    pg.execute("CREATE TABLE small (id int PRIMARY KEY, v text)")
    pg.execute("INSERT INTO small SELECT g, 'before' FROM generate_series(1, 100) g")
    pg.execute("CREATE TABLE dropme AS SELECT g FROM generate_series(1, 5000) g")
    # hint bits and the visibility map settled: later reads do not rewrite pages
    pg.execute("VACUUM (FREEZE)")
    pg.execute("CHECKPOINT")
    bid = backup(pg, repo)[0]
    want = dump_all(pg)
    assert "dropme" in want["postgres"]

    # the cluster moves on after the backup
    pg.execute("INSERT INTO small SELECT g, 'after' FROM generate_series(101, 400) g")
    pg.execute("UPDATE big SET h = 'changed' WHERE id <= 50")
    pg.execute("DROP TABLE dropme")
    pg.execute("CREATE TABLE newer AS SELECT g FROM generate_series(1, 1000) g")
    wait_archived(pg, switch_wal(pg))
    pg.stop()
    extra = os.path.join(pg.datadir, "base", "added_by_someone")
    with open(extra, "w") as f:
        f.write("not in the backup")
    with open(os.path.join(pg.datadir, "postgresql.conf"), "a") as f:
        f.write("\n# edited after the backup\n")
    # WAL in pg_wal is never in a backup and may be unarchived: delta keeps it
    wal_before = {n for n in os.listdir(os.path.join(pg.datadir, "pg_wal")) if len(n) == 24}
    assert wal_before

    # a dry run measures the same comparison, read-only, and changes nothing
    before = tree(pg.datadir)
    r = ok(pg, "restore", bid, "--repo", repo, "--source", SOURCE, "--pgdata", pg.datadir,
           "--delta", "--target-immediate", "--dry-run", "--json")
    plan = json.loads(r.out)
    assert plan["pgdata_state"] == "a stopped cluster (delta)", plan
    assert tree(pg.datadir) == before

    r = ok(pg, "restore", bid, "--repo", repo, "--source", SOURCE, "--pgdata", pg.datadir,
           "--delta", "--target-immediate", "--target-action", "promote",
           "--archive-mode", "off", "--json")
    doc = json.loads(r.out)
    d = doc["delta"]
    assert plan["delta"] == d and plan["fetch_bytes"] == d["rewritten_bytes"], (plan, d)
    print("delta restore:", json.dumps(dict(d, files=doc["files"], bytes=doc["bytes"])))
    assert doc["id"] == bid and doc["kind"] == "physical", doc
    total = doc["bytes"]
    assert total > 15 * 1024 * 1024, doc
    # every file of the backup was compared: nearly all its bytes read back
    assert d["checked_files"] == doc["files"], doc
    assert d["checked_bytes"] > 0.9 * total, doc
    # ... and only what differs was written: a few chunks, a few files
    assert 0 < d["rewritten_bytes"] < total / 10, doc
    assert 0 < d["rewritten_files"] < doc["files"] / 4, doc
    # the added file and the new table's files went
    assert d["removed_files"] >= 2, doc
    assert not os.path.exists(extra)
    assert wal_before <= set(os.listdir(os.path.join(pg.datadir, "pg_wal")))
    assert "edited after the backup" not in open(os.path.join(pg.datadir,
                                                              "postgresql.conf")).read()
    for f in ("backup_label", "recovery.signal", "global/pg_control"):
        assert os.path.exists(os.path.join(pg.datadir, f)), f
    assert pg.auto_conf()["recovery_target"] == "immediate"

    pg.start()
    wait_promoted(pg)
    got = dump_all(pg)
    assert sorted(got) == sorted(want)
    for db in want:
        assert got[db] == want[db], db
    assert pg.psql("SELECT v, count(*) FROM small GROUP BY v") == [("before", 100)]
    assert pg.scalar("SELECT count(*) FROM dropme") == 5000
    assert pg.scalar("SELECT count(*) FROM big WHERE h = 'changed'") == 0
    assert pg.scalar("SELECT to_regclass('newer')") is None

    # the same backup again over the restored (now stopped) cluster: text output
    pg.stop()
    r = ok(pg, "restore", bid, "--repo", repo, "--source", SOURCE, "--pgdata", pg.datadir,
           "--delta", "--target-immediate", "--target-action", "promote",
           "--archive-mode", "off")
    assert "delta: %d files compared" % doc["files"] in r.out, r.out
    assert "rewritten" in r.out and "removed" in r.out, r.out


def test_delta_refused_for_running_server_and_needed_for_nonempty(pg):
    repo = make_repo(pg)
    archive_to(pg, repo)
    bid = backup(pg, repo)[0]
    before = sorted(os.listdir(pg.datadir))
    r = pv(pg, "restore", bid, "--repo", repo, "--pgdata", pg.datadir, "--delta")
    assert r.rc == 5, r
    assert "a server is running in '%s' (postmaster pid" % pg.datadir in r.err, r.err
    assert sorted(os.listdir(pg.datadir)) == before
    assert pg.scalar("SELECT 1") == 1

    pg.stop()
    stopped = sorted(os.listdir(pg.datadir))
    r = pv(pg, "restore", bid, "--repo", repo, "--pgdata", pg.datadir)
    assert r.rc == 5, r
    assert "directory '%s' is not empty" % pg.datadir in r.err, r.err
    assert "--delta" in r.err, r.err
    assert sorted(os.listdir(pg.datadir)) == stopped

    # --delta rewrites data directories only, not whatever a path names
    other = os.path.join(pg.basedir, "not_a_cluster")
    os.makedirs(other)
    with open(os.path.join(other, "precious"), "w") as f:
        f.write("keep me")
    os.chmod(pg.basedir, 0o777)
    r = pv(pg, "restore", bid, "--repo", repo, "--pgdata", other, "--delta")
    assert r.rc == 5, r
    assert "holds no PostgreSQL data directory (no PG_VERSION)" in r.err, r.err
    assert os.listdir(other) == ["precious"]


def test_delta_restore_with_a_tablespace(pg):
    """Tablespaces: the link is kept when right, the backup's version
    directory is cleaned and rewritten, another cluster's version directory
    in the same location is left alone, and a tablespace created after the
    backup loses its link (its directory is left, and named)."""
    repo = make_repo(pg)
    archive_to(pg, repo)
    loc = pg.mkdir("ts1")
    loc2 = pg.mkdir("ts2")
    pg.execute("CREATE TABLESPACE ts1 LOCATION '%s'" % loc)
    pg.execute("CREATE TABLE far (id int, v text) TABLESPACE ts1")
    pg.execute("INSERT INTO far SELECT g, md5(g::text) FROM generate_series(1, 3000) g")
    pg.execute("CHECKPOINT")
    oid = str(pg.scalar("SELECT oid FROM pg_tablespace WHERE spcname = 'ts1'"))
    bid = backup(pg, repo)[0]
    want = dump_all(pg)
    far = pg.psql("SELECT count(*), sum(hashtext(v)) FROM far")

    pg.execute("INSERT INTO far SELECT g, 'later' FROM generate_series(1, 500) g")
    pg.execute("CREATE TABLE far2 TABLESPACE ts1 AS SELECT g FROM generate_series(1, 100) g")
    pg.execute("CREATE TABLESPACE ts2 LOCATION '%s'" % loc2)
    pg.execute("CREATE TABLE other (x int) TABLESPACE ts2")
    oid2 = str(pg.scalar("SELECT oid FROM pg_tablespace WHERE spcname = 'ts2'"))
    wait_archived(pg, switch_wal(pg))
    pg.stop()
    (version_dir,) = [d for d in os.listdir(loc) if d.startswith("PG_15_")]
    foreign = os.path.join(loc, "PG_16_299999999")
    os.makedirs(os.path.join(foreign, "1"))
    with open(os.path.join(foreign, "1", "12345"), "w") as f:
        f.write("another cluster's table")
    stray = os.path.join(loc, version_dir, "stray_file")
    with open(stray, "w") as f:
        f.write("not in the backup")

    before = (tree(pg.datadir), tree(loc), tree(loc2))
    r = ok(pg, "restore", bid, "--repo", repo, "--source", SOURCE, "--pgdata", pg.datadir,
           "--delta", "--target-immediate", "--dry-run")
    assert "differ from the backup (compared on disk);" in r.out, r.out
    assert "would be removed" in r.out, r.out
    assert "tablespace %s is not in backup %s: its link would be removed" % (oid2, bid) in r.err
    assert (tree(pg.datadir), tree(loc), tree(loc2)) == before

    r = ok(pg, "restore", bid, "--repo", repo, "--source", SOURCE, "--pgdata", pg.datadir,
           "--delta", "--target-immediate", "--target-action", "promote",
           "--archive-mode", "off", "--json")
    doc = json.loads(r.out)
    assert doc["delta"]["removed_files"] >= 3, doc
    assert "tablespace %s is not in backup %s: its link was removed, its directory '%s' " \
        "is left as it is" % (oid2, bid, loc2) in r.err, r.err
    assert os.readlink(os.path.join(pg.datadir, "pg_tblspc", oid)) == loc
    assert not os.path.lexists(os.path.join(pg.datadir, "pg_tblspc", oid2))
    assert not os.path.exists(stray)
    assert open(os.path.join(foreign, "1", "12345")).read() == "another cluster's table"

    pg.start()
    wait_promoted(pg)
    got = dump_all(pg)
    for db in want:
        assert got[db] == want[db], db
    assert pg.psql("SELECT count(*), sum(hashtext(v)) FROM far") == far
    assert pg.scalar("SELECT to_regclass('far2')") is None


def test_help_names_delta_and_dry_run(pg):
    r = pv(pg, "restore", "--pgdata", "x", "--help")
    assert r.rc == 0, r
    assert "--delta " in r.out and "--dry-run " in r.out, r.out
    assert "--delta \\\n" in r.out and "--dry-run\n" in r.out, r.out  # in the examples
    r = pv(pg, "restore", "--target-db", "x", "--help")
    assert r.rc == 0 and "--dry-run " in r.out and "--clean --dry-run --json" in r.out, r.out
    # --delta alone means a physical restore (into the source's pgdata)
    r = pv(pg, "restore", "latest", "--delta", "--repo", os.path.join(pg.basedir, "none"))
    assert r.rc == 2 and "where to? give --pgdata DIR" in r.err, r
    r = pv(pg, "restore", "latest", "--pgdata", "x", "--dry-run", "--start")
    assert r.rc == 2 and "--dry-run writes nothing" in r.err, r
