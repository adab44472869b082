-- fidelity_zoo.sql: the kinds of objects and values fidelity.sql lacks, for
-- test_logical_zoo.py.  After a logical backup and a restore (or an export
-- loaded with psql) into a new database, `pg_dump --schema-only` of both
-- must be equal, and every table's rows, sequence and large object too.
-- The test creates, cluster-wide, the roles zoo_owner, zoo_reader and
-- zoo_writer and the tablespace zoo_ts before loading this script.
-- Publications come last: FOR ALL TABLES makes UPDATE and DELETE fail on
-- tables without a replica identity.

CREATE EXTENSION postgres_fdw;
CREATE EXTENSION file_fdw;
CREATE EXTENSION btree_gist;
CREATE EXTENSION bloom;
CREATE EXTENSION dict_int;
CREATE EXTENSION unaccent;
CREATE EXTENSION cube;
CREATE EXTENSION seg;
CREATE EXTENSION isn;
CREATE SCHEMA ext;
CREATE EXTENSION pgcrypto SCHEMA ext;                 -- an extension outside public
GRANT EXECUTE ON FUNCTION ext.gen_random_uuid() TO zoo_reader;  -- a changed extension member (pg_init_privs)

CREATE SCHEMA zoo AUTHORIZATION zoo_owner;
-- same table names in several schemas, case twins, unicode
CREATE SCHEMA s1;
CREATE SCHEMA s2;
CREATE SCHEMA "S1";
CREATE SCHEMA "Zoo Ünïcödé ☃";

-- ---------------------------------------------------------------------
-- types: enum extended, base type from internal functions, domains over
-- arrays and composites, ranges and multiranges
-- ---------------------------------------------------------------------
CREATE TYPE zoo.color AS ENUM ('red', 'green', 'blue');
ALTER TYPE zoo.color ADD VALUE 'yellow' BEFORE 'green';
ALTER TYPE zoo.color ADD VALUE 'purple' AFTER 'blue';
ALTER TYPE zoo.color ADD VALUE 'infrared' BEFORE 'red';
ALTER TYPE zoo.color RENAME VALUE 'blue' TO 'bleu';
CREATE TYPE zoo.complex AS (r float8, i float8);
CREATE TYPE zoo.address AS (street text, zip varchar(10), tags text[]);
CREATE TYPE zoo.mytext;
CREATE FUNCTION zoo.mytext_in(cstring) RETURNS zoo.mytext LANGUAGE internal IMMUTABLE STRICT AS 'textin';
CREATE FUNCTION zoo.mytext_out(zoo.mytext) RETURNS cstring LANGUAGE internal IMMUTABLE STRICT AS 'textout';
CREATE TYPE zoo.mytext (INPUT = zoo.mytext_in, OUTPUT = zoo.mytext_out, LIKE = text, CATEGORY = 'S', COLLATABLE = true);
CREATE CAST (zoo.mytext AS text) WITHOUT FUNCTION AS IMPLICIT;
CREATE CAST (text AS zoo.mytext) WITHOUT FUNCTION;
CREATE DOMAIN zoo.int_list AS integer[] CHECK (array_length(VALUE, 1) < 10) DEFAULT '{}';
CREATE DOMAIN zoo.addr_dom AS zoo.address CHECK (VALUE IS NULL OR (VALUE).zip IS NOT NULL);
CREATE DOMAIN zoo.even AS integer CONSTRAINT even_chk CHECK (VALUE % 2 = 0) NOT NULL;
CREATE DOMAIN zoo.shortstr AS varchar(20) COLLATE "C";
CREATE TYPE zoo.numrange2 AS RANGE (subtype = numeric, multirange_type_name = zoo.numrange2_multi);
CREATE TYPE zoo.complex_list AS (items zoo.complex[], colors zoo.color[]);

-- collations: ICU and libc, nondeterministic
CREATE COLLATION zoo.ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
CREATE COLLATION zoo.de_phone (provider = icu, locale = 'de-u-co-phonebk');
CREATE COLLATION zoo.c_libc (provider = libc, locale = 'C');
CREATE COLLATION zoo.posix_copy FROM "POSIX";

-- ---------------------------------------------------------------------
-- every value
-- ---------------------------------------------------------------------
CREATE TABLE zoo.vals (
    id      integer PRIMARY KEY,
    f8      float8,
    f4      real,
    n       numeric,
    ts      timestamp,
    tstz    timestamptz,
    d       date,
    tm      time,
    tmtz    timetz,
    iv      interval,
    b8      bit(8),
    vb      bit varying,
    m       money,
    x       xml,
    tsv     tsvector,
    tsq     tsquery,
    pt      point,
    ln      line,
    ls      lseg,
    bx      box,
    pa      path,
    pg      polygon,
    ci      circle,
    ip      inet,
    cidr_   cidr,
    mac     macaddr,
    mac8    macaddr8,
    rc      regclass,
    rt      regtype,
    rp      regproc,
    rpd     regprocedure,
    rn      regnamespace,
    rcfg    regconfig,
    rcol    regcollation,
    lsn     pg_lsn,
    txs     txid_snapshot,
    pgs     pg_snapshot,
    xid_    xid,
    oid_    oid,
    ch      "char",
    nm      name,
    bpc     char(5),
    i2      smallint,
    i8      bigint,
    bo      boolean,
    c       zoo.color,
    cx      zoo.complex,
    cxa     zoo.complex[],
    cl      zoo.complex_list,
    adr     zoo.addr_dom,
    il      zoo.int_list,
    ev      zoo.even,
    mt      zoo.mytext,
    nr      zoo.numrange2,
    nrm     zoo.numrange2_multi,
    imr     int4multirange,
    dmr     datemultirange,
    tsr     tstzrange,
    arr2    integer[],
    cub     cube,
    sg      seg,
    isbn_   isbn13,
    uu      uuid
);
INSERT INTO zoo.vals VALUES
 (1, 'NaN', 'NaN', 'NaN', 'infinity', 'infinity', 'infinity', '24:00:00', '23:59:59.999999+15:59',
  '178000000 years', B'10101010', B'', '92233720368547758.07', '<?xml version="1.0"?><!DOCTYPE doc><doc a="1">t &lt; u</doc>',
  'a fat cat:1A sat:2B,3C on a mat'::tsvector, 'fat & (rat | !cat) <-> sat'::tsquery,
  '(1,2)', '{1,-1,0}', '[(0,0),(1,1)]', '(1,1),(0,0)', '[(0,0),(1,1),(2,0)]', '((0,0),(1,1),(2,0))', '<(0,0),1.5>',
  '10.1.2.3/8', '10.0.0.0/8', '08:00:2b:01:02:03', '08:00:2b:01:02:03:04:05',
  'zoo.vals', 'zoo.complex[]', 'zoo.mytext_in', 'zoo.mytext_out(zoo.mytext)', 'zoo', 'english', 'zoo.ci',
  '0/0', '10:20:10,14,15', '10:20:10,14,15', '4294967295', 4294967295, 'x', repeat('n', 63), 'ab',
  -32768, -9223372036854775808, true, 'infrared', ROW('NaN', '-Infinity'),
  ARRAY[ROW(1, 2), ROW(NULL, -0.0), NULL]::zoo.complex[], ROW(ARRAY[ROW(1, 2)]::zoo.complex[], '{red,bleu}'),
  ROW('Main St. "1"', '12345', '{a,"b c"}'), '{1,2,3}', 4, E'my\ttext', '[1.5,2.5]', '{[1,2],(3,4]}', '{[1,3),[5,9)}',
  '{[2024-01-01,2024-02-01),[2024-03-01,)}', '[2024-01-01 00:00+00,infinity)', '[0:1][-1:0]={{1,2},{3,4}}',
  '(1,2),(3,4)', '1.5 .. 2.5', '978-0-306-40615-7', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'),
 (2, 'Infinity', '-Infinity', 'Infinity', '-infinity', '-infinity', '-infinity', '00:00', '00:00:00-15:59',
  '-178000000 years', B'00000000', B'1', '-92233720368547758.08', 'fragment <b>one</b> two',
  '', '!x', '(-0,0)', '{0,1,-1e300}', '[(-1e-300,1e300),(0,0)]', '(0,0),(0,0)', '((0,0))', '((1,1))', '<(0,0),0>',
  '::ffff:1.2.3.4', '2001:db8::/32', 'ff:ff:ff:ff:ff:ff', '00:00:00:ff:fe:00:00:00',
  'pg_catalog.pg_class', '"char"', 'now', 'pg_catalog.abs(integer)', 'pg_catalog', 'simple',
  '"C"', 'FFFFFFFF/FFFFFFFF', '1:1:', '1:1:', '0', 0, E'\\', '', '',
  32767, 9223372036854775807, false, 'purple', ROW(-0.0, 'Infinity'), '{}', ROW('{}', '{}'),
  ROW('', '', '{}'), '{}', -2, '', 'empty', '{}', '{}', '{}', 'empty', '{}', '(1e300),(-1e-300)', '<1.5', '978-0-306-40615-7', NULL);
INSERT INTO zoo.vals (id, f8, f4, n, ts, tstz, d, tm, tmtz, iv, b8, m, x, tsv, tsq, pa, ip, cidr_, ev, nr, nrm, arr2)
VALUES (3, -0.0, -0.0, '-Infinity', '4713-11-24 00:00:00 BC', '4713-11-24 00:00:00+00 BC', '4713-01-01 BC',
  '12:34:56.789', '12:00+05:30', '1 mon -1 days +00:00:00.000001', B'11111111', 0, '', 'x:1A y:2B',
  'x:*A & !y:B <2> z', '[(0,0),(1,1)]', '0.0.0.0/0', '::/0', 0, '[,)', '{(,)}', '{NULL,NULL}');
UPDATE zoo.vals SET vb = repeat('10', 500)::varbit WHERE id = 3;
INSERT INTO zoo.vals (id, f8, f4, n, ts, tstz, d, tm, tmtz, iv, m, ev) VALUES
 (4, 1e-308, 1.4e-45, 1e-130, '294276-12-31 23:59:59.999999', '294276-12-31 23:59:59.999999+00', '5874897-12-31',
  '00:00:00.000001', '24:00:00+00', 'P1Y2M3DT4H5M6.7S', '0.01', 8);

-- ---------------------------------------------------------------------
-- text search: parser, template, dictionaries, configurations
-- ---------------------------------------------------------------------
CREATE TEXT SEARCH PARSER zoo.myparser (START = prsd_start, GETTOKEN = prsd_nexttoken, END = prsd_end,
    LEXTYPES = prsd_lextype, HEADLINE = prsd_headline);
CREATE TEXT SEARCH TEMPLATE zoo.mytmpl (INIT = dsimple_init, LEXIZE = dsimple_lexize);
CREATE TEXT SEARCH DICTIONARY zoo.mydict (TEMPLATE = zoo.mytmpl, STOPWORDS = english, ACCEPT = false);
CREATE TEXT SEARCH DICTIONARY zoo.intdict (TEMPLATE = intdict_template, MAXLEN = 4, REJECTLONG = true);
CREATE TEXT SEARCH DICTIONARY zoo.unacc (TEMPLATE = unaccent, RULES = 'unaccent');
CREATE TEXT SEARCH CONFIGURATION zoo.mycfg (PARSER = zoo.myparser);
ALTER TEXT SEARCH CONFIGURATION zoo.mycfg ADD MAPPING FOR asciiword, word WITH zoo.unacc, zoo.mydict, english_stem;
ALTER TEXT SEARCH CONFIGURATION zoo.mycfg ADD MAPPING FOR int, uint WITH zoo.intdict;
CREATE TEXT SEARCH CONFIGURATION zoo.copycfg (COPY = english);
ALTER TEXT SEARCH CONFIGURATION zoo.copycfg DROP MAPPING FOR email;
COMMENT ON TEXT SEARCH CONFIGURATION zoo.mycfg IS 'unaccented english';
UPDATE zoo.vals SET rcfg = 'zoo.mycfg' WHERE id = 2;

CREATE TABLE zoo.docs (
    id    serial PRIMARY KEY,
    body  text COLLATE zoo.ci,
    title text COLLATE zoo.de_phone,
    code  text COLLATE "C",
    tsv   tsvector GENERATED ALWAYS AS (to_tsvector('zoo.mycfg', coalesce(body, ''))) STORED
);
CREATE INDEX docs_tsv ON zoo.docs USING gin (tsv);
CREATE UNIQUE INDEX docs_body_ci ON zoo.docs (body);
INSERT INTO zoo.docs (body, title, code) VALUES ('Crème Brûlée 42', 'Müller', 'b'), ('hello World 12345', 'Mueller', 'B'),
    (NULL, NULL, NULL), ('Straße', 'Ärger', 'ä');

-- ---------------------------------------------------------------------
-- operators, operator classes and families, casts, aggregates, window
-- functions, conversions, transforms, a procedural language
-- ---------------------------------------------------------------------
CREATE FUNCTION zoo.complex_add(zoo.complex, zoo.complex) RETURNS zoo.complex LANGUAGE sql IMMUTABLE STRICT
    AS 'SELECT ROW($1.r + $2.r, $1.i + $2.i)::zoo.complex';
CREATE OPERATOR zoo.+ (LEFTARG = zoo.complex, RIGHTARG = zoo.complex, FUNCTION = zoo.complex_add,
    COMMUTATOR = OPERATOR(zoo.+));
CREATE FUNCTION zoo.abs_lt(integer, integer) RETURNS boolean LANGUAGE sql IMMUTABLE STRICT AS 'SELECT abs($1) < abs($2)';
CREATE FUNCTION zoo.abs_le(integer, integer) RETURNS boolean LANGUAGE sql IMMUTABLE STRICT AS 'SELECT abs($1) <= abs($2)';
CREATE FUNCTION zoo.abs_eq(integer, integer) RETURNS boolean LANGUAGE sql IMMUTABLE STRICT AS 'SELECT abs($1) = abs($2)';
CREATE FUNCTION zoo.abs_ge(integer, integer) RETURNS boolean LANGUAGE sql IMMUTABLE STRICT AS 'SELECT abs($1) >= abs($2)';
CREATE FUNCTION zoo.abs_gt(integer, integer) RETURNS boolean LANGUAGE sql IMMUTABLE STRICT AS 'SELECT abs($1) > abs($2)';
CREATE FUNCTION zoo.abs_cmp(integer, integer) RETURNS integer LANGUAGE sql IMMUTABLE STRICT
    AS 'SELECT CASE WHEN abs($1) < abs($2) THEN -1 WHEN abs($1) > abs($2) THEN 1 ELSE 0 END';
CREATE OPERATOR zoo.<# (LEFTARG = integer, RIGHTARG = integer, FUNCTION = zoo.abs_lt, COMMUTATOR = OPERATOR(zoo.>#),
    NEGATOR = OPERATOR(zoo.>=#), RESTRICT = scalarltsel, JOIN = scalarltjoinsel);
CREATE OPERATOR zoo.<=# (LEFTARG = integer, RIGHTARG = integer, FUNCTION = zoo.abs_le);
CREATE OPERATOR zoo.=# (LEFTARG = integer, RIGHTARG = integer, FUNCTION = zoo.abs_eq, COMMUTATOR = OPERATOR(zoo.=#),
    RESTRICT = eqsel, JOIN = eqjoinsel, MERGES);
CREATE OPERATOR zoo.>=# (LEFTARG = integer, RIGHTARG = integer, FUNCTION = zoo.abs_ge);
CREATE OPERATOR zoo.># (LEFTARG = integer, RIGHTARG = integer, FUNCTION = zoo.abs_gt);
CREATE OPERATOR FAMILY zoo.abs_int_family USING btree;
CREATE OPERATOR CLASS zoo.abs_int_ops FOR TYPE integer USING btree FAMILY zoo.abs_int_family AS
    OPERATOR 1 zoo.<#, OPERATOR 2 zoo.<=#, OPERATOR 3 zoo.=#, OPERATOR 4 zoo.>=#, OPERATOR 5 zoo.>#,
    FUNCTION 1 zoo.abs_cmp(integer, integer);
CREATE FUNCTION zoo.complex_text(zoo.complex) RETURNS text LANGUAGE sql IMMUTABLE STRICT
    AS $$SELECT $1.r || ' + ' || $1.i || 'i'$$;
CREATE CAST (zoo.complex AS text) WITH FUNCTION zoo.complex_text(zoo.complex) AS ASSIGNMENT;
CREATE CAST (zoo.color AS text) WITH INOUT;

CREATE AGGREGATE zoo.mysum(integer) (SFUNC = int4pl, STYPE = integer, INITCOND = '0');
CREATE FUNCTION zoo.avg_final(integer[]) RETURNS float8 LANGUAGE sql IMMUTABLE
    AS 'SELECT avg(x)::float8 FROM unnest($1) x';
CREATE AGGREGATE zoo.myavg(integer) (SFUNC = array_append, STYPE = integer[], FINALFUNC = zoo.avg_final,
    INITCOND = '{}', PARALLEL = SAFE);
CREATE AGGREGATE zoo.movsum(integer) (SFUNC = int4pl, STYPE = integer, MSFUNC = int4pl, MINVFUNC = int4mi,
    MSTYPE = integer, MINITCOND = '0', INITCOND = '0');
CREATE FUNCTION zoo.os_sfunc(float8[], float8) RETURNS float8[] LANGUAGE sql IMMUTABLE AS 'SELECT $1 || $2';
CREATE FUNCTION zoo.os_final(float8[], float8) RETURNS float8 LANGUAGE sql IMMUTABLE
    AS 'SELECT $1[greatest(1, ceil($2 * array_length($1, 1))::int)]';
CREATE AGGREGATE zoo.my_pct(float8 ORDER BY float8) (SFUNC = zoo.os_sfunc, STYPE = float8[],
    FINALFUNC = zoo.os_final, INITCOND = '{}');
CREATE FUNCTION zoo.my_row_number() RETURNS bigint LANGUAGE internal WINDOW IMMUTABLE AS 'window_row_number';
CREATE CONVERSION zoo.latin1_to_utf8 FOR 'LATIN1' TO 'UTF8' FROM iso8859_1_to_utf8;
CREATE FUNCTION zoo.tf_from(internal) RETURNS internal LANGUAGE internal IMMUTABLE STRICT AS 'textsend';
CREATE FUNCTION zoo.tf_to(internal) RETURNS zoo.mytext LANGUAGE internal IMMUTABLE STRICT AS 'textrecv';
CREATE TRANSFORM FOR zoo.mytext LANGUAGE plpgsql (FROM SQL WITH FUNCTION zoo.tf_from(internal),
    TO SQL WITH FUNCTION zoo.tf_to(internal));
-- (a language whose handler is pg_catalog's own, e.g. HANDLER plpgsql_call_handler, is
-- dumped by pg_dump 15 as a bare "CREATE LANGUAGE name", which fails: a pg_dump limitation)
CREATE FUNCTION zoo.zoo_call_handler() RETURNS language_handler LANGUAGE c AS '$libdir/plpgsql', 'plpgsql_call_handler';
CREATE FUNCTION zoo.zoo_inline_handler(internal) RETURNS void LANGUAGE c STRICT AS '$libdir/plpgsql', 'plpgsql_inline_handler';
CREATE FUNCTION zoo.zoo_validator(oid) RETURNS void LANGUAGE c STRICT AS '$libdir/plpgsql', 'plpgsql_validator';
CREATE TRUSTED LANGUAGE zoo_plpgsql HANDLER zoo.zoo_call_handler INLINE zoo.zoo_inline_handler
    VALIDATOR zoo.zoo_validator;
CREATE FUNCTION zoo.in_my_language() RETURNS integer LANGUAGE zoo_plpgsql AS 'BEGIN RETURN 7; END';

-- functions: SECURITY DEFINER with SET search_path, SQL-standard bodies,
-- defaults, OUT, VARIADIC, RETURNS TABLE, settings, costs
CREATE FUNCTION zoo.definer(p integer DEFAULT 3, VARIADIC rest integer[] DEFAULT '{}') RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = zoo, pg_temp SET work_mem = '4MB' STABLE LEAKPROOF
    COST 5 PARALLEL SAFE AS 'BEGIN RETURN p + coalesce(array_length(rest, 1), 0); END';
ALTER FUNCTION zoo.definer(integer, integer[]) OWNER TO zoo_owner;
CREATE FUNCTION zoo.atomic_add(a integer, b integer) RETURNS integer LANGUAGE sql IMMUTABLE
    BEGIN ATOMIC SELECT zoo.abs_cmp(a, b) + a + b; END;
CREATE FUNCTION zoo.outs(IN a integer, OUT doubled integer, OUT label text) LANGUAGE sql
    AS $$SELECT a * 2, 'n=' || a$$;
CREATE FUNCTION zoo.tab(n integer) RETURNS TABLE (i integer, sq bigint) LANGUAGE sql ROWS 10
    AS 'SELECT g, g::bigint * g FROM generate_series(1, n) g';
CREATE PROCEDURE zoo.proc_atomic(INOUT x integer) LANGUAGE sql BEGIN ATOMIC SELECT x + 1; END;
CREATE FUNCTION zoo.noop_trg() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END';
CREATE FUNCTION zoo.stmt_trg() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NULL; END';

-- ---------------------------------------------------------------------
-- access methods
-- ---------------------------------------------------------------------
CREATE ACCESS METHOD heap2 TYPE TABLE HANDLER heap_tableam_handler;
CREATE ACCESS METHOD bloom2 TYPE INDEX HANDLER blhandler;
CREATE OPERATOR CLASS zoo.int4_bloom2 DEFAULT FOR TYPE integer USING bloom2 AS
    OPERATOR 1 =(integer, integer), FUNCTION 1 hashint4(integer);
CREATE TABLE zoo.in_heap2 (id integer, a integer, b integer, n integer) USING heap2;
INSERT INTO zoo.in_heap2 SELECT g, g % 10, g % 7, (g % 21) - 10 FROM generate_series(1, 500) g;
CREATE INDEX in_heap2_bloom ON zoo.in_heap2 USING bloom (a, b) WITH (length = 80, col1 = 2);
CREATE INDEX in_heap2_bloom2 ON zoo.in_heap2 USING bloom2 (a);
CREATE INDEX in_heap2_abs ON zoo.in_heap2 (n zoo.abs_int_ops);

-- ---------------------------------------------------------------------
-- constraints: exclusion, deferrable, NOT VALID (kept so, rows that break
-- them included), FKs to partitioned tables, NULLS NOT DISTINCT
-- ---------------------------------------------------------------------
CREATE TABLE zoo.booking (
    id     integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    room   integer NOT NULL,
    during tstzrange NOT NULL,
    EXCLUDE USING gist (room WITH =, during WITH &&) DEFERRABLE INITIALLY DEFERRED
);
INSERT INTO zoo.booking (room, during) SELECT g % 5, tstzrange(timestamptz '2024-01-01 00:00+00' + g * interval '1 day',
    timestamptz '2024-01-01 00:00+00' + (g + 1) * interval '1 day') FROM generate_series(1, 100) g;
CREATE TABLE zoo.cons (
    id    integer PRIMARY KEY,
    u     integer UNIQUE DEFERRABLE INITIALLY DEFERRED,
    u2    integer,
    nn    text,
    ref   integer,
    CONSTRAINT cons_u2_nnd UNIQUE NULLS NOT DISTINCT (u2),
    CONSTRAINT cons_positive CHECK (id > 0) NO INHERIT
);
INSERT INTO zoo.cons VALUES (1, 1, NULL, 'a', NULL), (2, 2, 2, '', 1), (3, 3, 3, NULL, 99);
ALTER TABLE zoo.cons ADD CONSTRAINT cons_nn_set CHECK (nn IS NOT NULL) NOT VALID;
ALTER TABLE zoo.cons ADD CONSTRAINT cons_ref_fk FOREIGN KEY (ref) REFERENCES zoo.cons (id)
    ON UPDATE CASCADE ON DELETE SET NULL (ref) DEFERRABLE NOT VALID;
ALTER TABLE zoo.cons ADD CONSTRAINT cons_u_self FOREIGN KEY (u) REFERENCES zoo.cons (id) MATCH FULL INITIALLY DEFERRED;
CREATE DOMAIN zoo.small AS integer;
CREATE TABLE zoo.dom_nv (v zoo.small);
INSERT INTO zoo.dom_nv VALUES (5), (500);
ALTER DOMAIN zoo.small ADD CONSTRAINT small_chk CHECK (VALUE < 100) NOT VALID;

-- partitioned tables: hash, range with a sub-partition, a partition with
-- another column order, a foreign partition, FKs to and from them
CREATE TABLE zoo.parted (
    id  bigint NOT NULL,
    at  date NOT NULL,
    v   text,
    PRIMARY KEY (id, at)
) PARTITION BY RANGE (at);
CREATE TABLE zoo.parted_2023 PARTITION OF zoo.parted FOR VALUES FROM ('2023-01-01') TO ('2024-01-01')
    WITH (fillfactor = 70);
CREATE TABLE zoo.parted_2024 PARTITION OF zoo.parted FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')
    PARTITION BY HASH (id);
CREATE TABLE zoo.parted_2024_h0 PARTITION OF zoo.parted_2024 FOR VALUES WITH (MODULUS 2, REMAINDER 0);
CREATE TABLE zoo.parted_2024_h1 PARTITION OF zoo.parted_2024 FOR VALUES WITH (MODULUS 2, REMAINDER 1);
CREATE TABLE zoo.parted_odd (v text, gone integer, at date NOT NULL, id bigint NOT NULL);
ALTER TABLE zoo.parted_odd DROP COLUMN gone;
ALTER TABLE zoo.parted ATTACH PARTITION zoo.parted_odd FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE INDEX parted_v ON zoo.parted (v);
CREATE TRIGGER parted_rows AFTER INSERT ON zoo.parted FOR EACH ROW EXECUTE FUNCTION zoo.noop_trg();
INSERT INTO zoo.parted SELECT g, date '2023-03-01' + (g % 1000), 'v' || g FROM generate_series(1, 3000) g;
CREATE TABLE zoo.parted_ref (
    id     integer PRIMARY KEY,
    p_id   bigint,
    p_at   date,
    FOREIGN KEY (p_id, p_at) REFERENCES zoo.parted (id, at) ON DELETE CASCADE
);
INSERT INTO zoo.parted_ref SELECT g, g, date '2023-03-01' + (g % 1000) FROM generate_series(1, 200) g;
CREATE TABLE zoo.parted_refs_out (id integer, at date NOT NULL, p integer REFERENCES zoo.parted_ref (id))
    PARTITION BY LIST (id);
CREATE TABLE zoo.parted_refs_out_1 PARTITION OF zoo.parted_refs_out FOR VALUES IN (1, 2, 3);
INSERT INTO zoo.parted_refs_out VALUES (1, '2024-01-01', 1), (2, '2024-01-02', NULL);
CREATE SERVER files FOREIGN DATA WRAPPER file_fdw;
CREATE TABLE zoo.logs (at date NOT NULL, line text) PARTITION BY RANGE (at);
CREATE TABLE zoo.logs_new PARTITION OF zoo.logs FOR VALUES FROM ('2024-01-01') TO (MAXVALUE);
CREATE FOREIGN TABLE zoo.logs_old PARTITION OF zoo.logs FOR VALUES FROM (MINVALUE) TO ('2024-01-01')
    SERVER files OPTIONS (filename '/dev/null', format 'csv');
INSERT INTO zoo.logs VALUES ('2024-05-05', 'new line');

-- ---------------------------------------------------------------------
-- triggers: constraint, disabled, ALWAYS / REPLICA, INSTEAD OF, statement
-- level with transition tables, TRUNCATE, column lists
-- ---------------------------------------------------------------------
CREATE TABLE zoo.trg (id integer PRIMARY KEY, a text, b text);
INSERT INTO zoo.trg SELECT g, 'a' || g, 'b' || g FROM generate_series(1, 50) g;
CREATE CONSTRAINT TRIGGER trg_constraint AFTER INSERT OR UPDATE ON zoo.trg DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION zoo.noop_trg();
CREATE TRIGGER trg_disabled BEFORE INSERT ON zoo.trg FOR EACH ROW EXECUTE FUNCTION zoo.noop_trg();
ALTER TABLE zoo.trg DISABLE TRIGGER trg_disabled;
CREATE TRIGGER trg_always BEFORE UPDATE OF a, b ON zoo.trg FOR EACH ROW EXECUTE FUNCTION zoo.noop_trg();
ALTER TABLE zoo.trg ENABLE ALWAYS TRIGGER trg_always;
CREATE TRIGGER trg_replica AFTER DELETE ON zoo.trg FOR EACH ROW EXECUTE FUNCTION zoo.noop_trg();
ALTER TABLE zoo.trg ENABLE REPLICA TRIGGER trg_replica;
CREATE TRIGGER trg_transition AFTER UPDATE ON zoo.trg REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION zoo.stmt_trg();
CREATE TRIGGER trg_truncate BEFORE TRUNCATE ON zoo.trg FOR EACH STATEMENT EXECUTE FUNCTION zoo.stmt_trg();
CREATE VIEW zoo.trg_view AS SELECT id, a FROM zoo.trg;
CREATE FUNCTION zoo.trg_view_ins() RETURNS trigger LANGUAGE plpgsql
    AS 'BEGIN INSERT INTO zoo.trg (id, a) VALUES (NEW.id, NEW.a); RETURN NEW; END';
CREATE TRIGGER trg_view_instead INSTEAD OF INSERT ON zoo.trg_view FOR EACH ROW EXECUTE FUNCTION zoo.trg_view_ins();
CREATE VIEW zoo.trg_checked AS SELECT * FROM zoo.trg WHERE id > 10 WITH CASCADED CHECK OPTION;
ALTER VIEW zoo.trg_checked ALTER COLUMN b SET DEFAULT 'dflt';
CREATE RECURSIVE VIEW zoo.countdown (n) AS SELECT 5 UNION ALL SELECT n - 1 FROM countdown WHERE n > 0;
CREATE SEQUENCE zoo.seq_of_trg OWNED BY zoo.trg.id;
SELECT setval('zoo.seq_of_trg', 50);
CREATE INDEX trg_a_idx ON zoo.trg (a) INCLUDE (b) WITH (fillfactor = 50);
CREATE STATISTICS s2.trg_stats (dependencies) ON a, b FROM zoo.trg;
ALTER STATISTICS s2.trg_stats OWNER TO zoo_owner;
COMMENT ON STATISTICS s2.trg_stats IS 'statistics in another schema than their table';
CREATE MATERIALIZED VIEW zoo.trg_mv AS SELECT id, upper(a) AS ua FROM zoo.trg;
CREATE UNIQUE INDEX trg_mv_id ON zoo.trg_mv (id);
ALTER MATERIALIZED VIEW zoo.trg_mv CLUSTER ON trg_mv_id;

-- ---------------------------------------------------------------------
-- table properties: RLS, replica identity, storage parameters, CLUSTER ON,
-- column storage, compression, statistics targets, a tablespace
-- ---------------------------------------------------------------------
CREATE TABLE zoo.props (
    id   integer NOT NULL,
    k    text NOT NULL,
    big  text,
    comp text COMPRESSION lz4,
    CONSTRAINT props_pk PRIMARY KEY (id) WITH (fillfactor = 80)
) WITH (fillfactor = 60, autovacuum_enabled = false, autovacuum_vacuum_scale_factor = 0.01,
        toast.autovacuum_enabled = false, parallel_workers = 3, toast_tuple_target = 256);
CREATE UNIQUE INDEX props_k ON zoo.props (k);
ALTER TABLE zoo.props REPLICA IDENTITY USING INDEX props_k;
ALTER TABLE zoo.props CLUSTER ON props_pk;
ALTER TABLE zoo.props ALTER COLUMN big SET STORAGE EXTERNAL;
ALTER TABLE zoo.props ALTER COLUMN k SET STATISTICS 1000;
ALTER TABLE zoo.props ALTER COLUMN k SET (n_distinct = -1);
ALTER TABLE zoo.props ENABLE ROW LEVEL SECURITY;
ALTER TABLE zoo.props FORCE ROW LEVEL SECURITY;
CREATE POLICY props_mine ON zoo.props AS RESTRICTIVE FOR UPDATE TO zoo_writer USING (id > 0) WITH CHECK (id < 1000);
CREATE POLICY props_all ON zoo.props USING (true);
ALTER TABLE zoo.props OWNER TO zoo_owner;
-- large values: compressible and not, inline, compressed, external
INSERT INTO zoo.props SELECT g, 'k' || g,
    CASE WHEN g % 3 = 0 THEN repeat('compressible ', 100000) ELSE
        (SELECT string_agg(md5(g::text || i::text), '') FROM generate_series(1, 2000) i) END,
    CASE WHEN g % 2 = 0 THEN repeat('lz4 ', 200000) ELSE NULL END
  FROM generate_series(1, 12) g;
CREATE INDEX props_expr ON zoo.props (lower(k), (id + 1));
ALTER INDEX zoo.props_expr ALTER COLUMN 2 SET STATISTICS 500;
CREATE TABLE zoo.full_ident (a integer, b text);
ALTER TABLE zoo.full_ident REPLICA IDENTITY FULL;
INSERT INTO zoo.full_ident VALUES (1, 'x'), (1, 'x'), (NULL, NULL);
CREATE TABLE zoo.in_ts (id integer PRIMARY KEY USING INDEX TABLESPACE zoo_ts, v text) TABLESPACE zoo_ts;
INSERT INTO zoo.in_ts VALUES (1, 'in a tablespace');
CREATE TABLE zoo.typed OF zoo.address (PRIMARY KEY (street), zip WITH OPTIONS DEFAULT '00000');
INSERT INTO zoo.typed (street) VALUES ('one'), ('two');

-- extended statistics
CREATE STATISTICS zoo.heap2_stats (ndistinct, dependencies, mcv) ON a, b FROM zoo.in_heap2;
CREATE STATISTICS zoo.heap2_expr ON (a + b), (n * 2) FROM zoo.in_heap2;
ALTER STATISTICS zoo.heap2_stats SET STATISTICS 500;

-- missing attribute values: columns added with a default after the rows
CREATE TABLE zoo.missing (id integer);
INSERT INTO zoo.missing SELECT g FROM generate_series(1, 100) g;
ALTER TABLE zoo.missing ADD COLUMN c text NOT NULL DEFAULT 'filled in';
ALTER TABLE zoo.missing ADD COLUMN n integer DEFAULT 42;
ALTER TABLE zoo.missing ADD COLUMN arr integer[] DEFAULT '{1,2}';
INSERT INTO zoo.missing (id, c, n) VALUES (101, 'new', NULL);
ALTER TABLE zoo.missing ALTER COLUMN n SET DEFAULT 7;

-- a table with hundreds of columns
DO $$
BEGIN
  EXECUTE 'CREATE TABLE zoo.wide (' ||
    (SELECT string_agg(format('c%s %s', g, CASE g % 4 WHEN 0 THEN 'integer' WHEN 1 THEN 'text'
                                              WHEN 2 THEN 'boolean' ELSE 'numeric' END), ', ')
       FROM generate_series(1, 600) g) || ')';
  EXECUTE 'INSERT INTO zoo.wide SELECT ' ||
    (SELECT string_agg(CASE g % 4 WHEN 0 THEN format('r + %s', g) WHEN 1 THEN format('''v'' || r || ''.%s''', g)
                              WHEN 2 THEN 'r % 2 = 0' ELSE format('r / %s.0', g) END, ', ')
       FROM generate_series(1, 600) g) || ' FROM generate_series(1, 40) r';
END $$;
ALTER TABLE zoo.wide DROP COLUMN c300;

-- identical names in several schemas; case twins; long and unicode names
CREATE TABLE public.items (id integer PRIMARY KEY, v text);
CREATE TABLE s1.items (id integer PRIMARY KEY, v text);
CREATE TABLE s2.items (id integer PRIMARY KEY, v text, s1_id integer REFERENCES s1.items (id));
CREATE TABLE "S1".items (id integer PRIMARY KEY, v text);
CREATE TABLE "S1"."ITEMS" (id integer, "V" text, v text);
INSERT INTO public.items VALUES (1, 'public');
INSERT INTO s1.items VALUES (1, 's1'), (2, 's1 two');
INSERT INTO s2.items VALUES (1, 's2', 2);
INSERT INTO "S1".items VALUES (1, 'S1');
INSERT INTO "S1"."ITEMS" VALUES (1, 'upper V', 'lower v');
CREATE TABLE public."T" (x integer);
CREATE TABLE public.t (x integer);
INSERT INTO public."T" VALUES (1);
INSERT INTO public.t VALUES (2), (3);
CREATE TABLE public.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa (
    id serial PRIMARY KEY,
    bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb text UNIQUE
);
INSERT INTO public.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
    (bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb) VALUES ('long'), ('names');
CREATE TABLE "Zoo Ünïcödé ☃"."日本語のテーブル名前です長い名前ですよ" ("列☃" text, "select" integer, "from" text, "a""b" text);
INSERT INTO "Zoo Ünïcödé ☃"."日本語のテーブル名前です長い名前ですよ" VALUES ('雪だるま', 1, 'keyword', E'q"uo\\te');
CREATE TABLE s1."new
line ""table"" -- not a comment" ("col
umn" text PRIMARY KEY, "back\slash" integer);
INSERT INTO s1."new
line ""table"" -- not a comment" VALUES (E'a\nb', 1), ('-- c', 2);
COMMENT ON TABLE s1."new
line ""table"" -- not a comment" IS E'a comment\nover two lines';
CREATE TABLE s1.inh_parent (id integer, v text, CONSTRAINT inh_chk CHECK (id > 0));
CREATE TABLE s2.inh_parent2 (w text);
-- (a child whose columns are in another order than its parent's comes back in
-- the parent's order: pg_dump writes INHERITS, a pg_dump limitation)
CREATE TABLE s1.inh_child (id integer, v text, extra boolean);
ALTER TABLE s1.inh_child ADD CONSTRAINT inh_chk CHECK (id > 0);
ALTER TABLE s1.inh_child INHERIT s1.inh_parent;
INSERT INTO s1.inh_parent VALUES (1, 'parent');
INSERT INTO s1.inh_child VALUES (2, 'child', true);
CREATE TABLE s1.multi_child (z integer) INHERITS (s1.inh_parent, s2.inh_parent2);
INSERT INTO s1.multi_child VALUES (3, 'multi', 'w', 9);

-- sequences: typed, unlogged, at their end, owned by a non-serial column
CREATE SEQUENCE zoo.seq_small AS smallint START 10 MAXVALUE 32767;
SELECT setval('zoo.seq_small', 32767, true);
CREATE UNLOGGED SEQUENCE zoo.seq_unlogged INCREMENT 10;
SELECT nextval('zoo.seq_unlogged'), nextval('zoo.seq_unlogged');
CREATE SEQUENCE s1.seq_owned_by_v OWNED BY s1.items.v;
SELECT setval('s1.seq_owned_by_v', 12345, false);

-- many large objects, some with owners, ACLs, comments
SELECT count(lo_from_bytea(700000 + g, convert_to(repeat('lo ' || g || ' ', g), 'UTF8'))) FROM generate_series(0, 299) g;
SELECT lo_from_bytea(800000, decode(repeat(md5('x'), 8000), 'hex'));
ALTER LARGE OBJECT 700001 OWNER TO zoo_owner;
GRANT SELECT, UPDATE ON LARGE OBJECT 700002 TO zoo_writer;
COMMENT ON LARGE OBJECT 700003 IS 'the third';

-- foreign data: wrappers, servers, user mappings, foreign tables
CREATE FOREIGN DATA WRAPPER zoo_dummy_fdw OPTIONS (debug 'true');
CREATE SERVER zoo_dummy TYPE 'dummy' VERSION '1.0' FOREIGN DATA WRAPPER zoo_dummy_fdw OPTIONS (region 'eu');
CREATE SERVER loopback FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host '127.0.0.1', port '1', dbname 'nowhere');
ALTER SERVER loopback OWNER TO zoo_owner;
CREATE USER MAPPING FOR zoo_owner SERVER loopback OPTIONS (user 'remote', password 'not-a-real-secret');
CREATE USER MAPPING FOR PUBLIC SERVER loopback OPTIONS (user 'anyone');
CREATE USER MAPPING FOR CURRENT_USER SERVER zoo_dummy;
GRANT USAGE ON FOREIGN SERVER loopback TO zoo_reader;
GRANT USAGE ON FOREIGN DATA WRAPPER zoo_dummy_fdw TO zoo_writer;
CREATE FOREIGN TABLE zoo.remote_t (
    id integer OPTIONS (column_name 'rid') NOT NULL,
    v  text CHECK (v <> '')
) SERVER loopback OPTIONS (schema_name 'r', table_name 't', fetch_size '500');
CREATE FOREIGN TABLE zoo.hostname (line text) SERVER files OPTIONS (filename '/etc/hostname', format 'text');
COMMENT ON FOREIGN TABLE zoo.remote_t IS 'over there';

-- privileges: column-level, default privileges, grants on many kinds
GRANT USAGE ON SCHEMA zoo TO zoo_reader, zoo_writer;
GRANT SELECT (id, k), UPDATE (k) ON zoo.props TO zoo_writer;
GRANT INSERT (a) ON zoo.trg TO zoo_writer;
GRANT REFERENCES (id) ON zoo.cons TO zoo_reader;
GRANT USAGE ON TYPE zoo.color TO zoo_writer;
REVOKE USAGE ON TYPE zoo.complex FROM PUBLIC;
GRANT USAGE ON DOMAIN zoo.even TO zoo_reader;
GRANT USAGE, SELECT ON SEQUENCE zoo.seq_small TO zoo_writer;
GRANT USAGE ON LANGUAGE zoo_plpgsql TO zoo_writer;
REVOKE EXECUTE ON FUNCTION zoo.definer(integer, integer[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION zoo.definer(integer, integer[]) TO zoo_reader;
GRANT ALL ON TABLESPACE zoo_ts TO zoo_owner;
ALTER DEFAULT PRIVILEGES FOR ROLE zoo_owner IN SCHEMA zoo GRANT SELECT ON TABLES TO zoo_reader;
ALTER DEFAULT PRIVILEGES FOR ROLE zoo_owner GRANT USAGE ON SEQUENCES TO zoo_writer;
ALTER DEFAULT PRIVILEGES FOR ROLE zoo_owner REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
ALTER DEFAULT PRIVILEGES FOR ROLE zoo_owner GRANT USAGE ON TYPES TO zoo_writer;
ALTER DEFAULT PRIVILEGES GRANT USAGE ON SCHEMAS TO zoo_reader;
ALTER DEFAULT PRIVILEGES IN SCHEMA s1 GRANT INSERT, DELETE ON TABLES TO zoo_writer;

-- comments on more kinds
COMMENT ON COLLATION zoo.ci IS 'case-insensitive';
COMMENT ON OPERATOR zoo.+ (zoo.complex, zoo.complex) IS 'complex addition';
COMMENT ON OPERATOR CLASS zoo.abs_int_ops USING btree IS 'by absolute value';
COMMENT ON AGGREGATE zoo.my_pct(float8 ORDER BY float8) IS 'ordered-set';
COMMENT ON CONSTRAINT cons_nn_set ON zoo.cons IS 'not valid on purpose';
COMMENT ON TRIGGER trg_always ON zoo.trg IS 'always fires';
COMMENT ON POLICY props_mine ON zoo.props IS 'restrictive';
COMMENT ON STATISTICS zoo.heap2_stats IS 'mcv and friends';
COMMENT ON SERVER loopback IS 'nowhere';
COMMENT ON ACCESS METHOD heap2 IS 'heap by another name';
COMMENT ON CAST (zoo.complex AS text) IS 'printable';
COMMENT ON CONVERSION zoo.latin1_to_utf8 IS 'latin1';
COMMENT ON EXTENSION cube IS 'cubes';
COMMENT ON COLUMN zoo.vals.tsq IS 'a query';
COMMENT ON DOMAIN zoo.even IS 'even numbers';
COMMENT ON LANGUAGE zoo_plpgsql IS 'plpgsql twice';
COMMENT ON SEQUENCE zoo.seq_small IS 'at its end';

-- event triggers (one disabled, one that logs into a table: a restore
-- must not make it log anything)
CREATE TABLE zoo.ddl_log (id serial PRIMARY KEY, tag text, at_restore boolean DEFAULT true);
CREATE FUNCTION zoo.log_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO zoo.ddl_log (tag) VALUES (tg_tag);
END $$;
CREATE FUNCTION zoo.note_drop() RETURNS event_trigger LANGUAGE plpgsql AS 'BEGIN NULL; END';
CREATE EVENT TRIGGER zoo_log_ddl ON ddl_command_end EXECUTE FUNCTION zoo.log_ddl();
CREATE EVENT TRIGGER zoo_note_drop ON sql_drop WHEN TAG IN ('DROP TABLE', 'DROP VIEW') EXECUTE FUNCTION zoo.note_drop();
ALTER EVENT TRIGGER zoo_note_drop DISABLE;
CREATE EVENT TRIGGER zoo_rewrite ON table_rewrite EXECUTE FUNCTION zoo.note_drop();
ALTER EVENT TRIGGER zoo_rewrite ENABLE ALWAYS;
COMMENT ON EVENT TRIGGER zoo_log_ddl IS 'logs DDL into zoo.ddl_log';
CREATE TABLE zoo.after_event_trigger (id integer);   -- logged once, in the source

-- publications and subscriptions
CREATE PUBLICATION pub_all FOR ALL TABLES WITH (publish = 'insert, update');
CREATE PUBLICATION pub_some FOR TABLE zoo.cons (id, u) WHERE (id > 1), TABLE zoo.trg, TABLE zoo.parted
    WITH (publish_via_partition_root = true);
CREATE PUBLICATION pub_schema FOR TABLES IN SCHEMA s1, TABLE s2.items;
CREATE PUBLICATION pub_empty;
ALTER PUBLICATION pub_empty OWNER TO zoo_owner;
CREATE SUBSCRIPTION sub_off CONNECTION 'host=127.0.0.1 port=1 dbname=nowhere' PUBLICATION pub_all, pub_some
    WITH (connect = false, enabled = false, slot_name = NONE, binary = true, streaming = true);
COMMENT ON PUBLICATION pub_some IS 'column list and row filter';

-- database settings that change how values print and parse: a backup and a
-- restore must not depend on them
DO $$
BEGIN
  EXECUTE format('ALTER DATABASE %I SET datestyle = %L', current_database(), 'SQL, DMY');
  EXECUTE format('ALTER DATABASE %I SET intervalstyle = %L', current_database(), 'sql_standard');
  EXECUTE format('ALTER DATABASE %I SET extra_float_digits = -10', current_database());
  EXECUTE format('ALTER DATABASE %I SET bytea_output = %L', current_database(), 'escape');
  EXECUTE format('ALTER DATABASE %I SET timezone = %L', current_database(), 'Pacific/Chatham');
  EXECUTE format('ALTER DATABASE %I SET xmloption = %L', current_database(), 'document');
  EXECUTE format('ALTER DATABASE %I SET search_path = zoo, s1, public', current_database());
  EXECUTE format('ALTER DATABASE %I SET default_text_search_config = %L', current_database(), 'zoo.mycfg');
  EXECUTE format('ALTER ROLE zoo_writer IN DATABASE %I SET intervalstyle = %L', current_database(), 'iso_8601');
END $$;
-- what the event trigger logged here; a restore must add nothing
UPDATE zoo.ddl_log SET at_restore = false;
