"""test_repo.py: the repository engine end to end through the pgvault
binary, with file backups (no PostgreSQL needed): round trips at several
sizes, deduplication, concurrent backups, kill -9 in the middle of a backup
and of a prune, verify finding damage, prune refusing while a backup runs,
and an encrypted repository opened with the wrong passphrase.

Every test makes its own repository under tmp_path.  The whole file is kept
well under a minute on two cores.
"""

import hashlib
import json
import os
import random
import signal
import subprocess
import time

import pytest

import backends
from pgcluster import clean_env
from pgvault_cli import pgvault_bin, run_pgvault, run_pgvault_json, slowdown

MiB = 1024 * 1024


def write_random(path, size, seed):
    rnd = random.Random(seed)
    with open(path, "wb") as f:
        left = size
        while left > 0:
            n = min(left, MiB)
            f.write(rnd.randbytes(n))
            left -= n
    return path


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(MiB), b""):
            h.update(block)
    return h.hexdigest()


def pv(repo, *args, env=None, **kw):
    """pgvault with --repo; asserts nothing."""
    return run_pgvault(*args, "--repo", repo, env=env, **kw)


def ok(repo, *args, env=None, **kw):
    r = pv(repo, *args, env=env, **kw)
    assert r.rc == 0, "pgvault %s: rc=%d\n%s%s" % (" ".join(args), r.rc,
                                                   r.out, r.err)
    return r


def ok_json(repo, *args, env=None):
    rc, doc, err = run_pgvault_json(*args, "--repo", repo, env=env)
    assert rc == 0, "pgvault %s: rc=%d\n%s" % (" ".join(args), rc, err)
    return doc


def init(tmp_path, *extra, env=None):
    repo = backends.active().url(tmp_path)
    ok(repo, "init", *extra, env=env)
    return repo


def backup_files(repo, *paths, env=None):
    args = ["backup"]
    for p in paths:
        args += ["--file", str(p)]
    return ok_json(repo, *args, env=env)


def verify_ok(repo, env=None):
    rc, doc, err = run_pgvault_json("verify", "--repo", repo, env=env)
    assert rc == 0 and doc["status"] == "ok", (rc, err, doc["problems"])
    return doc


def backup_ids(repo, env=None):
    return [b["id"] for b in ok_json(repo, "list", env=env)["backups"]]


def spawn(repo, *args, env=None, **kw):
    argv = [pgvault_bin()] + list(args) + ["--repo", repo]
    return subprocess.Popen(argv, env=clean_env(env), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, **kw)


# ---- round trips ----

def test_file_backup_roundtrip_sizes(tmp_path):
    repo = init(tmp_path)
    src = tmp_path / "src"
    src.mkdir()
    files = [write_random(src / ("f%d.bin" % size), size, size)
             for size in (0, 1, 5 * MiB, 60 * MiB)]
    os.chmod(files[2], 0o640)
    doc = backup_files(repo, *files)
    assert doc["items"] == 4
    assert doc["logical_bytes"] == 65 * MiB + 1
    listed = ok_json(repo, "list")["backups"]
    assert [b["id"] for b in listed] == [doc["id"]]
    assert listed[0]["kind"] == "file" and listed[0]["size"] == 65 * MiB + 1

    out = tmp_path / "out"
    ok(repo, "restore", doc["id"], "--target-dir", str(out))
    for f in files:
        got = out / str(f).lstrip("/")
        assert sha256(got) == sha256(f), f
        assert os.stat(got).st_mode & 0o777 == os.stat(f).st_mode & 0o777
        assert int(os.stat(got).st_mtime) == int(os.stat(f).st_mtime)
    # one item to stdout, by a prefix of the id
    r = subprocess.run([pgvault_bin(), "restore", doc["id"][:12], "--item",
                        str(files[2]).lstrip("/"), "-o", "-", "--repo", repo],
                       env=clean_env(), capture_output=True)
    assert r.returncode == 0, r.stderr
    assert hashlib.sha256(r.stdout).hexdigest() == sha256(files[2])
    verify_ok(repo)


def test_stdin_stream_and_same_data_twice(tmp_path):
    repo = init(tmp_path)
    data = random.Random(7).randbytes(3 * MiB + 11)
    r = subprocess.run([pgvault_bin(), "backup", "--stdin", "--name", "dump.sql",
                        "--source", "prod", "--json", "--repo", repo],
                       env=clean_env(), input=data, capture_output=True)
    assert r.returncode == 0, r.stderr
    first = json.loads(r.stdout)
    assert first["new_chunks"] > 0 and first["source"] == "prod"
    r = subprocess.run([pgvault_bin(), "backup", "--stdin", "--name", "dump.sql",
                        "--json", "--repo", repo],
                       env=clean_env(), input=data, capture_output=True)
    assert r.returncode == 0, r.stderr
    second = json.loads(r.stdout)
    # the same bytes under the same name: not one new chunk, not one new byte
    assert second["new_chunks"] == 0 and second["new_bytes"] == 0
    stats = ok_json(repo, "repo", "stats")
    assert stats["backups"] == 2
    assert stats["dedup_ratio"] == pytest.approx(2.0, rel=0.01)
    r = subprocess.run([pgvault_bin(), "restore", second["id"], "--item", "dump.sql",
                        "-o", "-", "--repo", repo], env=clean_env(), capture_output=True)
    assert r.returncode == 0 and r.stdout == data


def test_two_backups_at_once(tmp_path):
    repo = init(tmp_path)
    shared = write_random(tmp_path / "shared.bin", 8 * MiB, 1)
    a = write_random(tmp_path / "a.bin", 12 * MiB, 2)
    b = write_random(tmp_path / "b.bin", 12 * MiB, 3)
    procs = [spawn(repo, "backup", "--file", str(shared), "--file", str(f), "--json")
             for f in (a, b)]
    docs = []
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        docs.append(json.loads(out))
    verify_ok(repo)
    for doc, f in zip(docs, (a, b)):
        out = tmp_path / ("out-" + doc["id"])
        ok(repo, "restore", doc["id"], "--target-dir", str(out))
        assert sha256(out / str(f).lstrip("/")) == sha256(f)
        assert sha256(out / str(shared).lstrip("/")) == sha256(shared)


# ---- crashes ----

def test_kill_backup_at_random_points(tmp_path):
    repo = init(tmp_path)
    kept = write_random(tmp_path / "kept.bin", 2 * MiB, 9)
    good = backup_files(repo, kept)["id"]
    big = write_random(tmp_path / "big.bin", 40 * MiB, 10)
    rnd = random.Random(42)
    completed = {good}
    for i in range(5):
        # fresh data each time, so every run has new chunks to write
        with open(big, "r+b") as f:
            f.write(rnd.randbytes(MiB))
        p = spawn(repo, "backup", "--file", str(big))
        time.sleep(rnd.uniform(0.02, 0.6))
        p.send_signal(signal.SIGKILL)
        out, _ = p.communicate()
        if p.returncode == 0:        # it won the race: a whole backup
            completed.add(out.decode().splitlines()[0])
        else:
            assert p.returncode == -signal.SIGKILL
        # A kill after the manifest was written (but before exit) leaves a
        # complete backup; any other kill leaves none.  Never anything else.
        new = set(backup_ids(repo)) - completed
        assert len(new) <= 1, new
        completed |= new
        assert set(backup_ids(repo)) == completed
        verify_ok(repo)
    # the leftovers go with a prune; the kept backup still restores
    ok(repo, "repo", "prune")
    doc = verify_ok(repo)
    assert doc["unindexed_packs"] == 0
    out = tmp_path / "out"
    ok(repo, "restore", good, "--target-dir", str(out))
    assert sha256(out / str(kept).lstrip("/")) == sha256(kept)


def test_kill_prune_at_random_points(tmp_path):
    repo = init(tmp_path)
    rnd = random.Random(43)
    kept = {}
    killed = 0
    for i in range(5):
        # A pack holding both garbage and live data, so the prune repacks
        # (about 0.2 s of work: reading, checking, writing, deleting).
        keep = write_random(tmp_path / ("keep%d.bin" % i), 6 * MiB, 20 + i)
        junk = write_random(tmp_path / ("junk%d.bin" % i), 10 * MiB, 100 + i)
        doomed = backup_files(repo, junk, keep)["id"]
        kept[backup_files(repo, keep)["id"]] = keep
        os.unlink(os.path.join(repo, "snapshots", doomed))   # what expire does
        p = spawn(repo, "repo", "prune")
        time.sleep(rnd.uniform(0.0, 0.2))
        p.send_signal(signal.SIGKILL)
        p.communicate()
        killed += p.returncode == -signal.SIGKILL
        # whatever point it died at: the repository verifies, backups restore
        verify_ok(repo)
        for bid, f in kept.items():
            out = tmp_path / ("out%d-%s" % (i, bid))
            ok(repo, "restore", bid, "--target-dir", str(out))
            assert sha256(out / str(f).lstrip("/")) == sha256(f)
    assert killed > 0
    # a prune that finishes cleans up what the killed ones left
    r = ok_json(repo, "repo", "prune")
    assert r["dry_run"] is False
    doc = verify_ok(repo)
    assert doc["unindexed_packs"] == 0
    assert ok_json(repo, "repo", "prune", "--dry-run")["bytes_freed"] == 0


@pytest.mark.backends
def test_prune_refuses_while_backup_runs(tmp_path, repo_backend):
    repo = init(tmp_path)
    old = backup_files(repo, write_random(tmp_path / "old.bin", MiB, 30))["id"]
    old_packs = set(repo_backend.keys(repo, "data/"))
    repo_backend.delete(repo, "snapshots/" + old)
    # a backup reading a pipe that stays open holds its shared lock meanwhile
    p = spawn(repo, "backup", "--stdin", "--name", "s", "--json", stdin=subprocess.PIPE)
    p.stdin.write(random.Random(31).randbytes(2 * MiB))
    p.stdin.flush()
    deadline = time.time() + 10 * slowdown()
    while not repo_backend.keys(repo, "locks/") and time.time() < deadline:
        time.sleep(0.05)
    assert repo_backend.keys(repo, "locks/"), "the backup never took its lock"
    r = pv(repo, "repo", "prune")
    assert r.rc == 4, (r.out, r.err)
    assert "lock" in r.err
    out, err = p.communicate(timeout=30)     # closes stdin: the stream ends
    assert p.returncode == 0, err
    r = ok_json(repo, "repo", "prune")
    assert r["packs_deleted"] >= 1 and r["bytes_freed"] >= MiB, r
    # the old backup's packs are gone from the store
    assert old_packs and not old_packs & set(repo_backend.keys(repo, "data/"))
    verify_ok(repo)
    assert backup_ids(repo) == [json.loads(out)["id"]]


# ---- damage and secrets ----

@pytest.mark.backends
def test_verify_names_damaged_chunk_and_backups(tmp_path, repo_backend):
    repo = init(tmp_path)
    f = write_random(tmp_path / "f.bin", 3 * MiB, 40)
    ids = [backup_files(repo, f)["id"]]
    other = backup_files(repo, write_random(tmp_path / "g.bin", MiB, 41))["id"]
    packs = repo_backend.keys(repo, "data/")
    biggest = max(packs, key=packs.get)
    damaged = bytearray(repo_backend.read(repo, biggest))
    damaged[1000] ^= 1
    repo_backend.write(repo, biggest, bytes(damaged))
    rc, doc, err = run_pgvault_json("verify", "--repo", repo)
    assert rc == 3
    assert doc["status"] == "corrupt"
    chunks = [p for p in doc["problems"] if p["type"] == "chunk"]
    assert len(chunks) == 1
    assert chunks[0]["pack"] == biggest.rsplit("/", 1)[-1]
    assert chunks[0]["backups"] == ids
    assert {b["id"]: b["status"] for b in doc["backups"]} == {ids[0]: "damaged", other: "ok"}
    r = pv(repo, "verify")
    assert r.rc == 3 and chunks[0]["object"] in r.out and ids[0] in r.out
    # a restore of the damaged backup fails and leaves no file behind
    out = tmp_path / "out"
    r = pv(repo, "restore", ids[0], "--target-dir", str(out))
    assert r.rc == 3, r.err
    assert chunks[0]["object"] in r.err
    assert [n for _, _, ns in os.walk(out) for n in ns] == []


def test_encrypted_wrong_passphrase(tmp_path):
    right = {"PGVAULT_PASSPHRASE": "correct horse battery staple"}
    wrong = {"PGVAULT_PASSPHRASE": "incorrect horse"}
    repo = init(tmp_path, "--encrypt", env=right)
    f = write_random(tmp_path / "f.bin", MiB, 50)
    doc = backup_files(repo, f, env=right)
    out = tmp_path / "out.bin"
    r = pv(repo, "restore", doc["id"], "--item", str(f).lstrip("/"), "-o", str(out),
           env=wrong)
    assert r.rc != 0
    assert "wrong passphrase" in r.err
    assert not out.exists()
    assert [n for n in os.listdir(tmp_path) if n.startswith("out")] == []  # nor a temp file
    r = pv(repo, "verify", env={})
    assert r.rc == 2 and "no passphrase" in r.err
    ok(repo, "restore", doc["id"], "--item", str(f).lstrip("/"), "-o", str(out), env=right)
    assert sha256(out) == sha256(f)
    verify_ok(repo, env=right)


# ---- the command line ----

@pytest.mark.parametrize("cmd", [["backup"], ["restore"], ["list"], ["verify"],
                                 ["repo", "stats"], ["repo", "prune"],
                                 ["repo", "rebuild-index"], ["repo", "unlock"]])
def test_help_and_bad_option(cmd):
    r = run_pgvault(*cmd, "--help")
    assert r.rc == 0 and "Examples:" in r.out and "--json" in r.out, r.out
    r = run_pgvault(*cmd, "--no-such-option")
    assert r.rc == 2 and "--no-such-option" in r.err


def test_backup_without_data_is_usage_error(tmp_path):
    repo = init(tmp_path)
    r = pv(repo, "backup", "--stdin")
    assert r.rc == 2 and "--stdin needs --name NAME" in r.err
    # kinds this build lacks are unknown options, never "not implemented"
    r = pv(repo, "backup", "--no-such-kind")
    assert r.rc == 2 and "unknown option '--no-such-kind'" in r.err
    assert "not implemented" not in r.out + r.err


def test_rebuild_index_and_unlock(tmp_path):
    repo = init(tmp_path)
    f = write_random(tmp_path / "f.bin", 2 * MiB, 60)
    backup_files(repo, f)
    for name in os.listdir(os.path.join(repo, "index")):
        os.unlink(os.path.join(repo, "index", name))
    r = pv(repo, "verify")
    assert r.rc == 3 and "rebuild-index" in r.err
    res = ok_json(repo, "repo", "rebuild-index")
    assert res["packs"] >= 1 and res["bad_packs"] == 0 and res["new_index_files"] == 1
    verify_ok(repo)
    # a lock left by a process that is gone is stale; unlock removes it
    lock = {"version": 1, "host": os.uname().nodename, "pid": 2 ** 22 + 1, "user": "x",
            "command": "backup", "exclusive": True, "time": "2026-01-01T00:00:00Z",
            "time_unix": int(time.time()), "refresh_time": "2026-01-01T00:00:00Z",
            "refresh_time_unix": int(time.time())}
    os.makedirs(os.path.join(repo, "locks"), exist_ok=True)
    with open(os.path.join(repo, "locks", "0" * 32), "w") as fh:
        json.dump(lock, fh)
    res = ok_json(repo, "repo", "unlock")
    assert res["removed"] == 1 and res["locks"][0]["stale"] is True
    assert os.listdir(os.path.join(repo, "locks")) == []
    out = tmp_path / "out"
    ok(repo, "restore", "latest", "--target-dir", str(out))
    assert sha256(out / str(f).lstrip("/")) == sha256(f)
