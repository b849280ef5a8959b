// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Overflow counts per listener from successive sk_drops readings: never a wrap. */
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

/* A listener closed without conntrace noticing, and another socket took the
 * same pointer: its sk_drops is lower. No wrap to 4 billion: 0, new baseline. */
static void test_drops_decrease_is_a_new_socket(void **state)
{
	struct overflow_table *t = overflow_new();
	struct ct_listener l = lst(0x1000, 40, 30);
	struct overflow_report r;

	(void)state;
	overflow_begin(t, 1000);
	assert_true(overflow_update(t, &l, &r));
	assert_int_equal(r.overflows, 10);
	overflow_end(t);

	overflow_begin(t, 2000);
	l.drops = 2;
	assert_false(overflow_update(t, &l, &r));
	assert_int_equal(r.overflows, 0);
	assert_int_equal(r.total, 0);	/* the new socket's count starts here */
	overflow_end(t);

	overflow_begin(t, 3000);
	l.drops = 5;
	assert_true(overflow_update(t, &l, &r));
	assert_int_equal(r.overflows, 3);
	assert_int_equal(r.total, 3);
	assert_int_equal(r.since_ns, 2000);
	overflow_end(t);
	overflow_free(t);
}

/* The kernel's "found full" mark left by an earlier socket is above the drops. */
static void test_stale_mark_counts_nothing(void **state)
{
	struct overflow_table *t = overflow_new();
	struct ct_listener l = lst(0x1000, 2, UINT32_MAX - 2);
	struct overflow_report r;

	(void)state;
	overflow_begin(t, 1000);
	assert_false(overflow_update(t, &l, &r));
	assert_int_equal(r.overflows, 0);
	assert_int_equal(r.total, 0);
	overflow_end(t);
	overflow_begin(t, 2000);
	l.drops = 4;
	assert_true(overflow_update(t, &l, &r));
	assert_int_equal(r.overflows, 2);
	overflow_end(t);
	overflow_free(t);
}

/* The same pointer, another listener (port): another entry, its own baseline. */
static void test_reused_pointer_other_listener(void **state)
{
	struct overflow_table *t = overflow_new();
	struct ct_listener a = lst(0x1000, 100, 90), b = lst(0x1000, 3, 3);
	struct overflow_report r;

	(void)state;
	b.port = 9090;
	overflow_begin(t, 1000);
	assert_true(overflow_update(t, &a, &r));
	assert_int_equal(r.overflows, 10);
	assert_false(overflow_update(t, &b, &r));
	assert_int_equal(r.overflows, 0);
	overflow_end(t);
	assert_int_equal(overflow_count(t), 2);
	overflow_free(t);
}

static void test_delta_and_method_names(void **state)
{
	(void)state;
	assert_int_equal(overflow_delta(5, 8), 3);
	assert_int_equal(overflow_delta(8, 5), 0);
	assert_int_equal(overflow_delta(UINT32_MAX, 0), 0);
	assert_true(overflow_delta(0, UINT64_MAX) == UINT64_MAX);
	assert_string_equal(overflow_method_name(OVERFLOW_METHOD_FENTRY), "fentry");
	assert_string_equal(overflow_method_name(OVERFLOW_METHOD_SK_DROPS), "sk_drops");
	assert_string_equal(overflow_method_name(OVERFLOW_METHOD_NONE), "sk_drops");
	assert_string_equal(overflow_method_name(OVERFLOW_METHOD_ATTRIBUTED), "attributed");
}

/* The verdict stream states what its count rests on. */
static void test_report_states_the_method(void **state)
{
	struct overflow_table *t = overflow_new();
	struct ct_listener l = lst(0x1000, 1, 0);
	struct overflow_report r;

	(void)state;
	overflow_begin(t, 1000);
	overflow_update(t, &l, &r);
	assert_int_equal(r.method, OVERFLOW_METHOD_SK_DROPS);
	overflow_end(t);
	overflow_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counts_from_when_found_full),
		cmocka_unit_test(test_closed_listeners_are_forgotten),
		cmocka_unit_test(test_drops_decrease_is_a_new_socket),
		cmocka_unit_test(test_stale_mark_counts_nothing),
		cmocka_unit_test(test_reused_pointer_other_listener),
		cmocka_unit_test(test_delta_and_method_names),
		cmocka_unit_test(test_report_states_the_method),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
