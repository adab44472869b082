/*
 * archive.c (cli): what archive-push and archive-get share (see archive.h).
 */
#include "cli/archive.h"

#include "cli/physical.h"

#include "common/error.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/mem.h"
#include "repo/repo.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

/* The helper's process: never returns. */
static void __attribute__((noreturn))
cli_archive_helper_main(const CliArchiveHelper *h)
{
	Repo *repo = NULL;
	int lockfd, fd, rc;

	if (h->lock(h, &lockfd) != 1)
		_exit(0);				/* another helper won the race */
	if ((fd = open("/dev/null", O_RDWR)) >= 0)
	{
		dup2(fd, STDIN_FILENO);
		dup2(fd, STDOUT_FILENO);
		if (fd > STDERR_FILENO)
			close(fd);
	}
	if ((rc = cli_repo_open(&repo, h->cfg, h->common)) < 0 || (rc = h->run(h, repo)) < 0)
		pv_log_error("%s: %s", h->name, pv_error_msg());
	repo_free(repo);
	_exit(rc < 0 ? 1 : 0);
}

int
cli_archive_helper_start(void *h)
{
	const CliArchiveHelper *helper = h;
	pid_t pid = fork();
	int ws;

	if (pid < 0)
		return pv_error_errno(PV_ERROR, errno, "cannot start %s", helper->what);
	if (pid == 0)
	{
		setsid();
		if (fork() == 0)
			cli_archive_helper_main(helper);
		_exit(0);
	}
	while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
		;
	return 0;
}

int
cli_archive_setup(PvConfig **cfg, const char **source, CfgSection **sec, const CliCommon *common)
{
	int rc;

	if ((rc = cli_setup(common, cfg)) < 0)
		return rc;
	return cli_physical_source(source, sec, *cfg, common);
}

int
cli_archive_fail(int rc, const char *command, const char *file, int status_general)
{
	int status;

	if (file != NULL)
		pv_error_prefix(rc, "%s of '%s' failed", command, file);
	status = cli_fail(rc);
	return status == 1 ? status_general : status;
}

int
cli_archive_spool(char **out, PvConfig *cfg, const char *spool_opt, const char *source, const char *what)
{
	const char *spool_path = spool_opt ? spool_opt : cfg_str(cfg, NULL, "spool-path");
	char *spool = NULL;
	int rc;

	if (spool_path == NULL)
	{
		pv_error_set(PV_ECONFIG, "%s needs a spool directory", what);
		pv_error_hint("give --spool-path DIR or set spool-path in the configuration");
		return PV_ECONFIG;
	}
	if ((rc = pv_fs_path_absolute(&spool, spool_path)) < 0)
		return rc;
	*out = pv_fs_path_join(spool, source);
	pv_free(spool);
	return 0;
}
