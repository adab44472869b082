"""test_harness.py: the cluster fixtures do what the other tests rely on."""

import os
import signal
import subprocess
import sys
import time

import pytest

import pgcluster
from pgvault_cli import run_pgvault, pgvault_bin

_seen = {}  # pids recorded by one test, checked by the next


def _wait_gone(pid, seconds=10):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and pgcluster._pid_alive(pid):
        time.sleep(0.05)
    return not pgcluster._pid_alive(pid)


def test_cluster_starts_on_its_port_with_checksums(pg):
    assert pg.is_running()
    assert pg.scalar("SHOW port") == str(pg.port)
    assert pg.scalar("SHOW data_checksums") == "on"
    assert pg.scalar("SHOW server_version_num").startswith("15")
    assert pg.scalar("SELECT inet_server_addr()::text") == "127.0.0.1/32"
    assert pg.scalar("SELECT current_user") == "postgres"
    assert pg.scalar("SELECT rolsuper FROM pg_roles WHERE rolname = "
                     "current_user") is True
    assert pg.scalar("SHOW wal_level") == "replica"
    assert pg.scalar("SHOW archive_mode") == "on"
    assert pg.scalar("SHOW archive_command") == "/bin/true"
    assert pg.scalar("SHOW unix_socket_directories") == pg.host
    assert os.path.exists(os.path.join(pg.host, ".s.PGSQL.%d" % pg.port))
    assert pg.controldata()["Data page checksum version"] == "1"
    # the server runs unprivileged when we are root
    pid = pg.pid
    assert pid and pgcluster._pid_alive(pid)
    uid = os.stat("/proc/%d" % pid).st_uid
    if os.geteuid() == 0:
        assert uid != 0
    _seen["pid"] = pid
    _seen["datadir"] = pg.datadir


def test_previous_cluster_was_stopped():
    pid = _seen.get("pid")
    if pid is None:
        pytest.skip("previous test did not run")
    assert _wait_gone(pid), "postmaster %d still alive after teardown" % pid
    assert not os.path.exists(_seen["datadir"])


def test_destroy_stops_postmaster_and_backends(pg_factory):
    c = pg_factory("destroyme")
    conn = c.connect()
    backend = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    pid = c.pid
    c.destroy()
    assert _wait_gone(pid)
    assert _wait_gone(backend)
    assert not c.is_running()
    conn.close()
    c.destroy()  # idempotent


def test_two_clusters_are_independent(pg_factory):
    a = pg_factory("a")
    b = pg_factory("b", fresh_initdb=True)
    assert a.port != b.port
    a.execute("CREATE TABLE only_in_a (x int)")
    assert b.scalar("SELECT count(*) FROM pg_class WHERE relname = "
                    "'only_in_a'") == 0
    assert a.controldata()["Database system identifier"] != \
        b.controldata()["Database system identifier"]


def test_restart_applies_settings_via_auto_conf(pg):
    old_pid = pg.pid
    pg.restart(archive_mode="off", work_mem="7MB")
    assert pg.pid != old_pid and not pgcluster._pid_alive(old_pid)
    assert pg.scalar("SHOW archive_mode") == "off"
    assert pg.scalar("SHOW work_mem") == "7MB"
    assert pg.auto_conf()["archive_mode"] == "off"
    pg.set_auto_conf(work_mem=None)
    pg.reload()
    assert pg.scalar("SHOW work_mem") == "4MB"
    assert pg.scalar("SHOW archive_mode") == "off"  # needs a restart


def test_stop_and_start(pg):
    pid = pg.pid
    pg.stop()
    assert not pg.is_running() and _wait_gone(pid)
    pg.start()
    assert pg.scalar("SELECT 1") == 1


def test_module_cluster_is_shared(pg_module):
    pg_module.execute("CREATE TABLE IF NOT EXISTS shared_marker (x int)")
    _seen["module_port"] = pg_module.port


def test_module_cluster_is_shared_2(pg_module):
    assert pg_module.port == _seen.get("module_port")
    assert pg_module.scalar("SELECT to_regclass('shared_marker') "
                            "IS NOT NULL") is True


def test_killed_test_process_leaves_no_server(pg_bindir, tmp_path):
    """The watchdog stops the servers of a test process killed with -9."""
    here = os.path.dirname(os.path.abspath(__file__))
    script = (
        "import sys, time; sys.path.insert(0, %r)\n"
        "import pgcluster\n"
        "c = pgcluster.new_cluster('orphan')\n"
        "print(c.pid, c.basedir, flush=True)\n"
        "time.sleep(600)\n" % here)
    p = subprocess.Popen([sys.executable, "-c", script],
                         stdout=subprocess.PIPE, text=True,
                         env=pgcluster.clean_env())
    try:
        line = p.stdout.readline().split()
        assert line, "child did not start a cluster"
        pid, basedir = int(line[0]), line[1]
        assert pgcluster._pid_alive(pid)
    finally:
        p.kill()
        p.wait()
    # generous: the watchdog polls each second, and a loaded CI machine is slow
    assert _wait_gone(pid, 30), "watchdog did not stop postmaster %d" % pid
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and os.path.exists(basedir):
        time.sleep(0.1)
    assert not os.path.exists(basedir)


def test_run_pgvault_cleans_environment(monkeypatch):
    try:
        pgvault_bin()
    except FileNotFoundError as e:
        pytest.skip(str(e))
    monkeypatch.setenv("PGPORT", "1")
    with pytest.raises(ValueError):
        run_pgvault("check", "-d", "host=x password=secret")
    assert "PGPORT" not in pgcluster.clean_env()
    assert pgcluster.clean_env({"PGPORT": "5"})["PGPORT"] == "5"


_INNER_CONFTEST = """
import importlib.util, sys
sys.path.insert(0, %(e2e)r)
spec = importlib.util.spec_from_file_location("pgvault_e2e_conftest",
                                              %(e2e)r + "/conftest.py")
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
globals().update({k: getattr(mod, k) for k in dir(mod) if not k.startswith("_")})
"""

_INNER_TEST = """
import time
def test_hang(pg):
    with open(%(pidfile)r, "w") as f:
        f.write("%%d %%s" %% (pg.pid, pg.basedir))
    time.sleep(120)
"""


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_interrupted_pytest_leaves_no_server(pg_bindir, tmp_path, sig):
    here = os.path.dirname(os.path.abspath(__file__))
    pidfile = str(tmp_path / "pid")
    (tmp_path / "conftest.py").write_text(_INNER_CONFTEST % {"e2e": here})
    (tmp_path / "test_inner.py").write_text(_INNER_TEST % {"pidfile": pidfile})
    p = subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-s",
                          "-p", "no:cacheprovider", str(tmp_path)],
                         cwd=tmp_path, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True,
                         env=pgcluster.clean_env(),
                         # a non-interactive parent may ignore SIGINT
                         preexec_fn=lambda: signal.signal(signal.SIGINT,
                                                          signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 60
        while not os.path.exists(pidfile) or not open(pidfile).read():
            assert p.poll() is None, p.communicate()[0]
            assert time.monotonic() < deadline, "inner test did not start"
            time.sleep(0.1)
        pid, basedir = open(pidfile).read().split()
        pid = int(pid)
        assert pgcluster._pid_alive(pid)
        p.send_signal(getattr(signal, sig))
        out = p.communicate(timeout=60)[0]
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert _wait_gone(pid, 5), "postmaster %d survived %s:\n%s" % (pid, sig, out)
    assert not os.path.exists(basedir), out
