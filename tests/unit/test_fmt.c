// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The writers' hand-made formatters (user/fmt.c) against libc's own:
 * snprintf for integers and fixed point, gmtime_r for timestamps, inet_ntop
 * for addresses, over edge values and a few hundred thousand pseudo-random ones.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <linux/types.h>
#include "conntrace.h"
#include "fmt.h"

#define CHECK(cond, ...) do { if (!(cond)) fail_msg(__VA_ARGS__); } while (0)

static uint64_t rnd_state = 0x9e3779b97f4a7c15ULL;

/* xorshift64*: reproducible, and covers every digit count */
static uint64_t rnd(void)
{
	rnd_state ^= rnd_state >> 12;
	rnd_state ^= rnd_state << 25;
	rnd_state ^= rnd_state >> 27;
	return rnd_state * 2685821657736338717ULL;
}

static void expect_str(const char *what, const char *got_start, const char *got_end,
		       const char *want)
{
	size_t n = got_end - got_start;

	CHECK(n == strlen(want) && !memcmp(got_start, want, n), "%s: expected %s, got %.*s", what,
	      want, (int)n, got_start);
}

static void check_u64(uint64_t v)
{
	char got[FMT_U64_MAX], want[32];

	snprintf(want, sizeof(want), "%" PRIu64, v);
	expect_str("fmt_u64", got, fmt_u64(got, v), want);
}

static void check_i64(int64_t v)
{
	char got[FMT_I64_MAX], want[32];

	snprintf(want, sizeof(want), "%" PRId64, v);
	expect_str("fmt_i64", got, fmt_i64(got, v), want);
}

static void test_integers_match_printf(void **state)
{
	(void)state;
	check_u64(0);
	check_u64(UINT64_MAX);
	check_i64(INT64_MIN);
	check_i64(INT64_MAX);
	check_i64(-1);
	for (uint64_t p = 1; p && p < UINT64_MAX / 10; p *= 10) {
		check_u64(p - 1);
		check_u64(p);
		check_u64(p + 1);
	}
	for (int i = 0; i < 200000; i++) {
		uint64_t v = rnd() >> (rnd() % 64);

		check_u64(v);
		check_i64((int64_t)v * (i % 2 ? -1 : 1));
	}
}

static void check_ts(uint64_t ns)
{
	char got[FMT_TS_MAX], want[64];
	time_t secs = ns / 1000000000ULL;
	struct tm tm;

	gmtime_r(&secs, &tm);
	snprintf(want, sizeof(want), "%04d-%02d-%02dT%02d:%02d:%02d.%09uZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		 (unsigned)(ns % 1000000000ULL));
	expect_str("fmt_ts", got, fmt_ts(got, ns), want);
}

/* Also across seconds, back and forth: the cached date part must follow. */
static void test_timestamps_match_gmtime(void **state)
{
	uint64_t base = 1700000000123456789ULL;

	(void)state;
	check_ts(0);
	check_ts(999999999);
	check_ts(951782400ULL * 1000000000ULL);	/* 2000-02-29 */
	check_ts(4102444799999999999ULL);	/* 2099-12-31T23:59:59.999999999Z */
	for (int i = 0; i < 100000; i++) {
		check_ts(base + rnd() % 3000000000ULL);	/* a few seconds apart, in any order */
		check_ts(rnd() % 4102444800000000000ULL);
	}
}

static void check_ip(uint8_t family, const uint8_t *addr, uint16_t port)
{
	char got[FMT_ENDPOINT_MAX], want[INET6_ADDRSTRLEN + 16], a[INET6_ADDRSTRLEN];

	inet_ntop(family == CT_AF_INET ? AF_INET : AF_INET6, addr, a, sizeof(a));
	expect_str("fmt_ip", got, fmt_ip(got, family, addr), a);
	snprintf(want, sizeof(want), family == CT_AF_INET ? "%s:%u" : "[%s]:%u", a, port);
	expect_str("fmt_ip_port", got, fmt_ip_port(got, family, addr, port), want);
}

static void test_addresses_match_inet_ntop(void **state)
{
	uint8_t a[16] = { 0 };
	static const char *const six[] = {
		"::", "::1", "2001:db8::1", "::ffff:192.0.2.1", "fe80::1:2:3:4",
		"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
	};

	(void)state;
	check_ip(CT_AF_INET, a, 0);
	memset(a, 0xff, 4);
	check_ip(CT_AF_INET, a, 65535);
	for (int i = 0; i < 100000; i++) {
		uint64_t v = rnd();

		memcpy(a, &v, 4);
		check_ip(CT_AF_INET, a, v >> 48);
	}
	for (size_t i = 0; i < sizeof(six) / sizeof(six[0]); i++) {
		inet_pton(AF_INET6, six[i], a);
		check_ip(CT_AF_INET6, a, 443);
	}
}

static void check_fixed(uint64_t v, uint64_t unit, unsigned dec)
{
	static const uint64_t pow10[] = { 1, 10, 100, 1000 };
	uint64_t step = unit / pow10[dec];
	char got[FMT_U64_MAX + 8], want[64];

	if ((v % step) * 2 == step)
		return;	/* an exact decimal tie: see below */
	snprintf(want, sizeof(want), "%.*f", (int)dec, (double)v / unit);
	expect_str("fmt_fixed", got, fmt_fixed(got, v, unit, dec), want);
}

/*
 * printf rounds the double nearest v / unit; fmt_fixed the exact quotient,
 * half to even. They agree wherever the double is not within a hair of a
 * tie, so exact decimal ties are skipped there and checked on their own.
 */
static void test_fixed_point_matches_printf(void **state)
{
	char got[32];

	(void)state;
	for (int i = 0; i < 100000; i++) {
		uint64_t v = rnd() % 1000000000000ULL;

		check_fixed(v, 1000000000ULL, 2);
		check_fixed(v, 1000000000ULL, 1);
		check_fixed(v % 100000000, 1000000, 1);
		check_fixed(v, 1000000000ULL, 0);
	}
	expect_str("tie to even", got, fmt_fixed(got, 1005000000, 1000000000ULL, 2), "1.00");
	expect_str("tie to even", got, fmt_fixed(got, 1015000000, 1000000000ULL, 2), "1.02");
	expect_str("round up", got, fmt_fixed(got, 999999999, 1000000000ULL, 2), "1.00");
	expect_str("zero", got, fmt_fixed(got, 0, 1000000, 1), "0.0");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_integers_match_printf),
		cmocka_unit_test(test_timestamps_match_gmtime),
		cmocka_unit_test(test_addresses_match_inet_ntop),
		cmocka_unit_test(test_fixed_point_matches_printf),
	};

	return cmocka_run_group_tests_name("fmt", tests, NULL, NULL);
}
