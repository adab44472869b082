/*
 * test_config.c: the configuration file, environment and precedence rules.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/error.h"
#include "common/mem.h"
#include "config/config.h"

static void
test_config_defaults_without_file(void **state)
{
	PvConfig *cfg = NULL;

	unsetenv("PGVAULT_REPO");
	assert_int_equal(cfg_load_string(&cfg, "", "empty.conf"), PV_OK);
	assert_string_equal(cfg_str(cfg, NULL, "log-level"), "info");
	assert_null(cfg_str(cfg, NULL, "repo"));
	assert_int_equal(cfg_duration(cfg, NULL, "long-transaction-threshold"), 600);
	assert_int_equal(cfg_value(cfg, NULL, "log-level")->origin, CFG_ORIGIN_DEFAULT);
	cfg_free(cfg);
}

static void
test_config_sections_and_types(void **state)
{
	const char *text =
		"# comment\n"
		"[global]\n"
		"repo = main\n"
		"log_level = debug\n"
		"\n"
		"[source:prod]\n"
		"conninfo = host=/tmp port=5433 dbname=app password=sekrit\n"
		"pgdata = /var/lib/postgresql/15/main\n"
		"repos = main\n"
		"\n"
		"[repo:main]\n"
		"url = /srv/pgvault\n"
		"pack-size = 32MiB\n";
	PvConfig *cfg = NULL;
	CfgSection *src = NULL, *repo = NULL;
	const char *url = NULL;

	unsetenv("PGVAULT_REPO");
	unsetenv("PGVAULT_LOG_LEVEL");
	assert_int_equal(cfg_load_string(&cfg, text, "t.conf"), PV_OK);
	assert_string_equal(cfg_str(cfg, NULL, "log-level"), "debug");
	assert_int_equal(cfg_value(cfg, NULL, "log-level")->line, 4);
	assert_int_equal(cfg->nsources, 1);
	assert_int_equal(cfg_source_pick(&src, cfg, NULL), PV_OK);
	assert_non_null(src);
	assert_string_equal(src->name, "prod");
	assert_int_equal(cfg_repo_resolve(&repo, &url, cfg, src), PV_OK);
	assert_non_null(repo);
	assert_string_equal(url, "/srv/pgvault");
	assert_int_equal(cfg_size(cfg, repo, "pack-size"), 32u << 20);
	assert_string_equal(cfg_str(cfg, repo, "compression"), "zstd:3");
	cfg_free(cfg);
}

static void
test_config_unknown_key_names_file_and_line(void **state)
{
	PvConfig *cfg = NULL;

	assert_int_equal(cfg_load_string(&cfg, "[global]\nrepo = /x\n\nbogus = 1\n", "f.conf"), PV_ECONFIG);
	assert_null(cfg);
	assert_string_equal(pv_error_msg(), "f.conf:4: unknown key 'bogus' in section [global]");
}

static void
test_config_bad_values(void **state)
{
	PvConfig *cfg = NULL;

	assert_int_equal(cfg_load_string(&cfg, "[global]\nlog-level = loud\n", "f.conf"), PV_ECONFIG);
	assert_non_null(strstr(pv_error_msg(), "f.conf:2: invalid value 'loud' for 'log-level'"));
	assert_int_equal(cfg_load_string(&cfg, "[global]\njobs = -3\n", "f.conf"), PV_ECONFIG);
	assert_non_null(strstr(pv_error_msg(), "f.conf:2:"));
	assert_int_equal(cfg_load_string(&cfg, "[repo:a]\nurl=/x\npack-size = lots\n", "f.conf"), PV_ECONFIG);
	assert_non_null(strstr(pv_error_msg(), "f.conf:3: invalid value for 'pack-size'"));
	assert_int_equal(cfg_load_string(&cfg, "[source:a]\nconninfo = host='unterminated\n", "f.conf"),
					 PV_ECONFIG);
	assert_int_equal(cfg_load_string(&cfg, "[sorce:a]\n", "f.conf"), PV_ECONFIG);
	assert_string_equal(pv_error_msg(), "f.conf:1: unknown section [sorce:a]");
	assert_int_equal(cfg_load_string(&cfg, "[global]\nthis line has no equals sign\n", "f.conf"), PV_ECONFIG);
	assert_string_equal(pv_error_msg(), "f.conf:2: syntax error");
	assert_int_equal(cfg_load_string(&cfg, "[repo:a]\ncompression = lz4\n", "f.conf"), PV_ECONFIG);
	assert_non_null(strstr(pv_error_msg(), "[repo:a] has no 'url'"));
	assert_int_equal(cfg_load_string(&cfg, "[source:s]\nrepos = nowhere\n", "f.conf"), PV_ECONFIG);
	assert_non_null(strstr(pv_error_msg(), "repository 'nowhere'"));
}

static void
test_config_precedence(void **state)
{
	PvConfig *cfg = NULL;
	CfgSection *repo = NULL;
	const char *url = NULL;

	setenv("PGVAULT_REPO", "/from/env", 1);
	assert_int_equal(cfg_load_string(&cfg, "[global]\nrepo = /from/file\n", "p.conf"), PV_OK);
	assert_string_equal(cfg_str(cfg, NULL, "repo"), "/from/env");
	assert_int_equal(cfg_value(cfg, NULL, "repo")->origin, CFG_ORIGIN_ENV);
	assert_int_equal(cfg_set(cfg, &cfg->global, "repo", "/from/cli", CFG_ORIGIN_CLI), PV_OK);
	assert_int_equal(cfg_repo_resolve(&repo, &url, cfg, NULL), PV_OK);
	assert_null(repo);
	assert_string_equal(url, "/from/cli");
	cfg_free(cfg);

	setenv("PGVAULT_LOG_LEVEL", "chatty", 1);
	assert_int_equal(cfg_load_string(&cfg, "", "p.conf"), PV_ECONFIG);
	assert_non_null(strstr(pv_error_msg(), "environment variable PGVAULT_LOG_LEVEL"));
	unsetenv("PGVAULT_LOG_LEVEL");
	unsetenv("PGVAULT_REPO");
}

static void
test_config_no_repo_is_a_usage_error(void **state)
{
	PvConfig *cfg = NULL;
	CfgSection *repo = NULL;
	const char *url = NULL;

	unsetenv("PGVAULT_REPO");
	assert_int_equal(cfg_load_string(&cfg, "", "p.conf"), PV_OK);
	assert_int_equal(cfg_repo_resolve(&repo, &url, cfg, NULL), PV_EUSAGE);
	assert_string_equal(pv_error_msg(), "no repository given");
	assert_non_null(strstr(pv_error_hint_msg(), "PGVAULT_REPO"));
	cfg_free(cfg);
}

static void
test_config_several_sources_need_a_name(void **state)
{
	PvConfig *cfg = NULL;
	CfgSection *src = NULL;

	assert_int_equal(cfg_load_string(&cfg, "[source:a]\npgdata=/a\n[source:b]\npgdata=/b\n", "s.conf"), PV_OK);
	assert_int_equal(cfg_source_pick(&src, cfg, NULL), PV_EUSAGE);
	assert_int_equal(cfg_source_pick(&src, cfg, "b"), PV_OK);
	assert_string_equal(cfg_str(cfg, src, "pgdata"), "/b");
	assert_int_equal(cfg_source_pick(&src, cfg, "c"), PV_EUSAGE);
	assert_string_equal(pv_error_msg(), "no source named 'c' in the configuration");
	cfg_free(cfg);
}

static void
test_config_print_masks_password(void **state)
{
	PvConfig *cfg = NULL;
	char *out = NULL;
	size_t len = 0;
	FILE *fp;

	assert_int_equal(cfg_load_string(&cfg, "[source:a]\nconninfo = host=db password=topsecret user=u\n",
									 "m.conf"), PV_OK);
	fp = open_memstream(&out, &len);
	cfg_print(cfg, fp);
	fclose(fp);
	assert_null(strstr(out, "topsecret"));
	assert_non_null(strstr(out, "password='********'"));
	assert_non_null(strstr(out, "m.conf:2"));
	free(out);
	cfg_free(cfg);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_defaults_without_file),
		cmocka_unit_test(test_config_sections_and_types),
		cmocka_unit_test(test_config_unknown_key_names_file_and_line),
		cmocka_unit_test(test_config_bad_values),
		cmocka_unit_test(test_config_precedence),
		cmocka_unit_test(test_config_no_repo_is_a_usage_error),
		cmocka_unit_test(test_config_several_sources_need_a_name),
		cmocka_unit_test(test_config_print_masks_password),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
