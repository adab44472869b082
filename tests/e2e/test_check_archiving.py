"""test_check_archiving.py: `pgvault check` notices archiving that looks
configured but fails, and the settings that make WAL pile up; and its
archive test: a forced WAL switch must reach the repository under the
source (the time it took is reported; an archive_command that names another
source or repository, or fails, is a clear failure naming pg_stat_archiver's
last failure)."""

import time

from test_check import by_name, run_check


def _wait_for_failed_archive(pg, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pg.scalar("SELECT failed_count FROM pg_stat_archiver") > 0:
            return
        time.sleep(0.2)
    raise AssertionError("the archiver never reported a failure")


def test_failing_archive_command_is_a_failure(pg, tmp_path):
    pg.restart(archive_mode="on", archive_command="/bin/false")
    pg.execute("CREATE TABLE t AS SELECT 1 AS x")
    pg.execute("SELECT pg_switch_wal()")
    _wait_for_failed_archive(pg)
    rc, doc, _ = run_check(pg, "--repo", str(tmp_path), db="postgres")
    c = by_name(doc)["archive_command"]
    assert c["status"] == "failure", c
    assert "archiving is failing" in c["message"], c
    # the segment that failed is named, so the operator can find it in the log
    failed_wal = pg.scalar("SELECT last_failed_wal FROM pg_stat_archiver")
    assert failed_wal in c["message"], (failed_wal, c)
    assert c["details"]["failed_count"] >= 1, c
    assert c["hint"], c
    assert rc == 2


def test_empty_archive_command_with_archive_mode_on_is_a_failure(pg, tmp_path):
    pg.restart(archive_mode="on", archive_command="")
    rc, doc, _ = run_check(pg, "--repo", str(tmp_path), db="postgres")
    c = by_name(doc)["archive_command"]
    assert c["status"] == "failure", c
    assert "accumulates" in c["message"], c
    assert "pgvault archive-push" in c["hint"], c
    assert rc == 2


def test_archive_timeout_reported_in_seconds(pg, tmp_path):
    pg.restart(archive_mode="on", archive_timeout="90s")
    rc, doc, _ = run_check(pg, "--repo", str(tmp_path), db="postgres")
    c = by_name(doc)["archive_timeout"]
    assert c["status"] == "ok", c
    assert c["details"]["seconds"] == 90, c


# ---- the archive test: a forced WAL switch must reach the repository ----

def _check_as_server(pg, repo, *extra):
    import json
    from physical_helpers import conn, pv
    r = pv(pg, "check", *conn(pg), "--repo", repo, "--source", "main", "--json", *extra)
    assert r.out.startswith("{"), r
    doc = json.loads(r.out)
    return r.rc, doc, r.err


def test_archive_test_segment_reaches_the_repository(pg):
    import os
    from physical_helpers import archive_to, make_repo
    repo = make_repo(pg)
    archive_to(pg, repo)
    for attempt in range(2):  # the second run on an idle server must switch too
        rc, doc, err = _check_as_server(pg, repo)
        cmd = by_name(doc)["archive_command"]
        assert cmd["status"] == "ok", cmd
        assert cmd["details"]["source"] == "main", cmd
        a = by_name(doc)["archive_push"]
        assert a["status"] == "ok", (a, err)
        seg = a["details"]["segment"]
        assert a["message"].startswith("WAL segment %s reached repository '%s' (source 'main') in "
                                       % (seg, repo)), a
        assert a["details"]["arrived"] is True and a["details"]["wait_ms"] >= 0, a
        assert os.path.exists(os.path.join(repo, "wal", "main", seg[:8], seg)), seg
    # skipped on request: nothing is switched
    before = pg.scalar("SELECT pg_walfile_name(pg_current_wal_lsn())")
    rc, doc, err = _check_as_server(pg, repo, "--no-archive-test")
    assert "archive_push" not in by_name(doc), doc
    assert pg.scalar("SELECT pg_walfile_name(pg_current_wal_lsn())") == before


def test_archive_test_other_source_is_reported(pg):
    from physical_helpers import archive_to, make_repo
    repo = make_repo(pg)
    archive_to(pg, repo, source="elsewhere")
    rc, doc, err = _check_as_server(pg, repo, "--archive-wait-timeout", "10s")
    cmd = by_name(doc)["archive_command"]
    assert cmd["status"] == "warning", cmd
    assert cmd["message"] == ("archive_command archives WAL under source 'elsewhere', but "
                              "backups of this cluster use source 'main'"), cmd
    a = by_name(doc)["archive_push"]
    assert a["status"] == "failure", a
    seg = a["details"]["segment"]
    assert a["message"] == ("the server archived WAL segment %s, but it is not in repository "
                            "'%s' under source 'main': archive_command stores WAL elsewhere"
                            % (seg, repo)), a
    assert rc == 2


def test_archive_test_failing_command_names_the_archiver_failure(pg):
    from physical_helpers import make_repo
    from pgvault_cli import pgvault_bin
    repo = make_repo(pg)
    broken = repo + "-missing"
    pg.restart(archive_mode="on", archive_command="%s archive-push --repo %s --source main %%p"
               % (pgvault_bin(), broken))
    rc, doc, err = _check_as_server(pg, repo, "--archive-wait-timeout", "30s")
    a = by_name(doc)["archive_push"]
    assert a["status"] == "failure", a
    seg = a["details"]["segment"]
    last_failed = pg.scalar("SELECT last_failed_wal FROM pg_stat_archiver")
    assert last_failed == seg, (last_failed, a)
    assert ("WAL segment %s did not reach repository '%s' (source 'main') within" % (seg, repo)
            in a["message"]), a
    assert "archive_command is failing (pg_stat_archiver: last failed WAL %s at " % seg \
        in a["message"], a
    assert "server log" in a["hint"], a
    assert a["details"]["arrived"] is False and a["details"]["failed_count"] >= 3, a
    # the command names another repository: reported before any waiting
    cmd = by_name(doc)["archive_command"]
    assert cmd["status"] == "warning", cmd
    assert cmd["message"] == ("archive_command archives WAL into repository '%s', but backups "
                              "go to '%s'" % (broken, repo)), cmd
    assert rc == 2
