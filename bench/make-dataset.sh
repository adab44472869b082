#!/usr/bin/env bash
# make-dataset.sh: build the standard benchmark database.
#
#   bench/make-dataset.sh SIZE [--port PORT] [--host HOST] [--dbname NAME] [--force]
#
# SIZE is the target database size (150MB, 1.5GB, ...; powers of 1024).  By
# default the database "bench" is built in a scratch cluster under
# bench/work/dataset-SIZE/ (kept, stopped when done; run.sh starts it again).
# With --port (or PGHOST/PGPORT in the environment) it is built in that
# existing server instead, as database "pgvault_bench" (--dbname to change).
#
# What is in it (shares of SIZE, roughly):
#   25%  pgbench tables (pgbench -i, server-side generation)
#   15%  customers: names, emails, addresses, free text of varied length,
#        a uuid, timestamptz, numeric, boolean
#   15%  orders: foreign key to customers, status, numeric totals, a jsonb
#        shipping document, an occasional free-text note
#   15%  documents: nested jsonb (text body, tags, attributes, ratings)
#   30%  events: append-mostly, timestamp-ordered, with a bytea payload
#        (bench_append_events(n) appends more, for incremental runs)
# The text is made of pseudo-words drawn with a skewed distribution, the
# bytea of md5 output: a zstd -3 compressed pg_dump is 2x to 4x smaller than
# the plain dump (the script measures and prints the ratio).  Everything is
# generated server-side in SQL and is deterministic (setseed, serial plans):
# the same SIZE gives the same rows.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SIZE=
PORT_OPT=
HOST_OPT=
DBNAME=
FORCE=0
bench_parse_args port=PORT_OPT host=HOST_OPT dbname=DBNAME 'force!FORCE' -- "$@"
[ "$BENCH_NPOS" = 1 ] || usage 2   # exactly one SIZE
TARGET=$(size_to_bytes "$SIZE")
[ "$TARGET" -ge $((50 * 1024 * 1024)) ] || die "SIZE must be at least 50MB"

# Bytes per row on disk, indexes included (measured on PostgreSQL 15)
PGBENCH_BYTES_PER_SCALE=15700000
CUSTOMER_ROW=300
ORDER_ROW=218
DOCUMENT_ROW=930
EVENT_ROW=150

EMPTY_DB=8000000  # catalogs of an empty database
TARGET_DATA=$(( TARGET - EMPTY_DB ))
SCALE=$(( (TARGET_DATA * 25 / 100 + PGBENCH_BYTES_PER_SCALE / 2) / PGBENCH_BYTES_PER_SCALE ))
[ "$SCALE" -ge 1 ] || SCALE=1
NCUST=$(( TARGET_DATA * 15 / 100 / CUSTOMER_ROW ))
NORDERS=$(( TARGET_DATA * 15 / 100 / ORDER_ROW ))
NDOCS=$(( TARGET_DATA * 15 / 100 / DOCUMENT_ROW ))
NEVENTS=$(( TARGET_DATA * 30 / 100 / EVENT_ROW ))

if [ -n "$PORT_OPT" ] || [ -n "$HOST_OPT" ] || [ -n "${PGPORT:-}" ] || [ -n "${PGHOST:-}" ]; then
	MODE=existing
	[ -z "$PORT_OPT" ] || export PGPORT=$PORT_OPT
	[ -z "$HOST_OPT" ] || export PGHOST=$HOST_OPT
	DB=${DBNAME:-pgvault_bench}
	OUT_DIR=$BENCH_DIR/existing-${PGHOST:-local}-${PGPORT:-5432}-$DB
	log "using the existing server at ${PGHOST:-local}:${PGPORT:-5432} (--port, or PGHOST/PGPORT are set)"
	scalar postgres "SELECT 1" >/dev/null ||
		die "cannot connect to ${PGHOST:-the local server} port ${PGPORT:-5432}"
	mkdir -p "$OUT_DIR"
else
	MODE=scratch
	DB=${DBNAME:-bench}
	OUT_DIR=$(dataset_dir "$SIZE")
	if [ -f "$OUT_DIR/dataset.json" ] && [ "$FORCE" != 1 ]; then
		log "dataset $SIZE already exists in $OUT_DIR (use --force to rebuild)"
		exit 0
	fi
	[ ! -f "$OUT_DIR/data/postmaster.pid" ] || cluster_stop "$OUT_DIR"
	rm -rf "$OUT_DIR"
	trap stop_started_cluster EXIT
	log "creating a scratch cluster in $OUT_DIR"
	cluster_init "$OUT_DIR"
	cluster_start "$OUT_DIR"
fi

if [ "$(scalar postgres "SELECT count(*) FROM pg_database WHERE datname = '$DB'")" != 0 ]; then
	[ "$FORCE" = 1 ] || die "database $DB already exists (use --force to replace it)"
	"$BINDIR/dropdb" "$DB"
fi
"$BINDIR/createdb" "$DB"

START=$(now)
log "target $(human_bytes "$TARGET"): pgbench scale $SCALE, $NCUST customers, $NORDERS orders, $NDOCS documents, $NEVENTS events"
log "loading pgbench tables"
"$BINDIR/pgbench" -i -I dtGvp -s "$SCALE" -q "$DB" >"$OUT_DIR/pgbench.log" 2>&1 ||
	{ cat "$OUT_DIR/pgbench.log" >&2; die "pgbench -i failed"; }

log "loading customers, orders, documents, events"
psql_q -d "$DB" -v ncust="$NCUST" -v norders="$NORDERS" -v ndocs="$NDOCS" \
	-v nevents="$NEVENTS" >/dev/null <<-'SQL'
	SET max_parallel_workers_per_gather = 0;  -- serial plans: random() in a fixed order
	SET jit = off;
	SET synchronous_commit = off;

	-- rtext(n): n pseudo-words, frequent ones more often (a skewed draw from 4096)
	CREATE FUNCTION rtext(n int) RETURNS text LANGUAGE sql VOLATILE PARALLEL UNSAFE AS $$
	    SELECT string_agg(translate(substr(md5(k::text), 1, 2 + k % 9),
	                                '0123456789', 'eainorstlu'), ' ')
	    FROM (SELECT floor(4096 * random() ^ 2)::int AS k FROM generate_series(1, n)) s
	$$;

	CREATE TABLE customers (
	    id          bigint PRIMARY KEY,
	    name        text NOT NULL,
	    email       text NOT NULL,
	    api_key     uuid NOT NULL,
	    address     text,
	    bio         text,
	    created_at  timestamptz NOT NULL,
	    balance     numeric(12,2) NOT NULL,
	    active      boolean NOT NULL
	);
	SELECT setseed(0.11);
	INSERT INTO customers
	SELECT i,
	       initcap(rtext(1)) || ' ' || initcap(rtext(1)),
	       'c' || i || '.' || rtext(1) || '@example.' || (ARRAY['com','org','net','io','de'])[1 + i % 5],
	       md5('key' || i)::uuid,
	       (1 + i % 997) || ' ' || initcap(rtext(2)) || ' Street, ' || lpad((i % 99991)::text, 5, '0'),
	       CASE WHEN i % 7 = 0 THEN NULL ELSE rtext(2 + (random() * 40)::int) END,
	       timestamptz '2015-01-01 00:00+00' + i * interval '97 seconds',
	       round((random() * 10000 - 1000)::numeric, 2),
	       i % 13 <> 0
	FROM generate_series(1, :ncust) i;

	CREATE TABLE orders (
	    id           bigint PRIMARY KEY,
	    customer_id  bigint NOT NULL REFERENCES customers,
	    placed_at    timestamptz NOT NULL,
	    status       text NOT NULL,
	    total        numeric(12,2) NOT NULL,
	    shipping     jsonb NOT NULL,
	    note         text
	);
	SELECT setseed(0.22);
	INSERT INTO orders
	SELECT i,
	       1 + floor(random() * :ncust)::bigint,
	       timestamptz '2019-01-01 00:00+00' + i * interval '31 seconds',
	       (ARRAY['new','paid','packed','shipped','delivered','returned'])[1 + floor(random() * 6)::int],
	       round((random() * 900 + 1)::numeric, 2),
	       jsonb_build_object(
	           'carrier', (ARRAY['ups','dhl','fedex','usps','post'])[1 + i % 5],
	           'weight_g', floor(random() * 20000)::int,
	           'express', random() < 0.2,
	           'tracking', upper(substr(md5(i::text), 1, 16))),
	       CASE WHEN random() < 0.1 THEN rtext(3 + (random() * 12)::int) END
	FROM generate_series(1, :norders) i;
	CREATE INDEX orders_customer_idx ON orders (customer_id);

	CREATE TABLE documents (
	    id          bigint PRIMARY KEY,
	    kind        text NOT NULL,
	    doc         jsonb NOT NULL,
	    updated_at  timestamptz NOT NULL
	);
	SELECT setseed(0.33);
	INSERT INTO documents
	SELECT i,
	       (ARRAY['article','product','review','ticket'])[1 + i % 4],
	       jsonb_build_object(
	           'title', initcap(rtext(3 + i % 6)),
	           'etag', md5('doc' || i),
	           'body', rtext(20 + (random() * 120)::int),
	           'tags', to_jsonb(ARRAY[rtext(1), rtext(1), rtext(1)]),
	           'attrs', jsonb_build_object('lang', (ARRAY['en','de','fr','es'])[1 + i % 4],
	                                       'version', 1 + i % 9,
	                                       'score', round(random()::numeric, 4)),
	           'ratings', to_jsonb(ARRAY[floor(random() * 5)::int + 1,
	                                     floor(random() * 5)::int + 1])),
	       timestamptz '2022-01-01 00:00+00' + i * interval '7 minutes'
	FROM generate_series(1, :ndocs) i;

	-- events: append-mostly, in time order, opaque payloads
	CREATE TABLE events (
	    id           bigint PRIMARY KEY,
	    at           timestamptz NOT NULL,
	    source       text NOT NULL,
	    kind         text NOT NULL,
	    customer_id  bigint,
	    payload      bytea NOT NULL
	);
	CREATE FUNCTION bench_append_events(n bigint) RETURNS bigint LANGUAGE sql AS $$
	    INSERT INTO events
	    SELECT i,
	           timestamptz '2023-06-01 00:00+00' + i * interval '250 milliseconds',
	           (ARRAY['web','ios','android','api'])[1 + i % 4],
	           (ARRAY['view','click','cart','checkout','login','logout','search'])[1 + (i * 13 + i / 7) % 7],
	           CASE WHEN i % 5 <> 0 THEN 1 + (i * 7919) % 1000000 END,
	           decode(md5(i::text) || md5((i + 1)::text) ||
	                  CASE WHEN i % 3 = 0 THEN md5((i * 3)::text) || md5((i * 5)::text) ||
	                                           md5((i * 7)::text) ELSE '' END ||
	                  CASE WHEN i % 10 = 0 THEN md5((i * 11)::text) || md5((i * 13)::text) ELSE '' END, 'hex')
	    FROM generate_series(coalesce((SELECT max(id) FROM events), 0) + 1,
	                         coalesce((SELECT max(id) FROM events), 0) + n) i
	    RETURNING 1
	$$;
	SELECT count(*) FROM (SELECT bench_append_events(:nevents)) s;
	CREATE INDEX events_at_brin ON events USING brin (at);

	DROP FUNCTION rtext(int);
	VACUUM ANALYZE;
SQL

LOADED=$(now)
DBSIZE=$(scalar "$DB" "SELECT pg_database_size(current_database())")
log "loaded in $("$PY" -c "print('%.0f' % ($LOADED - $START))") s; measuring pg_dump | zstd -3"
FIFO=$(mktemp -u "$OUT_DIR/dump-count.XXXXXX")
mkfifo "$FIFO"
wc -c <"$FIFO" >"$FIFO.plain" &
"$BINDIR/pg_dump" -Fp "$DB" | tee "$FIFO" | zstd -3 -T1 -q -c | wc -c >"$FIFO.zst"
wait
PLAIN=$(tr -d ' ' <"$FIFO.plain")
ZST=$(tr -d ' ' <"$FIFO.zst")
rm -f "$FIFO" "$FIFO.plain" "$FIFO.zst"

echo
echo "Benchmark dataset: database $DB ($MODE${PGPORT:+, port $PGPORT})"
"$BINDIR/psql" -X -q -d "$DB" -c "
	SELECT c.relname AS table, to_char(c.reltuples, 'FM999,999,999') AS rows,
	       pg_size_pretty(pg_total_relation_size(c.oid)) AS size
	FROM pg_class c
	WHERE c.relkind = 'r' AND c.relnamespace = 'public'::regnamespace
	ORDER BY pg_total_relation_size(c.oid) DESC"
"$PY" - "$SIZE" "$TARGET" "$DBSIZE" "$PLAIN" "$ZST" "$SCALE" "$OUT_DIR/dataset.json" "$DB" "$MODE" <<-'PY'
	import json, sys
	size, target, dbsize, plain, zst, scale, out, db, mode = sys.argv[1:]
	target, dbsize, plain, zst = int(target), int(dbsize), int(plain), int(zst)
	ratio = plain / zst
	mib = lambda n: "%.1f MiB" % (n / 1048576)
	print("database size       %s (target %s, %+.0f%%)" % (mib(dbsize), mib(target), 100 * (dbsize - target) / target))
	print("pg_dump plain       %s" % mib(plain))
	print("pg_dump | zstd -3   %s  ratio %.2fx %s" % (mib(zst), ratio,
	      "(in the 2x-4x target)" if 2 <= ratio <= 4 else "(OUTSIDE the 2x-4x target)"))
	json.dump({"size": size, "target_bytes": target, "database": db, "mode": mode,
	           "database_bytes": dbsize, "pgbench_scale": int(scale),
	           "dump_plain_bytes": plain, "dump_zstd3_bytes": zst,
	           "zstd3_ratio": round(ratio, 3)}, open(out, "w"), indent=2)
	print("written             %s" % out)
PY
if [ "$MODE" = scratch ]; then
	cluster_stop "$OUT_DIR"
	log "scratch cluster stopped; bench/run.sh $SIZE starts it again"
fi
