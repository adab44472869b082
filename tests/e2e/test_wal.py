"""test_wal.py: archive-push and archive-get against a real PostgreSQL 15
archiver: round trips of real segments, idempotent re-push, a conflicting
segment refused without overwriting, another database system refused,
history files, absent files (exit 1), damage found (exit 3), bad names, and
an encrypted repository; the asynchronous mode (a background pusher and a
spool directory), its error reporting and its queue limit.
"""

import os
import shutil

import pytest

from physical_helpers import (SOURCE, archive_to, make_repo, ok, pv,
                              switch_wal, wait_archived)
from pgvault_cli import slowdown


def read(path):
    with open(path, "rb") as f:
        return f.read()


@pytest.fixture
def archived(pg):
    """A cluster archiving into a new repository, with two segments archived."""
    repo = make_repo(pg)
    archive_to(pg, repo)
    pg.execute("CREATE TABLE t AS SELECT g AS x FROM generate_series(1, 50000) g")
    segs = [switch_wal(pg)]
    pg.execute("INSERT INTO t SELECT g FROM generate_series(1, 1000) g")
    segs.append(switch_wal(pg))
    wait_archived(pg, segs[-1])
    return pg, repo, segs


def test_push_get_roundtrip_of_real_segments(archived):
    pg, repo, segs = archived
    for seg in segs:
        dest = os.path.join(pg.basedir, "got-" + seg)
        ok(pg, "archive-get", "--repo", repo, "--source", SOURCE, seg, dest)
        assert read(dest) == read(os.path.join(pg.datadir, "pg_wal", seg))
        assert os.path.getsize(dest) == 16 * 1024 * 1024
    # what is stored is compressed: a mostly empty segment takes far less
    wal_dir = os.path.join(repo, "wal", SOURCE, "00000001")
    stored = {n: os.path.getsize(os.path.join(wal_dir, n))
              for n in os.listdir(wal_dir)}
    assert segs[0] in stored and segs[1] in stored, stored
    assert stored[segs[1]] < 4 * 1024 * 1024, stored
    # the archive remembers the system it belongs to
    assert os.path.exists(os.path.join(repo, "wal", SOURCE, "archive.info"))


def test_push_again_with_same_content_succeeds(archived):
    pg, repo, segs = archived
    r = pv(pg, "archive-push", "--repo", repo, "--source", SOURCE, "--json",
           os.path.join(pg.datadir, "pg_wal", segs[0]))
    assert r.rc == 0, r
    assert '"already_archived": true' in r.out, r.out


def test_push_conflicting_segment_is_refused_and_nothing_overwritten(archived):
    pg, repo, segs = archived
    orig = read(os.path.join(pg.datadir, "pg_wal", segs[0]))
    fake_dir = os.path.join(pg.basedir, "fake")
    os.mkdir(fake_dir)
    fake = os.path.join(fake_dir, segs[0])
    data = bytearray(orig)
    data[100000] ^= 0xFF  # same header, different content
    with open(fake, "wb") as f:
        f.write(bytes(data))
    shutil.chown(fake_dir, pg.user or "root")
    shutil.chown(fake, pg.user or "root")
    r = pv(pg, "archive-push", "--repo", repo, "--source", SOURCE, fake)
    assert r.rc == 5, r
    assert "already archived" in r.err and "different content" in r.err, r.err
    assert "nothing was overwritten" in r.err, r.err
    dest = os.path.join(pg.basedir, "check")
    ok(pg, "archive-get", "--repo", repo, "--source", SOURCE, segs[0], dest)
    assert read(dest) == orig


def test_get_of_absent_files_exits_1(archived):
    pg, repo, segs = archived
    dest = os.path.join(pg.basedir, "absent")
    r = pv(pg, "archive-get", "--repo", repo, "--source", SOURCE,
           "0000000100000099000000FE", dest)
    assert r.rc == 1, r
    assert "not in the archive" in r.err, r.err
    assert not os.path.exists(dest)
    r = pv(pg, "archive-get", "--repo", repo, "--source", SOURCE,
           "00000002.history", dest)
    assert r.rc == 1, r
    # another source has nothing
    r = pv(pg, "archive-get", "--repo", repo, "--source", "other", segs[0], dest)
    assert r.rc == 1, r


def test_history_files_round_trip(pg):
    repo = make_repo(pg)
    hist = os.path.join(pg.basedir, "00000002.history")
    with open(hist, "w") as f:
        f.write("1\t0/3000000\tno recovery target specified\n")
    ok(pg, "archive-push", "--repo", repo, "--source", SOURCE, hist)
    dest = os.path.join(pg.basedir, "h")
    ok(pg, "archive-get", "--repo", repo, "--source", SOURCE,
       "00000002.history", dest)
    assert read(dest) == read(hist)
    assert os.path.exists(os.path.join(repo, "wal", SOURCE, "00000002",
                                       "00000002.history"))


def test_segment_of_another_system_is_refused(archived, pg_factory):
    pg, repo, segs = archived
    other = pg_factory("other", fresh_initdb=True)
    seg = switch_wal(other)
    path = os.path.join(other.datadir, "pg_wal", seg)
    r = pv(other, "archive-push", "--repo", repo, "--source", SOURCE, path)
    assert r.rc == 5, r
    assert "belongs to database system" in r.err, r.err
    # under its own source name it is fine
    ok(other, "archive-push", "--repo", repo, "--source", "other", path)


def test_bad_names_and_usage(pg):
    repo = make_repo(pg)
    junk = os.path.join(pg.basedir, "notwal")
    with open(junk, "w") as f:
        f.write("x")
    r = pv(pg, "archive-push", "--repo", repo, junk)
    assert r.rc == 2 and "is not the name of a WAL file" in r.err, r
    r = pv(pg, "archive-push", "--repo", repo)
    assert r.rc == 2 and "missing the WAL file path" in r.err, r
    r = pv(pg, "archive-get", "--repo", repo, "x")
    assert r.rc == 2, r
    r = pv(pg, "archive-get", "--repo", repo, "--source", "bad/name",
           "000000010000000000000001", "/tmp/x")
    assert r.rc == 2 and "invalid source name" in r.err, r
    r = pv(pg, "archive-push", "--repo", repo,
           os.path.join(pg.basedir, "000000010000000000000001"))
    assert r.rc == 1 and "not found" in r.err, r
    for cmd in ("archive-push", "archive-get"):
        r = pv(pg, cmd, "--help")
        assert r.rc == 0 and "Examples:" in r.out, r


def test_damaged_object_is_reported_not_served(archived):
    pg, repo, segs = archived
    obj = os.path.join(repo, "wal", SOURCE, "00000001", segs[1])
    data = bytearray(read(obj))
    data[len(data) // 2] ^= 0x55
    os.chmod(obj, 0o600)
    with open(obj, "wb") as f:
        f.write(bytes(data))
    dest = os.path.join(pg.basedir, "damaged")
    r = pv(pg, "archive-get", "--repo", repo, "--source", SOURCE, segs[1], dest)
    assert r.rc == 3, r
    assert "corrupt" in r.err, r.err
    assert not os.path.exists(dest)


def test_encrypted_repository(pg):
    env = {"PGVAULT_PASSPHRASE": "correct horse battery staple"}
    repo = os.path.join(pg.basedir, "enc")
    ok(pg, "init", "--repo", repo, "--encrypt", env=env)
    seg = switch_wal(pg)
    src = os.path.join(pg.datadir, "pg_wal", seg)
    ok(pg, "archive-push", "--repo", repo, "--source", SOURCE, src, env=env)
    stored = read(os.path.join(repo, "wal", SOURCE, "00000001", seg))
    assert read(src)[:40] not in stored  # the header is not visible
    dest = os.path.join(pg.basedir, "dec")
    ok(pg, "archive-get", "--repo", repo, "--source", SOURCE, seg, dest, env=env)
    assert read(dest) == read(src)
    r = pv(pg, "archive-get", "--repo", repo, "--source", SOURCE, seg, dest,
           env={"PGVAULT_PASSPHRASE": "wrong"})
    assert r.rc not in (0, 1), r


def _pusher_idle(spool, timeout=15):
    """True once no pusher holds the spool's lock (it exits when idle)."""
    import fcntl
    import time
    path = os.path.join(spool, "pusher.lock")
    deadline = time.time() + timeout * slowdown()
    while time.time() < deadline:
        with open(path, "a") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                pass
        time.sleep(0.2)
    return False


def test_async_push_by_the_server(pg):
    from pgvault_cli import pgvault_bin
    repo = make_repo(pg)
    spool = pg.mkdir("spool")
    pg.restart(archive_mode="on", archive_command="%s archive-push --async --spool-path %s "
               "--repo %s --source %s %%p" % (pgvault_bin(), spool, repo, SOURCE))
    segs = []
    for i in range(8):
        pg.execute("CREATE TABLE a%d AS SELECT g FROM generate_series(1, 1000) g" % i)
        segs.append(switch_wal(pg))
    wait_archived(pg, segs[-1])
    for seg in segs:
        dest = os.path.join(pg.basedir, "a-" + seg)
        ok(pg, "archive-get", "--repo", repo, "--source", SOURCE, seg, dest)
        src = os.path.join(pg.datadir, "pg_wal", seg)
        if os.path.exists(src):
            assert read(dest) == read(src)
    assert _pusher_idle(os.path.join(spool, SOURCE))
    # every note is consumed by the server's calls (the pusher may be ahead)
    import time
    out = os.path.join(spool, SOURCE, "out")
    deadline = time.time() + 20 * slowdown()
    while os.listdir(out) and time.time() < deadline:
        time.sleep(0.1)
    assert os.listdir(out) == [], (os.listdir(out), segs)
    assert pg.scalar("SELECT failed_count FROM pg_stat_archiver") == 0


def _fake_wal_dir(pg, segs, data=None):
    """A directory laid out like a data directory's pg_wal, with the given
    real segments marked ready (optionally with other contents)."""
    base = os.path.join(pg.basedir, "fake-%s" % segs[0])
    os.makedirs(os.path.join(base, "pg_wal", "archive_status"))
    for seg in segs:
        body = data.get(seg) if data else None
        if body is None:
            body = read(os.path.join(pg.datadir, "pg_wal", seg))
        with open(os.path.join(base, "pg_wal", seg), "wb") as f:
            f.write(body)
        open(os.path.join(base, "pg_wal", "archive_status", seg + ".ready"), "w").close()
    shutil.chown(base, pg.user or "root")
    for root, dirs, files in os.walk(base):
        for n in dirs + files:
            shutil.chown(os.path.join(root, n), pg.user or "root")
    return base


def test_async_push_reports_a_conflict(archived):
    pg, repo, segs = archived
    data = bytearray(read(os.path.join(pg.datadir, "pg_wal", segs[0])))
    data[200000] ^= 0x01
    base = _fake_wal_dir(pg, [segs[0]], {segs[0]: bytes(data)})
    spool = os.path.join(pg.basedir, "spool-conflict")
    r = pv(pg, "archive-push", "--async", "--spool-path", spool, "--repo", repo,
           "--source", SOURCE, "pg_wal/" + segs[0], cwd=base)
    assert r.rc == 1, r
    assert "background pusher could not archive" in r.err, r.err
    assert "different content" in r.err, r.err
    assert _pusher_idle(os.path.join(spool, SOURCE))


def test_async_queue_max_drops_loudly(pg):
    pg.restart(archive_mode="on", archive_command="/bin/true")
    segs = [switch_wal(pg) for _ in range(3)]
    base = _fake_wal_dir(pg, segs)
    repo = make_repo(pg)
    spool = os.path.join(pg.basedir, "spool-q")
    conf = os.path.join(pg.basedir, "pgvault.conf")
    with open(conf, "w") as f:
        f.write("[global]\narchive-async = on\nspool-path = %s\n"
                "archive-push-queue-max = 20MiB\n" % spool)
    r = pv(pg, "archive-push", "--config", conf, "--repo", repo, "--source", SOURCE,
           "pg_wal/" + segs[2], cwd=base)
    assert r.rc == 0, r
    assert "'%s' DROPPED without archiving" % segs[0] in r.err, r.err
    assert _pusher_idle(os.path.join(spool, SOURCE))
    stored = os.listdir(os.path.join(repo, "wal", SOURCE, "00000001"))
    # 48 MiB waited: the two oldest were dropped to get under 20 MiB
    assert stored == [segs[2]], stored
    r = pv(pg, "archive-push", "--config", conf, "--repo", repo, "--source", SOURCE,
           "pg_wal/" + segs[0], cwd=base)
    assert r.rc == 0, r  # its (drop) note is consumed: the server moves on
    assert os.listdir(os.path.join(spool, SOURCE, "out")) == [segs[1] + ".ok"]


def test_get_prefetches_the_next_segments(archived):
    pg, repo, segs = archived
    more = [switch_wal(pg) for _ in range(3)]
    wait_archived(pg, more[-1])
    allsegs = segs + more
    spool = os.path.join(pg.basedir, "spool-get")
    dest = os.path.join(pg.basedir, "got")
    ok(pg, "archive-get", "--repo", repo, "--source", SOURCE, "--prefetch", "2",
       "--spool-path", spool, allsegs[0], dest)
    assert read(dest) == read(os.path.join(pg.datadir, "pg_wal", allsegs[0]))
    inq = os.path.join(spool, SOURCE, "in")
    import time
    deadline = time.time() + 15 * slowdown()
    while time.time() < deadline and not all(
            os.path.exists(os.path.join(inq, s)) for s in allsegs[1:3]):
        time.sleep(0.1)
    assert sorted(n for n in os.listdir(inq) if n != "want" and ".tmp." not in n) == \
        allsegs[1:3]
    # the next call takes the prefetched file, and the read-ahead moves on
    ok(pg, "archive-get", "--repo", repo, "--source", SOURCE, "--prefetch", "2",
       "--spool-path", spool, allsegs[1], dest)
    assert read(dest) == read(os.path.join(pg.datadir, "pg_wal", allsegs[1]))
    assert not os.path.exists(os.path.join(inq, allsegs[1]))
    deadline = time.time() + 15 * slowdown()
    while time.time() < deadline and not os.path.exists(os.path.join(inq, allsegs[3])):
        time.sleep(0.1)
    assert os.path.exists(os.path.join(inq, allsegs[3]))
    assert _pusher_idle_file(os.path.join(spool, SOURCE, "prefetch.lock"))
    # absent files are still exit 1 with read-ahead on
    r = pv(pg, "archive-get", "--repo", repo, "--source", SOURCE, "--prefetch", "2",
           "--spool-path", spool, "0000000100000099000000FE", dest)
    assert r.rc == 1, r


def _pusher_idle_file(path, timeout=15):
    import fcntl
    import time
    deadline = time.time() + timeout * slowdown()
    while time.time() < deadline:
        with open(path, "a") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                pass
        time.sleep(0.2)
    return False
