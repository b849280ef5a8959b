// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Attempts by verdict, delivered or only counted (see counts.h). */
#include "counts.h"
#include "verdict_class.h"

/* the kernel counts by enum ct_verdict's numbers, which it cannot include */
_Static_assert(CT_KV_OK == CT_V_OK && CT_KV_SLOW == CT_V_SLOW &&
	       CT_KV_TIMEOUT == CT_V_TIMEOUT && CT_KV_REFUSED == CT_V_REFUSED &&
	       CT_KV_UNREACHABLE == CT_V_UNREACHABLE && CT_KV_ABANDONED == CT_V_ABANDONED &&
	       CT_KV_PENDING == CT_V_PENDING && CT_KV_MAX == CT_V_PENDING,
	       "bpf/verdict_class.h and enum ct_verdict disagree");
_Static_assert(CT_CNT_LOST_ABANDONED == CT_CNT_LOST_BY_VERDICT + CT_V_ABANDONED,
	       "CT_CNT_LOST_BY_VERDICT does not span the kernel's verdicts");

void counts_from_kernel(struct ct_counts *k, const uint64_t cnt[CT_CNT_MAX])
{
	for (int v = 0; v < CT_V_MAX; v++)
		k->lost[v] = v < CT_KV_MAX ? cnt[CT_CNT_LOST_BY_VERDICT + v] : 0;
	k->ok_unsent = cnt[CT_CNT_OK_UNSENT];
	/* started under conntrace, or only seen ending: before it, or connect() failing */
	k->flows = cnt[CT_CNT_FLOWS] + cnt[CT_CNT_FLOW_UNTRACKED] + cnt[CT_CNT_CONNECT_FAILED];
}

void counts_verdicts(const struct ct_counts *k, uint64_t out[CT_V_MAX])
{
	for (int v = 0; v < CT_V_MAX; v++)
		out[v] = k->delivered[v] + k->lost[v];
	out[CT_V_OK] += k->ok_unsent;
}

uint64_t counts_total(const struct ct_counts *k)
{
	uint64_t v[CT_V_MAX], sum = 0;

	counts_verdicts(k, v);
	for (int i = 0; i < CT_V_MAX; i++)
		sum += v[i];
	return sum;
}

bool counts_any(const uint64_t v[CT_V_MAX])
{
	for (int i = 0; i < CT_V_MAX; i++)
		if (v[i])
			return true;
	return false;
}
