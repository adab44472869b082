/*
 * fuzz_physical.c: the texts a physical backup keeps in the repository and
 * a restore parses again.  The first input byte picks the parser:
 *   0: backup_label (stored in the manifest's metadata), with
 *      pgphys_label_parse;
 *   1, 2: a configuration file saved outside the data directory (an extconf
 *      item), rewritten for the restored cluster with pgphys_extconf_rewrite
 *      (2: with a separate configuration directory);
 *   3: the manifest's metadata (JSON) as a point-in-time restore checks its
 *      target against it, with pgphys_target_reachable;
 *   4: tablespace_map (stored in the manifest's metadata), rewritten for
 *      --tablespace-map with pgphys_tablespace_map_rewrite.
 * The file list itself is the item list, which fuzz_item covers.
 */
#include "fuzz_common.h"

#include "pg/physical/extconf.h"
#include "pg/physical/recovery.h"
#include "pg/physical/restore.h"
#include "pg/physical/server.h"

static json_t *map, *by_setting;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_setup();
	map = json_pack("{s:s, s:s, s:s}", "/etc/postgresql/15/main/conf.d", "/restore/conf/conf.d",
					"/etc/postgresql/15/main/pg_hba.conf", "/restore/conf/pg_hba.conf",
					"/etc/postgresql/15/main/extra.conf", "/restore/conf/extra.conf");
	by_setting = json_pack("{s:s, s:s}", "hba_file", "/restore/conf/pg_hba.conf",
						   "ident_file", "/restore/conf/pg_ident.conf");
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text;

	if (size == 0)
		return 0;
	text = pv_strndup((const char *) data + 1, size - 1);
	switch (data[0] % 5)
	{
		case 4:
			{
				static const PgPhysTablespaceMap ts[] = {{"16385", "/restore/ts1"}, {"1", "/restore/ts2"},
				{"", "/restore/empty"}};
				PgPhysRestoreOpts o = {.ts_map = ts, .nts_map = PV_ARRAY_LEN(ts)};

				pv_free(pgphys_tablespace_map_rewrite(&o, text));
				break;
			}
		case 3:
			{
				static const PgPhysTarget targets[] = {
					{.kind = PGPHYS_TARGET_TIME, .time = INT64_C(1795000000000000)},
					{.kind = PGPHYS_TARGET_TIME, .time = INT64_MIN},
					{.kind = PGPHYS_TARGET_LSN, .lsn = UINT64_C(0x16B374D848)},
					{.kind = PGPHYS_TARGET_XID, .xid = 4000000000u},
					{.kind = PGPHYS_TARGET_XID, .xid = UINT64_C(0x100000010)},
				};
				json_t *md = json_loadb(text, strlen(text), 0, NULL);

				for (size_t i = 0; i < PV_ARRAY_LEN(targets); i++)
				{
					char *why = NULL;

					(void) pgphys_target_reachable(&targets[i], md, &why);
					pv_free(why);
				}
				json_decref(md);
				break;
			}
		case 0:
			{
				uint64_t lsn;
				uint32_t tli;

				(void) pgphys_label_parse(text, &lsn, &tli);
				break;
			}
		default:
			{
				char *out = pgphys_extconf_rewrite(text, "/etc/postgresql/15/main/postgresql.conf", map,
												   "/var/lib/postgresql/15/main", "/restore/data",
												   data[0] % 5 == 2 ? "/restore/conf" : NULL, by_setting);

				pv_free(out);
			}
	}
	pv_error_clear();
	pv_free(text);
	return 0;
}
