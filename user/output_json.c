// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* JSON Lines writer: one object per line, schema in docs/schema.md. */
#include <string.h>
#include "json.h"
#include "output.h"

static void begin(struct json *j, FILE *f, const char *type, uint64_t ts_real_ns)
{
	char ts[48];

	json_init(j, f);
	json_obj_begin(j);
	json_kstr(j, "type", type);
	json_kstr(j, "schema", CT_SCHEMA_VERSION);
	fmt_rfc3339(ts, sizeof(ts), ts_real_ns);
	json_kstr(j, "ts", ts);
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
	json_kstr(&j, "version", s->version);
	json_kstr(&j, "kernel", s->kernel);
	json_ku64(&j, "pid", s->pid);
	json_key(&j, "probes");
	json_obj_begin(&j);
	for (int i = 0; i < s->nr_probes; i++) {
		const struct probe_report *p = &s->probes[i];

		json_key(&j, p->signal);
		json_obj_begin(&j);
		json_kstr(&j, "hook", p->ok ? p->hook : NULL);
		if (p->note[0])
			json_kstr(&j, "note", p->note);
		json_obj_end(&j);
	}
	json_obj_end(&j);
	end(&j);
}

static void ev_item(struct json *j, const struct ct_ev_item *it)
{
	json_obj_begin(j);
	json_key(j, "t_us");
	if (it->t_us == INT64_MIN)
		json_null(j);
	else
		json_i64(j, it->t_us);
	json_kstr(j, "event", ct_ev_kind_name(it->kind));
	switch (it->kind) {
	case CT_EV_SYN_RETRANS:
	case CT_EV_SYN_RECEIVED:
	case CT_EV_SYNACK_RETRANS:
	case CT_EV_SYN_COOKIE:
		json_ku64(j, "n", it->n);
		break;
	case CT_EV_DROP:
		json_ku64(j, "count", it->n);
		json_kstr(j, "packet", it->synack ? "synack" : "syn");
		json_kstr(j, "reason", it->reason);
		break;
	case CT_EV_RST_SENT:
		json_kstr(j, "answering", it->synack ? "synack" : "syn");
		json_kstr(j, "reason", it->reason);
		break;
	case CT_EV_ERROR:
	case CT_EV_CLOSED:
	case CT_EV_CONNECT_ERROR:
	case CT_EV_ICMP_ERROR:
		json_kstr(j, "errno", ct_errno_name(it->err));
		break;
	case CT_EV_ACCEPT_QUEUE_FULL:
		json_key(j, "accept_queue");
		if (it->queue_known)
			json_u64(j, it->queue);
		else
			json_null(j);
		json_ku64(j, "accept_queue_max", it->queue_max);
		break;
	case CT_EV_ICMP_SENT:
		json_kstr(j, "answering", it->synack ? "synack" : "syn");
		json_ku64(j, "icmp_type", it->icmp_type);
		json_ku64(j, "icmp_code", it->icmp_code);
		break;
	default:
		break;
	}
	json_obj_end(j);
}

static void json_verdict(struct writer *w, const struct ct_result *r, uint64_t ts_real_ns)
{
	const struct ct_flow *f = &r->flow;
	bool evicted = f->flags & CT_F_NO_HISTORY;
	char addr[64];
	int err = f->err ? f->err : f->err_report;
	char detail[CT_DETAIL_MAX];
	struct json j;

	begin(&j, w->f, "verdict", ts_real_ns);
	json_kstr(&j, "verdict", ct_verdict_name(r->verdict));
	json_kstr(&j, "cause", ct_cause_name(r->cause));
	json_kbool(&j, "inferred", r->inferred);
	json_kstr(&j, "detail", ct_render_detail(r, detail, sizeof(detail)));
	json_kstr(&j, "direction", r->inbound ? "inbound" : "outbound");
	if (r->inbound) {
		/* the listener's owner at listen(), when it was seen */
		if (f->pid)
			json_ku64(&j, "pid", f->pid);
		else
			json_kstr(&j, "pid", NULL);
		json_kstr(&j, "tid", NULL);
		json_key(&j, "comm");
		if (f->pid)
			json_strn(&j, f->comm, sizeof(f->comm));
		else
			json_null(&j);
		json_kstr(&j, "cgroup_id", NULL);
	} else if (evicted) {
		json_kstr(&j, "pid", NULL);
		json_kstr(&j, "tid", NULL);
		json_kstr(&j, "comm", NULL);
		json_kstr(&j, "cgroup_id", NULL);
	} else {
		json_ku64(&j, "pid", f->pid);
		json_ku64(&j, "tid", f->tid);
		json_key(&j, "comm");
		json_strn(&j, f->comm, sizeof(f->comm));
		json_ku64(&j, "cgroup_id", f->cgroup_id);
	}
	json_ku64(&j, "netns", f->netns);
	json_kstr(&j, "family", f->family == CT_AF_INET ? "ipv4" : "ipv6");
	fmt_addr(addr, sizeof(addr), f->family, f->saddr);
	json_kstr(&j, "saddr", addr);
	json_ku64(&j, "sport", f->sport);
	fmt_addr(addr, sizeof(addr), f->family, f->daddr);
	json_kstr(&j, "daddr", addr);
	json_ku64(&j, "dport", f->dport);
	json_ku64(&j, "syn_retrans", f->syn_retrans);
	json_key(&j, "duration_us");
	if (evicted)
		json_null(&j);
	else
		json_u64(&j, r->duration_ns / 1000);
	json_kstr(&j, "errno", ct_errno_name(err));
	json_kbool(&j, "evicted", f->flags & CT_F_EVICTED);
	json_kbool(&j, "untracked", f->flags & CT_F_UNTRACKED);
	json_key(&j, "evidence");
	json_arr_begin(&j);
	for (unsigned i = 0; i < r->nr_ev; i++)
		ev_item(&j, &r->ev[i]);
	json_arr_end(&j);
	json_ku64(&j, "evidence_omitted", r->ev_omitted);
	end(&j);
}

static void json_loss(struct writer *w, const struct loss_info *l)
{
	char since[48];
	struct json j;

	begin(&j, w->f, "lost", l->ts_real_ns);
	fmt_rfc3339(since, sizeof(since), l->since_real_ns);
	json_kstr(&j, "since", since);
	json_ku64(&j, "records", l->new_lost);
	json_ku64(&j, "flow_evictions", l->new_evictions);
	json_ku64(&j, "records_total", l->lost_records);
	json_ku64(&j, "flow_evictions_total", l->flow_evictions);
	json_ku64(&j, "output_records", l->new_output_lost);
	json_ku64(&j, "output_records_total", l->output_lost);
	json_ku64(&j, "missed_events", l->new_missed);
	json_ku64(&j, "missed_events_total", l->missed);
	end(&j);
}

static void json_summary(struct writer *w, const struct summary_info *s)
{
	struct json j;

	begin(&j, w->f, "summary", s->ts_real_ns);
	json_key(&j, "verdicts");
	json_obj_begin(&j);
	for (int v = 0; v < CT_V_MAX; v++)
		json_ku64(&j, ct_verdict_name(v), s->verdicts[v]);
	json_obj_end(&j);
	json_ku64(&j, "flows", s->flows);
	json_ku64(&j, "lost_records", s->lost_records);
	json_ku64(&j, "flow_evictions", s->flow_evictions);
	json_ku64(&j, "flow_table_full", s->flow_nospace);
	json_ku64(&j, "flows_untracked", s->flows_untracked);
	json_ku64(&j, "missed_events", s->missed_events);
	json_ku64(&j, "evidence_unmatched", s->stats->evidence_expired);
	json_ku64(&j, "evidence_dropped", s->stats->evidence_dropped);
	json_ku64(&j, "malformed_records", s->stats->malformed);
	json_ku64(&j, "output_write_errors", s->output_write_errors);
	json_ku64(&j, "output_records_lost", s->output_records_lost);
	json_key(&j, "duration_s");
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
	json_kstr(&j, "since", since);
	json_ku64(&j, "netns", l->netns);
	json_kstr(&j, "family", l->family == CT_AF_INET ? "ipv4" : "ipv6");
	fmt_addr(addr, sizeof(addr), l->family, l->addr);
	json_kstr(&j, "laddr", addr);
	json_ku64(&j, "lport", l->port);
	json_ku64(&j, "overflows", r->overflows);
	json_ku64(&j, "overflows_total", r->total);
	json_ku64(&j, "accept_queue", l->queue);
	json_ku64(&j, "accept_queue_max", l->queue_max);
	json_kstr(&j, "method", "sk_drops");
	end(&j);
}

static const struct writer_ops json_ops = {
	.start = json_start,
	.verdict = json_verdict,
	.loss = json_loss,
	.summary = json_summary,
	.listen_overflow = json_listen_overflow,
};

void writer_json_init(struct writer *w, FILE *f)
{
	memset(w, 0, sizeof(*w));
	w->ops = &json_ops;
	w->f = f;
}
