/*
 * notify.h: telling people that something happened: webhooks (pgvault's
 * JSON event, or a Slack-compatible {"text": ...}) and e-mail over SMTP
 * (libcurl: STARTTLS or implicit TLS, AUTH), rate-limited.
 *
 * Events: failure (a job failed), recovery (a failed job or an alert is OK
 * again), alert (status found a problem: a stale backup, archive lag,
 * damage, a failed drill), drill (a drill job failed), success (a job
 * succeeded; off by default).  The notify-on setting picks which are sent.
 *
 * Rate limiting, so that one outage is not a thousand mails:
 *  1. A message has a key (what it is about: "job:prod/logical",
 *     "alert:group:prod/logical").  The same key and event is sent at most
 *     once per notify-interval; repeats in between are counted and the next
 *     message that goes out says how many were held back.
 *  2. A recovery of a key is always sent (it ends an outage) and clears the
 *     key's limits, so the next failure after it is news again.
 *  3. Whatever the keys, at most notify-max-per-hour messages go out per
 *     hour (a sliding window); the rest are counted as suppressed.
 *  4. A message that no channel took (the webhook and the mail server were
 *     both unreachable) does not count: the next one of its key tries again.
 * The limits' state can be saved and loaded (notify_state_json/_load) so a
 * restarted daemon does not repeat itself.
 *
 * Secrets (the webhook URL, which for chat services holds a token, and the
 * SMTP password) are never logged: messages name "the webhook" and the
 * mail server's host only.  NotifyConfig wipes them when freed.
 *
 * Thread safety: a Notifier may be used from several threads at once; the
 * limits are taken under a lock, deliveries run outside it.  Delivery is
 * synchronous (bounded by timeouts: 10 s per webhook attempt, 30 s per mail
 * attempt, two attempts each).
 */
#ifndef PV_OPS_NOTIFY_H
#define PV_OPS_NOTIFY_H

#include "common/buf.h"
#include "common/timeutil.h"
#include "config/config.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

typedef enum NotifyEvent
{
	NOTIFY_FAILURE,
	NOTIFY_RECOVERY,
	NOTIFY_ALERT,
	NOTIFY_DRILL,
	NOTIFY_SUCCESS,
	NOTIFY_NEVENTS,
} NotifyEvent;

/* "failure", "recovery", "alert", "drill", "success". */
const char *notify_event_name(NotifyEvent e);
/* The reverse; PV_ECONFIG "unknown notification event '%s'" with a hint. */
int notify_event_parse(NotifyEvent *out, const char *name);

typedef enum NotifyWebhookFormat
{
	NOTIFY_WEBHOOK_JSON,
	NOTIFY_WEBHOOK_SLACK,
} NotifyWebhookFormat;

typedef enum NotifyStarttls
{
	NOTIFY_STARTTLS_AUTO,
	NOTIFY_STARTTLS_REQUIRED,
	NOTIFY_STARTTLS_OFF,
} NotifyStarttls;

/* Everything a Notifier needs from the configuration (notify-* keys). */
typedef struct NotifyConfig
{
	uint32_t events;			/* bit (1 << NotifyEvent) per event sent */
	int64_t interval_secs;		/* rule 1 */
	int64_t max_per_hour;		/* rule 3; 0 = no limit */
	char *webhook_url;			/* secret; NULL = no webhook */
	NotifyWebhookFormat webhook_format;
	char **email_to;			/* NULL-terminated; NULL or empty = no mail */
	char *email_from;
	char *smtp_url;
	NotifyStarttls starttls;
	char *smtp_user;
	char *smtp_password;		/* secret */
	char *ca_file;
	bool verify_tls;
	char *hostname;				/* this host, for messages and the default sender */
} NotifyConfig;

/*
 * Read the notify-* keys (and notify-smtp-password-file).  PV_ECONFIG for a
 * bad event name or an unreadable password file.  *out is the caller's
 * (notify_config_free).
 */
int notify_config_load(NotifyConfig **out, const PvConfig *cfg);
void notify_config_free(NotifyConfig *c);	/* wipes the secrets; NULL ok */
/* True when at least one channel (webhook, mail) is configured. */
bool notify_config_has_channel(const NotifyConfig *c);

/* One notification. */
typedef struct NotifyMessage
{
	NotifyEvent event;
	const char *key;			/* what it is about (rate limiting), e.g. "job:prod/logical" */
	const char *subject;		/* one line */
	const char *text;			/* the body, plain text, lines separated by \n */
	const json_t *details;		/* borrowed, may be NULL: the job log entry, the status group ... */
	PvTime time;				/* 0 = now */
} NotifyMessage;

typedef struct Notifier Notifier;

typedef struct NotifyStats
{
	uint64_t sent;				/* messages that reached at least one channel */
	uint64_t suppressed;		/* held back by the rate limits */
	uint64_t failed;			/* deliveries to a channel that failed */
	uint64_t webhook_sent, email_sent;
} NotifyStats;

Notifier *notify_new(void);
void notify_free(Notifier *n);	/* NULL ok */
/* Replace the configuration (taken over; NULL = send nothing).  The limits' state stays. */
void notify_configure(Notifier *n, NotifyConfig *cfg);

/* What notify_send did. */
typedef enum NotifyOutcome
{
	NOTIFY_OUT_SENT,			/* delivered to every channel */
	NOTIFY_OUT_PARTIAL,			/* delivered to some channels; failures logged */
	NOTIFY_OUT_FAILED,			/* no channel took it; logged */
	NOTIFY_OUT_SUPPRESSED,		/* rate-limited */
	NOTIFY_OUT_DISABLED,		/* the event is not in notify-on, or there is no channel */
} NotifyOutcome;

NotifyOutcome notify_send(Notifier *n, const NotifyMessage *m);

void notify_stats(Notifier *n, NotifyStats *out);

/* The limits' state, to save and load across restarts ({"keys": {...}, "window": [...]}). */
json_t *notify_state_json(Notifier *n);
void notify_state_load(Notifier *n, const json_t *state);

/* ---- payloads (exposed for tests) ---- */

/*
 * pgvault's webhook event: {"event", "key", "subject", "text", "host",
 * "time", "suppressed", "details"}.  New reference.
 */
json_t *notify_payload_json(const NotifyMessage *m, const char *host, uint64_t suppressed);
/* {"text": "...", "username": "pgvault"}; mrkdwn with an emoji per event.  New reference. */
json_t *notify_payload_slack(const NotifyMessage *m, const char *host, uint64_t suppressed);
/*
 * An RFC 5322 message (CRLF line ends; From, To, Subject, Date, Message-ID,
 * MIME headers; non-ASCII subjects RFC 2047-encoded) appended to out.
 */
void notify_email_build(Buf *out, const NotifyConfig *c, const NotifyMessage *m, uint64_t suppressed);

#endif
