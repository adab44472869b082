/*
 * restore.c (cli): "pgvault restore".  The backup's kind picks the restore
 * function (restore_file today; the logical and physical kinds add theirs
 * to restore_dispatch).  A kind this build does not know is refused by
 * name.
 *
 * File backups come back into a directory (--target-dir) or, one item, into
 * a file or standard output (--item NAME -o FILE|-).  Every chunk is checked
 * by the reader and every item's SHA-256 is compared before the file takes
 * its final name: a file is written as "<name>.tmp.<hex>" and renamed only
 * when complete and checked, so a failed restore leaves no output file
 * (standard output cannot be taken back: the exit status says it failed).
 * Item names come from the repository and are not trusted: absolute names
 * and ".." segments are refused, so nothing is written outside the target.
 */
#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/logical.h"
#include "cli/physical.h"

#include "common/error.h"
#include "common/fs.h"
#include "common/json.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/timeutil.h"
#include "common/units.h"
#include "repo/lock.h"
#include "repo/manifest.h"
#include "repo/reader.h"
#include "repo/repo.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char help_text[] =
	"pgvault restore: bring a backup back\n\n"
	"Usage:\n"
	"  pgvault restore ID --target-db NAME [OPTIONS]     a logical backup, into a database\n"
	"  pgvault restore ID --pgdata DIR [--target-time T]  a physical backup, with PITR\n"
	"  pgvault restore ID --target-dir DIR [--item NAME...] [OPTIONS]\n"
	"  pgvault restore ID --item NAME -o FILE|- [OPTIONS]\n\n"
	"'pgvault restore --target-db x --help' and 'pgvault restore --pgdata x --help'\n"
	"explain the database kinds (and their --dry-run, and --delta for a data\n"
	"directory that holds the cluster already).  The rest of this page is about\n"
	"file backups.\n\n"
	"ID is a backup id, a unique prefix of one, or 'latest'.  For backups of kind\n"
	"'file', every item (or each --item) is written under DIR with its name in\n"
	"the backup, or one item to FILE ('-': standard output).  Every chunk and\n"
	"every item's SHA-256 are checked before a file takes its final name: a\n"
	"failed restore leaves no output file.\n\n"
	"Options:\n"
	"  --target-dir=DIR         restore into DIR (created if missing)\n"
	"  --item=NAME              only this item (repeat for more)\n"
	"  -o, --output=FILE        write the one --item to FILE, '-' for stdout\n"
	"  --force                  overwrite files that exist\n"
	"  -j, --jobs=N             chunks fetched ahead in parallel (default 4)\n\n"
	"Examples:\n"
	"  pgvault restore latest --target-db shop              a dropped database, back\n"
	"  pgvault restore latest --target-db shop -t public.orders      one table\n"
	"  pgvault restore latest --database shop --target-db shop_test  to test it\n"
	"  pgvault restore latest --pgdata /srv/pitr --target-time '2026-11-22 14:30' \\\n"
	"                 --target-action promote --start          before the bad DELETE\n"
	"  pgvault restore latest --target-dir /tmp/restored\n"
	"  pgvault restore 20261122T023900Z-a1b2c3 --item etc/postgresql/15/main/pg_hba.conf -o -\n"
	"  pgvault restore latest --item dumpall.sql -o - | psql -f - postgres\n";

enum
{
	OPT_TARGET = CLI_OPT_FIRST_COMMAND,
	OPT_ITEM,
	OPT_FORCE,
};

typedef struct RestoreArgs
{
	CliCommon common;
	const char *id;
	const char *target;
	const char *output;
	const char **items;
	size_t nitems;
	bool force;
	int jobs;
} RestoreArgs;

typedef struct RestoreTotals
{
	uint64_t items;
	uint64_t bytes;
} RestoreTotals;

#define COPY_BUF_SIZE (1024 * 1024)

/* A name from the repository that is safe to put under a directory. */
static int
name_check(const char *name)
{
	const char *seg = name;

	if (name[0] == '\0' || name[0] == '/')
		return pv_error_set(PV_ECORRUPT, "item name '%s' is not a relative path", name);
	while (seg != NULL)
	{
		const char *end = strchr(seg, '/');
		size_t len = end ? (size_t) (end - seg) : strlen(seg);

		if (len == 0 || (len == 2 && strncmp(seg, "..", 2) == 0) ||
			(len == 1 && seg[0] == '.'))
			return pv_error_set(PV_ECORRUPT, "item name '%s' would leave the target directory",
								name);
		seg = end ? end + 1 : NULL;
	}
	return 0;
}

static bool
item_wanted(const RestoreArgs *a, const RepoItem *item)
{
	if (a->nitems == 0)
		return true;
	for (size_t i = 0; i < a->nitems; i++)
		if (strcmp(a->items[i], item->name) == 0)
			return true;
	return false;
}

/* Stream an item's checked bytes to fd. */
static int
item_copy(Repo *repo, const RepoManifest *m, const RepoItem *item, int fd, const RestoreArgs *a,
		  const char *dest)
{
	RepoReader *r = NULL;
	unsigned char *buf = pv_malloc(COPY_BUF_SIZE);
	RepoReaderOpts ro = {.readahead = a->jobs > 0 ? a->jobs : 0};
	int rc;

	if ((rc = repo_reader_open(&r, repo, m, item, &ro)) < 0)
		goto done;
	for (;;)
	{
		size_t n;

		if ((rc = repo_reader_read(r, buf, COPY_BUF_SIZE, &n)) < 0 || n == 0)
			break;
		if ((rc = pv_fs_write_all(fd, buf, n)) < 0)
		{
			rc = pv_error_prefix(rc, "cannot write '%s'", dest);
			break;
		}
	}
done:
	repo_reader_free(r);
	pv_free(buf);
	return rc;
}

/* Write an item to path: temp file, checked, fsync, mode and time, rename. */
static int
item_to_file(Repo *repo, const RepoManifest *m, const RepoItem *item, const char *path,
			 const RestoreArgs *a)
{
	char *tmp = NULL;
	int fd = -1, rc;

	if (!a->force && access(path, F_OK) == 0)
	{
		rc = pv_error_set(PV_EEXISTS, "'%s' exists", path);
		pv_error_hint("restore somewhere else, or add --force to overwrite");
		return rc;
	}
	if ((rc = pv_fs_tmp_open(&tmp, &fd, path, 0600)) < 0)
		return rc;
	if ((rc = item_copy(repo, m, item, fd, a, path)) < 0)
		goto done;
	if (fsync(fd) < 0)
	{
		rc = pv_error_errno(PV_EIO, errno, "cannot fsync '%s'", tmp);
		goto done;
	}
	if (item->has_mode)
	{
		struct timespec times[2] = {{.tv_sec = item->mtime}, {.tv_sec = item->mtime}};

		if (fchmod(fd, (mode_t) (item->mode & 07777)) < 0 || futimens(fd, times) < 0)
		{
			rc = pv_error_errno(PV_EIO, errno, "cannot set mode and time of '%s'", path);
			goto done;
		}
	}
	if (close(fd) < 0)
	{
		fd = -1;
		rc = pv_error_errno(PV_EIO, errno, "cannot write '%s'", path);
		goto done;
	}
	fd = -1;
	if (rename(tmp, path) < 0)
	{
		rc = pv_error_errno(PV_EIO, errno, "cannot rename '%s' to '%s'", tmp, path);
		goto done;
	}
	rc = pv_fs_fsync_parent(path);
done:
	if (fd >= 0)
		close(fd);
	if (rc < 0)
		unlink(tmp);
	pv_free(tmp);
	return rc;
}

/* One item under the target directory. */
static int
item_restore(Repo *repo, const RepoManifest *m, const RepoItem *item, const RestoreArgs *a)
{
	char *path = NULL, *dir = NULL;
	int rc;

	if ((rc = name_check(item->name)) < 0)
		return rc;
	path = pv_fs_path_join(a->target, item->name);
	dir = pv_fs_path_dirname(path);
	if ((rc = pv_fs_mkdir_p(dir, 0700)) < 0)
		goto done;
	if (strcmp(item->type, "dir") == 0)
		rc = pv_fs_mkdir_p(path, item->has_mode ? (mode_t) (item->mode & 07777) : 0700);
	else if (strcmp(item->type, "symlink") == 0)
	{
		if (a->force)
			unlink(path);
		if (symlink(item->link ? item->link : "", path) < 0)
			rc = pv_error_errno(errno == EEXIST ? PV_EEXISTS : PV_EIO, errno,
								"cannot create symbolic link '%s'", path);
	}
	else
		rc = item_to_file(repo, m, item, path, a);
done:
	pv_free(path);
	pv_free(dir);
	return rc;
}

/* Kind "file": every wanted item into the target, or the one item to -o. */
static int
restore_file(Repo *repo, const RepoManifest *m, const RestoreArgs *a, RestoreTotals *t)
{
	RepoItemIter *it = NULL;
	const RepoItem *item;
	bool *found = pv_calloc(a->nitems + 1, sizeof(bool));
	int rc;

	if ((rc = repo_item_iter_new(&it, repo, m)) < 0)
		goto done;
	while ((rc = repo_item_iter_next(it, &item)) == 0 && item != NULL)
	{
		if (!item_wanted(a, item))
			continue;
		for (size_t i = 0; i < a->nitems; i++)
			found[i] = found[i] || strcmp(a->items[i], item->name) == 0;
		if (a->output != NULL && strcmp(a->output, "-") == 0)
		{
			rc = item_copy(repo, m, item, STDOUT_FILENO, a, "standard output");
			if (rc == 0 && fflush(stdout) != 0)
				rc = pv_error_errno(PV_EIO, errno, "cannot write standard output");
		}
		else if (a->output != NULL)
			rc = item_to_file(repo, m, item, a->output, a);
		else
			rc = item_restore(repo, m, item, a);
		if (rc < 0)
		{
			rc = pv_error_prefix(rc, "item '%s'", item->name);
			goto done;
		}
		t->items++;
		t->bytes += item->size;
	}
	if (rc < 0)
		goto done;
	for (size_t i = 0; i < a->nitems; i++)
		if (!found[i])
		{
			rc = pv_error_set(PV_ENOTFOUND, "backup %s has no item '%s'", repo_manifest_id(m),
							  a->items[i]);
			goto done;
		}
done:
	repo_item_iter_free(it);
	pv_free(found);
	return rc;
}

static int
restore_dispatch(Repo *repo, const RepoManifest *m, const RestoreArgs *a, RestoreTotals *t)
{
	const char *kind = repo_manifest_kind(m);

	if (strcmp(kind, "file") == 0)
		return restore_file(repo, m, a, t);
	return pv_error_set(PV_EUSAGE, "backup %s is of kind '%s', which this version of pgvault "
						"cannot restore", repo_manifest_id(m), kind);
}

static int
args_parse(RestoreArgs *a, int argc, char **argv)
{
	static const struct option longopts[] = {
		CLI_COMMON_LONGOPTS,
		{"target-dir", required_argument, NULL, OPT_TARGET},
		{"item", required_argument, NULL, OPT_ITEM},
		{"output", required_argument, NULL, 'o'},
		{"force", no_argument, NULL, OPT_FORCE},
		{"jobs", required_argument, NULL, 'j'},
		{NULL, 0, NULL, 0},
	};
	const char *jobs = NULL;
	int opt, rc;

	a->items = pv_calloc((size_t) argc + 1, sizeof(char *));
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":o:j:", longopts, NULL)) != -1)
	{
		if (cli_common_option(&a->common, opt, optarg))
			continue;
		switch (opt)
		{
			case OPT_TARGET:
				a->target = optarg;
				break;
			case OPT_ITEM:
				a->items[a->nitems++] = optarg;
				break;
			case 'o':
				a->output = optarg;
				break;
			case OPT_FORCE:
				a->force = true;
				break;
			case 'j':
				jobs = optarg;
				break;
			default:
				return cli_bad_option("restore", argv, opt);
		}
	}
	if (a->common.help)
	{
		cli_print_help(help_text, false);
		return 0;
	}
	if ((rc = cli_backup_arg(&a->id, "restore", argc, argv)) >= 0)
		return rc;
	if (jobs != NULL && !cli_int_parse(&a->jobs, jobs, 1, 256))
		return cli_usage_error("restore", "invalid number of jobs '%s' (1 to 256)", jobs);
	if (a->output != NULL && a->target != NULL)
		return cli_usage_error("restore", "give --target-dir or -o, not both");
	if (a->output != NULL && a->nitems != 1)
		return cli_usage_error("restore", "-o writes one item: name it with --item NAME");
	if (a->output == NULL && a->target == NULL)
		return cli_usage_error("restore", "where to? give --target-dir DIR, or --item NAME "
							   "-o FILE");
	return -1;
}

static void
summary_print(const RestoreArgs *a, const char *id, const RestoreTotals *t, int64_t ms)
{
	bool to_stdout = a->output != NULL && strcmp(a->output, "-") == 0;
	char size[32], took[32];

	if (a->common.json && !to_stdout)
	{
		json_t *j = json_object();

		json_object_set_new(j, "id", json_string(id));
		json_object_set_new(j, "items", json_integer((json_int_t) t->items));
		json_object_set_new(j, "bytes", json_integer((json_int_t) t->bytes));
		json_object_set_new(j, "target", json_string(a->target ? a->target : a->output));
		json_object_set_new(j, "duration_ms", json_integer(ms));
		pv_json_dump(stdout, j);
		json_decref(j);
		return;
	}
	pv_size_format(size, sizeof(size), t->bytes);
	pv_elapsed_format(took, sizeof(took), ms);
	if (to_stdout)
		pv_log_info("restored %llu item%s (%s) of backup %s to standard output in %s",
					(unsigned long long) t->items, t->items == 1 ? "" : "s", size, id, took);
	else
		printf("restored %llu item%s (%s) of backup %s into '%s' in %s\n",
			   (unsigned long long) t->items, t->items == 1 ? "" : "s", size, id,
			   a->target ? a->target : a->output, took);
}

int
cli_restore(int argc, char **argv)
{
	RestoreArgs a = {0};
	RestoreTotals t = {0};
	PvConfig *cfg = NULL;
	Repo *repo = NULL;
	RepoLock *lock = NULL;
	RepoManifest *m = NULL;
	int64_t t0 = pv_time_monotonic_ms();
	int status, rc;

	if (cli_restore_logical_wanted(argc, argv))
		return cli_restore_logical(argc, argv);	/* --target-db: restore_logical.c */
	if (cli_restore_physical_wanted(argc, argv))
		return cli_restore_physical(argc, argv);	/* --pgdata: restore_physical.c */
	if ((status = args_parse(&a, argc, argv)) >= 0)
		goto done;
	if ((rc = cli_setup(&a.common, &cfg)) < 0 ||
		(rc = cli_repo_open(&repo, cfg, &a.common)) < 0 ||
		(rc = repo_lock_acquire_opts(&lock, repo, &(RepoLockOpts) {.command = "restore"})) < 0 ||
		(rc = repo_manifest_load(&m, repo, a.id)) < 0)
	{
		status = cli_fail(rc);
		goto done;
	}
	if (a.target != NULL && (rc = pv_fs_mkdir_p(a.target, 0700)) < 0)
	{
		status = cli_fail(rc);
		goto done;
	}
	if ((rc = restore_dispatch(repo, m, &a, &t)) < 0)
	{
		rc = pv_error_prefix(rc, "restore of backup %s failed", repo_manifest_id(m));
		status = cli_fail(rc);
		goto done;
	}
	summary_print(&a, repo_manifest_id(m), &t, pv_time_monotonic_ms() - t0);
	status = 0;
done:
	repo_manifest_free(m);
	repo_lock_release(lock);
	repo_free(repo);
	cfg_free(cfg);
	pv_free(a.items);
	return status;
}
