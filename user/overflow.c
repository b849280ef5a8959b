// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <stdlib.h>
#include <string.h>
#include "overflow.h"

struct entry {
	__u64 sk;
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

bool overflow_update(struct overflow_table *t, const struct ct_listener *l,
		     struct overflow_report *r)
{
	struct entry *e = NULL;
	__u32 base, delta;

	for (size_t i = 0; i < t->n; i++)
		if (t->v[i].sk == l->sk) {
			e = &t->v[i];
			break;
		}
	if (!e) {
		if (t->n == t->cap) {
			size_t cap = t->cap ? t->cap * 2 : 64;
			struct entry *v = realloc(t->v, cap * sizeof(*v));

			if (!v)
				return false;
			t->v = v;
			t->cap = cap;
		}
		e = &t->v[t->n++];
		memset(e, 0, sizeof(*e));
		e->sk = l->sk;
		/* first listed: count from when the kernel found it full */
		e->drops = l->drops_at_full;
		e->read_ns = t->prev_now ? t->prev_now : t->now;
	}
	base = e->drops;
	delta = l->drops - base;	/* unsigned: survives the counter wrapping */
	e->seen = t->reading;
	r->l = l;
	r->overflows = delta;
	r->since_ns = e->read_ns;
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
