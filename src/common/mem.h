/*
 * mem.h: allocation that never returns NULL.
 *
 * Like Redis's zmalloc, these wrappers abort the process with a message when
 * the system is out of memory, so callers never write NULL checks.  Free with
 * pv_free() (or plain free(): they are the C library's allocations).
 * pv_free_secret() wipes memory that held a key or password before freeing.
 */
#ifndef PV_COMMON_MEM_H
#define PV_COMMON_MEM_H

#include <stddef.h>

void *pv_malloc(size_t size);
void *pv_calloc(size_t n, size_t size);
void *pv_realloc(void *ptr, size_t size);
char *pv_strdup(const char *s);
char *pv_strndup(const char *s, size_t n);
char *pv_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void pv_free(void *ptr);

/* Wipe len bytes at ptr (not optimised away), then free it. */
void pv_free_secret(void *ptr, size_t len);
/* Wipe a NUL-terminated secret string, then free it. */
void pv_free_secret_str(char *s);

#define PV_NEW(type) ((type *) pv_calloc(1, sizeof(type)))
#define PV_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
