// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The correlator's matching: which evidence belongs to which flow (tuples,
 * namespaces, time, IPv4-mapped addresses), the hold for late evidence, the
 * bounds, malformed input and the shape of a result.
 */
#include "corr_fixture.h"

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
	/* the correlator gives outgoing attempts' verdicts: DROPPED is inbound only,
	 * RESET is established.c's */
	for (int v = 0; v <= CT_V_PENDING; v++)
		CHECK(s->verdicts[v] == 1, "expected one %s verdict, got %llu", ct_verdict_name(v),
		      (unsigned long long)s->verdicts[v]);
	CHECK(s->verdicts[CT_V_DROPPED] == 0, "expected no dropped verdict from the correlator");
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

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
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
		T(test_v4_mapped_flow_matches_ipv4_rst_sent),
		T(test_v4_mapped_flow_matches_ipv4_icmp_sent),
		T(test_v4_mapped_flow_with_unset_source_matches_ipv4_drop),
		T(test_v4_mapped_flow_matches_ipv4_listener),
		T(test_ipv4_flow_matches_v4_mapped_listener),
	};

	return cmocka_run_group_tests_name("correlate_match", tests, NULL, NULL);
}
