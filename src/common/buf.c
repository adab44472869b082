/*
 * buf.c: see buf.h.
 */
#include "common/buf.h"

#include "common/error.h"
#include "common/mem.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>

static const char empty_cstr[1] = "";

void
buf_init(Buf *b)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

void
buf_free(Buf *b)
{
	pv_free(b->data);
	buf_init(b);
}

void
buf_free_secret(Buf *b)
{
	if (b->data != NULL)
		OPENSSL_cleanse(b->data, b->cap);
	buf_free(b);
}

void
buf_reset(Buf *b)
{
	b->len = 0;
	if (b->data != NULL)
		b->data[0] = '\0';
}

void
buf_reserve(Buf *b, size_t extra)
{
	size_t need = b->len + extra + 1;
	size_t cap;

	if (need <= b->cap)
		return;
	cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap *= 2;
	b->data = pv_realloc(b->data, cap);
	b->cap = cap;
	b->data[b->len] = '\0';	/* the first allocation too: data is always terminated */
}

void
buf_append(Buf *b, const void *data, size_t len)
{
	buf_reserve(b, len);
	if (len > 0)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
}

void
buf_append_str(Buf *b, const char *s)
{
	buf_append(b, s, strlen(s));
}

void
buf_append_byte(Buf *b, unsigned char c)
{
	buf_append(b, &c, 1);
}

void
buf_vprintf(Buf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	char probe[1];
	int n;

	va_copy(ap2, ap);
	n = vsnprintf(probe, sizeof(probe), fmt, ap2);
	va_end(ap2);
	if (n <= 0)
		return;
	buf_reserve(b, (size_t) n);
	vsnprintf((char *) b->data + b->len, (size_t) n + 1, fmt, ap);
	b->len += (size_t) n;
}

void
buf_printf(Buf *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	buf_vprintf(b, fmt, ap);
	va_end(ap);
}

void
buf_consume(Buf *b, size_t n)
{
	if (n >= b->len)
	{
		buf_reset(b);
		return;
	}
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
	b->data[b->len] = '\0';
}

char *
buf_detach(Buf *b)
{
	char *s;

	if (b->data == NULL)
		return pv_strdup("");
	s = (char *) b->data;
	buf_init(b);
	return s;
}

const char *
buf_cstr(const Buf *b)
{
	return b->data ? (const char *) b->data : empty_cstr;
}

void
buf_append_u16le(Buf *b, uint16_t v)
{
	unsigned char p[2] = {(unsigned char) v, (unsigned char) (v >> 8)};

	buf_append(b, p, 2);
}

void
buf_append_u32le(Buf *b, uint32_t v)
{
	unsigned char p[4];

	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char) (v >> (8 * i));
	buf_append(b, p, 4);
}

void
buf_append_u64le(Buf *b, uint64_t v)
{
	unsigned char p[8];

	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char) (v >> (8 * i));
	buf_append(b, p, 8);
}

uint16_t
pv_read_u16le(const unsigned char *p)
{
	return (uint16_t) (p[0] | (p[1] << 8));
}

uint32_t
pv_read_u32le(const unsigned char *p)
{
	return (uint32_t) p[0] | ((uint32_t) p[1] << 8) |
		((uint32_t) p[2] << 16) | ((uint32_t) p[3] << 24);
}

uint64_t
pv_read_u64le(const unsigned char *p)
{
	return (uint64_t) pv_read_u32le(p) | ((uint64_t) pv_read_u32le(p + 4) << 32);
}

void
pv_hex_encode(char *out, const unsigned char *data, size_t len)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++)
	{
		out[2 * i] = digits[data[i] >> 4];
		out[2 * i + 1] = digits[data[i] & 15];
	}
	out[2 * len] = '\0';
}

static int
hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
pv_hex_decode(unsigned char *out, size_t len, const char *hex)
{
	for (size_t i = 0; i < len; i++)
	{
		int hi, lo;

		if (hex[2 * i] == '\0' || hex[2 * i + 1] == '\0')
			return PV_ERROR;
		hi = hex_value(hex[2 * i]);
		lo = hex_value(hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return PV_ERROR;
		out[i] = (unsigned char) ((hi << 4) | lo);
	}
	return hex[2 * len] == '\0' ? PV_OK : PV_ERROR;
}
