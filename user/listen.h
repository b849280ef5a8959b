/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * conntrace listen: accept-queue (somaxconn) overflows, per listener, live.
 *
 * listen.c         the command: options, refresh loop, output
 * listen_kernel.c  BPF load (hooks.c), netns walk, merging (listen_int.h)
 * listen_proc.c    /proc: namespaces, sysctls, TcpExt counters, owners
 * listen_logic.c   pure: advice, ordering, formatting
 * overflow.c       pure: what an overflow is and how it is counted
 *
 * Everything below listen_main() is pure C without libbpf, so the unit
 * tests (tests/unit/test_listen*.c) drive it without a kernel.
 */
#ifndef CONNTRACE_USER_LISTEN_H
#define CONNTRACE_USER_LISTEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "overflow.h"

struct json;

/* `conntrace listen [OPTION...]`: returns the process exit status. */
int listen_main(int argc, char **argv);

#define LISTEN_HISTORY 16 /* refreshes of queue fill kept per listener */

/* Where backlog_requested comes from. */
enum listen_backlog_source {
	LISTEN_BACKLOG_UNKNOWN,  /* listen() before we started, and capped */
	LISTEN_BACKLOG_SYSCALL,  /* seen at sys_enter_listen */
	LISTEN_BACKLOG_INFERRED, /* max < somaxconn, so max is the argument */
};

enum listen_advice {
	LISTEN_ADVICE_ACCEPT_SLOW = 1u << 0, /* queue stays full */
	LISTEN_ADVICE_BACKLOG_LOW = 1u << 1, /* app backlog < somaxconn, overflowing */
	LISTEN_ADVICE_SOMAXCONN   = 1u << 2, /* somaxconn truncated the backlog */
	LISTEN_ADVICE_SYN_COOKIES = 1u << 3, /* SYN queue full: cookies sent */
};

/* A network namespace's TcpExt counters (/proc/net/netstat inside it). */
struct listen_ns_counters {
	uint64_t listen_overflows;
	uint64_t listen_drops;
	uint64_t syncookies_sent;
	uint64_t reqq_full_cookies;
	uint64_t reqq_full_drop;
};

#define LISTEN_TOP_MAX 32 /* --top: clients that lost SYNs, kept per listener */
#define LISTEN_TOP_DEFAULT 5

/* SYNs one client (address, source port) lost to one listener (from BPF). */
struct listen_drop_rec {
	uint64_t cookie;       /* the listener */
	uint16_t family;
	uint16_t port;
	uint8_t addr[16];
	uint32_t accept_queue_full;
	uint32_t syn_queue_full;
};

/* A remote address whose SYNs a listener dropped in the last interval. */
struct listen_top_client {
	uint16_t family;
	uint8_t addr[16];
	uint32_t ports;             /* distinct source ports among its dropped SYNs */
	uint64_t accept_queue_full; /* SYNs dropped because the accept queue was full */
	uint64_t syn_queue_full;    /* ... because the SYN queue was full */
};

struct listener {
	/* identity */
	uint64_t cookie;
	uint64_t netns_ino;
	uint64_t sock_ino;
	uint16_t family; /* AF_INET, AF_INET6 */
	uint16_t lport;
	uint8_t laddr[16];
	int pid;         /* 0: not known */
	char comm[16];   /* raw kernel bytes, NUL-terminated; escape to print */
	char cgroup[512]; /* the owner's cgroup v2 path, read once; "": not known */
	bool cgroup_tried;

	/* this refresh */
	uint32_t accept_queue;
	uint32_t accept_queue_peak; /* since the previous refresh */
	uint32_t accept_queue_max;  /* sk_max_ack_backlog */
	uint32_t syn_queue;
	int64_t backlog_requested;  /* -1: not known */
	enum listen_backlog_source backlog_source;
	uint32_t somaxconn;         /* of its netns, now */
	uint32_t tcp_max_syn_backlog;
	uint32_t tcp_syncookies;    /* net.ipv4.tcp_syncookies of its netns */
	bool full_now;              /* accept_queue > accept_queue_max */
	int full_streak;            /* consecutive refreshes found full */
	bool cookies_interval;      /* its SYN-cookie stamp moved */
	uint64_t full_events_interval; /* children queued onto a full queue */

	/* counters; "interval" is since the previous refresh */
	uint64_t drops;             /* sk_drops now (since listen()) */
	uint64_t drops_interval;
	uint64_t overflows;         /* since listen() (attributed part included) */
	uint64_t overflows_interval;
	double interval_s;
	uint64_t synack_retrans;    /* since conntrace saw the listener */
	uint64_t resets_sent;
	enum overflow_method method; /* weakest method its total went through */
	enum overflow_method method_interval;

	/* the SYN queue and SYNs at the listener (bpf/listen_syn.bpf.h) */
	uint32_t syn_queue_max;     /* listen_syn_queue_max() */
	bool syn_seen;              /* SYNs are watched: the fields below mean something */
	uint64_t syn_cookies;       /* since conntrace saw the listener */
	bool syn_cookies_inferred;  /* part of syn_cookies is inferred, not counted */
	struct listen_top_client top[LISTEN_TOP_MAX]; /* most SYNs dropped first */
	size_t ntop;
	uint64_t dropped_clients;   /* addresses that lost SYNs in the interval */

	uint8_t history[LISTEN_HISTORY]; /* queue fill in percent, oldest first */
	int history_len;
	unsigned advice;            /* enum listen_advice bits */
};

const char *listen_backlog_source_name(enum listen_backlog_source s);

/*
 * The SYN queue's limit as tcp_conn_request() applies it: the requests it
 * holds before the next SYN is dropped (tcp_syncookies=0) or answered with a
 * SYN cookie (1): sk_max_ack_backlog + 1 (inet_csk_reqsk_queue_is_full() is
 * "qlen > max" since 6.13 and in stable kernels since early 2025, ">=" before);
 * with cookies off, for peers not proven by tcp_metrics, also at most
 * tcp_max_syn_backlog - tcp_max_syn_backlog / 4 + 1. 0 with tcp_syncookies=2:
 * every SYN gets a cookie, none is queued.
 */
uint32_t listen_syn_queue_max(uint32_t max_ack_backlog, uint32_t max_syn_backlog,
			      uint32_t syncookies);

/*
 * recs: the SYN drops of ONE listener, one per client address and port, in
 * any order (sorted in place). Fills out[0..*nout) with the max addresses
 * that lost the most SYNs (ties: more accept-queue drops, then the lower
 * address); returns how many addresses lost SYNs in all.
 */
size_t listen_rank_clients(struct listen_drop_rec *recs, size_t n,
			   struct listen_top_client *out, size_t max, size_t *nout);
/* "192.0.2.2 (2 ports): 3 SYNs dropped, 3 accept_queue_full, 0 syn_queue_full" */
size_t listen_format_client(const struct listen_top_client *c, char *buf, size_t sz);

/* Push a fill sample (percent of capacity, max + 1 children) to the history. */
void listen_history_push(struct listener *l, uint32_t peak);

/* Decide l->advice from the evidence in l; returns it. */
unsigned listen_advise(struct listener *l);
/* One advice sentence for bit `rule` of l (escaped comm); returns length. */
size_t listen_advice_text(const struct listener *l, unsigned rule, char *buf, size_t sz);
const char *listen_advice_name(unsigned rule);

/* Most trouble first: overflow rate, overflows, full, fill. qsort comparator. */
int listen_cmp_trouble(const void *a, const void *b);

/* "127.0.0.1:80", "[::1]:8080", "*:22", "[::]:22" */
size_t listen_format_addr(const struct listener *l, char *buf, size_t sz);
/* History as a sparkline: UTF-8 blocks, or ASCII when utf8 is false. */
size_t listen_format_sparkline(const struct listener *l, bool utf8, char *buf, size_t sz);

/* Text table: column widths fitted to the rows so they stay aligned. */
struct listen_table_opts {
	bool utf8;
	bool show_advice;
	int width;     /* wrap advice at this many columns; 0: never */
	int max_lines; /* stop (saying how many are left out) past this; 0: no limit */
};
/* Returns the number of listeners printed. */
size_t listen_print_table(FILE *f, const struct listener *rows, size_t n,
			const struct listen_table_opts *o);

/* One {"type":"listener",...} line. */
void listen_json_listener(struct json *j, const struct listener *l, double ts);
/* Opens a record: type, then schema and ts as every record has (docs/schema.md). */
void listen_json_head(struct json *j, const char *type, double ts);

#endif
