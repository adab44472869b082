/*
 * fuzz_keyfile.c: a key file (keys/<id>, crypto.h) as repo_keyfile_open
 * reads it with the passphrase run-fuzz.sh seeds the corpus with
 * ("fuzz-passphrase").  Damaged files must end in PV_ECORRUPT or PV_EAUTH;
 * the scrypt cost a file asks for is bounded by the parser, so a hostile
 * file cannot make the open run for long or allocate much.
 */
#include "fuzz_common.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_setup();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	RepoKeys keys;
	int rc = repo_keyfile_open(&keys, (const char *) data, size, "fuzz-passphrase");

	if (rc == 0)
		repo_keys_wipe(&keys);
	else if (rc != PV_ECORRUPT && rc != PV_EAUTH)
		abort();
	pv_error_clear();
	return 0;
}
