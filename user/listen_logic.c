// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * conntrace listen, the pure part: attribution of namespace overflow
 * counters to listeners, advice rules, ordering and the two printers.
 * No libbpf, no system calls beyond stdio: unit-tested without a kernel.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "cgroup.h"
#include "json.h"
#include "listen.h"
#include "output.h"

const char *listen_backlog_source_name(enum listen_backlog_source s)
{
	switch (s) {
	case LISTEN_BACKLOG_SYSCALL:  return "listen";
	case LISTEN_BACKLOG_INFERRED: return "inferred";
	case LISTEN_BACKLOG_UNKNOWN:  return "unknown";
	}
	return "?";
}

/* Capacity is max + 1: the kernel calls the queue full only past max. */
void listen_history_push(struct listener *l, uint32_t peak)
{
	uint64_t cap = (uint64_t)l->accept_queue_max + 1;
	uint64_t pct = (uint64_t)peak * 100 / cap;

	if (pct > 100)
		pct = 100;
	if (l->history_len == LISTEN_HISTORY) {
		memmove(l->history, l->history + 1, LISTEN_HISTORY - 1);
		l->history_len--;
	}
	l->history[l->history_len++] = (uint8_t)pct;
}

/*
 * A requested backlog at or above this is the "as large as allowed" idiom
 * (65535, INT_MAX): its truncation is worth advice only under pressure.
 */
#define LISTEN_BACKLOG_IDIOM 65535

unsigned listen_advise(struct listener *l)
{
	bool pressure = l->overflows_interval > 0 || l->full_streak > 0 ||
			l->full_events_interval > 0;
	unsigned a = 0;

	/* Full at two refreshes in a row: accept() does not keep up. */
	if (l->full_streak >= 2)
		a |= LISTEN_ADVICE_ACCEPT_SLOW;
	/* The application's own backlog is the limit that overflowed. */
	if (pressure && l->accept_queue_max < l->somaxconn)
		a |= LISTEN_ADVICE_BACKLOG_LOW;
	/* max = min(backlog, somaxconn): a larger request was cut by somaxconn. */
	if (l->backlog_source == LISTEN_BACKLOG_SYSCALL &&
	    l->backlog_requested > (int64_t)l->accept_queue_max &&
	    (pressure || l->backlog_requested < LISTEN_BACKLOG_IDIOM))
		a |= LISTEN_ADVICE_SOMAXCONN;
	/* With tcp_syncookies=2 every SYN gets a cookie: no sign of a full queue. */
	if (l->cookies_interval && l->tcp_syncookies == 1)
		a |= LISTEN_ADVICE_SYN_COOKIES;
	l->advice = a;
	return a;
}

const char *listen_advice_name(unsigned rule)
{
	switch (rule) {
	case LISTEN_ADVICE_ACCEPT_SLOW: return "accept_slow";
	case LISTEN_ADVICE_BACKLOG_LOW: return "backlog_low";
	case LISTEN_ADVICE_SOMAXCONN:   return "somaxconn";
	case LISTEN_ADVICE_SYN_COOKIES: return "syn_cookies";
	}
	return "?";
}

static void owner_text(const struct listener *l, char *buf, size_t sz)
{
	char comm[4 * sizeof(l->comm) + 1];

	if (!l->pid) {
		snprintf(buf, sz, "the application");
		return;
	}
	escape_text(comm, sizeof(comm), l->comm, strnlen(l->comm, sizeof(l->comm)));
	snprintf(buf, sz, "%s (pid %d)", comm, l->pid);
}

size_t listen_advice_text(const struct listener *l, unsigned rule, char *buf, size_t sz)
{
	char who[128];
	int n = 0;

	owner_text(l, who, sizeof(who));
	switch (rule) {
	case LISTEN_ADVICE_ACCEPT_SLOW:
		n = snprintf(buf, sz,
			     "accept queue full (%" PRIu32 " waiting, max %" PRIu32 ") at %d refreshes in a row: "
			     "%s is not calling accept() fast enough; the application is the "
			     "bottleneck, not the network",
			     l->accept_queue, l->accept_queue_max, l->full_streak, who);
		break;
	case LISTEN_ADVICE_BACKLOG_LOW:
		n = snprintf(buf, sz,
			     "%s passed listen() a backlog of %" PRIu32 ", below net.core.somaxconn (%" PRIu32 "), "
			     "and the queue overflowed: raise the backlog in the application",
			     who, l->accept_queue_max, l->somaxconn);
		break;
	case LISTEN_ADVICE_SOMAXCONN:
		n = snprintf(buf, sz,
			     "net.core.somaxconn (%" PRIu32 ") caps the backlog of %" PRId64 " that %s asked for "
			     "(queue max %" PRIu32 "): raise net.core.somaxconn in netns %" PRIu64
			     ", then restart the listener",
			     l->somaxconn, l->backlog_requested, who, l->accept_queue_max,
			     l->netns_ino);
		break;
	case LISTEN_ADVICE_SYN_COOKIES:
		n = snprintf(buf, sz,
			     "SYN queue full: the kernel sent SYN cookies for this listener (its SYN queue "
			     "holds at most %" PRIu32 " requests, the accept queue's limit + 1): raise the "
			     "backlog; net.ipv4.tcp_max_syn_backlog (%" PRIu32 ") also limits it when "
			     "cookies are off",
			     l->syn_queue_max, l->tcp_max_syn_backlog);
		break;
	default:
		n = snprintf(buf, sz, "?");
	}
	return n < 0 ? 0 : (size_t)n;
}

static double rate(const struct listener *l)
{
	return l->interval_s > 0 ? l->overflows_interval / l->interval_s : 0;
}

#define CMP(x, y) do { if ((x) != (y)) return (x) > (y) ? -1 : 1; } while (0)

int listen_cmp_trouble(const void *pa, const void *pb)
{
	const struct listener *a = pa, *b = pb;
	uint64_t fa = (uint64_t)a->accept_queue_peak * 1000 / ((uint64_t)a->accept_queue_max + 1);
	uint64_t fb = (uint64_t)b->accept_queue_peak * 1000 / ((uint64_t)b->accept_queue_max + 1);

	CMP(rate(a), rate(b));
	CMP(a->overflows, b->overflows);
	CMP(a->full_now, b->full_now);
	CMP(fa, fb);
	CMP(a->synack_retrans, b->synack_retrans);
	/* then a stable, readable order */
	if (a->lport != b->lport)
		return a->lport < b->lport ? -1 : 1;
	if (a->netns_ino != b->netns_ino)
		return a->netns_ino < b->netns_ino ? -1 : 1;
	return a->cookie < b->cookie ? -1 : a->cookie > b->cookie;
}

static void addr_text(const struct listener *l, char *buf, size_t sz)
{
	if (!inet_ntop(l->family == AF_INET6 ? AF_INET6 : AF_INET, l->laddr, buf, sz))
		snprintf(buf, sz, "?");
}

size_t listen_format_addr(const struct listener *l, char *buf, size_t sz)
{
	char a[INET6_ADDRSTRLEN];
	int n;

	addr_text(l, a, sizeof(a));
	if (l->family == AF_INET6)
		n = snprintf(buf, sz, "[%s]:%u", a, l->lport);
	else
		n = snprintf(buf, sz, "%s:%u", a, l->lport);
	return n < 0 ? 0 : (size_t)n;
}

size_t listen_format_sparkline(const struct listener *l, bool utf8, char *buf, size_t sz)
{
	static const char *const blocks[8] = {
		"\u2581", "\u2582", "\u2583", "\u2584", "\u2585", "\u2586", "\u2587", "\u2588"
	};
	static const char ascii[8] = { '_', '.', ':', '-', '=', '+', '*', '#' };
	size_t off = 0;
	int i;

	if (sz == 0)
		return 0;
	buf[0] = '\0';
	for (i = 0; i < l->history_len; i++) {
		int lvl = l->history[i] * 7 / 100; /* 100% (full) is the top block */
		const char *s = utf8 ? blocks[lvl] : (char[2]){ ascii[lvl], 0 };
		size_t len = strlen(s);

		if (off + len + 1 > sz)
			break;
		memcpy(buf + off, s, len + 1);
		off += len;
	}
	return off;
}

struct row_text {
	char addr[INET6_ADDRSTRLEN + 8];
	char comm[4 * 16 + 1];
	char pid[16];
	char backlog[24];
	char ovf[32];
	char rate[24];
	char cookies[32];
	char spark[LISTEN_HISTORY * 3 + 1];
};

static void row_text(const struct listener *l, bool utf8, struct row_text *t)
{
	listen_format_addr(l, t->addr, sizeof(t->addr));
	if (l->pid) {
		escape_text(t->comm, sizeof(t->comm), l->comm, strnlen(l->comm, sizeof(l->comm)));
		snprintf(t->pid, sizeof(t->pid), "%d", l->pid);
	} else {
		snprintf(t->comm, sizeof(t->comm), "-");
		snprintf(t->pid, sizeof(t->pid), "-");
	}
	if (l->backlog_source == LISTEN_BACKLOG_UNKNOWN)
		snprintf(t->backlog, sizeof(t->backlog), ">=%" PRIu32, l->accept_queue_max);
	else
		snprintf(t->backlog, sizeof(t->backlog), "%" PRId64, l->backlog_requested);
	/* "~" marks a count shared out from namespace counters (attributed). */
	snprintf(t->ovf, sizeof(t->ovf), "%" PRIu64 "%s", l->overflows,
		 l->method == OVERFLOW_METHOD_ATTRIBUTED ? "~" : "");
	snprintf(t->rate, sizeof(t->rate), "%.1f%s", rate(l),
		 l->method_interval == OVERFLOW_METHOD_ATTRIBUTED ? "~" : "");
	/* "~": inferred from the SYN queue, not counted where the kernel decides */
	if (l->syn_seen)
		snprintf(t->cookies, sizeof(t->cookies), "%" PRIu64 "%s", l->syn_cookies,
			 l->syn_cookies_inferred ? "~" : "");
	else
		snprintf(t->cookies, sizeof(t->cookies), "-");
	listen_format_sparkline(l, utf8, t->spark, sizeof(t->spark));
}

/* The clients that lost SYNs, one line each, under the listener (f NULL: count). */
static int client_lines(FILE *f, const struct listener *l, bool utf8)
{
	char text[160];
	size_t i;

	for (i = 0; f && i < l->ntop; i++) {
		listen_format_client(&l->top[i], text, sizeof(text));
		fprintf(f, "%10s %s %s\n", "", utf8 ? "\u2190" : "<", text);
	}
	if (f && l->dropped_clients > l->ntop)
		fprintf(f, "%10s %s %" PRIu64 " more client%s lost SYNs (--top)\n", "",
			utf8 ? "\u2190" : "<", l->dropped_clients - l->ntop,
			l->dropped_clients - l->ntop == 1 ? "" : "s");
	return (int)l->ntop + (l->dropped_clients > l->ntop);
}

static int maxi(int a, int b) { return a > b ? a : b; }

/*
 * Word-wrap `text` into lines of at most `width` columns after an indent of
 * `indent` columns (the first line starts with `lead`); into `out` if not
 * NULL. Returns the number of lines. Advice text is ASCII (comm is escaped).
 */
static int wrap(FILE *out, const char *lead, const char *text, int indent, int width)
{
	int room = width > indent + 20 ? width - indent : 0, lines = 0;
	const char *p = text;

	while (*p) {
		int len = (int)strlen(p), cut = len;

		if (room && len > room) {
			for (cut = room; cut > 0 && p[cut] != ' '; cut--)
				;
			if (cut == 0)
				cut = room; /* one long word: break it */
		}
		if (out)
			fprintf(out, "%*s%s%.*s\n", lines ? indent : 0, "", lines ? "" : lead,
				cut, p);
		lines++;
		p += cut;
		while (*p == ' ')
			p++;
	}
	return lines;
}

/* Lines a terminal `width` columns wide takes for s (UTF-8: count lead bytes). */
static int screen_lines(const char *s, int width)
{
	int cols = 0;

	for (; *s; s++)
		cols += ((unsigned char)*s & 0xc0) != 0x80;
	return width > 0 && cols > width ? (cols + width - 1) / width : 1;
}

size_t listen_print_table(FILE *f, const struct listener *rows, size_t n,
			  const struct listen_table_opts *o)
{
	int w_addr = 6, w_comm = 4, w_pid = 3, w_ovf = 3, w_rate = 5, w_ck = 7, used;
	struct row_text t;
	char text[512], line[512];
	size_t i;
	unsigned bit;

	for (i = 0; i < n; i++) {
		row_text(&rows[i], o->utf8, &t);
		w_addr = maxi(w_addr, (int)strlen(t.addr));
		w_comm = maxi(w_comm, (int)strlen(t.comm));
		w_pid = maxi(w_pid, (int)strlen(t.pid));
		w_ovf = maxi(w_ovf, (int)strlen(t.ovf));
		w_rate = maxi(w_rate, (int)strlen(t.rate));
		w_ck = maxi(w_ck, (int)strlen(t.cookies));
	}
	snprintf(line, sizeof(line),
		 "%-10s %-*s %*s %-*s %5s %5s %5s %7s %9s %5s %6s %*s %*s %6s %5s %*s %s",
		 "NETNS", w_addr, "LISTEN", w_pid, "PID", w_comm, "COMM", "ACCQ", "PEAK",
		 "MAX", "BACKLOG", "SOMAXCONN", "SYNQ", "SYNMAX", w_rate, "OVF/s", w_ovf, "OVF",
		 "SYNRTX", "RST", w_ck, "COOKIES", "FILL");
	fprintf(f, "%s\n", line);
	used = screen_lines(line, o->width);
	for (i = 0; i < n; i++) {
		const struct listener *l = &rows[i];
		int need;

		row_text(l, o->utf8, &t);
		snprintf(line, sizeof(line),
			 "%-10" PRIu64 " %-*s %*s %-*s %5" PRIu32 " %5" PRIu32 " %5" PRIu32
			 " %7s %9" PRIu32 " %5" PRIu32 " %6" PRIu32 " %*s %*s %6" PRIu64 " %5" PRIu64
			 " %*s %s",
			 l->netns_ino, w_addr, t.addr, w_pid, t.pid, w_comm, t.comm,
			 l->accept_queue, l->accept_queue_peak, l->accept_queue_max, t.backlog,
			 l->somaxconn, l->syn_queue, l->syn_queue_max, w_rate, t.rate, w_ovf, t.ovf,
			 l->synack_retrans, l->resets_sent, w_ck, t.cookies, t.spark);
		need = screen_lines(line, o->width) + client_lines(NULL, l, o->utf8);

		if (o->show_advice) {
			for (bit = 1; bit <= LISTEN_ADVICE_SYN_COOKIES; bit <<= 1) {
				if (!(l->advice & bit))
					continue;
				listen_advice_text(l, bit, text, sizeof(text));
				need += wrap(NULL, "", text, 13, o->width);
			}
		}
		/* keep one line to say what did not fit */
		if (o->max_lines && used + need > o->max_lines - (i + 1 < n)) {
			fprintf(f, "(%zu more listeners: a taller terminal, --port, --pid or -j "
				"shows them)\n", n - i);
			return i;
		}
		used += need;
		fprintf(f, "%s\n", line);
		client_lines(f, l, o->utf8);
		if (!o->show_advice)
			continue;
		for (bit = 1; bit <= LISTEN_ADVICE_SYN_COOKIES; bit <<= 1) {
			char lead[32];

			if (!(l->advice & bit))
				continue;
			listen_advice_text(l, bit, text, sizeof(text));
			/* the arrow takes one column either way: 13 before the text */
			snprintf(lead, sizeof(lead), "%10s %s ", "", o->utf8 ? "\u2192" : ">");
			wrap(f, lead, text, 13, o->width);
		}
	}
	return n;
}

void listen_json_head(struct json *j, const char *type, double ts)
{
	char when[48];

	json_obj_begin(j);
	json_kstr(j, "type", type);
	json_kstr(j, "schema", CT_SCHEMA_VERSION);
	/* a double carries microseconds faithfully, not nanoseconds */
	fmt_rfc3339(when, sizeof(when), (uint64_t)(ts * 1e6 + 0.5) * 1000);
	json_kstr(j, "ts", when);
}

/* The owner's cgroup and what its path says (cgroup.c); null where unknown. */
static void listen_json_cgroup(struct json *j, const struct listener *l)
{
	struct cg_attrib a;

	cg_attrib_parse(l->cgroup, &a);
	json_kstr(j, "cgroup", l->cgroup[0] ? l->cgroup : NULL);
	json_kstr(j, "unit", a.unit[0] ? a.unit : NULL);
	json_kstr(j, "container_id", a.container_id[0] ? a.container_id : NULL);
	json_kstr(j, "pod_uid", a.pod_uid[0] ? a.pod_uid : NULL);
}

/* SYN cookies and the clients that lost SYNs: null where SYNs are not seen. */
static void listen_json_syn(struct json *j, const struct listener *l)
{
	char addr[INET6_ADDRSTRLEN];
	size_t i;

	json_key(j, "syn_cookies");
	if (l->syn_seen)
		json_u64(j, l->syn_cookies);
	else
		json_null(j);
	json_kstr(j, "syn_cookies_method", !l->syn_seen ? NULL :
		  l->syn_cookies_inferred ? "inferred" : "exact");
	json_key(j, "dropped_clients");
	if (!l->syn_seen) {
		json_null(j);
		json_key(j, "dropped_clients_total");
		json_null(j);
		return;
	}
	json_arr_begin(j);
	for (i = 0; i < l->ntop; i++) {
		const struct listen_top_client *c = &l->top[i];

		if (!inet_ntop(c->family == AF_INET6 ? AF_INET6 : AF_INET, c->addr, addr,
			       sizeof(addr)))
			snprintf(addr, sizeof(addr), "?");
		json_obj_begin(j);
		json_kstr(j, "raddr", addr);
		json_ku64(j, "ports", c->ports);
		json_ku64(j, "syns_dropped", c->accept_queue_full + c->syn_queue_full);
		json_key(j, "causes");
		json_obj_begin(j);
		json_ku64(j, "accept_queue_full", c->accept_queue_full);
		json_ku64(j, "syn_queue_full", c->syn_queue_full);
		json_obj_end(j);
		json_obj_end(j);
	}
	json_arr_end(j);
	json_ku64(j, "dropped_clients_total", l->dropped_clients);
}

void listen_json_listener(struct json *j, const struct listener *l, double ts)
{
	char addr[INET6_ADDRSTRLEN];
	unsigned bit;
	int i;

	addr_text(l, addr, sizeof(addr));
	listen_json_head(j, "listener", ts);
	json_key(j, "time");
	json_double(j, ts, 3);
	json_ku64(j, "netns", l->netns_ino);
	json_kstr(j, "laddr", addr);
	json_ku64(j, "lport", l->lport);
	json_kstr(j, "family", l->family == AF_INET6 ? "ipv6" : "ipv4");
	json_key(j, "pid");
	if (l->pid)
		json_i64(j, l->pid);
	else
		json_null(j);
	json_key(j, "comm");
	if (l->pid)
		json_strn(j, l->comm, sizeof(l->comm));
	else
		json_null(j);
	listen_json_cgroup(j, l);
	json_ku64(j, "accept_queue", l->accept_queue);
	json_ku64(j, "accept_queue_peak", l->accept_queue_peak);
	json_ku64(j, "accept_queue_max", l->accept_queue_max);
	json_kbool(j, "accept_queue_full", l->full_now);
	json_key(j, "backlog_requested");
	if (l->backlog_source == LISTEN_BACKLOG_UNKNOWN)
		json_null(j);
	else
		json_i64(j, l->backlog_requested);
	json_kstr(j, "backlog_source", listen_backlog_source_name(l->backlog_source));
	json_ku64(j, "somaxconn", l->somaxconn);
	json_ku64(j, "syn_queue", l->syn_queue);
	json_ku64(j, "syn_queue_max", l->syn_queue_max);
	json_ku64(j, "overflows", l->overflows);
	json_ku64(j, "overflows_interval", l->overflows_interval);
	json_key(j, "overflows_per_sec");
	json_double(j, rate(l), 2);
	json_ku64(j, "drops", l->drops);
	json_ku64(j, "synack_retrans", l->synack_retrans);
	json_ku64(j, "resets_sent", l->resets_sent);
	listen_json_syn(j, l);
	json_kstr(j, "method", overflow_method_name(l->method));
	json_kstr(j, "method_interval", overflow_method_name(l->method_interval));
	json_key(j, "fill_history");
	json_arr_begin(j);
	for (i = 0; i < l->history_len; i++)
		json_u64(j, l->history[i]);
	json_arr_end(j);
	json_key(j, "advice");
	json_arr_begin(j);
	for (bit = 1; bit <= LISTEN_ADVICE_SYN_COOKIES; bit <<= 1) {
		char text[512];

		if (!(l->advice & bit))
			continue;
		listen_advice_text(l, bit, text, sizeof(text));
		json_obj_begin(j);
		json_kstr(j, "rule", listen_advice_name(bit));
		json_kstr(j, "text", text);
		json_obj_end(j);
	}
	json_arr_end(j);
	json_obj_end(j);
	json_eol(j);
}
