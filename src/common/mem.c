/*
 * mem.c: see mem.h.  Out of memory is not an error pgvault can recover from
 * in any useful way, so it ends the process at once with a clear line.
 */
#include "common/mem.h"

#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
pv_oom(size_t size)
{
	fprintf(stderr, "pgvault: fatal: out of memory (allocating %zu bytes)\n", size);
	abort();
}

void *
pv_malloc(size_t size)
{
	void *p = malloc(size ? size : 1);

	if (p == NULL)
		pv_oom(size);
	return p;
}

void *
pv_calloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (p == NULL)
		pv_oom(n * size);
	return p;
}

void *
pv_realloc(void *ptr, size_t size)
{
	void *p = realloc(ptr, size ? size : 1);

	if (p == NULL)
		pv_oom(size);
	return p;
}

char *
pv_strdup(const char *s)
{
	return pv_strndup(s, strlen(s));
}

char *
pv_strndup(const char *s, size_t n)
{
	size_t len = strnlen(s, n);
	char *p = pv_malloc(len + 1);

	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

char *
pv_asprintf(const char *fmt, ...)
{
	va_list ap;
	char probe[1];
	char *p;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(probe, sizeof(probe), fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	p = pv_malloc((size_t) n + 1);
	va_start(ap, fmt);
	vsnprintf(p, (size_t) n + 1, fmt, ap);
	va_end(ap);
	return p;
}

void
pv_free(void *ptr)
{
	free(ptr);
}

void
pv_free_secret(void *ptr, size_t len)
{
	if (ptr == NULL)
		return;
	OPENSSL_cleanse(ptr, len);
	free(ptr);
}

void
pv_free_secret_str(char *s)
{
	if (s != NULL)
		pv_free_secret(s, strlen(s));
}
