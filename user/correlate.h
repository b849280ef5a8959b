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
#include "established.h"

enum ct_verdict {
	CT_V_OK,
	CT_V_SLOW,
	CT_V_TIMEOUT,
	CT_V_REFUSED,
	CT_V_UNREACHABLE,
	CT_V_ABANDONED,
	CT_V_PENDING,	/* still connecting when conntrace stopped */
	CT_V_DROPPED,	/* inbound: this host dropped its SYNs, the client gave up */
	CT_V_RESET,	/* established, then reset (RST received or sent) */
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
	CT_C_SLOW_HANDSHAKE,	/* SLOW with no SYN lost */
	CT_C_LOCAL_DROP,	/* dropped on this host for another reason */
	CT_C_LOCAL_ERROR,	/* connect() failed at once for a local reason */
	CT_C_UNKNOWN,
	CT_C_NO_ACK,		/* established: the peer stopped acknowledging */
	CT_C_RST_SENT,		/* established: this host reset it */
	CT_C_SYN_QUEUE_FULL,	/* inbound: a SYN dropped on a full SYN queue */
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
	CT_EV_ACCEPT_QUEUE_FULL, /* queue (queue_known), queue_max */
	CT_EV_ESTABLISHED,
	CT_EV_CLOSED,		/* err */
	CT_EV_CONNECT_ERROR,	/* err: connect() returned it */
	CT_EV_ICMP_SENT,	/* icmp_type, icmp_code; synack: about the SYN-ACK */
	CT_EV_ICMP_ERROR,	/* err: the ICMP error left on the socket (sk_err_soft) */
	CT_EV_SIMOPEN,		/* passed through SYN_RECV: simultaneous open */
	CT_EV_SYN_RECEIVED,	/* inbound: the first SYN seen (n: SYNs seen in all) */
	CT_EV_SYNACK_RETRANS,	/* inbound: n: SYN-ACK retransmits so far */
	CT_EV_SYN_COOKIE,	/* inbound: a SYN answered with a SYN cookie (n: how many) */
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
	bool queue_known;	/* ACCEPT_QUEUE_FULL: queue is the length seen while full */
	uint8_t icmp_type, icmp_code;
};

#define CT_MAX_EV	24

/* How an attempt ended, as the kernel reported it. */
enum ct_end {
	CT_END_ESTABLISHED,
	CT_END_CLOSED,		/* CLOSE, with or without an error */
	CT_END_CONNECT_ERROR,	/* connect() failed before any SYN left */
	CT_END_PENDING,		/* still connecting when conntrace stopped */
};

/*
 * Step 1 of a verdict: what is known about one attempt, gathered from its
 * record and the evidence matched to it. Plain values: ct_classify() decides
 * on these alone, and ct_render_detail() writes its sentence from them.
 */
struct ct_facts {
	enum ct_end end;
	int err;		/* the error it ended with (err, else err_report), 0 if none */
	int err_soft;		/* an ICMP error left on the socket (sk_err_soft), 0 if none */
	bool v6;		/* its packets are IPv6 (an IPv4-mapped flow's are IPv4) */
	bool dest_local;	/* the destination is this host */
	bool no_history;	/* evicted or untracked: owner, start, SYNs unknown */
	bool evicted;		/* ... because its flow-table entry was evicted */
	bool lossy;		/* the kernel lost records while it ran */
	bool simopen;		/* simultaneous open */
	bool slow;		/* established no faster than --slow */
	uint32_t syn_retrans;
	uint64_t duration_ns;	/* 0 when unknown */
	uint64_t last_retrans_ns; /* when the last timed SYN retransmit left */
	/* RSTs */
	bool rst_received;	/* an RST arrived while in SYN_SENT */
	bool rst_sent;		/* this host's stack answered the SYN with an RST */
	bool rst_no_socket;	/* ... with reason NO_SOCKET */
	bool rst_reason_known;	/* ... and the kernel gives RST reasons */
	const char *rst_reason;
	/* drops of this flow's packets on this host */
	uint32_t nf_drops;	/* NETFILTER_DROP */
	uint32_t overflow_drops; /* TCP_LISTEN_OVERFLOW: listen overflows */
	uint32_t other_drops;
	const char *other_reason;
	bool no_socket_drop;	/* NO_SOCKET: nothing listened */
	bool synack_dropped;	/* a dropped packet was the SYN-ACK */
	/* a listener on this host for the destination, full while it tried */
	bool queue_full;
	bool queue_known;	/* queue is the length seen while full */
	uint32_t queue, queue_max;
	int64_t full_us;	/* when queue was seen, after the connect; INT64_MIN if unknown */
	int64_t full_from_us;	/* full from (if full_exact) or at some time after this */
	int64_t full_to_us;	/* to this; INT64_MIN: still full when the attempt ended */
	bool full_exact;
	/* ICMP errors this host sent about the flow's SYN (or SYN-ACK) */
	bool icmp_sent;
	bool icmp_about_synack;
	uint8_t icmp_type, icmp_code;
};

/* Step 2: the facts, classified. */
struct ct_class {
	enum ct_verdict verdict;
	enum ct_cause cause;
	bool inferred;		/* rests on inference, not on an observed kernel event */
};

struct ct_result {
	bool inbound;		/* direction: a SYN arrived here (user/inbound.c) */
	enum ct_verdict verdict;
	enum ct_cause cause;
	bool inferred;
	struct ct_facts facts;
	struct ct_flow flow;
	uint64_t duration_ns;	/* 0 when unknown (evicted) */
	unsigned int nr_ev;
	unsigned int ev_omitted;	/* evidence items that did not fit */
	struct ct_ev_item ev[CT_MAX_EV];
	/* connect (the attempt, all of the above) or established (est; flow
	 * holds only its addresses, ports, netns and owner) */
	enum ct_phase phase;
	struct ct_estab_facts est;
};

/* Room for any detail ct_render_detail() writes. */
#define CT_DETAIL_MAX	512

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

/*
 * A listener on this host whose accept queue was full at some time in
 * [since, until]: it had overflows listen overflows then (SYNs dropped on the
 * full queue), and queue connections waiting when read at until.
 */
struct corr_listener {
	uint32_t netns;
	uint8_t family;		/* CT_AF_INET or CT_AF_INET6 */
	uint8_t addr[16];	/* its local address; all zero: every address */
	uint16_t port;
	uint32_t queue;		/* accept queue at until */
	uint32_t queue_max;
	uint32_t overflows;	/* in [since, until] */
	uint64_t since, until;	/* CLOCK_BOOTTIME ns */
};

/* Tells the correlator about it; 0 or -EINVAL. */
int corr_listener_full(struct correlator *c, const struct corr_listener *l, uint64_t now);

/* Step 2: verdict, cause and whether it is inferred, from the facts alone. */
struct ct_class ct_classify(const struct ct_facts *fx);
/*
 * Step 3: the sentence that explains a verdict, for the writers (text -d,
 * JSON "detail"); always NUL-terminated. Returns buf.
 */
const char *ct_render_detail(const struct ct_result *r, char *buf, size_t sz);

const char *ct_verdict_name(enum ct_verdict v);	/* "timeout" */
const char *ct_verdict_label(enum ct_verdict v);	/* "TIMEOUT" */
const char *ct_cause_name(enum ct_cause c);		/* "netfilter_drop" */
const char *ct_ev_kind_name(enum ct_ev_kind k);		/* "syn_retransmit" */
/* Parses "timeout" (any case); -1 if unknown. */
int ct_verdict_parse(const char *s);
/* "ETIMEDOUT" for 110, NULL for 0 or unknown. */
const char *ct_errno_name(int err);

#endif
