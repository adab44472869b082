/*
 * fuzz_pack_header.c: a whole hostile pack file (section 5), parsed the way
 * repo_pack_read_header and verify do: the trailing header length, the
 * stored header blob, the "PVPH" table and its contiguity rules, then every
 * blob the header lists, decoded within the pack's bounds.  First input
 * byte odd: an encrypted repository's pack.
 */
#include "fuzz_common.h"

#include "common/buf.h"
#include "common/mem.h"
#include "repo/blob.h"
#include "repo/pack.h"

#include <stdlib.h>

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_setup();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const RepoKeys *keys;
	Buf plain = PV_BUF_INIT, blob = PV_BUF_INIT;
	RepoPackEntry *entries = NULL;
	size_t n = 0;
	uint32_t hlen;
	uint64_t data_len;

	if (size < 1)
		return 0;
	keys = (data[0] & 1) ? fuzz_keys() : NULL;
	data++;
	size--;
	if (size < 4)
		return 0;
	hlen = pv_read_u32le(data + size - 4);
	if (hlen == 0 || hlen > size - 4)
		return 0;
	data_len = size - 4 - hlen;
	if (repo_blob_decode(&plain, keys, NULL, 0, data + data_len, hlen, 0) == 0 &&
		repo_pack_header_parse(&entries, &n, plain.data, plain.len, data_len) == 0)
	{
		uint64_t end = 0;

		for (size_t k = 0; k < n; k++)
		{
			const RepoPackEntry *e = &entries[k];

			/* the parser promised contiguous entries inside the data part */
			if (e->offset != end || (uint64_t) e->offset + e->length > data_len)
				abort();
			end += e->length;
			buf_reset(&blob);
			(void) repo_blob_decode(&blob, keys, e->id, REPO_ID_LEN, data + e->offset,
									e->length, e->raw_length);
		}
		if (end != data_len)
			abort();
	}
	pv_error_clear();
	pv_free(entries);
	buf_free(&plain);
	buf_free(&blob);
	return 0;
}
