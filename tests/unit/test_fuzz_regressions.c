// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * What the fuzzer (tests/fuzz) found, kept as unit tests: each crash as a
 * small readable case, plus a replay of every checked-in fuzz input (the
 * seed corpus and the crash inputs themselves) through the fuzzer's own
 * harness and checks, so `make unit` (and `make unit SANITIZE=1`) runs them
 * without clang's fuzzer runtime.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../fuzz/fuzz_one.c"

#define MS	1000000ULL
#define T0	(1000 * 1000 * MS)

static struct ct_flow v4flow(int err, uint64_t start, uint64_t end)
{
	struct ct_flow f = {
		.type = CT_REC_FLOW, .family = CT_AF_INET, .state = CT_TCP_CLOSE, .sport = 40000,
		.dport = 20000, .pid = 7, .tid = 7, .netns = 4026531840u, .err = err,
		.ts_start = start, .ts_end = end,
	};
	uint32_t lo = htonl(0x7f000001);

	memcpy(f.saddr, &lo, 4);
	memcpy(f.daddr, &lo, 4);
	memcpy(f.comm, "ctc", 4);
	return f;
}

static struct ct_result got;
static unsigned nr_got;

static void keep(const struct ct_result *r, void *ctx)
{
	(void)ctx;
	got = *r;
	nr_got++;
}

/*
 * fuzz: user/correlate.c rel_us() subtracted the stamps as signed 64-bit
 * numbers; a record with stamps far apart overflowed (undefined behaviour,
 * found by UBSan). A wrapping difference now: an absurd time, no overflow.
 */
static void test_absurd_timestamps_give_a_time_not_an_overflow(void **state)
{
	struct corr_config cc = { .emit = keep };
	struct correlator *c = corr_new(&cc);
	struct ct_flow f = v4flow(111, 0xb9b9b9b9b9b9b9b9ULL, 0xb9b9b9b9b9b9b9b9ULL);
	bool found = false;

	(void)state;
	assert_non_null(c);
	f.flags = CT_F_RST_RCVD;
	f.ts_rst = 0x4d00000000000000ULL;	/* "before" the start, by 2^63 and more */
	nr_got = 0;
	assert_int_equal(corr_feed(c, &f, sizeof(f), T0), 0);
	assert_int_equal(nr_got, 1);
	for (unsigned i = 0; i < got.nr_ev; i++) {
		if (got.ev[i].kind != CT_EV_RST_RECEIVED)
			continue;
		found = true;
		assert_int_equal(got.ev[i].t_us,
				 (int64_t)(f.ts_rst - f.ts_start) / 1000);
	}
	assert_true(found);
	corr_free(c);
}

static const char *hostile_drop_name(uint32_t v, void *ctx)
{
	(void)v;
	(void)ctx;
	return "EVIL\x1b[2J\x1b]0;title\x07";
}

/*
 * fuzz: the text writer printed the detail line raw, and the detail quotes
 * kernel enum names (drop and reset reasons, read from BTF): a name with
 * escape sequences reached the terminal. The detail is escaped now.
 */
static void test_text_detail_escapes_kernel_enum_names(void **state)
{
	struct corr_config cc = { .emit = keep, .drop_reason_name = hostile_drop_name };
	struct correlator *c = corr_new(&cc);
	struct ct_flow f = v4flow(110, T0, T0 + 7000 * MS);
	struct writer w;
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);

	(void)state;
	assert_non_null(c);
	assert_non_null(out);
	f.drops = 3;
	f.drop_reason = 99;
	f.syn_retrans = 2;
	nr_got = 0;
	corr_feed(c, &f, sizeof(f), T0 + 7000 * MS);
	assert_int_equal(nr_got, 1);
	assert_int_equal(got.cause, CT_C_LOCAL_DROP);
	writer_text_init(&w, out, false, true);
	w.ops->verdict(&w, &got, T0);
	fclose(out);
	assert_non_null(strstr(buf, "EVIL\\x1b[2J\\x1b]0;title\\x07"));
	assert_null(memchr(buf, 0x1b, len));
	assert_null(memchr(buf, 0x07, len));
	free(buf);
	corr_free(c);
}

/* Every file of a directory through the fuzzer's harness and its checks. */
static unsigned replay_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	unsigned n = 0;

	if (!d)
		fail_msg("%s: cannot open (run from the repository root)", dir);
	while ((de = readdir(d))) {
		char path[512];
		uint8_t *data;
		long size;
		FILE *f;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		f = fopen(path, "rb");
		assert_non_null(f);
		fseek(f, 0, SEEK_END);
		size = ftell(f);
		rewind(f);
		data = malloc(size ? size : 1);
		assert_non_null(data);
		assert_int_equal(fread(data, 1, size, f), (size_t)size);
		fclose(f);
		ct_fuzz_one(data, size);	/* aborts, naming the check, on a failure */
		free(data);
		n++;
	}
	closedir(d);
	return n;
}

static void test_fuzz_crash_inputs_replay_clean(void **state)
{
	(void)state;
	assert_true(replay_dir("tests/fuzz/regressions") >= 2);
}

static void test_fuzz_seed_corpus_replays_clean(void **state)
{
	(void)state;
	assert_true(replay_dir("tests/fuzz/corpus") >= 10);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_absurd_timestamps_give_a_time_not_an_overflow),
		cmocka_unit_test(test_text_detail_escapes_kernel_enum_names),
		cmocka_unit_test(test_fuzz_crash_inputs_replay_clean),
		cmocka_unit_test(test_fuzz_seed_corpus_replays_clean),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
