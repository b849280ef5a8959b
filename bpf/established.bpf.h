/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The state of established connections in trouble (the estabs map, defined
 * in flow.bpf.c), shared by established.bpf.c, which follows them to their
 * death, and evidence.bpf.c, whose kfree_skb counts their dropped packets.
 * Include after conntrace.bpf.h.
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
static __always_inline void estab_note_drop(const struct sk_buff *skb, __u32 reason)
{
	const struct sock *sk = skb->sk;	/* skb: kfree_skb's BTF argument */
	struct ct_estab *e;
	bool nf;

	/* state first: skb->sk may be a request or time-wait socket */
	if (!sk || !estab_state(sk->__sk_common.skc_state) || !is_tcp(sk))
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

#endif
