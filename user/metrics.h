/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * --metrics ADDR:PORT: Prometheus text exposition on /metrics, served by
 * libmicrohttpd from its own thread while the collector traces.
 *
 * The collector's thread updates counters under a mutex held for a few
 * stores; the HTTP thread copies a snapshot under it and formats outside,
 * so a slow scraper never holds up the ring-buffer loop. Every function
 * accepts m == NULL and does nothing, so callers need no `if (metrics)`.
 *
 * Label sets are bounded (docs/metrics.md): verdict x cause, verdict,
 * and at most METRICS_MAX_LISTENERS listeners.
 */
#ifndef CONNTRACE_METRICS_H
#define CONNTRACE_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include "correlate.h"
#include "tracer.h"

/* Listeners exported: those with the most overflows, then the fullest. */
#define METRICS_MAX_LISTENERS	64

/* One listener's state, as the listen module last saw it. */
struct metrics_listener {
	uint64_t netns;			/* network namespace inode */
	char laddr[46];			/* INET6_ADDRSTRLEN: "0.0.0.0", "::1" */
	uint16_t lport;
	uint64_t overflows;		/* SYNs dropped on a full accept queue, total */
	uint32_t accept_queue;		/* children waiting for accept() now */
	uint32_t accept_queue_max;	/* its limit (sk_max_ack_backlog) */
};

struct metrics;

/* NULL with errno set. */
struct metrics *metrics_new(void);
/* Stops the server (if started) and frees. */
void metrics_free(struct metrics *m);

/*
 * ADDR:PORT with ADDR an IPv4 address, [IPv6] address, "localhost" or empty
 * (every address, IPv4 and IPv6), PORT 1-65535. 0, or -EINVAL with a
 * one-line message naming --metrics in err.
 */
int metrics_parse_addr(const char *arg, struct sockaddr_storage *ss, socklen_t *len,
		       char *err, size_t errsz);
/*
 * Binds and listens now, so that a port in use is a bad command line found
 * before tracing starts. 0 or -errno with a one-line message.
 */
int metrics_bind(struct metrics *m, const struct sockaddr *sa, socklen_t len,
		 char *err, size_t errsz);
/* The bound port (useful after binding port 0), 0 if not bound. */
uint16_t metrics_port(const struct metrics *m);
/* Starts serving on the bound socket. 0 or -errno with a one-line message. */
int metrics_start(struct metrics *m, char *err, size_t errsz);

/* conntrace_build_info{version,kernel,probes}: probes summarises the hooks. */
void metrics_build_info(struct metrics *m, const char *version, const char *kernel,
			const struct probe_report *rep, int nr);
/* One verdict: counted by verdict and cause, its duration observed, SYN
 * retransmits added. */
void metrics_verdict(struct metrics *m, const struct ct_result *r);
/* Kernel-side totals (they only grow). */
void metrics_kernel_counters(struct metrics *m, uint64_t lost_records, uint64_t flow_evictions);
/*
 * Kernel-side totals of attempts without a record (issue 11): lost[v], the
 * ring had no room (exported with cause="lost"); ok_unsent, OK attempts only
 * counted (exported with cause="established").
 */
void metrics_kernel_verdicts(struct metrics *m, const uint64_t lost[CT_V_MAX], uint64_t ok_unsent);
/* The durations of those OK attempts (CT_OKH_*, totals), for the ok histogram. */
void metrics_kernel_ok_hist(struct metrics *m, const uint64_t h[CT_OKH_MAX]);
/* Output-file totals (sink.c). */
void metrics_output_counters(struct metrics *m, uint64_t write_errors, uint64_t records_lost);
/*
 * Replaces the listener set with v[0..n): the METRICS_MAX_LISTENERS with the
 * most overflows are kept (ties: the fuller queue), the number left out is
 * exported as conntrace_listeners_omitted.
 */
void metrics_set_listeners(struct metrics *m, const struct metrics_listener *v, size_t n);
/*
 * The same, a listener at a time: begin, one add per listener of a reading,
 * end publishes them (all from the collector's thread).
 */
void metrics_listeners_begin(struct metrics *m);
void metrics_listener_add(struct metrics *m, const struct metrics_listener *l);
void metrics_listeners_end(struct metrics *m);

/* The exposition text exactly as served; malloc'd, NULL on ENOMEM. */
char *metrics_render(struct metrics *m, size_t *len);

#endif
