/*
 * main.c: argv to the command table, nothing else.
 */
#include "cli/cli.h"
#include "common/json.h"

int
main(int argc, char **argv)
{
	/* Before any thread exists: jansson then allocates through pv_malloc. */
	pv_json_init();
	return cli_main(argc, argv);
}
