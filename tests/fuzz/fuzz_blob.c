/*
 * fuzz_blob.c: repo_blob_decode on hostile stored blobs (section 4 of the
 * format): the codec byte, the claimed raw length, zstd and lz4 payloads,
 * and (first input byte odd) the AES-GCM layer.  The second byte picks a
 * raw length hint.  Whatever decodes must re-encode and decode to the same
 * bytes.
 */
#include "fuzz_common.h"

#include "common/buf.h"
#include "repo/blob.h"

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
	Buf out = PV_BUF_INIT, again = PV_BUF_INIT, back = PV_BUF_INIT;
	size_t hint;
	unsigned char aad[REPO_ID_LEN] = {0};

	if (size < 2)
		return 0;
	keys = (data[0] & 1) ? fuzz_keys() : NULL;
	hint = data[1] < 200 ? 0 : (size_t) data[1] * 97;
	data += 2;
	size -= 2;
	if (repo_blob_decode(&out, keys, aad, sizeof(aad), data, size, hint) == 0)
	{
		if (hint != 0 && out.len != hint)
			abort();
		if (repo_blob_encode(&again, keys, REPO_COMPRESS_ZSTD, 1, aad, sizeof(aad), out.data,
							 out.len) != 0 ||
			repo_blob_decode(&back, keys, aad, sizeof(aad), again.data, again.len, 0) != 0 ||
			back.len != out.len || (out.len > 0 && memcmp(back.data, out.data, out.len) != 0))
			abort();
	}
	else if (out.len != 0)
		abort();				/* failure leaves out as it was */
	pv_error_clear();
	buf_free(&out);
	buf_free(&again);
	buf_free(&back);
	return 0;
}
