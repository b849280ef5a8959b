// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Prometheus endpoint: state kept here, text exposition format 0.0.4
 * rendered from a snapshot, served by libmicrohttpd's internal thread.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "json.h"
#include "metrics.h"

#define CONTENT_TYPE	"text/plain; version=0.0.4; charset=utf-8"
#define HTTP_CONN_LIMIT	16u	/* scrapers at once; more wait in the backlog */
#define HTTP_TIMEOUT_S	10u	/* an idle connection is closed after this */
#define STR_(x)		#x
#define STR(x)		STR_(x)

/*
 * Histogram buckets (upper bounds, seconds): loopback connects take tens of
 * microseconds, a first SYN retransmit costs 1 s, and Linux gives up after
 * about 127 s with the default tcp_syn_retries=6. Labels are written from
 * these strings so that `le` never depends on float formatting.
 */
static const char *const bucket_le[] = {
	"0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5",
	"1", "2.5", "5", "10", "30", "60", "120",
};
#define NR_BUCKETS (sizeof(bucket_le) / sizeof(bucket_le[0]))
/* the kernel buckets the OK attempts it only counts the same way (conntrace.h) */
_Static_assert(NR_BUCKETS == CT_OKH_BUCKETS, "bucket_le and CT_OKH_BOUNDS_US differ");

/* Everything a scrape shows; copied whole under the lock. */
struct state {
	uint64_t verdicts[2][CT_V_MAX][CT_C_MAX];	/* attempts' [inbound] */
	uint64_t established_verdicts[CT_V_MAX][CT_C_MAX];	/* established deaths */
	/* counted in the kernel (issue 11): records the ring lost, OK only counted;
	 * the kernel counts outgoing attempts only: they are direction outbound */
	uint64_t lost[CT_V_MAX], ok_unsent;
	uint64_t ok_hist[CT_OKH_MAX];	/* their durations (CT_OKH_*) */
	uint64_t dur_bucket[CT_V_MAX][NR_BUCKETS];	/* not cumulative here */
	uint64_t dur_count[CT_V_MAX];
	double dur_sum[CT_V_MAX];
	uint64_t syn_retrans;
	uint64_t lost_records, flow_evictions;
	uint64_t out_errors, out_lost;
	bool listeners_wired;	/* the listen module has reported at least once */
	size_t nr_listeners, listeners_omitted;
	struct metrics_listener listeners[METRICS_MAX_LISTENERS];
};

struct metrics {
	pthread_mutex_t lock;
	struct state st;
	char version[64], kernel[128], probes[512];	/* set before the server starts */
	double bucket_bound[NR_BUCKETS];
	int fd;
	uint16_t port;
	struct MHD_Daemon *daemon;
	/* a reading being collected (collector's thread only: no lock) */
	struct metrics_listener *stage;
	size_t nr_stage, stage_cap;
	bool stage_failed;
};

struct metrics *metrics_new(void)
{
	struct metrics *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	pthread_mutex_init(&m->lock, NULL);
	m->fd = -1;
	for (size_t i = 0; i < NR_BUCKETS; i++)
		m->bucket_bound[i] = strtod(bucket_le[i], NULL);
	return m;
}

void metrics_free(struct metrics *m)
{
	if (!m)
		return;
	if (m->daemon)
		MHD_stop_daemon(m->daemon);	/* joins its thread, closes the socket */
	else if (m->fd >= 0)
		close(m->fd);
	pthread_mutex_destroy(&m->lock);
	free(m->stage);
	free(m);
}

/* ---- address ---- */

int metrics_parse_addr(const char *arg, struct sockaddr_storage *ss, socklen_t *len,
		       char *err, size_t errsz)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	char earg[96], host[64];
	const char *colon = strrchr(arg, ':'), *port_s;
	unsigned long port;
	bool bracketed;
	size_t hlen;
	char *end;

	escape_text(earg, sizeof(earg), arg, strlen(arg));
	memset(ss, 0, sizeof(*ss));
	if (!colon)
		goto bad;
	port_s = colon + 1;
	hlen = colon - arg;
	bracketed = arg[0] == '[';
	if (bracketed) {	/* [IPv6]:PORT */
		if (hlen < 2 || arg[hlen - 1] != ']')
			goto bad;
		arg++;
		hlen -= 2;
	} else if (memchr(arg, ':', hlen)) {
		snprintf(err, errsz, "--metrics: '%s': put an IPv6 address in brackets, "
			 "e.g. [::1]:9917", earg);
		return -EINVAL;
	}
	if (hlen >= sizeof(host))
		goto bad_host;
	memcpy(host, arg, hlen);
	host[hlen] = '\0';

	if (*port_s < '0' || *port_s > '9')
		goto bad;
	errno = 0;
	port = strtoul(port_s, &end, 10);
	if (*end)
		goto bad;
	if (errno == ERANGE || port < 1 || port > 65535) {
		snprintf(err, errsz, "--metrics: '%s': port out of range (1 to 65535)", earg);
		return -EINVAL;
	}

	if (!host[0] && !bracketed) {
		/* ":9917": every address; IPv4 too through the dual-stack socket */
		sin6->sin6_family = AF_INET6;
		sin6->sin6_addr = in6addr_any;
		sin6->sin6_port = htons(port);
		*len = sizeof(*sin6);
	} else if (!bracketed && (!strcmp(host, "localhost") ||
				  inet_pton(AF_INET, host, &sin->sin_addr) == 1)) {
		sin->sin_family = AF_INET;
		if (!strcmp(host, "localhost"))
			sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		sin->sin_port = htons(port);
		*len = sizeof(*sin);
	} else if (bracketed && inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		*len = sizeof(*sin6);
	} else {
		goto bad_host;
	}
	return 0;
bad_host:
	snprintf(err, errsz, "--metrics: '%s': not a numeric address (e.g. 127.0.0.1:9917, "
		 "[::1]:9917, :9917)", earg);
	return -EINVAL;
bad:
	snprintf(err, errsz, "--metrics: '%s' is not ADDR:PORT (e.g. 127.0.0.1:9917, "
		 "[::1]:9917, :9917)", earg);
	return -EINVAL;
}

static void fmt_sockaddr(char *buf, size_t sz, const struct sockaddr *sa)
{
	char a[INET6_ADDRSTRLEN] = "?";

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;

		inet_ntop(AF_INET, &sin->sin_addr, a, sizeof(a));
		snprintf(buf, sz, "%s:%u", a, ntohs(sin->sin_port));
	} else {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;

		inet_ntop(AF_INET6, &sin6->sin6_addr, a, sizeof(a));
		snprintf(buf, sz, "[%s]:%u", a, ntohs(sin6->sin6_port));
	}
}

int metrics_bind(struct metrics *m, const struct sockaddr *sa, socklen_t len,
		 char *err, size_t errsz)
{
	struct sockaddr_storage bound;
	socklen_t blen = sizeof(bound);
	char where[80];
	int fd, one = 1, e;

	fmt_sockaddr(where, sizeof(where), sa);
	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		goto fail;
	/* a restart must not wait for the old connections' TIME_WAIT; a live
	 * listener on the port still makes bind() fail with EADDRINUSE */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)))
		goto fail;
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
		int v6only = !IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr);

		if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only)))
			goto fail;
	}
	if (bind(fd, sa, len) || listen(fd, 64) ||
	    getsockname(fd, (struct sockaddr *)&bound, &blen))
		goto fail;
	m->fd = fd;
	m->port = ntohs(bound.ss_family == AF_INET ? ((struct sockaddr_in *)&bound)->sin_port
				: ((struct sockaddr_in6 *)&bound)->sin6_port);
	return 0;
fail:
	e = errno;
	if (fd >= 0)
		close(fd);
	snprintf(err, errsz, "--metrics %s: %s", where, strerror(e));
	return -e;
}

uint16_t metrics_port(const struct metrics *m)
{
	return m ? m->port : 0;
}

/* ---- updates from the collector's thread ---- */

void metrics_build_info(struct metrics *m, const char *version, const char *kernel,
			const struct probe_report *rep, int nr)
{
	size_t o = 0;

	if (!m)
		return;
	pthread_mutex_lock(&m->lock);
	snprintf(m->version, sizeof(m->version), "%s", version);
	snprintf(m->kernel, sizeof(m->kernel), "%s", kernel);
	/* "connect=tp_btf,connect_error=tracepoint,...": the mechanism of each */
	m->probes[0] = '\0';
	for (int i = 0; i < nr && o < sizeof(m->probes); i++) {
		const char *hook = rep[i].ok ? rep[i].hook : "none";
		int kind = strcspn(hook, "/");

		o += snprintf(m->probes + o, sizeof(m->probes) - o, "%s%s=%.*s", i ? "," : "",
			      rep[i].signal, kind, hook);
	}
	pthread_mutex_unlock(&m->lock);
}

void metrics_verdict(struct metrics *m, const struct ct_result *r)
{
	unsigned v = r->verdict, c = r->cause, p = r->phase;
	bool timed = !(r->flow.flags & CT_F_NO_HISTORY);
	double secs = r->duration_ns / 1e9;
	size_t b = 0;

	if (!m || v >= CT_V_MAX || c >= CT_C_MAX || p >= CT_PHASE_MAX)
		return;
	if (p == CT_PHASE_ESTABLISHED) {	/* no connect time, no SYNs */
		pthread_mutex_lock(&m->lock);
		m->st.established_verdicts[v][c]++;
		pthread_mutex_unlock(&m->lock);
		return;
	}
	while (b < NR_BUCKETS && secs > m->bucket_bound[b])
		b++;
	pthread_mutex_lock(&m->lock);
	m->st.verdicts[r->inbound][v][c]++;
	/* the histogram and SYN retransmits are those of connect(): outbound only */
	if (!r->inbound)
		m->st.syn_retrans += r->flow.syn_retrans;
	if (timed && !r->inbound) {
		if (b < NR_BUCKETS)
			m->st.dur_bucket[v][b]++;
		m->st.dur_count[v]++;
		m->st.dur_sum[v] += secs;
	}
	pthread_mutex_unlock(&m->lock);
}

void metrics_kernel_counters(struct metrics *m, uint64_t lost_records, uint64_t flow_evictions)
{
	if (!m)
		return;
	pthread_mutex_lock(&m->lock);
	m->st.lost_records = lost_records;
	m->st.flow_evictions = flow_evictions;
	pthread_mutex_unlock(&m->lock);
}

void metrics_kernel_verdicts(struct metrics *m, const uint64_t lost[CT_V_MAX], uint64_t ok_unsent)
{
	if (!m)
		return;
	pthread_mutex_lock(&m->lock);
	memcpy(m->st.lost, lost, sizeof(m->st.lost));
	m->st.ok_unsent = ok_unsent;
	pthread_mutex_unlock(&m->lock);
}

void metrics_kernel_ok_hist(struct metrics *m, const uint64_t h[CT_OKH_MAX])
{
	if (!m)
		return;
	pthread_mutex_lock(&m->lock);
	memcpy(m->st.ok_hist, h, sizeof(m->st.ok_hist));
	pthread_mutex_unlock(&m->lock);
}

void metrics_output_counters(struct metrics *m, uint64_t write_errors, uint64_t records_lost)
{
	if (!m)
		return;
	pthread_mutex_lock(&m->lock);
	m->st.out_errors = write_errors;
	m->st.out_lost = records_lost;
	pthread_mutex_unlock(&m->lock);
}

static int listener_cmp(const void *pa, const void *pb)
{
	const struct metrics_listener *a = pa, *b = pb;
	/* fill in parts per million, so that the comparison stays integral */
	uint64_t fa = (uint64_t)a->accept_queue * 1000000 / (a->accept_queue_max + 1ULL);
	uint64_t fb = (uint64_t)b->accept_queue * 1000000 / (b->accept_queue_max + 1ULL);
	int c;

	if (a->overflows != b->overflows)
		return a->overflows > b->overflows ? -1 : 1;
	if (fa != fb)
		return fa > fb ? -1 : 1;
	/* then a stable order, so equal listeners do not swap places */
	if (a->netns != b->netns)
		return a->netns < b->netns ? -1 : 1;
	if (a->lport != b->lport)
		return a->lport < b->lport ? -1 : 1;
	c = strcmp(a->laddr, b->laddr);
	return c;
}

void metrics_set_listeners(struct metrics *m, const struct metrics_listener *v, size_t n)
{
	struct metrics_listener *sorted;
	size_t keep = n < METRICS_MAX_LISTENERS ? n : METRICS_MAX_LISTENERS;

	if (!m)
		return;
	/* sort a copy outside the lock; the scrape waits for the copy only */
	sorted = n ? malloc(n * sizeof(*sorted)) : NULL;
	if (n && !sorted)
		return;	/* keep the previous set: stale beats wrong */
	if (n)
		memcpy(sorted, v, n * sizeof(*sorted));
	if (n)
		qsort(sorted, n, sizeof(*sorted), listener_cmp);
	for (size_t i = 0; i < keep; i++)
		sorted[i].laddr[sizeof(sorted[i].laddr) - 1] = '\0';
	pthread_mutex_lock(&m->lock);
	m->st.listeners_wired = true;
	if (keep)
		memcpy(m->st.listeners, sorted, keep * sizeof(*sorted));
	m->st.nr_listeners = keep;
	m->st.listeners_omitted = n - keep;
	pthread_mutex_unlock(&m->lock);
	free(sorted);
}

void metrics_listeners_begin(struct metrics *m)
{
	if (!m)
		return;
	m->nr_stage = 0;
	m->stage_failed = false;
}

void metrics_listener_add(struct metrics *m, const struct metrics_listener *l)
{
	if (!m || m->stage_failed)
		return;
	if (m->nr_stage == m->stage_cap) {
		size_t cap = m->stage_cap ? m->stage_cap * 2 : 64;
		struct metrics_listener *v = realloc(m->stage, cap * sizeof(*v));

		if (!v) {
			m->stage_failed = true;	/* a partial reading would be wrong */
			return;
		}
		m->stage = v;
		m->stage_cap = cap;
	}
	m->stage[m->nr_stage++] = *l;
}

void metrics_listeners_end(struct metrics *m)
{
	if (m && !m->stage_failed)
		metrics_set_listeners(m, m->stage, m->nr_stage);
}

/* ---- exposition ---- */

/* A label value: backslash, double quote and newline escaped (format 0.0.4).
 * Other bytes pass as they are; the values here are ours or from uname. */
static void put_label(FILE *f, const char *name, const char *value, bool first)
{
	fprintf(f, "%s%s=\"", first ? "" : ",", name);
	for (const char *p = value; *p; p++) {
		if (*p == '\\')
			fputs("\\\\", f);
		else if (*p == '"')
			fputs("\\\"", f);
		else if (*p == '\n')
			fputs("\\n", f);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

/* `name{netns="...",laddr="...",lport="..."} `: the value follows. */
static void listener_series(FILE *f, const char *name, const struct metrics_listener *l)
{
	fprintf(f, "%s{netns=\"%llu\",", name, (unsigned long long)l->netns);
	put_label(f, "laddr", l->laddr, true);
	fprintf(f, ",lport=\"%u\"} ", l->lport);
}

static void family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* By verdict, cause and direction; what the kernel only counted is outbound. */
static void render_verdicts(FILE *f, const struct state *st)
{
	family(f, "conntrace_verdicts_total", "counter", "TCP connection attempts by verdict, "
	       "cause and direction (outbound: this host connected; inbound: a SYN arrived); "
	       "a series appears with its first attempt; cause=\"lost\": the ring had no "
	       "room for the record, the kernel counted its verdict.");
	for (int d = 0; d < 2; d++) {
		const char *dir = d ? "inbound" : "outbound";

		for (int v = 0; v < CT_V_MAX; v++) {
			for (int c = 0; c < CT_C_MAX; c++) {
				uint64_t n = st->verdicts[d][v][c];

				/* an OK attempt only counted in the kernel: its cause is known */
				if (!d && v == CT_V_OK && c == CT_C_ESTABLISHED)
					n += st->ok_unsent;
				if (n)
					fprintf(f, "conntrace_verdicts_total{verdict=\"%s\","
						"cause=\"%s\",direction=\"%s\"} %llu\n",
						ct_verdict_name(v), ct_cause_name(c), dir,
						(unsigned long long)n);
			}
			if (!d && st->lost[v])
				fprintf(f, "conntrace_verdicts_total{verdict=\"%s\",cause=\"lost\","
					"direction=\"outbound\"} %llu\n", ct_verdict_name(v),
					(unsigned long long)st->lost[v]);
		}
	}
}

/* The histogram: the verdicts' durations, and for ok those the kernel only counted. */
static void render_durations(FILE *f, const struct state *st)
{
	family(f, "conntrace_connect_duration_seconds", "histogram", "Time from connect() to "
	       "the attempt's end, by verdict. Attempts whose start is unknown (evicted, or "
	       "begun before conntrace) and those whose record was lost are counted in "
	       "conntrace_verdicts_total only.");
	for (int v = 0; v <= CT_V_PENDING; v++) {	/* the attempts only */
		const uint64_t *kh = v == CT_V_OK ? st->ok_hist : NULL;
		uint64_t cum = 0, count = st->dur_count[v];
		double sum = st->dur_sum[v];

		if (kh) {
			for (int b = 0; b <= CT_OKH_OVER; b++)
				count += kh[b];
			sum += kh[CT_OKH_SUM_NS] / 1e9;
		}
		for (size_t b = 0; b < NR_BUCKETS; b++) {
			cum += st->dur_bucket[v][b] + (kh ? kh[b] : 0);
			fprintf(f, "conntrace_connect_duration_seconds_bucket{verdict=\"%s\","
				"le=\"%s\"} %llu\n", ct_verdict_name(v), bucket_le[b],
				(unsigned long long)cum);
		}
		fprintf(f, "conntrace_connect_duration_seconds_bucket{verdict=\"%s\",le=\"+Inf\"} "
			"%llu\n", ct_verdict_name(v), (unsigned long long)count);
		fprintf(f, "conntrace_connect_duration_seconds_sum{verdict=\"%s\"} %.6f\n",
			ct_verdict_name(v), sum);
		fprintf(f, "conntrace_connect_duration_seconds_count{verdict=\"%s\"} %llu\n",
			ct_verdict_name(v), (unsigned long long)count);
	}
}

/* One counter per verdict and cause seen, of one phase. */
static void render_phase_verdicts(FILE *f, const char *name, const uint64_t (*n)[CT_C_MAX])
{
	for (int v = 0; v < CT_V_MAX; v++)
		for (int c = 0; c < CT_C_MAX; c++)
			if (n[v][c])
				fprintf(f, "%s{verdict=\"%s\",cause=\"%s\"} %llu\n", name,
					ct_verdict_name(v), ct_cause_name(c),
					(unsigned long long)n[v][c]);
}

static void render(FILE *f, const struct metrics *m, const struct state *st)
{
	family(f, "conntrace_build_info", "gauge", "conntrace's version, the running kernel, "
	       "and the mechanism of the hook attached for each signal (signal=mechanism).");
	fputs("conntrace_build_info{", f);
	put_label(f, "version", m->version, true);
	put_label(f, "kernel", m->kernel, false);
	put_label(f, "probes", m->probes, false);
	fputs("} 1\n", f);

	render_verdicts(f, st);
	family(f, "conntrace_established_verdicts_total", "counter", "Established TCP "
	       "connections that died (timeout, reset) by verdict and cause (a pair appears "
	       "with its first connection).");
	render_phase_verdicts(f, "conntrace_established_verdicts_total",
			      st->established_verdicts);

	render_durations(f, st);

	family(f, "conntrace_syn_retransmits_total", "counter",
	       "SYN retransmits of the attempts given a verdict.");
	fprintf(f, "conntrace_syn_retransmits_total %llu\n", (unsigned long long)st->syn_retrans);
	family(f, "conntrace_lost_records_total", "counter",
	       "Records the kernel could not send because the ring buffer was full.");
	fprintf(f, "conntrace_lost_records_total %llu\n", (unsigned long long)st->lost_records);
	family(f, "conntrace_flow_evictions_total", "counter", "Attempts that ended after their "
	       "flow-table entry was evicted (flow table full): verdict without history.");
	fprintf(f, "conntrace_flow_evictions_total %llu\n",
		(unsigned long long)st->flow_evictions);
	family(f, "conntrace_output_write_errors_total", "counter",
	       "Failed writes, rotations and reopens of the --output file.");
	fprintf(f, "conntrace_output_write_errors_total %llu\n",
		(unsigned long long)st->out_errors);
	family(f, "conntrace_output_records_lost_total", "counter",
	       "Records not written to the --output file because of write errors.");
	fprintf(f, "conntrace_output_records_lost_total %llu\n", (unsigned long long)st->out_lost);

	if (!st->listeners_wired)
		return;	/* no listener data source in this process: no empty families */
	family(f, "conntrace_listen_overflows_total", "counter", "SYNs a listener dropped "
	       "because its accept queue was full (the listeners with the most, at most "
	       STR(METRICS_MAX_LISTENERS) ").");
	for (size_t i = 0; i < st->nr_listeners; i++) {
		listener_series(f, "conntrace_listen_overflows_total", &st->listeners[i]);
		fprintf(f, "%llu\n", (unsigned long long)st->listeners[i].overflows);
	}
	family(f, "conntrace_accept_queue_length", "gauge",
	       "Connections waiting in a listener's accept queue for accept().");
	for (size_t i = 0; i < st->nr_listeners; i++) {
		listener_series(f, "conntrace_accept_queue_length", &st->listeners[i]);
		fprintf(f, "%u\n", st->listeners[i].accept_queue);
	}
	family(f, "conntrace_accept_queue_length_max", "gauge", "A listener's accept-queue "
	       "limit: min(backlog given to listen(), net.core.somaxconn).");
	for (size_t i = 0; i < st->nr_listeners; i++) {
		listener_series(f, "conntrace_accept_queue_length_max", &st->listeners[i]);
		fprintf(f, "%u\n", st->listeners[i].accept_queue_max);
	}
	family(f, "conntrace_listeners_omitted", "gauge", "Listeners left out of the listener "
	       "metrics by the bound of " STR(METRICS_MAX_LISTENERS) ".");
	fprintf(f, "conntrace_listeners_omitted %llu\n",
		(unsigned long long)st->listeners_omitted);
}

char *metrics_render(struct metrics *m, size_t *len)
{
	struct state *snap = malloc(sizeof(*snap));
	char *buf = NULL;
	size_t n = 0;
	FILE *f;

	if (!snap)
		return NULL;
	pthread_mutex_lock(&m->lock);
	*snap = m->st;
	pthread_mutex_unlock(&m->lock);
	f = open_memstream(&buf, &n);
	if (f) {
		render(f, m, snap);
		if (fclose(f)) {
			free(buf);
			buf = NULL;
		}
	}
	free(snap);
	if (buf && len)
		*len = n;
	return buf;
}

/* ---- HTTP ---- */

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, void *body,
			     size_t len, enum MHD_ResponseMemoryMode mode, const char *allow)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, mode);
	enum MHD_Result ret;

	if (!resp) {
		if (mode == MHD_RESPMEM_MUST_FREE)
			free(body);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
				status == MHD_HTTP_OK && mode == MHD_RESPMEM_MUST_FREE ?
				CONTENT_TYPE : "text/plain; charset=utf-8");
	if (allow)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
			      const char *method, const char *version, const char *upload_data,
			      size_t *upload_data_size, void **con_cls)
{
	static char index[] = "conntrace: Prometheus metrics are at /metrics\n";
	static char not_found[] = "not found: conntrace serves /metrics\n";
	static char not_allowed[] = "method not allowed: GET or HEAD\n";
	struct metrics *m = cls;
	size_t len = 0;
	char *body;

	(void)version;
	(void)upload_data;
	(void)con_cls;
	if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD)) {
		*upload_data_size = 0;	/* a body, if any, is not read */
		return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, not_allowed,
			     sizeof(not_allowed) - 1, MHD_RESPMEM_PERSISTENT, "GET, HEAD");
	}
	if (!strcmp(url, "/"))
		return reply(conn, MHD_HTTP_OK, index, sizeof(index) - 1,
			     MHD_RESPMEM_PERSISTENT, NULL);
	if (strcmp(url, "/metrics"))
		return reply(conn, MHD_HTTP_NOT_FOUND, not_found, sizeof(not_found) - 1,
			     MHD_RESPMEM_PERSISTENT, NULL);
	body = metrics_render(m, &len);
	if (!body)
		return MHD_NO;	/* out of memory: MHD closes the connection */
	return reply(conn, MHD_HTTP_OK, body, len, MHD_RESPMEM_MUST_FREE, NULL);
}

int metrics_start(struct metrics *m, char *err, size_t errsz)
{
	sigset_t block, old;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL;
	struct sockaddr_storage ss;
	socklen_t slen = sizeof(ss);

	if (!m)
		return 0;
	if (m->fd < 0) {
		snprintf(err, errsz, "metrics: no socket bound");
		return -EINVAL;
	}
	if (!getsockname(m->fd, (struct sockaddr *)&ss, &slen) && ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	/*
	 * The server's thread inherits this mask: signals then always reach the
	 * collector's thread, whose poll they interrupt (SIGINT stops promptly,
	 * SIGHUP reopens the output).
	 */
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	m->daemon = MHD_start_daemon(flags, 0, NULL, NULL, handle, m,
				     MHD_OPTION_LISTEN_SOCKET, (MHD_socket)m->fd,
				     MHD_OPTION_CONNECTION_LIMIT, HTTP_CONN_LIMIT,
				     MHD_OPTION_CONNECTION_TIMEOUT, HTTP_TIMEOUT_S,
				     MHD_OPTION_END);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!m->daemon) {
		snprintf(err, errsz, "metrics: libmicrohttpd could not start its server thread");
		return -EIO;
	}
	return 0;
}
