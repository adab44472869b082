"""test_check_archiving.py: `pgvault check` notices archiving that looks
configured but fails, and the settings that make WAL pile up."""

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
