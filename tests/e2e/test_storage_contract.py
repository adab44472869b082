"""test_storage_contract.py: what storage.h promises, checked against every
driver through one parameterised fixture: posix (a directory), S3 (s3rver,
and OpenStack Swift's s3api when installed: it verifies SigV4 and multipart
rules) and Azure Blob (azurite).  Requests go through bench/storage_tool,
so this exercises the drivers without the repository layer above them.

Each test works under a prefix of its own in a shared bucket, so tests do
not see each other's objects.  Part and block sizes are set small (5 MiB
for S3, S3's minimum; 1 MiB for Azure) so "bigger than a part" stays cheap.
"""

import itertools
import os
import re
import time

import pytest

from pgvault_cli import run_pgvault

from emulators import (StorageTool, azurite, emu_tls, emu_workdir,  # noqa: F401
                       random_bytes, s3rver, swift)

PART = 5 * 1024 * 1024
BIG = 2 * PART + 12345          # three S3 parts, eleven Azure blocks

_counter = itertools.count()

BACKENDS = ["posix", "s3rver", "swift", "azurite"]


@pytest.fixture(params=BACKENDS)
def store(request, tmp_path):
    """A StorageTool on a fresh, empty location of the backend; its .pgenv
    is the environment that points pgvault itself at the same location
    (the cloud CLIs' variables: pgvault needs no configuration file)."""
    name = request.param
    prefix = "t%d-%d" % (os.getpid(), next(_counter))
    if name == "posix":
        t = StorageTool(str(tmp_path / "repo"))
        t.run("create", check=True)
        t.pgenv = {}
        return t
    srv = request.getfixturevalue(name)
    if srv.scheme == "s3":
        opts = dict(srv.opts, **{"s3-part-size": "5MiB"})
        bucket = "pgvault" if name == "swift" else "pgv"
        t = StorageTool("s3://%s/%s" % (bucket, prefix), opts, srv.env)
        if name == "swift":
            t.run("create", check=True)
        t.pgenv = dict(srv.env, AWS_ENDPOINT_URL=srv.endpoint, AWS_CA_BUNDLE=srv.tls.cert,
                       AWS_REGION="us-east-1")
        return t
    opts = dict(srv.opts, **{"azure-block-size": "1MiB"})
    t = StorageTool("azure://pgv/%s" % prefix, opts, srv.env)
    t.run("create", check=True)
    t.pgenv = {"AZURE_STORAGE_CONNECTION_STRING": "AccountName=%s;AccountKey=%s;BlobEndpoint=%s" % (
        srv.env["AZURE_STORAGE_ACCOUNT"], srv.env["AZURE_STORAGE_KEY"], srv.endpoint),
        "SSL_CERT_FILE": srv.tls.cert}
    return t


def err(r):
    return r.stderr.decode(errors="replace")


def test_roundtrip_sizes(store):
    for size, how in ((0, ()), (1, ()), (1000, ("--single",)), (0, ("--single",)),
                      (BIG, ("--chunk", "100000"))):
        data = random_bytes(size, size)
        key = "rt/%d%s" % (size, how[0] if how else "")
        r = store.put(key, data, *how)
        assert r.returncode == 0, err(r)
        assert store.get(key) == data
        st = store.run("stat", key, check=True).stdout.split()
        assert int(st[0]) == size
        # mtime is the store's clock: within a day of ours
        assert abs(int(st[1]) - time.time()) < 86400
    # overwriting is allowed without the flag
    assert store.put("rt/1", b"new").returncode == 0
    assert store.get("rt/1") == b"new"


def test_special_keys(store):
    """Keys that need escaping in URLs and signatures."""
    for key in ("sp/a b+c=d&e;f~g", "sp/%41x", "sp/\u00e9t\u00e9", "sp/x'y(z)*!,@$"):
        data = key.encode()
        r = store.put(key, data)
        assert r.returncode == 0, err(r)
        assert store.get(key) == data
    assert sorted(store.listing("sp/")) == sorted(
        ["sp/a b+c=d&e;f~g", "sp/%41x", "sp/\u00e9t\u00e9", "sp/x'y(z)*!,@$"])


def test_range_reads(store):
    data = random_bytes(100000, 7)
    assert store.put("r/obj", data).returncode == 0
    assert store.get("r/obj", 0, 10) == data[:10]
    assert store.get("r/obj", 5000, 20000) == data[5000:25000]
    assert store.get("r/obj", 99990, 10) == data[99990:]
    assert store.get("r/obj", 100000, 0) == b""
    assert store.get("r/obj", 0, 100000) == data
    r = store.run("get", "r/obj", 99990, 11)
    assert r.returncode == 3, err(r)
    assert "PV_ECORRUPT: object 'r/obj'" in err(r)
    r = store.run("get", "r/obj", 100001, 0)
    assert r.returncode == 3 and "PV_ECORRUPT" in err(r), err(r)
    r = store.run("get", "r/missing", 0, 1)
    assert r.returncode == 1 and "PV_ENOTFOUND: object 'r/missing' not found" in err(r), err(r)


def test_stat_exists_missing(store):
    assert store.put("s/x", b"12345").returncode == 0
    assert store.run("exists", "s/x", check=True).stdout == b"yes\n"
    assert store.run("exists", "s/y", check=True).stdout == b"no\n"
    for verb in ("stat", "get"):
        r = store.run(verb, "s/y")
        assert r.returncode == 1
        assert err(r).strip() == "storage_tool: PV_ENOTFOUND: object 's/y' not found"


def test_list_paging(store, request):
    """More than 1000 keys (S3's and Azure's default page), read back in
    pages of 100.  Swift takes ~20 ms per PUT here, so it gets 250 keys:
    still three pages, continuation tokens signed and verified."""
    n = 250 if "swift" in request.node.name else 1005
    r = store.run("put-many", "many/k", n, 10, 8)
    assert r.returncode == 0, err(r)
    assert store.put("other/z", b"z").returncode == 0
    small = store.with_opts(**{"storage-list-page-size": "100"})
    got = small.listing("many/")
    assert len(got) == n
    assert set(got) == {"many/k%05d" % i for i in range(n)}
    assert set(got.values()) == {10}
    # a prefix is a plain string prefix, also mid-segment
    assert sorted(small.listing("many/k0010")) == ["many/k%05d" % i for i in range(100, 110)]
    assert small.listing("nothing/") == {}
    everything = small.listing("")
    assert len(everything) == n + 1 and "other/z" in everything


def test_delete(store):
    assert store.put("d/x", b"1").returncode == 0
    assert store.run("delete", "d/x").returncode == 0
    r = store.run("get", "d/x")
    assert r.returncode == 1 and "not found" in err(r)
    r = store.run("delete", "d/x")
    assert r.returncode == 1
    assert err(r).strip() == "storage_tool: PV_ENOTFOUND: object 'd/x' not found"
    assert store.listing("d/") == {}


def test_no_overwrite(store):
    assert store.put("n/x", b"first", "--no-overwrite").returncode == 0
    r = store.put("n/x", b"second", "--no-overwrite")
    assert r.returncode == 5, err(r)
    assert err(r).strip() == "storage_tool: PV_EEXISTS: object 'n/x' already exists"
    assert store.get("n/x") == b"first"
    # the streamed, multi-part form too
    big = random_bytes(BIG, 3)
    r = store.run("put", "n/big", "--no-overwrite", input=big)
    assert r.returncode == 0, err(r)
    r = store.run("put", "n/big", "--no-overwrite", input=random_bytes(BIG, 4))
    assert r.returncode == 5 and "already exists" in err(r), err(r)
    r = store.run("put", "n/x", "--no-overwrite", "--single", input=b"third")
    assert r.returncode == 5, err(r)
    assert store.get("n/big") == big
    assert store.get("n/x") == b"first"


def test_aborted_writer_leaves_nothing(store):
    for size in (100, BIG):
        r = store.run("abort", "a/obj%d" % size, size)
        assert r.returncode == 0, err(r)
        assert store.run("exists", "a/obj%d" % size, check=True).stdout == b"no\n"
    assert store.listing("a/") == {}


def test_bad_keys_refused_before_any_request(store):
    for key in ("/abs", "a//b", "a/../b", "a/x.tmp.y"):
        r = store.run("put", key, input=b"x")
        assert r.returncode == 2, err(r)
        assert re.search(r"PV_EUSAGE: invalid object key", err(r)), err(r)


def test_repository_on_the_store(store, tmp_path, pgvault_bin):
    """pgvault init, backup, verify, restore and list on the location, with
    nothing but the environment pointing pgvault at it."""
    url = store.url if "://" in store.url else store.url + "/r"
    src = tmp_path / "src"
    src.mkdir()
    files = {"small.conf": random_bytes(1000, 1), "big.bin": random_bytes(BIG, 2), "empty": b""}
    for name, data in files.items():
        (src / name).write_bytes(data)
    env = store.pgenv
    r = run_pgvault("init", "--repo", url, env=env)
    assert r.rc == 0, r.err
    args = ["backup", "--repo", url]
    for name in sorted(files):
        args += ["--file", str(src / name)]
    r = run_pgvault(*args, env=env)
    assert r.rc == 0, r.err
    backup_id = r.out.split()[0]
    r = run_pgvault("backup", "--repo", url, "--file", str(src / "big.bin"), env=env)
    assert r.rc == 0, r.err
    r = run_pgvault("verify", "--repo", url, env=env)
    assert r.rc == 0 and "no damage found" in r.out, r.out + r.err
    out = tmp_path / "out"
    r = run_pgvault("restore", "--repo", url, backup_id, "--target-dir", str(out), env=env)
    assert r.rc == 0, r.err
    for name, data in files.items():
        assert (out / str(src / name).lstrip("/")).read_bytes() == data
    r = run_pgvault("list", "--repo", url, env=env)
    assert r.rc == 0 and backup_id in r.out, r.err
    # init refuses a location that holds a repository
    r = run_pgvault("init", "--repo", url, env=env)
    assert r.rc != 0
