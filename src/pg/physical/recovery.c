/*
 * recovery.c: recovery targets and settings (see recovery.h).
 *
 * Times are written for the server in UTC with microseconds
 * ("2026-11-22 14:30:05.123456+00"), so the restored server's TimeZone
 * setting cannot change what the target means and sub-second targets work.
 */
#include "pg/physical/recovery.h"

#include "common/error.h"
#include "common/mem.h"
#include "pg/wal/wal.h"

#include <ctype.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const target_keys[] = {
	"restore_command", "recovery_target", "recovery_target_time", "recovery_target_lsn",
	"recovery_target_xid", "recovery_target_name", "recovery_target_action",
	"recovery_target_timeline", "recovery_target_inclusive",
};

static void
time_text(char *out, size_t outsz, PvTime t)
{
	PvCalendar c;

	pv_time_calendar(&c, t, "UTC");
	snprintf(out, outsz, "%04d-%02d-%02d %02d:%02d:%02d.%06d+00", c.year, c.month, c.day, c.hour,
			 c.minute, c.second, c.usec);
}

int
pgphys_target_set(PgPhysTarget *t, PgPhysTargetKind kind, const char *value, const char *tz)
{
	char *end;

	if (t->kind != PGPHYS_TARGET_NONE)
		return pv_error_set(PV_EUSAGE, "give only one recovery target");
	switch (kind)
	{
		case PGPHYS_TARGET_TIME:
			if (pv_time_parse(&t->time, value, tz) < 0)
				return PV_EUSAGE;
			break;
		case PGPHYS_TARGET_LSN:
			if (pgwal_lsn_parse(&t->lsn, value) < 0)
				return PV_EUSAGE;
			break;
		case PGPHYS_TARGET_XID:
			t->xid = strtoull(value, &end, 10);
			if (!isdigit((unsigned char) value[0]) || *end != '\0' || t->xid < 3)
				return pv_error_set(PV_EUSAGE, "invalid transaction id '%s'", value);
			break;
		case PGPHYS_TARGET_NAME:
			if (value[0] == '\0' || strlen(value) >= 64)
				return pv_error_set(PV_EUSAGE, "invalid restore point name '%s' (1 to 63 bytes)",
									value);
			t->name = pv_strdup(value);
			break;
		case PGPHYS_TARGET_IMMEDIATE:
		case PGPHYS_TARGET_NONE:
			break;
	}
	t->kind = kind;
	return 0;
}

int
pgphys_target_check(const PgPhysTarget *t)
{
	if (t->action != NULL && strcmp(t->action, "promote") != 0 && strcmp(t->action, "pause") != 0 &&
		strcmp(t->action, "shutdown") != 0)
		return pv_error_set(PV_EUSAGE, "--target-action must be promote, pause or shutdown, not "
							"'%s'", t->action);
	if (t->timeline != NULL && strcmp(t->timeline, "latest") != 0 &&
		strcmp(t->timeline, "current") != 0)
	{
		char *end;
		unsigned long v = strtoul(t->timeline, &end, 10);

		if (!isdigit((unsigned char) t->timeline[0]) || *end != '\0' || v == 0 || v > UINT32_MAX)
			return pv_error_set(PV_EUSAGE, "--target-timeline must be latest, current or a "
								"timeline number, not '%s'", t->timeline);
	}
	if (t->kind == PGPHYS_TARGET_NONE && (t->action != NULL || t->exclusive))
		return pv_error_set(PV_EUSAGE, "--target-action and --target-exclusive need a recovery "
							"target (--target-time, --target-lsn, --target-xid, --target-name or "
							"--target-immediate)");
	if (t->exclusive && (t->kind == PGPHYS_TARGET_NAME || t->kind == PGPHYS_TARGET_IMMEDIATE))
		return pv_error_set(PV_EUSAGE, "--target-exclusive goes with --target-time, --target-lsn "
							"or --target-xid");
	return 0;
}

void
pgphys_target_clear(PgPhysTarget *t)
{
	pv_free(t->name);
	memset(t, 0, sizeof(*t));
}

char *
pgphys_target_describe(const PgPhysTarget *t)
{
	char buf[64];

	switch (t->kind)
	{
		case PGPHYS_TARGET_TIME:
			time_text(buf, sizeof(buf), t->time);
			return pv_asprintf("time %s", buf);
		case PGPHYS_TARGET_LSN:
			return pv_asprintf("LSN %s", pgwal_lsn_format(buf, sizeof(buf), t->lsn));
		case PGPHYS_TARGET_XID:
			return pv_asprintf("transaction %" PRIu64, t->xid);
		case PGPHYS_TARGET_NAME:
			return pv_asprintf("restore point '%s'", t->name);
		case PGPHYS_TARGET_IMMEDIATE:
			return pv_strdup("the end of the backup (immediate)");
		case PGPHYS_TARGET_NONE:
			break;
	}
	return pv_strdup("the end of the archived WAL");
}

/* a <= b for transaction ids; 32-bit ids compare circularly, as TransactionIdPrecedes does. */
static bool
xid_not_after(uint64_t a, uint64_t b)
{
	if (b <= UINT32_MAX)
		return (int32_t) ((uint32_t) b - (uint32_t) a) >= 0;
	return a <= b;
}

bool
pgphys_target_reachable(const PgPhysTarget *t, const json_t *md, char **why)
{
	const char *s;
	char buf[64];

	if (why != NULL)
		*why = NULL;
	switch (t->kind)
	{
		case PGPHYS_TARGET_TIME:
			{
				json_t *v = json_object_get(md, "backup_end_time_us");
				PvTime end = json_is_integer(v) ? (PvTime) json_integer_value(v) : INT64_MAX;

				if (end <= t->time)
					return true;
				if (why != NULL)
				{
					time_text(buf, sizeof(buf), end);
					*why = pv_asprintf("it became consistent at %s", buf);
				}
				return false;
			}
		case PGPHYS_TARGET_LSN:
			{
				uint64_t stop;

				s = json_string_value(json_object_get(md, "stop_lsn"));
				if (s != NULL && pgwal_lsn_parse(&stop, s) == 0 && stop <= t->lsn)
					return true;
				pv_error_clear();
				if (why != NULL)
					*why = pv_asprintf("it became consistent at LSN %s", s ? s : "?");
				return false;
			}
		case PGPHYS_TARGET_XID:
			{
				uint64_t next;

				s = json_string_value(json_object_get(md, "next_xid"));
				if (s != NULL && (next = strtoull(s, NULL, 10)) > 0 && xid_not_after(next, t->xid))
					return true;
				if (why != NULL)
					*why = pv_asprintf("transaction ids up to %s were already assigned when it "
									   "became consistent", s ? s : "?");
				return false;
			}
		default:
			return true;
	}
}

char *
pgphys_shell_quote(const char *s)
{
	Buf b = PV_BUF_INIT;
	bool plain = s[0] != '\0';

	for (const char *p = s; *p && plain; p++)
		plain = isalnum((unsigned char) *p) || strchr("/._-+=:,@%", *p) != NULL;
	if (plain)
		return pv_strdup(s);
	buf_append_byte(&b, '\'');
	for (const char *p = s; *p; p++)
	{
		if (*p == '\'')
			buf_append_str(&b, "'\\''");
		else
			buf_append_byte(&b, (unsigned char) *p);
	}
	buf_append_byte(&b, '\'');
	return buf_detach(&b);
}

char *
pgphys_conf_quote(const char *s)
{
	Buf b = PV_BUF_INIT;

	buf_append_byte(&b, '\'');
	for (const char *p = s; *p; p++)
	{
		if (*p == '\'' || *p == '\\')
			buf_append_byte(&b, (unsigned char) *p);
		buf_append_byte(&b, (unsigned char) *p);
	}
	buf_append_byte(&b, '\'');
	return buf_detach(&b);
}

static void
setting(Buf *out, const char *key, const char *value)
{
	char *q = pgphys_conf_quote(value);

	buf_printf(out, "%s = %s\n", key, q);
	pv_free(q);
}

void
pgphys_recovery_settings(Buf *out, const PgPhysTarget *t, const char *restore_command,
						 bool archive_off, const char *backup_id)
{
	char buf[64];

	buf_printf(out, "# recovery settings written by pgvault restore of backup %s\n", backup_id);
	setting(out, "restore_command", restore_command);
	switch (t->kind)
	{
		case PGPHYS_TARGET_TIME:
			time_text(buf, sizeof(buf), t->time);
			setting(out, "recovery_target_time", buf);
			break;
		case PGPHYS_TARGET_LSN:
			setting(out, "recovery_target_lsn", pgwal_lsn_format(buf, sizeof(buf), t->lsn));
			break;
		case PGPHYS_TARGET_XID:
			snprintf(buf, sizeof(buf), "%" PRIu64, t->xid);
			setting(out, "recovery_target_xid", buf);
			break;
		case PGPHYS_TARGET_NAME:
			setting(out, "recovery_target_name", t->name);
			break;
		case PGPHYS_TARGET_IMMEDIATE:
			setting(out, "recovery_target", "immediate");
			break;
		case PGPHYS_TARGET_NONE:
			break;
	}
	if (t->action != NULL)
		setting(out, "recovery_target_action", t->action);
	if (t->timeline != NULL)
		setting(out, "recovery_target_timeline", t->timeline);
	if (t->exclusive)
		setting(out, "recovery_target_inclusive", "false");
	if (archive_off)
		setting(out, "archive_mode", "off");
}

/* The key a postgresql.conf line sets, or NULL (comments, blank lines). */
static bool
line_sets(const char *line, size_t len, const char *key)
{
	size_t k = strlen(key);

	while (len > 0 && (*line == ' ' || *line == '\t'))
	{
		line++;
		len--;
	}
	if (len <= k || strncasecmp(line, key, k) != 0)
		return false;
	return line[k] == ' ' || line[k] == '\t' || line[k] == '=';
}

void
pgphys_auto_conf_merge(Buf *out, const char *old, const char *block)
{
	const char *p = old ? old : "";

	while (*p)
	{
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t) (nl - p) : strlen(p);
		bool drop = false;

		for (size_t i = 0; i < PV_ARRAY_LEN(target_keys) && !drop; i++)
			drop = line_sets(p, len, target_keys[i]);
		if (!drop && strstr(block, "\narchive_mode = ") != NULL)
			drop = line_sets(p, len, "archive_mode");
		/* our own comment line from an earlier restore of the source */
		if (!drop && len > 0 && strncmp(p, "# recovery settings written by pgvault", 38) == 0)
			drop = true;
		if (!drop)
		{
			buf_append(out, p, len);
			buf_append_byte(out, '\n');
		}
		p += len + (nl ? 1 : 0);
	}
	buf_append_str(out, block);
}
