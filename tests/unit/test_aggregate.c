// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Text mode's storm control (user/aggregate.c): per second and key, the first
 * lines printed, the rest summed, and printed plus summed always the whole.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>
#include "aggregate.h"

#define CHECK(cond, ...) do { if (!(cond)) fail_msg(__VA_ARGS__); } while (0)

#define SEC 1000000000ULL

static struct agg_key key(uint8_t verdict, uint8_t cause, uint8_t last_octet, uint16_t port)
{
	struct agg_key k = { .verdict = verdict, .cause = cause, .family = 2, .dport = port };

	k.daddr[0] = 127;
	k.daddr[3] = last_octet;
	return k;
}

struct seen {
	unsigned n;
	struct agg_entry e[AGG_KEYS];
	uint64_t since, now;
};

static void collect(const struct agg_entry *e, uint64_t since, uint64_t now, void *ctx)
{
	struct seen *s = ctx;

	s->e[s->n++] = *e;
	s->since = since;
	s->now = now;
}

/* A key's first per_sec verdicts a second print, the rest are summed. */
static void test_storm_prints_the_first_and_sums_the_rest(void **state)
{
	static struct agg a;
	struct agg_key k = key(3, 2, 1, 9);
	struct seen s = { 0 };
	unsigned printed = 0;

	(void)state;
	agg_init(&a, AGG_PER_SEC, 5 * SEC);
	for (int i = 0; i < 4213 + AGG_PER_SEC; i++)
		printed += agg_add(&a, &k);
	CHECK(printed == AGG_PER_SEC, "expected %d lines printed, got %u", AGG_PER_SEC, printed);
	agg_flush(&a, 6 * SEC, collect, &s);
	CHECK(s.n == 1, "expected one aggregate, got %u", s.n);
	CHECK(s.e[0].summed == 4213, "expected 4213 summed, got %u", s.e[0].summed);
	CHECK(s.e[0].seen == 4213 + AGG_PER_SEC, "expected every verdict seen, got %u",
	      s.e[0].seen);
	CHECK(!memcmp(&s.e[0].key.daddr, k.daddr, sizeof(k.daddr)) && s.e[0].key.dport == 9,
	      "the aggregate names its destination");
	CHECK(s.since == 5 * SEC && s.now == 6 * SEC, "the interval is [init, flush]");
}

/* At or under the limit, every verdict prints and no aggregate comes out. */
static void test_quiet_key_prints_everything(void **state)
{
	static struct agg a;
	struct agg_key k = key(2, 5, 1, 80);
	struct seen s = { 0 };

	(void)state;
	agg_init(&a, AGG_PER_SEC, 0);
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < AGG_PER_SEC; i++)
			CHECK(agg_add(&a, &k), "round %d: verdict %d of %d is printed", round, i,
			      AGG_PER_SEC);
		agg_flush(&a, (round + 1) * SEC, collect, &s);	/* a new second: a new allowance */
	}
	CHECK(s.n == 0, "nothing summed, no aggregate; got %u", s.n);
}

/* Verdict, cause, address, port, family and phase each make a key of their own. */
static void test_each_field_separates_keys(void **state)
{
	static struct agg a;
	const struct agg_key keys[] = {
		key(3, 2, 1, 9), key(2, 2, 1, 9), key(3, 5, 1, 9), key(3, 2, 2, 9),
		key(3, 2, 1, 10),
	};
	const size_t nk = sizeof(keys) / sizeof(keys[0]);
	struct agg_key v6 = key(3, 2, 1, 9), est = key(3, 2, 1, 9), in = key(3, 2, 1, 9);
	struct seen s = { 0 };

	(void)state;
	v6.family = 10;
	est.phase = 1;	/* an established connection's timeout: not an attempt's */
	in.inbound = 1;	/* the same SYNs seen arriving: a key of its own */
	agg_init(&a, 2, 0);
	/* interleaved, as a storm to several places arrives */
	for (int i = 0; i < 5; i++) {
		for (size_t j = 0; j < nk; j++)
			agg_add(&a, &keys[j]);
		agg_add(&a, &v6);
		agg_add(&a, &est);
		agg_add(&a, &in);
	}
	agg_flush(&a, SEC, collect, &s);
	CHECK(s.n == nk + 3, "expected %zu aggregates, got %u", nk + 3, s.n);
	for (unsigned i = 0; i < s.n; i++)
		CHECK(s.e[i].summed == 3 && s.e[i].seen == 5, "key %u: expected 5 seen, 3 summed, "
		      "got %u and %u", i, s.e[i].seen, s.e[i].summed);
	for (size_t j = 0; j < nk; j++)	/* in the order first seen */
		CHECK(s.e[j].key.verdict == keys[j].verdict && s.e[j].key.cause == keys[j].cause &&
		      s.e[j].key.dport == keys[j].dport && s.e[j].key.daddr[3] == keys[j].daddr[3],
		      "aggregate %zu is not the key first seen %zu-th", j, j);
	CHECK(s.e[nk].key.family == 10 && !s.e[nk].key.inbound, "the IPv6 key comes next");
	CHECK(s.e[nk + 1].key.phase == 1 && !s.e[nk + 1].key.inbound && s.e[nk + 1].key.family == 2,
	      "the established key comes next, apart from its attempt twin");
	CHECK(s.e[nk + 2].key.inbound && !s.e[nk + 2].key.phase && s.e[nk + 2].key.family == 2,
	      "the inbound key comes last");
}

/* More keys in a second than the table holds: the ones beyond print, none is lost. */
static void test_too_many_keys_print_rather_than_vanish(void **state)
{
	static struct agg a;
	struct seen s = { 0 };
	unsigned printed = 0, summed = 0, total = 0;

	(void)state;
	agg_init(&a, 1, 0);
	for (int rep = 0; rep < 3; rep++)
		for (unsigned port = 1; port <= AGG_KEYS + 50; port++) {
			struct agg_key k = key(3, 2, 1, port);

			printed += agg_add(&a, &k);
			total++;
		}
	agg_flush(&a, SEC, collect, &s);
	for (unsigned i = 0; i < s.n; i++)
		summed += s.e[i].summed;
	CHECK(s.n == AGG_KEYS, "expected %d keys summed, got %u", AGG_KEYS, s.n);
	CHECK(printed + summed == total, "printed %u + summed %u != %u verdicts", printed, summed,
	      total);
	CHECK(summed == 2 * AGG_KEYS, "each tabled key summed its 2 repeats: %u", summed);
	/* and the next second starts empty */
	s.n = 0;
	agg_flush(&a, 2 * SEC, collect, &s);
	CHECK(s.n == 0, "a flushed second leaves nothing behind: %u", s.n);
}

/* Printed plus summed is every verdict, whatever the mix. */
static void test_printed_plus_summed_is_everything(void **state)
{
	static struct agg a;
	uint32_t rnd = 12345;
	unsigned printed = 0, total = 0, summed = 0;

	(void)state;
	agg_init(&a, AGG_PER_SEC, 0);
	for (int sec = 0; sec < 20; sec++) {
		struct seen s = { 0 };
		unsigned n = (rnd = rnd * 1103515245 + 12345) % 5000;

		for (unsigned i = 0; i < n; i++) {
			struct agg_key k;

			rnd = rnd * 1103515245 + 12345;
			/* 36 keys: a storm to a few places */
			k = key((rnd >> 8) % 3, (rnd >> 12) % 3, (rnd >> 16) % 2, 80 + (rnd >> 20) % 2);
			printed += agg_add(&a, &k);
			total++;
		}
		agg_flush(&a, (sec + 1) * SEC, collect, &s);
		for (unsigned i = 0; i < s.n; i++)
			summed += s.e[i].summed;
	}
	CHECK(total > 10000, "the test makes a storm: %u", total);
	CHECK(printed + summed == total, "printed %u + summed %u != %u", printed, summed, total);
	CHECK(summed > printed, "a storm is mostly summed: %u printed, %u summed", printed, summed);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_storm_prints_the_first_and_sums_the_rest),
		cmocka_unit_test(test_quiet_key_prints_everything),
		cmocka_unit_test(test_each_field_separates_keys),
		cmocka_unit_test(test_too_many_keys_print_rather_than_vanish),
		cmocka_unit_test(test_printed_plus_summed_is_everything),
	};

	return cmocka_run_group_tests_name("aggregate", tests, NULL, NULL);
}
