"""test_physical_extras.py: the rest of issue 5's physical backups.

- backup --with-wal: the backup carries the WAL from its start to its stop,
  so a restore reaches consistency after those segments are deleted from the
  archive; show --json says so.
- configuration files outside the data directory (Debian's
  /etc/postgresql/VERSION/CLUSTER layout, the server started with
  -c config_file=...): stored with the backup under their original paths,
  restored into the new data directory (adjusted so the restored cluster
  starts on its own) or into --config-dir, the originals untouched.
- asynchronous archive-push keeps a source's secondary repository in step.

Every pgvault command runs as the server's user (physical_helpers.py).
"""

import json
import os
import time

from pgvault_cli import slowdown  # deadlines of polls grow under sanitizers
from physical_helpers import (SOURCE, archive_command, archive_to, backup,
                              conn, dump_all, make_repo, ok, pv, restore_to,
                              switch_wal, wait_archived)
from pgvault_cli import pgvault_bin


def _wait_promoted(c, timeout=60):
    deadline = time.time() + timeout * slowdown()
    while c.scalar("SELECT pg_is_in_recovery()") and time.time() < deadline:
        time.sleep(0.1)
    assert not c.scalar("SELECT pg_is_in_recovery()"), c.log_tail()


def _populate(pg):
    pg.execute("CREATE TABLE items AS SELECT g AS id, md5(g::text) AS v "
               "FROM generate_series(1, 20000) g")
    pg.execute("CREATE INDEX ON items (v)")


def test_with_wal_restores_without_the_archive(pg, pg_factory):
    repo = make_repo(pg)
    archive_to(pg, repo)
    _populate(pg)
    r = ok(pg, "backup", "--physical", "--repo", repo, "--source", SOURCE,
           "--pgdata", pg.datadir, *conn(pg), "--with-wal", "--json")
    doc = json.loads(r.out)
    assert doc["wal_included"] is True and doc["wal_files"] >= 1, doc
    want = dump_all(pg)
    # changes after the backup must not appear in a restore to consistency
    pg.execute("INSERT INTO items VALUES (0, 'after the backup')")

    # the manifest says the backup carries its WAL, and which files
    show = json.loads(ok(pg, "show", doc["id"], "--repo", repo, "--json").out)
    md = show["metadata"]
    assert md["wal_included"] is True, md
    assert md["wal_files"][0] == doc["start_wal"], md
    assert md["wal_files"][-1] == doc["stop_wal"], md

    # the archive loses every segment the backup needs
    tl_dir = os.path.join(repo, "wal", SOURCE, doc["start_wal"][:8])
    for name in md["wal_files"]:
        os.unlink(os.path.join(tl_dir, name))
        assert not os.path.exists(os.path.join(tl_dir, name))

    c = restore_to(pg_factory, repo, doc["id"], "--target-immediate",
                   "--target-action", "promote", "--archive-mode", "off")
    wal = sorted(n for n in os.listdir(os.path.join(c.datadir, "pg_wal"))
                 if n != "archive_status")
    assert wal == md["wal_files"], wal
    c.start()
    _wait_promoted(c)
    got = dump_all(c)
    assert sorted(got) == sorted(want)
    for db in want:
        assert got[db] == want[db], db
    assert c.scalar("SELECT count(*) FROM items WHERE id = 0") == 0
    c.stop()


def test_without_with_wal_the_missing_archive_is_refused(pg, pg_factory):
    repo = make_repo(pg)
    archive_to(pg, repo)
    bid, out, _ = backup(pg, repo)
    show = json.loads(ok(pg, "show", bid, "--repo", repo, "--json").out)
    md = show["metadata"]
    assert md["wal_included"] is False, md
    os.unlink(os.path.join(repo, "wal", SOURCE, md["start_wal"][:8], md["start_wal"]))
    c = pg_factory("refused", start=False)
    import shutil
    shutil.rmtree(c.datadir)
    r = pv(c, "restore", bid, "--repo", repo, "--source", SOURCE,
           "--pgdata", c.datadir, "--target-immediate")
    assert r.rc != 0, r
    assert "WAL segment %s, which backup %s needs to become consistent" % (
        md["start_wal"], bid) in r.err, r.err


def test_async_push_keeps_the_secondary_in_step(pg):
    repo_a = make_repo(pg, "repo-a")
    repo_b = make_repo(pg, "repo-b")
    spool = pg.mkdir("spool")
    conf = os.path.join(pg.basedir, "pgvault.conf")
    with open(conf, "w") as f:
        f.write("[global]\narchive-async = on\nspool-path = %s\n\n"
                "[repo:a]\nurl = %s\n\n[repo:b]\nurl = %s\n\n"
                "[source:%s]\nconninfo = host=127.0.0.1 port=%d user=postgres "
                "dbname=postgres\nrepos = a, b\n" % (spool, repo_a, repo_b, SOURCE, pg.port))
    os.chmod(conf, 0o644)
    pg.restart(archive_mode="on",
               archive_command="%s archive-push --config %s --source %s %%p"
               % (pgvault_bin(), conf, SOURCE))
    segs = []
    for i in range(4):
        pg.execute("CREATE TABLE a%d AS SELECT g FROM generate_series(1, 1000) g" % i)
        segs.append(switch_wal(pg))
    wait_archived(pg, segs[-1])
    tl = os.path.join("wal", SOURCE, "00000001")
    deadline = time.time() + 30 * slowdown()
    while time.time() < deadline:
        in_b = set(os.listdir(os.path.join(repo_b, tl))) if os.path.isdir(
            os.path.join(repo_b, tl)) else set()
        if set(segs) <= in_b:
            break
        time.sleep(0.2)
    in_a = set(os.listdir(os.path.join(repo_a, tl)))
    assert set(segs) <= in_a, (segs, in_a)
    assert set(segs) <= in_b, (segs, in_b, pg.log_tail())
    # the copies are real: archive-get from the secondary gives the segment
    for seg in segs:
        dest = os.path.join(pg.basedir, "b-" + seg)
        ok(pg, "archive-get", "--repo", repo_b, "--source", SOURCE, seg, dest)
        src = os.path.join(pg.datadir, "pg_wal", seg)
        if os.path.exists(src):
            with open(dest, "rb") as a, open(src, "rb") as b:
                assert a.read() == b.read(), seg


# ---- configuration files outside the data directory ----

def _debian_layout(pg, repo):
    """Move the cluster's configuration to <basedir>/etc/15/main as Debian
    keeps it (data_directory, hba_file, ident_file, external_pid_file,
    include_dir 'conf.d') and start it with -c config_file=..., as Debian's
    pg_ctlcluster does.  Returns the configuration directory."""
    from physical_helpers import chown_for_server
    archive_to(pg, repo)
    pg.stop()
    etc = os.path.join(pg.basedir, "etc", "15", "main")
    os.makedirs(os.path.join(etc, "conf.d"))
    with open(os.path.join(pg.datadir, "postgresql.conf")) as f:
        conf = f.read().replace("include 'pgvault_test.conf'", "include_dir 'conf.d'")
    conf += ("\ndata_directory = '%s'\nhba_file = '%s/pg_hba.conf'\n"
             "ident_file = '%s/pg_ident.conf'\nexternal_pid_file = '%s/15-main.pid'\n"
             % (pg.datadir, etc, etc, pg.basedir))
    with open(os.path.join(etc, "postgresql.conf"), "w") as f:
        f.write(conf)
    with open(os.path.join(etc, "conf.d", "00-base.conf"), "w") as f:
        f.write("# the test harness's port and socket\ninclude '%s/pgvault_test.conf'\n"
                % pg.datadir)
    with open(os.path.join(etc, "conf.d", "10-extra.conf"), "w") as f:
        f.write("work_mem = '7MB'\n")
    for name in ("pg_hba.conf", "pg_ident.conf"):
        os.rename(os.path.join(pg.datadir, name), os.path.join(etc, name))
    with open(os.path.join(etc, "pg_ident.conf"), "a") as f:
        f.write("testmap  postgres  postgres\n")
    os.unlink(os.path.join(pg.datadir, "postgresql.conf"))
    chown_for_server(pg, os.path.join(pg.basedir, "etc"))
    _start_with_config(pg, os.path.join(etc, "postgresql.conf"))
    return etc


def _start_with_config(c, config_file):
    from pgcluster import read_postmaster_pid
    r = c._pg_ctl("-o", "-c config_file=%s" % config_file, "-l", c.logfile, "-w",
                  "-t", "60", "start", timeout=70)
    assert r.returncode == 0, (r.stdout, r.stderr, c.log_tail())
    c.pid = read_postmaster_pid(c.datadir)


def _snapshot(d):
    out = {}
    for root, dirs, files in os.walk(d):
        for n in files:
            p = os.path.join(root, n)
            with open(p, "rb") as f:
                out[p] = (f.read(), os.stat(p).st_mtime_ns)
    return out


def _read(p):
    with open(p) as f:
        return f.read()


def test_external_config_files_debian_layout(pg, pg_factory):
    repo = make_repo(pg)
    etc = _debian_layout(pg, repo)
    assert pg.scalar("SHOW config_file") == os.path.join(etc, "postgresql.conf")
    assert pg.scalar("SHOW work_mem") == "7MB"
    _populate(pg)
    before = _snapshot(etc)
    r = ok(pg, "backup", "--physical", "--repo", repo, "--source", SOURCE,
           "--pgdata", pg.datadir, *conn(pg), "--json")
    doc = json.loads(r.out)
    assert doc["external_config_files"] == 5, doc
    want = dump_all(pg)
    md = json.loads(ok(pg, "show", doc["id"], "--repo", repo, "--json").out)["metadata"]
    ext = md["external_config"]
    assert ext["config_dir"] == etc and ext["data_directory"] == pg.datadir, ext
    assert {(f["path"], f["setting"]) for f in ext["files"]} == {
        (os.path.join(etc, "postgresql.conf"), "config_file"),
        (os.path.join(etc, "pg_hba.conf"), "hba_file"),
        (os.path.join(etc, "pg_ident.conf"), "ident_file"),
        (os.path.join(etc, "conf.d", "00-base.conf"), "include"),
        (os.path.join(etc, "conf.d", "10-extra.conf"), "include")}, ext
    assert [d["path"] for d in ext["dirs"]] == [os.path.join(etc, "conf.d")], ext

    # default: into the restored data directory, which lacks them
    c = restore_to(pg_factory, repo, doc["id"], "--target-immediate",
                   "--target-action", "promote", "--archive-mode", "off")
    conf = _read(os.path.join(c.datadir, "postgresql.conf"))
    assert "\n#data_directory = '%s'" % pg.datadir in conf, conf
    assert "\n#hba_file = " in conf and "\n#ident_file = " in conf, conf
    assert "\n#external_pid_file = " in conf, conf
    assert "include_dir = '%s/conf.d'" % c.datadir in conf, conf
    assert etc not in conf.replace("#hba_file = '%s" % etc, "").replace(
        "#ident_file = '%s" % etc, ""), conf
    assert "include = '%s/pgvault_test.conf'" % c.datadir in _read(
        os.path.join(c.datadir, "conf.d", "00-base.conf"))
    assert _read(os.path.join(c.datadir, "conf.d", "10-extra.conf")) == "work_mem = '7MB'\n"
    for name in ("pg_hba.conf", "pg_ident.conf"):
        assert _read(os.path.join(c.datadir, name)) == _read(os.path.join(etc, name)), name
    c.start()
    _wait_promoted(c)
    assert c.scalar("SHOW config_file") == os.path.join(c.datadir, "postgresql.conf")
    assert c.scalar("SHOW hba_file") == os.path.join(c.datadir, "pg_hba.conf")
    assert c.scalar("SHOW ident_file") == os.path.join(c.datadir, "pg_ident.conf")
    assert c.scalar("SHOW work_mem") == "7MB"
    got = dump_all(c)
    assert got == want
    c.stop()

    # --config-dir: Debian-style, the restored cluster runs with -c config_file
    cfgdir = os.path.join(pg.basedir, "etc", "15", "copy")
    c2 = restore_to(pg_factory, repo, doc["id"], "--target-immediate",
                    "--target-action", "promote", "--archive-mode", "off",
                    "--config-dir", cfgdir, name="restored2")
    assert not os.path.exists(os.path.join(c2.datadir, "postgresql.conf"))
    conf = _read(os.path.join(cfgdir, "postgresql.conf"))
    assert "\ndata_directory = '%s'" % c2.datadir in conf, conf
    assert "\nhba_file = '%s/pg_hba.conf'" % cfgdir in conf, conf
    assert "\nident_file = '%s/pg_ident.conf'" % cfgdir in conf, conf
    assert "include_dir = '%s/conf.d'" % cfgdir in conf, conf
    _start_with_config(c2, os.path.join(cfgdir, "postgresql.conf"))
    _wait_promoted(c2)
    assert c2.scalar("SHOW config_file") == os.path.join(cfgdir, "postgresql.conf")
    assert c2.scalar("SHOW data_directory") == c2.datadir
    assert c2.scalar("SHOW hba_file") == os.path.join(cfgdir, "pg_hba.conf")
    assert c2.scalar("SHOW work_mem") == "7MB"
    assert dump_all(c2) == want
    c2.stop()

    # restore --start: the restored configuration is the one the server runs on
    import shutil
    c4 = pg_factory("started", start=False)
    shutil.rmtree(c4.datadir)
    r = ok(c4, "restore", doc["id"], "--repo", repo, "--source", SOURCE, "--pgdata", c4.datadir,
           "--target-immediate", "--target-action", "promote", "--archive-mode", "off",
           "--start", "--start-options", "-p %d -k %s" % (c4.port, c4.host))
    assert c4.scalar("SHOW config_file") == os.path.join(c4.datadir, "postgresql.conf")
    assert c4.scalar("SHOW hba_file") == os.path.join(c4.datadir, "pg_hba.conf")
    assert c4.scalar("SHOW work_mem") == "7MB"
    assert dump_all(c4) == want
    c4.stop()

    # a --config-dir that is not empty is refused before anything is written
    c3 = pg_factory("refused-cfg", start=False)
    import shutil
    shutil.rmtree(c3.datadir)
    r = pv(c3, "restore", doc["id"], "--repo", repo, "--source", SOURCE,
           "--pgdata", c3.datadir, "--config-dir", cfgdir)
    assert r.rc != 0, r
    assert "configuration directory '%s' is not empty" % cfgdir in r.err, r.err
    assert not os.path.exists(c3.datadir)

    # the original cluster's files are untouched, and it still runs on them
    assert _snapshot(etc) == before
    assert pg.scalar("SHOW config_file") == os.path.join(etc, "postgresql.conf")


def test_external_hba_file_with_config_in_the_data_directory(pg, pg_factory):
    """postgresql.conf in the data directory names a pg_hba.conf elsewhere,
    while the data directory keeps initdb's own: the restored cluster gets
    the external one (beside, under pgvault_conf/) and its postgresql.conf
    names the restored copy, not the original."""
    import shutil
    from physical_helpers import chown_for_server
    repo = make_repo(pg)
    archive_to(pg, repo)
    pg.stop()
    hba_dir = os.path.join(pg.basedir, "hba")
    os.makedirs(hba_dir)
    hba = os.path.join(hba_dir, "pg_hba.conf")
    shutil.copy(os.path.join(pg.datadir, "pg_hba.conf"), hba)
    with open(hba, "a") as f:
        f.write("# the external one\n")
    chown_for_server(pg, hba_dir)
    with open(os.path.join(pg.datadir, "postgresql.conf"), "a") as f:
        f.write("hba_file = '%s'\n" % hba)
    pg.start()
    assert pg.scalar("SHOW hba_file") == hba
    before = _snapshot(hba_dir)
    r = ok(pg, "backup", "--physical", "--repo", repo, "--source", SOURCE,
           "--pgdata", pg.datadir, *conn(pg), "--json")
    doc = json.loads(r.out)
    assert doc["external_config_files"] == 1, doc
    want = dump_all(pg)

    c = restore_to(pg_factory, repo, doc["id"], "--target-immediate",
                   "--target-action", "promote", "--archive-mode", "off")
    restored = os.path.join(c.datadir, "pgvault_conf", "pg_hba.conf")
    assert _read(restored) == _read(hba)
    conf = _read(os.path.join(c.datadir, "postgresql.conf"))
    assert "\n#hba_file = '%s'\n" % hba in conf, conf
    assert "\nhba_file = '%s'\t" % restored in conf, conf
    c.start()
    _wait_promoted(c)
    assert c.scalar("SHOW hba_file") == restored
    assert dump_all(c) == want
    c.stop()
    assert _snapshot(hba_dir) == before
    # --no-external-config leaves them out
    r = ok(pg, "backup", "--physical", "--repo", repo, "--source", SOURCE,
           "--pgdata", pg.datadir, *conn(pg), "--json", "--no-external-config")
    doc2 = json.loads(r.out)
    assert doc2["external_config_files"] == 0, doc2
    md = json.loads(ok(pg, "show", doc2["id"], "--repo", repo, "--json").out)["metadata"]
    assert "external_config" not in md, md
