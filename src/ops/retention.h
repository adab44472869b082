/*
 * retention.h: which backups to keep and why ("pgvault expire").
 *
 * Backups are judged in *groups*: one source, one kind and, for logical
 * backups, one database (two databases of one cluster are different things
 * to keep).  Within a group, newest first:
 *
 *   newest    the newest backup of the group is always kept.
 *   pinned    a pinned backup (legal hold, "pgvault pin") is always kept.
 *   hourly N, daily N, weekly N, monthly N, yearly N
 *             grandfather-father-son: the newest backup of each of the N
 *             most recent hours / days / ISO weeks (Monday to Sunday) /
 *             months / years that *have* a backup is kept.  Periods without
 *             a backup do not use up the count (a week of downtime does not
 *             shorten the history), as in restic and Borg.  Periods are
 *             local calendar periods in the group's time zone, so "daily"
 *             means the operator's days across daylight-saving changes (a
 *             25-hour day is one day; the repeated hour of a fall-back is
 *             two hours, told apart by their UTC offset).
 *   within D  every backup that started at most D before the group's newest
 *             backup.  Relative to the newest backup, not to now, so a
 *             source whose backups stopped does not lose its recent history
 *             to an expire run (restic's rule).
 *   min N     if the rules above keep fewer than N backups of the group,
 *             the newest others are kept too until N are ("a floor").
 *             Pins do not count: a legal hold on an old backup must not
 *             cost the group one of its recent ones.
 *
 * A group whose policy has none of hourly..yearly and within keeps every
 * backup ("no-policy"): a missing or mistyped configuration never expires
 * anything.  A backup kept by several rules lists them all.  Ties in start
 * time are ordered by id, so the result is deterministic.
 *
 * The engine (retention_apply) is pure: no I/O, unit-tested over synthetic
 * calendars.  retention_plan_build reads a repository's manifests and pins
 * and the configuration's policies and applies the engine to every group.
 *
 * Ownership: a RetentionPlan owns its strings (retention_plan_free).
 */
#ifndef PV_OPS_RETENTION_H
#define PV_OPS_RETENTION_H

#include "common/buf.h"
#include "common/timeutil.h"
#include "config/config.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct Repo Repo;

/* Why a backup is kept: a bit set; 0 means it expires. */
enum
{
	RETENTION_NEWEST = 1u << 0,
	RETENTION_PINNED = 1u << 1,
	RETENTION_HOURLY = 1u << 2,
	RETENTION_DAILY = 1u << 3,
	RETENTION_WEEKLY = 1u << 4,
	RETENTION_MONTHLY = 1u << 5,
	RETENTION_YEARLY = 1u << 6,
	RETENTION_WITHIN = 1u << 7,
	RETENTION_MIN = 1u << 8,
	RETENTION_NO_POLICY = 1u << 9,	/* the group has no policy: everything is kept */
	RETENTION_UNREADABLE = 1u << 10,	/* the manifest cannot be read: never expired */
};
#define RETENTION_NREASONS 11

/* "newest", "pinned", "hourly", ... for one bit. */
const char *retention_reason_name(uint32_t bit);
/* "daily,weekly" (reasons in the order of the enum), or "" for 0; appended to out. */
void retention_reasons_format(uint32_t reasons, Buf *out);
/* A JSON array of reason names. */
json_t *retention_reasons_json(uint32_t reasons);

typedef struct RetentionPolicy
{
	int64_t hourly, daily, weekly, monthly, yearly;	/* periods to keep; 0 = rule off */
	int64_t within_secs;		/* 0 = rule off */
	int64_t min;				/* floor; 0 = none */
} RetentionPolicy;

/* True when no rule would expire anything (see the top of this file). */
bool retention_policy_empty(const RetentionPolicy *p);

/*
 * Parse "hourly=24,daily=7,weekly=4,monthly=12,yearly=5,within=2d,min=3"
 * (any subset, any order, blanks allowed around items; "none" is the empty
 * policy).  PV_ECONFIG "invalid retention policy '%s': ..." naming the bad
 * item.
 */
int retention_policy_parse(RetentionPolicy *out, const char *spec);

/* The same syntax back ("daily=7,weekly=4"), or "none"; appended to out. */
void retention_policy_format(const RetentionPolicy *p, Buf *out);
json_t *retention_policy_json(const RetentionPolicy *p);

/*
 * The policy of a group and its time zone, from the configuration.  The
 * first of these that sets anything is the whole policy:
 *   1. [source:NAME] retention-KIND          (e.g. retention-physical)
 *   2. [source:NAME] keep-hourly .. keep-min (unset keys are 0)
 *   3. [global] retention-KIND
 *   4. [global] keep-hourly .. keep-min
 * source may be NULL or name no section (then 3 and 4 apply).  The zone is
 * the source's time-zone, else the global one, else NULL (the local zone);
 * *out_tz is lent from cfg.  *out_origin (may be NULL) gets a short
 * description of where the policy came from ("[source:prod] retention-logical").
 * PV_ECONFIG for an unparsable retention-KIND or unknown zone.
 */
int retention_policy_for(RetentionPolicy *out, const char **out_tz, char **out_origin,
						 const PvConfig *cfg, const char *source, const char *kind);

/* ---- the engine ---- */

typedef struct RetentionEntry
{
	const char *id;				/* lent; tie-breaker after start */
	PvTime start;
	bool pinned;
	uint32_t reasons;			/* output */
} RetentionEntry;

/*
 * Decide every entry of one group (any order; the array is not reordered):
 * sets each entry's reasons.  tz as in timeutil.h (NULL = local).
 * PV_EUSAGE for an unknown zone (nothing is decided then).
 */
int retention_apply(RetentionEntry *entries, size_t n, const RetentionPolicy *p, const char *tz);

/*
 * The period a rule (RETENTION_HOURLY .. RETENTION_YEARLY) puts t in, as
 * people read it: "2026-11-22 14h (+01:00)", "2026-11-22", "2026-W47",
 * "2026-11", "2026"; into out (>= 40 bytes).  "" for other bits.
 */
void retention_period_label(char *out, size_t outsz, uint32_t rule, PvTime t, const char *tz);

/* ---- a plan for a repository ---- */

typedef struct RetentionItem
{
	char *id;
	char *source;				/* "" when the backup names none */
	char *kind;					/* NULL when unreadable */
	char *database;				/* logical backups: the database; else NULL */
	PvTime start;				/* from the manifest, else from the id */
	PvTime stop;
	bool pinned;
	uint32_t reasons;			/* 0 = expire */
	size_t group;				/* index into groups; (size_t) -1 when unreadable */
	char *error;				/* why the manifest cannot be read, or NULL */
	char *start_wal;			/* physical backups: the first WAL segment needed, or NULL */
	uint64_t wal_segment_size;	/* physical backups: 0 when not recorded */
} RetentionItem;

typedef struct RetentionGroup
{
	char *source;
	char *kind;
	char *database;				/* NULL unless logical */
	RetentionPolicy policy;
	char *time_zone;			/* NULL = local */
	char *origin;				/* where the policy came from, or "none" */
	size_t nitems, nexpire;
} RetentionGroup;

typedef struct RetentionPlan
{
	RetentionItem *items;		/* in id order (oldest first) */
	size_t nitems;
	RetentionGroup *groups;		/* in order of first appearance */
	size_t ngroups;
	size_t nexpire;
	size_t nunreadable;
} RetentionPlan;

typedef struct RetentionPlanOpts
{
	const char *source;			/* only this source ("" = backups without one); NULL = all */
	const char *kind;			/* only this kind; NULL = all */
	const RetentionPolicy *policy;	/* replaces every configured policy (origin "--policy"); NULL = none */
} RetentionPlanOpts;

/*
 * Read every manifest (not the item lists) and the pins, and decide every
 * backup that matches opts.  Unreadable manifests are kept (UNREADABLE) and
 * counted.  opts may be NULL.  Errors: storage failures, PV_ECONFIG from
 * the policies (before anything is decided).
 */
int retention_plan_build(RetentionPlan *out, Repo *repo, const PvConfig *cfg,
						 const RetentionPlanOpts *opts);
void retention_plan_free(RetentionPlan *plan);	/* leaves it empty */

/* The group's label for people: "prod logical app", "- physical". Appended to out. */
void retention_group_label(const RetentionGroup *g, Buf *out);

/* The plan as JSON: {"groups":[...], "backups":[...], "expire":N, "keep":N}. */
json_t *retention_plan_json(const RetentionPlan *plan);

/* The plan's item for a backup id, or NULL. */
const RetentionItem *retention_plan_find(const RetentionPlan *plan, const char *id);

/*
 * ---- WAL no kept physical backup needs ----
 *
 * Per source with physical backups in the plan: every archived segment
 * (also .partial and .backup files) whose segment number is below the
 * start_wal of the oldest *kept* physical backup of that source goes.
 * Recovery from any kept backup, to any point after it (its PITR window),
 * replays only WAL from its start onwards, and LSNs (so segment numbers)
 * only grow across timelines.  History files are always kept (tiny, and
 * needed to follow timelines).  Nothing is deleted for a source whose kept
 * backups do not all record start_wal and one segment size (the reason is
 * given), nor for WAL of sources without physical backups.  Physical
 * backups without a source use the archive of source "default".
 */
typedef struct RetentionWalFile
{
	char *name;					/* as archived: "000000010000000A000000FF" */
	uint32_t timeline;
	uint64_t segno;
	uint64_t stored;			/* bytes of the object */
} RetentionWalFile;

typedef struct RetentionWal
{
	char *source;				/* the archive's source name */
	char *keep_from;			/* first segment kept, or NULL when nothing is judged */
	char *reason;				/* why nothing is deleted, or NULL */
	RetentionWalFile *files;	/* to delete, oldest first */
	size_t nfiles;
	uint64_t bytes;
	size_t kept;				/* archived files that stay */
} RetentionWal;

typedef struct RetentionWalPlan
{
	RetentionWal *sources;
	size_t n;
} RetentionWalPlan;

int retention_wal_plan(RetentionWalPlan *out, Repo *repo, const RetentionPlan *plan);
/* Delete the plan's files, oldest first; *out_deleted (may be NULL) counts them. */
int retention_wal_expire(Repo *repo, const RetentionWalPlan *wp, size_t *out_deleted);
void retention_wal_plan_free(RetentionWalPlan *wp);
json_t *retention_wal_plan_json(const RetentionWalPlan *wp);

#endif
