"""test_pitr.py: point-in-time recovery from a physical backup and the WAL
archive, on a real PostgreSQL 15 cluster.

One history is built once for the module: a backup B1, rows committed at
T1 and T2 (in transaction X2, followed by restore point 'before_drop'), the
table dropped at T3, then a second backup B2.  Each test restores into a new
directory, starts the server, and checks what it sees: the rows of T1 and
T2 and the table, whichever way the target between T2 and T3 is given.
A last test switches timelines: restore, promote, archive and back up on
timeline 2, then restore across the switch.
"""

import json
import os
import shutil
import time

import pytest

from backends import make_repo
from pgvault_cli import slowdown  # deadlines of polls grow under sanitizers
from physical_helpers import (SOURCE, archive_to, backup, ok, pv,
                              restore_to, switch_wal, wait_archived)


@pytest.fixture(scope="module")
def history(pg_module, repo_backend):
    pg = pg_module
    pg.execute("DROP TABLE IF EXISTS later")  # the history on the previous backend
    repo = make_repo(pg)
    archive_to(pg, repo)
    pg.execute("CREATE TABLE events (id int PRIMARY KEY, at text)")
    b1 = backup(pg, repo)[0]
    pg.execute("INSERT INTO events SELECT g, 'T1' FROM generate_series(1, 100) g")
    with pg.connect(autocommit=False) as c:
        xid = c.execute("SELECT txid_current()").fetchone()[0]
        c.execute("INSERT INTO events SELECT g, 'T2' FROM generate_series(101, 150) g")
        c.commit()
    lsn = pg.scalar("SELECT pg_current_wal_insert_lsn()::text")
    pg.execute("SELECT pg_create_restore_point('before_drop')")
    time.sleep(0.3)
    between = pg.scalar("SELECT clock_timestamp()")
    time.sleep(0.3)
    pg.execute("DROP TABLE events")
    pg.execute("CREATE TABLE later (x int)")  # something after T3 in the same segment
    wait_archived(pg, switch_wal(pg))
    b2 = backup(pg, repo)[0]
    wait_archived(pg, switch_wal(pg))
    return dict(pg=pg, repo=repo, b1=b1, b2=b2, xid=xid, lsn=lsn,
                between=between.isoformat())


def recover(factory, h, *args, spec="latest", promote=True):
    extra = ["--target-action", "promote"] if promote else []
    c = restore_to(factory, h["repo"], spec, "--archive-mode", "off", *args, *extra)
    c.start()
    if promote:
        deadline = time.time() + 30 * slowdown()
        while c.scalar("SELECT pg_is_in_recovery()") and time.time() < deadline:
            time.sleep(0.1)
        assert not c.scalar("SELECT pg_is_in_recovery()"), c.log_tail()
    return c


def assert_between_t2_and_t3(c):
    assert c.psql("SELECT at, count(*) FROM events GROUP BY at ORDER BY at") == \
        [("T1", 100), ("T2", 50)]
    assert c.scalar("SELECT to_regclass('later')") is None


@pytest.mark.backends
def test_target_time_picks_the_backup_before_it(history, pg_factory):
    c = recover(pg_factory, history, "--target-time", history["between"])
    assert_between_t2_and_t3(c)
    # 'latest' with a target chose B1: B2 was taken after the target
    label = open(c.datadir + "/backup_label.old").read()
    assert "pgvault backup %s" % history["b1"] in label, label


def test_target_lsn(history, pg_factory):
    c = recover(pg_factory, history, "--target-lsn", history["lsn"])
    assert_between_t2_and_t3(c)


def test_target_xid_inclusive_and_exclusive(history, pg_factory):
    c = recover(pg_factory, history, "--target-xid", str(history["xid"]))
    assert_between_t2_and_t3(c)
    c2 = recover(pg_factory, history, "--target-xid", str(history["xid"]),
                 "--target-exclusive")
    assert c2.psql("SELECT at, count(*) FROM events GROUP BY at") == [("T1", 100)]


def test_target_name(history, pg_factory):
    c = recover(pg_factory, history, "--target-name", "before_drop",
                spec=history["b1"])
    assert_between_t2_and_t3(c)


def test_target_action_pause(history, pg_factory):
    c = recover(pg_factory, history, "--target-time", history["between"],
                "--target-action", "pause", promote=False)
    deadline = time.time() + 30 * slowdown()
    while time.time() < deadline and \
            c.scalar("SELECT pg_get_wal_replay_pause_state()") != "paused":
        time.sleep(0.1)
    assert c.scalar("SELECT pg_get_wal_replay_pause_state()") == "paused"
    assert c.scalar("SELECT pg_is_in_recovery()") is True
    # (the DROP's lock, replayed before its commit, blocks reading events
    # while paused: resume, which ends recovery at the target)
    c.execute("SELECT pg_wal_replay_resume()")
    deadline = time.time() + 30 * slowdown()
    while c.scalar("SELECT pg_is_in_recovery()") and time.time() < deadline:
        time.sleep(0.1)
    assert_between_t2_and_t3(c)


def test_no_target_replays_everything(history, pg_factory):
    # with read-ahead: the restored server's archive-get prefetches segments
    spool = os.path.join(history["pg"].basedir, "spool-replay")
    c = restore_to(pg_factory, history["repo"], history["b1"], "--archive-mode", "off",
                   "--prefetch", "4", "--spool-path", spool)
    assert "--prefetch 4 --spool-path" in c.auto_conf()["restore_command"]
    c.start()
    deadline = time.time() + 30 * slowdown()
    while c.scalar("SELECT pg_is_in_recovery()") and time.time() < deadline:
        time.sleep(0.1)
    assert c.scalar("SELECT to_regclass('events')") is None
    assert c.scalar("SELECT to_regclass('later')") == "later"
    # recovery asked for segments through the spool
    assert os.path.exists(os.path.join(spool, SOURCE, "in", "want"))


def test_backup_after_the_target_is_refused(history, pg_factory):
    h = history
    r = pv(h["pg"], "restore", h["b2"], "--repo", h["repo"], "--pgdata",
           h["pg"].basedir + "/nope", "--target-time", h["between"])
    assert r.rc == 2, r
    assert "cannot be restored to time" in r.err and "consistent at" in r.err, r.err
    r = pv(h["pg"], "restore", h["b2"], "--repo", h["repo"], "--pgdata",
           h["pg"].basedir + "/nope", "--target-lsn", h["lsn"])
    assert r.rc == 2, r
    r = pv(h["pg"], "restore", "latest", "--repo", h["repo"], "--pgdata",
           h["pg"].basedir + "/nope", "--target-time", "2001-01-01 00:00 UTC")
    assert r.rc == 1 and "no physical backup" in r.err, r.err
    r = pv(h["pg"], "restore", "latest", "--repo", h["repo"], "--pgdata",
           h["pg"].basedir + "/nope", "--target-action", "promote")
    assert r.rc == 2 and "need a recovery target" in r.err, r.err
    r = pv(h["pg"], "restore", "latest", "--repo", h["repo"], "--pgdata",
           h["pg"].basedir + "/nope", "--target-time", "yesterday-ish")
    assert r.rc == 2 and "invalid time" in r.err, r.err


def test_timeline_switch(pg_factory):
    """Restore and promote (timeline 2), keep archiving there, back up the
    new primary, and restore across the switch, both from the new backup
    and from the old one (following timeline 2 through its history file)."""
    pg = pg_factory("tli")
    repo = make_repo(pg)
    archive_to(pg, repo)
    pg.execute("CREATE TABLE h (id int, tl text)")
    b1 = backup(pg, repo)[0]
    pg.execute("INSERT INTO h SELECT g, 'a' FROM generate_series(1, 10) g")
    wait_archived(pg, switch_wal(pg))

    # the new primary archives into the same source: its archive_command came
    # with the backup (preserved), and timeline 2 names do not collide
    c = restore_to(pg_factory, repo, b1, name="tl2")
    c.start()
    deadline = time.time() + 30 * slowdown()
    while c.scalar("SELECT pg_is_in_recovery()") and time.time() < deadline:
        time.sleep(0.1)
    assert c.scalar("SELECT timeline_id FROM pg_control_checkpoint()") == 2
    c.execute("INSERT INTO h SELECT g, 'b' FROM generate_series(11, 20) g")
    b2 = backup(c, repo)[0]
    c.execute("INSERT INTO h SELECT g, 'c' FROM generate_series(21, 30) g")
    wait_archived(c, switch_wal(c))
    assert c.scalar("SELECT last_archived_wal FROM pg_stat_archiver").startswith("00000002")
    tl2 = os.listdir(os.path.join(repo, "wal", SOURCE, "00000002"))
    assert "00000002.history" in tl2, tl2
    # the old timeline goes on too: nothing of it may leak into timeline 2
    pg.execute("INSERT INTO h SELECT g, 'old' FROM generate_series(1, 5) g")
    wait_archived(pg, switch_wal(pg))

    def counts(x):
        return x.psql("SELECT tl, count(*) FROM h GROUP BY tl ORDER BY tl")

    d = restore_to(pg_factory, repo, b2, "--archive-mode", "off", name="fromb2")
    d.start()
    deadline = time.time() + 30 * slowdown()
    while d.scalar("SELECT pg_is_in_recovery()") and time.time() < deadline:
        time.sleep(0.1)
    assert counts(d) == [("a", 10), ("b", 10), ("c", 10)]

    e = restore_to(pg_factory, repo, b1, "--archive-mode", "off", name="fromb1")
    e.start()
    deadline = time.time() + 30 * slowdown()
    while e.scalar("SELECT pg_is_in_recovery()") and time.time() < deadline:
        time.sleep(0.1)
    assert counts(e) == [("a", 10), ("b", 10), ("c", 10)]

    f = restore_to(pg_factory, repo, b1, "--archive-mode", "off",
                   "--target-timeline", "current", name="tl1")
    f.start()
    deadline = time.time() + 30 * slowdown()
    while f.scalar("SELECT pg_is_in_recovery()") and time.time() < deadline:
        time.sleep(0.1)
    assert counts(f) == [("a", 10), ("old", 5)]


def test_restore_start_waits_for_recovery(history, pg_factory):
    c = pg_factory("started", start=False)
    shutil.rmtree(c.datadir)
    r = ok(c, "restore", "latest", "--repo", history["repo"], "--pgdata", c.datadir,
           "--target-time", history["between"], "--target-action", "promote",
           "--archive-mode", "off", "--start", "--start-options",
           "-p %d -k %s" % (c.port, c.host), "--json")
    doc = json.loads(r.out)
    assert doc["id"] == history["b1"], doc
    assert doc["cluster_state"] == "in production", doc
    assert doc["recovery_ms"] >= doc["start_ms"] > 0, doc
    assert "recovery ended (in production): restore" in r.err, r.err
    assert c.scalar("SELECT pg_is_in_recovery()") is False
    assert_between_t2_and_t3(c)
    # a restore that cannot reach its target reports the server's reason
    d = pg_factory("startfail", start=False)
    shutil.rmtree(d.datadir)
    r = pv(d, "restore", history["b1"], "--repo", history["repo"], "--pgdata", d.datadir,
           "--target-name", "no_such_point", "--target-action", "promote",
           "--archive-mode", "off", "--start", "--start-options",
           "-p %d -k %s" % (d.port, d.host))
    assert r.rc == 1, r
    assert "the server stopped during recovery" in r.err, r.err
    assert "recovery target was reached" in r.err or "recovery ended before" in r.err, r.err
