/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Established connections that died (struct ct_estab records): facts,
 * verdict (timeout or reset), cause and the sentence that explains it. Pure
 * C, no libbpf: unit-tested without a kernel (tests/unit/test_established.c).
 */
#ifndef CONNTRACE_ESTABLISHED_H
#define CONNTRACE_ESTABLISHED_H

#include <linux/types.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "conntrace.h"

/* Which part of a connection's life a verdict is about. */
enum ct_phase {
	CT_PHASE_CONNECT,	/* the attempt: every verdict but these */
	CT_PHASE_ESTABLISHED,	/* after the handshake */
	CT_PHASE_MAX,
};

/* The kernel timer that gave up on an established connection. */
enum ct_timer {
	CT_TIMER_NONE,		/* not a timeout */
	CT_TIMER_RETRANSMIT,	/* tcp_retries2 (RTO) retransmits unacknowledged */
	CT_TIMER_KEEPALIVE,	/* keepalive probes unanswered */
	CT_TIMER_USER_TIMEOUT,	/* TCP_USER_TIMEOUT passed */
	CT_TIMER_ZERO_WINDOW_PROBE, /* window probes unanswered (peer's window 0) */
	CT_TIMER_MAX,
};

enum ct_reset_dir {
	CT_RESET_NONE,
	CT_RESET_RECEIVED,	/* an RST arrived */
	CT_RESET_SENT,		/* this host sent one */
};

/* What is known about the end of one established connection. */
struct ct_estab_facts {
	enum ct_timer timer;
	enum ct_reset_dir reset;
	bool reset_seen;	/* the RST itself was traced (not only its errno) */
	const char *rst_reason;	/* the kernel's reason for an RST sent, NULL if none */
	int err;		/* sk_err when it died */
	uint8_t state;		/* the state it died in (CT_TCP_*) */
	bool keepalive;		/* SO_KEEPALIVE was on */
	bool owner;		/* pid and comm are its owner's */
	bool lossy;
	uint32_t retrans;	/* retransmits traced while established */
	uint32_t total_retrans;	/* the kernel's own count */
	uint32_t since_ack;	/* RTO retransmits since the last ACK (icsk_retransmits) */
	uint32_t backoff;	/* RTO doublings at the last retransmit */
	uint32_t probes_out;
	uint32_t unacked;	/* bytes */
	uint32_t snd_wnd;
	uint32_t user_timeout_ms;
	uint32_t nf_drops, drops;
	const char *drop_reason; /* of the last other drop, NULL if none */
	/* before it died, us; -1 when not seen */
	int64_t first_retrans_us, last_retrans_us;
	int64_t tracked_us;	/* since its first trouble */
	int64_t idle_us;	/* idle before the RST received; -1 unknown */
};

typedef const char *(*estab_name_fn)(uint32_t value, void *ctx);

struct estab_config {
	estab_name_fn drop_reason_name;	/* enum skb_drop_reason value -> name */
	void *drop_names;
	estab_name_fn rst_reason_name;	/* enum sk_rst_reason value -> name */
	void *rst_names;
	unsigned hz;			/* the kernel's jiffies per second; 0 unknown */
};

struct ct_result;

/* The facts of one record: timer and reset decided from the socket's fields. */
void estab_facts(struct ct_estab_facts *x, const struct ct_estab *e,
		 const struct estab_config *cfg);
/*
 * A whole verdict (phase established) from one record: 0, or -EINVAL for a
 * record that is not a ct_estab of the right size.
 */
int estab_result(struct ct_result *r, const void *data, size_t len,
		 const struct estab_config *cfg);
/* The sentence of an established verdict; always NUL-terminated. */
const char *estab_render_detail(const struct ct_result *r, char *buf, size_t sz);

const char *ct_phase_name(enum ct_phase p);	/* "established" */
const char *ct_timer_name(enum ct_timer t);	/* "keepalive"; NULL for NONE */
const char *ct_tcp_state_name(unsigned state);	/* "close_wait" */
/* Parses "connect", "established" or "both" into a mask of 1 << phase; -1 if bad. */
int ct_phase_parse(const char *s);

#endif
