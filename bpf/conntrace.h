/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Records shared by the kernel side (bpf/{flow,evidence,listener,connect}.bpf.c)
 * and the collector.
 * Fixed-width types only, nothing from vmlinux.h: this header is included
 * by both sides and by the pure-C correlator and its tests.
 *
 * Every ring-buffer record starts with a __u8 type tag, so one ring carries
 * several shapes. Addresses are in network byte order (IPv4 in the first
 * 4 bytes), ports in host byte order, times are CLOCK_BOOTTIME nanoseconds.
 */
#ifndef CONNTRACE_H
#define CONNTRACE_H

#define CT_COMM_LEN	16
/* --pid and --port values the kernel compares, each */
#define CT_MAX_TARGETS	8
/* Retransmit times kept per flow; the count itself goes on. */
#define CT_MAX_RETRANS	6

/* TCP states as the kernel numbers them (include/net/tcp_states.h). */
#define CT_TCP_ESTABLISHED	1
#define CT_TCP_SYN_SENT		2
#define CT_TCP_SYN_RECV		3
#define CT_TCP_CLOSE		7
#define CT_TCP_LISTEN		10

/* --direction: which attempts are traced (targ_dir in the kernel) */
#define CT_DIR_OUT	(1U << 0)	/* this host connected */
#define CT_DIR_IN	(1U << 1)	/* a SYN arrived for a local address */

#define CT_AF_INET	2
#define CT_AF_INET6	10

enum ct_rec_type {
	CT_REC_FLOW = 1,	/* a connection attempt ended (struct ct_flow) */
	CT_REC_DROP,		/* a SYN or SYN-ACK was freed as dropped (struct ct_evidence) */
	CT_REC_RST_SENT,	/* this host's TCP stack answered a SYN with an RST */
	CT_REC_LISTEN_FULL,	/* a listener's accept queue was found full */
	CT_REC_ICMP_SENT,	/* this host sent an ICMP error about a SYN (struct ct_evidence) */
	CT_REC_INBOUND,		/* an incoming attempt changed (struct ct_inbound) */
	CT_REC_ESTAB,		/* an established connection died (struct ct_estab) */
	CT_REC_MAX,
};

enum ct_flow_flags {
	/* connect() failed before any SYN left; err is its return value */
	CT_F_CONNECT_ERR	= 1 << 0,
	/* the flow-table entry was evicted: owner, start and history unknown */
	CT_F_EVICTED		= 1 << 1,
	/* the attempt was still in SYN_SENT when conntrace stopped */
	CT_F_PENDING		= 1 << 2,
	/* an RST was received while in SYN_SENT (tcp_receive_reset) */
	CT_F_RST_RCVD		= 1 << 3,
	/* began before conntrace started: owner, start and history unknown */
	CT_F_UNTRACKED		= 1 << 4,
	/* ring-buffer records were lost while it lived: its evidence may be too */
	CT_F_LOSSY		= 1 << 5,
	/* passed through SYN_RECV: a simultaneous open (with itself or a peer) */
	CT_F_SIMOPEN		= 1 << 6,
};
/*
 * Kernel-side bookkeeping in ct_flow.kflags. CT_KF_UNCOUNTED: with --port,
 * an attempt whose source port was not bound yet when it started, to
 * another port: counted in CT_CNT_FLOWS only once its port is known to match.
 */
#define CT_KF_UNCOUNTED	(1U << 0)
/*
 * CT_KF_ENDED: a finished attempt left in its closed socket's storage, for
 * the kernel to free with the socket (flow_finished()): no flow any more.
 */
#define CT_KF_ENDED	(1U << 1)

/* Either way the flow's owner, start and SYN history are unknown. */
#define CT_F_NO_HISTORY	(CT_F_EVICTED | CT_F_UNTRACKED)

/* TCP header flag bits as they appear in byte 13 of the header. */
#define CT_TCP_FIN	0x01
#define CT_TCP_SYN	0x02
#define CT_TCP_RST	0x04
#define CT_TCP_ACK	0x10

/*
 * One connection attempt. The kernel keeps it in the flow table while the
 * socket is in SYN_SENT and sends it whole when the attempt ends.
 */
struct ct_flow {
	__u8  type;		/* CT_REC_FLOW */
	__u8  family;		/* CT_AF_INET or CT_AF_INET6 */
	__u8  state;		/* TCP state the attempt ended in */
	__u8  flags;		/* enum ct_flow_flags */
	__u16 sport;
	__u16 dport;
	__u32 pid;		/* process (thread group) id of the task that called connect() */
	__u32 tid;		/* its thread id */
	__u32 netns;		/* network namespace inode */
	__s32 err;		/* positive errno the attempt ended with, 0 if none */
	__u32 syn_retrans;	/* SYN retransmits, all of them */
	__u32 drops;		/* drops of this flow's own packets seen via skb->sk */
	__u32 drop_reason;	/* kernel enum skb_drop_reason of the last of them */
	__s32 err_report;	/* errno seen at sock:inet_sk_error_report, 0 if none */
	__s32 err_soft;		/* sk_err_soft (an ICMP error) last seen non-zero while
				 * it lived, even if SO_ERROR cleared it since; 0 if none */
	__u32 kflags;		/* kernel-side bookkeeping (CT_KF_*): not for user space */
	__u64 cgroup_id;
	__u64 ts_start;		/* connect(): the first SYN leaves right after */
	__u64 ts_end;		/* established, closed, or conntrace stopped */
	__u64 ts_rst;		/* RST received, 0 if none */
	__u64 ts_err;		/* error report, 0 if none */
	__u32 retrans_us[CT_MAX_RETRANS];	/* each SYN retransmit, us after start */
	__u8  saddr[16];
	__u8  daddr[16];
	char  comm[CT_COMM_LEN];
};

/*
 * Evidence that can only be matched to a flow by its addresses: the skb of a
 * dropped SYN or of the SYN an RST answered usually has no socket. Addresses
 * and ports are those of the packet, so a SYN-ACK has them swapped.
 */
struct ct_evidence {
	__u8  type;		/* CT_REC_DROP, CT_REC_RST_SENT, CT_REC_LISTEN_FULL */
	__u8  family;
	__u8  tcp_flags;	/* CT_TCP_* of the packet (0 for LISTEN_FULL) */
	__u8  has_reason;	/* reason is meaningful (tcp_send_reset has none before 6.10) */
	__u16 sport;
	__u16 dport;
	__u32 netns;		/* 0 when the kernel could not tell */
	__u32 reason;		/* DROP: skb_drop_reason; RST_SENT: sk_rst_reason;
				 * ICMP_SENT: ICMP type << 8 | code */
	__u32 queue;		/* LISTEN_FULL: accept queue length */
	__u32 queue_max;	/* LISTEN_FULL: its limit */
	__u64 ts;
	__u8  saddr[16];
	__u8  daddr[16];
};

/*
 * A listener that has been found with a full accept queue, as the iterator
 * over the listener map reports it each time the collector reads it (once a
 * second). drops is the listener's sk_drops: tcp_listendrop() counts every
 * SYN or ACK dropped on a full queue there.
 */
struct ct_listener {
	__u64 sk;		/* identity while it lives */
	__u32 netns;
	__u16 port;
	__u8  family;
	__u8  pad;
	__u32 queue;		/* accept queue now */
	__u32 queue_max;
	__u32 drops;		/* sk_drops now */
	__u32 drops_at_full;	/* sk_drops when it was first found full */
	__u8  addr[16];
};

/* What the last event of an incoming attempt was (ct_inbound.event). */
enum ct_in_event {
	CT_IN_SYN = 1,		/* a SYN reached a listener (kept: only with emit_ok) */
	CT_IN_SYN_DROP,		/* a SYN was dropped on this host (see the drop counts) */
	CT_IN_SYNACK_RETRANS,	/* this host retransmitted its SYN-ACK */
	CT_IN_COOKIE,		/* a SYN was answered with a SYN cookie */
	CT_IN_RST,		/* this host answered a SYN with an RST: nothing listened */
	CT_IN_ESTABLISHED,	/* the handshake completed: the child is ESTABLISHED */
};

/*
 * One incoming connection attempt (a SYN that arrived for a local address),
 * keyed in the kernel by its 4-tuple and namespace. Sent whole, with counts so
 * far, at each event that matters (drops, SYN-ACK retransmits, cookies, RST,
 * established): the collector keeps the last one of each attempt. saddr and
 * sport are the remote client, daddr and dport the local (listening) end.
 */
struct ct_inbound {
	__u8  type;		/* CT_REC_INBOUND */
	__u8  family;
	__u8  event;		/* enum ct_in_event: what this record reports */
	__u8  has_history;	/* 0: the attempt was first seen established (no SYN seen) */
	__u16 sport;		/* remote client */
	__u16 dport;		/* local listener */
	__u32 netns;
	__u32 pid;		/* the listener's owner at listen(); 0 if unknown */
	__u32 syns;		/* SYNs seen reaching the listener (or dropped before it) */
	__u32 nf_drops;		/* SYNs dropped by netfilter (NETFILTER_DROP) */
	__u32 overflow_drops;	/* SYNs dropped on a full accept queue */
	__u32 synq_drops;	/* SYNs dropped on a full SYN queue (no cookies) */
	__u32 other_drops;	/* SYNs dropped for another reason */
	__u32 drop_reason;	/* skb_drop_reason of the last other drop */
	__u32 synack_retrans;
	__u32 cookies;		/* SYNs answered with a SYN cookie */
	__u32 rsts;		/* SYNs answered with an RST (no listener) */
	__u32 queue;		/* accept queue at the last drop on the listener */
	__u32 queue_max;
	__u64 ts_first;		/* first SYN seen */
	__u64 ts_last;		/* this record's event */
	__u8  saddr[16];
	__u8  daddr[16];
	char  comm[CT_COMM_LEN];	/* the listener's owner at listen(); "" if unknown */
};

/* TCP states of an established connection (include/net/tcp_states.h). */
#define CT_TCP_FIN_WAIT1	4
#define CT_TCP_FIN_WAIT2	5
#define CT_TCP_CLOSE_WAIT	8
#define CT_TCP_LAST_ACK		9
#define CT_TCP_CLOSING		11

enum ct_estab_flags {
	CT_EF_RST_RCVD		= 1 << 0,	/* an RST arrived (tcp_receive_reset) */
	CT_EF_RST_SENT		= 1 << 1,	/* this host sent one (tcp_send_reset) */
	CT_EF_RST_REASON	= 1 << 2,	/* rst_reason is meaningful (6.10+) */
	CT_EF_KEEPOPEN		= 1 << 3,	/* SO_KEEPALIVE was on */
	CT_EF_OWNER		= 1 << 4,	/* pid and comm are its owner's */
	CT_EF_LOSSY		= 1 << 5,	/* ring records were lost while it was tracked */
	CT_EF_IDLE		= 1 << 6,	/* idle_jiffies is meaningful */
};

/*
 * An established connection (ESTABLISHED, FIN_WAIT*, CLOSE_WAIT, LAST_ACK,
 * CLOSING) that died: with an error (sk_err), or by an RST either way. The
 * kernel keeps state for it only from its first trouble (a retransmit, an
 * RST, a drop by netfilter); a healthy connection has none. Times are
 * CLOCK_BOOTTIME ns, 0 when not seen.
 */
struct ct_estab {
	__u8  type;		/* CT_REC_ESTAB */
	__u8  family;
	__u8  state;		/* the state it died in (left for CLOSE) */
	__u8  flags;		/* enum ct_estab_flags */
	__u16 sport;
	__u16 dport;
	__u32 pid;		/* owner (CT_EF_OWNER), else 0: unknown in softirq */
	__u32 netns;
	__s32 err;		/* sk_err when it died, 0 if none */
	__u32 retrans;		/* retransmits traced while established (6.1: those that left) */
	__u32 total_retrans;	/* the kernel's own count (tcp_sock.total_retrans) */
	__u32 timeouts;		/* icsk_retransmits: retransmits since the last ACK */
	__u32 backoff;		/* icsk_backoff at the last retransmit: RTO doublings */
	__u32 probes_out;	/* unanswered keepalive or zero-window probes */
	__u32 unacked;		/* bytes sent, not acknowledged (snd_nxt - snd_una) */
	__u32 snd_wnd;		/* the peer's window */
	__u32 user_timeout_ms;	/* TCP_USER_TIMEOUT, 0 if not set */
	__u32 nf_drops;		/* its packets dropped by netfilter (NETFILTER_DROP) */
	__u32 drops;		/* its packets dropped for other reasons */
	__u32 drop_reason;	/* enum skb_drop_reason of the last of those */
	__u32 rst_reason;	/* enum sk_rst_reason of the RST sent (CT_EF_RST_REASON) */
	__u32 idle_jiffies;	/* before the RST received: since the last ACK (CT_EF_IDLE) */
	__u64 cgroup_id;	/* the socket's cgroup (v2), 0 if unknown */
	__u64 ts_first_retrans;
	__u64 ts_last_retrans;
	__u64 ts_first;		/* its first trouble: when the kernel began to track it */
	__u64 ts_rst;
	__u64 ts_end;		/* when it died */
	__u8  saddr[16];
	__u8  daddr[16];
	char  comm[CT_COMM_LEN];	/* owner (CT_EF_OWNER) */
};

/* Per-CPU counters, summed by the collector. */
enum ct_counter {
	CT_CNT_RINGBUF_LOST,	/* failed bpf_ringbuf_reserve: a record lost */
	CT_CNT_FLOW_EVICTED,	/* a flow ended but its table entry was gone */
	CT_CNT_FLOW_NOSPACE,	/* a flow could not be inserted at all */
	CT_CNT_FLOWS,		/* flows started */
	CT_CNT_FLOW_UNTRACKED,	/* a flow ended that began before conntrace */
	/*
	 * Attempts counted here by verdict because their record never crossed
	 * the ring (issue 11). The verdict is the one user/classify.c would
	 * give the record (ct_flow_verdict() in verdict_class.h: it rests on
	 * the record's own fields only), in enum ct_verdict's order.
	 * CT_CNT_LOST_BY_VERDICT + v: a flow record lost, the ring full.
	 */
	CT_CNT_LOST_OK,
	CT_CNT_LOST_SLOW,
	CT_CNT_LOST_TIMEOUT,
	CT_CNT_LOST_REFUSED,
	CT_CNT_LOST_UNREACHABLE,
	CT_CNT_LOST_ABANDONED,
	/* established fast and clean, only counted: not sent without -a */
	CT_CNT_OK_UNSENT,
	/* connect() failed before any SYN: an attempt flow_start() never saw */
	CT_CNT_CONNECT_FAILED,
	CT_CNT_ESTAB_NOSPACE,	/* an established connection's state could not be kept */
	CT_CNT_MAX,
};
#define CT_CNT_LOST_BY_VERDICT	CT_CNT_LOST_OK

/*
 * The durations of the OK attempts only counted (CT_CNT_OK_UNSENT), for
 * --metrics without -a: conntrace_connect_duration_seconds{verdict="ok"}'s
 * buckets, in a second per-CPU array (ok_hist). Its slots: one per bucket,
 * whose upper bounds ("le", inclusive) are CT_OKH_BOUNDS_US, then one for
 * those beyond the last bound, then the sum of the durations in ns.
 */
#define CT_OKH_BUCKETS	17
#define CT_OKH_OVER	CT_OKH_BUCKETS
#define CT_OKH_SUM_NS	(CT_OKH_BUCKETS + 1)
#define CT_OKH_MAX	(CT_OKH_BUCKETS + 2)
#define CT_OKH_BOUNDS_US { 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, \
			   500000, 1000000, 2500000, 5000000, 10000000, 30000000, \
			   60000000, 120000000 }
/* The verdicts a kernel count can have: ok .. abandoned (never pending). */
#define CT_KV_MAX	6

/*
 * The layouts both sides compile: BPF (clang -target bpf) and the collector
 * (cc) must agree byte for byte, and a record's size is part of the ring
 * protocol. Changing one is a deliberate act: update the size here too.
 */
_Static_assert(sizeof(struct ct_flow) == 160, "struct ct_flow layout changed");
_Static_assert(sizeof(struct ct_evidence) == 64, "struct ct_evidence layout changed");
_Static_assert(sizeof(struct ct_listener) == 48, "struct ct_listener layout changed");
_Static_assert(sizeof(struct ct_estab) == 168, "struct ct_estab layout changed");
_Static_assert(__builtin_offsetof(struct ct_estab, cgroup_id) == 72 &&
	       __builtin_offsetof(struct ct_estab, saddr) == 120,
	       "struct ct_estab fields moved");
_Static_assert(__builtin_offsetof(struct ct_flow, cgroup_id) % 8 == 0 &&
	       __builtin_offsetof(struct ct_flow, retrans_us) == 88 &&
	       __builtin_offsetof(struct ct_flow, comm) == 144,
	       "struct ct_flow fields moved");
_Static_assert(sizeof(struct ct_inbound) == 128, "struct ct_inbound layout changed");
_Static_assert(__builtin_offsetof(struct ct_inbound, ts_first) == 64 &&
	       __builtin_offsetof(struct ct_inbound, comm) == 112,
	       "struct ct_inbound fields moved");
_Static_assert(__builtin_offsetof(struct ct_evidence, ts) == 24,
	       "struct ct_evidence fields moved");

#endif /* CONNTRACE_H */
