// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * conntrace kernel side: follows each outgoing TCP connection attempt from
 * connect() to ESTABLISHED or CLOSE in a flow table keyed by socket, and
 * sends one record per finished attempt, plus evidence records (dropped
 * SYNs, RSTs this host sent, full listeners) that only user space can match
 * to a flow by their addresses.
 *
 * Every signal has a tracepoint (tp_btf) program; connect() additionally has
 * an fentry/fexit pair and a classic syscall-tracepoint pair, of which the
 * loader keeps whichever the kernel allows (see user/probe.c).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "conntrace.h"
#include "sock.bpf.h"

#define AF_INET		2
#define AF_INET6	10
#define IPPROTO_TCP	6
#define ETH_P_IP	0x0800
#define ETH_P_IPV6	0x86DD
#define EINPROGRESS	115
#define EHOSTUNREACH	113
#define ENETUNREACH	101
#define EADDRNOTAVAIL	99

/* Knobs, set by the collector before load. */
const volatile __u32 targ_tgid = 0;	/* only this process; 0: all */
const volatile __u16 targ_port = 0;	/* only flows with this port at either end */
const volatile bool emit_ok = false;	/* send established flows that were fast and clean */
const volatile __u64 slow_ns = 1000000000ULL;
/* Wake the collector only once this much data waits; it drains on a timer. */
const volatile __u64 wakeup_bytes = 0;
const volatile __u32 max_flows = 65536;	/* the flow table's size */

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);	/* resized by the collector */
} events SEC(".maps");

/* Attempts in SYN_SENT, keyed by struct sock address. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);	/* resized by the collector */
	__type(key, __u64);
	__type(value, struct ct_flow);
} flows SEC(".maps");

/* A connect() in progress, keyed by thread id. */
struct inflight {
	__u64 sk;		/* set by fentry, or by a close deferred to connect()'s return */
	__u64 uaddr;		/* user sockaddr (syscall path) */
	__s32 fd;
	__u32 deferred;		/* the flow closed inside connect() without an error */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct inflight);
} inflight SEC(".maps");

/*
 * Listeners found with a full accept queue, until they close. The collector
 * reads their sk_drops through an iterator over this map once a second.
 */
struct listener_state {
	__u64 stamp;		/* bit 63: full at the last look; low bits: time of the last record */
	__u32 drops_at_full;	/* sk_drops when first found full */
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct listener_state);
} listeners SEC(".maps");

/*
 * Destinations this host recently tried to connect to. Evidence without a
 * socket (a dropped SYN, an RST sent) is only sent for these: a server's
 * firewall dropping remote clients' SYNs says nothing about local attempts.
 */
struct dest_key {
	__u8 addr[16];
	__u16 port;
	__u16 family;
};

#define DEST_TTL_NS (300 * 1000000000ULL)	/* longer than any SYN timeout */

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct dest_key);
	__type(value, __u64);	/* when the last attempt started */
} dests SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CT_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

/* The skb this CPU last sent an RST for: its NO_SOCKET drop says nothing more. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} rst_skb SEC(".maps");

/* Entries in the flow table, give or take evictions (which the LRU does silently). */
__s64 live_flows = 0;

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

/* When a record was last lost: flows that lived through it are marked. */
__u64 last_loss_ns = 0;

static __always_inline void emit(void *rec, __u64 size)
{
	if (bpf_ringbuf_output(&events, rec, size, rb_flags(size))) {
		count(CT_CNT_RINGBUF_LOST);
		last_loss_ns = bpf_ktime_get_boot_ns();
	}
}

static __always_inline __u32 sk_netns(const struct sock *sk)
{
	return BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
}

/*
 * Local and remote address and port of a socket into a flow. Only fields
 * still zero are filled: the source port is bound after connect() enters
 * SYN_SENT, and a failing connect() clears the destination port.
 * inet_sport is read rather than skc_num because closing unbinds the port
 * (inet_put_port zeroes inet_num) before the CLOSE state is traced.
 */
static __always_inline void read_tuple(struct ct_flow *f, const struct sock *sk)
{
	const struct inet_sock *inet = (const struct inet_sock *)sk;
	__u16 port;

	if (!f->family)
		f->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (!f->sport)
		f->sport = bpf_ntohs(BPF_CORE_READ(inet, inet_sport));
	port = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (!f->dport)
		f->dport = port;
	if (f->family == AF_INET) {
		__u32 a;

		if (!*(__u32 *)f->saddr) {
			a = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
			__builtin_memcpy(f->saddr, &a, 4);
		}
		if (!*(__u32 *)f->daddr) {
			a = BPF_CORE_READ(sk, __sk_common.skc_daddr);
			__builtin_memcpy(f->daddr, &a, 4);
		}
	} else {
		struct in6_addr a6;

		if (!*(__u64 *)f->saddr && !*(__u64 *)(f->saddr + 8)) {
			a6 = BPF_CORE_READ(sk, __sk_common.skc_v6_rcv_saddr);
			__builtin_memcpy(f->saddr, &a6, 16);
		}
		if (!*(__u64 *)f->daddr && !*(__u64 *)(f->daddr + 8)) {
			a6 = BPF_CORE_READ(sk, __sk_common.skc_v6_daddr);
			__builtin_memcpy(f->daddr, &a6, 16);
		}
	}
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

static __always_inline bool is_tcp(const struct sock *sk)
{
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);

	return BPF_CORE_READ(sk, sk_protocol) == IPPROTO_TCP &&
	       (family == AF_INET || family == AF_INET6);
}

static __always_inline bool port_wanted(__u16 a, __u16 b)
{
	return !targ_port || a == targ_port || b == targ_port;
}

static __always_inline void flow_start(const struct sock *sk)
{
	__u64 id = bpf_get_current_pid_tgid(), key = (__u64)sk;
	/* built on the stack: a per-CPU scratch slot would be shared with the
	 * softirq programs, which can interrupt this one and overwrite it */
	struct ct_flow rec = {}, *f = &rec;

	if (targ_tgid && (id >> 32) != targ_tgid)
		return;
	f->type = CT_REC_FLOW;
	f->state = CT_TCP_SYN_SENT;
	f->tid = (__u32)id;
	f->pid = id >> 32;
	f->netns = sk_netns(sk);
	f->cgroup_id = bpf_get_current_cgroup_id();
	f->ts_start = bpf_ktime_get_boot_ns();
	bpf_get_current_comm(f->comm, sizeof(f->comm));
	read_tuple(f, sk);
	if (!port_wanted(f->sport, f->dport)) {
		/* a source port bound before connect() is final: not wanted */
		if (f->sport)
			return;
		/* an ephemeral one is chosen after this: it may still match */
		f->kflags |= CT_KF_UNCOUNTED;
	}
	if (bpf_map_update_elem(&flows, &key, f, BPF_ANY)) {
		count(CT_CNT_FLOW_NOSPACE);
		return;
	}
	{
		struct dest_key dk = { .port = f->dport, .family = f->family };
		__u64 *seen;

		__builtin_memcpy(dk.addr, f->daddr, sizeof(dk.addr));
		/* a lookup is cheaper than an update: refresh the stamp once a second */
		seen = bpf_map_lookup_elem(&dests, &dk);
		if (!seen || f->ts_start - *seen > 1000000000ULL)
			bpf_map_update_elem(&dests, &dk, &f->ts_start, BPF_ANY);
	}
	/* the LRU evicts without telling: keep the estimate within the table */
	if (__sync_fetch_and_add(&live_flows, 1) >= max_flows)
		__sync_fetch_and_sub(&live_flows, 1);
	if (!(f->kflags & CT_KF_UNCOUNTED))
		count(CT_CNT_FLOWS);
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

/* The attempt is over: fill in its end and send it, unless filtered out. */
static __always_inline void flow_finish(struct ct_flow *f, const struct sock *sk,
					int newstate, __u64 now)
{
	f->state = newstate;
	f->ts_end = now;
	read_tuple(f, sk);	/* the source port is only bound after the first state change */
	if (newstate == CT_TCP_CLOSE && !f->err)
		f->err = BPF_CORE_READ(sk, sk_err);
	/* an ICMP error a non-blocking client may have read via SO_ERROR */
	f->err_soft = BPF_CORE_READ(sk, sk_err_soft);
	syn_retrans_own(f, sk);
	flow_count_late(f);
	if (!port_wanted(f->sport, f->dport))
		return;
	/* --slow 0: no latency threshold, only SYN retransmits make SLOW */
	if (newstate == CT_TCP_ESTABLISHED && !emit_ok && !f->syn_retrans &&
	    (!slow_ns || now - f->ts_start < slow_ns))
		return;
	/* evidence sent while it lived may be among what was lost */
	if (last_loss_ns >= f->ts_start)
		f->flags |= CT_F_LOSSY;
	emit(f, sizeof(*f));
}

static __always_inline void flow_delete(__u64 key)
{
	if (!bpf_map_delete_elem(&flows, &key))
		__sync_fetch_and_sub(&live_flows, 1);
}

/*
 * A SYN_SENT socket left that state but has no table entry: either the LRU
 * evicted it, or it began before conntrace. Only a table near its limit
 * evicts (the LRU keeps per-CPU free lists, hence the margin).
 */
static __always_inline void flow_lost(const struct sock *sk, int newstate, __u64 now)
{
	bool evicted = live_flows >= (__s64)(max_flows - max_flows / 8);
	struct ct_flow rec = {}, *f = &rec;

	read_tuple(f, sk);
	if (!port_wanted(f->sport, f->dport))
		return;	/* filtered at start, or would have been */
	count(evicted ? CT_CNT_FLOW_EVICTED : CT_CNT_FLOW_UNTRACKED);
	f->type = CT_REC_FLOW;
	f->flags = evicted ? CT_F_EVICTED : CT_F_UNTRACKED;
	f->netns = sk_netns(sk);
	f->ts_start = now;
	flow_finish(f, sk, newstate, now);
}

/*
 * The attempt left SYN_SENT (or SYN_RECV, after a simultaneous open) for
 * ESTABLISHED or CLOSE. A close without an error inside the owner's own
 * connect() is connect() failing (no free port, no buffer): keep the flow
 * until connect() returns and says why.
 */
static __always_inline void flow_end(const struct sock *sk, struct ct_flow *f, int newstate)
{
	__u64 key = (__u64)sk, now = bpf_ktime_get_boot_ns();
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct inflight *in;

	if (newstate == CT_TCP_CLOSE && !BPF_CORE_READ(sk, sk_err) && tid == f->tid) {
		in = bpf_map_lookup_elem(&inflight, &tid);
		if (in) {
			in->sk = key;
			in->deferred = 1;
			f->state = newstate;
			f->ts_end = now;
			return;
		}
	}
	flow_finish(f, sk, newstate, now);
	flow_delete(key);
}

/*
 * Out of SYN_RECV: only attempts in the flow table, i.e. simultaneous opens.
 * A server's accepted child also goes SYN_RECV -> ESTABLISHED (and may close
 * from SYN_RECV), and must not be taken for a lost flow: a miss says nothing.
 */
static __always_inline void simopen_end(const struct sock *sk, int newstate)
{
	__u64 key = (__u64)sk;
	struct ct_flow *f = bpf_map_lookup_elem(&flows, &key);

	if (!f)
		return;
	/* closed before it was established (FIN_WAIT1 or CLOSE): it ended there */
	flow_end(sk, f, newstate == CT_TCP_ESTABLISHED ? newstate : CT_TCP_CLOSE);
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(handle_set_state, const struct sock *sk, int oldstate, int newstate)
{
	__u64 key = (__u64)sk;
	struct ct_flow *f;

	if (oldstate == CT_TCP_LISTEN) {
		/* a closing listener leaves the map before its memory can be reused */
		bpf_map_delete_elem(&listeners, &key);
		return 0;
	}
	if (oldstate != CT_TCP_SYN_SENT && oldstate != CT_TCP_SYN_RECV &&
	    newstate != CT_TCP_SYN_SENT)
		return 0;
	if (!is_tcp(sk))
		return 0;
	if (oldstate == CT_TCP_SYN_RECV) {
		simopen_end(sk, newstate);
		return 0;
	}
	if (newstate == CT_TCP_SYN_SENT) {
		if (oldstate != CT_TCP_CLOSE)
			return 0;
		/* CLOSE -> SYN_SENT runs inside connect(), in the caller's task */
		flow_start(sk);
		return 0;
	}
	f = bpf_map_lookup_elem(&flows, &key);
	if (newstate == CT_TCP_SYN_RECV) {
		/* a SYN crossed ours (a self-connect does this): still connecting */
		if (f)
			f->flags |= CT_F_SIMOPEN;
		return 0;
	}
	if (newstate != CT_TCP_ESTABLISHED && newstate != CT_TCP_CLOSE)
		return 0;
	if (!f) {
		if (targ_tgid)
			return 0;	/* filtered at start, not evicted */
		flow_lost(sk, newstate, bpf_ktime_get_boot_ns());
		return 0;
	}
	flow_end(sk, f, newstate);
	return 0;
}

SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(handle_retransmit, const struct sock *sk)
{
	__u64 key = (__u64)sk;
	struct ct_flow *f;
	__u32 n;

	__u8 state = BPF_CORE_READ(sk, __sk_common.skc_state);

	/* SYN_RECV: a simultaneous open retransmitting its SYN-ACK */
	if (state != CT_TCP_SYN_SENT && state != CT_TCP_SYN_RECV)
		return 0;
	f = bpf_map_lookup_elem(&flows, &key);
	if (!f)
		return 0;
	read_tuple(f, sk);	/* the source port is bound by now */
	flow_count_late(f);
	n = f->syn_retrans++;
	if (n < CT_MAX_RETRANS)
		f->retrans_us[n] = (bpf_ktime_get_boot_ns() - f->ts_start) / 1000;
	return 0;
}

SEC("tp_btf/tcp_receive_reset")
int BPF_PROG(handle_receive_reset, struct sock *sk)
{
	__u64 key = (__u64)sk;
	struct ct_flow *f;

	if (BPF_CORE_READ(sk, __sk_common.skc_state) != CT_TCP_SYN_SENT)
		return 0;
	f = bpf_map_lookup_elem(&flows, &key);
	if (!f)
		return 0;
	f->flags |= CT_F_RST_RCVD;
	f->ts_rst = bpf_ktime_get_boot_ns();
	return 0;
}

SEC("tp_btf/inet_sk_error_report")
int BPF_PROG(handle_error_report, const struct sock *sk)
{
	__u64 key = (__u64)sk;
	struct ct_flow *f;

	f = bpf_map_lookup_elem(&flows, &key);
	if (!f)
		return 0;
	f->err_report = BPF_CORE_READ(sk, sk_err);
	f->ts_err = bpf_ktime_get_boot_ns();
	return 0;
}

/*
 * Addresses, ports and TCP flags of the packet in an skb, from its network
 * header. Returns false for anything but TCP over IPv4/IPv6.
 */
static __always_inline bool parse_skb(const struct sk_buff *skb, struct ct_evidence *e)
{
	unsigned char *head = BPF_CORE_READ(skb, head);
	__u16 nh = BPF_CORE_READ(skb, network_header);
	__u8 vhl, proto, tcp[14];
	__u32 thoff;

	if (nh == (__u16)~0U)
		return false;
	if (bpf_probe_read_kernel(&vhl, 1, head + nh))
		return false;
	if ((vhl >> 4) == 4) {
		struct iphdr ip;

		if (bpf_probe_read_kernel(&ip, sizeof(ip), head + nh))
			return false;
		proto = ip.protocol;
		thoff = nh + (vhl & 0xf) * 4;
		e->family = AF_INET;
		__builtin_memcpy(e->saddr, &ip.saddr, 4);
		__builtin_memcpy(e->daddr, &ip.daddr, 4);
	} else if ((vhl >> 4) == 6) {
		struct ipv6hdr ip6;

		if (bpf_probe_read_kernel(&ip6, sizeof(ip6), head + nh))
			return false;
		proto = ip6.nexthdr;	/* extension headers before TCP: not followed */
		thoff = nh + sizeof(ip6);
		e->family = AF_INET6;
		__builtin_memcpy(e->saddr, &ip6.saddr, 16);
		__builtin_memcpy(e->daddr, &ip6.daddr, 16);
	} else {
		return false;
	}
	if (proto != IPPROTO_TCP)
		return false;
	if (bpf_probe_read_kernel(tcp, sizeof(tcp), head + thoff))
		return false;
	e->sport = (tcp[0] << 8) | tcp[1];
	e->dport = (tcp[2] << 8) | tcp[3];
	e->tcp_flags = tcp[13];
	return true;
}

/* Whether a packet belongs to an attempt this host made: to or from a recent destination. */
static __always_inline bool local_attempt(const struct ct_evidence *e, __u64 now)
{
	struct dest_key dk = { .family = e->family };
	__u64 *ts;

	/* a SYN goes to the destination, a SYN-ACK comes from it */
	if (e->tcp_flags & CT_TCP_ACK) {
		dk.port = e->sport;
		__builtin_memcpy(dk.addr, e->saddr, sizeof(dk.addr));
	} else {
		dk.port = e->dport;
		__builtin_memcpy(dk.addr, e->daddr, sizeof(dk.addr));
	}
	ts = bpf_map_lookup_elem(&dests, &dk);
	return ts && now - *ts < DEST_TTL_NS;
}

static __always_inline __u32 skb_netns(const struct sk_buff *skb)
{
	struct sock *sk = BPF_CORE_READ(skb, sk);
	struct net_device *dev;

	if (sk)
		return sk_netns(sk);
	dev = BPF_CORE_READ(skb, dev);
	if (dev)
		return BPF_CORE_READ(dev, nd_net.net, ns.inum);
	return 0;
}

SEC("tp_btf/kfree_skb")
int BPF_PROG(handle_kfree_skb, struct sk_buff *skb, void *location, enum skb_drop_reason reason)
{
	struct ct_evidence e = {};
	struct ct_flow *f;
	__u64 key;

	if (reason == SKB_NOT_DROPPED_YET)
		return 0;
	if (bpf_core_enum_value_exists(enum skb_drop_reason, SKB_CONSUMED) &&
	    reason == bpf_core_enum_value(enum skb_drop_reason, SKB_CONSUMED))
		return 0;
	if (!parse_skb(skb, &e) || !(e.tcp_flags & CT_TCP_SYN))
		return 0;
	if (!port_wanted(e.sport, e.dport))
		return 0;
	if (bpf_core_enum_value_exists(enum skb_drop_reason, SKB_DROP_REASON_NO_SOCKET) &&
	    reason == bpf_core_enum_value(enum skb_drop_reason, SKB_DROP_REASON_NO_SOCKET)) {
		__u32 zero = 0;
		__u64 *last = bpf_map_lookup_elem(&rst_skb, &zero);

		/* tcp_v4_rcv answered it with an RST first: already reported */
		if (last && *last == (__u64)skb)
			return 0;
	}

	/* A SYN still owned by its connecting socket is matched here. */
	key = (__u64)BPF_CORE_READ(skb, sk);
	if (key && (f = bpf_map_lookup_elem(&flows, &key))) {
		f->drops++;
		f->drop_reason = reason;
		return 0;
	}
	e.ts = bpf_ktime_get_boot_ns();
	if (!local_attempt(&e, e.ts))
		return 0;
	e.type = CT_REC_DROP;
	e.has_reason = 1;
	e.reason = reason;
	e.netns = skb_netns(skb);
	emit(&e, sizeof(e));
	return 0;
}

SEC("tp_btf/tcp_send_reset")
int BPF_PROG(handle_send_reset, const struct sock *sk, const struct sk_buff *skb)
{
	struct ct_evidence e = {};

	/* Only an RST answering a SYN says something about a connect attempt. */
	if (!skb || !parse_skb(skb, &e) || !(e.tcp_flags & CT_TCP_SYN) ||
	    (e.tcp_flags & CT_TCP_ACK))
		return 0;
	if (!port_wanted(e.sport, e.dport))
		return 0;
	e.ts = bpf_ktime_get_boot_ns();
	if (!local_attempt(&e, e.ts))
		return 0;
	e.type = CT_REC_RST_SENT;
	/* The reason argument exists since 6.10, together with its enum. */
	if (bpf_core_type_exists(enum sk_rst_reason)) {
		e.reason = (__u32)ctx[2];
		e.has_reason = 1;
	}
	e.netns = sk ? sk_netns(sk) : skb_netns(skb);
	emit(&e, sizeof(e));
	{
		__u32 zero = 0;
		__u64 *last = bpf_map_lookup_elem(&rst_skb, &zero);

		if (last)
			*last = (__u64)skb;
	}
	return 0;
}

/*
 * This host sent an ICMP error (icmp:icmp_send, 6.18 has it, 6.1 not): e.g.
 * an nft `reject with icmp ...` answering a SYN. The skb is the offending
 * packet, its network header the SYN's IP header. IPv4 only: icmpv6_send
 * has no tracepoint.
 */
SEC("tp_btf/icmp_send")
int BPF_PROG(handle_icmp_send, const struct sk_buff *skb, int type, int code)
{
	struct ct_evidence e = {};

	if (!skb || !parse_skb(skb, &e) || !(e.tcp_flags & CT_TCP_SYN) ||
	    (e.tcp_flags & CT_TCP_ACK))
		return 0;
	if (!port_wanted(e.sport, e.dport))
		return 0;
	e.ts = bpf_ktime_get_boot_ns();
	if (!local_attempt(&e, e.ts))
		return 0;
	e.type = CT_REC_ICMP_SENT;
	e.has_reason = 1;
	e.reason = (type & 0xff) << 8 | (code & 0xff);
	e.netns = skb_netns(skb);
	emit(&e, sizeof(e));
	return 0;
}

#define LISTENER_FULL	(1ULL << 63)

/*
 * Listeners: say when an accept queue turns full or stops being full, and
 * while full at most once a second, so the collector knows which listeners
 * drop SYNs without a record per packet.
 */
/* Report a listener whose accept queue turned full or stopped being full. */
static __always_inline void listener_seen(const struct sock *sk)
{
	__u64 key = (__u64)sk, now, last;
	struct listener_state *ls, fresh = {};
	struct ct_evidence e = {};
	__u32 q, max;
	bool full;

	if (BPF_CORE_READ(sk, __sk_common.skc_state) != CT_TCP_LISTEN || !is_tcp(sk))
		return;
	q = BPF_CORE_READ(sk, sk_ack_backlog);
	max = BPF_CORE_READ(sk, sk_max_ack_backlog);
	full = q > max;
	now = bpf_ktime_get_boot_ns();
	ls = bpf_map_lookup_elem(&listeners, &key);
	if (ls) {
		bool was_full = ls->stamp & LISTENER_FULL;

		last = ls->stamp & ~LISTENER_FULL;
		if (full == was_full && (!full || now - last < 1000000000ULL))
			return;
		ls->stamp = now | (full ? LISTENER_FULL : 0);
	} else {
		if (!full)
			return;
		fresh.stamp = now | LISTENER_FULL;
		fresh.drops_at_full = read_drops(sk);
		bpf_map_update_elem(&listeners, &key, &fresh, BPF_ANY);
	}

	e.type = CT_REC_LISTEN_FULL;
	e.family = BPF_CORE_READ(sk, __sk_common.skc_family);
	e.sport = BPF_CORE_READ(sk, __sk_common.skc_num);
	local_addr(sk, e.family, e.saddr);
	e.netns = sk_netns(sk);
	e.queue = q;
	e.queue_max = max;
	e.ts = now;
	emit(&e, sizeof(e));
}

/* A child was queued on a listener: its queue may have just turned full. */
SEC("tp_btf/sk_data_ready")
int BPF_PROG(handle_data_ready, const struct sock *sk)
{
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

/* ---- connect(): fails before any state change only for want of a route ---- */

/* connect() returned: finish a flow it closed, or report one that never started. */
static __always_inline void connect_return(const struct sock *sk, struct inflight *in,
					   const void *uaddr, bool user_addr, long ret)
{
	__u64 key = in->sk, now = bpf_ktime_get_boot_ns();
	struct ct_flow rec = {}, *f;
	__u16 family;

	if (in->deferred) {
		f = bpf_map_lookup_elem(&flows, &key);
		if (!f)
			return;
		if (ret < 0) {
			f->err = -ret;
			f->flags |= CT_F_CONNECT_ERR;
		}
		flow_finish(f, (const struct sock *)key, CT_TCP_CLOSE, f->ts_end);
		flow_delete(key);
		return;
	}
	if (!sk || !is_tcp(sk))
		return;
	key = (__u64)sk;
	f = bpf_map_lookup_elem(&flows, &key);
	if (f) {
		/* the first SYN is out and the port bound: record the tuple now, so
		 * a flow still connecting when conntrace stops has it too */
		read_tuple(f, sk);
		flow_count_late(f);
		return;
	}
	if (ret != -ENETUNREACH && ret != -EHOSTUNREACH && ret != -EADDRNOTAVAIL)
		return;
	f = &rec;
	f->type = CT_REC_FLOW;
	f->flags = CT_F_CONNECT_ERR;
	f->state = CT_TCP_CLOSE;
	f->err = -ret;
	f->tid = (__u32)bpf_get_current_pid_tgid();
	f->pid = bpf_get_current_pid_tgid() >> 32;
	f->netns = sk_netns(sk);
	f->cgroup_id = bpf_get_current_cgroup_id();
	f->ts_start = now;
	f->ts_end = now;
	bpf_get_current_comm(f->comm, sizeof(f->comm));
	read_tuple(f, sk);
	/* The destination is not stored in the socket yet: take it from the call. */
	family = f->family;
	if (family == AF_INET) {
		struct sockaddr_in sin = {};

		if (user_addr)
			bpf_probe_read_user(&sin, sizeof(sin), uaddr);
		else
			bpf_probe_read_kernel(&sin, sizeof(sin), uaddr);
		f->dport = bpf_ntohs(sin.sin_port);
		__builtin_memcpy(f->daddr, &sin.sin_addr, 4);
	} else {
		struct sockaddr_in6 sin6 = {};

		if (user_addr)
			bpf_probe_read_user(&sin6, sizeof(sin6), uaddr);
		else
			bpf_probe_read_kernel(&sin6, sizeof(sin6), uaddr);
		f->dport = bpf_ntohs(sin6.sin6_port);
		__builtin_memcpy(f->daddr, &sin6.sin6_addr, 16);
	}
	if (targ_tgid && f->pid != targ_tgid)
		return;
	if (!port_wanted(f->sport, f->dport))
		return;
	emit(f, sizeof(*f));
}

/* fentry/fexit flavour: kernels that allow BPF trampolines. */
static __always_inline int fentry_connect(struct sock *sk)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct inflight in = { .sk = 0 };

	bpf_map_update_elem(&inflight, &tid, &in, BPF_ANY);
	return 0;
}

static __always_inline int fexit_connect(struct sock *sk, struct sockaddr *uaddr, int ret)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct inflight *in = bpf_map_lookup_elem(&inflight, &tid);

	if (!in)
		return 0;
	connect_return(sk, in, uaddr, false, ret);
	bpf_map_delete_elem(&inflight, &tid);
	return 0;
}

SEC("fentry/tcp_v4_connect")
int BPF_PROG(fentry_v4_connect, struct sock *sk)
{
	return fentry_connect(sk);
}

SEC("fexit/tcp_v4_connect")
int BPF_PROG(fexit_v4_connect, struct sock *sk, struct sockaddr *uaddr, int addr_len, int ret)
{
	return fexit_connect(sk, uaddr, ret);
}

SEC("fentry/tcp_v6_connect")
int BPF_PROG(fentry_v6_connect, struct sock *sk)
{
	return fentry_connect(sk);
}

SEC("fexit/tcp_v6_connect")
int BPF_PROG(fexit_v6_connect, struct sock *sk, struct sockaddr *uaddr, int addr_len, int ret)
{
	return fexit_connect(sk, uaddr, ret);
}

/* Syscall-tracepoint flavour: the layouts of the classic tracepoint records. */
struct sys_enter_connect_ctx {
	__u64 common;
	__s32 nr;
	__s32 pad;
	__u64 fd;
	__u64 uservaddr;
	__u64 addrlen;
};

struct sys_exit_ctx {
	__u64 common;
	__s32 nr;
	__s32 pad;
	__s64 ret;
};

SEC("tracepoint/syscalls/sys_enter_connect")
int sys_enter_connect(struct sys_enter_connect_ctx *ctx)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct inflight in = {
		.fd = (__s32)ctx->fd,
		.uaddr = ctx->uservaddr,
	};

	bpf_map_update_elem(&inflight, &tid, &in, BPF_ANY);
	return 0;
}

/* The socket behind a file descriptor of the current task, or NULL. */
static __always_inline struct sock *fd_to_sock(int fd)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct file **fds, *file;
	struct socket *sock;

	if (fd < 0 || fd >= BPF_CORE_READ(task, files, fdt, max_fds))
		return NULL;
	fds = BPF_CORE_READ(task, files, fdt, fd);
	if (bpf_probe_read_kernel(&file, sizeof(file), fds + fd) || !file)
		return NULL;
	sock = BPF_CORE_READ(file, private_data);
	if (!sock)
		return NULL;
	/* private_data is a struct socket only for socket files */
	if (BPF_CORE_READ(sock, file) != file)
		return NULL;
	return BPF_CORE_READ(sock, sk);
}

SEC("tracepoint/syscalls/sys_exit_connect")
int sys_exit_connect(struct sys_exit_ctx *ctx)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct inflight *in = bpf_map_lookup_elem(&inflight, &tid);
	struct sock *sk = NULL;
	long ret = ctx->ret;

	if (!in)
		return 0;
	if (!in->deferred && (ret == -ENETUNREACH || ret == -EHOSTUNREACH ||
			      ret == -EADDRNOTAVAIL || ret == -EINPROGRESS))
		sk = fd_to_sock(in->fd);
	connect_return(sk, in, (const void *)in->uaddr, true, ret);
	bpf_map_delete_elem(&inflight, &tid);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
