/*
 * commands.h: the entry point of every command, one line each.  A new
 * command adds its prototype here, its row to commands.c and its file to
 * meson.build.
 */
#ifndef PV_CLI_COMMANDS_H
#define PV_CLI_COMMANDS_H

int cli_check(int argc, char **argv);
int cli_config(int argc, char **argv);

#endif
