/*
 * extconf.h: configuration files that live outside the data directory
 * (Debian keeps postgresql.conf, pg_hba.conf, pg_ident.conf and conf.d/ in
 * /etc/postgresql/VERSION/CLUSTER), kept with a physical backup.
 *
 * Backup: the server's config_file, hba_file and ident_file settings name
 * them; postgresql.conf's include, include_if_exists and include_dir
 * directives (followed recursively) name the rest.  Every file found
 * outside the data directory (whose own files the backup has anyway) is
 * stored as an item "extconf/<n>" of type "stream" (restore of the data
 * directory writes only "file" items, so they never land in it by
 * accident), and the manifest's metadata "external_config" lists them:
 *   {"config_file": ..., "config_dir": dirname(config_file), "data_directory": ...,
 *    "files": [{"item", "path", "setting", "mode"}], "dirs": [{"path", "mode"}]}
 * setting is "config_file", "hba_file", "ident_file" or "include".
 *
 * Restore (pgphys_extconf_restore), what an operator expects:
 *   - by default the files go into the restored data directory, where a
 *     cluster started with pg_ctl -D finds them: config_file becomes
 *     postgresql.conf, hba_file pg_hba.conf, ident_file pg_ident.conf
 *     (pgvault_conf/pg_hba.conf etc. when the data directory has its own
 *     file there), files under config_file's directory keep their place
 *     below it (conf.d/...), any other file goes to pgvault_conf/<n>-<name>.
 *     A postgresql.conf the data directory already has is left alone (a
 *     warning names it); when config_file itself was inside the data
 *     directory, that restored postgresql.conf is adjusted instead.
 *   - with config_dir, they go into that directory instead (absent or
 *     empty), with the same layout but keeping config_file's name, and
 *     data_directory, hba_file and ident_file point at the restored ones,
 *     so `postgres -c config_file=DIR/postgresql.conf` runs the restored
 *     cluster.
 *   In both cases the restored files never point back at the original
 *   cluster: include directives are rewritten to where their targets were
 *   restored (paths inside the original data directory to the restored
 *   one), hba_file and ident_file name the restored copies (commented out
 *   when these are in the data directory's default place), data_directory
 *   is commented out (or, with config_dir, names the restored data
 *   directory), and external_pid_file is commented out (a second server
 *   must not overwrite the original's).
 *   The original files are never touched.
 */
#ifndef PV_PG_PHYSICAL_EXTCONF_H
#define PV_PG_PHYSICAL_EXTCONF_H

#include "pg/conn.h"
#include "repo/manifest.h"
#include "repo/writer.h"

#include <jansson.h>

typedef struct Repo Repo;

#define PGPHYS_EXTCONF_PREFIX "extconf/"

/*
 * Find the configuration files outside pgdata (absolute) and store them in
 * w; *out_md gets the "external_config" object (NULL when there are none)
 * and *out_files their number.  Settings that cannot be read (a role
 * without pg_read_all_settings) only warn: the backup goes on without them.
 */
int pgphys_extconf_backup(json_t **out_md, uint32_t *out_files, PGconn *conn, const char *pgdata,
						  RepoWriter *w);

/*
 * Restore m's external configuration files (none: nothing to do) into the
 * restored data directory pgdata, or into config_dir when not NULL (see
 * above).  PV_EREFUSED when config_dir is not empty.
 */
int pgphys_extconf_restore(Repo *repo, const RepoManifest *m, const char *pgdata,
						   const char *config_dir);

/*
 * The restore's rewrite of one configuration file's text (exposed for
 * tests): orig_path is where the file was (relative includes resolve from
 * there); map {original path: restored path} holds every restored file and
 * directory; paths under orig_pgdata move under pgdata; by_setting
 * {"hba_file"|"ident_file": restored path} is used with config_dir.
 * Caller frees.
 */
char *pgphys_extconf_rewrite(const char *text, const char *orig_path, const json_t *map,
							 const char *orig_pgdata, const char *pgdata, const char *config_dir,
							 const json_t *by_setting);

/* --config-dir's rule, to check before anything is written: absent or empty. */
int pgphys_extconf_dir_check(const char *config_dir);

#endif
