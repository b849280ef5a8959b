/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * What the parts of conntrace's kernel side share (include after vmlinux.h
 * and conntrace.h). The parts, one per signal family, are compiled apart and
 * linked into one object (bpftool gen object), so one skeleton loads them
 * all: flow.bpf.c (the flow table and its state changes), evidence.bpf.c
 * (packets dropped, RSTs and ICMP errors sent), listener.bpf.c (full accept
 * queues), connect.bpf.c (connect() failing before any state change).
 *
 * Each shared map and global is defined in exactly one part, flow.bpf.c,
 * and declared extern here; the static linker resolves the externs, so every
 * part sees the same map. A map's type is a typedef so that the extern and
 * the definition cannot differ. All are defined in the part linked first:
 * libbpf 1.1's linker leaves an extern map resolved by a later object at
 * offset 0 of .maps ("map relo failed to find map" when opening the result).
 */
#ifndef CONNTRACE_BPF_H
#define CONNTRACE_BPF_H

#include "sock.bpf.h"
#include "verdict_class.h"

#define AF_INET		2
#define AF_INET6	10
#define IPPROTO_TCP	6
#define ETH_P_IP	0x0800
#define ETH_P_IPV6	0x86DD
#define EINPROGRESS	115
#define EHOSTUNREACH	113
#define ENETUNREACH	101
#define ETIMEDOUT	110
#define EADDRNOTAVAIL	99

/* Knobs, set by the collector before load. */
/* --pid, --port: only these processes, only flows with one of these ports at either end */
extern const volatile __u32 targ_tgids[CT_MAX_TARGETS];
extern const volatile __u32 targ_ntgids;	/* 0: every process */
extern const volatile __u16 targ_ports[CT_MAX_TARGETS];
extern const volatile __u32 targ_nports;	/* 0: every port */
extern const volatile char targ_comm[CT_COMM_LEN];	/* --comm; "": every task */
/* --cgroup: only tasks in this cgroup (v2 id) or below it; 0: all */
extern const volatile __u64 targ_cgroup_id;
extern const volatile __u32 targ_cgroup_level;	/* its depth: the ancestor to compare */
extern const volatile __u32 targ_netns;	/* only this network namespace (inode); 0: all */
extern const volatile bool emit_ok;	/* send established flows that were fast and clean */
extern const volatile __u64 slow_ns;	/* 0: no latency threshold */
/* Wake the collector only once this much data waits; it drains on a timer. */
extern const volatile __u64 wakeup_bytes;
extern const volatile __u32 max_flows;	/* the flow table's size */
extern const volatile __u8 targ_dir;	/* CT_DIR_OUT | CT_DIR_IN */

/* the ring buffer every record goes through */
typedef struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);	/* resized by the collector */
} events_map_t;
extern events_map_t events SEC(".maps");

/*
 * Attempts in SYN_SENT (or SYN_RECV): the flow table. Where the kernel lets
 * tracing programs use socket-local storage (5.11 and later; the collector
 * probes it), each attempt lives in its socket (flow_store, flows_in_sk):
 * it goes with the socket, so no entry is ever evicted and a new socket at a
 * freed one's address never finds it. Elsewhere an LRU hash keyed by the
 * struct sock address (flows) is the table, and may evict. Every program
 * goes through flow_get()/flow_new()/flow_finished(): the verifier drops the
 * branch of the table not in use (flows_in_sk is read-only data).
 */
extern const volatile bool flows_in_sk;

typedef struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);	/* resized by the collector */
	__type(key, __u64);
	__type(value, struct ct_flow);
} flows_map_t;
extern flows_map_t flows SEC(".maps");

typedef struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct ct_flow);
} flow_store_map_t;
extern flow_store_map_t flow_store SEC(".maps");

/*
 * An attempt that closed inside its connect() without an error (no free
 * port, no buffer), keyed by thread id, until connect() returns and says
 * why: out of the table, because the syscall tracepoints that may see that
 * return cannot reach a socket's storage.
 */
typedef struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct ct_flow);
} closed_in_connect_map_t;
extern closed_in_connect_map_t closed_in_connect SEC(".maps");

/*
 * With flows_in_sk and connect()'s return seen by a syscall tracepoint:
 * an ICMP error left on the socket (sk_err_soft) when connect() returned,
 * keyed by socket address, for the attempt's end to take (an SO_ERROR read
 * clears it meanwhile). Stamped, so a new socket at the same address does
 * not take an old note.
 */
struct soft_note {
	__u64 ts;
	__s32 err_soft;
	__u32 pad;
};

typedef struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct soft_note);
} soft_notes_map_t;
extern soft_notes_map_t soft_notes SEC(".maps");

/* a thread's connect() in progress: in its task storage while ts is set */
struct inflight {
	__u64 sk;		/* the socket whose SYN_SENT began in this connect() */
	__u64 uaddr;		/* user sockaddr (syscall path) */
	__u64 ts;		/* when connect() was entered (boot clock); 0: none */
	__s32 fd;
	__u32 deferred;		/* the flow closed inside connect() without an error */
};

/*
 * A close without an error inside connect() happens before connect() waits
 * for anything (no free port, no buffer for the SYN). An entry older than
 * this is one whose return the kernel skipped (a program run skipped for
 * recursion): its thread's later close() of the socket is no such failure.
 */
#define CT_CONNECT_DEFER_MAX_NS	1000000000ULL

/*
 * In the thread's own storage (inflight_in_task), made at its first
 * connect() and kept until it exits: a connect() costs a lookup at each
 * end, where a hash keyed by thread id costs an update and a delete (about
 * 300 ns more a connect() here, measured with bpf_stats). The collector
 * turns this map into that LRU hash where tracing programs may not use task
 * storage (with the flows out of socket storage too: see choose_flow_table()).
 */
typedef struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);	/* a thread id when it is the LRU hash */
	__type(value, struct inflight);
} inflight_map_t;
extern inflight_map_t inflight SEC(".maps");
extern const volatile bool inflight_in_task;

/* The current thread's connect() in progress, or NULL. */
static __always_inline struct inflight *inflight_get(void)
{
	struct inflight *in;

	if (inflight_in_task) {
		in = bpf_task_storage_get(&inflight, bpf_get_current_task_btf(), 0, 0);
	} else {
		__u32 tid = (__u32)bpf_get_current_pid_tgid();

		in = bpf_map_lookup_elem(&inflight, &tid);
	}
	return in && in->ts ? in : NULL;
}

/* The current thread entered connect() (fd and uaddr: the syscall's, else 0). */
static __always_inline void inflight_begin(__s32 fd, __u64 uaddr)
{
	struct inflight *in, fresh = { .fd = fd, .uaddr = uaddr, .ts = bpf_ktime_get_boot_ns() };

	if (inflight_in_task) {
		in = bpf_task_storage_get(&inflight, bpf_get_current_task_btf(), 0,
					  BPF_LOCAL_STORAGE_GET_F_CREATE);
		if (in)
			*in = fresh;
	} else {
		__u32 tid = (__u32)bpf_get_current_pid_tgid();

		bpf_map_update_elem(&inflight, &tid, &fresh, BPF_ANY);
	}
}

/* connect() returned. */
static __always_inline void inflight_end(struct inflight *in)
{
	if (inflight_in_task) {
		in->ts = 0;	/* the storage stays with the thread */
	} else {
		__u32 tid = (__u32)bpf_get_current_pid_tgid();

		bpf_map_delete_elem(&inflight, &tid);
	}
}

/*
 * Listeners found with a full accept queue, until they close. The collector reads their sk_drops through an iterator over this
 * map once a second.
 */
struct listener_state {
	__u64 stamp;		/* bit 63: full at the last look; low bits: time of the last record */
	__u32 drops_at_full;	/* sk_drops when first found full */
	__u32 pad;
};

typedef struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct listener_state);
} listeners_map_t;
extern listeners_map_t listeners SEC(".maps");

/*
 * Destinations this host recently tried to connect to. Evidence
 * without a socket (a dropped SYN, an RST or ICMP error sent) is only sent
 * for these: a server's firewall dropping remote clients' SYNs says nothing
 * about local attempts.
 */
struct dest_key {
	__u8 addr[16];
	__u16 port;
	__u16 family;
};

#define DEST_TTL_NS (300 * 1000000000ULL)	/* longer than any SYN timeout */

typedef struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct dest_key);
	__type(value, __u64);	/* when the last attempt started */
} dests_map_t;
extern dests_map_t dests SEC(".maps");

/*
 * Established connections in trouble, keyed by struct sock address: created
 * at the first retransmit, RST or netfilter drop of an established socket
 * (bpf/established.bpf.c), never for a healthy one; evidence.bpf.c's
 * kfree_skb counts drops into it. Sent and deleted when the socket dies.
 */
typedef struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct ct_estab);
} estabs_map_t;
extern estabs_map_t estabs SEC(".maps");

/* per-CPU counters (enum ct_counter), summed by the collector */
typedef struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CT_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters_map_t;
extern counters_map_t counters SEC(".maps");

/* durations of the OK attempts only counted (CT_OKH_*), summed by the collector */
typedef struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CT_OKH_MAX);
	__type(key, __u32);
	__type(value, __u64);
} ok_hist_map_t;
extern ok_hist_map_t ok_hist SEC(".maps");

/* entries in the LRU flow table, give or take evictions (which the
 * LRU does silently); not kept with flows_in_sk */
extern __s64 live_flows;
/* when the last soft_note was written: older flows need not look */
extern __u64 last_soft_note_ns;
/* when a record was last lost: flows that lived through it are marked */
extern __u64 last_loss_ns;

static __always_inline void count(__u32 which)
{
	__u64 *c = bpf_map_lookup_elem(&counters, &which);

	if (c)
		(*c)++;	/* per-CPU slot: no other writer */
}

/*
 * The collector drains on a timer; the kernel wakes it early only as the
 * data waiting crosses wakeup_bytes, once per crossing, not for every record
 * while above it (each wakeup costs the producer an irq_work).
 */
static __always_inline __u64 rb_flags(__u64 size)
{
	__u64 avail;

	if (!wakeup_bytes)
		return 0;
	avail = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
	return avail < wakeup_bytes && avail + size >= wakeup_bytes ?
		BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
}

/* 0, or -1 when the ring had no room (counted) */
static __always_inline int emit(void *rec, __u64 size)
{
	if (bpf_ringbuf_output(&events, rec, size, rb_flags(size))) {
		count(CT_CNT_RINGBUF_LOST);
		last_loss_ns = bpf_ktime_get_boot_ns();
		return -1;
	}
	return 0;
}

/*
 * A flow record: sent, or if the ring has no room, its attempt counted by
 * the verdict the correlator would have given it (verdict_class.h), so
 * that the summary and the metrics still count every attempt.
 */
static __always_inline void emit_flow(struct ct_flow *f)
{
	__u32 v;

	if (!emit(f, sizeof(*f)))
		return;
	v = ct_flow_verdict(f, slow_ns);
	if (v < CT_KV_MAX)
		count(CT_CNT_LOST_BY_VERDICT + v);
}

/*
 * sk->field: one load where sk is a BTF pointer (an argument of a tp_btf,
 * fentry or iterator program: the verifier knows its type, the JIT guards
 * the load), else bpf_probe_read_kernel() (a classic tracepoint's pointer,
 * or an address kept as a number). btf is a constant at every call site, so
 * only one of the two is compiled in.
 */
#define CT_READ(btf, sk, field) ((btf) ? (sk)->field : BPF_CORE_READ(sk, field))

static __always_inline __u32 sk_netns_in(const struct sock *sk, bool btf)
{
	if (btf)
		return sk->__sk_common.skc_net.net->ns.inum;
	return BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
}

static __always_inline __u32 sk_netns(const struct sock *sk)
{
	return sk_netns_in(sk, false);
}

/*
 * Local and remote address and port of a socket into a flow. Only fields
 * still zero are filled: the source port is bound after connect() enters
 * SYN_SENT, and a failing connect() clears the destination port.
 * inet_sport is read rather than skc_num because closing unbinds the port
 * (inet_put_port zeroes inet_num) before the CLOSE state is traced; it lies
 * beyond struct sock, where the verifier allows no direct load from a
 * struct sock pointer.
 */
static __always_inline void read_tuple_in(struct ct_flow *f, const struct sock *sk, bool btf)
{
	const struct inet_sock *inet = (const struct inet_sock *)sk;
	__u16 port;

	if (!f->family)
		f->family = CT_READ(btf, sk, __sk_common.skc_family);
	if (!f->sport && btf) {
		/* a BTF tcp_sock (a check, no copy) instead of a probe read */
		struct tcp_sock *tp = bpf_skc_to_tcp_sock((void *)sk);

		if (tp)
			f->sport = bpf_ntohs(tp->inet_conn.icsk_inet.inet_sport);
	} else if (!f->sport) {
		f->sport = bpf_ntohs(BPF_CORE_READ(inet, inet_sport));
	}
	port = bpf_ntohs(CT_READ(btf, sk, __sk_common.skc_dport));
	if (!f->dport)
		f->dport = port;
	if (f->family == AF_INET) {
		__u32 a;

		if (!*(__u32 *)f->saddr) {
			a = CT_READ(btf, sk, __sk_common.skc_rcv_saddr);
			__builtin_memcpy(f->saddr, &a, 4);
		}
		if (!*(__u32 *)f->daddr) {
			a = CT_READ(btf, sk, __sk_common.skc_daddr);
			__builtin_memcpy(f->daddr, &a, 4);
		}
	} else {
		struct in6_addr a6;

		if (!*(__u64 *)f->saddr && !*(__u64 *)(f->saddr + 8)) {
			a6 = CT_READ(btf, sk, __sk_common.skc_v6_rcv_saddr);
			__builtin_memcpy(f->saddr, &a6, 16);
		}
		if (!*(__u64 *)f->daddr && !*(__u64 *)(f->daddr + 8)) {
			a6 = CT_READ(btf, sk, __sk_common.skc_v6_daddr);
			__builtin_memcpy(f->daddr, &a6, 16);
		}
	}
}

static __always_inline void read_tuple(struct ct_flow *f, const struct sock *sk)
{
	read_tuple_in(f, sk, false);
}

/* A socket's own (bound) address, in the first 4 or all 16 bytes. */
static __always_inline void local_addr(const struct sock *sk, __u16 family, __u8 *addr)
{
	if (family == AF_INET) {
		__u32 a = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);

		__builtin_memcpy(addr, &a, 4);
	} else {
		struct in6_addr a6 = BPF_CORE_READ(sk, __sk_common.skc_v6_rcv_saddr);

		__builtin_memcpy(addr, &a6, 16);
	}
}

static __always_inline bool is_tcp_in(const struct sock *sk, bool btf)
{
	__u16 family = CT_READ(btf, sk, __sk_common.skc_family);

	return CT_READ(btf, sk, sk_protocol) == IPPROTO_TCP &&
	       (family == AF_INET || family == AF_INET6);
}

static __always_inline bool is_tcp(const struct sock *sk)
{
	return is_tcp_in(sk, false);
}

/* Evidence whose namespace is unknown (0) cannot be shown to match. */
static __always_inline bool netns_wanted(__u32 netns)
{
	return !targ_netns || netns == targ_netns;
}

static __always_inline bool addr_loopback(__u8 family, const __u8 *a)
{
	__u64 hi, lo;

	if (family == AF_INET)
		return a[0] == 127;
	__builtin_memcpy(&hi, a, 8);
	__builtin_memcpy(&lo, a + 8, 8);
	return !hi && lo == bpf_cpu_to_be64(1);	/* ::1 */
}

/*
 * --netns for evidence: a packet seen in another namespace can still be
 * about an attempt of the chosen one when it crossed a veth from there (the
 * peer dropped the SYN, sent the RST, or its listener is full), as the
 * correlator allows; over loopback it cannot be. The dests check (or the
 * socket) already ties evidence to where the chosen namespace connected.
 */
static __always_inline bool evidence_netns_wanted(__u32 netns, __u8 family,
						  const __u8 *saddr, const __u8 *daddr)
{
	if (netns_wanted(netns))
		return true;
	return !addr_loopback(family, saddr) && !addr_loopback(family, daddr);
}

static __always_inline bool port_wanted(__u16 a, __u16 b)
{
	if (!targ_nports)
		return true;
	for (__u32 i = 0; i < CT_MAX_TARGETS && i < targ_nports; i++)
		if (a == targ_ports[i] || b == targ_ports[i])
			return true;
	return false;
}

/* Whether --pid, --comm or --cgroup choose among owners. */
static __always_inline bool owner_filtered(void)
{
	return targ_ntgids || targ_comm[0] || targ_cgroup_id;
}

/*
 * --pid, --comm, --cgroup, in the task that called connect() (its owner):
 * the only place they can be judged, for softirq paths run in any task.
 */
static __always_inline bool owner_wanted(__u32 tgid, const char *comm)
{
	__u32 i;

	if (targ_ntgids) {
		for (i = 0; i < CT_MAX_TARGETS && i < targ_ntgids; i++)
			if (tgid == targ_tgids[i])
				break;
		if (i == CT_MAX_TARGETS || i == targ_ntgids)
			return false;
	}
	if (targ_comm[0]) {
		/* both NUL-padded: equal up to the first NUL */
		for (i = 0; i < CT_COMM_LEN; i++) {
			if (comm[i] != targ_comm[i])
				return false;
			if (!comm[i])
				break;
		}
	}
	/* the ancestor at the target's depth is the target: inside it or below */
	return !targ_cgroup_id ||
	       bpf_get_current_ancestor_cgroup_id(targ_cgroup_level) == targ_cgroup_id;
}

/*
 * An attempt started with its source port unbound and another destination
 * port than --port: count it as a flow once the port is bound, if it matches,
 * so that the summary's flows are those the filter lets through.
 */
static __always_inline void flow_count_late(struct ct_flow *f)
{
	if (!(f->kflags & CT_KF_UNCOUNTED) || !f->sport)
		return;
	f->kflags &= ~CT_KF_UNCOUNTED;
	if (port_wanted(f->sport, f->dport))
		count(CT_CNT_FLOWS);
}

/*
 * An ICMP error for a SYN_SENT socket its owner holds (inside connect(), or
 * any time on loopback) only sets sk_err_soft, and the kernel retries. A
 * non-blocking client that reads SO_ERROR gets it and clears it, then often
 * closes: so it is kept whenever seen (connect()'s return, a retransmit, an
 * SO_ERROR read, the end), never overwritten by a later 0.
 */
static __always_inline void note_err_soft_in(struct ct_flow *f, const struct sock *sk, bool btf)
{
	__s32 soft = CT_READ(btf, sk, sk_err_soft);

	if (soft)
		f->err_soft = soft;
}

static __always_inline void note_err_soft(struct ct_flow *f, const struct sock *sk)
{
	note_err_soft_in(f, sk, false);
}

/* The ICMP error connect()'s return saw, if it was noted for this flow. */
static __always_inline void soft_note_take(struct ct_flow *f, __u64 key)
{
	struct soft_note *n;

	if (!flows_in_sk || last_soft_note_ns < f->ts_start)
		return;	/* none since this attempt began: no lookup */
	n = bpf_map_lookup_elem(&soft_notes, &key);
	if (!n)
		return;
	/* older than the attempt: another socket's, at the same address */
	if (n->ts >= f->ts_start && n->err_soft)
		f->err_soft = n->err_soft;
	bpf_map_delete_elem(&soft_notes, &key);
}

/*
 * Older kernels (6.1) fire tcp_retransmit_skb only after a successful transmit, so a
 * SYN dropped on the output path is not counted there; the socket's own
 * count is. Take the larger (the times of the uncounted ones stay unknown).
 */
static __always_inline void syn_retrans_own(struct ct_flow *f, const struct sock *sk)
{
	const struct tcp_sock *tp = (const struct tcp_sock *)sk;
	__u32 own;

	if (!bpf_core_field_exists(tp->total_retrans))
		return;
	own = BPF_CORE_READ(tp, total_retrans);
	if (own > f->syn_retrans)
		f->syn_retrans = own;
}

/*
 * An OK attempt only counted: its duration into the kernel's histogram, so
 * that the metrics need no record (a flow without history has none).
 */
static __always_inline void ok_unsent(const struct ct_flow *f, __u64 now)
{
	static const __u64 bounds_us[CT_OKH_BUCKETS] = CT_OKH_BOUNDS_US;
	__u64 ns = now - f->ts_start, *slot;
	__u32 b = 0, sum = CT_OKH_SUM_NS;

	count(CT_CNT_OK_UNSENT);
	if (f->flags & CT_F_NO_HISTORY)
		return;
	/* le is inclusive, as in the metrics: the first bound not below it */
	for (int i = 0; i < CT_OKH_BUCKETS; i++)
		if (ns > bounds_us[i] * 1000)
			b = i + 1;
	slot = bpf_map_lookup_elem(&ok_hist, &b);
	if (slot)
		(*slot)++;	/* per-CPU slot: no other writer */
	slot = bpf_map_lookup_elem(&ok_hist, &sum);
	if (slot)
		*slot += ns;
}

/* The end of the attempt as its socket (a BTF pointer) tells it. */
/*
 * A SYN_SENT socket closed with no error left to read. Before 6.10 (6.1 here),
 * the retransmit timer's give-up sets sk_err, wakes the owner and only then
 * closes the socket (tcp_write_err), so an owner on another CPU may read
 * SO_ERROR, which clears it, before this runs: a kernel timeout would look
 * like the application's close. Told apart by the socket itself: the owner's
 * close() sets sk_shutdown before the state change, tcp_done() after it; and
 * the retransmit timer's handler clears icsk_pending before it gives up,
 * while an RST or ICMP abort leaves the timer armed. What the kernel set:
 * ETIMEDOUT, or the soft ICMP error it had kept. Not for a close inside the
 * owner's connect() (no SYN sent, no timer armed either): flow_end() keeps
 * those for connect()'s return.
 */
static __always_inline void timeout_read_away(struct ct_flow *f, const struct sock *sk)
{
	const struct inet_connection_sock *icsk = (const struct inet_connection_sock *)sk;

	if (f->err || f->err_report || !bpf_core_field_exists(icsk->icsk_pending) || sk->sk_shutdown ||
	    BPF_CORE_READ(icsk, icsk_pending))
		return;
	f->err = f->err_soft ? f->err_soft : ETIMEDOUT;
}

static __always_inline void flow_read_end(struct ct_flow *f, const struct sock *sk,
					  int newstate, __u64 now)
{
	f->state = newstate;
	f->ts_end = now;
	read_tuple_in(f, sk, true);	/* the source port is only bound after the first state change */
	if (newstate == CT_TCP_CLOSE && !f->err)
		f->err = sk->sk_err;
	soft_note_take(f, (__u64)sk);
	note_err_soft_in(f, sk, true);
	syn_retrans_own(f, sk);
}

/* The attempt is over and read: send it, unless filtered out. */
static __always_inline void flow_send(struct ct_flow *f, __u64 now)
{
	flow_count_late(f);
	if (!port_wanted(f->sport, f->dport))
		return;
	/* --slow 0: no latency threshold, only SYN retransmits make SLOW */
	if (f->state == CT_TCP_ESTABLISHED && !emit_ok && !f->syn_retrans &&
	    (!slow_ns || now - f->ts_start < slow_ns)) {
		/* OK, and only counted: here, rather than a record across the ring */
		ok_unsent(f, now);
		return;
	}
	/* evidence sent while it lived may be among what was lost */
	if (last_loss_ns >= f->ts_start)
		f->flags |= CT_F_LOSSY;
	emit_flow(f);
}

/* The flow of a socket (a BTF pointer: sk storage needs one), or NULL. */
static __always_inline struct ct_flow *flow_get(const struct sock *sk)
{
	__u64 key = (__u64)sk;

	struct ct_flow *f;

	if (!flows_in_sk)
		return bpf_map_lookup_elem(&flows, &key);
	f = bpf_sk_storage_get(&flow_store, (void *)sk, NULL, 0);
	return f && !(f->kflags & CT_KF_ENDED) ? f : NULL;
}

/* A socket's new flow, a copy of *init: 0, or -1 when there is no room. */
static __always_inline int flow_new(const struct sock *sk, struct ct_flow *init)
{
	__u64 key = (__u64)sk;
	struct ct_flow *f;

	if (!flows_in_sk)
		return bpf_map_update_elem(&flows, &key, init, BPF_ANY) ? -1 : 0;
	f = bpf_sk_storage_get(&flow_store, (void *)sk, init, BPF_SK_STORAGE_GET_F_CREATE);
	if (!f)
		return -1;	/* out of memory, or over net.core.optmem_max */
	/* an older attempt of this socket that was never finished: replace it */
	if (f->ts_start != init->ts_start)
		__builtin_memcpy(f, init, sizeof(*f));
	return 0;
}

static __always_inline void flow_delete(const struct sock *sk)
{
	__u64 key = (__u64)sk;

	if (flows_in_sk)
		bpf_sk_storage_delete(&flow_store, (void *)sk);
	else if (!bpf_map_delete_elem(&flows, &key))
		__sync_fetch_and_sub(&live_flows, 1);
}

/*
 * A finished attempt leaves the table. A socket that closed keeps its storage,
 * marked ended, until the kernel frees the socket and the storage with it
 * (after an ordinary RCU grace period); deleted here, it would wait for an
 * RCU tasks-trace one, which costs more (refused storm: this program 998 ->
 * 676 ns a run, CPU per attempt 22.0 -> 21.0 us; BENCHMARKS.md, round 4). An
 * established one is deleted: its socket may live for hours.
 */
static __always_inline void flow_finished(const struct sock *sk, struct ct_flow *f, int newstate)
{
	if (flows_in_sk && newstate == CT_TCP_CLOSE) {
		f->kflags |= CT_KF_ENDED;
		return;
	}
	flow_delete(sk);
}

#endif /* CONNTRACE_BPF_H */
