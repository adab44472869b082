"""test_logical_extconfig.py: the rows of an extension's configuration
tables (pg_extension_config_dump) in logical backups, as pg_dump keeps them.

Spec under test: a table an extension registers with
pg_extension_config_dump(table, 'WHERE ...') has the rows its condition
names backed up (only those: CREATE EXTENSION makes the others), and a
registered sequence its value; restore (whole database, --table, --data-only),
export --format plain and drill bring them back: the same rows as through
`pg_dump | psql`, the extension's own rows not doubled.

Debian's contrib extensions register no configuration table, so the module
installs a tiny extension of its own into the server's share directory
(root only; removed at the end).
"""

import os
import subprocess

import pytest

from pgvault_cli import conn_args, run_pgvault, run_pgvault_json, tools_env

EXT = "pvx_extconfig_test"
CONTROL = """comment = 'pgvault test: an extension with configuration tables'
default_version = '1.0'
relocatable = false
schema = public
"""
SCRIPT = """
CREATE TABLE pvx_config (name text PRIMARY KEY, value text, builtin boolean NOT NULL DEFAULT false);
CREATE SEQUENCE pvx_counter;
SELECT pg_catalog.pg_extension_config_dump('pvx_config', 'WHERE NOT builtin');
SELECT pg_catalog.pg_extension_config_dump('pvx_counter', '');
INSERT INTO pvx_config VALUES ('alpha', 'a', true), ('beta', 'b', true), ('gamma', 'c', true);
"""
USER_ROWS = ("INSERT INTO pvx_config VALUES ('delta', 'd', false), ('tab', E'x\\ty', false),"
             " ('nul', NULL, false);"
             "SELECT setval('pvx_counter', 42);"
             "CREATE TABLE notes (id int PRIMARY KEY, body text);"
             "INSERT INTO notes SELECT g, 'note ' || g FROM generate_series(1, 50) g")


def pv(cluster, repo, *args, env=None, json_out=True):
    e = dict(tools_env(cluster))
    e.update(env or {})
    base = list(args) + ["--repo", repo]
    if json_out:
        return run_pgvault_json(*base, env=e, timeout=120)
    return run_pgvault(*base, env=e, timeout=120)


def state(c, db):
    """The configuration table's rows (sorted), the sequence, and a plain table's row count."""
    rows = c.psql("SELECT name, value, builtin FROM public.pvx_config ORDER BY name", db=db)
    seq = c.psql("SELECT last_value, is_called FROM public.pvx_counter", db=db)[0]
    notes = c.scalar("SELECT count(*) FROM public.notes", db=db) if c.scalar(
        "SELECT to_regclass('public.notes') IS NOT NULL", db=db) else None
    return rows, seq, notes


@pytest.fixture(scope="module")
def env(pg_module, pg_bindir, pgvault_bin, tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("installing a test extension into the server's share directory needs root")
    sharedir = subprocess.run([os.path.join(pg_bindir, "pg_config"), "--sharedir"], capture_output=True,
                              text=True, check=True).stdout.strip()
    files = [os.path.join(sharedir, "extension", EXT + ".control"),
             os.path.join(sharedir, "extension", EXT + "--1.0.sql")]
    try:
        for path, text in zip(files, (CONTROL, SCRIPT)):
            with open(path, "w") as f:
                f.write(text)
            os.chmod(path, 0o644)
        c = pg_module
        c.execute("CREATE DATABASE extsrc")
        c.execute("CREATE EXTENSION %s" % EXT, db="extsrc")
        c.execute(USER_ROWS, db="extsrc")
        repo = str(tmp_path_factory.mktemp("extconfig") / "repo")
        rc, out, err = run_pgvault("init", "--repo", repo)
        assert rc == 0, err
        rc, doc, err = pv(c, repo, "backup", "--logical", *conn_args(c, "extsrc"))
        assert rc == 0, err
        yield {"cluster": c, "repo": repo, "backup": doc["id"], "tmp": tmp_path_factory.mktemp("extcfg-out")}
    finally:
        for path in files:
            if os.path.exists(path):
                os.unlink(path)


def restore(env, target, *extra):
    c = env["cluster"]
    return pv(c, env["repo"], "restore", env["backup"], "--target-db", target, *conn_args(c, "postgres"), *extra)


def test_backup_records_only_the_filtered_rows(env):
    c = env["cluster"]
    rc, show, err = pv(c, env["repo"], "show", env["backup"])
    assert rc == 0, err
    tables = {t["name"]: t for t in show["tables"]}
    cfg = tables["pvx_config"]
    assert cfg["rows"] == 3 and cfg["extension"] == EXT and cfg["filter"] == "WHERE NOT builtin", cfg
    assert tables["notes"]["rows"] == 50
    seqs = {s["name"]: s for s in show["sequences"]}
    assert seqs["pvx_counter"]["last_value"] == "42" and seqs["pvx_counter"]["is_called"] is True


def test_whole_restore_matches_pg_dump(env):
    c = env["cluster"]
    src = state(c, "extsrc")
    # what pg_dump keeps, loaded by psql into a new database
    dump = c.run_tool("pg_dump", "-d", "extsrc").stdout
    c.execute("CREATE DATABASE ext_pgdump")
    c.run_tool("psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", "ext_pgdump", input=dump)
    assert state(c, "ext_pgdump") == src
    rc, res, err = restore(env, "ext_whole")
    assert rc == 0, err
    assert state(c, "ext_whole") == src
    # restored over an existing copy with --clean: the extension is made again, no row twice
    rc, res, err = restore(env, "ext_whole", "--clean", "--no-safety-backup")
    assert rc == 0, err
    assert state(c, "ext_whole") == src
    c.execute("DROP DATABASE ext_pgdump")
    c.execute("DROP DATABASE ext_whole")


def test_table_restore_into_database_with_the_extension(env):
    c = env["cluster"]
    src = state(c, "extsrc")
    c.execute("CREATE DATABASE ext_tab")
    target = conn_args(c, "postgres")
    # without the extension the table cannot be made: say so
    rc, out, err = pv(c, env["repo"], "restore", env["backup"], "--target-db", "ext_tab", "-t", "pvx_config",
                      *target, json_out=False)
    assert rc == 5 and ('table "public"."pvx_config" belongs to extension %s, which database \'ext_tab\' does not'
                        ' have' % EXT) in err and "CREATE EXTENSION %s" % EXT in err, err
    c.execute("CREATE EXTENSION %s" % EXT, db="ext_tab")
    rc, res, err = restore(env, "ext_tab", "-t", "pvx_config")
    assert rc == 0, err
    assert res["rows"] == 3 and res["tables"] == 1
    rows, seq, notes = state(c, "ext_tab")
    assert rows == src[0] and notes is None
    # again: the user rows are there, so --clean (or --data-only) is needed; --clean keeps the builtin rows
    rc, out, err = pv(c, env["repo"], "restore", env["backup"], "--target-db", "ext_tab", "-t", "pvx_config",
                      *target, json_out=False)
    assert rc == 5 and "already holds rows of the kind the backup has" in err and "--clean" in err, err
    c.execute("UPDATE pvx_config SET value = 'changed' WHERE name = 'delta'", db="ext_tab")
    rc, res, err = restore(env, "ext_tab", "-t", "pvx_config", "--clean")
    assert rc == 0, err
    assert res["safety_backup"], res
    rc, show, err = pv(c, env["repo"], "show", res["safety_backup"])
    assert rc == 0, err
    assert [(t["name"], t["rows"]) for t in show["tables"]] == [("pvx_config", 3)]
    assert state(c, "ext_tab")[0] == src[0]
    c.execute("DROP DATABASE ext_tab")


def test_data_only_restore(env):
    c = env["cluster"]
    src = state(c, "extsrc")
    rc, res, err = restore(env, "ext_data", "--schema-only")
    assert rc == 0, err
    rows, seq, notes = state(c, "ext_data")
    assert [r[0] for r in rows] == ["alpha", "beta", "gamma"] and notes == 0
    rc, res, err = restore(env, "ext_data", "--data-only")
    assert rc == 0, err
    assert state(c, "ext_data") == src
    # --clean --data-only empties only the rows of the backup's kind before loading them
    rc, res, err = restore(env, "ext_data", "--data-only", "--clean", "--no-safety-backup")
    assert rc == 0, err
    assert state(c, "ext_data") == src
    c.execute("DROP DATABASE ext_data")


def test_export_plain(env):
    c = env["cluster"]
    out = env["tmp"] / "ext.sql"
    rc, o, err = pv(c, env["repo"], "export", env["backup"], "--format", "plain", "-o", str(out))
    assert rc == 0, err
    c.execute("CREATE DATABASE ext_exp")
    c.run_tool("psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", "ext_exp", "-f", str(out))
    assert state(c, "ext_exp") == state(c, "extsrc")
    c.execute("DROP DATABASE ext_exp")


def test_drill_passes(env):
    c = env["cluster"]
    drill_dir = c.mkdir("drills")
    rc, rep, err = pv(c, env["repo"], "drill", env["backup"], "--no-record", env={"PGVAULT_DRILL_DIR": drill_dir})
    assert rc == 0, (rep, err)
    assert rep["ok"] is True and rep["outcome"] == "passed", rep
    checks = {k["name"]: k for k in rep["checks"]}
    assert [k["status"] for k in rep["checks"]] == ["ok"] * len(rep["checks"]), rep["checks"]
    # the fingerprint covers the rows backed up: 3 of pvx_config, 50 of notes
    assert checks["tables"]["details"]["tables"] == 2 and checks["tables"]["details"]["rows"] == 53
    assert checks["sequences"]["status"] == "ok"


def test_filters_choose_the_rows_as_pg_dump(env):
    """-t names a configuration table: its rows are backed up (the extension
    is not); --exclude-table-data and -T leave them out."""
    c = env["cluster"]

    def tables(*args):
        rc, doc, err = pv(c, env["repo"], "backup", "--logical", *conn_args(c, "extsrc"), *args)
        assert rc == 0, err
        rc, show, err = pv(c, env["repo"], "show", doc["id"])
        assert rc == 0, err
        return {t["name"]: t.get("rows") for t in show["tables"]}, {s["name"] for s in show["sequences"]}
    assert tables("-t", "pvx_config") == ({"pvx_config": 3}, set())
    assert tables("--exclude-table-data", "pvx_config") == ({"notes": 50}, {"pvx_counter"})
    assert tables("-T", "pvx_co*") == ({"notes": 50}, set())
