// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Incoming attempts (user/inbound.c): the kernel's CT_REC_INBOUND records in
 * the order the kernel sends them, and the one verdict each attempt gets:
 * when, with what verdict and cause, with which evidence, and the addresses
 * the right way round (saddr/sport the remote client). SYN cookies are only
 * covered here, by recorded events: the integration test does not force them.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "inbound.h"
#include "output.h"

#define CHECK(cond, ...) do { if (!(cond)) fail_msg(__VA_ARGS__); } while (0)

#define SEC	1000000000ULL
#define MS	1000000ULL
#define T0	(100 * SEC)
#define DROP_NETFILTER	12

struct got {
	unsigned n;
	struct ct_result r[8];
};

static void on_result(const struct ct_result *r, void *ctx)
{
	struct got *g = ctx;

	if (g->n < 8)
		g->r[g->n] = *r;
	g->n++;
}

static const char *drop_name(uint32_t v, void *ctx)
{
	(void)ctx;
	return v == DROP_NETFILTER ? "NETFILTER_DROP" : "OTHER";
}

static struct inbound *make(struct got *g, size_t max)
{
	struct inbound_config cfg = {
		.quiet_ns = 10 * SEC, .max_attempts = max, .emit = on_result, .emit_ctx = g,
		.drop_reason_name = drop_name,
	};
	struct inbound *in;

	memset(g, 0, sizeof(*g));
	in = inbound_new(&cfg);
	CHECK(in, "inbound_new failed");
	return in;
}

/* A client 192.0.2.1:sport trying 192.0.2.2:8080 in namespace 4026531840. */
static struct ct_inbound attempt(uint16_t sport)
{
	struct ct_inbound a = {
		.type = CT_REC_INBOUND, .family = CT_AF_INET, .has_history = 1,
		.sport = sport, .dport = 8080, .netns = 4026531840u, .pid = 77,
		.ts_first = T0, .ts_last = T0,
	};

	inet_pton(AF_INET, "192.0.2.1", a.saddr);
	inet_pton(AF_INET, "192.0.2.2", a.daddr);
	strcpy(a.comm, "server");
	return a;
}

static void feed(struct inbound *in, struct ct_inbound *a, uint8_t event, uint64_t at)
{
	a->event = event;
	a->ts_last = at;
	CHECK(inbound_feed(in, a, sizeof(*a), at) == 0, "feed refused a good record");
}

static const struct ct_ev_item *find_ev(const struct ct_result *r, enum ct_ev_kind k,
					unsigned nth)
{
	for (unsigned i = 0; i < r->nr_ev; i++)
		if (r->ev[i].kind == k && !nth--)
			return &r->ev[i];
	return NULL;
}

static void test_accept_queue_drops_then_quiet_is_dropped(void **state)
{
	struct ct_inbound a = attempt(40000);
	const struct ct_ev_item *it;
	struct inbound *in;
	struct got g;
	char addr[64], detail[CT_DETAIL_MAX];

	(void)state;
	in = make(&g, 0);
	a.syns = 1, a.overflow_drops = 1, a.queue = 2, a.queue_max = 1;
	feed(in, &a, CT_IN_SYN_DROP, T0);
	a.syns = 2, a.overflow_drops = 2;
	feed(in, &a, CT_IN_SYN_DROP, T0 + 1 * SEC);
	inbound_tick(in, T0 + 10 * SEC);	/* 9 s after the last SYN: still waiting */
	CHECK(g.n == 0 && inbound_held(in) == 1, "expected no verdict before the quiet period");
	inbound_tick(in, T0 + 11 * SEC);
	CHECK(g.n == 1 && inbound_held(in) == 0, "expected one verdict after it, got %u", g.n);
	CHECK(g.r[0].inbound, "expected an inbound result");
	CHECK(g.r[0].verdict == CT_V_DROPPED && g.r[0].cause == CT_C_ACCEPT_QUEUE_FULL &&
	      !g.r[0].inferred, "expected dropped/accept_queue_full observed, got %s/%s",
	      ct_verdict_name(g.r[0].verdict), ct_cause_name(g.r[0].cause));
	fmt_addr(addr, sizeof(addr), g.r[0].flow.family, g.r[0].flow.saddr);
	CHECK(!strcmp(addr, "192.0.2.1") && g.r[0].flow.sport == 40000 &&
	      g.r[0].flow.dport == 8080, "expected the client as saddr:sport, got %s:%u", addr,
	      g.r[0].flow.sport);
	CHECK(g.r[0].flow.pid == 77 && !strcmp(g.r[0].flow.comm, "server"),
	      "expected the listener's owner");
	CHECK(g.r[0].flow.syn_retrans == 1, "expected 1 SYN retransmit (2 SYNs)");
	CHECK(g.r[0].duration_ns == 11 * SEC, "expected the duration to the verdict");
	it = find_ev(&g.r[0], CT_EV_SYN_RECEIVED, 0);
	CHECK(it && it->t_us == 0, "expected syn_received at 0");
	it = find_ev(&g.r[0], CT_EV_DROP, 1);
	CHECK(it && it->n == 2 && it->t_us == 1000000 && !it->reason,
	      "expected the second drop at 1 s, count 2");
	it = find_ev(&g.r[0], CT_EV_ACCEPT_QUEUE_FULL, 0);
	CHECK(it && it->queue_known && it->queue == 2 && it->queue_max == 1,
	      "expected the accept queue seen full");
	inbound_render_detail(&g.r[0], detail, sizeof(detail));
	CHECK(strstr(detail, "192.0.2.1:40000") && strstr(detail, "accept queue was full"),
	      "detail: %s", detail);
	inbound_free(in);
}

static void test_established_after_drops_is_slow_and_at_once(void **state)
{
	struct ct_inbound a = attempt(40001), b = attempt(40002);
	struct inbound *in;
	struct got g;

	(void)state;
	in = make(&g, 0);
	a.syns = 1, a.nf_drops = 1;
	feed(in, &a, CT_IN_SYN_DROP, T0);
	a.syns = 2;
	feed(in, &a, CT_IN_ESTABLISHED, T0 + 1 * SEC);
	CHECK(g.n == 1 && g.r[0].verdict == CT_V_SLOW && g.r[0].cause == CT_C_NETFILTER_DROP,
	      "expected slow/netfilter_drop at once");
	CHECK(find_ev(&g.r[0], CT_EV_DROP, 0) &&
	      !strcmp(find_ev(&g.r[0], CT_EV_DROP, 0)->reason, "NETFILTER_DROP") &&
	      find_ev(&g.r[0], CT_EV_ESTABLISHED, 0), "expected the drop and the end");
	/* a SYN-ACK retransmit alone: the client's ACK was late, inferred */
	b.syns = 1, b.synack_retrans = 1, b.queue = 0, b.queue_max = 5;
	feed(in, &b, CT_IN_SYNACK_RETRANS, T0);
	feed(in, &b, CT_IN_ESTABLISHED, T0 + 2 * SEC);
	CHECK(g.n == 2 && g.r[1].verdict == CT_V_SLOW && g.r[1].cause == CT_C_SLOW_HANDSHAKE &&
	      g.r[1].inferred, "expected slow/slow_handshake inferred");
	CHECK(find_ev(&g.r[1], CT_EV_SYNACK_RETRANS, 0), "expected the SYN-ACK retransmit");
	CHECK(inbound_held(in) == 0, "expected nothing held");
	inbound_free(in);
}

static void test_rst_is_refused_and_stop_is_pending(void **state)
{
	struct ct_inbound a = attempt(40003), b = attempt(40004);
	struct inbound *in;
	struct got g;

	(void)state;
	in = make(&g, 0);
	a.syns = 1, a.rsts = 1, a.pid = 0, a.comm[0] = '\0';
	feed(in, &a, CT_IN_RST, T0);
	CHECK(g.n == 1 && g.r[0].verdict == CT_V_REFUSED && g.r[0].cause == CT_C_NO_LISTENER &&
	      !g.r[0].inferred, "expected refused/no_listener observed");
	CHECK(find_ev(&g.r[0], CT_EV_RST_SENT, 0), "expected rst_sent");
	b.syns = 3, b.synq_drops = 3, b.queue = 0, b.queue_max = 128;
	feed(in, &b, CT_IN_SYN_DROP, T0 + 2 * SEC);
	inbound_flush(in, T0 + 3 * SEC);
	CHECK(g.n == 2 && g.r[1].verdict == CT_V_PENDING && g.r[1].cause == CT_C_SYN_QUEUE_FULL,
	      "expected pending/syn_queue_full at the stop");
	CHECK(g.r[1].flow.ts_end == T0 + 3 * SEC, "expected the stop as its end");
	inbound_free(in);
}

static void test_cookie_and_final_ack_drops(void **state)
{
	struct ct_inbound a = attempt(40005), b = attempt(40006);
	struct inbound *in;
	struct got g;

	(void)state;
	in = make(&g, 0);
	/* answered with a cookie, never completed: nothing was dropped here */
	a.syns = 1, a.cookies = 1;
	feed(in, &a, CT_IN_COOKIE, T0);
	inbound_tick(in, T0 + 20 * SEC);
	CHECK(g.n == 1 && g.r[0].verdict == CT_V_TIMEOUT && g.r[0].cause == CT_C_UNKNOWN &&
	      g.r[0].inferred, "expected timeout/unknown inferred for a cookie left unanswered");
	CHECK(find_ev(&g.r[0], CT_EV_SYN_COOKIE, 0) &&
	      find_ev(&g.r[0], CT_EV_SYN_COOKIE, 0)->n == 1, "expected the syn_cookie event");
	/* SYN-ACKs sent again while the accept queue was full: its final ACK was dropped */
	b.syns = 1, b.synack_retrans = 2, b.queue = 2, b.queue_max = 1;
	feed(in, &b, CT_IN_SYNACK_RETRANS, T0);
	inbound_tick(in, T0 + 20 * SEC);
	CHECK(g.n == 2 && g.r[1].verdict == CT_V_DROPPED &&
	      g.r[1].cause == CT_C_ACCEPT_QUEUE_FULL && g.r[1].inferred,
	      "expected dropped/accept_queue_full inferred");
	inbound_free(in);
}

static void test_table_full_tells_the_oldest_and_bad_records(void **state)
{
	struct ct_inbound a = attempt(40007), b = attempt(40008), c = attempt(40009);
	struct inbound *in;
	struct got g;

	(void)state;
	in = make(&g, 2);
	a.syns = b.syns = c.syns = 1;
	a.nf_drops = b.nf_drops = c.nf_drops = 1;
	feed(in, &a, CT_IN_SYN_DROP, T0);
	feed(in, &b, CT_IN_SYN_DROP, T0 + MS);
	feed(in, &c, CT_IN_SYN_DROP, T0 + 2 * MS);
	CHECK(g.n == 1 && g.r[0].flow.sport == 40007 && g.r[0].verdict == CT_V_PENDING,
	      "expected the oldest told as pending");
	CHECK(inbound_held(in) == 2, "expected 2 held");
	CHECK(inbound_feed(in, &a, sizeof(a) - 1, T0) == -EINVAL, "expected a short record refused");
	a.family = 7;
	CHECK(inbound_feed(in, &a, sizeof(a), T0) == -EINVAL, "expected a bad family refused");
	inbound_free(in);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_accept_queue_drops_then_quiet_is_dropped),
		cmocka_unit_test(test_established_after_drops_is_slow_and_at_once),
		cmocka_unit_test(test_rst_is_refused_and_stop_is_pending),
		cmocka_unit_test(test_cookie_and_final_ack_drops),
		cmocka_unit_test(test_table_full_tells_the_oldest_and_bad_records),
	};

	return cmocka_run_group_tests_name("inbound", tests, NULL, NULL);
}
