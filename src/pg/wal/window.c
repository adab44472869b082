/*
 * window.c: summary of a source's WAL archive (see window.h).  The listing
 * collects segment numbers per timeline into arrays, which are then sorted
 * to find ranges and gaps: memory is 8 bytes per archived segment.
 */
#include "pg/wal/window.h"

#include "common/sort.h"
#include "common/error.h"
#include "common/mem.h"
#include "repo/repo.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct TlSegs
{
	uint64_t *v;
	size_t n, cap;
} TlSegs;

typedef struct Collect
{
	PgWalArchiveSummary *s;
	TlSegs *segs;				/* parallel to s->timelines */
	uint64_t seg_size;
} Collect;

static PgWalTimelineInfo *
timeline_get(Collect *c, uint32_t tli)
{
	PgWalArchiveSummary *s = c->s;

	for (size_t i = 0; i < s->ntimelines; i++)
		if (s->timelines[i].timeline == tli)
			return &s->timelines[i];
	s->timelines = pv_realloc(s->timelines, (s->ntimelines + 1) * sizeof(PgWalTimelineInfo));
	c->segs = pv_realloc(c->segs, (s->ntimelines + 1) * sizeof(TlSegs));
	memset(&s->timelines[s->ntimelines], 0, sizeof(PgWalTimelineInfo));
	memset(&c->segs[s->ntimelines], 0, sizeof(TlSegs));
	s->timelines[s->ntimelines].timeline = tli;
	return &s->timelines[s->ntimelines++];
}

static int
collect_one(const char *name, uint64_t stored, void *payload)
{
	Collect *c = payload;
	PgWalFile f;
	PgWalTimelineInfo *t;
	TlSegs *segs;
	uint32_t tli;
	uint64_t segno;

	if (pgwal_file_parse(&f, name) < 0)
	{
		pv_error_clear();		/* uncovered: pgwal_list only passes WAL names */
		return 0;
	}
	t = timeline_get(c, f.timeline);
	segs = &c->segs[t - c->s->timelines];
	t->stored_bytes += stored;
	switch (f.kind)
	{
		case PGWAL_FILE_HISTORY:
			t->history = true;
			break;
		case PGWAL_FILE_PARTIAL:
			t->partial++;
			break;
		case PGWAL_FILE_SEGMENT:
			if (pgwal_segment_parse(&tli, &segno, name, c->seg_size) < 0)
			{
				pv_error_clear();	/* a name impossible for this segment size: not ours to judge */
				break;
			}
			if (segs->n == segs->cap)
			{
				segs->cap = segs->cap ? segs->cap * 2 : 256;
				segs->v = pv_realloc(segs->v, segs->cap * sizeof(uint64_t));
			}
			segs->v[segs->n++] = segno;
			break;
		case PGWAL_FILE_BACKUP:
			break;
	}
	return 0;
}

static int
u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;

	return x < y ? -1 : x > y;
}

static int
timeline_cmp(const void *a, const void *b)
{
	uint32_t x = ((const PgWalTimelineInfo *) a)->timeline;
	uint32_t y = ((const PgWalTimelineInfo *) b)->timeline;

	return x < y ? -1 : x > y;
}

static void
ranges_compute(PgWalTimelineInfo *t, TlSegs *segs)
{
	size_t cap = 0;

	if (segs->n == 0)
		return;
	pv_qsort(segs->v, segs->n, sizeof(uint64_t), u64_cmp);
	t->segments = segs->n;
	t->first = segs->v[0];
	t->last = segs->v[segs->n - 1];
	for (size_t i = 1; i < segs->n; i++)
	{
		if (segs->v[i] <= segs->v[i - 1] + 1)
			continue;
		if (t->ngaps == cap)
		{
			cap = cap ? cap * 2 : 4;
			t->gaps = pv_realloc(t->gaps, cap * sizeof(PgWalGap));
		}
		t->gaps[t->ngaps++] = (PgWalGap) {segs->v[i - 1] + 1, segs->v[i] - 1};
	}
}

int
pgwal_archive_summarize(PgWalArchiveSummary *out, Repo *repo, const char *source)
{
	Collect c = {out, NULL, PGWAL_DEFAULT_SEGMENT_SIZE};
	int rc;

	memset(out, 0, sizeof(*out));
	rc = pgwal_system_read(repo, source, &out->sys);
	if (rc == 0)
	{
		out->has_system = true;
		c.seg_size = out->sys.segment_size;
	}
	else if (rc != PV_ENOTFOUND)
		return rc;
	pv_error_clear();
	rc = pgwal_list(repo, source, 0, collect_one, &c);
	if (rc == 0)
	{
		for (size_t i = 0; i < out->ntimelines; i++)
			ranges_compute(&out->timelines[i], &c.segs[i]);
		pv_qsort(out->timelines, out->ntimelines, sizeof(PgWalTimelineInfo), timeline_cmp);
	}
	for (size_t i = 0; i < out->ntimelines; i++)
		pv_free(c.segs[i].v);
	pv_free(c.segs);
	if (rc < 0)
		pgwal_archive_summary_free(out);
	return rc;
}

void
pgwal_archive_summary_free(PgWalArchiveSummary *s)
{
	for (size_t i = 0; i < s->ntimelines; i++)
		pv_free(s->timelines[i].gaps);
	pv_free(s->timelines);
	memset(s, 0, sizeof(*s));
}

const PgWalTimelineInfo *
pgwal_summary_timeline(const PgWalArchiveSummary *s, uint32_t timeline)
{
	for (size_t i = 0; i < s->ntimelines; i++)
		if (s->timelines[i].timeline == timeline)
			return &s->timelines[i];
	return NULL;
}

const PgWalGap *
pgwal_summary_gap_after(const PgWalArchiveSummary *s, uint32_t timeline, uint64_t from)
{
	const PgWalTimelineInfo *t = pgwal_summary_timeline(s, timeline);

	if (t == NULL)
		return NULL;
	for (size_t i = 0; i < t->ngaps; i++)
		if (t->gaps[i].last >= from)
			return &t->gaps[i];
	return NULL;
}

json_t *
pgwal_archive_summary_json(const PgWalArchiveSummary *s, const char *source)
{
	uint64_t seg = s->has_system ? s->sys.segment_size : PGWAL_DEFAULT_SEGMENT_SIZE;
	json_t *tls = json_array();
	char sysid[32];

	for (size_t i = 0; i < s->ntimelines; i++)
	{
		const PgWalTimelineInfo *t = &s->timelines[i];
		char a[PGWAL_SEGMENT_NAME_LEN + 1], b[PGWAL_SEGMENT_NAME_LEN + 1];
		json_t *gaps = json_array();
		json_t *o;

		for (size_t k = 0; k < t->ngaps; k++)
		{
			pgwal_segment_name(a, t->timeline, t->gaps[k].first, seg);
			pgwal_segment_name(b, t->timeline, t->gaps[k].last, seg);
			json_array_append_new(gaps, json_pack("{s:s, s:s}", "first", a, "last", b));
		}
		o = json_pack("{s:i, s:b, s:I, s:I, s:I, s:o}", "timeline", (int) t->timeline,
					  "history", t->history, "segments", (json_int_t) t->segments,
					  "partial", (json_int_t) t->partial,
					  "stored_bytes", (json_int_t) t->stored_bytes, "gaps", gaps);
		if (t->segments > 0)
		{
			pgwal_segment_name(a, t->timeline, t->first, seg);
			pgwal_segment_name(b, t->timeline, t->last, seg);
			json_object_set_new(o, "first", json_string(a));
			json_object_set_new(o, "last", json_string(b));
		}
		json_array_append_new(tls, o);
	}
	snprintf(sysid, sizeof(sysid), "%" PRIu64, s->sys.system_identifier);
	return json_pack("{s:s, s:o, s:o, s:o}", "source", source,
					 "system_identifier", s->has_system ? json_string(sysid) : json_null(),
					 "wal_segment_size", s->has_system ? json_integer((json_int_t) seg) : json_null(),
					 "timelines", tls);
}
