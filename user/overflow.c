// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Listen overflows: the definition (overflow.h) and the verdict stream's table. */
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
};

struct overflow_table {
	struct entry *v;
	size_t n, cap;
	uint64_t reading;
	uint64_t now, prev_now;
};

/* A socket pointer is reused once freed: compare what a listener is, too. */
static bool same_listener(const struct ct_listener *a, const struct ct_listener *b)
{
	return a->sk == b->sk && a->netns == b->netns && a->family == b->family &&
	       a->port == b->port && !memcmp(a->addr, b->addr, sizeof(a->addr));
}

struct overflow_table *overflow_new(void)
{
	return calloc(1, sizeof(struct overflow_table));
}

void overflow_free(struct overflow_table *t)
{
	if (t)
		free(t->v);
	free(t);
}

void overflow_begin(struct overflow_table *t, uint64_t now)
{
	t->reading++;
	t->prev_now = t->now;
	t->now = now;
}

static struct entry *find_or_add(struct overflow_table *t, const struct ct_listener *l)
{
	struct entry *e;

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
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 64;
		struct entry *v = realloc(t->v, cap * sizeof(*v));

		if (!v)
			return NULL;
		t->v = v;
		t->cap = cap;
	}
	e = &t->v[t->n++];
	memset(e, 0, sizeof(*e));
	e->id = *l;
	/* first listed: count from when the kernel found it full, unless that
	 * mark belongs to an earlier socket (it is above today's drops) */
	e->drops = l->drops_at_full <= l->drops ? l->drops_at_full : l->drops;
	e->read_ns = t->prev_now ? t->prev_now : t->now;
	return e;
}

bool overflow_update(struct overflow_table *t, const struct ct_listener *l,
		     struct overflow_report *r)
{
	struct entry *e = find_or_add(t, l);
	uint32_t delta;

	if (!e)
		return false;
	delta = (uint32_t)overflow_delta(e->drops, l->drops);
	e->seen = t->reading;
	r->l = l;
	r->overflows = delta;
	r->since_ns = e->read_ns;
	r->method = OVERFLOW_METHOD_SK_DROPS;
	e->drops = l->drops;
	e->read_ns = t->now;
	e->total += delta;
	r->total = e->total;
	return delta > 0;
}

void overflow_end(struct overflow_table *t)
{
	size_t k = 0;

	for (size_t i = 0; i < t->n; i++)
		if (t->v[i].seen == t->reading)
			t->v[k++] = t->v[i];
	t->n = k;
}

size_t overflow_count(const struct overflow_table *t)
{
	return t->n;
}
