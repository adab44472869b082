"""test_logical_all.py: `pgvault backup --logical --all` (every database
plus the globals) restored into a fresh cluster, `restore --globals-only`
and `restore --database NAME --target-db OTHER` (issue 4).

Spec under test:
  pgvault backup --logical --all [--exclude-database PATTERN]
      [--with-role-passwords]
  pgvault restore ID [--logical]            globals, then every database
  pgvault restore ID --globals-only         missing roles/tablespaces only
  pgvault restore ID --database NAME [--target-db OTHER]
"""

import re

from pgvault_cli import conn_args, run_pgvault, run_pgvault_json, tools_env
from test_logical import content, schema_dump


def pv(cluster, repo, *args, json_out=False):
    base = list(args) + ["--repo", repo]
    if json_out:
        return run_pgvault_json(*base, env=tools_env(cluster), timeout=180)
    return run_pgvault(*base, env=tools_env(cluster), timeout=180)


def same_database(a, dba, b, dbb):
    assert schema_dump(a, dba) == schema_dump(b, dbb), "schema of %s differs" % dba
    ca, cb = content(a, dba), content(b, dbb)
    assert sorted(ca) == sorted(cb)
    for k in ca:
        assert ca[k] == cb[k], "content of %s differs" % k


def roles(cluster):
    return {r[0]: r[1:] for r in cluster.psql(
        "SELECT r.rolname, r.rolcanlogin, r.rolpassword IS NOT NULL, "
        "coalesce((SELECT setconfig::text FROM pg_db_role_setting s WHERE s.setrole = r.oid AND s.setdatabase = 0), ''),"
        "coalesce(shobj_description(r.oid, 'pg_authid'), ''), "
        "coalesce((SELECT string_agg(g.rolname, ',' ORDER BY g.rolname) FROM pg_auth_members m "
        "  JOIN pg_roles g ON g.oid = m.roleid WHERE m.member = r.oid), '') "
        "FROM pg_authid r WHERE r.rolname IN ('app_owner', 'app_reader')")}


def test_all_two_databases_and_a_role(pg_factory, pgvault_bin, tmp_path):
    src = pg_factory("allsrc")
    dst = pg_factory("alldst")
    src.execute("CREATE ROLE app_reader; CREATE ROLE app_owner LOGIN PASSWORD 'not-kept';"
                "GRANT app_reader TO app_owner; ALTER ROLE app_reader SET work_mem = '3MB';"
                "COMMENT ON ROLE app_owner IS 'owns the shop'")
    src.execute("CREATE DATABASE shop OWNER app_owner")
    src.execute("CREATE DATABASE crm")
    src.execute("CREATE DATABASE scratch_1")
    src.execute("ALTER DATABASE shop SET work_mem = '5MB'")
    src.execute("CREATE TABLE items (id serial PRIMARY KEY, name text, tags text[]);"
                "INSERT INTO items (name, tags) SELECT 'item ' || g, ARRAY['a' || g % 3] FROM generate_series(1, 500) g;"
                "CREATE INDEX items_name ON items (name); ALTER TABLE items OWNER TO app_owner;"
                "GRANT SELECT ON items TO app_reader", db="shop")
    src.execute("CREATE SCHEMA sales; CREATE TABLE sales.contacts (id int PRIMARY KEY, who text, at timestamptz);"
                "INSERT INTO sales.contacts SELECT g, E'who\\t' || g, '2024-01-01'::timestamptz + g * interval '1 min' "
                "FROM generate_series(1, 300) g; CREATE SEQUENCE sales.ticket START 100; SELECT nextval('sales.ticket');"
                "SELECT lo_from_bytea(5150, 'a large object')", db="crm")
    repo = str(tmp_path / "repo")
    rc, out, err = run_pgvault("init", "--repo", repo)
    assert rc == 0, err

    rc, doc, err = pv(src, repo, "backup", "--logical", "--all", "--exclude-database", "scratch_*",
                      *conn_args(src), json_out=True)
    assert rc == 0, err
    assert doc["database"] == "*" and doc["databases"] == 4 and doc["large_objects"] == 1, doc
    rc, show, err = pv(src, repo, "show", doc["id"], json_out=True)
    assert rc == 0, err
    assert [d["database"] for d in show["databases"]] == ["crm", "postgres", "shop", "template1"]
    assert {"app_owner", "app_reader", "postgres"} <= set(show["metadata"]["globals"]["roles"])
    shop = [d for d in show["databases"] if d["database"] == "shop"][0]
    assert [(t["name"], t["rows"]) for t in shop["tables"]] == [("items", 500)]
    rc, text, err = pv(src, repo, "show", doc["id"])
    assert rc == 0 and "==== database crm ====" in text and "sales.contacts" in text, err

    # into a fresh cluster: globals first (the role the databases belong to), then every database
    rc, res, err = pv(dst, repo, "restore", doc["id"], "--logical", *conn_args(dst), json_out=True)
    assert rc == 0, err
    assert res["globals"]["roles_created"] == 2 and res["globals"]["roles_skipped"] == 1, res
    assert "role 'postgres' exists: skipped" in err
    assert sorted(d["database"] for d in res["databases"]) == ["crm", "postgres", "shop", "template1"]
    r = roles(dst)
    assert r == {"app_owner": (True, False, "", "owns the shop", "app_reader"),
                 "app_reader": (False, False, "{work_mem=3MB}", "", "")}, r
    assert roles(src)["app_owner"][1] is True       # the source has a password; the backup does not
    for db in ("shop", "crm"):
        same_database(src, db, dst, db)
    assert dst.scalar("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'shop'") == "app_owner"
    assert dst.scalar("SELECT setconfig::text FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase "
                      "WHERE d.datname = 'shop'") == "{work_mem=5MB}"
    assert dst.scalar("SELECT count(*) FROM pg_database WHERE datname = 'scratch_1'") == 0

    # again: nothing is missing, and it says so
    rc, out, err = pv(dst, repo, "restore", doc["id"], "--globals-only", *conn_args(dst))
    assert rc == 0, err
    assert "role 'app_owner' exists: skipped" in err and "role 'app_reader' exists: skipped" in err
    assert "0 roles created, 3 existed" in out, out

    # one database, under another name; --target-db alone is ambiguous
    rc, res, err = pv(dst, repo, "restore", doc["id"], "--database", "crm", "--target-db", "crm2",
                      *conn_args(dst), json_out=True)
    assert rc == 0, err
    assert res["database"] == "crm2" and res["source_database"] == "crm" and res["created"] is True
    same_database(src, "crm", dst, "crm2")
    rc, out, err = pv(dst, repo, "restore", doc["id"], "--target-db", "x", *conn_args(dst))
    assert rc == 2 and "--database" in err, err
    rc, out, err = pv(dst, repo, "restore", doc["id"], "--database", "nope", *conn_args(dst))
    assert rc != 0 and "holds no database 'nope'" in err and re.search(r"crm, postgres, shop, template1", err), err

    # role passwords only when asked, with a warning
    rc, doc2, err = pv(src, repo, "backup", "--logical", "--all", "--exclude-database", "*", "--with-role-passwords",
                       *conn_args(src), json_out=True)
    assert rc == 0, err
    assert "password hashes" in err and doc2["databases"] == 0, err
    rc, text, err = pv(src, repo, "show", doc2["id"])
    assert rc == 0 and "role passwords: kept" in text, err
    rc, out, err = pv(src, repo, "backup", "--logical", "--with-role-passwords", *conn_args(src))
    assert rc == 2 and "--with-role-passwords needs --all" in err, err

    # a one-database backup has no globals
    rc, one, err = pv(src, repo, "backup", "--logical", *conn_args(src, "crm"), json_out=True)
    assert rc == 0, err
    rc, out, err = pv(dst, repo, "restore", one["id"], "--globals-only", *conn_args(dst))
    assert rc == 2 and "holds no globals" in err, err
