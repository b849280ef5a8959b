// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * conntrace listen: the kernel side of the accept-queue view.
 *
 * - iter/tcp walks the listeners of the reader's network namespace and
 *   writes one struct listen_rec each (queue depths, sk_drops).
 * - tp_btf tracepoints keep per-listener counters keyed by socket cookie:
 *   accept-queue peak (sk_data_ready), SYN-ACK retransmits, resets sent,
 *   and the owner and listen() backlog caught at CLOSE -> LISTEN.
 * - syscalls/sys_enter_listen (classic) remembers the backlog argument,
 *   which the kernel does not keep (it stores min(backlog, somaxconn)).
 * - fentry/fexit on tcp_conn_request and tcp_check_req count accept-queue
 *   overflows exactly; the loader enables them only where a
 *   real load succeeds (refused on the tracepoint-only kernels).
 * - each SYN at its listener (fentry/fexit on tcp_conn_request, else
 *   skb:consume_skb called from tcp_rcv_state_process): SYN cookies sent, and
 *   the remote clients whose SYNs were dropped (listen_syn.bpf.h).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "listen_rec.h"
#include "sock.bpf.h"
#include "conntrace.h"

#define AF_INET     2
#define AF_INET6    10
#define TCP_LISTEN  10
#define TCP_CLOSE   7
#define IPPROTO_TCP 6

/* [lo, hi): tcp_rcv_state_process's code, from /proc/kallsyms (user space) */
const volatile __u64 syn_loc_lo = 0;
const volatile __u64 syn_loc_hi = 0;

/* Bumped by the collector at each refresh; restarts the per-listener peak. */
__u32 peak_epoch = 0;
struct listen_lost lost = {};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, LISTEN_MAX_LISTENERS);
	__type(key, __u64); /* socket cookie */
	__type(value, struct listen_stats);
} listeners SEC(".maps");

/* listen() backlog by thread, between sys_enter_listen and the state change. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64); /* pid_tgid */
	__type(value, __s32);
} pending_backlog SEC(".maps");

/* Entry state of an overflow site, read back at its fexit on the same CPU. */
enum { STASH_CONN_REQUEST, STASH_CHECK_REQ, STASH_COOKIE, STASH_SYN, STASH_NR };

struct overflow_stash {
	__u64 cookie;
	__u32 drops;
	__u32 overflow_candidate;
	__u32 syn_qlen;       /* STASH_SYN: the SYN queue before the SYN */
	__u32 acceptq_full;   /* STASH_SYN: the accept queue was full before it */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 4); /* STASH_NR */
	__type(key, __u32);
	__type(value, struct overflow_stash);
} overflow_stash SEC(".maps");

/* Listeners by namespace, family, port and address: how a SYN finds its own. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, LISTEN_MAX_LISTENERS);
	__type(key, struct listen_sock_key);
	__type(value, struct listen_sock);
} listen_socks SEC(".maps");

/* SYNs dropped per listener and client, read and emptied at each refresh. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, LISTEN_MAX_CLIENTS);
	__type(key, struct listen_client_key);
	__type(value, struct listen_client);
} clients SEC(".maps");

static __always_inline bool is_tcp_listener(const struct sock *sk)
{
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);

	return BPF_CORE_READ(sk, __sk_common.skc_state) == TCP_LISTEN &&
	       (family == AF_INET || family == AF_INET6) &&
	       BPF_CORE_READ(sk, sk_protocol) == IPPROTO_TCP;
}

/* The listener's entry, created on first sight (owner unknown then). */
static __always_inline struct listen_stats *stats_of(__u64 cookie)
{
	struct listen_stats *s = bpf_map_lookup_elem(&listeners, &cookie);
	struct listen_stats init = {};

	if (s)
		return s;
	if (bpf_map_update_elem(&listeners, &cookie, &init, BPF_NOEXIST) &&
	    !bpf_map_lookup_elem(&listeners, &cookie)) {
		__sync_fetch_and_add(&lost.stats_map_full, 1);
		return NULL;
	}
	return bpf_map_lookup_elem(&listeners, &cookie);
}

#include "listen_syn.bpf.h"

SEC("iter/tcp")
int dump_listeners(struct bpf_iter__tcp *ctx)
{
	struct sock_common *skc = ctx->sk_common;
	struct listen_rec r = {};
	struct tcp_sock *tp;
	struct sock *sk;
	struct sock_reuseport *reuse;
	struct listen_stats *s;

	if (!skc || skc->skc_state != TCP_LISTEN)
		return 0;
	tp = bpf_skc_to_tcp_sock(skc);
	if (!tp)
		return 0;
	sk = (struct sock *)tp;

	r.cookie = bpf_get_socket_cookie(skc);
	r.netns_ino = BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
	r.sock_ino = BPF_CORE_READ(sk, sk_socket, file, f_inode, i_ino);
	r.ack_backlog = BPF_CORE_READ(sk, sk_ack_backlog);
	r.max_ack_backlog = BPF_CORE_READ(sk, sk_max_ack_backlog);
	r.syn_qlen = BPF_CORE_READ(tp, inet_conn.icsk_accept_queue.qlen.counter);
	r.drops = read_drops(sk);
	/* tcp_synq_overflow() stamps here each time (at most 1/s) it sends cookies */
	reuse = BPF_CORE_READ(sk, sk_reuseport_cb);
	if (reuse)
		r.synq_overflow_ts = BPF_CORE_READ(reuse, synq_overflow_ts);
	else
		r.synq_overflow_ts = BPF_CORE_READ(tp, rx_opt.ts_recent_stamp);
	r.uid = ctx->uid;
	r.family = skc->skc_family;
	r.lport = skc->skc_num;
	if (r.family == AF_INET)
		BPF_CORE_READ_INTO(&r.laddr, skc, skc_rcv_saddr);
	else
		BPF_CORE_READ_INTO(&r.laddr, skc, skc_v6_rcv_saddr.in6_u.u6_addr8);
	bpf_seq_write(ctx->meta->seq, &r, sizeof(r));
	/* listeners opened before conntrace: from now on their SYNs find them */
	sock_register(sk, r.cookie);
	s = stats_of(r.cookie);
	if (s && !s->syn_seen) {
		s->drops_last = r.drops;
		s->syn_seen = 1;
	}
	return 0;
}

/* Classic tracepoint layout of syscalls/sys_enter_listen (see its format). */
struct sys_enter_listen_args {
	__u64 common;
	__s32 syscall_nr;
	__u32 pad;
	__u64 fd;
	__u64 backlog;
};

SEC("tracepoint/syscalls/sys_enter_listen")
int on_sys_enter_listen(struct sys_enter_listen_args *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__s32 backlog = (__s32)ctx->backlog;

	if (bpf_map_update_elem(&pending_backlog, &id, &backlog, BPF_ANY))
		__sync_fetch_and_add(&lost.pending_map_full, 1);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_listen")
int on_sys_exit_listen(void *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();

	bpf_map_delete_elem(&pending_backlog, &id);
	return 0;
}

/*
 * CLOSE -> LISTEN runs inside listen(), in the caller's task: the one
 * place where the owner is the current task. LISTEN -> CLOSE ends it.
 */
SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(on_set_state, const struct sock *sk, const int oldstate, const int newstate)
{
	struct listen_stats init = {};
	__u64 id, cookie;
	__s32 *backlog;

	if (sk->sk_protocol != IPPROTO_TCP)
		return 0;
	cookie = bpf_get_socket_cookie((void *)sk);
	/*
	 * A child is cloned from its listener, state and cookie included, and
	 * moves LISTEN -> SYN_RECV before its own cookie is reset (6.1): only
	 * LISTEN -> CLOSE is the listener itself going away.
	 */
	if (oldstate == TCP_LISTEN) {
		if (newstate == TCP_CLOSE) {
			bpf_map_delete_elem(&listeners, &cookie);
			sock_unregister(sk, cookie);
		}
		return 0;
	}
	if (newstate != TCP_LISTEN)
		return 0;

	id = bpf_get_current_pid_tgid();
	init.tgid = id >> 32;
	bpf_get_current_comm(init.comm, sizeof(init.comm));
	backlog = bpf_map_lookup_elem(&pending_backlog, &id);
	if (backlog) {
		init.backlog = *backlog;
		init.backlog_known = 1;
	}
	init.syn_seen = 1; /* a new socket: sk_drops starts at 0 */
	if (bpf_map_update_elem(&listeners, &cookie, &init, BPF_ANY))
		__sync_fetch_and_add(&lost.stats_map_full, 1);
	sock_register(sk, cookie);
	return 0;
}

/* Fires on the listener right after a child joins its accept queue. */
SEC("tp_btf/sk_data_ready")
int BPF_PROG(on_data_ready, const struct sock *sk)
{
	struct listen_stats *s;
	__u32 depth, epoch;

	if (!is_tcp_listener(sk))
		return 0;
	s = stats_of(bpf_get_socket_cookie((void *)sk));
	if (!s)
		return 0;
	depth = sk->sk_ack_backlog;
	epoch = peak_epoch;
	/* Racy between CPUs, like the kernel's own counters: a lost update
	 * understates one peak by one event, never invents one. */
	if (s->peak_epoch != epoch) {
		s->peak_epoch = epoch;
		s->peak = depth;
	} else if (depth > s->peak) {
		s->peak = depth;
	}
	__sync_fetch_and_add(&s->data_ready, 1);
	if (depth > sk->sk_max_ack_backlog) /* sk_acceptq_is_full() */
		__sync_fetch_and_add(&s->full_events, 1);
	return 0;
}

/* The listener is the socket: inet_rtx_syn_ack() passes the parent. */
SEC("tp_btf/tcp_retransmit_synack")
int BPF_PROG(on_synack_retrans, const struct sock *sk, const struct request_sock *req)
{
	struct listen_stats *s;

	if (!is_tcp_listener(sk))
		return 0;
	s = stats_of(bpf_get_socket_cookie((void *)sk));
	if (s)
		__sync_fetch_and_add(&s->synack_retrans, 1);
	return 0;
}

/* Resets the kernel sends on a listener's behalf (sk may be NULL). */
SEC("tp_btf/tcp_send_reset")
int BPF_PROG(on_send_reset, const struct sock *sk)
{
	struct listen_stats *s;

	if (!sk || !is_tcp_listener(sk))
		return 0;
	s = stats_of(bpf_get_socket_cookie((void *)sk));
	if (s)
		__sync_fetch_and_add(&s->resets_sent, 1);
	return 0;
}

/*
 * Exact overflow counting where fentry is allowed. An overflow is a
 * tcp_listendrop() on a full accept queue, in one of two places:
 * - tcp_conn_request(), for a SYN (unless the SYN was already dropped
 *   because the SYN queue is full and SYN cookies are off);
 * - tcp_vX_syn_recv_sock(), for the handshake's last ACK, reached through
 *   tcp_check_req(), or through cookie_vX_check() when the SYN got a SYN
 *   cookie. syn_recv_sock itself takes 7 arguments on 6.18 and on Debian's
 *   6.1 (a backport), one more than x86 trampolines of 6.1 allow, so its
 *   callers (2 to 6 arguments) are traced instead.
 * Entry notes whether the queue is full and the listener's sk_drops; exit
 * counts an overflow when sk_drops moved in between (and, for
 * tcp_check_req, no child came back). Softirq does not nest on a CPU, so
 * one per-CPU slot per function is enough.
 */

static __always_inline void stash_enter(__u32 slot, struct sock *sk, bool candidate)
{
	struct overflow_stash *st = bpf_map_lookup_elem(&overflow_stash, &slot);

	if (!st)
		return;
	st->cookie = bpf_get_socket_cookie(sk);
	st->drops = read_drops(sk);
	st->overflow_candidate = candidate;
}

static __always_inline void stash_exit(__u32 slot, struct sock *sk)
{
	struct overflow_stash *st = bpf_map_lookup_elem(&overflow_stash, &slot);
	__u64 cookie = bpf_get_socket_cookie(sk);
	struct listen_stats *s;

	if (!st || st->cookie != cookie || !st->overflow_candidate)
		return;
	st->overflow_candidate = 0;
	if (read_drops(sk) == st->drops)
		return;
	s = stats_of(cookie);
	if (s)
		__sync_fetch_and_add(&s->overflows, 1);
}

static __always_inline bool acceptq_full(const struct sock *sk)
{
	return BPF_CORE_READ(sk, sk_ack_backlog) > BPF_CORE_READ(sk, sk_max_ack_backlog);
}

SEC("fentry/tcp_conn_request")
int BPF_PROG(conn_request_enter, struct request_sock_ops *rsk_ops,
	     const struct tcp_request_sock_ops *af_ops, struct sock *sk,
	     struct sk_buff *skb)
{
	__u32 max = BPF_CORE_READ(sk, sk_max_ack_backlog);
	__u32 qlen = BPF_CORE_READ((struct inet_connection_sock *)sk,
				   icsk_accept_queue.qlen.counter);
	__u8 syncookies = BPF_CORE_READ(sk, __sk_common.skc_net.net,
					ipv4.sysctl_tcp_syncookies);

	stash_enter(STASH_CONN_REQUEST, sk, acceptq_full(sk) && !(qlen > max && !syncookies));
	return 0;
}

SEC("fexit/tcp_conn_request")
int BPF_PROG(conn_request_exit, struct request_sock_ops *rsk_ops,
	     const struct tcp_request_sock_ops *af_ops, struct sock *sk,
	     struct sk_buff *skb)
{
	stash_exit(STASH_CONN_REQUEST, sk);
	return 0;
}

/* With TCP Fast Open, tcp_check_req() also runs on the child: skip it. */
SEC("fentry/tcp_check_req")
int BPF_PROG(check_req_enter, struct sock *sk)
{
	if (is_tcp_listener(sk))
		stash_enter(STASH_CHECK_REQ, sk, acceptq_full(sk));
	return 0;
}

/* The return value is read with bpf_get_func_ret(): its slot moved in 6.x. */
SEC("fexit/tcp_check_req")
int BPF_PROG(check_req_exit, struct sock *sk)
{
	__u64 child = 1;

	if (bpf_get_func_ret(ctx, &child) || child || !is_tcp_listener(sk))
		return 0;
	stash_exit(STASH_CHECK_REQ, sk);
	return 0;
}

/* The ACK (or data) that completes a SYN-cookie handshake. */
static __always_inline int cookie_check_exit(void *ctx, struct sock *sk)
{
	__u64 child = 1;

	if (bpf_get_func_ret(ctx, &child) || child)
		return 0;
	stash_exit(STASH_COOKIE, sk);
	return 0;
}

SEC("fentry/cookie_v4_check")
int BPF_PROG(cookie_v4_enter, struct sock *sk)
{
	stash_enter(STASH_COOKIE, sk, acceptq_full(sk));
	return 0;
}

SEC("fexit/cookie_v4_check")
int BPF_PROG(cookie_v4_exit, struct sock *sk)
{
	return cookie_check_exit(ctx, sk);
}

SEC("fentry/cookie_v6_check")
int BPF_PROG(cookie_v6_enter, struct sock *sk)
{
	stash_enter(STASH_COOKIE, sk, acceptq_full(sk));
	return 0;
}

SEC("fexit/cookie_v6_check")
int BPF_PROG(cookie_v6_exit, struct sock *sk)
{
	return cookie_check_exit(ctx, sk);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
