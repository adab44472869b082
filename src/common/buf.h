/*
 * buf.h: a growable byte buffer, also used as a string builder.
 *
 * A Buf owns its memory.  data is always NUL-terminated (the terminator is
 * not counted in len), so a Buf of text can be passed where a C string is
 * wanted.  Initialise with PV_BUF_INIT or buf_init(); release with
 * buf_free().  Growth is geometric; buf_reserve() avoids repeated growth
 * when the final size is known.
 */
#ifndef PV_COMMON_BUF_H
#define PV_COMMON_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

typedef struct Buf
{
	unsigned char *data;
	size_t len;
	size_t cap;
} Buf;

#define PV_BUF_INIT {NULL, 0, 0}

void buf_init(Buf *b);
void buf_free(Buf *b);
/* Wipe the contents (secrets) before freeing. */
void buf_free_secret(Buf *b);
void buf_reset(Buf *b);
void buf_reserve(Buf *b, size_t extra);
void buf_append(Buf *b, const void *data, size_t len);
void buf_append_str(Buf *b, const char *s);
void buf_append_byte(Buf *b, unsigned char c);
void buf_printf(Buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_vprintf(Buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Drop the first n bytes, moving the rest to the front. */
void buf_consume(Buf *b, size_t n);
/* Take ownership of the data as a C string; the Buf is left empty. */
char *buf_detach(Buf *b);
/* Lend the contents as a C string ("" for an empty Buf). */
const char *buf_cstr(const Buf *b);

/* Little-endian fixed-width integers, for binary formats. */
void buf_append_u16le(Buf *b, uint16_t v);
void buf_append_u32le(Buf *b, uint32_t v);
void buf_append_u64le(Buf *b, uint64_t v);
uint16_t pv_read_u16le(const unsigned char *p);
uint32_t pv_read_u32le(const unsigned char *p);
uint64_t pv_read_u64le(const unsigned char *p);

/* Lowercase hex of len bytes into out (2*len+1 bytes). */
void pv_hex_encode(char *out, const unsigned char *data, size_t len);
/* Parse exactly 2*len hex digits; returns 0 or PV_ERROR (no message set). */
int pv_hex_decode(unsigned char *out, size_t len, const char *hex);

#endif
