"""test_drill_all.py: `pgvault drill` of a logical --all backup (every
database plus the globals) (issue 4).

Spec under test:
  pgvault drill ID   (ID a backup made with `backup --logical --all`)
  The scratch cluster gets the globals (roles; tablespaces are not made)
  and every database of the backup; each database is checked as a
  one-database drill checks it (row counts and fingerprints of every table,
  sequences, matviews, large objects, indexes, foreign keys, NOT VALID
  constraints), its checks named "DATABASE:CHECK" with "database": DATABASE;
  a "globals" check says every role of the backup exists.  The fault hook
  (PGVAULT_DRILL_FAULT_SQL) picks its database with a first line
  "\\connect NAME".
"""

import os

from pgvault_cli import conn_args, run_pgvault
from test_drill import assert_cleaned_up, checks_by_name, drill, pv


def test_drill_of_an_all_backup(pg_module, pgvault_bin, tmp_path_factory):
    c = pg_module
    c.execute("CREATE ROLE drill_app LOGIN")
    c.execute("CREATE DATABASE shop OWNER drill_app")
    c.execute("CREATE DATABASE crm")
    c.execute("CREATE TABLE customers (id int PRIMARY KEY, name text);"
              "INSERT INTO customers SELECT g, 'customer ' || g FROM generate_series(1, 100) g;"
              "CREATE TABLE orders (id int PRIMARY KEY, customer_id int REFERENCES customers (id), amount numeric);"
              "INSERT INTO orders SELECT g, 1 + g % 100, g * 2.5 FROM generate_series(1, 1000) g;"
              "ALTER TABLE customers OWNER TO drill_app; GRANT SELECT ON orders TO drill_app", db="shop")
    c.execute("CREATE SCHEMA sales; CREATE TABLE sales.contacts (id int PRIMARY KEY, who text);"
              "INSERT INTO sales.contacts SELECT g, E'who\\t' || g FROM generate_series(1, 300) g;"
              "CREATE SEQUENCE sales.ticket START 100; SELECT nextval('sales.ticket')", db="crm")
    repo = str(tmp_path_factory.mktemp("drillall") / "repo")
    rc, out, err = run_pgvault("init", "--repo", repo)
    assert rc == 0, err
    rc, doc, err = pv(c, repo, "backup", "--logical", "--all", *conn_args(c), json_out=True)
    assert rc == 0, err
    dbs = ["crm", "postgres", "shop", "template1"]
    env = {"cluster": c, "repo": repo, "drill_dir": c.mkdir("drills_all")}

    # passes: globals, then every database, each checked
    rc, rep, err = drill(env, doc["id"])
    assert rc == 0, (rep, err)
    assert rep["ok"] is True and rep["outcome"] == "passed", rep["checks"]
    assert rep["backup"]["database"] == "*" and rep["backup"]["databases"] == dbs
    checks = checks_by_name(rep)
    assert [ch["status"] for ch in rep["checks"]] == ["ok"] * len(rep["checks"]), rep["checks"]
    assert checks["restore"]["message"].startswith("4 databases: 3 tables, 1400 rows, 1 sequences"), checks["restore"]
    assert checks["globals"]["status"] == "ok" and checks["globals"]["details"]["roles"] >= 2, checks["globals"]
    for db in dbs:
        for name in ("tables", "sequences", "matviews", "large_objects", "indexes", "foreign_keys", "not_valid"):
            assert "%s:%s" % (db, name) in checks, (db, name)
            assert checks["%s:%s" % (db, name)]["database"] == db
    assert checks["shop:tables"]["details"]["tables"] == 2 and checks["shop:tables"]["details"]["rows"] == 1100
    assert checks["crm:tables"]["details"]["tables"] == 1 and checks["crm:tables"]["details"]["rows"] == 300
    assert checks["crm:sequences"]["message"] == "1 sequences as recorded"
    assert checks["shop:foreign_keys"]["details"]["constraints"] == 1
    assert checks["postgres:tables"]["details"]["tables"] == 0
    assert_cleaned_up(env)

    # the text form names each database's checks
    rc, out, err = pv(c, repo, "drill", doc["id"], "--no-record", env={"PGVAULT_DRILL_DIR": env["drill_dir"]})
    assert rc == 0, err
    assert "drill: PASSED" in out and "shop:tables" in out and "2 tables, 1100 rows" in out, out
    assert_cleaned_up(env)

    # a changed row in the second database (shop, after crm) is caught and named
    fault = "\\connect shop\nUPDATE orders SET amount = amount + 1 WHERE id = 77"
    rc, rep, err = drill(env, doc["id"], extra_env={"PGVAULT_DRILL_FAULT_SQL": fault})
    assert rc == 3, (rep, err)
    assert rep["ok"] is False and rep["integrity_ok"] is False
    failed = [ch["name"] for ch in rep["checks"] if ch["status"] != "ok"]
    assert failed == ["shop:tables"], rep["checks"]
    t = checks_by_name(rep)["shop:tables"]
    assert t["database"] == "shop" and t["message"] == "1 of 2 tables differ from the backup"
    assert len(t["details"]["problems"]) == 1
    assert t["details"]["problems"][0].startswith("public.orders has 1000 rows as it should, but their "
                                                  "contents differ"), t
    assert_cleaned_up(env)

    # a deleted row: the count says it
    fault = "\\c crm\nDELETE FROM sales.contacts WHERE id = 5"
    rc, rep, err = drill(env, doc["id"], "--no-record", extra_env={"PGVAULT_DRILL_FAULT_SQL": fault})
    assert rc == 3, (rep, err)
    assert checks_by_name(rep)["crm:tables"]["details"]["problems"] == ["sales.contacts has 299 rows, the backup 300"]
    assert_cleaned_up(env)
    assert os.path.isdir(repo)
