/*
 * fuzz_logical_toc.c: the table of contents of a logical backup's dump
 * (the text of `pg_restore -l` on the archive read from the repository),
 * as a selective restore filters it (pg/logical/toc.h): pgtoc_filter,
 * pgtoc_table_post_data, pgtoc_event_triggers and pgtoc_subtract, with a
 * fixed selection of tables.  The input is the list; its second half is
 * also the list subtracted from it.
 */
#include "fuzz_common.h"

#include "common/buf.h"
#include "pg/logical/toc.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_setup();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const idx[] = {"orders_pkey", "orders_customer_idx"};
	static const char *const seq[] = {"orders_id_seq"};
	static const PgTocObject pubs[] = {{NULL, "pub1", "alice"}};
	static const PgTocObject stats[] = {{"public", "orders_stats", NULL}};
	static const PgTocTable tables[] = {
		{"public", "orders", "alice", idx, 2, seq, 1, pubs, 1, stats, 1, false},
		{"sales", "v_orders", NULL, NULL, 0, NULL, 0, NULL, 0, NULL, 0, true},
		{"we ird", "Tab\"le", NULL, NULL, 0, NULL, 0, NULL, 0, NULL, 0, false},
	};
	static const PgTocFk fks[] = {{"public", "items", "items_order_fk", "bob"}};
	char *list = pv_strndup((const char *) data, size);
	const char *half = list + strlen(list) / 2;
	Buf out = PV_BUF_INIT;

	(void) pgtoc_filter(&out, list, tables, PV_ARRAY_LEN(tables), fks, PV_ARRAY_LEN(fks));
	buf_reset(&out);
	for (size_t i = 0; i < PV_ARRAY_LEN(tables); i++)
	{
		(void) pgtoc_table_post_data(&out, list, &tables[i]);
		buf_reset(&out);
	}
	(void) pgtoc_event_triggers(&out, list);
	buf_reset(&out);
	pgtoc_subtract(&out, list, half);
	pv_error_clear();
	buf_free(&out);
	pv_free(list);
	return 0;
}
