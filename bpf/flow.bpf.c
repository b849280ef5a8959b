// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * conntrace kernel side, the flows: follows each outgoing TCP connection
 * attempt from connect() to ESTABLISHED or CLOSE in a flow table keyed by
 * socket, and sends one record per finished attempt. The other signals live
 * in evidence.bpf.c, listener.bpf.c and connect.bpf.c; all are linked into
 * one object (see conntrace.bpf.h). Every signal has a tracepoint (tp_btf)
 * program; the loader (user/tracer.c) keeps those this kernel has.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "conntrace.h"
#include "conntrace.bpf.h"

/* Knobs, set by the collector before load (declared in conntrace.bpf.h). */
const volatile __u32 targ_tgids[CT_MAX_TARGETS] = {};
const volatile __u32 targ_ntgids = 0;	/* 0: every process */
const volatile __u16 targ_ports[CT_MAX_TARGETS] = {};
const volatile __u32 targ_nports = 0;	/* 0: every port */
const volatile char targ_comm[CT_COMM_LEN] = {};
const volatile __u64 targ_cgroup_id = 0;
const volatile __u32 targ_cgroup_level = 0;
const volatile __u32 targ_netns = 0;	/* only this network namespace (inode); 0: all */
const volatile bool emit_ok = false;	/* send established flows that were fast and clean */
const volatile __u64 slow_ns = 1000000000ULL;
/* Wake the collector only once this much data waits; it drains on a timer. */
const volatile __u64 wakeup_bytes = 0;
const volatile __u32 max_flows = 65536;	/* the flow table's size */
const volatile __u8 targ_dir = CT_DIR_OUT | CT_DIR_IN;
const volatile bool flows_in_sk = false;	/* the flow table: flow_store, else flows */
const volatile bool inflight_in_task = false;	/* inflight: task storage, else LRU by tid */

events_map_t events SEC(".maps");
flows_map_t flows SEC(".maps");
flow_store_map_t flow_store SEC(".maps");
closed_in_connect_map_t closed_in_connect SEC(".maps");
soft_notes_map_t soft_notes SEC(".maps");
dests_map_t dests SEC(".maps");
counters_map_t counters SEC(".maps");
ok_hist_map_t ok_hist SEC(".maps");
inflight_map_t inflight SEC(".maps");
listeners_map_t listeners SEC(".maps");
estabs_map_t estabs SEC(".maps");
__s64 live_flows = 0;
__u64 last_loss_ns = 0;
__u64 last_soft_note_ns = 0;

static __always_inline void flow_start(const struct sock *sk)
{
	__u64 id = bpf_get_current_pid_tgid();
	/* built on the stack: a per-CPU scratch slot would be shared with the
	 * softirq programs, which can interrupt this one and overwrite it */
	struct ct_flow rec = {}, *f = &rec;

	if (!(targ_dir & CT_DIR_OUT))
		return;	/* --direction in: no outgoing attempt is followed */
	bpf_get_current_comm(f->comm, sizeof(f->comm));
	if (!owner_wanted(id >> 32, f->comm))
		return;
	f->netns = sk_netns_in(sk, true);
	if (!netns_wanted(f->netns))
		return;
	f->type = CT_REC_FLOW;
	f->state = CT_TCP_SYN_SENT;
	f->tid = (__u32)id;
	f->pid = id >> 32;
	f->cgroup_id = bpf_get_current_cgroup_id();
	f->ts_start = bpf_ktime_get_boot_ns();
	read_tuple_in(f, sk, true);
	/*
	 * The source port only if bound (bind() before connect()): a socket that
	 * connects again after a failed attempt still has that attempt's
	 * inet_sport, and gets its new port after this state change. 0 is read
	 * again at connect()'s return and at the end.
	 */
	f->sport = sk->__sk_common.skc_num;
	if (!port_wanted(f->sport, f->dport)) {
		/* a source port bound before connect() is final: not wanted */
		if (f->sport)
			return;
		/* an ephemeral one is chosen after this: it may still match */
		f->kflags |= CT_KF_UNCOUNTED;
	}
	if (flow_new(sk, f)) {
		count(CT_CNT_FLOW_NOSPACE);
		return;
	}
	{
		struct dest_key dk = { .port = f->dport, .family = f->family };
		__u64 *seen;

		__builtin_memcpy(dk.addr, f->daddr, sizeof(dk.addr));
		/*
		 * A dual-stack socket to ::ffff:a.b.c.d sends IPv4 packets: its
		 * evidence (drops, RSTs, ICMP) arrives as IPv4, so key it so.
		 */
		if (dk.family == AF_INET6 && !*(__u64 *)dk.addr &&
		    *(__u32 *)(dk.addr + 8) == bpf_htonl(0xffff)) {
			dk.family = AF_INET;
			__builtin_memcpy(dk.addr, f->daddr + 12, 4);
			__builtin_memset(dk.addr + 4, 0, 12);
		}
		/* a lookup is cheaper than an update: refresh the stamp once a second */
		seen = bpf_map_lookup_elem(&dests, &dk);
		if (!seen || f->ts_start - *seen > 1000000000ULL)
			bpf_map_update_elem(&dests, &dk, &f->ts_start, BPF_ANY);
	}
	/* the LRU evicts without telling: keep the estimate within the table */
	if (!flows_in_sk && __sync_fetch_and_add(&live_flows, 1) >= max_flows)
		__sync_fetch_and_sub(&live_flows, 1);
	if (!(f->kflags & CT_KF_UNCOUNTED))
		count(CT_CNT_FLOWS);
}

/*
 * A SYN_SENT socket left that state but has no flow: it began before
 * conntrace, or the LRU table evicted it. Only a table near its limit
 * evicts (the LRU keeps per-CPU free lists, hence the margin); flows kept in
 * their sockets never are.
 */
static __always_inline void flow_lost(const struct sock *sk, int newstate, __u64 now)
{
	bool evicted = !flows_in_sk && live_flows >= (__s64)(max_flows - max_flows / 8);
	struct ct_flow rec = {}, *f = &rec;

	read_tuple_in(f, sk, true);
	f->netns = sk_netns_in(sk, true);
	if (!port_wanted(f->sport, f->dport) || !netns_wanted(f->netns))
		return;	/* filtered at start, or would have been */
	count(evicted ? CT_CNT_FLOW_EVICTED : CT_CNT_FLOW_UNTRACKED);
	f->type = CT_REC_FLOW;
	f->flags = evicted ? CT_F_EVICTED : CT_F_UNTRACKED;
	f->ts_start = now;
	flow_read_end(f, sk, newstate, now);
	flow_send(f, now);
}

/*
 * Simultaneous opens not yet over: while there is none, a socket leaving
 * SYN_RECV (every accepted child does) needs no flow lookup. Raised before
 * the flag is set, lowered when a flagged flow ends: never below the truth.
 */
__s64 simopen_live = 0;

/*
 * Whether a close without an error is connect() failing (no free port, no
 * buffer) inside the owner's own connect() call: the one that began this
 * very attempt, moments ago. Not the owner's close() after a connect() whose
 * return was skipped, nor a timer that ends the attempt in a softirq while
 * its owner, interrupted, is inside another connect().
 */
static __always_inline struct inflight *closing_in_connect(const struct ct_flow *f, __u64 key,
							    __u32 tid, __u64 now)
{
	struct inflight *in;

	if (f->err || tid != f->tid)
		return NULL;
	in = inflight_get();
	if (!in || in->sk != key || now - in->ts > CT_CONNECT_DEFER_MAX_NS)
		return NULL;
	return in;
}

/*
 * The attempt left SYN_SENT (or SYN_RECV, after a simultaneous open) for
 * ESTABLISHED or CLOSE. A close without an error inside the owner's own
 * connect() is connect() failing: the flow, read now, waits for connect()
 * to return and say why.
 */
static __always_inline void flow_end(const struct sock *sk, struct ct_flow *f, int newstate)
{
	__u64 key = (__u64)sk, now = bpf_ktime_get_boot_ns();
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct inflight *in;

	if (f->flags & CT_F_SIMOPEN)
		__sync_fetch_and_sub(&simopen_live, 1);
	flow_read_end(f, sk, newstate, now);
	if (newstate == CT_TCP_CLOSE && (in = closing_in_connect(f, key, tid, now)) &&
	    !bpf_map_update_elem(&closed_in_connect, &tid, f, BPF_ANY)) {
		in->sk = key;
		in->deferred = 1;
	} else {
		if (newstate == CT_TCP_CLOSE)
			timeout_read_away(f, sk);
		flow_send(f, now);
	}
	flow_finished(sk, f, newstate);
}

/*
 * Out of SYN_RECV: only attempts in the flow table, i.e. simultaneous opens.
 * A server's accepted child also goes SYN_RECV -> ESTABLISHED (and may close
 * from SYN_RECV), and must not be taken for a lost flow: a miss says nothing.
 */
static __always_inline void simopen_end(const struct sock *sk, int newstate)
{
	struct ct_flow *f;

	if (simopen_live <= 0)
		return;
	f = flow_get(sk);
	if (!f)
		return;
	/* closed before it was established (FIN_WAIT1 or CLOSE): it ended there */
	flow_end(sk, f, newstate == CT_TCP_ESTABLISHED ? newstate : CT_TCP_CLOSE);
}

/*
 * Tell connect()'s return that this socket's attempt began inside it: an
 * error it returns later (a blocking connect() woken by an ICMP host
 * unreachable) ended that attempt, it is no failure before a SYN.
 */
static __always_inline void flow_begun_in_connect(__u64 key)
{
	struct inflight *in = inflight_get();

	if (in)
		in->sk = key;
}

/*
 * Every TCP state change of the host goes through here: the state pair,
 * from the arguments, decides before anything is read from the socket.
 */
SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(handle_set_state, const struct sock *sk, int oldstate, int newstate)
{
	__u64 key = (__u64)sk;
	struct ct_flow *f;

	switch (oldstate) {
	case CT_TCP_LISTEN:
		/* a closing listener leaves the map before its memory can be
		 * reused (an accepted child leaves LISTEN too, for SYN_RECV) */
		if (newstate == CT_TCP_CLOSE)
			bpf_map_delete_elem(&listeners, &key);
		return 0;
	case CT_TCP_CLOSE:
		/* inside connect(), in the caller's task */
		if (newstate != CT_TCP_SYN_SENT || !is_tcp_in(sk, true))
			return 0;
		flow_begun_in_connect(key);
		flow_start(sk);
		return 0;
	case CT_TCP_SYN_RECV:
		if (is_tcp_in(sk, true))
			simopen_end(sk, newstate);
		return 0;
	case CT_TCP_SYN_SENT:
		break;
	default:
		return 0;
	}
	if (newstate != CT_TCP_ESTABLISHED && newstate != CT_TCP_CLOSE &&
	    newstate != CT_TCP_SYN_RECV)
		return 0;
	if (!is_tcp_in(sk, true))
		return 0;
	f = flow_get(sk);
	if (newstate == CT_TCP_SYN_RECV) {
		/* a SYN crossed ours (a self-connect does this): still connecting */
		if (f && !(f->flags & CT_F_SIMOPEN)) {
			__sync_fetch_and_add(&simopen_live, 1);
			f->flags |= CT_F_SIMOPEN;
		}
		return 0;
	}
	if (!f) {
		if (owner_filtered() || !(targ_dir & CT_DIR_OUT))
			return 0;	/* filtered at start, not evicted */
		flow_lost(sk, newstate, bpf_ktime_get_boot_ns());
		return 0;
	}
	flow_end(sk, f, newstate);
	return 0;
}

/* A flow exists only while its socket is in one of these states. */
static __always_inline bool connecting(const struct sock *sk)
{
	__u8 state = sk->__sk_common.skc_state;

	return state == CT_TCP_SYN_SENT || state == CT_TCP_SYN_RECV;
}

SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(handle_retransmit, const struct sock *sk)
{
	struct ct_flow *f;
	__u32 n;

	/* SYN_RECV: a simultaneous open retransmitting its SYN-ACK */
	if (!connecting(sk))
		return 0;
	f = flow_get(sk);
	if (!f)
		return 0;
	read_tuple_in(f, sk, true);	/* the source port is bound by now */
	flow_count_late(f);
	note_err_soft_in(f, sk, true);	/* retrying after an ICMP error */
	n = f->syn_retrans++;
	if (n < CT_MAX_RETRANS)
		f->retrans_us[n] = (bpf_ktime_get_boot_ns() - f->ts_start) / 1000;
	return 0;
}

SEC("tp_btf/tcp_receive_reset")
int BPF_PROG(handle_receive_reset, struct sock *sk)
{
	struct ct_flow *f;

	if (sk->__sk_common.skc_state != CT_TCP_SYN_SENT)
		return 0;
	f = flow_get(sk);
	if (!f)
		return 0;
	f->flags |= CT_F_RST_RCVD;
	f->ts_rst = bpf_ktime_get_boot_ns();
	return 0;
}

SEC("tp_btf/inet_sk_error_report")
int BPF_PROG(handle_error_report, const struct sock *sk)
{
	struct ct_flow *f;

	/* reported after the state change to CLOSE (the flow is gone) or before */
	if (!connecting(sk))
		return 0;
	f = flow_get(sk);
	if (!f)
		return 0;
	f->err_report = sk->sk_err;
	f->ts_err = bpf_ktime_get_boot_ns();
	return 0;
}

/*
 * At stop, the flows still connecting, each with its tuple read again from its
 * socket. A blocking connect() binds its source port after the socket entered
 * SYN_SENT and returns only when the attempt is over, so a flow that has not
 * retransmitted yet would otherwise be reported pending with source port 0
 * (and its dropped SYNs could not be matched to it). One iterator per kind
 * of table; the collector attaches the one in use.
 */
SEC("iter/bpf_map_elem")
int dump_pending(struct bpf_iter__bpf_map_elem *ctx)
{
	const struct ct_flow *v = ctx->value;
	__u64 *key = ctx->key;
	const struct sock *sk;
	struct ct_flow f;
	__u8 state;

	if (!key || !v)
		return 0;
	__builtin_memcpy(&f, v, sizeof(f));
	sk = (const struct sock *)*key;
	/* entries leave the table when the attempt ends: the socket is alive */
	state = BPF_CORE_READ(sk, __sk_common.skc_state);
	if (state == CT_TCP_SYN_SENT || state == CT_TCP_SYN_RECV)
		read_tuple(&f, sk);
	flow_count_late(&f);
	bpf_seq_write(ctx->meta->seq, &f, sizeof(f));
	return 0;
}

SEC("iter/bpf_sk_storage_map")
int dump_pending_sk(struct bpf_iter__bpf_sk_storage_map *ctx)
{
	const struct ct_flow *v = ctx->value;
	const struct sock *sk = ctx->sk;
	struct ct_flow f;

	if (!sk || !v || (v->kflags & CT_KF_ENDED))
		return 0;	/* an ended attempt in a closed socket: no pending flow */
	__builtin_memcpy(&f, v, sizeof(f));
	if (connecting(sk))
		read_tuple_in(&f, sk, true);
	/* connect()'s return may have left an ICMP error for it */
	soft_note_take(&f, (__u64)sk);
	note_err_soft_in(&f, sk, true);
	flow_count_late(&f);
	bpf_seq_write(ctx->meta->seq, &f, sizeof(f));
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
