// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Incoming connection attempts, from the kernel's records to verdicts (see
 * inbound.h). Each record carries the attempt's counts so far; what moved
 * since the previous one becomes an evidence item, timed from the first SYN.
 * Attempts are kept in arrival order, so the oldest is told first when the
 * table is full, and the quiet ones are found by walking from the oldest.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "inbound.h"
#include "output.h"

#define NR_BUCKETS	1024

struct attempt {
	struct attempt *hnext;		/* hash chain */
	struct attempt *prev, *next;	/* arrival order */
	struct ct_inbound last;		/* the last record */
	uint64_t seen_ns;		/* when the last record arrived */
	unsigned int nr_ev, ev_omitted;
	struct ct_ev_item ev[CT_MAX_EV];
};

struct inbound {
	struct inbound_config cfg;
	struct attempt *buckets[NR_BUCKETS];
	struct attempt *oldest, *newest;
	size_t n;
};

struct inbound *inbound_new(const struct inbound_config *cfg)
{
	struct inbound *in = calloc(1, sizeof(*in));

	if (!in)
		return NULL;
	in->cfg = *cfg;
	if (!in->cfg.quiet_ns)
		in->cfg.quiet_ns = INBOUND_QUIET_NS;
	if (!in->cfg.max_attempts)
		in->cfg.max_attempts = 4096;
	return in;
}

void inbound_free(struct inbound *in)
{
	struct attempt *a, *next;

	if (!in)
		return;
	for (a = in->oldest; a; a = next) {
		next = a->next;
		free(a);
	}
	free(in);
}

size_t inbound_held(const struct inbound *in)
{
	return in->n;
}

/* The attempt's identity: both ends, the family and the namespace. */
static bool same(const struct ct_inbound *x, const struct ct_inbound *y)
{
	return x->family == y->family && x->netns == y->netns && x->sport == y->sport &&
	       x->dport == y->dport && !memcmp(x->saddr, y->saddr, sizeof(x->saddr)) &&
	       !memcmp(x->daddr, y->daddr, sizeof(x->daddr));
}

static unsigned bucket(const struct ct_inbound *r)
{
	uint32_t h = 2166136261u;	/* FNV-1a over the identity */
	const uint8_t *p;

	for (p = r->saddr; p < r->saddr + 16; p++)
		h = (h ^ *p) * 16777619u;
	for (p = r->daddr; p < r->daddr + 16; p++)
		h = (h ^ *p) * 16777619u;
	h = (h ^ r->sport) * 16777619u;
	h = (h ^ r->dport) * 16777619u;
	h = (h ^ r->netns) * 16777619u;
	return h % NR_BUCKETS;
}

static struct attempt **find(struct inbound *in, const struct ct_inbound *r)
{
	struct attempt **pp = &in->buckets[bucket(r)];

	while (*pp && !same(&(*pp)->last, r))
		pp = &(*pp)->hnext;
	return pp;
}

static void unlink_attempt(struct inbound *in, struct attempt *a)
{
	struct attempt **pp = find(in, &a->last);

	*pp = a->hnext;
	if (a->prev)
		a->prev->next = a->next;
	else
		in->oldest = a->next;
	if (a->next)
		a->next->prev = a->prev;
	else
		in->newest = a->prev;
	in->n--;
}

/* Verdict rules, in order: the first cause that applies wins. */
static enum ct_cause drop_cause(const struct ct_inbound *a)
{
	if (a->overflow_drops)
		return CT_C_ACCEPT_QUEUE_FULL;
	if (a->synq_drops)
		return CT_C_SYN_QUEUE_FULL;
	if (a->nf_drops)
		return CT_C_NETFILTER_DROP;
	if (a->other_drops)
		return CT_C_LOCAL_DROP;
	/* SYN-ACKs sent again while the accept queue was full: the final ACK was dropped */
	if (a->synack_retrans && a->queue > a->queue_max)
		return CT_C_ACCEPT_QUEUE_FULL;
	return CT_C_UNKNOWN;
}

struct ct_class inbound_classify(const struct ct_inbound *a, enum inbound_end end)
{
	struct ct_class k = { CT_V_OK, CT_C_ESTABLISHED, false };
	enum ct_cause why = drop_cause(a);

	if (a->rsts) {
		k.verdict = CT_V_REFUSED;
		k.cause = CT_C_NO_LISTENER;	/* the kernel's own RST: nothing listened */
		return k;
	}
	if (a->event == CT_IN_ESTABLISHED && end == INB_END_EVENT) {
		if (why != CT_C_UNKNOWN || a->synack_retrans) {
			k.verdict = CT_V_SLOW;
			k.cause = why != CT_C_UNKNOWN ? why : CT_C_SLOW_HANDSHAKE;
			/* a SYN-ACK sent again with the queue not full: the ACK was late */
			k.inferred = why == CT_C_UNKNOWN;
		}
		return k;
	}
	if (end == INB_END_STOP) {
		k.verdict = CT_V_PENDING;
	} else if (why != CT_C_UNKNOWN) {
		k.verdict = CT_V_DROPPED;
	} else {
		/* this host answered, the client never completed: nothing dropped here */
		k.verdict = CT_V_TIMEOUT;
	}
	k.cause = why;
	k.inferred = why == CT_C_UNKNOWN ||
		     (why == CT_C_ACCEPT_QUEUE_FULL && !a->overflow_drops);
	return k;
}

static void ev_push(struct attempt *a, const struct ct_ev_item *it)
{
	if (a->nr_ev < CT_MAX_EV)
		a->ev[a->nr_ev++] = *it;
	else
		a->ev_omitted++;
}

/* What moved between the previous record (old, zero for the first) and r. */
static void note_events(struct inbound *in, struct attempt *a, const struct ct_inbound *old,
			const struct ct_inbound *r)
{
	struct ct_ev_item it = { .t_us = r->has_history ? (int64_t)(r->ts_last - r->ts_first) / 1000
						       : INT64_MIN };

	if (!old->type && r->has_history)
		ev_push(a, &(struct ct_ev_item){ .t_us = 0, .kind = CT_EV_SYN_RECEIVED, .n = 1 });
	if (r->overflow_drops > old->overflow_drops)
		ev_push(a, &(struct ct_ev_item){ .t_us = it.t_us, .kind = CT_EV_ACCEPT_QUEUE_FULL,
			.queue = r->queue, .queue_max = r->queue_max, .queue_known = true });
	if (r->overflow_drops + r->synq_drops > old->overflow_drops + old->synq_drops) {
		it.kind = CT_EV_DROP;
		it.n = r->overflow_drops + r->synq_drops;
		it.reason = NULL;	/* consumed, not freed with a reason: see sk_drops */
		ev_push(a, &it);
	}
	if (r->nf_drops > old->nf_drops) {
		it.kind = CT_EV_DROP;
		it.n = r->nf_drops;
		it.reason = "NETFILTER_DROP";
		ev_push(a, &it);
	}
	if (r->other_drops > old->other_drops) {
		it.kind = CT_EV_DROP;
		it.n = r->other_drops;
		it.reason = in->cfg.drop_reason_name ?
			in->cfg.drop_reason_name(r->drop_reason, in->cfg.drop_names) : NULL;
		ev_push(a, &it);
	}
	it.reason = NULL;
	if (r->synack_retrans > old->synack_retrans) {
		it.kind = CT_EV_SYNACK_RETRANS;
		it.n = r->synack_retrans;
		ev_push(a, &it);
	}
	if (r->cookies > old->cookies) {
		it.kind = CT_EV_SYN_COOKIE;
		it.n = r->cookies;
		ev_push(a, &it);
	}
	if (r->rsts > old->rsts) {
		it.kind = CT_EV_RST_SENT;
		ev_push(a, &it);
	}
	if (r->event == CT_IN_ESTABLISHED) {
		it.kind = CT_EV_ESTABLISHED;
		ev_push(a, &it);
	}
}

/* The attempt as a verdict: the flow's fields as the writers know them. */
static void tell(struct inbound *in, struct attempt *a, enum inbound_end end, uint64_t now)
{
	const struct ct_inbound *r = &a->last;
	struct ct_result res;
	struct ct_flow *f = &res.flow;
	struct ct_class k = inbound_classify(r, end);

	memset(&res, 0, sizeof(res));
	res.inbound = true;
	res.verdict = k.verdict;
	res.cause = k.cause;
	res.inferred = k.inferred;
	f->type = CT_REC_FLOW;
	f->family = r->family;
	f->sport = r->sport;
	f->dport = r->dport;
	f->netns = r->netns;
	f->pid = r->pid;
	f->syn_retrans = r->syns > 1 ? r->syns - 1 : 0;	/* the client's */
	f->ts_start = r->ts_first;
	f->ts_end = end == INB_END_EVENT ? r->ts_last : now;
	if (!r->has_history)
		f->flags |= CT_F_UNTRACKED;
	memcpy(f->saddr, r->saddr, sizeof(f->saddr));
	memcpy(f->daddr, r->daddr, sizeof(f->daddr));
	memcpy(f->comm, r->comm, sizeof(f->comm));
	res.duration_ns = r->has_history ? f->ts_end - r->ts_first : 0;
	res.facts.duration_ns = res.duration_ns;
	res.facts.syn_retrans = f->syn_retrans;
	res.facts.no_history = !r->has_history;
	res.nr_ev = a->nr_ev;
	res.ev_omitted = a->ev_omitted;
	memcpy(res.ev, a->ev, a->nr_ev * sizeof(a->ev[0]));
	if (in->cfg.emit)
		in->cfg.emit(&res, in->cfg.emit_ctx);
}

int inbound_feed(struct inbound *in, const void *data, size_t len, uint64_t now)
{
	const struct ct_inbound *r = data;
	struct ct_inbound zero = { 0 };
	struct attempt **pp, *a;

	if (len != sizeof(*r) || r->type != CT_REC_INBOUND ||
	    (r->family != CT_AF_INET && r->family != CT_AF_INET6))
		return -EINVAL;
	pp = find(in, r);
	a = *pp;
	if (!a) {
		if (in->n >= in->cfg.max_attempts && in->oldest) {
			struct attempt *old = in->oldest;

			unlink_attempt(in, old);
			tell(in, old, INB_END_STOP, now);
			free(old);
			pp = find(in, r);
		}
		a = calloc(1, sizeof(*a));
		if (!a)
			return -ENOMEM;
		*pp = a;
		a->prev = in->newest;
		if (in->newest)
			in->newest->next = a;
		else
			in->oldest = a;
		in->newest = a;
		in->n++;
	}
	note_events(in, a, a->last.type ? &a->last : &zero, r);
	a->last = *r;
	a->seen_ns = now;
	if (r->event == CT_IN_ESTABLISHED || r->event == CT_IN_RST) {
		unlink_attempt(in, a);
		tell(in, a, INB_END_EVENT, now);
		free(a);
	}
	return 0;
}

void inbound_tick(struct inbound *in, uint64_t now)
{
	struct attempt *a, *next;

	/* arrival order is not news order: look at each one */
	for (a = in->oldest; a; a = next) {
		next = a->next;
		if (now - a->seen_ns < in->cfg.quiet_ns)
			continue;
		unlink_attempt(in, a);
		tell(in, a, INB_END_QUIET, now);
		free(a);
	}
}

void inbound_flush(struct inbound *in, uint64_t now)
{
	struct attempt *a;

	while ((a = in->oldest)) {
		unlink_attempt(in, a);
		tell(in, a, INB_END_STOP, now);
		free(a);
	}
}

/* ------------------------------------------------------------------------
 * The sentence. */

const char *inbound_render_detail(const struct ct_result *r, char *buf, size_t sz)
{
	const struct ct_flow *f = &r->flow;
	char from[80], to[80];
	const char *why;

	fmt_addr(from, sizeof(from), f->family, f->saddr);
	fmt_addr(to, sizeof(to), f->family, f->daddr);
	switch (r->cause) {
	case CT_C_ACCEPT_QUEUE_FULL:
		why = "the listener's accept queue was full (listen overflow: the application "
		      "does not accept() fast enough, or its backlog is too small)";
		break;
	case CT_C_SYN_QUEUE_FULL:
		why = "the listener's SYN queue was full and SYN cookies were off";
		break;
	case CT_C_NETFILTER_DROP:
		why = "a netfilter rule on this host dropped its SYNs";
		break;
	case CT_C_LOCAL_DROP:
		why = "this host dropped its SYNs";
		break;
	case CT_C_NO_LISTENER:
		why = "nothing listened on that port, so this host answered with an RST";
		break;
	case CT_C_SLOW_HANDSHAKE:
		why = "this host sent its SYN-ACK again before the client's ACK came";
		break;
	default:
		why = NULL;
		break;
	}
	switch (r->verdict) {
	case CT_V_OK:
		snprintf(buf, sz, "%s:%u connected to %s:%u here", from, f->sport, to, f->dport);
		break;
	case CT_V_SLOW:
		snprintf(buf, sz, "%s:%u connected to %s:%u here, late: %s", from, f->sport, to,
			 f->dport, why);
		break;
	case CT_V_REFUSED:
		snprintf(buf, sz, "%s:%u tried %s:%u here: %s", from, f->sport, to, f->dport, why);
		break;
	default:
		snprintf(buf, sz, "%s:%u tried %s:%u here (%u SYN%s seen) and %s: %s", from,
			 f->sport, to, f->dport, f->syn_retrans + 1, f->syn_retrans ? "s" : "",
			 r->verdict == CT_V_PENDING ? "had not connected when conntrace stopped" :
			 r->verdict == CT_V_DROPPED ? "stopped trying" : "never completed the handshake",
			 why ? why : "this host answered; the evidence does not say why the client "
			 "did not complete");
		break;
	}
	return buf;
}
