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


def fingerprints(cluster, repo, db):
    """{schema.table: (rows, fingerprint)} of db, from a new logical backup of it."""
    rc, doc, err = pv(cluster, repo, "backup", "--logical", *conn_args(cluster, db), json_out=True)
    assert rc == 0, err
    rc, show, err = pv(cluster, repo, "show", doc["id"], json_out=True)
    assert rc == 0, err
    return {"%s.%s" % (t["schema"], t["name"]): (t.get("rows"), t.get("fingerprint")) for t in show["tables"]}


def db_settings(cluster):
    """Every database-level setting, by database and role names."""
    return sorted(cluster.psql(
        "SELECT coalesce(d.datname, ''), coalesce(r.rolname, ''), s.setconfig::text "
        "FROM pg_db_role_setting s LEFT JOIN pg_database d ON d.oid = s.setdatabase "
        "LEFT JOIN pg_roles r ON r.oid = s.setrole WHERE s.setdatabase <> 0"))


def test_export_plain_of_an_all_backup(pg_factory, pgvault_bin, tmp_path):
    """export --format plain: database settings (ALTER DATABASE ... SET,
    ALTER ROLE ... IN DATABASE ... SET) are in the script; an --all backup
    exports as one script that recreates the globals and every database."""
    src = pg_factory("expsrc")
    dst = pg_factory("expdst")
    src.execute("CREATE ROLE exp_app LOGIN; CREATE ROLE exp_ro; GRANT exp_ro TO exp_app;"
                "ALTER ROLE exp_ro SET work_mem = '2MB'")
    src.execute("CREATE DATABASE shop OWNER exp_app")
    src.execute("CREATE DATABASE \"crm db\" ENCODING 'LATIN1' TEMPLATE template0 LC_COLLATE 'C' LC_CTYPE 'C'")
    src.execute("ALTER DATABASE shop SET work_mem = '5MB'; ALTER DATABASE shop SET search_path = app, public;"
                "ALTER ROLE exp_ro IN DATABASE shop SET statement_timeout = '7s';"
                "COMMENT ON DATABASE shop IS 'the shop'; ALTER DATABASE shop CONNECTION LIMIT 40;"
                "GRANT CONNECT ON DATABASE shop TO exp_ro")
    src.execute("CREATE SCHEMA app AUTHORIZATION exp_app;"
                "CREATE TABLE app.items (id serial PRIMARY KEY, name text, tags text[]);"
                "INSERT INTO app.items (name, tags) SELECT 'item ' || g, ARRAY['a' || g % 3] "
                "FROM generate_series(1, 500) g; ALTER TABLE app.items OWNER TO exp_app;"
                "GRANT SELECT ON app.items TO exp_ro;"
                "CREATE TABLE public.orders (id int PRIMARY KEY, item int REFERENCES app.items (id), n numeric);"
                "INSERT INTO public.orders SELECT g, 1 + g % 500, g / 3.0 FROM generate_series(1, 2000) g", db="shop")
    src.execute("CREATE TABLE contacts (id int PRIMARY KEY, who text); INSERT INTO contacts SELECT g, "
                "E'who\\\\ \\t' || g FROM generate_series(1, 300) g; SELECT lo_from_bytea(4242, 'lo')", db="crm db")
    repo = str(tmp_path / "repo")
    rc, out, err = run_pgvault("init", "--repo", repo)
    assert rc == 0, err
    rc, doc, err = pv(src, repo, "backup", "--logical", "--all", *conn_args(src), json_out=True)
    assert rc == 0, err
    want_fp = {db: fingerprints(src, repo, db) for db in ("shop", "crm db")}

    # the whole cluster: loads with psql into a new cluster, like pg_dumpall's script
    out = tmp_path / "cluster.sql"
    rc, o, err = pv(src, repo, "export", doc["id"], "--format", "plain", "-o", str(out), json_out=True)
    assert rc == 0, err
    assert o["database"] == "*" and o["tables"] == 3 and o["rows"] == 2800 and o["large_objects"] == 1, o
    text = out.read_text()
    assert "\\if :pgvault_new\nCREATE ROLE exp_app;\n\\endif\n" in text and "CREATE DATABASE \"shop\" WITH TEMPLATE = template0" in text
    assert "ALTER DATABASE :\"pgvault_db\" SET work_mem TO '5MB';" in text
    dst.run_tool("psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", "postgres", "-f", str(out))
    for db in ("shop", "crm db"):
        same_database(src, db, dst, db)
        assert fingerprints(dst, repo, db) == want_fp[db], db
    assert db_settings(dst) == db_settings(src) == [
        ("shop", "", "{work_mem=5MB,\"search_path=app, public\"}"), ("shop", "exp_ro", "{statement_timeout=7s}")]
    assert roles_of(dst) == roles_of(src)
    q = ("SELECT datname, pg_get_userbyid(datdba), pg_encoding_to_char(encoding), datcollate, datconnlimit, "
         "(SELECT string_agg(a::text, ',' ORDER BY a::text) FROM unnest(datacl) a), shobj_description(oid, 'pg_database') FROM pg_database WHERE datname IN ('shop', 'crm db') "
         "ORDER BY 1")
    assert dst.psql(q) == src.psql(q)

    # one database of it, into an empty database of another name: its settings come along
    one = tmp_path / "shop.sql"
    rc, o, err = pv(src, repo, "export", doc["id"], "--format", "plain", "--database", "shop", "-o", str(one),
                    json_out=True)
    assert rc == 0, err
    assert o["database"] == "shop" and o["tables"] == 2
    dst.execute("CREATE DATABASE shop2")
    dst.run_tool("psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", "shop2", "-f", str(one))
    same_database(src, "shop", dst, "shop2")
    assert fingerprints(dst, repo, "shop2") == want_fp["shop"]
    assert [s for s in db_settings(dst) if s[0] == "shop2"] == [
        ("shop2", "", "{work_mem=5MB,\"search_path=app, public\"}"), ("shop2", "exp_ro", "{statement_timeout=7s}")]

    # a table filter needs one database
    rc, o, err = pv(src, repo, "export", doc["id"], "--format", "plain", "-t", "app.items", "-o", str(one))
    assert rc == 2 and "--table needs --database NAME with a backup of several databases" in err, err


def roles_of(cluster):
    return cluster.psql(
        "SELECT r.rolname, r.rolcanlogin, coalesce((SELECT setconfig::text FROM pg_db_role_setting s "
        "WHERE s.setrole = r.oid AND s.setdatabase = 0), ''), coalesce((SELECT string_agg(g.rolname, ',') "
        "FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid WHERE m.member = r.oid), '') "
        "FROM pg_roles r WHERE r.rolname LIKE 'exp%' ORDER BY 1")
