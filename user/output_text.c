// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Text writer: one aligned line per verdict, within 124 columns for IPv4 (122 with the longest cause).
 * Kernel-sourced strings (task names) are escaped: nothing printed can
 * reach the terminal as a control sequence.
 */
#include <stddef.h>
#include <string.h>
#include <time.h>
#include "fmt.h"
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
	[CT_V_RESET] = "\033[31m",
	[CT_V_DROPPED] = "\033[31m",
};

/* Code points in s (at most n bytes): UTF-8 names keep the columns. */
static int code_points(const char *s, size_t n)
{
	int cps = 0;

	for (const unsigned char *p = (const unsigned char *)s; n--; p++)
		cps += (*p & 0xc0) != 0x80;
	return cps;
}

/* s, then spaces up to width columns (printf's %-*s, by code points) */
static char *put_left(char *p, const char *s, size_t n, int width)
{
	int cps = code_points(s, n);

	memcpy(p, s, n);
	p += n;
	for (; cps < width; cps++)
		*p++ = ' ';
	return p;
}

/* spaces, then s, to width columns (printf's %*s) */
static char *put_right(char *p, const char *s, size_t n, int width)
{
	for (int pad = width - (int)n; pad > 0; pad--)
		*p++ = ' ';
	memcpy(p, s, n);
	return p + n;
}

/* 127s, 1.50s, 35ms, 0.2ms: by hand, a verdict line has no printf. */
static size_t fmt_lat(char *buf, const struct ct_result *r)
{
	uint64_t ns = r->duration_ns;
	char *p = buf;

	if (r->flow.flags & CT_F_NO_HISTORY) {
		*p++ = '?';
		return 1;
	}
	if (ns >= 100000000000ULL)
		p = fmt_fixed(p, ns, 1000000000ULL, 0);
	else if (ns >= 1000000000ULL)
		p = fmt_fixed(p, ns, 1000000000ULL, 2);
	else if (ns >= 10000000ULL)
		p = fmt_fixed(p, ns, 1000000ULL, 0);
	else
		p = fmt_fixed(p, ns, 1000000ULL, 1);
	if (ns < 1000000000ULL)
		*p++ = 'm';
	*p++ = 's';
	return p - buf;
}

/*
 * HH:MM:SS in local time. localtime_r takes the time zone's lock and may
 * stat /etc/localtime: once a second, not once a line.
 */
static void fmt_clock(char *buf, size_t sz, uint64_t real_ns)
{
	static __thread struct {
		time_t secs;
		char text[16];
	} cache = { .secs = -1 };
	time_t secs = real_ns / 1000000000ULL;

	if (secs != cache.secs) {
		struct tm tm;

		localtime_r(&secs, &tm);
		strftime(cache.text, sizeof(cache.text), "%H:%M:%S", &tm);
		cache.secs = secs;
	}
	snprintf(buf, sz, "%s", cache.text);
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

/*
 * -d: what the owner's cgroup names, after the detail: " [unit nginx.service,
 * container 0123456789ab, pod <uid>]" (a container by its short id, as docker
 * ps shows it); nothing for a cgroup that names none. A unit is a directory
 * name anyone allowed to make cgroups chose: escaped.
 */
static void fmt_owner(char *buf, size_t sz, const struct cg_info *cg)
{
	const struct cg_attrib *a = cg && cg->state == CG_FOUND ? &cg->a : NULL;
	char unit[4 * CG_UNIT_MAX + 1];
	size_t n = 0;

	buf[0] = '\0';
	if (!a || !(a->unit[0] || a->container_id[0] || a->pod_uid[0]))
		return;
	escape_text(unit, sizeof(unit), a->unit, strlen(a->unit));
	n += snprintf(buf + n, sz - n, " [");
	if (a->unit[0] && n < sz)
		n += snprintf(buf + n, sz - n, "unit %s%s", unit, a->container_id[0] ||
			      a->pod_uid[0] ? ", " : "");
	if (a->container_id[0] && n < sz)
		n += snprintf(buf + n, sz - n, "container %.12s%s", a->container_id,
			      a->pod_uid[0] ? ", " : "");
	if (a->pod_uid[0] && n < sz)
		n += snprintf(buf + n, sz - n, "pod %s", a->pod_uid);
	if (n < sz)
		snprintf(buf + n, sz - n, "]");
}

/* The detail line (-d), rendered once and escaped into the line, then the owner. */
static char *put_detail(char *p, const struct ct_result *r, const struct cg_info *cg)
{
	/* it quotes kernel enum names (drop and reset reasons) from BTF */
	char raw[CT_DETAIL_MAX], owner[4 * CG_UNIT_MAX + 128];

	memcpy(p, "         ", 9);
	p += 9;
	ct_render_detail(r, raw, sizeof(raw));
	p += escape_text(p, 4 * CT_DETAIL_MAX + 1, raw, strlen(raw));
	fmt_owner(owner, sizeof(owner), r->flow.flags & CT_F_NO_HISTORY || r->inbound ? NULL : cg);
	p = stpcpy(p, owner);
	*p++ = '\n';
	return p;
}

/* Whether this verdict is printed as a line, or only summed (aggregate.h). */
static bool printed(struct writer *w, const struct ct_result *r, uint64_t ts_real_ns)
{
	const struct ct_flow *f = &r->flow;
	struct agg_key k = {
		.verdict = r->verdict, .cause = r->cause, .family = f->family, .inbound = r->inbound,
		.dport = f->dport, .phase = r->phase,
	};

	if (!w->aggregate)
		return true;
	if (!w->agg.since)	/* the first second starts with the first verdict */
		w->agg.since = ts_real_ns;
	memcpy(k.daddr, f->daddr, sizeof(k.daddr));
	return agg_add(&w->agg, &k);
}

/*
 * An established connection's label, and its cause column with the timer
 * that fired (it has no SYNs and no connect latency: "-" in those columns).
 */
static const char *est_cause(char *cause, size_t sz, const struct ct_result *r)
{
	const char *timer = ct_timer_name(r->est.timer);

	if (r->verdict == CT_V_TIMEOUT && timer)
		snprintf(cause, sz, "%s timer=%s", ct_cause_name(r->cause), timer);
	else
		snprintf(cause, sz, "%s", ct_cause_name(r->cause));
	return r->verdict == CT_V_RESET ? "EST-RESET" : "EST-TIMEOUT";
}

static void text_verdict(struct writer *w, const struct ct_result *r, uint64_t ts_real_ns)
{
	const struct ct_flow *f = &r->flow;
	char line[512 + 4 * CT_DETAIL_MAX + 4 * CG_UNIT_MAX + 160], comm[4 * CT_COMM_LEN + 1];
	char num[FMT_U64_MAX], ep[FMT_ENDPOINT_MAX], clock[16], cause[64], *p = line;
	unsigned syns = f->flags & CT_F_CONNECT_ERR && !f->sport ? 0 : f->syn_retrans + 1;
	const char *label = ct_verdict_label(r->verdict);
	bool est = r->phase == CT_PHASE_ESTABLISHED;

	if (!printed(w, r, ts_real_ns))
		return;
	fmt_clock(clock, sizeof(clock), ts_real_ns);
	p = put_left(p, clock, strlen(clock), 8);
	*p++ = ' ';
	if (f->flags & CT_F_NO_HISTORY || (est && !r->est.owner) || (r->inbound && !f->pid)) {
		p = put_left(p, "?", 1, 7);
		*p++ = ' ';
		p = put_left(p, "?", 1, COL_COMM);
	} else {
		p = put_left(p, num, fmt_u64(num, f->pid) - num, 7);
		*p++ = ' ';
		/* cut to its column */
		p = put_left(p, comm, escape_text(comm, COL_COMM + 1, f->comm, sizeof(f->comm)),
			     COL_COMM);
	}
	*p++ = ' ';
	p = put_left(p, ep, fmt_ip_port(ep, f->family, f->saddr, f->sport) - ep, COL_ADDR);
	*p++ = ' ';
	p = put_left(p, ep, fmt_ip_port(ep, f->family, f->daddr, f->dport) - ep, COL_ADDR);
	*p++ = ' ';
	if (est)
		label = est_cause(cause, sizeof(cause), r);
	/* in: a SYN arrived, SADDR is the remote client, PID/COMM the listener's */
	p = put_left(p, r->inbound ? "in" : "out", r->inbound ? 2 : 3, 3);
	*p++ = ' ';
	if (w->color)
		p = stpcpy(p, verdict_color[r->verdict]);
	p = put_left(p, label, strlen(label), 11);
	if (w->color)
		p = stpcpy(p, "\033[0m");
	*p++ = ' ';
	if (est)
		p = put_right(p, "-", 1, 4);
	else
		p = put_right(p, num, fmt_u64(num, syns) - num, 4);
	*p++ = ' ';
	if (est)
		p = put_right(p, "-", 1, 6);
	else
		p = put_right(p, ep, fmt_lat(ep, r), 6);
	*p++ = ' ';
	p = stpcpy(p, est ? cause : ct_cause_name(r->cause));
	*p++ = '\n';
	if (w->detail)
		p = put_detail(p, r, w->cg);
	fwrite_unlocked(line, 1, p - line, w->f);
}

/* 4,213: a count people read at a glance */
static char *put_thousands(char *p, uint64_t v)
{
	char num[FMT_U64_MAX];
	size_t n = fmt_u64(num, v) - num;

	for (size_t i = 0; i < n; i++) {
		if (i && (n - i) % 3 == 0)
			*p++ = ',';
		*p++ = num[i];
	}
	return p;
}

/* One key's verdicts that were summed, not printed, in [since, now]. */
static void agg_line(const struct agg_entry *e, uint64_t since, uint64_t now, void *ctx)
{
	struct writer *w = ctx;
	char line[256], clock[16], *p = line;

	fmt_clock(clock, sizeof(clock), now);
	p = put_left(p, clock, strlen(clock), 8);
	*p++ = ' ';
	if (e->key.phase == CT_PHASE_ESTABLISHED)
		p = stpcpy(p, e->key.verdict == CT_V_RESET ? "EST-RESET" : "EST-TIMEOUT");
	else
		p = stpcpy(p, ct_verdict_label(e->key.verdict));
	*p++ = ' ';
	p = stpcpy(p, ct_cause_name(e->key.cause));
	p = stpcpy(p, e->key.inbound ? " at " : " to ");	/* at: SYNs that arrived there */
	p = fmt_ip_port(p, e->key.family, e->key.daddr, e->key.dport);
	p = stpcpy(p, " x ");
	p = put_thousands(p, e->summed);
	p = stpcpy(p, " more in the last ");
	p = fmt_fixed(p, now > since ? now - since : 0, 1000000000ULL, 1);
	p = stpcpy(p, " s, aggregated (over ");
	p = fmt_u64(p, w->agg.per_sec);
	p = stpcpy(p, " a second): --no-aggregate prints each\n");
	fwrite_unlocked(line, 1, p - line, w->f);
}

static void text_tick(struct writer *w, uint64_t ts_real_ns)
{
	if (w->aggregate)
		agg_flush(&w->agg, ts_real_ns, agg_line, w);
}

void writer_text_aggregate(struct writer *w, unsigned per_sec, uint64_t now_real_ns)
{
	w->aggregate = per_sec > 0;
	agg_init(&w->agg, per_sec, now_real_ns);
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
	for (int v = 0; l->new_lost_by_verdict && v < CT_KV_MAX; v++)
		if (l->new_lost_by_verdict[v])	/* issue 11 */
			fprintf(w->f, "; %llu %s lost", (unsigned long long)l->new_lost_by_verdict[v],
				ct_verdict_name(v));
	if (l->new_buffer_dropped)
		fprintf(w->f, "; %llu verdicts not printed (output buffer full, total %llu)",
			(unsigned long long)l->new_buffer_dropped,
			(unsigned long long)l->buffer_dropped);
	fputc('\n', w->f);
}

static void text_summary(struct writer *w, const struct summary_info *s)
{
	uint64_t total = 0, in = 0;

	text_tick(w, s->ts_real_ns);	/* what was summed since the last tick */
	for (int v = 0; v <= CT_V_DROPPED; v++) {
		total += s->verdicts[v];
		in += s->in_verdicts ? s->in_verdicts[v] : 0;
	}
	fprintf(w->f, "-- %llu attempts in %.1f s", (unsigned long long)total, s->duration_s);
	if (in)		/* on loopback an attempt is seen from both ends */
		fprintf(w->f, " (%llu outgoing, %llu incoming)",
			(unsigned long long)(total - in), (unsigned long long)in);
	fputc(':', w->f);
	for (int v = 0; v <= CT_V_DROPPED; v++)
		fprintf(w->f, " %s %llu", ct_verdict_name(v),
			(unsigned long long)s->verdicts[v]);
	if (s->est_verdicts)
		fprintf(w->f, "; established: timeout %llu reset %llu",
			(unsigned long long)s->est_verdicts[CT_V_TIMEOUT],
			(unsigned long long)s->est_verdicts[CT_V_RESET]);
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
	.tick = text_tick,
};

void writer_text_init(struct writer *w, FILE *f, bool color, bool detail)
{
	memset(w, 0, offsetof(struct writer, agg));	/* agg: writer_text_aggregate() */
	w->ops = &text_ops;
	w->f = f;
	w->color = color;
	w->detail = detail;
}
