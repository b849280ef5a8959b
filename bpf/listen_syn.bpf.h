/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * conntrace listen, each SYN at its listener (included by listen.bpf.c,
 * after its maps): SYN cookies sent, and the remote clients whose SYNs the
 * listener dropped, with the reason (accept_queue_full, syn_queue_full).
 *
 * Where trampolines work (6.1), fentry/fexit on tcp_conn_request see the
 * listener before and after: a drop is sk_drops moving inside the call, a
 * cookie is a SYN taken without the SYN queue growing while cookies were
 * due (exact). Elsewhere (6.18), skb:consume_skb called from
 * tcp_rcv_state_process sees the SYN after the fact: the listener is found
 * by address in listen_socks, a drop is sk_drops moving since its last SYN,
 * and a cookie is exact with tcp_syncookies=2 (every SYN gets one) and
 * inferred with 1 (the SYN queue at its limit and not grown since the last
 * SYN).
 */
#ifndef CONNTRACE_LISTEN_SYN_BPF_H
#define CONNTRACE_LISTEN_SYN_BPF_H

static __always_inline __u32 sk_netns(const struct sock *sk)
{
	return BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
}

#include "skb.bpf.h"

static __always_inline void sock_key_of(struct listen_sock_key *k, const struct sock *sk)
{
	k->netns = BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
	k->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	k->port = BPF_CORE_READ(sk, __sk_common.skc_num);
	if (k->family == AF_INET) {
		__u32 a = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);

		__builtin_memcpy(k->addr, &a, sizeof(a)); /* the other 12 bytes stay zero */
	} else
		BPF_CORE_READ_INTO(&k->addr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
}

/* A listener SYNs can find (a SO_REUSEPORT group: the last one seen). */
static __always_inline void sock_register(const struct sock *sk, __u64 cookie)
{
	struct listen_sock_key k = {};
	struct listen_sock v = { .sk = (__u64)sk, .cookie = cookie };

	sock_key_of(&k, sk);
	if (!k.port)
		return; /* listen() without bind(): its port comes later, the walk finds it */
	if (bpf_map_update_elem(&listen_socks, &k, &v, BPF_ANY))
		__sync_fetch_and_add(&lost.socks_map_full, 1);
}

static __always_inline void sock_unregister(const struct sock *sk, __u64 cookie)
{
	struct listen_sock_key k = {};
	struct listen_sock *v;

	sock_key_of(&k, sk);
	v = bpf_map_lookup_elem(&listen_socks, &k);
	if (v && v->cookie == cookie)
		bpf_map_delete_elem(&listen_socks, &k);
}

/* A registered listener still alive: the same cookie, still listening. */
static __always_inline struct listen_sock *sock_lookup(struct listen_sock_key *k)
{
	struct listen_sock *v = bpf_map_lookup_elem(&listen_socks, k);
	const struct sock *sk;

	if (!v)
		return NULL;
	sk = (const struct sock *)v->sk;
	if (BPF_CORE_READ(sk, __sk_common.skc_cookie.counter) != (__s64)v->cookie ||
	    BPF_CORE_READ(sk, __sk_common.skc_state) != TCP_LISTEN)
		return NULL;
	return v;
}

/* The listener of a SYN to daddr:dport: bound to it, to any, or dual-stack [::]. */
static __always_inline struct listen_sock *sock_of_syn(const struct ct_evidence *e, __u32 netns)
{
	struct listen_sock_key k = { .netns = netns, .family = e->family, .port = e->dport };
	struct listen_sock *v;

	__builtin_memcpy(k.addr, e->daddr, sizeof(k.addr));
	v = sock_lookup(&k);
	if (v)
		return v;
	__builtin_memset(k.addr, 0, sizeof(k.addr));
	v = sock_lookup(&k);
	if (v || e->family != AF_INET)
		return v;
	k.family = AF_INET6;
	return sock_lookup(&k);
}

/*
 * The namespace of a SYN at its listener: TCP's receive path has cleared
 * skb->dev by then (6.18), but the input route is still attached.
 */
static __always_inline __u32 syn_netns(const struct sk_buff *skb)
{
	unsigned long refdst = BPF_CORE_READ(skb, _skb_refdst);
	struct dst_entry *dst = (struct dst_entry *)(refdst & ~1UL);
	struct net_device *dev = BPF_CORE_READ(skb, dev);

	if (!dev && dst)
		dev = BPF_CORE_READ(dst, dev);
	return dev ? BPF_CORE_READ(dev, nd_net.net, ns.inum) : 0;
}

static __always_inline bool is_syn_only(const struct ct_evidence *e)
{
	return (e->tcp_flags & (CT_TCP_SYN | CT_TCP_ACK | CT_TCP_RST)) == CT_TCP_SYN;
}

/* One SYN of client e dropped by listener cookie. */
static __always_inline void client_drop(__u64 cookie, const struct ct_evidence *e, bool acceptq)
{
	struct listen_client_key k = { .cookie = cookie, .family = e->family, .port = e->sport };
	struct listen_client init = {}, *c;

	__builtin_memcpy(k.addr, e->saddr, sizeof(k.addr));
	c = bpf_map_lookup_elem(&clients, &k);
	if (!c) {
		bpf_map_update_elem(&clients, &k, &init, BPF_NOEXIST);
		c = bpf_map_lookup_elem(&clients, &k);
		if (!c) {
			__sync_fetch_and_add(&lost.clients_map_full, 1);
			return;
		}
	}
	if (acceptq)
		__sync_fetch_and_add(&c->accept_queue_full, 1);
	else
		__sync_fetch_and_add(&c->syn_queue_full, 1);
}

static __always_inline __u32 syn_qlen(const struct sock *sk)
{
	return BPF_CORE_READ((struct inet_connection_sock *)sk, icsk_accept_queue.qlen.counter);
}

static __always_inline __u8 syncookies_of(const struct sock *sk)
{
	return BPF_CORE_READ(sk, __sk_common.skc_net.net, ipv4.sysctl_tcp_syncookies);
}

/*
 * With cookies off, tcp_conn_request() drops a SYN when the request queue
 * is full (qlen past sk_max_ack_backlog; ">=" before 6.13), or, for a peer
 * not proven, when fewer than a quarter of tcp_max_syn_backlog is left.
 */
static __always_inline bool synq_refuses(const struct sock *sk, __u32 qlen)
{
	int max_syn = BPF_CORE_READ(sk, __sk_common.skc_net.net, ipv4.sysctl_max_syn_backlog);

	return qlen >= BPF_CORE_READ(sk, sk_max_ack_backlog) ||
	       max_syn - (int)qlen < (max_syn >> 2);
}

SEC("fentry/tcp_conn_request")
int BPF_PROG(syn_enter, struct request_sock_ops *rsk_ops,
	     const struct tcp_request_sock_ops *af_ops, struct sock *sk, struct sk_buff *skb)
{
	__u32 slot = STASH_SYN;
	struct overflow_stash *st = bpf_map_lookup_elem(&overflow_stash, &slot);

	if (!st)
		return 0;
	st->cookie = bpf_get_socket_cookie(sk);
	st->drops = read_drops(sk);
	st->syn_qlen = syn_qlen(sk);
	st->acceptq_full = BPF_CORE_READ(sk, sk_ack_backlog) > BPF_CORE_READ(sk, sk_max_ack_backlog);
	return 0;
}

/* Exact: the state before the SYN (syn_enter) against the state after. */
SEC("fexit/tcp_conn_request")
int BPF_PROG(syn_exit, struct request_sock_ops *rsk_ops,
	     const struct tcp_request_sock_ops *af_ops, struct sock *sk, struct sk_buff *skb)
{
	__u32 slot = STASH_SYN, qlen;
	struct overflow_stash *st = bpf_map_lookup_elem(&overflow_stash, &slot);
	struct ct_evidence e = {};
	struct listen_stats *s;
	__u8 cookies;

	if (!st || st->cookie != bpf_get_socket_cookie(sk) || !parse_skb(skb, &e))
		return 0;
	st->cookie = 0;
	if (read_drops(sk) != st->drops) {
		client_drop(bpf_get_socket_cookie(sk), &e, st->acceptq_full);
		return 0;
	}
	/* taken without a new request (TCP Fast Open excepted) while cookies were due */
	cookies = syncookies_of(sk);
	qlen = syn_qlen(sk);
	if (!cookies || qlen != st->syn_qlen ||
	    (cookies != 2 && st->syn_qlen < BPF_CORE_READ(sk, sk_max_ack_backlog)))
		return 0;
	s = stats_of(bpf_get_socket_cookie(sk));
	if (s)
		__sync_fetch_and_add(&s->syn_cookies, 1);
	return 0;
}

/* 6.18: every SYN a listener took or dropped is consumed in tcp_rcv_state_process. */
SEC("tp_btf/consume_skb")
int BPF_PROG(syn_consumed, struct sk_buff *skb, void *location)
{
	struct ct_evidence e = {};
	struct listen_stats *s;
	struct listen_sock *ls;
	const struct sock *sk;
	enum { KEPT, ACCEPTQ, SYNQ } dropped = KEPT;
	__u32 drops, qlen, max;
	__u8 cookies;

	/* the one test every consumed packet pays: one subtraction, one compare */
	if ((__u64)location - syn_loc_lo >= syn_loc_hi - syn_loc_lo)
		return 0;
	if (!parse_skb(skb, &e) || !is_syn_only(&e))
		return 0;
	ls = sock_of_syn(&e, syn_netns(skb));
	if (!ls)
		return 0;
	s = stats_of(ls->cookie);
	if (!s)
		return 0;
	sk = (const struct sock *)ls->sk;
	drops = read_drops(sk);
	qlen = syn_qlen(sk);
	max = BPF_CORE_READ(sk, sk_max_ack_backlog);
	cookies = syncookies_of(sk);
	/* an ACK dropped in between moves sk_drops too: a full queue must explain it */
	if (s->syn_seen && drops != s->drops_last) {
		if (BPF_CORE_READ(sk, sk_ack_backlog) > max)
			dropped = ACCEPTQ;
		else if (!cookies && synq_refuses(sk, qlen))
			dropped = SYNQ;
	}
	if (dropped)
		client_drop(ls->cookie, &e, dropped == ACCEPTQ);
	else if (cookies == 2)
		__sync_fetch_and_add(&s->syn_cookies, 1);
	else if (cookies && s->syn_seen && qlen >= max && qlen == s->syn_qlen_last)
		__sync_fetch_and_add(&s->syn_cookies_inferred, 1);
	s->drops_last = drops;
	s->syn_qlen_last = qlen;
	s->syn_seen = 1;
	return 0;
}

#endif
