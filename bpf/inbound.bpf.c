// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * conntrace kernel side, the incoming attempts: a SYN that arrived for a
 * local address, followed by its 4-tuple and namespace until its handshake
 * completes or this host answers it with an RST. A record (struct
 * ct_inbound, counts so far) goes out at every event that explains a
 * verdict: a SYN dropped, a SYN-ACK retransmitted, a SYN cookie, an RST, the
 * child established. Attempts without trouble are not kept unless every
 * verdict is wanted (emit_ok).
 *
 * Where a SYN meets its listener: fexit on tcp_conn_request where trampolines
 * work (6.1), else skb:consume_skb called from tcp_rcv_state_process (its
 * location, 6.18), which consumes every SYN a listener took or dropped. A
 * drop there shows as the listener's sk_drops moving (tcp_listendrop()).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "conntrace.h"
#include "conntrace.bpf.h"
#include "skb.bpf.h"

/* [lo, hi): tcp_rcv_state_process's code, from /proc/kallsyms (user space) */
const volatile __u64 syn_loc_lo = 0;
const volatile __u64 syn_loc_hi = 0;

struct in_key {
	__u8  raddr[16];	/* remote client */
	__u8  laddr[16];	/* local end */
	__u16 rport;
	__u16 lport;
	__u32 netns;
	__u32 family;
};

/* incoming attempts with something to tell, by 4-tuple and namespace */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct in_key);
	__type(value, struct ct_inbound);
} in_attempts SEC(".maps");

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
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct in_lkey);
	__type(value, struct in_listener);
} in_listeners SEC(".maps");

/* The skb this CPU last answered with an RST: its NO_SOCKET drop is no news. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} in_rst_skb SEC(".maps");

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

/* The attempt's entry, made (first SYN now, listener's owner if known) if missing. */
static __always_inline struct ct_inbound *attempt_get(const struct in_key *k, __u64 now)
{
	struct ct_inbound *a = bpf_map_lookup_elem(&in_attempts, k), fresh = {};
	struct in_lkey lk = { .netns = k->netns, .port = k->lport };
	struct in_listener *ls;

	if (a)
		return a;
	fresh.type = CT_REC_INBOUND;
	fresh.family = k->family;
	fresh.has_history = 1;
	fresh.sport = k->rport;
	fresh.dport = k->lport;
	fresh.netns = k->netns;
	fresh.ts_first = now;
	__builtin_memcpy(fresh.saddr, k->raddr, sizeof(fresh.saddr));
	__builtin_memcpy(fresh.daddr, k->laddr, sizeof(fresh.daddr));
	ls = bpf_map_lookup_elem(&in_listeners, &lk);
	if (ls) {
		fresh.pid = ls->pid;
		__builtin_memcpy(fresh.comm, ls->comm, sizeof(fresh.comm));
	}
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
	unsigned long refdst = BPF_CORE_READ(skb, _skb_refdst);
	struct dst_entry *dst = (struct dst_entry *)(refdst & ~1UL);
	struct net_device *dev;
	__u32 netns = skb_netns(skb);

	if (netns || !dst)
		return netns;
	dev = BPF_CORE_READ(dst, dev);
	return dev ? BPF_CORE_READ(dev, nd_net.net, ns.inum) : 0;
}

/*
 * With tcp_syncookies=2 every SYN a listener takes is answered with a cookie
 * (tcp_conn_request). With 1, only when the SYN queue is full: that case is
 * not told apart here (LINUX_MIB_SYNCOOKIESSENT is per CPU, and this kernel
 * gives BPF no per-CPU offset to read it with).
 */
static __always_inline bool cookies_always(const struct sock *sk)
{
	return BPF_CORE_READ(sk, __sk_common.skc_net.net, ipv4.sysctl_tcp_syncookies) == 2;
}

/*
 * Whether the SYN queue refuses SYNs now: with cookies off, tcp_conn_request()
 * drops a SYN when the queue of requests is full, or (for a peer not proven)
 * when it holds more than 3/4 of tcp_max_syn_backlog.
 */
static __always_inline bool syn_queue_full(const struct sock *sk)
{
	const struct inet_connection_sock *icsk = (const struct inet_connection_sock *)sk;
	struct net *net = BPF_CORE_READ(sk, __sk_common.skc_net.net);
	__u32 qlen = BPF_CORE_READ(icsk, icsk_accept_queue.qlen.counter);
	__u32 max_syn = BPF_CORE_READ(net, ipv4.sysctl_max_syn_backlog);

	if (BPF_CORE_READ(net, ipv4.sysctl_tcp_syncookies))
		return false;
	return qlen >= BPF_CORE_READ(sk, sk_max_ack_backlog) || max_syn - qlen < (max_syn >> 2);
}

/*
 * A SYN reached listener sk (NULL: found by namespace and port among those
 * seen at listen()). Its drop shows as sk_drops moving since the last SYN,
 * told when a full accept queue or SYN queue explains it (an ACK dropped in
 * between moves it too). A SYN that got through is only counted for an
 * attempt already kept (it had trouble), or every one with emit_ok.
 */
static __always_inline void syn_at_listener(const struct sk_buff *skb, const struct sock *sk)
{
	struct ct_evidence e = {};
	struct in_lkey lk = {};
	struct in_listener *ls;
	struct ct_inbound *a;
	struct in_key k = {};
	__u32 drops, q, max;
	bool overflow;
	__u64 now;

	if (!parse_skb(skb, &e) || !syn_only(&e) || !port_wanted(e.sport, e.dport))
		return;
	lk.netns = sk ? sk_netns(sk) : syn_netns(skb);
	lk.port = e.dport;
	if (!netns_wanted(lk.netns))
		return;
	ls = bpf_map_lookup_elem(&in_listeners, &lk);
	if (!sk) {
		if (!ls)
			return;	/* a listener opened before conntrace: not known */
		sk = (const struct sock *)ls->sk;
	} else if (!ls) {
		/* opened before conntrace (owner unknown): its drops count from now */
		struct in_listener fresh = { .sk = (__u64)sk, .drops = read_drops(sk) };

		bpf_map_update_elem(&in_listeners, &lk, &fresh, BPF_NOEXIST);
		ls = bpf_map_lookup_elem(&in_listeners, &lk);
	}
	now = bpf_ktime_get_boot_ns();
	key_of_syn(&k, &e, lk.netns);
	drops = read_drops(sk);
	q = BPF_CORE_READ(sk, sk_ack_backlog);
	max = BPF_CORE_READ(sk, sk_max_ack_backlog);
	if (ls && drops != ls->drops) {
		ls->drops = drops;
		overflow = q > max;
		if (overflow || syn_queue_full(sk)) {
			a = attempt_get(&k, now);
			if (!a)
				return;
			a->syns++;
			a->queue = q;
			a->queue_max = max;
			if (overflow)
				a->overflow_drops++;
			else
				a->synq_drops++;
			attempt_send(a, CT_IN_SYN_DROP, now);
			return;
		}
	}
	if (cookies_always(sk)) {
		a = attempt_get(&k, now);
		if (!a)
			return;
		a->syns++;
		a->cookies++;
		attempt_send(a, CT_IN_COOKIE, now);
		return;
	}
	a = emit_ok ? attempt_get(&k, now) : bpf_map_lookup_elem(&in_attempts, &k);
	if (a)
		a->syns++;
}

/* 6.18: every SYN a listener took or dropped is consumed in tcp_rcv_state_process. */
SEC("tp_btf/consume_skb")
int BPF_PROG(in_consume_skb, struct sk_buff *skb, void *location)
{
	/* the one test every consumed packet pays: one subtraction, one compare */
	if ((__u64)location - syn_loc_lo >= syn_loc_hi - syn_loc_lo)
		return 0;
	syn_at_listener(skb, NULL);
	return 0;
}

/* Kernels with trampolines (6.1): the listener is at hand. */
SEC("fexit/tcp_conn_request")
int BPF_PROG(in_conn_request, void *rsk_ops, void *af_ops, struct sock *sk,
	     struct sk_buff *skb, int ret)
{
	syn_at_listener(skb, sk);
	return 0;
}

/* A SYN dropped before any listener saw it (netfilter, no socket, ...). */
SEC("tp_btf/kfree_skb")
int BPF_PROG(in_kfree_skb, struct sk_buff *skb, void *location, enum skb_drop_reason reason)
{
	struct ct_evidence e = {};
	struct ct_inbound *a;
	struct in_key k = {};
	__u32 zero = 0;
	__u64 *last, now;
	bool no_socket;

	if (reason == SKB_NOT_DROPPED_YET)
		return 0;
	if (bpf_core_enum_value_exists(enum skb_drop_reason, SKB_CONSUMED) &&
	    reason == bpf_core_enum_value(enum skb_drop_reason, SKB_CONSUMED))
		return 0;
	/* a SYN this host sends still has its socket: that is an outgoing attempt */
	if (BPF_CORE_READ(skb, sk))
		return 0;
	if (!parse_skb(skb, &e) || !syn_only(&e) || !port_wanted(e.sport, e.dport))
		return 0;
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
		return 0;
	}
	now = bpf_ktime_get_boot_ns();
	a = syn_attempt(&k, &e, syn_netns(skb), now);
	if (!a)
		return 0;
	if (no_socket) {
		/* tcp_v4_rcv() answered it with an RST that tcp_send_reset missed
		 * (6.1 traces only RSTs sent with a socket) */
		a->rsts++;
		attempt_send(a, CT_IN_RST, now);
		bpf_map_delete_elem(&in_attempts, &k);
		return 0;
	}
	if (bpf_core_enum_value_exists(enum skb_drop_reason, SKB_DROP_REASON_NETFILTER_DROP) &&
	    reason == bpf_core_enum_value(enum skb_drop_reason, SKB_DROP_REASON_NETFILTER_DROP)) {
		a->nf_drops++;
	} else {
		a->other_drops++;
		a->drop_reason = reason;
	}
	attempt_send(a, CT_IN_SYN_DROP, now);
	return 0;
}

/* This host answered a SYN with an RST: nothing listened there. */
SEC("tp_btf/tcp_send_reset")
int BPF_PROG(in_send_reset, const struct sock *sk, const struct sk_buff *skb)
{
	struct ct_evidence e = {};
	struct ct_inbound *a;
	struct in_key k = {};
	__u32 zero = 0;
	__u64 *last, now;

	if (!skb || !parse_skb(skb, &e) || !syn_only(&e) || !port_wanted(e.sport, e.dport))
		return 0;
	now = bpf_ktime_get_boot_ns();
	a = syn_attempt(&k, &e, sk ? sk_netns(sk) : syn_netns(skb), now);
	if (!a)
		return 0;
	a->rsts++;
	attempt_send(a, CT_IN_RST, now);
	bpf_map_delete_elem(&in_attempts, &k);
	last = bpf_map_lookup_elem(&in_rst_skb, &zero);
	if (last)
		*last = (__u64)skb;
	return 0;
}

/* The request's addresses: remote is its daddr/dport, local its rcv_saddr/num. */
static __always_inline void key_of_req(struct in_key *k, const struct request_sock *req,
				       __u32 netns)
{
	const struct sock_common *c = &req->__req_common;

	k->family = BPF_CORE_READ(c, skc_family);
	k->rport = bpf_ntohs(BPF_CORE_READ(c, skc_dport));
	k->lport = BPF_CORE_READ(c, skc_num);
	k->netns = netns;
	if (k->family == AF_INET) {
		__u32 a = BPF_CORE_READ(c, skc_daddr);

		__builtin_memcpy(k->raddr, &a, 4);
		a = BPF_CORE_READ(c, skc_rcv_saddr);
		__builtin_memcpy(k->laddr, &a, 4);
	} else {
		BPF_CORE_READ_INTO(&k->raddr, c, skc_v6_daddr.in6_u.u6_addr8);
		BPF_CORE_READ_INTO(&k->laddr, c, skc_v6_rcv_saddr.in6_u.u6_addr8);
	}
}

/*
 * The listener sent its SYN-ACK again: the client's ACK did not come, or was
 * dropped on a full accept queue (then the queue is full now).
 */
SEC("tp_btf/tcp_retransmit_synack")
int BPF_PROG(in_retransmit_synack, const struct sock *sk, const struct request_sock *req)
{
	struct ct_inbound *a;
	struct in_key k = {};
	__u64 now;

	key_of_req(&k, req, sk_netns(sk));
	if (!port_wanted(k.rport, k.lport) || !netns_wanted(k.netns))
		return 0;
	now = bpf_ktime_get_boot_ns();
	a = attempt_get(&k, now);
	if (!a)
		return 0;
	if (!a->syns)
		a->syns = 1;	/* first seen here: its SYN was taken */
	a->synack_retrans++;
	a->queue = BPF_CORE_READ(sk, sk_ack_backlog);
	a->queue_max = BPF_CORE_READ(sk, sk_max_ack_backlog);
	attempt_send(a, CT_IN_SYNACK_RETRANS, now);
	return 0;
}

/* listen(): CLOSE -> LISTEN runs in the caller's task, the listener's owner. */
static __always_inline void listener_open(const struct sock *sk)
{
	struct in_lkey lk = { .netns = sk_netns(sk) };
	struct in_listener ls = { .sk = (__u64)sk };

	lk.port = BPF_CORE_READ(sk, __sk_common.skc_num);
	if (!lk.port || !netns_wanted(lk.netns))
		return;	/* not bound yet: get_port() runs after the state change */
	ls.pid = bpf_get_current_pid_tgid() >> 32;
	ls.drops = read_drops(sk);
	bpf_get_current_comm(ls.comm, sizeof(ls.comm));
	bpf_map_update_elem(&in_listeners, &lk, &ls, BPF_ANY);
}

/* A child's handshake completed: the end of its attempt, if one is kept. */
static __always_inline void child_established(const struct sock *sk)
{
	struct ct_flow rec = {};
	struct ct_inbound *a, fresh = {};
	struct in_key k = {};
	__u64 now;

	if (flow_get(sk))
		return;	/* a simultaneous open: an outgoing attempt */
	read_tuple(&rec, sk);
	if (!port_wanted(rec.sport, rec.dport))
		return;
	k.netns = sk_netns(sk);
	if (!netns_wanted(k.netns))
		return;
	k.family = rec.family;
	k.rport = rec.dport;
	k.lport = rec.sport;
	__builtin_memcpy(k.raddr, rec.daddr, sizeof(k.raddr));
	__builtin_memcpy(k.laddr, rec.saddr, sizeof(k.laddr));
	now = bpf_ktime_get_boot_ns();
	a = bpf_map_lookup_elem(&in_attempts, &k);
	if (a) {
		attempt_send(a, CT_IN_ESTABLISHED, now);
		bpf_map_delete_elem(&in_attempts, &k);
		return;
	}
	if (!emit_ok)
		return;
	/* its SYN was not seen (a listener older than conntrace) */
	fresh.type = CT_REC_INBOUND;
	fresh.family = k.family;
	fresh.sport = k.rport;
	fresh.dport = k.lport;
	fresh.netns = k.netns;
	__builtin_memcpy(fresh.saddr, k.raddr, sizeof(fresh.saddr));
	__builtin_memcpy(fresh.daddr, k.laddr, sizeof(fresh.daddr));
	attempt_send(&fresh, CT_IN_ESTABLISHED, now);
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(in_set_state, const struct sock *sk, int oldstate, int newstate)
{
	struct in_lkey lk;
	struct in_listener *ls;

	if (oldstate == CT_TCP_SYN_RECV && newstate == CT_TCP_ESTABLISHED) {
		if (is_tcp(sk))
			child_established(sk);
		return 0;
	}
	if (oldstate == CT_TCP_CLOSE && newstate == CT_TCP_LISTEN) {
		if (is_tcp(sk))
			listener_open(sk);
		return 0;
	}
	if (oldstate != CT_TCP_LISTEN || newstate != CT_TCP_CLOSE)
		return 0;
	/* closing may have unbound skc_num already; inet_sport stays */
	lk.netns = sk_netns(sk);
	lk.port = bpf_ntohs(BPF_CORE_READ((const struct inet_sock *)sk, inet_sport));
	ls = bpf_map_lookup_elem(&in_listeners, &lk);
	if (ls && ls->sk == (__u64)sk)
		bpf_map_delete_elem(&in_listeners, &lk);
	return 0;
}
