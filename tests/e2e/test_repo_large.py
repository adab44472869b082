"""test_repo_large.py: a 5 GiB stream through the whole pipeline, backed up
from a pipe and restored to a pipe, never touching the disk as one file.

Proves that memory stays bounded and that nothing overflows at 4 GiB (pack
offsets, item sizes, chunk counts): the restored stream's SHA-256 must equal
the one computed while generating.  The data is 1 MiB blocks of random bytes
with the block number written into each, so every chunk is new.  The
repository stores without compression so the test measures the pipeline,
not zstd; PGVAULT_TEST_LARGE_GIB changes the size (0 skips).
"""

import hashlib
import os
import shutil
import random
import struct
import subprocess
import threading

import pytest

from pgcluster import clean_env
from pgvault_cli import pgvault_bin
from test_repo import ok, ok_json

MiB = 1024 * 1024
GIB = float(os.environ.get("PGVAULT_TEST_LARGE_GIB", "5"))


def _feed(pipe, nblocks, digest):
    block = bytearray(random.Random(7).randbytes(MiB))
    try:
        for i in range(nblocks):
            struct.pack_into("<Q", block, 0, i)
            struct.pack_into("<Q", block, MiB // 2, i * 2654435761)
            digest.update(block)
            pipe.write(block)
    finally:
        pipe.close()


@pytest.fixture
def big_repo(tmp_path):
    repo = str(tmp_path / "repo")
    yield repo
    shutil.rmtree(repo, ignore_errors=True)  # gigabytes: do not keep them


@pytest.mark.skipif(GIB <= 0, reason="PGVAULT_TEST_LARGE_GIB=0")
def test_stream_5gib_roundtrip_bounded_memory(big_repo):
    repo = big_repo
    ok(repo, "init", "--compression", "none")
    nblocks = int(GIB * 1024)
    want = hashlib.sha256()

    argv = ["/usr/bin/time", "-f", "%M", pgvault_bin(), "backup", "--stdin",
            "--name", "big.bin", "--repo", repo, "--json"]
    p = subprocess.Popen(argv, env=clean_env(), stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    feeder = threading.Thread(target=_feed, args=(p.stdin, nblocks, want))
    feeder.start()
    errbuf = []
    reader = threading.Thread(target=lambda: errbuf.append(p.stderr.read()))
    reader.start()
    p.stdout.read()
    p.wait(timeout=1800)
    feeder.join()
    reader.join()
    err = errbuf[0]
    assert p.returncode == 0, err.decode(errors="replace")
    rss_kib = int(err.decode().strip().splitlines()[-1])
    # bounded memory: far below the stream's size, whatever the size
    assert rss_kib < 512 * 1024, rss_kib

    ids = [b["id"] for b in ok_json(repo, "list")["backups"]]
    assert len(ids) == 1
    got = hashlib.sha256()
    size = 0
    r = subprocess.Popen([pgvault_bin(), "restore", ids[0], "--item", "big.bin",
                          "-o", "-", "--repo", repo], env=clean_env(),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    for chunk in iter(lambda: r.stdout.read(MiB), b""):
        got.update(chunk)
        size += len(chunk)
    rerr = r.stderr.read()
    assert r.wait(timeout=1800) == 0, rerr.decode(errors="replace")
    assert size == nblocks * MiB
    assert got.hexdigest() == want.hexdigest()
