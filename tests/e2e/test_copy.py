"""test_copy.py: `pgvault copy` to a second repository (issue 6, item 4).

Spec under test:
  pgvault copy --to REPO [--from REPO] [ID...|--all] [--no-wal] [--dry-run]
      [--to-passphrase-file FILE] [-j N] [--json]
  The destination's passphrase: --to-passphrase-file, $PGVAULT_TO_PASSPHRASE,
  $PGVAULT_TO_PASSPHRASE_FILE, its [repo:NAME] passphrase-file, else the
  source's.  Only what the destination lacks is copied; every chunk is
  checked before it is written; a backup's manifest is written last.

Scenarios: copy to a second repository (posix, S3 on s3rver, Azure on
azurite), delete the first one, restore from the second and compare bit
for bit; copying twice copies nothing; a corrupted chunk makes copy fail
clearly with no manifest in the destination; repositories named by
[repo:NAME] sections with their own passphrases; WAL objects pushed with
archive-push come back with archive-get from the copy; a logical backup of
a real database restores from the copy after the first repository is gone.

File backups need no PostgreSQL; one test uses a cluster.  The whole file
runs in well under a minute and a half on two cores.
"""

import hashlib
import json
import os
import random
import shutil

import pytest

from pgvault_cli import conn_args, run_pgvault, run_pgvault_json, tools_env

from emulators import (StorageTool, azurite, emu_tls, emu_workdir,  # noqa: F401
                       s3rver)

MiB = 1024 * 1024
PASS_A = "first repository passphrase"
PASS_B = "second repository passphrase, another one"

_count = [0]


def write_files(d, seed):
    """Source files of a file backup: random (several chunks), text, empty."""
    rnd = random.Random(seed)
    d.mkdir(parents=True, exist_ok=True)
    files = {
        "big.bin": rnd.randbytes(3 * MiB + 17),
        "table.txt": "".join("%d\tcustomer %d\tactive\n" % (i, i * 7919 % 100003)
                             for i in range(60000)).encode(),
        "empty": b"",
    }
    for name, data in files.items():
        (d / name).write_bytes(data)
    return files


def ok(*args, env=None, **kw):
    r = run_pgvault(*args, env=env, **kw)
    assert r.rc == 0, "pgvault %s: rc=%d\n%s%s" % (" ".join(map(str, args)), r.rc, r.out, r.err)
    return r


def ok_json(*args, env=None, **kw):
    rc, doc, err = run_pgvault_json(*args, env=env, **kw)
    assert rc == 0, "pgvault %s: rc=%d\n%s\n%s" % (" ".join(map(str, args)), rc, err,
                                                   json.dumps(doc, indent=1))
    return doc


def backup_dir(repo, d, env):
    args = ["backup", "--repo", repo]
    for name in sorted(os.listdir(d)):
        args += ["--file", str(d / name)]
    return ok_json(*args, env=env)["id"]


def pass_file(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text + "\n")
    p.chmod(0o600)
    return str(p)


def assert_restores(repo, backup_id, src_dir, files, out, env):
    ok("restore", "--repo", repo, backup_id, "--target-dir", str(out), env=env)
    for name, data in files.items():
        got = (out / str(src_dir / name).lstrip("/")).read_bytes()
        assert hashlib.sha256(got).hexdigest() == hashlib.sha256(data).hexdigest(), name


# ---- the destination on each kind of storage ----

def destination(kind, request, tmp_path):
    """(url, env) of an empty location for the second repository."""
    _count[0] += 1
    prefix = "copy%d-%d" % (os.getpid(), _count[0])
    if kind == "posix":
        return str(tmp_path / "b"), {}
    srv = request.getfixturevalue(kind)
    if kind == "s3rver":
        env = dict(srv.env, AWS_ENDPOINT_URL=srv.endpoint, AWS_CA_BUNDLE=srv.tls.cert,
                   AWS_REGION="us-east-1")
        return "s3://pgv/%s" % prefix, env
    StorageTool("azure://pgv/%s" % prefix, srv.opts, srv.env).run("create", check=True)
    env = {"AZURE_STORAGE_CONNECTION_STRING":
           "AccountName=%s;AccountKey=%s;BlobEndpoint=%s" % (
               srv.env["AZURE_STORAGE_ACCOUNT"], srv.env["AZURE_STORAGE_KEY"], srv.endpoint),
           "SSL_CERT_FILE": srv.tls.cert}
    return "azure://pgv/%s" % prefix, env


# (storage of the copy, first encrypted, second encrypted)
CASES = [("posix", False, True), ("s3rver", False, False), ("azurite", True, True)]


@pytest.mark.parametrize("kind,enc_a,enc_b", CASES, ids=[c[0] for c in CASES])
def test_copy_then_restore_without_the_first(kind, enc_a, enc_b, request, tmp_path):
    """Two backups copied to a second repository; the first repository is
    deleted; both restore bit-exact from the copy, which verifies clean.
    Copying again copies nothing."""
    url_b, env = destination(kind, request, tmp_path)
    repo_a = str(tmp_path / "a")
    pa = pass_file(tmp_path, "pa", PASS_A)
    pb = pass_file(tmp_path, "pb", PASS_B)
    env_a = dict(env, PGVAULT_PASSPHRASE_FILE=pa) if enc_a else dict(env)
    ok("init", "--repo", repo_a, *(["--encrypt"] if enc_a else []), env=env_a)
    ok("init", "--repo", url_b, *(["--encrypt", "--passphrase-file", pb] if enc_b else []),
       env=env)
    src1 = tmp_path / "src1"
    files1 = write_files(src1, 1)
    id1 = backup_dir(repo_a, src1, env_a)
    files2 = dict(files1)
    files2["table.txt"] = files1["table.txt"] + b"one more row\n"
    (src1 / "table.txt").write_bytes(files2["table.txt"])
    id2 = backup_dir(repo_a, src1, env_a)

    to_pass = ["--to-passphrase-file", pb] if enc_b else []
    doc = ok_json("copy", "--repo", repo_a, "--to", url_b, *to_pass, "-j", "2", env=env_a)
    assert doc["status"] == "ok"
    assert doc["ids_recomputed"] == (enc_a or enc_b)
    # ids sort by time, then randomly within one second
    assert [b["id"] for b in doc["backups"]] == sorted([id1, id2])
    assert [b["status"] for b in doc["backups"]] == ["copied", "copied"]
    # the one copied second shares all but the changed table's tail and the item list
    second = doc["backups"][1]
    assert second["blobs_present"] >= second["blobs"] - 3, second
    assert doc["totals"]["backups"] == 2 and doc["totals"]["bytes_written"] > 3 * MiB

    doc = ok_json("copy", "--repo", repo_a, "--to", url_b, *to_pass, env=env_a)
    assert doc["totals"]["backups"] == 0
    assert doc["totals"]["backups_present"] == 2
    assert doc["totals"]["blobs_written"] == 0 and doc["totals"]["bytes_read"] == 0
    assert [b["status"] for b in doc["backups"]] == ["present", "present"]

    shutil.rmtree(repo_a)
    env_b = dict(env, PGVAULT_PASSPHRASE_FILE=pb) if enc_b else dict(env)
    assert_restores(url_b, id1, src1, files1, tmp_path / "out1", env_b)
    assert_restores(url_b, id2, src1, files2, tmp_path / "out2", env_b)
    rc, doc, err = run_pgvault_json("verify", "--repo", url_b, env=env_b)
    assert rc == 0 and doc["status"] == "ok", err
    listed = ok_json("list", "--repo", url_b, env=env_b)
    assert [b["id"] for b in listed["backups"]] == sorted([id1, id2])


def test_copy_corrupt_chunk_fails_clearly(tmp_path):
    """A flipped byte in a pack of the source: copy exits 3 naming the chunk,
    its pack and the backup; the destination has no manifest; the other
    backup is still copied."""
    repo_a, repo_b = str(tmp_path / "a"), str(tmp_path / "b")
    ok("init", "--repo", repo_a)
    ok("init", "--repo", repo_b)
    src = tmp_path / "src"
    write_files(src, 2)
    id1 = ok_json("backup", "--repo", repo_a, "--file", str(src / "big.bin"))["id"]
    id2 = ok_json("backup", "--repo", repo_a, "--file", str(src / "table.txt"))["id"]
    # the biggest pack holds big.bin's chunks (id2's are text, compressed)
    packs = []
    for root, _, names in os.walk(os.path.join(repo_a, "data")):
        packs += [os.path.join(root, n) for n in names]
    victim = max(packs, key=os.path.getsize)
    with open(victim, "r+b") as f:
        f.seek(MiB)
        b = f.read(1)
        f.seek(MiB)
        f.write(bytes([b[0] ^ 0x40]))

    r = run_pgvault("copy", "--repo", repo_a, "--to", repo_b)
    assert r.rc == 3, r.out + r.err
    pack = os.path.basename(victim)
    assert "in pack %s of repository '%s' is corrupt (backup %s)" % (pack, repo_a, id1) in r.err
    assert "FAILED   %s" % id1 in r.out
    assert "copied   %s" % id2 in r.out
    listed = ok_json("list", "--repo", repo_b)
    assert [b["id"] for b in listed["backups"]] == [id2]
    assert not os.path.exists(os.path.join(repo_b, "snapshots", id1))
    rc, doc, _ = run_pgvault_json("verify", "--repo", repo_b)
    assert rc == 0 and doc["status"] == "ok"


def test_copy_configured_repositories_and_dry_run(tmp_path):
    """[repo:NAME] sections on both sides, each with its own passphrase
    file; a dry run writes nothing; IDs select backups; usage errors."""
    pa = pass_file(tmp_path, "pa", PASS_A)
    pb = pass_file(tmp_path, "pb", PASS_B)
    conf = tmp_path / "pgvault.conf"
    conf.write_text("[repo:local]\nurl = %s\npassphrase-file = %s\n\n"
                    "[repo:offsite]\nurl = %s\npassphrase-file = %s\n" %
                    (tmp_path / "a", pa, tmp_path / "b", pb))
    env = {"PGVAULT_CONFIG": str(conf)}
    ok("init", "--repo", "local", "--encrypt", env=env)
    ok("init", "--repo", "offsite", "--encrypt", env=env)
    src = tmp_path / "src"
    files = write_files(src, 3)
    id1 = backup_dir("local", src, env)
    id2 = ok_json("backup", "--repo", "local", "--file", str(src / "empty"), env=env)["id"]

    doc = ok_json("copy", "--from", "local", "--to", "offsite", "--dry-run", env=env)
    assert doc["dry_run"] and doc["ids_recomputed"]
    assert [b["status"] for b in doc["backups"]] == ["would copy", "would copy"]
    assert not os.path.exists(tmp_path / "b" / "snapshots") or \
        os.listdir(tmp_path / "b" / "snapshots") == []
    assert not os.path.exists(tmp_path / "b" / "data") or \
        all(not names for _, _, names in os.walk(tmp_path / "b" / "data"))

    newest, other = max(id1, id2), min(id1, id2)
    r = ok("copy", "--from", "local", "--to", "offsite", "latest", env=env)
    assert "copied   %s" % newest in r.out and other not in r.out
    r = ok("copy", "--from", "local", "--to", "offsite", other, newest, env=env)
    assert "copied   %s" % other in r.out and "present  %s" % newest in r.out
    shutil.rmtree(tmp_path / "a")
    assert_restores("offsite", id1, src, files, tmp_path / "out", env)

    # the destination's passphrase is never the source's by accident: a wrong one is refused
    wrong = pass_file(tmp_path, "wrong", "not it")
    r = run_pgvault("copy", "--from", "offsite", "--to", str(tmp_path / "c"),
                    "--to-passphrase-file", wrong, env=env)
    assert r.rc != 0 and "no repository at" in r.err
    ok("init", "--repo", str(tmp_path / "c"), "--encrypt", "--passphrase-file", pa, env=env)
    r = run_pgvault("copy", "--from", "offsite", "--to", str(tmp_path / "c"),
                    "--to-passphrase-file", wrong, env=env)
    assert r.rc == 1 and "wrong passphrase" in r.err, r.err
    # usage
    r = run_pgvault("copy", "--from", "offsite", env=env)
    assert r.rc == 2 and "missing --to" in r.err
    r = run_pgvault("copy", "--from", "offsite", "--to", "local", "--all", id1, env=env)
    assert r.rc == 2 and "not both" in r.err
    r = run_pgvault("copy", "--from", "offsite", "--to", "offsite", env=env)
    assert r.rc == 2 and "are the same repository" in r.err
    r = run_pgvault("copy", "--to", "offsite", "--bogus", env=env)
    assert r.rc == 2 and "--bogus" in r.err
    r = run_pgvault("copy", "--to", "offsite", "-j", "x", env=env)
    assert r.rc == 2 and "invalid number of jobs 'x'" in r.err
    r = run_pgvault("copy", "--help")
    assert r.rc == 0 and "--to-passphrase-file" in r.out


def test_copy_wal_archive(tmp_path):
    """WAL files pushed with archive-push come back with archive-get from
    the copy (history files: no segment header needed)."""
    repo_a, repo_b = str(tmp_path / "a"), str(tmp_path / "b")
    pb = pass_file(tmp_path, "pb", PASS_B)
    ok("init", "--repo", repo_a)
    ok("init", "--repo", repo_b, "--encrypt", "--passphrase-file", pb)
    wal = tmp_path / "pg_wal"
    wal.mkdir()
    names = ["00000002.history", "00000003.history"]
    for i, n in enumerate(names):
        (wal / n).write_text("%d\t0/%X\tno recovery target specified\n" % (i + 1, 0x3000000 * (i + 1)))
        ok("archive-push", "--repo", repo_a, "--source", "main", str(wal / n))
    # a backup's copy brings the WAL of every source along (no IDs: everything)
    doc = ok_json("copy", "--repo", repo_a, "--to", repo_b, "--to-passphrase-file", pb)
    assert doc["wal"] == [{"source": "main", "status": "ok", "files": 2, "present": 0,
                           "bytes": doc["wal"][0]["bytes"]}]
    doc = ok_json("copy", "--repo", repo_a, "--to", repo_b, "--to-passphrase-file", pb)
    assert doc["wal"][0]["files"] == 0 and doc["wal"][0]["present"] == 2
    doc = ok_json("copy", "--repo", repo_a, "--to", repo_b, "--to-passphrase-file", pb,
                  "--no-wal")
    assert doc["wal"] == []
    shutil.rmtree(repo_a)
    for n in names:
        out = tmp_path / ("got-" + n)
        ok("archive-get", "--repo", repo_b, "--source", "main", n, str(out),
           env={"PGVAULT_PASSPHRASE_FILE": pb})
        assert out.read_bytes() == (wal / n).read_bytes()


def test_copy_logical_backup_restores_from_second(pg, tmp_path):
    """A logical backup of a real database, copied to an encrypted second
    repository; the first is deleted; the restore from the copy has the
    same rows."""
    pg.execute("CREATE DATABASE shop")
    pg.execute("CREATE TABLE orders (id int PRIMARY KEY, who text, amount numeric);"
               "INSERT INTO orders SELECT g, 'customer ' || g, g * 1.5 "
               "FROM generate_series(1, 20000) g;"
               "CREATE SEQUENCE s; SELECT setval('s', 4242);", db="shop")
    repo_a, repo_b = str(tmp_path / "a"), str(tmp_path / "b")
    pb = pass_file(tmp_path, "pb", PASS_B)
    env = tools_env(pg)
    ok("init", "--repo", repo_a, env=env)
    ok("init", "--repo", repo_b, "--encrypt", "--passphrase-file", pb, env=env)
    bid = ok_json("backup", "--logical", "--repo", repo_a, *conn_args(pg, "shop"), env=env)["id"]
    ok("copy", "--repo", repo_a, "--to", repo_b, "--to-passphrase-file", pb, bid, env=env)
    shutil.rmtree(repo_a)
    ok_json("restore", bid, "--repo", repo_b, "--target-db", "shop2",
            *conn_args(pg, "postgres"), env=dict(env, PGVAULT_PASSPHRASE_FILE=pb))
    q = "SELECT count(*), sum(amount), md5(string_agg(who, ',' ORDER BY id)) FROM orders"
    assert pg.psql(q, db="shop2") == pg.psql(q, db="shop")
    assert pg.scalar("SELECT last_value FROM s", db="shop2") == 4242
