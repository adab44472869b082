"""test_drill.py: `pgvault drill` on real PostgreSQL servers (issue 7).

Spec under test:
  pgvault drill [ID|latest|--random[=DAYS]] [--rto DURATION] [--checks FILE]
      [-j N] [--no-record] [--source NAME] [--json]
  Restores a logical backup into a scratch cluster that pgvault starts
  itself, checks row counts and content fingerprints of every table,
  sequences, matviews, large objects, indexes, foreign keys, NOT VALID
  constraints and the user's SQL checks, times it against the RTO, records
  the report under records/drills/ in the repository and removes the scratch
  cluster.  Exit 0 passed, 3 the backup did not restore faithfully, 1 only
  the RTO was exceeded.  PGVAULT_DRILL_FAULT_SQL runs in the restored
  database before the checks (the fault hook for these tests).

What must be caught: a chunk corrupted in the repository, a row deleted
before the checks, a foreign-key orphan (made by the hook, and present in
the source at backup time), an RTO lower than the measured time.
"""

import glob
import os
import shutil
import struct

import pytest

from pgvault_cli import conn_args, run_pgvault, run_pgvault_json, tools_env

SCHEMA = """
CREATE TABLE customers (id int PRIMARY KEY, email text NOT NULL UNIQUE, name text);
CREATE TABLE orders (id bigserial PRIMARY KEY,
                     customer_id int NOT NULL REFERENCES customers (id),
                     amount numeric(10,2) NOT NULL, note text,
                     created_at timestamptz NOT NULL DEFAULT '2026-01-01 00:00:00+00');
CREATE INDEX orders_customer_idx ON orders (customer_id);
CREATE TABLE items (order_id bigint REFERENCES orders (id), sku text, qty int,
                    CHECK (qty > 0));
INSERT INTO customers SELECT g, 'c' || g || '@example.com', 'customer ' || g FROM generate_series(1, 200) g;
INSERT INTO orders (customer_id, amount, note)
  SELECT 1 + g % 200, g * 1.5, CASE WHEN g % 7 = 0 THEN NULL ELSE 'note ' || g END
  FROM generate_series(1, 3000) g;
INSERT INTO items SELECT 1 + g % 3000, 'sku-' || g % 37, 1 + g % 5 FROM generate_series(1, 4000) g;
CREATE MATERIALIZED VIEW order_totals AS
  SELECT customer_id, sum(amount) AS total FROM orders GROUP BY customer_id;
ALTER TABLE items ADD CONSTRAINT items_qty_small CHECK (qty < 100) NOT VALID;
SELECT lo_from_bytea(0, 'a large object');
"""


def pv(cluster, repo, *args, env=None, json_out=False, timeout=180):
    e = dict(tools_env(cluster))
    e.update(env or {})
    base = list(args) + ["--repo", repo]
    if json_out:
        return run_pgvault_json(*base, env=e, timeout=timeout)
    return run_pgvault(*base, env=e, timeout=timeout)


def drill(env, *args, extra_env=None, repo=None):
    e = {"PGVAULT_DRILL_DIR": env["drill_dir"]}
    e.update(extra_env or {})
    return pv(env["cluster"], repo or env["repo"], "drill", *args, env=e, json_out=True)


def checks_by_name(report):
    return {c["name"]: c for c in report["checks"]}


def drill_records(repo, backup_id):
    return sorted(os.path.basename(p) for p in
                  glob.glob(os.path.join(repo, "records", "drills", backup_id, "*")))


@pytest.fixture(scope="module")
def env(pg_module, pgvault_bin, tmp_path_factory):
    c = pg_module
    c.execute("CREATE DATABASE shop")
    c.execute(SCHEMA, db="shop")
    repo = str(tmp_path_factory.mktemp("drill") / "repo")
    rc, out, err = run_pgvault("init", "--repo", repo)
    assert rc == 0, err
    rc, doc, err = pv(c, repo, "backup", "--logical", *conn_args(c, "shop"), json_out=True)
    assert rc == 0, err
    # The scratch server runs as the cluster's user when we are root: the
    # drill directory must be reachable for it (the default /tmp is).
    drill_dir = c.mkdir("drills")
    return {"cluster": c, "repo": repo, "backup": doc["id"], "drill_dir": drill_dir}


def assert_cleaned_up(env):
    assert os.listdir(env["drill_dir"]) == [], "scratch directories left behind"
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open("/proc/%s/cmdline" % pid, "rb") as f:
                    cmd = f.read()
            except OSError:
                continue
            assert env["drill_dir"].encode() not in cmd, "a scratch server is still running: %r" % cmd


def test_drill_passes_and_is_recorded(env):
    rc, rep, err = drill(env, "latest", "--rto", "1h")
    assert rc == 0, (rep, err)
    assert rep["ok"] is True and rep["outcome"] == "passed" and rep["integrity_ok"] is True
    assert rep["backup"]["id"] == env["backup"] and rep["backup"]["database"] == "shop"
    checks = checks_by_name(rep)
    assert [c["status"] for c in rep["checks"]] == ["ok"] * len(rep["checks"]), rep["checks"]
    for name in ("restore", "tables", "sequences", "matviews", "large_objects", "indexes",
                 "foreign_keys", "not_valid", "rto"):
        assert name in checks, name
    assert checks["tables"]["details"]["tables"] == 3
    assert checks["tables"]["details"]["rows"] == 200 + 3000 + 4000
    assert checks["foreign_keys"]["details"]["constraints"] == 2
    # the CHECK constraint added NOT VALID in the source is NOT VALID in the backup too
    assert checks["not_valid"]["details"]["not_valid"] == 1
    assert checks["large_objects"]["message"].startswith("1 large objects")
    t = rep["times_ms"]
    assert t["total"] >= t["setup"] + t["restore"] + t["checks"] > 0
    assert rep["rto_seconds"] == 3600 and rep["rto_ok"] is True
    # recorded in the repository, outcome in the name
    assert rep["record"]["type"] == "drill" and rep["record"]["backup"] == env["backup"]
    assert rep["record"]["ok"] is True
    assert drill_records(env["repo"], env["backup"])[-1] == rep["record"]["id"] + ".ok"
    assert_cleaned_up(env)

    # the text form
    rc, out, err = pv(env["cluster"], env["repo"], "drill", env["backup"][:12], "--no-record",
                      env={"PGVAULT_DRILL_DIR": env["drill_dir"]})
    assert rc == 0, err
    assert "drill: PASSED" in out and "tables" in out and "3 tables, 7200 rows" in out
    assert len(drill_records(env["repo"], env["backup"])) == 1  # --no-record
    assert_cleaned_up(env)


def test_drill_catches_a_deleted_row(env):
    rc, rep, err = drill(env, env["backup"], extra_env={"PGVAULT_DRILL_FAULT_SQL":
                                                      "DELETE FROM items WHERE ctid = '(0,1)'"})
    assert rc == 3, (rep, err)
    assert rep["ok"] is False and rep["integrity_ok"] is False
    tables = checks_by_name(rep)["tables"]
    assert tables["status"] == "failed"
    assert tables["details"]["problems"] == ["public.items has 3999 rows, the backup 4000"]
    assert drill_records(env["repo"], env["backup"])[-1] == rep["record"]["id"] + ".failed"
    assert_cleaned_up(env)


def test_drill_catches_changed_content(env):
    # same row count, different contents: only the fingerprint can tell
    rc, rep, err = drill(env, env["backup"], extra_env={"PGVAULT_DRILL_FAULT_SQL":
                                                      "UPDATE customers SET name = 'x' WHERE id = 7"})
    assert rc == 3, (rep, err)
    probs = checks_by_name(rep)["tables"]["details"]["problems"]
    assert len(probs) == 1 and probs[0].startswith("public.customers has 200 rows as it should, but "
                                                   "their contents differ"), probs


def test_drill_catches_a_foreign_key_orphan(env):
    # the hook deletes a referenced customer behind the constraint's back
    fault = ("SET session_replication_role = replica; "
             "DELETE FROM customers WHERE id = 5")
    rc, rep, err = drill(env, env["backup"], extra_env={"PGVAULT_DRILL_FAULT_SQL": fault})
    assert rc == 3, (rep, err)
    fk = checks_by_name(rep)["foreign_keys"]
    assert fk["status"] == "failed"
    assert fk["details"]["problems"] == [
        "15 rows of public.orders reference no row (foreign key orders_customer_id_fkey)"]
    assert_cleaned_up(env)


def test_drill_catches_an_orphan_in_the_source(env):
    # orphans that exist in the source at backup time: the restore cannot
    # rebuild the foreign key, and the drill says so
    c = env["cluster"]
    c.execute("CREATE DATABASE shop_orphans TEMPLATE shop")
    c.execute("SET session_replication_role = replica; DELETE FROM orders WHERE id = 10",
              db="shop_orphans")
    rc, doc, err = pv(c, env["repo"], "backup", "--logical", *conn_args(c, "shop_orphans"), json_out=True)
    assert rc == 0, err
    rc, rep, err = drill(env, doc["id"])
    assert rc == 3, (rep, err)
    restore = checks_by_name(rep)["restore"]
    assert restore["status"] == "failed"
    assert "foreign key" in restore["message"] and "items_order_id_fkey" in restore["message"], restore
    assert_cleaned_up(env)


def largest_data_blob(repo):
    """(pack path, offset, length) of the largest data blob of an unencrypted
    repository, from the pack headers (docs/repository-format.md section 5)."""
    best = None
    for p in glob.glob(os.path.join(repo, "data", "*", "*")):
        with open(p, "rb") as f:
            data = f.read()
        hlen = struct.unpack("<I", data[-4:])[0]
        header = data[-4 - hlen:-4]
        assert header[0] == 0 and header[1:5] == b"PVPH", p   # codec none, magic
        n = struct.unpack("<I", header[1 + 8:1 + 12])[0]
        for i in range(n):
            e = header[1 + 12 + 48 * i:1 + 12 + 48 * (i + 1)]
            btype, off, length = e[0], struct.unpack("<I", e[4:8])[0], struct.unpack("<I", e[8:12])[0]
            if btype == 0 and (best is None or length > best[2]):
                best = (p, off, length)
    return best


def test_drill_catches_a_corrupted_chunk(env, tmp_path):
    # a copy of the repository with one byte flipped in the largest chunk of
    # table data: the catalog reads fine, the restore must refuse the chunk
    repo = str(tmp_path / "repo")
    shutil.copytree(env["repo"], repo)
    path, off, length = largest_data_blob(repo)
    with open(path, "r+b") as f:
        f.seek(off + length // 2)
        b = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([b[0] ^ 0x5A]))
    rc, rep, err = drill(env, env["backup"], repo=repo)
    assert rc == 3, (rep, err)
    restore = checks_by_name(rep)["restore"]
    assert restore["status"] == "failed" and "is corrupt" in restore["message"], restore
    assert rep["integrity_ok"] is False
    assert rep["times_ms"]["setup"] > 0          # it got as far as the restore
    assert drill_records(repo, env["backup"])[-1] == rep["record"]["id"] + ".failed"
    assert_cleaned_up(env)


def test_drill_rto_exceeded(env):
    rc, rep, err = drill(env, env["backup"], "--rto", "1s", "--no-record")
    assert rc == 1, (rep, err)
    assert rep["integrity_ok"] is True and rep["rto_ok"] is False and rep["ok"] is False
    rto = checks_by_name(rep)["rto"]
    assert rto["status"] == "failed" and "exceeds the RTO of 1s" in rto["message"]
    assert rep["times_ms"]["total"] > 1000
    assert "record" not in rep


def test_drill_user_checks_and_settings(env, tmp_path):
    checks = tmp_path / "checks.sql"
    checks.write_text(
        "# comments and blank lines are ignored\n\n"
        "SELECT count(*) FROM orders => 3000\n"
        "SELECT max(created_at) <= :backup_time FROM orders => t\n"
        "SELECT :backup_id::text = :backup_id => t\n"
        "SELECT count(*) FROM customers WHERE name IS NULL => 1\n")
    conf = tmp_path / "pgvault.conf"
    conf.write_text("[global]\nrto = 1h\ndrill-checks = %s\n" % checks)
    rc, rep, err = drill(env, env["backup"], "--config", str(conf), "--no-record")
    assert rc == 3, (rep, err)
    checks_ = checks_by_name(rep)
    assert checks_["sql:3"]["status"] == "ok" and checks_["sql:3"]["message"] == "3000"
    assert checks_["sql:4"]["status"] == "ok"
    assert checks_["sql:5"]["status"] == "ok"
    assert checks_["sql:6"]["status"] == "failed"
    assert checks_["sql:6"]["message"] == "got '0', expected '1'"
    assert rep["rto_seconds"] == 3600

    bad = tmp_path / "bad.sql"
    bad.write_text("SELECT 1\n")
    rc, out, err = pv(env["cluster"], env["repo"], "drill", "--checks", str(bad),
                      env={"PGVAULT_DRILL_DIR": env["drill_dir"]})
    assert rc == 2, (out, err)
    assert "bad.sql:1: a check is 'QUERY => EXPECTED'" in err
    assert_cleaned_up(env)


def test_drill_random_and_errors(env, tmp_path):
    rc, rep, err = drill(env, "--random=30", "--no-record")
    assert rc in (0, 3), (rep, err)  # a random one of the module's backups
    assert rep["backup"]["id"] in os.listdir(os.path.join(env["repo"], "snapshots"))
    rc, out, err = pv(env["cluster"], env["repo"], "drill", "20990101T000000Z-ffffff",
                      env={"PGVAULT_DRILL_DIR": env["drill_dir"]})
    assert rc == 1 and "no backup '20990101T000000Z-ffffff'" in err, err
    rc, out, err = pv(env["cluster"], env["repo"], "drill", "latest", "--random")
    assert rc == 2 and "give a backup ID or --random, not both" in err
    rc, out, err = pv(env["cluster"], env["repo"], "drill", "--random=soon")
    assert rc == 2 and "invalid --random value 'soon'" in err
    empty = str(tmp_path / "empty")
    assert run_pgvault("init", "--repo", empty).rc == 0
    rc, out, err = pv(env["cluster"], empty, "drill")
    assert rc == 1 and "no backup to drill in repository" in err, err
    rc, out, err = run_pgvault("drill", "--help")
    assert rc == 0 and "pgvault drill" in out and "--random" in out
    assert_cleaned_up(env)


def test_physical_drill(pg, pgvault_bin):
    """A physical backup: restored with its WAL, recovered, promoted and
    checked in every database; a foreign-key orphan made by the hook fails
    it; the scratch server never touches the source's data directory."""
    from physical_helpers import archive_to, backup as pbackup, make_repo, switch_wal, wait_archived

    repo = make_repo(pg)
    archive_to(pg, repo)
    pg.execute("CREATE DATABASE app")
    pg.execute("CREATE TABLE parent (id int PRIMARY KEY);"
               "CREATE TABLE child (id int PRIMARY KEY, parent_id int REFERENCES parent (id));"
               "INSERT INTO parent SELECT generate_series(1, 100);"
               "INSERT INTO child SELECT g, 1 + g % 100 FROM generate_series(1, 1000) g")
    pg.execute("CREATE TABLE t AS SELECT generate_series(1, 5000) AS x; CREATE INDEX ON t (x)", db="app")
    wait_archived(pg, switch_wal(pg))
    bid = pbackup(pg, repo)[0]
    drill_dir = pg.mkdir("drills")
    env = {"PGVAULT_DRILL_DIR": drill_dir}

    rc, rep, err = pv(pg, repo, "drill", "--kind", "physical", "--rto", "1h", env=env, json_out=True)
    assert rc == 0, ([c for c in rep["checks"] if c["status"] != "ok"], err)
    assert rep["backup"]["id"] == bid and rep["backup"]["kind"] == "physical"
    assert rep["backup"]["database"] is None
    checks = checks_by_name(rep)
    assert [c["status"] for c in rep["checks"]] == ["ok"] * len(rep["checks"]), rep["checks"]
    assert checks["restore"]["message"].endswith("WAL segments restored")
    assert checks["recovery"]["status"] == "ok"
    assert checks["databases"]["details"]["databases"] == ["app", "postgres", "template1"]
    for db in ("app", "postgres", "template1"):
        assert db + ":indexes" in checks and db + ":foreign_keys" in checks
    assert checks["postgres:foreign_keys"]["details"]["constraints"] == 1
    assert checks["amcheck"]["status"] == "ok"
    t = rep["times_ms"]
    assert t["restore"] > 0 and t["recovery"] > 0 and t["total"] >= t["restore"] + t["recovery"]
    assert rep["record"]["ok"] is True
    assert os.listdir(drill_dir) == []
    # the source is untouched and still running
    assert pg.is_running() and pg.scalar("SELECT count(*) FROM child") == 1000

    rc, rep, err = pv(pg, repo, "drill", bid, "--no-record", env=dict(env, PGVAULT_DRILL_FAULT_SQL=
                      "SET session_replication_role = replica; DELETE FROM parent WHERE id = 3"), json_out=True)
    assert rc == 3, (rep, err)
    fk = checks_by_name(rep)["postgres:foreign_keys"]
    assert fk["status"] == "failed"
    assert fk["details"]["problems"] == ["10 rows of public.child reference no row (foreign key child_parent_id_fkey)"]
    assert os.listdir(drill_dir) == []
