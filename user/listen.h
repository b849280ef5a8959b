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

	uint8_t history[LISTEN_HISTORY]; /* queue fill in percent, oldest first */
	int history_len;
	unsigned advice;            /* enum listen_advice bits */
};

const char *listen_backlog_source_name(enum listen_backlog_source s);

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
