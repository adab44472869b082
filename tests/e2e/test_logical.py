"""test_logical.py: `pgvault backup --logical`, `pgvault restore --target-db`
and `pgvault show` on a real PostgreSQL server (issue 4).

Spec under test:
  pgvault backup --logical [-d DB] [-j N] [-t/-T/-n/-N PATTERN]
      [--exclude-table-data PATTERN] [--schema-only|--data-only]
      [--strict-names] [--split-size SIZE] [--json]
  pgvault restore ID --target-db NAME [--clean] [--terminate-connections]
      [--no-owner] [--no-privileges] [--no-analyze] [-j N] [--json]
  pgvault show ID [--json]

The fidelity database (fidelity.sql) is backed up once per module and
restored into new databases; `pg_dump --schema-only` of source and copy must
be equal, and so must every table's rows (as a sorted multiset of COPY
lines), every sequence and every large object.
"""

import gzip
import os
import re
import subprocess
import threading
import time

import psycopg
import pytest

from pgcluster import clean_env
from pgvault_cli import conn_args, pgvault_bin, run_pgvault, run_pgvault_json, tools_env

HERE = os.path.dirname(os.path.abspath(__file__))
ROLES = ("fid_reader", "fid_writer", "fid_owner")


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

def pv(cluster, repo, *args, json_out=False, timeout=120):
    base = list(args) + ["--repo", repo]
    if json_out:
        return run_pgvault_json(*base, env=tools_env(cluster), timeout=timeout)
    return run_pgvault(*base, env=tools_env(cluster), timeout=timeout)


def backup(cluster, repo, db, *extra):
    rc, doc, err = pv(cluster, repo, "backup", "--logical", *conn_args(cluster, db), *extra,
                      json_out=True)
    assert rc == 0, err
    return doc


def restore(cluster, repo, backup_id, target, *extra):
    rc, doc, err = pv(cluster, repo, "restore", backup_id, "--target-db", target,
                      *conn_args(cluster, "postgres"), *extra, json_out=True)
    assert rc == 0, err
    return doc


def schema_dump(cluster, db):
    r = cluster.run_tool("pg_dump", "--schema-only", "-d", db)
    # pg_dump >= 15.14 adds \restrict lines with a random key
    return "\n".join(ln for ln in r.stdout.splitlines()
                     if not ln.startswith(("\\restrict", "\\unrestrict")))


def relations(cluster, db):
    """Every table and populated materialized view outside the system schemas."""
    return [r[0] for r in cluster.psql(
        "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind IN ('r', 'm') AND c.relispopulated "
        "AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema' "
        "AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e') "
        "ORDER BY 1", db=db)]


def content(cluster, db):
    """{table: sorted COPY lines} for every relation, plus sequences and large objects."""
    out = {}
    with cluster.connect(db) as conn:
        conn.execute("SET timezone = 'UTC'; SET extra_float_digits = 3; SET row_security = off")
        for rel in relations(cluster, db):
            lines = []
            with conn.cursor().copy("COPY (SELECT * FROM ONLY %s) TO STDOUT" % rel) as cp:
                buf = b"".join(bytes(b) for b in cp)
            lines = sorted(buf.split(b"\n"))
            out[rel] = lines
        for (name,) in conn.execute(
                "SELECT format('%I.%I', schemaname, sequencename) FROM pg_sequences ORDER BY 1").fetchall():
            out["seq " + name] = conn.execute("SELECT last_value, is_called FROM %s" % name).fetchone()
        out["large objects"] = conn.execute(
            "SELECT m.oid, pg_get_userbyid(m.lomowner), md5(lo_get(m.oid)), obj_description(m.oid, 'pg_largeobject'), m.lomacl::text "
            "FROM pg_largeobject_metadata m ORDER BY 1").fetchall()
    return out


def assert_same_database(cluster, src, dst):
    a, b = schema_dump(cluster, src), schema_dump(cluster, dst)
    assert a == b, "schema differs between %s and %s" % (src, dst)
    ca, cb = content(cluster, src), content(cluster, dst)
    assert sorted(ca) == sorted(cb)
    for k in ca:
        assert ca[k] == cb[k], "content of %s differs" % k


def db_properties(cluster, db):
    """ALTER DATABASE / ALTER ROLE IN DATABASE settings, grants, comment of a database."""
    settings = sorted(cluster.psql(
        "SELECT coalesce(setrole::regrole::text, '-'), setconfig::text FROM pg_db_role_setting s "
        "JOIN pg_database d ON d.oid = s.setdatabase WHERE d.datname = %s", db=db, params=(db,)))
    acl = cluster.scalar("SELECT array_agg(a::text ORDER BY a::text) FROM pg_database d, unnest(d.datacl) a "
                         "WHERE d.datname = %s", params=(db,))
    comment = cluster.scalar("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
                             params=(db,))
    return settings, acl, comment


def db_exists(cluster, name):
    return cluster.scalar("SELECT count(*) FROM pg_database WHERE datname = %s", params=(name,)) == 1


def backup_ids(cluster, repo):
    rc, doc, err = pv(cluster, repo, "list", json_out=True)
    assert rc == 0, err
    items = doc["backups"] if isinstance(doc, dict) else doc
    return [b["id"] for b in items]


# --------------------------------------------------------------------------
# fixtures: one cluster, the fidelity database, one repository and backup
# --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fid_cluster(pg_module):
    c = pg_module
    for role in ROLES:
        c.execute("CREATE ROLE %s" % role)
    c.execute("CREATE DATABASE fid OWNER fid_owner")
    c.run_tool("psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", "fid",
               "-f", os.path.join(HERE, "fidelity.sql"))
    c.execute("ANALYZE", db="fid")
    return c


@pytest.fixture(scope="module")
def env(fid_cluster, pgvault_bin, tmp_path_factory, repo_backend):
    """The backup, once per repository backend (backends.py)."""
    c = fid_cluster
    c.execute("DROP DATABASE IF EXISTS fid_copy WITH (FORCE)")  # restored from the previous backend
    repo = repo_backend.url(tmp_path_factory.mktemp("logical"))
    rc, out, err = run_pgvault("init", "--repo", repo)
    assert rc == 0, err
    # a small split size: 'big' (about 2.5 MiB) becomes several page ranges
    doc = backup(c, repo, "fid", "-j", "2", "--split-size", "256k")
    return {"cluster": c, "repo": repo, "backup": doc}


# --------------------------------------------------------------------------
# tests
# --------------------------------------------------------------------------

def test_backup_summary_and_show(env):
    c, repo, doc = env["cluster"], env["repo"], env["backup"]
    assert re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{6}", doc["id"]), doc
    assert doc["kind"] == "logical" and doc["database"] == "fid"
    assert doc["large_objects"] == 3
    assert doc["new_bytes"] > 0 and doc["stored_bytes"] > 0

    rc, show, err = pv(c, repo, "show", doc["id"], json_out=True)
    assert rc == 0, err
    meta = show["metadata"]
    assert meta["database"] == "fid" and meta["encoding"] == "UTF8" and meta["owner"] == "fid_owner"
    assert re.fullmatch(r"[0-9A-F]+/[0-9A-F]+", meta["snapshot"]["lsn"]), meta
    tables = {(t["schema"], t["name"]): t for t in show["tables"]}
    # row counts equal the source's; the partitioned parents hold no data of their own
    for (schema, name), t in tables.items():
        if t["relkind"] == "p":
            assert t["data"] is False
            continue
        n = c.scalar('SELECT count(*) FROM ONLY "%s"."%s"' % (schema.replace('"', '""'), name.replace('"', '""')),
                     db="fid")
        assert t["rows"] == n, (schema, name)
        assert re.fullmatch(r"[0-9a-f]{16}", t["fingerprint"])
    assert tables[("public", "big")]["parts"] > 1
    assert tables[("Odd Schema", 'My "Quoted" Table')]["rows"] == 2
    assert tables[("public", "cache")]["rows"] == 100          # unlogged: data kept
    assert ("public", "events_2024_click") in tables
    seqs = {(s["schema"], s["name"]): s for s in show["sequences"]}
    assert seqs[("app", "seq_not_called")]["last_value"] == "777"
    assert seqs[("app", "seq_not_called")]["is_called"] is False
    assert show["large_objects"]["count"] == 3
    assert "Odd Schema" in show["schemas"]

    rc, out, err = pv(c, repo, "show", doc["id"])
    assert rc == 0, err
    assert "public.orders" in out and "3000" in out and "large objects: 3" in out


@pytest.mark.backends
def test_fidelity_roundtrip(env):
    c, repo, doc = env["cluster"], env["repo"], env["backup"]
    rc, res, err = pv(c, repo, "restore", doc["id"], "--target-db", "fid_copy", "-j", "2", "--log-level", "detail",
                      *conn_args(c, "postgres"), json_out=True)
    assert rc == 0, err
    # the biggest tables get their indexes as soon as their rows are in, the rest after all rows
    assert re.search(r"indexes and constraints of [1-9]\d* tables are built as soon as their rows are in", err), err
    assert res["created"] is True and res["database"] == "fid_copy"
    assert res["rows"] == doc["rows"] and res["large_objects"] == 3
    assert c.scalar("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'fid_copy'") == "fid_owner"
    assert_same_database(c, "fid", "fid_copy")
    # the restored copy works: identity continues where it was, the trigger fires
    assert c.scalar("INSERT INTO app.gen (a) VALUES (1) RETURNING id", db="fid_copy") == \
        c.scalar("SELECT last_value + 7 FROM app.gen_id_seq", db="fid")
    assert c.scalar("SELECT count(*) FROM public.order_stats", db="fid_copy") == 200
    # the database's own settings, grants and comment came along
    assert db_properties(c, "fid_copy") == db_properties(c, "fid")


def test_restore_into_database_in_use_then_clean(env):
    c, repo, doc = env["cluster"], env["repo"], env["backup"]
    restore(c, repo, doc["id"], "fid_busy", "--no-analyze")
    # change it: rows, a table dropped, an object added
    c.execute("DELETE FROM public.orders WHERE id < 100; DROP TABLE public.cache;"
              "UPDATE app.values SET t = 'changed' WHERE id = 1", db="fid_busy")
    holder = c.connect("fid_busy")
    pid = holder.info.backend_pid
    try:
        rc, out, err = pv(c, repo, "restore", doc["id"], "--target-db", "fid_busy", "--clean",
                          *conn_args(c, "postgres"))
        assert rc == 5, err
        assert "in use by 1 other session" in err and "pid %d" % pid in err, err
        assert "--terminate-connections" in err
        # not empty, no --clean: refused
        rc, out, err = pv(c, repo, "restore", doc["id"], "--target-db", "fid_busy",
                          "--terminate-connections", *conn_args(c, "postgres"))
        assert rc == 5 and "is not empty" in err, err
        res = restore(c, repo, doc["id"], "fid_busy", "--clean", "--terminate-connections")
        assert res["created"] is False
    finally:
        try:
            holder.close()
        except Exception:
            pass
    assert_same_database(c, "fid", "fid_busy")


def test_filters(env):
    c, repo = env["cluster"], env["repo"]
    before = backup_ids(c, repo)
    rc, out, err = pv(c, repo, "backup", "--logical", *conn_args(c, "fid"), "-t", "no_such_*")
    assert rc != 0 and "no matching tables were found" in err, err
    rc, out, err = pv(c, repo, "backup", "--logical", *conn_args(c, "fid"), "-n", "nope")
    assert rc != 0 and "no matching schemas were found" in err, err
    rc, out, err = pv(c, repo, "backup", "--logical", *conn_args(c, "fid"), "--strict-names",
                      "-t", "orders", "-t", "nothing_like_this")
    assert rc != 0 and "no matching tables were found for pattern 'nothing_like_this'" in err, err
    assert backup_ids(c, repo) == before

    # pg_dump's pattern rules: unqualified = visible in search_path, quotes literal, wildcards
    doc = backup(c, repo, "fid", "-t", "ORDERS", "-t", '"Odd Schema".*', "-t", "app.val?es")
    rc, show, err = pv(c, repo, "show", doc["id"], json_out=True)
    names = sorted((t["schema"], t["name"]) for t in show["tables"])
    assert names == [("Odd Schema", 'My "Quoted" Table'), ("app", "values"), ("public", "orders")], names
    # the owned sequence of a selected table follows it
    assert [(s["schema"], s["name"]) for s in show["sequences"]] == [("public", "orders_id_seq")]
    assert show["large_objects"]["count"] == 0

    doc = backup(c, repo, "fid", "-n", "app", "-T", "app.secrets", "-T", "app.customer_totals",
                 "--exclude-table-data", "app.gen")
    rc, show, err = pv(c, repo, "show", doc["id"], json_out=True)
    tables = {t["name"]: t for t in show["tables"]}
    assert all(t["schema"] == "app" for t in show["tables"])
    assert "secrets" not in tables and tables["gen"]["data"] is False and tables["values"]["rows"] == 6
    # as with pg_dump -n, extensions (in public) are not part of it: the target has them already
    c.execute("CREATE DATABASE fid_app")
    c.execute("CREATE EXTENSION hstore; CREATE EXTENSION citext; CREATE EXTENSION ltree", db="fid_app")
    res = restore(c, repo, doc["id"], "fid_app")
    assert res["created"] is False
    assert c.scalar("SELECT count(*) FROM app.gen", db="fid_app") == 0
    assert c.scalar("SELECT count(*) FROM app.regions", db="fid_app") == 4
    assert c.scalar("SELECT to_regclass('public.orders') IS NULL", db="fid_app") is True


def test_missing_database_and_failed_restore(env):
    c, repo = env["cluster"], env["repo"]
    before = backup_ids(c, repo)
    rc, out, err = pv(c, repo, "backup", "--logical", *conn_args(c, "no_such_db"))
    assert rc != 0 and 'database "no_such_db" does not exist' in err, err
    assert backup_ids(c, repo) == before

    # a data-only backup cannot go into a new (empty) database: the restore
    # fails in the data step and drops the database it created
    doc = backup(c, repo, "fid", "--data-only", "-t", "public.orders")
    rc, out, err = pv(c, repo, "restore", doc["id"], "--target-db", "fid_fail", *conn_args(c, "postgres"))
    assert rc != 0
    assert "data" in err and "public" in err and "does not exist" in err, err
    assert "was dropped again" in err, err
    assert not db_exists(c, "fid_fail")


def test_consistency_under_writes(env):
    """Two tables changed in one transaction, continuously, during the
    backup: the restored copy satisfies the invariant between them."""
    c, repo = env["cluster"], env["repo"]
    c.execute("CREATE DATABASE bank")
    c.execute("CREATE TABLE accounts (id int PRIMARY KEY, balance bigint NOT NULL);"
              "CREATE TABLE ledger (id bigserial PRIMARY KEY, account int, delta bigint, pad text);"
              "INSERT INTO accounts SELECT g, 1000 FROM generate_series(1, 100) g;"
              "INSERT INTO ledger (account, delta, pad) SELECT 1 + g % 100, 0, repeat('p', 200) "
              "FROM generate_series(1, 40000) g", db="bank")
    stop = threading.Event()
    done = [0]
    errors = []

    def writer():
        try:
            with c.connect("bank", autocommit=False) as conn:
                i = 0
                while not stop.is_set():
                    a, b = 1 + i % 100, 1 + (i * 7 + 3) % 100
                    conn.execute("UPDATE accounts SET balance = balance - 5 WHERE id = %s", (a,))
                    conn.execute("UPDATE accounts SET balance = balance + 5 WHERE id = %s", (b,))
                    conn.execute("INSERT INTO ledger (account, delta) VALUES (%s, -5), (%s, 5)", (a, b))
                    conn.commit()
                    i += 1
                    done[0] = i
        except Exception as e:  # reported below
            errors.append(e)

    t = threading.Thread(target=writer)
    t.start()
    try:
        while done[0] < 50 and t.is_alive():  # a failing writer must not hang the test
            time.sleep(0.02)
        doc = backup(c, repo, "bank", "-j", "2", "--split-size", "1M")
        mid = done[0]
        time.sleep(0.2)
    finally:
        stop.set()
        t.join()
    assert not errors, errors
    assert done[0] > mid > 50
    restore(c, repo, doc["id"], "bank_copy")
    total, rows = c.psql("SELECT sum(balance), count(*) FROM accounts", db="bank_copy")[0]
    assert total == 100 * 1000
    # every committed transfer is in the ledger exactly when it is in the balances
    moved = c.scalar("SELECT count(*) FROM ledger WHERE delta <> 0", db="bank_copy")
    assert moved % 2 == 0 and moved > 0
    assert c.scalar("SELECT count(*) FROM ledger", db="bank_copy") == 40000 + moved
    assert c.scalar("SELECT count(*) FROM accounts a WHERE balance <> 1000 + "
                    "(SELECT coalesce(sum(delta), 0) FROM ledger l WHERE l.account = a.id)", db="bank_copy") == 0


def test_help_and_bad_options(env):
    c, repo = env["cluster"], env["repo"]
    for args in (["backup", "--logical", "--help"], ["restore", "x", "--target-db", "y", "--help"],
                 ["show", "--help"], ["export", "--help"], ["restore", "x", "--globals-only", "--help"]):
        rc, out, err = run_pgvault(*args)
        assert rc == 0 and "Examples:" in out, (args, err)
    rc, out, err = run_pgvault("backup", "--logical", "--no-such-option")
    assert rc == 2 and "unknown option '--no-such-option'" in err
    rc, out, err = run_pgvault("backup", "--logical", "--schema-only", "--data-only", "--repo", repo)
    assert rc == 2 and "cannot be used together" in err
    # a restore with a usage error stops there: no database made, nothing loaded
    bid = env["backup"]["id"]
    for extra, msg in ((["extra-arg"], "unexpected argument 'extra-arg'"),
                       (["--schema-only", "--data-only"], "cannot be used together"),
                       (["--disable-triggers"], "--disable-triggers needs --data-only"),
                       (["--globals-only", "--clean"], "--globals-only restores roles and tablespaces only")):
        rc, out, err = pv(c, repo, "restore", bid, "--target-db", "fid_usage", *extra, *conn_args(c, "postgres"))
        assert rc == 2 and msg in err and "restored" not in out + err, (extra, out, err)
        assert not db_exists(c, "fid_usage"), extra
    rc, out, err = run_pgvault("show", "--repo", repo)
    assert rc == 2 and "which backup?" in err
    rc, out, err = run_pgvault("show", "nosuchbackup", "--repo", repo)
    assert rc != 0 and "no backup 'nosuchbackup'" in err, err
    # everything written by this module's backups reads back
    rc, out, err = run_pgvault("verify", "--repo", repo, timeout=300)
    assert rc == 0, err


# --------------------------------------------------------------------------
# selected tables, safety backups, export, a dying connection
# --------------------------------------------------------------------------

def table_rows(cluster, db, table, where="true"):
    with cluster.connect(db) as conn:
        conn.execute("SET timezone = 'UTC'; SET extra_float_digits = 3")
        with conn.cursor().copy("COPY (SELECT * FROM %s WHERE %s) TO STDOUT" % (table, where)) as cp:
            return sorted(b"".join(bytes(b) for b in cp).split(b"\n"))


def test_table_restore_runbook(env):
    """The runbooks' "someone truncated a table": --table --data-only puts the
    rows back; --clean replaces a changed table whole, its indexes, triggers,
    owned sequence, the views built on it and the foreign keys pointing at it
    included, after a safety backup of what it replaces."""
    c, repo, doc = env["cluster"], env["repo"], env["backup"]
    restore(c, repo, doc["id"], "fid_tab", "--no-analyze")
    target = conn_args(c, "postgres")

    # truncated, then the application went on inserting
    c.execute("TRUNCATE public.orders; INSERT INTO public.orders (customer_id, note) VALUES (1, 'after')", db="fid_tab")
    new_id = c.scalar("SELECT id FROM public.orders", db="fid_tab")
    assert new_id > 3000
    res = restore(c, repo, doc["id"], "fid_tab", "-t", "public.orders", "--data-only")
    assert res["rows"] == 3000 and res["tables"] == 1 and res["safety_backup"] is None
    assert c.scalar("SELECT count(*) FROM public.orders", db="fid_tab") == 3001
    assert table_rows(c, "fid_tab", "public.orders", "id <= 3000") == table_rows(c, "fid", "public.orders")
    # a data-only restore never moves a sequence back behind rows added since
    assert c.scalar("SELECT last_value FROM public.orders_id_seq", db="fid_tab") >= new_id

    # the table exists: replacing it needs --clean; a pattern must match
    rc, out, err = pv(c, repo, "restore", doc["id"], "--target-db", "fid_tab", "-t", "orders", *target)
    assert rc == 5 and 'table "public"."orders" already exists' in err and "--clean" in err, err
    rc, out, err = pv(c, repo, "restore", doc["id"], "--target-db", "fid_tab", "-t", "nope*", *target)
    assert rc != 0 and "no matching tables were found for pattern 'nope*'" in err, err

    # changed rows, definition and indexes: --clean puts the backup's table back
    c.execute("DELETE FROM public.orders WHERE id > 100; ALTER TABLE public.orders ADD COLUMN extra int;"
              "DROP INDEX public.orders_note_trgm", db="fid_tab")
    res = restore(c, repo, doc["id"], "fid_tab", "-t", "public.orders", "--clean")
    safety = res["safety_backup"]
    assert re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{6}", safety), res
    rc, show, err = pv(c, repo, "show", safety, json_out=True)
    assert rc == 0, err
    assert [(t["schema"], t["name"], t["rows"]) for t in show["tables"]] == [("public", "orders", 100)]
    assert "before restoring backup %s" % doc["id"] in show["metadata"]["note"]
    # a table referenced by another's foreign key, with a view on it
    c.execute("UPDATE public.customers SET name = 'changed'", db="fid_tab")
    res = restore(c, repo, doc["id"], "fid_tab", "-t", "public.customers", "--clean", "--no-safety-backup")
    assert res["safety_backup"] is None
    assert_same_database(c, "fid", "fid_tab")
    c.execute("DROP DATABASE fid_tab")


def test_export_plain(env, tmp_path):
    c, repo, doc = env["cluster"], env["repo"], env["backup"]
    out = tmp_path / "fid.sql"
    rc, o, err = pv(c, repo, "export", doc["id"], "--format", "plain", "-o", str(out), json_out=True)
    assert rc == 0, err
    assert o["large_objects"] == 3 and o["rows"] == doc["rows"] and o["written"] == out.stat().st_size
    c.execute("CREATE DATABASE fid_exp")
    c.run_tool("psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", "fid_exp", "-f", str(out))
    assert_same_database(c, "fid", "fid_exp")
    # the database's own settings (ALTER DATABASE / ALTER ROLE ... IN DATABASE ... SET) and comment come along
    settings, _, comment = db_properties(c, "fid")
    assert len(settings) == 2 and db_properties(c, "fid_exp")[0] == settings
    assert db_properties(c, "fid_exp")[2] == comment
    # and every table's fingerprint, from a backup of the loaded database, is the backup's
    rc, again, err = pv(c, repo, "backup", "--logical", *conn_args(c, "fid_exp"), json_out=True)
    assert rc == 0, err

    def fps(backup_id):
        rc, show, err = pv(c, repo, "show", backup_id, json_out=True)
        assert rc == 0, err
        return {(t["schema"], t["name"]): (t.get("rows"), t.get("fingerprint")) for t in show["tables"]}
    assert fps(again["id"]) == fps(doc["id"])
    c.execute("DROP DATABASE fid_exp")

    # gzip on standard output is the same script; a table filter keeps that table
    gz = tmp_path / "fid.sql.gz"
    with open(gz, "wb") as f:
        r = subprocess.run([pgvault_bin(), "export", doc["id"], "--format", "plain", "--compress", "gzip",
                            "--repo", repo], stdout=f, stderr=subprocess.PIPE, env=clean_env(tools_env(c)))
    assert r.returncode == 0, r.stderr

    def script(b):
        return [ln for ln in b.split(b"\n") if not ln.startswith((b"\\restrict", b"\\unrestrict"))]
    assert script(gzip.decompress(gz.read_bytes())) == script(out.read_bytes())
    rc, o, err = pv(c, repo, "export", doc["id"], "--format", "plain", "-t", "app.gen", "-o", str(out))
    assert rc == 0, err
    text = out.read_text()
    assert 'COPY "app"."gen" ' in text and "CREATE TABLE app.gen" in text and "CREATE TABLE public.orders" not in text
    assert "ALTER TABLE app.gen ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY" in text
    rc, o, err = pv(c, repo, "export", doc["id"], "-o", str(out))
    assert rc == 2 and "only --format plain" in err, err


def test_connection_dies_mid_backup(env):
    """A worker connection killed during the backup: the backup fails, no
    manifest is written, and the repository still verifies."""
    c, repo = env["cluster"], env["repo"]
    c.execute("CREATE DATABASE many")
    c.execute("DO $$ BEGIN FOR i IN 1..300 LOOP EXECUTE format('CREATE TABLE t%s AS SELECT g AS id, "
              "md5(g::text) AS v FROM generate_series(1, 2000) g', i); END LOOP; END $$", db="many")
    before = backup_ids(c, repo)
    p = subprocess.Popen([pgvault_bin(), "backup", "--logical", "-j", "1", "--repo", repo, *conn_args(c, "many")],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env(tools_env(c)))
    killed = 0
    deadline = time.time() + 60
    while not killed and p.poll() is None and time.time() < deadline:
        killed = c.scalar("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                          "WHERE application_name = 'pgvault backup worker' AND query LIKE 'COPY%%'")
        time.sleep(0.01)
    out, err = p.communicate(timeout=120)
    assert killed == 1, "the backup ended before a worker could be killed: %s" % err
    assert p.returncode != 0, out
    assert "nothing was recorded" in err and "COPY failed" in err, err
    assert "terminat" in err, err
    assert backup_ids(c, repo) == before
    rc, out, err = run_pgvault("verify", "--repo", repo, timeout=300)
    assert rc == 0, err
    c.execute("DROP DATABASE many")
