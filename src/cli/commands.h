/*
 * commands.h: the entry point of every command, one line each.  A new
 * command adds its prototype here, its row to commands.c and its file to
 * meson.build.
 */
#ifndef PV_CLI_COMMANDS_H
#define PV_CLI_COMMANDS_H

int cli_check(int argc, char **argv);
int cli_config(int argc, char **argv);
int cli_init(int argc, char **argv);
int cli_key(int argc, char **argv);
int cli_backup(int argc, char **argv);
int cli_list(int argc, char **argv);
int cli_restore(int argc, char **argv);
int cli_export(int argc, char **argv);
int cli_verify(int argc, char **argv);
int cli_repo(int argc, char **argv);
int cli_show(int argc, char **argv);
int cli_archive_push(int argc, char **argv);
int cli_archive_get(int argc, char **argv);
int cli_expire(int argc, char **argv);
int cli_pin(int argc, char **argv);
int cli_unpin(int argc, char **argv);
int cli_drill(int argc, char **argv);
int cli_copy(int argc, char **argv);
int cli_status(int argc, char **argv);
int cli_daemon(int argc, char **argv);
int cli_log(int argc, char **argv);

#endif
