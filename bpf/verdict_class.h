/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The verdict of a finished attempt from its own record, for the kernel side
 * to count an attempt whose record does not cross the ring (the ring was
 * full, or an OK flow is only counted). Included by BPF (after vmlinux.h)
 * and by user space (after conntrace.h); fixed-width types only.
 *
 * user/classify.c decides the verdict from the same record fields only
 * (end state, err or err_report, err_soft, syn_retrans, the duration against
 * --slow, simultaneous open): the evidence matched later only ever decides
 * the cause. So this gives the very verdict the correlator would have given;
 * tests/unit/test_verdict_class.c holds the two together on random records.
 */
#ifndef CONNTRACE_VERDICT_CLASS_H
#define CONNTRACE_VERDICT_CLASS_H

/* Linux's errno numbers (asm-generic, x86, arm): BPF programs have no errno.h. */
#define CT_ECONNRESET		104
#define CT_ETIMEDOUT		110
#define CT_ECONNREFUSED		111

/* enum ct_verdict's numbers (user/correlate.h), which BPF does not include. */
#define CT_KV_OK		0
#define CT_KV_SLOW		1
#define CT_KV_TIMEOUT		2
#define CT_KV_REFUSED		3
#define CT_KV_UNREACHABLE	4
#define CT_KV_ABANDONED		5
#define CT_KV_PENDING		6

static inline __attribute__((always_inline)) __u32
ct_flow_verdict(const struct ct_flow *f, __u64 slow_ns)
{
	__s32 err = f->err ? f->err : f->err_report;

	if (f->flags & CT_F_PENDING)
		return CT_KV_PENDING;
	if (f->flags & CT_F_CONNECT_ERR)
		return CT_KV_UNREACHABLE;
	if (f->state == CT_TCP_ESTABLISHED) {
		if (f->flags & CT_F_SIMOPEN)
			return CT_KV_OK;
		if (f->syn_retrans)
			return CT_KV_SLOW;
		/* no history: the start is unknown, so is the duration */
		if (slow_ns && !(f->flags & CT_F_NO_HISTORY) && f->ts_end >= f->ts_start &&
		    f->ts_end - f->ts_start >= slow_ns)
			return CT_KV_SLOW;
		return CT_KV_OK;
	}
	if (!err) {
		/* closed without an error: abandoned, unless an ICMP error said why */
		if (f->err_soft == CT_ECONNREFUSED)
			return CT_KV_REFUSED;
		return f->err_soft > 0 ? CT_KV_UNREACHABLE : CT_KV_ABANDONED;
	}
	if (err == CT_ETIMEDOUT)
		return CT_KV_TIMEOUT;
	if (err == CT_ECONNREFUSED || err == CT_ECONNRESET)
		return CT_KV_REFUSED;
	return CT_KV_UNREACHABLE;	/* an ICMP error, a link down, or unknown */
}

#endif /* CONNTRACE_VERDICT_CLASS_H */
