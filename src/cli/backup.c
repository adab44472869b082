/*
 * backup.c (cli): "pgvault backup".  One command for every kind of backup;
 * the kind is chosen by a mode option and each mode has its own function
 * (backup_file today; the logical and physical kinds add theirs and a case
 * in backup_dispatch).  Options of modes that do not exist yet are unknown
 * options, not "not implemented".
 *
 * The file mode stores files and standard input as a backup of kind "file":
 * config files, a pg_dumpall stream, anything.  Items are read in bounded
 * buffers (nothing is held whole in memory) and written through RepoWriter,
 * which commits packs, index and manifest in that order: a backup that is
 * interrupted leaves no manifest, so it does not exist.
 */
#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/copy.h"
#include "cli/logical.h"
#include "cli/physical.h"

#include "common/error.h"
#include "common/json.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/timeutil.h"
#include "common/units.h"
#include "repo/repo.h"
#include "repo/writer.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char help_text[] =
	"pgvault backup: make a backup\n\n"
	"Usage:\n"
	"  pgvault backup --logical [-d DB | --all] [OPTIONS]   databases (pg_dump's job)\n"
	"  pgvault backup --physical [OPTIONS]                  the whole cluster, for PITR\n"
	"  pgvault backup --file PATH [--file PATH...] [OPTIONS]\n"
	"  pgvault backup --stdin --name NAME [OPTIONS]\n\n"
	"'pgvault backup --logical --help' and 'pgvault backup --physical --help'\n"
	"explain those kinds.  The rest of this page is about file backups.\n\n"
	"File backups store files (configuration files, scripts) or a stream read\n"
	"from standard input (pg_dumpall output, anything) as a backup of kind\n"
	"'file'.  Only chunks the repository does not hold yet are stored, so a\n"
	"repeated backup of unchanged data costs next to nothing.  The backup exists\n"
	"once its id is printed; an interrupted backup leaves no backup behind.\n\n"
	"Options:\n"
	"  --file=PATH              back up this file (repeat for more); its name in\n"
	"                           the backup is PATH without a leading '/'\n"
	"  --stdin                  back up standard input as one stream item\n"
	"  --name=NAME              the item name for --stdin (required with it)\n"
	"  --source=NAME            the source name recorded with the backup\n"
	"  -j, --jobs=N             worker threads (default: one per core)\n\n"
	"Output: the backup id on the first line, then a summary (size, stored,\n"
	"new bytes, duration); with --json one JSON object.\n\n"
	"Examples:\n"
	"  pgvault backup --file /etc/postgresql/15/main/postgresql.conf \\\n"
	"                 --file /etc/postgresql/15/main/pg_hba.conf --source prod\n"
	"  pg_dumpall | pgvault backup --stdin --name dumpall.sql --source prod\n"
	"  pgvault backup --repo /srv/pgvault --file backup.tar --json\n";

enum
{
	OPT_FILE = CLI_OPT_FIRST_COMMAND,
	OPT_STDIN,
	OPT_NAME,
};

typedef enum BackupMode
{
	BACKUP_MODE_NONE,
	BACKUP_MODE_FILE,			/* --file / --stdin */
} BackupMode;

typedef struct BackupArgs
{
	CliCommon common;
	BackupMode mode;
	const char **files;
	size_t nfiles;
	bool use_stdin;
	const char *name;
	const char *jobs;
} BackupArgs;

#define READ_BUF_SIZE (1024 * 1024)

/* The name of PATH in the backup: without leading '/' and "./" (as tar does). */
static int
item_name(char **out, const char *path)
{
	const char *p = path;
	const char *seg;

	while (*p == '/' || (p[0] == '.' && p[1] == '/'))
		p += (*p == '/') ? 1 : 2;
	if (*p == '\0')
		return pv_error_set(PV_EUSAGE, "'%s' does not name a file", path);
	for (seg = p; seg != NULL; seg = strchr(seg, '/') ? strchr(seg, '/') + 1 : NULL)
		if (strncmp(seg, "..", 2) == 0 && (seg[2] == '/' || seg[2] == '\0'))
			return pv_error_set(PV_EUSAGE, "'%s' contains '..': give a path without it", path);
	*out = pv_strdup(p);
	return 0;
}

/* Copy fd into a new item; spec names it. */
static int
item_copy(RepoWriter *w, const RepoItemSpec *spec, int fd, const char *what)
{
	RepoWriterItem *it = NULL;
	unsigned char *buf = pv_malloc(READ_BUF_SIZE);
	int rc;

	if ((rc = repo_writer_item_begin(&it, w, spec)) < 0)
		goto done;
	for (;;)
	{
		ssize_t n = read(fd, buf, READ_BUF_SIZE);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
		{
			rc = pv_error_errno(PV_EIO, errno, "cannot read %s", what);
			break;
		}
		if (n == 0)
			break;
		if ((rc = repo_writer_item_write(it, buf, (size_t) n)) < 0)
			break;
	}
	if (rc < 0)
		repo_writer_item_cancel(it);
	else
		rc = repo_writer_item_end(it, NULL);
done:
	pv_free(buf);
	return rc;
}

static int
file_add(RepoWriter *w, const char *path, const char *name)
{
	struct stat sb;
	int fd, rc;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return pv_error_errno(errno == ENOENT ? PV_ENOTFOUND : PV_EIO, errno,
							  "cannot open '%s'", path);
	if (fstat(fd, &sb) < 0)
	{
		rc = pv_error_errno(PV_EIO, errno, "cannot stat '%s'", path);
		goto done;
	}
	if (!S_ISREG(sb.st_mode))
	{
		rc = pv_error_set(PV_EUSAGE, "'%s' is not a regular file", path);
		if (S_ISDIR(sb.st_mode))
			pv_error_hint("give the files in it, e.g. --file '%s'/*", path);
		goto done;
	}
	{
		RepoItemSpec spec = {.name = name, .type = "file", .has_mode = true,
			.mode = (uint32_t) (sb.st_mode & 07777), .mtime = (int64_t) sb.st_mtime};
		char what[64 + 4096];

		snprintf(what, sizeof(what), "'%s'", path);
		rc = item_copy(w, &spec, fd, what);
	}
done:
	close(fd);
	return rc;
}

static void
summary_print(const BackupArgs *a, const char *id, const RepoWriterStats *s, int64_t ms)
{
	char size[32], stored[32], fresh[32], took[32];

	if (a->common.json)
	{
		json_t *j = json_object();

		json_object_set_new(j, "id", json_string(id));
		json_object_set_new(j, "kind", json_string("file"));
		json_object_set_new(j, "source", a->common.source ? json_string(a->common.source)
							: json_null());
		json_object_set_new(j, "items", json_integer((json_int_t) s->items));
		json_object_set_new(j, "logical_bytes", json_integer((json_int_t) s->logical_bytes));
		json_object_set_new(j, "chunks", json_integer((json_int_t) s->chunks));
		json_object_set_new(j, "stored_bytes", json_integer((json_int_t) s->stored_bytes));
		json_object_set_new(j, "new_chunks", json_integer((json_int_t) s->new_chunks));
		json_object_set_new(j, "new_bytes", json_integer((json_int_t) s->new_bytes));
		json_object_set_new(j, "new_raw_bytes", json_integer((json_int_t) s->new_raw_bytes));
		json_object_set_new(j, "packs", json_integer((json_int_t) s->packs));
		json_object_set_new(j, "duration_ms", json_integer(ms));
		pv_json_dump(stdout, j);
		json_decref(j);
		return;
	}
	printf("%s\n", id);
	printf("backup %s: %llu item%s, %s, stored %s, new %s (%llu chunks), %s\n", id,
		   (unsigned long long) s->items, s->items == 1 ? "" : "s",
		   pv_size_format(size, sizeof(size), s->logical_bytes),
		   pv_size_format(stored, sizeof(stored), s->stored_bytes),
		   pv_size_format(fresh, sizeof(fresh), s->new_bytes), (unsigned long long) s->new_chunks,
		   pv_elapsed_format(took, sizeof(took), ms));
}

/* Kind "file": every --file, then standard input. */
static int
backup_file(const BackupArgs *a, PvConfig *cfg, Repo *repo, int jobs)
{
	RepoWriter *w = NULL;
	RepoWriterStats st;
	char **names = pv_calloc(a->nfiles + 1, sizeof(char *));
	int64_t t0 = pv_time_monotonic_ms();
	int rc;

	(void) cfg;
	for (size_t i = 0; i < a->nfiles; i++)
	{
		if ((rc = item_name(&names[i], a->files[i])) < 0)
			goto done;
		for (size_t k = 0; k < i; k++)
			if (strcmp(names[k], names[i]) == 0)
			{
				rc = pv_error_set(PV_EUSAGE, "'%s' is given twice", a->files[i]);
				goto done;
			}
		if (a->use_stdin && strcmp(names[i], a->name) == 0)
		{
			rc = pv_error_set(PV_EUSAGE, "--name '%s' is also the name of --file '%s'", a->name,
							  a->files[i]);
			goto done;
		}
	}
	if ((rc = repo_writer_new(&w, repo, &(RepoWriterOpts) {
		.kind = "file", .source = a->common.source, .jobs = jobs, .command = "backup"})) < 0)
		goto done;
	pv_log_detail("backup %s of %zu files%s into '%s'", repo_writer_id(w), a->nfiles,
				  a->use_stdin ? " and standard input" : "", repo_url(repo));
	for (size_t i = 0; i < a->nfiles; i++)
		if ((rc = file_add(w, a->files[i], names[i])) < 0)
			goto done;
	if (a->use_stdin &&
		(rc = item_copy(w, &(RepoItemSpec) {.name = a->name, .type = "stream"}, STDIN_FILENO,
						"standard input")) < 0)
		goto done;
	if ((rc = repo_writer_commit(w, NULL)) < 0)
		goto done;
	repo_writer_stats(w, &st);
	summary_print(a, repo_writer_id(w), &st, pv_time_monotonic_ms() - t0);
	cli_sync_secondaries_by_name(cfg, a->common.source, repo, repo_writer_id(w));
done:
	if (rc < 0 && w != NULL)
		rc = pv_error_prefix(rc, "backup %s failed (nothing was recorded)", repo_writer_id(w));
	repo_writer_free(w);
	for (size_t i = 0; i < a->nfiles; i++)
		pv_free(names[i]);
	pv_free(names);
	return rc;
}

/* One function per kind; a kind that does not exist has no mode option. */
static int
backup_dispatch(const BackupArgs *a, PvConfig *cfg, Repo *repo, int jobs)
{
	switch (a->mode)
	{
		case BACKUP_MODE_FILE:
			return backup_file(a, cfg, repo, jobs);
		case BACKUP_MODE_NONE:
			break;
	}
	return pv_error_set(PV_EUSAGE, "nothing to back up");
}

static int
args_parse(BackupArgs *a, int argc, char **argv)
{
	static const struct option longopts[] = {
		CLI_COMMON_LONGOPTS,
		{"file", required_argument, NULL, OPT_FILE},
		{"stdin", no_argument, NULL, OPT_STDIN},
		{"name", required_argument, NULL, OPT_NAME},
		{"jobs", required_argument, NULL, 'j'},
		{NULL, 0, NULL, 0},
	};
	int opt;

	a->files = pv_calloc((size_t) argc + 1, sizeof(char *));
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":j:", longopts, NULL)) != -1)
	{
		if (cli_common_option(&a->common, opt, optarg))
			continue;
		switch (opt)
		{
			case OPT_FILE:
				a->files[a->nfiles++] = optarg;
				a->mode = BACKUP_MODE_FILE;
				break;
			case OPT_STDIN:
				a->use_stdin = true;
				a->mode = BACKUP_MODE_FILE;
				break;
			case OPT_NAME:
				a->name = optarg;
				break;
			case 'j':
				a->jobs = optarg;
				break;
			default:
				return cli_bad_option("backup", argv, opt);
		}
	}
	if (a->common.help)
	{
		cli_print_help(help_text, false);
		return 0;
	}
	if (optind < argc)
		return cli_usage_error("backup", "unexpected argument '%s'", argv[optind]);
	if (a->mode == BACKUP_MODE_NONE)
		return cli_usage_error("backup", "nothing to back up: give --file PATH or --stdin "
							   "--name NAME");
	if (a->use_stdin && a->name == NULL)
		return cli_usage_error("backup", "--stdin needs --name NAME");
	if (!a->use_stdin && a->name != NULL)
		return cli_usage_error("backup", "--name goes with --stdin");
	if (a->use_stdin && a->name[0] == '\0')
		return cli_usage_error("backup", "--name must not be empty");
	return -1;
}

int
cli_backup(int argc, char **argv)
{
	BackupArgs a = {0};
	PvConfig *cfg = NULL;
	Repo *repo = NULL;
	int status, rc, jobs = 0;

	if (cli_backup_logical_wanted(argc, argv))
		return cli_backup_logical(argc, argv);	/* --logical: backup_logical.c */
	if (cli_backup_physical_wanted(argc, argv))
		return cli_backup_physical(argc, argv);	/* --physical: backup_physical.c */
	if ((status = args_parse(&a, argc, argv)) >= 0)
		goto done;
	if (a.jobs != NULL && !cli_int_parse(&jobs, a.jobs, 0, 256))
	{
		status = cli_usage_error("backup", "invalid number of jobs '%s' (0 to 256; 0 = one per core)", a.jobs);
		goto done;
	}
	if ((rc = cli_setup(&a.common, &cfg)) < 0 || (rc = cli_repo_open(&repo, cfg, &a.common)) < 0)
	{
		status = cli_fail(rc);
		goto done;
	}
	if (a.jobs == NULL)
		jobs = (int) cfg_int(cfg, NULL, "jobs");
	status = (rc = backup_dispatch(&a, cfg, repo, jobs)) < 0 ? cli_fail(rc) : 0;
done:
	repo_free(repo);
	cfg_free(cfg);
	pv_free(a.files);
	return status;
}
