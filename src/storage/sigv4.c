/*
 * sigv4.c: AWS Signature Version 4 (see sigv4.h for the rules).
 *
 * Built from the four steps of the specification, each its own function so
 * the tests can compare the intermediate strings: canonical request, string
 * to sign, signing key (HMAC chain date -> region -> service ->
 * "aws4_request"), signature.  Uses OpenSSL's one-shot HMAC and SHA-256.
 */
#include "storage/sigv4.h"

#include "common/sort.h"
#include "common/mem.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SIGV4_ALGORITHM "AWS4-HMAC-SHA256"

void
sigv4_sha256_hex(char *hex, const void *data, size_t len)
{
	unsigned char md[SHA256_DIGEST_LENGTH];

	SHA256(data, len, md);
	pv_hex_encode(hex, md, sizeof(md));
}

static bool
sigv4_unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		c == '-' || c == '.' || c == '_' || c == '~';
}

void
sigv4_uri_encode(Buf *out, const char *s, size_t len, int keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";

	for (size_t i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) s[i];

		if (sigv4_unreserved(c) || (c == '/' && keep_slash))
			buf_append_byte(out, c);
		else
		{
			buf_append_byte(out, '%');
			buf_append_byte(out, (unsigned char) hex[c >> 4]);
			buf_append_byte(out, (unsigned char) hex[c & 15]);
		}
	}
}

static int
sigv4_hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decode %XX escapes of s[0..len) (a bad escape stays literal) and re-encode strictly. */
static void
sigv4_query_part(Buf *out, const char *s, size_t len)
{
	Buf raw = PV_BUF_INIT;

	for (size_t i = 0; i < len; i++)
	{
		int hi, lo;

		if (s[i] == '%' && i + 2 < len &&
			(hi = sigv4_hex_value(s[i + 1])) >= 0 && (lo = sigv4_hex_value(s[i + 2])) >= 0)
		{
			buf_append_byte(&raw, (unsigned char) (hi * 16 + lo));
			i += 2;
		}
		else
			buf_append_byte(&raw, (unsigned char) s[i]);
	}
	sigv4_uri_encode(out, (const char *) raw.data, raw.len, 0);
	buf_free(&raw);
}

typedef struct SigV4Pair
{
	char *name;					/* encoded */
	char *value;				/* encoded */
} SigV4Pair;

static int
sigv4_pair_cmp(const void *a, const void *b)
{
	const SigV4Pair *pa = a, *pb = b;
	int c = strcmp(pa->name, pb->name);

	return c != 0 ? c : strcmp(pa->value, pb->value);
}

/* "b&a=1" -> "a=1&b=" (appended to out). */
static void
sigv4_canonical_query(Buf *out, const char *query)
{
	SigV4Pair *pairs = NULL;
	size_t n = 0, cap = 0;
	const char *p = query;

	while (p != NULL && *p != '\0')
	{
		const char *end = strchr(p, '&');
		size_t plen = end ? (size_t) (end - p) : strlen(p);
		const char *eq = memchr(p, '=', plen);
		Buf name = PV_BUF_INIT, value = PV_BUF_INIT;

		if (plen > 0)
		{
			sigv4_query_part(&name, p, eq ? (size_t) (eq - p) : plen);
			if (eq != NULL)
				sigv4_query_part(&value, eq + 1, plen - (size_t) (eq + 1 - p));
			if (n == cap)
			{
				cap = cap ? cap * 2 : 8;
				pairs = pv_realloc(pairs, cap * sizeof(*pairs));
			}
			pairs[n].name = pv_strdup(buf_cstr(&name));
			pairs[n].value = pv_strdup(buf_cstr(&value));
			n++;
		}
		buf_free(&name);
		buf_free(&value);
		p = end ? end + 1 : NULL;
	}
	if (n > 1)
		pv_qsort(pairs, n, sizeof(*pairs), sigv4_pair_cmp);
	for (size_t i = 0; i < n; i++)
	{
		buf_printf(out, "%s%s=%s", i ? "&" : "", pairs[i].name, pairs[i].value);
		pv_free(pairs[i].name);
		pv_free(pairs[i].value);
	}
	pv_free(pairs);
}

typedef struct SigV4Hdr
{
	char *name;					/* lowercase */
	const char *value;
	size_t order;				/* position in the request: keeps duplicates in order */
} SigV4Hdr;

static int
sigv4_hdr_cmp(const void *a, const void *b)
{
	const SigV4Hdr *ha = a, *hb = b;
	int c = strcmp(ha->name, hb->name);

	if (c != 0)
		return c;
	return ha->order < hb->order ? -1 : ha->order > hb->order;
}

/* Append value trimmed, with runs of blanks collapsed to one space. */
static void
sigv4_header_value(Buf *out, const char *v)
{
	bool blank = false;

	while (*v == ' ' || *v == '\t')
		v++;
	for (; *v != '\0'; v++)
	{
		if (*v == ' ' || *v == '\t' || *v == '\n' || *v == '\r')
		{
			blank = true;
			continue;
		}
		if (blank)
			buf_append_byte(out, ' ');
		blank = false;
		buf_append_byte(out, (unsigned char) *v);
	}
}

/* Sorted, lowercased copies of the headers (names owned, values lent). */
static SigV4Hdr *
sigv4_headers_sorted(const SigV4Request *req)
{
	SigV4Hdr *h = pv_calloc(req->nheaders ? req->nheaders : 1, sizeof(*h));

	for (size_t i = 0; i < req->nheaders; i++)
	{
		h[i].name = pv_strdup(req->headers[i].name);
		for (char *c = h[i].name; *c; c++)
			if (*c >= 'A' && *c <= 'Z')
				*c = (char) (*c - 'A' + 'a');
		h[i].value = req->headers[i].value;
		h[i].order = i;
	}
	pv_qsort(h, req->nheaders, sizeof(*h), sigv4_hdr_cmp);
	return h;
}

static void
sigv4_headers_free(SigV4Hdr *h, size_t n)
{
	for (size_t i = 0; i < n; i++)
		pv_free(h[i].name);
	pv_free(h);
}

/* "host;x-amz-date" (appended). */
static void
sigv4_signed_headers(Buf *out, const SigV4Hdr *h, size_t n)
{
	for (size_t i = 0; i < n; i++)
	{
		if (i > 0 && strcmp(h[i].name, h[i - 1].name) == 0)
			continue;
		buf_printf(out, "%s%s", i ? ";" : "", h[i].name);
	}
}

void
sigv4_canonical_request(Buf *out, const SigV4Request *req)
{
	SigV4Hdr *h = sigv4_headers_sorted(req);

	buf_reset(out);
	buf_printf(out, "%s\n%s\n", req->method, req->path && req->path[0] ? req->path : "/");
	sigv4_canonical_query(out, req->query);
	buf_append_byte(out, '\n');
	for (size_t i = 0; i < req->nheaders; i++)
	{
		if (i > 0 && strcmp(h[i].name, h[i - 1].name) == 0)
			out->data[out->len - 1] = ',';	/* a duplicate joins the line above: "\n" -> "," */
		else
			buf_printf(out, "%s:", h[i].name);
		sigv4_header_value(out, h[i].value);
		buf_append_byte(out, '\n');
	}
	buf_append_byte(out, '\n');
	sigv4_signed_headers(out, h, req->nheaders);
	buf_printf(out, "\n%s", req->payload_hash);
	sigv4_headers_free(h, req->nheaders);
}

static void
sigv4_scope(Buf *out, const SigV4Credentials *cred, const char *amz_date)
{
	buf_printf(out, "%.8s/%s/%s/aws4_request", amz_date, cred->region, cred->service);
}

void
sigv4_string_to_sign(Buf *out, const SigV4Request *req, const SigV4Credentials *cred, const char *amz_date)
{
	Buf creq = PV_BUF_INIT;
	char hex[2 * SHA256_DIGEST_LENGTH + 1];

	sigv4_canonical_request(&creq, req);
	sigv4_sha256_hex(hex, creq.data, creq.len);
	buf_reset(out);
	buf_printf(out, SIGV4_ALGORITHM "\n%s\n", amz_date);
	sigv4_scope(out, cred, amz_date);
	buf_printf(out, "\n%s", hex);
	buf_free(&creq);
}

static void
sigv4_hmac(unsigned char *out, const void *key, size_t keylen, const char *msg, size_t msglen)
{
	unsigned int mdlen = SHA256_DIGEST_LENGTH;

	HMAC(EVP_sha256(), key, (int) keylen, (const unsigned char *) msg, msglen, out, &mdlen);
}

void
sigv4_authorization(Buf *out, const SigV4Request *req, const SigV4Credentials *cred, const char *amz_date)
{
	unsigned char k[SHA256_DIGEST_LENGTH];
	unsigned char sig[SHA256_DIGEST_LENGTH];
	char sighex[2 * SHA256_DIGEST_LENGTH + 1];
	Buf sts = PV_BUF_INIT;
	Buf secret = PV_BUF_INIT;
	SigV4Hdr *h;

	sigv4_string_to_sign(&sts, req, cred, amz_date);

	/* kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request") */
	buf_printf(&secret, "AWS4%s", cred->secret_key);
	sigv4_hmac(k, secret.data, secret.len, amz_date, 8);
	buf_free_secret(&secret);
	sigv4_hmac(k, k, sizeof(k), cred->region, strlen(cred->region));
	sigv4_hmac(k, k, sizeof(k), cred->service, strlen(cred->service));
	sigv4_hmac(k, k, sizeof(k), "aws4_request", 12);
	sigv4_hmac(sig, k, sizeof(k), (const char *) sts.data, sts.len);
	OPENSSL_cleanse(k, sizeof(k));
	pv_hex_encode(sighex, sig, sizeof(sig));

	buf_reset(out);
	buf_printf(out, SIGV4_ALGORITHM " Credential=%s/", cred->access_key);
	sigv4_scope(out, cred, amz_date);
	buf_append_str(out, ", SignedHeaders=");
	h = sigv4_headers_sorted(req);
	sigv4_signed_headers(out, h, req->nheaders);
	sigv4_headers_free(h, req->nheaders);
	buf_printf(out, ", Signature=%s", sighex);
	buf_free(&sts);
}
