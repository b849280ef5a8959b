/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The correlator: kernel records in, one verdict per connection attempt out.
 * Pure C, no libbpf: records are the fixed-width structs of conntrace.h, so
 * it is unit-tested and fuzzed without a kernel.
 */
#ifndef CONNTRACE_CORRELATE_H
#define CONNTRACE_CORRELATE_H

#include <linux/types.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "conntrace.h"

enum ct_verdict {
	CT_V_OK,
	CT_V_SLOW,
	CT_V_TIMEOUT,
	CT_V_REFUSED,
	CT_V_UNREACHABLE,
	CT_V_ABANDONED,
	CT_V_PENDING,	/* still connecting when conntrace stopped */
	CT_V_MAX,
};

enum ct_cause {
	CT_C_ESTABLISHED,	/* OK: nothing to explain */
	CT_C_NETFILTER_DROP,
	CT_C_NO_LISTENER,
	CT_C_ACCEPT_QUEUE_FULL,
	CT_C_RST_RECEIVED,
	CT_C_NO_SYNACK,
	CT_C_ICMP_UNREACHABLE,
	CT_C_NO_ROUTE,
	CT_C_APP_CLOSED,
	CT_C_SYN_RETRANSMIT,
	CT_C_SLOW_HANDSHAKE,
	CT_C_LOCAL_DROP,	/* dropped on this host for another reason */
	CT_C_LOCAL_ERROR,	/* connect() failed at once for a local reason */
	CT_C_UNKNOWN,
	CT_C_MAX,
};

/* One timed kernel event in a verdict's evidence. */
enum ct_ev_kind {
	CT_EV_CONNECT,		/* connect(): first SYN */
	CT_EV_SYN_RETRANS,	/* n: which retransmit */
	CT_EV_DROP,		/* reason, n: how many (in-kernel count) */
	CT_EV_RST_SENT,		/* reason (may be NULL) */
	CT_EV_RST_RECEIVED,
	CT_EV_ERROR,		/* err */
	CT_EV_LISTEN_FULL,	/* queue, queue_max */
	CT_EV_ESTABLISHED,
	CT_EV_CLOSED,		/* err */
	CT_EV_CONNECT_ERROR,	/* err: connect() returned it */
	CT_EV_MAX,
};

struct ct_ev_item {
	int64_t t_us;		/* after the connect; INT64_MIN: time unknown */
	enum ct_ev_kind kind;
	uint32_t n;
	int err;
	bool synack;		/* DROP/RST_SENT: the packet was the SYN-ACK (reply) */
	const char *reason;	/* kernel enum name, prefix stripped; NULL if none */
	uint32_t queue, queue_max;
};

#define CT_MAX_EV	24

struct ct_result {
	enum ct_verdict verdict;
	enum ct_cause cause;
	char detail[320];
	struct ct_flow flow;
	uint64_t duration_ns;	/* 0 when unknown (evicted) */
	unsigned int nr_ev;
	unsigned int ev_omitted;	/* evidence items that did not fit */
	struct ct_ev_item ev[CT_MAX_EV];
};

typedef const char *(*ct_name_fn)(uint32_t value, void *ctx);
typedef void (*ct_emit_fn)(const struct ct_result *r, void *ctx);

struct corr_config {
	uint64_t slow_ns;		/* established slower than this is SLOW */
	ct_name_fn drop_reason_name;	/* enum skb_drop_reason value -> name */
	void *drop_names;		/* its ctx */
	ct_name_fn rst_reason_name;	/* enum sk_rst_reason value -> name */
	void *rst_names;		/* its ctx */
	ct_emit_fn emit;
	void *emit_ctx;
	/* Unmatched evidence kept at most this long and this many. */
	uint64_t evidence_ttl_ns;
	size_t max_evidence;
	/* A finished flow waits this long for late evidence before its verdict. */
	uint64_t hold_ns;
};

struct corr_stats {
	uint64_t records;		/* records fed */
	uint64_t malformed;		/* records of a bad size or type */
	uint64_t verdicts[CT_V_MAX];
	uint64_t evidence_expired;	/* evidence that matched no flow in time */
	uint64_t evidence_dropped;	/* evidence pushed out by max_evidence */
	uint64_t evicted_flows;		/* verdicts made without the flow's history */
};

struct correlator;

/* NULL with errno set on failure. */
struct correlator *corr_new(const struct corr_config *cfg);
void corr_free(struct correlator *c);
/* Feeds one raw record; now is CLOCK_BOOTTIME ns. Returns 0 or -EINVAL. */
int corr_feed(struct correlator *c, const void *data, size_t len, uint64_t now);
/* Emits held flows whose hold has passed and expires old evidence. */
void corr_tick(struct correlator *c, uint64_t now);
/* Emits everything still held. */
void corr_flush(struct correlator *c);
const struct corr_stats *corr_stats(const struct correlator *c);
/* Entries held: unmatched evidence plus listeners plus held flows. */
size_t corr_held(const struct correlator *c);

const char *ct_verdict_name(enum ct_verdict v);	/* "timeout" */
const char *ct_verdict_label(enum ct_verdict v);	/* "TIMEOUT" */
const char *ct_cause_name(enum ct_cause c);		/* "netfilter_drop" */
const char *ct_ev_kind_name(enum ct_ev_kind k);		/* "syn_retransmit" */
/* Parses "timeout" (any case); -1 if unknown. */
int ct_verdict_parse(const char *s);
/* "ETIMEDOUT" for 110, NULL for 0 or unknown. */
const char *ct_errno_name(int err);

#endif
