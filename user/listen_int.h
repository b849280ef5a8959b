/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * conntrace listen, internals shared by its files:
 *
 * listen.c         the command: options, the refresh loop, the printers' calls
 * listen_kernel.c  BPF: load and attach (hooks.c), the netns walk with
 *                  iter/tcp, merging each refresh into the listeners' state
 * listen_proc.c    /proc: namespaces, sysctls, TcpExt counters, owners
 * listen_logic.c   pure: advice, ordering, formatting (overflow.c: counting)
 */
#ifndef CONNTRACE_USER_LISTEN_INT_H
#define CONNTRACE_USER_LISTEN_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include <linux/types.h>
#include "hooks.h"
#include "listen.h"
#include "listen_rec.h"

#define elog(fmt, ...) fprintf(stderr, "conntrace listen: " fmt "\n", ##__VA_ARGS__)
#define vlog(fmt, ...) do { if (hooks_verbose()) elog(fmt, ##__VA_ARGS__); } while (0)

/* ---- listen_proc.c ---- */

struct netns {
	uint64_t ino;
	int fd;
	char name[64];       /* from /run/netns, or "" */
	bool walked;         /* its listeners and counters were read this refresh */
	bool have_prev;
	struct listen_ns_counters now, prev;
	uint32_t somaxconn;
	uint32_t max_syn_backlog;
	uint32_t syncookies;
};

struct netns_set {
	struct netns *v;
	size_t n, cap;
};

struct netns *netns_find(struct netns_set *s, uint64_t ino);
/* Every namespace: named ones in /run/netns, and those of every process. */
void netns_enumerate(struct netns_set *s);
void netns_close_all(struct netns_set *s);
/* The current namespace's sysctls and TcpExt counters into ns (prev kept). */
int netns_read_proc(struct netns *ns);

struct tracked {
	struct listener l;
	bool first;          /* first seen at this refresh */
	bool owner_tried;
	uint32_t prev_stamp;
	uint64_t prev_full_events;
	uint64_t prev_fentry;
};

struct state {
	struct tracked *v;  /* sorted by cookie */
	size_t n;
};

/* Like ss -p: the owners of listeners that predate us, from /proc/PID/fd. */
void resolve_owners(struct state *s);

/* ---- listen_kernel.c ---- */

struct listen_kernel;

/* Load and attach; the report of every signal (listen_kernel_report). */
int listen_kernel_open(struct listen_kernel **out, bool no_fentry);
void listen_kernel_close(struct listen_kernel *k);
const struct probe_report *listen_kernel_report(const struct listen_kernel *k, size_t *nr);
/* Overflows counted exactly at the drop sites (fentry/fexit)? */
bool listen_kernel_fentry(const struct listen_kernel *k);
/* SYNs at the listener seen (SYN cookies, clients that lost SYNs)? */
bool listen_kernel_syn(const struct listen_kernel *k);
/* What the BPF side could not record. */
struct listen_lost listen_kernel_lost(const struct listen_kernel *k);

struct recs {
	struct listen_rec *v;
	size_t n, cap;
};

struct listen_ctx {
	struct listen_kernel *k;
	struct netns_set ns;
	struct state st;
	struct recs recs;
	int orig_netns;
	int refresh;         /* 0: the baseline walk */
	size_t ns_skipped;   /* namespaces that could not be walked this refresh */
	struct timespec last;
	double interval_s;
	int top;             /* --top: clients kept per listener */
	struct listen_drop_rec *drops; /* this interval's SYN drops (drain_drops) */
	size_t ndrops, drops_cap;
};

/* Walk every namespace, merge into c->st; -ENOTRECOVERABLE is fatal. */
int listen_refresh(struct listen_ctx *c);

#endif
