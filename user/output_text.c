// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Text writer: one aligned line per verdict, within 124 columns for IPv4 (122 with the longest cause).
 * Kernel-sourced strings (task names) are escaped: nothing printed can
 * reach the terminal as a control sequence.
 */
#include <string.h>
#include <time.h>
#include "json.h"
#include "output.h"

#define COL_COMM 15
#define COL_ADDR 21

static const char *const verdict_color[CT_V_MAX] = {
	[CT_V_OK] = "\033[32m",
	[CT_V_SLOW] = "\033[33m",
	[CT_V_TIMEOUT] = "\033[31m",
	[CT_V_REFUSED] = "\033[31m",
	[CT_V_UNREACHABLE] = "\033[31m",
	[CT_V_ABANDONED] = "\033[35m",
	[CT_V_PENDING] = "\033[36m",
	[CT_V_DROPPED] = "\033[31m",
};

/* Pads to width by code points, so UTF-8 names keep the columns. */
static void put_padded(FILE *f, const char *s, int width)
{
	int cps = 0;

	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		cps += (*p & 0xc0) != 0x80;
	fputs(s, f);
	for (; cps < width; cps++)
		fputc(' ', f);
}

static void fmt_lat(char *buf, size_t sz, const struct ct_result *r)
{
	uint64_t ns = r->duration_ns;

	if (r->flow.flags & CT_F_NO_HISTORY)
		snprintf(buf, sz, "?");
	else if (ns >= 100000000000ULL)
		snprintf(buf, sz, "%.0fs", ns / 1e9);
	else if (ns >= 1000000000ULL)
		snprintf(buf, sz, "%.2fs", ns / 1e9);
	else if (ns >= 10000000ULL)
		snprintf(buf, sz, "%.0fms", ns / 1e6);
	else
		snprintf(buf, sz, "%.1fms", ns / 1e6);
}

static void fmt_clock(char *buf, size_t sz, uint64_t real_ns)
{
	time_t secs = real_ns / 1000000000ULL;
	struct tm tm;

	localtime_r(&secs, &tm);
	strftime(buf, sz, "%H:%M:%S", &tm);
}

static void text_header(struct writer *w)
{
	fprintf(w->f, "%-8s %-7s %-*s %-*s %-*s %-3s %-11s %4s %6s %s\n", "TIME", "PID",
		COL_COMM, "COMM", COL_ADDR, "SADDR:SPORT", COL_ADDR, "DADDR:DPORT", "DIR",
		"VERDICT", "SYNS", "LAT", "CAUSE");
}

static void text_start(struct writer *w, const struct start_info *s)
{
	int missing = 0;

	for (int i = 0; i < s->nr_probes; i++)
		missing += !s->probes[i].ok;
	fprintf(stderr, "conntrace %s: tracing TCP connection attempts on %s (%d of %d signals; "
		"--probes for details). Ctrl-C to stop.\n", s->version, s->kernel,
		s->nr_probes - missing, s->nr_probes);
	text_header(w);
}

static void text_verdict(struct writer *w, const struct ct_result *r, uint64_t ts_real_ns)
{
	const struct ct_flow *f = &r->flow;
	char clock[16], comm[4 * CT_COMM_LEN + 1], src[64], dst[64], lat[16], pid[16];
	unsigned syns = f->flags & CT_F_CONNECT_ERR && !f->sport ? 0 : f->syn_retrans + 1;

	fmt_clock(clock, sizeof(clock), ts_real_ns);
	if (f->flags & CT_F_NO_HISTORY || (r->inbound && !f->pid)) {
		snprintf(pid, sizeof(pid), "?");
		snprintf(comm, sizeof(comm), "?");
	} else {
		snprintf(pid, sizeof(pid), "%u", f->pid);
		escape_text(comm, COL_COMM + 1, f->comm, sizeof(f->comm));	/* cut to its column */
	}
	fmt_endpoint(src, sizeof(src), f->family, f->saddr, f->sport);
	fmt_endpoint(dst, sizeof(dst), f->family, f->daddr, f->dport);
	fmt_lat(lat, sizeof(lat), r);

	fprintf(w->f, "%-8s %-7s ", clock, pid);
	put_padded(w->f, comm, COL_COMM);
	/* in: a SYN arrived, SADDR is the remote client, PID/COMM the listener's */
	fprintf(w->f, " %-*s %-*s %-3s ", COL_ADDR, src, COL_ADDR, dst, r->inbound ? "in" : "out");
	if (w->color)
		fprintf(w->f, "%s%-11s\033[0m", verdict_color[r->verdict], ct_verdict_label(r->verdict));
	else
		fprintf(w->f, "%-11s", ct_verdict_label(r->verdict));
	fprintf(w->f, " %4u %6s %s\n", syns, lat, ct_cause_name(r->cause));
	if (w->detail) {
		/* it quotes kernel enum names (drop and reset reasons) from BTF */
		char raw[CT_DETAIL_MAX], detail[4 * CT_DETAIL_MAX + 1];

		ct_render_detail(r, raw, sizeof(raw));
		escape_text(detail, sizeof(detail), raw, strlen(raw));
		fprintf(w->f, "         %s\n", detail);
	}
}

static void text_loss(struct writer *w, const struct loss_info *l)
{
	char clock[16];

	fmt_clock(clock, sizeof(clock), l->ts_real_ns);
	fprintf(w->f, "%-8s LOST: %llu records (ring buffer full) and %llu flows (flow table "
		"full) since the last report; totals %llu and %llu", clock,
		(unsigned long long)l->new_lost, (unsigned long long)l->new_evictions,
		(unsigned long long)l->lost_records, (unsigned long long)l->flow_evictions);
	if (l->output_lost)	/* export */
		fprintf(w->f, "; %llu records not written to the output file (total %llu)",
			(unsigned long long)l->new_output_lost, (unsigned long long)l->output_lost);
	if (l->missed)
		fprintf(w->f, "; %llu events skipped by the kernel (total %llu)",
			(unsigned long long)l->new_missed, (unsigned long long)l->missed);
	fputc('\n', w->f);
}

static void text_summary(struct writer *w, const struct summary_info *s)
{
	uint64_t total = 0;

	for (int v = 0; v < CT_V_MAX; v++)
		total += s->verdicts[v];
	fprintf(w->f, "-- %llu verdicts in %.1f s:", (unsigned long long)total, s->duration_s);
	for (int v = 0; v < CT_V_MAX; v++)
		fprintf(w->f, " %s %llu", ct_verdict_name(v),
			(unsigned long long)s->verdicts[v]);
	fprintf(w->f, "; lost records %llu, flow evictions %llu, missed events %llu",
		(unsigned long long)s->lost_records, (unsigned long long)s->flow_evictions,
		(unsigned long long)s->missed_events);
	if (s->output_write_errors)	/* export */
		fprintf(w->f, "; output write errors %llu, records not written %llu",
			(unsigned long long)s->output_write_errors,
			(unsigned long long)s->output_records_lost);
	fputc('\n', w->f);
}

static void text_listen_overflow(struct writer *w, const struct overflow_report *r,
				 uint64_t ts_real_ns, uint64_t since_real_ns)
{
	const struct ct_listener *l = r->l;
	char clock[16], where[64];

	fmt_clock(clock, sizeof(clock), ts_real_ns);
	fmt_endpoint(where, sizeof(where), l->family, l->addr, l->port);
	fprintf(w->f, "%-8s LISTEN-OVERFLOW %s netns %u: %u SYN%s dropped on a full accept queue "
		"in %.1f s (queue %u, limit %u; %llu since found full)\n", clock, where, l->netns,
		r->overflows, r->overflows == 1 ? "" : "s",
		(ts_real_ns - since_real_ns) / 1e9, l->queue, l->queue_max,
		(unsigned long long)r->total);
}

static const struct writer_ops text_ops = {
	.start = text_start,
	.verdict = text_verdict,
	.loss = text_loss,
	.summary = text_summary,
	.listen_overflow = text_listen_overflow,
};

void writer_text_init(struct writer *w, FILE *f, bool color, bool detail)
{
	memset(w, 0, sizeof(*w));
	w->ops = &text_ops;
	w->f = f;
	w->color = color;
	w->detail = detail;
}
