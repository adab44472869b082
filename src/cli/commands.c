/*
 * commands.c: the table of commands, in the order "pgvault --help" lists
 * them.  A command appears here only once it does real work.
 */
#include "cli/cli.h"
#include "cli/commands.h"

const CliCommand cli_commands[] = {
	{"check", "pre-flight checks: connection, settings, space, archiving", cli_check},
	{"config", "print the effective configuration (secrets masked)", cli_config},
};

const int cli_ncommands = (int) (sizeof(cli_commands) / sizeof(cli_commands[0]));
