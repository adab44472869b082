/*
 * test_logical_toc.c: choosing a table's entries in `pg_restore -l` output
 * (pg/logical/toc.h), on listings taken from PostgreSQL 15's pg_restore:
 * names with spaces and quotes, quoted tags of COMMENT/ACL entries, tables
 * whose name is a prefix of another's, foreign keys of other tables, views.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/buf.h"
#include "pg/logical/toc.h"

#include <string.h>

static const char listing[] =
	";\n"
	"; Archive created at 2026-11-22 03:27:08 UTC\n"
	";     dbname: toct\n"
	";\n"
	"6; 2615 16635 SCHEMA - Odd Schema postgres\n"
	"216; 1259 16637 TABLE Odd Schema My \"T\" x postgres\n"
	"3350; 0 0 COMMENT Odd Schema TABLE \"My \"\"T\"\" x\" postgres\n"
	"3351; 0 0 COMMENT Odd Schema COLUMN \"My \"\"T\"\" x\".\"V a\" postgres\n"
	"3352; 0 0 ACL Odd Schema TABLE \"My \"\"T\"\" x\" postgres\n"
	"215; 1259 16636 SEQUENCE Odd Schema My \"T\" x_id_seq postgres\n"
	"3354; 0 0 SEQUENCE OWNED BY Odd Schema My \"T\" x_id_seq postgres\n"
	"3355; 0 0 COMMENT Odd Schema SEQUENCE \"My \"\"T\"\" x_id_seq\" postgres\n"
	"3198; 2604 16640 DEFAULT Odd Schema My \"T\" x id postgres\n"
	"3201; 2606 16644 CONSTRAINT Odd Schema My \"T\" x My \"T\" x_pkey postgres\n"
	"3357; 0 0 COMMENT Odd Schema CONSTRAINT \"My \"\"T\"\" x_pkey\" ON \"My \"\"T\"\" x\" postgres\n"
	"3199; 1259 16645 INDEX Odd Schema I x postgres\n"
	"3358; 0 0 COMMENT Odd Schema INDEX \"I x\" postgres\n"
	"218; 1259 16610 TABLE public c app owner\n"
	"219; 1259 16611 TABLE public c d app owner\n"
	"3376; 0 0 COMMENT public TABLE c app owner\n"
	"3377; 0 0 COMMENT public COLUMN c.t_id app owner\n"
	"3378; 0 0 ACL public TABLE c app owner\n"
	"217; 1259 16609 SEQUENCE public c_id_seq app owner\n"
	"3216; 2606 16614 CONSTRAINT public c c_pkey app owner\n"
	"3217; 1259 16620 INDEX public c_t_id_idx app owner\n"
	"3365; 2618 16623 RULE public c r app owner\n"
	"3222; 2620 16621 TRIGGER public c tg app owner\n"
	"3221; 2606 16615 FK CONSTRAINT public c c_t_id_fkey app owner\n"
	"3223; 2606 16616 FK CONSTRAINT public other other_c_fkey app owner\n"
	"3224; 2606 16617 FK CONSTRAINT public other other_x_fkey app owner\n"
	"3366; 0 16610 ROW SECURITY public c app owner\n"
	"3367; 3256 16622 POLICY public c p app owner\n"
	"220; 1259 16650 VIEW public c_view app owner\n"
	"3369; 0 0 COMMENT public VIEW c_view app owner\n"
	"221; 1259 16651 MATERIALIZED VIEW public c_mv app owner\n"
	"3370; 1259 16652 INDEX public c_mv_idx app owner\n"
	"3371; 0 0 MATERIALIZED VIEW DATA public c_mv app owner\n"
	"222; 1259 16653 TABLE public pp1 app owner\n"
	"3211; 0 0 TABLE ATTACH public pp1 app owner\n"
	"3219; 1259 16631 INDEX public pp1_a_idx app owner\n"
	"3220; 0 0 INDEX ATTACH public pp1_a_idx app owner\n";

/* From PostgreSQL 15's pg_restore -l of test_logical_zoo's database (trimmed). */
static const char zoo_listing[] =
	"253; 1259 18230 TABLE zoo trg tab owner\n"
	"254; 1259 18231 TABLE zoo trg2 tab owner\n"
	"4533; 3381 18318 STATISTICS zoo heap2_expr postgres\n"
	"4534; 3381 18317 STATISTICS stats trg_stats stat owner\n"
	"4761; 0 0 COMMENT stats STATISTICS trg_stats stat owner\n"
	"4698; 6104 18455 PUBLICATION - pub_some postgres\n"
	"4764; 0 0 COMMENT - PUBLICATION pub_some postgres\n"
	"4702; 6106 18457 PUBLICATION TABLE zoo pub_some trg pub owner\n"
	"4703; 6106 18458 PUBLICATION TABLE zoo pub_some trg2 pub owner\n"
	"4704; 6106 18459 PUBLICATION TABLE zoo pub all trg pub owner\n"
	"4705; 6237 18461 PUBLICATION TABLES IN SCHEMA zoo pub_schema zoo postgres\n"
	"4433; 3466 18448 EVENT TRIGGER - zoo_log_ddl postgres\n"
	"4765; 0 0 COMMENT - EVENT TRIGGER zoo_log_ddl postgres\n"
	"4434; 3466 18449 EVENT TRIGGER - zoo note drop postgres\n"
	"4435; 0 0 COMMENT - TABLE EVENT TRIGGER postgres\n";

/* The dump ids kept, as "id,id,...". */
static void
kept_ids(const Buf *b, char *out, size_t outsz)
{
	const char *p = (const char *) b->data;

	out[0] = '\0';
	while (p != NULL && *p)
	{
		size_t n = strcspn(p, ";");

		if (out[0])
			strncat(out, ",", outsz - strlen(out) - 1);
		strncat(out, p, n < outsz - strlen(out) - 1 ? n : outsz - strlen(out) - 1);
		p = strchr(p, '\n');
		p = p ? p + 1 : NULL;
	}
}

static void
test_quoted_names(void **state)
{
	const char *idx[] = {"I x"};
	const char *seq[] = {"My \"T\" x_id_seq"};
	PgTocTable t = {.schema = "Odd Schema", .name = "My \"T\" x", .owner = "postgres",
					.indexes = idx, .nindexes = 1, .sequences = seq, .nsequences = 1};
	Buf out = PV_BUF_INIT;
	char ids[512];

	(void) state;
	assert_int_equal(pgtoc_filter(&out, listing, &t, 1, NULL, 0), 12);
	kept_ids(&out, ids, sizeof(ids));
	assert_string_equal(ids, "216,3350,3351,3352,215,3354,3355,3198,3201,3357,3199,3358");
	buf_free(&out);
}

static void
test_prefix_names_and_owner(void **state)
{
	const char *idx[] = {"c_t_id_idx"};
	const char *seq[] = {"c_id_seq"};
	PgTocTable t = {.schema = "public", .name = "c", .owner = "app owner",
					.indexes = idx, .nindexes = 1, .sequences = seq, .nsequences = 1};
	Buf out = PV_BUF_INIT;
	char ids[512];

	(void) state;
	/* table "c d" is not c; the owner (with a space) is matched whole; other tables' foreign keys stay out */
	assert_int_equal(pgtoc_filter(&out, listing, &t, 1, NULL, 0), 12);
	kept_ids(&out, ids, sizeof(ids));
	assert_string_equal(ids, "218,3376,3377,3378,217,3216,3217,3365,3222,3221,3366,3367");
	buf_free(&out);
}

static void
test_unknown_owner_prefix_match(void **state)
{
	PgTocTable t = {.schema = "public", .name = "pp1"};
	const char *idx[] = {"pp1_a_idx"};
	Buf out = PV_BUF_INIT;
	char ids[512];

	(void) state;
	t.indexes = idx;
	t.nindexes = 1;
	assert_int_equal(pgtoc_filter(&out, listing, &t, 1, NULL, 0), 4);
	kept_ids(&out, ids, sizeof(ids));
	assert_string_equal(ids, "222,3211,3219,3220");
	buf_free(&out);
}

static void
test_foreign_keys_and_views(void **state)
{
	const char *mvidx[] = {"c_mv_idx"};
	PgTocTable views[] = {
		{.schema = "public", .name = "c_view", .owner = "app owner", .view = true},
		{.schema = "public", .name = "c_mv", .owner = "app owner", .indexes = mvidx, .nindexes = 1, .view = true},
	};
	PgTocFk fk = {.schema = "public", .table = "other", .name = "other_c_fkey", .owner = "app owner"};
	Buf out = PV_BUF_INIT;
	char ids[512];

	(void) state;
	/* views: VIEW and MATERIALIZED VIEW (not its DATA), their comments and indexes; one foreign key */
	assert_int_equal(pgtoc_filter(&out, listing, views, 2, &fk, 1), 5);
	kept_ids(&out, ids, sizeof(ids));
	assert_string_equal(ids, "3223,220,3369,221,3370");
	buf_free(&out);
}

/*
 * A --clean drops a table's extended statistics and its membership of
 * publications with it: both come back with the table (statistics may
 * live in another schema and have another owner; "pub all" has a space).
 */
static void
test_statistics_and_publications(void **state)
{
	const PgTocObject pubs[] = {{.name = "pub_some", .owner = "pub owner"}, {.name = "pub all", .owner = "pub owner"}};
	const PgTocObject stats[] = {{.schema = "stats", .name = "trg_stats", .owner = "stat owner"}};
	PgTocTable t = {.schema = "zoo", .name = "trg", .owner = "tab owner", .publications = pubs, .npublications = 2,
					.statistics = stats, .nstatistics = 1};
	Buf out = PV_BUF_INIT;
	char ids[512];

	(void) state;
	assert_int_equal(pgtoc_filter(&out, zoo_listing, &t, 1, NULL, 0), 5);
	kept_ids(&out, ids, sizeof(ids));
	assert_string_equal(ids, "253,4534,4761,4702,4704");
	buf_free(&out);
}

/* Event triggers (and comments on them) are taken out of post-data, to be made last. */
static void
test_event_triggers(void **state)
{
	Buf out = PV_BUF_INIT, rest = PV_BUF_INIT;
	char ids[512];

	(void) state;
	assert_int_equal(pgtoc_event_triggers(&out, zoo_listing), 3);
	kept_ids(&out, ids, sizeof(ids));
	assert_string_equal(ids, "4433,4765,4434");
	pgtoc_subtract(&rest, zoo_listing, (const char *) out.data);
	assert_null(strstr((const char *) rest.data, "EVENT TRIGGER -"));
	assert_non_null(strstr((const char *) rest.data, "4435; 0 0 COMMENT - TABLE EVENT TRIGGER postgres\n"));
	buf_free(&out);
	buf_free(&rest);
}

/* Index attachments apart (run one at a time), then what may need them (foreign keys, comments on constraints). */
static void
test_index_attach_split(void **state)
{
	Buf attach = PV_BUF_INIT, after = PV_BUF_INIT;
	char ids[512];

	(void) state;
	assert_int_equal(pgtoc_index_attach_split(&attach, &after, listing), 1);
	kept_ids(&attach, ids, sizeof(ids));
	assert_string_equal(ids, "3220");
	kept_ids(&after, ids, sizeof(ids));
	assert_string_equal(ids, "3357,3221,3223,3224");
	buf_reset(&attach);
	buf_reset(&after);
	assert_int_equal(pgtoc_index_attach_split(&attach, &after, zoo_listing), 0);
	assert_int_equal(attach.len, 0);
	buf_free(&attach);
	buf_free(&after);
}

/* found by fuzz_logical_toc: a dump id of 20 digits overflowed (UB); such a line has no id */
static void
test_subtract_huge_id(void **state)
{
	Buf out = PV_BUF_INIT;

	(void) state;
	pgtoc_subtract(&out, "99999999999999999999; 0 0 TABLE public t o\n7; 0 0 TABLE public u o\n",
				   "7; 0 0 TABLE public u o\n");
	assert_string_equal(buf_cstr(&out), "99999999999999999999; 0 0 TABLE public t o\n");
	buf_free(&out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_quoted_names),
		cmocka_unit_test(test_prefix_names_and_owner),
		cmocka_unit_test(test_unknown_owner_prefix_match),
		cmocka_unit_test(test_foreign_keys_and_views),
		cmocka_unit_test(test_statistics_and_publications),
		cmocka_unit_test(test_event_triggers),
		cmocka_unit_test(test_index_attach_split),
		cmocka_unit_test(test_subtract_huge_id),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
