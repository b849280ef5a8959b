// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* JSON Lines writer: one object per line, schema in docs/schema.md. */
#include <stddef.h>
#include <string.h>
#include "fmt.h"
#include "json.h"
#include "output.h"

/* Members whose key is a literal: no scan of the key (json_klit). */
#define KSTR(j, k, v)	do { json_klit(j, k); json_str(j, v); } while (0)
#define KU64(j, k, v)	do { json_klit(j, k); json_u64(j, v); } while (0)
#define KBOOL(j, k, v)	do { json_klit(j, k); json_bool(j, v); } while (0)

/* A timestamp or an address, formatted by hand straight into its quotes. */
static void raw_ts(struct json *j, uint64_t real_ns)
{
	char buf[FMT_TS_MAX + 2];
	char *p = buf;

	*p++ = '"';
	p = fmt_ts(p, real_ns);
	*p++ = '"';
	json_raw(j, buf, p - buf);
}

static void raw_ip(struct json *j, uint8_t family, const uint8_t *addr)
{
	char buf[FMT_IP_MAX + 2];
	char *p = buf;

	*p++ = '"';
	p = fmt_ip(p, family, addr);
	*p++ = '"';
	json_raw(j, buf, p - buf);
}

static void begin(struct json *j, FILE *f, const char *type, uint64_t ts_real_ns)
{
	json_init(j, f);
	json_obj_begin(j);
	KSTR(j, "type", type);
	KSTR(j, "schema", CT_SCHEMA_VERSION);
	json_klit(j, "ts");
	raw_ts(j, ts_real_ns);
}

static void end(struct json *j)
{
	json_obj_end(j);
	json_eol(j);
}

static void json_start(struct writer *w, const struct start_info *s)
{
	struct json j;

	begin(&j, w->f, "start", s->ts_real_ns);
	KSTR(&j, "version", s->version);
	KSTR(&j, "kernel", s->kernel);
	KU64(&j, "pid", s->pid);
	json_klit(&j, "probes");
	json_obj_begin(&j);
	for (int i = 0; i < s->nr_probes; i++) {
		const struct probe_report *p = &s->probes[i];

		json_key(&j, p->signal);
		json_obj_begin(&j);
		KSTR(&j, "hook", p->ok ? p->hook : NULL);
		if (p->note[0])
			KSTR(&j, "note", p->note);
		json_obj_end(&j);
	}
	json_obj_end(&j);
	end(&j);
}

static void ev_item(struct json *j, const struct ct_ev_item *it)
{
	json_obj_begin(j);
	json_klit(j, "t_us");
	if (it->t_us == INT64_MIN)
		json_null(j);
	else
		json_i64(j, it->t_us);
	KSTR(j, "event", ct_ev_kind_name(it->kind));
	switch (it->kind) {
	case CT_EV_SYN_RETRANS:
	case CT_EV_SYN_RECEIVED:
	case CT_EV_SYNACK_RETRANS:
	case CT_EV_SYN_COOKIE:
		KU64(j, "n", it->n);
		break;
	case CT_EV_DROP:
		KU64(j, "count", it->n);
		KSTR(j, "packet", it->synack ? "synack" : "syn");
		KSTR(j, "reason", it->reason);
		break;
	case CT_EV_RST_SENT:
		KSTR(j, "answering", it->synack ? "synack" : "syn");
		KSTR(j, "reason", it->reason);
		break;
	case CT_EV_ERROR:
	case CT_EV_CLOSED:
	case CT_EV_CONNECT_ERROR:
	case CT_EV_ICMP_ERROR:
		KSTR(j, "errno", ct_errno_name(it->err));
		break;
	case CT_EV_ACCEPT_QUEUE_FULL:
		json_klit(j, "accept_queue");
		if (it->queue_known)
			json_u64(j, it->queue);
		else
			json_null(j);
		KU64(j, "accept_queue_max", it->queue_max);
		break;
	case CT_EV_ICMP_SENT:
		KSTR(j, "answering", it->synack ? "synack" : "syn");
		KU64(j, "icmp_type", it->icmp_type);
		KU64(j, "icmp_code", it->icmp_code);
		break;
	default:
		break;
	}
	json_obj_end(j);
}

/* The detail, rendered once, straight into the line. */
static size_t fill_detail(char *buf, size_t max, const void *r)
{
	return strlen(ct_render_detail(r, buf, max));
}

/* Attribution (cgroup.c): null where unknown, removed, or the path says nothing. */
static void cg_fields(struct json *j, const struct cg_info *cg)
{
	const struct cg_attrib *a = cg && cg->state == CG_FOUND ? &cg->a : NULL;

	json_kstr(j, "cgroup", a ? cg->path : NULL);
	json_kbool(j, "cgroup_removed", cg && cg->state == CG_REMOVED);
	json_kstr(j, "unit", a && a->unit[0] ? a->unit : NULL);
	json_kstr(j, "container_id", a && a->container_id[0] ? a->container_id : NULL);
	json_kstr(j, "pod_uid", a && a->pod_uid[0] ? a->pod_uid : NULL);
}

/* key: v, or null when v is negative (unknown) */
static void kopt_i64(struct json *j, const char *key, int64_t v)
{
	json_key(j, key);
	if (v < 0)
		json_null(j);
	else
		json_i64(j, v);
}

/* An established verdict's own fields: timer or reset, and its evidence. */
static void json_established(struct json *j, const struct ct_result *r)
{
	const struct ct_estab_facts *x = &r->est;

	if (r->verdict == CT_V_TIMEOUT)
		json_kstr(j, "timer", ct_timer_name(x->timer));
	if (r->verdict == CT_V_RESET) {
		json_kstr(j, "reset", x->reset == CT_RESET_SENT ? "sent" : "received");
		json_kstr(j, "reset_reason", x->rst_reason);
	}
	json_key(j, "established");
	json_obj_begin(j);
	json_kstr(j, "state", ct_tcp_state_name(x->state));
	json_kstr(j, "age_us", NULL);	/* no creation time on the socket */
	json_ku64(j, "tracked_us", x->tracked_us < 0 ? 0 : x->tracked_us);
	json_key(j, "retransmits");
	json_obj_begin(j);
	json_ku64(j, "count", x->retrans);
	json_ku64(j, "kernel_total", x->total_retrans);
	json_ku64(j, "since_ack", x->since_ack);
	kopt_i64(j, "first_us", x->first_retrans_us);
	kopt_i64(j, "last_us", x->last_retrans_us);
	json_ku64(j, "backoff", x->backoff);
	json_obj_end(j);
	json_ku64(j, "unacked_bytes", x->unacked);
	kopt_i64(j, "idle_us", x->idle_us);
	json_ku64(j, "probes_out", x->probes_out);
	json_kbool(j, "keepalive", x->keepalive);
	kopt_i64(j, "user_timeout_ms", x->user_timeout_ms ? (int64_t)x->user_timeout_ms : -1);
	json_ku64(j, "netfilter_drops", x->nf_drops);
	json_ku64(j, "drops", x->drops);
	json_kstr(j, "drop_reason", x->drop_reason);
	json_obj_end(j);
}

static void json_verdict(struct writer *w, const struct ct_result *r, uint64_t ts_real_ns)
{
	const struct ct_flow *f = &r->flow;
	bool est = r->phase == CT_PHASE_ESTABLISHED;
	bool evicted = f->flags & CT_F_NO_HISTORY || (est && !r->est.owner);
	int err = f->err ? f->err : f->err_report;
	struct json j;

	begin(&j, w->f, "verdict", ts_real_ns);
	KSTR(&j, "verdict", ct_verdict_name(r->verdict));
	KSTR(&j, "cause", ct_cause_name(r->cause));
	KBOOL(&j, "inferred", r->inferred);
	json_klit(&j, "detail");
	json_str_fill(&j, fill_detail, r, CT_DETAIL_MAX);
	KSTR(&j, "direction", r->inbound ? "inbound" : "outbound");
	KSTR(&j, "phase", ct_phase_name(r->phase));
	if (r->inbound) {
		/* the listener's owner at listen(), when it was seen */
		json_klit(&j, "pid");
		if (f->pid)
			json_u64(&j, f->pid);
		else
			json_null(&j);
		KSTR(&j, "tid", NULL);
		json_klit(&j, "comm");
		if (f->pid)
			json_strn(&j, f->comm, sizeof(f->comm));
		else
			json_null(&j);
		KSTR(&j, "cgroup_id", NULL);
	} else if (evicted) {
		KSTR(&j, "pid", NULL);
		KSTR(&j, "tid", NULL);
		KSTR(&j, "comm", NULL);
		/* an established socket's cgroup is its own, owner or not */
		if (est && f->cgroup_id)
			KU64(&j, "cgroup_id", f->cgroup_id);
		else
			KSTR(&j, "cgroup_id", NULL);
	} else {
		KU64(&j, "pid", f->pid);
		KU64(&j, "tid", f->tid);
		json_klit(&j, "comm");
		json_strn(&j, f->comm, sizeof(f->comm));
		KU64(&j, "cgroup_id", f->cgroup_id);
	}
	/* an established socket's cgroup is known without its owner */
	cg_fields(&j, r->inbound || (evicted && !(est && f->cgroup_id)) ? NULL : w->cg);
	KU64(&j, "netns", f->netns);
	KSTR(&j, "family", f->family == CT_AF_INET ? "ipv4" : "ipv6");
	json_klit(&j, "saddr");
	raw_ip(&j, f->family, f->saddr);
	KU64(&j, "sport", f->sport);
	json_klit(&j, "daddr");
	raw_ip(&j, f->family, f->daddr);
	KU64(&j, "dport", f->dport);
	KU64(&j, "syn_retrans", f->syn_retrans);
	json_klit(&j, "duration_us");
	if (evicted || est)
		json_null(&j);
	else
		json_u64(&j, r->duration_ns / 1000);
	KSTR(&j, "errno", ct_errno_name(err));
	KBOOL(&j, "evicted", f->flags & CT_F_EVICTED);
	KBOOL(&j, "untracked", f->flags & CT_F_UNTRACKED);
	json_klit(&j, "evidence");
	json_arr_begin(&j);
	for (unsigned i = 0; i < r->nr_ev; i++)
		ev_item(&j, &r->ev[i]);
	json_arr_end(&j);
	KU64(&j, "evidence_omitted", r->ev_omitted);
	if (est)
		json_established(&j, r);
	end(&j);
}

/* "key":{"ok":N,...}: the verdicts the kernel can count (not pending) */
static void by_verdict(struct json *j, const char *key, const uint64_t *v, int nr)
{
	json_key(j, key);
	json_obj_begin(j);
	for (int i = 0; i < nr; i++)
		json_ku64(j, ct_verdict_name(i), v ? v[i] : 0);
	json_obj_end(j);
}

static void json_loss(struct writer *w, const struct loss_info *l)
{
	char since[48];
	struct json j;

	begin(&j, w->f, "lost", l->ts_real_ns);
	fmt_rfc3339(since, sizeof(since), l->since_real_ns);
	KSTR(&j, "since", since);
	KU64(&j, "records", l->new_lost);
	KU64(&j, "flow_evictions", l->new_evictions);
	KU64(&j, "records_total", l->lost_records);
	KU64(&j, "flow_evictions_total", l->flow_evictions);
	KU64(&j, "output_records", l->new_output_lost);
	KU64(&j, "output_records_total", l->output_lost);
	KU64(&j, "missed_events", l->new_missed);
	KU64(&j, "missed_events_total", l->missed);
	by_verdict(&j, "lost_by_verdict", l->new_lost_by_verdict, CT_KV_MAX);
	KU64(&j, "buffer_records", l->new_buffer_dropped);
	KU64(&j, "buffer_records_total", l->buffer_dropped);
	end(&j);
}

static void json_summary(struct writer *w, const struct summary_info *s)
{
	struct json j;

	begin(&j, w->f, "summary", s->ts_real_ns);
	json_klit(&j, "verdicts");
	json_obj_begin(&j);
	/* the attempts' verdicts, outgoing and incoming: flows = their sum */
	for (int v = 0; v <= CT_V_DROPPED; v++)
		json_ku64(&j, ct_verdict_name(v), s->verdicts[v]);
	json_obj_end(&j);
	/* of them, the incoming ones: on loopback an attempt is both */
	json_klit(&j, "inbound_verdicts");
	json_obj_begin(&j);
	for (int v = 0; v <= CT_V_DROPPED; v++)
		json_ku64(&j, ct_verdict_name(v), s->in_verdicts ? s->in_verdicts[v] : 0);
	json_obj_end(&j);
	if (s->est_verdicts) {
		json_klit(&j, "established_verdicts");
		json_obj_begin(&j);
		KU64(&j, "timeout", s->est_verdicts[CT_V_TIMEOUT]);
		KU64(&j, "reset", s->est_verdicts[CT_V_RESET]);
		json_obj_end(&j);
	}
	KU64(&j, "flows", s->flows);
	KU64(&j, "lost_records", s->lost_records);
	KU64(&j, "flow_evictions", s->flow_evictions);
	KU64(&j, "flow_table_full", s->flow_nospace);
	KU64(&j, "flows_untracked", s->flows_untracked);
	KU64(&j, "missed_events", s->missed_events);
	KU64(&j, "evidence_unmatched", s->stats->evidence_expired);
	KU64(&j, "evidence_dropped", s->stats->evidence_dropped);
	KU64(&j, "malformed_records", s->stats->malformed);
	KU64(&j, "output_write_errors", s->output_write_errors);
	KU64(&j, "output_records_lost", s->output_records_lost);
	by_verdict(&j, "lost_by_verdict", s->lost_by_verdict, CT_KV_MAX);
	by_verdict(&j, "buffer_dropped_by_verdict", s->dropped_by_verdict, CT_V_DROPPED + 1);
	KU64(&j, "ok_not_sent", s->ok_unsent);
	json_klit(&j, "duration_s");
	json_double(&j, s->duration_s, 3);
	end(&j);
}

static void json_listen_overflow(struct writer *w, const struct overflow_report *r,
				 uint64_t ts_real_ns, uint64_t since_real_ns)
{
	const struct ct_listener *l = r->l;
	char addr[64], since[48];
	struct json j;

	begin(&j, w->f, "listen_overflow", ts_real_ns);
	fmt_rfc3339(since, sizeof(since), since_real_ns);
	KSTR(&j, "since", since);
	KU64(&j, "netns", l->netns);
	KSTR(&j, "family", l->family == CT_AF_INET ? "ipv4" : "ipv6");
	fmt_addr(addr, sizeof(addr), l->family, l->addr);
	KSTR(&j, "laddr", addr);
	KU64(&j, "lport", l->port);
	KU64(&j, "overflows", r->overflows);
	KU64(&j, "overflows_total", r->total);
	KU64(&j, "accept_queue", l->queue);
	KU64(&j, "accept_queue_max", l->queue_max);
	KSTR(&j, "method", overflow_method_name(r->method));
	end(&j);
}

/* JSON keeps every record: nothing is summed, nothing to say at a tick. */
static void json_tick(struct writer *w, uint64_t ts_real_ns)
{
	(void)w;
	(void)ts_real_ns;
}

static const struct writer_ops json_ops = {
	.start = json_start,
	.verdict = json_verdict,
	.loss = json_loss,
	.summary = json_summary,
	.listen_overflow = json_listen_overflow,
	.tick = json_tick,
};

void writer_json_init(struct writer *w, FILE *f)
{
	memset(w, 0, offsetof(struct writer, agg));	/* agg is unused */
	w->ops = &json_ops;
	w->f = f;
}
