"""test_logical_zoo.py: logical backups round-trip every kind of object and
value PostgreSQL 15 has (fidelity_zoo.sql: what fidelity.sql of
test_logical.py lacks).

One cluster, one zoo database, one backup; then, for each way back:
  1. `pgvault restore` into a new database,
  2. `pgvault export --format plain` loaded with psql into an empty database,
  3. `pgvault restore --table --clean` of a partitioned table and of a table
     with dependents (indexes, constraints, triggers, owned sequence, views,
     a materialized view, publication membership, statistics, column grants),
     then a whole-database `--clean` over that copy and a `--data-only
     --clean` of partitioned tables with foreign keys between them,
  4. `pgvault drill`,
`pg_dump --schema-only` of source and target must be equal, and so must
every table's rows (sorted COPY lines), every sequence, every large object,
the NOT VALID constraints, the subscriptions and the database's settings.
What pg_dump itself cannot carry is left out of fidelity_zoo.sql; comments
there say what and why.  About 30 s on 2 cores.
"""

import os

import pytest

from pgvault_cli import conn_args, run_pgvault, run_pgvault_json, tools_env

HERE = os.path.dirname(os.path.abspath(__file__))
ROLES = ("zoo_owner", "zoo_reader", "zoo_writer")
SESSION = ("SET timezone = 'UTC'; SET extra_float_digits = 3; SET datestyle = 'ISO';"
           "SET intervalstyle = 'postgres'; SET bytea_output = 'hex'; SET row_security = off")


def pv(cluster, repo, *args, extra_env=None, timeout=180):
    env = dict(tools_env(cluster))
    env.update(extra_env or {})
    return run_pgvault_json(*args, "--repo", repo, env=env, timeout=timeout)


def schema_dump(cluster, db):
    r = cluster.run_tool("pg_dump", "--schema-only", "-d", db)
    # pg_dump >= 15.14 adds \restrict lines with a random key
    return "\n".join(ln for ln in r.stdout.splitlines()
                     if not ln.startswith(("\\restrict", "\\unrestrict")))


def content(cluster, db):
    """{what: value} for every table's rows (sorted COPY lines), sequence,
    large object, NOT VALID constraint and database setting."""
    out = {}
    with cluster.connect(db) as conn:
        conn.execute(SESSION)
        rels = [r[0] for r in conn.execute(
            "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind IN ('r', 'm') AND c.relispopulated "
            "AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema' ORDER BY 1").fetchall()]
        for rel in rels:
            with conn.cursor().copy("COPY (SELECT * FROM ONLY %s) TO STDOUT" % rel) as cp:
                out[rel] = sorted(b"".join(bytes(b) for b in cp).split(b"\n"))
        for (name,) in conn.execute(
                "SELECT format('%I.%I', schemaname, sequencename) FROM pg_sequences ORDER BY 1").fetchall():
            out["seq " + name] = conn.execute("SELECT last_value, is_called FROM %s" % name).fetchone()
        out["large objects"] = conn.execute(
            "SELECT m.oid, pg_get_userbyid(m.lomowner), md5(lo_get(m.oid)), obj_description(m.oid, 'pg_largeobject'), "
            "m.lomacl::text FROM pg_largeobject_metadata m ORDER BY 1").fetchall()
        out["not valid"] = conn.execute(
            "SELECT conname FROM pg_constraint WHERE NOT convalidated ORDER BY 1").fetchall()
        out["settings"] = conn.execute(
            "SELECT coalesce(setrole::regrole::text, '-'), (SELECT array_agg(x ORDER BY x) FROM unnest(setconfig) x)::text "
            "FROM pg_db_role_setting s "
            "JOIN pg_database d ON d.oid = s.setdatabase WHERE d.datname = current_database() ORDER BY 1").fetchall()
        out["subscriptions"] = conn.execute(
            "SELECT subname, subenabled, subslotname, subbinary, substream, subpublications::text "
            "FROM pg_subscription WHERE subdbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "ORDER BY 1").fetchall()
    return out


def assert_same_database(cluster, src, dst):
    a, b = schema_dump(cluster, src), schema_dump(cluster, dst)
    if a != b:
        import difflib
        diff = "\n".join(difflib.unified_diff(a.splitlines(), b.splitlines(), src, dst, lineterm="", n=1))
        raise AssertionError("schema differs between %s and %s:\n%s" % (src, dst, diff[:6000]))
    ca, cb = content(cluster, src), content(cluster, dst)
    assert sorted(ca) == sorted(cb)
    for k in ca:
        assert ca[k] == cb[k], "%s differs between %s and %s" % (k, src, dst)


def set_event_triggers(cluster, db, enable):
    """Event triggers of a target fire on what a --table restore does there
    (as with pg_restore): switch them off around it."""
    for name, how in (("zoo_log_ddl", "ENABLE"), ("zoo_rewrite", "ENABLE ALWAYS")):
        cluster.execute("ALTER EVENT TRIGGER %s %s" % (name, how if enable else "DISABLE"), db=db)


@pytest.fixture(scope="module")
def zoo(pg_module, pgvault_bin, tmp_path_factory):
    c = pg_module
    for role in ROLES:
        c.execute("CREATE ROLE %s" % role)
    c.execute("CREATE TABLESPACE zoo_ts LOCATION '%s'" % c.mkdir("zoo_ts"))
    c.execute("CREATE DATABASE zoo OWNER zoo_owner")
    c.run_tool("psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", "zoo", "-f", os.path.join(HERE, "fidelity_zoo.sql"))
    c.execute("ANALYZE", db="zoo")
    repo = str(tmp_path_factory.mktemp("zoo") / "repo")
    rc, out, err = run_pgvault("init", "--repo", repo)
    assert rc == 0, err
    # a small split size: some tables become page ranges
    rc, doc, err = pv(c, repo, "backup", "--logical", *conn_args(c, "zoo"), "-j", "2", "--split-size", "64k")
    assert rc == 0, err
    assert doc["large_objects"] == 301
    return {"cluster": c, "repo": repo, "backup": doc, "restored": []}


@pytest.fixture(scope="module")
def zoo_copy(zoo):
    """The backup restored into a new database (tests may change it)."""
    c = zoo["cluster"]
    rc, res, err = pv(c, zoo["repo"], "restore", zoo["backup"]["id"], "--target-db", "zoo_copy", "-j", "2",
                      "--log-level", "detail", *conn_args(c, "postgres"))
    assert rc == 0, err
    # pg_restore -j 15 can deadlock two index attachments into one partitioned index: pgvault makes them serially
    assert "post-data: 10 index attachments one at a time" in err, err
    assert res["created"] is True and res["large_objects"] == 301 and res["rows"] == zoo["backup"]["rows"]
    return "zoo_copy"


def test_restore_roundtrip(zoo, zoo_copy):
    c = zoo["cluster"]
    rc, show, err = pv(c, zoo["repo"], "show", zoo["backup"]["id"])
    assert rc == 0, err
    tables = {(t["schema"], t["name"]): t for t in show["tables"]}
    assert tables[("Zoo Ünïcödé ☃", "日本語のテーブル名前です長い名前ですよ")]["rows"] == 1
    assert tables[("public", "T")]["rows"] == 1 and tables[("public", "t")]["rows"] == 2
    assert tables[("zoo", "wide")]["rows"] == 40
    assert sorted(n for (s, n), t in tables.items() if t.get("parts", 1) > 1) == ["parted_2023", "wide"]  # page ranges (--split-size 64k)
    assert show["large_objects"]["count"] == 301
    assert_same_database(c, "zoo", zoo_copy)
    # the event trigger that logs DDL logged nothing during the restore
    assert c.psql("SELECT tag FROM zoo.ddl_log WHERE at_restore", db=zoo_copy) == []
    # the restored copy works: defaults of columns added after the rows, a subscription left off
    assert c.psql("SELECT c, n FROM zoo.missing WHERE id = 1", db=zoo_copy) == [("filled in", 42)]
    assert c.scalar("SELECT zoo.definer(1, 2, 3)", db=zoo_copy) == 3


def test_export_plain(zoo, tmp_path):
    c = zoo["cluster"]
    out = tmp_path / "zoo.sql"
    rc, res, err = pv(c, zoo["repo"], "export", zoo["backup"]["id"], "--format", "plain", "-o", str(out))
    assert rc == 0, err
    assert res["large_objects"] == 301 and res["rows"] == zoo["backup"]["rows"]
    # an empty database whose own settings print and parse values differently
    c.execute("CREATE DATABASE zoo_exp OWNER zoo_owner")
    for setting in ("datestyle = 'SQL, DMY'", "intervalstyle = 'sql_standard'", "xmloption = 'document'",
                    "timezone = 'Pacific/Chatham'"):
        c.execute("ALTER DATABASE zoo_exp SET " + setting)
    r = c.run_tool("psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", "zoo_exp", "-f", str(out), check=False)
    assert r.returncode == 0, r.stderr[-3000:]
    assert_same_database(c, "zoo", "zoo_exp")
    assert c.scalar("SELECT count(*) FROM zoo.ddl_log WHERE at_restore", db="zoo_exp") == 0
    c.execute("DROP SUBSCRIPTION sub_off", db="zoo_exp")   # it keeps the database from being dropped
    c.execute("DROP DATABASE zoo_exp WITH (FORCE)")
    # a partitioned table exported alone comes with its partitions, at every level
    rc, res, err = pv(c, zoo["repo"], "export", zoo["backup"]["id"], "--format", "plain", "-t", "zoo.parted",
                      "-o", str(out))
    assert rc == 0, err
    text = out.read_text()
    assert res["rows"] == 3000 and res["tables"] == 4, res   # the leaves hold the rows
    for part in ("parted_2023", "parted_2024_h0", "parted_2024_h1", "parted_odd"):
        assert 'COPY "zoo"."%s" ' % part in text and "ATTACH PARTITION zoo.%s " % part in text, part


def restore_table(zoo, target, *tables):
    c = zoo["cluster"]
    rc, res, err = pv(c, zoo["repo"], "restore", zoo["backup"]["id"], "--target-db", target,
                      *[a for t in tables for a in ("-t", t)],
                      "--clean", "--no-safety-backup", *conn_args(c, "postgres"))
    assert rc == 0, err
    return res


def test_restore_partitioned_table(zoo, zoo_copy):
    c = zoo["cluster"]
    set_event_triggers(c, zoo_copy, False)
    try:
        # rows gone, a partition detached and dropped, an index and the trigger dropped, a column added
        for sql in ("UPDATE zoo.parted SET v = 'changed' WHERE id % 2 = 0",
                    "ALTER TABLE zoo.parted DETACH PARTITION zoo.parted_odd", "DROP TABLE zoo.parted_odd",
                    "DROP INDEX zoo.parted_v", "DROP TRIGGER parted_rows ON zoo.parted",
                    "DROP STATISTICS IF EXISTS zoo.nothing", "ALTER TABLE zoo.parted ADD COLUMN extra integer"):
            c.execute(sql, db=zoo_copy)
        res = restore_table(zoo, zoo_copy, "zoo.parted")
        assert res["rows"] == 3000, res
    finally:
        set_event_triggers(c, zoo_copy, True)
    assert_same_database(c, "zoo", zoo_copy)


def test_restore_table_with_dependents(zoo, zoo_copy):
    c = zoo["cluster"]
    set_event_triggers(c, zoo_copy, False)
    try:
        for sql in ("UPDATE zoo.trg SET a = 'changed'", "DELETE FROM zoo.trg WHERE id > 40",
                    "DROP INDEX zoo.trg_a_idx", "ALTER TABLE zoo.trg DROP CONSTRAINT trg_pkey CASCADE",
                    "DROP TRIGGER trg_always ON zoo.trg", "DROP TRIGGER trg_constraint ON zoo.trg",
                    "ALTER TABLE zoo.trg ENABLE TRIGGER trg_disabled", "SELECT setval('zoo.seq_of_trg', 1)",
                    "ALTER PUBLICATION pub_some DROP TABLE zoo.trg", "DROP STATISTICS s2.trg_stats",
                    "DELETE FROM zoo.vals WHERE id > 1", 'TRUNCATE public."T"',
                    'INSERT INTO "Zoo Ünïcödé ☃"."日本語のテーブル名前です長い名前ですよ" ("列☃") VALUES (\'x\')'):
            c.execute(sql, db=zoo_copy)
        # zoo.vals: xml content fragments and every value type, loaded into a database whose
        # own settings are xmloption = document, DateStyle = 'SQL, DMY', IntervalStyle = sql_standard;
        # "T" (not t), and a unicode schema's table by pattern; zoo.props (forced row security, policies,
        # column grants, replica identity, CLUSTER ON, storage parameters, TOASTed values), zoo.docs (ICU
        # and nondeterministic collations), zoo.in_heap2 (another table access method, bloom indexes, an
        # index with an operator class of the database's, extended statistics)
        res = restore_table(zoo, zoo_copy, "zoo.trg", "zoo.vals", 'public."T"', '"Zoo Ünïcödé ☃".*', "zoo.props",
                            "zoo.docs", "zoo.in_heap2")
        assert res["rows"] == 572 and res["tables"] == 7, res
    finally:
        set_event_triggers(c, zoo_copy, True)
    assert_same_database(c, "zoo", zoo_copy)


def test_restore_clean_whole_database(zoo, zoo_copy):
    """--clean over a copy with partitions' inherited constraints, event
    triggers that log DDL into one of its tables, and a subscription."""
    c = zoo["cluster"]
    c.execute("UPDATE zoo.docs SET title = 'changed'", db=zoo_copy)
    rc, res, err = pv(c, zoo["repo"], "restore", zoo["backup"]["id"], "--target-db", zoo_copy, "--clean",
                      "--no-safety-backup", "-j", "2", *conn_args(c, "postgres"))
    assert rc == 0, err
    assert res["created"] is False
    assert_same_database(c, "zoo", zoo_copy)


def test_restore_data_only_partitioned(zoo, zoo_copy):
    """--data-only --clean of partitioned tables with foreign keys between them: the
    partitioned parents are emptied with their partitions (TRUNCATE checks a partitioned
    table's foreign keys on the parent), and only the tables restored."""
    c = zoo["cluster"]
    c.execute("INSERT INTO s1.inh_child VALUES (9, 'not restored: keeps its rows', false)", db=zoo_copy)
    c.execute("DELETE FROM zoo.parted_refs_out; DELETE FROM zoo.parted_ref WHERE id > 100;"
              "UPDATE zoo.parted SET v = 'changed'", db=zoo_copy)
    set_event_triggers(c, zoo_copy, False)   # ALTER TABLE ... DISABLE TRIGGER ALL is DDL to them
    try:
        rc, res, err = pv(c, zoo["repo"], "restore", zoo["backup"]["id"], "--target-db", zoo_copy, "--data-only",
                          "--clean", "--disable-triggers", "--no-safety-backup", "-t", "zoo.parted",
                          "-t", "zoo.parted_ref", "-t", "zoo.parted_refs_out", "-t", "s1.inh_parent",
                          *conn_args(c, "postgres"))
    finally:
        set_event_triggers(c, zoo_copy, True)
    assert rc == 0, err
    assert res["rows"] == 3000 + 200 + 2 + 1, res
    assert c.scalar("SELECT count(*) FROM s1.inh_child WHERE id = 9", db=zoo_copy) == 1
    # (s1's tables are published for deletes without a replica identity: TRUNCATE, then the source's row)
    c.execute("TRUNCATE ONLY s1.inh_child; INSERT INTO s1.inh_child VALUES (2, 'child', true)", db=zoo_copy)
    assert_same_database(c, "zoo", zoo_copy)


def test_drill(zoo):
    c = zoo["cluster"]
    rc, rep, err = pv(c, zoo["repo"], "drill", zoo["backup"]["id"], "--no-record",
                      extra_env={"PGVAULT_DRILL_DIR": c.mkdir("drills")}, timeout=300)
    assert rc == 0, "\n".join(ch["message"] for ch in rep.get("checks", []) if ch["status"] != "ok")
    assert rep["ok"] is True and rep["outcome"] == "passed", rep
    # the zoo's NOT VALID foreign key has an orphan on purpose: a warning, not a failure
    notes = [(ch["name"], ch["status"], ch["message"]) for ch in rep["checks"] if ch["status"] != "ok"]
    assert [n[:2] for n in notes] == [("foreign_keys", "warning")] and "orphans" in notes[0][2], notes
