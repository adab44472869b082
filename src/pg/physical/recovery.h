/*
 * recovery.h: recovery targets and the settings a restored cluster starts
 * with (postgresql.auto.conf plus recovery.signal, PostgreSQL 12 and later),
 * and which backup can reach a target.
 *
 * Pure text and arithmetic: no I/O here.  Strings returned are the
 * caller's (pv_free).
 */
#ifndef PV_PG_PHYSICAL_RECOVERY_H
#define PV_PG_PHYSICAL_RECOVERY_H

#include "common/buf.h"
#include "common/timeutil.h"

#include <stdbool.h>
#include <stdint.h>

struct json_t;

typedef enum PgPhysTargetKind
{
	PGPHYS_TARGET_NONE,			/* replay to the end of the archive */
	PGPHYS_TARGET_TIME,
	PGPHYS_TARGET_LSN,
	PGPHYS_TARGET_XID,
	PGPHYS_TARGET_NAME,			/* a restore point (pg_create_restore_point) */
	PGPHYS_TARGET_IMMEDIATE,	/* stop as soon as the backup is consistent */
} PgPhysTargetKind;

typedef struct PgPhysTarget
{
	PgPhysTargetKind kind;
	PvTime time;				/* TIME */
	uint64_t lsn;				/* LSN */
	uint64_t xid;				/* XID (32-bit as users give it, or epoch-qualified 64-bit) */
	char *name;					/* NAME */
	const char *action;			/* NULL (server default: pause), "promote", "pause", "shutdown" */
	const char *timeline;		/* NULL (server default: latest), "latest", "current", or a number */
	bool exclusive;				/* stop just before the target instead of just after */
} PgPhysTarget;

/*
 * Set t's target from what a user typed (kind != NONE, IMMEDIATE: value
 * required).  Times are parsed with pv_time_parse in zone tz (NULL: local).
 * PV_EUSAGE with a message for a bad value.
 */
int pgphys_target_set(PgPhysTarget *t, PgPhysTargetKind kind, const char *value, const char *tz);
/* Check action and timeline spellings.  PV_EUSAGE. */
int pgphys_target_check(const PgPhysTarget *t);
void pgphys_target_clear(PgPhysTarget *t);
/* "time 2026-11-22 14:30:05.123456+00", "LSN 0/3000000", ... for messages; caller frees. */
char *pgphys_target_describe(const PgPhysTarget *t);

/*
 * Can a backup with this metadata (a physical manifest's "metadata") reach
 * t?  It can when it became consistent before the target: its end time,
 * stop LSN or next transaction id is not after the target's.  Restore
 * points and "immediate" are reachable from every backup (the server
 * reports a restore point older than the backup).  *why (may be NULL)
 * gets a reason when not (caller frees).
 */
bool pgphys_target_reachable(const PgPhysTarget *t, const struct json_t *metadata, char **why);

/* A shell word: "abc" stays, anything else is single-quoted ('it'\''s'); caller frees. */
char *pgphys_shell_quote(const char *s);
/* A postgresql.conf string literal with its quotes ('it''s', backslashes doubled); caller frees. */
char *pgphys_conf_quote(const char *s);

/*
 * The recovery settings block (with a comment line naming the backup):
 * restore_command, the target, its action, timeline and inclusiveness, and
 * archive_mode = off when archive_off.
 */
void pgphys_recovery_settings(Buf *out, const PgPhysTarget *t, const char *restore_command,
							  bool archive_off, const char *backup_id);

/*
 * postgresql.auto.conf as restored (old, may be NULL) with every line that
 * sets one of the keys the block sets (and any recovery_target* setting)
 * removed, then the block appended.
 */
void pgphys_auto_conf_merge(Buf *out, const char *old, const char *block);

#endif
