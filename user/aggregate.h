/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Text mode's storm control (issue 11): a terminal stays readable when one
 * (verdict, cause, destination) repeats thousands of times a second.
 *
 * Each second (from one agg_flush() to the next), the first AGG_PER_SEC
 * verdicts of a key are printed as lines; the others are only counted, and
 * agg_flush() hands out one aggregate per key that had any: how many were
 * not printed. Printed lines plus aggregated counts are every verdict given.
 * A second with more than AGG_KEYS distinct keys prints the verdicts of the
 * keys beyond as lines: nothing is ever dropped, only summed. Pure C, no
 * allocation (the table is part of the struct), unit-tested.
 */
#ifndef CONNTRACE_AGGREGATE_H
#define CONNTRACE_AGGREGATE_H

#include <stdbool.h>
#include <stdint.h>

#define AGG_PER_SEC	10	/* lines a key prints each second before it is summed */
#define AGG_KEYS	256	/* distinct keys one second can sum */
#define AGG_SLOTS	(2 * AGG_KEYS)	/* hash index, a power of two */

struct agg_key {
	uint8_t verdict, cause, family, inbound;	/* inbound: a SYN that arrived */
	uint8_t phase;		/* enum ct_phase: an established death is its own key */
	uint16_t dport;
	uint8_t daddr[16];
};

struct agg_entry {
	struct agg_key key;
	uint32_t seen;		/* verdicts of this key this second */
	uint32_t summed;	/* ... of which not printed */
};

struct agg {
	unsigned per_sec;	/* AGG_PER_SEC unless a test says otherwise */
	unsigned n;		/* entries this second, in the order first seen */
	uint64_t since;		/* when this second began (the caller's clock) */
	struct agg_entry e[AGG_KEYS];
	uint16_t slot[AGG_SLOTS];	/* entry index + 1, 0: free */
};

void agg_init(struct agg *a, unsigned per_sec, uint64_t now);
/* One verdict: true to print it as a line, false when it was summed. */
bool agg_add(struct agg *a, const struct agg_key *k);

typedef void (*agg_emit_fn)(const struct agg_entry *e, uint64_t since, uint64_t now,
			    void *ctx);
/* Hands out the entries that summed any, in the order first seen, and starts a new second. */
void agg_flush(struct agg *a, uint64_t now, agg_emit_fn emit, void *ctx);

#endif
