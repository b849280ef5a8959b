/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The state of established connections in trouble (the estabs map, defined
 * in flow.bpf.c), shared by established.bpf.c, which follows them to their
 * death, evidence.bpf.c, whose one program per packet tracepoint counts
 * their dropped packets (kfree_skb) and the RSTs this host sends them
 * (tcp_send_reset), and inbound.bpf.c, whose inet_sock_set_state program sees
 * them die. estab_last_close is defined in established.bpf.c, linked before
 * both. Include after conntrace.bpf.h.
 */
#ifndef CONNTRACE_ESTABLISHED_BPF_H
#define CONNTRACE_ESTABLISHED_BPF_H

/* The states of a connection past its handshake and before CLOSE. */
static __always_inline bool estab_state(int state)
{
	return state == CT_TCP_ESTABLISHED || state == CT_TCP_FIN_WAIT1 ||
	       state == CT_TCP_FIN_WAIT2 || state == CT_TCP_CLOSE_WAIT ||
	       state == CT_TCP_LAST_ACK || state == CT_TCP_CLOSING;
}

/* Addresses, ports, namespace and cgroup of a socket; false if filtered out. */
static __always_inline bool estab_init(struct ct_estab *e, const struct sock *sk, __u64 now)
{
	const struct inet_sock *inet = (const struct inet_sock *)sk;

	e->type = CT_REC_ESTAB;
	e->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	/* inet_sport: closing unbinds the port (inet_num) before CLOSE is traced */
	e->sport = bpf_ntohs(BPF_CORE_READ(inet, inet_sport));
	e->dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	e->netns = sk_netns(sk);
	if (!port_wanted(e->sport, e->dport) || !netns_wanted(e->netns))
		return false;
	local_addr(sk, e->family, e->saddr);
	if (e->family == AF_INET) {
		__u32 a = BPF_CORE_READ(sk, __sk_common.skc_daddr);

		__builtin_memcpy(e->daddr, &a, 4);
	} else {
		struct in6_addr a6 = BPF_CORE_READ(sk, __sk_common.skc_v6_daddr);

		__builtin_memcpy(e->daddr, &a6, 16);
	}
	if (bpf_core_field_exists(sk->sk_cgrp_data.cgroup))
		e->cgroup_id = BPF_CORE_READ(sk, sk_cgrp_data.cgroup, kn, id);
	e->ts_first = now;
	return true;
}

/*
 * The entry of an established socket: created when create is set (its
 * first trouble), NULL when filtered out or the table refused it.
 */
static __always_inline struct ct_estab *estab_get(const struct sock *sk, bool create)
{
	__u64 key = (__u64)sk;
	struct ct_estab rec = {}, *e = bpf_map_lookup_elem(&estabs, &key);

	if (e || !create)
		return e;
	if (!estab_init(&rec, sk, bpf_ktime_get_boot_ns()))
		return NULL;
	/* NOEXIST: a CPU that raced this one to create it keeps its entry */
	if (bpf_map_update_elem(&estabs, &key, &rec, BPF_NOEXIST) &&
	    !bpf_map_lookup_elem(&estabs, &key)) {
		count(CT_CNT_ESTAB_NOSPACE);
		return NULL;
	}
	return bpf_map_lookup_elem(&estabs, &key);
}

/*
 * kfree_skb: a packet of an established TCP socket was dropped. A drop by
 * netfilter is trouble enough to start following the connection (its later
 * death then has a cause); other drops (old or out-of-window data) are part
 * of healthy TCP and only counted for a connection already followed.
 */
static __always_inline void estab_note_drop(const struct sock *sk, __u32 reason)
{
	struct ct_estab *e;
	bool nf;

	/* state first (sk: skb->sk, read through kfree_skb's BTF argument): it
	 * may be a request or time-wait socket */
	if (!estab_state(sk->__sk_common.skc_state) || !is_tcp(sk))
		return;
	nf = bpf_core_enum_value_exists(enum skb_drop_reason, SKB_DROP_REASON_NETFILTER_DROP) &&
	     reason == bpf_core_enum_value(enum skb_drop_reason, SKB_DROP_REASON_NETFILTER_DROP);
	e = estab_get(sk, nf);
	if (!e)
		return;
	if (nf) {
		__sync_fetch_and_add(&e->nf_drops, 1);
	} else {
		__sync_fetch_and_add(&e->drops, 1);
		e->drop_reason = reason;
	}
}

/*
 * The sockets this CPU last saw closing from an established state, and that
 * state: close() with unread data (or SO_LINGER 0) sets CLOSE and only then
 * sends its RST, and the RST's tracepoint needs the state it died in. Over
 * loopback the peer dies of that RST in between, in a softirq on this CPU:
 * hence a few slots, not one.
 */
#define LAST_CLOSES 4

struct last_close {
	__u64 sk[LAST_CLOSES];
	__u8 state[LAST_CLOSES];
	__u32 next;
};

typedef struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct last_close);
} estab_last_close_map_t;
extern estab_last_close_map_t estab_last_close SEC(".maps");

/* What the socket says about its end, read as it dies. */
static __always_inline void estab_read_end(struct ct_estab *e, const struct sock *sk)
{
	const struct inet_connection_sock *icsk = (const struct inet_connection_sock *)sk;
	const struct tcp_sock *tp = (const struct tcp_sock *)sk;
	unsigned long flags = BPF_CORE_READ(sk, __sk_common.skc_flags);

	e->err = BPF_CORE_READ(sk, sk_err);
	e->total_retrans = BPF_CORE_READ(tp, total_retrans);
	e->timeouts = BPF_CORE_READ(icsk, icsk_retransmits);
	e->probes_out = BPF_CORE_READ(icsk, icsk_probes_out);
	/* the write queue is purged before CLOSE, but not snd_nxt / snd_una */
	e->unacked = BPF_CORE_READ(tp, snd_nxt) - BPF_CORE_READ(tp, snd_una);
	e->snd_wnd = BPF_CORE_READ(tp, snd_wnd);
	if (bpf_core_field_exists(icsk->icsk_user_timeout))
		e->user_timeout_ms = BPF_CORE_READ(icsk, icsk_user_timeout);
	if (bpf_core_enum_value_exists(enum sock_flags, SOCK_KEEPOPEN) &&
	    (flags >> bpf_core_enum_value(enum sock_flags, SOCK_KEEPOPEN)) & 1)
		e->flags |= CT_EF_KEEPOPEN;
}

/* It died: send it if it died of something (an error, an RST). */
static __always_inline void estab_finish(struct ct_estab *e, const struct sock *sk,
					 int state, __u64 now)
{
	estab_read_end(e, sk);
	if (!e->err && !(e->flags & (CT_EF_RST_RCVD | CT_EF_RST_SENT)))
		return;	/* an orderly close after some trouble: nothing to say */
	e->state = state;
	e->ts_end = now;
	if (last_loss_ns >= e->ts_first)
		e->flags |= CT_EF_LOSSY;
	emit(e, sizeof(*e));
}

/* Resets a socket's own task sends from close() or shutdown: it is the owner. */
static __always_inline bool reset_by_owner(__u32 reason)
{
	if (!bpf_core_type_exists(enum sk_rst_reason))
		return false;
	return (bpf_core_enum_value_exists(enum sk_rst_reason, SK_RST_REASON_TCP_ABORT_ON_CLOSE) &&
		reason == bpf_core_enum_value(enum sk_rst_reason, SK_RST_REASON_TCP_ABORT_ON_CLOSE)) ||
	       (bpf_core_enum_value_exists(enum sk_rst_reason, SK_RST_REASON_TCP_ABORT_ON_LINGER) &&
		reason == bpf_core_enum_value(enum sk_rst_reason, SK_RST_REASON_TCP_ABORT_ON_LINGER)) ||
	       (bpf_core_enum_value_exists(enum sk_rst_reason,
					   SK_RST_REASON_TCP_DISCONNECT_WITH_DATA) &&
		reason == bpf_core_enum_value(enum sk_rst_reason,
					      SK_RST_REASON_TCP_DISCONNECT_WITH_DATA));
}

/*
 * Established -> CLOSE (inet_sock_set_state, from the caller once oldstate
 * is an established one and newstate CLOSE). Every connection passes here
 * once; one with no entry and no error closed in good order and costs a map
 * lookup.
 */
static __always_inline void estab_closed(const struct sock *sk, int oldstate)
{
	__u64 key = (__u64)sk, now;
	struct ct_estab rec = {}, *e;
	struct last_close *lc;
	__u32 zero = 0;

	if (!is_tcp(sk))
		return;
	lc = bpf_map_lookup_elem(&estab_last_close, &zero);
	if (lc) {
		__u32 i = lc->next++ % LAST_CLOSES;

		lc->sk[i] = key;
		lc->state[i] = oldstate;
	}
	e = bpf_map_lookup_elem(&estabs, &key);
	if (!e) {
		/* a timeout (retransmits unseen, keepalive) leaves only sk_err */
		if (!BPF_CORE_READ(sk, sk_err))
			return;
		now = bpf_ktime_get_boot_ns();
		if (!estab_init(&rec, sk, now))
			return;
		estab_finish(&rec, sk, oldstate, now);
		return;
	}
	estab_finish(e, sk, oldstate, bpf_ktime_get_boot_ns());
	bpf_map_delete_elem(&estabs, &key);
}

/*
 * This host sent an RST for socket sk (tcp_send_reset, reason: its argument
 * where has_reason): for an established one mostly as it closes it (unread
 * data, SO_LINGER 0), after the CLOSE state change, so it dies here.
 */
static __always_inline void estab_send_reset(const struct sock *sk, const struct sk_buff *skb,
					     __u32 reason, bool has_reason)
{
	__u64 key = (__u64)sk;
	struct last_close *lc;
	struct ct_estab *e;
	__u32 zero = 0;
	int state;

	state = sk->__sk_common.skc_state;	/* sk: the tracepoint's BTF argument */
	if (state == CT_TCP_CLOSE) {
		lc = bpf_map_lookup_elem(&estab_last_close, &zero);
		if (!lc)
			return;
		state = 0;
		for (int i = 0; i < LAST_CLOSES; i++)
			if (lc->sk[i] == key)
				state = lc->state[i];
		if (!state)
			return;	/* it was not established */
	} else if (!estab_state(state) || !is_tcp(sk)) {
		return;
	}
	e = estab_get(sk, true);
	if (!e)
		return;
	e->flags |= CT_EF_RST_SENT;
	e->ts_rst = bpf_ktime_get_boot_ns();
	if (has_reason) {
		e->rst_reason = reason;
		e->flags |= CT_EF_RST_REASON;
	}
	if (!skb && reset_by_owner(reason)) {
		e->pid = bpf_get_current_pid_tgid() >> 32;
		bpf_get_current_comm(e->comm, sizeof(e->comm));
		/* --pid, --comm, --cgroup: judged here, in the owner's task; an
		 * owner they exclude stays unknown, and owner filters hide those */
		if (!owner_filtered() || owner_wanted(e->pid, e->comm)) {
			e->flags |= CT_EF_OWNER;
		} else {
			e->pid = 0;
			__builtin_memset(e->comm, 0, sizeof(e->comm));
		}
	}
	if (BPF_CORE_READ(sk, __sk_common.skc_state) == CT_TCP_CLOSE) {
		estab_finish(e, sk, state, e->ts_rst);
		bpf_map_delete_elem(&estabs, &key);
	}
}

#endif
