"""test_retention.py: `pgvault expire`, `pgvault pin` and `pgvault unpin`
end to end, on logical backups of a real PostgreSQL server (issue 7).

Spec under test:
  pgvault expire [--dry-run] [--source NAME] [--kind KIND] [--no-prune]
      [--repack-threshold PCT] [--lock-wait D] [--json]
  Per source, kind and database: the newest backup and pinned backups are
  always kept; keep-* / retention-KIND rules keep the others or not; every
  backup is printed with the rules that keep it; expired manifests are
  deleted (with their verify records), then the repository is pruned.
  pgvault pin ID [--note TEXT] | pin --list | unpin ID.

The retention rules themselves (calendars, DST, ISO weeks) are unit-tested
in tests/unit/ops/test_retention.c; here: that expire applies them to a
repository, that the data only expired backups held is really gone, and
that the kept backups still verify and restore.
"""

import glob
import os
import time

import pytest

from pgvault_cli import slowdown  # deadlines of polls grow under sanitizers
from pgvault_cli import conn_args, run_pgvault, run_pgvault_json, tools_env

MARKER = "EXPIRED-ONLY-6f1d2c"


def pv(cluster, repo, *args, json_out=False, timeout=180):
    base = list(args) + ["--repo", repo]
    if json_out:
        return run_pgvault_json(*base, env=tools_env(cluster), timeout=timeout)
    return run_pgvault(*base, env=tools_env(cluster), timeout=timeout)


def backup(cluster, repo, db):
    # backup ids (and start times) have a one-second resolution: keep the order unambiguous
    time.sleep(1.05)
    rc, doc, err = pv(cluster, repo, "backup", "--logical", *conn_args(cluster, db), json_out=True)
    assert rc == 0, err
    return doc["id"]


def packs_contain(repo, text):
    needle = text.encode()
    for p in glob.glob(os.path.join(repo, "data", "*", "*")):
        with open(p, "rb") as f:
            if needle in f.read():
                return True
    return False


@pytest.fixture(scope="module")
def env(pg_module, pgvault_bin, tmp_path_factory):
    c = pg_module
    base = tmp_path_factory.mktemp("retention")
    repo = str(base / "repo")
    # no compression: the marker is visible in the packs as long as its chunk exists
    rc, out, err = run_pgvault("init", "--repo", repo, "--compression", "none")
    assert rc == 0, err
    c.execute("CREATE DATABASE app")
    c.execute("CREATE DATABASE other")
    c.execute("CREATE TABLE t (id int PRIMARY KEY, v text);"
              "INSERT INTO t SELECT g, 'row ' || g FROM generate_series(1, 2000) g;"
              "CREATE TABLE gone (id int, v text);"
              "INSERT INTO gone SELECT g, '%s ' || g FROM generate_series(1, 2000) g" % MARKER, db="app")
    c.execute("CREATE TABLE o (x int); INSERT INTO o VALUES (1)", db="other")
    ids = [backup(c, repo, "app")]
    c.execute("INSERT INTO t SELECT g, 'row ' || g FROM generate_series(2001, 3000) g", db="app")
    ids.append(backup(c, repo, "app"))
    c.execute("DROP TABLE gone", db="app")          # from here on no backup holds the marker
    c.execute("INSERT INTO t SELECT g, 'row ' || g FROM generate_series(3001, 4000) g", db="app")
    ids.append(backup(c, repo, "app"))
    c.execute("INSERT INTO t SELECT g, 'row ' || g FROM generate_series(4001, 5000) g", db="app")
    ids.append(backup(c, repo, "app"))
    other = backup(c, repo, "other")
    conf = base / "pgvault.conf"
    # yearly=1 keeps the newest of this year, min=2 one more: the two oldest
    # backups of 'app' expire (in a zone where it is now about noon, so no
    # New Year's midnight falls between the backups and the expire)
    zone = noon_zone()
    conf.write_text("[global]\nretention-logical = yearly=1,min=2\ntime-zone = %s\n" % zone)
    return {"cluster": c, "repo": repo, "app": ids, "other": other, "conf": str(conf), "zone": zone}


def noon_zone():
    """A fixed-offset time zone in which it is now about noon: a calendar
    period (day, week, month, year) cannot end during the test there."""
    off = 12 - time.gmtime().tm_hour
    return "Etc/GMT%+d" % -off if off else "UTC"


def by_id(doc):
    return {b["id"]: b for b in doc["backups"]}


def test_no_policy_expires_nothing(env):
    rc, doc, err = pv(env["cluster"], env["repo"], "expire", json_out=True)
    assert rc == 0, err
    assert doc["expire"] == 0 and doc["deleted"] == []
    assert all(b["action"] == "keep" and "no-policy" in b["reasons"] for b in doc["backups"])
    assert {g["policy"] for g in doc["groups"]} == {"none"}


def test_dry_run_prints_every_backup_and_why(env):
    app = env["app"]
    rc, doc, err = pv(env["cluster"], env["repo"], "expire", "--dry-run", "--config", env["conf"],
                      json_out=True)
    assert rc == 0, err
    assert doc["dry_run"] is True and doc["deleted"] == [] and doc["prune"] is None
    b = by_id(doc)
    assert b[app[3]]["action"] == "keep" and b[app[3]]["reasons"] == ["newest", "yearly"]
    assert b[app[3]]["periods"]["yearly"].isdigit()
    assert b[app[2]]["action"] == "keep" and b[app[2]]["reasons"] == ["min"]
    assert b[app[1]]["action"] == "expire" and b[app[1]]["reasons"] == []
    assert b[app[0]]["action"] == "expire"
    # another database is another group: its only backup is its newest
    assert b[env["other"]]["reasons"] == ["newest", "yearly"]
    groups = {g["database"]: g for g in doc["groups"]}
    assert groups["app"]["policy"] == "yearly=1,min=2" and groups["app"]["expire"] == 2
    assert groups["app"]["policy_from"] == "[global] retention-logical"
    assert doc["expire"] == 2 and doc["keep"] == 3
    # nothing changed
    assert sorted(os.listdir(os.path.join(env["repo"], "snapshots"))) == sorted(app + [env["other"]])

    rc, out, err = pv(env["cluster"], env["repo"], "expire", "--dry-run", "--config", env["conf"])
    assert rc == 0, err
    assert ("- logical app: policy yearly=1,min=2 ([global] retention-logical), time zone %s"
            % env["zone"]) in out
    assert "keep    %s" % app[3] in out and "newest, yearly " in out
    assert "expire  %s" % app[0] in out
    assert "expire: would expire 2 of 5 backups (3 kept)" in out

    # filters
    rc, doc, err = pv(env["cluster"], env["repo"], "expire", "--dry-run", "--config", env["conf"],
                      "--kind", "physical", json_out=True)
    assert rc == 0 and doc["backups"] == [] and doc["expire"] == 0
    rc, doc, err = pv(env["cluster"], env["repo"], "expire", "--dry-run", "--config", env["conf"],
                      "--source", "elsewhere", json_out=True)
    assert rc == 0 and doc["backups"] == []


def test_pin_holds_a_backup(env):
    app, c, repo = env["app"], env["cluster"], env["repo"]
    rc, out, err = pv(c, repo, "pin", app[0][:19], "--note", "case 4711")
    assert rc == 0 and out.strip() == "pinned backup %s" % app[0], (out, err)
    rc, out, err = pv(c, repo, "pin", app[0])
    assert rc == 5 and "backup '%s' is already pinned" % app[0] in err
    rc, doc, err = pv(c, repo, "pin", "--list", json_out=True)
    assert rc == 0 and [p["id"] for p in doc["pins"]] == [app[0]]
    assert doc["pins"][0]["note"] == "case 4711" and doc["pins"][0]["user"]
    rc, doc, err = pv(c, repo, "expire", "--dry-run", "--config", env["conf"], json_out=True)
    assert rc == 0, err
    b = by_id(doc)
    assert b[app[0]]["action"] == "keep" and b[app[0]]["reasons"] == ["pinned"]
    assert b[app[1]]["action"] == "expire" and doc["expire"] == 1
    # list shows it too
    rc, doc, err = pv(c, repo, "list", "--config", env["conf"], json_out=True)
    assert rc == 0, err
    b = by_id(doc)
    assert b[app[0]]["pinned"] is True and b[app[0]]["retention"]["reasons"] == ["pinned"]
    assert b[app[1]]["pinned"] is False and b[app[1]]["retention"]["action"] == "expire"

    rc, out, err = pv(c, repo, "unpin", app[0])
    assert rc == 0 and "unpinned backup %s" % app[0] in out
    rc, out, err = pv(c, repo, "unpin", app[0])
    assert rc == 1 and "backup '%s' is not pinned" % app[0] in err
    rc, out, err = pv(c, repo, "pin", "20990101T000000Z-abcdef")
    assert rc == 1 and "no backup '20990101T000000Z-abcdef'" in err
    rc, out, err = pv(c, repo, "pin")
    assert rc == 2 and "which backup?" in err


def test_expire_deletes_and_prunes_then_kept_backups_verify_and_restore(env):
    app, c, repo = env["app"], env["cluster"], env["repo"]
    # a verify first, so the expired backups have records to forget
    rc, out, err = pv(c, repo, "verify")
    assert rc == 0, out + err
    assert os.path.isdir(os.path.join(repo, "records", "verify", app[0]))
    assert packs_contain(repo, MARKER)

    rc, doc, err = pv(c, repo, "expire", "--config", env["conf"], "--repack-threshold", "100",
                      json_out=True)
    assert rc == 0, err
    assert sorted(doc["deleted"]) == sorted(app[:2])
    assert doc["prune"]["bytes_freed"] > 0 and doc["prune"]["backups"] == 3
    assert sorted(os.listdir(os.path.join(repo, "snapshots"))) == sorted(app[2:] + [env["other"]])
    # the data only the expired backups held is gone, and so are their verify records
    assert not packs_contain(repo, MARKER)
    assert glob.glob(os.path.join(repo, "records", "verify", app[0], "*")) == []
    assert len(glob.glob(os.path.join(repo, "records", "verify", app[2], "*.ok"))) == 1
    # the kept ones are whole
    rc, out, err = pv(c, repo, "verify")
    assert rc == 0 and "verify: OK" in out, out + err
    rc, doc, err = pv(c, repo, "restore", app[2], "--target-db", "app_restored",
                      *conn_args(c, "postgres"), json_out=True)
    assert rc == 0, err
    assert c.scalar("SELECT count(*) FROM t", db="app_restored") == 4000
    rc, out, err = pv(c, repo, "restore", app[0], "--target-db", "app_gone", *conn_args(c, "postgres"))
    assert rc != 0 and "no backup '%s'" % app[0] in err

    # a second run has nothing left to do
    rc, out, err = pv(c, repo, "expire", "--config", env["conf"])
    assert rc == 0, err
    assert "expire: expired 0 of 3 backups (3 kept)" in out
    assert "prune:" in out


def test_expire_usage_errors(env):
    c, repo = env["cluster"], env["repo"]
    rc, out, err = pv(c, repo, "expire", "--repack-threshold", "150%")
    assert rc == 2 and "invalid repack threshold '150%'" in err
    rc, out, err = pv(c, repo, "expire", "extra")
    assert rc == 2 and "unexpected argument 'extra'" in err
    bad = os.path.join(os.path.dirname(env["conf"]), "bad.conf")
    with open(bad, "w") as f:
        f.write("[global]\nretention-logical = daily=lots\n")
    rc, out, err = pv(c, repo, "expire", "--config", bad)
    assert rc == 2, (out, err)
    assert "[global] retention-logical: invalid retention policy 'daily=lots': 'daily=lots' is not " \
           "a count (0 or more)" in err
    assert sorted(os.listdir(os.path.join(repo, "snapshots"))) != []
    rc, out, err = run_pgvault("expire", "--help")
    assert rc == 0 and "keep-hourly/daily/weekly/monthly/yearly" in out


def test_expire_physical_keeps_the_wal_kept_backups_need(pg, pg_factory):
    """Physical backups: WAL before the oldest kept backup's start goes; the
    kept backups still restore and replay to the end of the archive."""
    import json

    from physical_helpers import (archive_to, backup as pbackup, make_repo, ok, switch_wal,
                                  wait_archived, restore_to)

    repo = make_repo(pg)
    archive_to(pg, repo)
    pg.execute("CREATE TABLE t (x int)")
    ids = []
    for i in range(3):
        pg.execute("INSERT INTO t SELECT generate_series(1, 1000)")
        wait_archived(pg, switch_wal(pg))
        time.sleep(1.05)
        ids.append(pbackup(pg, repo)[0])
    pg.execute("INSERT INTO t SELECT generate_series(1, 1000)")   # after the last backup
    wait_archived(pg, switch_wal(pg))
    wal_dir = os.path.join(repo, "wal", "main", "00000001")
    before = sorted(n for n in os.listdir(wal_dir) if len(n) == 24)
    before_all = os.listdir(wal_dir)
    conf = os.path.join(pg.basedir, "retention.conf")
    with open(conf, "w") as f:
        f.write("[global]\nretention-physical = yearly=1,min=2\ntime-zone = %s\n" % noon_zone())
    os.chmod(conf, 0o644)

    doc = json.loads(ok(pg, "expire", "--repo", repo, "--config", conf, "--dry-run", "--json").out)
    assert doc["expire"] == 1 and doc["deleted"] == []
    wal = doc["wal"][0]
    assert wal["source"] == "main" and wal["reason"] is None and wal["delete"] > 0
    assert sorted(n for n in os.listdir(wal_dir) if len(n) == 24) == before

    doc = json.loads(ok(pg, "expire", "--repo", repo, "--config", conf, "--json").out)
    assert doc["deleted"] == [ids[0]]
    keep_from = doc["wal"][0]["keep_from"]
    meta = json.loads(ok(pg, "show", ids[1], "--repo", repo, "--json").out)["metadata"]
    assert keep_from == meta["start_wal"]
    after = sorted(n for n in os.listdir(wal_dir) if len(n) == 24)
    assert after == [n for n in before if n >= keep_from], (before, after)
    assert len(after) < len(before)
    # .backup files of the expired backup go too, history files would stay
    assert doc["wal"][0]["delete"] == len(before_all) - len(os.listdir(wal_dir))
    assert all(n[:24] >= keep_from for n in os.listdir(wal_dir))
    r = ok(pg, "verify", "--repo", repo)
    assert "verify: OK" in r.out

    # the oldest kept backup still restores and replays every later change
    c = restore_to(pg_factory, repo, ids[1], "--archive-mode", "off")
    c.start()
    deadline = time.time() + 60 * slowdown()
    while c.scalar("SELECT pg_is_in_recovery()") and time.time() < deadline:
        time.sleep(0.1)
    assert c.scalar("SELECT count(*) FROM t") == 4000
