"""test_storage_s3.py: what is special to the S3 driver: signatures checked
by a verifying store (Swift's s3api), credentials and their sources, TLS,
virtual-hosted buckets, gs://, parallel multipart uploads, faults
injected by faultproxy.py in front of s3rver (5xx bursts, SlowDown,
dropped connections while uploading and downloading, slow answers), and
batch deletes (DeleteObjects) counted through the proxy.

The contract every driver shares is in test_storage_contract.py.
"""

import os
import re
import time

import pytest

from emulators import (StorageTool, azurite, emu_tls, emu_workdir,  # noqa: F401
                       random_bytes, s3rver, swift)
from faultproxy import FaultProxy
from pgvault_cli import run_pgvault, run_pgvault_json, slowdown

PART = 5 * 1024 * 1024


def err(r):
    return r.stderr.decode(errors="replace")


def s3tool(srv, prefix, **opts):
    o = dict(srv.opts)
    o.update({k.replace("_", "-"): v for k, v in opts.items()})
    bucket = "pgvault" if srv.name == "swift" else "pgv"
    return StorageTool("s3://%s/%s" % (bucket, prefix), o, srv.env)


@pytest.fixture
def proxy(s3rver, emu_tls):
    p = FaultProxy(s3rver.port, emu_tls)
    yield p
    p.stop()


def via_proxy(s3rver, proxy, prefix, **opts):
    """A tool that talks to s3rver through the proxy, retrying quickly."""
    base = dict(http_retries="4", s3_part_size="5MiB")
    base.update(opts)
    t = s3tool(s3rver, prefix, **base)
    t.opts["s3-endpoint"] = "https://127.0.0.1:%d" % proxy.port
    return t


# ---- signatures and credentials ----

def test_wrong_secret_refused_clearly(swift):
    good = s3tool(swift, "sig")
    assert good.run("create").returncode == 0
    assert good.put("k", b"data").returncode == 0
    bad = good.with_env(AWS_SECRET_ACCESS_KEY="not-the-secret")
    r = bad.put("k2", b"data")
    assert r.returncode == 1, err(r)
    lines = err(r).splitlines()
    assert lines[0].startswith("storage_tool: PV_EAUTH: cannot write object 'k2': HTTP 403 "
                               "SignatureDoesNotMatch: The request signature we calculated does not match"), lines
    assert lines[1].startswith("HINT: check the credentials: s3-key and s3-key-secret"), lines
    assert "not-the-secret" not in err(r)
    r = bad.run("get", "k")
    assert r.returncode == 1 and "PV_EAUTH" in err(r) and "SignatureDoesNotMatch" in err(r), err(r)
    # an unknown key id is refused as well
    r = good.with_env(AWS_ACCESS_KEY_ID="test:nobody").run("get", "k")
    assert r.returncode == 1 and "PV_EAUTH: cannot read object 'k': HTTP 403 " in err(r), err(r)


def test_credentials_from_settings_and_profile(swift, tmp_path):
    t = s3tool(swift, "cred")
    assert t.run("create").returncode == 0
    # settings win over the environment
    o = t.with_opts(s3_key="test:tester", s3_key_secret="testing").with_env(
        AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="y")
    assert o.put("a", b"1").returncode == 0
    # the shared credentials file, with AWS_PROFILE
    creds = tmp_path / "credentials"
    creds.write_text("[default]\naws_access_key_id = nobody\naws_secret_access_key = x\n"
                     "[ci]\naws_access_key_id = test:tester\naws_secret_access_key = testing\n")
    p = StorageTool(t.url, t.opts, {"AWS_SHARED_CREDENTIALS_FILE": str(creds), "AWS_PROFILE": "ci"})
    assert p.get("a") == b"1"
    # none at all
    r = StorageTool(t.url, t.opts, {"HOME": str(tmp_path)}).run("get", "a")
    assert r.returncode == 2, err(r)
    assert "PV_ECONFIG: no credentials for 's3://pgvault'" in err(r)
    assert "HINT: set s3-key and s3-key-secret" in err(r)


def test_tls_verified_by_default(s3rver):
    t = s3tool(s3rver, "tls")
    del t.opts["s3-ca-file"]
    r = t.run("get", "x", timeout=60)
    assert r.returncode == 1, err(r)
    assert re.search(r"PV_EAUTH: cannot read object 'x': TLS: .*certificate", err(r)), err(r)
    assert "HINT: give the repository's CA file option (s3-ca-file" in err(r)
    # the CA through the AWS CLI's variable
    assert t.with_env(AWS_CA_BUNDLE=s3rver.tls.cert).put("x", b"1").returncode == 0
    # turning verification off works, loudly
    r = t.with_opts(s3_verify_tls="off").run("get", "x")
    assert r.returncode == 0 and r.stdout == b"1", err(r)
    assert "TLS certificate verification is OFF" in err(r)


def test_virtual_hosted_buckets_and_gs(s3rver):
    # BUCKET.s3.localhost resolves to 127.0.0.1 (RFC 6761) without DNS
    v = s3tool(s3rver, "vh", s3_bucket_style="virtual")
    v.opts["s3-endpoint"] = "https://s3.localhost:%d" % s3rver.port
    r = v.put("obj", b"virtual")
    assert r.returncode == 0, err(r)
    assert s3tool(s3rver, "vh").get("obj") == b"virtual"
    assert v.listing() == {"obj": 7}
    # gs:// is the same driver with path-style requests
    g = StorageTool("gs://pgv2/x", dict(s3rver.opts), s3rver.env)
    assert g.put("k", b"gcs").returncode == 0
    assert g.get("k") == b"gcs"


def test_create_makes_a_missing_bucket(s3rver):
    t = StorageTool("s3://fresh-bucket-%d/p" % os.getpid(), dict(s3rver.opts), s3rver.env)
    r = t.put("k", b"1")
    assert r.returncode == 2, err(r)
    assert "PV_ECONFIG: cannot write object 'k': HTTP 404 NoSuchBucket" in err(r)
    assert "HINT: bucket 'fresh-bucket-" in err(r)
    assert t.run("create").returncode == 0
    assert t.run("create").returncode == 0      # idempotent
    assert t.put("k", b"1").returncode == 0
    assert t.get("k") == b"1"


def test_multipart_parts_in_parallel(s3rver):
    t = s3tool(s3rver, "mp", s3_part_size="5MiB")
    data = random_bytes(4 * PART + 1000, 11)
    r = t.run("put", "big", input=data, verbose=True)
    assert r.returncode == 0, err(r)
    # the debug log shows each request: 1 create, 5 parts, 1 complete
    log = err(r)
    assert len(re.findall(r"POST \S+/big\?uploads -> 200", log)) == 1, log
    assert len(re.findall(r"PUT \S+/big\?partNumber=\d&uploadId=\S+ -> 200", log)) == 5, log
    assert len(re.findall(r"POST \S+/big\?uploadId=\S+ -> 200", log)) == 1, log
    assert t.get("big") == data
    # one part's worth or less is a single PUT
    r = t.run("put", "one", input=data[:PART], verbose=True)
    assert r.returncode == 0 and "uploads" not in err(r), err(r)
    assert t.get("one") == data[:PART]


# ---- faults ----

def test_retries_ride_out_bursts(s3rver, proxy):
    t = via_proxy(s3rver, proxy, "burst")
    proxy.plan("500", count=2, method="PUT")
    proxy.plan("503", count=2, method="GET")
    data = random_bytes(3000, 1)
    r = t.put("k", data)
    assert r.returncode == 0, err(r)
    assert t.get("k") == data
    assert proxy.faults == 4
    # a multipart upload whose parts hit SlowDown and a dropped connection
    big = random_bytes(2 * PART + 77, 2)
    proxy.plan("503", count=2, method="PUT", path="partNumber=2")
    proxy.plan("drop", count=1, method="PUT", path="partNumber=3")
    proxy.plan("500", count=1, method="POST", path="uploadId=")
    r = t.run("put", "big", input=big)
    assert r.returncode == 0, err(r)
    assert t.get("big") == big
    assert proxy.faults == 8


def test_persistent_failure_is_clear(s3rver, proxy):
    t = via_proxy(s3rver, proxy, "persist", http_retries="2")
    proxy.plan("503", count=None, method="PUT")
    t0 = time.monotonic()
    r = t.put("k", b"x")
    assert r.returncode == 1, err(r)
    assert err(r).strip() == ("storage_tool: PV_ERETRY: cannot write object 'k': HTTP 503 SlowDown: "
                              "Please reduce your request rate. (injected) (gave up after 3 attempts)")
    assert time.monotonic() - t0 < 10 * slowdown()  # backs off boundedly (sanitizers: slower)
    proxy.clear()
    proxy.plan("drop", count=None, method="GET")
    assert t.put("k", b"x").returncode == 0
    r = t.run("get", "k")
    assert r.returncode == 1, err(r)
    assert re.search(r"PV_ERETRY: cannot read object 'k': .* \(gave up after 3 attempts\)", err(r)), err(r)


def test_dropped_upload_never_leaves_a_partial_object(s3rver, proxy):
    t = via_proxy(s3rver, proxy, "drop", http_retries="1")
    direct = s3tool(s3rver, "drop")
    proxy.plan("drop", count=None, method="PUT")
    r = t.put("small", random_bytes(100000, 3))
    assert r.returncode == 1 and "PV_ERETRY" in err(r), err(r)
    big = random_bytes(2 * PART + 1, 4)
    r = t.run("put", "big", input=big)
    assert r.returncode == 1 and "(part " in err(r), err(r)
    assert direct.listing() == {}
    # the last part fails after the others went through: still nothing
    proxy.clear()
    proxy.plan("drop", count=None, method="PUT", path="partNumber=3")
    r = t.run("put", "big", input=big)
    assert r.returncode == 1, err(r)
    assert direct.listing() == {}
    proxy.clear()
    assert t.run("put", "big", input=big).returncode == 0
    assert direct.get("big") == big


def test_download_cut_midway_is_retried(s3rver, proxy):
    t = via_proxy(s3rver, proxy, "cut")
    data = random_bytes(3 * 1024 * 1024, 5)
    assert t.put("k", data).returncode == 0
    proxy.plan("cut", count=2, method="GET")
    assert t.get("k") == data
    proxy.plan("cut", count=1, method="GET")
    assert t.get("k", 1000, 2000000) == data[1000:2001000]
    assert proxy.faults == 3


def test_slow_answers_time_out_and_retry(s3rver, proxy):
    # a sanitizer build on a loaded machine may need more than 1 s for a
    # normal answer: the timeout and the delays that exceed it grow with it
    k = slowdown()
    t = via_proxy(s3rver, proxy, "slow", http_timeout="%ds" % k)
    assert t.put("k", b"slow").returncode == 0
    proxy.plan("slow", count=1, method="GET", delay=3 * k)
    t0 = time.monotonic()
    assert t.get("k") == b"slow"
    assert time.monotonic() - t0 < 8 * k
    proxy.plan("slow", count=None, method="GET", delay=2.5 * k)
    r = t.with_opts(http_retries="1").run("get", "k")
    assert r.returncode == 1, err(r)
    assert re.search(r"PV_ERETRY: cannot read object 'k': Operation (too slow|timed out).*gave up after 2 "
                     r"attempts", err(r)), err(r)


def test_conditional_writes_fall_back_where_refused(swift):
    """Swift's s3api answers If-None-Match with 501 NotImplemented: the
    driver falls back to checking first, says so once, and keeps the
    create-only contract for single and multipart writes."""
    t = s3tool(swift, "cond", s3_if_none_match="on", s3_part_size="5MiB")
    assert t.run("create").returncode == 0
    r = t.put("k", b"1", "--no-overwrite")
    assert r.returncode == 0, err(r)
    assert err(r).count("does not support conditional writes (If-None-Match)") == 1, err(r)
    r = t.put("k", b"2", "--no-overwrite")
    assert r.returncode == 5 and "PV_EEXISTS: object 'k' already exists" in err(r), err(r)
    big = random_bytes(PART + 10, 8)
    r = t.run("put", "big", "--no-overwrite", input=big)
    assert r.returncode == 0, err(r)
    r = t.run("put", "big", "--no-overwrite", input=big)
    assert r.returncode == 5, err(r)
    assert t.get("k") == b"1" and t.get("big") == big


def test_damaged_upload_is_refused_and_resent(swift, emu_tls):
    """The signed payload hash (x-amz-content-sha256) lets a verifying store
    refuse a body damaged on the way; the driver sends it again, and fails
    clearly when the damage persists, leaving no object."""
    p = FaultProxy(swift.port, emu_tls)
    try:
        direct = s3tool(swift, "dmg")
        assert direct.run("create").returncode == 0
        t = s3tool(swift, "dmg", http_retries="2", s3_part_size="5MiB")
        t.opts["s3-endpoint"] = "https://127.0.0.1:%d" % p.port
        p.plan("corrupt", count=1, method="PUT", path="/small")
        p.plan("corrupt", count=1, method="PUT", path="partNumber=2")
        assert t.put("small", b"0123456789").returncode == 0
        big = random_bytes(PART + 3, 12)
        r = t.run("put", "big", input=big)
        assert r.returncode == 0, err(r)
        assert p.faults == 2
        assert direct.get("small") == b"0123456789" and direct.get("big") == big
        p.plan("corrupt", count=None, method="PUT")
        r = t.put("bad", b"0123456789")
        assert r.returncode == 1, err(r)
        assert re.search(r"PV_ERETRY: cannot write object 'bad': HTTP 400 (XAmzContentSHA256Mismatch|BadDigest)"
                         r".*gave up after 3 attempts", err(r)), err(r)
        assert "bad" not in direct.listing()
    finally:
        p.stop()


# ---- batch delete (DeleteObjects) ----

@pytest.mark.parametrize("server", ["swift", "s3rver"])
def test_prune_deletes_in_batches(server, request, emu_tls, tmp_path):
    """A prune that drops many packs sends them in DeleteObjects requests
    (one for the old index files, one for the packs) instead of a HEAD and
    a DELETE per object, counted by the proxy; the packs are gone and the
    backup that stays restores byte for byte."""
    srv = request.getfixturevalue(server)
    bucket = "pgvault" if server == "swift" else "pgv"
    direct = s3tool(srv, "batch-%d" % os.getpid())
    assert direct.run("create").returncode == 0
    proxy = FaultProxy(srv.port, emu_tls)
    try:
        url = "s3://%s/batch-%d" % (bucket, os.getpid())
        env = dict(srv.env, AWS_ENDPOINT_URL="https://127.0.0.1:%d" % proxy.port,
                   AWS_CA_BUNDLE=emu_tls.cert, AWS_REGION="us-east-1")
        r = run_pgvault("init", "--repo", url, env=env)
        assert r.rc == 0, r.err
        ids = []
        for i in range(12):
            f = tmp_path / ("f%d.bin" % i)
            f.write_bytes(random_bytes(200000, 100 + i))
            rc, doc, e = run_pgvault_json("backup", "--repo", url, "--file", str(f), env=env)
            assert rc == 0, e
            ids.append(doc["id"])
        before = direct.listing("data/")
        for bid in ids[:-1]:
            assert direct.run("delete", "snapshots/" + bid).returncode == 0
        proxy.clear()
        rc, doc, e = run_pgvault_json("repo", "prune", "--repo", url, "--log-level", "debug", env=env)
        assert rc == 0, e
        seen = dict(proxy.seen)
        requests = [ln.split("debug: ")[-1] for ln in e.splitlines()
                    if " -> " in ln and ("POST" in ln or "DELETE" in ln)]
        assert doc["packs_deleted"] >= 11, doc
        after = direct.listing("data/")
        gone = set(before) - set(after)
        assert len(gone) == doc["packs_deleted"] + doc["packs_repacked"], (doc, gone)
        # one DeleteObjects for the index files, one for the packs (s3rver now
        # and then answers one with a 500: the retry is the only other POST);
        # the only DELETE left is the prune's own lock
        why = "%r\n%s" % (seen, "\n".join(requests))
        assert sum("?delete -> 200" in ln for ln in requests) == 2, why
        assert seen.get("POST", 0) == 2 + sum("?delete -> 5" in ln for ln in requests), why
        assert seen.get("DELETE", 0) <= 1, (seen, requests)
        assert seen.get("DELETE", 0) + seen.get("POST", 0) < len(gone), (seen, requests)
        r = run_pgvault("verify", "--repo", url, env=env)
        assert r.rc == 0 and "no damage found" in r.out, r.out + r.err
        out = tmp_path / "out"
        r = run_pgvault("restore", "--repo", url, ids[-1], "--target-dir", str(out), env=env)
        assert r.rc == 0, r.err
        last = tmp_path / "f11.bin"
        assert (out / str(last).lstrip("/")).read_bytes() == last.read_bytes()
    finally:
        proxy.stop()
