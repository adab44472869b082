/*
 * statuspage.h: the daemon's status page ("/"): one self-contained HTML
 * page (statuspage.html: no external assets, charts drawn as inline SVG by
 * the page's own script, so it works offline and can be saved as evidence),
 * compiled into the binary as a C string at build time
 * (statuspage_embed.py).
 *
 * The daemon's data is embedded in the page, so it shows the figures of the
 * moment it was served even where /status cannot be fetched (a saved copy,
 * a token-protected daemon): data is {"status": <the /status document>,
 * "history": <the /history array>}.  It is serialised with every '/'
 * escaped, so no string in it can close the <script> element that holds it.
 */
#ifndef PV_OPS_STATUSPAGE_H
#define PV_OPS_STATUSPAGE_H

#include "common/buf.h"

#include <jansson.h>

/* The page with the marker where data goes (generated from statuspage.html). */
extern const char statuspage_template[];

/* Append the page with data embedded to out. */
void statuspage_render(Buf *out, const json_t *data);

#endif
