// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Established connections that died: one struct ct_estab record in, one
 * verdict (phase established) out. No matching is needed: the kernel kept
 * the connection's evidence with its socket. Step 1 reads the record into
 * facts (which timer gave up, which way an RST went), step 2 classifies
 * them, step 3 writes the sentence when a writer asks for it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "correlate.h"
#include "established.h"

static const char *const phase_names[CT_PHASE_MAX] = { "connect", "established" };
static const char *const timer_names[CT_TIMER_MAX] = {
	[CT_TIMER_NONE] = NULL,
	[CT_TIMER_RETRANSMIT] = "retransmit",
	[CT_TIMER_KEEPALIVE] = "keepalive",
	[CT_TIMER_USER_TIMEOUT] = "user_timeout",
	[CT_TIMER_ZERO_WINDOW_PROBE] = "zero_window_probe",
};
static const char *const state_names[] = {
	[1] = "established", [2] = "syn_sent", [3] = "syn_recv", [4] = "fin_wait1",
	[5] = "fin_wait2", [6] = "time_wait", [7] = "close", [8] = "close_wait",
	[9] = "last_ack", [10] = "listen", [11] = "closing",
};

const char *ct_phase_name(enum ct_phase p)
{
	return (unsigned)p < CT_PHASE_MAX ? phase_names[p] : "?";
}

const char *ct_timer_name(enum ct_timer t)
{
	return (unsigned)t < CT_TIMER_MAX ? timer_names[t] : NULL;
}

const char *ct_tcp_state_name(unsigned state)
{
	if (state >= sizeof(state_names) / sizeof(state_names[0]) || !state_names[state])
		return "unknown";
	return state_names[state];
}

int ct_phase_parse(const char *s)
{
	if (!strcmp(s, "both"))
		return (1 << CT_PHASE_CONNECT) | (1 << CT_PHASE_ESTABLISHED);
	for (int p = 0; p < CT_PHASE_MAX; p++)
		if (!strcmp(s, phase_names[p]))
			return 1 << p;
	return -1;
}

/*
 * Which timer gave up, from the socket as it died. The write queue is purged
 * by then, but snd_nxt - snd_una still says whether data was in flight: the
 * retransmit timer. With nothing in flight, unanswered probes are keepalive
 * probes, or window probes when the peer's window is 0. TCP_USER_TIMEOUT,
 * once set, decides the end of every one of them.
 */
static enum ct_timer which_timer(const struct ct_estab *e)
{
	if (e->user_timeout_ms)
		return CT_TIMER_USER_TIMEOUT;
	if (!e->unacked && e->probes_out) {
		if (!e->snd_wnd || !(e->flags & CT_EF_KEEPOPEN))
			return CT_TIMER_ZERO_WINDOW_PROBE;
		return CT_TIMER_KEEPALIVE;
	}
	return CT_TIMER_RETRANSMIT;
}

/* us from when to the end, -1 when it was not seen */
static int64_t before_end(const struct ct_estab *e, uint64_t when)
{
	if (!when || when > e->ts_end)
		return -1;
	return (int64_t)((e->ts_end - when) / 1000);
}

void estab_facts(struct ct_estab_facts *x, const struct ct_estab *e,
		 const struct estab_config *cfg)
{
	memset(x, 0, sizeof(*x));
	x->err = e->err;
	x->state = e->state;
	x->keepalive = e->flags & CT_EF_KEEPOPEN;
	x->owner = e->flags & CT_EF_OWNER;
	x->lossy = e->flags & CT_EF_LOSSY;
	/* 6.1 traces a retransmit only once it left: one dropped on output is
	 * only in the socket's own count (the times of those stay unknown) */
	x->retrans = e->retrans > e->total_retrans ? e->retrans : e->total_retrans;
	x->total_retrans = e->total_retrans;
	x->since_ack = e->timeouts;
	x->backoff = e->backoff;
	x->probes_out = e->probes_out;
	x->unacked = e->unacked;
	x->snd_wnd = e->snd_wnd;
	x->user_timeout_ms = e->user_timeout_ms;
	x->nf_drops = e->nf_drops;
	x->drops = e->drops;
	if (e->drops && cfg->drop_reason_name)
		x->drop_reason = cfg->drop_reason_name(e->drop_reason, cfg->drop_names);
	x->first_retrans_us = before_end(e, e->ts_first_retrans);
	x->last_retrans_us = before_end(e, e->ts_last_retrans);
	x->tracked_us = before_end(e, e->ts_first);
	x->idle_us = -1;
	if ((e->flags & CT_EF_IDLE) && cfg->hz)
		x->idle_us = (int64_t)e->idle_jiffies * 1000000 / cfg->hz;
	if ((e->flags & CT_EF_RST_SENT) && e->err != ETIMEDOUT) {
		/* a timer that gives up sends an RST too (keepalive): a timeout */
		x->reset = CT_RESET_SENT;
		x->reset_seen = true;
		if ((e->flags & CT_EF_RST_REASON) && cfg->rst_reason_name)
			x->rst_reason = cfg->rst_reason_name(e->rst_reason, cfg->rst_names);
	} else if (e->flags & CT_EF_RST_RCVD) {
		x->reset = CT_RESET_RECEIVED;
		x->reset_seen = true;
	} else if (e->err == ECONNRESET || e->err == EPIPE) {
		/* tcp_reset() set it: the RST arrived without its tracepoint */
		x->reset = CT_RESET_RECEIVED;
	}
	if (x->reset == CT_RESET_NONE)
		x->timer = which_timer(e);
}

/*
 * Step 2. A reset is said by its direction; a timeout by what this host
 * saw of the lost packets: dropped here by netfilter, else the peer (or the
 * path to it) stopped acknowledging.
 */
static struct ct_class estab_classify(const struct ct_estab_facts *x)
{
	struct ct_class k = { .verdict = CT_V_TIMEOUT };

	switch (x->reset) {
	case CT_RESET_SENT:
		k.verdict = CT_V_RESET;
		k.cause = CT_C_RST_SENT;
		break;
	case CT_RESET_RECEIVED:
		k.verdict = CT_V_RESET;
		k.cause = CT_C_RST_RECEIVED;
		k.inferred = !x->reset_seen;	/* from the errno alone */
		break;
	default:
		k.cause = x->nf_drops ? CT_C_NETFILTER_DROP : CT_C_NO_ACK;
		break;
	}
	return k;
}

int estab_result(struct ct_result *r, const void *data, size_t len,
		 const struct estab_config *cfg)
{
	const struct ct_estab *e = data;
	struct ct_flow *f = &r->flow;
	struct ct_class k;

	if (len != sizeof(*e) || e->type != CT_REC_ESTAB ||
	    (e->family != CT_AF_INET && e->family != CT_AF_INET6))
		return -EINVAL;
	memset(r, 0, sizeof(*r));
	r->phase = CT_PHASE_ESTABLISHED;
	estab_facts(&r->est, e, cfg);
	k = estab_classify(&r->est);
	r->verdict = k.verdict;
	r->cause = k.cause;
	r->inferred = k.inferred;
	/* the flow carries what every verdict has: addresses, owner, end */
	f->type = CT_REC_FLOW;
	f->family = e->family;
	f->state = e->state;
	f->sport = e->sport;
	f->dport = e->dport;
	f->pid = e->pid;
	f->tid = e->pid;
	f->netns = e->netns;
	f->err = e->err;
	f->cgroup_id = e->cgroup_id;
	f->ts_end = e->ts_end;
	memcpy(f->saddr, e->saddr, sizeof(f->saddr));
	memcpy(f->daddr, e->daddr, sizeof(f->daddr));
	memcpy(f->comm, e->comm, sizeof(f->comm));
	return 0;
}

/* ------------------------------------------------------------------------
 * Step 3: the sentence. */

struct out {
	char *buf;
	size_t sz, len;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (o->len >= o->sz)
		return;
	va_start(ap, fmt);
	n = vsnprintf(o->buf + o->len, o->sz - o->len, fmt, ap);
	va_end(ap);
	if (n > 0)
		o->len = o->len + n < o->sz ? o->len + n : o->sz - 1;
}

static void put_secs(struct out *o, int64_t us)
{
	if (us >= 10000000)
		put(o, "%.1f s", us / 1e6);
	else if (us >= 1000000)
		put(o, "%.2f s", us / 1e6);
	else
		put(o, "%.1f ms", us / 1e3);
}

/* The retransmit timeline: count, first and last, backoff. */
static void put_retrans(struct out *o, const struct ct_estab_facts *x)
{
	put(o, "%u retransmit%s", x->retrans, x->retrans == 1 ? "" : "s");
	if (x->first_retrans_us >= 0) {
		put(o, " (the first ");
		put_secs(o, x->first_retrans_us);
		put(o, " and the last ");
		put_secs(o, x->last_retrans_us);
		put(o, " before the end, RTO doubled %u time%s)", x->backoff,
		    x->backoff == 1 ? "" : "s");
	}
}

static void timeout_detail(struct out *o, const struct ct_estab_facts *x)
{
	switch (x->timer) {
	case CT_TIMER_KEEPALIVE:
		put(o, "%u keepalive probe%s went unanswered", x->probes_out,
		    x->probes_out == 1 ? "" : "s");
		break;
	case CT_TIMER_ZERO_WINDOW_PROBE:
		put(o, "%s: %u window probe%s went unanswered", x->snd_wnd ?
		    "its data could not leave (sending failed on this host)" :
		    "the peer's window stayed shut", x->probes_out, x->probes_out == 1 ? "" : "s");
		break;
	case CT_TIMER_USER_TIMEOUT:
		put(o, "TCP_USER_TIMEOUT (%u ms) passed with nothing acknowledged after ",
		    x->user_timeout_ms);
		put_retrans(o, x);
		break;
	default:
		put(o, "the kernel gave up after ");
		put_retrans(o, x);
		break;
	}
	put(o, ", %u bytes unacknowledged, in %s: ", x->unacked, ct_tcp_state_name(x->state));
	if (x->nf_drops)
		put(o, "netfilter on this host dropped %u of its packets", x->nf_drops);
	else
		put(o, "the peer stopped acknowledging (no drop of its packets seen on this host)");
}

static void reset_detail(struct out *o, const struct ct_result *r)
{
	const struct ct_estab_facts *x = &r->est;

	if (x->reset == CT_RESET_SENT) {
		put(o, "this host reset it in %s", ct_tcp_state_name(x->state));
		if (x->rst_reason)
			put(o, " (the kernel's reason: %s)", x->rst_reason);
		if (x->owner)
			put(o, " as pid %u closed it", r->flow.pid);
	} else {
		put(o, "%s in %s", x->reset_seen ? "an RST arrived" :
		    "the socket was reset (ECONNRESET; the RST itself was not traced)",
		    ct_tcp_state_name(x->state));
		if (x->idle_us >= 0) {
			put(o, " after ");
			put_secs(o, x->idle_us);
			put(o, " without anything received");
		}
	}
	if (x->unacked)
		put(o, ", with %u bytes unacknowledged", x->unacked);
	if (x->retrans) {
		put(o, ", after ");
		put_retrans(o, x);
	}
}

const char *estab_render_detail(const struct ct_result *r, char *buf, size_t sz)
{
	struct out o = { .buf = buf, .sz = sz };

	if (!sz)
		return buf;
	buf[0] = '\0';
	put(&o, "Established connection %s: ", r->verdict == CT_V_RESET ? "reset" : "timed out");
	if (r->verdict == CT_V_RESET)
		reset_detail(&o, r);
	else
		timeout_detail(&o, &r->est);
	if (r->est.nf_drops && r->verdict == CT_V_RESET)
		put(&o, "; netfilter on this host dropped %u of its packets", r->est.nf_drops);
	if (r->est.drops)
		put(&o, "; %u of its packets dropped (%s)", r->est.drops,
		    r->est.drop_reason ? r->est.drop_reason : "reason unknown");
	if (r->est.lossy)
		put(&o, "; records were lost meanwhile");
	put(&o, ".");
	return buf;
}
