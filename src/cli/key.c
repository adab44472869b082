/*
 * key.c (cli): "pgvault key list|add|remove": the passphrases of an
 * encrypted repository.  Each key file wraps the same master key, so adding
 * or removing one never re-encrypts data (src/repo/repo.c, repo_key_*).
 *
 * Passphrases never come from argv.  The current one opens the repository
 * as every command does (PGVAULT_PASSPHRASE, --passphrase-file,
 * --passphrase-command, their environment and configuration forms); the
 * new one for "add" comes from PGVAULT_NEW_PASSPHRASE or
 * --new-passphrase-file.
 */
#include "cli/cli.h"
#include "cli/commands.h"

#include "common/error.h"
#include "common/fs.h"
#include "common/json.h"
#include "common/mem.h"
#include "common/timeutil.h"
#include "repo/repo.h"

#include <jansson.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char help_text[] =
	"pgvault key: manage the passphrases of an encrypted repository\n\n"
	"Usage:\n"
	"  pgvault key list [OPTIONS]\n"
	"  pgvault key add [--new-passphrase-file=FILE] [OPTIONS]\n"
	"  pgvault key remove KEY-ID [OPTIONS]\n\n"
	"Every key wraps the same master key, so adding or removing one re-encrypts\n"
	"nothing.  The repository is opened with a current passphrase (from\n"
	"PGVAULT_PASSPHRASE, --passphrase-file, --passphrase-command or their\n"
	"PGVAULT_PASSPHRASE_FILE / PGVAULT_PASSPHRASE_COMMAND forms).  'add' takes the\n"
	"new passphrase from PGVAULT_NEW_PASSPHRASE or --new-passphrase-file.  'remove'\n"
	"takes a key id (or a unique prefix of it, as 'list' shows it) and\n"
	"refuses to remove the last key or the one used to open the repository.\n\n"
	"Options:\n"
	"  --passphrase-file=FILE      file holding a current passphrase\n"
	"  --passphrase-command=CMD    command printing a current passphrase\n"
	"  --new-passphrase-file=FILE  file holding the passphrase to add\n\n"
	"Examples:\n"
	"  pgvault key list --repo /srv/pgvault\n"
	"  pgvault key add --repo /srv/pgvault --new-passphrase-file /root/new.pass\n"
	"  PGVAULT_PASSPHRASE_FILE=/root/new.pass pgvault key remove 3f2a9c1e --repo /srv/pgvault\n";

enum
{
	OPT_NEW_PASSPHRASE_FILE = CLI_OPT_FIRST_COMMAND,
};

/* The new passphrase: $PGVAULT_NEW_PASSPHRASE, else the file's first line. */
static int
new_passphrase_get(char **out, const char *file)
{
	const char *env = getenv("PGVAULT_NEW_PASSPHRASE");
	Buf b = PV_BUF_INIT;
	size_t len;
	int rc;

	*out = NULL;
	if (env != NULL && env[0] != '\0')
	{
		*out = pv_strdup(env);
		return 0;
	}
	if (file == NULL)
	{
		rc = pv_error_set(PV_EUSAGE, "no new passphrase given");
		pv_error_hint("set PGVAULT_NEW_PASSPHRASE or use --new-passphrase-file");
		return rc;
	}
	if ((rc = pv_fs_read_file(file, &b)) < 0)
		return pv_error_prefix(rc, "cannot read the new passphrase");
	len = strcspn((const char *) b.data, "\r\n");	/* stops at a NUL byte too */
	if (len == 0 || (len < b.len && b.data[len] == '\0'))
	{
		rc = pv_error_set(PV_ECONFIG, "new passphrase file '%s' is empty or holds a NUL byte", file);
		buf_free_secret(&b);
		return rc;
	}
	*out = pv_strndup((const char *) b.data, len);
	buf_free_secret(&b);
	return 0;
}

typedef struct ListCtx
{
	bool json;
	json_t *arr;
} ListCtx;

static int
list_one(const RepoKeyInfo *info, void *payload)
{
	ListCtx *ctx = payload;
	char when[PV_TIME_FORMAT_MAX];

	pv_time_format_local(when, sizeof(when), info->mtime * PV_USEC_PER_SEC);
	if (ctx->json)
		json_array_append_new(ctx->arr, json_pack("{s:s, s:s, s:b}", "id", info->id, "created", when,
												  "current", info->current));
	else
		printf("%s %-16.16s  %s\n", info->current ? "*" : " ", info->id, when);
	return 0;
}

int
cli_key(int argc, char **argv)
{
	static const struct option longopts[] = {
		CLI_COMMON_LONGOPTS,
		{"new-passphrase-file", required_argument, NULL, OPT_NEW_PASSPHRASE_FILE},
		{NULL, 0, NULL, 0},
	};
	CliCommon common = {0};
	const char *new_file = NULL;
	const char *action = NULL, *key_id = NULL;
	PvConfig *cfg = NULL;
	Repo *repo = NULL;
	char *newpass = NULL;
	int opt, rc = 0, status = 0;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":", longopts, NULL)) != -1)
	{
		if (cli_common_option(&common, opt, optarg))
			continue;
		switch (opt)
		{
			case OPT_NEW_PASSPHRASE_FILE:
				new_file = optarg;
				break;
			default:
				return cli_bad_option("key", argv, opt);
		}
	}
	if (common.help)
	{
		cli_print_help(help_text, false);
		return 0;
	}
	if (optind >= argc)
		return cli_usage_error("key", "missing action: list, add or remove");
	action = argv[optind++];
	if (strcmp(action, "remove") == 0)
	{
		if (optind >= argc)
			return cli_usage_error("key", "'key remove' needs the id of the key to remove");
		key_id = argv[optind++];
	}
	else if (strcmp(action, "list") != 0 && strcmp(action, "add") != 0)
		return cli_usage_error("key", "unknown action '%s': use list, add or remove", action);
	if (optind < argc)
		return cli_usage_error("key", "unexpected argument '%s'", argv[optind]);
	if (new_file != NULL && strcmp(action, "add") != 0)
		return cli_usage_error("key", "--new-passphrase-file is only for 'key add'");

	if ((rc = cli_setup(&common, &cfg)) < 0)
		return cli_fail(rc);
	/* Read the new passphrase before spending time on the old one. */
	if (strcmp(action, "add") == 0 && (rc = new_passphrase_get(&newpass, new_file)) < 0)
		goto fail;
	if ((rc = cli_repo_open(&repo, cfg, &common)) < 0)
		goto fail;
	if (!repo_is_encrypted(repo))
	{
		rc = pv_error_set(PV_EUSAGE, "repository '%s' is not encrypted: it has no keys", repo_url(repo));
		goto fail;
	}

	if (strcmp(action, "list") == 0)
	{
		ListCtx ctx = {common.json, common.json ? json_array() : NULL};

		rc = repo_key_list(repo, list_one, &ctx);
		if (rc == 0 && common.json)
			pv_json_dump(stdout, ctx.arr);
		json_decref(ctx.arr);
	}
	else if (strcmp(action, "add") == 0)
	{
		char id[REPO_HEX_ID_LEN + 1];

		if ((rc = repo_key_add(repo, newpass, NULL, id)) == 0)
		{
			if (common.json)
			{
				json_t *o = json_pack("{s:s}", "id", id);

				pv_json_dump(stdout, o);
				json_decref(o);
			}
			else
				printf("added key %s\n", id);
		}
	}
	else
	{
		if ((rc = repo_key_remove(repo, key_id)) == 0 && !common.json)
			printf("removed key %s\n", key_id);
	}
	if (rc < 0)
		goto fail;
	goto done;
fail:
	status = cli_fail(rc);
done:
	if (newpass != NULL)
		pv_free_secret_str(newpass);
	repo_free(repo);
	cfg_free(cfg);
	return status;
}
