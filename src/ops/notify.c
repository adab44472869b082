/*
 * notify.c: webhooks and e-mail with rate limits (see notify.h).
 *
 * Delivery uses one libcurl easy handle per attempt: notifications are rare,
 * so there is nothing to gain from keeping connections, and a fresh handle
 * carries no state from a failed attempt.  The webhook URL and the SMTP
 * password never reach a log line: curl's error buffer names a host and a
 * port at most, and our messages say "the webhook".
 */
#include "ops/notify.h"

#include "common/error.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/mem.h"
#include "pv_build.h"

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define WEBHOOK_TIMEOUT_SECS 10L
#define SMTP_TIMEOUT_SECS 30L
#define ATTEMPTS 2
#define HOUR_USEC (INT64_C(3600) * PV_USEC_PER_SEC)

static const char *const event_names[NOTIFY_NEVENTS] = {"failure", "recovery", "alert", "drill", "success"};

const char *
notify_event_name(NotifyEvent e)
{
	return (unsigned) e < NOTIFY_NEVENTS ? event_names[e] : "?";
}

int
notify_event_parse(NotifyEvent *out, const char *name)
{
	for (int i = 0; i < NOTIFY_NEVENTS; i++)
		if (strcasecmp(name, event_names[i]) == 0)
		{
			*out = (NotifyEvent) i;
			return PV_OK;
		}
	pv_error_set(PV_ECONFIG, "unknown notification event '%s' in 'notify-on'", name);
	pv_error_hint("events are failure, recovery, alert, drill and success");
	return PV_ECONFIG;
}

/* ---- configuration ---- */

static char **
list_split(const char *list)
{
	char *copy = pv_strdup(list), *save = NULL, *tok;
	char **out = pv_calloc(strlen(list) / 2 + 2, sizeof(char *));
	size_t n = 0;

	for (tok = strtok_r(copy, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save))
		out[n++] = pv_strdup(tok);
	pv_free(copy);
	return out;
}

static void
list_free(char **list)
{
	for (size_t i = 0; list != NULL && list[i] != NULL; i++)
		pv_free(list[i]);
	pv_free(list);
}

/* First line of a file, for secrets kept out of the configuration. */
static int
secret_file_read(char **out, const char *path, const char *what)
{
	Buf b;
	size_t n;
	int rc;

	buf_init(&b);
	if ((rc = pv_fs_read_file(path, &b)) < 0)
	{
		buf_free_secret(&b);
		return pv_error_prefix(PV_ECONFIG, "%s", what);
	}
	n = strcspn(buf_cstr(&b), "\r\n");
	*out = pv_strndup(buf_cstr(&b), n);
	buf_free_secret(&b);
	return PV_OK;
}

int
notify_config_load(NotifyConfig **out, const PvConfig *cfg)
{
	NotifyConfig *c = PV_NEW(NotifyConfig);
	const char *v;
	char host[256] = "localhost";
	char **events = NULL;
	int rc = PV_OK;

	*out = NULL;
	events = list_split(cfg_str(cfg, NULL, "notify-on") ? cfg_str(cfg, NULL, "notify-on") : "");
	for (size_t i = 0; events[i] != NULL; i++)
	{
		NotifyEvent e;

		if ((rc = notify_event_parse(&e, events[i])) < 0)
			goto done;
		c->events |= 1u << e;
	}
	c->interval_secs = cfg_duration(cfg, NULL, "notify-interval");
	c->max_per_hour = cfg_int(cfg, NULL, "notify-max-per-hour");
	if ((v = cfg_str(cfg, NULL, "notify-webhook")) != NULL && v[0] != '\0')
		c->webhook_url = pv_strdup(v);
	v = cfg_str(cfg, NULL, "notify-webhook-format");
	c->webhook_format = v && strcasecmp(v, "slack") == 0 ? NOTIFY_WEBHOOK_SLACK : NOTIFY_WEBHOOK_JSON;
	if ((v = cfg_str(cfg, NULL, "notify-email-to")) != NULL)
		c->email_to = list_split(v);
	if (gethostname(host, sizeof(host) - 1) < 0 || host[0] == '\0')
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	c->hostname = pv_strdup(host);
	v = cfg_str(cfg, NULL, "notify-email-from");
	c->email_from = v ? pv_strdup(v) : pv_asprintf("pgvault@%s", host);
	v = cfg_str(cfg, NULL, "notify-smtp-url");
	c->smtp_url = pv_strdup(v ? v : "smtp://localhost");
	v = cfg_str(cfg, NULL, "notify-smtp-starttls");
	c->starttls = v && strcasecmp(v, "required") == 0 ? NOTIFY_STARTTLS_REQUIRED :
		v && strcasecmp(v, "off") == 0 ? NOTIFY_STARTTLS_OFF : NOTIFY_STARTTLS_AUTO;
	if ((v = cfg_str(cfg, NULL, "notify-smtp-user")) != NULL)
		c->smtp_user = pv_strdup(v);
	if ((v = cfg_str(cfg, NULL, "notify-smtp-password")) != NULL)
		c->smtp_password = pv_strdup(v);
	else if ((v = cfg_str(cfg, NULL, "notify-smtp-password-file")) != NULL &&
			 (rc = secret_file_read(&c->smtp_password, v, "notify-smtp-password-file")) < 0)
		goto done;
	if ((v = cfg_str(cfg, NULL, "notify-ca-file")) != NULL)
		c->ca_file = pv_strdup(v);
	c->verify_tls = cfg_bool(cfg, NULL, "notify-verify-tls");
done:
	list_free(events);
	if (rc < 0)
	{
		notify_config_free(c);
		return rc;
	}
	*out = c;
	return PV_OK;
}

void
notify_config_free(NotifyConfig *c)
{
	if (c == NULL)
		return;
	pv_free_secret_str(c->webhook_url);
	pv_free_secret_str(c->smtp_password);
	list_free(c->email_to);
	pv_free(c->email_from);
	pv_free(c->smtp_url);
	pv_free(c->smtp_user);
	pv_free(c->ca_file);
	pv_free(c->hostname);
	pv_free(c);
}

static bool
config_has_email(const NotifyConfig *c)
{
	return c->email_to != NULL && c->email_to[0] != NULL;
}

bool
notify_config_has_channel(const NotifyConfig *c)
{
	return c != NULL && (c->webhook_url != NULL || config_has_email(c));
}

/* ---- payloads ---- */

static void
time_iso(char *out, size_t outsz, PvTime t)
{
	pv_time_format_utc(out, outsz, t ? t : pv_time_now());
}

json_t *
notify_payload_json(const NotifyMessage *m, const char *host, uint64_t suppressed)
{
	char t[PV_TIME_FORMAT_MAX];
	json_t *j;

	time_iso(t, sizeof(t), m->time);
	j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I}", "event", notify_event_name(m->event),
				  "key", m->key ? m->key : "", "subject", m->subject ? m->subject : "",
				  "text", m->text ? m->text : "", "host", host ? host : "", "time", t,
				  "suppressed", (json_int_t) suppressed);
	json_object_set_new(j, "details", m->details ? json_deep_copy(m->details) : json_null());
	return j;
}

json_t *
notify_payload_slack(const NotifyMessage *m, const char *host, uint64_t suppressed)
{
	static const char *const emoji[NOTIFY_NEVENTS] = {
		":x:", ":white_check_mark:", ":warning:", ":rotating_light:", ":floppy_disk:"};
	Buf b;
	json_t *j;

	buf_init(&b);
	buf_printf(&b, "%s *%s*", emoji[m->event], m->subject ? m->subject : "pgvault");
	if (m->text != NULL && m->text[0] != '\0')
		buf_printf(&b, "\n%s", m->text);
	if (suppressed > 0)
		buf_printf(&b, "\n_(%llu similar notification%s held back since the last one)_",
				   (unsigned long long) suppressed, suppressed == 1 ? "" : "s");
	buf_printf(&b, "\n_host %s_", host ? host : "?");
	j = json_pack("{s:s, s:s}", "text", buf_cstr(&b), "username", "pgvault");
	buf_free(&b);
	return j;
}

static bool
is_ascii(const char *s)
{
	for (; *s; s++)
		if ((unsigned char) *s >= 0x80 || *s == '\r' || *s == '\n')
			return false;
	return true;
}

/* A header value: as is when plain ASCII, else RFC 2047 base64 ("=?UTF-8?B?...?="). */
static void
header_append(Buf *out, const char *name, const char *value)
{
	size_t len = strlen(value);
	unsigned char *enc;

	if (is_ascii(value))
	{
		buf_printf(out, "%s: %s\r\n", name, value);
		return;
	}
	enc = pv_malloc(4 * (len / 3 + 1) + 1);
	EVP_EncodeBlock(enc, (const unsigned char *) value, (int) len);
	buf_printf(out, "%s: =?UTF-8?B?%s?=\r\n", name, (char *) enc);
	pv_free(enc);
}

void
notify_email_build(Buf *out, const NotifyConfig *c, const NotifyMessage *m, uint64_t suppressed)
{
	char date[64], rnd[9];
	struct tm tm;
	time_t now = (time_t) ((m->time ? m->time : pv_time_now()) / PV_USEC_PER_SEC);
	unsigned char r[4];

	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	pv_fs_random_fill(r, sizeof(r));
	snprintf(rnd, sizeof(rnd), "%02x%02x%02x%02x", r[0], r[1], r[2], r[3]);
	buf_printf(out, "From: %s\r\n", c->email_from);
	buf_append_str(out, "To: ");
	for (size_t i = 0; c->email_to != NULL && c->email_to[i] != NULL; i++)
		buf_printf(out, "%s%s", i ? ", " : "", c->email_to[i]);
	buf_append_str(out, "\r\n");
	header_append(out, "Subject", m->subject ? m->subject : "pgvault notification");
	buf_printf(out, "Date: %s\r\n", date);
	buf_printf(out, "Message-ID: <%lld.%s.pgvault@%s>\r\n", (long long) now, rnd, c->hostname);
	buf_printf(out, "X-Pgvault-Event: %s\r\n", notify_event_name(m->event));
	buf_append_str(out, "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
				   "Content-Transfer-Encoding: 8bit\r\n\r\n");
	/* The body with CRLF line ends; libcurl escapes lines that start with a dot. */
	for (const char *p = m->text ? m->text : ""; *p;)
	{
		size_t n = strcspn(p, "\r\n");

		buf_append(out, p, n);
		buf_append_str(out, "\r\n");
		p += n;
		if (*p == '\r')
			p++;
		if (*p == '\n')
			p++;
	}
	if (suppressed > 0)
		buf_printf(out, "\r\n(%llu similar notification%s held back since the last one.)\r\n",
				   (unsigned long long) suppressed, suppressed == 1 ? "" : "s");
	buf_printf(out, "\r\n-- \r\npgvault %s on %s\r\n", PV_VERSION, c->hostname);
}

/* ---- delivery ---- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void
curl_init_once(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

static size_t
discard_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	(void) ptr;
	(void) userdata;
	return size * nmemb;
}

static void
tls_options(CURL *h, const NotifyConfig *c)
{
	if (c->ca_file != NULL)
		curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, c->verify_tls ? 1L : 0L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, c->verify_tls ? 2L : 0L);
}

static int
webhook_post(const NotifyConfig *c, const char *body)
{
	CURL *h = curl_easy_init();
	struct curl_slist *headers = NULL;
	char err[CURL_ERROR_SIZE] = "";
	long status = 0;
	CURLcode cc;
	int rc = PV_OK;

	if (h == NULL)
		return pv_error_set(PV_ERROR, "cannot start an HTTP request (libcurl)");
	headers = curl_slist_append(headers, "Content-Type: application/json");
	curl_easy_setopt(h, CURLOPT_URL, c->webhook_url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "pgvault/" PV_VERSION);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, WEBHOOK_TIMEOUT_SECS);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 5L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard_body);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, err);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	tls_options(h, c);
	cc = curl_easy_perform(h);
	if (cc != CURLE_OK)
		rc = pv_error_set(PV_ERETRY, "the webhook could not be reached: %s",
						  err[0] ? err : curl_easy_strerror(cc));
	else if (curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status), status < 200 || status > 299)
		rc = pv_error_set(status >= 500 || status == 429 ? PV_ERETRY : PV_ERROR,
						  "the webhook answered HTTP %ld", status);
	curl_slist_free_all(headers);
	curl_easy_cleanup(h);
	return rc;
}

typedef struct MailReader
{
	const char *data;
	size_t len, pos;
} MailReader;

static size_t
mail_read(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	MailReader *r = userdata;
	size_t n = size * nmemb;

	if (n > r->len - r->pos)
		n = r->len - r->pos;
	memcpy(ptr, r->data + r->pos, n);
	r->pos += n;
	return n;
}

/* The host of an smtp:// URL, for messages (no user or password part). */
static void
smtp_host(char *out, size_t outsz, const char *url)
{
	const char *p = strstr(url, "://");
	const char *at;
	size_t n;

	p = p ? p + 3 : url;
	n = strcspn(p, "/");
	at = memchr(p, '@', n);
	if (at != NULL)
	{
		n -= (size_t) (at + 1 - p);
		p = at + 1;
	}
	snprintf(out, outsz, "%.*s", (int) n, p);
}

static int
email_send(const NotifyConfig *c, const char *message)
{
	CURL *h = curl_easy_init();
	struct curl_slist *rcpt = NULL;
	MailReader r = {message, strlen(message), 0};
	char err[CURL_ERROR_SIZE] = "", from[512], host[256];
	CURLcode cc;
	int rc = PV_OK;
	bool implicit_tls = strncasecmp(c->smtp_url, "smtps://", 8) == 0;

	if (h == NULL)
		return pv_error_set(PV_ERROR, "cannot start an SMTP session (libcurl)");
	smtp_host(host, sizeof(host), c->smtp_url);
	for (size_t i = 0; c->email_to[i] != NULL; i++)
	{
		char to[512];

		snprintf(to, sizeof(to), "<%s>", c->email_to[i]);
		rcpt = curl_slist_append(rcpt, to);
	}
	snprintf(from, sizeof(from), "<%s>", c->email_from);
	curl_easy_setopt(h, CURLOPT_URL, c->smtp_url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
	curl_easy_setopt(h, CURLOPT_MAIL_FROM, from);
	curl_easy_setopt(h, CURLOPT_MAIL_RCPT, rcpt);
	curl_easy_setopt(h, CURLOPT_READFUNCTION, mail_read);
	curl_easy_setopt(h, CURLOPT_READDATA, &r);
	curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, SMTP_TIMEOUT_SECS);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, err);
	if (!implicit_tls)
	{
		/* Never send a password in the clear: with one, STARTTLS is required. */
		long ssl = c->starttls == NOTIFY_STARTTLS_REQUIRED ? CURLUSESSL_ALL :
			c->starttls == NOTIFY_STARTTLS_OFF ? CURLUSESSL_NONE :
			c->smtp_password != NULL ? CURLUSESSL_ALL : CURLUSESSL_TRY;

		curl_easy_setopt(h, CURLOPT_USE_SSL, ssl);
	}
	if (c->smtp_user != NULL)
		curl_easy_setopt(h, CURLOPT_USERNAME, c->smtp_user);
	if (c->smtp_password != NULL)
		curl_easy_setopt(h, CURLOPT_PASSWORD, c->smtp_password);
	tls_options(h, c);
	cc = curl_easy_perform(h);
	if (cc == CURLE_LOGIN_DENIED)
		rc = pv_error_set(PV_EAUTH, "mail server '%s' refused the login of '%s'", host,
						  c->smtp_user ? c->smtp_user : "");
	else if (cc != CURLE_OK)
		rc = pv_error_set(PV_ERETRY, "mail through '%s' failed: %s", host,
						  err[0] ? err : curl_easy_strerror(cc));
	curl_slist_free_all(rcpt);
	curl_easy_cleanup(h);
	return rc;
}

/* ---- the notifier ---- */

typedef struct LimitKey
{
	char *key;					/* "KEY|EVENT" */
	PvTime last_sent;
	uint64_t suppressed;
} LimitKey;

struct Notifier
{
	pthread_mutex_t lock;
	NotifyConfig *cfg;
	LimitKey *keys;
	size_t nkeys;
	PvTime *window;				/* send times within the last hour, oldest first */
	size_t nwindow;
	NotifyStats stats;
};

Notifier *
notify_new(void)
{
	Notifier *n = PV_NEW(Notifier);

	pthread_mutex_init(&n->lock, NULL);
	pthread_once(&curl_once, curl_init_once);
	return n;
}

void
notify_free(Notifier *n)
{
	if (n == NULL)
		return;
	notify_config_free(n->cfg);
	for (size_t i = 0; i < n->nkeys; i++)
		pv_free(n->keys[i].key);
	pv_free(n->keys);
	pv_free(n->window);
	pthread_mutex_destroy(&n->lock);
	pv_free(n);
}

void
notify_configure(Notifier *n, NotifyConfig *cfg)
{
	NotifyConfig *old;

	pthread_mutex_lock(&n->lock);
	old = n->cfg;
	n->cfg = cfg;
	pthread_mutex_unlock(&n->lock);
	notify_config_free(old);
}

void
notify_stats(Notifier *n, NotifyStats *out)
{
	pthread_mutex_lock(&n->lock);
	*out = n->stats;
	pthread_mutex_unlock(&n->lock);
}

static LimitKey *
limit_find(Notifier *n, const char *k, bool create)
{
	for (size_t i = 0; i < n->nkeys; i++)
		if (strcmp(n->keys[i].key, k) == 0)
			return &n->keys[i];
	if (!create)
		return NULL;
	n->keys = pv_realloc(n->keys, (n->nkeys + 1) * sizeof(LimitKey));
	n->keys[n->nkeys] = (LimitKey) {.key = pv_strdup(k)};
	return &n->keys[n->nkeys++];
}

/* Rule 2: a recovery forgets every limit of its key. */
static void
limit_clear_key(Notifier *n, const char *key)
{
	size_t len = strlen(key), w = 0;

	for (size_t i = 0; i < n->nkeys; i++)
	{
		if (strncmp(n->keys[i].key, key, len) == 0 && n->keys[i].key[len] == '|')
		{
			pv_free(n->keys[i].key);
			continue;
		}
		n->keys[w++] = n->keys[i];
	}
	n->nkeys = w;
}

static void
window_prune(Notifier *n, PvTime now)
{
	size_t drop = 0;

	while (drop < n->nwindow && n->window[drop] <= now - HOUR_USEC)
		drop++;
	if (drop == 0)
		return;
	memmove(n->window, n->window + drop, (n->nwindow - drop) * sizeof(PvTime));
	n->nwindow -= drop;
}

/*
 * Decide under the lock whether m goes out; *out_suppressed gets the count
 * held back for its key.  Returns false when it is rate-limited.
 */
static void
limit_key_name(char *out, size_t outsz, const NotifyMessage *m)
{
	snprintf(out, outsz, "%s|%s", m->key ? m->key : "", notify_event_name(m->event));
}

static bool
limits_admit(Notifier *n, const NotifyMessage *m, PvTime now, uint64_t *out_suppressed, PvTime *out_prev)
{
	char k[512];
	LimitKey *lk;

	limit_key_name(k, sizeof(k), m);
	*out_suppressed = 0;
	*out_prev = 0;
	window_prune(n, now);
	lk = limit_find(n, k, true);
	if (m->event != NOTIFY_RECOVERY && lk->last_sent != 0 &&
		now - lk->last_sent < n->cfg->interval_secs * PV_USEC_PER_SEC)
	{
		lk->suppressed++;
		n->stats.suppressed++;
		return false;
	}
	if (n->cfg->max_per_hour > 0 && (int64_t) n->nwindow >= n->cfg->max_per_hour)
	{
		lk->suppressed++;
		n->stats.suppressed++;
		pv_log_warn("notification '%s' held back: %lld notifications in the last hour (notify-max-per-hour)",
					m->subject ? m->subject : k, (long long) n->cfg->max_per_hour);
		return false;
	}
	*out_suppressed = lk->suppressed;
	*out_prev = lk->last_sent;
	if (m->event == NOTIFY_RECOVERY && m->key != NULL)
		limit_clear_key(n, m->key);
	else
	{
		lk->last_sent = now;
		lk->suppressed = 0;
	}
	n->window = pv_realloc(n->window, (n->nwindow + 1) * sizeof(PvTime));
	n->window[n->nwindow++] = now;
	return true;
}

/*
 * Nothing reached anyone: forget that it was sent, so the next occurrence
 * tries again instead of waiting out the interval (a recovery cleared its
 * key already and stays cleared).
 */
static void
limits_undo(Notifier *n, const NotifyMessage *m, PvTime now, uint64_t suppressed, PvTime prev)
{
	char k[512];
	LimitKey *lk;

	limit_key_name(k, sizeof(k), m);
	if (m->event != NOTIFY_RECOVERY && (lk = limit_find(n, k, false)) != NULL && lk->last_sent == now)
	{
		lk->last_sent = prev;
		lk->suppressed += suppressed;
	}
	for (size_t i = n->nwindow; i-- > 0;)
		if (n->window[i] == now)
		{
			memmove(n->window + i, n->window + i + 1, (n->nwindow - i - 1) * sizeof(PvTime));
			n->nwindow--;
			break;
		}
}

/* A private copy of the configuration, so a reload during delivery is harmless. */
static NotifyConfig *
config_copy(const NotifyConfig *c)
{
	NotifyConfig *d = PV_NEW(NotifyConfig);
	size_t n = 0;

	*d = *c;
	d->webhook_url = c->webhook_url ? pv_strdup(c->webhook_url) : NULL;
	d->email_from = pv_strdup(c->email_from);
	d->smtp_url = pv_strdup(c->smtp_url);
	d->smtp_user = c->smtp_user ? pv_strdup(c->smtp_user) : NULL;
	d->smtp_password = c->smtp_password ? pv_strdup(c->smtp_password) : NULL;
	d->ca_file = c->ca_file ? pv_strdup(c->ca_file) : NULL;
	d->hostname = pv_strdup(c->hostname);
	while (c->email_to != NULL && c->email_to[n] != NULL)
		n++;
	d->email_to = c->email_to ? pv_calloc(n + 1, sizeof(char *)) : NULL;
	for (size_t i = 0; i < n; i++)
		d->email_to[i] = pv_strdup(c->email_to[i]);
	return d;
}

static int
deliver_webhook(const NotifyConfig *c, const NotifyMessage *m, uint64_t suppressed)
{
	json_t *j = c->webhook_format == NOTIFY_WEBHOOK_SLACK ?
		notify_payload_slack(m, c->hostname, suppressed) : notify_payload_json(m, c->hostname, suppressed);
	char *body = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	int rc = PV_ERROR;

	for (int attempt = 0; attempt < ATTEMPTS; attempt++)
	{
		if (attempt > 0)
			sleep(1);
		if ((rc = webhook_post(c, body)) == PV_OK || rc != PV_ERETRY)
			break;
	}
	free(body);
	json_decref(j);
	return rc;
}

static int
deliver_email(const NotifyConfig *c, const NotifyMessage *m, uint64_t suppressed)
{
	Buf msg;
	int rc = PV_ERROR;

	buf_init(&msg);
	notify_email_build(&msg, c, m, suppressed);
	for (int attempt = 0; attempt < ATTEMPTS; attempt++)
	{
		if (attempt > 0)
			sleep(1);
		if ((rc = email_send(c, buf_cstr(&msg))) == PV_OK || rc != PV_ERETRY)
			break;
	}
	buf_free(&msg);
	return rc;
}

NotifyOutcome
notify_send(Notifier *n, const NotifyMessage *m)
{
	NotifyConfig *c = NULL;
	PvTime now = m->time ? m->time : pv_time_now(), prev = 0;
	uint64_t suppressed = 0;
	int ok = 0, failed = 0;

	pthread_mutex_lock(&n->lock);
	if (n->cfg == NULL || !(n->cfg->events & (1u << m->event)) || !notify_config_has_channel(n->cfg))
	{
		pthread_mutex_unlock(&n->lock);
		return NOTIFY_OUT_DISABLED;
	}
	if (!limits_admit(n, m, now, &suppressed, &prev))
	{
		pthread_mutex_unlock(&n->lock);
		pv_log_detail("notification '%s' held back (notify-interval)", m->subject ? m->subject : "");
		return NOTIFY_OUT_SUPPRESSED;
	}
	c = config_copy(n->cfg);
	pthread_mutex_unlock(&n->lock);

	if (c->webhook_url != NULL)
	{
		if (deliver_webhook(c, m, suppressed) == PV_OK)
		{
			ok++;
			pthread_mutex_lock(&n->lock);
			n->stats.webhook_sent++;
			pthread_mutex_unlock(&n->lock);
		}
		else
		{
			failed++;
			pv_log_warn("notification '%s' not delivered: %s", m->subject ? m->subject : "", pv_error_msg());
		}
	}
	if (config_has_email(c))
	{
		if (deliver_email(c, m, suppressed) == PV_OK)
		{
			ok++;
			pthread_mutex_lock(&n->lock);
			n->stats.email_sent++;
			pthread_mutex_unlock(&n->lock);
		}
		else
		{
			failed++;
			pv_log_warn("notification '%s' not mailed: %s", m->subject ? m->subject : "", pv_error_msg());
		}
	}
	pthread_mutex_lock(&n->lock);
	n->stats.sent += ok > 0;
	n->stats.failed += (uint64_t) failed;
	if (ok == 0)
		limits_undo(n, m, now, suppressed, prev);
	pthread_mutex_unlock(&n->lock);
	if (ok > 0)
		pv_log_info("notification sent (%s): %s", notify_event_name(m->event), m->subject ? m->subject : "");
	notify_config_free(c);
	return failed == 0 ? NOTIFY_OUT_SENT : ok > 0 ? NOTIFY_OUT_PARTIAL : NOTIFY_OUT_FAILED;
}

/* ---- state ---- */

json_t *
notify_state_json(Notifier *n)
{
	json_t *keys = json_object(), *window = json_array();

	pthread_mutex_lock(&n->lock);
	for (size_t i = 0; i < n->nkeys; i++)
		json_object_set_new(keys, n->keys[i].key, json_pack("{s:I, s:I}", "last_sent",
															(json_int_t) n->keys[i].last_sent, "suppressed",
															(json_int_t) n->keys[i].suppressed));
	for (size_t i = 0; i < n->nwindow; i++)
		json_array_append_new(window, json_integer((json_int_t) n->window[i]));
	pthread_mutex_unlock(&n->lock);
	return json_pack("{s:o, s:o}", "keys", keys, "window", window);
}

void
notify_state_load(Notifier *n, const json_t *state)
{
	const char *k;
	json_t *v;
	size_t i;

	if (!json_is_object(state))
		return;
	pthread_mutex_lock(&n->lock);
	json_object_foreach((json_t *) json_object_get(state, "keys"), k, v)
	{
		LimitKey *lk = limit_find(n, k, true);

		lk->last_sent = (PvTime) json_integer_value(json_object_get(v, "last_sent"));
		lk->suppressed = (uint64_t) json_integer_value(json_object_get(v, "suppressed"));
	}
	json_array_foreach(json_object_get(state, "window"), i, v)
	{
		if (!json_is_integer(v))
			continue;
		n->window = pv_realloc(n->window, (n->nwindow + 1) * sizeof(PvTime));
		n->window[n->nwindow++] = (PvTime) json_integer_value(v);
	}
	pthread_mutex_unlock(&n->lock);
}
