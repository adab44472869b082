/*
 * tools.c: see tools.h.
 */
#include "pg/tools.h"

#include "common/error.h"
#include "common/mem.h"

#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Run "PATH --version" and parse "name (PostgreSQL) 15.18".  0 on success. */
static int
tool_probe(PgTool *out, const char *path)
{
	char cmd[1200];
	char line[256] = "";
	FILE *fp;
	int major = 0, minor = 0;
	const char *p;

	if (strchr(path, '/') != NULL && access(path, X_OK) != 0)
		return PV_ENOTFOUND;
	if (strchr(path, '\'') != NULL)
		return PV_ENOTFOUND;
	snprintf(cmd, sizeof(cmd), "'%s' --version 2>/dev/null", path);
	fp = popen(cmd, "r");
	if (fp == NULL)
		return PV_ENOTFOUND;
	if (fgets(line, sizeof(line), fp) == NULL)
		line[0] = '\0';
	if (pclose(fp) != 0 || (p = strstr(line, "(PostgreSQL) ")) == NULL)
		return PV_ENOTFOUND;
	line[strcspn(line, "\n")] = '\0';
	if (sscanf(p + 13, "%d.%d", &major, &minor) < 1)
		return PV_ENOTFOUND;
	out->path = pv_strdup(path);
	out->version_text = pv_strdup(line);
	out->version_num = major >= 10 ? major * 10000 + minor : 0;
	return PV_OK;
}

static int
newest_debian_major(void)
{
	DIR *d = opendir("/usr/lib/postgresql");
	struct dirent *e;
	int best = 0;

	if (d == NULL)
		return 0;
	while ((e = readdir(d)) != NULL)
	{
		int v = atoi(e->d_name);

		if (v > best)
			best = v;
	}
	closedir(d);
	return best;
}

static bool
tool_usable(const PgTool *t, int server_major)
{
	return server_major == 0 || t->version_num / 10000 >= server_major;
}

int
pgtools_find(PgTool *out, const char *program, const char *bindir, int server_major)
{
	char path[1024];
	int newest = newest_debian_major();
	PgTool t = {0};

	memset(out, 0, sizeof(*out));
	if (bindir != NULL)
	{
		snprintf(path, sizeof(path), "%s/%s", bindir, program);
		if (tool_probe(&t, path) == PV_OK)
		{
			if (tool_usable(&t, server_major))
			{
				*out = t;
				return PV_OK;
			}
			pv_error_set(PV_ENOTFOUND, "'%s' is version %d, older than the server (%d)",
						 path, t.version_num / 10000, server_major);
			pv_error_hint("set bindir to the programs of PostgreSQL %d or newer", server_major);
			pgtools_clear(&t);
			return PV_ENOTFOUND;
		}
		pv_error_set(PV_ENOTFOUND, "'%s' not found or not runnable", path);
		pv_error_hint("check the bindir setting of the source");
		return PV_ENOTFOUND;
	}
	if (server_major > 0)
	{
		snprintf(path, sizeof(path), "/usr/lib/postgresql/%d/bin/%s", server_major, program);
		if (tool_probe(&t, path) == PV_OK)
		{
			*out = t;
			return PV_OK;
		}
	}
	if (newest > 0)
	{
		snprintf(path, sizeof(path), "/usr/lib/postgresql/%d/bin/%s", newest, program);
		if (tool_probe(&t, path) == PV_OK && tool_usable(&t, server_major))
		{
			*out = t;
			return PV_OK;
		}
		pgtools_clear(&t);
	}
	if (tool_probe(&t, program) == PV_OK && tool_usable(&t, server_major))
	{
		*out = t;
		return PV_OK;
	}
	pgtools_clear(&t);
	if (server_major > 0)
	{
		pv_error_set(PV_ENOTFOUND, "no %s of PostgreSQL %d or newer found", program, server_major);
		pv_error_hint("install postgresql-client-%d, or set bindir in the source's configuration",
					  server_major);
	}
	else
	{
		pv_error_set(PV_ENOTFOUND, "%s not found", program);
		pv_error_hint("install the PostgreSQL client programs, or set bindir");
	}
	return PV_ENOTFOUND;
}

void
pgtools_clear(PgTool *tool)
{
	pv_free(tool->path);
	pv_free(tool->version_text);
	memset(tool, 0, sizeof(*tool));
}
