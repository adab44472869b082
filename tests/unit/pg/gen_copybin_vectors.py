#!/usr/bin/python3
"""gen_copybin_vectors.py: golden vectors for pg/logical/copybin.c, from a real server.

Starts a scratch PostgreSQL 15 (tests/e2e/pgcluster.py), fills a table with
one column per copybin kind (edge cases first, then seeded random rows),
and writes tests/unit/pg/copybin_vectors.inc: for every (column, row) the
field as `COPY ... TO STDOUT` writes it and as `COPY ... (FORMAT binary)`
writes it (int32 length + bytes, or -1), plus the whole table in both
formats (the multi-column stream test).  The text comes from a session
with the settings of pglogical_session_setup; timestamptz is also written
under other time zones (offsets with minutes and seconds, from local mean
time), since its binary form does not depend on the zone.

Values go in as literals through each type's input function, exactly as a
COPY text load would store them.  Run as root or as a user that can run
initdb:  /usr/bin/python3 tests/unit/pg/gen_copybin_vectors.py
"""

import json
import os
import random
import struct
import sys
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "e2e"))
import pgcluster  # noqa: E402

SESSION = ("SET DateStyle = ISO; SET IntervalStyle = postgres; SET TimeZone = 'UTC';"
           " SET extra_float_digits = 3; SET bytea_output = hex;"
           " SET standard_conforming_strings = on")

# (column, SQL type, copybin kind)
COLUMNS = [
    ("c_text", "text", "TEXT"),
    ("c_varchar", "varchar(20)", "TEXT"),
    ("c_bpchar", "char(10)", "TEXT"),
    ("c_name", "name", "TEXT"),
    ("c_json", "json", "TEXT"),
    ("c_enum", "mood", "TEXT"),
    ("c_jsonb", "jsonb", "JSONB"),
    ("c_bytea", "bytea", "BYTEA"),
    ("c_bool", "bool", "BOOL"),
    ("c_int2", "int2", "INT2"),
    ("c_int4", "int4", "INT4"),
    ("c_int8", "int8", "INT8"),
    ("c_oid", "oid", "OID"),
    ("c_float4", "float4", "FLOAT4"),
    ("c_float8", "float8", "FLOAT8"),
    ("c_numeric", "numeric", "NUMERIC"),
    ("c_num122", "numeric(12,2)", "NUMERIC"),
    ("c_date", "date", "DATE"),
    ("c_ts", "timestamp", "TIMESTAMP"),
    ("c_tstz", "timestamptz", "TIMESTAMPTZ"),
    ("c_uuid", "uuid", "UUID"),
]
ENUM_LABELS = ["sad", "ok", "happy", "with space", "tab\there", "back\\slash", "new\nline", "é中😀", ""]

ESCAPY = "\t\n\r\\\x01\x07\x08\x0b\x0c\x1b\x7f"


def edge_values():
    """Per column, a list of literals (None = NULL); rows are zipped, short lists padded with NULL."""
    all_ctrl = "".join(chr(c) for c in range(1, 128))
    e = {}
    e["c_text"] = [None, "", "\\N", "N", "\\", "\\\\", "a\tb", "a\nb", "a\rb", "\\.", ".", all_ctrl,
                   "é中😀 ünïcödé", "x" * 300, " lead and trail ", "\\x41"]
    e["c_varchar"] = [None, "", "short", "\t\n\r\\", "é中😀"]
    e["c_bpchar"] = [None, "", "a", "abcdefghij", "é\t"]
    e["c_name"] = [None, "", "pg_class", "tab\tname", "x" * 63]
    e["c_json"] = [None, '{"a": 1}', '"tab\\there"', '[1, 2.50, "é", null]', ' { "sp" : true } ']
    e["c_enum"] = [None] + ENUM_LABELS
    e["c_jsonb"] = [None, "{}", '{"a": "tab\\tnl\\nbs\\\\q\\""}', "[1, 2.50, 1e3, -0, null, true]",
                    '"é中😀\\u0001"', '{"k": {"n": [1, {"x": "y"}]}}', "123456789012345678901234567890.5"]
    e["c_bytea"] = [None, b"", bytes(range(256)), b"\\", b"\x00", b"\xff" * 3, b"\\x41"]
    e["c_bool"] = [None, True, False]
    e["c_int2"] = [None, 0, 1, -1, 32767, -32768, 100]
    e["c_int4"] = [None, 0, 1, -1, 2147483647, -2147483648, 1000000]
    e["c_int8"] = [None, 0, -1, 9223372036854775807, -9223372036854775808, 4294967296]
    e["c_oid"] = [None, 0, 1, 2147483648, 4294967295]
    e["c_float4"] = [None, "0", "-0", "NaN", "Infinity", "-Infinity", "1.4e-45", "1.1754942e-38",
                     "3.4028235e+38", "0.1", "0.33333334", "1e-10", "123456.79", "16777216", "1e+30"]
    e["c_float8"] = [None, "0", "-0", "NaN", "Infinity", "-Infinity", "5e-324", "2.2250738585072e-308",
                     "1e308", "1.7976931348623157e308", "0.1", "0.3333333333333333", "-1.5e-07",
                     "123456789012345680000", "1e+22", "1e21", "100"]
    e["c_numeric"] = [None, "0", "0.00", "-0.5", "0." + "0" * 19 + "1", "123456789012345678901234567890.123456789",
                      "10000", "0.0001", "NaN", "Infinity", "-Infinity", "1", "-1", "9999", "99999999",
                      "100000000", "0.1", "1.10", "-123.4500", "1e-200", "1e200", "-0.000", "12345.678901",
                      "5" * 1000 + "." + "5" * 1000]
    e["c_num122"] = [None, "0", "0.10", "-1234567890.12", "9999999999.99", "0.01", "100", "NaN"]
    e["c_date"] = [None, "2000-01-01", "1999-12-31", "0001-01-01 BC", "4713-11-24 BC", "4714-11-24 BC",
                   "294276-12-31", "5874897-12-31", "infinity", "-infinity", "1970-01-01", "2000-02-29",
                   "1900-02-28", "0001-01-01", "0001-12-31 BC", "2038-01-19", "10000-01-01"]
    e["c_ts"] = [None, "2000-01-01 00:00:00", "1999-12-31 23:59:59.999999", "0001-01-01 00:00:00 BC",
                 "4713-11-24 12:00:00 BC", "4714-11-24 00:00:00 BC", "294276-12-31 23:59:59.999999",
                 "1970-01-01 00:00:00.000001", "infinity", "-infinity", "2000-01-01 00:00:00.1",
                 "2000-01-01 00:00:00.12", "2000-01-01 00:00:00.123", "2000-01-01 00:00:00.1234",
                 "2000-01-01 00:00:00.12345", "2000-01-01 00:00:00.123456", "2026-11-22 14:35:00"]
    e["c_tstz"] = [None, "2000-01-01 00:00:00+00", "1999-12-31 23:59:59.999999+00",
                   "0001-01-01 00:00:00+00 BC", "4714-11-24 00:00:00+00 BC", "294276-12-31 23:59:59.999999+00",
                   "1970-01-01 00:00:00.000001+00", "infinity", "-infinity", "2000-01-01 05:30:00+05:30",
                   "1850-06-01 12:00:00.5+00", "2026-11-22 14:35:00.000042+00"]
    e["c_uuid"] = [None, "00000000-0000-0000-0000-000000000000", "ffffffff-ffff-ffff-ffff-ffffffffffff",
                   "0123456789ABCDEF0123456789abcdef", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"]
    return e


# Spellings COPY TO never writes but copybin accepts (escapes, leading zeros,
# uppercase, other offsets): loaded through the server's own COPY text reader,
# so their binary form is the server's too.  (SQL type, kind, raw COPY field)
# Not jsonb in a spelling other than its own output: jsonb_send writes the
# normalised text, copybin (rightly) the text as given.
ALTERNATIVES = [
    ("text", "TEXT", b"\\101\\x41\\x4a\\1010\\q\\\t\\\\N"),
    ("text", "TEXT", b"\\xg\\b\\f\\v\\r\\n\\t"),
    ("text", "TEXT", b"\\N\\N"),
    ("text", "TEXT", b"\\\xc3\xa9\\7x"),
    ("text", "TEXT", b"\x01\x02\x1f"),
    ("jsonb", "JSONB", b'"\\\\t"'),
    ("bytea", "BYTEA", b"\\\\x0aFF"),
    ("bytea", "BYTEA", b"\\134x\\061\\x32"),
    ("int4", "INT4", b"\\061\\x32"),
    ("int4", "INT4", b"-0"),
    ("int2", "INT2", b"007"),
    ("int8", "INT8", b"-0000000000000000000001"),
    ("oid", "OID", b"0004294967295"),
    ("numeric", "NUMERIC", b"-0.000"),
    ("numeric", "NUMERIC", b"-0"),
    ("numeric", "NUMERIC", b"000123.40"),
    ("numeric", "NUMERIC", b"00.5"),
    ("numeric(12,2)", "NUMERIC", b"-0.00"),
    ("float8", "FLOAT8", b"1."),
    ("float8", "FLOAT8", b".5"),
    ("float8", "FLOAT8", b"-0.0"),
    ("float8", "FLOAT8", b"1e-320"),
    ("float8", "FLOAT8", b"4.9406564584124654e-324"),
    ("float8", "FLOAT8", b"00012e-0003"),
    ("float4", "FLOAT4", b"1e-45"),
    ("float4", "FLOAT4", b"0.1000000000000000055511151231257827"),
    ("date", "DATE", b"0001-02-29 BC"),
    ("timestamp", "TIMESTAMP", b"2000-01-01 00:00:00.5 BC"),
    ("timestamptz", "TIMESTAMPTZ", b"2000-01-01 00:00:00-00:00:01"),
    ("timestamptz", "TIMESTAMPTZ", b"2000-01-01 00:00:00+15:59:59"),
    ("timestamptz", "TIMESTAMPTZ", b"2000-01-01 00:00:00.000001-15 BC"),
    ("timestamptz", "TIMESTAMPTZ", b"4714-11-23 23:00:00-01 BC"),
    ("timestamptz", "TIMESTAMPTZ", b"294276-12-31 23:59:59.999999+01"),
    ("uuid", "UUID", b"A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11"),
]


def rand_text(rng, n):
    pool = "abcxyz019 .,-_'\"{}" + ESCAPY + "é中😀"
    return "".join(rng.choice(pool) for _ in range(rng.randrange(n + 1)))


def rand_date(rng):
    if rng.random() < 0.2:
        y, bc = rng.randrange(1, 4713), " BC"
    else:
        y, bc = rng.choice([rng.randrange(1, 3000), rng.randrange(1, 294276)]), ""
    return "%04d-%02d-%02d%s" % (y, rng.randrange(1, 13), rng.randrange(1, 29), bc)


def rand_time(rng):
    frac = rng.choice(["", "." + str(rng.randrange(10 ** 6)).zfill(6)[:rng.randrange(1, 7)]])
    return "%02d:%02d:%02d%s" % (rng.randrange(24), rng.randrange(60), rng.randrange(60), frac)


def rand_float(rng, fmt):
    while True:
        bits = rng.getrandbits(32 if fmt == "f" else 64)
        x = struct.unpack("<" + fmt, struct.pack("<" + ("I" if fmt == "f" else "Q"), bits))[0]
        if x == x and x not in (float("inf"), float("-inf")):
            return repr(x)


def rand_numeric(rng, scale_max=30, int_max=40):
    i = "".join(rng.choice("0123456789") for _ in range(rng.randrange(1, int_max)))
    f = "".join(rng.choice("0123456789") for _ in range(rng.randrange(0, scale_max)))
    return rng.choice(["", "-"]) + i + ("." + f if f else "")


def random_row(rng):
    r = {}
    r["c_text"] = rand_text(rng, 40)
    r["c_varchar"] = rand_text(rng, 20)
    r["c_bpchar"] = rand_text(rng, 10)
    r["c_name"] = rand_text(rng, 15)
    r["c_json"] = json.dumps({"s": rand_text(rng, 8), "n": rng.randrange(-1000, 1000)}, ensure_ascii=rng.random() < 0.5)
    r["c_enum"] = rng.choice(ENUM_LABELS)
    r["c_jsonb"] = json.dumps({"k%d" % rng.randrange(9): [rand_text(rng, 8), rng.randrange(10 ** 6) / 100]},
                              ensure_ascii=rng.random() < 0.5)
    r["c_bytea"] = bytes(rng.getrandbits(8) for _ in range(rng.randrange(40)))
    r["c_bool"] = rng.random() < 0.5
    r["c_int2"] = rng.randrange(-32768, 32768)
    r["c_int4"] = rng.randrange(-2 ** 31, 2 ** 31)
    r["c_int8"] = rng.randrange(-2 ** 63, 2 ** 63)
    r["c_oid"] = rng.randrange(2 ** 32)
    r["c_float4"] = rand_float(rng, "f")
    r["c_float8"] = rand_float(rng, "d")
    r["c_numeric"] = rand_numeric(rng)
    r["c_num122"] = rand_numeric(rng, 3, 11)
    r["c_date"] = rand_date(rng)
    d = rand_date(rng)
    r["c_ts"] = d.replace(" BC", "") + " " + rand_time(rng) + (" BC" if d.endswith(" BC") else "")
    d = rand_date(rng)
    r["c_tstz"] = d.replace(" BC", "") + " " + rand_time(rng) + rng.choice(["+00", "-07", "+05:45"]) + \
        (" BC" if d.endswith(" BC") else "")
    r["c_uuid"] = str(uuid.UUID(int=rng.getrandbits(128)))
    for k in r:
        if rng.random() < 0.05:
            r[k] = None
    return r


def binary_tuples(data):
    """The fields of a COPY binary stream: a list of rows of (int32 length + bytes) chunks."""
    assert data[:11] == b"PGCOPY\n\xff\r\n\x00" and data[11:19] == b"\0" * 8
    pos, rows = 19, []
    while True:
        (n,) = struct.unpack(">h", data[pos:pos + 2])
        pos += 2
        if n == -1:
            assert pos == len(data)
            return rows
        row = []
        for _ in range(n):
            (ln,) = struct.unpack(">i", data[pos:pos + 4])
            end = pos + 4 + max(ln, 0)
            row.append(data[pos:end])
            pos = end
        rows.append(row)


def copy_out(cur, sql):
    out = bytearray()
    with cur.copy(sql) as cp:
        for chunk in cp:
            out += chunk
    return bytes(out)


def c_string(b):
    """A C string literal of bytes b, readable where it can be."""
    out, line = [], ""
    for c in b:
        ch = chr(c)
        line += ch if (ch.isalnum() and c < 128) or ch in " .,:-_+" else "\\%03o" % c
        if len(line) > 100:
            out.append('"%s"' % line)
            line = ""
    out.append('"%s"' % line)
    return "\n\t".join(out)


def main():
    rng = random.Random(20261122)
    edges = edge_values()
    nedge = max(len(v) for v in edges.values())
    rows = [{c: (edges[c][i] if i < len(edges[c]) else None) for c, _, _ in COLUMNS} for i in range(nedge)]
    rows += [random_row(rng) for _ in range(300)]

    pg = pgcluster.PgCluster("copybin", fresh_initdb=True,
                             initdb_args=("--encoding=UTF8", "--locale=C"))
    try:
        pg.start()
        with pg.connect() as conn:
            cur = conn.cursor()
            version = cur.execute("SELECT version()").fetchone()[0]
            for stmt in SESSION.split(";"):
                cur.execute(stmt)
            cur.execute("CREATE TYPE mood AS ENUM (%s)" % ", ".join(
                "'" + lab.replace("'", "''") + "'" for lab in ENUM_LABELS))
            cur.execute("CREATE TABLE t (id int PRIMARY KEY, %s)" % ", ".join(
                "%s %s" % (c, t) for c, t, _ in COLUMNS))
            cols = ", ".join(c for c, _, _ in COLUMNS)
            params = ", ".join("%%s::%s" % t for _, t, _ in COLUMNS)
            for i, r in enumerate(rows):
                vals = []
                for c, _, _ in COLUMNS:
                    v = r[c]
                    if isinstance(v, bool):
                        v = "t" if v else "f"
                    elif isinstance(v, int):
                        v = str(v)
                    vals.append(v)
                cur.execute("INSERT INTO t (id, %s) VALUES (%s, %s)" % (cols, i, params), vals)
            text = copy_out(cur, "COPY (SELECT %s FROM t ORDER BY id) TO STDOUT" % cols)
            binary = copy_out(cur, "COPY (SELECT %s FROM t ORDER BY id) TO STDOUT (FORMAT binary)" % cols)
            receive = dict(cur.execute(
                "SELECT typname, typreceive::text FROM pg_type WHERE typname IN"
                " ('text','varchar','bpchar','name','json','jsonb','bytea','bool','int2','int4','int8','oid',"
                " 'float4','float8','numeric','date','timestamp','timestamptz','uuid','mood')").fetchall())
            # timestamptz under other zones: other offsets, same binary
            zoned = []
            for zone in ("Asia/Kolkata", "America/St_Johns", "Europe/Amsterdam", "America/New_York",
                         "Pacific/Kiritimati", "Asia/Kathmandu"):
                cur.execute("SET TimeZone = '%s'" % zone)
                zt = copy_out(cur, "COPY (SELECT c_tstz FROM t ORDER BY id) TO STDOUT")
                zb = copy_out(cur, "COPY (SELECT c_tstz FROM t ORDER BY id) TO STDOUT (FORMAT binary)")
                zoned += list(zip(zt.split(b"\n")[:-1], [r[0] for r in binary_tuples(zb)]))
            cur.execute("SET TimeZone = 'UTC'")
            alternatives = []
            for typ, kind, raw in ALTERNATIVES:
                cur.execute("CREATE TEMP TABLE alt (v %s)" % typ)
                with cur.copy("COPY alt FROM STDIN") as cp:
                    cp.write(raw + b"\n")
                ab = copy_out(cur, "COPY alt TO STDOUT (FORMAT binary)")
                alternatives.append((kind, raw, binary_tuples(ab)[0][0]))
                cur.execute("DROP TABLE alt")
    finally:
        pg.destroy()

    lines = text.split(b"\n")
    assert lines[-1] == b"" and len(lines) - 1 == len(rows)
    brows = binary_tuples(binary)
    kinds = [k for _, _, k in COLUMNS]
    vec = []
    for tl, br in zip(lines[:-1], brows):
        fields = tl.split(b"\t")
        assert len(fields) == len(COLUMNS)
        for k, f, b in zip(kinds, fields, br):
            vec.append((k, f, b))
    vec += [("TIMESTAMPTZ", t, b) for t, b in zoned]
    vec += alternatives
    seen, uniq = set(), []
    for v in vec:
        if v not in seen:
            seen.add(v)
            uniq.append(v)

    out = ["/*",
           " * copybin_vectors.inc: generated by gen_copybin_vectors.py from",
           " * %s;" % version.split(" on ")[0],
           " * do not edit.  Receive functions there: %s" % ", ".join(
               "%s=%s" % kv for kv in sorted(receive.items())),
           " */",
           "static const CopyBinVector copybin_vectors[] = {"]
    for k, f, b in uniq:
        out.append("\t{COPYBIN_%s, %s, %d,\n\t%s, %d}," % (k, c_string(f), len(f), c_string(b), len(b)))
    out.append("};")
    out.append("static const CopyBinKind copybin_table_kinds[] = {%s};" % ", ".join("COPYBIN_" + k for k in kinds))
    out.append("static const char copybin_table_text[] =\n\t%s;" % c_string(text))
    out.append("static const size_t copybin_table_text_len = %d;" % len(text))
    out.append("static const char copybin_table_bin[] =\n\t%s;" % c_string(binary))
    out.append("static const size_t copybin_table_bin_len = %d;" % len(binary))
    with open(os.path.join(HERE, "copybin_vectors.inc"), "w") as fh:
        fh.write("\n".join(out) + "\n")
    print("%d field vectors, table %d rows (%d text bytes, %d binary bytes)" % (len(uniq), len(rows), len(text), len(binary)))
    print(receive)


if __name__ == "__main__":
    main()
