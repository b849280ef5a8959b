// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The correlator without a kernel: hand-built records of conntrace.h fed as
 * raw bytes, the way the ring buffer delivers them, and the verdicts that
 * come out. One test per verdict and cause; which evidence matches which
 * flow is in test_correlate_match.c, the classifier, the renderer and the
 * newer rules in test_classify.c. The fixture is corr_fixture.h.
 */
#include "corr_fixture.h"

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
	};

	return cmocka_run_group_tests_name("correlate", tests, NULL, NULL);
}
