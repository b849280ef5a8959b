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
	/* SYN cookies sent: at tcp_conn_request (fentry/fexit), or where only
	 * the consumed SYN is seen, exact with tcp_syncookies=2, inferred with 1 */
	__u64 syn_cookies;
	__u64 syn_cookies_inferred;
	__u32 syn_qlen_last;  /* SYN queue after the last SYN (consume_skb path) */
	__u32 drops_last;     /* sk_drops after the last SYN (consume_skb path) */
	__u32 syn_seen;       /* drops_last is set */
	__u32 pad;
};

/* A listener by where SYNs find it: its namespace, family, port and address. */
struct listen_sock_key {
	__u32 netns;
	__u16 family;
	__u16 port;           /* host byte order */
	__u8 addr[16];        /* IPv4 in the first 4 bytes; all zero: any address */
};

struct listen_sock {
	__u64 sk;             /* the struct sock, checked against cookie before use */
	__u64 cookie;
};

/* A remote client whose SYNs a listener dropped, by source port. */
struct listen_client_key {
	__u64 cookie;         /* the listener */
	__u16 family;
	__u16 port;           /* the client's source port, host byte order */
	__u8 addr[16];
	__u32 pad;
};

struct listen_client {
	__u32 accept_queue_full; /* SYNs dropped because the accept queue was full */
	__u32 syn_queue_full;    /* SYNs dropped because the SYN queue was full */
};

#define LISTEN_MAX_CLIENTS 16384

/* Global counters of things the BPF side could not record. */
struct listen_lost {
	__u64 stats_map_full;  /* listener entries not created: map full */
	__u64 pending_map_full; /* listen() arguments not stored */
	__u64 clients_map_full; /* SYN drops not attributed to a client: map full */
	__u64 socks_map_full;   /* listeners SYNs cannot find (consume_skb path) */
};

#endif
