/*
 * statuspage.c: the status page with the daemon's data embedded (see
 * statuspage.h).  The template holds the marker once, inside
 * <script type="application/json" id="pgvault-data">.
 */
#include "ops/statuspage.h"

#include <stdlib.h>
#include <string.h>

#define DATA_MARKER "/*PGVAULT_DATA*/"

void
statuspage_render(Buf *out, const json_t *data)
{
	const char *at = strstr(statuspage_template, DATA_MARKER);
	char *json;

	if (at == NULL)
	{
		buf_append_str(out, statuspage_template);
		return;
	}
	/* JSON_ESCAPE_SLASH: "</script>" inside a value comes out as "<\/script>". */
	json = json_dumps(data, JSON_COMPACT | JSON_SORT_KEYS | JSON_ESCAPE_SLASH);
	buf_append(out, statuspage_template, (size_t) (at - statuspage_template));
	buf_append_str(out, json ? json : "null");
	buf_append_str(out, at + strlen(DATA_MARKER));
	free(json);
}
