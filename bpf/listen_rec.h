/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Record layout shared by bpf/listen.bpf.c and the `conntrace listen`
 * collector: fixed-width types only, nothing from vmlinux.h.
 */
#ifndef CONNTRACE_LISTEN_REC_H
#define CONNTRACE_LISTEN_REC_H

#define LISTEN_COMM_LEN     16
#define LISTEN_MAX_LISTENERS 16384

/* One listening socket, written by the iter/tcp program per walk. */
struct listen_rec {
	__u64 cookie;         /* socket cookie: the listener's key everywhere */
	__u64 netns_ino;      /* inode of the socket's network namespace */
	__u64 sock_ino;       /* inode of the socket file, to find its owner */
	__u32 ack_backlog;    /* accept queue: children waiting for accept() */
	__u32 max_ack_backlog; /* min(backlog, somaxconn) at listen() time */
	__u32 syn_qlen;       /* request (SYN) queue length */
	__u32 drops;          /* sk_drops: tcp_listendrop() count, since listen() */
	__u32 synq_overflow_ts; /* jiffies of the last SYN cookie sent (0: never) */
	__u32 uid;
	__u16 family;         /* AF_INET or AF_INET6 */
	__u16 lport;          /* host byte order */
	__u8 laddr[16];       /* IPv4 in the first 4 bytes */
};

/*
 * What the tracepoints learn about a listener, keyed by socket cookie.
 * The peak is per "epoch": the collector bumps the global epoch at each
 * refresh, and the first event of a new epoch restarts the peak.
 */
struct listen_stats {
	__u32 tgid;           /* task that called listen(); 0: unknown */
	__s32 backlog;        /* listen() argument, valid if backlog_known */
	__u32 backlog_known;
	__u8 comm[LISTEN_COMM_LEN];
	__u32 peak_epoch;
	__u32 peak;           /* highest sk_ack_backlog seen in peak_epoch */
	__u64 data_ready;     /* children queued (sk_data_ready on the listener) */
	__u64 full_events;    /* children queued that left the queue full */
	__u64 synack_retrans;
	__u64 resets_sent;
	__u64 overflows;      /* exact, from fentry/fexit (only when loaded) */
};

/* Global counters of things the BPF side could not record. */
struct listen_lost {
	__u64 stats_map_full;  /* listener entries not created: map full */
	__u64 pending_map_full; /* listen() arguments not stored */
};

#endif
