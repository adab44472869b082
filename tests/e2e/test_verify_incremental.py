"""test_verify_incremental.py: `pgvault verify --new / --sample PERCENT` and
verify-period (issue 7 item 3).

Spec under test: every verify that reads packs records which packs it read,
when and with what outcome (records/packcheck); `--new` reads only packs no
verify has read (or whose last read found damage); `--sample P` reads those
plus ceil(P % of the other packs, by count); packs last read longer ago than
verify-period are always read by --new/--sample ("forced"); a verify with no
flag reads everything.  Text and --json say what was read, skipped, sampled
and forced; damage names the chunk, its pack and the backups; exit 3 on
damage.

Scenarios: backup 1 + full verify, backup 2, --new reads exactly backup 2's
packs; a flipped byte in a verified pack is missed by --new (which says what
it skipped), found by --sample 100 and a full verify; the damaged pack is
re-read by the next --new; verify-period (file and --verify-period) forces
old packs back in; --sample's count; prune deleting and repacking packs; a
damaged record rebuilt; usage errors; the WAL a physical backup needs is
checked even when --new reads no pack (the one test with a server).

The other backups are file backups of random data: no PostgreSQL server is
needed, and the data does not deduplicate or compress, so every backup adds
packs of its own.
"""

import json
import math
import os
import subprocess
import time

import pytest

from pgcluster import clean_env
from pgvault_cli import pgvault_bin, run_pgvault, run_pgvault_json

MiB = 1024 * 1024


def pv(repo, *args, json_out=False, config=None):
    base = list(args) + ["--repo", repo]
    if config:
        base += ["--config", config]
    if json_out:
        return run_pgvault_json(*base, timeout=300)
    return run_pgvault(*base, timeout=300)


def backup(repo, tmp_path, name, size):
    """A file backup of size random bytes read from standard input; its id."""
    p = tmp_path / ("%s.bin" % name)
    p.write_bytes(os.urandom(size))
    with open(p, "rb") as f:
        r = subprocess.run([pgvault_bin(), "backup", "--stdin", "--name", name, "--repo", repo,
                            "--json"], stdin=f, capture_output=True, env=clean_env(None),
                           timeout=300)
    assert r.returncode == 0, r.stderr.decode()
    return json.loads(r.stdout)["id"]


def packs_on_disk(repo):
    """{pack id: size} of every pack file in the repository."""
    out = {}
    for d in os.listdir(os.path.join(repo, "data")):
        for name in os.listdir(os.path.join(repo, "data", d)):
            out[name] = os.path.getsize(os.path.join(repo, "data", d, name))
    return out


def pack_path(repo, pack_id):
    return os.path.join(repo, "data", pack_id[:2], pack_id)


def read_ids(doc):
    return {p["id"]: p["bytes"] for p in doc["selection"]["read_packs"]}


@pytest.fixture
def repo(tmp_path):
    r = str(tmp_path / "repo")
    rc, out, err = run_pgvault("init", "--repo", r, "--pack-size", "4MiB")
    assert rc == 0, err
    return r


def test_new_reads_only_new_packs_then_damage(repo, tmp_path):
    b1 = backup(repo, tmp_path, "one", 12 * MiB)
    packs1 = packs_on_disk(repo)
    rc, doc, err = pv(repo, "verify", json_out=True)
    assert rc == 0, err
    assert doc["mode"] == "full" and doc["status"] == "ok"
    assert read_ids(doc) == packs1
    assert doc["selection"]["full"] == {"packs": len(packs1), "bytes": sum(packs1.values())}
    assert os.path.exists(os.path.join(repo, "records", "packcheck"))

    b2 = backup(repo, tmp_path, "two", 9 * MiB)
    packs2 = packs_on_disk(repo)
    new = {k: v for k, v in packs2.items() if k not in packs1}
    assert new
    rc, doc, err = pv(repo, "verify", "--new", json_out=True)
    assert rc == 0, err
    sel = doc["selection"]
    assert doc["mode"] == "new"
    assert read_ids(doc) == new                      # exactly the new packs, by id and size
    assert all(p["reason"] == "new" and p["ok"] for p in sel["read_packs"])
    assert sel["read"] == {"packs": len(new), "bytes": sum(new.values())}
    assert sel["new"] == sel["read"]
    assert sel["skipped"] == {"packs": len(packs1), "bytes": sum(packs1.values())}
    assert sel["sampled"]["packs"] == 0 and sel["forced_by_period"]["packs"] == 0
    assert {b["id"] for b in doc["backups"]} == {b1, b2}   # manifests still all checked

    # Damage a byte in the middle of the largest pack of backup 1 (a data pack).
    victim = max(packs1, key=packs1.get)
    path = pack_path(repo, victim)
    with open(path, "r+b") as f:
        f.seek(packs1[victim] // 2)
        c = f.read(1)
        f.seek(packs1[victim] // 2)
        f.write(bytes([c[0] ^ 0x40]))

    # --new does not read it, and says so.
    rc, out, err = pv(repo, "verify", "--new")
    assert rc == 0, out + err
    assert "verify (new): read 0 packs (0 B): 0 packs (0 B) new or damaged when last read" in out
    assert "verify (new): skipped %d packs" % len(packs2) in out
    assert "damage in them is not looked for by this run" in out
    assert "verify: OK, no damage found" in out

    # --sample 100 reads it: names the chunk, the pack and backup 1; exit 3.
    rc, doc, err = pv(repo, "verify", "--sample", "100", json_out=True)
    assert rc == 3, err
    assert doc["status"] == "corrupt" and doc["mode"] == "sample"
    assert doc["selection"]["sampled"]["packs"] == len(packs2)
    bad = [p for p in doc["problems"] if p["type"] == "chunk"]
    assert len(bad) == 1, doc["problems"]
    assert bad[0]["pack"] == victim and len(bad[0]["object"]) == 64
    assert bad[0]["object"] in bad[0]["message"] and "is corrupt" in bad[0]["message"]
    assert bad[0]["backups"] == [b1]
    damaged = {b["id"]: b["status"] for b in doc["backups"]}
    assert damaged == {b1: "damaged", b2: "ok"}
    assert [p for p in doc["selection"]["read_packs"] if not p["ok"]] == \
        [{"id": victim, "bytes": packs1[victim], "reason": "sample", "ok": False}]

    # The next --new reads the damaged pack again (and only it).
    rc, doc, err = pv(repo, "verify", "--new", json_out=True)
    assert rc == 3
    assert read_ids(doc) == {victim: packs1[victim]}
    assert doc["selection"]["read_packs"][0]["reason"] == "damaged"

    # A full verify finds it too, in text: set aside by the verifies above
    # (records/quarantine), so no backup will use the damaged copy again.
    rc, out, err = pv(repo, "verify")
    assert rc == 3
    assert "DAMAGED chunk: chunk %s is damaged (an earlier verify set it aside" % bad[0]["object"] in out
    assert "affects 1 backup: %s" % b1 in out
    assert "verify (full): read %d packs (" % len(packs2) in out and ": every pack\n" in out
    rc, out, err = pv(repo, "verify", b2)
    assert rc == 0, out + err
    assert "verify (full): read %d packs (" % len(new) in out
    assert ": every pack the chosen backups need\n" in out


def test_period_forces_old_packs(repo, tmp_path):
    backup(repo, tmp_path, "one", 9 * MiB)
    packs = packs_on_disk(repo)
    rc, doc, err = pv(repo, "verify", json_out=True)
    assert rc == 0, err
    conf = tmp_path / "pgvault.conf"
    conf.write_text("[global]\nverify-period = 1h\n")
    rc, doc, err = pv(repo, "verify", "--new", json_out=True, config=str(conf))
    assert rc == 0, err
    assert doc["selection"]["verify_period_s"] == 3600
    assert doc["selection"]["read"]["packs"] == 0
    assert doc["selection"]["skipped"]["packs"] == len(packs)

    time.sleep(2.2)
    conf.write_text("[global]\nverify-period = 1s\n")
    rc, doc, err = pv(repo, "verify", "--new", json_out=True, config=str(conf))
    assert rc == 0, err
    sel = doc["selection"]
    assert sel["forced_by_period"] == {"packs": len(packs), "bytes": sum(packs.values())}
    assert read_ids(doc) == packs
    assert all(p["reason"] == "period" for p in sel["read_packs"])
    assert sel["skipped"]["packs"] == 0

    # --verify-period on the command line overrides the file; 0 = never forced.
    time.sleep(2.2)
    rc, doc, err = pv(repo, "verify", "--new", "--verify-period", "0", json_out=True,
                      config=str(conf))
    assert rc == 0, err
    assert doc["selection"]["read"]["packs"] == 0
    rc, out, err = pv(repo, "verify", "--sample", "0", "--verify-period", "1s")
    assert rc == 0, err
    assert "%d packs" % len(packs) in out and "forced by verify-period (1s)" in out
    # ...and the environment variable sets it too
    time.sleep(2.2)
    rc, doc, err = run_pgvault_json("verify", "--new", "--repo", repo,
                                    env={"PGVAULT_VERIFY_PERIOD": "1s"})
    assert rc == 0, err
    assert doc["selection"]["forced_by_period"]["packs"] == len(packs)


@pytest.mark.parametrize("percent", ["10", "50", "100"])
def test_sample_count(repo, tmp_path, percent):
    backup(repo, tmp_path, "one", 14 * MiB)
    backup(repo, tmp_path, "two", 10 * MiB)
    packs = packs_on_disk(repo)
    assert len(packs) >= 5
    rc, doc, err = pv(repo, "verify", json_out=True)
    assert rc == 0, err
    rc, doc, err = pv(repo, "verify", "--sample", percent, json_out=True)
    assert rc == 0, err
    want = math.ceil(len(packs) * float(percent) / 100)
    sel = doc["selection"]
    assert sel["sample_percent"] == float(percent)
    assert sel["sampled"]["packs"] == want
    assert sel["skipped"]["packs"] == len(packs) - want
    assert len(sel["read_packs"]) == want
    assert set(read_ids(doc)) <= set(packs)
    assert sel["sampled"]["bytes"] == sum(packs[p] for p in read_ids(doc))


def test_prune_and_repack_do_not_confuse_it(repo, tmp_path):
    """Packs prune deletes do not count; packs it writes (repack) are new."""
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(os.urandom(6 * MiB))
    b.write_bytes(os.urandom(6 * MiB))
    # a's tail and b's head share a pack: without b, prune repacks it.  One
    # worker, so chunks reach the pack writer in file order (several workers
    # may finish a's and b's chunks in any order and leave no pack mixed).
    rc, b1, err = pv(repo, "backup", "--jobs", "1", "--file", str(a), "--file", str(b),
                     json_out=True)
    assert rc == 0, err
    b1 = b1["id"]
    rc, out, err = pv(repo, "backup", "--file", str(a))
    assert rc == 0, err
    rc, doc, err = pv(repo, "verify", json_out=True)
    assert rc == 0, err
    before = packs_on_disk(repo)
    os.unlink(os.path.join(repo, "snapshots", b1))      # what expire does to a backup
    rc, out, err = pv(repo, "repo", "prune", "--repack-threshold", "90%")
    assert rc == 0, out + err
    after = packs_on_disk(repo)
    gone = set(before) - set(after)
    repacked = {k: v for k, v in after.items() if k not in before}
    assert gone and repacked, (before, after)           # prune deleted and repacked
    rc, doc, err = pv(repo, "verify", "--new", json_out=True)
    assert rc == 0, err
    assert read_ids(doc) == repacked                     # only what prune wrote
    assert all(p["reason"] == "new" for p in doc["selection"]["read_packs"])
    kept = set(after) & set(before)
    assert doc["selection"]["skipped"] == {"packs": len(kept),
                                           "bytes": sum(after[k] for k in kept)}
    rc, doc, err = pv(repo, "verify", "--new", json_out=True)
    assert rc == 0 and doc["selection"]["read"]["packs"] == 0
    # a full verify agrees on what exists: the record's deleted packs are not counted
    rc, doc, err = pv(repo, "verify", json_out=True)
    assert rc == 0 and read_ids(doc) == after


def test_corrupt_record_is_rebuilt(repo, tmp_path):
    backup(repo, tmp_path, "one", 6 * MiB)
    packs = packs_on_disk(repo)
    rc, doc, err = pv(repo, "verify", json_out=True)
    assert rc == 0, err
    rec = os.path.join(repo, "records", "packcheck")
    with open(rec, "r+b") as f:
        f.seek(10)
        f.write(b"\xff\xff\xff\xff")
    rc, out, err = pv(repo, "verify", "--new")
    assert rc == 0, out + err
    assert "verify: WARNING: pack-check record: every pack counts as never read, this verify " \
           "writes a new record: pack-check record 'records/packcheck' is damaged" in out
    assert "read %d packs" % len(packs) in out
    rc, doc, err = pv(repo, "verify", "--new", json_out=True)
    assert rc == 0 and doc["selection"]["read"]["packs"] == 0
    assert doc["selection"]["packcheck_warning"] is None


def test_usage_errors(repo):
    for args, msg in [
        (["--new", "--quick"], "--quick reads no pack data: use it without --new and --sample"),
        (["--new", "--sample", "5"], "give --new or --sample, not both"),
        (["--sample", "120"], "invalid sample percentage '120' (a number from 0 to 100, e.g. --sample 5)"),
        (["--sample", "x"], "invalid sample percentage 'x'"),
        (["--new", "--verify-period", "soon"], "invalid --verify-period 'soon'"),
    ]:
        rc, out, err = pv(repo, "verify", *args)
        assert rc != 0 and rc != 3, (args, rc)
        assert msg in err, (args, err)
        assert err.strip().count("\n") <= 1, err
    rc, out, err = run_pgvault("verify", "--help")
    assert rc == 0
    for s in ("--new", "--sample=PERCENT", "by COUNT", "--verify-period", "pgvault verify --sample 5"):
        assert s in out


def test_wal_of_physical_backups_always_checked(pg):
    """--new reads no pack here, but the WAL a physical backup needs is still
    checked (a listing): a missing segment names itself and the backup."""
    from physical_helpers import SOURCE, archive_to, conn, make_repo, ok
    from physical_helpers import pv as pv_pg
    repo = make_repo(pg)
    archive_to(pg, repo)
    doc = json.loads(ok(pg, "backup", "--physical", "--repo", repo, "--source", SOURCE,
                        "--pgdata", pg.datadir, *conn(pg), "--json").out)
    r = ok(pg, "verify", "--repo", repo, "--json")
    full = json.loads(r.out)
    assert full["status"] == "ok" and full["problems"] == []
    assert [b["missing_wal"] for b in full["backups"]] == [0]

    os.unlink(os.path.join(repo, "wal", SOURCE, doc["start_wal"][:8], doc["start_wal"]))
    r = pv_pg(pg, "verify", "--new", "--repo", repo, "--json")
    assert r.rc == 3, r
    res = json.loads(r.out)
    assert res["selection"]["read"]["packs"] == 0          # no pack data read...
    wal = [p for p in res["problems"] if p["type"] == "wal"]  # ...and the WAL still checked
    assert len(wal) == 1, res["problems"]
    assert wal[0]["object"] == doc["start_wal"] and wal[0]["backups"] == [doc["id"]]
    assert wal[0]["message"].startswith("WAL segment %s, which backup %s needs to become "
                                        "consistent (%s..%s), is missing from the archive of "
                                        "source '%s'" % (doc["start_wal"], doc["id"],
                                                         doc["start_wal"], doc["stop_wal"], SOURCE))
    assert res["backups"][0]["status"] == "damaged" and res["backups"][0]["missing_wal"] == 1
    r = pv_pg(pg, "verify", "--repo", repo)
    assert r.rc == 3
    assert "DAMAGED wal: WAL segment %s" % doc["start_wal"] in r.out
    assert "DAMAGED: WAL it needs is missing from the archive (1 gap)" in r.out
