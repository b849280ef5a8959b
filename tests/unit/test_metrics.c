// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * metrics.c: --metrics addresses table-tested, the exposition text checked
 * line by line (counters, cumulative histogram buckets, the listener bound,
 * label escaping), and the real libmicrohttpd server on a loopback port:
 * status codes, headers, a port in use, signals kept off its thread, and
 * scrapes racing with a thread that counts verdicts.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "metrics.h"

#define CHECK(cond, ...) do { if (!(cond)) fail_msg(__VA_ARGS__); } while (0)

/* ---- helpers ---- */

static struct ct_result result(enum ct_verdict v, enum ct_cause c, double secs, unsigned syns)
{
	struct ct_result r;

	memset(&r, 0, sizeof(r));
	r.verdict = v;
	r.cause = c;
	r.duration_ns = secs * 1e9;
	r.flow.syn_retrans = syns;
	return r;
}

/* The value of the sample whose line starts with `series ` (exactly), or -1. */
static double sample(const char *text, const char *series)
{
	size_t n = strlen(series);

	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (!strncmp(p, series, n) && p[n] == ' ')
			return strtod(p + n + 1, NULL);
	return -1;
}

static char *render(struct metrics *m)
{
	size_t len = 0;
	char *t = metrics_render(m, &len);

	assert_non_null(t);
	assert_int_equal(strlen(t), len);
	return t;
}

/* One HTTP/1.0 exchange with 127.0.0.1 or ::1; the whole reply. */
static char *http(int family, uint16_t port, const char *request)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t len;
	char *buf = malloc(1 << 20);
	size_t n = 0;
	ssize_t r;
	int fd;

	assert_non_null(buf);
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		len = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		sin6->sin6_addr = in6addr_loopback;
		len = sizeof(*sin6);
	}
	fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	CHECK(!connect(fd, (struct sockaddr *)&ss, len), "connect to port %u: %s", port,
	      strerror(errno));
	assert_int_equal(write(fd, request, strlen(request)), (ssize_t)strlen(request));
	while ((r = read(fd, buf + n, (1 << 20) - 1 - n)) > 0)
		n += r;
	buf[n] = '\0';
	close(fd);
	return buf;
}

static struct metrics *serving(int family)
{
	struct sockaddr_storage ss;
	socklen_t len;
	struct metrics *m = metrics_new();
	char err[256];

	assert_non_null(m);
	assert_int_equal(metrics_parse_addr(family == AF_INET ? "127.0.0.1:1" : "[::1]:1", &ss,
					    &len, err, sizeof(err)), 0);
	/* port 0: the kernel picks a free one */
	((struct sockaddr_in *)&ss)->sin_port = 0;	/* same offset in sockaddr_in6 */
	CHECK(!metrics_bind(m, (struct sockaddr *)&ss, len, err, sizeof(err)), "bind: %s", err);
	assert_true(metrics_port(m) > 0);
	CHECK(!metrics_start(m, err, sizeof(err)), "start: %s", err);
	return m;
}

/* ---- addresses ---- */

static void test_parse_addr(void **state)
{
	static const struct { const char *arg; int family; const char *addr; unsigned port; }
	good[] = {
		{ "127.0.0.1:9917", AF_INET, "127.0.0.1", 9917 },
		{ "0.0.0.0:1", AF_INET, "0.0.0.0", 1 },
		{ "localhost:65535", AF_INET, "127.0.0.1", 65535 },
		{ "[::1]:9917", AF_INET6, "::1", 9917 },
		{ "[fe80::1]:80", AF_INET6, "fe80::1", 80 },
		{ ":9917", AF_INET6, "::", 9917 },
		{ "[::]:9917", AF_INET6, "::", 9917 },
	};
	static const struct { const char *arg; const char *want; } bad[] = {
		{ "", "not ADDR:PORT" }, { "127.0.0.1", "not ADDR:PORT" }, { "9917", "not ADDR:PORT" },
		{ "127.0.0.1:", "not ADDR:PORT" }, { "127.0.0.1:x", "not ADDR:PORT" },
		{ "127.0.0.1:12x", "not ADDR:PORT" }, { "127.0.0.1:-1", "not ADDR:PORT" },
		{ "127.0.0.1: 1", "not ADDR:PORT" }, { "127.0.0.1:0", "out of range" },
		{ "127.0.0.1:65536", "out of range" }, { "127.0.0.1:99999999999999999999", "out of range" },
		{ "::1:9917", "brackets" }, { "[::1]", "not ADDR:PORT" }, { "[::1:9917", "not ADDR:PORT" },
		{ "[127.0.0.1]:1", "not a numeric address" }, { "[]:1", "not a numeric address" },
		{ "256.0.0.1:1", "not a numeric address" }, { "example.org:80", "not a numeric address" },
		{ "\033[2J:1", "not a numeric address" },
	};
	struct sockaddr_storage ss;
	socklen_t len;
	char err[256], a[64];

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		int rc = metrics_parse_addr(good[i].arg, &ss, &len, err, sizeof(err));
		const void *ap;
		unsigned port;

		CHECK(rc == 0, "'%s': %d (%s)", good[i].arg, rc, err);
		CHECK(ss.ss_family == good[i].family, "'%s': family %d", good[i].arg, ss.ss_family);
		if (ss.ss_family == AF_INET) {
			ap = &((struct sockaddr_in *)&ss)->sin_addr;
			port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
			assert_int_equal(len, sizeof(struct sockaddr_in));
		} else {
			ap = &((struct sockaddr_in6 *)&ss)->sin6_addr;
			port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
			assert_int_equal(len, sizeof(struct sockaddr_in6));
		}
		inet_ntop(ss.ss_family, ap, a, sizeof(a));
		CHECK(!strcmp(a, good[i].addr) && port == good[i].port, "'%s': %s port %u",
		      good[i].arg, a, port);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = metrics_parse_addr(bad[i].arg, &ss, &len, err, sizeof(err));

		CHECK(rc == -EINVAL, "'%s': expected -EINVAL, got %d", bad[i].arg, rc);
		CHECK(strstr(err, "--metrics") && strstr(err, bad[i].want) && !strchr(err, '\n') &&
		      !strchr(err, '\033'), "'%s': message '%s'", bad[i].arg, err);
	}
}

static void test_port_in_use_is_one_line(void **state)
{
	struct metrics *a = serving(AF_INET), *b = metrics_new();
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(metrics_port(a)),
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	char err[256], want[64];
	int rc;

	(void)state;
	rc = metrics_bind(b, (struct sockaddr *)&sin, sizeof(sin), err, sizeof(err));
	assert_int_equal(rc, -EADDRINUSE);
	snprintf(want, sizeof(want), "--metrics 127.0.0.1:%u: Address already in use",
		 metrics_port(a));
	assert_string_equal(err, want);
	metrics_free(b);
	metrics_free(a);
}

/* ---- exposition text ---- */

static void test_render_empty(void **state)
{
	struct metrics *m = metrics_new();
	char *t;

	(void)state;
	t = render(m);
	CHECK(strstr(t, "# TYPE conntrace_verdicts_total counter\n"), "%s", t);
	CHECK(!strstr(t, "conntrace_verdicts_total{"), "a verdict series before any verdict");
	assert_true(sample(t, "conntrace_connect_duration_seconds_count{verdict=\"timeout\"}") == 0);
	assert_true(sample(t, "conntrace_lost_records_total") == 0);
	assert_true(sample(t, "conntrace_build_info{version=\"\",kernel=\"\",probes=\"\"}") == 1);
	/* no listener source in this process: no listener families at all */
	CHECK(!strstr(t, "conntrace_listen_overflows_total") && !strstr(t, "accept_queue"),
	      "listener families without a listener source");
	free(t);
	metrics_free(m);
}

static void test_render_counts_and_histogram(void **state)
{
	struct metrics *m = metrics_new();
	struct ct_result r;
	double v;
	char *t;

	(void)state;
	r = result(CT_V_REFUSED, CT_C_NO_LISTENER, 0.0003, 0);
	metrics_verdict(m, &r);
	metrics_verdict(m, &r);
	r = result(CT_V_TIMEOUT, CT_C_NETFILTER_DROP, 7.2, 5);
	metrics_verdict(m, &r);
	r = result(CT_V_TIMEOUT, CT_C_NETFILTER_DROP, 200, 6);	/* past the last bound */
	metrics_verdict(m, &r);
	r = result(CT_V_SLOW, CT_C_NO_SYNACK, 1.0, 1);	/* on a bound: le is <= */
	metrics_verdict(m, &r);
	r = result(CT_V_ABANDONED, CT_C_APP_CLOSED, 0, 0);
	r.flow.flags = CT_F_EVICTED;				/* no start: no duration */
	metrics_verdict(m, &r);
	r = result(CT_V_MAX, CT_C_UNKNOWN, 1, 1);		/* out of range: ignored */
	metrics_verdict(m, &r);
	r = result(CT_V_REFUSED, CT_C_NO_LISTENER, 0.5, 3);	/* inbound: counted apart */
	r.inbound = true;
	metrics_verdict(m, &r);
	metrics_kernel_counters(m, 11, 12);
	metrics_output_counters(m, 3, 4);
	t = render(m);

	assert_true(sample(t, "conntrace_verdicts_total{verdict=\"refused\",cause=\"no_listener\",direction=\"outbound\"}") == 2);
	assert_true(sample(t, "conntrace_verdicts_total{verdict=\"timeout\",cause=\"netfilter_drop\",direction=\"outbound\"}") == 2);
	assert_true(sample(t, "conntrace_verdicts_total{verdict=\"slow\",cause=\"no_synack\",direction=\"outbound\"}") == 1);
	assert_true(sample(t, "conntrace_verdicts_total{verdict=\"abandoned\",cause=\"app_closed\",direction=\"outbound\"}") == 1);
	assert_true(sample(t, "conntrace_verdicts_total{verdict=\"refused\",cause=\"no_listener\",direction=\"inbound\"}") == 1);
	assert_true(sample(t, "conntrace_syn_retransmits_total") == 12);
	assert_true(sample(t, "conntrace_lost_records_total") == 11);
	assert_true(sample(t, "conntrace_flow_evictions_total") == 12);
	assert_true(sample(t, "conntrace_output_write_errors_total") == 3);
	assert_true(sample(t, "conntrace_output_records_lost_total") == 4);
#define B(v, le) sample(t, "conntrace_connect_duration_seconds_bucket{verdict=\"" v "\",le=\"" le "\"}")
	assert_true(B("refused", "0.0005") == 2);
	assert_true(B("refused", "+Inf") == 2);
	assert_true(B("timeout", "5") == 0);
	assert_true(B("timeout", "10") == 1);
	assert_true(B("timeout", "120") == 1);
	assert_true(B("timeout", "+Inf") == 2);
	assert_true(B("slow", "0.5") == 0);
	assert_true(B("slow", "1") == 1);
	assert_true(B("abandoned", "+Inf") == 0);
#undef B
	assert_true(sample(t, "conntrace_connect_duration_seconds_count{verdict=\"timeout\"}") == 2);
	v = sample(t, "conntrace_connect_duration_seconds_sum{verdict=\"timeout\"}");
	CHECK(v > 207.199999 && v < 207.200001, "timeout sum %f", v);
	assert_true(sample(t, "conntrace_connect_duration_seconds_count{verdict=\"abandoned\"}") == 0);
	free(t);
	metrics_free(m);
}

/* Attempts counted in the kernel (issue 11): lost ones under cause="lost", OK ones unsent
 * added to ok/established, both outbound; neither is in the histogram. */
static void test_kernel_verdicts(void **state)
{
	struct metrics *m = metrics_new();
	uint64_t lost[CT_V_MAX] = { [CT_V_REFUSED] = 40, [CT_V_TIMEOUT] = 2 };
	struct ct_result r = result(CT_V_OK, CT_C_ESTABLISHED, 0.001, 0);
	char *t;

	(void)state;
	metrics_verdict(m, &r);
	metrics_kernel_verdicts(m, lost, 7);
	lost[CT_V_REFUSED] = 41;	/* totals: the last call wins */
	metrics_kernel_verdicts(m, lost, 9);
	t = render(m);
	assert_true(sample(t, "conntrace_verdicts_total{verdict=\"refused\",cause=\"lost\",direction=\"outbound\"}") == 41);
	assert_true(sample(t, "conntrace_verdicts_total{verdict=\"timeout\",cause=\"lost\",direction=\"outbound\"}") == 2);
	assert_true(sample(t, "conntrace_verdicts_total{verdict=\"ok\",cause=\"established\",direction=\"outbound\"}") == 10);
	CHECK(!strstr(t, "verdict=\"ok\",cause=\"lost\""), "a zero lost series: %s", t);
	CHECK(!strstr(t, "cause=\"lost\",direction=\"inbound\""), "an inbound lost series: %s", t);
	CHECK(!strstr(t, "cause=\"established\",direction=\"inbound\""), "ok_unsent inbound: %s", t);
	assert_true(sample(t, "conntrace_connect_duration_seconds_count{verdict=\"ok\"}") == 1);
	assert_true(sample(t, "conntrace_connect_duration_seconds_count{verdict=\"refused\"}") == 0);
	free(t);
	metrics_free(m);
}

/* The kernel's OK histogram (CT_OKH_*) merges into the ok series, bucket by bucket,
 * and its bounds are the labels' (le, in seconds). */
static void test_kernel_ok_histogram(void **state)
{
	static const uint64_t bounds_us[CT_OKH_BUCKETS] = CT_OKH_BOUNDS_US;
	struct metrics *m = metrics_new();
	struct ct_result r = result(CT_V_OK, CT_C_ESTABLISHED, 0.0004, 0);	/* le 0.0005 */
	uint64_t h[CT_OKH_MAX] = { 0 };
	double v;
	char *t;

	(void)state;
	metrics_verdict(m, &r);
	h[0] = 5;		/* <= 0.5 ms */
	h[2] = 3;		/* <= 2.5 ms */
	h[CT_OKH_OVER] = 1;	/* > 120 s: +Inf only */
	h[CT_OKH_SUM_NS] = 2500000000ULL;
	metrics_kernel_ok_hist(m, h);
	t = render(m);
#define B(le) sample(t, "conntrace_connect_duration_seconds_bucket{verdict=\"ok\",le=\"" le "\"}")
	assert_true(B("0.0005") == 6);
	assert_true(B("0.001") == 6);
	assert_true(B("0.0025") == 9);
	assert_true(B("120") == 9);
	assert_true(B("+Inf") == 10);
#undef B
	assert_true(sample(t, "conntrace_connect_duration_seconds_count{verdict=\"ok\"}") == 10);
	v = sample(t, "conntrace_connect_duration_seconds_sum{verdict=\"ok\"}");
	CHECK(v > 2.50039 && v < 2.50041, "ok sum %f", v);
	/* every le label, in order, is the kernel's bound */
	for (int b = 0; b < CT_OKH_BUCKETS; b++) {
		const char *key = "conntrace_connect_duration_seconds_bucket{verdict=\"ok\",le=\"";
		const char *p = t;

		for (int i = 0; i <= b; i++) {
			p = strstr(p, key);
			assert_non_null(p);
			p += strlen(key);
		}
		v = strtod(p, NULL) * 1e6;
		CHECK(v > bounds_us[b] - 0.5 && v < bounds_us[b] + 0.5, "bucket %d: le %.12s, "
		      "the kernel's bound %llu us", b, p, (unsigned long long)bounds_us[b]);
	}
	free(t);
	metrics_free(m);
}

static void test_buckets_are_cumulative_and_sorted(void **state)
{
	struct metrics *m = metrics_new();
	char *t, *p;
	double last_le = -1, last = -1;
	unsigned n = 0;

	(void)state;
	for (int i = 0; i < 1000; i++) {
		struct ct_result r = result(CT_V_OK, CT_C_ESTABLISHED, i * 0.13, 0);

		metrics_verdict(m, &r);
	}
	t = render(m);
	for (p = t; (p = strstr(p, "_bucket{verdict=\"ok\",le=\"")); p++) {
		char *q = p + strlen("_bucket{verdict=\"ok\",le=\"");
		double le = strncmp(q, "+Inf", 4) ? strtod(q, NULL) : 1e300;
		double v = strtod(strchr(q, ' ') + 1, NULL);

		CHECK(le > last_le, "le %g after %g", le, last_le);
		CHECK(v >= last, "bucket %g: %g after %g (not cumulative)", le, v, last);
		last_le = le;
		last = v;
		n++;
	}
	assert_int_equal(n, 18);
	assert_true(last == 1000);
	free(t);
	metrics_free(m);
}

static void test_build_info_labels(void **state)
{
	struct probe_report rep[3] = {
		{ .signal = "connect", .hook = "tp_btf/inet_sock_set_state", .ok = true },
		{ .signal = "connect_error", .hook = "fentry/tcp_v4_connect", .ok = true },
		{ .signal = "drop", .hook = "-", .ok = false },
	};
	struct metrics *m = metrics_new();
	char *t;

	(void)state;
	/* a kernel release is any bytes uname gives: quote, backslash, newline */
	metrics_build_info(m, "1.2-dirty", "6.1\"x\\y\nz", rep, 3);
	t = render(m);
	CHECK(strstr(t, "conntrace_build_info{version=\"1.2-dirty\",kernel=\"6.1\\\"x\\\\y\\nz\","
		      "probes=\"connect=tp_btf,connect_error=fentry,drop=none\"} 1\n"), "%s", t);
	free(t);
	metrics_free(m);
}

static void test_listeners_bounded_top_n(void **state)
{
	enum { N = METRICS_MAX_LISTENERS + 36 };
	struct metrics_listener *v = calloc(N, sizeof(*v));
	struct metrics *m = metrics_new();
	char *t, series[160];
	unsigned lines = 0;

	(void)state;
	assert_non_null(v);
	for (unsigned i = 0; i < N; i++) {
		v[i].netns = 4026531840u + i % 3;
		snprintf(v[i].laddr, sizeof(v[i].laddr), i % 2 ? "::" : "127.0.0.1");
		v[i].lport = 1000 + i;
		v[i].overflows = i;	/* the top ones are the last */
		v[i].accept_queue = i % 5;
		v[i].accept_queue_max = 4;
	}
	metrics_set_listeners(m, v, N);
	t = render(m);
	for (const char *p = t; (p = strstr(p, "\nconntrace_listen_overflows_total{")); p++)
		lines++;
	assert_int_equal(lines, METRICS_MAX_LISTENERS);
	assert_true(sample(t, "conntrace_listeners_omitted") == 36);
	/* the one with the most overflows is in, with all three series */
	snprintf(series, sizeof(series), "conntrace_listen_overflows_total{netns=\"%llu\","
		 "laddr=\"%s\",lport=\"%u\"}", (unsigned long long)v[N - 1].netns, v[N - 1].laddr,
		 v[N - 1].lport);
	assert_true(sample(t, series) == N - 1);
	snprintf(series, sizeof(series), "conntrace_accept_queue_length_max{netns=\"%llu\","
		 "laddr=\"%s\",lport=\"%u\"}", (unsigned long long)v[N - 1].netns, v[N - 1].laddr,
		 v[N - 1].lport);
	assert_true(sample(t, series) == 4);
	/* the one with the fewest is out */
	snprintf(series, sizeof(series), "lport=\"%u\"}", v[0].lport);
	CHECK(!strstr(t, series), "listener with 0 overflows exported over busier ones");
	free(t);
	/* a later, smaller set replaces it all */
	metrics_set_listeners(m, v, 2);
	t = render(m);
	assert_true(sample(t, "conntrace_listeners_omitted") == 0);
	lines = 0;
	for (const char *p = t; (p = strstr(p, "\nconntrace_accept_queue_length{")); p++)
		lines++;
	assert_int_equal(lines, 2);
	free(t);
	/* and an empty one keeps the families: the source is there, no listener */
	metrics_set_listeners(m, NULL, 0);
	t = render(m);
	CHECK(strstr(t, "# TYPE conntrace_accept_queue_length gauge"), "%s", t);
	free(t);
	free(v);
	metrics_free(m);
}

static void test_listener_readings(void **state)
{
	struct metrics *m = metrics_new();
	struct metrics_listener l = { .netns = 7, .laddr = "::1", .lport = 80, .overflows = 3,
				      .accept_queue = 2, .accept_queue_max = 1 };
	char *t;

	(void)state;
	metrics_listeners_begin(m);
	metrics_listener_add(m, &l);
	l.lport = 81;
	l.overflows = 0;
	metrics_listener_add(m, &l);
	metrics_listeners_end(m);
	t = render(m);
	assert_true(sample(t, "conntrace_listen_overflows_total{netns=\"7\",laddr=\"::1\",lport=\"80\"}") == 3);
	assert_true(sample(t, "conntrace_accept_queue_length{netns=\"7\",laddr=\"::1\",lport=\"81\"}") == 2);
	free(t);
	/* a reading that was not finished publishes nothing */
	metrics_listeners_begin(m);
	t = render(m);
	assert_true(sample(t, "conntrace_listen_overflows_total{netns=\"7\",laddr=\"::1\",lport=\"80\"}") == 3);
	free(t);
	/* the next reading replaces it: a listener that closed is gone */
	metrics_listeners_begin(m);
	metrics_listener_add(m, &l);
	metrics_listeners_end(m);
	t = render(m);
	assert_true(sample(t, "conntrace_listen_overflows_total{netns=\"7\",laddr=\"::1\",lport=\"80\"}") == -1);
	assert_true(sample(t, "conntrace_listen_overflows_total{netns=\"7\",laddr=\"::1\",lport=\"81\"}") == 0);
	free(t);
	metrics_free(m);
}

static void test_null_metrics_is_a_no_op(void **state)
{
	struct ct_result r = result(CT_V_OK, CT_C_ESTABLISHED, 0.1, 0);
	char err[8];

	(void)state;
	metrics_verdict(NULL, &r);
	metrics_kernel_counters(NULL, 1, 2);
	metrics_output_counters(NULL, 1, 2);
	metrics_set_listeners(NULL, NULL, 0);
	metrics_listeners_begin(NULL);
	metrics_listener_add(NULL, NULL);
	metrics_listeners_end(NULL);
	metrics_build_info(NULL, "v", "k", NULL, 0);
	assert_int_equal(metrics_start(NULL, err, sizeof(err)), 0);
	assert_int_equal(metrics_port(NULL), 0);
	metrics_free(NULL);
}

/* ---- the HTTP server ---- */

static void check_http(int family)
{
	struct metrics *m = serving(family);
	struct ct_result r = result(CT_V_REFUSED, CT_C_NO_LISTENER, 0.001, 0);
	char *reply, *body, *direct;

	metrics_verdict(m, &r);
	reply = http(family, metrics_port(m), "GET /metrics HTTP/1.0\r\n\r\n");
	CHECK(!strncmp(reply, "HTTP/1.0 200", 12) || !strncmp(reply, "HTTP/1.1 200", 12), "%.200s",
	      reply);
	CHECK(strcasestr(reply, "\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"),
	      "no exposition content type: %.400s", reply);
	body = strstr(reply, "\r\n\r\n");
	assert_non_null(body);
	direct = render(m);
	assert_string_equal(body + 4, direct);	/* served exactly as rendered */
	free(direct);
	free(reply);

	reply = http(family, metrics_port(m), "HEAD /metrics HTTP/1.0\r\n\r\n");
	body = strstr(reply, "\r\n\r\n");
	CHECK(strstr(reply, " 200 ") && body && !body[4], "HEAD: %.300s", reply);
	free(reply);
	reply = http(family, metrics_port(m), "GET / HTTP/1.0\r\n\r\n");
	CHECK(strstr(reply, " 200 ") && strstr(reply, "/metrics"), "index: %.300s", reply);
	free(reply);
	reply = http(family, metrics_port(m), "GET /metricsx HTTP/1.0\r\n\r\n");
	CHECK(strstr(reply, " 404 "), "unknown path: %.300s", reply);
	free(reply);
	reply = http(family, metrics_port(m), "POST /metrics HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc");
	CHECK(strstr(reply, " 405 ") && strcasestr(reply, "\r\nAllow: GET, HEAD\r\n"), "POST: %.300s",
	      reply);
	free(reply);
	metrics_free(m);
}

static void test_http_ipv4(void **state)
{
	(void)state;
	check_http(AF_INET);
}

static void test_http_ipv6(void **state)
{
	(void)state;
	check_http(AF_INET6);
}

static void test_stop_closes_the_port(void **state)
{
	struct metrics *m = serving(AF_INET);
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(metrics_port(m)),
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd;

	(void)state;
	metrics_free(m);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	CHECK(connect(fd, (struct sockaddr *)&sin, sizeof(sin)) && errno == ECONNREFUSED,
	      "port still open after metrics_free");
	close(fd);
}

/* SigBlk of every other thread of this process must hold SIGINT and SIGHUP. */
static void test_server_thread_blocks_signals(void **state)
{
	struct metrics *m = serving(AF_INET);
	unsigned others = 0;
	struct dirent *de;
	DIR *d = opendir("/proc/self/task");

	(void)state;
	assert_non_null(d);
	while ((de = readdir(d))) {
		char path[300], line[128];
		unsigned long long blk = 0;
		FILE *f;

		if (de->d_name[0] == '.' || atoi(de->d_name) == gettid())
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/status", de->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		while (fgets(line, sizeof(line), f))
			if (!strncmp(line, "SigBlk:", 7))
				blk = strtoull(line + 7, NULL, 16);
		fclose(f);
		others++;
		CHECK(blk & (1ULL << (SIGINT - 1)) && blk & (1ULL << (SIGHUP - 1)) &&
		      blk & (1ULL << (SIGTERM - 1)), "thread %s: SigBlk %llx", de->d_name, blk);
	}
	closedir(d);
	CHECK(others >= 1, "no server thread");
	metrics_free(m);
}

struct counter_thread {
	struct metrics *m;
	atomic_int stop;
	atomic_ulong done;
};

static void *count_verdicts(void *arg)
{
	struct counter_thread *c = arg;
	struct ct_result r = result(CT_V_TIMEOUT, CT_C_NO_SYNACK, 2.0, 1);

	while (!atomic_load(&c->stop)) {
		metrics_verdict(c->m, &r);
		atomic_fetch_add(&c->done, 1);
	}
	return NULL;
}

static double scrape(struct metrics *m, const char *series, double *hist_count)
{
	char *reply = http(AF_INET, metrics_port(m), "GET /metrics HTTP/1.0\r\n\r\n");
	char *body = strstr(reply, "\r\n\r\n");
	double v;

	assert_non_null(body);
	v = sample(body + 4, series);
	if (hist_count)
		*hist_count = sample(body + 4,
				     "conntrace_connect_duration_seconds_count{verdict=\"timeout\"}");
	free(reply);
	return v;
}

static void test_scrapes_race_with_updates(void **state)
{
	struct metrics *m = serving(AF_INET);
	struct counter_thread c = { .m = m };
	const char *series = "conntrace_verdicts_total{verdict=\"timeout\",cause=\"no_synack\",direction=\"outbound\"}";
	double last = 0, v, hc;
	unsigned moved = 0;
	pthread_t th;
	int stall;
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(metrics_port(m)),
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };

	(void)state;
	/* a scraper that sends half a request and stalls holds nothing up */
	stall = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(connect(stall, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(write(stall, "GET /metr", 9), 9);
	assert_int_equal(pthread_create(&th, NULL, count_verdicts, &c), 0);
	while (!atomic_load(&c.done))
		usleep(100);
	/* at least 200 scrapes, and on until the counter was seen moving 5 times */
	for (int i = 0; i < 200 || (moved < 5 && i < 20000); i++) {
		v = scrape(m, series, &hc);
		CHECK(v < 0 || v >= last, "counter went back: %g after %g", v, last);
		/* one snapshot: the histogram's count is the counter's */
		CHECK(v < 0 || hc == v, "torn snapshot: %g verdicts, histogram count %g", v, hc);
		moved += v > last;
		if (v > last)
			last = v;
	}
	atomic_store(&c.stop, 1);
	pthread_join(th, NULL);
	CHECK(moved >= 5, "the counter moved in only %u scrapes (last %g, done %lu)", moved, last,
	      atomic_load(&c.done));
	v = scrape(m, series, NULL);
	CHECK(v == (double)atomic_load(&c.done), "final scrape %g, %lu counted", v,
	      atomic_load(&c.done));
	close(stall);
	metrics_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_addr),
		cmocka_unit_test(test_port_in_use_is_one_line),
		cmocka_unit_test(test_render_empty),
		cmocka_unit_test(test_render_counts_and_histogram),
		cmocka_unit_test(test_kernel_verdicts),
		cmocka_unit_test(test_kernel_ok_histogram),
		cmocka_unit_test(test_buckets_are_cumulative_and_sorted),
		cmocka_unit_test(test_build_info_labels),
		cmocka_unit_test(test_listeners_bounded_top_n),
		cmocka_unit_test(test_listener_readings),
		cmocka_unit_test(test_null_metrics_is_a_no_op),
		cmocka_unit_test(test_http_ipv4),
		cmocka_unit_test(test_http_ipv6),
		cmocka_unit_test(test_stop_closes_the_port),
		cmocka_unit_test(test_server_thread_blocks_signals),
		cmocka_unit_test(test_scrapes_race_with_updates),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
