// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Step 3 of a verdict: the English sentence that explains it, written from
 * the result's facts only when a writer prints it (text with -d, JSON
 * "detail"). Deciding never pays for a sentence.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "correlate.h"
#include "fmt.h"
#include "inbound.h"

#define NS_PER_SEC	1000000000ULL

struct out {
	char *buf;
	size_t sz, len;
};

static void put_mem(struct out *o, const char *s, size_t n)
{
	size_t left = o->sz - 1 - o->len;	/* room before the NUL */

	if (n > left)
		n = left;
	memcpy(o->buf + o->len, s, n);
	o->len += n;
	o->buf[o->len] = '\0';
}

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * A printf for the sentences, by hand: %s (NULL as "(null)"), %u, %d and %%
 * only, which is all they use. vsnprintf costs more than the rest of a JSON
 * line; the format attribute still has the compiler check every call.
 */
static void put(struct out *o, const char *fmt, ...)
{
	char num[FMT_I64_MAX];
	const char *s;
	va_list ap;

	va_start(ap, fmt);
	while (*fmt) {
		const char *pc = strchr(fmt, '%');
		size_t n = pc ? (size_t)(pc - fmt) : strlen(fmt);

		put_mem(o, fmt, n);
		if (!pc || !pc[1])
			break;
		fmt = pc + 2;
		switch (pc[1]) {
		case 's':
			s = va_arg(ap, const char *);
			if (!s)
				s = "(null)";
			put_mem(o, s, strlen(s));
			break;
		case 'u':
			put_mem(o, num, fmt_u64(num, va_arg(ap, unsigned)) - num);
			break;
		case 'd':
			put_mem(o, num, fmt_i64(num, va_arg(ap, int)) - num);
			break;
		default:	/* %%, or a conversion this does not know: shown as is */
			put_mem(o, pc + 1, 1);
			break;
		}
	}
	va_end(ap);
}

/* strlcpy: what fits of s, always terminated (sz > 0) */
static void copy_str(char *buf, size_t sz, const char *s)
{
	size_t n = strlen(s);

	if (n >= sz)
		n = sz - 1;

	memcpy(buf, s, n);
	buf[n] = '\0';
}

/* "%.1f s", "%.2f s" or "%.1f ms", by hand (rounded half to even) */
static void fmt_secs(char *buf, size_t sz, uint64_t ns)
{
	char tmp[FMT_U64_MAX + 8], *p;

	if (ns >= 10 * NS_PER_SEC)
		p = fmt_fixed(tmp, ns, NS_PER_SEC, 1);
	else if (ns >= NS_PER_SEC)
		p = fmt_fixed(tmp, ns, NS_PER_SEC, 2);
	else
		p = fmt_fixed(tmp, ns, 1000000, 1);
	if (ns < NS_PER_SEC)
		memcpy(p, " ms", 4);
	else
		memcpy(p, " s", 3);
	copy_str(buf, sz, tmp);
}

/* A time relative to the connect, in words. */
static void fmt_rel(char *buf, size_t sz, int64_t us)
{
	char t[32];

	fmt_secs(t, sizeof(t), (uint64_t)(us < 0 ? -us : us) * 1000);
	snprintf(buf, sz, "%s %s the connect", t, us < 0 ? "before" : "after");
}

static void fmt_dest(char *buf, size_t sz, const struct ct_flow *f)
{
	char tmp[FMT_ENDPOINT_MAX + 1];

	*fmt_ip_port(tmp, f->family, f->daddr, f->dport) = '\0';
	copy_str(buf, sz, tmp);
}

struct ctx {
	const struct ct_result *r;
	const struct ct_facts *fx;
	const struct ct_flow *f;
	char dest[80], took[32];
};

/* The ICMP message by its type and code, for ICMP and ICMPv6. */
static void icmp_name(char *buf, size_t sz, bool v6, unsigned type, unsigned code)
{
	static const char *const v4_unreach[16] = {
		"net unreachable", "host unreachable", "protocol unreachable",
		"port unreachable", "fragmentation needed", "source route failed",
		"net unknown", "host unknown", "host isolated", "net prohibited",
		"host prohibited", "net unreachable for TOS", "host unreachable for TOS",
		"administratively prohibited", "host precedence violation",
		"precedence cutoff",
	};
	static const char *const v6_unreach[7] = {
		"no route", "administratively prohibited", "beyond scope",
		"address unreachable", "port unreachable", "source address failed policy",
		"reject route",
	};
	const char *n = NULL;

	if (!v6 && type == 3 && code < 16)
		n = v4_unreach[code];
	else if (v6 && type == 1 && code < 7)
		n = v6_unreach[code];
	else if ((!v6 && type == 11) || (v6 && type == 3))
		n = "time exceeded";
	if (n)
		snprintf(buf, sz, "ICMP%s %s", v6 ? "v6" : "", n);
	else
		snprintf(buf, sz, "ICMP%s type %u code %u", v6 ? "v6" : "", type, code);
}

/* Who sent the ICMP error: this host (a reject rule), or somewhere else. */
static void icmp_origin(struct out *o, const struct ctx *c)
{
	const struct ct_facts *fx = c->fx;
	char name[64];

	if (fx->icmp_sent) {
		icmp_name(name, sizeof(name), fx->v6, fx->icmp_type, fx->icmp_code);
		put(o, ": this host sent an %s about the %s to %s, so a reject rule in this "
		    "host's firewall refused it (check nftables/iptables)", name,
		    fx->icmp_about_synack ? "SYN-ACK" : "SYN", c->dest);
		if ((!fx->v6 && fx->icmp_type == 3 && fx->icmp_code == 1) ||
		    (fx->v6 && fx->icmp_type == 1 && fx->icmp_code == 3))
			put(o, ", or the next hop never answered ARP/neighbour discovery");
	} else if (fx->nf_drops) {
		/* a reject rule drops the packet (NETFILTER_DROP) and answers with ICMP */
		put(o, ": netfilter on this host dropped %u of its SYNs, so a reject rule in this "
		    "host's firewall most likely sent the ICMP error (check nftables/iptables)",
		    fx->nf_drops);
	} else if (fx->err_soft) {
		put(o, ": the ICMP error came from a router or from %s itself; this host was "
		    "not seen sending it", c->dest);
	}
}

/* The lead of an icmp_unreachable detail; icmp_origin() says where it came from. */
static void icmp_lead(struct out *o, const struct ctx *c, const char *otherwise)
{
	const struct ct_facts *fx = c->fx;

	if (!fx->err && fx->err_soft)	/* the application gave up before reading it */
		put(o, "the application closed the socket after %s while still connecting to %s, "
		    "with an ICMP error on it (%s)", c->took, c->dest, ct_errno_name(fx->err_soft));
	else
		put(o, "%s", otherwise);
	icmp_origin(o, c);
}

/* When the destination listener's accept queue was full, and how full. */
static void full_period(struct out *o, const struct ct_facts *fx)
{
	char when[64];

	put(o, "%s a full accept queue", fx->overflow_drops ? "; it had" : " had");
	if (fx->full_from_us != INT64_MIN) {
		fmt_rel(when, sizeof(when), fx->full_from_us);
		put(o, " %s %s", fx->full_exact ? "from" : "at some time from", when);
		if (fx->full_to_us != INT64_MIN) {
			fmt_rel(when, sizeof(when), fx->full_to_us);
			put(o, " to %s", when);
		} else {
			put(o, " until the attempt ended");
		}
	}
	if (fx->queue_known && fx->full_us != fx->full_from_us && fx->full_us != INT64_MIN) {
		fmt_rel(when, sizeof(when), fx->full_us);
		put(o, " (%u queued %s, limit %u)", fx->queue, when, fx->queue_max);
	} else if (fx->queue_known) {
		put(o, " (%u queued, limit %u)", fx->queue, fx->queue_max);
	} else {
		put(o, " (limit %u)", fx->queue_max);
	}
}

static void why_lost(struct out *o, const struct ctx *c, enum ct_cause cause)
{
	const struct ct_facts *fx = c->fx;

	switch (cause) {
	case CT_C_NETFILTER_DROP:
		put(o, "netfilter on this host dropped %u of this flow's %s to %s (reason "
		    "NETFILTER_DROP): check the nftables/iptables rules for port %u", fx->nf_drops,
		    fx->synack_dropped ? "SYN-ACKs" : "SYNs", c->dest, c->f->dport);
		break;
	case CT_C_ACCEPT_QUEUE_FULL:
		put(o, "the listener on %s (this host, netns %u)", c->dest, c->f->netns);
		if (fx->overflow_drops)
			put(o, " dropped %u of this flow's SYNs on a full accept queue (reason "
			    "TCP_LISTEN_OVERFLOW)", fx->overflow_drops);
		if (fx->queue_full)
			full_period(o, fx);
		put(o, ": the application does not accept() fast enough, or its backlog is too small");
		break;
	case CT_C_LOCAL_DROP:
		put(o, "this host dropped %u of this flow's %s to %s, reason %s", fx->other_drops,
		    fx->synack_dropped ? "SYN-ACKs" : "SYNs", c->dest,
		    fx->other_reason ? fx->other_reason : "?");
		break;
	case CT_C_ICMP_UNREACHABLE:
		put(o, "an ICMP error (%s) answered a SYN to %s", ct_errno_name(fx->err_soft),
		    c->dest);
		icmp_origin(o, c);
		break;
	case CT_C_NO_SYNACK:
		put(o, "%u SYN%s left for %s and no SYN-ACK came back, with no drop seen on this "
		    "host: lost beyond it (a remote firewall, or the host is down)",
		    fx->syn_retrans + 1, fx->syn_retrans ? "s" : "", c->dest);
		break;
	default:
		if (fx->syn_retrans && fx->dest_local)
			put(o, "%u SYNs to %s, on this host, went unanswered and no drop was seen: a "
			    "full accept queue this kernel does not show (try `conntrace listen`), or "
			    "a drop without a traced reason", fx->syn_retrans + 1, c->dest);
		else
			put(o, "the evidence does not say why %s did not answer", c->dest);
		break;
	}
}

/* SLOW after SYN retransmits: which were lost, why, and what it cost. */
static void slow_retrans(struct out *o, const struct ctx *c, enum ct_cause cause)
{
	const struct ct_facts *fx = c->fx;
	char cost[32];

	fmt_secs(cost, sizeof(cost), fx->last_retrans_ns);
	put(o, "%u SYN%s to %s went unanswered; SYN #%u, sent %s after the first, got through: "
	    "connected after %s; ", fx->syn_retrans, fx->syn_retrans > 1 ? "s" : "", c->dest,
	    fx->syn_retrans + 1, cost, c->took);
	if (cause == CT_C_NO_SYNACK)
		put(o, "no drop seen on this host: lost beyond it, or spurious (a SYN is "
		    "retransmitted after 1 s, the initial RTO, even when the round trip is only "
		    "slower than that)");
	else
		why_lost(o, c, cause);
}

static void refused_detail(struct out *o, const struct ctx *c, enum ct_cause cause)
{
	const struct ct_facts *fx = c->fx;

	if (cause == CT_C_NO_LISTENER && (fx->rst_no_socket || !fx->no_socket_drop))
		put(o, "nothing listens on %s: this host's TCP stack answered the SYN with an RST "
		    "(netns %u)%s", c->dest, c->f->netns, fx->rst_no_socket ? "" :
		    "; this kernel gives no reset reason, so no listener is the likely one");
	else if (cause == CT_C_NO_LISTENER)
		put(o, "nothing listens on %s: this host dropped the SYN with reason NO_SOCKET and "
		    "sent an RST (netns %u)", c->dest, c->f->netns);
	else if (cause == CT_C_RST_RECEIVED && fx->rst_sent)
		put(o, "this host's TCP stack answered the SYN to %s with an RST, reason %s",
		    c->dest, fx->rst_reason ? fx->rst_reason : "?");
	else if (cause == CT_C_RST_RECEIVED)
		put(o, "an RST came back from %s that this host's TCP stack did not send: the peer "
		    "has no listener there, or a firewall rejects the connection", c->dest);
	else if (fx->icmp_sent || fx->err_soft || fx->nf_drops)
		icmp_lead(o, c, "refused by an ICMP port unreachable, not an RST");
	else
		put(o, "refused without an RST: an ICMP port unreachable came back from %s",
		    c->dest);
}

static void unreachable_detail(struct out *o, const struct ctx *c, enum ct_cause cause)
{
	const struct ct_facts *fx = c->fx;
	const char *en = ct_errno_name(fx->err ? fx->err : fx->err_soft);
	char lead[64];

	if (cause == CT_C_ICMP_UNREACHABLE && (fx->icmp_sent || fx->err_soft || fx->nf_drops)) {
		snprintf(lead, sizeof(lead), "%s after %u SYN%s", en, fx->syn_retrans + 1,
			 fx->syn_retrans ? "s" : "");
		icmp_lead(o, c, lead);
		return;
	}
	if (cause == CT_C_NO_ROUTE)
		put(o, "connect() failed at once with %s: no route to %s in netns %u, no SYN was "
		    "sent (see `ip route get`)", en, c->dest, c->f->netns);
	else if (cause == CT_C_LOCAL_ERROR && fx->err == EADDRNOTAVAIL && fx->v6)
		put(o, "connect() failed at once with EADDRNOTAVAIL: often no usable IPv6 source "
		    "address for %s (none configured, or still tentative), else no free local port",
		    c->dest);
	else if (cause == CT_C_LOCAL_ERROR && fx->err == EADDRNOTAVAIL)
		put(o, "connect() failed at once with EADDRNOTAVAIL: no free local port for %s "
		    "(net.ipv4.ip_local_port_range exhausted)", c->dest);
	else if (cause == CT_C_LOCAL_ERROR)
		put(o, "connect() to %s failed at once with %s (errno %d)", c->dest,
		    en ? en : "an error", fx->err);
	else if (cause == CT_C_ICMP_UNREACHABLE)
		put(o, "%s after %u SYN%s: an ICMP unreachable came back for %s (a router or the "
		    "host says it cannot be reached)", en, fx->syn_retrans + 1,
		    fx->syn_retrans ? "s" : "", c->dest);
	else if (!fx->err)
		put(o, "the attempt to %s ended with an ICMP error on the socket (%s, errno %d) "
		    "that does not say why", c->dest, en ? en : "?", fx->err_soft);
	else
		put(o, "the attempt to %s failed with %s (errno %d); the evidence does not say why",
		    c->dest, en ? en : "an error", fx->err);
}

static void abandoned_detail(struct out *o, const struct ctx *c)
{
	const struct ct_facts *fx = c->fx;

	put(o, "the application closed the socket after %s while still connecting to %s (%u SYN "
	    "retransmit%s%s): it may be the application's own timeout, a cancelled request, or "
	    "Happy Eyeballs racing another address", c->took, c->dest, fx->syn_retrans,
	    fx->syn_retrans == 1 ? "" : "s",
	    fx->nf_drops ? "; its SYNs were being dropped by netfilter on this host" :
	    fx->queue_full || fx->overflow_drops ? "; the listener's accept queue was full" : "");
}

static void sentence(struct out *o, const struct ctx *c, const struct ct_class *k)
{
	const struct ct_facts *fx = c->fx;

	switch (k->verdict) {
	case CT_V_OK:
		put(o, "connected to %s in %s%s", c->dest, c->took, fx->simopen ? " by a "
		    "simultaneous open (both ends sent a SYN, as a socket connected to itself does)"
		    : "");
		break;
	case CT_V_SLOW:
		if (k->cause == CT_C_SLOW_HANDSHAKE)
			put(o, "the SYN-ACK from %s took %s with no SYN lost: a slow path or a busy "
			    "peer", c->dest, c->took);
		else
			slow_retrans(o, c, k->cause);
		break;
	case CT_V_PENDING:
		if (k->cause == CT_C_UNKNOWN && !fx->syn_retrans)
			put(o, "still connecting to %s after %s when conntrace stopped; no SYN "
			    "retransmitted yet", c->dest, c->took);
		else
			why_lost(o, c, k->cause);
		break;
	case CT_V_TIMEOUT:
		why_lost(o, c, k->cause);
		break;
	case CT_V_REFUSED:
		refused_detail(o, c, k->cause);
		break;
	case CT_V_ABANDONED:
		abandoned_detail(o, c);
		break;
	default:
		unreachable_detail(o, c, k->cause);
		break;
	}
}

const char *ct_render_detail(const struct ct_result *r, char *buf, size_t sz)
{
	struct out o = { .buf = buf, .sz = sz };
	struct ct_class k = { r->verdict, r->cause, r->inferred };
	struct ctx c = { .r = r, .fx = &r->facts, .f = &r->flow };

	if (r->phase == CT_PHASE_ESTABLISHED)
		return estab_render_detail(r, buf, sz);
	if (!sz)
		return buf;
	if (r->inbound)
		return inbound_render_detail(r, buf, sz);
	buf[0] = '\0';
	fmt_dest(c.dest, sizeof(c.dest), c.f);
	fmt_secs(c.took, sizeof(c.took), r->facts.duration_ns);
	/* cause unknown for want of records: say what it would have been */
	if (r->facts.lossy && r->cause == CT_C_UNKNOWN) {
		struct ct_facts whole = r->facts;

		whole.lossy = false;
		k = ct_classify(&whole);
	}
	sentence(&o, &c, &k);
	if (k.cause != r->cause)
		put(&o, "; but the kernel lost records while it ran (ring buffer full), so evidence "
		    "may be missing: cause unknown");
	if (r->facts.no_history)
		put(&o, " [%s: owner and SYN history unknown]", r->facts.evicted ?
		    "flow-table entry evicted" : "began before conntrace started");
	return buf;
}
