"""test_runbooks.py: our users' backup runbooks, done the pgvault way.

Five real runbooks (/work/shared/runbooks/; docs/runbooks.md maps every step
to a pgvault command and to the test below that proves it):

  A  000_94e7e889dd392cdf  UnifiedHealth: pg_dump -F c, az storage blob upload,
                           restore specific tables, restore into a new database
                           to test, PITR "2025-12-30T14:30:00Z", weekly count check
  B  001_b93bf3fa277c9fa5  Residency Scheduler: backup.sh from cron (pg_dump,
                           md5sum, find -mtime +30 -delete, aws s3 cp), drop and
                           recreate the database, WAL archiving with cp, PITR to
                           '2024-12-15 14:30:00', monthly test restore, gpg
  C  002_b259796a0770f669  E-Commerce: dump, upload to S3, restore, verify counts
  D  003_4d4381f2c4c1afb7  Chatbot: dropdb/createdb/pg_restore, restore tables,
                           "accidental data deletion" PITR, openssl enc, md5 of ids
  E  004_aba8120433284b13  La Factoria: rotation daily 7 / weekly 4 / monthly 12 /
                           yearly 5 with --dry-run, "backup corruption: create a
                           new backup immediately", openssl enc -k

Each test is one procedure or accident of those runbooks and asserts data
(rows, pg_dump of before and after, checksums), not just exit codes.  What
other modules already prove in depth (every restore option, retention
calendars, drill fault detection, copy over every backend) is not repeated:
these tests chain the steps as a team would run them.

The logical tests share one cluster with a "clinic" database (users, visits,
appointments with foreign keys) and a "billing" database backed up after it,
so that 'latest' has to pick the right database, as in runbook A's six
databases in one repository.  pgvault runs as the test user over TCP; the
physical test (PITR) has its own cluster and runs pgvault as the server user
(physical_helpers), since archive_command does.
"""

import datetime
import glob
import gzip
import json
import os
import shutil
import struct
import time

import pytest

from emulators import emu_tls, emu_workdir, s3rver  # noqa: F401  (fixtures)
from pgvault_cli import conn_args, run_pgvault, run_pgvault_json, tools_env
import physical_helpers as ph

CLINIC = """
CREATE TABLE users (id serial PRIMARY KEY, email text NOT NULL UNIQUE, name text);
CREATE TABLE visits (id bigserial PRIMARY KEY, user_id int NOT NULL REFERENCES users (id),
                     note text, created_at timestamptz NOT NULL DEFAULT '2025-12-30 09:00+00');
CREATE INDEX visits_user_idx ON visits (user_id);
CREATE TABLE appointments (id serial PRIMARY KEY, visit_id bigint REFERENCES visits (id),
                           at timestamptz, status text CHECK (status IN ('booked', 'done')));
INSERT INTO users (email, name) SELECT 'u' || g || '@example.org', 'user ' || g
  FROM generate_series(1, 300) g;
INSERT INTO visits (user_id, note) SELECT 1 + g % 300, CASE WHEN g % 5 = 0 THEN NULL ELSE 'visit ' || g END
  FROM generate_series(1, 2000) g;
INSERT INTO appointments (visit_id, at, status)
  SELECT 1 + g % 2000, '2025-12-30 10:00+00'::timestamptz + g * interval '1 minute',
         CASE WHEN g % 2 = 0 THEN 'done' ELSE 'booked' END FROM generate_series(1, 1500) g;
ALTER DATABASE clinic SET work_mem = '8MB';
"""
TABLES = ("users", "visits", "appointments")


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

def pv(cluster, *args, env=None, timeout=180):
    e = dict(tools_env(cluster))
    e.update(env or {})
    return run_pgvault(*args, env=e, timeout=timeout)


def ok(cluster, *args, env=None):
    r = pv(cluster, *args, env=env)
    assert r.rc == 0, "pgvault %s: rc=%d\nstdout:\n%s\nstderr:\n%s" % (
        " ".join(map(str, args)), r.rc, r.out, r.err)
    return r


def ok_json(cluster, *args, env=None):
    e = dict(tools_env(cluster))
    e.update(env or {})
    rc, doc, err = run_pgvault_json(*args, env=e, timeout=180)
    assert rc == 0, "pgvault %s: rc=%d\n%s\n%s" % (" ".join(map(str, args)), rc, err,
                                                   json.dumps(doc, indent=1))
    return doc


def backup(cluster, repo, db, *extra, env=None, after_previous=False):
    # ids and start times have a one-second resolution: where the order of
    # backups matters ("newest"), start the next one in a later second
    if after_previous:
        time.sleep(1.05)
    return ok_json(cluster, "backup", "--logical", "--repo", repo, *conn_args(cluster, db), *extra,
                   env=env)["id"]


def counts(cluster, db, tables=TABLES):
    """The runbooks' check: SELECT COUNT(*) of each table."""
    return {t: cluster.scalar("SELECT count(*) FROM %s" % t, db=db) for t in tables}


def id_checksums(cluster, db, tables=TABLES):
    """Runbook D section 10: md5(array_agg(id::text ORDER BY id)) per table."""
    return {t: cluster.scalar("SELECT md5(array_agg(id::text ORDER BY id)::text) FROM %s" % t, db=db)
            for t in tables}


def table_rows(cluster, db, table):
    with cluster.connect(db) as conn:
        conn.execute("SET timezone = 'UTC'")
        with conn.cursor().copy("COPY (SELECT * FROM %s) TO STDOUT" % table) as cp:
            return sorted(b"".join(bytes(b) for b in cp).split(b"\n"))


def dump(cluster, db):
    """pg_dump of one database (schema and rows), without pg_dump's random
    \\restrict keys, plus its ALTER DATABASE settings."""
    r = cluster.run_tool("pg_dump", "--no-sync", "-d", db, dbname=db)
    text = "\n".join(ln for ln in r.stdout.splitlines()
                     if not ln.startswith(("\\restrict", "\\unrestrict")))
    settings = cluster.psql("SELECT s.setconfig::text FROM pg_db_role_setting s JOIN pg_database d "
                            "ON d.oid = s.setdatabase WHERE d.datname = %s", params=(db,))
    return text, settings


def db_exists(cluster, name):
    return cluster.scalar("SELECT count(*) FROM pg_database WHERE datname = %s", params=(name,)) == 1


def flip_byte_in_largest_blob(repo):
    """Flip one byte in the middle of the largest data blob of an unencrypted
    repository (pack headers: docs/repository-format.md section 5): bit rot
    in a stored file."""
    best = None
    for p in glob.glob(os.path.join(repo, "data", "*", "*")):
        with open(p, "rb") as f:
            data = f.read()
        hlen = struct.unpack("<I", data[-4:])[0]
        header = data[-4 - hlen:-4]
        assert header[0] == 0 and header[1:5] == b"PVPH", p
        for i in range(struct.unpack("<I", header[9:13])[0]):
            e = header[13 + 48 * i:13 + 48 * (i + 1)]
            off, length = struct.unpack("<I", e[4:8])[0], struct.unpack("<I", e[8:12])[0]
            if e[0] == 0 and (best is None or length > best[2]):
                best = (p, off, length)
    path, off, length = best
    with open(path, "r+b") as f:
        f.seek(off + length // 2)
        b = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([b[0] ^ 0x5A]))
    return path


# --------------------------------------------------------------------------
# the shared cluster: clinic (backed up), then billing (backed up after it)
# --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def site(pg_module, pgvault_bin, tmp_path_factory):
    c = pg_module
    c.execute("CREATE DATABASE clinic")
    c.execute(CLINIC, db="clinic")
    c.execute("CREATE DATABASE billing")
    c.execute("CREATE TABLE invoices (id int PRIMARY KEY, amount numeric);"
              "INSERT INTO invoices SELECT g, g * 9.99 FROM generate_series(1, 400) g", db="billing")
    base = tmp_path_factory.mktemp("runbooks")
    repo = str(base / "repo")
    ok(c, "init", "--repo", repo)
    clinic = backup(c, repo, "clinic")
    billing = backup(c, repo, "billing", after_previous=True)
    return {"cluster": c, "repo": repo, "clinic": clinic, "billing": billing, "base": base}


def test_nightly_backup_script(site, tmp_path):
    """Runbook B "Automated Backup Setup" (backup.sh, cron 0 2 * * *) and
    "Backup Verification"; runbook D 5.2 "Post-Backup Verification".
    pg_dump --format=custom, [ -s FILE ], md5sum > .md5, pg_restore --list,
    md5sum -c, ls -t | head -1, "backup older than 24 hours?":
    backup --json, show, verify, list, status --check."""
    c, repo = site["cluster"], str(tmp_path / "nightly")
    ok(c, "init", "--repo", repo)
    prod = counts(c, "clinic")
    doc = ok_json(c, "backup", "--logical", "--repo", repo, *conn_args(c, "clinic"))
    bid = doc["id"]
    # [ ! -s "$BACKUP_FILE" ] -> the summary says what is in it
    assert doc["database"] == "clinic" and doc["tables"] == 3 and doc["rows"] == sum(prod.values()), doc
    # pg_restore --list backup.dump | grep TABLE -> show: every table, its rows at backup time
    show = ok_json(c, "show", bid, "--repo", repo)
    assert {t["name"]: t["rows"] for t in show["tables"]} == prod
    # md5sum -c backup.dump.md5 -> verify reads back every byte the backup needs
    r = ok(c, "verify", bid, "--repo", repo)
    assert "verify: OK, no damage found" in r.out, r.out
    # LATEST_BACKUP=$(ls -t backup_*.dump | head -1) -> list, newest last
    lst = ok_json(c, "list", "--repo", repo, "--database", "clinic")
    assert lst["backups"][-1]["id"] == bid
    # BACKUP_AGE > 24h -> WARNING: status --check, a monitoring plugin's exit code
    r = pv(c, "status", "--check", "--repo", repo)
    assert r.rc == 0 and r.out.startswith("PGVAULT OK"), r


def test_drop_table_restore_it_into_the_live_database(site):
    """Runbook A "Restore Specific Tables Only" (pg_restore --table=visits
    --clean --if-exists), runbook D 3.2, runbook B "Partial Restore": visits
    was dropped (CASCADE took appointments' foreign key with it) while the
    application kept writing users.  restore -t puts the table back from the
    backup, with its index and the foreign key pointing at it, into the live
    database; the rows written since stay."""
    c, repo = site["cluster"], site["repo"]
    before = table_rows(c, "clinic", "visits")
    c.execute("INSERT INTO users VALUES (9001, 'late@example.org', 'written after the backup');"
              "DROP TABLE visits CASCADE", db="clinic")
    assert c.scalar("SELECT count(*) FROM pg_constraint WHERE conname = 'appointments_visit_id_fkey'",
                    db="clinic") == 0
    res = ok_json(c, "restore", "latest", "--repo", repo, "--target-db", "clinic", "-t", "public.visits",
                  *conn_args(c, "postgres"))
    assert res["id"] == site["clinic"] and res["tables"] == 1 and res["rows"] == 2000, res
    assert res["safety_backup"] is None      # nothing was replaced
    assert table_rows(c, "clinic", "visits") == before
    assert c.scalar("SELECT count(*) FROM users WHERE email = 'late@example.org'", db="clinic") == 1
    assert c.scalar("SELECT count(*) FROM pg_indexes WHERE indexname = 'visits_user_idx'", db="clinic") == 1
    assert c.scalar("SELECT convalidated FROM pg_constraint WHERE conname = 'appointments_visit_id_fkey'",
                    db="clinic") is True
    # the sequence goes on after the restored ids
    assert c.scalar("SELECT last_value FROM visits_id_seq", db="clinic") == 2000
    c.execute("DELETE FROM users WHERE email = 'late@example.org'", db="clinic")


def test_dropped_database_comes_back_under_its_name(site):
    """Runbook D 3.1 "Restore to existing database" (dropdb; createdb;
    pg_restore), runbook B "Drop and recreate database", runbook A "Restore
    from Manual Backup (Full Database)": DROP DATABASE by mistake.  One
    command, no createdb: the database comes back with its settings, equal
    to pg_dump of it before.  'latest' is clinic's newest backup, although
    billing was backed up after it (the repository holds both)."""
    c, repo = site["cluster"], site["repo"]
    before = dump(c, "clinic")
    c.execute("DROP DATABASE clinic WITH (FORCE)")
    # Pre-Restore Checklist: identify the backup, the target, the space: --dry-run
    plan = ok_json(c, "restore", "latest", "--repo", repo, "--target-db", "clinic", "--dry-run",
                   *conn_args(c, "postgres"))
    assert plan["choice"] == "latest: the newest logical backup of database 'clinic'", plan
    assert plan["databases"][0]["source_database"] == "clinic", plan
    assert not db_exists(c, "clinic")
    res = ok_json(c, "restore", "latest", "--repo", repo, "--target-db", "clinic", *conn_args(c, "postgres"))
    assert res["created"] is True and res["source_database"] == "clinic", res
    assert dump(c, "clinic") == before


def test_restore_into_a_new_database_to_test_it(site, tmp_path):
    """Runbook A "Restore to Different Database (for testing)" and "Backup
    Validation (Weekly)" (compare counts with production), runbook D 10
    "Practical Test" (md5 of the ids on both sides), runbook B "Test Restore
    (Monthly)" (DROP DATABASE IF EXISTS test; CREATE; pg_restore; count;
    DROP).  With backups of several databases in the repository, 'latest'
    into a new name needs --database, and says so.  Runbook B "SQL Format
    Backup" / "Compressed SQL Backup": export a psql script of it."""
    c, repo = site["cluster"], site["repo"]
    r = pv(c, "restore", "latest", "--repo", repo, "--target-db", "clinic_restore_test",
           *conn_args(c, "postgres"))
    assert r.rc == 1, r
    assert ("'latest' is ambiguous: no logical backup holds database 'clinic_restore_test', and the "
            "repository holds backups of several databases (billing, clinic)") in r.err, r.err
    assert "HINT: say which database to restore with --database NAME" in r.err, r.err
    assert not db_exists(c, "clinic_restore_test")

    res = ok_json(c, "restore", "latest", "--database", "clinic", "--repo", repo,
                  "--target-db", "clinic_restore_test", *conn_args(c, "postgres"))
    assert res["id"] == site["clinic"] and res["database"] == "clinic_restore_test", res
    assert counts(c, "clinic_restore_test") == counts(c, "clinic")
    assert id_checksums(c, "clinic_restore_test") == id_checksums(c, "clinic")
    c.execute("DROP DATABASE clinic_restore_test")

    # runbook B "Compressed SQL Backup" and "Method 3" (gunzip -c x.sql.gz | psql):
    # export writes the psql script of clinic's newest backup, no pgvault needed to load it
    out = tmp_path / "clinic.sql.gz"
    ok(c, "export", "latest", "--database", "clinic", "--format", "plain", "--compress", "gzip",
       "-o", str(out), "--repo", repo)
    c.execute("CREATE DATABASE clinic_sql")
    with gzip.open(out, "rt") as f:
        script = f.read()
    assert "-- pgvault export of backup %s: database clinic" % site["clinic"] in script
    c.run_tool("psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", "clinic_sql", input=script,
               dbname="clinic_sql")
    assert id_checksums(c, "clinic_sql") == id_checksums(c, "clinic")
    c.execute("DROP DATABASE clinic_sql")


def test_restore_onto_a_fresh_server_without_the_roles(site, pg_factory, tmp_path):
    """Runbook D 3.4 "Restore to Docker Container (Testing)" and 11 "Issue:
    Restore fails with permission errors" (pg_restore --no-owner
    --no-privileges), runbook B "CREATE DATABASE ... OWNER scheduler",
    runbook A "Level 3: provision new infrastructure": the new server lacks
    the application's roles.  The restore stops, drops the database it
    created and says both ways out; --no-owner --no-privileges works; so
    does bringing the roles first from an --all backup (--globals-only),
    after which ownership and grants are as on the source."""
    c = site["cluster"]
    c.execute("CREATE ROLE scheduler LOGIN; CREATE ROLE auditor")
    c.execute("CREATE DATABASE residency OWNER scheduler")
    c.execute("CREATE TABLE people (id int PRIMARY KEY, name text); ALTER TABLE people OWNER TO scheduler;"
              "GRANT SELECT ON people TO auditor;"
              "INSERT INTO people SELECT g, 'resident ' || g FROM generate_series(1, 120) g", db="residency")
    repo = str(tmp_path / "repo")
    ok(c, "init", "--repo", repo)
    try:
        one = backup(c, repo, "residency")
        every = ok_json(c, "backup", "--logical", "--all", "--repo", repo, *conn_args(c, "postgres"))["id"]
    finally:
        c.execute("DROP DATABASE residency")
        c.execute("DROP ROLE scheduler; DROP ROLE auditor")
    new = pg_factory("fresh")

    r = pv(new, "restore", one, "--repo", repo, "--target-db", "residency", *conn_args(new, "postgres"))
    assert r.rc != 0 and 'role "scheduler" does not exist' in r.err, r
    assert "HINT: the backup's roles do not exist on this server: create them first ('pgvault restore ID " \
        "--globals-only' of a 'backup --logical --all', or CREATE ROLE), or restore without ownership and " \
        "grants: --no-owner --no-privileges" in r.err, r.err
    assert not db_exists(new, "residency")

    res = ok_json(new, "restore", one, "--repo", repo, "--target-db", "residency", "-O", "-x",
                  *conn_args(new, "postgres"))
    assert res["rows"] == 120 and new.scalar("SELECT count(*) FROM people", db="residency") == 120
    new.execute("DROP DATABASE residency")

    ok(new, "restore", every, "--globals-only", "--repo", repo, *conn_args(new, "postgres"))
    ok(new, "restore", every, "--database", "residency", "--repo", repo, *conn_args(new, "postgres"))
    assert new.scalar("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'residency'") == \
        "scheduler"
    assert new.psql("SELECT tableowner FROM pg_tables WHERE tablename = 'people'", db="residency") == \
        [("scheduler",)]
    assert new.scalar("SELECT has_table_privilege('auditor', 'people', 'SELECT')", db="residency") is True
    assert new.scalar("SELECT count(*) FROM people", db="residency") == 120


def test_monthly_drill_with_report(site, tmp_path):
    """Runbook B "Test Restore (Monthly)" ("People records restored: N"),
    runbook C "Monthly Backup Test", runbook E "Monthly Restore Test",
    runbook A "Restore Time Testing (Monthly)" (time taken, date tested):
    drill restores into a scratch cluster, checks every table against the
    counts and fingerprints recorded at backup time plus the team's own
    count query, times it against the RTO and records the report, which
    list and status then show."""
    c, repo = site["cluster"], site["repo"]
    checks = tmp_path / "checks.sql"
    checks.write_text("SELECT count(*) FROM visits => %d\n"
                      "SELECT count(*) FROM appointments a LEFT JOIN visits v ON v.id = a.visit_id "
                      "WHERE v.id IS NULL => 0\n" % c.scalar("SELECT count(*) FROM visits", db="clinic"))
    drill_dir = c.mkdir("drills")
    # 'latest' of clinic, although billing's backup is newer
    rc, rep, err = run_pgvault_json("drill", "latest", "--database", "clinic", "--repo", repo,
                                    "--checks", str(checks), "--rto", "1h",
                                    env=dict(tools_env(c), PGVAULT_DRILL_DIR=drill_dir), timeout=180)
    assert rc == 0, (rep, err)
    assert rep["outcome"] == "passed" and rep["backup"]["id"] == site["clinic"], rep["backup"]
    checks_ = {ch["name"]: ch for ch in rep["checks"]}
    assert checks_["tables"]["details"]["tables"] == 3, checks_["tables"]
    assert checks_["tables"]["details"]["rows"] == sum(counts(c, "clinic").values()), checks_["tables"]
    assert checks_["sql:1"]["status"] == "ok" and checks_["sql:1"]["message"] == "2000"
    assert checks_["sql:2"]["status"] == "ok"
    assert rep["rto_ok"] is True and rep["times_ms"]["total"] > 0
    assert os.listdir(drill_dir) == []          # the scratch cluster is gone
    r = pv(c, "drill", "latest", "--database", "nope", "--repo", repo)
    assert r.rc == 1 and "no backup of database 'nope' to drill in repository" in r.err, r
    # the record: list and status show the last drill of that backup
    lst = ok_json(c, "list", "--repo", repo, "--database", "clinic")
    row = [b for b in lst["backups"] if b["id"] == site["clinic"]][0]
    assert row["drill"]["ok"] is True, row["drill"]
    st = ok_json(c, "status", "--repo", repo)
    assert any(g.get("database") == "clinic" and g["drill"] and g["drill"]["ok"] for g in st["groups"]), st


def test_encrypted_repository_and_passphrase_rotation(site, tmp_path):
    """Runbook E "Encryption" (openssl enc -aes-256-cbc -k $BACKUP_ENCRYPTION_KEY),
    runbook D 7.3 (pg_dump | openssl enc -pbkdf2), runbook B "Encrypted
    Off-Site Backup" (gpg --symmetric) and its monthly "Review and rotate
    credentials".  The passphrase comes from a file or a command, never
    from argv (which ps shows to everyone: pgvault refuses the option and
    does not echo it); nothing readable reaches the repository; a new
    passphrase is added and the old one removed without re-encrypting."""
    c = site["cluster"]
    repo = str(tmp_path / "enc")
    old, new = tmp_path / "old.pass", tmp_path / "new.pass"
    old.write_text("correct horse battery staple\n")
    new.write_text("rotated in the monthly review\n")
    for p in (old, new):
        p.chmod(0o600)
    r = pv(c, "init", "--repo", repo, "--encrypt", "--passphrase", "hunter2")
    assert r.rc == 2 and "secrets are never taken from the command line" in r.err, r
    assert "hunter2" not in r.err and "--passphrase-file" in r.err
    r = pv(c, "backup", "--logical", "--repo", repo, "--password", "s3cret", *conn_args(c, "clinic"))
    assert r.rc == 2 and "database passwords come from ~/.pgpass, PGPASSFILE or PGPASSWORD" in r.err, r
    assert "s3cret" not in r.err
    env_old = {"PGVAULT_PASSPHRASE_FILE": str(old)}
    ok(c, "init", "--repo", repo, "--encrypt", env=env_old)
    c.execute("CREATE TABLE secrets_marker (v text); INSERT INTO secrets_marker "
              "SELECT 'PATIENT-SSN-078-05-1120' FROM generate_series(1, 50)", db="clinic")
    try:
        bid = backup(c, repo, "clinic", env=env_old)
    finally:
        c.execute("DROP TABLE secrets_marker", db="clinic")
    for path in glob.glob(os.path.join(repo, "**", "*"), recursive=True):
        if os.path.isfile(path):
            with open(path, "rb") as f:
                data = f.read()
            assert b"PATIENT-SSN" not in data and b"secrets_marker" not in data, path

    # without the passphrase: one clear line, nothing created
    r = pv(c, "restore", bid, "--repo", repo, "--target-db", "clinic_enc", *conn_args(c, "postgres"))
    assert r.rc != 0 and "is encrypted and no passphrase was given" in r.err, r
    assert not db_exists(c, "clinic_enc")

    # rotate: add the new passphrase, remove the old key (opened with the new one)
    ok(c, "key", "add", "--repo", repo, "--new-passphrase-file", str(new), env=env_old)
    keys = ok_json(c, "key", "list", "--repo", repo, env=env_old)
    old_key = [k["id"] for k in keys if k["current"]][0]
    env_new = {"PGVAULT_PASSPHRASE_COMMAND": "cat %s" % new}
    ok(c, "key", "remove", old_key[:12], "--repo", repo, env=env_new)
    r = pv(c, "list", "--repo", repo, env=env_old)
    assert r.rc != 0 and "wrong passphrase" in r.err, r
    res = ok_json(c, "restore", bid, "--repo", repo, "--target-db", "clinic_enc",
                  *conn_args(c, "postgres"), env=env_new)
    assert res["rows"] == sum(counts(c, "clinic").values()) + 50
    assert id_checksums(c, "clinic_enc") == id_checksums(c, "clinic")
    assert c.scalar("SELECT count(*) FROM secrets_marker", db="clinic_enc") == 50
    c.execute("DROP DATABASE clinic_enc")


def test_offsite_copy_kept_in_step_then_the_site_is_lost(site, s3rver, tmp_path):  # noqa: F811
    """Runbook B "Off-Site Storage" (aws s3 cp, aws s3 sync) and "Level 3:
    Full System Recovery" (restore from off-site backup), runbook C "Upload
    to S3" / "Download from S3", runbook A's geo-redundant copy: each night's
    backup copied to S3; a sync copies only what is new; the local
    repository is lost; the database comes back from S3 alone."""
    c = site["cluster"]
    local = str(tmp_path / "local")
    offsite = "s3://pgv/runbooks-%d" % os.getpid()
    s3env = dict(s3rver.env, AWS_ENDPOINT_URL=s3rver.endpoint, AWS_CA_BUNDLE=s3rver.tls.cert,
                 AWS_REGION="us-east-1")
    ok(c, "init", "--repo", local)
    ok(c, "init", "--repo", offsite, env=s3env)
    night1 = backup(c, local, "clinic")
    first = ok_json(c, "copy", "--repo", local, "--to", offsite, env=s3env)
    assert [(b["id"], b["status"]) for b in first["backups"]] == [(night1, "copied")], first

    c.execute("INSERT INTO visits (user_id, note) SELECT 1, 'night 2' FROM generate_series(1, 100)",
              db="clinic")
    try:
        night2 = backup(c, local, "clinic", after_previous=True)
        expected = dump(c, "clinic")
    finally:
        c.execute("DELETE FROM visits WHERE note = 'night 2'", db="clinic")
    # aws s3 sync: only what the destination lacks
    doc = ok_json(c, "copy", "--repo", local, "--to", offsite, env=s3env)
    assert sorted((b["id"], b["status"]) for b in doc["backups"]) == \
        [(night1, "present"), (night2, "copied")], doc
    # night 2 shares the unchanged tables' chunks with night 1: they are not sent again
    assert doc["totals"]["blobs_present"] > 0, doc["totals"]
    assert 0 < doc["totals"]["bytes_written"] < first["totals"]["bytes_written"], (first, doc)

    shutil.rmtree(local)                           # the site is gone
    r = ok(c, "verify", "--repo", offsite, env=s3env)
    assert "verify: OK, no damage found" in r.out
    res = ok_json(c, "restore", "latest", "--repo", offsite, "--database", "clinic",
                  "--target-db", "clinic_dr", *conn_args(c, "postgres"), env=s3env)
    assert res["id"] == night2, res
    text, settings = dump(c, "clinic_dr")
    assert text.replace("clinic_dr", "clinic") == expected[0].replace("clinic_dr", "clinic")
    assert settings == expected[1]
    c.execute("DROP DATABASE clinic_dr")


def test_retention_replaces_find_mtime_delete(site, tmp_path):
    """Runbook E "Backup Rotation Policy" (daily 7, weekly 4, monthly 12,
    yearly 5; cleanup --dry-run, then for real), runbook B backup.sh
    (find -mtime +$RETENTION_DAYS -delete) and "Out of Disk Space".  The
    policy is given on the command line or in the configuration; --dry-run
    prints every backup, its fate and the rule that keeps it; the real run
    deletes what the dry run said and frees the space."""
    c = site["cluster"]
    repo = str(tmp_path / "rot")
    ok(c, "init", "--repo", repo)
    ids = [backup(c, repo, "billing", after_previous=True) for _ in range(3)]

    # "find -mtime +30 -delete": nothing of today is older than 30 days
    doc = ok_json(c, "expire", "--repo", repo, "--dry-run", "--policy", "within=30d")
    assert doc["expire"] == 0 and doc["keep"] == 3, doc
    assert doc["groups"][0]["policy_from"] == "--policy", doc["groups"]

    # Calendar periods are counted in a fixed-offset zone where it is now
    # about noon: no day (week, month, year) can end between the backups and
    # the expire, as a UTC midnight during the test would.
    off = 12 - time.gmtime().tm_hour
    zone = "Etc/GMT%+d" % -off if off else "UTC"
    conf = tmp_path / "pgvault.conf"
    conf.write_text("[global]\nretention-logical = daily=7,weekly=4,monthly=12,yearly=5\ntime-zone = %s\n"
                    % zone)
    doc = ok_json(c, "expire", "--repo", repo, "--config", str(conf), "--dry-run")
    fate = {b["id"]: (b["action"], b["reasons"]) for b in doc["backups"]}
    # one backup per day is kept: today's newest, for every calendar rule
    assert fate[ids[2]] == ("keep", ["newest", "daily", "weekly", "monthly", "yearly"]), fate
    assert fate[ids[1]] == ("expire", []) and fate[ids[0]] == ("expire", []), fate
    r = ok(c, "expire", "--repo", repo, "--config", str(conf), "--dry-run")
    assert "expire: would expire 2 of 3 backups (1 kept)" in r.out, r.out
    assert sorted(os.listdir(os.path.join(repo, "snapshots"))) == sorted(ids)   # dry run: untouched

    # the command-line policy says the same as the configured one
    doc2 = ok_json(c, "expire", "--repo", repo, "--dry-run",
                   "--policy", "daily=7,weekly=4,monthly=12,yearly=5", env={"PGVAULT_TIME_ZONE": zone})
    assert {b["id"]: (b["action"], b["reasons"]) for b in doc2["backups"]} == fate

    doc = ok_json(c, "expire", "--repo", repo, "--config", str(conf))
    assert sorted(doc["deleted"]) == sorted(ids[:2]) and doc["prune"] is not None, doc
    assert [b["id"] for b in ok_json(c, "list", "--repo", repo)["backups"]] == [ids[2]]
    r = pv(c, "expire", "--repo", repo, "--policy", "daily=seven")
    assert r.rc == 2 and "invalid retention policy 'daily=seven'" in r.err, r


def test_corrupted_backup_is_named_and_refused(site, tmp_path):
    """Runbook B "Verify Backup Integrity" (md5sum -c backup.dump.md5),
    runbook E "Issue: Backup Corruption" (pg_restore --list fails: "Backup
    corrupted!"): a byte of a stored file rots.  verify names the backup it
    damages (exit 3); the restore refuses before a damaged row reaches the
    server and leaves no half-restored database; the other backups still
    verify."""
    c = site["cluster"]
    repo = str(tmp_path / "rot")
    ok(c, "init", "--repo", repo, "--compression", "none")
    bid = backup(c, repo, "clinic")
    flip_byte_in_largest_blob(repo)
    r = pv(c, "verify", "--repo", repo)
    assert r.rc == 3, r
    assert "is corrupt: its content does not match its id" in r.out, r.out
    assert "affects 1 backup: %s" % bid in r.out, r.out
    assert "verify: FAILED" in r.out
    r = pv(c, "restore", bid, "--repo", repo, "--target-db", "clinic_rot", *conn_args(c, "postgres"))
    assert r.rc == 3, r
    # verify set the damaged chunk aside: the restore says so
    assert "restore of backup %s failed" % bid in r.err and "is damaged" in r.err, r.err
    assert not db_exists(c, "clinic_rot")


def test_new_backup_after_corruption_is_clean(site, tmp_path):
    """Runbook E "Issue: Backup Corruption": "if corrupted, create a new
    backup immediately".  verify sets the damaged chunk aside, so the new
    backup stores it again instead of deduplicating against the bad copy;
    and since chunks are named by their content, the old backup is whole
    again too: it verifies and restores to the same rows."""
    c = site["cluster"]
    repo = str(tmp_path / "rot2")
    ok(c, "init", "--repo", repo, "--compression", "none")
    old = backup(c, repo, "clinic")
    flip_byte_in_largest_blob(repo)
    r = pv(c, "verify", "--repo", repo, "--json")
    assert r.rc == 3, r
    assert json.loads(r.out)["quarantine"]["new"] == 1, r.out
    # until a new backup, a restore of the old one names the damage and what repairs it
    r = pv(c, "restore", old, "--repo", repo, "--target-db", "clinic_rot2", *conn_args(c, "postgres"))
    assert r.rc == 3 and "is damaged (a verify found it so and set it aside)" in r.err, r.err
    assert "a new backup of the same data stores the chunk again" in r.err, r.err
    assert not db_exists(c, "clinic_rot2")
    fresh = backup(c, repo, "clinic")
    r = pv(c, "verify", "--repo", repo, "--json")
    assert r.rc == 0, r.out
    doc = json.loads(r.out)
    assert doc["quarantine"] == {"new": 0, "seen": 1, "warning": None}, doc
    assert sorted(b["id"] for b in doc["backups"] if b["status"] == "ok") == sorted([old, fresh])
    ok(c, "restore", old, "--repo", repo, "--target-db", "clinic_rot2", *conn_args(c, "postgres"))
    assert counts(c, "clinic_rot2") == counts(c, "clinic")
    assert id_checksums(c, "clinic_rot2") == id_checksums(c, "clinic")
    c.execute("DROP DATABASE clinic_rot2")


def test_pitr_to_just_before_the_bad_delete(pg_factory):
    """Runbook B "Point-in-Time Recovery" (archive_command = 'cp %p
    /opt/backups/wal_archive/%f', pg_basebackup, restore_command, recovery_target_time
    = '2024-12-15 14:30:00', recovery.signal), runbook D 4.2 and "Scenario 1:
    Accidental Data Deletion", runbook A "Point-in-Time Recovery" (restore
    to 14:30 on a new server, then check the rows created before it).
    archive-push replaces cp; check proves archiving works; list shows the
    window; restore --target-time just before the DELETE, into a new data
    directory, started and promoted: the deleted rows are back, what was
    written before T is there, what came after T is not.  A logical backup
    made after the physical one does not confuse 'latest'."""
    pg = pg_factory("pitr")
    repo = ph.make_repo(pg)
    ph.archive_to(pg, repo)
    # "verify WAL archiving" (runbook E): check pushes a segment end to end
    r = ph.pv(pg, "check", "--repo", repo, "--source", ph.SOURCE, "--json", *ph.conn(pg), env=tools_env(pg))
    assert r.rc in (0, 1), r                      # 1: warnings (archive_timeout 0) are fine here
    chk = {x["name"]: x for x in json.loads(r.out)["checks"]}
    assert chk["archive_command"]["status"] == "ok" and chk["archive_push"]["status"] == "ok", chk
    assert "reached repository '%s'" % repo in chk["archive_push"]["message"], chk["archive_push"]
    pg.execute("CREATE TABLE visits (id int PRIMARY KEY, note text, at timestamptz DEFAULT now())")
    pg.execute("INSERT INTO visits SELECT g, 'morning' FROM generate_series(1, 500) g")
    bid = ph.backup(pg, repo)[0]
    pg.execute("INSERT INTO visits SELECT g, 'before 14:30' FROM generate_series(501, 700) g")
    time.sleep(0.3)
    t = pg.scalar("SELECT clock_timestamp()")      # "14:30", just before the bad DELETE
    time.sleep(0.3)
    pg.execute("DELETE FROM visits WHERE id % 2 = 0")                    # the bad DELETE
    pg.execute("INSERT INTO visits SELECT g, 'after' FROM generate_series(701, 750) g")
    ph.wait_archived(pg, ph.switch_wal(pg))
    # a later logical backup in the same repository (runbook A: "daily full")
    ph.ok(pg, "backup", "--logical", "--repo", repo, "--source", ph.SOURCE, *ph.conn(pg), env=tools_env(pg))

    # "Get the earliest restore point" / "Check latest restorable time": the window
    win = [w for w in json.loads(ph.ok(pg, "list", "--repo", repo, "--json").out)["windows"]
           if w["source"] == ph.SOURCE][0]
    assert win["from"]["backup"] == bid and win["contiguous"] and win["gaps"] == [], win

    def when(s):   # the window's times have a one-second resolution
        return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
    second = datetime.timedelta(seconds=1)
    assert when(win["from"]["time"]) - second <= t <= when(win["to"]["time"]) + second, (t, win)
    target = t.strftime("%Y-%m-%d %H:%M:%S.%f%z")
    d = pg_factory("pitr_restored", start=False)
    shutil.rmtree(d.datadir)
    res = json.loads(ph.ok(d, "restore", "latest", "--repo", repo, "--source", ph.SOURCE,
                           "--pgdata", d.datadir, "--target-time", target, "--target-action", "promote",
                           "--archive-mode", "off", "--start", "--start-options",
                           "-p %d -k %s" % (d.port, d.host), "--json").out)
    assert res["id"] == bid and res["cluster_state"] == "in production", res
    assert d.psql("SELECT note, count(*) FROM visits GROUP BY note ORDER BY note") == \
        [("before 14:30", 200), ("morning", 500)]
    assert d.scalar("SELECT count(*) FROM visits WHERE id % 2 = 0") == 350    # the deleted rows
    # production still has the damage; the restored server is where to copy them from
    assert pg.scalar("SELECT count(*) FROM visits WHERE id % 2 = 0 AND id <= 700") == 0


def test_help_teaches_the_runbook_steps():
    """The --help pages a team reads while converting a runbook show the
    step it is converting: restore's first page the database kinds (not
    only file backups), expire the policy syntax and the 'find -mtime'
    equivalent, drill and restore how to pick one database's backup."""
    def help_of(*cmd):
        r = run_pgvault(*cmd, "--help")
        assert r.rc == 0, r
        return r.out
    h = help_of("restore")
    assert "pgvault restore latest --target-db shop              a dropped database, back" in h
    assert "pgvault restore latest --pgdata /srv/pitr --target-time '2026-11-22 14:30'" in h
    h = help_of("expire")
    assert "within=30d is 'find -mtime +30 -delete'" in h
    assert "retention-logical = daily=7,weekly=4,monthly=12,yearly=5" in h
    assert "pgvault expire --policy daily=7,weekly=4,monthly=12 --dry-run" in h
    assert "--database=NAME          latest/random: only logical backups of database NAME" in \
        help_of("drill")
    h = help_of("restore", "--target-db", "x")
    assert "pgvault restore latest --database shop --target-db shop_test   (test restore)" in h
    assert "--database=NAME          the backed-up database: 'latest' is its newest" in h
