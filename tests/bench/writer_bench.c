// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The writers' micro-benchmark (issue 11): ns per verdict line for JSON and
 * text. Formats a mix of realistic verdicts (refused with its RST evidence, a
 * timeout after 6 SYN retransmits dropped by netfilter, an ok) through the
 * writer interface of output.h into /dev/null, flushed every BATCH lines as
 * the collector flushes once per ring drain. JSON, text and text with the
 * detail line (-d) rounds alternate; each mode's median over the rounds is
 * printed, one line per mode. Time is the thread's CPU time: the writer's
 * own cost, not the time the other processes of a shared machine take.
 *
 *   writer_bench [--rounds N] [--lines N] [--label NAME]
 *   writer_bench --dump     each record once, JSON, text and text -d, to stdout
 *                           (to diff two builds' bytes)
 *   json ns_per_line=<median> rounds=<N> lines=<N> label=<NAME>
 *
 * Built by tests/bench/bench.mk (make bench-writer), against this tree's
 * library and, to compare, against another build's (WRITER_BASE=...).
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include "output.h"

#define BATCH		64	/* lines per flush: a ring drain's worth */
#define MAX_ROUNDS	64

static uint64_t now_ns(void)
{
	struct timespec ts;

	/* CPU time: the writer's cost, not the time other processes take the CPU */
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static void flow_base(struct ct_result *r, enum ct_verdict v, enum ct_cause c, int err)
{
	struct ct_flow *f = &r->flow;

	memset(r, 0, sizeof(*r));
	r->verdict = v;
	r->cause = c;
	f->type = CT_REC_FLOW;
	f->family = CT_AF_INET;
	f->pid = 48213;
	f->tid = 48217;
	f->netns = 4026531840u;
	f->cgroup_id = 8123;
	f->sport = 51734;
	f->dport = 8080;
	f->err = err;
	memcpy(f->comm, "curl", 5);
	inet_pton(AF_INET, "10.1.42.17", f->saddr);
	inet_pton(AF_INET, "10.1.7.203", f->daddr);
	r->facts.err = err;
	r->facts.end = CT_END_CLOSED;
	r->facts.full_us = r->facts.full_from_us = r->facts.full_to_us = INT64_MIN;
}

static void ev(struct ct_result *r, enum ct_ev_kind k, int64_t t_us)
{
	struct ct_ev_item *it = &r->ev[r->nr_ev++];

	it->kind = k;
	it->t_us = t_us;
}

/* The three shapes a storm is made of. */
static void make_records(struct ct_result rec[3])
{
	struct ct_result *r = &rec[0];

	flow_base(r, CT_V_REFUSED, CT_C_NO_LISTENER, ECONNREFUSED);
	r->facts.rst_received = r->facts.rst_sent = r->facts.rst_no_socket = true;
	r->facts.rst_reason_known = r->facts.dest_local = true;
	r->facts.rst_reason = "NO_SOCKET";
	r->facts.duration_ns = r->duration_ns = 61234;
	ev(r, CT_EV_CONNECT, 0);
	ev(r, CT_EV_RST_SENT, 21);
	r->ev[1].reason = "NO_SOCKET";
	ev(r, CT_EV_RST_RECEIVED, 38);
	ev(r, CT_EV_ERROR, 40);
	r->ev[3].err = ECONNREFUSED;

	r = &rec[1];
	flow_base(r, CT_V_TIMEOUT, CT_C_NETFILTER_DROP, ETIMEDOUT);
	r->flow.syn_retrans = r->facts.syn_retrans = 6;
	r->facts.nf_drops = 7;
	r->facts.duration_ns = r->duration_ns = 127012345678ULL;
	ev(r, CT_EV_CONNECT, 0);
	for (int i = 1; i <= 6; i++) {
		ev(r, CT_EV_SYN_RETRANS, (1LL << (i - 1)) * 1000000);
		r->ev[r->nr_ev - 1].n = i;
	}
	ev(r, CT_EV_DROP, 12);
	r->ev[r->nr_ev - 1].n = 7;
	r->ev[r->nr_ev - 1].reason = "NETFILTER_DROP";
	ev(r, CT_EV_ERROR, 127012345);
	r->ev[r->nr_ev - 1].err = ETIMEDOUT;

	r = &rec[2];
	flow_base(r, CT_V_OK, CT_C_ESTABLISHED, 0);
	r->facts.end = CT_END_ESTABLISHED;
	r->facts.duration_ns = r->duration_ns = 187345;
	ev(r, CT_EV_CONNECT, 0);
	ev(r, CT_EV_ESTABLISHED, 187);
}

/* One round: lines verdicts through w, ns per line. */
static double round_ns(struct writer *w, const struct ct_result rec[3], unsigned lines)
{
	uint64_t ts = 1764430000123456789ULL, t0 = now_ns();

	for (unsigned i = 0; i < lines; i++) {
		w->ops->verdict(w, &rec[i % 3], ts);
		ts += 9871;	/* about 100,000 verdicts a second */
		if (i % BATCH == BATCH - 1)
			fflush(w->f);
	}
	fflush(w->f);
	return (double)(now_ns() - t0) / lines;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* The bench's records, and a few odd ones, in every writer: the bytes to compare. */
static int dump_records(void)
{
	struct ct_result rec[6];
	struct writer w;

	make_records(rec);
	rec[3] = rec[0];	/* IPv6, evicted, a hostile name */
	rec[3].flow.family = CT_AF_INET6;
	inet_pton(AF_INET6, "2001:db8::17", rec[3].flow.daddr);
	inet_pton(AF_INET6, "::1", rec[3].flow.saddr);
	rec[3].flow.flags |= CT_F_NO_HISTORY;
	rec[3].facts.no_history = true;
	rec[4] = rec[1];
	memcpy(rec[4].flow.comm, "\"q\n\x1b[31m\xff\\\t\x7f\xc2\x9bZZ", 16);
	rec[4].facts.nf_drops = 0;
	rec[4].facts.other_drops = 3;
	rec[4].facts.other_reason = "EVIL\"NAME\\";
	rec[4].cause = CT_C_LOCAL_DROP;
	rec[5] = rec[2];
	rec[5].duration_ns = rec[5].facts.duration_ns = 1005000000;	/* a tie: 1.00 s */
	rec[5].verdict = CT_V_SLOW;
	rec[5].cause = CT_C_SLOW_HANDSHAKE;
	for (int mode = 0; mode < 3; mode++) {
		if (mode == 0)
			writer_json_init(&w, stdout);
		else
			writer_text_init(&w, stdout, false, mode == 2);
		for (int i = 0; i < 6; i++)
			w.ops->verdict(&w, &rec[i], 1764430000003456789ULL + i * 1000000000ULL);
	}
	return fflush(stdout) ? 1 : 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "rounds", required_argument, NULL, 'r' },
		{ "lines", required_argument, NULL, 'n' },
		{ "label", required_argument, NULL, 'l' },
		{ "dump", no_argument, NULL, 'd' },
		{ 0 },
	};
	double json_ns[MAX_ROUNDS], text_ns[MAX_ROUNDS], textd_ns[MAX_ROUNDS];
	unsigned lines = 200000;
	int rounds = 7, opt;
	bool dump = false;
	const char *label = "this";
	struct ct_result rec[3];
	static struct writer jw, tw, dw;
	FILE *f;

	while ((opt = getopt_long(argc, argv, "r:n:l:", opts, NULL)) != -1) {
		if (opt == 'r')
			rounds = atoi(optarg);
		else if (opt == 'n')
			lines = strtoul(optarg, NULL, 10);
		else if (opt == 'l')
			label = optarg;
		else if (opt == 'd')
			dump = true;
		else
			return 2;
	}
	if (rounds < 1 || rounds > MAX_ROUNDS || !lines) {
		fprintf(stderr, "writer_bench: --rounds 1..%d, --lines > 0\n", MAX_ROUNDS);
		return 2;
	}
	if (dump)
		return dump_records();
	f = fopen("/dev/null", "w");
	if (!f) {
		fprintf(stderr, "writer_bench: open /dev/null: %s\n", strerror(errno));
		return 1;
	}
	setvbuf(f, NULL, _IOFBF, 1 << 16);
	make_records(rec);
	writer_json_init(&jw, f);
	writer_text_init(&tw, f, false, false);
	writer_text_init(&dw, f, false, true);
	round_ns(&jw, rec, lines / 10);	/* warm the caches and the page tables */
	round_ns(&tw, rec, lines / 10);
	round_ns(&dw, rec, lines / 10);
	for (int i = 0; i < rounds; i++) {
		json_ns[i] = round_ns(&jw, rec, lines);
		text_ns[i] = round_ns(&tw, rec, lines);
		textd_ns[i] = round_ns(&dw, rec, lines);
	}
	printf("json ns_per_line=%.1f rounds=%d lines=%u label=%s\n", median(json_ns, rounds),
	       rounds, lines, label);
	printf("text ns_per_line=%.1f rounds=%d lines=%u label=%s\n", median(text_ns, rounds),
	       rounds, lines, label);
	printf("text-d ns_per_line=%.1f rounds=%d lines=%u label=%s\n", median(textd_ns, rounds),
	       rounds, lines, label);
	fclose(f);
	return 0;
}
