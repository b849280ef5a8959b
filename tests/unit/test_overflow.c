// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Overflow counts per listener from successive sk_drops readings (never a
 * wrap), checked per namespace against its ListenOverflows and ListenDrops
 * as the verdict stream does (a fake namespace reader stands for nscounters.c).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include <errno.h>
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

/* What overflow_end() reported, copied. */
static struct overflow_report rep[8];
static struct ct_listener rep_l[8];
static size_t nrep;

static void on_report(void *ctx, const struct overflow_report *r)
{
	(void)ctx;
	assert_true(nrep < 8);
	rep_l[nrep] = *r->l;
	rep[nrep] = *r;
	rep[nrep].l = &rep_l[nrep];
	nrep++;
}

/* The report for the listener on port, of the last reading. */
static const struct overflow_report *report_of(__u16 port)
{
	for (size_t i = 0; i < nrep; i++)
		if (rep[i].l->port == port)
			return &rep[i];
	fail_msg("no report for port %u", port);
	return NULL;
}

/* A namespace reader: the increments the test sets, or an error. */
struct fake_ns {
	__u32 netns[2];
	uint64_t ovf[2], drops[2];
	int err[2];
	int calls[2];
	int freed;
};

static int fake_counters(void *ctx, __u32 netns, uint64_t *d_ovf, uint64_t *d_drops)
{
	struct fake_ns *f = ctx;

	for (int i = 0; i < 2; i++) {
		if (f->netns[i] != netns)
			continue;
		f->calls[i]++;
		if (f->err[i])
			return f->err[i];
		*d_ovf = f->ovf[i];
		*d_drops = f->drops[i];
		f->ovf[i] = f->drops[i] = 0;	/* read: the next increments start here */
		return 0;
	}
	fail_msg("counters of an unexpected namespace %u", netns);
	return -ENOENT;
}

static void fake_free(void *ctx)
{
	((struct fake_ns *)ctx)->freed++;
}

/* A table whose namespaces are f (NULL: never read: sk_drops, unchecked). */
static struct overflow_table *table(struct fake_ns *f)
{
	struct overflow_ops ops = { .report = on_report };

	if (f) {
		ops.ns_counters = fake_counters;
		ops.ns_free = fake_free;
		ops.ns_ctx = f;
	}
	nrep = 0;
	return overflow_new(&ops);
}

/* One reading of n listeners at now; the reports land in rep[]. */
static void reading(struct overflow_table *t, uint64_t now, struct ct_listener *l, size_t n)
{
	nrep = 0;
	overflow_begin(t, now);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(overflow_add(t, &l[i]), 0);
	overflow_end(t);
}

static void test_counts_from_when_found_full(void **state)
{
	struct overflow_table *t = table(NULL);
	struct ct_listener l = lst(0x1000, 15, 10);

	(void)state;
	/* found full with sk_drops 10; the first reading says 15: 5 overflows */
	reading(t, 1000, &l, 1);
	assert_int_equal(nrep, 1);
	assert_int_equal(rep[0].overflows, 5);
	assert_int_equal(rep[0].total, 5);

	l.drops = 15;
	reading(t, 2000, &l, 1);
	assert_int_equal(rep[0].overflows, 0);	/* nothing new */

	l.drops = 18;
	reading(t, 3000, &l, 1);
	assert_int_equal(rep[0].overflows, 3);
	assert_int_equal(rep[0].total, 8);
	assert_int_equal(rep[0].since_ns, 2000);	/* since the previous reading */
	overflow_free(t);
}

static void test_closed_listeners_are_forgotten(void **state)
{
	struct overflow_table *t = table(NULL);
	struct ct_listener ab[2] = { lst(0x1000, 3, 0), lst(0x2000, 4, 0) };

	(void)state;
	ab[1].port = 9090;
	reading(t, 1000, ab, 2);
	assert_int_equal(overflow_count(t), 2);
	reading(t, 2000, &ab[1], 1);	/* a is no longer listed: it closed */
	assert_int_equal(overflow_count(t), 1);
	/* a new listener at a's old address starts from its own baseline */
	ab[0].drops = 7;
	ab[0].drops_at_full = 6;
	reading(t, 3000, ab, 1);
	assert_int_equal(rep[0].overflows, 1);
	assert_int_equal(rep[0].total, 1);
	overflow_free(t);
}

/* A listener closed without conntrace noticing, and another socket took the
 * same pointer: its sk_drops is lower. No wrap to 4 billion: 0, new baseline. */
static void test_drops_decrease_is_a_new_socket(void **state)
{
	struct overflow_table *t = table(NULL);
	struct ct_listener l = lst(0x1000, 40, 30);

	(void)state;
	reading(t, 1000, &l, 1);
	assert_int_equal(rep[0].overflows, 10);

	l.drops = 2;
	reading(t, 2000, &l, 1);
	assert_int_equal(rep[0].overflows, 0);
	assert_int_equal(rep[0].total, 0);	/* the new socket's count starts here */

	l.drops = 5;
	reading(t, 3000, &l, 1);
	assert_int_equal(rep[0].overflows, 3);
	assert_int_equal(rep[0].total, 3);
	assert_int_equal(rep[0].since_ns, 2000);
	overflow_free(t);
}

/* The kernel's "found full" mark left by an earlier socket is above the drops. */
static void test_stale_mark_counts_nothing(void **state)
{
	struct overflow_table *t = table(NULL);
	struct ct_listener l = lst(0x1000, 2, UINT32_MAX - 2);

	(void)state;
	reading(t, 1000, &l, 1);
	assert_int_equal(rep[0].overflows, 0);
	assert_int_equal(rep[0].total, 0);
	l.drops = 4;
	reading(t, 2000, &l, 1);
	assert_int_equal(rep[0].overflows, 2);
	overflow_free(t);
}

/* The same pointer, another listener (port): another entry, its own baseline. */
static void test_reused_pointer_other_listener(void **state)
{
	struct overflow_table *t = table(NULL);
	struct ct_listener ab[2] = { lst(0x1000, 100, 90), lst(0x1000, 3, 3) };

	(void)state;
	ab[1].port = 9090;
	reading(t, 1000, ab, 2);
	assert_int_equal(report_of(8080)->overflows, 10);
	assert_int_equal(report_of(9090)->overflows, 0);
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

/* No namespace counters to check against: sk_drops, an upper bound. */
static void test_unchecked_is_sk_drops(void **state)
{
	struct overflow_table *t = table(NULL);
	struct ct_listener l = lst(0x1000, 1, 0);

	(void)state;
	reading(t, 1000, &l, 1);
	assert_int_equal(rep[0].overflows, 1);
	assert_int_equal(rep[0].method, OVERFLOW_METHOD_SK_DROPS);
	overflow_free(t);
}

/* Accept-queue overflows only: ListenOverflows moved with ListenDrops, so
 * sk_drops is exact (issue 16: the verdict stream by the one definition). */
static void test_overflows_only_exact(void **state)
{
	struct fake_ns f = { .netns = { 7 }, .ovf = { 5 }, .drops = { 5 } };
	struct overflow_table *t = table(&f);
	struct ct_listener l = lst(0x1000, 15, 10);

	(void)state;
	l.netns = 7;
	reading(t, 1000, &l, 1);
	assert_int_equal(f.calls[0], 1);
	assert_int_equal(rep[0].overflows, 5);
	assert_int_equal(rep[0].total, 5);
	assert_int_equal(rep[0].method, OVERFLOW_METHOD_SK_DROPS);
	overflow_free(t);
	assert_int_equal(f.freed, 1);	/* the table owns the reader */
}

/* SYNs dropped on a full SYN queue (cookies off) move sk_drops and
 * ListenDrops, not ListenOverflows: they are no listen overflows. */
static void test_syn_queue_drops_are_not_overflows(void **state)
{
	struct fake_ns f = { .netns = { 7 } };
	struct overflow_table *t = table(&f);
	struct ct_listener l = lst(0x1000, 12, 12);

	(void)state;
	l.netns = 7;
	reading(t, 1000, &l, 1);	/* found full, nothing dropped yet */
	assert_int_equal(f.calls[0], 0);	/* nothing to check: not read */
	l.drops = 20;
	f.drops[0] = 8;
	reading(t, 2000, &l, 1);
	assert_int_equal(f.calls[0], 1);
	assert_int_equal(nrep, 1);
	assert_int_equal(rep[0].overflows, 0);
	assert_int_equal(rep[0].total, 0);
	overflow_free(t);
}

/* Both in one interval: the namespace's overflows, not the listener's drops. */
static void test_mixed_drops_attributed(void **state)
{
	struct fake_ns f = { .netns = { 7 }, .ovf = { 3 }, .drops = { 8 } };
	struct overflow_table *t = table(&f);
	struct ct_listener l = lst(0x1000, 18, 10);

	(void)state;
	l.netns = 7;
	reading(t, 1000, &l, 1);
	assert_int_equal(rep[0].overflows, 3);
	assert_int_equal(rep[0].method, OVERFLOW_METHOD_ATTRIBUTED);
	overflow_free(t);
}

/* Two listeners of a namespace: the overflows go to the one seen full. */
static void test_two_listeners_the_full_one_overflows(void **state)
{
	struct fake_ns f = { .netns = { 7 } };
	struct overflow_table *t = table(&f);
	struct ct_listener ab[2] = { lst(0x1000, 0, 0), lst(0x2000, 0, 0) };

	(void)state;
	ab[1].port = 9090;
	ab[0].netns = ab[1].netns = 7;
	reading(t, 1000, ab, 2);
	/* a is full now; b drained (its drops: its SYN queue) */
	ab[0].drops = 4;
	ab[0].queue = 3;
	ab[0].queue_max = 2;
	ab[1].drops = 6;
	f.ovf[0] = 4;
	f.drops[0] = 10;
	reading(t, 2000, ab, 2);
	assert_int_equal(f.calls[0], 1);	/* once for the namespace */
	assert_int_equal(report_of(8080)->overflows, 4);
	assert_int_equal(report_of(9090)->overflows, 0);
	assert_int_equal(report_of(8080)->method, OVERFLOW_METHOD_ATTRIBUTED);
	overflow_free(t);
}

/* Each namespace by its own counters; one that cannot be read: sk_drops. */
static void test_namespaces_apart(void **state)
{
	struct fake_ns f = { .netns = { 7, 8 }, .ovf = { 0, 2 }, .drops = { 5, 2 },
			     .err = { -EPERM, 0 } };
	struct overflow_table *t = table(&f);
	struct ct_listener ab[2] = { lst(0x1000, 5, 0), lst(0x2000, 2, 0) };

	(void)state;
	ab[1].port = 9090;
	ab[0].netns = 7;
	ab[1].netns = 8;
	reading(t, 1000, ab, 2);
	assert_int_equal(f.calls[0], 1);
	assert_int_equal(f.calls[1], 1);
	assert_int_equal(report_of(8080)->overflows, 5);	/* unchecked: upper bound */
	assert_int_equal(report_of(8080)->method, OVERFLOW_METHOD_SK_DROPS);
	assert_int_equal(report_of(9090)->overflows, 2);
	assert_int_equal(report_of(9090)->method, OVERFLOW_METHOD_SK_DROPS);
	overflow_free(t);
}

/*
 * An overflow between the kernel's listing and the counters' read shows in
 * the namespace one reading before the listener's sk_drops: carried to the
 * next reading, not lost; and only to the next one.
 */
static void test_skew_carried_one_reading(void **state)
{
	struct fake_ns f = { .netns = { 7 }, .ovf = { 3 }, .drops = { 3 } };
	struct overflow_table *t = table(&f);
	struct ct_listener l = lst(0x1000, 2, 0);

	(void)state;
	l.netns = 7;
	reading(t, 1000, &l, 1);
	assert_int_equal(rep[0].overflows, 2);
	assert_int_equal(rep[0].method, OVERFLOW_METHOD_SK_DROPS);
	l.drops = 3;			/* the third, one reading late */
	reading(t, 2000, &l, 1);
	assert_int_equal(rep[0].overflows, 1);
	assert_int_equal(rep[0].total, 3);

	f.ovf[0] = f.drops[0] = 2;	/* again, 1 of 2 in the listener's drops */
	l.drops = 4;
	reading(t, 3000, &l, 1);
	assert_int_equal(rep[0].overflows, 1);
	reading(t, 4000, &l, 1);	/* a reading without drops: the other one */
	l.drops = 5;			/* was no overflow of this listener */
	reading(t, 5000, &l, 1);
	assert_int_equal(rep[0].overflows, 0);
	assert_int_equal(rep[0].total, 4);
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
		cmocka_unit_test(test_unchecked_is_sk_drops),
		cmocka_unit_test(test_overflows_only_exact),
		cmocka_unit_test(test_syn_queue_drops_are_not_overflows),
		cmocka_unit_test(test_mixed_drops_attributed),
		cmocka_unit_test(test_two_listeners_the_full_one_overflows),
		cmocka_unit_test(test_namespaces_apart),
		cmocka_unit_test(test_skew_carried_one_reading),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
