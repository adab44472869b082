"""conftest.py: fixtures for pgvault's end-to-end tests.

Fixtures:
  pg          a fresh, running PostgreSQL 15 cluster for one test
  pg_module   one cluster shared by the tests of a module (tests must not
              leave it in a state that changes what the next test means)
  pg_factory  make(name="pg", start=True, settings=None, fresh_initdb=False)
              for tests that need more clusters (restore targets, ...)
  pg_bindir   the PostgreSQL binaries directory
  pgvault_bin the binary under test (fails clearly if it was not built)

Tests that use a cluster are skipped with the reason when PostgreSQL is not
installed (never in CI, where it is).  Every cluster is destroyed in the
fixture's teardown; pgcluster.destroy_all() runs again at session end, from
atexit and on SIGTERM, and pgcluster's watchdog catches a killed pytest.
On failure, the server log's tail is printed in the teardown section.
Set PGVAULT_TEST_KEEP=1 to keep the cluster directories for a post-mortem.

repo_backend (backends.py) runs a test over posix, S3 and Azure
repositories: tests marked @pytest.mark.backends get one item per backend
(pytest_generate_tests below), other users of the fixture run on posix.
"""

import pytest

import backends
import pgcluster
from backends import repo_backend  # noqa: F401  (the fixture, for every module)
from pgvault_cli import pgvault_bin as _pgvault_bin


def pytest_configure(config):
    pgcluster.install_sigterm_handler()
    config.addinivalue_line(
        "markers", "backends(*names): run the test over every repository backend "
        "(posix, s3, azure) or the named ones; see tests/e2e/backends.py")


def pytest_generate_tests(metafunc):
    backends.parametrize(metafunc)


def pytest_runtest_setup(item):
    backends.runtest_setup(item)


def pytest_sessionfinish(session, exitstatus):
    pgcluster.destroy_all()


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


def _failed(request):
    for when in ("setup", "call"):
        rep = getattr(request.node, "rep_" + when, None)
        if rep is not None and rep.failed:
            return True
    return False


@pytest.fixture(scope="session")
def pg_bindir():
    bindir, reason = pgcluster.find_bindir()
    if bindir is None:
        pytest.skip(reason)
    return bindir


@pytest.fixture(scope="session")
def pgvault_bin():
    try:
        return _pgvault_bin()
    except FileNotFoundError as e:
        pytest.fail(str(e), pytrace=False)


class _Factory:
    def __init__(self, bindir, prefix):
        self.bindir = bindir
        self.prefix = prefix
        self.clusters = []

    def __call__(self, name=None, start=True, **kw):
        c = pgcluster.new_cluster(name or self.prefix, start=start,
                                  bindir=self.bindir, **kw)
        self.clusters.append(c)
        return c

    def teardown(self, show_logs):
        for c in self.clusters:
            if show_logs:
                print("--- server log of %s (%s) ---\n%s" %
                      (c.name, c.logfile, c.log_tail()))
            c.destroy()
        self.clusters = []


def _test_name(request):
    return request.node.name.replace("test_", "", 1)[:30]


@pytest.fixture
def pg_factory(request, pg_bindir):
    f = _Factory(pg_bindir, _test_name(request))
    yield f
    f.teardown(_failed(request))


@pytest.fixture
def pg(request, pg_bindir):
    f = _Factory(pg_bindir, _test_name(request))
    try:
        yield f()
    finally:
        f.teardown(_failed(request))


@pytest.fixture(scope="module")
def pg_module(request, pg_bindir):
    f = _Factory(pg_bindir, request.module.__name__.replace("test_", ""))
    try:
        yield f()
    finally:
        f.teardown(False)
