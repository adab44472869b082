/*
 * fuzz_common.h: what every libFuzzer target of pgvault shares: the one-time
 * setup (jansson through pv_malloc, quiet logging) and fixed keys for the
 * encrypted code paths.  Targets treat their input as hostile bytes from a
 * repository and must never crash, leak or read out of bounds: a parser
 * either accepts the input or returns a PV_E* code.
 */
#ifndef PV_FUZZ_COMMON_H
#define PV_FUZZ_COMMON_H

#include "common/error.h"
#include "common/json.h"
#include "common/log.h"
#include "repo/crypto.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static inline void
fuzz_setup(void)
{
	pv_json_init();
	pv_log_set_console_level(PV_LOG_OFF);
}

/* Deterministic keys, so a crash found with encryption replays. */
static inline const RepoKeys *
fuzz_keys(void)
{
	static RepoKeys k;
	static int done;

	if (!done)
	{
		for (size_t i = 0; i < sizeof(k.enc_key); i++)
			k.enc_key[i] = (unsigned char) (i * 7 + 1);
		for (size_t i = 0; i < sizeof(k.id_key); i++)
			k.id_key[i] = (unsigned char) (i * 13 + 5);
		done = 1;
	}
	return &k;
}

#endif
