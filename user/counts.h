/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Every attempt by its verdict, wherever it was counted (issue 11): the
 * verdicts the correlator gave (written, or dropped because the output
 * buffer was full), and those the kernel counted because the record never
 * crossed the ring: the ring had no room (by the verdict the correlator
 * would have given it, bpf/verdict_class.h), or an OK flow was only counted
 * (not sent without -a). Pure: unit-tested in tests/unit/test_counts.c.
 *
 * The identity the summary carries: flows = sum of verdicts (pending
 * included), where a verdict is delivered, dropped, lost or unsent. It is
 * exact unless flows were evicted from the flow table, the table had no room
 * (flow_table_full) or the kernel skipped program runs (missed_events).
 */
#ifndef CONNTRACE_COUNTS_H
#define CONNTRACE_COUNTS_H

#include <linux/types.h>
#include <stdint.h>
#include "conntrace.h"
#include "correlate.h"

struct ct_counts {
	uint64_t delivered[CT_V_MAX];	/* verdicts from the correlator, after -p/--port */
	uint64_t dropped[CT_V_MAX];	/* ... of which not written: the --buffer was full */
	uint64_t lost[CT_V_MAX];	/* flow records the ring had no room for (kernel) */
	uint64_t ok_unsent;		/* OK attempts only counted in the kernel */
	uint64_t flows;			/* attempts the kernel saw */
};

/* Takes the kernel's share from its summed counters. */
void counts_from_kernel(struct ct_counts *k, const uint64_t cnt[CT_CNT_MAX]);
/* Every attempt by verdict: delivered + lost (+ ok_unsent for ok). */
void counts_verdicts(const struct ct_counts *k, uint64_t out[CT_V_MAX]);
/* The sum of counts_verdicts(): equals k->flows when nothing was evicted. */
uint64_t counts_total(const struct ct_counts *k);
/* Whether any of v[0..CT_V_MAX) is not zero. */
bool counts_any(const uint64_t v[CT_V_MAX]);

#endif
