// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Listen overflows: the definition (overflow.h) and the verdict stream's table. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "overflow.h"

const char *overflow_method_name(enum overflow_method m)
{
	switch (m) {
	case OVERFLOW_METHOD_NONE:       return "sk_drops";
	case OVERFLOW_METHOD_SK_DROPS:   return "sk_drops";
	case OVERFLOW_METHOD_ATTRIBUTED: return "attributed";
	case OVERFLOW_METHOD_FENTRY:     return "fentry";
	}
	return "?";
}

uint64_t overflow_delta(uint64_t before, uint64_t now)
{
	/* never subtract into a wrap: a smaller value is another socket's */
	return now >= before ? now - before : 0;
}

/*
 * The weaker method wins: ATTRIBUTED over the exact ones; among those,
 * SK_DROPS over FENTRY (a total that includes drops from before fentry was
 * attached says so), and NONE only when nothing else contributed.
 */
enum overflow_method overflow_method_merge(enum overflow_method a, enum overflow_method b)
{
	if (a == OVERFLOW_METHOD_ATTRIBUTED || b == OVERFLOW_METHOD_ATTRIBUTED)
		return OVERFLOW_METHOD_ATTRIBUTED;
	if (a == OVERFLOW_METHOD_SK_DROPS || b == OVERFLOW_METHOD_SK_DROPS)
		return OVERFLOW_METHOD_SK_DROPS;
	if (a == OVERFLOW_METHOD_FENTRY || b == OVERFLOW_METHOD_FENTRY)
		return OVERFLOW_METHOD_FENTRY;
	return OVERFLOW_METHOD_NONE;
}

enum overflow_method overflow_attribute(uint64_t d_overflows, uint64_t d_drops,
					struct overflow_share *s, size_t n)
{
	uint64_t sum = 0, cand_sum = 0, budget, given = 0;
	bool any_full = false;
	size_t i;

	for (i = 0; i < n; i++) {
		s[i].overflows = 0;
		sum += s[i].drops;
		if (s[i].was_full && s[i].drops)
			any_full = true;
	}
	if (d_overflows == 0)
		return OVERFLOW_METHOD_NONE;
	/* Every listen drop was an overflow and no listener dropped for any
	 * other reason (its sk_drops sum fits in ListenDrops): exact. */
	if (d_overflows == d_drops && sum <= d_drops) {
		for (i = 0; i < n; i++)
			s[i].overflows = s[i].drops;
		return OVERFLOW_METHOD_SK_DROPS;
	}

	/* An overflow needs a full queue: prefer listeners seen full. */
#define CANDIDATE(x) ((x).drops && ((x).was_full || !any_full))
	for (i = 0; i < n; i++)
		if (CANDIDATE(s[i]))
			cand_sum += s[i].drops;
	if (cand_sum == 0)
		return OVERFLOW_METHOD_ATTRIBUTED;
	budget = d_overflows < cand_sum ? d_overflows : cand_sum;
	for (i = 0; i < n; i++) {
		if (!CANDIDATE(s[i]))
			continue;
		s[i].overflows = (uint64_t)((unsigned __int128)budget * s[i].drops / cand_sum);
		given += s[i].overflows;
	}
	/* Rounding leaves fewer than n: one each to the listeners with most room. */
	while (given < budget) {
		size_t best = n;

		for (i = 0; i < n; i++) {
			if (!CANDIDATE(s[i]) || s[i].overflows >= s[i].drops)
				continue;
			if (best == n || s[i].drops - s[i].overflows >
					 s[best].drops - s[best].overflows)
				best = i;
		}
		if (best == n)
			break;
		s[best].overflows++;
		given++;
	}
#undef CANDIDATE
	return OVERFLOW_METHOD_ATTRIBUTED;
}


struct entry {
	struct ct_listener id;	/* sk, netns, family, addr, port: who it is */
	__u32 drops;		/* sk_drops at the previous reading */
	uint64_t total;
	uint64_t seen;		/* the reading that last listed it */
	uint64_t read_ns;	/* when */
	/* this reading */
	struct ct_listener cur;
	uint64_t delta;		/* sk_drops increment */
	uint64_t since_ns;
	bool fresh;		/* first listed: found full since the previous reading */
	bool done;		/* reported */
};

/* A namespace's counts that no listener's sk_drops matched yet. */
struct ns_pending {
	__u32 netns;
	uint64_t reading;	/* the reading that left them: good for the next one only */
	uint64_t overflows, drops;
};

struct overflow_table {
	struct overflow_ops ops;
	struct entry *v;
	size_t n, cap;
	struct ns_pending *ns;
	size_t ns_n, ns_cap;
	struct overflow_share *sh;	/* scratch for one namespace */
	size_t *idx;
	size_t sh_cap;
	uint64_t reading;
	uint64_t now, prev_now;
};

/* A socket pointer is reused once freed: compare what a listener is, too. */
static bool same_listener(const struct ct_listener *a, const struct ct_listener *b)
{
	return a->sk == b->sk && a->netns == b->netns && a->family == b->family &&
	       a->port == b->port && !memcmp(a->addr, b->addr, sizeof(a->addr));
}

struct overflow_table *overflow_new(const struct overflow_ops *ops)
{
	struct overflow_table *t = calloc(1, sizeof(struct overflow_table));

	if (!t) {
		if (ops && ops->ns_free)
			ops->ns_free(ops->ns_ctx);
		return NULL;
	}
	if (ops)
		t->ops = *ops;
	return t;
}

void overflow_free(struct overflow_table *t)
{
	if (!t)
		return;
	if (t->ops.ns_free)
		t->ops.ns_free(t->ops.ns_ctx);
	free(t->v);
	free(t->ns);
	free(t->sh);
	free(t->idx);
	free(t);
}

void overflow_begin(struct overflow_table *t, uint64_t now)
{
	t->reading++;
	t->prev_now = t->now;
	t->now = now;
}

/* Grows v (of *cap elements of sz bytes) to hold n + 1. */
static int grow(void **v, size_t *cap, size_t n, size_t sz)
{
	size_t c = *cap ? *cap * 2 : 16;
	void *p;

	if (n < *cap)
		return 0;
	p = realloc(*v, c * sz);
	if (!p)
		return -ENOMEM;
	*v = p;
	*cap = c;
	return 0;
}

static struct entry *find_or_add(struct overflow_table *t, const struct ct_listener *l,
				 bool *fresh)
{
	struct entry *e;

	*fresh = false;
	for (size_t i = 0; i < t->n; i++) {
		if (!same_listener(&t->v[i].id, l))
			continue;
		/* fewer drops than last time: a new socket behind the same key */
		if (l->drops < t->v[i].drops) {
			t->v[i].drops = l->drops;
			t->v[i].total = 0;
			t->v[i].read_ns = t->now;
		}
		return &t->v[i];
	}
	if (grow((void **)&t->v, &t->cap, t->n, sizeof(*t->v)))
		return NULL;
	e = &t->v[t->n++];
	memset(e, 0, sizeof(*e));
	e->id = *l;
	/* first listed: count from when the kernel found it full, unless that
	 * mark belongs to an earlier socket (it is above today's drops) */
	e->drops = l->drops_at_full <= l->drops ? l->drops_at_full : l->drops;
	e->read_ns = t->prev_now ? t->prev_now : t->now;
	*fresh = true;
	return e;
}

int overflow_add(struct overflow_table *t, const struct ct_listener *l)
{
	bool fresh;
	struct entry *e = find_or_add(t, l, &fresh);

	if (!e)
		return -ENOMEM;
	if (e->seen == t->reading)
		return 0;	/* listed twice in one reading: counted once */
	e->seen = t->reading;
	e->cur = *l;
	e->delta = overflow_delta(e->drops, l->drops);
	e->since_ns = e->read_ns;
	e->fresh = fresh;
	e->done = false;
	e->drops = l->drops;
	e->read_ns = t->now;
	return 0;
}

static struct ns_pending *ns_pending(struct overflow_table *t, __u32 netns)
{
	struct ns_pending *p;

	for (size_t i = 0; i < t->ns_n; i++)
		if (t->ns[i].netns == netns)
			return &t->ns[i];
	if (grow((void **)&t->ns, &t->ns_cap, t->ns_n, sizeof(*t->ns)))
		return NULL;
	p = &t->ns[t->ns_n++];
	memset(p, 0, sizeof(*p));
	p->netns = netns;
	return p;
}

/*
 * The overflows of one namespace's listeners (sh[], sum: their sk_drops
 * increments) by overflow_attribute(), against the namespace's counters
 * plus what the previous reading left unmatched.
 */
static enum overflow_method count_netns(struct overflow_table *t, __u32 netns,
					struct overflow_share *sh, size_t n, uint64_t sum)
{
	uint64_t d_ovf, d_drops, given = 0;
	enum overflow_method m;
	struct ns_pending *p;
	size_t i;

	if (!sum)	/* nothing dropped: nothing to ask the namespace */
		return overflow_attribute(0, 0, sh, n);
	if (!t->ops.ns_counters || t->ops.ns_counters(t->ops.ns_ctx, netns, &d_ovf, &d_drops)) {
		for (i = 0; i < n; i++)
			sh[i].overflows = sh[i].drops;	/* unchecked: an upper bound */
		return OVERFLOW_METHOD_SK_DROPS;
	}
	p = ns_pending(t, netns);
	if (p && p->reading + 1 == t->reading) {
		d_ovf += p->overflows;
		d_drops += p->drops;
	}
	m = overflow_attribute(d_ovf, d_drops, sh, n);
	for (i = 0; i < n; i++)
		given += sh[i].overflows;
	if (p) {
		p->reading = t->reading;
		p->overflows = d_ovf - given;
		p->drops = d_drops - (sum < d_drops ? sum : d_drops);
	}
	return m;
}

/* Reports every listener of the reading in namespace netns. */
static void end_netns(struct overflow_table *t, __u32 netns)
{
	enum overflow_method m;
	uint64_t sum = 0;
	size_t i, k = 0;

	for (i = 0; i < t->n; i++) {
		struct entry *e = &t->v[i];

		if (e->seen != t->reading || e->done || e->id.netns != netns)
			continue;
		if (k == t->sh_cap) {
			size_t c = t->sh_cap ? t->sh_cap * 2 : 16;
			struct overflow_share *sh = realloc(t->sh, c * sizeof(*sh));
			size_t *idx = sh ? realloc(t->idx, c * sizeof(*idx)) : NULL;

			if (sh)
				t->sh = sh;
			if (!idx)
				break;	/* out of memory: the rest wait for the next reading */
			t->idx = idx;
			t->sh_cap = c;
		}
		t->idx[k] = i;
		t->sh[k].drops = e->delta;
		/* found full since the last reading, or full now */
		t->sh[k].was_full = e->fresh || e->cur.queue > e->cur.queue_max;
		sum += e->delta;
		k++;
	}
	m = count_netns(t, netns, t->sh, k, sum);
	for (i = 0; i < k; i++) {
		struct entry *e = &t->v[t->idx[i]];
		struct overflow_report r = {
			.l = &e->cur,
			.overflows = (uint32_t)t->sh[i].overflows,
			.since_ns = e->since_ns,
			.method = m,
		};

		e->done = true;
		e->total += r.overflows;
		r.total = e->total;
		if (t->ops.report)
			t->ops.report(t->ops.report_ctx, &r);
	}
}

void overflow_end(struct overflow_table *t)
{
	size_t i, k = 0;

	for (i = 0; i < t->n; i++)
		if (t->v[i].seen == t->reading && !t->v[i].done)
			end_netns(t, t->v[i].id.netns);
	for (i = 0; i < t->n; i++)
		if (t->v[i].seen == t->reading)
			t->v[k++] = t->v[i];
	t->n = k;
	/* what a namespace left unmatched is good for one more reading only */
	for (i = 0, k = 0; i < t->ns_n; i++)
		if (t->ns[i].reading == t->reading)
			t->ns[k++] = t->ns[i];
	t->ns_n = k;
}

size_t overflow_count(const struct overflow_table *t)
{
	return t->n;
}
