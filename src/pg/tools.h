/*
 * tools.h: finding PostgreSQL's own programs (pg_dump, pg_restore, pg_ctl,
 * initdb, ...) that match a server.
 *
 * Search order: the configured bindir; /usr/lib/postgresql/<server major>/bin
 * (Debian's layout); the newest /usr/lib/postgresql/<N>/bin; the PATH.
 * pg_dump and pg_restore can handle servers of their own major version or
 * older, so a tool is acceptable when its major version >= the server's.
 */
#ifndef PV_PG_TOOLS_H
#define PV_PG_TOOLS_H

typedef struct PgTool
{
	char *path;					/* absolute path, or the bare name found on PATH */
	int version_num;			/* e.g. 150018 for 15.18; 0 if unknown */
	char *version_text;			/* "pg_dump (PostgreSQL) 15.18" */
} PgTool;

/*
 * Find program for a server of server_major (0: any).  PV_ENOTFOUND when no
 * usable program exists, with a hint naming the package to install.
 */
int pgtools_find(PgTool *out, const char *program, const char *bindir, int server_major);
void pgtools_clear(PgTool *tool);

#endif
