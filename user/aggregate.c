// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Text mode's storm control: per second and key, lines then sums (aggregate.h). */
#include <string.h>
#include "aggregate.h"

void agg_init(struct agg *a, unsigned per_sec, uint64_t now)
{
	a->per_sec = per_sec;
	a->n = 0;
	a->since = now;
	memset(a->slot, 0, sizeof(a->slot));
}

static bool key_eq(const struct agg_key *x, const struct agg_key *y)
{
	return x->verdict == y->verdict && x->cause == y->cause && x->family == y->family &&
	       x->phase == y->phase &&
	       x->inbound == y->inbound &&
	       x->dport == y->dport && !memcmp(x->daddr, y->daddr, sizeof(x->daddr));
}

/* FNV-1a over the fields (not the struct: its padding is not initialised). */
static uint32_t key_hash(const struct agg_key *k)
{
	uint32_t h = 2166136261u;
	uint8_t head[7] = { k->verdict, k->cause, k->family, k->inbound, k->phase,
			     k->dport >> 8, k->dport & 0xff };

	for (unsigned i = 0; i < sizeof(head); i++)
		h = (h ^ head[i]) * 16777619u;
	for (unsigned i = 0; i < sizeof(k->daddr); i++)
		h = (h ^ k->daddr[i]) * 16777619u;
	return h;
}

/* The key's entry, a new one, or NULL when the second has AGG_KEYS already. */
static struct agg_entry *lookup(struct agg *a, const struct agg_key *k)
{
	uint32_t i = key_hash(k) & (AGG_SLOTS - 1);
	struct agg_entry *e;

	/* linear probing; AGG_SLOTS is twice AGG_KEYS, so a free slot always exists */
	for (; a->slot[i]; i = (i + 1) & (AGG_SLOTS - 1)) {
		e = &a->e[a->slot[i] - 1];
		if (key_eq(&e->key, k))
			return e;
	}
	if (a->n == AGG_KEYS)
		return NULL;
	e = &a->e[a->n++];
	e->key = *k;
	e->seen = e->summed = 0;
	a->slot[i] = a->n;
	return e;
}

bool agg_add(struct agg *a, const struct agg_key *k)
{
	struct agg_entry *e = lookup(a, k);

	if (!e)
		return true;	/* too many keys to sum this second: print it */
	if (e->seen < UINT32_MAX)
		e->seen++;
	if (e->seen <= a->per_sec)
		return true;
	e->summed++;
	return false;
}

void agg_flush(struct agg *a, uint64_t now, agg_emit_fn emit, void *ctx)
{
	for (unsigned i = 0; i < a->n; i++)
		if (a->e[i].summed)
			emit(&a->e[i], a->since, now, ctx);
	agg_init(a, a->per_sec, now);
}
