// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Unit tests of `conntrace listen`'s SYN queue view (user/listen_clients.c):
 * the kernel's SYN queue limit, the ranking of the clients that lost SYNs,
 * and how both are printed (table, JSON).
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

/* tcp_conn_request(): cookies off, on, always. */
static void syn_queue_max_follows_the_kernel(void **state)
{
	(void)state;
	/* cookies off: backlog + 1, unless 3/4 of tcp_max_syn_backlog is lower */
	assert_int_equal(listen_syn_queue_max(2, 2048, 0), 3);
	assert_int_equal(listen_syn_queue_max(8, 8, 0), 7);     /* 8 - 2 + 1 */
	assert_int_equal(listen_syn_queue_max(128, 128, 0), 97); /* 128 - 32 + 1 */
	assert_int_equal(listen_syn_queue_max(4096, 3, 0), 4);   /* 3 - 0 + 1 */
	assert_int_equal(listen_syn_queue_max(0, 2048, 0), 1);   /* listen(fd, 0) */
	/* cookies on: the max_syn_backlog rule does not apply */
	assert_int_equal(listen_syn_queue_max(8, 8, 1), 9);
	assert_int_equal(listen_syn_queue_max(4096, 128, 1), 4097);
	/* every SYN gets a cookie: nothing is queued */
	assert_int_equal(listen_syn_queue_max(8, 8, 2), 0);
	/* no overflow at the top of the range */
	assert_int_equal(listen_syn_queue_max(UINT32_MAX, UINT32_MAX, 1), UINT32_MAX);
	assert_int_equal(listen_syn_queue_max(UINT32_MAX, UINT32_MAX, 0),
			 UINT32_MAX - (UINT32_MAX >> 2) + 1);
}

static struct listen_drop_rec rec(const char *addr, uint16_t port, uint32_t aq, uint32_t sq)
{
	struct listen_drop_rec r;

	memset(&r, 0, sizeof(r));
	r.cookie = 42;
	r.family = strchr(addr, ':') ? AF_INET6 : AF_INET;
	inet_pton(r.family, addr, r.addr);
	r.port = port;
	r.accept_queue_full = aq;
	r.syn_queue_full = sq;
	return r;
}

static void addr_is(const struct listen_top_client *c, const char *want)
{
	char buf[INET6_ADDRSTRLEN];

	inet_ntop(c->family, c->addr, buf, sizeof(buf));
	assert_string_equal(buf, want);
}

/* Ports of one address are summed and counted; most dropped first. */
static void rank_groups_by_address(void **state)
{
	struct listen_drop_rec v[] = {
		rec("192.0.2.3", 1000, 1, 0), rec("192.0.2.2", 2000, 2, 0),
		rec("192.0.2.3", 1001, 0, 3), rec("2001:db8::1", 5, 1, 0),
		rec("192.0.2.4", 7, 0, 0), /* nothing lost: left out */
		rec("192.0.2.2", 2001, 1, 0), rec("192.0.2.3", 1002, 1, 0),
	};
	struct listen_top_client out[LISTEN_TOP_MAX];
	size_t n, total;

	(void)state;
	total = listen_rank_clients(v, sizeof(v) / sizeof(v[0]), out, LISTEN_TOP_MAX, &n);
	assert_int_equal(total, 3);
	assert_int_equal(n, 3);
	addr_is(&out[0], "192.0.2.3");
	assert_int_equal(out[0].ports, 3);
	assert_int_equal(out[0].accept_queue_full, 2);
	assert_int_equal(out[0].syn_queue_full, 3);
	addr_is(&out[1], "192.0.2.2");
	assert_int_equal(out[1].ports, 2);
	assert_int_equal(out[1].accept_queue_full, 3);
	addr_is(&out[2], "2001:db8::1");
	assert_int_equal(out[2].ports, 1);
}

/* Top N keeps the N first; the total still counts every address. */
static void rank_keeps_the_top_n(void **state)
{
	struct listen_drop_rec v[] = {
		rec("127.0.0.5", 1, 1, 0), rec("127.0.0.4", 1, 4, 0), rec("127.0.0.3", 1, 1, 0),
		rec("127.0.0.2", 1, 0, 1), rec("127.0.0.1", 1, 2, 0),
	};
	struct listen_top_client out[2];
	size_t n, total;

	(void)state;
	total = listen_rank_clients(v, 5, out, 2, &n);
	assert_int_equal(total, 5);
	assert_int_equal(n, 2);
	addr_is(&out[0], "127.0.0.4");
	addr_is(&out[1], "127.0.0.1");
	/* ties: more accept-queue drops first, then the lower address */
	total = listen_rank_clients(v, 5, out, 0, &n);
	assert_int_equal(total, 5);
	assert_int_equal(n, 0);
	{
		struct listen_drop_rec t[] = { rec("127.0.0.9", 1, 0, 1), rec("127.0.0.8", 1, 0, 1),
					       rec("127.0.0.7", 1, 1, 0) };
		struct listen_top_client o3[3];

		listen_rank_clients(t, 3, o3, 3, &n);
		assert_int_equal(n, 3);
		addr_is(&o3[0], "127.0.0.7");
		addr_is(&o3[1], "127.0.0.8");
		addr_is(&o3[2], "127.0.0.9");
	}
	assert_int_equal(listen_rank_clients(v, 0, out, 2, &n), 0);
	assert_int_equal(n, 0);
}

static void client_text(void **state)
{
	struct listen_drop_rec v[] = { rec("192.0.2.9", 1, 2, 1), rec("192.0.2.9", 2, 1, 0) };
	struct listen_top_client out[1];
	char buf[160];
	size_t n;

	(void)state;
	listen_rank_clients(v, 2, out, 1, &n);
	listen_format_client(&out[0], buf, sizeof(buf));
	assert_string_equal(buf, "192.0.2.9 (2 ports): 4 SYNs dropped, 3 accept_queue_full, "
			    "1 syn_queue_full");
}

static struct listener mk(void)
{
	struct listener l;

	memset(&l, 0, sizeof(l));
	l.family = AF_INET;
	inet_pton(AF_INET, "127.0.0.1", l.laddr);
	l.lport = 80;
	l.accept_queue = 2;
	l.accept_queue_peak = 2;
	l.accept_queue_max = 1;
	l.syn_queue_max = 2;
	l.backlog_requested = -1;
	return l;
}

/* The table: SYNMAX and COOKIES columns, the clients under their listener. */
static void table_shows_syn_columns_and_clients(void **state)
{
	struct listen_drop_rec v[] = { rec("192.0.2.2", 1, 3, 0), rec("192.0.2.3", 1, 1, 0) };
	struct listen_table_opts o = { .show_advice = false };
	struct listener l = mk();
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	(void)state;
	l.syn_seen = true;
	l.syn_cookies = 7;
	l.syn_cookies_inferred = true;
	l.dropped_clients = listen_rank_clients(v, 2, l.top, 1, &l.ntop);
	listen_print_table(f, &l, 1, &o);
	fclose(f);
	assert_non_null(strstr(buf, "SYNMAX"));
	assert_non_null(strstr(buf, " 7~ "));
	assert_non_null(strstr(buf, "< 192.0.2.2 (1 port): 3 SYNs dropped, 3 accept_queue_full"));
	assert_non_null(strstr(buf, "< 1 more client lost SYNs (--top)"));
	free(buf);
}

static void json_has_the_syn_fields(void **state)
{
	struct listen_drop_rec v[] = { rec("192.0.2.2", 1, 3, 0), rec("192.0.2.2", 9, 0, 2) };
	struct listener l = mk();
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	struct json j;

	(void)state;
	l.syn_seen = true;
	l.syn_cookies = 4;
	l.dropped_clients = listen_rank_clients(v, 2, l.top, 5, &l.ntop);
	json_init(&j, f);
	listen_json_listener(&j, &l, 1.5);
	l.syn_seen = false; /* SYNs not watched: null, not a zero */
	listen_json_listener(&j, &l, 1.5);
	fclose(f);
	assert_non_null(strstr(buf, "\"syn_queue_max\":2,"));
	assert_non_null(strstr(buf, "\"syn_cookies\":4,\"syn_cookies_method\":\"exact\","));
	assert_non_null(strstr(buf, "\"dropped_clients\":[{\"raddr\":\"192.0.2.2\",\"ports\":2,"
				    "\"syns_dropped\":5,\"causes\":{\"accept_queue_full\":3,"
				    "\"syn_queue_full\":2}}],\"dropped_clients_total\":1"));
	assert_non_null(strstr(buf, "\"syn_cookies\":null,\"syn_cookies_method\":null,"
				    "\"dropped_clients\":null,\"dropped_clients_total\":null"));
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(syn_queue_max_follows_the_kernel),
		cmocka_unit_test(rank_groups_by_address),
		cmocka_unit_test(rank_keeps_the_top_n),
		cmocka_unit_test(client_text),
		cmocka_unit_test(table_shows_syn_columns_and_clients),
		cmocka_unit_test(json_has_the_syn_fields),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
