// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Established connections that died (user/established.c): which timer gave
 * up, which way an RST went, the verdict and cause, the sentence, the JSON
 * and text lines, and records that are not ct_estab.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <cmocka.h>
#include "correlate.h"
#include "established.h"
#include "output.h"

#define CHECK(cond, ...) do { if (!(cond)) fail_msg(__VA_ARGS__); } while (0)

#define MS	1000000ULL
#define SEC	1000000000ULL
#define T0	(1000 * SEC)

static const char *fake_name(uint32_t v, void *ctx)
{
	(void)ctx;
	switch (v) {
	case 11: return "TCP_ABORT_ON_CLOSE";
	case 12: return "NETFILTER_DROP";
	case 99: return "TCP_OFO_DROP";
	default: return NULL;
	}
}

static const struct estab_config cfg = {
	.drop_reason_name = fake_name,
	.rst_reason_name = fake_name,
	.hz = 250,
};

/* A connection 127.0.0.1:40000 -> 127.0.0.1:8080 that died at T0 + 10 s. */
static struct ct_estab make_estab(void)
{
	struct ct_estab e = {
		.type = CT_REC_ESTAB, .family = CT_AF_INET, .state = CT_TCP_ESTABLISHED,
		.sport = 40000, .dport = 8080, .netns = 4026531840U, .cgroup_id = 7,
		.ts_first = T0, .ts_end = T0 + 10 * SEC,
	};

	inet_pton(AF_INET, "127.0.0.1", e.saddr);
	inet_pton(AF_INET, "127.0.0.1", e.daddr);
	return e;
}

static struct ct_result result_of(const struct ct_estab *e)
{
	struct ct_result r;

	CHECK(!estab_result(&r, e, sizeof(*e), &cfg), "expected the record accepted");
	CHECK(r.phase == CT_PHASE_ESTABLISHED, "expected phase established");
	return r;
}

static void expect(const struct ct_result *r, enum ct_verdict v, enum ct_cause c,
		   enum ct_timer t)
{
	CHECK(r->verdict == v && r->cause == c && r->est.timer == t,
	      "expected %s/%s/%s, got %s/%s/%s", ct_verdict_name(v), ct_cause_name(c),
	      ct_timer_name(t) ? ct_timer_name(t) : "-", ct_verdict_name(r->verdict),
	      ct_cause_name(r->cause), ct_timer_name(r->est.timer) ? ct_timer_name(r->est.timer) : "-");
}

static void expect_detail_has(const struct ct_result *r, const char *want)
{
	char buf[CT_DETAIL_MAX];

	ct_render_detail(r, buf, sizeof(buf));
	CHECK(strstr(buf, want), "expected \"%s\" in the detail \"%s\"", want, buf);
}

static void test_retransmits_dropped_here_are_a_netfilter_timeout(void **state)
{
	struct ct_estab e = make_estab();
	struct ct_result r;

	(void)state;
	e.err = ETIMEDOUT;
	e.retrans = e.total_retrans = 5;
	e.backoff = 3;
	e.unacked = 1000;
	e.nf_drops = 5;
	e.ts_first_retrans = T0 + 200 * MS;
	e.ts_last_retrans = T0 + 6 * SEC;
	r = result_of(&e);
	expect(&r, CT_V_TIMEOUT, CT_C_NETFILTER_DROP, CT_TIMER_RETRANSMIT);
	CHECK(!r.inferred, "expected an observed cause");
	CHECK(r.est.first_retrans_us == 9800000 && r.est.last_retrans_us == 4000000,
	      "expected the first 9.8 s and the last 4 s before the end, got %lld and %lld",
	      (long long)r.est.first_retrans_us, (long long)r.est.last_retrans_us);
	expect_detail_has(&r, "gave up after 5 retransmits");
	expect_detail_has(&r, "RTO doubled 3 times");
	expect_detail_has(&r, "1000 bytes unacknowledged");
	expect_detail_has(&r, "netfilter on this host dropped 5");
}

static void test_unanswered_retransmits_without_drops_are_no_ack(void **state)
{
	struct ct_estab e = make_estab();
	struct ct_result r;

	(void)state;
	e.err = ETIMEDOUT;
	e.retrans = 3;
	e.unacked = 10;
	e.drops = 2;
	e.drop_reason = 99;	/* not netfilter: named, not the cause */
	r = result_of(&e);
	expect(&r, CT_V_TIMEOUT, CT_C_NO_ACK, CT_TIMER_RETRANSMIT);
	CHECK(r.est.first_retrans_us == -1, "expected no retransmit time without its stamp");
	expect_detail_has(&r, "the peer stopped acknowledging");
	expect_detail_has(&r, "2 of its packets dropped (TCP_OFO_DROP)");
	/* 6.1 traces no retransmit that netfilter dropped on output: the socket's count */
	e.retrans = 0;
	e.total_retrans = 4;
	r = result_of(&e);
	CHECK(r.est.retrans == 4, "expected the kernel's 4 retransmits, got %u", r.est.retrans);
}

static void test_timer_is_told_from_the_socket(void **state)
{
	struct ct_estab e = make_estab();
	struct ct_result r;

	(void)state;
	e.err = ETIMEDOUT;
	/* nothing in flight, probes unanswered, SO_KEEPALIVE: keepalive */
	e.probes_out = 2;
	e.snd_wnd = 65536;
	e.flags = CT_EF_KEEPOPEN;
	r = result_of(&e);
	expect(&r, CT_V_TIMEOUT, CT_C_NO_ACK, CT_TIMER_KEEPALIVE);
	expect_detail_has(&r, "2 keepalive probes went unanswered");
	/* the same with the peer's window shut: window probes */
	e.snd_wnd = 0;
	r = result_of(&e);
	expect(&r, CT_V_TIMEOUT, CT_C_NO_ACK, CT_TIMER_ZERO_WINDOW_PROBE);
	expect_detail_has(&r, "the peer's window stayed shut");
	/* probes without SO_KEEPALIVE are window probes, whatever the window */
	e.flags = 0;
	e.snd_wnd = 65536;
	r = result_of(&e);
	expect(&r, CT_V_TIMEOUT, CT_C_NO_ACK, CT_TIMER_ZERO_WINDOW_PROBE);
	expect_detail_has(&r, "its data could not leave");
	/* TCP_USER_TIMEOUT decides every timer once set */
	e.flags = CT_EF_KEEPOPEN;
	e.user_timeout_ms = 3000;
	r = result_of(&e);
	expect(&r, CT_V_TIMEOUT, CT_C_NO_ACK, CT_TIMER_USER_TIMEOUT);
	expect_detail_has(&r, "TCP_USER_TIMEOUT (3000 ms)");
}

static void test_keepalive_reset_is_still_a_timeout(void **state)
{
	struct ct_estab e = make_estab();
	struct ct_result r;

	(void)state;
	/* 6.10+: the keepalive timer sends an RST as it gives up */
	e.err = ETIMEDOUT;
	e.probes_out = 2;
	e.snd_wnd = 65536;
	e.flags = CT_EF_KEEPOPEN | CT_EF_RST_SENT | CT_EF_RST_REASON;
	e.rst_reason = 15;
	r = result_of(&e);
	expect(&r, CT_V_TIMEOUT, CT_C_NO_ACK, CT_TIMER_KEEPALIVE);
}

static void test_rst_received_says_the_idle_time(void **state)
{
	struct ct_estab e = make_estab();
	struct ct_result r;

	(void)state;
	e.err = ECONNRESET;
	e.flags = CT_EF_RST_RCVD | CT_EF_IDLE;
	e.idle_jiffies = 125;	/* 0.5 s at HZ 250 */
	e.state = CT_TCP_CLOSE_WAIT;
	r = result_of(&e);
	expect(&r, CT_V_RESET, CT_C_RST_RECEIVED, CT_TIMER_NONE);
	CHECK(r.est.reset == CT_RESET_RECEIVED && !r.inferred, "expected an observed RST received");
	CHECK(r.est.idle_us == 500000, "expected 500000 us idle, got %lld",
	      (long long)r.est.idle_us);
	expect_detail_has(&r, "an RST arrived in close_wait after 500.0 ms");
	/* HZ unknown: the idle time is too */
	{
		struct estab_config nohz = cfg;

		nohz.hz = 0;
		CHECK(!estab_result(&r, &e, sizeof(e), &nohz) && r.est.idle_us == -1,
		      "expected no idle time without HZ");
	}
}

static void test_reset_errno_without_the_rst_is_inferred(void **state)
{
	struct ct_estab e = make_estab();
	struct ct_result r;

	(void)state;
	e.err = EPIPE;
	r = result_of(&e);
	expect(&r, CT_V_RESET, CT_C_RST_RECEIVED, CT_TIMER_NONE);
	CHECK(r.inferred, "expected the RST inferred from EPIPE");
}

static void test_rst_sent_names_its_reason_and_owner(void **state)
{
	struct ct_estab e = make_estab();
	struct ct_result r;

	(void)state;
	e.flags = CT_EF_RST_SENT | CT_EF_RST_REASON | CT_EF_OWNER;
	e.rst_reason = 11;
	e.pid = 4242;
	memcpy(e.comm, "server", 7);
	r = result_of(&e);
	expect(&r, CT_V_RESET, CT_C_RST_SENT, CT_TIMER_NONE);
	CHECK(r.est.rst_reason && !strcmp(r.est.rst_reason, "TCP_ABORT_ON_CLOSE"),
	      "expected the reason named");
	CHECK(r.flow.pid == 4242 && r.est.owner, "expected the owner");
	expect_detail_has(&r, "this host reset it in established (the kernel's reason: "
			  "TCP_ABORT_ON_CLOSE) as pid 4242 closed it");
	/* before 6.10 the kernel gives no reason */
	e.flags = CT_EF_RST_SENT;
	r = result_of(&e);
	CHECK(!r.est.rst_reason && !r.est.owner, "expected no reason and no owner");
}

static void test_records_that_are_not_ct_estab_are_refused(void **state)
{
	struct ct_estab e = make_estab();
	struct ct_result r;

	(void)state;
	CHECK(estab_result(&r, &e, sizeof(e) - 1, &cfg) == -EINVAL, "expected a short record refused");
	e.type = CT_REC_FLOW;
	CHECK(estab_result(&r, &e, sizeof(e), &cfg) == -EINVAL, "expected another type refused");
	e = make_estab();
	e.family = 0;
	CHECK(estab_result(&r, &e, sizeof(e), &cfg) == -EINVAL, "expected a bad family refused");
}

static void test_phase_names_parse(void **state)
{
	(void)state;
	CHECK(ct_phase_parse("connect") == 1 << CT_PHASE_CONNECT, "connect");
	CHECK(ct_phase_parse("established") == 1 << CT_PHASE_ESTABLISHED, "established");
	CHECK(ct_phase_parse("both") == 3, "both");
	CHECK(ct_phase_parse("Both") == -1 && ct_phase_parse("") == -1, "bad names refused");
	CHECK(!strcmp(ct_tcp_state_name(CT_TCP_FIN_WAIT1), "fin_wait1") &&
	      !strcmp(ct_tcp_state_name(200), "unknown"), "state names");
}

/* The JSON line of a reset: its own fields, the owner null when unknown. */
static void test_json_line_of_an_established_verdict(void **state)
{
	struct ct_estab e = make_estab();
	struct ct_result r;
	struct writer w;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	(void)state;
	assert_non_null(f);
	e.err = ECONNRESET;
	e.flags = CT_EF_RST_RCVD | CT_EF_IDLE;
	e.idle_jiffies = 250;
	r = result_of(&e);
	writer_json_init(&w, f);
	w.ops->verdict(&w, &r, 1700000000000000000ULL);
	fclose(f);
	CHECK(strstr(buf, "\"verdict\":\"reset\",\"cause\":\"rst_received\""), "verdict: %s", buf);
	CHECK(strstr(buf, "\"phase\":\"established\",\"pid\":null,\"tid\":null,\"comm\":null,"
		      "\"cgroup_id\":7,"), "owner: %s", buf);
	CHECK(strstr(buf, "\"duration_us\":null"), "duration: %s", buf);
	CHECK(strstr(buf, "\"reset\":\"received\",\"reset_reason\":null"), "reset: %s", buf);
	CHECK(strstr(buf, "\"idle_us\":1000000"), "idle: %s", buf);
	CHECK(!strstr(buf, "\"timer\""), "no timer on a reset: %s", buf);
	free(buf);
}

/* The text line: its own label, "-" for SYNs and latency, the timer after the cause. */
static void test_text_line_of_an_established_verdict(void **state)
{
	struct ct_estab e = make_estab();
	struct ct_result r;
	struct writer w;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	(void)state;
	assert_non_null(f);
	e.err = ETIMEDOUT;
	e.retrans = 5;
	e.nf_drops = 5;
	r = result_of(&e);
	writer_text_init(&w, f, false, false);
	w.ops->verdict(&w, &r, 1700000000000000000ULL);
	fclose(f);
	CHECK(strstr(buf, " ?       ?"), "no owner known: %s", buf);
	CHECK(strstr(buf, "127.0.0.1:40000") && strstr(buf, "127.0.0.1:8080"), "ends: %s", buf);
	CHECK(strstr(buf, "EST-TIMEOUT    -      - netfilter_drop timer="), "columns: %s", buf);
	CHECK(buf[len - 1] == '\n' && !strchr(buf, '\n')[1], "one line: %s", buf);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_retransmits_dropped_here_are_a_netfilter_timeout),
		cmocka_unit_test(test_unanswered_retransmits_without_drops_are_no_ack),
		cmocka_unit_test(test_timer_is_told_from_the_socket),
		cmocka_unit_test(test_keepalive_reset_is_still_a_timeout),
		cmocka_unit_test(test_rst_received_says_the_idle_time),
		cmocka_unit_test(test_reset_errno_without_the_rst_is_inferred),
		cmocka_unit_test(test_rst_sent_names_its_reason_and_owner),
		cmocka_unit_test(test_records_that_are_not_ct_estab_are_refused),
		cmocka_unit_test(test_phase_names_parse),
		cmocka_unit_test(test_json_line_of_an_established_verdict),
		cmocka_unit_test(test_text_line_of_an_established_verdict),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
