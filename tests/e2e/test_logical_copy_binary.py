"""test_logical_copy_binary.py: a logical restore loads rows as COPY binary
(src/pg/logical/copybin.c converts the backup's COPY text) wherever every
column's type allows, as text otherwise, and as text again when a row
cannot be converted: in every case the restored rows equal the source's.

Spec under test:
  pgvault restore ID --target-db NAME [--text-copy] [--data-only] [--no-analyze] --json
      -> "binary_parts": data items loaded as COPY binary; every table
         analyzed unless --no-analyze
"""

import re

import pytest

from pgvault_cli import conn_args, run_pgvault, run_pgvault_json, tools_env
from test_logical import schema_dump

# One column of every kind copybin converts, through a domain and an enum
# too, with the values at the edges of each type's text form.
SCHEMA = r"""
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy', 'with space', 'ünï');
CREATE DOMAIN posint AS integer CHECK (VALUE > 0);
CREATE TABLE kinds (
    id integer PRIMARY KEY, b boolean, i2 smallint, i4 integer, i8 bigint, o oid,
    f4 real, f8 double precision, n numeric, n2 numeric(12,2),
    d date, ts timestamp, tstz timestamptz, t text, vc varchar(20), c char(5),
    nm name, j json, jb jsonb, by bytea, u uuid, m mood, p posint);
INSERT INTO kinds VALUES
 (1, true, -32768, -2147483648, -9223372036854775808, 0, '-Infinity', '-Infinity', 'NaN', -0.5,
  '-infinity', '-infinity', '-infinity', '', '', '', '', '{}', '{}', '', '00000000-0000-0000-0000-000000000000',
  'sad', 1),
 (2, false, 32767, 2147483647, 9223372036854775807, 4294967295, 'Infinity', 'Infinity', 'Infinity', 9999999999.99,
  'infinity', 'infinity', 'infinity', E'tab\there\nnewline\\back\rcr\x01ctl', 'ünïcödé €', 'ab',
  'a name', '{"a": [1, 2.5e10, "x\ty"]}', '{"k": "v\n\"q\"", "n": null, "z": 1.000}', '\x00ff0a09', 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11',
  'with space', 2147483647),
 (3, NULL, NULL, NULL, NULL, NULL, 'NaN', 'NaN', '-Infinity', 0,
  '0001-01-01 BC', '4713-11-24 00:00:00 BC', '0044-03-15 12:00:00+00 BC', NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (4, true, 0, 0, 0, 1, 0, -0, 0.000, 0.00,
  '2000-01-01', '2000-01-01 00:00:00', '1999-12-31 23:59:59.999999+00', '\N', 'x', 'abcde',
  '', '[]', '[]', '\x5c4e', 'ffffffff-ffff-ffff-ffff-ffffffffffff', 'ünï', 5),
 (5, false, 1, 1, 1, 2, 1.17549435e-38, 4.9e-324, 123456789012345678901234567890.123456789, 0.01,
  '294276-12-31', '294276-12-31 23:59:59.999999', '1970-01-01 00:00:00.000001+00', repeat('long ', 2000), 'y', 'z',
  'n', '"s"', '"s"', decode(repeat('00010203fffefd', 500), 'hex'), gen_random_uuid(), 'ok', 7),
 (6, true, -1, -1, -1, 3, 3.4028235e38, 1.7976931348623157e308, 0.000000000000000000001, -10000,
  '1999-12-31', '1900-02-28 13:14:15.5', '2024-02-29 23:00:00+00', 'plain', 'z', 'q',
  'n', '1', '1', '\x', gen_random_uuid(), 'happy', 9);
INSERT INTO kinds
SELECT 100 + g, g % 2 = 0, (g % 30000)::smallint, g * 7919, g::bigint * 1000003, g,
       g / 7.0, g / 3.0, (g * 1.0001)::numeric, (g % 10000) / 100.0,
       date '2000-01-01' + g, timestamp '1990-06-15 10:30:00' + g * interval '1 hour 1.25 second',
       timestamptz '2020-01-01 00:00:00+00' + g * interval '37 minutes 0.001 second',
       'row ' || g, 'v' || g, 'c' || (g % 100), 'n' || g,
       json_build_object('g', g), jsonb_build_object('g', g, 's', 'x' || g),
       decode(md5(g::text), 'hex'), md5(g::text)::uuid,
       (ARRAY['sad', 'ok', 'happy']::mood[])[1 + g % 3], 1 + g
FROM generate_series(1, 3000) g;
-- a foreign key between two tables big enough to get their indexes early:
-- made as soon as both are loaded, not in the last post-data step
CREATE TABLE refs (id integer PRIMARY KEY, kind_id integer NOT NULL REFERENCES kinds (id), pad text);
INSERT INTO refs SELECT id, id, repeat('p', 300) FROM kinds;
-- a type copybin leaves alone: this table loads as text
CREATE TABLE others (id integer PRIMARY KEY, iv interval, arr integer[], pt point);
INSERT INTO others SELECT g, g * interval '1 minute', ARRAY[g, g + 1], point(g, -g)
FROM generate_series(1, 500) g;
"""


def pv(c, repo, *args, json_out=True):
    base = list(args) + ["--repo", repo]
    if json_out:
        return run_pgvault_json(*base, env=tools_env(c))
    return run_pgvault(*base, env=tools_env(c))


def rows(c, db, table):
    """The rows as COPY text lines, in key order, with the backup's settings."""
    with c.connect(db) as conn:
        conn.execute("SET timezone = 'UTC'; SET extra_float_digits = 3; SET datestyle = 'ISO'")
        with conn.cursor().copy("COPY (SELECT * FROM %s ORDER BY id) TO STDOUT" % table) as cp:
            return b"".join(bytes(b) for b in cp)


@pytest.fixture(scope="module")
def env(pg_module, pgvault_bin, tmp_path_factory):
    c = pg_module
    c.execute("CREATE DATABASE kinds")
    c.execute(SCHEMA, db="kinds")
    repo = str(tmp_path_factory.mktemp("copybin") / "repo")
    rc, out, err = run_pgvault("init", "--repo", repo)
    assert rc == 0, err
    rc, doc, err = pv(c, repo, "backup", "--logical", *conn_args(c, "kinds"), "-j", "2")
    assert rc == 0, err
    return {"c": c, "repo": repo, "id": doc["id"]}


def test_binary_restore_equals_source(env):
    c, repo = env["c"], env["repo"]
    rc, res, err = pv(c, repo, "restore", env["id"], "--target-db", "kinds_bin", "--log-level", "detail",
                      *conn_args(c, "postgres"))
    assert rc == 0, err
    # kinds and refs load as binary, others (interval, array, point) as text
    assert res["parts"] == 3 and res["binary_parts"] == 2, res
    assert "1 foreign keys are made as soon as both their tables are done" in err, err
    assert re.search(r'"public"\."refs": its foreign key to "public"\."kinds" in [0-9.]+ s', err), err
    assert c.psql("SELECT conname, convalidated FROM pg_constraint WHERE contype = 'f'", db="kinds_bin") == \
        [("refs_kind_id_fkey", True)]
    assert schema_dump(c, "kinds_bin") == schema_dump(c, "kinds")
    assert re.search(r'"public"\."kinds": 3006 rows loaded in [0-9.]+ s \(COPY binary\)', err), err
    assert re.search(r'"public"\."others": 500 rows loaded in [0-9.]+ s\n', err), err
    for t in ("kinds", "others", "refs"):
        assert rows(c, "kinds_bin", t) == rows(c, "kinds", t), t
        # analyzed (each table by a task of its own once its rows and indexes are in)
        assert c.scalar("SELECT count(*) FROM pg_stats WHERE schemaname = 'public' AND tablename = %s",
                        db="kinds_bin", params=(t,)) > 0, t


def test_text_copy_option_loads_text_with_the_same_rows(env):
    c, repo = env["c"], env["repo"]
    rc, res, err = pv(c, repo, "restore", env["id"], "--target-db", "kinds_text", "--text-copy", "--no-analyze",
                      *conn_args(c, "postgres"))
    assert rc == 0, err
    assert res["parts"] == 3 and res["binary_parts"] == 0, res
    for t in ("kinds", "others", "refs"):
        assert rows(c, "kinds_text", t) == rows(c, "kinds", t), t
    assert c.scalar("SELECT count(*) FROM pg_stats WHERE schemaname = 'public'", db="kinds_text") == 0


def test_row_that_does_not_convert_loads_the_table_as_text(env):
    """--data-only into a table whose column became an integer: ' 42' is an
    integer to the server's text input but not to copybin, so the binary
    COPY is cancelled (none of its rows stay) and the table loads as text."""
    c, repo = env["c"], env["repo"]
    c.execute("CREATE DATABASE loose")
    c.execute("CREATE TABLE t (id integer PRIMARY KEY, v text)", db="loose")
    c.execute("INSERT INTO t SELECT g, g::text FROM generate_series(1, 100000) g; "
              "UPDATE t SET v = ' ' || v || ' ' WHERE id = 4000", db="loose")
    rc, doc, err = pv(c, repo, "backup", "--logical", *conn_args(c, "loose"))
    assert rc == 0, err
    c.execute("CREATE DATABASE loose_copy")
    c.execute("CREATE TABLE t (id integer PRIMARY KEY, v integer)", db="loose_copy")
    rc, res, err = pv(c, repo, "restore", doc["id"], "--target-db", "loose_copy", "--data-only",
                      "--log-level", "detail", *conn_args(c, "postgres"))
    assert rc == 0, err
    assert res["binary_parts"] == 0 and res["rows"] == 100000, res
    # the updated row is stored last: the binary COPY has sent megabytes of
    # rows when the conversion stops; none of them may stay
    assert re.search(r'"public"\."t": loading as COPY text: row 100000 column 2: ', err), err
    assert re.search(r'"public"\."t": 100000 rows loaded in [0-9.]+ s\n', err), err
    assert c.psql("SELECT count(*), count(DISTINCT id), sum(v) FROM t", db="loose_copy") == \
        [(100000, 100000, 100000 * 100001 // 2)]


def test_row_longer_than_16_mib_loads_as_text(env):
    """Binary would hold the row whole in memory; text streams it."""
    c, repo = env["c"], env["repo"]
    c.execute("CREATE DATABASE longrow")
    c.execute("CREATE TABLE t (id integer PRIMARY KEY, v text); "
              "INSERT INTO t VALUES (1, 'short'), (2, repeat('ab\tc', 5 * 1024 * 1024)), (3, 'after')",
              db="longrow")
    rc, doc, err = pv(c, repo, "backup", "--logical", *conn_args(c, "longrow"))
    assert rc == 0, err
    rc, res, err = pv(c, repo, "restore", doc["id"], "--target-db", "longrow_copy", "--log-level", "detail",
                      *conn_args(c, "postgres"))
    assert rc == 0, err
    assert res["binary_parts"] == 0 and res["rows"] == 3, res
    assert re.search(r'"public"\."t": loading as COPY text: row 2 is longer than 16 MiB', err), err
    q = "SELECT id, length(v), md5(v) FROM t ORDER BY id"
    assert c.psql(q, db="longrow_copy") == c.psql(q, db="longrow")
