// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The text and JSON writers, captured with open_memstream(). Text: the
 * columns line up under the header for every verdict and cause, an IPv4
 * line fits in 120 columns, and a hostile task name reaches the terminal
 * only escaped. JSON: every record parses with a real parser (Python's json
 * module) and carries the documented fields.
 *
 * Tests named test_* show bugs that are not fixed yet: they fail.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "output.h"

#define CHECK(cond, ...) do { if (!(cond)) fail_msg(__VA_ARGS__); } while (0)

#define MAX_WIDTH 120
/* 2023-11-14T22:13:20.123456789Z */
#define TS_NS 1700000000123456789ULL

/* 15 bytes, 16 with the NUL: the longest task name the kernel keeps */
#define LONG_COMM "abcdefghijklmno"
/* 16 bytes and no NUL: quotes, newline, ESC, invalid UTF-8, DEL, a C1 control */
#define HOSTILE_COMM "\"q\n\x1b[31m\xff\\\t\x7f\xc2\x9bZZ"

/* ---- building results ---- */

static void put_addr(uint8_t dst[16], const char *s)
{
	memset(dst, 0, 16);
	if (inet_pton(strchr(s, ':') ? AF_INET6 : AF_INET, s, dst) != 1)
		fail_msg("test bug: '%s' is not an address", s);
}

/* The widest IPv4 line: 7-digit pid, 15-byte comm, 21-column endpoints. */
static struct ct_result make_result(enum ct_verdict v, enum ct_cause c)
{
	struct ct_result r = { .verdict = v, .cause = c };
	struct ct_flow *f = &r.flow;

	f->type = CT_REC_FLOW;
	f->family = CT_AF_INET;
	f->state = v == CT_V_OK || v == CT_V_SLOW ? CT_TCP_ESTABLISHED : CT_TCP_CLOSE;
	f->sport = 65535;
	f->dport = 65534;
	f->tid = 4194303;
	f->pid = 4194304;
	f->netns = 4026531840u;
	f->cgroup_id = 12345;
	f->syn_retrans = 127;		/* net.ipv4.tcp_syn_retries at its maximum */
	f->err = v == CT_V_TIMEOUT ? ETIMEDOUT : 0;
	put_addr(f->saddr, "255.255.255.255");
	put_addr(f->daddr, "255.255.255.254");
	memcpy(f->comm, LONG_COMM, sizeof(LONG_COMM));
	r.duration_ns = 127ULL * 1000000000ULL;
	return r;
}

/* A realistic TIMEOUT with evidence, for the JSON fields. */
static struct ct_result timeout_result(void)
{
	struct ct_result r = { .verdict = CT_V_TIMEOUT, .cause = CT_C_LOCAL_DROP };
	struct ct_flow *f = &r.flow;

	/* the detail quotes a kernel enum name: a hostile one must come out escaped */
	r.facts = (struct ct_facts){ .end = CT_END_CLOSED, .err = ETIMEDOUT, .syn_retrans = 1,
				     .other_drops = 1, .other_reason = "EVIL\"NAME\\",
				     .duration_ns = 7000123456ULL };
	f->type = CT_REC_FLOW;
	f->family = CT_AF_INET;
	f->state = CT_TCP_CLOSE;
	f->sport = 40000;
	f->dport = 80;
	f->tid = 4242;
	f->pid = 4240;
	f->netns = 4026531840u;
	f->cgroup_id = 9876543210ULL;
	f->syn_retrans = 1;
	f->err = ETIMEDOUT;
	put_addr(f->saddr, "10.0.0.1");
	put_addr(f->daddr, "10.0.0.2");
	memcpy(f->comm, "curl", 5);
	r.duration_ns = 7000123456ULL;
	r.nr_ev = 5;
	r.ev[0] = (struct ct_ev_item){ .t_us = 0, .kind = CT_EV_CONNECT };
	r.ev[1] = (struct ct_ev_item){ .t_us = 1000000, .kind = CT_EV_SYN_RETRANS, .n = 1 };
	r.ev[2] = (struct ct_ev_item){ .t_us = 1000100, .kind = CT_EV_DROP, .n = 1, .synack = true,
				       .reason = "NETFILTER_DROP" };
	r.ev[3] = (struct ct_ev_item){ .t_us = 7000123, .kind = CT_EV_CLOSED, .err = ETIMEDOUT };
	r.ev[4] = (struct ct_ev_item){ .t_us = INT64_MIN, .kind = CT_EV_ACCEPT_QUEUE_FULL,
				       .queue = 129, .queue_known = true, .queue_max = 128 };
	return r;
}

/*
 * Buffers a test allocates are owned by it and freed by its teardown, so a
 * failing check (which leaves the test by longjmp) leaks nothing either.
 */
#define MAX_OWNED 512
static void *owned_ptrs[MAX_OWNED];
static size_t nr_owned;

static void *owned(void *p)
{
	assert_non_null(p);
	assert_true(nr_owned < MAX_OWNED);
	owned_ptrs[nr_owned++] = p;
	return p;
}

static int free_owned(void **state)
{
	(void)state;
	while (nr_owned)
		free(owned_ptrs[--nr_owned]);
	return 0;
}

/* ---- capture ---- */

struct capture {
	char *buf;
	size_t len;
	FILE *f;
	struct writer w;
};

static void cap_text(struct capture *c, bool color, bool detail)
{
	c->buf = NULL;
	c->f = open_memstream(&c->buf, &c->len);
	assert_non_null(c->f);
	writer_text_init(&c->w, c->f, color, detail);
}

static void cap_json(struct capture *c)
{
	c->buf = NULL;
	c->f = open_memstream(&c->buf, &c->len);
	assert_non_null(c->f);
	writer_json_init(&c->w, c->f);
}

static char *cap_close(struct capture *c)
{
	fclose(c->f);
	return owned(c->buf);
}

static void write_start(struct writer *w)
{
	static const struct probe_report probes[] = {
		{ .signal = "connect", .hook = "tp_btf/inet_sock_set_state", .ok = true },
		{ .signal = "drop", .hook = "-", .ok = false, .note = "no \"kfree_skb\"\ttracepoint" },
	};
	struct start_info si = {
		.version = "1.2.3-test",
		.kernel = "6.18.0-test",
		.probes = probes,
		.nr_probes = 2,
		.pid = 777,
		.ts_real_ns = TS_NS,
	};
	int saved, devnull;

	/* text_start() greets on stderr: keep the test output readable */
	fflush(stderr);
	saved = dup(STDERR_FILENO);
	devnull = open("/dev/null", O_WRONLY);
	assert_true(saved >= 0 && devnull >= 0);
	dup2(devnull, STDERR_FILENO);
	w->ops->start(w, &si);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(devnull);
}

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

/* No C0 but the line ends, no DEL, no C1 control, only valid UTF-8. */
static void check_terminal_safe(const char *text)
{
	const unsigned char *s = (const unsigned char *)text;

	for (size_t i = 0; s[i]; i++) {
		CHECK(s[i] >= 0x20 || s[i] == '\n', "expected no raw control byte, found 0x%02x at %zu",
		      s[i], i);
		CHECK(s[i] != 0x7f, "expected no raw DEL, found one at %zu", i);
		CHECK(!(s[i] == 0xc2 && s[i + 1] >= 0x80 && s[i + 1] <= 0x9f),
		      "expected no raw C1 control, found U+%04X at %zu", s[i + 1], i);
		CHECK(s[i] != 0xff && s[i] != 0xc0 && s[i] != 0xc1,
		      "expected no invalid UTF-8 byte, found 0x%02x at %zu", s[i], i);
	}
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

/* ---- JSON: parsed by a real parser ---- */

#define PYTHON "/usr/bin/python3"
/* Each line must be one UTF-8 JSON object; prints "key<TAB>value" per member, then "". */
#define FIELDS_PY							\
	"import json, sys\n"						\
	"def bad(c): raise ValueError(\"not JSON: \" + c)\n"		\
	"for line in open(sys.argv[1], encoding=\"utf-8\", newline=\"\\n\"):\n" \
	"    if not line.endswith(\"\\n\"): raise ValueError(\"no newline\")\n" \
	"    o = json.loads(line, parse_constant=bad)\n"		\
	"    if not isinstance(o, dict): raise ValueError(\"not an object\")\n" \
	"    for k, v in o.items():\n"					\
	"        print(k + \"\\t\" + json.dumps(v, ensure_ascii=True, sort_keys=True,\n" \
	"                                     separators=(\",\", \":\")))\n" \
	"    print()\n"

#define MAX_FIELDS 40

/* One parsed record: its members in order, values re-encoded as ASCII JSON. */
struct record {
	size_t n;
	char *key[MAX_FIELDS];
	char *val[MAX_FIELDS];
};

/* Parses text (one or more JSON lines) into recs; returns how many. */
static size_t parse_records(const char *text, struct record *recs, size_t max)
{
	char path[] = "/tmp/ct-unit-output-XXXXXX", cmd[2048], *out = NULL, *p;
	size_t outlen = 0, n = 0;
	FILE *py, *mem;
	int fd, ch, status;

	fd = mkstemp(path);
	CHECK(fd >= 0, "mkstemp failed");
	CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text), "short write");
	close(fd);
	snprintf(cmd, sizeof(cmd), PYTHON " -c '%s' %s 2>&1", FIELDS_PY, path);
	py = popen(cmd, "r");
	CHECK(py, "cannot run " PYTHON);
	mem = open_memstream(&out, &outlen);
	while ((ch = fgetc(py)) != EOF)
		fputc(ch, mem);
	fclose(mem);
	owned(out);	/* the records point into it */
	status = pclose(py);
	unlink(path);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "expected every line to parse as a JSON object; python3 says:\n%s\ninput:\n%s",
	      out, text);
	memset(recs, 0, max * sizeof(*recs));
	for (p = out; *p && n < max; ) {
		char *nl = strchr(p, '\n'), *tab;

		*nl = '\0';
		if (!*p) {
			n++;
		} else {
			struct record *r = &recs[n];

			tab = strchr(p, '\t');
			CHECK(tab && r->n < MAX_FIELDS, "unexpected parser output: %s", p);
			*tab = '\0';
			r->key[r->n] = p;
			r->val[r->n++] = tab + 1;
		}
		p = nl + 1;
	}
	return n;
}

static const char *get(const struct record *r, const char *key)
{
	for (size_t i = 0; i < r->n; i++)
		if (!strcmp(r->key[i], key))
			return r->val[i];
	return NULL;
}

#define expect_field(r, key, want) do {							\
	const char *got_ = get((r), (key));						\
	CHECK(got_ && !strcmp(got_, (want)), "expected \"%s\": %s, got %s", (key), (want),	\
	      got_ ? got_ : "no such field");						\
} while (0)

/* "2023-11-14T22:13:20.123456789Z", quoted: RFC 3339, UTC, 9 fractional digits. */
static void expect_rfc3339(const struct record *r, const char *key)
{
	static const char shape[] = "\"dddd-dd-ddTdd:dd:dd.dddddddddZ\"";
	const char *v = get(r, key);
	bool ok = v && strlen(v) == strlen(shape);

	for (size_t i = 0; ok && shape[i]; i++)
		ok = shape[i] == 'd' ? v[i] >= '0' && v[i] <= '9' : v[i] == shape[i];
	CHECK(ok, "expected \"%s\" as RFC 3339 with 9 fractional digits and Z, got %s", key,
	      v ? v : "no such field");
}

static void test_json_verdict_carries_every_field(void **state)
{
	static const char *const keys[] = {
		"type", "schema", "ts", "verdict", "cause", "inferred", "detail", "pid", "tid", "comm",
		"cgroup_id", "netns", "family", "saddr", "sport", "daddr", "dport", "syn_retrans",
		"duration_us", "errno", "evicted", "untracked", "evidence",
	};
	struct ct_result r = timeout_result();
	struct record rec;
	struct capture c;
	char *text;

	(void)state;
	cap_json(&c);
	c.w.ops->verdict(&c.w, &r, TS_NS);
	text = cap_close(&c);
	CHECK(parse_records(text, &rec, 1) == 1, "expected one record");
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		CHECK(get(&rec, keys[i]), "expected a \"%s\" field in %s", keys[i], text);
	expect_field(&rec, "type", "\"verdict\"");
	expect_field(&rec, "schema", "\"" CT_SCHEMA_VERSION "\"");
	expect_field(&rec, "ts", "\"2023-11-14T22:13:20.123456789Z\"");
	expect_rfc3339(&rec, "ts");
	expect_field(&rec, "verdict", "\"timeout\"");
	expect_field(&rec, "cause", "\"local_drop\"");
	expect_field(&rec, "inferred", "false");
	expect_field(&rec, "detail", "\"this host dropped 1 of this flow's SYNs to 10.0.0.2:80, "
		     "reason EVIL\\\"NAME\\\\\"");
	expect_field(&rec, "pid", "4240");
	expect_field(&rec, "tid", "4242");
	expect_field(&rec, "comm", "\"curl\"");
	expect_field(&rec, "netns", "4026531840");
	expect_field(&rec, "cgroup_id", "9876543210");
	expect_field(&rec, "family", "\"ipv4\"");
	expect_field(&rec, "saddr", "\"10.0.0.1\"");
	expect_field(&rec, "sport", "40000");
	expect_field(&rec, "daddr", "\"10.0.0.2\"");
	expect_field(&rec, "dport", "80");
	expect_field(&rec, "syn_retrans", "1");
	expect_field(&rec, "duration_us", "7000123");
	expect_field(&rec, "errno", "\"ETIMEDOUT\"");
	expect_field(&rec, "evicted", "false");
	expect_field(&rec, "untracked", "false");
	expect_field(&rec, "evidence",
		     "[{\"event\":\"connect\",\"t_us\":0},"
		     "{\"event\":\"syn_retransmit\",\"n\":1,\"t_us\":1000000},"
		     "{\"count\":1,\"event\":\"drop\",\"packet\":\"synack\","
		     "\"reason\":\"NETFILTER_DROP\",\"t_us\":1000100},"
		     "{\"errno\":\"ETIMEDOUT\",\"event\":\"closed\",\"t_us\":7000123},"
		     "{\"accept_queue\":129,\"accept_queue_max\":128,"
		     "\"event\":\"accept_queue_full\",\"t_us\":null}]");
}

/* Schema 2.0's evidence events and inferred, as docs/schema.json describes them. */
static void test_json_new_evidence_events_and_inferred(void **state)
{
	struct ct_result r = timeout_result();
	struct record rec;
	struct capture c;
	char *text;

	(void)state;
	r.verdict = CT_V_REFUSED;
	r.cause = CT_C_ICMP_UNREACHABLE;
	r.inferred = true;
	r.facts = (struct ct_facts){ .end = CT_END_CLOSED, .err = ECONNREFUSED,
				     .err_soft = ECONNREFUSED, .icmp_sent = true, .icmp_type = 3,
				     .icmp_code = 3 };
	r.nr_ev = 4;
	r.ev[0] = (struct ct_ev_item){ .t_us = 120, .kind = CT_EV_ICMP_SENT, .icmp_type = 3,
				       .icmp_code = 3 };
	r.ev[1] = (struct ct_ev_item){ .t_us = INT64_MIN, .kind = CT_EV_ICMP_ERROR,
				       .err = ECONNREFUSED };
	r.ev[2] = (struct ct_ev_item){ .t_us = INT64_MIN, .kind = CT_EV_SIMOPEN };
	r.ev[3] = (struct ct_ev_item){ .t_us = -2589, .kind = CT_EV_ACCEPT_QUEUE_FULL,
				       .queue_max = 1 };
	cap_json(&c);
	c.w.ops->verdict(&c.w, &r, TS_NS);
	text = cap_close(&c);
	CHECK(parse_records(text, &rec, 1) == 1, "expected one record");
	expect_field(&rec, "inferred", "true");
	expect_field(&rec, "cause", "\"icmp_unreachable\"");
	expect_field(&rec, "evidence",
		     "[{\"answering\":\"syn\",\"event\":\"icmp_sent\",\"icmp_code\":3,"
		     "\"icmp_type\":3,\"t_us\":120},"
		     "{\"errno\":\"ECONNREFUSED\",\"event\":\"icmp_error\",\"t_us\":null},"
		     "{\"event\":\"simultaneous_open\",\"t_us\":null},"
		     "{\"accept_queue\":null,\"accept_queue_max\":1,"
		     "\"event\":\"accept_queue_full\",\"t_us\":-2589}]");
	CHECK(strstr(text, "this host sent an ICMP port unreachable about the SYN"),
	      "expected the rendered detail in the record: %s", text);
}

static void test_json_verdict_ipv6_and_evicted(void **state)
{
	struct ct_result r = timeout_result();
	struct record rec;
	struct capture c;
	char *text;

	(void)state;
	r.flow.family = CT_AF_INET6;
	put_addr(r.flow.saddr, "2001:db8::1");
	put_addr(r.flow.daddr, "::ffff:10.0.0.2");
	r.flow.flags = CT_F_EVICTED;
	r.flow.err = 0;
	r.flow.err_report = EHOSTUNREACH;	/* the errno falls back to the error report */
	r.nr_ev = 1;
	r.ev[0] = (struct ct_ev_item){ .t_us = INT64_MIN, .kind = CT_EV_SYN_RETRANS, .n = 1 };
	cap_json(&c);
	c.w.ops->verdict(&c.w, &r, TS_NS);
	text = cap_close(&c);
	CHECK(parse_records(text, &rec, 1) == 1, "expected one record");
	expect_field(&rec, "family", "\"ipv6\"");
	expect_field(&rec, "saddr", "\"2001:db8::1\"");
	expect_field(&rec, "daddr", "\"::ffff:10.0.0.2\"");
	expect_field(&rec, "errno", "\"EHOSTUNREACH\"");
	expect_field(&rec, "evicted", "true");
	/* without history the owner and the duration are unknown, not zero */
	expect_field(&rec, "pid", "null");
	expect_field(&rec, "tid", "null");
	expect_field(&rec, "comm", "null");
	expect_field(&rec, "cgroup_id", "null");
	expect_field(&rec, "duration_us", "null");
	expect_field(&rec, "evidence", "[{\"event\":\"syn_retransmit\",\"n\":1,\"t_us\":null}]");
}

static void test_json_hostile_comm_round_trips(void **state)
{
	struct ct_result r = timeout_result();
	struct record rec;
	struct capture c;
	char *text;

	(void)state;
	memcpy(r.flow.comm, HOSTILE_COMM, CT_COMM_LEN);	/* no NUL at all */
	cap_json(&c);
	c.w.ops->verdict(&c.w, &r, TS_NS);
	text = cap_close(&c);
	check_terminal_safe(text);
	CHECK(parse_records(text, &rec, 1) == 1, "expected one record");
	/* invalid bytes come back as their Latin-1 code points */
	expect_field(&rec, "comm", "\"\\\"q\\n\\u001b[31m\\u00ff\\\\\\t\\u007f\\u009bZZ\"");
}

static void test_json_every_verdict_and_cause_parses(void **state)
{
	struct record *recs = owned(calloc(CT_V_MAX * CT_C_MAX, sizeof(*recs)));
	struct capture c;
	char *text;
	size_t n;

	(void)state;
	cap_json(&c);
	for (int v = 0; v < CT_V_MAX; v++)
		for (int k = 0; k < CT_C_MAX; k++) {
			struct ct_result r = make_result(v, k);

			c.w.ops->verdict(&c.w, &r, TS_NS + v * 1000 + k);
		}
	text = cap_close(&c);
	n = parse_records(text, recs, CT_V_MAX * CT_C_MAX);
	CHECK(n == CT_V_MAX * CT_C_MAX, "expected %d records, got %zu", CT_V_MAX * CT_C_MAX, n);
	for (size_t i = 0; i < n; i++) {
		char want[64];

		snprintf(want, sizeof(want), "\"%s\"", ct_verdict_name(i / CT_C_MAX));
		expect_field(&recs[i], "verdict", want);
		snprintf(want, sizeof(want), "\"%s\"", ct_cause_name(i % CT_C_MAX));
		expect_field(&recs[i], "cause", want);
		expect_rfc3339(&recs[i], "ts");
	}
}

static void test_json_start_lost_and_summary_parse(void **state)
{
	struct corr_stats stats = { .malformed = 2, .evidence_expired = 5, .evidence_dropped = 6 };
	struct loss_info li = {
		.lost_records = 10, .flow_evictions = 20, .new_lost = 1, .new_evictions = 2,
		.since_real_ns = TS_NS - 1000000000ULL, .ts_real_ns = TS_NS,
	};
	struct summary_info si = {
		.stats = &stats, .lost_records = 10, .flow_evictions = 20, .flow_nospace = 3,
		.flows_untracked = 4, .flows = 100, .duration_s = 12.3456, .ts_real_ns = TS_NS + 1,
	};
	uint64_t verdicts[CT_V_MAX];
	struct record recs[4];
	struct capture c;
	char *text;

	(void)state;
	for (int v = 0; v < CT_V_MAX; v++)
		verdicts[v] = 10 + v;
	si.verdicts = verdicts;
	cap_json(&c);
	write_start(&c.w);
	c.w.ops->loss(&c.w, &li);
	c.w.ops->summary(&c.w, &si);
	si.duration_s = NAN;	/* not a number is not JSON: null */
	c.w.ops->summary(&c.w, &si);
	text = cap_close(&c);
	CHECK(parse_records(text, recs, 4) == 4, "expected 4 records in:\n%s", text);

	expect_field(&recs[0], "type", "\"start\"");
	expect_rfc3339(&recs[0], "ts");
	expect_field(&recs[0], "version", "\"1.2.3-test\"");
	expect_field(&recs[0], "kernel", "\"6.18.0-test\"");
	expect_field(&recs[0], "pid", "777");
	expect_field(&recs[0], "probes",
		     "{\"connect\":{\"hook\":\"tp_btf/inet_sock_set_state\"},"
		     "\"drop\":{\"hook\":null,\"note\":\"no \\\"kfree_skb\\\"\\ttracepoint\"}}");

	expect_field(&recs[1], "type", "\"lost\"");
	expect_rfc3339(&recs[1], "ts");
	expect_field(&recs[1], "since", "\"2023-11-14T22:13:19.123456789Z\"");
	expect_field(&recs[1], "records", "1");
	expect_field(&recs[1], "flow_evictions", "2");
	expect_field(&recs[1], "records_total", "10");
	expect_field(&recs[1], "flow_evictions_total", "20");

	expect_field(&recs[2], "type", "\"summary\"");
	expect_field(&recs[2], "ts", "\"2023-11-14T22:13:20.123456790Z\"");
	expect_field(&recs[2], "verdicts",
		     "{\"abandoned\":15,\"ok\":10,\"pending\":16,\"refused\":13,\"slow\":11,"
		     "\"timeout\":12,\"unreachable\":14}");
	expect_field(&recs[2], "flows", "100");
	expect_field(&recs[2], "lost_records", "10");
	expect_field(&recs[2], "flow_evictions", "20");
	expect_field(&recs[2], "flow_table_full", "3");
	expect_field(&recs[2], "flows_untracked", "4");
	expect_field(&recs[2], "evidence_unmatched", "5");
	expect_field(&recs[2], "evidence_dropped", "6");
	expect_field(&recs[2], "malformed_records", "2");
	expect_field(&recs[2], "duration_s", "12.346");
	expect_field(&recs[3], "duration_s", "null");
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

/* ---- bugs not fixed yet: these fail ---- */

/*
 * The escaped name is padded to 15 columns but never cut: a task that names
 * itself with 15 control bytes takes 60 columns and pushes every later column
 * (and the line past 120 columns).
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_text_columns_align_for_every_verdict_and_cause, free_owned),
		cmocka_unit_test_teardown(test_text_columns_align_for_short_and_odd_values, free_owned),
		cmocka_unit_test_teardown(test_text_detail_line_follows_each_verdict, free_owned),
		cmocka_unit_test_teardown(test_text_color_wraps_only_the_verdict, free_owned),
		cmocka_unit_test_teardown(test_text_hostile_comm_reaches_terminal_escaped, free_owned),
		cmocka_unit_test_teardown(test_json_verdict_carries_every_field, free_owned),
		cmocka_unit_test_teardown(test_json_verdict_ipv6_and_evicted, free_owned),
		cmocka_unit_test_teardown(test_json_new_evidence_events_and_inferred, free_owned),
		cmocka_unit_test_teardown(test_json_hostile_comm_round_trips, free_owned),
		cmocka_unit_test_teardown(test_json_every_verdict_and_cause_parses, free_owned),
		cmocka_unit_test_teardown(test_json_start_lost_and_summary_parse, free_owned),
		cmocka_unit_test_teardown(test_rfc3339_keeps_leading_zeros, free_owned),
		cmocka_unit_test_teardown(test_hostile_comm_keeps_the_columns, free_owned),
	};

	/* the text writer's clock is local time: make it the same everywhere */
	setenv("TZ", "UTC", 1);
	return cmocka_run_group_tests_name("output", tests, NULL, NULL);
}
