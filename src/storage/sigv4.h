/*
 * sigv4.h: AWS Signature Version 4 (HMAC-SHA256), header form, for the S3
 * driver.
 *
 * A pure function of its inputs: no clock, no network, no state, so AWS's
 * published test vectors check it byte for byte (tests/unit/storage/
 * test_sigv4.c).  The caller supplies every header it will send that must
 * be signed (host, x-amz-date, x-amz-content-sha256, ...); the signer
 * canonicalises them (lowercase names, trimmed values with inner blanks
 * collapsed, duplicates joined by ',' in order, sorted by name).
 *
 * Query strings are canonicalised here, never by the caller: each name and
 * value is %-decoded and re-encoded with RFC 3986's unreserved set only, a
 * name without '=' gets an empty value ("?uploads" signs as "uploads="), and
 * pairs are sorted bytewise by name, then value.  The path is used as sent
 * (S3's rule: already encoded once, no normalisation).
 *
 * Secrets: the secret key is only read; derived keys live on the stack and
 * are wiped before return.  Nothing here logs.
 */
#ifndef PV_STORAGE_SIGV4_H
#define PV_STORAGE_SIGV4_H

#include "common/buf.h"

#include <stddef.h>

typedef struct SigV4Header
{
	const char *name;
	const char *value;
} SigV4Header;

typedef struct SigV4Request
{
	const char *method;			/* "GET" */
	const char *path;			/* encoded, as sent: "/bucket/a%20b" ("" means "/") */
	const char *query;			/* as sent without '?', or NULL/"" */
	const SigV4Header *headers;	/* all headers to sign, host and x-amz-date included */
	size_t nheaders;
	const char *payload_hash;	/* lowercase hex SHA-256 of the body, or "UNSIGNED-PAYLOAD" */
} SigV4Request;

typedef struct SigV4Credentials
{
	const char *access_key;
	const char *secret_key;
	const char *region;			/* "us-east-1" */
	const char *service;		/* "s3" */
} SigV4Credentials;

/* The canonical request (replaces out's contents). */
void sigv4_canonical_request(Buf *out, const SigV4Request *req);

/* The string to sign for a canonical request at amz_date ("20150830T123600Z"). */
void sigv4_string_to_sign(Buf *out, const SigV4Request *req, const SigV4Credentials *cred,
						  const char *amz_date);

/*
 * The value of the Authorization header (replaces out's contents):
 * "AWS4-HMAC-SHA256 Credential=AK/20150830/us-east-1/s3/aws4_request,
 * SignedHeaders=host;x-amz-date, Signature=<64 hex>".
 */
void sigv4_authorization(Buf *out, const SigV4Request *req, const SigV4Credentials *cred,
						 const char *amz_date);

/* Lowercase hex SHA-256 of data into hex (65 bytes). */
void sigv4_sha256_hex(char *hex, const void *data, size_t len);

/*
 * Append s %-encoded for a URI: unreserved bytes (A-Z a-z 0-9 - . _ ~) as
 * they are, every other byte as %XX (uppercase hex); '/' is kept when
 * keep_slash (object keys in a path), encoded otherwise (query values).
 */
void sigv4_uri_encode(Buf *out, const char *s, size_t len, int keep_slash);

#endif
