/*
 * test_physical_extconf.c: the restore's rewrite of configuration files
 * kept from outside the data directory (src/pg/physical/extconf.h): include
 * paths follow the restored copies (relative ones resolved from the
 * original file, paths into the original data directory moved to the
 * restored one), the settings that name the original cluster are commented
 * out or, with --config-dir, pointed at the restored files; everything
 * else is kept byte for byte.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/mem.h"
#include "pg/physical/extconf.h"

#include <jansson.h>
#include <string.h>

#define ETC "/etc/postgresql/15/main"
#define OLD "/var/lib/postgresql/15/main"
#define NEW "/srv/restored"

static const char conf[] =
	"# PostgreSQL configuration, Debian style\n"
	"data_directory = '" OLD "'\t\t# use data in another directory\n"
	"hba_file = '" ETC "/pg_hba.conf'\n"
	"IDENT_FILE '" ETC "/pg_ident.conf'\n"
	"external_pid_file = '/var/run/postgresql/15-main.pid'\n"
	"port = 5432 # (change requires restart)\n"
	"application_name = 'it''s #not a comment'\n"
	"include_dir = 'conf.d'\n"
	"include_if_exists '/nowhere/absent.conf'\n"
	"include '" OLD "/extra.conf'\n"
	"   \n"
	"work_mem = 4MB";

static json_t *
map_new(const char *root)
{
	json_t *m = json_object();
	char buf[256];

	snprintf(buf, sizeof(buf), "%s/conf.d", root);
	json_object_set_new(m, ETC "/conf.d", json_string(buf));
	snprintf(buf, sizeof(buf), "%s/postgresql.conf", root);
	json_object_set_new(m, ETC "/postgresql.conf", json_string(buf));
	return m;
}

static void
test_rewrite_into_data_directory(void **state)
{
	json_t *map = map_new(NEW);
	char *out = pgphys_extconf_rewrite(conf, ETC "/postgresql.conf", map, OLD, NEW, NULL, NULL);

	assert_string_equal(out,
		"# PostgreSQL configuration, Debian style\n"
		"#data_directory = '" OLD "'\t\t# use data in another directory"
		"\t# pgvault restore: named the original cluster's\n"
		"#hba_file = '" ETC "/pg_hba.conf'\t# pgvault restore: named the original cluster's\n"
		"#IDENT_FILE '" ETC "/pg_ident.conf'\t# pgvault restore: named the original cluster's\n"
		"#external_pid_file = '/var/run/postgresql/15-main.pid'"
		"\t# pgvault restore: named the original cluster's\n"
		"port = 5432 # (change requires restart)\n"
		"application_name = 'it''s #not a comment'\n"
		"#include_dir = 'conf.d'\n"
		"include_dir = '" NEW "/conf.d'\t# pgvault restore: the restored copy\n"
		"include_if_exists '/nowhere/absent.conf'\n"
		"#include '" OLD "/extra.conf'\n"
		"include = '" NEW "/extra.conf'\t# pgvault restore: the restored copy\n"
		"   \n"
		"work_mem = 4MB");
	pv_free(out);
	json_decref(map);
}

static void
test_rewrite_into_config_dir(void **state)
{
	json_t *map = map_new("/etc/pg/copy");
	json_t *by = json_pack("{s:s, s:s}", "hba_file", "/etc/pg/copy/pg_hba.conf",
						   "ident_file", "/etc/pg/copy/pg_ident.conf");
	char *out = pgphys_extconf_rewrite(conf, ETC "/postgresql.conf", map, OLD, NEW,
									   "/etc/pg/copy", by);

	assert_non_null(strstr(out, "\ndata_directory = '" NEW "'\t# pgvault restore: the restored "
						   "cluster's\n"));
	assert_non_null(strstr(out, "\nhba_file = '/etc/pg/copy/pg_hba.conf'\t"));
	assert_non_null(strstr(out, "\nIDENT_FILE = '/etc/pg/copy/pg_ident.conf'\t"));
	assert_non_null(strstr(out, "\n#external_pid_file = '/var/run/postgresql/15-main.pid'\t"));
	assert_non_null(strstr(out, "\ninclude_dir = '/etc/pg/copy/conf.d'\t"));
	/* nothing left that names the original configuration directory, uncommented */
	for (const char *p = out; (p = strstr(p, ETC)) != NULL; p++)
	{
		const char *bol = p;

		while (bol > out && bol[-1] != '\n')
			bol--;
		assert_int_equal(bol[0], '#');
	}
	pv_free(out);
	json_decref(map);
	json_decref(by);
}

static void
test_rewrite_quotes_and_relative_includes(void **state)
{
	json_t *map = json_pack("{s:s}", ETC "/conf.d/it's.conf", NEW "/conf.d/it's.conf");
	char *out = pgphys_extconf_rewrite("include 'it''s.conf' # relative to conf.d\n",
									   ETC "/conf.d/00-base.conf", map, OLD, NEW, NULL, NULL);

	assert_string_equal(out, "#include 'it''s.conf' # relative to conf.d\n"
						"include = '" NEW "/conf.d/it''s.conf'\t# pgvault restore: the restored copy\n");
	pv_free(out);
	json_decref(map);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rewrite_into_data_directory),
		cmocka_unit_test(test_rewrite_into_config_dir),
		cmocka_unit_test(test_rewrite_quotes_and_relative_includes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
