"""physical_helpers.py: what the physical backup, PITR and WAL tests share.

The server runs archive_command and restore_command as its own user
(pgcluster's server user when the tests run as root), so every pgvault
command of these tests runs as that user too: the repository, its config and
keys are then readable and writable by whoever needs them, as in a real
deployment where pgvault runs as postgres.  Repositories live in the
cluster's own temporary directory, which that user owns.

Helpers:
  pv(cluster, *args)        run pgvault as the server user -> Result(rc, out, err)
  ok(cluster, *args)        the same, asserting exit status 0
  make_repo(cluster)        a new repository owned by the server user
  archive_to(cluster, repo) point archive_command at pgvault archive-push
  switch_wal(cluster)       finish the current segment; returns its name
  wait_archived(cluster, seg)  until pg_stat_archiver reports seg archived
  restore_to(factory, repo, *args)  restore into a fresh cluster directory,
                            fix its port and socket, return it (not started)
  dump_all(cluster)         pg_dump of every database, for comparisons
"""

import os
import shutil
import subprocess
import time

from pgcluster import _as_user, _chown_tree, clean_env
from pgvault_cli import Result, pgvault_bin, slowdown

SOURCE = "main"


def pv(cluster, *args, env=None, timeout=180, input=None, cwd=None):
    argv = _as_user(cluster.user, [pgvault_bin()] + [str(a) for a in args])
    r = subprocess.run(argv, env=clean_env(env), input=input or "",
                       capture_output=True, text=True, errors="replace",
                       timeout=timeout * slowdown(), cwd=cwd or cluster.basedir)
    return Result(r.returncode, r.stdout, r.stderr)


def ok(cluster, *args, **kw):
    r = pv(cluster, *args, **kw)
    assert r.rc == 0, "pgvault %s: rc=%d\nstdout:\n%s\nstderr:\n%s" % (
        " ".join(map(str, args)), r.rc, r.out, r.err)
    return r


def conn(cluster):
    return ["-h", "127.0.0.1", "-p", str(cluster.port), "-U", "postgres",
            "-d", "postgres"]


def make_repo(cluster, name="repo", *init_args):
    path = os.path.join(cluster.basedir, name)
    ok(cluster, "init", "--repo", path, *init_args)
    return path


def archive_command(repo, source=SOURCE):
    return "%s archive-push --repo %s --source %s %%p" % (pgvault_bin(), repo,
                                                         source)


def archive_to(cluster, repo, source=SOURCE, restart=True):
    settings = dict(archive_mode="on",
                    archive_command=archive_command(repo, source))
    if restart:
        cluster.restart(**settings)
    else:
        cluster.reload(**settings)


def switch_wal(cluster):
    """Write something, switch to a new segment; return the finished one."""
    seg = cluster.scalar("SELECT pg_walfile_name(pg_current_wal_lsn())")
    cluster.execute("CREATE TEMP TABLE IF NOT EXISTS _switch(x int); "
                    "SELECT pg_switch_wal()")
    return seg


def wait_archived(cluster, seg, timeout=30):
    timeout *= slowdown()  # each segment runs pgvault archive-push
    deadline = time.time() + timeout
    while time.time() < deadline:
        row = cluster.psql("SELECT last_archived_wal, last_failed_wal, "
                           "failed_count FROM pg_stat_archiver")[0]
        if row[0] is not None and row[0] >= seg:
            return
        time.sleep(0.1)
    raise AssertionError("segment %s not archived within %ds: %r\n%s" %
                         (seg, timeout, row, cluster.log_tail()))


def backup(cluster, repo, *args, source=SOURCE):
    """A physical backup; returns (id, stdout, stderr)."""
    r = ok(cluster, "backup", "--physical", "--repo", repo, "--source",
           source, "--pgdata", cluster.datadir, *conn(cluster), *args)
    return r.out.splitlines()[0].strip(), r.out, r.err


def restore_to(factory, repo, backup_id, *args, name="restored",
               source=SOURCE):
    """Restore into a new cluster's directory (as the server user); the
    cluster's own port and socket settings replace the source's."""
    c = factory(name, start=False)
    shutil.rmtree(c.datadir)
    ok(c, "restore", backup_id, "--repo", repo, "--source", source,
       "--pgdata", c.datadir, *args)
    c._write_base_conf()
    return c


def dump_all(cluster, *args):
    """{dbname: pg_dump text} of every connectable database but template0
    (extra pg_dump args apply to each), without pg_dump's random
    \\restrict keys."""
    out = {}
    for (db,) in cluster.psql("SELECT datname FROM pg_database WHERE "
                              "datallowconn AND datname <> 'template0' "
                              "ORDER BY 1"):
        r = cluster.run_tool("pg_dump", "--no-sync", "-d", db, *args, dbname=db)
        out[db] = "\n".join(ln for ln in r.stdout.splitlines()
                            if not ln.startswith(("\\restrict", "\\unrestrict")))
    return out


def chown_for_server(cluster, path):
    _chown_tree(path, cluster.user)
