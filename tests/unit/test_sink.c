// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * sink.c: the -o/--output file. Real files in a temporary directory: lines
 * arrive whole whatever stdio's buffering cuts, rotation keeps N files of
 * whole lines with nothing lost in between, SIGHUP's reopen follows a moved
 * file, and write errors (/dev/full, a file-size limit mid-line, a reopen
 * that cannot create the file) are reported once, counted, never fatal.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include "sink.h"

#define CHECK(cond, ...) do { if (!(cond)) fail_msg(__VA_ARGS__); } while (0)

struct fx {
	char dir[64];
	char path[128];
	char *errbuf;		/* what the sink reported */
	size_t errlen;
	FILE *errf;
	struct sink *s;
};

static int setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));

	if (!fx)
		return -1;
	strcpy(fx->dir, "/tmp/ct-sink-XXXXXX");
	if (!mkdtemp(fx->dir))
		return -1;
	snprintf(fx->path, sizeof(fx->path), "%s/out.jsonl", fx->dir);
	fx->errf = open_memstream(&fx->errbuf, &fx->errlen);
	*state = fx;
	return fx->errf ? 0 : -1;
}

static int teardown(void **state)
{
	struct fx *fx = *state;
	struct dirent *de;
	DIR *d;

	if (fx->s)
		sink_close(fx->s);
	fclose(fx->errf);
	free(fx->errbuf);
	d = opendir(fx->dir);
	while (d && (de = readdir(d))) {
		char p[512];

		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", fx->dir, de->d_name);
		unlink(p);
	}
	if (d)
		closedir(d);
	rmdir(fx->dir);
	free(fx);
	return 0;
}

static void open_sink(struct fx *fx, const char *path, uint64_t rotate_size, unsigned keep)
{
	struct sink_config sc = { .path = path, .rotate_size = rotate_size, .rotate_keep = keep,
				  .errf = fx->errf };
	char err[256] = "";
	int rc = sink_open(&fx->s, &sc, err, sizeof(err));

	CHECK(rc == 0, "sink_open(%s): %d %s", path, rc, err);
}

/* The whole file, NUL-terminated; "" if missing. Caller frees. */
static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t n = 0;
	long sz;

	if (!f) {
		if (len)
			*len = 0;
		return strdup("");
	}
	fseek(f, 0, SEEK_END);
	sz = ftell(f);
	rewind(f);
	buf = malloc(sz + 1);
	assert_non_null(buf);
	n = fread(buf, 1, sz, f);
	buf[n] = '\0';
	fclose(f);
	if (len)
		*len = n;
	return buf;
}

static size_t count_char(const char *s, char c)
{
	size_t n = 0;

	for (; *s; s++)
		n += *s == c;
	return n;
}

static unsigned err_lines(struct fx *fx)
{
	fflush(fx->errf);
	return fx->errbuf ? count_char(fx->errbuf, '\n') : 0;
}

/* A line of exactly len bytes (newline included) carrying the number seq. */
static void put_line(FILE *f, unsigned seq, size_t len)
{
	char buf[16];
	int n = snprintf(buf, sizeof(buf), "%08u ", seq);

	fputs(buf, f);
	for (size_t i = n; i + 1 < len; i++)
		fputc('x', f);
	fputc('\n', f);
}

/* Every line of buf is "%08u x...x" of length len; returns the numbers. */
static size_t parse_lines(const char *buf, size_t len, unsigned *seqs, size_t max)
{
	size_t n = 0;

	for (const char *p = buf; *p; ) {
		const char *nl = strchr(p, '\n');

		CHECK(nl, "a line without its newline: '%.40s'", p);
		CHECK((size_t)(nl - p + 1) == len, "line of %zu bytes, expected %zu: '%.40s'",
		      (size_t)(nl - p + 1), len, p);
		CHECK(n < max, "more lines than expected");
		seqs[n++] = strtoul(p, NULL, 10);
		p = nl + 1;
	}
	return n;
}

/* ---- whole lines ---- */

static void test_appends_whole_lines(void **state)
{
	struct fx *fx = *state;
	struct sink_stats st;
	FILE *pre = fopen(fx->path, "w");
	char *got;

	fputs("{\"before\":1}\n", pre);	/* -o appends, as logrotate expects */
	fclose(pre);
	open_sink(fx, fx->path, 0, 0);
	fputs("{\"a\":1}\n{\"b\":", sink_stream(fx->s));
	fflush(sink_stream(fx->s));
	got = slurp(fx->path, NULL);
	/* half a record is never in the file, even after a flush */
	assert_string_equal(got, "{\"before\":1}\n{\"a\":1}\n");
	free(got);
	fputs("2}\n", sink_stream(fx->s));
	fflush(sink_stream(fx->s));
	got = slurp(fx->path, NULL);
	assert_string_equal(got, "{\"before\":1}\n{\"a\":1}\n{\"b\":2}\n");
	free(got);
	sink_get_stats(fx->s, &st);
	assert_int_equal(st.lines, 2);
	assert_int_equal(st.write_errors, 0);
	assert_int_equal(st.lines_lost, 0);
	assert_int_equal(err_lines(fx), 0);
}

static void test_line_longer_than_stdio_buffer(void **state)
{
	struct fx *fx = *state;
	size_t len;
	char *got;

	open_sink(fx, fx->path, 0, 0);
	/* stdio hands it over in pieces: it must still arrive as one line */
	put_line(sink_stream(fx->s), 7, 300000);
	put_line(sink_stream(fx->s), 8, 10);
	sink_close(fx->s);
	fx->s = NULL;
	got = slurp(fx->path, &len);
	assert_int_equal(len, 300010);
	assert_int_equal(strtoul(got, NULL, 10), 7);
	assert_int_equal(strtoul(got + 300000, NULL, 10), 8);
	free(got);
}

static void test_open_errors_are_one_line(void **state)
{
	struct fx *fx = *state;
	static const struct { const char *path; uint64_t rot; const char *want; } cases[] = {
		{ "/nonexistent-dir/x.jsonl", 0, "No such file or directory" },
		{ "/tmp", 0, "Is a directory" },
		{ "", 0, "not a usable file name" },
		{ "/dev/null", 4096, "cannot be rotated" },
	};

	(void)fx;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sink_config sc = { .path = cases[i].path, .rotate_size = cases[i].rot };
		struct sink *s = (struct sink *)1;
		char err[256] = "";
		int rc = sink_open(&s, &sc, err, sizeof(err));

		CHECK(rc < 0 && !s, "%s: expected an error, got %d", cases[i].path, rc);
		CHECK(strstr(err, cases[i].want) && strstr(err, "--output") && !strchr(err, '\n'),
		      "%s: expected one line naming --output and '%s', got '%s'", cases[i].path,
		      cases[i].want, err);
	}
}

static void test_escapes_path_in_messages(void **state)
{
	struct sink_config sc = { .path = "/nonexistent-dir/\033[2J\n" };
	struct sink *s;
	char err[256] = "";

	(void)state;
	assert_true(sink_open(&s, &sc, err, sizeof(err)) < 0);
	CHECK(!strchr(err, '\033') && !strchr(err, '\n') && strstr(err, "\\x1b[2J\\x0a"),
	      "path not escaped: '%s'", err);
}

/* ---- rotation ---- */

static void test_rotation_keeps_n_files_of_whole_lines(void **state)
{
	struct fx *fx = *state;
	enum { LINE = 1000, N = 40, KEEP = 3 };
	unsigned seqs[N], next = 0;
	struct sink_stats st;
	char p[256];

	open_sink(fx, fx->path, 4096, KEEP);
	for (unsigned i = 0; i < N; i++) {
		put_line(sink_stream(fx->s), i, LINE);
		if (i % 3 == 0)	/* batches of several lines, as the poll loop flushes */
			fflush(sink_stream(fx->s));
	}
	fflush(sink_stream(fx->s));
	sink_get_stats(fx->s, &st);
	assert_int_equal(st.lines, N);
	assert_int_equal(st.lines_lost, 0);
	/* 4 lines of 1000 bytes fit under 4096: 10 files were made, 3 kept */
	assert_int_equal(st.rotations, 9);
	snprintf(p, sizeof(p), "%s.%u", fx->path, KEEP + 1);
	CHECK(access(p, F_OK), "%s exists: --rotate-keep %u", p, KEEP);
	/* oldest to newest: FILE.3, FILE.2, FILE.1, FILE; no line missing between */
	for (int k = KEEP; k >= 0; k--) {
		size_t len, n;
		char *buf;

		if (k)
			snprintf(p, sizeof(p), "%s.%d", fx->path, k);
		else
			snprintf(p, sizeof(p), "%s", fx->path);
		buf = slurp(p, &len);
		CHECK(len <= 4096, "%s: %zu bytes, over the limit", p, len);
		n = parse_lines(buf, LINE, seqs, N);
		CHECK(n == 4, "%s: %zu lines, expected 4", p, n);
		if (k == KEEP)
			next = seqs[0];
		for (size_t i = 0; i < n; i++, next++)
			CHECK(seqs[i] == next, "%s: line %u where %u was due", p, seqs[i], next);
		free(buf);
	}
	assert_int_equal(next, N);
	assert_int_equal(err_lines(fx), 0);
}

static void test_line_over_the_limit_gets_its_own_file(void **state)
{
	struct fx *fx = *state;
	char p[256], *a, *b;
	size_t la, lb;

	open_sink(fx, fx->path, 4096, 2);
	put_line(sink_stream(fx->s), 1, 100);
	put_line(sink_stream(fx->s), 2, 9000);
	put_line(sink_stream(fx->s), 3, 100);
	fflush(sink_stream(fx->s));
	snprintf(p, sizeof(p), "%s.2", fx->path);
	a = slurp(p, &la);
	snprintf(p, sizeof(p), "%s.1", fx->path);
	b = slurp(p, &lb);
	assert_int_equal(la, 100);
	assert_int_equal(lb, 9000);
	free(a);
	free(b);
	a = slurp(fx->path, &la);
	assert_int_equal(la, 100);
	assert_int_equal(strtoul(a, NULL, 10), 3);
	free(a);
}

static void test_rotation_failure_is_counted_and_writing_goes_on(void **state)
{
	struct fx *fx = *state;
	struct sink_stats st;
	char p[256];
	size_t len;
	char *buf;

	open_sink(fx, fx->path, 4096, 1);
	/* FILE.1 cannot be replaced by a rename: it is a non-empty directory */
	snprintf(p, sizeof(p), "%s.1", fx->path);
	assert_int_equal(mkdir(p, 0700), 0);
	snprintf(p, sizeof(p), "%s.1/keep", fx->path);
	fclose(fopen(p, "w"));
	for (unsigned i = 0; i < 10; i++)
		put_line(sink_stream(fx->s), i, 1000);
	fflush(sink_stream(fx->s));
	sink_get_stats(fx->s, &st);
	assert_int_equal(st.lines, 10);
	assert_int_equal(st.lines_lost, 0);
	CHECK(st.write_errors >= 1, "rotation failure not counted");
	assert_int_equal(err_lines(fx), 1);	/* reported once */
	buf = slurp(fx->path, &len);
	assert_int_equal(len, 10000);		/* nothing lost: the file grew instead */
	free(buf);
	unlink(p);
	snprintf(p, sizeof(p), "%s.1", fx->path);
	rmdir(p);
}

/* ---- SIGHUP ---- */

static void test_reopen_follows_a_moved_file(void **state)
{
	struct fx *fx = *state;
	unsigned seqs[20];
	struct sink_stats st;
	char moved[256], *a, *b;
	size_t la, lb, na, nb;

	open_sink(fx, fx->path, 0, 0);
	for (unsigned i = 0; i < 5; i++)
		put_line(sink_stream(fx->s), i, 50);
	fflush(sink_stream(fx->s));
	snprintf(moved, sizeof(moved), "%s.moved", fx->path);
	assert_int_equal(rename(fx->path, moved), 0);	/* logrotate */
	put_line(sink_stream(fx->s), 5, 50);		/* buffered, not flushed */
	assert_int_equal(sink_reopen(fx->s), 0);	/* SIGHUP */
	for (unsigned i = 6; i < 9; i++)
		put_line(sink_stream(fx->s), i, 50);
	fflush(sink_stream(fx->s));

	a = slurp(moved, &la);
	b = slurp(fx->path, &lb);
	na = parse_lines(a, 50, seqs, 20);
	assert_int_equal(na, 6);		/* what was written before the reopen */
	assert_int_equal(seqs[5], 5);
	nb = parse_lines(b, 50, seqs, 20);
	assert_int_equal(nb, 3);
	assert_int_equal(seqs[0], 6);
	free(a);
	free(b);
	sink_get_stats(fx->s, &st);
	assert_int_equal(st.reopens, 1);
	assert_int_equal(st.lines_lost, 0);
	unlink(moved);
}

static void test_reopen_failure_keeps_the_old_file(void **state)
{
	struct fx *fx = *state;
	struct sink_stats st;
	char sub[192], path[256], moved[256];
	char *buf;
	size_t len;

	snprintf(sub, sizeof(sub), "%s/sub", fx->dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	snprintf(path, sizeof(path), "%s/out", sub);
	snprintf(moved, sizeof(moved), "%s/out.moved", fx->dir);
	open_sink(fx, path, 0, 0);
	put_line(sink_stream(fx->s), 0, 20);
	fflush(sink_stream(fx->s));
	assert_int_equal(rename(path, moved), 0);
	assert_int_equal(rmdir(sub), 0);		/* the new file cannot be created */
	assert_int_equal(sink_reopen(fx->s), -ENOENT);
	assert_int_equal(sink_reopen(fx->s), -ENOENT);
	put_line(sink_stream(fx->s), 1, 20);
	fflush(sink_stream(fx->s));
	sink_get_stats(fx->s, &st);
	assert_int_equal(st.write_errors, 2);	/* both counted ... */
	assert_int_equal(err_lines(fx), 1);	/* ... reported once */
	assert_int_equal(st.lines_lost, 0);
	buf = slurp(moved, &len);
	assert_int_equal(len, 40);		/* the record went to the old file */
	free(buf);
	unlink(moved);
}

/* ---- write errors ---- */

static void test_disk_full_is_reported_once_and_counted(void **state)
{
	struct fx *fx = *state;
	struct sink_stats st;

	open_sink(fx, "/dev/full", 0, 0);	/* every write: ENOSPC */
	for (unsigned i = 0; i < 50; i++) {
		put_line(sink_stream(fx->s), i, 100);
		assert_int_equal(fflush(sink_stream(fx->s)), 0);	/* the stream stays usable */
	}
	assert_false(ferror(sink_stream(fx->s)));
	sink_get_stats(fx->s, &st);
	assert_int_equal(st.lines, 0);
	assert_int_equal(st.lines_lost, 50);
	assert_int_equal(st.write_errors, 50);
	assert_int_equal(err_lines(fx), 1);
	CHECK(strstr(fx->errbuf, "No space left on device") && strstr(fx->errbuf, "/dev/full"),
	      "report: '%s'", fx->errbuf);
	sink_close(fx->s);
	fx->s = NULL;
	/* the closing tally */
	assert_int_equal(err_lines(fx), 2);
	CHECK(strstr(fx->errbuf, "50 records lost"), "closing report: '%s'", fx->errbuf);
}

static void test_partial_write_is_taken_back(void **state)
{
	struct fx *fx = *state;
	struct rlimit old, lim;
	struct sink_stats st;
	unsigned seqs[16];
	size_t len, n;
	char *buf;

	open_sink(fx, fx->path, 0, 0);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = 7 * 700 + 100;	/* the 8th line is cut after 100 bytes */
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	for (unsigned i = 0; i < 10; i++)
		put_line(sink_stream(fx->s), i, 700);
	fflush(sink_stream(fx->s));	/* one write(2): short, then EFBIG */
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	sink_get_stats(fx->s, &st);
	assert_int_equal(st.lines, 7);
	assert_int_equal(st.lines_lost, 3);
	assert_int_equal(err_lines(fx), 1);
	buf = slurp(fx->path, &len);
	assert_int_equal(len, 7 * 700);	/* no half line left behind */
	n = parse_lines(buf, 700, seqs, 16);
	assert_int_equal(n, 7);
	free(buf);
	/* room again: writing goes on, and that is said once */
	put_line(sink_stream(fx->s), 10, 700);
	fflush(sink_stream(fx->s));
	sink_get_stats(fx->s, &st);
	assert_int_equal(st.lines, 8);
	assert_int_equal(err_lines(fx), 2);
	CHECK(strstr(fx->errbuf, "writing again"), "recovery not said: '%s'", fx->errbuf);
}

static void test_null_sink(void **state)
{
	struct sink_stats st = { .lines = 1 };

	(void)state;
	sink_get_stats(NULL, &st);
	assert_int_equal(st.lines, 0);
	assert_int_equal(sink_reopen(NULL), 0);
	sink_close(NULL);
}

/* ---- --rotate-size values ---- */

static void test_parse_size(void **state)
{
	static const struct { const char *arg; uint64_t want; } good[] = {
		{ "4096", 4096 }, { "4K", 4096 }, { "4k", 4096 }, { "100M", 100ULL << 20 },
		{ "1G", 1ULL << 30 }, { "1T", 1ULL << 40 }, { "5000", 5000 },
	};
	static const struct { const char *arg; const char *want; } bad[] = {
		{ "", "not a size" }, { "-1", "not a size" }, { " 4K", "not a size" },
		{ "4KB", "not a size" }, { "1X", "not a size" }, { "M", "not a size" },
		{ "4095", "out of range" }, { "0", "out of range" }, { "2T", "out of range" },
		{ "99999999999999999999", "out of range" }, { "17179869184G", "out of range" },
	};
	char err[256];
	uint64_t v;

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		int rc = sink_parse_size("--rotate-size", good[i].arg, &v, err, sizeof(err));

		CHECK(rc == 0 && v == good[i].want, "'%s': rc %d, %llu (%s)", good[i].arg, rc,
		      (unsigned long long)v, err);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = sink_parse_size("--rotate-size", bad[i].arg, &v, err, sizeof(err));

		CHECK(rc == -EINVAL && strstr(err, "--rotate-size") && strstr(err, bad[i].want),
		      "'%s': rc %d, message '%s'", bad[i].arg, rc, err);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_appends_whole_lines, setup, teardown),
		cmocka_unit_test_setup_teardown(test_line_longer_than_stdio_buffer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_errors_are_one_line, setup, teardown),
		cmocka_unit_test(test_escapes_path_in_messages),
		cmocka_unit_test_setup_teardown(test_rotation_keeps_n_files_of_whole_lines, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_line_over_the_limit_gets_its_own_file, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_rotation_failure_is_counted_and_writing_goes_on,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_reopen_follows_a_moved_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reopen_failure_keeps_the_old_file, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_disk_full_is_reported_once_and_counted, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_partial_write_is_taken_back, setup, teardown),
		cmocka_unit_test(test_null_sink),
		cmocka_unit_test(test_parse_size),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
