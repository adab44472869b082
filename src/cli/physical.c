/*
 * physical.c (cli): what the physical backup, restore and WAL commands
 * share: which source name they work under, and where this binary is (for
 * the restore_command that restore writes).
 */
#include "cli/physical.h"

#include "common/error.h"
#include "common/mem.h"
#include "pg/wal/wal.h"

#include <limits.h>
#include <string.h>
#include <unistd.h>

int
cli_physical_source(const char **out, CfgSection **out_sec, PvConfig *cfg, const CliCommon *c)
{
	CfgSection *sec = NULL;
	const char *name;
	int rc;

	*out = NULL;
	*out_sec = NULL;
	if (c->source != NULL && cfg->nsources == 0)
		name = c->source;		/* no configuration: the name is only a label */
	else
	{
		if ((rc = cfg_source_pick(&sec, cfg, c->source)) < 0)
			return rc;
		name = sec ? sec->name : PGWAL_DEFAULT_SOURCE;
	}
	if ((rc = pgwal_source_check(name)) < 0)
		return rc;
	*out = name;
	*out_sec = sec;
	return 0;
}

char *
cli_self_path(void)
{
	char buf[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);

	if (n <= 0)
		return pv_strdup("pgvault");	/* uncovered: /proc is always mounted on Linux */
	buf[n] = '\0';
	return pv_strdup(buf);
}
