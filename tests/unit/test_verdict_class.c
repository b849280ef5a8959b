// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * bpf/verdict_class.h against the correlator: the kernel counts an attempt
 * whose record cannot cross the ring by ct_flow_verdict(), and that count
 * is only exact if it is the verdict the correlator would have given the
 * record. Random records (every end, errno, err_soft, flag and duration
 * that matters, and some that do not) through both; then the counting of
 * user/counts.c.
 */
#include <linux/types.h>
#include "corr_fixture.h"
#include "counts.h"
#include "verdict_class.h"

_Static_assert(CT_ECONNRESET == ECONNRESET && CT_ETIMEDOUT == ETIMEDOUT &&
	       CT_ECONNREFUSED == ECONNREFUSED, "verdict_class.h's errno numbers");

static const int errs[] = {
	0, ETIMEDOUT, ECONNREFUSED, ECONNRESET, EHOSTUNREACH, ENETUNREACH, EHOSTDOWN,
	ENONET, EACCES, ENOPROTOOPT, ENETDOWN, EPROTO, EMSGSIZE, EADDRNOTAVAIL, EPIPE, -1,
};
#define NR_ERRS (sizeof(errs) / sizeof(errs[0]))

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint32_t rnd(uint32_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng % n);
}

static struct ct_flow random_flow(unsigned i)
{
	struct ct_flow f = make_flow(rnd(2) ? "127.0.0.1" : "10.0.0.1", 40000 + i % 20000,
				     rnd(2) ? "127.0.0.1" : "10.0.0.2", 80);
	static const uint64_t durations[] = { 0, 2 * MS, 999 * MS, 1000 * MS, 3 * SEC };
	uint8_t flags[] = { CT_F_CONNECT_ERR, CT_F_EVICTED, CT_F_RST_RCVD, CT_F_UNTRACKED,
			    CT_F_LOSSY, CT_F_SIMOPEN };

	f.state = rnd(2) ? CT_TCP_ESTABLISHED : CT_TCP_CLOSE;
	for (unsigned k = 0; k < sizeof(flags); k++)
		if (!rnd(5))
			f.flags |= flags[k];
	if (f.flags & CT_F_CONNECT_ERR)
		f.state = CT_TCP_CLOSE;
	if (!rnd(3))
		f.err = errs[rnd(NR_ERRS)];
	if (!rnd(3))
		f.err_report = errs[rnd(NR_ERRS)];
	if (!rnd(3))
		f.err_soft = errs[rnd(NR_ERRS)];
	if (!rnd(3))
		set_retrans(&f, 1 + rnd(7));
	f.ts_end = f.ts_start + durations[rnd(5)];
	if (f.flags & CT_F_NO_HISTORY)	/* as flow_lost() sends them */
		f.ts_start = f.ts_end;
	return f;
}

static void test_kernel_verdict_is_the_correlators(void **state)
{
	struct fixture *fx = *state;
	unsigned seen[CT_V_MAX] = { 0 };

	for (unsigned i = 0; i < 20000; i++) {
		struct ct_flow f = random_flow(i);
		uint32_t kv = ct_flow_verdict(&f, fx->cfg.slow_ns);

		fx->n = 0;
		assert_int_equal(corr_feed(fx->c, &f, sizeof(f), f.ts_end), 0);
		corr_flush(fx->c);
		assert_int_equal(fx->n, 1);
		CHECK(kv == fx->got[0].verdict, "record %u (state %u flags %#x err %d err_report %d "
		      "err_soft %d syn_retrans %u duration %llu): kernel %s, correlator %s", i,
		      f.state, f.flags, f.err, f.err_report, f.err_soft, f.syn_retrans,
		      (unsigned long long)(f.ts_end - f.ts_start), ct_verdict_name(kv),
		      ct_verdict_name(fx->got[0].verdict));
		seen[kv]++;
	}
	/* the records reached every verdict the kernel can count */
	for (int v = 0; v < CT_KV_MAX; v++)
		CHECK(seen[v] > 0, "no random record was %s", ct_verdict_name(v));
}

static void test_slow_zero_has_no_latency_threshold(void **state)
{
	struct ct_flow f = default_flow();

	(void)state;
	end_established(&f, 5 * SEC);
	assert_int_equal(ct_flow_verdict(&f, 0), CT_KV_OK);
	assert_int_equal(ct_flow_verdict(&f, 1000 * MS), CT_KV_SLOW);
	f.flags |= CT_F_PENDING;
	assert_int_equal(ct_flow_verdict(&f, 0), CT_KV_PENDING);
}

static void test_counts_add_up(void **state)
{
	uint64_t cnt[CT_CNT_MAX] = { 0 }, v[CT_V_MAX];
	struct ct_counts k = { 0 };

	(void)state;
	cnt[CT_CNT_FLOWS] = 100;
	cnt[CT_CNT_FLOW_UNTRACKED] = 3;
	cnt[CT_CNT_CONNECT_FAILED] = 2;
	cnt[CT_CNT_LOST_REFUSED] = 40;
	cnt[CT_CNT_LOST_UNREACHABLE] = 1;
	cnt[CT_CNT_OK_UNSENT] = 20;
	cnt[CT_CNT_RINGBUF_LOST] = 77;	/* evidence too: not an attempt count */
	k.delivered[CT_V_REFUSED] = 30;
	k.delivered[CT_V_UNREACHABLE] = 1;
	k.delivered[CT_V_PENDING] = 13;
	k.dropped[CT_V_REFUSED] = 10;	/* of the delivered: not added again */
	counts_from_kernel(&k, cnt);
	assert_int_equal(k.flows, 105);
	counts_verdicts(&k, v);
	assert_int_equal(v[CT_V_OK], 20);
	assert_int_equal(v[CT_V_REFUSED], 70);
	assert_int_equal(v[CT_V_UNREACHABLE], 2);
	assert_int_equal(v[CT_V_PENDING], 13);
	assert_int_equal(v[CT_V_TIMEOUT], 0);
	assert_int_equal(counts_total(&k), k.flows);
	assert_int_equal(k.lost[CT_V_PENDING], 0);
	assert_true(counts_any(k.lost));
	memset(v, 0, sizeof(v));
	assert_false(counts_any(v));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_kernel_verdict_is_the_correlators, setup,
						teardown),
		cmocka_unit_test(test_slow_zero_has_no_latency_threshold),
		cmocka_unit_test(test_counts_add_up),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
