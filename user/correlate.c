// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The correlator. A finished flow arrives whole from the kernel with what the
 * kernel could attach to its socket (retransmits, RST received, errors, drops
 * of packets it owned). Evidence that has no socket (a SYN dropped on input,
 * the RST this host's stack sent for a port with no listener, a listener with
 * a full accept queue) arrives as separate records and waits here, indexed by
 * its addresses, until a flow claims it or it expires.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
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
	bool full;
	__u64 full_since;	/* start of the current or last full period */
	__u64 full_until;	/* end of the last full period; 0 while full */
	__u32 queue, queue_max;
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

static const char *const verdict_names[CT_V_MAX] = {
	"ok", "slow", "timeout", "refused", "unreachable", "abandoned", "pending",
};
static const char *const verdict_labels[CT_V_MAX] = {
	"OK", "SLOW", "TIMEOUT", "REFUSED", "UNREACHABLE", "ABANDONED", "PENDING",
};
static const char *const cause_names[CT_C_MAX] = {
	[CT_C_ESTABLISHED] = "established",
	[CT_C_NETFILTER_DROP] = "netfilter_drop",
	[CT_C_NO_LISTENER] = "no_listener",
	[CT_C_ACCEPT_QUEUE_FULL] = "accept_queue_full",
	[CT_C_RST_RECEIVED] = "rst_received",
	[CT_C_NO_SYNACK] = "no_synack",
	[CT_C_ICMP_UNREACHABLE] = "icmp_unreachable",
	[CT_C_NO_ROUTE] = "no_route",
	[CT_C_APP_CLOSED] = "app_closed",
	[CT_C_SYN_RETRANSMIT] = "syn_retransmit",
	[CT_C_SLOW_HANDSHAKE] = "slow_handshake",
	[CT_C_LOCAL_DROP] = "local_drop",
	[CT_C_LOCAL_ERROR] = "local_error",
	[CT_C_UNKNOWN] = "unknown",
};
static const char *const ev_names[CT_EV_MAX] = {
	[CT_EV_CONNECT] = "connect",
	[CT_EV_SYN_RETRANS] = "syn_retransmit",
	[CT_EV_DROP] = "drop",
	[CT_EV_RST_SENT] = "rst_sent",
	[CT_EV_RST_RECEIVED] = "rst_received",
	[CT_EV_ERROR] = "socket_error",
	[CT_EV_LISTEN_FULL] = "listen_full",
	[CT_EV_ESTABLISHED] = "established",
	[CT_EV_CLOSED] = "closed",
	[CT_EV_CONNECT_ERROR] = "connect_error",
};

const char *ct_verdict_name(enum ct_verdict v)
{
	return (unsigned)v < CT_V_MAX ? verdict_names[v] : "?";
}

const char *ct_verdict_label(enum ct_verdict v)
{
	return (unsigned)v < CT_V_MAX ? verdict_labels[v] : "?";
}

const char *ct_cause_name(enum ct_cause c)
{
	return (unsigned)c < CT_C_MAX ? cause_names[c] : "?";
}

const char *ct_ev_kind_name(enum ct_ev_kind k)
{
	return (unsigned)k < CT_EV_MAX ? ev_names[k] : "?";
}

int ct_verdict_parse(const char *s)
{
	for (int v = 0; v < CT_V_MAX; v++)
		if (!strcasecmp(s, verdict_names[v]))
			return v;
	return -1;
}

const char *ct_errno_name(int err)
{
	/* glibc knows every name; NULL for 0 and numbers it does not know */
	return err > 0 ? strerrorname_np(err) : NULL;
}

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

static size_t addr_len(__u8 family)
{
	return family == CT_AF_INET ? 4 : 16;
}

static bool is_loopback(__u8 family, const __u8 *a)
{
	static const __u8 v6_lo[16] = { [15] = 1 };
	static const __u8 v4_mapped[12] = { [10] = 0xff, [11] = 0xff };

	if (family == CT_AF_INET)
		return a[0] == 127;
	return !memcmp(a, v6_lo, 16) || (!memcmp(a, v4_mapped, 12) && a[12] == 127);
}

static bool is_v4_mapped(const __u8 *a)
{
	static const __u8 prefix[12] = { [10] = 0xff, [11] = 0xff };

	return !memcmp(a, prefix, 12);
}

/*
 * The addresses a flow's packets carry: an IPv6 socket connected to an
 * IPv4-mapped address sends IPv4 packets.
 */
struct flow_view {
	__u8 family;
	__u8 saddr[16], daddr[16];
};

static void flow_view(struct flow_view *v, const struct ct_flow *f)
{
	memset(v, 0, sizeof(*v));
	if (f->family == CT_AF_INET6 && is_v4_mapped(f->saddr) && is_v4_mapped(f->daddr)) {
		v->family = CT_AF_INET;
		memcpy(v->saddr, f->saddr + 12, 4);
		memcpy(v->daddr, f->daddr + 12, 4);
	} else {
		v->family = f->family;
		memcpy(v->saddr, f->saddr, 16);
		memcpy(v->daddr, f->daddr, 16);
	}
}

static bool is_any(__u8 family, const __u8 *a)
{
	for (size_t i = 0; i < addr_len(family); i++)
		if (a[i])
			return false;
	return true;
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
	b = tuple_bucket(e->family, e->saddr, e->sport, e->daddr, e->dport);
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

static bool listener_key_eq(const struct listener *l, __u32 netns, __u8 family,
			    const __u8 *addr, __u16 port)
{
	return l->netns == netns && l->family == family && l->port == port &&
	       !memcmp(l->addr, addr, addr_len(family));
}

static void listener_update(struct correlator *c, const struct ct_evidence *e)
{
	struct listener *l = NULL, *oldest = NULL;
	bool full = e->queue > e->queue_max;

	for (size_t i = 0; i < c->nr_listeners; i++) {
		struct listener *x = &c->listeners[i];

		if (listener_key_eq(x, e->netns, e->family, e->saddr, e->sport)) {
			l = x;
			break;
		}
		if (!oldest || x->seen < oldest->seen)
			oldest = x;
	}
	if (!l) {
		l = c->nr_listeners < MAX_LISTENERS ? &c->listeners[c->nr_listeners++] : oldest;
		memset(l, 0, sizeof(*l));
		l->netns = e->netns;
		l->family = e->family;
		l->port = e->sport;
		memcpy(l->addr, e->saddr, addr_len(e->family));
	}
	if (full && !l->full) {
		l->full_since = e->ts;
		l->full_until = 0;
	} else if (!full && l->full) {
		l->full_until = e->ts;
	}
	l->full = full;
	l->queue = e->queue;
	l->queue_max = e->queue_max;
	l->seen = e->ts;
}

/*
 * A listener on this host for the flow's destination that was full while it
 * tried. A wildcard listener (0.0.0.0, or :: which takes IPv4 too) only
 * answers for its own namespace; so does a loopback one, since loopback
 * addresses repeat in every namespace.
 */
static const struct listener *listener_full_for(const struct correlator *c,
						const struct ct_flow *f)
{
	struct flow_view v;

	flow_view(&v, f);
	for (size_t i = 0; i < c->nr_listeners; i++) {
		const struct listener *l = &c->listeners[i];
		bool any = is_any(l->family, l->addr);

		if (l->port != f->dport)
			continue;
		if (any) {
			if (l->family != v.family && !(l->family == CT_AF_INET6 && v.family == CT_AF_INET))
				continue;
			if (l->netns != f->netns)
				continue;
		} else {
			if (l->family != v.family || memcmp(l->addr, v.daddr, addr_len(v.family)))
				continue;
			if (l->netns != f->netns && is_loopback(v.family, v.daddr))
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

/* ---- verdicts ---- */

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

struct facts {
	unsigned nf_drops, other_drops, listen_drops;
	const char *other_reason;
	bool synack_dropped;
	bool local_rst;		/* this host's stack answered the SYN with an RST */
	const char *rst_reason;
	bool no_socket_drop;
	const struct listener *full_listener;
};

static const char *drop_name(const struct correlator *c, __u32 reason)
{
	const char *n = c->cfg.drop_reason_name ? c->cfg.drop_reason_name(reason, c->cfg.drop_names) : NULL;

	return n ? n : "?";
}

static void note_drop(struct facts *fx, const char *name, unsigned count, bool reply)
{
	if (!strcmp(name, "NETFILTER_DROP"))
		fx->nf_drops += count;
	else if (!strcmp(name, "TCP_LISTEN_OVERFLOW"))
		fx->listen_drops += count;
	else if (!strcmp(name, "NO_SOCKET"))
		fx->no_socket_drop = true;
	else {
		fx->other_drops += count;
		fx->other_reason = name;
	}
	if (reply)
		fx->synack_dropped = true;
}

/* Moves the evidence waiting for this flow into the result. */
static void claim_evidence(struct correlator *c, struct ct_result *r, struct facts *fx)
{
	const struct ct_flow *f = &r->flow;
	struct ev_node *n, *next;
	struct flow_view v;
	size_t b;

	if (f->flags & CT_F_CONNECT_ERR && !f->sport)
		return;	/* no packet ever left */
	flow_view(&v, f);
	b = tuple_bucket(v.family, v.saddr, f->sport, v.daddr, f->dport);
	for (n = c->buckets[b]; n; n = next) {
		const struct ct_evidence *e = &n->e;
		const char *reason = NULL;
		struct ct_ev_item *it;
		bool reply;

		next = n->hnext;
		if (!ev_matches(f, &v, e, c->cfg.hold_ns, &reply))
			continue;
		if (e->type == CT_REC_DROP) {
			reason = drop_name(c, e->reason);
			note_drop(fx, reason, 1, reply);
		} else {
			if (e->has_reason && c->cfg.rst_reason_name)
				reason = c->cfg.rst_reason_name(e->reason, c->cfg.rst_names);
			fx->local_rst = true;
			fx->rst_reason = reason;
		}
		it = add_ev(r, rel_us(f, e->ts), e->type == CT_REC_DROP ? CT_EV_DROP : CT_EV_RST_SENT);
		if (it) {
			it->synack = reply;
			it->n = 1;
			it->reason = reason;
		}
		ev_unlink(c, n);
	}
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

static void fmt_secs(char *buf, size_t sz, uint64_t ns)
{
	if (ns >= 10 * NS_PER_SEC)
		snprintf(buf, sz, "%.1f s", ns / 1e9);
	else if (ns >= NS_PER_SEC)
		snprintf(buf, sz, "%.2f s", ns / 1e9);
	else
		snprintf(buf, sz, "%.1f ms", ns / 1e6);
}

static void fmt_dest(char *buf, size_t sz, const struct ct_flow *f)
{
	char a[INET6_ADDRSTRLEN];

	if (!inet_ntop(f->family == CT_AF_INET ? AF_INET : AF_INET6, f->daddr, a, sizeof(a)))
		snprintf(a, sizeof(a), "?");
	snprintf(buf, sz, f->family == CT_AF_INET ? "%s:%u" : "[%s]:%u", a, f->dport);
}

/* The destination is this host: loopback, or the flow's own source address. */
static bool dest_is_local(const struct ct_flow *f)
{
	struct flow_view v;

	flow_view(&v, f);
	return is_loopback(v.family, v.daddr) ||
	       !memcmp(v.saddr, v.daddr, addr_len(v.family));
}

/* Why SYNs went unanswered: shared by TIMEOUT, PENDING and SLOW. */
static enum ct_cause stall_cause(const struct ct_result *r, const struct facts *fx)
{
	if (fx->nf_drops)
		return CT_C_NETFILTER_DROP;
	if (fx->listen_drops || fx->full_listener)
		return CT_C_ACCEPT_QUEUE_FULL;
	if (fx->other_drops)
		return CT_C_LOCAL_DROP;
	/* a SYN to this host itself was not lost beyond it: do not say so */
	if (r->flow.syn_retrans && !dest_is_local(&r->flow))
		return CT_C_NO_SYNACK;
	return CT_C_UNKNOWN;
}

static void stall_detail(char *buf, size_t sz, enum ct_cause cause, const struct ct_result *r,
			 const struct facts *fx)
{
	const struct ct_flow *f = &r->flow;
	const char *what = fx->synack_dropped ? "SYN-ACKs" : "SYNs";
	char dest[80];

	fmt_dest(dest, sizeof(dest), f);
	switch (cause) {
	case CT_C_NETFILTER_DROP:
		snprintf(buf, sz, "netfilter on this host dropped %u of this flow's %s to %s "
			 "(reason NETFILTER_DROP): check the nftables/iptables rules for port %u",
			 fx->nf_drops, what, dest, f->dport);
		break;
	case CT_C_ACCEPT_QUEUE_FULL:
		if (fx->full_listener)
			snprintf(buf, sz, "the listener on %s (this host, netns %u) had a full accept "
				 "queue (%u queued, limit %u) while the SYNs arrived: the application "
				 "does not accept() fast enough, or its backlog is too small",
				 dest, fx->full_listener->netns, fx->full_listener->queue,
				 fx->full_listener->queue_max);
		else
			snprintf(buf, sz, "the listener on %s dropped %u SYNs on a full accept queue "
				 "(reason TCP_LISTEN_OVERFLOW): the application does not accept() fast "
				 "enough, or its backlog is too small", dest, fx->listen_drops);
		break;
	case CT_C_LOCAL_DROP:
		snprintf(buf, sz, "this host dropped %u of this flow's %s to %s, reason %s",
			 fx->other_drops, what, dest, fx->other_reason ? fx->other_reason : "?");
		break;
	case CT_C_NO_SYNACK:
		snprintf(buf, sz, "%u SYN%s left for %s and no SYN-ACK came back, with no drop seen "
			 "on this host: lost beyond it (a remote firewall, or the host is down)",
			 f->syn_retrans + 1, f->syn_retrans ? "s" : "", dest);
		break;
	default:
		if (f->syn_retrans && dest_is_local(f))
			snprintf(buf, sz, "%u SYNs to %s, on this host, went unanswered and no drop "
				 "was seen: a full accept queue this kernel does not show (try "
				 "`conntrace listen`), or a drop without a traced reason",
				 f->syn_retrans + 1, dest);
		else
			snprintf(buf, sz, "the evidence does not say why %s did not answer", dest);
		break;
	}
}

static void decide(struct correlator *c, const struct ct_flow *flow)
{
	struct ct_result *r = &c->res;
	const struct ct_flow *f = &r->flow;
	struct facts fx = { 0 };
	struct ct_ev_item *it;
	char dest[80], t1[32], t2[32];
	int err;

	memset(r, 0, offsetof(struct ct_result, ev));
	r->flow = *flow;
	if (!(f->flags & CT_F_NO_HISTORY) && f->ts_end >= f->ts_start)
		r->duration_ns = f->ts_end - f->ts_start;
	err = f->err ? f->err : f->err_report;
	fmt_dest(dest, sizeof(dest), f);

	/* evidence the kernel attached to the socket */
	if (f->flags & CT_F_CONNECT_ERR && !f->sport) {
		if ((it = add_ev(r, 0, CT_EV_CONNECT_ERROR)))
			it->err = err;
	} else if (!(f->flags & CT_F_NO_HISTORY)) {
		add_ev(r, 0, CT_EV_CONNECT);
	}
	for (unsigned i = 0; i < f->syn_retrans && i < CT_MAX_RETRANS; i++) {
		it = add_ev(r, f->flags & CT_F_NO_HISTORY ? INT64_MIN : (int64_t)f->retrans_us[i],
			    CT_EV_SYN_RETRANS);
		if (it)
			it->n = i + 1;
	}
	if (f->drops) {
		const char *reason = drop_name(c, f->drop_reason);

		note_drop(&fx, reason, f->drops, false);
		if ((it = add_ev(r, INT64_MIN, CT_EV_DROP))) {
			it->n = f->drops;
			it->reason = reason;
		}
	}
	if (f->flags & CT_F_RST_RCVD)
		add_ev(r, rel_us(f, f->ts_rst), CT_EV_RST_RECEIVED);
	if (f->err_report && (it = add_ev(r, rel_us(f, f->ts_err), CT_EV_ERROR)))
		it->err = f->err_report;
	claim_evidence(c, r, &fx);
	fx.full_listener = listener_full_for(c, f);
	if (fx.full_listener && f->syn_retrans) {
		if ((it = add_ev(r, INT64_MIN, CT_EV_LISTEN_FULL))) {
			it->queue = fx.full_listener->queue;
			it->queue_max = fx.full_listener->queue_max;
		}
	} else {
		fx.full_listener = NULL;	/* a full queue costs only retransmits */
	}
	if (f->state == CT_TCP_ESTABLISHED)
		add_ev(r, rel_us(f, f->ts_end), CT_EV_ESTABLISHED);
	else if (!(f->flags & CT_F_PENDING) && !(f->flags & CT_F_CONNECT_ERR && !f->sport) &&
		 (it = add_ev(r, rel_us(f, f->ts_end), CT_EV_CLOSED)))
		it->err = err;
	sort_ev(r);

	fmt_secs(t1, sizeof(t1), r->duration_ns);
	if (f->flags & CT_F_PENDING) {
		r->verdict = CT_V_PENDING;
		r->cause = stall_cause(r, &fx);
		if (r->cause == CT_C_UNKNOWN)
			snprintf(r->detail, sizeof(r->detail), "still connecting to %s after %s when "
				 "conntrace stopped; no SYN retransmitted yet", dest, t1);
		else
			stall_detail(r->detail, sizeof(r->detail), r->cause, r, &fx);
	} else if (f->flags & CT_F_CONNECT_ERR) {
		const char *en = ct_errno_name(err);

		if (err == ENETUNREACH || err == EHOSTUNREACH) {
			r->verdict = CT_V_UNREACHABLE;
			r->cause = CT_C_NO_ROUTE;
			snprintf(r->detail, sizeof(r->detail), "connect() failed at once with %s: no "
				 "route to %s in netns %u, no SYN was sent (see `ip route get`)",
				 en, dest, f->netns);
		} else if (err == EADDRNOTAVAIL) {
			r->verdict = CT_V_UNREACHABLE;
			r->cause = CT_C_LOCAL_ERROR;
			snprintf(r->detail, sizeof(r->detail), "connect() failed at once with "
				 "EADDRNOTAVAIL: no free local port for %s "
				 "(net.ipv4.ip_local_port_range exhausted)", dest);
		} else {
			r->verdict = CT_V_UNREACHABLE;
			r->cause = CT_C_LOCAL_ERROR;
			snprintf(r->detail, sizeof(r->detail), "connect() to %s failed at once with "
				 "%s (errno %d)", dest, en ? en : "an error", err);
		}
	} else if (f->state == CT_TCP_ESTABLISHED) {
		uint64_t cost = 0;

		if (f->syn_retrans) {
			unsigned last = f->syn_retrans < CT_MAX_RETRANS ? f->syn_retrans : CT_MAX_RETRANS;

			cost = (uint64_t)f->retrans_us[last - 1] * NS_PER_US;
			r->verdict = CT_V_SLOW;
			r->cause = CT_C_SYN_RETRANSMIT;
			fmt_secs(t2, sizeof(t2), cost);
			/* the last retransmit is the SYN that got through: the losses cost its delay */
			snprintf(r->detail, sizeof(r->detail), "%u SYN%s to %s lost (%s); SYN #%u, "
				 "sent %s after the first, got through: connected after %s",
				 f->syn_retrans, f->syn_retrans > 1 ? "s" : "", dest,
				 fx.nf_drops ? "dropped by netfilter on this host" :
				 fx.full_listener || fx.listen_drops ? "the listener's accept queue was full" :
				 fx.other_drops ? "dropped on this host" :
				 "no drop seen on this host: lost beyond it", f->syn_retrans + 1, t2, t1);
		} else if (r->duration_ns >= c->cfg.slow_ns && c->cfg.slow_ns) {
			r->verdict = CT_V_SLOW;
			r->cause = CT_C_SLOW_HANDSHAKE;
			snprintf(r->detail, sizeof(r->detail), "the SYN-ACK from %s took %s with no "
				 "SYN lost: a slow path or a busy peer", dest, t1);
		} else {
			r->verdict = CT_V_OK;
			r->cause = CT_C_ESTABLISHED;
			snprintf(r->detail, sizeof(r->detail), "connected to %s in %s", dest, t1);
		}
	} else if (!err) {
		r->verdict = CT_V_ABANDONED;
		r->cause = CT_C_APP_CLOSED;
		snprintf(r->detail, sizeof(r->detail), "the application closed the socket after %s "
			 "while still connecting to %s (%u SYN retransmit%s%s): its own timeout is "
			 "shorter than the kernel's", t1, dest, f->syn_retrans,
			 f->syn_retrans == 1 ? "" : "s",
			 fx.nf_drops ? ", its SYNs were being dropped by netfilter on this host" :
			 fx.full_listener ? ", the listener's accept queue was full" : "");
	} else if (err == ETIMEDOUT) {
		r->verdict = CT_V_TIMEOUT;
		r->cause = stall_cause(r, &fx);
		stall_detail(r->detail, sizeof(r->detail), r->cause, r, &fx);
	} else if (err == ECONNREFUSED || err == ECONNRESET) {
		r->verdict = CT_V_REFUSED;
		if (fx.local_rst && (!fx.rst_reason || !strcmp(fx.rst_reason, "NO_SOCKET"))) {
			r->cause = CT_C_NO_LISTENER;
			snprintf(r->detail, sizeof(r->detail), "nothing listens on %s: this host's TCP "
				 "stack answered the SYN with an RST (netns %u)", dest, f->netns);
		} else if (fx.no_socket_drop) {
			r->cause = CT_C_NO_LISTENER;
			snprintf(r->detail, sizeof(r->detail), "nothing listens on %s: this host "
				 "dropped the SYN with reason NO_SOCKET and sent an RST (netns %u)",
				 dest, f->netns);
		} else if (fx.local_rst || f->flags & CT_F_RST_RCVD) {
			r->cause = CT_C_RST_RECEIVED;
			if (fx.local_rst)
				snprintf(r->detail, sizeof(r->detail), "this host's TCP stack answered "
					 "the SYN to %s with an RST, reason %s", dest, fx.rst_reason);
			else
				snprintf(r->detail, sizeof(r->detail), "an RST came back from %s that "
					 "this host's TCP stack did not send: the peer has no listener "
					 "there, or a firewall rejects the connection", dest);
		} else {
			r->cause = CT_C_ICMP_UNREACHABLE;
			snprintf(r->detail, sizeof(r->detail), "refused without an RST: an ICMP port "
				 "unreachable came back from %s", dest);
		}
	} else if (err == EHOSTUNREACH || err == ENETUNREACH || err == EHOSTDOWN ||
		   err == ENETDOWN || err == ENONET) {
		r->verdict = CT_V_UNREACHABLE;
		r->cause = CT_C_ICMP_UNREACHABLE;
		snprintf(r->detail, sizeof(r->detail), "%s after %u SYN%s: an ICMP unreachable came "
			 "back for %s (a router or the host says it cannot be reached)",
			 ct_errno_name(err), f->syn_retrans + 1, f->syn_retrans ? "s" : "", dest);
	} else {
		const char *en = ct_errno_name(err);

		r->verdict = CT_V_UNREACHABLE;
		r->cause = CT_C_UNKNOWN;
		snprintf(r->detail, sizeof(r->detail), "the attempt to %s failed with %s (errno %d); "
			 "the evidence does not say why", dest, en ? en : "an error", err);
	}
	/*
	 * These causes rest on evidence that did not come (no local RST, no
	 * drop): when the kernel lost records while the attempt ran, that
	 * absence proves nothing.
	 */
	if (f->flags & CT_F_LOSSY && (r->cause == CT_C_RST_RECEIVED || r->cause == CT_C_NO_SYNACK ||
				      r->cause == CT_C_ICMP_UNREACHABLE)) {
		size_t l = strlen(r->detail);

		snprintf(r->detail + l, sizeof(r->detail) - l, "; but the kernel lost records while "
			 "it ran (ring buffer full), so evidence may be missing: cause unknown");
		r->cause = CT_C_UNKNOWN;
	}
	if (f->flags & CT_F_NO_HISTORY) {
		size_t l = strlen(r->detail);

		snprintf(r->detail + l, sizeof(r->detail) - l, " [%s: owner and SYN history unknown]",
			 f->flags & CT_F_EVICTED ? "flow-table entry evicted" :
			 "began before conntrace started");
		c->stats.evicted_flows++;
	}
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

int corr_feed(struct correlator *c, const void *data, size_t len, uint64_t now)
{
	__u8 type;

	c->stats.records++;
	if (!len) {
		c->stats.malformed++;
		return -EINVAL;
	}
	type = *(const __u8 *)data;
	if (type == CT_REC_FLOW) {
		struct ct_flow f;

		if (len < sizeof(f)) {
			c->stats.malformed++;
			return -EINVAL;
		}
		memcpy(&f, data, sizeof(f));	/* ring records are only 8-byte aligned */
		if ((f.family != CT_AF_INET && f.family != CT_AF_INET6)) {
			c->stats.malformed++;
			return -EINVAL;
		}
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
	if (type == CT_REC_DROP || type == CT_REC_RST_SENT || type == CT_REC_LISTEN_FULL) {
		struct ct_evidence e;

		if (len < sizeof(e)) {
			c->stats.malformed++;
			return -EINVAL;
		}
		memcpy(&e, data, sizeof(e));
		if (e.family != CT_AF_INET && e.family != CT_AF_INET6) {
			c->stats.malformed++;
			return -EINVAL;
		}
		if (type == CT_REC_LISTEN_FULL) {
			listener_update(c, &e);
			return 0;
		}
		return ev_add(c, &e);
	}
	c->stats.malformed++;
	return -EINVAL;
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
