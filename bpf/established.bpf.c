// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * conntrace kernel side, established connections: how one died. A healthy
 * connection costs no state: an entry in the estabs map is made only at its
 * first trouble (a retransmit, an RST either way, a netfilter drop counted by
 * evidence.bpf.c), and sent with what the socket says about its end when it
 * dies: leaves an established state for CLOSE with an error or after an RST,
 * or sends an RST as it closes. Its work on inet_sock_set_state (inbound.bpf.c),
 * kfree_skb and tcp_send_reset (evidence.bpf.c) is in established.bpf.h, done
 * by those tracepoints' one program each.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "conntrace.h"
#include "conntrace.bpf.h"
#include "established.bpf.h"

/* the map of established.bpf.h */
estab_last_close_map_t estab_last_close SEC(".maps");

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

char LICENSE[] SEC("license") = "Dual BSD/GPL";
