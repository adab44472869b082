/*
 * copybin.h: turn the COPY text rows a logical backup stores into COPY
 * binary rows, so that a restore's server parses less.
 *
 * Why: a logical restore is bound by the server's CPU, and most of it goes
 * into parsing COPY text (escapes, dates, numbers, hex bytea): measured on
 * the 1.5 GB bench dataset, the server loads the same rows in binary 1.6x
 * faster. The backup keeps text (portable, what export and pg_dump speak);
 * the restore converts on the client, where it is cheap.
 *
 * Only columns whose type's binary form we can produce exactly are
 * supported (copybin_kind_for_receive names them by the type's receive
 * function, so domains and enums are recognised by what they are); a
 * table with any other column loads as text. The input is what
 * `COPY ... TO STDOUT` writes with the session settings of
 * pglogical_session_setup (DateStyle ISO, TimeZone UTC, extra_float_digits
 * 3, bytea_output hex): anything else (a line with the wrong number of
 * fields, a value outside that form) is an error, never a guess, and the
 * caller loads the table as text instead. So is a row longer than 16 MiB:
 * binary would hold it whole in memory, text streams it.
 *
 * Ownership: a CopyBin is owned by one thread; output is appended to the
 * caller's Buf.
 */
#ifndef PV_PG_LOGICAL_COPYBIN_H
#define PV_PG_LOGICAL_COPYBIN_H

#include "common/buf.h"

#include <stddef.h>

typedef enum CopyBinKind
{
	COPYBIN_TEXT,				/* text, varchar, bpchar, name, json, enum labels, citext: the bytes */
	COPYBIN_JSONB,				/* version byte 1, then the text */
	COPYBIN_BYTEA,				/* "\x..." hex: the bytes */
	COPYBIN_BOOL,
	COPYBIN_INT2,
	COPYBIN_INT4,
	COPYBIN_INT8,
	COPYBIN_OID,
	COPYBIN_FLOAT4,
	COPYBIN_FLOAT8,
	COPYBIN_NUMERIC,
	COPYBIN_DATE,
	COPYBIN_TIMESTAMP,
	COPYBIN_TIMESTAMPTZ,
	COPYBIN_UUID,
} CopyBinKind;

/* The kind for a base type's receive function ("int4recv", "textrecv",
   "timestamptz_recv", ...), or -1 when its binary form is not supported. */
int copybin_kind_for_receive(const char *typreceive);

typedef struct CopyBin CopyBin;

/* A converter for rows of ncols columns of these kinds (copied). */
CopyBin *copybin_new(const CopyBinKind *kinds, size_t ncols);
void copybin_free(CopyBin *cb);

/* Convert every whole line of data[0..n) (plus what earlier calls kept),
   appending binary rows to out (the file header before the first row);
   a partial last line is kept for the next call. An error naming the
   row and column on input that is not of the expected form
   (PV_ERROR: the caller loads that table as text instead); the message
   never quotes the value (it is logged), and a failed row leaves nothing
   in out. After an error every later call fails too. */
int copybin_feed(CopyBin *cb, const char *data, size_t n, Buf *out);

/* End of the input: append the trailer (and the header if no row came).
   An error if a partial line is left. */
int copybin_finish(CopyBin *cb, Buf *out);

/* Rows converted so far. */
size_t copybin_rows(const CopyBin *cb);

#endif
