// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * conntrace kernel side, the listeners: a record when a listener's accept
 * queue turns full (sk_data_ready, and every SYN at tcp_conn_request where
 * trampolines work), and an iterator the collector reads once a second.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "conntrace.h"
#include "conntrace.bpf.h"

#define LISTENER_FULL	(1ULL << 63)

/*
 * Listeners: say when an accept queue turns full or stops being full, and
 * while full at most once a second, so the collector knows which listeners
 * drop SYNs without a record per packet.
 */
/*
 * Report a listener whose accept queue turned full or stopped being full.
 * sk is a BTF argument (sk_data_ready, tcp_conn_request) in LISTEN: its
 * queue is read by direct loads first, and a listener neither full nor
 * known (the common case) costs those and one lookup.
 */
static __always_inline void listener_seen(const struct sock *sk)
{
	__u64 key = (__u64)sk, now, last;
	struct listener_state *ls, fresh = {};
	struct ct_evidence e = {};
	__u32 q, max;
	bool full;

	q = sk->sk_ack_backlog;
	max = sk->sk_max_ack_backlog;
	full = q > max;
	ls = bpf_map_lookup_elem(&listeners, &key);
	if (!ls && !full)
		return;
	if (!is_tcp(sk))
		return;
	e.family = BPF_CORE_READ(sk, __sk_common.skc_family);
	local_addr(sk, e.family, e.saddr);
	e.netns = sk_netns(sk);
	/* a wildcard address (daddr, zero) is not loopback: kept */
	if (!evidence_netns_wanted(e.netns, e.family, e.saddr, e.daddr))
		return;
	now = bpf_ktime_get_boot_ns();
	if (ls) {
		bool was_full = ls->stamp & LISTENER_FULL;

		last = ls->stamp & ~LISTENER_FULL;
		if (full == was_full && (!full || now - last < 1000000000ULL))
			return;
		ls->stamp = now | (full ? LISTENER_FULL : 0);
	} else {
		fresh.stamp = now | LISTENER_FULL;
		fresh.drops_at_full = read_drops(sk);
		bpf_map_update_elem(&listeners, &key, &fresh, BPF_ANY);
	}

	e.type = CT_REC_LISTEN_FULL;
	e.sport = BPF_CORE_READ(sk, __sk_common.skc_num);
	e.queue = q;
	e.queue_max = max;
	e.ts = now;
	emit(&e, sizeof(e));
}

/*
 * A child was queued on a listener: its queue may have just turned full.
 * This runs for every data arrival on every socket: the state, one direct
 * load through the tracepoint's BTF pointer (no probe_read call), turns
 * away all but listeners.
 */
SEC("tp_btf/sk_data_ready")
int BPF_PROG(handle_data_ready, const struct sock *sk)
{
	if (sk->__sk_common.skc_state != CT_TCP_LISTEN)
		return 0;
	listener_seen(sk);
	return 0;
}

/*
 * A SYN reached a listener (kernels with trampolines): a full queue here
 * means this SYN is about to be dropped. Kernels without sk_data_ready (6.1)
 * see full listeners through this alone.
 */
SEC("fentry/tcp_conn_request")
int BPF_PROG(fentry_conn_request, void *rsk_ops, void *af_ops, struct sock *sk)
{
	if (sk->__sk_common.skc_state != CT_TCP_LISTEN)
		return 0;
	listener_seen(sk);
	return 0;
}

/*
 * One struct ct_listener per listener in the map, read by the collector once
 * a second: how many SYNs each dropped on its full queue since.
 */
SEC("iter/bpf_map_elem")
int dump_listeners(struct bpf_iter__bpf_map_elem *ctx)
{
	struct listener_state *ls = ctx->value;
	__u64 *key = ctx->key;
	struct ct_listener out = {};
	const struct sock *sk;

	if (!key || !ls)
		return 0;
	sk = (const struct sock *)*key;
	/* entries go at LISTEN -> CLOSE, so the socket is alive; check anyway */
	if (BPF_CORE_READ(sk, __sk_common.skc_state) != CT_TCP_LISTEN)
		return 0;
	out.sk = *key;
	out.netns = sk_netns(sk);
	out.family = BPF_CORE_READ(sk, __sk_common.skc_family);
	out.port = BPF_CORE_READ(sk, __sk_common.skc_num);
	local_addr(sk, out.family, out.addr);
	out.queue = BPF_CORE_READ(sk, sk_ack_backlog);
	out.queue_max = BPF_CORE_READ(sk, sk_max_ack_backlog);
	out.drops = read_drops(sk);
	out.drops_at_full = ls->drops_at_full;
	bpf_seq_write(ctx->meta->seq, &out, sizeof(out));
	return 0;
}
