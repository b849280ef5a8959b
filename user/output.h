/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Output writers: one per format, behind one interface. Writers only
 * format (text also sums a storm into one line a second: aggregate.h); the
 * collector decides what to write and when to flush.
 */
#ifndef CONNTRACE_OUTPUT_H
#define CONNTRACE_OUTPUT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include "aggregate.h"
#include "cgroup.h"
#include "correlate.h"
#include "overflow.h"
#include "tracer.h"

#define CT_SCHEMA_VERSION "2.0"

struct start_info {
	const char *version;
	const char *kernel;		/* uname -r */
	const struct probe_report *probes;
	int nr_probes;
	int pid;
	uint64_t ts_real_ns;
};

struct loss_info {
	uint64_t lost_records;		/* ring-buffer records lost, total */
	uint64_t flow_evictions;	/* flows whose table entry was gone, total */
	uint64_t new_lost, new_evictions;	/* since the last report */
	uint64_t since_real_ns;		/* start of the interval */
	uint64_t ts_real_ns;
	/* export: records the --output file could not take (sink.c) */
	uint64_t output_lost;		/* total */
	uint64_t new_output_lost;	/* since the last report */
	uint64_t missed, new_missed;	/* program runs the kernel skipped */
	/* issue 11: flow records the ring lost since the last report, by verdict (CT_V_MAX) */
	const uint64_t *new_lost_by_verdict;
	/* verdicts not written because the --buffer was full: total, since the last report */
	uint64_t buffer_dropped, new_buffer_dropped;
};

struct summary_info {
	const struct corr_stats *stats;
	/* every attempt per enum ct_verdict, after -p/--port: delivered or only counted */
	const uint64_t *verdicts;
	const uint64_t *lost_by_verdict;	/* of them: records the ring had no room for */
	const uint64_t *dropped_by_verdict;	/* ... verdicts the --buffer had no room for */
	uint64_t ok_unsent;		/* ... OK attempts only counted in the kernel */
	/* established connections' verdicts, per enum ct_verdict; NULL: none kept */
	const uint64_t *est_verdicts;
	/* of verdicts, the incoming attempts' (direction inbound); NULL: none */
	const uint64_t *in_verdicts;
	uint64_t lost_records;
	uint64_t flow_evictions;
	uint64_t flow_nospace;
	uint64_t flows_untracked;	/* ended, but began before conntrace */
	uint64_t missed_events;		/* program runs the kernel skipped (recursion) */
	uint64_t flows;			/* outgoing attempts the kernel saw + incoming ones */
	double duration_s;
	uint64_t ts_real_ns;
	/* export: the --output file (sink.c) */
	uint64_t output_write_errors;
	uint64_t output_records_lost;
};

struct writer;

struct writer_ops {
	void (*start)(struct writer *w, const struct start_info *s);
	void (*verdict)(struct writer *w, const struct ct_result *r, uint64_t ts_real_ns);
	void (*loss)(struct writer *w, const struct loss_info *l);
	void (*summary)(struct writer *w, const struct summary_info *s);
	/* a listener dropped SYNs on its full accept queue since the last report */
	void (*listen_overflow)(struct writer *w, const struct overflow_report *r,
				uint64_t ts_real_ns, uint64_t since_real_ns);
	/* once a second: text prints the verdicts it summed (aggregate.h) */
	void (*tick)(struct writer *w, uint64_t ts_real_ns);
};

struct writer {
	const struct writer_ops *ops;
	FILE *f;
	bool color;		/* text: ANSI colour */
	bool detail;		/* text: the detail line under each verdict */
	unsigned lines;		/* text: lines since the header */
	/* the next verdict's cgroup (cgroup.h), set by the collector; NULL: unknown */
	const struct cg_info *cg;
	bool aggregate;		/* text: a key's verdicts beyond agg.per_sec a second summed */
	struct agg agg;
};

void writer_text_init(struct writer *w, FILE *f, bool color, bool detail);
void writer_json_init(struct writer *w, FILE *f);
/*
 * Text: print at most per_sec lines a second for one (verdict, cause,
 * destination), and one line a second (at tick) with the count of the
 * others; 0 prints every verdict (--no-aggregate). now: the wall clock.
 */
void writer_text_aggregate(struct writer *w, unsigned per_sec, uint64_t now_real_ns);

/* Shared helpers. */
void fmt_addr(char *buf, size_t sz, uint8_t family, const uint8_t *addr);
/* RFC 3339 UTC with nanoseconds: 2026-11-21T19:40:01.123456789Z */
void fmt_rfc3339(char *buf, size_t sz, uint64_t real_ns);
/* The destination or source as ADDR:PORT, IPv6 in brackets. */
void fmt_endpoint(char *buf, size_t sz, uint8_t family, const uint8_t *addr, uint16_t port);

#endif
