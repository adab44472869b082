/*
 * test_physical.c: the pure parts of physical backup and restore: page
 * checksums (against a page written by PostgreSQL 15), the page check of a
 * base backup, relation file names, the data directory walk and its
 * exclusions (on a scratch directory), backup_label parsing, recovery
 * targets, quoting and the postgresql.auto.conf merge.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/buf.h"
#include "common/error.h"
#include "common/fs.h"
#include "common/mem.h"
#include "pg/physical/checksum.h"
#include "pg/physical/datadir.h"
#include "pg/physical/recovery.h"
#include "pg/physical/server.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BLCKSZ 8192

/* Block 0 of "CREATE TABLE t (x int, y text); INSERT (1,'hello'), (2,'pgvault')" as
   PostgreSQL 15 wrote it (data checksums on): its non-zero bytes. */
static const struct
{
	uint16_t off;
	uint8_t val;
} real_page[] = {
	{4, 0xf0}, {5, 0x18}, {6, 0x7d}, {7, 0x01}, {8, 0xd0}, {9, 0x37}, {12, 0x20}, {14, 0xb0},
	{15, 0x1f}, {17, 0x20}, {18, 0x04}, {19, 0x20}, {24, 0xd8}, {25, 0x9f}, {26, 0x44},
	{28, 0xb0}, {29, 0x9f}, {30, 0x48}, {8112, 0xd5}, {8113, 0x02}, {8120, 0x05}, {8128, 0x02},
	{8130, 0x02}, {8132, 0x02}, {8133, 0x08}, {8134, 0x18}, {8136, 0x02}, {8140, 0x11},
	{8141, 0x70}, {8142, 0x67}, {8143, 0x76}, {8144, 0x61}, {8145, 0x75}, {8146, 0x6c},
	{8147, 0x74}, {8152, 0xd5}, {8153, 0x02}, {8160, 0x05}, {8168, 0x01}, {8170, 0x02},
	{8172, 0x02}, {8173, 0x08}, {8174, 0x18}, {8176, 0x01}, {8180, 0x0d}, {8181, 0x68},
	{8182, 0x65}, {8183, 0x6c}, {8184, 0x6c}, {8185, 0x6f},
};

static void
page_real(unsigned char *page)
{
	memset(page, 0, BLCKSZ);
	for (size_t i = 0; i < PV_ARRAY_LEN(real_page); i++)
		page[real_page[i].off] = real_page[i].val;
}

static void
test_checksum_of_a_real_page(void **state)
{
	unsigned char page[BLCKSZ];

	(void) state;
	page_real(page);
	assert_int_equal(pgphys_page_stored_checksum(page), 0x37d0);
	assert_int_equal(pgphys_page_checksum(page, BLCKSZ, 0), 0x37d0);
	/* the block number is part of the checksum */
	assert_int_not_equal(pgphys_page_checksum(page, BLCKSZ, 1), 0x37d0);
	assert_int_equal(pgphys_page_lsn(page), UINT64_C(0x017d18f0));
}

static void
test_page_verify(void **state)
{
	unsigned char page[BLCKSZ];
	uint64_t lsn;

	(void) state;
	page_real(page);
	lsn = pgphys_page_lsn(page);
	assert_int_equal(pgphys_page_verify(page, BLCKSZ, 0, lsn + 1), PGPHYS_PAGE_OK);
	/* changed since the backup started: WAL replay rewrites it, not checked */
	assert_int_equal(pgphys_page_verify(page, BLCKSZ, 0, lsn), PGPHYS_PAGE_SKIPPED);
	/* one flipped bit in the tuple data */
	page[8182] ^= 0x01;
	assert_int_equal(pgphys_page_verify(page, BLCKSZ, 0, lsn + 1), PGPHYS_PAGE_BAD);
	/* a new page must be all zeros */
	memset(page, 0, BLCKSZ);
	assert_int_equal(pgphys_page_verify(page, BLCKSZ, 7, 1), PGPHYS_PAGE_SKIPPED);
	page[5000] = 1;
	assert_int_equal(pgphys_page_verify(page, BLCKSZ, 7, 1), PGPHYS_PAGE_BAD);
}

static void
test_relation_names(void **state)
{
	uint32_t seg = 99;
	bool init = true;

	(void) state;
	assert_true(pgphys_relation_name("16384", &seg, &init));
	assert_int_equal(seg, 0);
	assert_false(init);
	assert_true(pgphys_relation_name("16384.12", &seg, &init));
	assert_int_equal(seg, 12);
	assert_true(pgphys_relation_name("16384_fsm", NULL, NULL));
	assert_true(pgphys_relation_name("16384_vm.1", NULL, NULL));
	assert_true(pgphys_relation_name("16384_init", &seg, &init));
	assert_true(init);
	static const char *const no[] = {"", "pg_filenode.map", "PG_VERSION", "16384_x", "16384.",
		"16384.1.2", "t3_16384", "16384_fsmx", "pg_internal.init", "12345678901"};
	for (size_t i = 0; i < PV_ARRAY_LEN(no); i++)
		assert_false(pgphys_relation_name(no[i], NULL, NULL));
}

/* ---- the data directory walk ---- */

static char *
mk(const char *root, const char *rel, const char *content)
{
	char *p = pv_fs_path_join(root, rel);
	char *dir = pv_fs_path_dirname(p);

	assert_int_equal(pv_fs_mkdir_p(dir, 0700), 0);
	if (content != NULL)
		assert_int_equal(pv_fs_write_atomic(p, content, strlen(content), 0600), 0);
	else
		assert_int_equal(pv_fs_mkdir_p(p, 0700), 0);
	pv_free(dir);
	return p;
}

static const PgPhysEntry *
find(const PgPhysDirList *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i].name, name) == 0)
			return &l->v[i];
	return NULL;
}

static void
test_datadir_exclusions(void **state)
{
	char tmpl[] = "/tmp/pv-datadir-XXXXXX";
	char *root = mkdtemp(tmpl), *ts, *pgdata, *link;
	PgPhysDirList l;
	const PgPhysEntry *e;

	(void) state;
	assert_non_null(root);
	pgdata = pv_fs_path_join(root, "data");
	ts = pv_fs_path_join(root, "ts");
	pv_free(mk(pgdata, "PG_VERSION", "15\n"));
	pv_free(mk(pgdata, "global/pg_control", "c"));
	pv_free(mk(pgdata, "global/1262", "r"));
	pv_free(mk(pgdata, "global/pg_internal.init", "x"));
	pv_free(mk(pgdata, "postmaster.pid", "1"));
	pv_free(mk(pgdata, "postmaster.opts", "x"));
	pv_free(mk(pgdata, "backup_label", "x"));
	pv_free(mk(pgdata, "postgresql.auto.conf", "x"));
	pv_free(mk(pgdata, "pg_wal/000000010000000000000001", "w"));
	pv_free(mk(pgdata, "pg_wal/archive_status/000000010000000000000001.done", ""));
	pv_free(mk(pgdata, "pg_stat_tmp/global.stat", "s"));
	pv_free(mk(pgdata, "pg_replslot/slot/state", "s"));
	pv_free(mk(pgdata, "pg_xact/0000", "x"));
	pv_free(mk(pgdata, "base/5/1259", "r"));
	pv_free(mk(pgdata, "base/5/1259_fsm", "r"));
	pv_free(mk(pgdata, "base/5/16400", "unlogged main"));
	pv_free(mk(pgdata, "base/5/16400.1", "unlogged main, segment 1"));
	pv_free(mk(pgdata, "base/5/16400_fsm", "unlogged fsm"));
	pv_free(mk(pgdata, "base/5/16400_init", "init"));
	pv_free(mk(pgdata, "base/5/t3_16500", "temp rel"));
	pv_free(mk(pgdata, "base/5/pg_filenode.map", "m"));
	pv_free(mk(pgdata, "base/pgsql_tmp/pgsql_tmp1.0", "t"));
	pv_free(mk(pgdata, "pg_tblspc", NULL));
	pv_free(mk(ts, "PG_15_202209061/5/16600", "in tablespace"));
	pv_free(mk(ts, "PG_14_202107181/5/1", "old major's directory"));
	link = pv_fs_path_join(pgdata, "pg_tblspc/16599");
	assert_int_equal(symlink(ts, link), 0);

	assert_int_equal(pgphys_datadir_scan(&l, pgdata, 15), 0);
	static const char *const kept[] = {"PG_VERSION", "global", "global/pg_control", "global/1262",
		"postgresql.auto.conf", "pg_wal", "pg_wal/archive_status", "pg_stat_tmp", "pg_replslot",
		"pg_xact/0000", "base/5/1259", "base/5/1259_fsm", "base/5/16400_init",
		"base/5/pg_filenode.map", "base", "pg_tblspc", "pg_tblspc/16599",
		"pg_tblspc/16599/PG_15_202209061/5/16600"};
	static const char *const gone[] = {"global/pg_internal.init", "postmaster.pid",
		"postmaster.opts", "backup_label", "pg_wal/000000010000000000000001",
		"pg_wal/archive_status/000000010000000000000001.done", "pg_stat_tmp/global.stat",
		"pg_replslot/slot", "base/5/16400", "base/5/16400.1", "base/5/16400_fsm",
		"base/5/t3_16500", "base/pgsql_tmp", "base/pgsql_tmp/pgsql_tmp1.0",
		"pg_tblspc/16599/PG_14_202107181"};
	for (size_t i = 0; i < PV_ARRAY_LEN(kept); i++)
		if (find(&l, kept[i]) == NULL)
			fail_msg("'%s' should be backed up", kept[i]);
	for (size_t i = 0; i < PV_ARRAY_LEN(gone); i++)
		if (find(&l, gone[i]) != NULL)
			fail_msg("'%s' should be excluded", gone[i]);
	e = find(&l, "pg_tblspc/16599");
	assert_int_equal(e->type, PGPHYS_ENTRY_SYMLINK);
	assert_string_equal(e->link, ts);
	e = find(&l, "base/5/1259");
	assert_true(e->relation);
	e = find(&l, "pg_tblspc/16599/PG_15_202209061/5/16600");
	assert_true(e->relation);
	assert_int_equal(e->size, strlen("in tablespace"));
	assert_false(find(&l, "PG_VERSION")->relation);
	assert_false(find(&l, "base/5/pg_filenode.map")->relation);
	assert_int_equal(find(&l, "pg_wal")->type, PGPHYS_ENTRY_DIR);
	pgphys_datadir_free(&l);

	assert_int_equal(pgphys_datadir_scan(&l, "/nonexistent/pgdata", 15), PV_ENOTFOUND);
	assert_int_equal(pv_fs_remove_tree(root), 0);
	pv_free(pgdata);
	pv_free(ts);
	pv_free(link);
}

static void
test_label_parse(void **state)
{
	uint64_t lsn;
	uint32_t tli;

	(void) state;
	assert_int_equal(pgphys_label_parse("START WAL LOCATION: 0/9000028 (file 000000020000000000000009)\n"
										"CHECKPOINT LOCATION: 0/9000060\nBACKUP METHOD: streamed\n"
										"BACKUP FROM: primary\nSTART TIME: 2026-11-22 02:39:00 UTC\n"
										"LABEL: pgvault backup x\nSTART TIMELINE: 2\n", &lsn, &tli), 0);
	assert_int_equal(lsn, UINT64_C(0x9000028));
	assert_int_equal(tli, 2);
	assert_int_equal(pgphys_label_parse("LABEL: x\n", &lsn, &tli), PV_EPG);
}

/* ---- recovery settings ---- */

static void
test_quoting(void **state)
{
	char *s;

	(void) state;
	s = pgphys_shell_quote("/usr/bin/pgvault");
	assert_string_equal(s, "/usr/bin/pgvault");
	pv_free(s);
	s = pgphys_shell_quote("/srv/my repo/it's");
	assert_string_equal(s, "'/srv/my repo/it'\\''s'");
	pv_free(s);
	s = pgphys_shell_quote("");
	assert_string_equal(s, "''");
	pv_free(s);
	s = pgphys_conf_quote("a 'b' \\c");
	assert_string_equal(s, "'a ''b'' \\\\c'");
	pv_free(s);
}

static void
test_targets(void **state)
{
	PgPhysTarget t = {0};
	char *d;

	(void) state;
	assert_int_equal(pgphys_target_set(&t, PGPHYS_TARGET_TIME, "2026-11-22 14:30:05.25+02:00",
									   "UTC"), 0);
	d = pgphys_target_describe(&t);
	assert_string_equal(d, "time 2026-11-22 12:30:05.250000+00");
	pv_free(d);
	assert_int_equal(pgphys_target_set(&t, PGPHYS_TARGET_LSN, "0/1", NULL), PV_EUSAGE);
	assert_string_equal(pv_error_msg(), "give only one recovery target");
	pgphys_target_clear(&t);
	assert_int_equal(pgphys_target_set(&t, PGPHYS_TARGET_XID, "12x", NULL), PV_EUSAGE);
	assert_string_equal(pv_error_msg(), "invalid transaction id '12x'");
	assert_int_equal(pgphys_target_set(&t, PGPHYS_TARGET_LSN, "1/2/3", NULL), PV_EUSAGE);
	assert_int_equal(pgphys_target_set(&t, PGPHYS_TARGET_TIME, "soon", NULL), PV_EUSAGE);
	assert_int_equal(pgphys_target_set(&t, PGPHYS_TARGET_NAME, "", NULL), PV_EUSAGE);

	t.action = "resume";
	assert_int_equal(pgphys_target_check(&t), PV_EUSAGE);
	t.action = "promote";
	assert_int_equal(pgphys_target_check(&t), PV_EUSAGE);	/* no target */
	assert_int_equal(pgphys_target_set(&t, PGPHYS_TARGET_NAME, "before_upgrade", NULL), 0);
	assert_int_equal(pgphys_target_check(&t), 0);
	t.exclusive = true;
	assert_int_equal(pgphys_target_check(&t), PV_EUSAGE);
	t.exclusive = false;
	t.timeline = "0";
	assert_int_equal(pgphys_target_check(&t), PV_EUSAGE);
	t.timeline = "3";
	assert_int_equal(pgphys_target_check(&t), 0);
	pgphys_target_clear(&t);
}

static void
test_reachable(void **state)
{
	json_t *md = json_pack("{s:I, s:s, s:s}", "backup_end_time_us", (json_int_t) 1000000000,
						   "stop_lsn", "0/5000100", "next_xid", "800");
	PgPhysTarget t = {0};
	char *why;

	(void) state;
	t.kind = PGPHYS_TARGET_TIME;
	t.time = 1000000000;
	assert_true(pgphys_target_reachable(&t, md, &why));
	t.time = 999999999;
	assert_false(pgphys_target_reachable(&t, md, &why));
	assert_string_equal(why, "it became consistent at 1970-01-01 00:16:40.000000+00");
	pv_free(why);
	t.kind = PGPHYS_TARGET_LSN;
	t.lsn = UINT64_C(0x5000100);
	assert_true(pgphys_target_reachable(&t, md, NULL));
	t.lsn--;
	assert_false(pgphys_target_reachable(&t, md, NULL));
	t.kind = PGPHYS_TARGET_XID;
	t.xid = 800;
	assert_true(pgphys_target_reachable(&t, md, NULL));
	t.xid = 799;
	assert_false(pgphys_target_reachable(&t, md, NULL));
	t.kind = PGPHYS_TARGET_NAME;
	assert_true(pgphys_target_reachable(&t, md, NULL));
	/* 32-bit xids compare circularly: 5 is after 4294967000 once they wrapped */
	json_object_set_new(md, "next_xid", json_string("4294967000"));
	t.kind = PGPHYS_TARGET_XID;
	t.xid = 5;
	assert_true(pgphys_target_reachable(&t, md, NULL));
	json_decref(md);
}

static void
test_settings_and_merge(void **state)
{
	PgPhysTarget t = {0};
	Buf block = PV_BUF_INIT, out = PV_BUF_INIT;
	const char *old =
		"# Do not edit this file manually!\n"
		"archive_command = 'pgvault archive-push %p'\n"
		"work_mem = '64MB'\n"
		"restore_command = 'cp /old/%f %p'\n"
		"recovery_target_time = '2020-01-01'\n"
		"archive_mode = 'on'";

	(void) state;
	assert_int_equal(pgphys_target_set(&t, PGPHYS_TARGET_LSN, "0/3000000", NULL), 0);
	t.action = "promote";
	t.exclusive = true;
	pgphys_recovery_settings(&block, &t, "/bin/pgvault archive-get --source 'it''s' %f %p", true,
							 "20261122T023900Z-a1b2c3");
	assert_string_equal(buf_cstr(&block),
						"# recovery settings written by pgvault restore of backup 20261122T023900Z-a1b2c3\n"
						"restore_command = '/bin/pgvault archive-get --source ''it''''s'' %f %p'\n"
						"recovery_target_lsn = '0/3000000'\n"
						"recovery_target_action = 'promote'\n"
						"recovery_target_inclusive = 'false'\n"
						"archive_mode = 'off'\n");
	pgphys_auto_conf_merge(&out, old, buf_cstr(&block));
	assert_string_equal(buf_cstr(&out),
						"# Do not edit this file manually!\n"
						"archive_command = 'pgvault archive-push %p'\n"
						"work_mem = '64MB'\n"
						"# recovery settings written by pgvault restore of backup 20261122T023900Z-a1b2c3\n"
						"restore_command = '/bin/pgvault archive-get --source ''it''''s'' %f %p'\n"
						"recovery_target_lsn = '0/3000000'\n"
						"recovery_target_action = 'promote'\n"
						"recovery_target_inclusive = 'false'\n"
						"archive_mode = 'off'\n");
	/* without archive_off the source's archive_mode stays */
	buf_reset(&block);
	buf_reset(&out);
	pgphys_target_clear(&t);
	pgphys_recovery_settings(&block, &t, "x", false, "id");
	pgphys_auto_conf_merge(&out, old, buf_cstr(&block));
	assert_non_null(strstr(buf_cstr(&out), "archive_mode = 'on'\n"));
	assert_null(strstr(buf_cstr(&out), "recovery_target_time"));
	assert_null(strstr(buf_cstr(&out), "cp /old"));
	buf_free(&block);
	buf_free(&out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_checksum_of_a_real_page),
		cmocka_unit_test(test_page_verify),
		cmocka_unit_test(test_relation_names),
		cmocka_unit_test(test_datadir_exclusions),
		cmocka_unit_test(test_label_parse),
		cmocka_unit_test(test_quoting),
		cmocka_unit_test(test_targets),
		cmocka_unit_test(test_reachable),
		cmocka_unit_test(test_settings_and_merge),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
