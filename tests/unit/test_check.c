// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* conntrace check, the pure part: HOST:PORT parsing and the advice per cause. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>
#include "check.h"

static int parse(const char *s, struct check_target *t, char *err)
{
	return check_parse_target(s, t, err, 256);
}

static void test_parse_good(void **state)
{
	struct check_target t;
	char err[256];

	(void)state;
	assert_int_equal(parse("example.org:443", &t, err), 0);
	assert_string_equal(t.host, "example.org");
	assert_int_equal(t.port, 443);
	assert_false(t.literal6);
	assert_int_equal(parse("127.0.0.1:1", &t, err), 0);
	assert_string_equal(t.host, "127.0.0.1");
	assert_int_equal(t.port, 1);
	assert_int_equal(parse("[::1]:65535", &t, err), 0);
	assert_string_equal(t.host, "::1");
	assert_int_equal(t.port, 65535);
	assert_true(t.literal6);
	assert_int_equal(parse("[2001:db8::1]:80", &t, err), 0);
	assert_string_equal(t.host, "2001:db8::1");
	assert_int_equal(parse("nosuch.invalid:80", &t, err), 0);
	assert_string_equal(t.host, "nosuch.invalid");
}

static void test_parse_bad(void **state)
{
	static const char *const bad[] = {
		"", "host", "host:", ":80", "host:0", "host:65536", "host:80x", "host:-1",
		"host: 80", "host:+80", "::1:80", "[::1]80", "[::1]", "[]:80", "[nothost]:80",
		"[1.2.3.4]:80", "ho st:80", "host\n:80", "host:80\n", "host:99999999999999999999",
	};
	struct check_target t;
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (parse(bad[i], &t, err) != -EINVAL)
			fail_msg("'%s' was accepted", bad[i]);
		assert_true(err[0] != '\0');
		assert_null(strchr(err, '\n'));	/* one line */
	}
}

static void test_parse_too_long(void **state)
{
	char s[400], err[256];
	struct check_target t;

	(void)state;
	memset(s, 'a', 300);
	strcpy(s + 300, ":80");
	assert_int_equal(parse(s, &t, err), -EINVAL);
	assert_non_null(strstr(err, "too long"));
}

static void test_syn_wait(void **state)
{
	(void)state;
	assert_int_equal(check_syn_wait_s(0), 1);
	assert_int_equal(check_syn_wait_s(2), 7);	/* 1 + 2 + 4 */
	assert_int_equal(check_syn_wait_s(6), 127);	/* the default */
	/* the timer stops doubling at 120 s: 1+2+...+64 = 127, then 120 each */
	assert_int_equal(check_syn_wait_s(8), 127 + 120 + 120);
}

static const char *joined(const struct check_advice *a)
{
	static char buf[CHECK_ADVICE_LINES * (CHECK_ADVICE_LEN + 1)];
	size_t n = 0;

	buf[0] = '\0';
	for (int i = 0; i < a->n; i++)
		n += snprintf(buf + n, sizeof(buf) - n, "%s\n", a->line[i]);
	return buf;
}

static void result(struct ct_result *r, enum ct_verdict v, enum ct_cause c)
{
	memset(r, 0, sizeof(*r));
	r->verdict = v;
	r->cause = c;
}

static void test_nft_rule_named(void **state)
{
	struct check_facts fx = { .dest = "127.0.0.1:8081", .nft_tried = true, .syn_retries = 6 };
	struct check_advice a;
	struct ct_result r;

	(void)state;
	result(&r, CT_V_TIMEOUT, CT_C_NETFILTER_DROP);
	fx.hit = (struct check_nft_hit){ .found = true, .family = "inet", .table = "fw",
					 .chain = "input", .handle = 7, .verdict = "drop",
					 .rule = "tcp dport 8081 drop comment \"block\"" };
	check_advise(&r, &fx, &a);
	assert_non_null(strstr(joined(&a), "dropped it: family inet table fw chain input "
				   "handle 7: tcp dport 8081 drop comment \"block\""));
	assert_non_null(strstr(joined(&a), "nft trace of this probe's own packets"));
	assert_non_null(strstr(joined(&a), "nft delete rule inet fw input handle 7"));
	/* a reject is said so, whatever the cause */
	result(&r, CT_V_REFUSED, CT_C_RST_RECEIVED);
	snprintf(fx.hit.verdict, sizeof(fx.hit.verdict), "reject");
	check_advise(&r, &fx, &a);
	assert_non_null(strstr(joined(&a), "rejected it"));
	/* a chain's policy has no handle */
	fx.hit.policy = true;
	check_advise(&r, &fx, &a);
	assert_non_null(strstr(joined(&a), "the policy of chain inet fw input"));
	assert_null(strstr(joined(&a), "handle"));
}

static void test_drop_not_named(void **state)
{
	struct check_facts fx = { .dest = "10.0.0.1:80", .nft_note = "nft is not installed" };
	struct check_advice a;
	struct ct_result r;

	(void)state;
	result(&r, CT_V_TIMEOUT, CT_C_NETFILTER_DROP);
	check_advise(&r, &fx, &a);
	assert_non_null(strstr(joined(&a), "could not be traced (nft is not installed)"));
	fx.nft_tried = true;
	check_advise(&r, &fx, &a);
	assert_non_null(strstr(joined(&a), "iptables-legacy"));
}

static void test_accept_queue(void **state)
{
	struct check_facts fx = { .dest = "127.0.0.1:9100", .somaxconn = 4096, .nr_listeners = 2 };
	struct check_advice a;
	struct ct_result r;

	(void)state;
	fx.listeners[0] = (struct check_listener){ .addr = "127.0.0.1:9100", .queue = 2,
						   .queue_max = 1, .pid = 42, .comm = "srv" };
	/* another namespace's listener is not the one the probe met */
	fx.listeners[1] = (struct check_listener){ .netns = "blue", .addr = "127.0.0.1:9100",
						   .queue = 9, .queue_max = 8 };
	result(&r, CT_V_TIMEOUT, CT_C_ACCEPT_QUEUE_FULL);
	check_advise(&r, &fx, &a);
	assert_non_null(strstr(joined(&a), "listener 127.0.0.1:9100, srv (pid 42): accept queue 2 "
				   "of max 1 (the backlog), net.core.somaxconn 4096"));
	assert_non_null(strstr(joined(&a), "raise the backlog"));
	assert_null(strstr(joined(&a), "of max 8"));
	/* unanswered SYNs to a local listener full now: the same advice */
	result(&r, CT_V_TIMEOUT, CT_C_UNKNOWN);
	r.facts.dest_local = true;
	assert_ptr_equal(check_full_listener(&fx), &fx.listeners[0]);
	check_advise(&r, &fx, &a);
	assert_non_null(strstr(joined(&a), "accept queue 2 of max 1"));
	/* not full: the timeout advice instead */
	fx.listeners[0].queue = 1;
	assert_null(check_full_listener(&fx));
	fx.syn_retries = 6;
	check_advise(&r, &fx, &a);
	assert_null(strstr(joined(&a), "listener 127.0.0.1:9100"));
	assert_non_null(strstr(joined(&a), "about 127 s"));
}

static void test_wildcard_listener_serves(void **state)
{
	struct check_facts fx = { .dest = "127.0.0.1:80", .nr_listeners = 1 };

	(void)state;
	fx.listeners[0] = (struct check_listener){ .addr = "0.0.0.0:80", .queue = 3, .queue_max = 2 };
	assert_non_null(check_full_listener(&fx));
	snprintf(fx.dest, sizeof(fx.dest), "[::1]:80");
	assert_null(check_full_listener(&fx));	/* an IPv4 wildcard takes no IPv6 */
	snprintf(fx.listeners[0].addr, sizeof(fx.listeners[0].addr), "[::]:80");
	assert_non_null(check_full_listener(&fx));
	snprintf(fx.dest, sizeof(fx.dest), "[::1]:81");
	assert_null(check_full_listener(&fx));	/* another port */
}

static void test_no_listener(void **state)
{
	struct check_facts fx = { .dest = "127.0.0.1:9200" };
	struct check_advice a;
	struct ct_result r;

	(void)state;
	result(&r, CT_V_REFUSED, CT_C_NO_LISTENER);
	check_advise(&r, &fx, &a);
	assert_non_null(strstr(joined(&a), "nothing listens on port 9200"));
	fx.nr_listeners = 2;
	fx.listeners[0] = (struct check_listener){ .addr = "[::1]:9200", .pid = 5, .comm = "a" };
	fx.listeners[1] = (struct check_listener){ .netns = "blue", .addr = "127.0.0.1:9200" };
	check_advise(&r, &fx, &a);
	assert_non_null(strstr(joined(&a), "[::1]:9200 in this netns, process a"));
	assert_non_null(strstr(joined(&a), "127.0.0.1:9200 in netns blue"));
}

static void test_route_and_timeout(void **state)
{
	struct check_facts fx = { .dest = "192.0.2.1:80", .syn_retries = 2, .timeout_s = 10,
				  .route = "RTNETLINK answers: No route to host" };
	struct check_advice a;
	struct ct_result r;

	(void)state;
	result(&r, CT_V_UNREACHABLE, CT_C_NO_ROUTE);
	check_advise(&r, &fx, &a);
	assert_non_null(strstr(joined(&a), "route lookup (ip route get): RTNETLINK answers: "
				   "No route to host"));
	result(&r, CT_V_TIMEOUT, CT_C_NO_SYNACK);
	r.flow.syn_retrans = 2;
	check_advise(&r, &fx, &a);
	assert_non_null(strstr(joined(&a), "3 SYN(s) left"));
	assert_non_null(strstr(joined(&a), "beyond this host"));
	assert_non_null(strstr(joined(&a), "net.ipv4.tcp_syn_retries = 2: the kernel gives up "
				   "after about 7 s"));
	assert_non_null(strstr(joined(&a), "at most 10 s"));
}

static void test_ok_and_unresolved(void **state)
{
	struct check_facts fx = { .dest = "[::1]:80" };
	struct check_advice a;
	struct ct_result r;

	(void)state;
	result(&r, CT_V_OK, CT_C_ESTABLISHED);
	check_advise(&r, &fx, &a);
	assert_int_equal(a.n, 1);
	assert_string_equal(a.line[0], "connected to [::1]:80: nothing to do");
	check_advise_unresolved("nosuch.invalid", "Name or service not known", &a);
	assert_string_equal(a.line[0], "nosuch.invalid does not resolve: Name or service not known");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_good),
		cmocka_unit_test(test_parse_bad),
		cmocka_unit_test(test_parse_too_long),
		cmocka_unit_test(test_syn_wait),
		cmocka_unit_test(test_nft_rule_named),
		cmocka_unit_test(test_drop_not_named),
		cmocka_unit_test(test_accept_queue),
		cmocka_unit_test(test_wildcard_listener_serves),
		cmocka_unit_test(test_no_listener),
		cmocka_unit_test(test_route_and_timeout),
		cmocka_unit_test(test_ok_and_unresolved),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
