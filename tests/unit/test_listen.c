// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Unit tests of `conntrace listen`'s pure logic: overflow attribution,
 * advice rules, ordering and the text/JSON printers.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <arpa/inet.h>

#include "json.h"
#include "listen.h"

static struct listener mk(const char *addr, uint16_t port, uint32_t q, uint32_t max)
{
	struct listener l;

	memset(&l, 0, sizeof(l));
	if (strchr(addr, ':')) {
		l.family = AF_INET6;
		inet_pton(AF_INET6, addr, l.laddr);
	} else {
		l.family = AF_INET;
		inet_pton(AF_INET, addr, l.laddr);
	}
	l.lport = port;
	l.accept_queue = q;
	l.accept_queue_peak = q;
	l.accept_queue_max = max;
	l.full_now = q > max;
	l.somaxconn = 4096;
	l.tcp_max_syn_backlog = 2048;
	l.backlog_requested = -1;
	l.netns_ino = 4026531840u;
	l.cookie = port;
	return l;
}

/* ---- attribution ---- */

static void attribute_no_overflow_is_exact_zero(void **state)
{
	struct overflow_share s[2] = { { .drops = 3 }, { .drops = 1, .was_full = true } };

	(void)state;
	assert_int_equal(overflow_attribute(0, 4, s, 2), OVERFLOW_METHOD_NONE);
	assert_int_equal(s[0].overflows, 0);
	assert_int_equal(s[1].overflows, 0);
}

static void attribute_all_drops_overflows_is_exact(void **state)
{
	struct overflow_share s[3] = { { .drops = 3 }, { .drops = 0 }, { .drops = 5 } };

	(void)state;
	assert_int_equal(overflow_attribute(8, 8, s, 3), OVERFLOW_METHOD_SK_DROPS);
	assert_int_equal(s[0].overflows, 3);
	assert_int_equal(s[1].overflows, 0);
	assert_int_equal(s[2].overflows, 5);
}

/* A listener that vanished took some of the namespace's drops: still exact. */
static void attribute_exact_when_listener_vanished(void **state)
{
	struct overflow_share s[1] = { { .drops = 4 } };

	(void)state;
	assert_int_equal(overflow_attribute(10, 10, s, 1), OVERFLOW_METHOD_SK_DROPS);
	assert_int_equal(s[0].overflows, 4);
}

static void attribute_prefers_full_listeners(void **state)
{
	struct overflow_share s[2] = { { .drops = 6, .was_full = true }, { .drops = 4 } };

	(void)state;
	/* 4 overflows out of 10 drops: SYN-queue drops happened too */
	assert_int_equal(overflow_attribute(4, 10, s, 2), OVERFLOW_METHOD_ATTRIBUTED);
	assert_int_equal(s[0].overflows, 4);
	assert_int_equal(s[1].overflows, 0);
}

static void attribute_never_exceeds_drops_nor_total(void **state)
{
	struct overflow_share s[3] = {
		{ .drops = 3, .was_full = true },
		{ .drops = 3, .was_full = true },
		{ .drops = 3, .was_full = true },
	};
	uint64_t sum;
	int i;

	(void)state;
	assert_int_equal(overflow_attribute(5, 9, s, 3), OVERFLOW_METHOD_ATTRIBUTED);
	for (sum = 0, i = 0; i < 3; i++) {
		assert_true(s[i].overflows <= s[i].drops);
		sum += s[i].overflows;
	}
	assert_int_equal(sum, 5);

	/* more overflows than drops among the listeners we saw: capped */
	s[0] = (struct overflow_share){ .drops = 1, .was_full = true };
	s[1] = (struct overflow_share){ .drops = 0 };
	s[2] = (struct overflow_share){ .drops = 2 };
	assert_int_equal(overflow_attribute(7, 9, s, 3), OVERFLOW_METHOD_ATTRIBUTED);
	assert_int_equal(s[0].overflows, 1);
	assert_int_equal(s[1].overflows, 0);
	assert_int_equal(s[2].overflows, 0);
}

static void attribute_without_full_evidence_shares_by_drops(void **state)
{
	struct overflow_share s[2] = { { .drops = 2 }, { .drops = 6 } };

	(void)state;
	assert_int_equal(overflow_attribute(4, 8 + 1, s, 2), OVERFLOW_METHOD_ATTRIBUTED);
	assert_int_equal(s[0].overflows + s[1].overflows, 4);
	assert_int_equal(s[0].overflows, 1);
	assert_int_equal(s[1].overflows, 3);
}

/* sk_drops moved more than ListenDrops: some drops were not listen drops. */
static void attribute_extra_sk_drops_is_not_exact(void **state)
{
	struct overflow_share s[1] = { { .drops = 5, .was_full = true } };

	(void)state;
	assert_int_equal(overflow_attribute(3, 3, s, 1), OVERFLOW_METHOD_ATTRIBUTED);
	assert_int_equal(s[0].overflows, 3);
}

static void method_merge_keeps_the_weaker(void **state)
{
	(void)state;
	assert_int_equal(overflow_method_merge(OVERFLOW_METHOD_NONE, OVERFLOW_METHOD_SK_DROPS),
			 OVERFLOW_METHOD_SK_DROPS);
	assert_int_equal(overflow_method_merge(OVERFLOW_METHOD_SK_DROPS, OVERFLOW_METHOD_ATTRIBUTED),
			 OVERFLOW_METHOD_ATTRIBUTED);
	assert_int_equal(overflow_method_merge(OVERFLOW_METHOD_FENTRY, OVERFLOW_METHOD_NONE),
			 OVERFLOW_METHOD_FENTRY);
	/* drops from before fentry was attached came from sk_drops: say so */
	assert_int_equal(overflow_method_merge(OVERFLOW_METHOD_FENTRY, OVERFLOW_METHOD_SK_DROPS),
			 OVERFLOW_METHOD_SK_DROPS);
	assert_string_equal(overflow_method_name(OVERFLOW_METHOD_ATTRIBUTED), "attributed");
	assert_string_equal(overflow_method_name(OVERFLOW_METHOD_SK_DROPS), "sk_drops");
}

/* ---- advice ---- */

static void advice_idle_listener_has_none(void **state)
{
	struct listener l = mk("127.0.0.1", 80, 0, 128);

	(void)state;
	l.backlog_requested = 128;
	l.backlog_source = LISTEN_BACKLOG_SYSCALL;
	assert_int_equal(listen_advise(&l), 0);
}

static void advice_full_queue_blames_accept(void **state)
{
	struct listener l = mk("127.0.0.1", 80, 2, 1);

	(void)state;
	l.full_streak = 1;
	l.overflows_interval = 9;
	assert_false(listen_advise(&l) & LISTEN_ADVICE_ACCEPT_SLOW); /* once is not "stays" */
	assert_true(l.advice & LISTEN_ADVICE_BACKLOG_LOW);
	l.full_streak = 2;
	assert_true(listen_advise(&l) & LISTEN_ADVICE_ACCEPT_SLOW);
}

static void advice_backlog_low_needs_pressure(void **state)
{
	struct listener l = mk("127.0.0.1", 80, 0, 16);

	(void)state;
	assert_int_equal(listen_advise(&l), 0);
	l.overflows_interval = 1;
	assert_int_equal(listen_advise(&l), LISTEN_ADVICE_BACKLOG_LOW);
	/* the application's backlog is not the limit when somaxconn is */
	l.somaxconn = 16;
	assert_int_equal(listen_advise(&l), 0);
}

static void advice_somaxconn_caps_backlog(void **state)
{
	struct listener l = mk("127.0.0.1", 80, 0, 4);
	char text[512];

	(void)state;
	l.somaxconn = 4;
	l.backlog_requested = 128;
	l.backlog_source = LISTEN_BACKLOG_SYSCALL;
	assert_int_equal(listen_advise(&l), LISTEN_ADVICE_SOMAXCONN);
	listen_advice_text(&l, LISTEN_ADVICE_SOMAXCONN, text, sizeof(text));
	assert_non_null(strstr(text, "net.core.somaxconn (4)"));
	assert_non_null(strstr(text, "128"));

	/* an unknown or inferred backlog proves nothing */
	l.backlog_source = LISTEN_BACKLOG_UNKNOWN;
	assert_int_equal(listen_advise(&l), 0);

	/* "as large as allowed" idiom: only under pressure */
	l.backlog_source = LISTEN_BACKLOG_SYSCALL;
	l.backlog_requested = 2147483647;
	assert_int_equal(listen_advise(&l), 0);
	l.full_events_interval = 3;
	assert_true(listen_advise(&l) & LISTEN_ADVICE_SOMAXCONN);
}

static void advice_syn_cookies(void **state)
{
	struct listener l = mk("::1", 443, 0, 64);
	char text[512];

	(void)state;
	l.cookies_interval = true;
	l.tcp_syncookies = 1;
	assert_int_equal(listen_advise(&l), LISTEN_ADVICE_SYN_COOKIES);
	listen_advice_text(&l, LISTEN_ADVICE_SYN_COOKIES, text, sizeof(text));
	assert_non_null(strstr(text, "tcp_max_syn_backlog"));
	/* tcp_syncookies=2: cookies for every SYN, whatever the queue */
	l.tcp_syncookies = 2;
	assert_int_equal(listen_advise(&l), 0);
}

static void advice_text_escapes_comm(void **state)
{
	struct listener l = mk("127.0.0.1", 80, 2, 1);
	char text[512];

	(void)state;
	l.pid = 42;
	memcpy(l.comm, "ev\x1b[31mil", 10);
	l.full_streak = 3;
	listen_advise(&l);
	listen_advice_text(&l, LISTEN_ADVICE_ACCEPT_SLOW, text, sizeof(text));
	assert_null(strchr(text, '\x1b'));
	assert_non_null(strstr(text, "pid 42"));
	assert_non_null(strstr(text, "accept()"));
}

/* ---- ordering, history, formatting ---- */

static void trouble_sorts_overflows_first(void **state)
{
	struct listener v[3] = { mk("127.0.0.1", 1, 0, 128), mk("127.0.0.1", 2, 5, 128),
				 mk("127.0.0.1", 3, 0, 128) };

	(void)state;
	v[2].overflows = 7;
	v[2].overflows_interval = 7;
	v[2].interval_s = 1;
	qsort(v, 3, sizeof(v[0]), listen_cmp_trouble);
	assert_int_equal(v[0].lport, 3); /* overflowing */
	assert_int_equal(v[1].lport, 2); /* busier queue */
	assert_int_equal(v[2].lport, 1);
}

static void history_keeps_the_last_samples(void **state)
{
	struct listener l = mk("127.0.0.1", 80, 0, 1);
	char buf[128];
	int i;

	(void)state;
	for (i = 0; i < LISTEN_HISTORY + 3; i++)
		listen_history_push(&l, i % 3); /* capacity 2: 0%, 50%, 100% */
	assert_int_equal(l.history_len, LISTEN_HISTORY);
	assert_int_equal(l.history[LISTEN_HISTORY - 1], ((LISTEN_HISTORY + 2) % 3) * 50);
	listen_format_sparkline(&l, false, buf, sizeof(buf));
	assert_int_equal(strlen(buf), LISTEN_HISTORY);
	assert_non_null(strchr(buf, '#'));
	assert_non_null(strchr(buf, '_'));
	listen_format_sparkline(&l, true, buf, sizeof(buf));
	assert_int_equal(strlen(buf), 3 * LISTEN_HISTORY); /* 3-byte blocks */
}

static void addresses_format_like_ss(void **state)
{
	struct listener a = mk("127.0.0.1", 8080, 0, 1), b = mk("::1", 443, 0, 1);
	char buf[64];

	(void)state;
	listen_format_addr(&a, buf, sizeof(buf));
	assert_string_equal(buf, "127.0.0.1:8080");
	listen_format_addr(&b, buf, sizeof(buf));
	assert_string_equal(buf, "[::1]:443");
}

/* Every row's columns start where the header's do. */
static void table_columns_align(void **state)
{
	struct listener v[3] = { mk("127.0.0.1", 80, 0, 128), mk("::1", 65535, 1234, 4096),
				 mk("0.0.0.0", 22, 0, 4) };
	struct listen_table_opts o = { .utf8 = false, .show_advice = false };
	char *buf = NULL, *line, *save, *hdr = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	const char *cols[] = { "SOMAXCONN", "FILL" };
	int i, lines = 0;

	(void)state;
	v[1].pid = 123456;
	memcpy(v[1].comm, "a\tb", 4);
	v[1].overflows = 123456789;
	listen_print_table(f, v, 3, &o);
	fclose(f);
	assert_null(strchr(buf, '\t'));
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (!hdr) {
			hdr = line;
			continue;
		}
		lines++;
		for (i = 0; i < 2; i++) {
			size_t end = strstr(hdr, cols[i]) - hdr;

			/* right-aligned numbers end, left-aligned text starts, at the header's column */
			if (i == 0)
				assert_true(line[end + strlen(cols[i]) - 1] != ' ' &&
					    line[end + strlen(cols[i])] == ' ');
			else
				assert_true(line[end - 1] == ' ' && line[end] != ' ');
		}
	}
	assert_int_equal(lines, 3);
	free(buf);
}

/* On a terminal: advice wraps at its width, rows stop at its height. */
static int count_lines(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static void table_fits_the_terminal(void **state)
{
	struct listener v[4] = { mk("127.0.0.1", 80, 2, 1), mk("127.0.0.1", 81, 0, 1),
				 mk("127.0.0.1", 82, 0, 1), mk("127.0.0.1", 83, 0, 1) };
	struct listen_table_opts o = { .show_advice = true, .width = 120 };
	char *buf = NULL, *line, *save;
	size_t len = 0, shown;
	FILE *f = open_memstream(&buf, &len);
	int first_block, advice_lines = 0;

	(void)state;
	v[0].full_streak = 2;
	listen_advise(&v[0]);
	/* header and the first listener with its wrapped advice */
	listen_print_table(f, v, 1, &o);
	fclose(f);
	first_block = count_lines(buf);
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (line[0] != ' ')
			continue;
		advice_lines++;
		assert_true(strlen(line) <= 120);
	}
	assert_true(advice_lines > 2); /* two rules, at least one wrapped */
	free(buf);

	/* room for that block and one line more: the rest is announced */
	o.max_lines = first_block + 1;
	buf = NULL;
	f = open_memstream(&buf, &len);
	shown = listen_print_table(f, v, 4, &o);
	fclose(f);
	assert_int_equal(shown, 1);
	assert_int_equal(count_lines(buf), o.max_lines);
	assert_non_null(strstr(buf, "3 more listeners"));
	free(buf);
}

static void json_listener_has_the_fields(void **state)
{
	struct listener l = mk("127.0.0.1", 9000, 2, 1);
	const char *keys[] = { "\"type\":\"listener\"", "\"netns\":", "\"laddr\":\"127.0.0.1\"",
			       "\"lport\":9000", "\"pid\":7", "\"comm\":", "\"accept_queue\":2",
			       "\"accept_queue_peak\":2", "\"accept_queue_max\":1",
			       "\"backlog_requested\":null", "\"somaxconn\":4096",
			       "\"syn_queue\":0", "\"overflows\":18", "\"synack_retrans\":0",
			       "\"resets_sent\":0", "\"method\":\"sk_drops\"",
			       "\"advice\":[{\"rule\":\"accept_slow\"" };
	char *buf = NULL;
	size_t len = 0, i;
	FILE *f = open_memstream(&buf, &len);
	struct json j;

	(void)state;
	l.pid = 7;
	memcpy(l.comm, "q\"x", 4);
	l.overflows = 18;
	l.method = OVERFLOW_METHOD_SK_DROPS;
	l.full_streak = 2;
	listen_advise(&l);
	json_init(&j, f);
	listen_json_listener(&j, &l, 1.5);
	fclose(f);
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (!strstr(buf, keys[i]))
			fail_msg("missing %s in %s", keys[i], buf);
	}
	assert_non_null(strstr(buf, "\"comm\":\"q\\\"x\""));
	assert_int_equal(buf[len - 1], '\n');
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(attribute_no_overflow_is_exact_zero),
		cmocka_unit_test(attribute_all_drops_overflows_is_exact),
		cmocka_unit_test(attribute_exact_when_listener_vanished),
		cmocka_unit_test(attribute_prefers_full_listeners),
		cmocka_unit_test(attribute_never_exceeds_drops_nor_total),
		cmocka_unit_test(attribute_without_full_evidence_shares_by_drops),
		cmocka_unit_test(attribute_extra_sk_drops_is_not_exact),
		cmocka_unit_test(method_merge_keeps_the_weaker),
		cmocka_unit_test(advice_idle_listener_has_none),
		cmocka_unit_test(advice_full_queue_blames_accept),
		cmocka_unit_test(advice_backlog_low_needs_pressure),
		cmocka_unit_test(advice_somaxconn_caps_backlog),
		cmocka_unit_test(advice_syn_cookies),
		cmocka_unit_test(advice_text_escapes_comm),
		cmocka_unit_test(trouble_sorts_overflows_first),
		cmocka_unit_test(history_keeps_the_last_samples),
		cmocka_unit_test(addresses_format_like_ss),
		cmocka_unit_test(table_columns_align),
		cmocka_unit_test(table_fits_the_terminal),
		cmocka_unit_test(json_listener_has_the_fields),
	};

	return cmocka_run_group_tests_name("listen", tests, NULL, NULL);
}
