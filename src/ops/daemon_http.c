/*
 * daemon_http.c: the daemon's endpoints (libmicrohttpd, one internal
 * polling thread) and the snapshot they serve.  Paths and their meaning are
 * in daemon.h.
 *
 * Security: bound to 127.0.0.1 unless configured otherwise; only GET and
 * HEAD; with a token, every request needs "Authorization: Bearer TOKEN"
 * (compared in constant time) except that the page also accepts
 * ?token=TOKEN, because a browser cannot add a header to a link; with
 * daemon-tls-cert and -key, HTTPS only.  The page is served with a Content
 * Security Policy that allows nothing from elsewhere.  The token is never
 * logged.
 *
 * Changing daemon-listen or the TLS files takes effect on a reload by
 * restarting the listener; a changed token applies at once.
 */
#include "ops/daemon_int.h"

#include "common/buf.h"
#include "common/error.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/mem.h"
#include "ops/metrics.h"
#include "ops/statuspage.h"
#include "pv_build.h"

#include <microhttpd.h>
#include <netdb.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define PAGE_CSP "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; " \
	"img-src data:; connect-src 'self'; base-uri 'none'; form-action 'none'"

/* ---- the snapshot ---- */

static json_t *
daemon_json(Daemon *d)
{
	char t[PV_TIME_FORMAT_MAX];
	NotifyStats ns;
	json_t *o = json_object(), *jobs = json_array();

	json_object_set_new(o, "version", json_string(PV_VERSION));
	json_object_set_new(o, "pid", json_integer((json_int_t) getpid()));
	json_object_set_new(o, "started", json_string(pv_time_format_utc(t, sizeof(t), d->started)));
	json_object_set_new(o, "started_unix", json_real((double) d->started / PV_USEC_PER_SEC));
	json_object_set_new(o, "config_file", d->cfg->cfg->path ? json_string(d->cfg->cfg->path) : json_null());
	json_object_set_new(o, "config_loaded", json_string(pv_time_format_utc(t, sizeof(t), d->config_loaded)));
	json_object_set_new(o, "config_loaded_unix", json_real((double) d->config_loaded / PV_USEC_PER_SEC));
	json_object_set_new(o, "reload_error", d->reload_error ? json_string(d->reload_error) : json_null());
	json_object_set_new(o, "job_log", d->joblog_path ? json_string(d->joblog_path) : json_null());
	json_object_set_new(o, "stopping", json_boolean(d->stopping));
	for (size_t i = 0; i < d->njobs; i++)
		if (!d->jobs[i]->retired || d->jobs[i]->running)
			json_array_append_new(jobs, daemon_job_json(d->jobs[i]));
	json_object_set_new(o, "jobs", jobs);
	notify_stats(d->notifier, &ns);
	json_object_set_new(o, "notifications", json_pack("{s:I, s:I, s:I, s:I, s:I}", "sent", (json_int_t) ns.sent,
													  "suppressed", (json_int_t) ns.suppressed, "failed",
													  (json_int_t) ns.failed, "webhook_sent",
													  (json_int_t) ns.webhook_sent, "email_sent",
													  (json_int_t) ns.email_sent));
	json_object_set_new(o, "alerts", json_deep_copy(d->alerts));
	if (d->watched)
		json_object_set_new(o, "watched", json_string(pv_time_format_utc(t, sizeof(t), d->watched)));
	return o;
}

json_t *
daemon_snapshot(Daemon *d, bool with_history)
{
	char t[PV_TIME_FORMAT_MAX];
	json_t *doc;

	pthread_mutex_lock(&d->lock);
	if (d->status_doc != NULL)
		doc = json_deep_copy(d->status_doc);
	else
		doc = json_pack("{s:s, s:s, s:s, s:[], s:[], s:[]}", "status", "UNKNOWN", "summary",
						"the repository has not been read yet", "time",
						pv_time_format_utc(t, sizeof(t), pv_time_now()), "groups", "archives", "problems");
	json_object_set_new(doc, "repository_stats", d->repo_stats ? json_deep_copy(d->repo_stats) : json_null());
	json_object_set_new(doc, "daemon", daemon_json(d));
	if (with_history)
		json_object_set_new(doc, "history", d->history ? json_deep_copy(d->history) : json_array());
	pthread_mutex_unlock(&d->lock);
	return doc;
}

static json_t *
history_copy(Daemon *d)
{
	json_t *h;

	pthread_mutex_lock(&d->lock);
	h = d->history ? json_deep_copy(d->history) : json_array();
	pthread_mutex_unlock(&d->lock);
	return h;
}

/* ---- requests ---- */

static enum MHD_Result
respond(struct MHD_Connection *c, unsigned int status, const char *type, Buf *body, bool page)
{
	size_t len = body->len;
	char *data = buf_detach(body);
	struct MHD_Response *r = MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE);
	enum MHD_Result ret;

	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	if (page)
	{
		MHD_add_response_header(r, "Content-Security-Policy", PAGE_CSP);
		MHD_add_response_header(r, "X-Frame-Options", "DENY");
		MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
	}
	if (status == MHD_HTTP_UNAUTHORIZED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"pgvault\"");
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result
respond_json(struct MHD_Connection *c, unsigned int status, const json_t *j)
{
	Buf b;
	char *text = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);

	buf_init(&b);
	buf_append_str(&b, text ? text : "null");
	buf_append_str(&b, "\n");
	free(text);
	return respond(c, status, "application/json", &b, false);
}

static enum MHD_Result
respond_error(struct MHD_Connection *c, unsigned int status, const char *msg)
{
	json_t *j = json_pack("{s:s}", "error", msg);
	enum MHD_Result ret = respond_json(c, status, j);

	json_decref(j);
	return ret;
}

static bool
token_equal(const char *given, const char *want)
{
	size_t n = strlen(want);

	return given != NULL && strlen(given) == n && CRYPTO_memcmp(given, want, n) == 0;
}

static bool
authorized(Daemon *d, struct MHD_Connection *c, bool page)
{
	const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	const char *query = page ? MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "token") : NULL;
	bool ok;

	pthread_mutex_lock(&d->lock);
	if (d->token == NULL)
		ok = true;
	else
		ok = (auth != NULL && strncasecmp(auth, "Bearer ", 7) == 0 && token_equal(auth + 7, d->token)) ||
			token_equal(query, d->token);
	pthread_mutex_unlock(&d->lock);
	return ok;
}

static enum MHD_Result
handle(void *cls, struct MHD_Connection *c, const char *url, const char *method, const char *version,
	   const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	static int first;
	Daemon *d = cls;
	bool page = strcmp(url, "/") == 0 || strcmp(url, "/index.html") == 0;
	Buf b;

	(void) version;
	(void) upload_data;
	if (*con_cls != &first)
	{
		*con_cls = &first;		/* headers seen; answer on the next call */
		return MHD_YES;
	}
	if (*upload_data_size != 0)
	{
		*upload_data_size = 0;	/* a body is ignored */
		return MHD_YES;
	}
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return respond_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and HEAD");
	if (!authorized(d, c, page))
		return respond_error(c, MHD_HTTP_UNAUTHORIZED, "a bearer token is required");
	buf_init(&b);
	if (strcmp(url, "/health") == 0)
	{
		json_t *j;
		bool stopping;
		size_t running = 0;

		pthread_mutex_lock(&d->lock);
		stopping = d->stopping;
		for (size_t i = 0; i < d->njobs; i++)
			running += d->jobs[i]->running;
		j = json_pack("{s:s, s:i, s:I, s:I}", "status", stopping ? "stopping" : "ok", "pid", (int) getpid(),
					  "uptime_seconds", (json_int_t) ((pv_time_now() - d->started) / PV_USEC_PER_SEC),
					  "jobs_running", (json_int_t) running);
		pthread_mutex_unlock(&d->lock);
		{
			enum MHD_Result ret = respond_json(c, stopping ? MHD_HTTP_SERVICE_UNAVAILABLE : MHD_HTTP_OK, j);

			json_decref(j);
			return ret;
		}
	}
	if (strcmp(url, "/metrics") == 0)
	{
		json_t *snap = daemon_snapshot(d, true);

		metrics_render(&b, snap);
		json_decref(snap);
		return respond(c, MHD_HTTP_OK, METRICS_CONTENT_TYPE, &b, false);
	}
	if (strcmp(url, "/status") == 0 || strcmp(url, "/history") == 0)
	{
		json_t *j = strcmp(url, "/status") == 0 ? daemon_snapshot(d, false) : history_copy(d);
		enum MHD_Result ret = respond_json(c, MHD_HTTP_OK, j);

		json_decref(j);
		return ret;
	}
	if (page)
	{
		json_t *data = json_pack("{s:o, s:o}", "status", daemon_snapshot(d, false), "history", history_copy(d));

		statuspage_render(&b, data);
		json_decref(data);
		return respond(c, MHD_HTTP_OK, "text/html; charset=utf-8", &b, true);
	}
	buf_free(&b);
	return respond_error(c, MHD_HTTP_NOT_FOUND, "no such page: try /, /status, /history, /metrics or /health");
}

static void mhd_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[1024];
	size_t n;

	(void) cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n > 0 && msg[n - 1] == '\n')
		msg[--n] = '\0';
	pv_log_warn("endpoints: %s", msg);
}

/* ---- starting and stopping ---- */

/* "host:port", "[v6]:port" -> address; PV_ECONFIG naming daemon-listen. */
static int
listen_resolve(struct sockaddr_storage *out, socklen_t *out_len, const char *spec)
{
	char host[256], port[16];
	const char *colon;
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV | AI_PASSIVE}, *res = NULL;
	int e;

	if (spec[0] == '[')
	{
		const char *end = strchr(spec, ']');

		if (end == NULL || end[1] != ':')
			return pv_error_set(PV_ECONFIG, "invalid daemon-listen '%s': expected [ADDRESS]:PORT", spec);
		snprintf(host, sizeof(host), "%.*s", (int) (end - spec - 1), spec + 1);
		colon = end + 1;
	}
	else
	{
		if ((colon = strrchr(spec, ':')) == NULL)
			return pv_error_set(PV_ECONFIG, "invalid daemon-listen '%s': expected ADDRESS:PORT, e.g. 127.0.0.1:9847",
								spec);
		snprintf(host, sizeof(host), "%.*s", (int) (colon - spec), spec);
	}
	snprintf(port, sizeof(port), "%s", colon + 1);
	if (port[0] == '\0' || strspn(port, "0123456789") != strlen(port) || atoi(port) > 65535)
		return pv_error_set(PV_ECONFIG, "invalid daemon-listen '%s': bad port '%s'", spec, port);
	if ((e = getaddrinfo(host[0] ? host : NULL, port, &hints, &res)) != 0)
		return pv_error_set(PV_ECONFIG, "invalid daemon-listen '%s': %s", spec, gai_strerror(e));
	memcpy(out, res->ai_addr, res->ai_addrlen);
	*out_len = res->ai_addrlen;
	freeaddrinfo(res);
	return PV_OK;
}

static int
token_load(char **out, const PvConfig *cfg)
{
	const char *tok = cfg_str(cfg, NULL, "daemon-token"), *file = cfg_str(cfg, NULL, "daemon-token-file");
	Buf b;
	int rc;

	*out = NULL;
	if (tok != NULL && tok[0] != '\0')
	{
		*out = pv_strdup(tok);
		return PV_OK;
	}
	if (file == NULL)
		return PV_OK;
	buf_init(&b);
	if ((rc = pv_fs_read_file(file, &b)) < 0)
	{
		buf_free_secret(&b);
		return pv_error_prefix(PV_ECONFIG, "daemon-token-file");
	}
	*out = pv_strndup(buf_cstr(&b), strcspn(buf_cstr(&b), "\r\n"));
	buf_free_secret(&b);
	if ((*out)[0] == '\0')
	{
		pv_free(*out);
		*out = NULL;
		return pv_error_set(PV_ECONFIG, "daemon-token-file '%s' is empty", file);
	}
	return PV_OK;
}

static bool
str_same(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

static char *
pem_read(const char *path, const char *key, int *rc)
{
	Buf b;

	buf_init(&b);
	if ((*rc = pv_fs_read_file(path, &b)) < 0)
	{
		*rc = pv_error_prefix(PV_ECONFIG, "%s", key);
		buf_free_secret(&b);
		return NULL;
	}
	return buf_detach(&b);
}

int
daemon_http_start(Daemon *d, const PvConfig *cfg)
{
	const char *listen = cfg_str(cfg, NULL, "daemon-listen");
	const char *cert_path = cfg_str(cfg, NULL, "daemon-tls-cert"), *key_path = cfg_str(cfg, NULL, "daemon-tls-key");
	char *token = NULL, *cert = NULL, *key = NULL;
	struct sockaddr_storage sa;
	socklen_t salen = 0;
	unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
	const union MHD_DaemonInfo *info;
	int rc;

	if ((rc = token_load(&token, cfg)) < 0)
		return rc;
	pthread_mutex_lock(&d->lock);
	pv_free_secret_str(d->token);
	d->token = token;
	pthread_mutex_unlock(&d->lock);
	/* Same listener settings as running: nothing to restart. */
	if (d->http != NULL && str_same(d->listen, listen) && str_same(d->tls_cert, cert_path) &&
		str_same(d->tls_key, key_path))
		return PV_OK;
	daemon_http_stop(d);
	pv_free(d->listen);
	d->listen = listen ? pv_strdup(listen) : NULL;
	pv_free(d->tls_cert);
	pv_free(d->tls_key);
	d->tls_cert = cert_path ? pv_strdup(cert_path) : NULL;
	d->tls_key = key_path ? pv_strdup(key_path) : NULL;
	if (listen == NULL || strcasecmp(listen, "off") == 0 || listen[0] == '\0')
	{
		pv_log_info("endpoints off (daemon-listen = off)");
		return PV_OK;
	}
	if ((cert_path == NULL) != (key_path == NULL))
		return pv_error_set(PV_ECONFIG, "daemon-tls-cert and daemon-tls-key go together: set both or neither");
	if ((rc = listen_resolve(&sa, &salen, listen)) < 0)
		return rc;
	if (sa.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	if (cert_path != NULL)
	{
		if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
			return pv_error_set(PV_ECONFIG, "this libmicrohttpd has no TLS support: unset daemon-tls-cert");
		if ((cert = pem_read(cert_path, "daemon-tls-cert", &rc)) == NULL ||
			(key = pem_read(key_path, "daemon-tls-key", &rc)) == NULL)
			goto done;
		flags |= MHD_USE_TLS;
	}
	{
		struct MHD_OptionItem tls[] = {
			{MHD_OPTION_HTTPS_MEM_CERT, 0, cert},
			{MHD_OPTION_HTTPS_MEM_KEY, 0, key},
			{MHD_OPTION_END, 0, NULL},
		};
		struct MHD_OptionItem none[] = {{MHD_OPTION_END, 0, NULL}};

		d->http = MHD_start_daemon(flags, 0, NULL, NULL, handle, d,
								   MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
								   MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &sa,
								   MHD_OPTION_CONNECTION_LIMIT, (unsigned int) 64,
								   MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int) 30,
								   MHD_OPTION_ARRAY, cert ? tls : none,
								   MHD_OPTION_END);
	}
	if (d->http == NULL)
	{
		rc = pv_error_set(PV_ERROR, "cannot listen on '%s' (daemon-listen)%s", listen,
						  cert ? ": check daemon-tls-cert and daemon-tls-key" : "");
		pv_error_hint("is another process using the port?  Pick another with daemon-listen, or 'off'");
		goto done;
	}
	info = MHD_get_daemon_info(d->http, MHD_DAEMON_INFO_BIND_PORT);
	pv_log_info("endpoints on %s %s (port %u): / /metrics /status /history /health%s", cert ? "https" : "http",
				listen, info ? (unsigned) info->port : 0u, d->token ? "; bearer token required" : "");
	/* Kept until the listener stops: libmicrohttpd holds on to the pointers. */
	d->tls_cert_pem = cert;
	d->tls_key_pem = key;
	cert = key = NULL;
	rc = PV_OK;
done:
	pv_free(cert);
	if (key != NULL)
		pv_free_secret_str(key);
	return rc;
}

void
daemon_http_stop(Daemon *d)
{
	if (d->http == NULL)
		return;
	MHD_stop_daemon(d->http);
	d->http = NULL;
	pv_free(d->tls_cert_pem);
	if (d->tls_key_pem != NULL)
		pv_free_secret_str(d->tls_key_pem);
	d->tls_cert_pem = d->tls_key_pem = NULL;
}
