/*
 * record.h: what the repository's "replaced whole" records share
 * (records/packcheck, records/quarantine): one metadata object
 * (repo_meta_encode) holding a JSON object
 *   {"format":"<format>","version":N, "<items>":[...], ...}
 * read whole, merged by its owner, and written back with one atomic put
 * (storage_put), so a reader sees the old record or the new one.
 *
 * A RepoRecordKind names one record and the words its messages use; the
 * owners (packcheck.c, quarantine.c) keep their entry formats and merge
 * rules.  Every message has the form "<what> '<key>' ...", so callers'
 * messages do not change when they move here.
 */
#ifndef PV_REPO_RECORD_H
#define PV_REPO_RECORD_H

#include "common/buf.h"
#include "repo/repo.h"

#include <jansson.h>
#include <stdbool.h>

typedef struct RepoRecordKind
{
	const char *key;			/* storage key, e.g. "records/packcheck" */
	const char *what;			/* in messages, e.g. "pack-check record" */
	const char *format;			/* the value of "format" */
	int version;				/* the "version" this pgvault reads and writes */
	const char *items;			/* the name of the array of entries */
} RepoRecordKind;

/* PV_ECORRUPT "<what> '<key>' is damaged: <why>" (why may be pv_error_msg()). */
int repo_record_damaged(const RepoRecordKind *k, const char *why);

/*
 * Parse the JSON text of a record and check its "format" and "version".
 * On success *out_doc (the caller's, json_decref it) is the document and
 * *out_items (lent by it) the array named k->items; on failure both are
 * NULL and the code is PV_ECORRUPT.
 */
int repo_record_parse(json_t **out_doc, const json_t **out_items, const RepoRecordKind *k,
					  const char *text, size_t len);

/*
 * Read and decode the stored record into out (appended).  *out_found is
 * false (and the result PV_OK) when there is none.  A failure to read is
 * prefixed "cannot read the <what> '<key>'"; an object that does not
 * decode is repo_record_damaged.
 */
int repo_record_read(Buf *out, bool *out_found, Repo *repo, const RepoRecordKind *k);

/* Encode text and replace the record with one atomic put; a failure is prefixed "cannot write the <what> '<key>'". */
int repo_record_write(Repo *repo, const RepoRecordKind *k, const Buf *text);

#endif
