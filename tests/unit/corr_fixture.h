/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The correlator tests' fixture: a correlator whose verdicts are copied into
 * got[], builders for the records of conntrace.h, and checks that say what
 * they expected. Included by test_correlate.c, test_correlate_match.c and
 * test_classify.c (static inline: each uses only some of it).
 */
#ifndef CONNTRACE_CORR_FIXTURE_H
#define CONNTRACE_CORR_FIXTURE_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "correlate.h"

#define US	1000ULL
#define MS	1000000ULL
#define SEC	1000000000ULL
/* Flows start here: far enough from 0 that "before the flow" exists. */
#define T0	(1000 * SEC)

#define NETNS_A	4026531840u
#define NETNS_B	4026532901u

/* Values of the fake kernel enums; only the names matter to the correlator. */
#define DROP_NO_SOCKET		3
#define DROP_NETFILTER		12
#define DROP_LISTEN_OVERFLOW	40
#define DROP_OTHER		99
#define RST_NO_SOCKET		1
#define RST_BAD_ACK		2
/* ICMP_SENT reasons: type << 8 | code */
#define ICMP_PORT_UNREACH	((3u << 8) | 3)
#define ICMP_HOST_UNREACH	((3u << 8) | 1)
#define ICMP_NET_UNREACH	((3u << 8) | 0)

#define MAX_GOT 16

#define CHECK(cond, ...) do { if (!(cond)) fail_msg(__VA_ARGS__); } while (0)

static inline const char *fake_drop_name(uint32_t v, void *ctx)
{
	(void)ctx;
	switch (v) {
	case DROP_NO_SOCKET: return "NO_SOCKET";
	case DROP_NETFILTER: return "NETFILTER_DROP";
	case DROP_LISTEN_OVERFLOW: return "TCP_LISTEN_OVERFLOW";
	case DROP_OTHER: return "OTHER_REASON";
	default: return NULL;
	}
}

static inline const char *fake_rst_name(uint32_t v, void *ctx)
{
	(void)ctx;
	switch (v) {
	case RST_NO_SOCKET: return "NO_SOCKET";
	case RST_BAD_ACK: return "TCP_INVALID_ACK_SEQUENCE";
	default: return NULL;
	}
}

/* ---- fixture: a correlator whose verdicts are copied into got[] ---- */

struct fixture {
	struct corr_config cfg;
	struct correlator *c;
	struct ct_result got[MAX_GOT];
	unsigned n;
};

static inline void on_verdict(const struct ct_result *r, void *ctx)
{
	struct fixture *fx = ctx;

	if (fx->n < MAX_GOT)
		fx->got[fx->n] = *r;
	fx->n++;
}

/* (Re)creates the correlator from fx->cfg, which a test may change first. */
static inline void reopen(struct fixture *fx)
{
	corr_free(fx->c);
	fx->c = corr_new(&fx->cfg);
	assert_non_null(fx->c);
	fx->n = 0;
}

static inline int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));

	if (!fx)
		return -1;
	fx->cfg = (struct corr_config){
		.slow_ns = 1000 * MS,
		.drop_reason_name = fake_drop_name,
		.rst_reason_name = fake_rst_name,
		.emit = on_verdict,
		.emit_ctx = fx,
	};
	reopen(fx);
	*state = fx;
	return 0;
}

static inline int teardown(void **state)
{
	struct fixture *fx = *state;

	corr_free(fx->c);
	free(fx);
	return 0;
}

/* ---- record builders ---- */

static inline uint8_t put_addr(uint8_t dst[16], const char *s)
{
	int af = strchr(s, ':') ? AF_INET6 : AF_INET;

	memset(dst, 0, 16);
	if (inet_pton(af, s, dst) != 1)
		fail_msg("test bug: '%s' is not an address", s);
	return af == AF_INET ? CT_AF_INET : CT_AF_INET6;
}

/* A flow that connected 2 ms after it started, with nothing wrong. */
static inline struct ct_flow make_flow(const char *src, uint16_t sport, const char *dst,
				       uint16_t dport)
{
	struct ct_flow f = {
		.type = CT_REC_FLOW,
		.state = CT_TCP_ESTABLISHED,
		.sport = sport,
		.dport = dport,
		.tid = 4242,
		.pid = 4240,
		.netns = NETNS_A,
		.cgroup_id = 77,
		.ts_start = T0,
		.ts_end = T0 + 2 * MS,
	};

	f.family = put_addr(f.saddr, src);
	put_addr(f.daddr, dst);
	memcpy(f.comm, "curl", 5);
	return f;
}

static inline struct ct_flow default_flow(void)
{
	return make_flow("10.0.0.1", 40000, "10.0.0.2", 80);
}

/* n SYN retransmits with the kernel's backoff: 1 s, 3 s, 7 s, ... after the start. */
static inline void set_retrans(struct ct_flow *f, unsigned n)
{
	f->syn_retrans = n;
	for (unsigned i = 0; i < n && i < CT_MAX_RETRANS; i++)
		f->retrans_us[i] = ((2u << i) - 1) * 1000000u;
}

static inline void end_established(struct ct_flow *f, uint64_t after_ns)
{
	f->state = CT_TCP_ESTABLISHED;
	f->ts_end = f->ts_start + after_ns;
}

static inline void end_closed(struct ct_flow *f, uint64_t after_ns, int err)
{
	f->state = CT_TCP_CLOSE;
	f->ts_end = f->ts_start + after_ns;
	f->err = err;
}

/* Two retransmits (at 1 s and 3 s), then ETIMEDOUT at 7 s. */
static inline struct ct_flow timeout_flow(void)
{
	struct ct_flow f = default_flow();

	set_retrans(&f, 2);
	end_closed(&f, 7 * SEC, ETIMEDOUT);
	return f;
}

/* Refused 200 us after the start, an RST received at 150 us. */
static inline struct ct_flow refused_flow(bool rst_rcvd)
{
	struct ct_flow f = default_flow();

	end_closed(&f, 200 * US, ECONNREFUSED);
	if (rst_rcvd) {
		f.flags |= CT_F_RST_RCVD;
		f.ts_rst = f.ts_start + 150 * US;
	}
	return f;
}

static inline struct ct_evidence make_evidence(uint8_t type, const char *src, uint16_t sport,
					const char *dst, uint16_t dport, uint64_t ts)
{
	struct ct_evidence e = {
		.type = type,
		.tcp_flags = CT_TCP_SYN,
		.sport = sport,
		.dport = dport,
		.netns = NETNS_A,
		.ts = ts,
	};

	e.family = put_addr(e.saddr, src);
	put_addr(e.daddr, dst);
	return e;
}

/* Evidence about the flow's own SYN: the flow's tuple, in its netns. */
static inline struct ct_evidence syn_evidence(const struct ct_flow *f, uint8_t type,
					      uint32_t reason, uint64_t ts)
{
	struct ct_evidence e = {
		.type = type,
		.family = f->family,
		.tcp_flags = CT_TCP_SYN,
		.has_reason = 1,
		.sport = f->sport,
		.dport = f->dport,
		.netns = f->netns,
		.reason = reason,
		.ts = ts,
	};

	memcpy(e.saddr, f->saddr, 16);
	memcpy(e.daddr, f->daddr, 16);
	return e;
}

/* Evidence about the SYN-ACK answering the flow: the tuple reversed. */
static inline struct ct_evidence synack_evidence(const struct ct_flow *f, uint8_t type,
						 uint32_t reason, uint64_t ts)
{
	struct ct_evidence e = syn_evidence(f, type, reason, ts);

	e.tcp_flags = CT_TCP_SYN | CT_TCP_ACK;
	e.sport = f->dport;
	e.dport = f->sport;
	memcpy(e.saddr, f->daddr, 16);
	memcpy(e.daddr, f->saddr, 16);
	return e;
}

/* A listener's accept queue report: the listener's address is the source. */
static inline struct ct_evidence listen_report(const char *addr, uint16_t port, uint32_t netns,
					uint64_t ts, uint32_t queue, uint32_t queue_max)
{
	struct ct_evidence e = make_evidence(CT_REC_LISTEN_FULL, addr, port,
					     strchr(addr, ':') ? "::" : "0.0.0.0", 0, ts);

	e.tcp_flags = 0;
	e.netns = netns;
	e.queue = queue;
	e.queue_max = queue_max;
	return e;
}

/* ---- feeding and looking ---- */

/* The rendered detail of a result (step 3), as a writer would print it. */
static inline const char *detail(const struct ct_result *r)
{
	static char buf[4][CT_DETAIL_MAX];
	static unsigned i;

	i = (i + 1) % 4;
	return ct_render_detail(r, buf[i], sizeof(buf[i]));
}

static inline void feed_at(struct fixture *fx, const void *rec, size_t len, uint64_t now)
{
	int err = corr_feed(fx->c, rec, len, now);

	CHECK(err == 0, "corr_feed of a well-formed record: expected 0, got %d", err);
}

static inline void feed_flow(struct fixture *fx, const struct ct_flow *f)
{
	feed_at(fx, f, sizeof(*f), f->ts_end);
}

static inline void feed_ev(struct fixture *fx, const struct ct_evidence *e)
{
	feed_at(fx, e, sizeof(*e), e->ts);
}

static inline const struct ct_result *the_verdict(struct fixture *fx)
{
	CHECK(fx->n == 1, "expected exactly one verdict, got %u", fx->n);
	return &fx->got[0];
}

#define expect_verdict(r, v, c) do {							\
	const struct ct_result *r_ = (r);						\
	CHECK(r_->verdict == (v) && r_->cause == (c),					\
	      "expected verdict %s, cause %s; got %s, %s (detail: %s)",			\
	      ct_verdict_name(v), ct_cause_name(c), ct_verdict_name(r_->verdict),	\
	      ct_cause_name(r_->cause), detail(r_));					\
} while (0)

#define expect_detail_has(r, s) \
	CHECK(strstr(detail(r), (s)), "expected the detail to mention \"%s\", got: %s", \
	      (s), detail(r))

#define expect_detail_lacks(r, s) \
	CHECK(!strstr(detail(r), (s)), "expected the detail not to mention \"%s\", got: %s", \
	      (s), detail(r))

static inline const struct ct_ev_item *find_ev(const struct ct_result *r, enum ct_ev_kind kind,
					unsigned nth)
{
	for (unsigned i = 0; i < r->nr_ev; i++)
		if (r->ev[i].kind == kind && nth-- == 0)
			return &r->ev[i];
	return NULL;
}

static inline unsigned count_ev(const struct ct_result *r, enum ct_ev_kind kind)
{
	unsigned n = 0;

	for (unsigned i = 0; i < r->nr_ev; i++)
		n += r->ev[i].kind == kind;
	return n;
}

static inline const struct ct_ev_item *must_find_ev(const struct ct_result *r, enum ct_ev_kind kind,
					     unsigned nth)
{
	const struct ct_ev_item *it = find_ev(r, kind, nth);

	CHECK(it, "expected evidence item #%u of kind %s, found %u of that kind", nth + 1,
	      ct_ev_kind_name(kind), count_ev(r, kind));
	return it;
}

#define expect_reason(it, want) do {							\
	const char *got_ = (it)->reason, *want_ = (want);				\
	CHECK(want_ ? got_ && !strcmp(got_, want_) : !got_,				\
	      "expected %s reason %s, got %s", ct_ev_kind_name((it)->kind),		\
	      want_ ? want_ : "(none)", got_ ? got_ : "(none)");			\
} while (0)

#define expect_t_us(it, want) \
	CHECK((it)->t_us == (int64_t)(want), "expected %s at %lld us, got %lld", \
	      ct_ev_kind_name((it)->kind), (long long)(want), (long long)(it)->t_us)

#define expect_held(fx, want) \
	CHECK(corr_held((fx)->c) == (want), "expected %zu entries held, got %zu", \
	      (size_t)(want), corr_held((fx)->c))

#endif
