"""test_check.py: `pgvault check`, the pre-flight check, on real servers.

Spec: pgvault check [-d DBNAME|CONNINFO] [-h HOST] [-p PORT] [-U USER]
[--repo URL] [--json] [--long-transaction-threshold DURATION]; exit 0 when
all is good, 1 with warnings, 2 with failures.  --json prints
{"status": ..., "checks": [{"name", "status", "message", "hint", "details"}]}.
"""

import json
import os
import re
import time

import pytest

from pgcluster import free_port
from pgvault_cli import conn_args, run_pgvault, run_pgvault_json, tools_env

CHECK_NAMES = {
    "connection", "server_version", "client_tools", "data_checksums",
    "wal_level", "archive_mode", "archive_command", "archive_timeout",
    "database_sizes", "largest_tables", "long_transactions",
    "repo_free_space", "privileges",
}
STATUSES = {"ok", "warning", "failure", "info"}
EXIT_FOR = {"ok": 0, "warning": 1, "failure": 2}

# On a fresh cluster, the only warnings we can explain: archive_command is
# '/bin/true' (not pgvault archive-push) and archive_timeout is 0.
EXPLAINED_WARNINGS = {"archive_command", "archive_timeout"}


def run_check(cluster, *extra, user="postgres", db="shop", json_out=True):
    args = ["check"] + conn_args(cluster, db, user) + list(extra)
    if json_out:
        rc, doc, err = run_pgvault_json(*args, env=tools_env(cluster))
        assert_well_formed(rc, doc)
        return rc, doc, err
    return run_pgvault(*args, env=tools_env(cluster))


def assert_well_formed(rc, doc):
    assert set(doc) >= {"status", "checks"}, doc
    assert doc["status"] in EXIT_FOR, doc["status"]
    assert rc == EXIT_FOR[doc["status"]], (rc, doc)
    worst = "ok"
    for c in doc["checks"]:
        assert set(c) >= {"name", "status", "message", "hint", "details"}, c
        assert c["status"] in STATUSES, c
        assert isinstance(c["message"], str) and c["message"], c
        assert "\n" not in c["message"], c
        assert c["hint"] is None or isinstance(c["hint"], str), c
        assert isinstance(c["details"], dict), c
        if c["status"] == "failure":
            worst = "failure"
        elif c["status"] == "warning" and worst == "ok":
            worst = "warning"
    assert doc["status"] == worst, doc
    names = [c["name"] for c in doc["checks"]]
    assert len(names) == len(set(names)), names


def by_name(doc):
    return {c["name"]: c for c in doc["checks"]}


def strings_in(obj):
    """Every string (values and keys) inside a JSON value."""
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield k
            yield from strings_in(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from strings_in(v)


def ints_named(obj, word):
    """Integer values whose key contains word, anywhere inside obj."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if word in k and isinstance(v, int) and not isinstance(v, bool):
                yield v
            else:
                yield from ints_named(v, word)
    elif isinstance(obj, list):
        for v in obj:
            yield from ints_named(v, word)


@pytest.fixture(scope="module")
def shop(pg_module):
    """pg_module with a database 'shop' whose largest table is big_orders."""
    pg_module.execute("CREATE DATABASE shop")
    pg_module.execute("""
        CREATE TABLE big_orders (id bigint PRIMARY KEY, customer text,
                                 placed timestamptz, total numeric(12,2));
        INSERT INTO big_orders
            SELECT i, 'customer ' || (i % 997), now() - i * interval '1 min',
                   (i % 10000) / 100.0
            FROM generate_series(1, 60000) i;
        CREATE TABLE small_notes (id int, note text);
        INSERT INTO small_notes VALUES (1, 'hello');
        ANALYZE;
    """, db="shop")
    return pg_module


def test_good_cluster(shop, tmp_path):
    rc, doc, err = run_check(shop, "--repo", str(tmp_path))
    checks = by_name(doc)
    assert set(checks) >= CHECK_NAMES
    failures = [c for c in doc["checks"] if c["status"] == "failure"]
    assert not failures, failures
    warnings = {c["name"] for c in doc["checks"] if c["status"] == "warning"}
    assert warnings <= EXPLAINED_WARNINGS, doc
    assert rc in (0, 1)

    assert checks["connection"]["status"] == "ok"
    assert checks["server_version"]["status"] == "ok"
    assert "15" in checks["server_version"]["message"]
    assert checks["client_tools"]["status"] == "ok", checks["client_tools"]
    assert checks["data_checksums"]["status"] == "ok"
    assert re.search(r"\b(on|enabled)\b", checks["data_checksums"]["message"],
                     re.I), checks["data_checksums"]
    assert checks["wal_level"]["status"] == "ok"
    assert checks["archive_mode"]["status"] == "ok"
    assert checks["long_transactions"]["status"] == "ok"
    assert checks["privileges"]["status"] == "ok"

    sizes = list(strings_in(checks["database_sizes"]["details"]))
    assert "postgres" in sizes and "shop" in sizes, checks["database_sizes"]
    tables = " ".join(strings_in(checks["largest_tables"]))
    assert "big_orders" in tables, checks["largest_tables"]


def test_archive_command_not_pgvault_is_explained(shop, tmp_path):
    rc, doc, err = run_check(shop, "--repo", str(tmp_path))
    c = by_name(doc)["archive_command"]
    if c["status"] == "warning":
        assert c["hint"] and "archive-push" in c["hint"], c


def test_text_output_one_line_per_check(shop, tmp_path):
    rc_json, doc, _ = run_check(shop, "--repo", str(tmp_path))
    rc, out, err = run_check(shop, "--repo", str(tmp_path), json_out=False)
    assert rc == rc_json
    lines = out.splitlines()
    used = set()
    for c in doc["checks"]:
        hits = [i for i, ln in enumerate(lines) if c["message"] in ln]
        assert len(hits) >= 1, (c, out)
        line = hits[0]
        assert line not in used, "two checks on one line:\n" + out
        used.add(line)
    # one line per check, plus at most a header, a summary and hint lines
    hints = sum(1 for c in doc["checks"] if c["hint"])
    assert len(doc["checks"]) <= len(lines) <= len(doc["checks"]) + hints + 4, \
        out


def test_wrong_port_fails_with_host_port_and_hint():
    port = free_port()  # nobody listens there
    args = ["check", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
            "-d", "postgres"]
    rc, doc, err = run_pgvault_json(*args)
    assert_well_formed(rc, doc)
    assert rc == 2
    conn = by_name(doc)["connection"]
    assert conn["status"] == "failure"
    assert "127.0.0.1" in conn["message"] and str(port) in conn["message"], conn
    assert conn["hint"], conn

    rc, out, err = run_pgvault(*args)
    assert rc == 2
    text = out + err
    port_lines = [ln for ln in text.splitlines() if str(port) in ln]
    assert port_lines, text
    assert "127.0.0.1" in port_lines[0], text
    # libpq's multi-line message is folded into one line for people
    assert not re.search(r"^\s+Is the server running", text, re.M), text
    assert conn["hint"] in text, text
    assert len(text.splitlines()) <= 6, text


def test_archive_mode_off_warns(pg, tmp_path):
    pg.restart(archive_mode="off")
    rc, doc, err = run_check(pg, "--repo", str(tmp_path), db="postgres")
    c = by_name(doc)["archive_mode"]
    assert c["status"] == "warning", c
    assert c["hint"], c
    assert doc["status"] == "warning"
    assert rc == 1


def test_long_transaction_reported_with_pid_and_age(shop, tmp_path):
    with shop.connect("shop", autocommit=False) as conn:
        conn.execute("SELECT txid_current()")
        pid = conn.info.backend_pid
        time.sleep(1.5)
        rc, doc, err = run_check(shop, "--repo", str(tmp_path),
                                 "--long-transaction-threshold", "1s")
        c = by_name(doc)["long_transactions"]
        assert c["status"] in ("warning", "failure"), c
        dump = json.dumps(c)
        assert re.search(r"\b%d\b" % pid, dump), c
        assert re.search(r"age|\b\d+(\.\d+)?\s*(s|sec|seconds|min)\b", dump,
                         re.I), c
        assert rc >= 1

        # the default threshold does not flag a two-second transaction
        rc, doc, err = run_check(shop, "--repo", str(tmp_path))
        assert by_name(doc)["long_transactions"]["status"] == "ok"
        conn.rollback()


def test_role_without_privileges_fails(shop, tmp_path):
    shop.execute("DROP ROLE IF EXISTS weak; CREATE ROLE weak LOGIN")
    rc, doc, err = run_check(shop, "--repo", str(tmp_path), user="weak")
    c = by_name(doc)["privileges"]
    assert c["status"] == "failure", c
    assert c["hint"] and "pg_read_all_data" in c["hint"], c
    assert "superuser" in c["hint"].lower(), c
    assert rc == 2


def test_repo_free_space_reports_bytes(shop, tmp_path):
    rc, doc, err = run_check(shop, "--repo", str(tmp_path))
    c = by_name(doc)["repo_free_space"]
    assert c["status"] in ("ok", "warning"), c
    free = list(ints_named(c["details"], "free"))
    assert free, c
    st = os.statvfs(tmp_path)
    expected = st.f_bavail * st.f_frsize
    assert abs(free[0] - expected) <= max(expected // 20, 1 << 30), \
        (free, expected)


def test_help_shows_examples():
    rc, out, err = run_pgvault("check", "--help")
    assert rc == 0
    assert re.search(r"example", out, re.I), out
    assert "pgvault check" in out
    assert out.endswith("\n")
    assert "--long-transaction-threshold" in out
    assert "--json" in out


def test_unknown_option_is_one_line_error():
    rc, out, err = run_pgvault("check", "--no-such-option")
    assert rc == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert lines and "no-such-option" in lines[0], err
    assert len(lines) <= 2, err  # the error, then "try pgvault check --help"
