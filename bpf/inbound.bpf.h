/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The incoming attempts' state and what the packet hooks do with it, shared
 * by inbound.bpf.c (which defines these maps and follows a SYN at its
 * listener) and evidence.bpf.c, whose one program per packet tracepoint
 * (kfree_skb, tcp_send_reset) parses the packet once and calls the inbound
 * part here. The maps are defined in inbound.bpf.c, linked before
 * evidence.bpf.c (see conntrace.bpf.h on the linker). Include after
 * conntrace.bpf.h and skb.bpf.h.
 */
#ifndef CONNTRACE_INBOUND_BPF_H
#define CONNTRACE_INBOUND_BPF_H

struct in_key {
	__u8  raddr[16];	/* remote client */
	__u8  laddr[16];	/* local end */
	__u16 rport;
	__u16 lport;
	__u32 netns;
	__u32 family;
};

/* incoming attempts with something to tell, by 4-tuple and namespace */
typedef struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct in_key);
	__type(value, struct ct_inbound);
} in_attempts_map_t;
extern in_attempts_map_t in_attempts SEC(".maps");

/* Listeners seen at listen(): owner, and sk_drops at the last SYN. */
struct in_lkey {
	__u32 netns;
	__u32 port;
};

struct in_listener {
	__u64 sk;
	__u32 pid;
	__u32 drops;		/* sk_drops when its last SYN was looked at */
	char  comm[CT_COMM_LEN];
	__u32 qlen;		/* its SYN queue after its last SYN; ~0: not known */
	__u32 pad;
};

typedef struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct in_lkey);
	__type(value, struct in_listener);
} in_listeners_map_t;
extern in_listeners_map_t in_listeners SEC(".maps");

/* The skb this CPU last answered with an RST: its NO_SOCKET drop is no news. */
typedef struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} in_rst_skb_map_t;
extern in_rst_skb_map_t in_rst_skb SEC(".maps");

/* The key of a SYN that arrived: its source is the remote client. */
static __always_inline void key_of_syn(struct in_key *k, const struct ct_evidence *e, __u32 netns)
{
	__builtin_memcpy(k->raddr, e->saddr, sizeof(k->raddr));
	__builtin_memcpy(k->laddr, e->daddr, sizeof(k->laddr));
	k->rport = e->sport;
	k->lport = e->dport;
	k->netns = netns;
	k->family = e->family;
}

/* A new attempt (zeroed): first SYN now, the listener's owner if known. */
static __always_inline void attempt_fresh(struct ct_inbound *fresh, const struct in_key *k,
					  __u64 now)
{
	struct in_lkey lk = { .netns = k->netns, .port = k->lport };
	struct in_listener *ls;

	fresh->type = CT_REC_INBOUND;
	fresh->family = k->family;
	fresh->has_history = 1;
	fresh->sport = k->rport;
	fresh->dport = k->lport;
	fresh->netns = k->netns;
	fresh->ts_first = now;
	__builtin_memcpy(fresh->saddr, k->raddr, sizeof(fresh->saddr));
	__builtin_memcpy(fresh->daddr, k->laddr, sizeof(fresh->daddr));
	ls = bpf_map_lookup_elem(&in_listeners, &lk);
	if (ls) {
		fresh->pid = ls->pid;
		__builtin_memcpy(fresh->comm, ls->comm, sizeof(fresh->comm));
	}
}

/* The attempt's entry, made if missing. */
static __always_inline struct ct_inbound *attempt_get(const struct in_key *k, __u64 now)
{
	struct ct_inbound *a = bpf_map_lookup_elem(&in_attempts, k), fresh = {};

	if (a)
		return a;
	attempt_fresh(&fresh, k, now);
	bpf_map_update_elem(&in_attempts, k, &fresh, BPF_NOEXIST);
	return bpf_map_lookup_elem(&in_attempts, k);
}

/* The attempt a SYN seen in netns belongs to, that SYN counted; NULL when
 * the namespace is filtered out or the table has no room. */
static __always_inline struct ct_inbound *syn_attempt(struct in_key *k, const struct ct_evidence *e,
						      __u32 netns, __u64 now)
{
	struct ct_inbound *a;

	if (!netns_wanted(netns))
		return NULL;
	key_of_syn(k, e, netns);
	a = attempt_get(k, now);
	if (a)
		a->syns++;
	return a;
}

static __always_inline void attempt_send(struct ct_inbound *a, __u8 event, __u64 now)
{
	a->event = event;
	a->ts_last = now;
	emit(a, sizeof(*a));
}

/*
 * This host answered SYN e, seen in netns, with an RST: its attempt ends
 * here. It is sent at once and its entry, if it had one, deleted; one that
 * had none is built on the stack, never stored (a refused storm would
 * otherwise insert and delete an entry per attempt).
 */
static __always_inline void syn_refused(const struct ct_evidence *e, __u32 netns, __u64 now)
{
	struct ct_inbound *a, fresh = {};
	struct in_key k = {};

	if (!netns_wanted(netns))
		return;
	key_of_syn(&k, e, netns);
	a = bpf_map_lookup_elem(&in_attempts, &k);
	if (a) {
		a->syns++;
		a->rsts++;
		attempt_send(a, CT_IN_RST, now);
		bpf_map_delete_elem(&in_attempts, &k);
		return;
	}
	attempt_fresh(&fresh, &k, now);
	fresh.syns = 1;
	fresh.rsts = 1;
	attempt_send(&fresh, CT_IN_RST, now);
}

static __always_inline bool syn_only(const struct ct_evidence *e)
{
	return (e->tcp_flags & (CT_TCP_SYN | CT_TCP_ACK | CT_TCP_RST)) == CT_TCP_SYN;
}

/*
 * The namespace of a SYN at its listener: TCP's receive path has cleared
 * skb->dev by then (6.18), but the input route is still attached.
 */
static __always_inline __u32 syn_netns(const struct sk_buff *skb)
{
	unsigned long refdst = skb->_skb_refdst;	/* skb: a BTF argument */
	struct dst_entry *dst = (struct dst_entry *)(refdst & ~1UL);
	struct net_device *dev;
	__u32 netns = skb_netns(skb);

	if (netns || !dst)
		return netns;
	dev = BPF_CORE_READ(dst, dev);
	return dev ? BPF_CORE_READ(dev, nd_net.net, ns.inum) : 0;
}

/*
 * A SYN (e, parsed from skb, within the port filter) dropped before any
 * listener saw it (netfilter, no socket, ...); skb had no socket.
 */
static __always_inline void in_syn_dropped(const struct sk_buff *skb, const struct ct_evidence *e,
					   __u32 reason)
{
	struct ct_inbound *a;
	struct in_key k = {};
	__u32 zero = 0;
	__u64 *last, now;
	bool no_socket;

	no_socket = bpf_core_enum_value_exists(enum skb_drop_reason, SKB_DROP_REASON_NO_SOCKET) &&
		    reason == bpf_core_enum_value(enum skb_drop_reason, SKB_DROP_REASON_NO_SOCKET);
	last = bpf_map_lookup_elem(&in_rst_skb, &zero);
	/*
	 * Told at the RST, right before on this CPU. Cleared once used: TCP's
	 * clones reuse their skb's address (fclones), so a later SYN of another
	 * attempt may come in the same one.
	 */
	if (no_socket && last && *last == (__u64)skb) {
		*last = 0;
		return;
	}
	now = bpf_ktime_get_boot_ns();
	if (no_socket) {
		/* tcp_v4_rcv() answered it with an RST that tcp_send_reset missed
		 * (6.1 traces only RSTs sent with a socket) */
		syn_refused(e, syn_netns(skb), now);
		return;
	}
	a = syn_attempt(&k, e, syn_netns(skb), now);
	if (!a)
		return;
	if (bpf_core_enum_value_exists(enum skb_drop_reason, SKB_DROP_REASON_NETFILTER_DROP) &&
	    reason == bpf_core_enum_value(enum skb_drop_reason, SKB_DROP_REASON_NETFILTER_DROP)) {
		a->nf_drops++;
	} else {
		a->other_drops++;
		a->drop_reason = reason;
	}
	attempt_send(a, CT_IN_SYN_DROP, now);
}

/* This host answered a SYN (e, parsed from skb, within the port filter) with an RST. */
static __always_inline void in_syn_reset(const struct sock *sk, const struct sk_buff *skb,
					 const struct ct_evidence *e)
{
	__u32 netns = sk ? sk_netns(sk) : syn_netns(skb), zero = 0;
	__u64 *last;

	if (!netns_wanted(netns))
		return;
	syn_refused(e, netns, bpf_ktime_get_boot_ns());
	last = bpf_map_lookup_elem(&in_rst_skb, &zero);
	if (last)
		*last = (__u64)skb;
}

#endif
