// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The text writer, captured with open_memstream(): the columns line up under
 * the header for every verdict and cause, an IPv4 line fits in 124 columns,
 * and a hostile task name reaches the terminal only escaped. The JSON writer
 * is tested in test_output_json.c; the fixture is output_fixture.h.
 */
#include "output_fixture.h"

/* ---- text: columns ---- */

/* Code points before byte offset `byte` of s. */
static size_t col_of(const char *s, size_t byte)
{
	size_t cols = 0;

	for (size_t i = 0; i < byte; i++)
		cols += ((unsigned char)s[i] & 0xc0) != 0x80;
	return cols;
}

/* The byte at display column col (one column per code point), or NULL. */
static const char *at_col(const char *s, size_t col)
{
	for (size_t i = 0; s[i] && s[i] != '\n'; i++)
		if (((unsigned char)s[i] & 0xc0) != 0x80 && col-- == 0)
			return s + i;
	return NULL;
}

static size_t line_width(const char *line)
{
	return col_of(line, strcspn(line, "\n"));
}

struct columns {
	size_t saddr, daddr, verdict, syns_end, lat_end, cause;
};

static size_t header_col(const char *hdr, const char *name, bool end)
{
	const char *p = strstr(hdr, name);

	CHECK(p, "expected a %s column in the header: %s", name, hdr);
	return col_of(hdr, p - hdr) + (end ? strlen(name) : 0);
}

static struct columns header_columns(const char *hdr)
{
	return (struct columns){
		.saddr = header_col(hdr, "SADDR:SPORT", false),
		.daddr = header_col(hdr, "DADDR:DPORT", false),
		.verdict = header_col(hdr, "VERDICT", false),
		.syns_end = header_col(hdr, "SYNS", true),
		.lat_end = header_col(hdr, "LAT", true),
		.cause = header_col(hdr, "CAUSE", false),
	};
}

/* `want` starts at column col, after a space. */
static void expect_at(const char *line, size_t col, const char *want, const char *what)
{
	const char *p = at_col(line, col);

	CHECK(p && p > line && p[-1] == ' ' && !strncmp(p, want, strlen(want)),
	      "expected %s '%s' at column %zu, after a space, in:\n%s", what, want, col, line);
}

/* A right-aligned field ends at column end: something there, then a space. */
static void expect_ends_at(const char *line, size_t end, const char *what)
{
	const char *last = at_col(line, end - 1), *next = at_col(line, end);

	CHECK(last && *last != ' ' && next && *next == ' ',
	      "expected %s to end at column %zu in:\n%s", what, end, line);
}

static void expect_aligned(const char *line, const struct columns *cols,
			   const struct ct_result *r)
{
	char src[64], dst[64];

	fmt_endpoint(src, sizeof(src), r->flow.family, r->flow.saddr, r->flow.sport);
	fmt_endpoint(dst, sizeof(dst), r->flow.family, r->flow.daddr, r->flow.dport);
	expect_at(line, cols->saddr, src, "the source");
	expect_at(line, cols->daddr, dst, "the destination");
	expect_at(line, cols->verdict, ct_verdict_label(r->verdict), "the verdict");
	expect_ends_at(line, cols->syns_end, "SYNS");
	expect_ends_at(line, cols->lat_end, "LAT");
	expect_at(line, cols->cause, ct_cause_name(r->cause), "the cause");
}

/* Splits text into at most max lines (modifies it); returns how many. */
static size_t split_lines(char *text, char **lines, size_t max)
{
	size_t n = 0;

	for (char *p = text; *p && n < max; ) {
		char *nl = strchr(p, '\n');

		CHECK(nl, "expected every line to end in a newline: '%s'", p);
		*nl = '\0';
		lines[n++] = p;
		p = nl + 1;
	}
	return n;
}

static void test_text_columns_align_for_every_verdict_and_cause(void **state)
{
	struct capture c;
	char *text, *lines[CT_V_MAX * CT_C_MAX + 8];
	struct columns cols;
	size_t n;

	(void)state;
	cap_text(&c, false, false);
	write_start(&c.w);
	for (int v = 0; v < CT_V_MAX; v++)
		for (int k = 0; k < CT_C_MAX; k++) {
			struct ct_result r = make_result(v, k);

			c.w.ops->verdict(&c.w, &r, TS_NS);
		}
	text = cap_close(&c);
	n = split_lines(text, lines, sizeof(lines) / sizeof(lines[0]));
	CHECK(n == 1 + CT_V_MAX * CT_C_MAX, "expected a header and %d lines, got %zu lines",
	      CT_V_MAX * CT_C_MAX, n);
	CHECK(!strncmp(lines[0], "TIME ", 5), "expected the header first, got: %s", lines[0]);
	cols = header_columns(lines[0]);
	for (size_t i = 1; i < n; i++) {
		struct ct_result r = make_result((i - 1) / CT_C_MAX, (i - 1) % CT_C_MAX);

		expect_aligned(lines[i], &cols, &r);
		CHECK(line_width(lines[i]) <= MAX_WIDTH, "expected at most %d columns, got %zu:\n%s",
		      MAX_WIDTH, line_width(lines[i]), lines[i]);
	}
}

static void test_text_columns_align_for_short_and_odd_values(void **state)
{
	struct ct_result rs[5];
	struct capture c;
	char *text, *lines[8];
	struct columns cols;
	size_t n;

	(void)state;
	rs[0] = make_result(CT_V_OK, CT_C_ESTABLISHED);
	rs[0].flow.pid = 1;
	memcpy(rs[0].flow.comm, "a", 2);
	put_addr(rs[0].flow.saddr, "1.2.3.4");
	rs[0].flow.sport = 1;
	rs[0].flow.syn_retrans = 0;
	rs[0].duration_ns = 12345;
	/* UTF-8 name: padded by code points */
	rs[1] = make_result(CT_V_SLOW, CT_C_SLOW_HANDSHAKE);
	memcpy(rs[1].flow.comm, "caf\xc3\xa9-\xe6\x97\xa5\xe6\x9c\xac", 12);
	rs[1].duration_ns = 1500000000ULL;
	/* without history: pid, comm and latency unknown */
	rs[2] = make_result(CT_V_TIMEOUT, CT_C_NO_SYNACK);
	rs[2].flow.flags = CT_F_EVICTED;
	rs[2].duration_ns = 0;
	/* connect() failed at once: no port, no SYN */
	rs[3] = make_result(CT_V_UNREACHABLE, CT_C_NO_ROUTE);
	rs[3].flow.flags = CT_F_CONNECT_ERR;
	rs[3].flow.sport = 0;
	memset(rs[3].flow.saddr, 0, 16);
	rs[3].duration_ns = 0;
	rs[4] = make_result(CT_V_PENDING, CT_C_UNKNOWN);
	rs[4].duration_ns = 45ULL * 1000000;

	cap_text(&c, false, false);
	write_start(&c.w);
	for (size_t i = 0; i < 5; i++)
		c.w.ops->verdict(&c.w, &rs[i], TS_NS);
	text = cap_close(&c);
	n = split_lines(text, lines, 8);
	CHECK(n == 6, "expected a header and 5 lines, got %zu", n);
	cols = header_columns(lines[0]);
	for (size_t i = 0; i < 5; i++)
		expect_aligned(lines[i + 1], &cols, &rs[i]);
}

static void test_text_detail_line_follows_each_verdict(void **state)
{
	struct ct_result r = make_result(CT_V_REFUSED, CT_C_NO_LISTENER);
	struct capture c;
	char *text, *lines[4];

	(void)state;
	cap_text(&c, false, true);
	c.w.ops->verdict(&c.w, &r, TS_NS);
	text = cap_close(&c);
	CHECK(split_lines(text, lines, 4) == 2, "expected the verdict and its detail line");
	CHECK(strstr(lines[1], "nothing listens on 255.255.255.254:65534") && lines[1][0] == ' ',
	      "expected an indented detail line, got: %s", lines[1]);
}

/* -d names the owner's unit, container (short id) and pod after the detail. */
static void test_text_detail_names_the_owner(void **state)
{
	struct ct_result r = make_result(CT_V_REFUSED, CT_C_NO_LISTENER);
	struct cg_info cg = { .id = 7, .state = CG_FOUND, .path = "/x" };
	struct capture c;
	char *text, *lines[4];

	(void)state;
	strcpy(cg.a.container_id, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
	strcpy(cg.a.pod_uid, "2c4e4b4a-9a1f-4c1e-8f5e-1b2c3d4e5f60");
	strcpy(cg.a.unit, "a\033[31m.scope");	/* a name anyone who makes cgroups chose */
	cap_text(&c, false, true);
	c.w.cg = &cg;
	c.w.ops->verdict(&c.w, &r, TS_NS);
	cg.state = CG_REMOVED;	/* a removed cgroup names nothing */
	c.w.ops->verdict(&c.w, &r, TS_NS);
	text = cap_close(&c);
	check_terminal_safe(text);
	CHECK(split_lines(text, lines, 4) == 4, "expected two verdicts and their detail lines");
	CHECK(strstr(lines[1], " [unit a\\x1b[31m.scope, container 0123456789ab, "
		     "pod 2c4e4b4a-9a1f-4c1e-8f5e-1b2c3d4e5f60]"),
	      "expected the owner after the detail, got: %s", lines[1]);
	CHECK(!strchr(lines[3], '['), "expected nothing for a removed cgroup, got: %s", lines[3]);
}

static void test_text_color_wraps_only_the_verdict(void **state)
{
	struct ct_result r = make_result(CT_V_TIMEOUT, CT_C_NO_SYNACK);
	struct capture c;
	char *text;
	const char *esc;

	(void)state;
	cap_text(&c, true, false);
	c.w.ops->verdict(&c.w, &r, TS_NS);
	text = cap_close(&c);
	esc = strstr(text, "\033[31mTIMEOUT    \033[0m");
	CHECK(esc, "expected red TIMEOUT padded to 11 then a reset, got: %s", text);
	for (const char *p = text; (p = strchr(p, '\033')); p++)
		CHECK(p == esc || p == esc + 16, "expected no escape outside the verdict at %zu",
		      (size_t)(p - text));
}

static void test_text_hostile_comm_reaches_terminal_escaped(void **state)
{
	struct ct_result r = make_result(CT_V_TIMEOUT, CT_C_NO_SYNACK);
	struct capture c;
	char *text, *lines[4];

	(void)state;
	memcpy(r.flow.comm, HOSTILE_COMM, CT_COMM_LEN);	/* no NUL at all */
	cap_text(&c, false, true);
	c.w.ops->verdict(&c.w, &r, TS_NS);
	text = cap_close(&c);
	check_terminal_safe(text);
	/* the start of it: the column may cut the rest */
	CHECK(strstr(text, " \"q\\x0a\\x1b[31m"), "expected the name escaped byte by byte, got: %s",
	      text);
	CHECK(split_lines(text, lines, 4) == 2,
	      "expected the verdict and detail lines only: the name's newline must not break a line");
}

static void test_rfc3339_keeps_leading_zeros(void **state)
{
	static const struct { uint64_t ns; const char *want; } cases[] = {
		{ 0, "1970-01-01T00:00:00.000000000Z" },
		{ 1700000000000000001ULL, "2023-11-14T22:13:20.000000001Z" },
		{ 1709164800999999999ULL, "2024-02-29T00:00:00.999999999Z" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char buf[48];

		fmt_rfc3339(buf, sizeof(buf), cases[i].ns);
		CHECK(!strcmp(buf, cases[i].want), "%llu ns: expected %s, got %s",
		      (unsigned long long)cases[i].ns, cases[i].want, buf);
	}
}

/* ---- regressions: bugs found and fixed ---- */

/*
 * The escaped name is padded to 15 columns but never cut: a task that names
 * itself with 15 control bytes takes 60 columns and pushes every later column
 * (and the line past 124 columns).
 */
static void test_hostile_comm_keeps_the_columns(void **state)
{
	struct ct_result r = make_result(CT_V_TIMEOUT, CT_C_NO_SYNACK);
	struct capture c;
	char *text, *lines[4];
	struct columns cols;

	(void)state;
	memcpy(r.flow.comm, "\x1b\x1b\x1b\x1b\x1b\x1b\x1b\x1b\x1b\x1b\x1b\x1b\x1b\x1b\x1b", 16);
	cap_text(&c, false, false);
	write_start(&c.w);
	c.w.ops->verdict(&c.w, &r, TS_NS);
	text = cap_close(&c);
	CHECK(split_lines(text, lines, 4) == 2, "expected a header and one line");
	cols = header_columns(lines[0]);
	CHECK(line_width(lines[1]) <= MAX_WIDTH, "expected at most %d columns, got %zu:\n%s",
	      MAX_WIDTH, line_width(lines[1]), lines[1]);
	expect_aligned(lines[1], &cols, &r);
}

/* ---- text: a storm stays readable (aggregate.h) ---- */

static size_t count_of(const char *text, const char *needle)
{
	size_t n = 0;

	for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

static void verdicts(struct writer *w, const struct ct_result *r, unsigned n, uint64_t ts)
{
	for (unsigned i = 0; i < n; i++)
		w->ops->verdict(w, r, ts + i);
}

/* 4,223 refusals in a second: 10 lines, then one line with the other 4,213. */
static void test_text_storm_prints_one_aggregate_a_second(void **state)
{
	struct ct_result r = make_result(CT_V_REFUSED, CT_C_NO_LISTENER);
	struct ct_result other = make_result(CT_V_TIMEOUT, CT_C_NO_SYNACK);
	struct capture c;
	char *text;

	(void)state;
	cap_text(&c, false, false);
	writer_text_aggregate(&c.w, AGG_PER_SEC, TS_NS);
	verdicts(&c.w, &r, 4223, TS_NS);
	verdicts(&c.w, &other, 3, TS_NS);	/* a quiet key beside it prints every line */
	c.w.ops->tick(&c.w, TS_NS + 1000000000ULL);
	verdicts(&c.w, &r, 12, TS_NS + 1000000000ULL);	/* the next second: a new allowance */
	c.w.ops->tick(&c.w, TS_NS + 2500000000ULL);
	c.w.ops->tick(&c.w, TS_NS + 3500000000ULL);	/* nothing summed: nothing said */
	text = cap_close(&c);
	CHECK(count_of(text, "REFUSED     ") == 20, "expected 10 refused lines a second, got %zu:\n%s",
	      count_of(text, "REFUSED     "), text);
	CHECK(count_of(text, "TIMEOUT     ") == 3, "expected the 3 timeouts, got:\n%s", text);
	CHECK(strstr(text, "22:13:21 REFUSED no_listener to 255.255.255.254:65534 x 4,213 more in "
		     "the last 1.0 s, aggregated (over 10 a second): --no-aggregate prints each\n"),
	      "expected the first second's aggregate, got:\n%s", text);
	CHECK(strstr(text, "22:13:22 REFUSED no_listener to 255.255.255.254:65534 x 2 more in the "
		     "last 1.5 s"), "expected the second's aggregate, got:\n%s", text);
	CHECK(count_of(text, "aggregated") == 2, "expected 2 aggregates, got:\n%s", text);
	check_terminal_safe(text);
}

/* --no-aggregate, and the writer as tests and the fuzzer make it: every line. */
static void test_text_without_aggregation_prints_every_verdict(void **state)
{
	struct ct_result r = make_result(CT_V_REFUSED, CT_C_NO_LISTENER);
	struct capture c;
	char *text;

	(void)state;
	for (int off = 0; off < 2; off++) {
		cap_text(&c, false, false);
		if (off)
			writer_text_aggregate(&c.w, 0, TS_NS);
		verdicts(&c.w, &r, 500, TS_NS);
		c.w.ops->tick(&c.w, TS_NS + 1000000000ULL);
		text = cap_close(&c);
		CHECK(count_of(text, "REFUSED     ") == 500 && !strstr(text, "aggregated"),
		      "expected 500 lines and no aggregate, got %zu", count_of(text, "REFUSED     "));
	}
}

/* What is summed when conntrace stops comes out before the summary. */
static void test_text_summary_says_what_was_summed(void **state)
{
	struct ct_result r = make_result(CT_V_REFUSED, CT_C_NO_LISTENER);
	uint64_t v[CT_V_MAX] = { [CT_V_REFUSED] = 30 };
	struct corr_stats st = { 0 };
	struct summary_info si = { .stats = &st, .verdicts = v, .duration_s = 0.5,
				   .ts_real_ns = TS_NS + 500000000ULL };
	struct capture c;
	char *text, *agg, *sum;

	(void)state;
	cap_text(&c, false, false);
	writer_text_aggregate(&c.w, AGG_PER_SEC, TS_NS);
	verdicts(&c.w, &r, 30, TS_NS);
	c.w.ops->summary(&c.w, &si);
	text = cap_close(&c);
	agg = strstr(text, "x 20 more in the last 0.5 s");
	sum = strstr(text, "-- 30 attempts");
	CHECK(agg && sum && agg < sum, "expected the aggregate, then the summary:\n%s", text);
	CHECK(strstr(text, "-- 30 attempts in 0.5 s: ok 0"), "no direction split expected:\n%s",
	      text);
}

/* Incoming attempts: the summary says how many of its attempts were. */
static void test_text_summary_splits_directions(void **state)
{
	uint64_t v[CT_V_MAX] = { [CT_V_REFUSED] = 30 }, in[CT_V_MAX] = { [CT_V_REFUSED] = 12 };
	struct corr_stats st = { 0 };
	struct summary_info si = { .stats = &st, .verdicts = v, .in_verdicts = in,
				   .duration_s = 0.5, .ts_real_ns = TS_NS };
	struct capture c;
	char *text;

	(void)state;
	cap_text(&c, false, false);
	c.w.ops->summary(&c.w, &si);
	text = cap_close(&c);
	CHECK(strstr(text, "-- 30 attempts in 0.5 s (18 outgoing, 12 incoming): ok 0"),
	      "expected the split by direction:\n%s", text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_text_columns_align_for_every_verdict_and_cause, free_owned),
		cmocka_unit_test_teardown(test_text_columns_align_for_short_and_odd_values, free_owned),
		cmocka_unit_test_teardown(test_text_detail_line_follows_each_verdict, free_owned),
		cmocka_unit_test_teardown(test_text_detail_names_the_owner, free_owned),
		cmocka_unit_test_teardown(test_text_color_wraps_only_the_verdict, free_owned),
		cmocka_unit_test_teardown(test_text_hostile_comm_reaches_terminal_escaped, free_owned),
		cmocka_unit_test_teardown(test_rfc3339_keeps_leading_zeros, free_owned),
		cmocka_unit_test_teardown(test_hostile_comm_keeps_the_columns, free_owned),
		cmocka_unit_test_teardown(test_text_storm_prints_one_aggregate_a_second, free_owned),
		cmocka_unit_test_teardown(test_text_without_aggregation_prints_every_verdict,
					  free_owned),
		cmocka_unit_test_teardown(test_text_summary_says_what_was_summed, free_owned),
		cmocka_unit_test_teardown(test_text_summary_splits_directions, free_owned),
	};

	/* the text writer's clock is local time: make it the same everywhere */
	setenv("TZ", "UTC", 1);
	return cmocka_run_group_tests_name("output", tests, NULL, NULL);
}
