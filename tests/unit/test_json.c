// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The JSON writer and the terminal escaper. Every line the writer produces
 * is also parsed by a real parser (Python's json module, NaN refused) and
 * re-encoded as ASCII: comparing that re-encoding checks the round trip,
 * i.e. that the decoded string holds exactly the expected code points.
 *
 * Tests named test_* show bugs that are not fixed yet: they fail.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "json.h"

#define CHECK(cond, ...) do { if (!(cond)) fail_msg(__VA_ARGS__); } while (0)

#define PYTHON "/usr/bin/python3"
/* Every line must be UTF-8, end in a newline and hold one JSON value. */
#define REPARSE_PY							\
	"import json, sys\n"						\
	"def bad(c): raise ValueError(\"not JSON: \" + c)\n"		\
	"for line in open(sys.argv[1], encoding=\"utf-8\", newline=\"\\n\"):\n" \
	"    if not line.endswith(\"\\n\"): raise ValueError(\"no newline\")\n" \
	"    print(json.dumps(json.loads(line, parse_constant=bad),\n"	\
	"                     ensure_ascii=True, separators=(\",\", \":\")))\n"

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

/* ---- capturing the writer ---- */

struct capture {
	char *buf;
	size_t len;
	FILE *f;
	struct json j;
};

static void cap_open(struct capture *c)
{
	c->buf = NULL;
	c->len = 0;
	c->f = open_memstream(&c->buf, &c->len);
	assert_non_null(c->f);
	json_init(&c->j, c->f);
}

/* The bytes written so far; the caller frees them. */
static char *cap_close(struct capture *c)
{
	fclose(c->f);
	return owned(c->buf);
}

/* ---- checking with a real parser ---- */

/*
 * Runs Python over every line of text; returns its exit status and, in *out,
 * the re-encodings (one line each) or its error.
 */
static int run_parser(const char *text, char **out)
{
	char path[] = "/tmp/ct-unit-json-XXXXXX";
	char cmd[1024];
	size_t outlen = 0;
	FILE *p, *mem;
	int fd, status, ch;

	*out = NULL;
	fd = mkstemp(path);
	CHECK(fd >= 0, "mkstemp failed");
	CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text), "short write to %s", path);
	close(fd);
	snprintf(cmd, sizeof(cmd), PYTHON " -c '%s' %s 2>&1", REPARSE_PY, path);
	p = popen(cmd, "r");
	CHECK(p, "cannot run " PYTHON);
	mem = open_memstream(out, &outlen);
	while ((ch = fgetc(p)) != EOF)
		fputc(ch, mem);
	fclose(mem);
	owned(*out);
	status = pclose(p);
	unlink(path);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

/* The re-encodings of every line of text; fails the test if one is not JSON. */
static char *reparse(const char *text)
{
	char *out;
	int rc = run_parser(text, &out);

	CHECK(rc == 0, "expected every line to parse as JSON; python3 says:\n%s\ninput was:\n%s",
	      out, text);
	return out;
}

/* No byte a terminal or a log pipeline could act on: C0 but the line ends, DEL, C1. */
static void check_no_raw_controls(const char *text)
{
	const unsigned char *s = (const unsigned char *)text;

	for (size_t i = 0; s[i]; i++) {
		CHECK(s[i] >= 0x20 || s[i] == '\n', "expected no raw control byte, found 0x%02x at %zu",
		      s[i], i);
		CHECK(s[i] != 0x7f, "expected no raw DEL, found one at %zu", i);
		CHECK(!(s[i] == 0xc2 && s[i + 1] >= 0x80 && s[i + 1] <= 0x9f),
		      "expected no raw C1 control, found U+%04X at %zu", s[i + 1], i);
	}
}

/* The writer's exact bytes, and what a parser makes of them. */
static void expect_output(const char *got, const char *want_raw, const char *want_reparsed)
{
	char *re;

	CHECK(!strcmp(got, want_raw), "expected the writer to produce\n  %s\ngot\n  %s", want_raw,
	      got);
	check_no_raw_controls(got);
	re = reparse(got);
	CHECK(!strcmp(re, want_reparsed),
	      "expected the parsed value to re-encode as\n  %s\ngot\n  %s", want_reparsed, re);
}

/* One JSON string value on its own line, from n raw bytes. */
static char *string_line(const char *s, size_t n)
{
	struct capture c;

	cap_open(&c);
	json_strn(&c.j, s, n);
	json_eol(&c.j);
	return cap_close(&c);
}

/* ---- structure ---- */

static void test_commas_and_nesting(void **state)
{
	struct capture c;
	char *got;
	const char *want =
		"{\"a\":1,\"b\":[1,-2,{\"c\":null},[],true,null],\"d\":{},\"e\":false,"
		"\"f\":-9223372036854775808,\"g\":18446744073709551615}\n"
		"{\"x\":{\"y\":[[1],[2,3]]}}\n"
		"[]\n"
		"\"top\"\n";

	(void)state;
	cap_open(&c);
	json_obj_begin(&c.j);
	json_ku64(&c.j, "a", 1);
	json_key(&c.j, "b");
	json_arr_begin(&c.j);
	json_u64(&c.j, 1);
	json_i64(&c.j, -2);
	json_obj_begin(&c.j);
	json_kstr(&c.j, "c", NULL);
	json_obj_end(&c.j);
	json_arr_begin(&c.j);
	json_arr_end(&c.j);
	json_bool(&c.j, true);
	json_null(&c.j);
	json_arr_end(&c.j);
	json_key(&c.j, "d");
	json_obj_begin(&c.j);
	json_obj_end(&c.j);
	json_kbool(&c.j, "e", false);
	json_ki64(&c.j, "f", INT64_MIN);
	json_ku64(&c.j, "g", UINT64_MAX);
	json_obj_end(&c.j);
	json_eol(&c.j);
	/* the same writer goes on: a line starts with no pending comma */
	json_obj_begin(&c.j);
	json_key(&c.j, "x");
	json_obj_begin(&c.j);
	json_key(&c.j, "y");
	json_arr_begin(&c.j);
	json_arr_begin(&c.j);
	json_u64(&c.j, 1);
	json_arr_end(&c.j);
	json_arr_begin(&c.j);
	json_u64(&c.j, 2);
	json_u64(&c.j, 3);
	json_arr_end(&c.j);
	json_arr_end(&c.j);
	json_obj_end(&c.j);
	json_obj_end(&c.j);
	json_eol(&c.j);
	json_arr_begin(&c.j);
	json_arr_end(&c.j);
	json_eol(&c.j);
	json_str(&c.j, "top");
	json_eol(&c.j);
	got = cap_close(&c);
	expect_output(got, want, want);
}

static void test_nesting_to_max_depth_stays_valid(void **state)
{
	struct capture c;
	char *got;
	int levels = 15;

	(void)state;
	cap_open(&c);
	for (int i = 0; i < levels; i++) {
		json_arr_begin(&c.j);
		json_u64(&c.j, i);
	}
	for (int i = 0; i < levels; i++) {
		json_u64(&c.j, 100 + i);
		json_arr_end(&c.j);
	}
	json_eol(&c.j);
	got = cap_close(&c);
	reparse(got);	/* fails the test unless every line parses */
}

static void test_keys_are_escaped(void **state)
{
	struct capture c;
	char *got;

	(void)state;
	cap_open(&c);
	json_obj_begin(&c.j);
	json_ku64(&c.j, "a\"b\n\x1b", 1);
	json_obj_end(&c.j);
	json_eol(&c.j);
	got = cap_close(&c);
	expect_output(got, "{\"a\\\"b\\n\\u001b\":1}\n", "{\"a\\\"b\\n\\u001b\":1}\n");
}

/* ---- strings ---- */

static void test_string_specials_and_controls_escaped(void **state)
{
	static const struct {
		const char *in, *raw, *reparsed;
	} cases[] = {
		{ "q\"q", "\"q\\\"q\"\n", "\"q\\\"q\"\n" },
		{ "b\\s", "\"b\\\\s\"\n", "\"b\\\\s\"\n" },
		{ "n\nt\tr\r", "\"n\\nt\\tr\\r\"\n", "\"n\\nt\\tr\\r\"\n" },
		{ "\x01\x1f", "\"\\u0001\\u001f\"\n", "\"\\u0001\\u001f\"\n" },
		{ "esc\x1b[2J", "\"esc\\u001b[2J\"\n", "\"esc\\u001b[2J\"\n" },
		{ "del\x7f", "\"del\\u007f\"\n", "\"del\\u007f\"\n" },
		{ "c1\xc2\x9b", "\"c1\\u009b\"\n", "\"c1\\u009b\"\n" },
		{ "\xc2\x80\xc2\x9f\xc2\xa0", "\"\\u0080\\u009f\xc2\xa0\"\n",
		  "\"\\u0080\\u009f\\u00a0\"\n" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *got = string_line(cases[i].in, strlen(cases[i].in));

		expect_output(got, cases[i].raw, cases[i].reparsed);
	}
}

static void test_valid_utf8_passes_through(void **state)
{
	const char *in = "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf";
	char raw[128], *got;

	(void)state;
	snprintf(raw, sizeof(raw), "\"%s\"\n", in);
	got = string_line(in, strlen(in));
	expect_output(got, raw, "\"caf\\u00e9 \\u65e5\\u672c \\ud83d\\ude00 \\udbff\\udfff\"\n");
}

static void test_invalid_utf8_bytes_escaped_as_latin1(void **state)
{
	static const struct {
		const char *what, *in, *raw;
	} cases[] = {
		{ "0xff", "a\xff" "b", "\"a\\u00ffb\"\n" },
		{ "lone lead byte at the end", "a\xc3", "\"a\\u00c3\"\n" },
		{ "lead byte before ASCII", "\xc3(", "\"\\u00c3(\"\n" },
		{ "overlong slash", "\xc0\xaf", "\"\\u00c0\\u00af\"\n" },
		{ "overlong 3-byte", "\xe0\x80\xaf", "\"\\u00e0\\u0080\\u00af\"\n" },
		{ "UTF-16 surrogate", "\xed\xa0\x80", "\"\\u00ed\\u00a0\\u0080\"\n" },
		{ "above U+10FFFF", "\xf4\x90\x80\x80", "\"\\u00f4\\u0090\\u0080\\u0080\"\n" },
		{ "lone continuation", "\x80", "\"\\u0080\"\n" },
		{ "0xf5 lead", "\xf5\x80", "\"\\u00f5\\u0080\"\n" },
		{ "truncated 3-byte", "\xe6\x97", "\"\\u00e6\\u0097\"\n" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *got = string_line(cases[i].in, strlen(cases[i].in));

		/* \u00XX is ASCII: the parser's re-encoding is the same bytes */
		CHECK(!strcmp(got, cases[i].raw), "%s: expected %s, got %s", cases[i].what,
		      cases[i].raw, got);
		expect_output(got, cases[i].raw, cases[i].raw);
	}
}

static void test_strn_stops_at_nul_and_at_n(void **state)
{
	char *exact = owned(malloc(3)), *got;

	(void)state;
	memcpy(exact, "abc", 3);	/* no NUL: ASan catches a read past n */
	got = string_line(exact, 3);
	expect_output(got, "\"abc\"\n", "\"abc\"\n");

	got = string_line("abc\0def", 7);
	expect_output(got, "\"abc\"\n", "\"abc\"\n");
	got = string_line("abcdef", 3);
	expect_output(got, "\"abc\"\n", "\"abc\"\n");
	got = string_line("abc", 0);
	expect_output(got, "\"\"\n", "\"\"\n");
	/* cut inside a sequence: the lone lead byte is escaped, nothing past n read */
	got = string_line("\xe6\x97\xa5\xe6\x9c\xac", 4);
	expect_output(got, "\"\xe6\x97\xa5\\u00e6\"\n", "\"\\u65e5\\u00e6\"\n");
}

static void test_str_null_is_json_null(void **state)
{
	struct capture c;
	char *got;

	(void)state;
	cap_open(&c);
	json_obj_begin(&c.j);
	json_kstr(&c.j, "s", NULL);
	json_obj_end(&c.j);
	json_eol(&c.j);
	got = cap_close(&c);
	expect_output(got, "{\"s\":null}\n", "{\"s\":null}\n");
}

static void test_non_finite_doubles_are_null(void **state)
{
	struct capture c;
	char *got;
	const char *want = "[null,null,null,1.500,0.000,-2.25,3]\n";

	(void)state;
	cap_open(&c);
	json_arr_begin(&c.j);
	json_double(&c.j, NAN, 3);
	json_double(&c.j, INFINITY, 3);
	json_double(&c.j, -INFINITY, 3);
	json_double(&c.j, 1.5, 3);
	json_double(&c.j, 0.0, 3);
	json_double(&c.j, -2.25, 2);
	json_double(&c.j, 3.0, 0);
	json_arr_end(&c.j);
	json_eol(&c.j);
	got = cap_close(&c);
	expect_output(got, want, "[null,null,null,1.5,0.0,-2.25,3]\n");
}

/* The parser check is only worth something if it refuses what is not JSON Lines. */
static void test_parser_check_refuses_bad_lines(void **state)
{
	static const char *const bad[] = {
		"\"raw\x01control\"\n",
		"\"raw\ttab\"\n",
		"\"\xff\"\n",
		"NaN\n",
		"[1,]\n",
		"{\"a\":1}{\"b\":2}\n",
		"{\"a\":1}",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *out;
		int rc = run_parser(bad[i], &out);

		CHECK(rc != 0, "expected the parser check to refuse case %zu", i);
	}
}

/* ---- bugs not fixed yet: these fail ---- */

/* Nesting has no limit: 40 levels still give valid JSON. (conntrace nests 3 deep.) */
static void test_deep_nesting_stays_valid(void **state)
{
	struct capture c;
	char *got;
	int levels = 40;

	(void)state;
	cap_open(&c);
	for (int i = 0; i < levels; i++) {
		json_arr_begin(&c.j);
		json_u64(&c.j, i);
	}
	for (int i = 0; i < levels; i++) {
		json_u64(&c.j, 100 + i);
		json_arr_end(&c.j);
	}
	json_eol(&c.j);
	got = cap_close(&c);
	reparse(got);	/* fails the test unless every line parses */
}

/* ---- escape_text ---- */

static void test_escape_text_controls_and_invalid_bytes(void **state)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
		{ "plain text", "plain text" },
		{ "quote\"ok", "quote\"ok" },
		{ "a\x1b[31mred", "a\\x1b[31mred" },
		{ "\n\t\r", "\\x0a\\x09\\x0d" },
		{ "\x01\x1f", "\\x01\\x1f" },
		{ "del\x7f", "del\\x7f" },
		{ "c1\xc2\x9b", "c1\\xc2\\x9b" },
		{ "back\\slash", "back\\\\slash" },
		{ "\xff", "\\xff" },
		{ "a\xc3", "a\\xc3" },
		{ "\xc0\xaf", "\\xc0\\xaf" },
		{ "\xed\xa0\x80", "\\xed\\xa0\\x80" },
		{ "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac", "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac" },
		{ "\xc2\xa0nbsp", "\xc2\xa0nbsp" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char out[128];
		size_t n = escape_text(out, sizeof(out), cases[i].in, strlen(cases[i].in));

		CHECK(!strcmp(out, cases[i].want), "case %zu: expected '%s', got '%s'", i,
		      cases[i].want, out);
		CHECK(n == strlen(out), "case %zu: expected the length returned, %zu, got %zu", i,
		      strlen(out), n);
		check_no_raw_controls(out);
	}
}

static void test_escape_text_stops_at_nul_and_n(void **state)
{
	char out[64], *exact = owned(malloc(4));

	(void)state;
	memcpy(exact, "ab\x1b" "c", 4);	/* no NUL */
	escape_text(out, sizeof(out), exact, 4);
	CHECK(!strcmp(out, "ab\\x1bc"), "expected 'ab\\x1bc', got '%s'", out);
	escape_text(out, sizeof(out), exact, 2);
	CHECK(!strcmp(out, "ab"), "expected 'ab' for n = 2, got '%s'", out);
	escape_text(out, sizeof(out), "ab\0\x1b", 4);
	CHECK(!strcmp(out, "ab"), "expected 'ab' stopping at the NUL, got '%s'", out);
}

/*
 * For every output size: nothing written past it, always a NUL, and the text
 * is the whole escape of some prefix of the input (never half an escape or
 * half a UTF-8 sequence).
 */
static void test_escape_text_truncation_never_overflows(void **state)
{
	const char *in = "a\\\x1b\xe6\x97\xa5z\xff\xc3\xa9\x7f" "end";
	size_t n = strlen(in);
	char full[256], prefix[256];
	size_t full_len = escape_text(full, sizeof(full), in, n);
	char canary = 'Z';

	(void)state;
	CHECK(escape_text(&canary, 0, in, n) == 0 && canary == 'Z',
	      "expected outsz 0 to write nothing and return 0");
	for (size_t outsz = 1; outsz <= full_len + 2; outsz++) {
		char *out = owned(malloc(outsz));	/* exactly outsz: ASan sees overflows */
		size_t got;
		bool is_prefix_escape = false;

		memset(out, 'Z', outsz);
		got = escape_text(out, outsz, in, n);
		CHECK(got < outsz, "outsz %zu: expected fewer than outsz bytes, got %zu", outsz, got);
		CHECK(out[got] == '\0' && strlen(out) == got,
		      "outsz %zu: expected a NUL right after the %zu bytes", outsz, got);
		CHECK(!memcmp(out, full, got), "outsz %zu: expected a prefix of the full escape",
		      outsz);
		for (size_t k = 0; k <= n && !is_prefix_escape; k++) {
			escape_text(prefix, sizeof(prefix), in, k);
			is_prefix_escape = !strcmp(prefix, out);
		}
		CHECK(is_prefix_escape, "outsz %zu: '%s' cuts an escape or a UTF-8 sequence",
		      outsz, out);
		if (outsz > full_len)
			CHECK(got == full_len, "outsz %zu: expected the whole escape", outsz);
	}
}

/* ---- the line buffer (issue 11): one write a line, any length whole ---- */

/* A value three times the line buffer, escapes all along: exact, and parses. */
static void test_line_longer_than_the_buffer_comes_out_whole(void **state)
{
	static const char unit_in[] = "ab\"\x01\xff\xc3\xa9";
	static const char unit_out[] = "ab\\\"\\u0001\\u00ff\xc3\xa9";
	size_t reps = 3 * JSON_LINE_MAX / (sizeof(unit_in) - 1);
	char *in = owned(malloc(reps * (sizeof(unit_in) - 1) + 1));
	char *want = owned(malloc(reps * (sizeof(unit_out) - 1) + 16));
	char *w = want, *got;
	struct capture c;

	(void)state;
	for (size_t i = 0; i < reps; i++)
		memcpy(in + i * (sizeof(unit_in) - 1), unit_in, sizeof(unit_in) - 1);
	w = stpcpy(w, "{\"k\":\"");
	for (size_t i = 0; i < reps; i++)
		w = stpcpy(w, unit_out);
	stpcpy(w, "\",\"n\":1}\n");
	cap_open(&c);
	json_obj_begin(&c.j);
	json_key(&c.j, "k");
	json_strn(&c.j, in, reps * (sizeof(unit_in) - 1));
	json_ku64(&c.j, "n", 1);
	json_obj_end(&c.j);
	json_eol(&c.j);
	got = cap_close(&c);
	CHECK(!strcmp(got, want), "expected %zu bytes, got %zu", strlen(want), strlen(got));
	reparse(got);
}

/* Nothing reaches the stream before the line ends. */
static void test_one_write_per_line(void **state)
{
	struct capture c;

	(void)state;
	cap_open(&c);
	json_obj_begin(&c.j);
	json_kstr(&c.j, "a", "b");
	json_ku64(&c.j, "n", 42);
	fflush(c.f);
	CHECK(c.len == 0, "expected nothing written before json_eol, got %zu bytes", c.len);
	json_obj_end(&c.j);
	json_eol(&c.j);
	fflush(c.f);
	CHECK(c.len == strlen("{\"a\":\"b\",\"n\":42}\n"), "expected the whole line, got %zu", c.len);
	cap_close(&c);
}

static void test_numbers_at_their_limits(void **state)
{
	struct capture c;
	char *got;

	(void)state;
	cap_open(&c);
	json_arr_begin(&c.j);
	json_u64(&c.j, 0);
	json_u64(&c.j, 9);
	json_u64(&c.j, 10);
	json_u64(&c.j, 99);
	json_u64(&c.j, 100);
	json_u64(&c.j, UINT64_MAX);
	json_i64(&c.j, -1);
	json_i64(&c.j, INT64_MIN);
	json_i64(&c.j, INT64_MAX);
	json_arr_end(&c.j);
	json_eol(&c.j);
	got = cap_close(&c);
	CHECK(!strcmp(got, "[0,9,10,99,100,18446744073709551615,-1,-9223372036854775808,"
		      "9223372036854775807]\n"), "got %s", got);
}

static size_t fill_text(char *buf, size_t max, const void *arg)
{
	snprintf(buf, max, "%s", (const char *)arg);
	return strlen(buf);
}

/* A rendered value: written in place when plain, escaped when it must be, cut at max. */
static void test_fill_renders_in_place_and_escapes(void **state)
{
	static const struct {
		const char *in, *raw;
		size_t max;
	} cases[] = {
		{ "plain text, 10.0.0.2:80", "[\"plain text, 10.0.0.2:80\"]\n", 64 },
		{ "reason EVIL\"NAME\\\x1b", "[\"reason EVIL\\\"NAME\\\\\\u001b\"]\n", 64 },
		{ "cut here: the rest", "[\"cut here\"]\n", 9 },
		{ "", "[\"\"]\n", 64 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct capture c;
		char *got;

		cap_open(&c);
		json_arr_begin(&c.j);
		json_str_fill(&c.j, fill_text, cases[i].in, cases[i].max);
		json_arr_end(&c.j);
		json_eol(&c.j);
		got = cap_close(&c);
		expect_output(got, cases[i].raw, cases[i].raw);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_commas_and_nesting, free_owned),
		cmocka_unit_test_teardown(test_nesting_to_max_depth_stays_valid, free_owned),
		cmocka_unit_test_teardown(test_keys_are_escaped, free_owned),
		cmocka_unit_test_teardown(test_string_specials_and_controls_escaped, free_owned),
		cmocka_unit_test_teardown(test_valid_utf8_passes_through, free_owned),
		cmocka_unit_test_teardown(test_invalid_utf8_bytes_escaped_as_latin1, free_owned),
		cmocka_unit_test_teardown(test_strn_stops_at_nul_and_at_n, free_owned),
		cmocka_unit_test_teardown(test_str_null_is_json_null, free_owned),
		cmocka_unit_test_teardown(test_non_finite_doubles_are_null, free_owned),
		cmocka_unit_test_teardown(test_escape_text_controls_and_invalid_bytes, free_owned),
		cmocka_unit_test_teardown(test_escape_text_stops_at_nul_and_n, free_owned),
		cmocka_unit_test_teardown(test_escape_text_truncation_never_overflows, free_owned),
		cmocka_unit_test_teardown(test_parser_check_refuses_bad_lines, free_owned),
		cmocka_unit_test_teardown(test_deep_nesting_stays_valid, free_owned),
		cmocka_unit_test_teardown(test_line_longer_than_the_buffer_comes_out_whole,
					  free_owned),
		cmocka_unit_test_teardown(test_one_write_per_line, free_owned),
		cmocka_unit_test_teardown(test_numbers_at_their_limits, free_owned),
		cmocka_unit_test_teardown(test_fill_renders_in_place_and_escapes, free_owned),
	};

	return cmocka_run_group_tests_name("json", tests, NULL, NULL);
}
