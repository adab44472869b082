/*
 * extconf.c: configuration files outside the data directory (see
 * extconf.h for what is stored and where restore puts it).
 *
 * The files are small (kilobytes): each is read whole.  The configuration
 * file syntax is PostgreSQL's (guc-file.l): "name [=] value", values quoted
 * with '...' ('' for a quote) or bare, '#' starts a comment; names are
 * case-insensitive.  Only the directives that name files are interpreted.
 */
#include "pg/physical/extconf.h"

#include "common/buf.h"
#include "common/error.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/mem.h"
#include "repo/reader.h"
#include "repo/repo.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define INCLUDE_DEPTH_MAX 10	/* PostgreSQL's own limit of nested includes */

/* ---- the syntax ---- */

/*
 * One line's "name [=] value": *key and *value (caller frees) when the line
 * is a setting, false for blank lines and comments.
 */
static bool
conf_line_parse(const char *line, size_t len, char **key, char **value)
{
	const char *p = line, *end = line + len, *k;
	Buf v = PV_BUF_INIT;

	while (p < end && isspace((unsigned char) *p))
		p++;
	k = p;
	while (p < end && (isalnum((unsigned char) *p) || *p == '_' || *p == '.' || *p == '-'))
		p++;
	if (p == k)
		return false;
	*key = pv_strndup(k, (size_t) (p - k));
	while (p < end && isspace((unsigned char) *p))
		p++;
	if (p < end && *p == '=')
		p++;
	while (p < end && isspace((unsigned char) *p))
		p++;
	if (p < end && *p == '\'')
	{
		for (p++; p < end; p++)
		{
			if (*p == '\'' && p + 1 < end && p[1] == '\'')
				buf_append_byte(&v, *p++);
			else if (*p == '\'')
				break;
			else
				buf_append_byte(&v, *p);
		}
	}
	else
		while (p < end && !isspace((unsigned char) *p) && *p != '#')
			buf_append_byte(&v, *p++);
	*value = buf_detach(&v);
	return true;
}

static bool
key_is(const char *key, const char *name)
{
	return strcasecmp(key, name) == 0;
}

static bool
path_under(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	while (n > 1 && dir[n - 1] == '/')
		n--;
	return strncmp(path, dir, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

/* value as the server reads it: relative to the including file's directory. */
static char *
path_resolve(const char *including, const char *value)
{
	char *dir, *out;

	if (value[0] == '/')
		return pv_strdup(value);
	dir = pv_fs_path_dirname(including);
	out = pv_fs_path_join(dir, value);
	pv_free(dir);
	return out;
}

/* ---- backup ---- */

typedef struct Collect
{
	const char *pgdata;
	RepoWriter *w;
	json_t *files;				/* [{item, path, setting, mode}] */
	json_t *dirs;				/* [{path, mode}] */
	json_t *seen;				/* {path: true} */
	int rc;
} Collect;

static void collect_file(Collect *c, const char *path, const char *setting, bool must_exist,
						 int depth);

static int
item_store(Collect *c, const char *path, const char *setting, const Buf *data, uint32_t mode)
{
	char name[32];
	RepoWriterItem *item = NULL;
	RepoItemSpec spec = {.type = "stream"};
	int rc;

	snprintf(name, sizeof(name), PGPHYS_EXTCONF_PREFIX "%zu", json_array_size(c->files));
	spec.name = name;
	if ((rc = repo_writer_item_begin(&item, c->w, &spec)) < 0)
		return rc;
	if ((rc = repo_writer_item_write(item, data->data, data->len)) < 0)
	{
		repo_writer_item_cancel(item);
		return rc;
	}
	if ((rc = repo_writer_item_end(item, NULL)) < 0)
		return rc;
	json_array_append_new(c->files, json_pack("{s:s, s:s, s:s, s:i}", "item", name, "path", path,
											  "setting", setting, "mode", (int) mode));
	return 0;
}

/* include_dir: every *.conf file not starting with '.', in name order (as the server). */
static void
collect_dir(Collect *c, const char *dir, int depth)
{
	struct dirent **names = NULL;
	struct stat st;
	int n;

	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
	{
		pv_log_warn("configuration directory '%s' is included but cannot be read: not kept with "
					"the backup", dir);
		return;
	}
	if (!path_under(dir, c->pgdata))
		json_array_append_new(c->dirs, json_pack("{s:s, s:i}", "path", dir, "mode",
												 (int) (st.st_mode & 07777)));
	if ((n = scandir(dir, &names, NULL, alphasort)) < 0)
		return;
	for (int i = 0; i < n; i++)
	{
		const char *nm = names[i]->d_name;
		size_t len = strlen(nm);

		if (c->rc == 0 && nm[0] != '.' && len > 5 && strcmp(nm + len - 5, ".conf") == 0)
		{
			char *p = pv_fs_path_join(dir, nm);

			collect_file(c, p, "include", true, depth + 1);
			pv_free(p);
		}
		free(names[i]);
	}
	free(names);
}

static void
collect_includes(Collect *c, const char *path, const Buf *text, int depth)
{
	const char *p = buf_cstr(text), *end = p + text->len;

	while (p < end && c->rc == 0)
	{
		const char *nl = memchr(p, '\n', (size_t) (end - p));
		size_t len = nl ? (size_t) (nl - p) : (size_t) (end - p);
		char *key = NULL, *value = NULL;

		if (conf_line_parse(p, len, &key, &value) && value[0] != '\0')
		{
			char *target = path_resolve(path, value);

			if (key_is(key, "include") || key_is(key, "include_if_exists"))
				collect_file(c, target, "include", key_is(key, "include"), depth + 1);
			else if (key_is(key, "include_dir"))
				collect_dir(c, target, depth);
			pv_free(target);
		}
		pv_free(key);
		pv_free(value);
		p += len + 1;
	}
}

static void
collect_file(Collect *c, const char *path, const char *setting, bool must_exist, int depth)
{
	Buf data = PV_BUF_INIT;
	struct stat st;
	bool parse = strcmp(setting, "config_file") == 0 || strcmp(setting, "include") == 0;

	if (c->rc < 0 || depth > INCLUDE_DEPTH_MAX || json_object_get(c->seen, path) != NULL)
		return;
	json_object_set_new(c->seen, path, json_true());
	if (stat(path, &st) < 0 || pv_fs_read_file(path, &data) < 0)
	{
		if (must_exist)
			pv_log_warn("configuration file '%s' (%s) cannot be read: not kept with the backup",
						path, setting);
		pv_error_clear();
		goto done;
	}
	if (!path_under(path, c->pgdata) &&
		(c->rc = item_store(c, path, setting, &data, (uint32_t) (st.st_mode & 07777))) < 0)
		goto done;
	if (parse)
		collect_includes(c, path, &data, depth);
done:
	buf_free(&data);
}

int
pgphys_extconf_backup(json_t **out_md, uint32_t *out_files, PGconn *conn, const char *pgdata,
					  RepoWriter *w)
{
	static const char *const settings[] = {"config_file", "hba_file", "ident_file"};
	Collect c = {.pgdata = pgdata, .w = w, .files = json_array(), .dirs = json_array(),
	.seen = json_object()};
	char *values[3] = {NULL, NULL, NULL};

	*out_md = NULL;
	*out_files = 0;
	for (int i = 0; i < 3; i++)
	{
		const char *params[1] = {settings[i]};

		if (pgconn_query_value(&values[i], conn, "SELECT pg_catalog.current_setting($1)", 1,
							   params) < 0)
		{
			pv_log_warn("cannot read setting %s (%s): configuration files outside the data "
						"directory are not kept with the backup", settings[i], pv_error_msg());
			pv_error_clear();
			goto done;
		}
	}
	for (int i = 0; i < 3 && c.rc == 0; i++)
		if (values[i][0] == '/')
			collect_file(&c, values[i], settings[i], true, 0);
	if (c.rc < 0)
		goto done;
	if (json_array_size(c.files) > 0)
	{
		char *root = pv_fs_path_dirname(values[0]);

		*out_md = json_pack("{s:s, s:s, s:s, s:O, s:O}", "config_file", values[0], "config_dir",
							root, "data_directory", pgdata, "files", c.files, "dirs", c.dirs);
		*out_files = (uint32_t) json_array_size(c.files);
		pv_free(root);
	}
done:
	for (int i = 0; i < 3; i++)
		pv_free(values[i]);
	json_decref(c.files);
	json_decref(c.dirs);
	json_decref(c.seen);
	return c.rc;
}

/* ---- restore ---- */

typedef struct Place
{
	const char *pgdata;			/* the restored data directory */
	const char *config_dir;		/* NULL: into pgdata */
	const char *root;			/* where files go: config_dir or pgdata */
	const char *orig_root;		/* the original config_file's directory */
	const char *orig_pgdata;
	json_t *map;				/* {original path: new path} (files and dirs) */
	json_t *by_setting;			/* {setting: new path} for the three settings */
} Place;

static char *
place_new_path(Place *pl, const char *path, const char *setting, size_t index)
{
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;

	if (strcmp(setting, "config_file") == 0)
		return pv_fs_path_join(pl->root, pl->config_dir ? base : "postgresql.conf");
	if (pl->config_dir == NULL &&
		(strcmp(setting, "hba_file") == 0 || strcmp(setting, "ident_file") == 0))
	{
		/* the server's default place, unless the data directory has its own file there */
		const char *def = strcmp(setting, "hba_file") == 0 ? "pg_hba.conf" : "pg_ident.conf";
		char *p = pv_fs_path_join(pl->root, def);

		if (access(p, F_OK) != 0)
			return p;
		pv_free(p);
		return pv_asprintf("%s/pgvault_conf/%s", pl->root, def);
	}
	if (path_under(path, pl->orig_root) && strcmp(path, pl->orig_root) != 0)
		return pv_asprintf("%s%s", pl->root, path + strlen(pl->orig_root));
	if (strcmp(path, pl->orig_root) == 0)
		return pv_strdup(pl->root);
	return pv_asprintf("%s/pgvault_conf/%zu-%s", pl->root, index, base);
}

/* Where a path named in a restored file must now point, or NULL: leave it. */
static char *
place_lookup(const Place *pl, const char *path)
{
	json_t *v = json_object_get(pl->map, path);

	if (json_is_string(v))
		return pv_strdup(json_string_value(v));
	if (pl->orig_pgdata != NULL && path_under(path, pl->orig_pgdata))
		return pv_asprintf("%s%s", pl->pgdata, path + strlen(pl->orig_pgdata));
	return NULL;
}

static void
quoted_append(Buf *out, const char *key, const char *value, const char *why)
{
	buf_printf(out, "%s = '", key);
	for (const char *p = value; *p; p++)
	{
		if (*p == '\'')
			buf_append_byte(out, '\'');
		buf_append_byte(out, *p);
	}
	buf_printf(out, "'\t# %s\n", why);
}

/* A configuration file's text with every path made to point at the restored cluster. */
static void
conf_rewrite(Buf *out, const Place *pl, const char *orig_path, const Buf *text)
{
	const char *p = buf_cstr(text), *end = p + text->len;

	while (p < end)
	{
		const char *nl = memchr(p, '\n', (size_t) (end - p));
		size_t len = nl ? (size_t) (nl - p) : (size_t) (end - p);
		char *key = NULL, *value = NULL, *newp = NULL, *target = NULL;
		bool done = false;

		if (conf_line_parse(p, len, &key, &value))
		{
			if (key_is(key, "include") || key_is(key, "include_if_exists") ||
				key_is(key, "include_dir"))
			{
				target = path_resolve(orig_path, value);
				if ((newp = place_lookup(pl, target)) != NULL)
				{
					buf_printf(out, "#%.*s\n", (int) len, p);
					quoted_append(out, key, newp, "pgvault restore: the restored copy");
					done = true;
				}
			}
			else if (key_is(key, "hba_file") || key_is(key, "ident_file") ||
					 (pl->config_dir != NULL && key_is(key, "data_directory")))
			{
				const char *np = key_is(key, "data_directory") ? pl->pgdata :
					json_string_value(json_object_get(pl->by_setting, key_is(key, "hba_file") ?
													  "hba_file" : "ident_file"));
				char *def = pv_fs_path_join(pl->pgdata, key_is(key, "hba_file") ? "pg_hba.conf" :
											"pg_ident.conf");

				/* in the data directory's default place: commented out (below), like Debian's */
				if (np != NULL && pl->config_dir == NULL && strcmp(np, def) == 0)
					np = NULL;
				pv_free(def);
				if (np != NULL)
				{
					buf_printf(out, "#%.*s\n", (int) len, p);
					quoted_append(out, key, np, "pgvault restore: the restored cluster's");
					done = true;
				}
			}
			if (!done && (key_is(key, "data_directory") || key_is(key, "hba_file") ||
						  key_is(key, "ident_file") || key_is(key, "external_pid_file")))
			{
				buf_printf(out, "#%.*s\t# pgvault restore: named the original cluster's\n",
						   (int) len, p);
				done = true;
			}
		}
		if (!done)
		{
			buf_append(out, p, len);
			if (nl)
				buf_append_byte(out, '\n');
		}
		pv_free(key);
		pv_free(value);
		pv_free(newp);
		pv_free(target);
		p += len + 1;
	}
}

char *
pgphys_extconf_rewrite(const char *text, const char *orig_path, const json_t *map,
					   const char *orig_pgdata, const char *pgdata, const char *config_dir,
					   const json_t *by_setting)
{
	Place pl = {.pgdata = pgdata, .config_dir = config_dir, .root = config_dir ? config_dir : pgdata,
	.orig_pgdata = orig_pgdata, .map = (json_t *) map, .by_setting = (json_t *) by_setting};
	Buf in = PV_BUF_INIT, out = PV_BUF_INIT;

	buf_append(&in, text, strlen(text));
	conf_rewrite(&out, &pl, orig_path, &in);
	buf_free(&in);
	return buf_detach(&out);
}

int
pgphys_extconf_dir_check(const char *config_dir)
{
	DIR *d = opendir(config_dir);
	struct dirent *de;
	int rc = 0;

	if (d == NULL)
		return errno == ENOENT ? 0 : pv_error_errno(PV_EIO, errno, "cannot open '%s'", config_dir);
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
		{
			rc = pv_error_set(PV_EREFUSED, "configuration directory '%s' is not empty",
							  config_dir);
			pv_error_hint("give --config-dir a new or empty directory");
			break;
		}
	closedir(d);
	return rc;
}

/* Read every extconf item of m: texts[i] for files[i]. */
static int
items_read(Buf *texts, const json_t *files, Repo *repo, const RepoManifest *m)
{
	RepoItemIter *it = NULL;
	const RepoItem *item;
	unsigned char buf[8192];
	int rc;

	if ((rc = repo_item_iter_new(&it, repo, m)) < 0)
		return rc;
	while ((rc = repo_item_iter_next(it, &item)) == 0 && item != NULL)
	{
		size_t i;
		json_t *f;

		if (strncmp(item->name, PGPHYS_EXTCONF_PREFIX, strlen(PGPHYS_EXTCONF_PREFIX)) != 0)
			continue;
		json_array_foreach(files, i, f)
		{
			RepoReader *rd = NULL;
			size_t n;

			if (strcmp(json_string_value(json_object_get(f, "item")), item->name) != 0)
				continue;
			if ((rc = repo_reader_open(&rd, repo, m, item, &(RepoReaderOpts) {.readahead = -1})) < 0)
				break;
			while ((rc = repo_reader_read(rd, buf, sizeof(buf), &n)) == 0 && n > 0)
				buf_append(&texts[i], buf, n);
			repo_reader_free(rd);
			break;
		}
		if (rc < 0)
			break;
	}
	repo_item_iter_free(it);
	return rc;
}

/*
 * postgresql.conf inside the data directory (restored with it) while files
 * it names live outside: make it name the restored copies too.
 */
static int
datadir_conf_rewrite(const Place *pl, const char *config_file)
{
	Buf text = PV_BUF_INIT, out = PV_BUF_INIT;
	char *path;
	int rc;

	if (config_file == NULL || pl->orig_pgdata == NULL || !path_under(config_file, pl->orig_pgdata))
		return 0;
	path = pv_asprintf("%s%s", pl->pgdata, config_file + strlen(pl->orig_pgdata));
	if ((rc = pv_fs_read_file(path, &text)) < 0)
	{
		pv_error_clear();		/* not restored (excluded or absent): nothing to adjust */
		rc = 0;
		goto done;
	}
	conf_rewrite(&out, pl, config_file, &text);
	if (out.len != text.len || memcmp(out.data, text.data, text.len) != 0)
	{
		rc = pv_fs_write_atomic(path, out.data, out.len, 0600);
		pv_log_detail("'%s' now names the restored configuration files", path);
	}
done:
	buf_free(&text);
	buf_free(&out);
	pv_free(path);
	return rc;
}

int
pgphys_extconf_restore(Repo *repo, const RepoManifest *m, const char *pgdata,
					   const char *config_dir)
{
	const json_t *md = json_object_get(repo_manifest_metadata(m), "external_config");
	const json_t *files = json_object_get(md, "files"), *dirs = json_object_get(md, "dirs");
	Place pl = {.pgdata = pgdata, .config_dir = config_dir, .root = config_dir ? config_dir : pgdata,
	.map = json_object(), .by_setting = json_object()};
	size_t nfiles = json_array_size(files), i;
	Buf *texts = NULL;
	json_t *f;
	int rc = 0;

	if (!json_is_object(md) || nfiles == 0)
		goto done;
	pl.orig_root = json_string_value(json_object_get(md, "config_dir"));
	pl.orig_pgdata = json_string_value(json_object_get(md, "data_directory"));
	if (pl.orig_root == NULL || !json_is_array(files))
	{
		rc = pv_error_set(PV_ECORRUPT, "backup %s has a malformed external_config record",
						  repo_manifest_id(m));
		goto done;
	}
	json_array_foreach(files, i, f)
	{
		const char *path = json_string_value(json_object_get(f, "path"));
		const char *setting = json_string_value(json_object_get(f, "setting"));
		char *np;

		if (path == NULL || setting == NULL || path[0] != '/')
		{
			rc = pv_error_set(PV_ECORRUPT, "backup %s has a malformed external_config record",
							  repo_manifest_id(m));
			goto done;
		}
		np = place_new_path(&pl, path, setting, i);
		json_object_set_new(pl.map, path, json_string(np));
		if (strcmp(setting, "include") != 0)
			json_object_set_new(pl.by_setting, setting, json_string(np));
		pv_free(np);
	}
	json_array_foreach(dirs, i, f)
	{
		const char *path = json_string_value(json_object_get(f, "path"));
		char *np = path ? place_new_path(&pl, path, "include", i) : NULL;

		if (np == NULL)
			continue;
		json_object_set_new(pl.map, path, json_string(np));
		if ((rc = pv_fs_mkdir_p(np, 0700)) < 0)
		{
			pv_free(np);
			goto done;
		}
		pv_free(np);
	}
	texts = pv_calloc(nfiles, sizeof(Buf));
	if ((rc = items_read(texts, files, repo, m)) < 0)
		goto done;
	json_array_foreach(files, i, f)
	{
		const char *path = json_string_value(json_object_get(f, "path"));
		const char *setting = json_string_value(json_object_get(f, "setting"));
		const char *np = json_string_value(json_object_get(pl.map, path));
		int mode = (int) json_integer_value(json_object_get(f, "mode"));
		Buf out = PV_BUF_INIT;
		char *dir;

		if (config_dir == NULL && access(np, F_OK) == 0)
		{
			pv_log_warn("the restored data directory already has '%s': the backup's copy of "
						"'%s' is not written (--config-dir DIR restores it elsewhere)", np, path);
			continue;
		}
		if (strcmp(setting, "config_file") == 0 || strcmp(setting, "include") == 0)
			conf_rewrite(&out, &pl, path, &texts[i]);
		else
			buf_append(&out, texts[i].data, texts[i].len);
		dir = pv_fs_path_dirname(np);
		if ((rc = pv_fs_mkdir_p(dir, 0700)) == 0)
			rc = pv_fs_write_atomic(np, out.data, out.len, mode > 0 ? (mode_t) (mode & 0666) : 0600);
		pv_free(dir);
		buf_free(&out);
		if (rc < 0)
			goto done;
		pv_log_detail("restored configuration file '%s' as '%s'", path, np);
	}
	rc = datadir_conf_rewrite(&pl, json_string_value(json_object_get(md, "config_file")));
done:
	for (size_t k = 0; texts != NULL && k < nfiles; k++)
		buf_free(&texts[k]);
	pv_free(texts);
	json_decref(pl.map);
	json_decref(pl.by_setting);
	return rc;
}
