/*
 * metrics.h: the daemon's /metrics, in the Prometheus text exposition
 * format (version 0.0.4).
 *
 * The metrics are rendered from the daemon's snapshot, the same JSON
 * document /status serves (daemon.h), so the two can never disagree.  What
 * the snapshot holds and which metric comes from where:
 *
 *   status doc (status.h)   pgvault_status, pgvault_group_status,
 *                           pgvault_backup_age_seconds, pgvault_backups,
 *                           verify / drill outcome, time and measured RTO,
 *                           WAL archive lag, problems by level
 *   "history" (manifests)   per source and kind: the newest backup's end
 *                           time (last success), duration, size, stored and
 *                           new bytes
 *   "repository_stats"      stored and logical bytes, dedup and
 *                           compression ratios
 *   "daemon"                per job: runs by outcome (counters), skipped
 *                           runs, running, last run / success / duration,
 *                           next run, consecutive failures; notifications;
 *                           configuration reloads
 *
 * Missing parts of the snapshot (no repository read yet) leave their
 * metrics out rather than exporting zeros that would look like facts.
 *
 * Every family is written once, with # HELP and # TYPE, its samples
 * together; label values are escaped (backslash, double quote, newline).
 */
#ifndef PV_OPS_METRICS_H
#define PV_OPS_METRICS_H

#include "common/buf.h"

#include <jansson.h>

/* The Content-Type of the text format. */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Append the whole exposition for snapshot to out. */
void metrics_render(Buf *out, const json_t *snapshot);

/* ---- the writer, for metrics_render and tests ---- */

/* "# HELP name help\n# TYPE name type\n" (help escaped). */
void metrics_family(Buf *out, const char *name, const char *type, const char *help);
/*
 * One sample: name{k1="v1",k2="v2"} value.  labels is NULL or alternating
 * keys and values ending with NULL; a NULL value is written as "".
 * Integral values print without a fraction; NaN and infinities as
 * Prometheus spells them.
 */
void metrics_sample(Buf *out, const char *name, const char *const *labels, double value);

#endif
