/*
 * init.c (cli): "pgvault init" creates a repository (src/repo/repo.c does
 * the work; docs/repository-format.md describes what it writes).
 *
 * The passphrase of an encrypted repository never comes from argv: it comes
 * from PGVAULT_PASSPHRASE, a file (--passphrase-file, PGVAULT_PASSPHRASE_FILE,
 * the configuration's passphrase-file) or a command's output
 * (--passphrase-command, PGVAULT_PASSPHRASE_COMMAND, passphrase-command).
 */
#include "cli/cli.h"
#include "cli/commands.h"

#include "common/error.h"
#include "common/json.h"
#include "common/mem.h"
#include "common/units.h"
#include "repo/pack.h"
#include "repo/repo.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

static const char help_text[] =
	"pgvault init: create a repository\n\n"
	"Usage:\n  pgvault init --repo URL [OPTIONS]\n\n"
	"Creates an empty repository: a path (/srv/pgvault), file:///path, or later\n"
	"s3://bucket/prefix, azure://container/prefix.  Refuses to touch a location\n"
	"that already holds a repository or anything else.\n\n"
	"Options:\n"
	"  --encrypt                encrypt everything with AES-256-GCM under a random\n"
	"                           master key, wrapped by the passphrase (scrypt)\n"
	"  --compression=CODEC      default compression of new data: zstd[:LEVEL],\n"
	"                           lz4[:LEVEL] or none (default zstd:3, or the\n"
	"                           [repo:NAME] section's compression)\n"
	"  --pack-size=SIZE         target size of pack files (default 16MiB)\n"
	"  --passphrase-file=FILE   read the passphrase from FILE's first line\n"
	"  --passphrase-command=CMD run CMD and use its output as the passphrase\n\n"
	"The passphrase is never taken from the command line; it also comes from\n"
	"PGVAULT_PASSPHRASE, PGVAULT_PASSPHRASE_FILE or PGVAULT_PASSPHRASE_COMMAND.\n"
	"Losing it loses every backup in an encrypted repository: keep a copy\n"
	"somewhere safe, or add a second one with 'pgvault key add'.\n\n"
	"Examples:\n"
	"  pgvault init --repo /srv/pgvault\n"
	"  pgvault init --repo /srv/pgvault --compression lz4 --pack-size 32MiB\n"
	"  PGVAULT_PASSPHRASE_FILE=/etc/pgvault/pass pgvault init --repo /srv/pgvault --encrypt\n"
	"  pgvault init --repo /srv/pgvault --encrypt --passphrase-command 'vault kv get -field=p secret/pgvault'\n";

enum
{
	OPT_ENCRYPT = CLI_OPT_FIRST_COMMAND,
	OPT_COMPRESSION,
	OPT_PACK_SIZE,
};

static void
print_result(const Repo *repo, bool json)
{
	RepoCompress c;
	int level;
	char comp[32];

	repo_compression(repo, &c, &level);
	if (c == REPO_COMPRESS_NONE)
		snprintf(comp, sizeof(comp), "none");
	else
		snprintf(comp, sizeof(comp), "%s:%d", repo_compress_name(c), level);
	if (json)
	{
		json_t *o = json_pack("{s:s, s:s, s:b, s:s, s:I}", "id", repo_id(repo), "url", repo_url(repo),
							  "encrypted", repo_is_encrypted(repo), "compression", comp,
							  "pack_size", (json_int_t) repo_pack_size(repo));

		pv_json_dump(stdout, o);
		json_decref(o);
	}
	else
		printf("created repository %s at %s (%s, %s)\n", repo_id(repo), repo_url(repo),
			   repo_is_encrypted(repo) ? "encrypted" : "not encrypted", comp);
	if (repo_is_encrypted(repo))
		fprintf(stderr, "pgvault init: WARNING: this repository is encrypted. Without the "
				"passphrase its backups cannot be read by anyone, including you: keep the "
				"passphrase safe (and a second one: 'pgvault key add').\n");
}

int
cli_init(int argc, char **argv)
{
	static const struct option longopts[] = {
		CLI_COMMON_LONGOPTS,
		{"encrypt", no_argument, NULL, OPT_ENCRYPT},
		{"compression", required_argument, NULL, OPT_COMPRESSION},
		{"pack-size", required_argument, NULL, OPT_PACK_SIZE},
		{NULL, 0, NULL, 0},
	};
	CliCommon common = {0};
	RepoInitOpts opts = {0};
	CliStorageSettings settings;
	const char *compression = NULL, *pack_size = NULL;
	const char *url = NULL;
	CfgSection *sec = NULL;
	PvConfig *cfg = NULL;
	Repo *repo = NULL;
	char *pass = NULL;
	int opt, rc, status = 0;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":", longopts, NULL)) != -1)
	{
		if (cli_common_option(&common, opt, optarg))
			continue;
		switch (opt)
		{
			case OPT_ENCRYPT:
				opts.encrypt = true;
				break;
			case OPT_COMPRESSION:
				compression = optarg;
				break;
			case OPT_PACK_SIZE:
				pack_size = optarg;
				break;
			default:
				return cli_bad_option("init", argv, opt);
		}
	}
	if (common.help)
	{
		cli_print_help(help_text, false);
		return 0;
	}
	if (optind < argc)
		return cli_usage_error("init", "unexpected argument '%s'", argv[optind]);
	if (!opts.encrypt && (common.passphrase_file != NULL || common.passphrase_command != NULL))
		return cli_usage_error("init", "a passphrase is only used with --encrypt");
	if (pack_size != NULL)
	{
		if (pv_size_parse(&opts.pack_size, pack_size) < 0)
			return cli_usage_error("init", "%s", pv_error_msg());
		if (opts.pack_size < REPO_PACK_SIZE_MIN || opts.pack_size > REPO_PACK_SIZE_MAX)
			return cli_usage_error("init", "pack size '%s' is out of range (4KiB to 1GiB)", pack_size);
	}
	if (compression != NULL)
	{
		RepoCompress c;
		int level;

		if (repo_compress_parse(&c, &level, compression) < 0)
			return cli_usage_error("init", "%s", pv_error_msg());
	}

	if ((rc = cli_setup(&common, &cfg)) < 0)
		return cli_fail(rc);
	if ((rc = cfg_repo_resolve(&sec, &url, cfg, NULL)) < 0)
		goto fail;
	if (compression == NULL && sec != NULL)
		compression = cfg_str(cfg, sec, "compression");
	if (pack_size == NULL && sec != NULL)
		opts.pack_size = cfg_size(cfg, sec, "pack-size");
	opts.compression = compression;
	if (opts.encrypt)
	{
		rc = repo_passphrase_get(&pass, cfg_str_layered(cfg, sec, "passphrase-file"),
								 cfg_str_layered(cfg, sec, "passphrase-command"));
		if (rc == PV_ENOTFOUND)
		{
			rc = pv_error_set(PV_EUSAGE, "--encrypt needs a passphrase");
			pv_error_hint("set PGVAULT_PASSPHRASE, or use --passphrase-file or --passphrase-command");
		}
		if (rc < 0)
			goto fail;
		opts.passphrase = pass;
	}
	cli_storage_settings(&settings, cfg, sec);
	opts.storage = &settings.opts;
	if ((rc = repo_init(&repo, url, &opts)) < 0)
		goto fail;
	print_result(repo, common.json);
	goto done;
fail:
	status = cli_fail(rc);
done:
	if (pass != NULL)
		pv_free_secret_str(pass);
	repo_free(repo);
	cfg_free(cfg);
	return status;
}
