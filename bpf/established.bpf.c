// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * conntrace kernel side, established connections: how one died. A healthy
 * connection costs no state: an entry in the estabs map is made only at its
 * first trouble (a retransmit, an RST either way, a netfilter drop counted by
 * evidence.bpf.c), and sent with what the socket says about its end when it
 * dies: leaves an established state for CLOSE with an error or after an RST,
 * or sends an RST as it closes.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "conntrace.h"
#include "conntrace.bpf.h"
#include "established.bpf.h"

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

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct last_close);
} estab_last_close SEC(".maps");

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

/*
 * Established -> CLOSE. Every connection passes here once; one with no
 * entry and no error closed in good order and costs a map lookup.
 */
SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(handle_estab_state, const struct sock *sk, int oldstate, int newstate)
{
	__u64 key = (__u64)sk, now;
	struct ct_estab rec = {}, *e;
	struct last_close *lc;
	__u32 zero = 0;

	if (newstate != CT_TCP_CLOSE || !estab_state(oldstate) || !is_tcp(sk))
		return 0;
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
			return 0;
		now = bpf_ktime_get_boot_ns();
		if (!estab_init(&rec, sk, now))
			return 0;
		estab_finish(&rec, sk, oldstate, now);
		return 0;
	}
	estab_finish(e, sk, oldstate, bpf_ktime_get_boot_ns());
	bpf_map_delete_elem(&estabs, &key);
	return 0;
}

SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(handle_estab_retransmit, const struct sock *sk)
{
	const struct inet_connection_sock *icsk = (const struct inet_connection_sock *)sk;
	struct ct_estab *e;
	__u64 now;

	if (!estab_state(sk->__sk_common.skc_state))
		return 0;
	e = estab_get(sk, true);
	if (!e)
		return 0;
	now = bpf_ktime_get_boot_ns();
	if (!e->ts_first_retrans)
		e->ts_first_retrans = now;
	e->ts_last_retrans = now;
	e->retrans++;
	/* RTO doublings so far; the purge at death resets it */
	e->backoff = BPF_CORE_READ(icsk, icsk_backoff);
	return 0;
}

SEC("tp_btf/tcp_receive_reset")
int BPF_PROG(handle_estab_receive_reset, struct sock *sk)
{
	const struct inet_connection_sock *icsk = (const struct inet_connection_sock *)sk;
	const struct tcp_sock *tp = (const struct tcp_sock *)sk;
	__u32 jnow, last, data;
	struct ct_estab *e;

	if (!estab_state(sk->__sk_common.skc_state))
		return 0;
	e = estab_get(sk, true);
	if (!e)
		return 0;
	e->flags |= CT_EF_RST_RCVD;
	e->ts_rst = bpf_ktime_get_boot_ns();
	/*
	 * Idle before the RST: since the last ACK (rcv_tstamp) or data
	 * (lrcvtime) received, both in jiffies; the RST is processed before
	 * either is updated for it. User space knows HZ.
	 */
	jnow = (__u32)bpf_jiffies64();
	last = BPF_CORE_READ(tp, rcv_tstamp);
	data = BPF_CORE_READ(icsk, icsk_ack.lrcvtime);
	if ((__s32)(data - last) > 0)
		last = data;
	e->idle_jiffies = jnow - last;
	e->flags |= CT_EF_IDLE;
	return 0;
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
 * This host sent an RST for an established socket: mostly as it closes it
 * (unread data, SO_LINGER 0), after the CLOSE state change, so it dies here.
 */
SEC("tp_btf/tcp_send_reset")
int BPF_PROG(handle_estab_send_reset, const struct sock *sk, const struct sk_buff *skb)
{
	__u64 key = (__u64)sk;
	struct last_close *lc;
	struct ct_estab *e;
	__u32 zero = 0, reason = 0;
	int state;

	if (!sk)
		return 0;
	state = BPF_CORE_READ(sk, __sk_common.skc_state);
	if (state == CT_TCP_CLOSE) {
		lc = bpf_map_lookup_elem(&estab_last_close, &zero);
		if (!lc)
			return 0;
		state = 0;
		for (int i = 0; i < LAST_CLOSES; i++)
			if (lc->sk[i] == key)
				state = lc->state[i];
		if (!state)
			return 0;	/* it was not established */
	} else if (!estab_state(state) || !is_tcp(sk)) {
		return 0;
	}
	e = estab_get(sk, true);
	if (!e)
		return 0;
	e->flags |= CT_EF_RST_SENT;
	e->ts_rst = bpf_ktime_get_boot_ns();
	/* The reason argument exists since 6.10, together with its enum. */
	if (bpf_core_type_exists(enum sk_rst_reason)) {
		reason = (__u32)ctx[2];
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
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
