// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The correlator without a kernel: hand-built records of conntrace.h fed as
 * raw bytes, the way the ring buffer delivers them, and the verdicts that
 * come out. One test per verdict and cause, then the rules that decide which
 * evidence belongs to which flow, the hold for late evidence, the bounds and
 * malformed input; then the classifier alone over combinations of facts,
 * ICMP errors, dual-stack matching, the listener interface and the renderer.
 */
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

#define MAX_GOT 16

#define CHECK(cond, ...) do { if (!(cond)) fail_msg(__VA_ARGS__); } while (0)

static const char *fake_drop_name(uint32_t v, void *ctx)
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

static const char *fake_rst_name(uint32_t v, void *ctx)
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

static void on_verdict(const struct ct_result *r, void *ctx)
{
	struct fixture *fx = ctx;

	if (fx->n < MAX_GOT)
		fx->got[fx->n] = *r;
	fx->n++;
}

/* (Re)creates the correlator from fx->cfg, which a test may change first. */
static void reopen(struct fixture *fx)
{
	corr_free(fx->c);
	fx->c = corr_new(&fx->cfg);
	assert_non_null(fx->c);
	fx->n = 0;
}

static int setup(void **state)
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

static int teardown(void **state)
{
	struct fixture *fx = *state;

	corr_free(fx->c);
	free(fx);
	return 0;
}

/* ---- record builders ---- */

static uint8_t put_addr(uint8_t dst[16], const char *s)
{
	int af = strchr(s, ':') ? AF_INET6 : AF_INET;

	memset(dst, 0, 16);
	if (inet_pton(af, s, dst) != 1)
		fail_msg("test bug: '%s' is not an address", s);
	return af == AF_INET ? CT_AF_INET : CT_AF_INET6;
}

/* A flow that connected 2 ms after it started, with nothing wrong. */
static struct ct_flow make_flow(const char *src, uint16_t sport, const char *dst, uint16_t dport)
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

static struct ct_flow default_flow(void)
{
	return make_flow("10.0.0.1", 40000, "10.0.0.2", 80);
}

/* n SYN retransmits with the kernel's backoff: 1 s, 3 s, 7 s, ... after the start. */
static void set_retrans(struct ct_flow *f, unsigned n)
{
	f->syn_retrans = n;
	for (unsigned i = 0; i < n && i < CT_MAX_RETRANS; i++)
		f->retrans_us[i] = ((2u << i) - 1) * 1000000u;
}

static void end_established(struct ct_flow *f, uint64_t after_ns)
{
	f->state = CT_TCP_ESTABLISHED;
	f->ts_end = f->ts_start + after_ns;
}

static void end_closed(struct ct_flow *f, uint64_t after_ns, int err)
{
	f->state = CT_TCP_CLOSE;
	f->ts_end = f->ts_start + after_ns;
	f->err = err;
}

/* Two retransmits (at 1 s and 3 s), then ETIMEDOUT at 7 s. */
static struct ct_flow timeout_flow(void)
{
	struct ct_flow f = default_flow();

	set_retrans(&f, 2);
	end_closed(&f, 7 * SEC, ETIMEDOUT);
	return f;
}

/* Refused 200 us after the start, an RST received at 150 us. */
static struct ct_flow refused_flow(bool rst_rcvd)
{
	struct ct_flow f = default_flow();

	end_closed(&f, 200 * US, ECONNREFUSED);
	if (rst_rcvd) {
		f.flags |= CT_F_RST_RCVD;
		f.ts_rst = f.ts_start + 150 * US;
	}
	return f;
}

static struct ct_evidence make_evidence(uint8_t type, const char *src, uint16_t sport,
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
static struct ct_evidence syn_evidence(const struct ct_flow *f, uint8_t type, uint32_t reason,
				       uint64_t ts)
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
static struct ct_evidence synack_evidence(const struct ct_flow *f, uint8_t type, uint32_t reason,
					  uint64_t ts)
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
static struct ct_evidence listen_report(const char *addr, uint16_t port, uint32_t netns,
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
static const char *detail(const struct ct_result *r)
{
	static char buf[4][CT_DETAIL_MAX];
	static unsigned i;

	i = (i + 1) % 4;
	return ct_render_detail(r, buf[i], sizeof(buf[i]));
}

static void feed_at(struct fixture *fx, const void *rec, size_t len, uint64_t now)
{
	int err = corr_feed(fx->c, rec, len, now);

	CHECK(err == 0, "corr_feed of a well-formed record: expected 0, got %d", err);
}

static void feed_flow(struct fixture *fx, const struct ct_flow *f)
{
	feed_at(fx, f, sizeof(*f), f->ts_end);
}

static void feed_ev(struct fixture *fx, const struct ct_evidence *e)
{
	feed_at(fx, e, sizeof(*e), e->ts);
}

static const struct ct_result *the_verdict(struct fixture *fx)
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

static const struct ct_ev_item *find_ev(const struct ct_result *r, enum ct_ev_kind kind,
					unsigned nth)
{
	for (unsigned i = 0; i < r->nr_ev; i++)
		if (r->ev[i].kind == kind && nth-- == 0)
			return &r->ev[i];
	return NULL;
}

static unsigned count_ev(const struct ct_result *r, enum ct_ev_kind kind)
{
	unsigned n = 0;

	for (unsigned i = 0; i < r->nr_ev; i++)
		n += r->ev[i].kind == kind;
	return n;
}

static const struct ct_ev_item *must_find_ev(const struct ct_result *r, enum ct_ev_kind kind,
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

/* ---- OK and SLOW ---- */

static void test_fast_established_is_ok(void **state)
{
	struct fixture *fx = *state;
	struct ct_flow f = default_flow();
	const struct ct_result *r;

	feed_flow(fx, &f);
	r = the_verdict(fx);
	expect_verdict(r, CT_V_OK, CT_C_ESTABLISHED);
	CHECK(r->duration_ns == 2 * MS, "expected a 2 ms duration, got %llu ns",
	      (unsigned long long)r->duration_ns);
	expect_detail_has(r, "connected to 10.0.0.2:80 in 2.0 ms");
	expect_t_us(must_find_ev(r, CT_EV_CONNECT, 0), 0);
	expect_t_us(must_find_ev(r, CT_EV_ESTABLISHED, 0), 2000);
	CHECK(r->nr_ev == 2, "expected connect and established only, got %u items", r->nr_ev);
	CHECK(!memcmp(&r->flow, &f, sizeof(f)), "expected the result to carry the flow unchanged");
}

static void test_established_after_unanswered_syns_is_slow_no_synack(void **state)
{
	struct fixture *fx = *state;
	struct ct_flow f = default_flow();
	const struct ct_result *r;

	set_retrans(&f, 2);
	end_established(&f, 3 * SEC + 20 * MS);
	feed_flow(fx, &f);
	r = the_verdict(fx);
	expect_verdict(r, CT_V_SLOW, CT_C_NO_SYNACK);
	CHECK(r->inferred, "expected no_synack to be inferred");
	expect_detail_has(r, "2 SYNs to 10.0.0.2:80 went unanswered");
	expect_detail_has(r, "no drop seen on this host");
	expect_detail_has(r, "SYN #3, sent 3.00 s after the first, got through: connected after 3.02 s");
	/* a retransmit may be spurious: a round trip beyond the initial RTO */
	expect_detail_has(r, "spurious");
	expect_detail_has(r, "initial RTO");
	expect_t_us(must_find_ev(r, CT_EV_SYN_RETRANS, 0), 1000000);
	expect_t_us(must_find_ev(r, CT_EV_SYN_RETRANS, 1), 3000000);
	CHECK(must_find_ev(r, CT_EV_SYN_RETRANS, 1)->n == 2,
	      "expected the second retransmit item numbered 2");
}

static void test_slow_with_netfilter_drop_is_slow_netfilter_drop(void **state)
{
	struct fixture *fx = *state;
	struct ct_flow f = default_flow();
	struct ct_evidence e = syn_evidence(&f, CT_REC_DROP, DROP_NETFILTER, T0 + 50 * US);
	const struct ct_result *r;

	set_retrans(&f, 1);
	end_established(&f, 1 * SEC + 10 * MS);
	feed_ev(fx, &e);
	feed_flow(fx, &f);
	r = the_verdict(fx);
	expect_verdict(r, CT_V_SLOW, CT_C_NETFILTER_DROP);
	CHECK(!r->inferred, "expected a seen netfilter drop not to be inferred");
	expect_detail_has(r, "1 SYN to 10.0.0.2:80 went unanswered");
	expect_detail_has(r, "netfilter on this host dropped 1 of this flow's SYNs");
	expect_detail_lacks(r, "spurious");
	expect_reason(must_find_ev(r, CT_EV_DROP, 0), "NETFILTER_DROP");
}

static void test_established_slower_than_slow_ns_is_slow_handshake(void **state)
{
	struct fixture *fx = *state;
	struct ct_flow slow = default_flow(), edge = default_flow(), fast = default_flow();

	end_established(&slow, 1500 * MS);
	end_established(&edge, 1000 * MS);	/* slow_ns itself counts as slow */
	end_established(&fast, 999 * MS);
	feed_flow(fx, &slow);
	feed_flow(fx, &edge);
	feed_flow(fx, &fast);
	CHECK(fx->n == 3, "expected 3 verdicts, got %u", fx->n);
	expect_verdict(&fx->got[0], CT_V_SLOW, CT_C_SLOW_HANDSHAKE);
	expect_detail_has(&fx->got[0], "the SYN-ACK from 10.0.0.2:80 took 1.50 s");
	expect_verdict(&fx->got[1], CT_V_SLOW, CT_C_SLOW_HANDSHAKE);
	expect_verdict(&fx->got[2], CT_V_OK, CT_C_ESTABLISHED);
}

static void test_slow_ns_zero_disables_slow_handshake(void **state)
{
	struct fixture *fx = *state;
	struct ct_flow f = default_flow();

	fx->cfg.slow_ns = 0;
	reopen(fx);
	end_established(&f, 30 * SEC);
	feed_flow(fx, &f);
	expect_verdict(the_verdict(fx), CT_V_OK, CT_C_ESTABLISHED);
}

/* ---- TIMEOUT ---- */

static void test_timeout_with_netfilter_drops_of_the_syn_is_netfilter_drop(void **state)
{
	struct fixture *fx = *state;
	struct ct_flow f = timeout_flow();
	const uint64_t at[] = { 100 * US, 1 * SEC + 100 * US, 3 * SEC + 100 * US };
	const struct ct_result *r;

	for (unsigned i = 0; i < 3; i++) {
		struct ct_evidence e = syn_evidence(&f, CT_REC_DROP, DROP_NETFILTER, T0 + at[i]);

		feed_ev(fx, &e);
	}
	feed_flow(fx, &f);
	r = the_verdict(fx);
	expect_verdict(r, CT_V_TIMEOUT, CT_C_NETFILTER_DROP);
	expect_detail_has(r, "netfilter on this host dropped 3 of this flow's SYNs to 10.0.0.2:80");
	CHECK(count_ev(r, CT_EV_DROP) == 3, "expected 3 drop items, got %u",
	      count_ev(r, CT_EV_DROP));
	for (unsigned i = 0; i < 3; i++) {
		const struct ct_ev_item *it = must_find_ev(r, CT_EV_DROP, i);

		expect_reason(it, "NETFILTER_DROP");
		expect_t_us(it, at[i] / US);
		CHECK(!it->synack, "expected drop item %u marked as the SYN, not the SYN-ACK", i);
		CHECK(it->n == 1, "expected a matched drop to count 1, got %u", it->n);
	}
	CHECK(must_find_ev(r, CT_EV_CLOSED, 0)->err == ETIMEDOUT,
	      "expected the closed item to carry ETIMEDOUT");
	expect_held(fx, 0);	/* claimed evidence is consumed */
}

static void test_timeout_with_in_kernel_netfilter_drops_is_netfilter_drop(void **state)
{
	struct fixture *fx = *state;
	struct ct_flow f = timeout_flow();
	const struct ct_ev_item *it;
	const struct ct_result *r;

	f.drops = 3;
	f.drop_reason = DROP_NETFILTER;
	feed_flow(fx, &f);
	r = the_verdict(fx);
	expect_verdict(r, CT_V_TIMEOUT, CT_C_NETFILTER_DROP);
	expect_detail_has(r, "dropped 3 of this flow's SYNs");
	it = must_find_ev(r, CT_EV_DROP, 0);
	expect_reason(it, "NETFILTER_DROP");
	CHECK(it->n == 3, "expected the in-kernel drop item to count 3, got %u", it->n);
	CHECK(it->t_us == INT64_MIN, "expected an in-kernel count to have no time, got %lld",
	      (long long)it->t_us);
}

static void test_timeout_with_dropped_synacks_is_netfilter_drop_marked_synack(void **state)
{
	struct fixture *fx = *state;
	struct ct_flow f = timeout_flow();
	const struct ct_result *r;

	for (unsigned i = 0; i < 3; i++) {
		struct ct_evidence e = synack_evidence(&f, CT_REC_DROP, DROP_NETFILTER,
						       T0 + (2 * i + 1) * 500 * MS);

		feed_ev(fx, &e);
	}
	feed_flow(fx, &f);
	r = the_verdict(fx);
	expect_verdict(r, CT_V_TIMEOUT, CT_C_NETFILTER_DROP);
	expect_detail_has(r, "dropped 3 of this flow's SYN-ACKs");
	for (unsigned i = 0; i < 3; i++)
		CHECK(must_find_ev(r, CT_EV_DROP, i)->synack,
		      "expected drop item %u marked as the SYN-ACK", i);
}

static void test_timeout_without_evidence_is_no_synack(void **state)
{
	struct fixture *fx = *state;
	struct ct_flow f = timeout_flow();
	const struct ct_result *r;

	feed_flow(fx, &f);
	r = the_verdict(fx);
	expect_verdict(r, CT_V_TIMEOUT, CT_C_NO_SYNACK);
	expect_detail_has(r, "3 SYNs left for 10.0.0.2:80 and no SYN-ACK came back");
}

static void test_timeout_without_retransmit_or_evidence_is_unknown(void **state)
{
	struct fixture *fx = *state;
	struct ct_flow f = default_flow();

	end_closed(&f, 5 * SEC, ETIMEDOUT);
	feed_flow(fx, &f);
	expect_verdict(the_verdict(fx), CT_V_TIMEOUT, CT_C_UNKNOWN);
}

static void test_timeout_while_listener_queue_full_is_accept_queue_full(void **state)
{
	struct fixture *fx = *state;
	struct ct_flow f = timeout_flow();
	struct ct_evidence full = listen_report("10.0.0.2", 80, NETNS_A, T0 - 1 * SEC, 129, 128);
	const struct ct_ev_item *it;
	const struct ct_result *r;

	feed_ev(fx, &full);
	feed_flow(fx, &f);
	r = the_verdict(fx);
	expect_verdict(r, CT_V_TIMEOUT, CT_C_ACCEPT_QUEUE_FULL);
	expect_detail_has(r, "full accept queue from 1.00 s before the connect until the attempt ended "
			  "(129 queued, limit 128)");
	CHECK(r->inferred, "expected a listener matched by time alone to be inferred");
	it = must_find_ev(r, CT_EV_ACCEPT_QUEUE_FULL, 0);
	CHECK(it->queue == 129 && it->queue_max == 128,
	      "expected the listen_full item to say 129 of 128, got %u of %u",
	      it->queue, it->queue_max);
}

static void test_timeout_after_listener_queue_drained_is_not_accept_queue_full(void **state)
{
	struct fixture *fx = *state;
	struct ct_flow f = timeout_flow();
	struct ct_evidence full = listen_report("10.0.0.2", 80, NETNS_A, T0 - 10 * SEC, 129, 128);
	struct ct_evidence drained = listen_report("10.0.0.2", 80, NETNS_A, T0 - 5 * SEC, 3, 128);

	feed_ev(fx, &full);
	feed_ev(fx, &drained);
	feed_flow(fx, &f);
	expect_verdict(the_verdict(fx), CT_V_TIMEOUT, CT_C_NO_SYNACK);
}

static void test_full_listener_without_retransmit_is_not_blamed(void **state)
{
	struct fixture *fx = *state;
	struct ct_flow f = default_flow();
	struct ct_evidence full = listen_report("10.0.0.2", 80, NETNS_A, T0 - 1 * SEC, 129, 128);
	const struct ct_result *r;

	feed_ev(fx, &full);
	feed_flow(fx, &f);
	r = the_verdict(fx);
	expect_verdict(r, CT_V_OK, CT_C_ESTABLISHED);
	CHECK(!find_ev(r, CT_EV_ACCEPT_QUEUE_FULL, 0), "expected no listen_full item without retransmits");
}

static void test_timeout_with_listen_overflow_drops_is_accept_queue_full(void **state)
{
	struct fixture *fx = *state;
	struct ct_flow f = timeout_flow();
	const struct ct_result *r;

	/* the SYN and its two retransmits, each dropped on arrival */
	for (unsigned i = 0; i < 3; i++) {
		struct ct_evidence e = syn_evidence(&f, CT_REC_DROP, DROP_LISTEN_OVERFLOW,
						    T0 + ((1u << i) - 1) * SEC + 10 * US);

		feed_ev(fx, &e);
	}
	feed_flow(fx, &f);
	r = the_verdict(fx);
	expect_verdict(r, CT_V_TIMEOUT, CT_C_ACCEPT_QUEUE_FULL);
	expect_detail_has(r, "dropped 3 of this flow's SYNs on a full accept queue");
	CHECK(!r->inferred, "expected listen-overflow drops of the flow's SYNs not to be inferred");
	expect_reason(must_find_ev(r, CT_EV_DROP, 0), "TCP_LISTEN_OVERFLOW");
}

static void test_timeout_with_other_drop_reason_is_local_drop(void **state)
{
	struct fixture *fx = *state;
	struct ct_flow f = timeout_flow();
	struct ct_evidence e = syn_evidence(&f, CT_REC_DROP, DROP_OTHER, T0 + 10 * US);
	const struct ct_result *r;

	feed_ev(fx, &e);
	feed_flow(fx, &f);
	r = the_verdict(fx);
	expect_verdict(r, CT_V_TIMEOUT, CT_C_LOCAL_DROP);
	expect_detail_has(r, "reason OTHER_REASON");
}

static void test_ipv6_synack_drop_is_netfilter_drop(void **state)
{
	struct fixture *fx = *state;
	struct ct_flow f = make_flow("2001:db8::1", 40000, "2001:db8::2", 443);
	struct ct_evidence e;

	set_retrans(&f, 2);
	end_closed(&f, 7 * SEC, ETIMEDOUT);
	e = synack_evidence(&f, CT_REC_DROP, DROP_NETFILTER, T0 + 1 * SEC);
	feed_ev(fx, &e);
	feed_flow(fx, &f);
	expect_verdict(the_verdict(fx), CT_V_TIMEOUT, CT_C_NETFILTER_DROP);
	CHECK(must_find_ev(the_verdict(fx), CT_EV_DROP, 0)->synack,
	      "expected the IPv6 drop marked as the SYN-ACK");
}

/* ---- REFUSED ---- */

static void test_refused_with_rst_sent_no_socket_is_no_listener(void **state)
{
	struct fixture *fx = *state;
	struct ct_flow f = refused_flow(true);
	struct ct_evidence e = syn_evidence(&f, CT_REC_RST_SENT, RST_NO_SOCKET, T0 + 100 * US);
	const struct ct_result *r;

	feed_ev(fx, &e);
	feed_flow(fx, &f);
	r = the_verdict(fx);
	expect_verdict(r, CT_V_REFUSED, CT_C_NO_LISTENER);
	expect_detail_has(r, "nothing listens on 10.0.0.2:80");
	expect_reason(must_find_ev(r, CT_EV_RST_SENT, 0), "NO_SOCKET");
	expect_t_us(must_find_ev(r, CT_EV_RST_SENT, 0), 100);
	expect_t_us(must_find_ev(r, CT_EV_RST_RECEIVED, 0), 150);
}

static void test_refused_with_rst_sent_without_reason_is_no_listener(void **state)
{
	struct fixture *fx = *state;
	struct ct_flow f = refused_flow(true);
	struct ct_evidence e = syn_evidence(&f, CT_REC_RST_SENT, 0, T0 + 100 * US);
	const struct ct_result *r;

	e.has_reason = 0;	/* tcp_send_reset before 6.10 */
	e.reason = RST_BAD_ACK;	/* garbage that must be ignored */
	feed_ev(fx, &e);
	feed_flow(fx, &f);
	r = the_verdict(fx);
	expect_verdict(r, CT_V_REFUSED, CT_C_NO_LISTENER);
	expect_reason(must_find_ev(r, CT_EV_RST_SENT, 0), NULL);
}

static void test_refused_with_rst_sent_other_reason_is_rst_received(void **state)
{
	struct fixture *fx = *state;
	struct ct_flow f = refused_flow(true);
	struct ct_evidence e = syn_evidence(&f, CT_REC_RST_SENT, RST_BAD_ACK, T0 + 100 * US);
	const struct ct_result *r;

	feed_ev(fx, &e);
	feed_flow(fx, &f);
	r = the_verdict(fx);
	expect_verdict(r, CT_V_REFUSED, CT_C_RST_RECEIVED);
	expect_detail_has(r, "reason TCP_INVALID_ACK_SEQUENCE");
}

static void test_refused_with_only_no_socket_drop_is_no_listener(void **state)
{
	struct fixture *fx = *state;

	/* with and without the RST received: the NO_SOCKET drop decides */
	for (int rst = 0; rst <= 1; rst++) {
		struct ct_flow f = refused_flow(rst);
		struct ct_evidence e = syn_evidence(&f, CT_REC_DROP, DROP_NO_SOCKET, T0 + 100 * US);

		fx->n = 0;
		feed_ev(fx, &e);
		feed_flow(fx, &f);
		expect_verdict(the_verdict(fx), CT_V_REFUSED, CT_C_NO_LISTENER);
		expect_detail_has(the_verdict(fx), "dropped the SYN with reason NO_SOCKET");
	}
}

/* A lost record may have been the local RST's: the absence proves nothing. */
static void test_lossy_refused_without_local_rst_is_unknown(void **state)
{
	struct fixture *fx = *state;
	struct ct_flow f = refused_flow(true);
	const struct ct_result *r;

	f.flags |= CT_F_LOSSY;
	feed_flow(fx, &f);
	r = the_verdict(fx);
	expect_verdict(r, CT_V_REFUSED, CT_C_UNKNOWN);
	expect_detail_has(r, "kernel lost records while it ran");
}

/* Positive evidence stands even when records were lost. */
static void test_lossy_refused_with_local_rst_is_still_no_listener(void **state)
{
	struct fixture *fx = *state;
	struct ct_flow f = refused_flow(true);
	struct ct_evidence e = syn_evidence(&f, CT_REC_RST_SENT, RST_NO_SOCKET, T0 + 100 * US);
	const struct ct_result *r;

	f.flags |= CT_F_LOSSY;
	feed_ev(fx, &e);
	feed_flow(fx, &f);
	r = the_verdict(fx);
	expect_verdict(r, CT_V_REFUSED, CT_C_NO_LISTENER);
}

static void test_refused_with_only_rst_received_is_rst_received(void **state)
{
	struct fixture *fx = *state;
	struct ct_flow f = refused_flow(true);
	const struct ct_result *r;

	feed_flow(fx, &f);
	r = the_verdict(fx);
	expect_verdict(r, CT_V_REFUSED, CT_C_RST_RECEIVED);
	expect_detail_has(r, "an RST came back from 10.0.0.2:80");
}

static void test_refused_without_any_rst_is_icmp_unreachable(void **state)
{
	struct fixture *fx = *state;
	struct ct_flow f = refused_flow(false);
	const struct ct_result *r;

	feed_flow(fx, &f);
	r = the_verdict(fx);
	expect_verdict(r, CT_V_REFUSED, CT_C_ICMP_UNREACHABLE);
	expect_detail_has(r, "ICMP port unreachable");
}

static void test_error_report_alone_decides_like_err(void **state)
{
	struct fixture *fx = *state;
	struct ct_flow f = refused_flow(true);
	const struct ct_result *r;

	f.err = 0;
	f.err_report = ECONNREFUSED;
	f.ts_err = f.ts_start + 160 * US;
	feed_flow(fx, &f);
	r = the_verdict(fx);
	expect_verdict(r, CT_V_REFUSED, CT_C_RST_RECEIVED);
	CHECK(must_find_ev(r, CT_EV_ERROR, 0)->err == ECONNREFUSED,
	      "expected the socket_error item to carry ECONNREFUSED");
	expect_t_us(must_find_ev(r, CT_EV_ERROR, 0), 160);
}

/* ---- UNREACHABLE, ABANDONED, PENDING ---- */

static void test_connect_error_unreachable_is_no_route(void **state)
{
	struct fixture *fx = *state;
	static const struct { int err; const char *name; } cases[] = {
		{ EHOSTUNREACH, "EHOSTUNREACH" },
		{ ENETUNREACH, "ENETUNREACH" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ct_flow f = default_flow();
		const struct ct_result *r;

		f.sport = 0;	/* no port was bound: no SYN left */
		f.flags = CT_F_CONNECT_ERR;
		end_closed(&f, 0, cases[i].err);
		fx->n = 0;
		feed_flow(fx, &f);
		r = the_verdict(fx);
		expect_verdict(r, CT_V_UNREACHABLE, CT_C_NO_ROUTE);
		expect_detail_has(r, cases[i].name);
		expect_detail_has(r, "no SYN was sent");
		CHECK(r->nr_ev == 1 && r->ev[0].kind == CT_EV_CONNECT_ERROR &&
		      r->ev[0].err == cases[i].err,
		      "expected a single connect_error item with %s, got %u items",
		      cases[i].name, r->nr_ev);
	}
}

static void test_connect_error_eaddrnotavail_is_local_error(void **state)
{
	struct fixture *fx = *state;
	struct ct_flow f = default_flow();

	f.sport = 0;
	f.flags = CT_F_CONNECT_ERR;
	end_closed(&f, 0, EADDRNOTAVAIL);
	feed_flow(fx, &f);
	expect_verdict(the_verdict(fx), CT_V_UNREACHABLE, CT_C_LOCAL_ERROR);
	expect_detail_has(the_verdict(fx), "ip_local_port_range");
}

static void test_ehostunreach_after_syns_is_icmp_unreachable(void **state)
{
	struct fixture *fx = *state;
	struct ct_flow f = default_flow();
	const struct ct_result *r;

	set_retrans(&f, 2);
	end_closed(&f, 3 * SEC + 50 * MS, EHOSTUNREACH);
	feed_flow(fx, &f);
	r = the_verdict(fx);
	expect_verdict(r, CT_V_UNREACHABLE, CT_C_ICMP_UNREACHABLE);
	expect_detail_has(r, "EHOSTUNREACH after 3 SYNs");
}

static void test_closed_without_error_is_abandoned_app_closed(void **state)
{
	struct fixture *fx = *state;
	struct ct_flow f = default_flow();
	const struct ct_result *r;

	set_retrans(&f, 1);
	end_closed(&f, 2 * SEC, 0);
	feed_flow(fx, &f);
	r = the_verdict(fx);
	expect_verdict(r, CT_V_ABANDONED, CT_C_APP_CLOSED);
	expect_detail_has(r, "closed the socket after 2.00 s");
	expect_detail_has(r, "(1 SYN retransmit)");
}

static void test_abandoned_while_netfilter_dropped_says_so(void **state)
{
	struct fixture *fx = *state;
	struct ct_flow f = default_flow();
	struct ct_evidence e = syn_evidence(&f, CT_REC_DROP, DROP_NETFILTER, T0 + 10 * US);

	end_closed(&f, 500 * MS, 0);
	feed_ev(fx, &e);
	feed_flow(fx, &f);
	expect_verdict(the_verdict(fx), CT_V_ABANDONED, CT_C_APP_CLOSED);
	expect_detail_has(the_verdict(fx), "dropped by netfilter");
}

static void test_pending_flow_is_pending(void **state)
{
	struct fixture *fx = *state;
	struct ct_flow young = default_flow(), old = default_flow();

	young.flags = old.flags = CT_F_PENDING;
	young.state = old.state = CT_TCP_SYN_SENT;
	young.ts_end = T0 + 300 * MS;
	set_retrans(&old, 2);
	old.ts_end = T0 + 5 * SEC;
	feed_flow(fx, &young);
	feed_flow(fx, &old);
	CHECK(fx->n == 2, "expected 2 verdicts, got %u", fx->n);
	expect_verdict(&fx->got[0], CT_V_PENDING, CT_C_UNKNOWN);
	expect_detail_has(&fx->got[0], "still connecting to 10.0.0.2:80 after 300.0 ms");
	expect_verdict(&fx->got[1], CT_V_PENDING, CT_C_NO_SYNACK);
	for (unsigned i = 0; i < 2; i++)
		CHECK(!find_ev(&fx->got[i], CT_EV_CLOSED, 0) &&
		      !find_ev(&fx->got[i], CT_EV_ESTABLISHED, 0),
		      "expected no end event for a pending flow");
}

static void test_pending_flow_is_not_held(void **state)
{
	struct fixture *fx = *state;
	struct ct_flow f = default_flow();

	fx->cfg.hold_ns = 5 * SEC;
	reopen(fx);
	f.flags = CT_F_PENDING;
	f.state = CT_TCP_SYN_SENT;
	feed_flow(fx, &f);
	expect_verdict(the_verdict(fx), CT_V_PENDING, CT_C_UNKNOWN);
}

/* ---- flows without their history ---- */

static void test_flow_without_history_gets_verdict_with_unknown_times(void **state)
{
	struct fixture *fx = *state;
	static const struct { uint8_t flag; const char *says; } cases[] = {
		{ CT_F_EVICTED, "[flow-table entry evicted: owner and SYN history unknown]" },
		{ CT_F_UNTRACKED, "[began before conntrace started: owner and SYN history unknown]" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ct_flow f = timeout_flow();
		struct ct_evidence e = syn_evidence(&f, CT_REC_DROP, DROP_NETFILTER, T0 + 1 * SEC);
		const struct ct_result *r;

		f.flags = cases[i].flag;
		f.ts_start = 0;	/* unknown */
		f.pid = f.tid = 0;
		memset(f.comm, 0, sizeof(f.comm));
		fx->n = 0;
		feed_ev(fx, &e);
		feed_flow(fx, &f);
		r = the_verdict(fx);
		expect_verdict(r, CT_V_TIMEOUT, CT_C_NETFILTER_DROP);
		expect_detail_has(r, cases[i].says);
		CHECK(r->duration_ns == 0, "expected an unknown duration (0), got %llu",
		      (unsigned long long)r->duration_ns);
		CHECK(!find_ev(r, CT_EV_CONNECT, 0), "expected no connect item: its time is unknown");
		CHECK(count_ev(r, CT_EV_SYN_RETRANS) == 2 && count_ev(r, CT_EV_DROP) == 1 &&
		      count_ev(r, CT_EV_CLOSED) == 1,
		      "expected 2 retransmits, 1 drop, 1 closed; got %u, %u, %u",
		      count_ev(r, CT_EV_SYN_RETRANS), count_ev(r, CT_EV_DROP),
		      count_ev(r, CT_EV_CLOSED));
		for (unsigned k = 0; k < r->nr_ev; k++)
			CHECK(r->ev[k].t_us == INT64_MIN, "expected item %u (%s) without a time, got %lld",
			      k, ct_ev_kind_name(r->ev[k].kind), (long long)r->ev[k].t_us);
		CHECK(corr_stats(fx->c)->evicted_flows == i + 1,
		      "expected evicted_flows %zu, got %llu", i + 1,
		      (unsigned long long)corr_stats(fx->c)->evicted_flows);
	}
}

static void test_unknown_errno_is_cause_unknown(void **state)
{
	struct fixture *fx = *state;
	static const int errs[] = { EPROTO, 12345 };

	for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++) {
		struct ct_flow f = default_flow();
		const struct ct_result *r;
		char num[32];

		end_closed(&f, 10 * MS, errs[i]);
		fx->n = 0;
		feed_flow(fx, &f);
		r = the_verdict(fx);
		CHECK(r->cause == CT_C_UNKNOWN, "errno %d: expected cause unknown, got %s",
		      errs[i], ct_cause_name(r->cause));
		CHECK(r->verdict != CT_V_OK && r->verdict != CT_V_ABANDONED,
		      "errno %d: expected a failure verdict, got %s", errs[i],
		      ct_verdict_name(r->verdict));
		snprintf(num, sizeof(num), "(errno %d)", errs[i]);
		expect_detail_has(r, num);
	}
}

/* ---- which evidence belongs to which flow ---- */

static void test_loopback_evidence_from_other_netns_does_not_match(void **state)
{
	struct fixture *fx = *state;
	struct ct_flow f = make_flow("127.0.0.1", 40000, "127.0.0.1", 8080);
	struct ct_evidence e;
	const struct ct_result *r;

	set_retrans(&f, 2);
	end_closed(&f, 7 * SEC, ETIMEDOUT);
	e = syn_evidence(&f, CT_REC_DROP, DROP_NETFILTER, T0 + 10 * US);
	e.netns = NETNS_B;	/* the same loopback tuple, another namespace */
	feed_ev(fx, &e);
	feed_flow(fx, &f);
	r = the_verdict(fx);
	/* nothing seen for this flow, and a SYN to this host itself is not lost beyond it */
	expect_verdict(r, CT_V_TIMEOUT, CT_C_UNKNOWN);
	expect_detail_has(r, "on this host, went unanswered");
	CHECK(!find_ev(r, CT_EV_DROP, 0), "expected no drop item from another netns's loopback");
	expect_held(fx, 1);
}

static void test_evidence_without_netns_matches_any_netns(void **state)
{
	struct fixture *fx = *state;
	struct ct_flow f = make_flow("127.0.0.1", 40000, "127.0.0.1", 8080);
	struct ct_evidence e;

	set_retrans(&f, 2);
	end_closed(&f, 7 * SEC, ETIMEDOUT);
	e = syn_evidence(&f, CT_REC_DROP, DROP_NETFILTER, T0 + 10 * US);
	e.netns = 0;	/* the kernel could not tell */
	feed_ev(fx, &e);
	feed_flow(fx, &f);
	expect_verdict(the_verdict(fx), CT_V_TIMEOUT, CT_C_NETFILTER_DROP);
}

static void test_non_loopback_evidence_from_other_netns_matches(void **state)
{
	struct fixture *fx = *state;
	struct ct_flow f = timeout_flow();
	struct ct_evidence e = syn_evidence(&f, CT_REC_DROP, DROP_NETFILTER, T0 + 10 * US);

	e.netns = NETNS_B;	/* e.g. the host forwarding a container's SYN */
	feed_ev(fx, &e);
	feed_flow(fx, &f);
	expect_verdict(the_verdict(fx), CT_V_TIMEOUT, CT_C_NETFILTER_DROP);
}

static void test_evidence_older_than_flow_start_does_not_match(void **state)
{
	struct fixture *fx = *state;
	struct ct_flow f = timeout_flow();
	/* a drop of an earlier attempt that used the same source port */
	struct ct_evidence e = syn_evidence(&f, CT_REC_DROP, DROP_NETFILTER, T0 - 30 * SEC);

	feed_ev(fx, &e);
	feed_flow(fx, &f);
	expect_verdict(the_verdict(fx), CT_V_TIMEOUT, CT_C_NO_SYNACK);
	expect_held(fx, 1);
}

static void test_evidence_for_another_tuple_does_not_match(void **state)
{
	struct fixture *fx = *state;
	struct ct_flow f = timeout_flow();
	struct ct_evidence other_port = syn_evidence(&f, CT_REC_DROP, DROP_NETFILTER, T0 + 10 * US);
	struct ct_evidence other_addr = other_port;

	other_port.sport = 40001;
	other_addr.daddr[3] = 3;
	feed_ev(fx, &other_port);
	feed_ev(fx, &other_addr);
	feed_flow(fx, &f);
	expect_verdict(the_verdict(fx), CT_V_TIMEOUT, CT_C_NO_SYNACK);
	expect_held(fx, 2);
}

/* ---- out of order: late evidence and the hold ---- */

static void test_late_evidence_is_matched_within_hold(void **state)
{
	struct fixture *fx = *state;
	struct ct_flow f = timeout_flow();
	struct ct_evidence e = synack_evidence(&f, CT_REC_DROP, DROP_NETFILTER, T0 + 3 * SEC);

	fx->cfg.hold_ns = 2 * SEC;
	reopen(fx);
	feed_flow(fx, &f);
	CHECK(fx->n == 0, "expected the flow held, got %u verdicts", fx->n);
	expect_held(fx, 1);
	/* the drop was recorded during the flow but arrives after it */
	feed_at(fx, &e, sizeof(e), f.ts_end + 100 * MS);
	corr_tick(fx->c, f.ts_end + 1 * SEC);
	CHECK(fx->n == 0, "expected no verdict before the hold passed, got %u", fx->n);
	corr_tick(fx->c, f.ts_end + 2 * SEC);
	expect_verdict(the_verdict(fx), CT_V_TIMEOUT, CT_C_NETFILTER_DROP);
	expect_held(fx, 0);
}

static void test_late_evidence_without_hold_is_not_matched_and_expires(void **state)
{
	struct fixture *fx = *state;
	struct ct_flow f = timeout_flow();
	struct ct_evidence e = synack_evidence(&f, CT_REC_DROP, DROP_NETFILTER, T0 + 3 * SEC);

	fx->cfg.evidence_ttl_ns = 10 * SEC;
	reopen(fx);
	feed_flow(fx, &f);
	expect_verdict(the_verdict(fx), CT_V_TIMEOUT, CT_C_NO_SYNACK);
	feed_at(fx, &e, sizeof(e), f.ts_end + 100 * MS);
	expect_held(fx, 1);
	corr_tick(fx->c, e.ts + 10 * SEC);
	expect_held(fx, 1);
	corr_tick(fx->c, e.ts + 10 * SEC + 1);
	expect_held(fx, 0);
	CHECK(corr_stats(fx->c)->evidence_expired == 1, "expected evidence_expired 1, got %llu",
	      (unsigned long long)corr_stats(fx->c)->evidence_expired);
	CHECK(fx->n == 1, "expected no second verdict, got %u", fx->n);
}

static void test_flush_emits_every_held_flow(void **state)
{
	struct fixture *fx = *state;
	struct ct_flow a = default_flow(), b = timeout_flow();

	fx->cfg.hold_ns = 60 * SEC;
	reopen(fx);
	b.sport = 40001;
	feed_flow(fx, &a);
	feed_flow(fx, &b);
	CHECK(fx->n == 0, "expected both flows held, got %u verdicts", fx->n);
	corr_flush(fx->c);
	CHECK(fx->n == 2, "expected 2 verdicts after the flush, got %u", fx->n);
	expect_verdict(&fx->got[0], CT_V_OK, CT_C_ESTABLISHED);
	expect_verdict(&fx->got[1], CT_V_TIMEOUT, CT_C_NO_SYNACK);
	expect_held(fx, 0);
}

/* ---- bounds ---- */

static void test_evidence_beyond_max_is_dropped_and_counted(void **state)
{
	struct fixture *fx = *state;
	struct ct_flow oldest = timeout_flow(), newest = timeout_flow();

	fx->cfg.max_evidence = 8;
	reopen(fx);
	for (unsigned i = 0; i < 20; i++) {
		struct ct_flow f = timeout_flow();
		struct ct_evidence e;

		f.sport = 41000 + i;
		e = syn_evidence(&f, CT_REC_DROP, DROP_NETFILTER, T0 + (i + 1) * MS);
		feed_ev(fx, &e);
		CHECK(corr_held(fx->c) <= 8, "expected at most 8 entries held, got %zu",
		      corr_held(fx->c));
	}
	CHECK(corr_stats(fx->c)->evidence_dropped == 12, "expected evidence_dropped 12, got %llu",
	      (unsigned long long)corr_stats(fx->c)->evidence_dropped);
	/* the oldest were pushed out, the newest kept */
	oldest.sport = 41000;
	newest.sport = 41019;
	feed_flow(fx, &oldest);
	feed_flow(fx, &newest);
	CHECK(fx->n == 2, "expected 2 verdicts, got %u", fx->n);
	expect_verdict(&fx->got[0], CT_V_TIMEOUT, CT_C_NO_SYNACK);
	expect_verdict(&fx->got[1], CT_V_TIMEOUT, CT_C_NETFILTER_DROP);
}

static void test_many_listeners_stay_bounded(void **state)
{
	struct fixture *fx = *state;

	for (unsigned i = 0; i < 5000; i++) {
		struct ct_evidence e = listen_report("10.0.0.2", 1 + i, NETNS_A, T0 + i * US,
						     129, 128);

		feed_ev(fx, &e);
	}
	CHECK(corr_held(fx->c) <= 1024, "expected the listener table bounded, got %zu entries",
	      corr_held(fx->c));
}

/* ---- malformed input ---- */

static void test_malformed_records_are_rejected_and_counted(void **state)
{
	struct fixture *fx = *state;
	struct ct_flow good_flow = default_flow();
	struct ct_evidence good_ev = syn_evidence(&good_flow, CT_REC_DROP, DROP_NETFILTER, T0);
	struct {
		const char *what;
		uint8_t type;		/* for the evidence-shaped cases */
		int flow;		/* 1: flow-shaped, 0: evidence-shaped */
		uint8_t family;
		size_t len;
	} cases[] = {
		{ "zero length", CT_REC_FLOW, 1, CT_AF_INET, 0 },
		{ "flow one byte short", CT_REC_FLOW, 1, CT_AF_INET, sizeof(struct ct_flow) - 1 },
		{ "flow of just the type", CT_REC_FLOW, 1, CT_AF_INET, 1 },
		{ "drop one byte short", CT_REC_DROP, 0, CT_AF_INET, sizeof(struct ct_evidence) - 1 },
		{ "rst one byte short", CT_REC_RST_SENT, 0, CT_AF_INET, sizeof(struct ct_evidence) - 1 },
		{ "listen_full short", CT_REC_LISTEN_FULL, 0, CT_AF_INET, 8 },
		{ "type 0", 0, 0, CT_AF_INET, sizeof(struct ct_evidence) },
		{ "type CT_REC_MAX", CT_REC_MAX, 0, CT_AF_INET, sizeof(struct ct_evidence) },
		{ "type 255", 255, 1, CT_AF_INET, sizeof(struct ct_flow) },
		{ "flow family 0", CT_REC_FLOW, 1, 0, sizeof(struct ct_flow) },
		{ "flow family AF_UNIX", CT_REC_FLOW, 1, 1, sizeof(struct ct_flow) },
		{ "drop family 0", CT_REC_DROP, 0, 0, sizeof(struct ct_evidence) },
		{ "rst family 7", CT_REC_RST_SENT, 0, 7, sizeof(struct ct_evidence) },
		{ "listen_full family 255", CT_REC_LISTEN_FULL, 0, 255, sizeof(struct ct_evidence) },
	};
	const size_t nr = sizeof(cases) / sizeof(cases[0]);

	for (size_t i = 0; i < nr; i++) {
		/* exactly len bytes on the heap: ASan sees any read past them */
		unsigned char *buf = malloc(cases[i].len ? cases[i].len : 1);
		unsigned char full[sizeof(struct ct_flow) + sizeof(struct ct_evidence)];
		int err;

		assert_non_null(buf);
		if (cases[i].flow) {
			struct ct_flow f = good_flow;

			f.type = cases[i].type;
			f.family = cases[i].family;
			memcpy(full, &f, sizeof(f));
		} else {
			struct ct_evidence e = good_ev;

			e.type = cases[i].type;
			e.family = cases[i].family;
			memcpy(full, &e, sizeof(e));
		}
		memcpy(buf, full, cases[i].len);
		err = corr_feed(fx->c, buf, cases[i].len, T0);
		free(buf);
		CHECK(err == -EINVAL, "%s: expected -EINVAL, got %d", cases[i].what, err);
		CHECK(corr_stats(fx->c)->malformed == i + 1, "%s: expected malformed %zu, got %llu",
		      cases[i].what, i + 1, (unsigned long long)corr_stats(fx->c)->malformed);
	}
	CHECK(corr_stats(fx->c)->records == nr, "expected %zu records counted, got %llu", nr,
	      (unsigned long long)corr_stats(fx->c)->records);
	CHECK(fx->n == 0, "expected no verdict from malformed records, got %u", fx->n);
	expect_held(fx, 0);
}

/* ---- the result ---- */

static void test_evidence_list_is_sorted_by_time(void **state)
{
	struct fixture *fx = *state;
	struct ct_flow f = timeout_flow();
	const uint64_t at[] = { 3500 * MS, 1500 * MS, 500 * MS };	/* fed newest first */
	const struct ct_result *r;
	bool unknown_seen = false;

	f.drops = 1;	/* an in-kernel count: no time, so last */
	f.drop_reason = DROP_NETFILTER;
	for (unsigned i = 0; i < 3; i++) {
		struct ct_evidence e = synack_evidence(&f, CT_REC_DROP, DROP_NETFILTER, T0 + at[i]);

		feed_ev(fx, &e);
	}
	feed_flow(fx, &f);
	r = the_verdict(fx);
	CHECK(r->nr_ev == 8, "expected connect, 2 retransmits, 4 drops and closed; got %u items",
	      r->nr_ev);
	CHECK(r->ev[0].kind == CT_EV_CONNECT, "expected connect first, got %s",
	      ct_ev_kind_name(r->ev[0].kind));
	for (unsigned i = 1; i < r->nr_ev; i++) {
		if (r->ev[i].t_us == INT64_MIN) {
			unknown_seen = true;
			continue;
		}
		CHECK(!unknown_seen, "expected items without a time after all timed ones (item %u)", i);
		CHECK(r->ev[i].t_us >= r->ev[i - 1].t_us,
		      "expected times in order: item %u (%s) at %lld after item %u at %lld", i,
		      ct_ev_kind_name(r->ev[i].kind), (long long)r->ev[i].t_us, i - 1,
		      (long long)r->ev[i - 1].t_us);
	}
	CHECK(r->ev[r->nr_ev - 1].kind == CT_EV_DROP && r->ev[r->nr_ev - 1].t_us == INT64_MIN,
	      "expected the in-kernel drop count last");
	CHECK(r->ev[r->nr_ev - 2].kind == CT_EV_CLOSED, "expected closed last among timed items");
}

static void test_stats_count_records_and_verdicts(void **state)
{
	struct fixture *fx = *state;
	struct ct_flow flows[7];
	const struct corr_stats *s;
	struct ct_evidence e;
	unsigned char junk = 0;

	for (int i = 0; i < 7; i++) {
		flows[i] = default_flow();
		flows[i].sport = 42000 + i;
	}
	/* flows[0]: OK */
	set_retrans(&flows[1], 1);
	end_established(&flows[1], 1100 * MS);
	end_closed(&flows[2], 7 * SEC, ETIMEDOUT);
	flows[3] = refused_flow(true);
	flows[4].flags = CT_F_CONNECT_ERR;
	flows[4].sport = 0;
	end_closed(&flows[4], 0, ENETUNREACH);
	end_closed(&flows[5], 1 * SEC, 0);
	flows[6].flags = CT_F_PENDING;
	flows[6].state = CT_TCP_SYN_SENT;
	e = syn_evidence(&flows[2], CT_REC_DROP, DROP_NETFILTER, T0 + 1 * MS);
	feed_ev(fx, &e);
	for (int i = 0; i < 7; i++)
		feed_flow(fx, &flows[i]);
	CHECK(corr_feed(fx->c, &junk, 1, T0) == -EINVAL, "expected a 1-byte record refused");

	s = corr_stats(fx->c);
	CHECK(fx->n == 7, "expected 7 verdicts, got %u", fx->n);
	CHECK(s->records == 9, "expected 9 records, got %llu", (unsigned long long)s->records);
	CHECK(s->malformed == 1, "expected 1 malformed, got %llu", (unsigned long long)s->malformed);
	for (int v = 0; v < CT_V_MAX; v++)
		CHECK(s->verdicts[v] == 1, "expected one %s verdict, got %llu", ct_verdict_name(v),
		      (unsigned long long)s->verdicts[v]);
	CHECK(s->evidence_expired == 0 && s->evidence_dropped == 0 && s->evicted_flows == 0,
	      "expected no evidence expired or dropped and no evicted flows");
}

static void test_names_and_parse(void **state)
{
	(void)state;
	for (int v = 0; v < CT_V_MAX; v++) {
		char upper[32];

		snprintf(upper, sizeof(upper), "%s", ct_verdict_label(v));
		CHECK(ct_verdict_parse(ct_verdict_name(v)) == v, "expected '%s' to parse to %d",
		      ct_verdict_name(v), v);
		CHECK(ct_verdict_parse(upper) == v, "expected '%s' to parse to %d", upper, v);
	}
	CHECK(ct_verdict_parse("") == -1 && ct_verdict_parse("okay") == -1,
	      "expected unknown verdict names to parse to -1");
	for (int c = 0; c < CT_C_MAX; c++)
		CHECK(strcmp(ct_cause_name(c), "?"), "expected cause %d to have a name", c);
	for (int k = 0; k < CT_EV_MAX; k++)
		CHECK(strcmp(ct_ev_kind_name(k), "?"), "expected event kind %d to have a name", k);
	CHECK(!strcmp(ct_verdict_name(CT_V_MAX), "?") && !strcmp(ct_cause_name(CT_C_MAX), "?"),
	      "expected out-of-range names to be '?'");
	CHECK(!strcmp(ct_errno_name(ETIMEDOUT), "ETIMEDOUT") && !ct_errno_name(0) &&
	      !ct_errno_name(12345), "expected errno names for known values only");
}

/* ---- regressions: bugs found and fixed ---- */

/*
 * More matched evidence than CT_MAX_EV: add_ev() drops the item, but its
 * callers then write the new item's fields into the last kept item, and the
 * end event (closed) is lost.
 */
static void test_evidence_overflow_corrupts_items_and_loses_end(void **state)
{
	struct fixture *fx = *state;
	struct ct_flow f = timeout_flow();
	/* claimed newest first: the RST (fed first) is claimed after the list is full */
	struct ct_evidence rst = syn_evidence(&f, CT_REC_RST_SENT, RST_NO_SOCKET, T0 + 10 * US);
	const struct ct_result *r;

	feed_ev(fx, &rst);
	for (unsigned i = 0; i < 30; i++) {
		struct ct_evidence e = synack_evidence(&f, CT_REC_DROP, DROP_NETFILTER,
						       T0 + (i + 1) * 100 * MS);

		feed_ev(fx, &e);
	}
	feed_flow(fx, &f);
	r = the_verdict(fx);
	CHECK(r->nr_ev <= CT_MAX_EV, "expected at most %d items, got %u", CT_MAX_EV, r->nr_ev);
	for (unsigned i = 0; i < r->nr_ev; i++)
		if (r->ev[i].kind == CT_EV_DROP)
			CHECK(r->ev[i].reason && !strcmp(r->ev[i].reason, "NETFILTER_DROP"),
			      "expected every drop item to keep its reason NETFILTER_DROP, item %u "
			      "says %s (another record's fields written over it)", i,
			      r->ev[i].reason ? r->ev[i].reason : "(none)");
	CHECK(count_ev(r, CT_EV_CLOSED) == 1,
	      "expected the closed item kept when evidence overflows, got %u",
	      count_ev(r, CT_EV_CLOSED));
}

/*
 * An AF_INET6 socket connecting to an IPv4-mapped address (Java, dual-stack
 * clients) sends IPv4 packets: the drop evidence is AF_INET with plain IPv4
 * addresses while the flow is AF_INET6 with ::ffff:a.b.c.d.
 */
static void test_v4_mapped_flow_matches_ipv4_drop(void **state)
{
	struct fixture *fx = *state;
	struct ct_flow f = make_flow("::ffff:10.0.0.1", 40000, "::ffff:10.0.0.2", 80);
	struct ct_evidence e = make_evidence(CT_REC_DROP, "10.0.0.1", 40000, "10.0.0.2", 80,
					     T0 + 10 * US);

	set_retrans(&f, 2);
	end_closed(&f, 7 * SEC, ETIMEDOUT);
	e.has_reason = 1;
	e.reason = DROP_NETFILTER;
	feed_ev(fx, &e);
	feed_flow(fx, &f);
	expect_verdict(the_verdict(fx), CT_V_TIMEOUT, CT_C_NETFILTER_DROP);
}

/*
 * A listener bound to [::] also accepts IPv4 (Go's net.Listen(":8080"),
 * nginx "listen [::]:80"): its report is AF_INET6 with address ::, and the
 * IPv4 flow to it must still find it.
 */
static void test_dual_stack_listener_full_matches_ipv4_flow(void **state)
{
	struct fixture *fx = *state;
	struct ct_flow f = make_flow("127.0.0.1", 40000, "127.0.0.1", 8080);
	struct ct_evidence full = listen_report("::", 8080, NETNS_A, T0 - 1 * SEC, 129, 128);

	set_retrans(&f, 2);
	end_closed(&f, 7 * SEC, ETIMEDOUT);
	feed_ev(fx, &full);
	feed_flow(fx, &f);
	expect_verdict(the_verdict(fx), CT_V_TIMEOUT, CT_C_ACCEPT_QUEUE_FULL);
}

/*
 * A full wildcard listener on port 80 of this host, in another netns, says
 * nothing about a remote web server on port 80 that does not answer.
 */
static void test_wildcard_listener_not_blamed_for_remote_destination(void **state)
{
	struct fixture *fx = *state;
	struct ct_flow f = make_flow("10.0.0.1", 40000, "93.184.216.34", 80);
	struct ct_evidence full = listen_report("0.0.0.0", 80, NETNS_B, T0 - 1 * SEC, 129, 128);
	const struct ct_result *r;

	set_retrans(&f, 2);
	end_closed(&f, 7 * SEC, ETIMEDOUT);
	feed_ev(fx, &full);
	feed_flow(fx, &f);
	r = the_verdict(fx);
	expect_verdict(r, CT_V_TIMEOUT, CT_C_NO_SYNACK);
}

/* fmt_dest() prints "::1" for every address is_loopback() accepts, ::ffff:127.x included. */
static void test_v4_mapped_loopback_destination_not_shown_as_ipv6_loopback(void **state)
{
	struct fixture *fx = *state;
	struct ct_flow f = make_flow("::ffff:127.0.0.1", 40000, "::ffff:127.0.0.1", 8080);
	const struct ct_result *r;

	end_closed(&f, 100 * US, ECONNREFUSED);
	feed_flow(fx, &f);
	r = the_verdict(fx);
	expect_verdict(r, CT_V_REFUSED, CT_C_ICMP_UNREACHABLE);
	expect_detail_lacks(r, "[::1]");
}

/* ---- step 2 alone: the classifier over combinations of facts ---- */

struct class_case {
	const char *what;
	struct ct_facts fx;
	enum ct_verdict verdict;
	enum ct_cause cause;
	bool inferred;
};

#define CLOSED(...)	{ .end = CT_END_CLOSED, __VA_ARGS__ }
#define ESTAB(...)	{ .end = CT_END_ESTABLISHED, __VA_ARGS__ }

static const struct class_case class_cases[] = {
	/* established */
	{ "fast", ESTAB(.syn_retrans = 0), CT_V_OK, CT_C_ESTABLISHED, false },
	{ "slow, no SYN lost", ESTAB(.slow = true), CT_V_SLOW, CT_C_SLOW_HANDSHAKE, false },
	{ "simultaneous open, slow and retransmitted", ESTAB(.simopen = true, .slow = true,
	  .syn_retrans = 2), CT_V_OK, CT_C_ESTABLISHED, false },
	{ "SLOW: netfilter", ESTAB(.syn_retrans = 1, .nf_drops = 1), CT_V_SLOW,
	  CT_C_NETFILTER_DROP, false },
	{ "SLOW: listen overflow drop", ESTAB(.syn_retrans = 1, .overflow_drops = 1), CT_V_SLOW,
	  CT_C_ACCEPT_QUEUE_FULL, false },
	{ "SLOW: full listener by time", ESTAB(.syn_retrans = 1, .queue_full = true), CT_V_SLOW,
	  CT_C_ACCEPT_QUEUE_FULL, true },
	{ "SLOW: other drop", ESTAB(.syn_retrans = 1, .other_drops = 2), CT_V_SLOW,
	  CT_C_LOCAL_DROP, false },
	{ "SLOW: nothing seen, remote", ESTAB(.syn_retrans = 1), CT_V_SLOW, CT_C_NO_SYNACK, true },
	{ "SLOW: nothing seen, local", ESTAB(.syn_retrans = 1, .dest_local = true), CT_V_SLOW,
	  CT_C_UNKNOWN, true },
	{ "SLOW: netfilter before a full listener", ESTAB(.syn_retrans = 2, .nf_drops = 1,
	  .queue_full = true), CT_V_SLOW, CT_C_NETFILTER_DROP, false },
	{ "SLOW: lossy, nothing seen", ESTAB(.syn_retrans = 1, .lossy = true), CT_V_SLOW,
	  CT_C_UNKNOWN, true },
	/* timeouts */
	{ "TIMEOUT: nothing seen", CLOSED(.err = ETIMEDOUT, .syn_retrans = 2), CT_V_TIMEOUT,
	  CT_C_NO_SYNACK, true },
	{ "TIMEOUT: full listener without retransmit", CLOSED(.err = ETIMEDOUT,
	  .queue_full = true), CT_V_TIMEOUT, CT_C_UNKNOWN, true },
	{ "TIMEOUT: lossy but netfilter seen", CLOSED(.err = ETIMEDOUT, .syn_retrans = 2,
	  .nf_drops = 3, .lossy = true), CT_V_TIMEOUT, CT_C_NETFILTER_DROP, false },
	/* refused */
	{ "RST NO_SOCKET", CLOSED(.err = ECONNREFUSED, .rst_sent = true, .rst_no_socket = true,
	  .rst_reason_known = true, .rst_received = true), CT_V_REFUSED, CT_C_NO_LISTENER, false },
	{ "RST without a reason (before 6.10)", CLOSED(.err = ECONNREFUSED, .rst_sent = true),
	  CT_V_REFUSED, CT_C_NO_LISTENER, true },
	{ "RST with another reason", CLOSED(.err = ECONNREFUSED, .rst_sent = true,
	  .rst_reason_known = true), CT_V_REFUSED, CT_C_RST_RECEIVED, false },
	{ "NO_SOCKET drop", CLOSED(.err = ECONNREFUSED, .no_socket_drop = true), CT_V_REFUSED,
	  CT_C_NO_LISTENER, false },
	{ "remote RST", CLOSED(.err = ECONNREFUSED, .rst_received = true), CT_V_REFUSED,
	  CT_C_RST_RECEIVED, false },
	{ "remote RST, lossy", CLOSED(.err = ECONNREFUSED, .rst_received = true, .lossy = true),
	  CT_V_REFUSED, CT_C_UNKNOWN, true },
	{ "no RST at all", CLOSED(.err = ECONNREFUSED), CT_V_REFUSED, CT_C_ICMP_UNREACHABLE, true },
	{ "no RST, ICMP sent here", CLOSED(.err = ECONNREFUSED, .icmp_sent = true), CT_V_REFUSED,
	  CT_C_ICMP_UNREACHABLE, false },
	{ "no RST, ICMP sent here, lossy", CLOSED(.err = ECONNREFUSED, .icmp_sent = true,
	  .lossy = true), CT_V_REFUSED, CT_C_ICMP_UNREACHABLE, false },
	{ "no RST, lossy", CLOSED(.err = ECONNREFUSED, .lossy = true), CT_V_REFUSED, CT_C_UNKNOWN,
	  true },
	/* closed without an error: the application, unless an ICMP error is on the socket */
	{ "app closed", CLOSED(.syn_retrans = 1), CT_V_ABANDONED, CT_C_APP_CLOSED, true },
	{ "soft ECONNREFUSED", CLOSED(.err_soft = ECONNREFUSED), CT_V_REFUSED,
	  CT_C_ICMP_UNREACHABLE, false },
	{ "soft EHOSTUNREACH", CLOSED(.err_soft = EHOSTUNREACH), CT_V_UNREACHABLE,
	  CT_C_ICMP_UNREACHABLE, false },
	{ "soft ENETUNREACH", CLOSED(.err_soft = ENETUNREACH), CT_V_UNREACHABLE,
	  CT_C_ICMP_UNREACHABLE, false },
	{ "soft EHOSTDOWN", CLOSED(.err_soft = EHOSTDOWN), CT_V_UNREACHABLE,
	  CT_C_ICMP_UNREACHABLE, false },
	{ "soft ENONET", CLOSED(.err_soft = ENONET), CT_V_UNREACHABLE, CT_C_ICMP_UNREACHABLE,
	  false },
	{ "soft EACCES (ICMPv6 prohibited)", CLOSED(.err_soft = EACCES), CT_V_UNREACHABLE,
	  CT_C_ICMP_UNREACHABLE, false },
	{ "soft EPROTO", CLOSED(.err_soft = EPROTO), CT_V_UNREACHABLE, CT_C_UNKNOWN, true },
	{ "hard error wins over soft", CLOSED(.err = ETIMEDOUT, .err_soft = EHOSTUNREACH,
	  .syn_retrans = 2), CT_V_TIMEOUT, CT_C_NO_SYNACK, true },
	/* unreachable */
	{ "EHOSTUNREACH after SYNs", CLOSED(.err = EHOSTUNREACH, .syn_retrans = 1),
	  CT_V_UNREACHABLE, CT_C_ICMP_UNREACHABLE, false },
	{ "ENETDOWN", CLOSED(.err = ENETDOWN), CT_V_UNREACHABLE, CT_C_ICMP_UNREACHABLE, true },
	{ "EPROTO", CLOSED(.err = EPROTO), CT_V_UNREACHABLE, CT_C_UNKNOWN, true },
	{ "connect: ENETUNREACH", { .end = CT_END_CONNECT_ERROR, .err = ENETUNREACH },
	  CT_V_UNREACHABLE, CT_C_NO_ROUTE, false },
	{ "connect: EADDRNOTAVAIL", { .end = CT_END_CONNECT_ERROR, .err = EADDRNOTAVAIL },
	  CT_V_UNREACHABLE, CT_C_LOCAL_ERROR, false },
	/* pending */
	{ "pending, young", { .end = CT_END_PENDING }, CT_V_PENDING, CT_C_UNKNOWN, true },
	{ "pending, netfilter", { .end = CT_END_PENDING, .syn_retrans = 1, .nf_drops = 1 },
	  CT_V_PENDING, CT_C_NETFILTER_DROP, false },
};

static void test_classify_combinations(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(class_cases) / sizeof(class_cases[0]); i++) {
		const struct class_case *k = &class_cases[i];
		struct ct_class got = ct_classify(&k->fx);

		CHECK(got.verdict == k->verdict && got.cause == k->cause &&
		      got.inferred == k->inferred,
		      "%s: expected %s/%s inferred %d, got %s/%s inferred %d", k->what,
		      ct_verdict_name(k->verdict), ct_cause_name(k->cause), k->inferred,
		      ct_verdict_name(got.verdict), ct_cause_name(got.cause), got.inferred);
	}
}

/* Every combination of the facts that decide among causes: never out of range. */
static void test_classify_every_flag_combination_is_sane(void **state)
{
	static const int errs[] = { 0, ETIMEDOUT, ECONNREFUSED, ECONNRESET, EHOSTUNREACH, EPROTO };
	static const int softs[] = { 0, ECONNREFUSED, EHOSTUNREACH, EPROTO };

	(void)state;
	for (unsigned end = CT_END_ESTABLISHED; end <= CT_END_PENDING; end++)
	for (unsigned e = 0; e < 6; e++)
	for (unsigned so = 0; so < 4; so++)
	for (unsigned bits = 0; bits < 1u << 11; bits++) {
		struct ct_facts fx = {
			.end = end, .err = errs[e], .err_soft = softs[so],
			.syn_retrans = bits & 1, .dest_local = bits & 2, .lossy = bits & 4,
			.simopen = bits & 8, .slow = bits & 16, .rst_received = bits & 32,
			.rst_sent = bits & 64, .rst_no_socket = bits & 128, .nf_drops = !!(bits & 256),
			.queue_full = bits & 512, .icmp_sent = bits & 1024,
		};
		struct ct_class k = ct_classify(&fx);

		CHECK((unsigned)k.verdict < CT_V_MAX && (unsigned)k.cause < CT_C_MAX,
		      "out of range for end %u err %d bits %#x", end, errs[e], bits);
		CHECK(k.cause != CT_C_UNKNOWN || k.inferred, "unknown must be inferred");
		CHECK(k.cause != CT_C_APP_CLOSED || !fx.err_soft,
		      "app_closed with an ICMP error on the socket (%d)", fx.err_soft);
		CHECK((end == CT_END_ESTABLISHED) == (k.verdict == CT_V_OK || k.verdict == CT_V_SLOW),
		      "only an established flow is OK or SLOW");
		CHECK(!fx.nf_drops || end == CT_END_CONNECT_ERROR || k.verdict == CT_V_REFUSED ||
		      k.verdict == CT_V_UNREACHABLE || k.verdict == CT_V_ABANDONED ||
		      k.cause == CT_C_NETFILTER_DROP || fx.simopen || !fx.syn_retrans,
		      "a netfilter drop of a retransmitted flow must be its cause (bits %#x)", bits);
	}
}

/* ---- ICMP errors on the socket and ICMP errors this host sent ---- */

#define ICMP_PORT_UNREACH	((3u << 8) | 3)
#define ICMP_HOST_UNREACH	((3u << 8) | 1)
#define ICMP_NET_UNREACH	((3u << 8) | 0)

/* A non-blocking client gave up while an ICMP error sat on its socket. */
static struct ct_flow soft_error_flow(int err_soft)
{
	struct ct_flow f = default_flow();

	set_retrans(&f, 1);
	end_closed(&f, 1500 * MS, 0);
	f.err_soft = err_soft;
	return f;
}

static void test_soft_icmp_errors_are_not_abandoned(void **state)
{
	struct fixture *fx = *state;
	static const struct {
		int err;
		uint32_t icmp;
		enum ct_verdict verdict;
		const char *name;
	} cases[] = {
		{ ECONNREFUSED, ICMP_PORT_UNREACH, CT_V_REFUSED, "ECONNREFUSED" },
		{ EHOSTUNREACH, ICMP_HOST_UNREACH, CT_V_UNREACHABLE, "EHOSTUNREACH" },
		{ ENETUNREACH, ICMP_NET_UNREACH, CT_V_UNREACHABLE, "ENETUNREACH" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (int sent = 0; sent <= 1; sent++) {
			struct ct_flow f = soft_error_flow(cases[i].err);
			struct ct_evidence e = syn_evidence(&f, CT_REC_ICMP_SENT, cases[i].icmp,
							    T0 + 200 * US);
			const struct ct_ev_item *it;
			const struct ct_result *r;

			fx->n = 0;
			if (sent)
				feed_ev(fx, &e);
			feed_flow(fx, &f);
			r = the_verdict(fx);
			expect_verdict(r, cases[i].verdict, CT_C_ICMP_UNREACHABLE);
			CHECK(!r->inferred, "%s: an ICMP error on the socket is observed",
			      cases[i].name);
			it = must_find_ev(r, CT_EV_ICMP_ERROR, 0);
			CHECK(it->err == cases[i].err && it->t_us == INT64_MIN,
			      "%s: expected an untimed icmp_error item with it", cases[i].name);
			if (sent) {
				it = must_find_ev(r, CT_EV_ICMP_SENT, 0);
				CHECK(it->icmp_type == 3 && it->icmp_code == (cases[i].icmp & 0xff) &&
				      !it->synack, "%s: expected icmp_sent 3/%u about the SYN",
				      cases[i].name, cases[i].icmp & 0xff);
				expect_t_us(it, 200);
				expect_detail_has(r, "this host sent an ICMP");
				expect_detail_has(r, "reject rule in this host's firewall");
				expect_detail_has(r, "nftables/iptables");
				expect_held(fx, 0);
			} else {
				CHECK(!find_ev(r, CT_EV_ICMP_SENT, 0), "no icmp_sent item expected");
				expect_detail_has(r, cases[i].name);
				expect_detail_has(r, "not seen sending it");
				expect_detail_lacks(r, "firewall");
			}
		}
	}
}

static void test_icmp_sent_names_port_unreachable(void **state)
{
	struct fixture *fx = *state;
	struct ct_flow f = refused_flow(false);
	struct ct_evidence e = syn_evidence(&f, CT_REC_ICMP_SENT, ICMP_PORT_UNREACH,
					    T0 + 100 * US);
	const struct ct_result *r;

	feed_ev(fx, &e);
	feed_flow(fx, &f);
	r = the_verdict(fx);
	expect_verdict(r, CT_V_REFUSED, CT_C_ICMP_UNREACHABLE);
	CHECK(!r->inferred, "expected an ICMP seen sent not to be inferred");
	expect_detail_has(r, "this host sent an ICMP port unreachable about the SYN to 10.0.0.2:80");
}

static void test_ipv6_icmp_sent_names_icmpv6(void **state)
{
	struct fixture *fx = *state;
	struct ct_flow f = make_flow("2001:db8::1", 40000, "2001:db8::2", 443);
	struct ct_evidence e;

	end_closed(&f, 300 * US, ECONNREFUSED);
	e = syn_evidence(&f, CT_REC_ICMP_SENT, (1u << 8) | 4, T0 + 100 * US);
	feed_ev(fx, &e);
	feed_flow(fx, &f);
	expect_verdict(the_verdict(fx), CT_V_REFUSED, CT_C_ICMP_UNREACHABLE);
	expect_detail_has(the_verdict(fx), "ICMPv6 port unreachable");
}

/* ---- dual stack: an IPv6 socket connected to ::ffff:a.b.c.d sends IPv4 ---- */

static struct ct_flow mapped_flow(void)
{
	return make_flow("::ffff:127.0.0.1", 40000, "::ffff:127.0.0.1", 8080);
}

static void test_v4_mapped_flow_matches_ipv4_rst_sent(void **state)
{
	struct fixture *fx = *state;
	struct ct_flow f = mapped_flow();
	struct ct_evidence e = make_evidence(CT_REC_RST_SENT, "127.0.0.1", 40000, "127.0.0.1",
					     8080, T0 + 50 * US);
	const struct ct_result *r;

	end_closed(&f, 100 * US, ECONNREFUSED);
	f.flags |= CT_F_RST_RCVD;
	f.ts_rst = T0 + 80 * US;
	e.has_reason = 1;
	e.reason = RST_NO_SOCKET;
	feed_ev(fx, &e);
	feed_flow(fx, &f);
	r = the_verdict(fx);
	expect_verdict(r, CT_V_REFUSED, CT_C_NO_LISTENER);
	CHECK(!r->inferred, "expected no_listener with NO_SOCKET not to be inferred");
	expect_held(fx, 0);
}

static void test_v4_mapped_flow_matches_ipv4_icmp_sent(void **state)
{
	struct fixture *fx = *state;
	struct ct_flow f = mapped_flow();
	struct ct_evidence e = make_evidence(CT_REC_ICMP_SENT, "127.0.0.1", 40000, "127.0.0.1",
					     8080, T0 + 50 * US);

	end_closed(&f, 2 * SEC, 0);
	f.err_soft = ECONNREFUSED;
	e.reason = ICMP_PORT_UNREACH;
	feed_ev(fx, &e);
	feed_flow(fx, &f);
	expect_verdict(the_verdict(fx), CT_V_REFUSED, CT_C_ICMP_UNREACHABLE);
	must_find_ev(the_verdict(fx), CT_EV_ICMP_SENT, 0);
	expect_detail_has(the_verdict(fx), "ICMP port unreachable");
}

/* A mapped flow whose source was not yet bound (::) is IPv4 all the same. */
static void test_v4_mapped_flow_with_unset_source_matches_ipv4_drop(void **state)
{
	struct fixture *fx = *state;
	struct ct_flow f = make_flow("::", 40000, "::ffff:10.0.0.2", 80);
	struct ct_evidence e = make_evidence(CT_REC_DROP, "0.0.0.0", 40000, "10.0.0.2", 80,
					     T0 + 10 * US);

	set_retrans(&f, 2);
	end_closed(&f, 7 * SEC, ETIMEDOUT);
	e.has_reason = 1;
	e.reason = DROP_NETFILTER;
	feed_ev(fx, &e);
	feed_flow(fx, &f);
	expect_verdict(the_verdict(fx), CT_V_TIMEOUT, CT_C_NETFILTER_DROP);
}

static void test_v4_mapped_flow_matches_ipv4_listener(void **state)
{
	struct fixture *fx = *state;
	struct ct_flow f = mapped_flow();
	struct ct_evidence full = listen_report("127.0.0.1", 8080, NETNS_A, T0 + 10 * MS, 5, 4);

	set_retrans(&f, 2);
	end_closed(&f, 7 * SEC, ETIMEDOUT);
	feed_ev(fx, &full);
	feed_flow(fx, &f);
	expect_verdict(the_verdict(fx), CT_V_TIMEOUT, CT_C_ACCEPT_QUEUE_FULL);
}

/* A listener bound to ::ffff:127.0.0.1 takes IPv4 only: an IPv4 flow finds it. */
static void test_ipv4_flow_matches_v4_mapped_listener(void **state)
{
	struct fixture *fx = *state;
	struct ct_flow f = make_flow("127.0.0.1", 40000, "127.0.0.1", 8080);
	struct ct_evidence full = listen_report("::ffff:127.0.0.1", 8080, NETNS_A, T0 + 10 * MS,
						5, 4);

	set_retrans(&f, 1);
	end_established(&f, 1100 * MS);
	feed_ev(fx, &full);
	feed_flow(fx, &f);
	expect_verdict(the_verdict(fx), CT_V_SLOW, CT_C_ACCEPT_QUEUE_FULL);
}

/* ---- SLOW: the cause is what lost the SYNs ---- */

static void test_slow_causes_name_what_lost_the_syns(void **state)
{
	struct fixture *fx = *state;
	static const struct { uint32_t reason; enum ct_cause cause; const char *says; } cases[] = {
		{ DROP_LISTEN_OVERFLOW, CT_C_ACCEPT_QUEUE_FULL, "full accept queue" },
		{ DROP_OTHER, CT_C_LOCAL_DROP, "reason OTHER_REASON" },
		{ DROP_NETFILTER, CT_C_NETFILTER_DROP, "NETFILTER_DROP" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ct_flow f = default_flow();
		struct ct_evidence e = syn_evidence(&f, CT_REC_DROP, cases[i].reason, T0 + 10 * US);
		const struct ct_result *r;

		set_retrans(&f, 1);
		end_established(&f, 1 * SEC + 5 * MS);
		fx->n = 0;
		feed_ev(fx, &e);
		feed_flow(fx, &f);
		r = the_verdict(fx);
		expect_verdict(r, CT_V_SLOW, cases[i].cause);
		CHECK(!r->inferred, "a seen drop is not inferred");
		expect_detail_has(r, cases[i].says);
		expect_detail_has(r, "got through: connected after 1.00 s");
		/* the retransmit stays in the evidence */
		must_find_ev(r, CT_EV_SYN_RETRANS, 0);
	}
}

/* ---- simultaneous open ---- */

static void test_simultaneous_open_is_ok_with_its_evidence(void **state)
{
	struct fixture *fx = *state;
	struct ct_flow f = make_flow("127.0.0.1", 50000, "127.0.0.1", 50000);
	const struct ct_result *r;

	f.flags |= CT_F_SIMOPEN;
	set_retrans(&f, 1);
	end_established(&f, 1200 * MS);
	feed_flow(fx, &f);
	r = the_verdict(fx);
	expect_verdict(r, CT_V_OK, CT_C_ESTABLISHED);
	CHECK(!r->inferred, "expected established not to be inferred");
	CHECK(must_find_ev(r, CT_EV_SIMOPEN, 0)->t_us == INT64_MIN,
	      "expected an untimed simultaneous_open item");
	expect_detail_has(r, "simultaneous open");
}

/* ---- inferred, and the hedges in the details ---- */

static void test_inferred_per_cause(void **state)
{
	struct fixture *fx = *state;
	struct ct_flow ok = default_flow(), abandoned = default_flow(), refused = refused_flow(true);
	struct ct_flow timeout = timeout_flow(), unreach = default_flow();

	end_closed(&abandoned, 800 * MS, 0);
	unreach.sport = 0;
	unreach.flags = CT_F_CONNECT_ERR;
	end_closed(&unreach, 0, ENETUNREACH);
	feed_flow(fx, &ok);
	feed_flow(fx, &abandoned);
	feed_flow(fx, &refused);
	feed_flow(fx, &timeout);
	feed_flow(fx, &unreach);
	CHECK(fx->n == 5, "expected 5 verdicts, got %u", fx->n);
	CHECK(!fx->got[0].inferred, "established: observed");
	CHECK(fx->got[1].inferred, "app_closed: inferred");
	CHECK(!fx->got[2].inferred, "rst_received: observed");
	CHECK(fx->got[3].inferred, "no_synack: inferred");
	CHECK(!fx->got[4].inferred, "no_route: observed");
}

static void test_abandoned_detail_is_hedged(void **state)
{
	struct fixture *fx = *state;
	struct ct_flow f = default_flow();
	const struct ct_result *r;

	end_closed(&f, 250 * MS, 0);
	feed_flow(fx, &f);
	r = the_verdict(fx);
	expect_verdict(r, CT_V_ABANDONED, CT_C_APP_CLOSED);
	expect_detail_has(r, "the application's own timeout, a cancelled request, or Happy "
			  "Eyeballs racing another address");
	expect_detail_lacks(r, "shorter than the kernel's");
}

static void test_ipv6_eaddrnotavail_says_no_source_address(void **state)
{
	struct fixture *fx = *state;
	struct ct_flow f = make_flow("::", 0, "2001:db8::2", 443);

	f.flags = CT_F_CONNECT_ERR;
	end_closed(&f, 0, EADDRNOTAVAIL);
	feed_flow(fx, &f);
	expect_verdict(the_verdict(fx), CT_V_UNREACHABLE, CT_C_LOCAL_ERROR);
	expect_detail_has(the_verdict(fx), "no usable IPv6 source address");
}

static void test_render_fills_and_terminates_small_buffers(void **state)
{
	struct fixture *fx = *state;
	struct ct_flow f = timeout_flow();
	char whole[CT_DETAIL_MAX], part[16];

	feed_flow(fx, &f);
	ct_render_detail(the_verdict(fx), whole, sizeof(whole));
	memset(part, 'x', sizeof(part));
	ct_render_detail(the_verdict(fx), part, sizeof(part));
	CHECK(strlen(part) == sizeof(part) - 1 && !strncmp(part, whole, sizeof(part) - 1),
	      "expected the first %zu bytes of \"%s\", got \"%s\"", sizeof(part) - 1, whole, part);
	CHECK(ct_render_detail(the_verdict(fx), part, 0) == part, "a zero size writes nothing");
}

/* ---- the listener interface ---- */

static struct corr_listener listener_at(const char *addr, uint16_t port, uint32_t queue,
					 uint32_t queue_max, uint32_t overflows, uint64_t since,
					 uint64_t until)
{
	struct corr_listener l = {
		.netns = NETNS_A, .port = port, .queue = queue, .queue_max = queue_max,
		.overflows = overflows, .since = since, .until = until,
	};

	l.family = put_addr(l.addr, addr);
	return l;
}

/*
 * The kernel found the queue full (5 of 4) while the SYNs arrived; by the time
 * the collector read the listener it had drained. The detail keeps the length
 * seen when full, and says when.
 */
static void test_listener_drained_keeps_the_queue_seen_full(void **state)
{
	struct fixture *fx = *state;
	struct ct_flow f = timeout_flow();
	struct ct_evidence full = listen_report("10.0.0.2", 80, NETNS_A, T0 + 500 * MS, 5, 4);
	struct corr_listener l = listener_at("10.0.0.2", 80, 0, 4, 3, T0, T0 + 1 * SEC);
	const struct ct_ev_item *it;
	const struct ct_result *r;

	feed_ev(fx, &full);
	CHECK(corr_listener_full(fx->c, &l, T0 + 1 * SEC) == 0, "expected 0");
	feed_flow(fx, &f);
	r = the_verdict(fx);
	expect_verdict(r, CT_V_TIMEOUT, CT_C_ACCEPT_QUEUE_FULL);
	expect_detail_has(r, "full accept queue from 500.0 ms after the connect to 1.00 s after the "
			  "connect (5 queued, limit 4)");
	expect_detail_lacks(r, "0 queued");
	it = must_find_ev(r, CT_EV_ACCEPT_QUEUE_FULL, 0);
	CHECK(it->queue_known && it->queue == 5 && it->queue_max == 4,
	      "expected the accept_queue_full item to say 5 of 4, got %u of %u (known %d)",
	      it->queue, it->queue_max, it->queue_known);
	expect_t_us(it, 500000);
}

/* Only the interval's overflows are known: the queue length is not, and not invented. */
static void test_listener_overflows_alone_give_the_interval(void **state)
{
	struct fixture *fx = *state;
	struct ct_flow f = timeout_flow();
	struct corr_listener l = listener_at("10.0.0.2", 80, 1, 4, 2, T0 + 1 * SEC, T0 + 2 * SEC);
	const struct ct_ev_item *it;
	const struct ct_result *r;

	CHECK(corr_listener_full(fx->c, &l, T0 + 2 * SEC) == 0, "expected 0");
	feed_flow(fx, &f);
	r = the_verdict(fx);
	expect_verdict(r, CT_V_TIMEOUT, CT_C_ACCEPT_QUEUE_FULL);
	CHECK(r->inferred, "matched by time: inferred");
	expect_detail_has(r, "full accept queue at some time from 1.00 s after the connect to "
			  "2.00 s after the connect (limit 4)");
	expect_detail_lacks(r, "queued");
	it = must_find_ev(r, CT_EV_ACCEPT_QUEUE_FULL, 0);
	CHECK(!it->queue_known && it->t_us == INT64_MIN,
	      "expected an untimed item without a queue length");
}

/* Still full when read: that reading is the length seen while full. */
static void test_listener_full_when_read(void **state)
{
	struct fixture *fx = *state;
	struct ct_flow f = timeout_flow();
	struct corr_listener l = listener_at("0.0.0.0", 80, 9, 8, 4, T0, T0 + 1 * SEC);

	CHECK(corr_listener_full(fx->c, &l, T0 + 1 * SEC) == 0, "expected 0");
	feed_flow(fx, &f);
	expect_verdict(the_verdict(fx), CT_V_TIMEOUT, CT_C_ACCEPT_QUEUE_FULL);
	expect_detail_has(the_verdict(fx), "(9 queued 1.00 s after the connect, limit 8)");
}

static void test_listener_interval_before_the_flow_is_not_blamed(void **state)
{
	struct fixture *fx = *state;
	struct ct_flow f = timeout_flow();
	struct corr_listener l = listener_at("10.0.0.2", 80, 0, 4, 2, T0 - 5 * SEC,
					     T0 - 4 * SEC);
	struct corr_listener quiet = listener_at("10.0.0.2", 80, 0, 4, 0, T0 - 4 * SEC, T0);
	struct corr_listener bad = listener_at("10.0.0.2", 80, 0, 4, 2, T0, T0 - 1);

	CHECK(corr_listener_full(fx->c, &l, T0 - 4 * SEC) == 0, "expected 0");
	CHECK(corr_listener_full(fx->c, &quiet, T0) == 0, "expected 0");
	CHECK(corr_listener_full(fx->c, &bad, T0) == -EINVAL, "since after until: -EINVAL");
	bad = listener_at("10.0.0.2", 80, 0, 4, 2, T0, T0);
	bad.family = 7;
	CHECK(corr_listener_full(fx->c, &bad, T0) == -EINVAL, "a bad family: -EINVAL");
	feed_flow(fx, &f);
	expect_verdict(the_verdict(fx), CT_V_TIMEOUT, CT_C_NO_SYNACK);
}

/* Without the ICMP hook: a NETFILTER_DROP of the SYN and no RST point at a reject rule here. */
static void test_refused_after_netfilter_drop_points_at_a_reject_rule(void **state)
{
	struct fixture *fx = *state;
	struct ct_flow f = refused_flow(false);
	struct ct_evidence e = syn_evidence(&f, CT_REC_DROP, DROP_NETFILTER, T0 + 50 * US);
	const struct ct_result *r;

	feed_ev(fx, &e);
	feed_flow(fx, &f);
	r = the_verdict(fx);
	expect_verdict(r, CT_V_REFUSED, CT_C_ICMP_UNREACHABLE);
	CHECK(r->inferred, "no ICMP was seen: inferred");
	expect_detail_has(r, "netfilter on this host dropped 1 of its SYNs, so a reject rule");
}

/* The kernel re-reports a full listener once a second: the period's start stays. */
static void test_listener_full_period_keeps_its_start(void **state)
{
	struct fixture *fx = *state;
	struct ct_flow f = timeout_flow();

	for (unsigned i = 0; i < 7; i++) {
		struct ct_evidence full = listen_report("10.0.0.2", 80, NETNS_A,
							T0 - 1 * MS + i * SEC, 2 + i, 1);

		feed_ev(fx, &full);
	}
	feed_flow(fx, &f);
	expect_verdict(the_verdict(fx), CT_V_TIMEOUT, CT_C_ACCEPT_QUEUE_FULL);
	expect_detail_has(the_verdict(fx), "full accept queue from 1.0 ms before the connect until "
			  "the attempt ended (2 queued, limit 1)");
	expect_t_us(must_find_ev(the_verdict(fx), CT_EV_ACCEPT_QUEUE_FULL, 0), -1000);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_fast_established_is_ok),
		T(test_established_after_unanswered_syns_is_slow_no_synack),
		T(test_slow_with_netfilter_drop_is_slow_netfilter_drop),
		T(test_established_slower_than_slow_ns_is_slow_handshake),
		T(test_slow_ns_zero_disables_slow_handshake),
		T(test_timeout_with_netfilter_drops_of_the_syn_is_netfilter_drop),
		T(test_timeout_with_in_kernel_netfilter_drops_is_netfilter_drop),
		T(test_timeout_with_dropped_synacks_is_netfilter_drop_marked_synack),
		T(test_timeout_without_evidence_is_no_synack),
		T(test_timeout_without_retransmit_or_evidence_is_unknown),
		T(test_timeout_while_listener_queue_full_is_accept_queue_full),
		T(test_timeout_after_listener_queue_drained_is_not_accept_queue_full),
		T(test_full_listener_without_retransmit_is_not_blamed),
		T(test_timeout_with_listen_overflow_drops_is_accept_queue_full),
		T(test_timeout_with_other_drop_reason_is_local_drop),
		T(test_ipv6_synack_drop_is_netfilter_drop),
		T(test_refused_with_rst_sent_no_socket_is_no_listener),
		T(test_refused_with_rst_sent_without_reason_is_no_listener),
		T(test_refused_with_rst_sent_other_reason_is_rst_received),
		T(test_refused_with_only_no_socket_drop_is_no_listener),
		T(test_refused_with_only_rst_received_is_rst_received),
		T(test_lossy_refused_without_local_rst_is_unknown),
		T(test_lossy_refused_with_local_rst_is_still_no_listener),
		T(test_refused_without_any_rst_is_icmp_unreachable),
		T(test_error_report_alone_decides_like_err),
		T(test_connect_error_unreachable_is_no_route),
		T(test_connect_error_eaddrnotavail_is_local_error),
		T(test_ehostunreach_after_syns_is_icmp_unreachable),
		T(test_closed_without_error_is_abandoned_app_closed),
		T(test_abandoned_while_netfilter_dropped_says_so),
		T(test_pending_flow_is_pending),
		T(test_pending_flow_is_not_held),
		T(test_flow_without_history_gets_verdict_with_unknown_times),
		T(test_unknown_errno_is_cause_unknown),
		T(test_loopback_evidence_from_other_netns_does_not_match),
		T(test_evidence_without_netns_matches_any_netns),
		T(test_non_loopback_evidence_from_other_netns_matches),
		T(test_evidence_older_than_flow_start_does_not_match),
		T(test_evidence_for_another_tuple_does_not_match),
		T(test_late_evidence_is_matched_within_hold),
		T(test_late_evidence_without_hold_is_not_matched_and_expires),
		T(test_flush_emits_every_held_flow),
		T(test_evidence_beyond_max_is_dropped_and_counted),
		T(test_many_listeners_stay_bounded),
		T(test_malformed_records_are_rejected_and_counted),
		T(test_evidence_list_is_sorted_by_time),
		T(test_stats_count_records_and_verdicts),
		T(test_names_and_parse),
		T(test_evidence_overflow_corrupts_items_and_loses_end),
		T(test_v4_mapped_flow_matches_ipv4_drop),
		T(test_dual_stack_listener_full_matches_ipv4_flow),
		T(test_wildcard_listener_not_blamed_for_remote_destination),
		T(test_v4_mapped_loopback_destination_not_shown_as_ipv6_loopback),
		T(test_classify_combinations),
		T(test_classify_every_flag_combination_is_sane),
		T(test_soft_icmp_errors_are_not_abandoned),
		T(test_icmp_sent_names_port_unreachable),
		T(test_ipv6_icmp_sent_names_icmpv6),
		T(test_v4_mapped_flow_matches_ipv4_rst_sent),
		T(test_v4_mapped_flow_matches_ipv4_icmp_sent),
		T(test_v4_mapped_flow_with_unset_source_matches_ipv4_drop),
		T(test_v4_mapped_flow_matches_ipv4_listener),
		T(test_ipv4_flow_matches_v4_mapped_listener),
		T(test_slow_causes_name_what_lost_the_syns),
		T(test_simultaneous_open_is_ok_with_its_evidence),
		T(test_inferred_per_cause),
		T(test_abandoned_detail_is_hedged),
		T(test_ipv6_eaddrnotavail_says_no_source_address),
		T(test_render_fills_and_terminates_small_buffers),
		T(test_listener_drained_keeps_the_queue_seen_full),
		T(test_listener_overflows_alone_give_the_interval),
		T(test_listener_full_when_read),
		T(test_listener_interval_before_the_flow_is_not_blamed),
		T(test_refused_after_netfilter_drop_points_at_a_reject_rule),
		T(test_listener_full_period_keeps_its_start),
	};

	return cmocka_run_group_tests_name("correlate", tests, NULL, NULL);
}
