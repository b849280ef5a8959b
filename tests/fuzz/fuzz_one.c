// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * One fuzz input through the correlator and both writers, with checks.
 * Shared by the libFuzzer target (fuzz_correlate.c) and the unit test that
 * replays the seed corpus and past crashes (tests/unit/test_fuzz_regressions.c).
 *
 * Input: a config byte, then operations until the input ends.
 *
 *   config  bit 0  hold_ns 50 ms (late evidence waits)      else 0
 *           bit 1  max_evidence 8 (the store overflows)     else the default
 *           bit 2  slow_ns 0                                 else 1 s
 *           bit 3  the kernel has no drop/RST enums (names are NULL)
 *           bit 4  text writer in colour
 *           bit 5  evidence_ttl 1 s                          else the default
 *   op % 5  0  feed a flow-sized record: the next sizeof(struct ct_flow) bytes
 *           1  feed an evidence-sized record: the next sizeof(struct ct_evidence)
 *           2  feed a record of any length: a length byte, then that many bytes
 *           3  advance the clock: 4 bytes (little endian) of microseconds, tick
 *           4  flush (what conntrace does at exit)
 * A record cut short by the end of the input is padded with zeros.
 *
 * Checks, each an abort(): every verdict is in range and its strings are
 * terminated; every JSON line (verdicts, lost, summary) is one valid JSON
 * object with no raw control byte; the text output (colour off) carries no
 * control byte but newlines; the verdict counts add up; nothing leaks (ASan).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "correlate.h"
#include "inbound.h"
#include "output.h"

int ct_fuzz_one(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond) do { if (!(cond)) fuzz_fail(#cond, __LINE__); } while (0)

static void fuzz_fail(const char *what, int line)
{
	fprintf(stderr, "fuzz_one.c:%d: check failed: %s\n", line, what);
	abort();
}

/* ---- a strict JSON checker: one object, then a newline ---- */

struct jp {
	const unsigned char *s, *end;
	int depth;
};

static bool jp_value(struct jp *p);

static void jp_ws(struct jp *p)
{
	while (p->s < p->end && (*p->s == ' ' || *p->s == '\t'))
		p->s++;
}

static bool jp_lit(struct jp *p, const char *lit)
{
	size_t n = strlen(lit);

	if ((size_t)(p->end - p->s) < n || memcmp(p->s, lit, n))
		return false;
	p->s += n;
	return true;
}

static int hexdig(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* UTF-8 of the string must be valid; no raw byte below 0x20, no raw DEL or C1. */
static bool jp_string(struct jp *p)
{
	if (p->s >= p->end || *p->s != '"')
		return false;
	p->s++;
	while (p->s < p->end) {
		unsigned c = *p->s;

		if (c == '"') {
			p->s++;
			return true;
		}
		if (c < 0x20 || c == 0x7f)
			return false;
		if (c == '\\') {
			if (++p->s >= p->end)
				return false;
			c = *p->s++;
			if (c == 'u') {
				for (int i = 0; i < 4; i++)
					if (p->s >= p->end || hexdig(*p->s++) < 0)
						return false;
			} else if (!strchr("\"\\/bfnrt", (int)c)) {
				return false;
			}
			continue;
		}
		if (c < 0x80) {
			p->s++;
			continue;
		}
		{
			size_t len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
			uint32_t cp = c & (len == 4 ? 0x07 : len == 3 ? 0x0f : 0x1f);

			if (!len || c > 0xf4 || (size_t)(p->end - p->s) < len)
				return false;
			for (size_t i = 1; i < len; i++) {
				if ((p->s[i] & 0xc0) != 0x80)
					return false;
				cp = (cp << 6) | (p->s[i] & 0x3f);
			}
			if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
			    (cp >= 0xd800 && cp <= 0xdfff) || (cp >= 0x80 && cp <= 0x9f))
				return false;	/* overlong, surrogate, too big, or a raw C1 control */
			p->s += len;
		}
	}
	return false;
}

static bool jp_number(struct jp *p)
{
	const unsigned char *start = p->s;

	if (p->s < p->end && *p->s == '-')
		p->s++;
	if (p->s >= p->end || *p->s < '0' || *p->s > '9')
		return false;
	if (*p->s == '0')
		p->s++;
	else
		while (p->s < p->end && *p->s >= '0' && *p->s <= '9')
			p->s++;
	if (p->s < p->end && *p->s == '.') {
		p->s++;
		if (p->s >= p->end || *p->s < '0' || *p->s > '9')
			return false;
		while (p->s < p->end && *p->s >= '0' && *p->s <= '9')
			p->s++;
	}
	if (p->s < p->end && (*p->s == 'e' || *p->s == 'E')) {
		p->s++;
		if (p->s < p->end && (*p->s == '+' || *p->s == '-'))
			p->s++;
		if (p->s >= p->end || *p->s < '0' || *p->s > '9')
			return false;
		while (p->s < p->end && *p->s >= '0' && *p->s <= '9')
			p->s++;
	}
	return p->s > start;
}

static bool jp_container(struct jp *p, int open, int close, bool keys)
{
	if (p->s >= p->end || *p->s != open || ++p->depth > 64)
		return false;
	p->s++;
	jp_ws(p);
	if (p->s < p->end && *p->s == close) {
		p->s++;
		p->depth--;
		return true;
	}
	for (;;) {
		jp_ws(p);
		if (keys) {
			if (!jp_string(p))
				return false;
			jp_ws(p);
			if (p->s >= p->end || *p->s++ != ':')
				return false;
			jp_ws(p);
		}
		if (!jp_value(p))
			return false;
		jp_ws(p);
		if (p->s >= p->end)
			return false;
		if (*p->s == ',') {
			p->s++;
			continue;
		}
		if (*p->s++ != close)
			return false;
		p->depth--;
		return true;
	}
}

static bool jp_value(struct jp *p)
{
	if (p->s >= p->end)
		return false;
	switch (*p->s) {
	case '{':
		return jp_container(p, '{', '}', true);
	case '[':
		return jp_container(p, '[', ']', false);
	case '"':
		return jp_string(p);
	case 't':
		return jp_lit(p, "true");
	case 'f':
		return jp_lit(p, "false");
	case 'n':
		return jp_lit(p, "null");
	default:
		return jp_number(p);
	}
}

/* [s, end) holds whole lines; each must be one JSON object. Returns lines. */
static unsigned check_json_lines(const char *s, const char *end)
{
	unsigned lines = 0;

	while (s < end) {
		const char *nl = memchr(s, '\n', end - s);
		struct jp p = { (const unsigned char *)s, (const unsigned char *)nl, 0 };

		FUZZ_CHECK(nl);		/* every record ends its line */
		FUZZ_CHECK(*s == '{');
		FUZZ_CHECK(jp_value(&p));
		FUZZ_CHECK(p.s == (const unsigned char *)nl);
		s = nl + 1;
		lines++;
	}
	return lines;
}

/* The line around s, bytes escaped, for a failure message. */
static void show_line(const char *start, const char *s, const char *end)
{
	const char *a = s, *b = s;

	while (a > start && a[-1] != '\n')
		a--;
	while (b < end && *b != '\n')
		b++;
	fprintf(stderr, "in this line: ");
	for (; a < b; a++)
		fprintf(stderr, (unsigned char)*a >= 0x20 && *a != 0x7f && *a != '\\' ? "%c" :
			"\\x%02x", (unsigned char)*a);
	fprintf(stderr, "\n");
}

static void check_text(const char *start, const char *end)
{
	for (const char *s = start; s < end; s++) {
		unsigned char c = *s;
		/* U+0080..U+009F in UTF-8: C2 80..C2 9F */
		bool c1 = c == 0xc2 && s + 1 < end && (unsigned char)s[1] >= 0x80 &&
			  (unsigned char)s[1] <= 0x9f;

		if (c == '\n' || (c >= 0x20 && c != 0x7f && !c1))
			continue;
		show_line(start, s, end);
		FUZZ_CHECK(!"a control character in the text output");
	}
}

/* ---- the run ---- */

struct fuzz_run {
	struct writer jw, tw;
	FILE *jf, *tf;
	char *jbuf, *tbuf;
	size_t jlen, tlen, jdone, tdone;
	bool color;
	uint64_t emitted;
	uint64_t inbound;	/* verdicts of incoming attempts (user/inbound.c) */
};

static const char *const drop_names[] = {
	"NOT_SPECIFIED", "NO_SOCKET", "NETFILTER_DROP", "TCP_LISTEN_OVERFLOW", NULL,
	"OTHER \x1b[31m\xff", "TCP_CSUM",
};
static const char *const rst_names[] = { "NOT_SPECIFIED", "NO_SOCKET", NULL, "TCP_ABORT" };

static const char *fake_drop_name(uint32_t v, void *ctx)
{
	(void)ctx;
	return drop_names[v % (sizeof(drop_names) / sizeof(drop_names[0]))];
}

static const char *fake_rst_name(uint32_t v, void *ctx)
{
	(void)ctx;
	return rst_names[v % (sizeof(rst_names) / sizeof(rst_names[0]))];
}

static void check_new_output(struct fuzz_run *fr)
{
	fflush(fr->jf);
	fflush(fr->tf);
	FUZZ_CHECK(fr->jlen >= fr->jdone && fr->tlen >= fr->tdone);
	check_json_lines(fr->jbuf + fr->jdone, fr->jbuf + fr->jlen);
	fr->jdone = fr->jlen;
	if (!fr->color)
		check_text(fr->tbuf + fr->tdone, fr->tbuf + fr->tlen);
	fr->tdone = fr->tlen;
}

static void on_verdict(const struct ct_result *r, void *ctx)
{
	struct fuzz_run *fr = ctx;

	FUZZ_CHECK((unsigned)r->verdict < CT_V_MAX);
	FUZZ_CHECK((unsigned)r->cause < CT_C_MAX);
	FUZZ_CHECK(r->nr_ev <= CT_MAX_EV);
	{
		/* the renderer fills and terminates any buffer, however small */
		char d[CT_DETAIL_MAX], tiny[8];

		memset(d, 'x', sizeof(d));
		ct_render_detail(r, d, sizeof(d));
		FUZZ_CHECK(memchr(d, '\0', sizeof(d)));
		memset(tiny, 'x', sizeof(tiny));
		ct_render_detail(r, tiny, sizeof(tiny));
		FUZZ_CHECK(memchr(tiny, '\0', sizeof(tiny)) && !strncmp(d, tiny, strlen(tiny)));
		FUZZ_CHECK(r->cause != CT_C_UNKNOWN || r->inferred);
	}
	for (unsigned i = 0; i < r->nr_ev; i++)
		FUZZ_CHECK((unsigned)r->ev[i].kind < CT_EV_MAX);
	if (r->inbound)
		fr->inbound++;
	else
		fr->emitted++;
	fr->jw.ops->verdict(&fr->jw, r, r->flow.ts_end);
	fr->tw.ops->verdict(&fr->tw, r, r->flow.ts_end);
	check_new_output(fr);
}

static size_t take(const uint8_t **d, size_t *n, void *out, size_t want)
{
	size_t got = *n < want ? *n : want;

	memset(out, 0, want);
	memcpy(out, *d, got);
	*d += got;
	*n -= got;
	return got;
}

/* The counts add up, and the loss and summary records are well formed too. */
static void check_end(struct fuzz_run *fr, const struct corr_stats *st, uint64_t now)
{
	struct loss_info li = { .lost_records = st->records, .new_lost = st->malformed,
				.since_real_ns = now, .ts_real_ns = now };
	struct summary_info si = { .stats = st, .verdicts = st->verdicts,
				   .lost_records = st->malformed,
				   .duration_s = now / 1e9, .ts_real_ns = now };
	uint64_t total = 0;

	for (int v = 0; v < CT_V_MAX; v++)
		total += st->verdicts[v];
	FUZZ_CHECK(total == fr->emitted);
	FUZZ_CHECK(st->malformed <= st->records);
	fr->jw.ops->loss(&fr->jw, &li);
	fr->jw.ops->summary(&fr->jw, &si);
	fr->tw.ops->loss(&fr->tw, &li);
	fr->tw.ops->summary(&fr->tw, &si);
	check_new_output(fr);
}

int ct_fuzz_one(const uint8_t *data, size_t size)
{
	struct fuzz_run fr = { 0 };
	struct corr_config cc = { 0 };
	struct correlator *c;
	struct inbound *in;
	uint64_t now = 1000000000000ULL;	/* 1000 s after boot */
	uint8_t cfg, rec[256 + sizeof(struct ct_flow)];

	if (!size)
		return 0;
	cfg = data[0];
	data++;
	size--;

	fr.jf = open_memstream(&fr.jbuf, &fr.jlen);
	fr.tf = open_memstream(&fr.tbuf, &fr.tlen);
	if (!fr.jf || !fr.tf)
		abort();
	fr.color = cfg & 16;
	writer_json_init(&fr.jw, fr.jf);
	writer_text_init(&fr.tw, fr.tf, fr.color, true);

	cc.hold_ns = cfg & 1 ? 50000000ULL : 0;
	cc.max_evidence = cfg & 2 ? 8 : 0;
	cc.slow_ns = cfg & 4 ? 0 : 1000000000ULL;
	if (!(cfg & 8)) {
		cc.drop_reason_name = fake_drop_name;
		cc.rst_reason_name = fake_rst_name;
	}
	cc.evidence_ttl_ns = cfg & 32 ? 1000000000ULL : 0;
	cc.emit = on_verdict;
	cc.emit_ctx = &fr;
	c = corr_new(&cc);
	in = inbound_new(&(struct inbound_config){
		.quiet_ns = 2000000000ULL, .max_attempts = 8, .emit = on_verdict, .emit_ctx = &fr,
		.drop_reason_name = cc.drop_reason_name,
	});
	if (!c || !in)
		abort();

	while (size) {
		uint8_t op = *data++;
		size_t len;
		uint32_t us;

		size--;
		switch (op % 5) {
		case 0:
			take(&data, &size, rec, sizeof(struct ct_flow));
			corr_feed(c, rec, sizeof(struct ct_flow), now);
			break;
		case 1:
			take(&data, &size, rec, sizeof(struct ct_evidence));
			corr_feed(c, rec, sizeof(struct ct_evidence), now);
			break;
		case 2:
			len = 0;
			take(&data, &size, &len, 1);
			take(&data, &size, rec, len);
			/* a copy of exactly len bytes, so ASan sees any over-read */
			{
				uint8_t *exact = malloc(len ? len : 1);

				if (!exact)
					abort();
				memcpy(exact, rec, len);
				/* dispatched by type as the collector does */
				if (len && exact[0] == CT_REC_INBOUND)
					inbound_feed(in, exact, len, now);
				else
					corr_feed(c, exact, len, now);
				free(exact);
			}
			break;
		case 3:
			take(&data, &size, &us, sizeof(us));
			now += (uint64_t)us * 1000;
			corr_tick(c, now);
			inbound_tick(in, now);
			break;
		case 4:
			corr_flush(c);
			inbound_flush(in, now);
			break;
		}
	}
	corr_flush(c);
	inbound_flush(in, now);
	FUZZ_CHECK(inbound_held(in) == 0);
	check_end(&fr, corr_stats(c), now);
	corr_free(c);
	inbound_free(in);
	fclose(fr.jf);
	fclose(fr.tf);
	free(fr.jbuf);
	free(fr.tbuf);
	return 0;
}
