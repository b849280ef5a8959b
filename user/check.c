// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * conntrace check HOST:PORT: resolve HOST, then connect to it from a socket
 * of its own while the collector (collector.c) traces only this process and
 * that port, filtered in the kernel; one verdict per attempt in the usual
 * format, then what to do about it (check_advice.c), then the summary and,
 * with -j, a closing "check" record (docs/schema.md).
 *
 * Every attempt waits for its own verdict (with a deadline) before the next
 * one, so its advice follows its verdict line. A stop signal (SIGINT,
 * SIGTERM) sets the collector's flag: the loops here watch it, so the nft
 * table of check_nft.c is always deleted on the way out.
 */
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include "check.h"
#include "collector.h"
#include "json.h"
#include "options.h"
#include "output.h"

#define VERDICT_WAIT_MS	3000	/* after the attempt ends, for its verdict */
#define MAX_ADDRS	8

static const char usage_text[] =
"Usage: conntrace check [-j] [--count N] [--timeout SEC] [--interval MS] HOST:PORT\n"
"\n"
"Tries a TCP connection to HOST:PORT from its own socket, traces only its own\n"
"attempts in the kernel, and prints one verdict per attempt (as conntrace does)\n"
"and what to do about it: for a drop or a local reject, the nftables rule\n"
"(found by tracing this probe's own packets with a temporary table\n"
"inet conntrace_check_PID, deleted afterwards); for a full accept queue, the\n"
"listener, its process, backlog and net.core.somaxconn; for no listener, what\n"
"listens on that port nearby; for no route, the route lookup; for a timeout,\n"
"the local SYN timers.\n"
"\n"
"HOST is a name, an IPv4 address or an IPv6 address in brackets ([::1]:80).\n"
"\n"
"  -j, --json           JSON Lines (docs/schema.md), ending with a \"check\" record\n"
"  -c, --count N        N attempts (default 1)\n"
"  -t, --timeout SEC    give up on an attempt after SEC seconds (default 10)\n"
"  -i, --interval MS    wait MS milliseconds between attempts (default 1000)\n"
"  -h, --help           this help\n"
"\n"
"Each attempt tries the addresses HOST resolves to, in order, until one\n"
"connects. A name that does not resolve is its own verdict: \"unresolved\",\n"
"cause \"dns\".\n"
"\n"
"Exit status: 0 every attempt connected; 3 not connected (or HOST did not\n"
"resolve); 2 bad usage; 1 could not run (privilege, kernel) or interrupted.\n"
"\n"
"Examples:\n"
"  conntrace check db.internal:5432          why does this connect fail?\n"
"  conntrace check -c 5 -i 200 10.0.0.7:80   five attempts, 200 ms apart\n"
"  conntrace check -j [::1]:8443 | jq .      the same as JSON Lines\n";

struct check_opts {
	bool json;
	unsigned count;
	double timeout_s;
	unsigned interval_ms;
	struct check_target target;
	const char *arg;	/* HOST:PORT as given */
};

struct check {
	const struct check_opts *o;
	struct collector *c;
	struct check_nft *nft;
	FILE *out;
	char nft_note[160];
	struct addrinfo *ai;
	char addrs[MAX_ADDRS][INET6_ADDRSTRLEN];
	int nr_addrs;
	/* the attempt in progress */
	uint16_t sport;
	bool got;
	struct ct_result res;
	/* the result */
	unsigned attempts, connected;
	bool failed_seen;	/* first failure kept below */
	struct ct_result first_fail;
	struct check_facts fail_fx;
	struct check_advice advice;
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000ULL + ts.tv_nsec / 1000000;
}

static int usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "conntrace check: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, " (see --help)\n");
	return CHECK_EXIT_USAGE;
}

/* 0, or the exit status to return (help: 0 too, through done). */
static int parse_args(struct check_opts *o, int argc, char **argv, bool *done)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "count", required_argument, NULL, 'c' },
		{ "timeout", required_argument, NULL, 't' },
		{ "interval", required_argument, NULL, 'i' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	char err[256], *end;
	int opt;

	*o = (struct check_opts){ .count = 1, .timeout_s = 10, .interval_ms = 1000 };
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "+jc:t:i:h", longopts, NULL)) != -1) {
		errno = 0;
		switch (opt) {
		case 'j':
			o->json = true;
			break;
		case 'c':
			o->count = strtoul(optarg, &end, 10);
			if (errno || *end || !*optarg || o->count < 1 || o->count > 100000)
				return usage_error("invalid --count '%s': expected 1 to 100000", optarg);
			break;
		case 't':
			o->timeout_s = strtod(optarg, &end);
			if (errno || *end || !*optarg || !(o->timeout_s >= 0.1 && o->timeout_s <= 3600))
				return usage_error("invalid --timeout '%s': expected seconds, 0.1 to 3600",
						   optarg);
			break;
		case 'i':
			o->interval_ms = strtoul(optarg, &end, 10);
			if (errno || *end || !*optarg || o->interval_ms > 3600000)
				return usage_error("invalid --interval '%s': expected milliseconds",
						   optarg);
			break;
		case 'h':
			fputs(usage_text, stdout);
			*done = true;
			return 0;
		default:
			return usage_error("unrecognized or incomplete option '%s'", argv[optind - 1]);
		}
	}
	if (optind != argc - 1)
		return usage_error("%s", optind >= argc ? "want one HOST:PORT" :
				   "want one HOST:PORT, and no more arguments");
	o->arg = argv[optind];
	if (check_parse_target(o->arg, &o->target, err, sizeof(err)))
		return usage_error("%s", err);
	return 0;
}

/* getaddrinfo: the addresses in order; the gai error, or 0. */
static int resolve(struct check *ck)
{
	const struct check_target *t = &ck->o->target;
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_protocol = IPPROTO_TCP,
				  .ai_flags = AI_NUMERICSERV };
	char port[8];
	int rc;

	hints.ai_family = t->literal6 ? AF_INET6 : AF_UNSPEC;
	snprintf(port, sizeof(port), "%u", t->port);
	rc = getaddrinfo(t->host, port, &hints, &ck->ai);
	if (rc)
		return rc;
	for (struct addrinfo *a = ck->ai; a && ck->nr_addrs < MAX_ADDRS; a = a->ai_next) {
		const void *p = a->ai_family == AF_INET6 ?
			(const void *)&((struct sockaddr_in6 *)a->ai_addr)->sin6_addr :
			(const void *)&((struct sockaddr_in *)a->ai_addr)->sin_addr;

		inet_ntop(a->ai_family, p, ck->addrs[ck->nr_addrs++], INET6_ADDRSTRLEN);
	}
	return 0;
}

/* The collector's verdicts: keep the one of the attempt in progress. */
static void on_verdict(const struct ct_result *r, void *ctx)
{
	struct check *ck = ctx;

	/* the probe's close may end its connection with a reset: not the attempt */
	if (r->phase != CT_PHASE_CONNECT)
		return;
	if (r->inbound || r->flow.dport != ck->o->target.port ||
	    (r->flow.sport && r->flow.sport != ck->sport))
		return;
	ck->res = *r;
	ck->got = true;
}

/* A socket bound to an ephemeral port, so its 5-tuple is known before the SYN. */
static int bound_socket(const struct addrinfo *a, uint16_t *sport)
{
	struct sockaddr_storage ss = { .ss_family = a->ai_family };
	socklen_t len = sizeof(ss);
	int fd = socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&ss, a->ai_addrlen) ||
	    getsockname(fd, (struct sockaddr *)&ss, &len)) {
		int err = -errno;

		close(fd);
		return err;
	}
	*sport = ntohs(((struct sockaddr_in *)&ss)->sin_port);	/* same offset in sin6 */
	return fd;
}

/*
 * Connects and waits for the outcome, draining the ring meanwhile: 0
 * connected, else the error (-ETIMEDOUT at --timeout, -EINTR on a signal).
 * TCP_USER_TIMEOUT makes the kernel itself give up at --timeout (it bounds
 * SYN_SENT too), so the attempt ends as a timeout, with its evidence, not
 * as one this process abandoned; the wait here allows a second more.
 */
static int connect_wait(struct check *ck, int fd, const struct addrinfo *a)
{
	unsigned user_timeout = ck->o->timeout_s * 1000;
	uint64_t deadline = now_ms() + user_timeout + 1000;
	socklen_t len = sizeof(int);
	int soerr = 0;

	setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout, sizeof(user_timeout));

	if (!connect(fd, a->ai_addr, a->ai_addrlen))
		return 0;
	if (errno != EINPROGRESS)
		return -errno;
	while (!collector_stopping()) {
		struct pollfd p = { .fd = fd, .events = POLLOUT };

		if (poll(&p, 1, 0) == 1) {
			getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
			return -soerr;
		}
		if (now_ms() >= deadline)
			return -ETIMEDOUT;
		collector_step(ck->c);	/* waits up to 10 ms for records */
	}
	return -EINTR;
}

/* The facts the advice for r needs. */
static void gather(struct check *ck, const struct ct_result *r, const char *addr,
		   const struct addrinfo *a, struct check_facts *fx)
{
	memset(fx, 0, sizeof(*fx));
	snprintf(fx->dest, sizeof(fx->dest), a->ai_family == AF_INET6 ? "[%s]:%u" : "%s:%u",
		 addr, ck->o->target.port);
	fx->nft_tried = ck->nft != NULL && !ck->nft_note[0];
	snprintf(fx->nft_note, sizeof(fx->nft_note), "%s", ck->nft_note);
	check_nft_collect(ck->nft, &fx->hit);
	fx->timeout_s = ck->o->timeout_s;
	check_read_sysctls(fx);
	if (r->cause == CT_C_NO_LISTENER || r->cause == CT_C_ACCEPT_QUEUE_FULL ||
	    (r->facts.dest_local && (r->cause == CT_C_NO_SYNACK || r->cause == CT_C_UNKNOWN)))
		fx->nr_listeners = check_find_listeners(ck->o->target.port, fx->listeners,
							CHECK_MAX_LISTENERS);
	if (r->cause == CT_C_NO_ROUTE || r->cause == CT_C_ICMP_UNREACHABLE)
		check_route_get(addr, fx);
}

static void print_advice(struct check *ck, const struct check_advice *adv)
{
	if (ck->o->json)
		return;	/* in the check record */
	fprintf(ck->out, "what to do:\n");
	for (int i = 0; i < adv->n; i++)
		fprintf(ck->out, "  %s\n", adv->line[i]);
	fflush(ck->out);
}

/* After the attempt: its verdict (waited for), then its advice. */
static int conclude(struct check *ck, const char *addr, const struct addrinfo *a)
{
	uint64_t deadline = now_ms() + VERDICT_WAIT_MS;
	struct check_facts fx;
	struct check_advice adv;

	while (!ck->got && !collector_stopping() && now_ms() < deadline)
		collector_step(ck->c);
	if (collector_stopping())
		return -EINTR;
	if (!ck->got) {
		fprintf(stderr, "conntrace check: no verdict for the attempt to %s within %d ms\n",
			addr, VERDICT_WAIT_MS);
		return -ETIMEDOUT;
	}
	gather(ck, &ck->res, addr, a, &fx);
	check_advise(&ck->res, &fx, &adv);
	print_advice(ck, &adv);
	if (ck->res.verdict != CT_V_OK && ck->res.verdict != CT_V_SLOW && !ck->failed_seen) {
		ck->failed_seen = true;
		ck->first_fail = ck->res;
		ck->fail_fx = fx;
		ck->advice = adv;
	} else if (!ck->failed_seen) {
		ck->advice = adv;
	}
	return 0;
}

/* One attempt to one address: 0 connected, 1 not, or -errno (-EINTR). */
static int attempt(struct check *ck, const struct addrinfo *a, const char *addr)
{
	const void *daddr = a->ai_family == AF_INET6 ?
		(const void *)&((struct sockaddr_in6 *)a->ai_addr)->sin6_addr :
		(const void *)&((struct sockaddr_in *)a->ai_addr)->sin_addr;
	int fd, err;

	fd = bound_socket(a, &ck->sport);
	if (fd < 0) {
		fprintf(stderr, "conntrace check: socket for %s: %s\n", addr, strerror(-fd));
		return fd;
	}
	ck->got = false;
	if (ck->nft && !ck->nft_note[0])
		check_nft_trace(ck->nft, a->ai_family, daddr, ck->o->target.port, ck->sport,
				ck->nft_note, sizeof(ck->nft_note));
	err = connect_wait(ck, fd, a);
	close(fd);	/* ends a SYN_SENT attempt: its flow ends now */
	if (err == -EINTR)
		return err;
	switch (conclude(ck, addr, a)) {
	case 0:
		return ck->res.verdict == CT_V_OK || ck->res.verdict == CT_V_SLOW ? 0 : 1;
	case -EINTR:
		return -EINTR;
	default:	/* no verdict (said on stderr): what connect() said decides */
		return err ? 1 : 0;
	}
}

/* Every round tries the addresses in order until one connects. */
static int run_rounds(struct check *ck)
{
	for (unsigned round = 0; round < ck->o->count; round++) {
		bool ok = false;
		int i = 0;

		if (round) {
			uint64_t until = now_ms() + ck->o->interval_ms;

			while (!collector_stopping() && now_ms() < until)
				collector_step(ck->c);
		}
		for (struct addrinfo *a = ck->ai; a && i < MAX_ADDRS && !ok; a = a->ai_next, i++) {
			int r = attempt(ck, a, ck->addrs[i]);

			if (r < 0)
				return r;
			ok = r == 0;
		}
		ck->attempts++;
		ck->connected += ok;
	}
	return 0;
}

static void json_advice(struct json *j, const struct check_advice *adv)
{
	json_key(j, "advice");
	json_arr_begin(j);
	for (int i = 0; i < adv->n; i++)
		json_str(j, adv->line[i]);
	json_arr_end(j);
}

static void json_nft(struct json *j, const struct check_nft_hit *h)
{
	json_key(j, "nft_rule");
	json_obj_begin(j);
	json_kstr(j, "family", h->family);
	json_kstr(j, "table", h->table);
	json_kstr(j, "chain", h->chain);
	json_key(j, "handle");
	if (h->policy)
		json_null(j);
	else
		json_u64(j, h->handle);
	json_kstr(j, "rule", h->policy ? NULL : h->rule);
	json_kstr(j, "verdict", h->verdict);
	json_kstr(j, "found_by", "nft trace of this probe's own packets");
	json_obj_end(j);
}

/* The closing {"type":"check",...} record. */
static void write_check_record(struct check *ck, const char *result, const char *verdict,
			       const char *cause, int status)
{
	struct timespec ts;
	char stamp[48];
	struct json j;

	clock_gettime(CLOCK_REALTIME, &ts);
	fmt_rfc3339(stamp, sizeof(stamp), ts.tv_sec * 1000000000ULL + ts.tv_nsec);
	json_init(&j, ck->out);
	json_obj_begin(&j);
	json_kstr(&j, "type", "check");
	json_kstr(&j, "schema", CT_SCHEMA_VERSION);
	json_kstr(&j, "ts", stamp);
	json_kstr(&j, "target", ck->o->arg);
	json_kstr(&j, "host", ck->o->target.host);
	json_ku64(&j, "port", ck->o->target.port);
	json_key(&j, "addresses");
	json_arr_begin(&j);
	for (int i = 0; i < ck->nr_addrs; i++)
		json_str(&j, ck->addrs[i]);
	json_arr_end(&j);
	json_ku64(&j, "attempts", ck->attempts);
	json_ku64(&j, "connected", ck->connected);
	json_kstr(&j, "result", result);
	json_kstr(&j, "verdict", verdict);
	json_kstr(&j, "cause", cause);
	json_advice(&j, &ck->advice);
	if (ck->failed_seen && ck->fail_fx.hit.found)
		json_nft(&j, &ck->fail_fx.hit);
	json_ku64(&j, "exit_status", status);
	json_obj_end(&j);
	json_eol(&j);
}

/* HOST does not resolve: its own verdict, before any tracing. */
static int unresolved(struct check *ck, int gai)
{
	check_advise_unresolved(ck->o->target.host, gai_strerror(gai), &ck->advice);
	ck->out = stdout;
	if (ck->o->json) {
		write_check_record(ck, "unresolved", "unresolved", "dns", CHECK_EXIT_NOT_CONNECTED);
		return CHECK_EXIT_NOT_CONNECTED;
	}
	printf("%s: UNRESOLVED (cause dns)\n", ck->o->arg);
	print_advice(ck, &ck->advice);
	return CHECK_EXIT_NOT_CONNECTED;
}

/* The collector: this process, this port, every verdict; then the nft trace. */
static int start(struct check *ck, struct ct_options *co)
{
	char port[8], pid[16], err[256];
	/* its own attempt only: outgoing (no inbound hooks to load) */
	char *argv[] = { "conntrace", "--all", "-d", "--port", port, "--pid", pid,
			 "--direction", "out", ck->o->json ? "-j" : "--color=never", NULL };
	struct collector_error e = { 0 };

	snprintf(port, sizeof(port), "%u", ck->o->target.port);
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	optind = 0;	/* argp after getopt: start over */
	if (ct_options_parse(co, 10, argv, err, sizeof(err))) {
		fprintf(stderr, "conntrace check: %s\n", err);
		return CHECK_EXIT_FAILURE;
	}
	if (collector_open(&ck->c, co, &e)) {
		fprintf(stderr, "conntrace check: %s\n", e.msg);
		return CHECK_EXIT_FAILURE;
	}
	collector_on_verdict(ck->c, on_verdict, ck);
	ck->out = collector_stream(ck->c);
	if (check_nft_open(&ck->nft, ck->nft_note, sizeof(ck->nft_note)))
		ck->nft = NULL;
	return 0;
}

static int finish(struct check *ck, int err)
{
	const char *result = "not_connected", *verdict = "ok", *cause = "established";
	int status = CHECK_EXIT_NOT_CONNECTED;

	check_nft_close(ck->nft);	/* first: nothing of ours stays in the ruleset */
	ck->nft = NULL;
	collector_finish(ck->c);
	if (err == -EINTR || collector_stopping()) {
		result = "interrupted";
		status = CHECK_EXIT_FAILURE;
	} else if (err) {
		result = "error";
		status = CHECK_EXIT_FAILURE;
	} else if (ck->attempts && ck->connected == ck->attempts) {
		result = "connected";
		status = CHECK_EXIT_CONNECTED;
	}
	if (ck->failed_seen) {
		verdict = ct_verdict_name(ck->first_fail.verdict);
		cause = ct_cause_name(ck->first_fail.cause);
	} else if (status != CHECK_EXIT_CONNECTED) {
		verdict = cause = NULL;
	}
	if (ck->o->json)
		write_check_record(ck, result, verdict, cause, status);
	else
		fprintf(ck->out, "%s: %s (%u of %u attempts connected)\n", ck->o->arg,
			status == CHECK_EXIT_CONNECTED ? "CONNECTED" :
			status == CHECK_EXIT_FAILURE ? "NOT CHECKED" : "NOT CONNECTED",
			ck->connected, ck->attempts);
	fflush(ck->out);
	collector_close(ck->c);
	return status;
}

int check_main(int argc, char **argv)
{
	static struct ct_options co;	/* the collector keeps a pointer */
	struct check_opts o;
	struct check ck = { .o = &o };
	bool done = false;
	int rc, gai;

	rc = parse_args(&o, argc, argv, &done);
	if (rc || done)
		return rc;
	gai = resolve(&ck);
	if (gai)
		return unresolved(&ck, gai);
	if (!o.json) {	/* before the collector's stream takes over standard output */
		printf("checking %s: addresses", o.arg);
		for (int i = 0; i < ck.nr_addrs; i++)
			printf(" %s", ck.addrs[i]);
		printf("\n");
		fflush(stdout);
	}
	rc = start(&ck, &co);
	if (rc) {
		freeaddrinfo(ck.ai);
		return rc;
	}
	if (!o.json && !ck.nft)
		fprintf(ck.out, "nft trace unavailable: %s\n", ck.nft_note);
	rc = finish(&ck, run_rounds(&ck));
	freeaddrinfo(ck.ai);
	return rc;
}
