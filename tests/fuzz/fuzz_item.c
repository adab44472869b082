/*
 * fuzz_item.c: the item list of a manifest (section 7): JSON lines, each
 * parsed with repo_item_parse.  An item that parses must serialise with
 * repo_item_to_json and parse back to the same name, size and chunks.
 */
#include "fuzz_common.h"

#include "common/buf.h"
#include "repo/manifest.h"

#include <stdlib.h>

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_setup();
	return 0;
}

static void
check_line(const char *line, size_t len)
{
	RepoItem *item = NULL, *again = NULL;
	Buf out = PV_BUF_INIT;

	if (repo_item_parse(&item, line, len) == 0)
	{
		repo_item_to_json(item, &out);
		if (out.len == 0 || out.data[out.len - 1] != '\n' ||
			repo_item_parse(&again, (const char *) out.data, out.len - 1) != 0 ||
			strcmp(again->name, item->name) != 0 || again->size != item->size ||
			again->nchunks != item->nchunks)
			abort();
		for (size_t i = 0; i < item->nchunks; i++)
			if (memcmp(again->chunks[i].id, item->chunks[i].id, REPO_ID_LEN) != 0 ||
				again->chunks[i].offset != item->chunks[i].offset ||
				again->chunks[i].raw_length != item->chunks[i].raw_length)
				abort();
	}
	pv_error_clear();
	repo_item_free(item);
	repo_item_free(again);
	buf_free(&out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *) data;
	size_t left = size;

	while (left > 0)
	{
		const char *nl = memchr(p, '\n', left);
		size_t len = nl ? (size_t) (nl - p) : left;

		check_line(p, len);
		if (nl == NULL)
			break;
		p += len + 1;
		left -= len + 1;
	}
	return 0;
}
