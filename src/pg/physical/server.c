/*
 * server.c: the physical backup's SQL (see server.h).  Every query checks
 * its result's shape; the backup functions are called by their
 * version-specific names.
 */
#include "pg/physical/server.h"

#include "common/error.h"
#include "common/mem.h"
#include "pg/wal/wal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PG_VERSION_BACKUP_START 150000	/* pg_backup_start/stop replace pg_start/stop_backup */
#define PG_VERSION_SNAPSHOT_FUNCS 130000	/* pg_current_snapshot replaces txid_current_snapshot */

static int
one_row(PGresult *r, const char *what)
{
	if (PQntuples(r) != 1)
	{
		int n = PQntuples(r);

		PQclear(r);
		return pv_error_set(PV_EPG, "%s: %d rows instead of 1", what, n);
	}
	return 0;
}

static char *
value_dup(PGresult *r, int col)
{
	return pv_strdup(PQgetisnull(r, 0, col) ? "" : PQgetvalue(r, 0, col));
}

int
pgphys_server_read(PgPhysServer *out, PGconn *conn)
{
	static const char sql[] =
		"SELECT current_setting('server_version_num')::int,"
		" current_setting('server_version'),"
		" current_setting('data_directory'),"
		" (SELECT system_identifier FROM pg_control_system())::text,"
		" current_setting('data_checksums') = 'on',"
		" current_setting('block_size')::int,"
		" pg_size_bytes(current_setting('wal_segment_size')),"
		" pg_size_bytes(current_setting('segment_size')) / current_setting('block_size')::int,"
		" current_setting('archive_mode'),"
		" current_setting('archive_command'),"
		" coalesce(current_setting('archive_library', true), ''),"
		" pg_is_in_recovery()";
	PGresult *r;
	int rc;

	memset(out, 0, sizeof(*out));
	if (PQserverVersion(conn) < PGPHYS_MIN_VERSION)
	{
		pv_error_set(PV_EUSAGE, "physical backups need PostgreSQL 12 or later (the server is %d)",
					 PQserverVersion(conn));
		return PV_EUSAGE;
	}
	if ((rc = pgconn_query(&r, conn, 12, sql, 0, NULL)) < 0)
	{
		pv_error_prefix(rc, "cannot read the server's settings");
		pv_error_hint("physical backups need a superuser, or a role with pg_read_all_settings "
					  "and EXECUTE on the backup functions");
		return rc;
	}
	if ((rc = one_row(r, "server settings")) < 0)
		return rc;
	out->version_num = atoi(PQgetvalue(r, 0, 0));
	out->version_text = value_dup(r, 1);
	out->data_directory = value_dup(r, 2);
	out->system_identifier = strtoull(PQgetvalue(r, 0, 3), NULL, 10);
	out->data_checksums = strcmp(PQgetvalue(r, 0, 4), "t") == 0;
	out->block_size = (uint32_t) strtoul(PQgetvalue(r, 0, 5), NULL, 10);
	out->wal_segment_size = strtoull(PQgetvalue(r, 0, 6), NULL, 10);
	out->segment_blocks = (uint32_t) strtoul(PQgetvalue(r, 0, 7), NULL, 10);
	out->archive_mode = value_dup(r, 8);
	out->archive_command = value_dup(r, 9);
	out->archive_library = value_dup(r, 10);
	out->in_recovery = strcmp(PQgetvalue(r, 0, 11), "t") == 0;
	PQclear(r);
	if (!pgwal_segment_size_valid(out->wal_segment_size) || out->block_size < 1024 ||
		out->block_size > 32768 || (out->block_size & (out->block_size - 1)) != 0 ||
		out->segment_blocks == 0)
	{
		rc = pv_error_set(PV_EPG, "the server reports implausible sizes (block %u, WAL segment "
						  "%" PRIu64 ")", out->block_size, out->wal_segment_size);
		pgphys_server_clear(out);
		return rc;
	}
	return 0;
}

void
pgphys_server_clear(PgPhysServer *s)
{
	pv_free(s->version_text);
	pv_free(s->data_directory);
	pv_free(s->archive_mode);
	pv_free(s->archive_command);
	pv_free(s->archive_library);
	memset(s, 0, sizeof(*s));
}

int
pgphys_server_check_archiving(const PgPhysServer *s)
{
	if (strcmp(s->archive_mode, "off") == 0)
	{
		pv_error_set(PV_EREFUSED, "WAL archiving is off (archive_mode = off): a physical backup "
					 "could not be restored");
		pv_error_hint("set archive_mode = on and archive_command = 'pgvault archive-push "
					  "--source NAME %%p' in postgresql.conf, then restart the server");
		return PV_EREFUSED;
	}
	if (s->archive_command[0] == '\0' && s->archive_library[0] == '\0')
	{
		pv_error_set(PV_EREFUSED, "archive_mode is on but archive_command is empty: no WAL "
					 "reaches the archive");
		pv_error_hint("set archive_command = 'pgvault archive-push --source NAME %%p' and reload "
					  "the server");
		return PV_EREFUSED;
	}
	return 0;
}

int
pgphys_archiver_read(PgPhysArchiver *out, PGconn *conn)
{
	static const char sql[] =
		"SELECT archived_count, failed_count, coalesce(last_archived_wal, ''),"
		" coalesce(last_failed_wal, ''),"
		" last_failed_time IS NOT NULL AND (last_archived_time IS NULL OR"
		"  last_failed_time > last_archived_time)"
		" FROM pg_stat_archiver";
	PGresult *r;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = pgconn_query(&r, conn, 5, sql, 0, NULL)) < 0 || (rc = one_row(r, "pg_stat_archiver")) < 0)
		return rc;
	out->archived_count = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	out->failed_count = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
	snprintf(out->last_archived_wal, sizeof(out->last_archived_wal), "%s", PQgetvalue(r, 0, 2));
	snprintf(out->last_failed_wal, sizeof(out->last_failed_wal), "%s", PQgetvalue(r, 0, 3));
	out->failing = strcmp(PQgetvalue(r, 0, 4), "t") == 0;
	PQclear(r);
	return 0;
}

int
pgphys_backup_start(uint64_t *start_lsn, PGconn *conn, int version_num, const char *label,
					bool fast)
{
	const char *params[2] = {label, fast ? "true" : "false"};
	const char *sql = version_num >= PG_VERSION_BACKUP_START
		? "SELECT pg_backup_start($1, $2::boolean)::text"
		: "SELECT pg_start_backup($1, $2::boolean, false)::text";
	char *lsn = NULL;
	int rc;

	if ((rc = pgconn_query_value(&lsn, conn, sql, 2, params)) < 0)
	{
		pv_error_prefix(rc, "cannot start the backup");
		return rc;
	}
	rc = lsn ? pgwal_lsn_parse(start_lsn, lsn) : pv_error_set(PV_EPG, "backup start gave no LSN");
	pv_free(lsn);
	return rc;
}

int
pgphys_label_parse(const char *label, uint64_t *start_lsn, uint32_t *timeline)
{
	const char *p = strstr(label, "START WAL LOCATION: ");
	const char *t = strstr(label, "START TIMELINE: ");
	char lsn[32];
	unsigned int tli;

	if (p == NULL || t == NULL || sscanf(p + 20, "%31[0-9A-Fa-f/]", lsn) != 1 ||
		sscanf(t + 16, "%u", &tli) != 1 || tli == 0 || pgwal_lsn_parse(start_lsn, lsn) < 0)
		return pv_error_set(PV_EPG, "the server returned a backup_label this version cannot read");
	*timeline = tli;
	return 0;
}

int
pgphys_backup_stop(PgPhysStop *out, PGconn *conn, int version_num)
{
	const char *sql = version_num >= PG_VERSION_BACKUP_START
		? "SELECT lsn::text, labelfile, coalesce(spcmapfile, ''),"
		"  (extract(epoch FROM clock_timestamp()) * 1000000)::bigint FROM pg_backup_stop(false)"
		: "SELECT lsn::text, labelfile, coalesce(spcmapfile, ''),"
		"  (extract(epoch FROM clock_timestamp()) * 1000000)::bigint FROM pg_stop_backup(false, false)";
	const char *xid_sql = version_num >= PG_VERSION_SNAPSHOT_FUNCS
		? "SELECT pg_snapshot_xmax(pg_current_snapshot())::text"
		: "SELECT txid_snapshot_xmax(txid_current_snapshot())::text";
	PGresult *r;
	char *xid = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = pgconn_query(&r, conn, 4, sql, 0, NULL)) < 0)
		return pv_error_prefix(rc, "cannot stop the backup");
	if ((rc = one_row(r, "backup stop")) < 0)
		return rc;
	rc = pgwal_lsn_parse(&out->stop_lsn, PQgetvalue(r, 0, 0));
	out->backup_label = value_dup(r, 1);
	out->tablespace_map = value_dup(r, 2);
	out->end_time_us = strtoll(PQgetvalue(r, 0, 3), NULL, 10);
	PQclear(r);
	if (rc < 0 || (rc = pgphys_label_parse(out->backup_label, &out->start_lsn, &out->timeline)) < 0)
		goto done;
	if ((rc = pgconn_query_value(&xid, conn, xid_sql, 0, NULL)) < 0)
		goto done;
	out->next_xid = xid ? strtoull(xid, NULL, 10) : 0;
done:
	pv_free(xid);
	if (rc < 0)
		pgphys_stop_clear(out);
	return rc;
}

void
pgphys_stop_clear(PgPhysStop *s)
{
	pv_free(s->backup_label);
	pv_free(s->tablespace_map);
	memset(s, 0, sizeof(*s));
}
