// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The correlator. A finished flow arrives whole from the kernel with what the
 * kernel could attach to its socket (retransmits, RST received, errors, drops
 * of packets it owned). Evidence that has no socket (a SYN dropped on input,
 * the RST or ICMP error this host sent for it, a listener with a full accept
 * queue) arrives as separate records and waits here, indexed by its
 * addresses, until a flow claims it or it expires.
 *
 * A verdict takes three steps: gather the facts of the flow and its evidence
 * (here), classify them (classify.c), and, only when a writer prints it,
 * render the sentence that explains it (render.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "correlate.h"

#define NS_PER_US	1000ULL
#define NS_PER_MS	1000000ULL
#define NS_PER_SEC	1000000000ULL

#define EV_BUCKETS	4096	/* power of two */
#define MAX_LISTENERS	1024

struct ev_node {
	struct ct_evidence e;
	struct ev_node *hnext;		/* hash chain */
	struct ev_node *older, *newer;	/* arrival order, for expiry */
};

struct listener {
	__u32 netns;
	__u8 family;
	__u16 port;
	__u8 addr[16];
	bool full;		/* the last word on it said full */
	__u64 full_since;	/* start of the current or last full period */
	__u64 full_until;	/* end of the last full period; 0 while full */
	bool since_exact;	/* full_since was seen, not an interval's start */
	bool queue_known;
	__u32 queue;		/* the accept queue last seen while full */
	__u64 queue_at;		/* when */
	__u32 queue_max;
	__u64 seen;
};

struct held {
	struct ct_flow f;
	struct held *next;
};

struct correlator {
	struct corr_config cfg;
	struct corr_stats stats;
	struct ev_node *buckets[EV_BUCKETS];
	struct ev_node *oldest, *newest;
	size_t nr_ev;
	struct listener listeners[MAX_LISTENERS];
	size_t nr_listeners;
	struct held *held_head, *held_tail;
	size_t nr_held;
	struct ct_result res;	/* scratch: one verdict at a time */
};

struct correlator *corr_new(const struct corr_config *cfg)
{
	struct correlator *c = calloc(1, sizeof(*c));

	if (!c) {
		errno = ENOMEM;
		return NULL;
	}
	c->cfg = *cfg;
	if (!c->cfg.evidence_ttl_ns)
		c->cfg.evidence_ttl_ns = 300 * NS_PER_SEC;
	if (!c->cfg.max_evidence)
		c->cfg.max_evidence = 65536;
	return c;
}

void corr_free(struct correlator *c)
{
	struct ev_node *n, *next;
	struct held *h, *hn;

	if (!c)
		return;
	for (n = c->oldest; n; n = next) {
		next = n->newer;
		free(n);
	}
	for (h = c->held_head; h; h = hn) {
		hn = h->next;
		free(h);
	}
	free(c);
}

const struct corr_stats *corr_stats(const struct correlator *c)
{
	return &c->stats;
}

size_t corr_held(const struct correlator *c)
{
	return c->nr_ev + c->nr_listeners + c->nr_held;
}

/* ---- addresses ---- */

static const __u8 v4_mapped_prefix[12] = { [10] = 0xff, [11] = 0xff };

static size_t addr_len(__u8 family)
{
	return family == CT_AF_INET ? 4 : 16;
}

static bool is_v4_mapped(const __u8 *a)
{
	return !memcmp(a, v4_mapped_prefix, 12);
}

static bool is_any(__u8 family, const __u8 *a)
{
	for (size_t i = 0; i < addr_len(family); i++)
		if (a[i])
			return false;
	return true;
}

static bool is_loopback(__u8 family, const __u8 *a)
{
	static const __u8 v6_lo[16] = { [15] = 1 };

	return family == CT_AF_INET ? a[0] == 127 : !memcmp(a, v6_lo, 16);
}

/*
 * Addresses as the packets carry them: an IPv6 socket connected to an
 * IPv4-mapped address (::ffff:a.b.c.d) sends IPv4 packets, and the kernel's
 * evidence about them is IPv4. Everything compared goes through here, so a
 * dual-stack flow, its drops, resets, ICMP errors and listeners meet as
 * IPv4. A source still unset (::) follows a mapped destination.
 */
static void norm_pair(__u8 *family, __u8 *sa, __u8 *da)
{
	if (*family != CT_AF_INET6 || !is_v4_mapped(da) ||
	    (!is_v4_mapped(sa) && !is_any(CT_AF_INET6, sa)))
		return;
	*family = CT_AF_INET;
	memmove(sa, sa + 12, 4);
	memmove(da, da + 12, 4);
	memset(sa + 4, 0, 12);
	memset(da + 4, 0, 12);
}

static void norm_addr(__u8 *family, __u8 *a)
{
	if (*family != CT_AF_INET6 || !is_v4_mapped(a))
		return;
	*family = CT_AF_INET;
	memmove(a, a + 12, 4);
	memset(a + 4, 0, 12);
}

struct flow_view {
	__u8 family;
	__u8 saddr[16], daddr[16];
};

static void flow_view(struct flow_view *v, const struct ct_flow *f)
{
	v->family = f->family;
	memcpy(v->saddr, f->saddr, 16);
	memcpy(v->daddr, f->daddr, 16);
	norm_pair(&v->family, v->saddr, v->daddr);
}

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

static uint64_t endpoint_hash(__u8 family, const __u8 *addr, __u16 port)
{
	uint64_t h = port;

	for (size_t i = 0; i < addr_len(family); i++)
		h = h * 131 + addr[i];
	return mix64(h);
}

/* The same bucket for both directions of a connection. */
static size_t tuple_bucket(__u8 family, const __u8 *sa, __u16 sp, const __u8 *da, __u16 dp)
{
	return (endpoint_hash(family, sa, sp) + endpoint_hash(family, da, dp)) & (EV_BUCKETS - 1);
}

/* ---- evidence store ---- */

static void ev_unlink(struct correlator *c, struct ev_node *n)
{
	const struct ct_evidence *e = &n->e;
	struct ev_node **pp = &c->buckets[tuple_bucket(e->family, e->saddr, e->sport,
						       e->daddr, e->dport)];

	while (*pp && *pp != n)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = n->hnext;
	if (n->older)
		n->older->newer = n->newer;
	else
		c->oldest = n->newer;
	if (n->newer)
		n->newer->older = n->older;
	else
		c->newest = n->older;
	c->nr_ev--;
	free(n);
}

static int ev_add(struct correlator *c, const struct ct_evidence *e)
{
	struct ev_node *n;
	size_t b;

	if (c->nr_ev >= c->cfg.max_evidence) {
		ev_unlink(c, c->oldest);
		c->stats.evidence_dropped++;
	}
	n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	n->e = *e;
	norm_pair(&n->e.family, n->e.saddr, n->e.daddr);
	b = tuple_bucket(n->e.family, n->e.saddr, n->e.sport, n->e.daddr, n->e.dport);
	n->hnext = c->buckets[b];
	c->buckets[b] = n;
	n->older = c->newest;
	if (c->newest)
		c->newest->newer = n;
	else
		c->oldest = n;
	c->newest = n;
	c->nr_ev++;
	return 0;
}

/* ---- listeners ---- */

/* The entry for a listener, made (or the least recently seen one reused) if new. */
static struct listener *listener_get(struct correlator *c, __u32 netns, __u8 family,
				     const __u8 *addr, __u16 port)
{
	struct listener *oldest = NULL, *l;
	__u8 a[16] = { 0 };

	memcpy(a, addr, addr_len(family));
	norm_addr(&family, a);
	for (size_t i = 0; i < c->nr_listeners; i++) {
		l = &c->listeners[i];
		if (l->netns == netns && l->family == family && l->port == port &&
		    !memcmp(l->addr, a, 16))
			return l;
		if (!oldest || l->seen < oldest->seen)
			oldest = l;
	}
	l = c->nr_listeners < MAX_LISTENERS ? &c->listeners[c->nr_listeners++] : oldest;
	memset(l, 0, sizeof(*l));
	l->netns = netns;
	l->family = family;
	l->port = port;
	memcpy(l->addr, a, 16);
	return l;
}

/*
 * Seen full at ts with queue waiting. The length kept is the one seen when
 * the full period began: it explains the SYNs lost from then on, and it is
 * never a reading taken after the queue drained.
 */
static void listener_saw_full(struct listener *l, __u32 queue, __u64 ts)
{
	bool same = l->full || (l->full_since && l->full_until >= ts);

	if (!same) {
		l->full_since = ts;
		l->since_exact = true;
	}
	if (!same || !l->queue_known || l->queue_at < l->full_since) {
		l->queue = queue;
		l->queue_at = ts;
		l->queue_known = true;
	}
	l->full = true;
	l->full_until = 0;
}

/* The kernel found a listener's accept queue full, or no longer full. */
static void listener_update(struct correlator *c, const struct ct_evidence *e)
{
	struct listener *l = listener_get(c, e->netns, e->family, e->saddr, e->sport);

	if (e->queue > e->queue_max)
		listener_saw_full(l, e->queue, e->ts);
	else if (l->full)
		l->full_until = e->ts;
	l->full = e->queue > e->queue_max;
	l->queue_max = e->queue_max;
	l->seen = e->ts;
}

int corr_listener_full(struct correlator *c, const struct corr_listener *cl, uint64_t now)
{
	struct listener *l;

	if ((cl->family != CT_AF_INET && cl->family != CT_AF_INET6) || cl->since > cl->until)
		return -EINVAL;
	l = listener_get(c, cl->netns, cl->family, cl->addr, cl->port);
	if (!cl->overflows && cl->queue <= cl->queue_max) {
		/* drained, no SYN lost to it since `since`: a full period the
		 * kernel did not see end (it looks when a child is queued) ends
		 * there, or is forgotten if it began after */
		if (l->full && l->full_since >= cl->since)
			l->full_since = 0;
		if (l->full)
			l->full_until = cl->since;
		l->full = false;
		return 0;
	}
	/* overflows: full at some time in [since, until], when is not known */
	if (cl->overflows && !l->full) {
		if (!l->full_since || l->full_until < cl->since) {
			l->full_since = cl->since;
			l->since_exact = false;
		}
		l->full_until = cl->until;
	}
	if (cl->queue > cl->queue_max) {
		listener_saw_full(l, cl->queue, cl->until);
	} else if (l->full) {
		l->full = false;	/* drained by the time it was read */
		l->full_until = cl->until;
	}
	l->queue_max = cl->queue_max;
	l->seen = now;
	return 0;
}

/*
 * A listener on this host for the flow's destination that was full while it
 * tried. A wildcard listener (0.0.0.0, or :: which takes IPv4 too) only
 * answers for its own namespace; so does a loopback one, since loopback
 * addresses repeat in every namespace.
 */
static const struct listener *listener_full_for(const struct correlator *c,
						const struct ct_flow *f, const struct flow_view *v)
{
	for (size_t i = 0; i < c->nr_listeners; i++) {
		const struct listener *l = &c->listeners[i];

		if (l->port != f->dport)
			continue;
		if (is_any(l->family, l->addr)) {
			if (l->family != v->family && l->family != CT_AF_INET6)
				continue;
			if (l->netns != f->netns)
				continue;
		} else {
			if (l->family != v->family || memcmp(l->addr, v->daddr, addr_len(v->family)))
				continue;
			if (l->netns != f->netns && is_loopback(v->family, v->daddr))
				continue;
		}
		if (!l->full_since || l->full_since > f->ts_end)
			continue;
		if (!l->full && l->full_until < f->ts_start)
			continue;
		return l;
	}
	return NULL;
}

/* ---- gathering the facts ---- */

/*
 * Appends an evidence item, or returns NULL and counts it when the list is
 * full. The last slot is kept for the end (established or closed).
 */
static struct ct_ev_item *add_ev(struct ct_result *r, int64_t t_us, enum ct_ev_kind kind)
{
	bool end = kind == CT_EV_ESTABLISHED || kind == CT_EV_CLOSED;
	struct ct_ev_item *it;

	if (r->nr_ev >= CT_MAX_EV - (end ? 0 : 1)) {
		r->ev_omitted++;
		return NULL;
	}
	it = &r->ev[r->nr_ev++];
	memset(it, 0, sizeof(*it));
	it->t_us = t_us;
	it->kind = kind;
	return it;
}

static int64_t rel_us(const struct ct_flow *f, __u64 ts)
{
	if (!ts || (f->flags & CT_F_NO_HISTORY))
		return INT64_MIN;
	/* a wrapping difference: absurd stamps give an absurd time, never overflow */
	return (int64_t)(ts - f->ts_start) / (int64_t)NS_PER_US;
}

static bool ev_matches(const struct ct_flow *f, const struct flow_view *v,
		       const struct ct_evidence *e, uint64_t hold, bool *reply)
{
	size_t n = addr_len(v->family);
	__u64 lo = f->ts_start, hi = f->ts_end + hold;

	if (e->family != v->family)
		return false;
	if (e->sport == f->sport && e->dport == f->dport &&
	    !memcmp(e->saddr, v->saddr, n) && !memcmp(e->daddr, v->daddr, n))
		*reply = false;
	else if (e->sport == f->dport && e->dport == f->sport &&
		 !memcmp(e->saddr, v->daddr, n) && !memcmp(e->daddr, v->saddr, n))
		*reply = true;
	else
		return false;
	if (e->netns && e->netns != f->netns && is_loopback(v->family, v->daddr))
		return false;
	if (f->flags & CT_F_NO_HISTORY)	/* start unknown: the longest SYN timeout */
		lo = f->ts_end > 300 * NS_PER_SEC ? f->ts_end - 300 * NS_PER_SEC : 0;
	/* the first SYN leaves just after the start is stamped */
	lo = lo > NS_PER_MS ? lo - NS_PER_MS : 0;
	return e->ts >= lo && e->ts <= hi;
}

static const char *drop_name(const struct correlator *c, __u32 reason)
{
	const char *n = c->cfg.drop_reason_name ? c->cfg.drop_reason_name(reason, c->cfg.drop_names) : NULL;

	return n ? n : "?";
}

static void note_drop(struct ct_facts *fx, const char *name, unsigned count, bool reply)
{
	if (!strcmp(name, "NETFILTER_DROP"))
		fx->nf_drops += count;
	else if (!strcmp(name, "TCP_LISTEN_OVERFLOW"))
		fx->overflow_drops += count;
	else if (!strcmp(name, "NO_SOCKET"))
		fx->no_socket_drop = true;
	else {
		fx->other_drops += count;
		fx->other_reason = name;
	}
	if (reply)
		fx->synack_dropped = true;
}

/* One matched evidence record into the facts and the evidence list. */
static void take_evidence(struct correlator *c, struct ct_result *r, const struct ct_evidence *e,
			  bool reply)
{
	struct ct_facts *fx = &r->facts;
	const char *reason = NULL;
	struct ct_ev_item *it;
	enum ct_ev_kind kind;

	if (e->type == CT_REC_DROP) {
		kind = CT_EV_DROP;
		reason = drop_name(c, e->reason);
		note_drop(fx, reason, 1, reply);
	} else if (e->type == CT_REC_ICMP_SENT) {
		kind = CT_EV_ICMP_SENT;
		fx->icmp_sent = true;
		fx->icmp_about_synack = reply;
		fx->icmp_type = e->reason >> 8;
		fx->icmp_code = e->reason & 0xff;
	} else {
		kind = CT_EV_RST_SENT;
		if (e->has_reason && c->cfg.rst_reason_name)
			reason = c->cfg.rst_reason_name(e->reason, c->cfg.rst_names);
		fx->rst_sent = true;
		fx->rst_reason = reason;
		fx->rst_reason_known = reason != NULL;
		fx->rst_no_socket = reason && !strcmp(reason, "NO_SOCKET");
	}
	it = add_ev(r, rel_us(&r->flow, e->ts), kind);
	if (it) {
		it->synack = reply;
		it->n = 1;
		it->reason = reason;
		if (kind == CT_EV_ICMP_SENT) {
			it->icmp_type = e->reason >> 8;
			it->icmp_code = e->reason & 0xff;
		}
	}
}

/* Moves the evidence waiting for this flow into the result. */
static void claim_evidence(struct correlator *c, struct ct_result *r, const struct flow_view *v)
{
	const struct ct_flow *f = &r->flow;
	struct ev_node *n, *next;
	size_t b;

	if (r->facts.end == CT_END_CONNECT_ERROR && !f->sport)
		return;	/* no packet ever left */
	b = tuple_bucket(v->family, v->saddr, f->sport, v->daddr, f->dport);
	for (n = c->buckets[b]; n; n = next) {
		bool reply;

		next = n->hnext;
		if (!ev_matches(f, v, &n->e, c->cfg.hold_ns, &reply))
			continue;
		take_evidence(c, r, &n->e, reply);
		ev_unlink(c, n);
	}
}

/* The destination listener, if it was full while the flow retransmitted. */
static void claim_listener(struct correlator *c, struct ct_result *r, const struct flow_view *v)
{
	const struct ct_flow *f = &r->flow;
	const struct listener *l = listener_full_for(c, f, v);
	struct ct_facts *fx = &r->facts;
	struct ct_ev_item *it;

	if (!l || !f->syn_retrans)
		return;	/* a full queue costs only retransmits */
	fx->queue_full = true;
	fx->queue_max = l->queue_max;
	/* the length seen while full, if seen in this period: it may have drained since */
	fx->queue_known = l->queue_known && l->queue_at >= l->full_since;
	fx->queue = fx->queue_known ? l->queue : 0;
	fx->full_us = fx->queue_known ? rel_us(f, l->queue_at) : INT64_MIN;
	fx->full_from_us = rel_us(f, l->full_since);
	fx->full_exact = l->since_exact;
	/* INT64_MIN: still full when the attempt ended */
	fx->full_to_us = l->full || l->full_until > f->ts_end ? INT64_MIN :
			 rel_us(f, l->full_until);
	if ((it = add_ev(r, fx->full_us, CT_EV_ACCEPT_QUEUE_FULL))) {
		it->queue = fx->queue;
		it->queue_known = fx->queue_known;
		it->queue_max = fx->queue_max;
	}
}

/* The facts the flow's own record carries, and the evidence the kernel attached to it. */
static void flow_facts(struct correlator *c, struct ct_result *r, const struct flow_view *v)
{
	const struct ct_flow *f = &r->flow;
	struct ct_facts *fx = &r->facts;
	unsigned last = f->syn_retrans < CT_MAX_RETRANS ? f->syn_retrans : CT_MAX_RETRANS;

	fx->end = f->flags & CT_F_PENDING ? CT_END_PENDING :
		  f->flags & CT_F_CONNECT_ERR ? CT_END_CONNECT_ERROR :
		  f->state == CT_TCP_ESTABLISHED ? CT_END_ESTABLISHED : CT_END_CLOSED;
	fx->err = f->err ? f->err : f->err_report;
	fx->err_soft = f->err_soft > 0 ? f->err_soft : 0;
	fx->v6 = v->family == CT_AF_INET6;
	fx->dest_local = is_loopback(v->family, v->daddr) ||
			 !memcmp(v->saddr, v->daddr, addr_len(v->family));
	fx->no_history = f->flags & CT_F_NO_HISTORY;
	fx->evicted = f->flags & CT_F_EVICTED;
	fx->lossy = f->flags & CT_F_LOSSY;
	fx->simopen = f->flags & CT_F_SIMOPEN;
	fx->rst_received = f->flags & CT_F_RST_RCVD;
	fx->syn_retrans = f->syn_retrans;
	if (!fx->no_history && f->ts_end >= f->ts_start)
		fx->duration_ns = f->ts_end - f->ts_start;
	fx->slow = c->cfg.slow_ns && fx->duration_ns >= c->cfg.slow_ns;
	if (last)	/* the last retransmit is the SYN that got through: the losses cost its delay */
		fx->last_retrans_ns = (uint64_t)f->retrans_us[last - 1] * NS_PER_US;
	fx->full_us = fx->full_from_us = fx->full_to_us = INT64_MIN;
	if (f->drops)
		note_drop(fx, drop_name(c, f->drop_reason), f->drops, false);
	r->duration_ns = fx->duration_ns;
}

/* The evidence items the flow's own record gives. */
static void flow_evidence(struct correlator *c, struct ct_result *r)
{
	const struct ct_flow *f = &r->flow;
	const struct ct_facts *fx = &r->facts;
	struct ct_ev_item *it;

	if (fx->end == CT_END_CONNECT_ERROR && !f->sport) {
		if ((it = add_ev(r, 0, CT_EV_CONNECT_ERROR)))
			it->err = fx->err;
	} else if (!fx->no_history) {
		add_ev(r, 0, CT_EV_CONNECT);
	}
	for (unsigned i = 0; i < f->syn_retrans && i < CT_MAX_RETRANS; i++) {
		it = add_ev(r, fx->no_history ? INT64_MIN : (int64_t)f->retrans_us[i],
			    CT_EV_SYN_RETRANS);
		if (it)
			it->n = i + 1;
	}
	if (f->drops && (it = add_ev(r, INT64_MIN, CT_EV_DROP))) {
		it->n = f->drops;
		it->reason = drop_name(c, f->drop_reason);
	}
	if (fx->rst_received)
		add_ev(r, rel_us(f, f->ts_rst), CT_EV_RST_RECEIVED);
	if (f->err_report && (it = add_ev(r, rel_us(f, f->ts_err), CT_EV_ERROR)))
		it->err = f->err_report;
	if (fx->err_soft && (it = add_ev(r, INT64_MIN, CT_EV_ICMP_ERROR)))
		it->err = fx->err_soft;
	if (fx->simopen)
		add_ev(r, INT64_MIN, CT_EV_SIMOPEN);
}

static void sort_ev(struct ct_result *r)
{
	/* insertion sort: a few items; unknown times (in-kernel counts) last */
	for (unsigned i = 1; i < r->nr_ev; i++) {
		struct ct_ev_item x = r->ev[i];
		int64_t tx = x.t_us == INT64_MIN ? INT64_MAX : x.t_us;
		unsigned j = i;

		while (j > 0) {
			int64_t tp = r->ev[j - 1].t_us == INT64_MIN ? INT64_MAX : r->ev[j - 1].t_us;

			if (tp <= tx)
				break;
			r->ev[j] = r->ev[j - 1];
			j--;
		}
		r->ev[j] = x;
	}
}

/* Step 1: the facts of a flow and its evidence, into c->res. */
static void gather(struct correlator *c, const struct ct_flow *flow)
{
	struct ct_result *r = &c->res;
	struct ct_ev_item *it;
	struct flow_view v;

	memset(r, 0, offsetof(struct ct_result, ev));
	r->flow = *flow;
	flow_view(&v, flow);
	flow_facts(c, r, &v);
	flow_evidence(c, r);
	claim_evidence(c, r, &v);
	claim_listener(c, r, &v);
	if (r->facts.end == CT_END_ESTABLISHED)
		add_ev(r, rel_us(flow, flow->ts_end), CT_EV_ESTABLISHED);
	else if ((r->facts.end == CT_END_CLOSED || (r->facts.end == CT_END_CONNECT_ERROR &&
						    flow->sport)) &&
		 (it = add_ev(r, rel_us(flow, flow->ts_end), CT_EV_CLOSED)))
		it->err = r->facts.err;
	sort_ev(r);
}

static void decide(struct correlator *c, const struct ct_flow *flow)
{
	struct ct_result *r = &c->res;
	struct ct_class k;

	gather(c, flow);
	k = ct_classify(&r->facts);
	r->verdict = k.verdict;
	r->cause = k.cause;
	r->inferred = k.inferred;
	if (r->facts.no_history)
		c->stats.evicted_flows++;
	c->stats.verdicts[r->verdict]++;
	if (c->cfg.emit)
		c->cfg.emit(r, c->cfg.emit_ctx);
}

static int hold_flow(struct correlator *c, const struct ct_flow *f)
{
	struct held *h = malloc(sizeof(*h));

	if (!h)
		return -ENOMEM;
	h->f = *f;
	h->next = NULL;
	if (c->held_tail)
		c->held_tail->next = h;
	else
		c->held_head = h;
	c->held_tail = h;
	c->nr_held++;
	return 0;
}

static void release_held(struct correlator *c, uint64_t now, bool all)
{
	/* flows arrive in ts_end order, give or take a CPU: stop at the first young one */
	while (c->held_head && (all || c->held_head->f.ts_end + c->cfg.hold_ns <= now)) {
		struct held *h = c->held_head;

		c->held_head = h->next;
		if (!c->held_head)
			c->held_tail = NULL;
		c->nr_held--;
		decide(c, &h->f);
		free(h);
	}
}

static int feed_flow(struct correlator *c, const void *data, size_t len, uint64_t now)
{
	struct ct_flow f;

	if (len < sizeof(f))
		return -EINVAL;
	memcpy(&f, data, sizeof(f));	/* ring records are only 8-byte aligned */
	if (f.family != CT_AF_INET && f.family != CT_AF_INET6)
		return -EINVAL;
	if (f.ts_end < f.ts_start)
		f.ts_end = f.ts_start;
	if (c->cfg.hold_ns && !(f.flags & CT_F_PENDING)) {
		int err = hold_flow(c, &f);

		release_held(c, now, false);
		return err;
	}
	decide(c, &f);
	return 0;
}

static int feed_evidence(struct correlator *c, const void *data, size_t len)
{
	struct ct_evidence e;

	if (len < sizeof(e))
		return -EINVAL;
	memcpy(&e, data, sizeof(e));
	if (e.family != CT_AF_INET && e.family != CT_AF_INET6)
		return -EINVAL;
	if (e.type == CT_REC_LISTEN_FULL) {
		listener_update(c, &e);
		return 0;
	}
	return ev_add(c, &e);
}

int corr_feed(struct correlator *c, const void *data, size_t len, uint64_t now)
{
	__u8 type = len ? *(const __u8 *)data : 0;
	int err;

	c->stats.records++;
	switch (type) {
	case CT_REC_FLOW:
		err = feed_flow(c, data, len, now);
		break;
	case CT_REC_DROP:
	case CT_REC_RST_SENT:
	case CT_REC_LISTEN_FULL:
	case CT_REC_ICMP_SENT:
		err = feed_evidence(c, data, len);
		break;
	default:
		err = -EINVAL;
		break;
	}
	if (err == -EINVAL)
		c->stats.malformed++;
	return err;
}

void corr_tick(struct correlator *c, uint64_t now)
{
	release_held(c, now, false);
	while (c->oldest && c->oldest->e.ts + c->cfg.evidence_ttl_ns < now) {
		ev_unlink(c, c->oldest);
		c->stats.evidence_expired++;
	}
}

void corr_flush(struct correlator *c)
{
	release_held(c, 0, true);
}
