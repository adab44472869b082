"""test_storage_azure.py: what is special to the Azure Blob driver, against
azurite (which checks Shared Key and SAS signatures): a wrong key refused
and reported clearly, SAS tokens, connection strings, the container made
by create, parallel Put Block uploads, and faults injected by
faultproxy.py in front of azurite.

The contract every driver shares is in test_storage_contract.py.
"""

import re

import pytest

from emulators import (AZ_ACCOUNT, AZ_KEY, StorageTool, azurite,  # noqa: F401
                       emu_tls, emu_workdir, random_bytes)
from faultproxy import FaultProxy

MIB = 1024 * 1024


def err(r):
    return r.stderr.decode(errors="replace")


@pytest.fixture(scope="module")
def az(azurite):
    """A tool on container 'pgva' (created once), prefix chosen per test."""
    t = StorageTool("azure://pgva", dict(azurite.opts, **{"azure-block-size": "1MiB"}), azurite.env)
    t.run("create", check=True)
    return t


def under(t, prefix):
    return StorageTool(t.url + "/" + prefix, t.opts, t.env)


def test_wrong_key_refused_clearly(az):
    t = under(az, "wk")
    assert t.put("k", b"x").returncode == 0
    bad = t.with_env(AZURE_STORAGE_KEY="d3Jvbmcta2V5LXdyb25nLWtleQ==")
    r = bad.put("k2", b"y")
    assert r.returncode == 1, err(r)
    lines = err(r).splitlines()
    assert lines[0] == ("storage_tool: PV_EAUTH: cannot write object 'k2': HTTP 403 AuthorizationFailure: "
                        "Server failed to authenticate the request. Make sure the value of the Authorization "
                        "header is formed correctly including the signature."), lines
    assert lines[1].startswith("HINT: check azure-account with azure-key or azure-sas"), lines
    r = bad.run("stat", "k")
    assert r.returncode == 1 and "PV_EAUTH: cannot stat object 'k': HTTP 403" in err(r), err(r)
    r = t.with_env(AZURE_STORAGE_KEY="not base64!").run("get", "k")
    assert r.returncode == 2
    assert "PV_ECONFIG: invalid Azure storage key for account 'devstoreaccount1': it is not base64" in err(r)
    r = StorageTool(t.url, t.opts, {"AZURE_STORAGE_ACCOUNT": AZ_ACCOUNT}).run("get", "k")
    assert r.returncode == 2 and "PV_ECONFIG: no credentials for 'azure://pgva'" in err(r), err(r)


def test_sas_token(az, azurite):
    t = under(az, "sas")
    assert t.put("k", b"by key").returncode == 0
    env = {"AZURE_STORAGE_ACCOUNT": AZ_ACCOUNT, "AZURE_STORAGE_SAS_TOKEN": "?" + azurite.account_sas()}
    s = StorageTool(t.url, t.opts, env)
    assert s.get("k") == b"by key"
    assert s.put("k2", random_bytes(3 * MIB + 5, 1)).returncode == 0
    assert s.listing() == {"k": 6, "k2": 3 * MIB + 5}
    assert s.run("delete", "k2").returncode == 0
    # a read-only SAS reads, and is refused writes with the service's reason
    ro = StorageTool(t.url, t.opts, {"AZURE_STORAGE_ACCOUNT": AZ_ACCOUNT,
                                     "AZURE_STORAGE_SAS_TOKEN": azurite.account_sas("rl")})
    assert ro.get("k") == b"by key"
    r = ro.put("k3", b"no")
    assert r.returncode == 1, err(r)
    assert "PV_EAUTH: cannot write object 'k3': HTTP 403 AuthorizationPermissionMismatch" in err(r)
    # the token never appears in messages
    assert "sig=" not in err(r)


def test_connection_string(az, azurite):
    t = under(az, "cs")
    conn = "DefaultEndpointsProtocol=https;AccountName=%s;AccountKey=%s;BlobEndpoint=%s;" % (
        AZ_ACCOUNT, AZ_KEY, azurite.endpoint)
    opts = {"azure-ca-file": azurite.tls.cert}
    c = StorageTool(t.url, opts, {"AZURE_STORAGE_CONNECTION_STRING": conn})
    assert c.put("k", b"conn").returncode == 0
    assert t.get("k") == b"conn"


def test_create_makes_the_container(azurite):
    t = StorageTool("azure://fresh-container/p", dict(azurite.opts), azurite.env)
    r = t.put("k", b"1")
    assert r.returncode == 2, err(r)
    assert "PV_ECONFIG: cannot write object 'k': HTTP 404 ContainerNotFound" in err(r)
    assert t.run("create").returncode == 0
    assert t.run("create").returncode == 0
    assert t.put("k", b"1").returncode == 0
    assert t.get("k") == b"1"


def test_blocks_in_parallel(az):
    t = under(az, "blk")
    data = random_bytes(5 * MIB + 3, 9)
    r = t.run("put", "big", input=data, verbose=True)
    assert r.returncode == 0, err(r)
    log = err(r)
    assert len(re.findall(r"PUT \S+/big\?comp=block&blockid=\S+ -> 201", log)) == 6, log
    assert len(re.findall(r"PUT \S+/big\?comp=blocklist -> 201", log)) == 1, log
    assert t.get("big") == data


# ---- faults ----

@pytest.fixture
def proxy(azurite, emu_tls):
    p = FaultProxy(azurite.port, emu_tls)
    yield p
    p.stop()


def via_proxy(az, proxy, prefix, **opts):
    o = dict(az.opts)
    o["azure-endpoint"] = "https://127.0.0.1:%d/%s" % (proxy.port, AZ_ACCOUNT)
    o.update({k.replace("_", "-"): v for k, v in opts.items()})
    return StorageTool(az.url + "/" + prefix, o, az.env)


def test_faults_retried_or_clear(az, proxy):
    t = via_proxy(az, proxy, "flt", http_retries="3")
    direct = under(az, "flt")
    big = random_bytes(3 * MIB + 1, 4)
    proxy.plan("503", count=2, method="PUT", path="comp=block&")
    proxy.plan("drop", count=1, method="PUT", path="comp=blocklist")
    proxy.plan("500", count=1, method="GET")
    proxy.plan("cut", count=1, method="GET")
    r = t.run("put", "big", input=big)
    assert r.returncode == 0, err(r)
    assert t.get("big") == big
    assert proxy.faults == 5
    # persistent: a clear failure, and no blob at all
    proxy.clear()
    proxy.plan("503", count=None, method="PUT", path="comp=blocklist")
    r = t.run("put", "big2", input=big)
    assert r.returncode == 1, err(r)
    assert err(r).strip() == ("storage_tool: PV_ERETRY: cannot write object 'big2' (put block list): HTTP 503 "
                              "SlowDown: Please reduce your request rate. (injected) (gave up after 4 attempts)")
    assert "big2" not in direct.listing()
    proxy.plan("drop", count=None, method="PUT")
    r = t.put("small", b"x" * 1000)
    assert r.returncode == 1 and "PV_ERETRY: cannot write object 'small'" in err(r), err(r)
    assert sorted(direct.listing()) == ["big"]


def test_damaged_upload_is_refused_and_resent(az, proxy):
    """Content-MD5 on every upload: a body damaged on the way is refused by
    the service (400 Md5Mismatch) and sent again; persistent damage fails
    clearly and leaves no blob."""
    t = via_proxy(az, proxy, "md5", http_retries="2")
    direct = under(az, "md5")
    data = random_bytes(2 * MIB + 9, 6)
    proxy.plan("corrupt", count=1, method="PUT", path="comp=block&")
    proxy.plan("corrupt", count=1, method="PUT", path="/small")
    assert t.run("put", "big", input=data).returncode == 0
    assert t.put("small", b"0123456789").returncode == 0
    assert proxy.faults == 2
    assert direct.get("big") == data and direct.get("small") == b"0123456789"
    proxy.plan("corrupt", count=None, method="PUT")
    r = t.put("bad", b"0123456789")
    assert r.returncode == 1, err(r)
    # (azurite words it InvalidOperation "Provided contentMD5 doesn't match", Azure Md5Mismatch)
    assert re.search(r"PV_ERETRY: cannot write object 'bad': HTTP 400 (Md5Mismatch|InvalidOperation): .*(MD5|md5).*"
                     r"gave up after 3 attempts", err(r)), err(r)
    assert "bad" not in direct.listing()
