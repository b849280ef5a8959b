/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Incoming connection attempts: the kernel's CT_REC_INBOUND records (struct
 * ct_inbound, counts so far) in, one verdict per attempt out, as a struct
 * ct_result with inbound set. Pure C, no libbpf, unit-tested.
 *
 * An attempt ends with the kernel's record of its end (established: ok or
 * slow; an RST answered its SYN: refused), or, when this host dropped its
 * SYNs, after quiet_ns with no new event from it (the client gave up:
 * dropped), or at inbound_flush() (pending).
 */
#ifndef CONNTRACE_INBOUND_H
#define CONNTRACE_INBOUND_H

#include "correlate.h"

/*
 * Default quiet period: longer than the largest gap between the SYNs of a
 * client with Linux defaults (retries after 1, 2, 4, 8 and 16 s) and between
 * a listener's SYN-ACK retransmits before its last (16 s).
 */
#define INBOUND_QUIET_NS	(20ULL * 1000000000ULL)

struct inbound_config {
	uint64_t quiet_ns;		/* 0: INBOUND_QUIET_NS */
	size_t max_attempts;		/* 0: 4096; beyond, the oldest is told as pending */
	ct_name_fn drop_reason_name;	/* enum skb_drop_reason value -> name */
	void *drop_names;
	ct_emit_fn emit;
	void *emit_ctx;
};

/* How an attempt is being told (inbound_verdict()'s end). */
enum inbound_end {
	INB_END_EVENT,		/* its last record: established, RST, or still open */
	INB_END_QUIET,		/* no news for quiet_ns: the client gave up */
	INB_END_STOP,		/* conntrace stopped (or the table was full): pending */
};

struct inbound;

/* NULL with errno set on failure. */
struct inbound *inbound_new(const struct inbound_config *cfg);
void inbound_free(struct inbound *in);
/* One CT_REC_INBOUND record; now is CLOCK_BOOTTIME ns. 0 or -EINVAL. */
int inbound_feed(struct inbound *in, const void *data, size_t len, uint64_t now);
/* Tells the attempts quiet for quiet_ns (dropped). */
void inbound_tick(struct inbound *in, uint64_t now);
/* Tells every attempt still open (pending). */
void inbound_flush(struct inbound *in, uint64_t now);
/* Attempts held. */
size_t inbound_held(const struct inbound *in);

/* Pure: verdict, cause and inferred of an attempt from its last record. */
struct ct_class inbound_classify(const struct ct_inbound *a, enum inbound_end end);
/* The sentence that explains an inbound verdict (render.c calls it). */
const char *inbound_render_detail(const struct ct_result *r, char *buf, size_t sz);

#endif
