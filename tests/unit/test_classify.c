// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The three steps of a verdict seen one by one: the classifier alone over
 * combinations of facts, and, through the correlator, the rules that rest on
 * them (ICMP errors, SLOW causes, simultaneous open, inferred), the listener
 * interface and the rendered details.
 */
#include "corr_fixture.h"

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
	{ "SLOW: an ICMP error on the socket", ESTAB(.syn_retrans = 1, .err_soft = EHOSTUNREACH),
	  CT_V_SLOW, CT_C_ICMP_UNREACHABLE, false },
	{ "SLOW: a netfilter drop before an ICMP error", ESTAB(.syn_retrans = 1, .nf_drops = 1,
	  .err_soft = ECONNREFUSED), CT_V_SLOW, CT_C_NETFILTER_DROP, false },
	{ "SLOW: an ICMP error that says nothing", ESTAB(.syn_retrans = 1, .err_soft = EMSGSIZE),
	  CT_V_SLOW, CT_C_NO_SYNACK, true },
	{ "PENDING: an ICMP error on the socket", { .end = CT_END_PENDING, .syn_retrans = 2,
	  .err_soft = ENETUNREACH }, CT_V_PENDING, CT_C_ICMP_UNREACHABLE, false },
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
	{ "NO_SOCKET drop and an RST without a reason (6.1)", CLOSED(.err = ECONNREFUSED,
	  .no_socket_drop = true, .rst_sent = true), CT_V_REFUSED, CT_C_NO_LISTENER, false },
	{ "NO_SOCKET drop and an RST of another reason", CLOSED(.err = ECONNREFUSED,
	  .no_socket_drop = true, .rst_sent = true, .rst_reason_known = true), CT_V_REFUSED,
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
	{ "TIMEOUT with an ICMP error seen on the way", CLOSED(.err = ETIMEDOUT,
	  .err_soft = EHOSTUNREACH, .syn_retrans = 2), CT_V_TIMEOUT, CT_C_ICMP_UNREACHABLE, false },
	{ "the error it ended with decides the verdict", CLOSED(.err = ECONNREFUSED,
	  .err_soft = EHOSTUNREACH, .rst_received = true), CT_V_REFUSED, CT_C_RST_RECEIVED, false },
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
			expect_detail_has(r, "the application closed the socket after 1.50 s while "
					  "still connecting to 10.0.0.2:80, with an ICMP error on it");
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

/*
 * Found full before the flow, then read drained with no overflow since the
 * previous reading (the kernel says a queue stopped being full only when a
 * child is queued): the flow's lost SYNs are not the full queue's; nor are
 * those of a flow during a full period that lost no SYN at all.
 */
static void test_listener_drained_without_overflows_ends_the_period(void **state)
{
	struct fixture *fx = *state;
	struct ct_flow f = timeout_flow();
	struct ct_evidence before = listen_report("10.0.0.2", 80, NETNS_A, T0 - 3 * SEC, 5, 4);
	struct ct_evidence during = listen_report("10.0.0.2", 80, NETNS_A, T0 + 500 * MS, 5, 4);
	struct corr_listener quiet = listener_at("10.0.0.2", 80, 0, 4, 0, T0 - 2 * SEC, T0 - SEC);

	feed_ev(fx, &before);
	CHECK(corr_listener_full(fx->c, &quiet, T0 - SEC) == 0, "expected 0");
	feed_ev(fx, &during);
	quiet = listener_at("10.0.0.2", 80, 0, 4, 0, T0, T0 + SEC);
	CHECK(corr_listener_full(fx->c, &quiet, T0 + SEC) == 0, "expected 0");
	feed_flow(fx, &f);
	expect_verdict(the_verdict(fx), CT_V_TIMEOUT, CT_C_NO_SYNACK);
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

/* A SYN answered by an ICMP error while connect() held the socket, then a retransmit got through. */
static void test_slow_after_an_icmp_error_is_icmp_unreachable(void **state)
{
	struct fixture *fx = *state;
	struct ct_flow f = default_flow();
	const struct ct_result *r;

	set_retrans(&f, 1);
	end_established(&f, 1 * SEC + 3 * MS);
	f.err_soft = EHOSTUNREACH;
	feed_flow(fx, &f);
	r = the_verdict(fx);
	expect_verdict(r, CT_V_SLOW, CT_C_ICMP_UNREACHABLE);
	expect_detail_has(r, "an ICMP error (EHOSTUNREACH) answered a SYN to 10.0.0.2:80");
	must_find_ev(r, CT_EV_ICMP_ERROR, 0);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_classify_combinations),
		T(test_classify_every_flag_combination_is_sane),
		T(test_soft_icmp_errors_are_not_abandoned),
		T(test_icmp_sent_names_port_unreachable),
		T(test_ipv6_icmp_sent_names_icmpv6),
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
		T(test_listener_drained_without_overflows_ends_the_period),
		T(test_refused_after_netfilter_drop_points_at_a_reject_rule),
		T(test_listener_full_period_keeps_its_start),
		T(test_slow_after_an_icmp_error_is_icmp_unreachable),
	};

	return cmocka_run_group_tests_name("classify", tests, NULL, NULL);
}
