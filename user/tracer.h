/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Kernel I/O: probe what the kernel allows, load and attach the BPF programs,
 * drain the ring buffer, read counters and the flows still in progress.
 */
#ifndef CONNTRACE_TRACER_H
#define CONNTRACE_TRACER_H

#include <linux/types.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "conntrace.h"
#include "hooks.h"

struct tracer_config {
	uint32_t tgids[CT_MAX_TARGETS];	/* --pid: these processes */
	unsigned ntgids;	/* 0: every process */
	uint16_t ports[CT_MAX_TARGETS];	/* --port: one of these at either end */
	unsigned nports;	/* 0: every port */
	char comm[CT_COMM_LEN];	/* --comm: tasks of this name; "": every task */
	uint64_t cgroup_id;	/* --cgroup: this cgroup v2 id and below; 0: all */
	uint32_t cgroup_level;	/* its depth, 0 for the root */
	uint32_t netns;		/* network namespace inode; 0: every namespace */
	bool emit_ok;
	uint64_t slow_ns;
	uint32_t ring_size;	/* bytes, a power of two >= page size */
	uint32_t max_flows;	/* flow-table entries (the LRU table only) */
	bool no_sk_storage;	/* the LRU table even where socket storage works */
	uint8_t direction;	/* CT_DIR_OUT | CT_DIR_IN (--direction) */
	bool verbose;		/* libbpf's own messages on stderr */
};

/* --pid and --port as the kernel applies them (conntrace.bpf.h). */
static inline bool tracer_tgid_wanted(const struct tracer_config *tc, uint32_t tgid)
{
	for (unsigned i = 0; i < tc->ntgids; i++)
		if (tc->tgids[i] == tgid)
			return true;
	return !tc->ntgids;
}

static inline bool tracer_port_wanted(const struct tracer_config *tc, uint16_t a, uint16_t b)
{
	for (unsigned i = 0; i < tc->nports; i++)
		if (tc->ports[i] == a || tc->ports[i] == b)
			return true;
	return !tc->nports;
}

/* One line of the --probes report: struct probe_report, in hooks.h. */
#define TRACER_MAX_PROBES 16

typedef int (*tracer_record_fn)(void *ctx, void *data, size_t len);

struct tracer;

/* 0 or a negative errno; *errmsg names what failed. */
int tracer_open(struct tracer **out, const struct tracer_config *cfg,
		tracer_record_fn fn, void *ctx, char *errmsg, size_t errsz);
void tracer_close(struct tracer *t);
/* Probes only: fills the report without attaching anything. */
int tracer_probe_only(struct probe_report *rep, int *nr, char *errmsg, size_t errsz);
const struct probe_report *tracer_report(const struct tracer *t, int *nr);
/* Waits up to timeout_ms, then drains whatever is in the ring. */
int tracer_poll(struct tracer *t, int timeout_ms);
/* Events the kernel skipped: the programs' recursion_misses, summed. */
uint64_t tracer_missed(struct tracer *t);
/* Sums the per-CPU counters. */
int tracer_counters(struct tracer *t, uint64_t out[CT_CNT_MAX]);
/* The same for the durations of the OK attempts only counted (CT_OKH_*). */
int tracer_ok_hist(struct tracer *t, uint64_t out[CT_OKH_MAX]);
/* Feeds every flow still in SYN_SENT, marked CT_F_PENDING and ended now. */
int tracer_dump_pending(struct tracer *t, uint64_t now);
typedef void (*tracer_listener_fn)(void *ctx, const struct ct_listener *l);
/* Calls fn for every listener found full so far that still listens;
 * -ENOTSUP where the kernel has no sk_data_ready tracepoint. */
int tracer_listeners(struct tracer *t, tracer_listener_fn fn, void *ctx);
/* Enum names from this kernel's BTF (ct_name_fn and its ctx). */
void *tracer_drop_names(const struct tracer *t);
void *tracer_rst_names(const struct tracer *t);
/*
 * Destroys the links (no program runs once it returns: it waits out those
 * already running) but keeps the maps and the ring buffer, so that they can
 * be drained, the pending flows dumped and the counters read. After it,
 * tracer_listeners() is -ENOTSUP. 0, or -errno when it could not wait for
 * the running programs (it then sleeps 50 ms instead).
 */
int tracer_detach(struct tracer *t);
/* Consumes every record in the ring without waiting: the count, or -errno. */
int tracer_drain(struct tracer *t);

#endif
