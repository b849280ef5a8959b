/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Listen overflows: the one definition both commands count by.
 *
 * A "listen overflow" is one SYN or final ACK that the kernel dropped because
 * the listener's accept queue was full: what it counts in TcpExtListenOverflows
 * (tcp_conn_request() for a SYN, tcp_vX_syn_recv_sock() for the last ACK).
 * How a count was obtained is always stated, as enum overflow_method:
 *
 * fentry      counted at the drop site (fentry/fexit): exact.
 * sk_drops    the listener's sk_drops increment. tcp_listendrop() adds every
 *             overflow there, but also a SYN dropped on a full SYN queue with
 *             cookies off, a child that could not be created, and segments the
 *             socket layer dropped: exact when the namespace's ListenOverflows
 *             and ListenDrops moved together (overflow_attribute() checks
 *             that), an upper bound when nothing could check it (a
 *             namespace the collector could not enter).
 * attributed  the namespace's ListenOverflows increment shared out among its
 *             listeners (overflow_attribute()): the total is right, the split
 *             an estimate.
 *
 * Counters are compared reading to reading; a counter that went down belongs
 * to a new socket (a listener closed and another took its address, or its
 * key), never to 4 billion overflows: overflow_delta() gives 0 and the caller
 * restarts the baseline.
 *
 * The rest is the verdict stream's table: the kernel lists the listeners it
 * has found full with their sk_drops, once a second; this turns the readings
 * into overflow counts since the previous one, by the same definition as
 * `conntrace listen`: at the end of a reading, each namespace whose listeners
 * dropped something is asked for its ListenOverflows and ListenDrops
 * (overflow_ops.ns_counters, nsstat.c) and overflow_attribute() decides.
 * Pure C, no libbpf.
 */
#ifndef CONNTRACE_OVERFLOW_H
#define CONNTRACE_OVERFLOW_H

#include <linux/types.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "conntrace.h"

enum overflow_method {
	OVERFLOW_METHOD_NONE,		/* no overflow to count: an exact 0 (named sk_drops) */
	OVERFLOW_METHOD_SK_DROPS,	/* the listener's sk_drops increment */
	OVERFLOW_METHOD_ATTRIBUTED,	/* namespace ListenOverflows shared out */
	OVERFLOW_METHOD_FENTRY,		/* counted at the drop site */
};

/* "sk_drops", "attributed", "fentry": the `method` of the JSON records. */
const char *overflow_method_name(enum overflow_method m);
/* A total made of both: the weaker (less exact) of the two. */
enum overflow_method overflow_method_merge(enum overflow_method a, enum overflow_method b);

/* now - before, or 0 when the counter went down (a new socket: restart there). */
uint64_t overflow_delta(uint64_t before, uint64_t now);

/* One listener of a namespace, for overflow_attribute(). */
struct overflow_share {
	uint64_t drops;		/* its sk_drops increment over the interval */
	bool was_full;		/* seen full in the interval */
	uint64_t overflows;	/* out */
};

/*
 * Split a namespace's ListenOverflows increment (d_overflows, out of d_drops
 * ListenDrops) among its listeners. Every overflow also counts in ListenDrops
 * and in the listener's sk_drops, so when the two namespace counters moved
 * together (and the listeners' sk_drops fit in them) each listener's sk_drops
 * increment is exactly its overflows: OVERFLOW_METHOD_SK_DROPS. Otherwise the
 * overflows go to listeners seen full, in proportion to their drops and never
 * more than them: OVERFLOW_METHOD_ATTRIBUTED. No overflow: _NONE.
 */
enum overflow_method overflow_attribute(uint64_t d_overflows, uint64_t d_drops,
					struct overflow_share *shares, size_t n);

struct overflow_report {
	const struct ct_listener *l;
	uint32_t overflows;	/* since the previous reading (or since found full) */
	uint64_t total;		/* since conntrace found it full */
	uint64_t since_ns;	/* CLOCK_BOOTTIME of the previous reading */
	enum overflow_method method; /* _SK_DROPS, _ATTRIBUTED, or _NONE (0 overflows) */
};

struct overflow_ops {
	/*
	 * A namespace's TcpExt ListenOverflows and ListenDrops increments since
	 * the previous call for it: 0, or -errno when they cannot be read (its
	 * listeners then count by sk_drops, an upper bound). NULL: never read.
	 */
	int (*ns_counters)(void *ctx, __u32 netns, uint64_t *d_overflows, uint64_t *d_drops);
	void (*ns_free)(void *ctx);	/* by overflow_free(), with ns_ctx */
	void *ns_ctx;
	/* Every listener of a reading, with its overflows, from overflow_end(). */
	void (*report)(void *ctx, const struct overflow_report *r);
	void *report_ctx;
};

struct overflow_table;

/* The table takes ops->ns_ctx (freed with ops->ns_free), even on failure. */
struct overflow_table *overflow_new(const struct overflow_ops *ops);
void overflow_free(struct overflow_table *t);
/* Begins a reading taken at now (CLOCK_BOOTTIME ns). */
void overflow_begin(struct overflow_table *t, uint64_t now);
/*
 * One listener of the reading: its sk_drops increment since the previous
 * reading (since found full at first sight). A listener is the same one while
 * its socket pointer, namespace, family, address and port are (pointers are
 * reused); its drops going down also means a new socket: the count restarts
 * from there. 0 or -ENOMEM.
 */
int overflow_add(struct overflow_table *t, const struct ct_listener *l);
/*
 * Ends the reading: per namespace, the listeners' increments are checked
 * against the namespace's counters (with what the previous reading left
 * unmatched: a drop between the kernel's listing and the counters' reading
 * shows in the counters one reading before the listener's sk_drops), and
 * ops->report is called for every listener of the reading. Listeners it did
 * not list have closed and are forgotten.
 */
void overflow_end(struct overflow_table *t);
size_t overflow_count(const struct overflow_table *t);

#endif
