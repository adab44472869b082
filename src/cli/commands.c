/*
 * commands.c: the table of commands, in the order "pgvault --help" lists
 * them.  A command appears here only once it does real work.
 */
#include "cli/cli.h"
#include "cli/commands.h"

const CliCommand cli_commands[] = {
	{"check", "pre-flight checks: connection, settings, space, archiving", cli_check},
	{"config", "print the effective configuration (secrets masked)", cli_config},
	{"init", "create a repository (optionally encrypted)", cli_init},
	{"key", "list, add or remove the passphrases of an encrypted repository", cli_key},
	{"backup", "make a backup: --logical (databases), --physical (cluster), --file", cli_backup},
	{"list", "list the backups in a repository", cli_list},
	{"show", "what a backup holds: tables, rows, sizes, files, WAL range", cli_show},
	{"restore", "restore a backup: into a database, a data directory (PITR) or files", cli_restore},
	{"export", "a logical backup as a plain SQL script (psql loads it)", cli_export},
	{"verify", "read back and check every byte the backups need", cli_verify},
	{"repo", "repository maintenance: stats, prune, rebuild-index, unlock", cli_repo},
	{"archive-push", "archive one WAL file (archive_command)", cli_archive_push},
	{"archive-get", "fetch one WAL file from the archive (restore_command)", cli_archive_get},
	{"expire", "apply the retention policies, then remove data no backup needs", cli_expire},
	{"pin", "keep a backup whatever retention says (legal hold); --list", cli_pin},
	{"unpin", "release a pin", cli_unpin},
	{"copy", "copy backups and WAL to another repository (off-site, second region)", cli_copy},
	{"drill", "test-restore a backup into a scratch cluster: check, time, record", cli_drill},
	{"status", "backup age, verify and drill outcomes, WAL lag; --check for monitoring", cli_status},
	{"daemon", "run the schedules, serve /metrics, /status and the status page, send alerts", cli_daemon},
	{"log", "the history of the daemon's jobs: what ran, when, how long, how big, outcome", cli_log},
};

const int cli_ncommands = (int) (sizeof(cli_commands) / sizeof(cli_commands[0]));
