"""backends.py: run an end-to-end suite against posix, S3 and Azure
repositories with one fixture, instead of copies of its tests.

Backends (names as they appear in test ids):
  posix   a directory under the test's own temporary directory
  s3      OpenStack Swift's s3api (emulators.Swift): it checks SigV4 and
          multipart rules, unlike s3rver; skipped with the reason where Swift
          is not installed
  azure   azurite's blob service (emulators.Azurite): checks Shared Key

How a test module opts in:
  pytestmark = [pytest.mark.backends, pytest.mark.usefixtures("repo_backend")]
      every test of the module that uses repo_backend runs once per backend;
  @pytest.mark.backends on single tests, usefixtures (or a repo_backend
      argument) on the module: the marked tests run on every backend, the
      others on posix only (keeps the suite's time in check);
  @pytest.mark.backends("posix", "s3"): a subset.
conftest.py's pytest_generate_tests calls parametrize() below; the
parameter is module-scoped, so module fixtures (a cluster with a backup) are
built once per backend.  PGVAULT_TEST_BACKENDS=posix,azure limits every run
to those backends (a quick local run).

repo_backend (module scope) is a Backend:
  .name                 "posix", "s3" or "azure"
  .url(directory, name) a fresh, uninitialised repository location: a path
                        under directory for posix, a new prefix in the
                        bucket or container otherwise
  .env                  the cloud CLIs' variables that point pgvault at the
                        store (credentials, endpoint, CA file).  While the
                        fixture is active they are also in os.environ, so
                        every pgvault the tests run (run_pgvault,
                        physical_helpers.pv) and every PostgreSQL server
                        started or restarted meanwhile (archive_command,
                        restore_command) sees them, as in a deployment that
                        sets them in the service's environment.
  .config_lines()       the same as [repo:NAME] configuration lines
  .keys(url, prefix)    {key: size} of the objects under prefix
  .read(url, key) / .write(url, key, data) / .delete(url, key)
                        object access for tests that inspect or damage a
                        repository whatever it is stored on
make_repo(cluster, name="repo", *init_args): physical_helpers.make_repo on
the active backend (physical and PITR tests import it from here).
"""

import itertools
import os

import pytest

import emulators
from emulators import StorageTool

ALL = ("posix", "s3", "azure")

_counter = itertools.count()
_active = []          # the Backend whose environment is in os.environ
_in_use = [False]     # does the running test use repo_backend?


def selected(names):
    """names, limited by PGVAULT_TEST_BACKENDS when it is set."""
    only = os.environ.get("PGVAULT_TEST_BACKENDS")
    if not only:
        return list(names)
    keep = {n.strip() for n in only.split(",") if n.strip()}
    unknown = keep - set(ALL)
    if unknown:
        raise pytest.UsageError("PGVAULT_TEST_BACKENDS names unknown backends %s (known: %s)" %
                                (", ".join(sorted(unknown)), ", ".join(ALL)))
    return [n for n in names if n in keep]


def parametrize(metafunc):
    """pytest_generate_tests for tests using repo_backend (see above)."""
    if "repo_backend" not in metafunc.fixturenames:
        return
    mark = metafunc.definition.get_closest_marker("backends")
    names = ("posix",) if mark is None else (mark.args or ALL)
    for n in names:
        if n not in ALL:
            raise pytest.UsageError("@pytest.mark.backends(%r): unknown backend (known: %s)" %
                                    (n, ", ".join(ALL)))
    chosen = selected(names)
    if not chosen:        # filtered out entirely: still one (skipped) item
        metafunc.parametrize("repo_backend", [pytest.param(
            names[0], marks=pytest.mark.skip(reason="PGVAULT_TEST_BACKENDS excludes %s" %
                                             ", ".join(names)))], indirect=True, scope="module")
        return
    metafunc.parametrize("repo_backend", chosen, indirect=True, scope="module")


class Backend:
    name = "posix"
    env = {}
    opts = {}

    def url(self, directory, name="repo"):
        return os.path.join(str(directory), name)

    def config_lines(self):
        return []

    def tool(self, url):
        return StorageTool(url, self.opts, self.env)

    def keys(self, url, prefix=""):
        return self.tool(url).listing(prefix)

    def read(self, url, key):
        return self.tool(url).get(key)

    def write(self, url, key, data):
        r = self.tool(url).put(key, data)
        assert r.returncode == 0, r.stderr.decode(errors="replace")

    def delete(self, url, key):
        r = self.tool(url).run("delete", key)
        assert r.returncode == 0, r.stderr.decode(errors="replace")


class S3Backend(Backend):
    name = "s3"
    bucket = "pgvault"

    def __init__(self, srv):
        self.srv = srv
        self.opts = dict(srv.opts)
        self.env = dict(srv.env, AWS_ENDPOINT_URL=srv.endpoint,
                        AWS_CA_BUNDLE=srv.tls.cert, AWS_REGION="us-east-1")
        # the bucket, once (Swift starts empty)
        r = StorageTool("s3://%s/x" % self.bucket, self.opts, srv.env).run("create")
        assert r.returncode == 0, r.stderr.decode(errors="replace")

    def url(self, directory, name="repo"):
        return "s3://%s/e2e-%d-%d/%s" % (self.bucket, os.getpid(), next(_counter), name)

    def config_lines(self):
        return ["s3-endpoint = %s" % self.srv.endpoint, "s3-ca-file = %s" % self.srv.tls.cert,
                "s3-region = us-east-1", "s3-if-none-match = off",
                "s3-key = %s" % self.env["AWS_ACCESS_KEY_ID"],
                "s3-key-secret = %s" % self.env["AWS_SECRET_ACCESS_KEY"]]


class AzureBackend(Backend):
    name = "azure"
    container = "pgvault"

    def __init__(self, srv):
        self.srv = srv
        self.opts = dict(srv.opts)
        self.env = dict(srv.env, AZURE_STORAGE_CONNECTION_STRING=(
            "AccountName=%s;AccountKey=%s;BlobEndpoint=%s" % (
                srv.env["AZURE_STORAGE_ACCOUNT"], srv.env["AZURE_STORAGE_KEY"], srv.endpoint)),
            SSL_CERT_FILE=srv.tls.cert)
        r = StorageTool("azure://%s/x" % self.container, self.opts, srv.env).run("create")
        assert r.returncode == 0, r.stderr.decode(errors="replace")

    def url(self, directory, name="repo"):
        return "azure://%s/e2e-%d-%d/%s" % (self.container, os.getpid(), next(_counter), name)

    def config_lines(self):
        return ["azure-endpoint = %s" % self.srv.endpoint, "azure-ca-file = %s" % self.srv.tls.cert,
                "azure-account = %s" % self.env["AZURE_STORAGE_ACCOUNT"],
                "azure-key = %s" % self.env["AZURE_STORAGE_KEY"]]


def open_backend(name):
    if name == "posix":
        return Backend()
    if name == "s3":
        return S3Backend(emulators.server(emulators.Swift))
    if name == "azure":
        return AzureBackend(emulators.server(emulators.Azurite))
    raise ValueError("unknown backend %r" % name)


@pytest.fixture(scope="module")
def repo_backend(request):
    name = getattr(request, "param", "posix")
    be = open_backend(name)
    mp = pytest.MonkeyPatch()
    # only this backend's variables: none of the other clouds' leak in
    for k in list(os.environ):
        if k.startswith(("AWS_", "AZURE_")):
            mp.delenv(k)
    for k, v in be.env.items():
        mp.setenv(k, v)
    _active.append(be)
    try:
        yield be
    finally:
        _active.remove(be)
        mp.undo()


def runtest_setup(item):
    """conftest.py's pytest_runtest_setup: a module's backend outlives its
    tests (module scope), so only tests that use repo_backend get it."""
    _in_use[0] = "repo_backend" in getattr(item, "fixturenames", ())


def active():
    """The Backend of the running test: posix unless it uses repo_backend."""
    return _active[-1] if _active and _in_use[0] else Backend()


def make_repo(cluster, name="repo", *init_args):
    """physical_helpers.make_repo on the active backend: a new repository
    that the cluster's server user can use."""
    import physical_helpers
    be = active()
    if be.name == "posix":
        return physical_helpers.make_repo(cluster, name, *init_args)
    url = be.url(cluster.basedir, name)
    physical_helpers.ok(cluster, "init", "--repo", url, *init_args)
    return url
