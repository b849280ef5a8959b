// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Overflow counts per listener from successive sk_drops readings. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include "overflow.h"

static struct ct_listener lst(__u64 sk, __u32 drops, __u32 at_full)
{
	struct ct_listener l;

	memset(&l, 0, sizeof(l));
	l.sk = sk;
	l.family = CT_AF_INET;
	l.port = 8080;
	l.drops = drops;
	l.drops_at_full = at_full;
	return l;
}

static void test_counts_from_when_found_full(void **state)
{
	struct overflow_table *t = overflow_new();
	struct ct_listener l = lst(0x1000, 15, 10);
	struct overflow_report r;

	(void)state;
	overflow_begin(t, 1000);
	/* found full with sk_drops 10; the first reading says 15: 5 overflows */
	assert_true(overflow_update(t, &l, &r));
	assert_int_equal(r.overflows, 5);
	assert_int_equal(r.total, 5);
	overflow_end(t);

	overflow_begin(t, 2000);
	l.drops = 15;
	assert_false(overflow_update(t, &l, &r));	/* nothing new: no report */
	assert_int_equal(r.overflows, 0);
	overflow_end(t);

	overflow_begin(t, 3000);
	l.drops = 18;
	assert_true(overflow_update(t, &l, &r));
	assert_int_equal(r.overflows, 3);
	assert_int_equal(r.total, 8);
	assert_int_equal(r.since_ns, 2000);	/* since the previous reading */
	overflow_end(t);
	overflow_free(t);
}

static void test_closed_listeners_are_forgotten(void **state)
{
	struct overflow_table *t = overflow_new();
	struct ct_listener a = lst(0x1000, 3, 0), b = lst(0x2000, 4, 0);
	struct overflow_report r;

	(void)state;
	overflow_begin(t, 1000);
	overflow_update(t, &a, &r);
	overflow_update(t, &b, &r);
	overflow_end(t);
	assert_int_equal(overflow_count(t), 2);
	overflow_begin(t, 2000);
	overflow_update(t, &b, &r);	/* a is no longer listed: it closed */
	overflow_end(t);
	assert_int_equal(overflow_count(t), 1);
	/* a new listener at a's old address starts from its own baseline */
	a.drops = 7;
	a.drops_at_full = 6;
	overflow_begin(t, 3000);
	assert_true(overflow_update(t, &a, &r));
	assert_int_equal(r.overflows, 1);
	assert_int_equal(r.total, 1);
	overflow_end(t);
	overflow_free(t);
}

static void test_counter_wrap(void **state)
{
	struct overflow_table *t = overflow_new();
	struct ct_listener l = lst(0x1000, 2, UINT32_MAX - 2);
	struct overflow_report r;

	(void)state;
	overflow_begin(t, 1000);
	assert_true(overflow_update(t, &l, &r));
	assert_int_equal(r.overflows, 5);	/* UINT32_MAX-2 -> 2 wraps after 5 */
	overflow_end(t);
	overflow_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counts_from_when_found_full),
		cmocka_unit_test(test_closed_listeners_are_forgotten),
		cmocka_unit_test(test_counter_wrap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
