// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The JSON writer, captured with open_memstream(): every record parses with a
 * real parser (Python's json module) and carries the documented fields.
 */
#include "output_fixture.h"

/* ---- JSON: parsed by a real parser ---- */

#define PYTHON "/usr/bin/python3"
/* Each line must be one UTF-8 JSON object; prints "key<TAB>value" per member, then "". */
#define FIELDS_PY							\
	"import json, sys\n"						\
	"def bad(c): raise ValueError(\"not JSON: \" + c)\n"		\
	"for line in open(sys.argv[1], encoding=\"utf-8\", newline=\"\\n\"):\n" \
	"    if not line.endswith(\"\\n\"): raise ValueError(\"no newline\")\n" \
	"    o = json.loads(line, parse_constant=bad)\n"		\
	"    if not isinstance(o, dict): raise ValueError(\"not an object\")\n" \
	"    for k, v in o.items():\n"					\
	"        print(k + \"\\t\" + json.dumps(v, ensure_ascii=True, sort_keys=True,\n" \
	"                                     separators=(\",\", \":\")))\n" \
	"    print()\n"

#define MAX_FIELDS 40

/* One parsed record: its members in order, values re-encoded as ASCII JSON. */
struct record {
	size_t n;
	char *key[MAX_FIELDS];
	char *val[MAX_FIELDS];
};

/* Parses text (one or more JSON lines) into recs; returns how many. */
static size_t parse_records(const char *text, struct record *recs, size_t max)
{
	char path[] = "/tmp/ct-unit-output-XXXXXX", cmd[2048], *out = NULL, *p;
	size_t outlen = 0, n = 0;
	FILE *py, *mem;
	int fd, ch, status;

	fd = mkstemp(path);
	CHECK(fd >= 0, "mkstemp failed");
	CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text), "short write");
	close(fd);
	snprintf(cmd, sizeof(cmd), PYTHON " -c '%s' %s 2>&1", FIELDS_PY, path);
	py = popen(cmd, "r");
	CHECK(py, "cannot run " PYTHON);
	mem = open_memstream(&out, &outlen);
	while ((ch = fgetc(py)) != EOF)
		fputc(ch, mem);
	fclose(mem);
	owned(out);	/* the records point into it */
	status = pclose(py);
	unlink(path);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "expected every line to parse as a JSON object; python3 says:\n%s\ninput:\n%s",
	      out, text);
	memset(recs, 0, max * sizeof(*recs));
	for (p = out; *p && n < max; ) {
		char *nl = strchr(p, '\n'), *tab;

		*nl = '\0';
		if (!*p) {
			n++;
		} else {
			struct record *r = &recs[n];

			tab = strchr(p, '\t');
			CHECK(tab && r->n < MAX_FIELDS, "unexpected parser output: %s", p);
			*tab = '\0';
			r->key[r->n] = p;
			r->val[r->n++] = tab + 1;
		}
		p = nl + 1;
	}
	return n;
}

static const char *get(const struct record *r, const char *key)
{
	for (size_t i = 0; i < r->n; i++)
		if (!strcmp(r->key[i], key))
			return r->val[i];
	return NULL;
}

#define expect_field(r, key, want) do {							\
	const char *got_ = get((r), (key));						\
	CHECK(got_ && !strcmp(got_, (want)), "expected \"%s\": %s, got %s", (key), (want),	\
	      got_ ? got_ : "no such field");						\
} while (0)

/* "2023-11-14T22:13:20.123456789Z", quoted: RFC 3339, UTC, 9 fractional digits. */
static void expect_rfc3339(const struct record *r, const char *key)
{
	static const char shape[] = "\"dddd-dd-ddTdd:dd:dd.dddddddddZ\"";
	const char *v = get(r, key);
	bool ok = v && strlen(v) == strlen(shape);

	for (size_t i = 0; ok && shape[i]; i++)
		ok = shape[i] == 'd' ? v[i] >= '0' && v[i] <= '9' : v[i] == shape[i];
	CHECK(ok, "expected \"%s\" as RFC 3339 with 9 fractional digits and Z, got %s", key,
	      v ? v : "no such field");
}

static void test_json_verdict_carries_every_field(void **state)
{
	static const char *const keys[] = {
		"type", "schema", "ts", "verdict", "cause", "inferred", "detail", "pid", "tid", "comm",
		"cgroup_id", "netns", "family", "saddr", "sport", "daddr", "dport", "syn_retrans",
		"duration_us", "errno", "evicted", "untracked", "evidence",
	};
	struct ct_result r = timeout_result();
	struct record rec;
	struct capture c;
	char *text;

	(void)state;
	cap_json(&c);
	c.w.ops->verdict(&c.w, &r, TS_NS);
	text = cap_close(&c);
	CHECK(parse_records(text, &rec, 1) == 1, "expected one record");
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		CHECK(get(&rec, keys[i]), "expected a \"%s\" field in %s", keys[i], text);
	expect_field(&rec, "type", "\"verdict\"");
	expect_field(&rec, "schema", "\"" CT_SCHEMA_VERSION "\"");
	expect_field(&rec, "ts", "\"2023-11-14T22:13:20.123456789Z\"");
	expect_rfc3339(&rec, "ts");
	expect_field(&rec, "verdict", "\"timeout\"");
	expect_field(&rec, "cause", "\"local_drop\"");
	expect_field(&rec, "inferred", "false");
	expect_field(&rec, "detail", "\"this host dropped 1 of this flow's SYNs to 10.0.0.2:80, "
		     "reason EVIL\\\"NAME\\\\\"");
	expect_field(&rec, "pid", "4240");
	expect_field(&rec, "tid", "4242");
	expect_field(&rec, "comm", "\"curl\"");
	expect_field(&rec, "netns", "4026531840");
	expect_field(&rec, "cgroup_id", "9876543210");
	expect_field(&rec, "family", "\"ipv4\"");
	expect_field(&rec, "saddr", "\"10.0.0.1\"");
	expect_field(&rec, "sport", "40000");
	expect_field(&rec, "daddr", "\"10.0.0.2\"");
	expect_field(&rec, "dport", "80");
	expect_field(&rec, "syn_retrans", "1");
	expect_field(&rec, "duration_us", "7000123");
	expect_field(&rec, "errno", "\"ETIMEDOUT\"");
	expect_field(&rec, "evicted", "false");
	expect_field(&rec, "untracked", "false");
	expect_field(&rec, "evidence",
		     "[{\"event\":\"connect\",\"t_us\":0},"
		     "{\"event\":\"syn_retransmit\",\"n\":1,\"t_us\":1000000},"
		     "{\"count\":1,\"event\":\"drop\",\"packet\":\"synack\","
		     "\"reason\":\"NETFILTER_DROP\",\"t_us\":1000100},"
		     "{\"errno\":\"ETIMEDOUT\",\"event\":\"closed\",\"t_us\":7000123},"
		     "{\"accept_queue\":129,\"accept_queue_max\":128,"
		     "\"event\":\"accept_queue_full\",\"t_us\":null}]");
}

/* Schema 2.0's evidence events and inferred, as docs/schema.json describes them. */
static void test_json_new_evidence_events_and_inferred(void **state)
{
	struct ct_result r = timeout_result();
	struct record rec;
	struct capture c;
	char *text;

	(void)state;
	r.verdict = CT_V_REFUSED;
	r.cause = CT_C_ICMP_UNREACHABLE;
	r.inferred = true;
	r.facts = (struct ct_facts){ .end = CT_END_CLOSED, .err = ECONNREFUSED,
				     .err_soft = ECONNREFUSED, .icmp_sent = true, .icmp_type = 3,
				     .icmp_code = 3 };
	r.nr_ev = 4;
	r.ev[0] = (struct ct_ev_item){ .t_us = 120, .kind = CT_EV_ICMP_SENT, .icmp_type = 3,
				       .icmp_code = 3 };
	r.ev[1] = (struct ct_ev_item){ .t_us = INT64_MIN, .kind = CT_EV_ICMP_ERROR,
				       .err = ECONNREFUSED };
	r.ev[2] = (struct ct_ev_item){ .t_us = INT64_MIN, .kind = CT_EV_SIMOPEN };
	r.ev[3] = (struct ct_ev_item){ .t_us = -2589, .kind = CT_EV_ACCEPT_QUEUE_FULL,
				       .queue_max = 1 };
	cap_json(&c);
	c.w.ops->verdict(&c.w, &r, TS_NS);
	text = cap_close(&c);
	CHECK(parse_records(text, &rec, 1) == 1, "expected one record");
	expect_field(&rec, "inferred", "true");
	expect_field(&rec, "cause", "\"icmp_unreachable\"");
	expect_field(&rec, "evidence",
		     "[{\"answering\":\"syn\",\"event\":\"icmp_sent\",\"icmp_code\":3,"
		     "\"icmp_type\":3,\"t_us\":120},"
		     "{\"errno\":\"ECONNREFUSED\",\"event\":\"icmp_error\",\"t_us\":null},"
		     "{\"event\":\"simultaneous_open\",\"t_us\":null},"
		     "{\"accept_queue\":null,\"accept_queue_max\":1,"
		     "\"event\":\"accept_queue_full\",\"t_us\":-2589}]");
	CHECK(strstr(text, "this host sent an ICMP port unreachable about the SYN"),
	      "expected the rendered detail in the record: %s", text);
}

static void test_json_verdict_ipv6_and_evicted(void **state)
{
	struct ct_result r = timeout_result();
	struct record rec;
	struct capture c;
	char *text;

	(void)state;
	r.flow.family = CT_AF_INET6;
	put_addr(r.flow.saddr, "2001:db8::1");
	put_addr(r.flow.daddr, "::ffff:10.0.0.2");
	r.flow.flags = CT_F_EVICTED;
	r.flow.err = 0;
	r.flow.err_report = EHOSTUNREACH;	/* the errno falls back to the error report */
	r.nr_ev = 1;
	r.ev[0] = (struct ct_ev_item){ .t_us = INT64_MIN, .kind = CT_EV_SYN_RETRANS, .n = 1 };
	cap_json(&c);
	c.w.ops->verdict(&c.w, &r, TS_NS);
	text = cap_close(&c);
	CHECK(parse_records(text, &rec, 1) == 1, "expected one record");
	expect_field(&rec, "family", "\"ipv6\"");
	expect_field(&rec, "saddr", "\"2001:db8::1\"");
	expect_field(&rec, "daddr", "\"::ffff:10.0.0.2\"");
	expect_field(&rec, "errno", "\"EHOSTUNREACH\"");
	expect_field(&rec, "evicted", "true");
	/* without history the owner and the duration are unknown, not zero */
	expect_field(&rec, "pid", "null");
	expect_field(&rec, "tid", "null");
	expect_field(&rec, "comm", "null");
	expect_field(&rec, "cgroup_id", "null");
	expect_field(&rec, "duration_us", "null");
	expect_field(&rec, "evidence", "[{\"event\":\"syn_retransmit\",\"n\":1,\"t_us\":null}]");
}

static void test_json_hostile_comm_round_trips(void **state)
{
	struct ct_result r = timeout_result();
	struct record rec;
	struct capture c;
	char *text;

	(void)state;
	memcpy(r.flow.comm, HOSTILE_COMM, CT_COMM_LEN);	/* no NUL at all */
	cap_json(&c);
	c.w.ops->verdict(&c.w, &r, TS_NS);
	text = cap_close(&c);
	check_terminal_safe(text);
	CHECK(parse_records(text, &rec, 1) == 1, "expected one record");
	/* invalid bytes come back as their Latin-1 code points */
	expect_field(&rec, "comm", "\"\\\"q\\n\\u001b[31m\\u00ff\\\\\\t\\u007f\\u009bZZ\"");
}

static void test_json_every_verdict_and_cause_parses(void **state)
{
	struct record *recs = owned(calloc(CT_V_MAX * CT_C_MAX, sizeof(*recs)));
	struct capture c;
	char *text;
	size_t n;

	(void)state;
	cap_json(&c);
	for (int v = 0; v < CT_V_MAX; v++)
		for (int k = 0; k < CT_C_MAX; k++) {
			struct ct_result r = make_result(v, k);

			c.w.ops->verdict(&c.w, &r, TS_NS + v * 1000 + k);
		}
	text = cap_close(&c);
	n = parse_records(text, recs, CT_V_MAX * CT_C_MAX);
	CHECK(n == CT_V_MAX * CT_C_MAX, "expected %d records, got %zu", CT_V_MAX * CT_C_MAX, n);
	for (size_t i = 0; i < n; i++) {
		char want[64];

		snprintf(want, sizeof(want), "\"%s\"", ct_verdict_name(i / CT_C_MAX));
		expect_field(&recs[i], "verdict", want);
		snprintf(want, sizeof(want), "\"%s\"", ct_cause_name(i % CT_C_MAX));
		expect_field(&recs[i], "cause", want);
		expect_rfc3339(&recs[i], "ts");
	}
}

static void test_json_start_lost_and_summary_parse(void **state)
{
	struct corr_stats stats = { .malformed = 2, .evidence_expired = 5, .evidence_dropped = 6 };
	struct loss_info li = {
		.lost_records = 10, .flow_evictions = 20, .new_lost = 1, .new_evictions = 2,
		.since_real_ns = TS_NS - 1000000000ULL, .ts_real_ns = TS_NS,
	};
	struct summary_info si = {
		.stats = &stats, .lost_records = 10, .flow_evictions = 20, .flow_nospace = 3,
		.flows_untracked = 4, .flows = 100, .duration_s = 12.3456, .ts_real_ns = TS_NS + 1,
	};
	uint64_t verdicts[CT_V_MAX], in_verdicts[CT_V_MAX] = { [CT_V_REFUSED] = 7 };
	struct record recs[4];
	struct capture c;
	char *text;

	(void)state;
	for (int v = 0; v < CT_V_MAX; v++)
		verdicts[v] = 10 + v;
	si.verdicts = verdicts;
	si.in_verdicts = in_verdicts;
	cap_json(&c);
	write_start(&c.w);
	c.w.ops->loss(&c.w, &li);
	c.w.ops->summary(&c.w, &si);
	si.duration_s = NAN;	/* not a number is not JSON: null */
	c.w.ops->summary(&c.w, &si);
	text = cap_close(&c);
	CHECK(parse_records(text, recs, 4) == 4, "expected 4 records in:\n%s", text);

	expect_field(&recs[0], "type", "\"start\"");
	expect_rfc3339(&recs[0], "ts");
	expect_field(&recs[0], "version", "\"1.2.3-test\"");
	expect_field(&recs[0], "kernel", "\"6.18.0-test\"");
	expect_field(&recs[0], "pid", "777");
	expect_field(&recs[0], "probes",
		     "{\"connect\":{\"hook\":\"tp_btf/inet_sock_set_state\"},"
		     "\"drop\":{\"hook\":null,\"note\":\"no \\\"kfree_skb\\\"\\ttracepoint\"}}");

	expect_field(&recs[1], "type", "\"lost\"");
	expect_rfc3339(&recs[1], "ts");
	expect_field(&recs[1], "since", "\"2023-11-14T22:13:19.123456789Z\"");
	expect_field(&recs[1], "records", "1");
	expect_field(&recs[1], "flow_evictions", "2");
	expect_field(&recs[1], "records_total", "10");
	expect_field(&recs[1], "flow_evictions_total", "20");

	expect_field(&recs[2], "type", "\"summary\"");
	expect_field(&recs[2], "ts", "\"2023-11-14T22:13:20.123456790Z\"");
	expect_field(&recs[2], "verdicts",
		     "{\"abandoned\":15,\"dropped\":17,\"ok\":10,\"pending\":16,\"refused\":13,\"slow\":11,"
		     "\"timeout\":12,\"unreachable\":14}");
	expect_field(&recs[2], "inbound_verdicts",
		     "{\"abandoned\":0,\"dropped\":0,\"ok\":0,\"pending\":0,\"refused\":7,\"slow\":0,"
		     "\"timeout\":0,\"unreachable\":0}");
	expect_field(&recs[2], "flows", "100");
	expect_field(&recs[2], "lost_records", "10");
	expect_field(&recs[2], "flow_evictions", "20");
	expect_field(&recs[2], "flow_table_full", "3");
	expect_field(&recs[2], "flows_untracked", "4");
	expect_field(&recs[2], "evidence_unmatched", "5");
	expect_field(&recs[2], "evidence_dropped", "6");
	expect_field(&recs[2], "malformed_records", "2");
	expect_field(&recs[2], "duration_s", "12.346");
	expect_field(&recs[3], "duration_s", "null");
}

/* JSON keeps every record: a storm is never summed, the tick says nothing. */
static void test_json_storm_keeps_every_verdict(void **state)
{
	struct ct_result r = timeout_result();
	struct capture c;
	size_t lines = 0;
	char *text;

	(void)state;
	cap_json(&c);
	for (int i = 0; i < 500; i++)
		c.w.ops->verdict(&c.w, &r, TS_NS + i);
	c.w.ops->tick(&c.w, TS_NS + 1000000000ULL);
	text = cap_close(&c);
	for (const char *p = text; (p = strchr(p, '\n')); p++)
		lines++;
	CHECK(lines == 500 && !strstr(text, "aggregated"), "expected 500 verdict lines, got %zu",
	      lines);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_json_verdict_carries_every_field, free_owned),
		cmocka_unit_test_teardown(test_json_verdict_ipv6_and_evicted, free_owned),
		cmocka_unit_test_teardown(test_json_new_evidence_events_and_inferred, free_owned),
		cmocka_unit_test_teardown(test_json_hostile_comm_round_trips, free_owned),
		cmocka_unit_test_teardown(test_json_every_verdict_and_cause_parses, free_owned),
		cmocka_unit_test_teardown(test_json_start_lost_and_summary_parse, free_owned),
		cmocka_unit_test_teardown(test_json_storm_keeps_every_verdict, free_owned),
	};

	return cmocka_run_group_tests_name("output_json", tests, NULL, NULL);
}
