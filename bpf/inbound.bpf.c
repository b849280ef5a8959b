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
#include "established.bpf.h"
#include "inbound.bpf.h"

/* [lo, hi): tcp_rcv_state_process's code, from /proc/kallsyms (user space) */
const volatile __u64 syn_loc_lo = 0;
const volatile __u64 syn_loc_hi = 0;

/* the maps of inbound.bpf.h */
in_attempts_map_t in_attempts SEC(".maps");
in_listeners_map_t in_listeners SEC(".maps");
in_rst_skb_map_t in_rst_skb SEC(".maps");

/*
 * Whether tcp_conn_request() answered the SYN just handled with a cookie,
 * read after it (qlen: the SYN queue now, prev: after the listener's last
 * SYN, ~0 if not known). With tcp_syncookies=2, every SYN it took. With 1,
 * a SYN that found the SYN queue full (inet_csk_reqsk_queue_is_full(): qlen
 * >= sk_max_ack_backlog on 6.1, > since 6.14) and was not dropped: a cookie
 * leaves no request behind, so the queue is as full as before, where a SYN
 * taken normally adds one. A child completing resets prev (child_established);
 * a request that expires or is reset between two SYNs of a full queue is
 * not seen, and makes the next SYN taken look like a cookie.
 */
static __always_inline bool cookie_sent(const struct sock *sk, __u32 qlen, __u32 prev, __u32 max)
{
	int mode = BPF_CORE_READ(sk, __sk_common.skc_net.net, ipv4.sysctl_tcp_syncookies);

	return mode == 2 || (mode == 1 && qlen >= max && qlen == prev);
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
	__u32 drops, q, max, qlen, prev = ~0U;
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
		struct in_listener fresh = { .sk = (__u64)sk, .drops = read_drops(sk),
					     .qlen = ~0U };

		bpf_map_update_elem(&in_listeners, &lk, &fresh, BPF_NOEXIST);
		ls = bpf_map_lookup_elem(&in_listeners, &lk);
	}
	key_of_syn(&k, &e, lk.netns);
	drops = read_drops(sk);
	max = BPF_CORE_READ(sk, sk_max_ack_backlog);
	qlen = BPF_CORE_READ((const struct inet_connection_sock *)sk,
			     icsk_accept_queue.qlen.counter);
	if (ls) {
		prev = ls->qlen;
		ls->qlen = qlen;
	}
	if (ls && drops != ls->drops) {
		ls->drops = drops;
		q = BPF_CORE_READ(sk, sk_ack_backlog);
		overflow = q > max;
		if (overflow || syn_queue_full(sk)) {
			now = bpf_ktime_get_boot_ns();
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
	if (cookie_sent(sk, qlen, prev, max)) {
		now = bpf_ktime_get_boot_ns();
		a = attempt_get(&k, now);
		if (!a)
			return;
		a->syns++;
		a->cookies++;
		attempt_send(a, CT_IN_COOKIE, now);
		return;
	}
	/* the common case: no trouble, nothing to send, no clock read */
	a = emit_ok ? attempt_get(&k, bpf_ktime_get_boot_ns()) :
		      bpf_map_lookup_elem(&in_attempts, &k);
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
	ls.qlen = 0;	/* listen() found it closed: no requests yet */
	bpf_get_current_comm(ls.comm, sizeof(ls.comm));
	bpf_map_update_elem(&in_listeners, &lk, &ls, BPF_ANY);
}

/*
 * The listeners open before conntrace started, once at start-up (the
 * collector reads this iterator to its end): without them, a SYN that such a
 * listener dropped on its full queue would not be seen where the listener is
 * found by namespace and port (consume_skb). Their owner is not known (no
 * listen() seen); a listener opened meanwhile keeps what listen() gave it.
 */
SEC("iter/tcp")
int in_seed_listeners(struct bpf_iter__tcp *ctx)
{
	const struct sock *sk = (const struct sock *)ctx->sk_common;
	struct in_listener ls = { .qlen = ~0U };
	struct in_lkey lk = {};

	if (!sk || BPF_CORE_READ(sk, __sk_common.skc_state) != CT_TCP_LISTEN)
		return 0;
	if (!is_tcp(sk))
		return 0;
	lk.netns = sk_netns(sk);
	lk.port = BPF_CORE_READ(sk, __sk_common.skc_num);
	if (!lk.port || !netns_wanted(lk.netns))
		return 0;
	ls.sk = (__u64)sk;
	ls.drops = read_drops(sk);
	bpf_map_update_elem(&in_listeners, &lk, &ls, BPF_NOEXIST);
	return 0;
}

/* A child's handshake completed: the end of its attempt, if one is kept. */
static __always_inline void child_established(const struct sock *sk)
{
	struct ct_flow rec = {};
	struct ct_inbound *a, fresh = {};
	struct in_key k = {};
	struct in_lkey lk = {};
	struct in_listener *ls;
	__u64 now;

	if (flow_get(sk))
		return;	/* a simultaneous open: an outgoing attempt */
	read_tuple(&rec, sk);
	k.netns = sk_netns(sk);
	/* a request left its listener's SYN queue: its last length no longer
	 * tells a cookie (cookie_sent) */
	lk.netns = k.netns;
	lk.port = rec.sport;
	ls = bpf_map_lookup_elem(&in_listeners, &lk);
	if (ls)
		ls->qlen = ~0U;
	if (!port_wanted(rec.sport, rec.dport))
		return;
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

/*
 * A state change: an established connection closing (established.bpf.h),
 * the end of an incoming attempt, a listener opened or closed. One program
 * for both parts: every state change of every socket runs it, and the two
 * parts' transitions do not overlap. --direction out skips the inbound part.
 */
SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(handle_sock_state, const struct sock *sk, int oldstate, int newstate)
{
	struct in_lkey lk;
	struct in_listener *ls;

	if (newstate == CT_TCP_CLOSE && estab_state(oldstate)) {
		estab_closed(sk, oldstate);
		return 0;
	}
	if (!(targ_dir & CT_DIR_IN))
		return 0;
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
