// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * conntrace check, the pure part: HOST:PORT parsing, and what to do about
 * a verdict from its cause and the facts check gathered (check_facts.c,
 * check_nft.c). No I/O: unit-tested in tests/unit/test_check.c.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "listen.h"

/* in, for an error message: printable ASCII, at most 64 characters */
static const char *shown(const char *in, char *out, size_t sz)
{
	size_t i;

	for (i = 0; in[i] && i + 1 < sz && i < 64; i++)
		out[i] = in[i] >= 0x20 && in[i] < 0x7f ? in[i] : '?';
	if (in[i] && i >= 3)
		memcpy(out + i - 3, "...", 3);
	out[i] = '\0';
	return out;
}

int check_parse_target(const char *in, struct check_target *t, char *err, size_t errsz)
{
	char s[72];
	const char *colon, *host = in;
	size_t hlen;
	char *end;
	unsigned long port;
	unsigned char buf[16];

	memset(t, 0, sizeof(*t));
	shown(in, s, sizeof(s));
	if (in[0] == '[') {
		const char *rb = strchr(in, ']');

		if (!rb || rb[1] != ':') {
			snprintf(err, errsz, "'%s': want [IPV6-ADDRESS]:PORT", s);
			return -EINVAL;
		}
		host = in + 1;
		hlen = rb - host;
		colon = rb + 1;
		t->literal6 = true;
	} else {
		colon = strrchr(in, ':');
		if (!colon) {
			snprintf(err, errsz, "'%s': want HOST:PORT", s);
			return -EINVAL;
		}
		hlen = colon - in;
		if (memchr(in, ':', hlen)) {
			snprintf(err, errsz, "'%s': an IPv6 address goes in brackets: [ADDRESS]:PORT", s);
			return -EINVAL;
		}
	}
	if (!hlen || hlen >= sizeof(t->host)) {
		snprintf(err, errsz, "'%s': the host is %s", s, hlen ? "too long (255 at most)" :
			 "empty");
		return -EINVAL;
	}
	for (size_t i = 0; i < hlen; i++) {
		unsigned char c = host[i];

		/* letters, digits and the punctuation of names and addresses only */
		if (!(c >= 'a' && c <= 'z') && !(c >= 'A' && c <= 'Z') && !(c >= '0' && c <= '9') &&
		    !strchr("-._:%", c)) {
			snprintf(err, errsz, "the host has a character not allowed in a name or address");
			return -EINVAL;
		}
	}
	memcpy(t->host, host, hlen);
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (colon[1] < '0' || colon[1] > '9' || *end || errno || port < 1 || port > 65535) {
		snprintf(err, errsz, "'%s': the port must be a number from 1 to 65535", s);
		return -EINVAL;
	}
	t->port = port;
	if (t->literal6 && inet_pton(AF_INET6, t->host, buf) != 1) {
		snprintf(err, errsz, "'%s': not an IPv6 address in the brackets", s);
		return -EINVAL;
	}
	return 0;
}

/*
 * The SYN is retransmitted tcp_syn_retries times, the timer starting at 1 s
 * (TCP_TIMEOUT_INIT) and doubling up to TCP_RTO_MAX (120 s); the kernel gives
 * up one timer after the last retransmit.
 */
unsigned check_syn_wait_s(unsigned syn_retries)
{
	unsigned total = 0, rto = 1;

	if (syn_retries > 127)
		syn_retries = 127;
	for (unsigned i = 0; i <= syn_retries; i++) {
		total += rto;
		rto = rto * 2 > 120 ? 120 : rto * 2;
	}
	return total;
}

static void add(struct check_advice *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void add(struct check_advice *a, const char *fmt, ...)
{
	va_list ap;

	if (a->n >= CHECK_ADVICE_LINES)
		return;
	va_start(ap, fmt);
	vsnprintf(a->line[a->n++], CHECK_ADVICE_LEN, fmt, ap);
	va_end(ap);
}

/* The rule (or policy) the trace found. */
static void advise_nft(const struct check_facts *fx, struct check_advice *a)
{
	const struct check_nft_hit *h = &fx->hit;

	if (h->policy) {
		add(a, "nftables: the policy of chain %s %s %s is %s, and no rule accepted the "
		    "packet (found by nft trace of this probe's own packets)",
		    h->family, h->table, h->chain, h->verdict);
		add(a, "to let it through: add an accept rule to chain %s %s %s, e.g. "
		    "nft insert rule %s %s %s tcp dport ... accept", h->family, h->table,
		    h->chain, h->family, h->table, h->chain);
		return;
	}
	add(a, "nftables rule that %s it: family %s table %s chain %s handle %" PRIu64 ": %s",
	    !strcmp(h->verdict, "reject") ? "rejected" : "dropped", h->family, h->table,
	    h->chain, h->handle, h->rule[0] ? h->rule : "(its text could not be listed)");
	add(a, "found by nft trace of this probe's own packets");
	add(a, "to let it through: nft delete rule %s %s %s handle %" PRIu64
	    ", or insert an accept rule before it", h->family, h->table, h->chain, h->handle);
}

static void advise_drop_unnamed(const struct check_facts *fx, struct check_advice *a)
{
	if (fx->nft_tried)
		add(a, "netfilter dropped it, but no nftables rule of this network namespace did "
		    "for the traced packets: look at the network namespace at the other end "
		    "(nft -a list ruleset there), iptables-legacy (iptables-legacy -L -v -n) "
		    "and ebtables");
	else
		add(a, "netfilter dropped it; the rule could not be traced (%s): look at "
		    "nft -a list ruleset and iptables -L -v -n", fx->nft_note);
}

/* Whether listener l (in this netns) takes connections to dest. */
static bool serves(const struct check_listener *l, const char *dest)
{
	const char *lp = strrchr(l->addr, ':'), *dp = strrchr(dest, ':');

	if (l->netns[0] || !lp || !dp || strcmp(lp, dp))
		return false;
	if (!strcmp(l->addr, dest))
		return true;
	/* a wildcard listener; [::] takes IPv4 too unless IPV6_V6ONLY */
	return !strncmp(l->addr, "0.0.0.0:", 8) ? dest[0] != '[' : !strncmp(l->addr, "[::]:", 5);
}

/* A listener for dest whose accept queue is full now, or NULL. */
const struct check_listener *check_full_listener(const struct check_facts *fx)
{
	for (int i = 0; i < fx->nr_listeners; i++)
		if (serves(&fx->listeners[i], fx->dest) &&
		    fx->listeners[i].queue > fx->listeners[i].queue_max)
			return &fx->listeners[i];
	return NULL;
}

/* A listener's numbers and listen_logic.c's advice about them. */
static void advise_queue(const struct check_facts *fx, struct check_advice *a)
{
	bool any = false;

	for (int i = 0; i < fx->nr_listeners; i++) {
		const struct check_listener *cl = &fx->listeners[i];
		struct listener l = { .accept_queue = cl->queue, .accept_queue_max = cl->queue_max,
				      .somaxconn = fx->somaxconn, .pid = cl->pid,
				      .backlog_requested = -1, .overflows_interval = 1 };
		char who[64], text[CHECK_ADVICE_LEN];
		unsigned bits;

		if (!serves(cl, fx->dest))
			continue;
		memcpy(l.comm, cl->comm, sizeof(l.comm));
		if (cl->pid)
			snprintf(who, sizeof(who), "%.16s (pid %d)", cl->comm, cl->pid);
		else
			snprintf(who, sizeof(who), "owner unknown");
		add(a, "listener %s, %s: accept queue %" PRIu32 " of max %" PRIu32
		    " (the backlog), net.core.somaxconn %" PRIu32, cl->addr, who, cl->queue,
		    cl->queue_max, fx->somaxconn);
		bits = listen_advise(&l);
		if (bits & LISTEN_ADVICE_BACKLOG_LOW) {
			listen_advice_text(&l, LISTEN_ADVICE_BACKLOG_LOW, text, sizeof(text));
			add(a, "%s", text);
		} else {
			add(a, "the backlog is already net.core.somaxconn: raise both (sysctl -w "
			    "net.core.somaxconn=N, and listen(fd, N) in the application)");
		}
		add(a, "and make %s call accept() faster: a queue that stays full means the "
		    "application is the bottleneck", who);
		any = true;
	}
	if (!any)
		add(a, "the listener on that port was not found (sock_diag) any more");
}

static void advise_no_listener(const struct check_facts *fx, struct check_advice *a)
{
	if (!fx->nr_listeners) {
		add(a, "nothing listens on port %s in this network namespace, nor in the named "
		    "ones (/run/netns): start the service, or check its port",
		    strrchr(fx->dest, ':') ? strrchr(fx->dest, ':') + 1 : fx->dest);
		return;
	}
	add(a, "nothing listens on %s, but on that port:", fx->dest);
	for (int i = 0; i < fx->nr_listeners && a->n < CHECK_ADVICE_LINES - 1; i++) {
		const struct check_listener *l = &fx->listeners[i];

		add(a, "  %s%s%s%s%s", l->addr, l->netns[0] ? " in netns " : " in this netns",
		    l->netns, l->pid ? ", process " : "", l->pid ? l->comm : "");
	}
	add(a, "connect to one of those, or make the service listen on the address tried "
	    "(or on all: 0.0.0.0 / [::])");
}

static void advise_timeout(const struct ct_result *r, const struct check_facts *fx,
			   struct check_advice *a)
{
	if (r->cause == CT_C_NO_SYNACK || r->verdict == CT_V_TIMEOUT)
		add(a, "%u SYN(s) left and no answer came, and nothing on this host dropped them: "
		    "the loss is beyond this host (a firewall on the path or at the destination, "
		    "a listener there whose accept queue is full, or the destination is down)", r->flow.syn_retrans + 1);
	if (fx->syn_retries >= 0)
		add(a, "local timers: net.ipv4.tcp_syn_retries = %d: the kernel gives up after "
		    "about %u s (1 s, then doubling); this check waited at most %.0f s (--timeout)",
		    fx->syn_retries, check_syn_wait_s(fx->syn_retries), fx->timeout_s);
}

static void advise_cause(const struct ct_result *r, const struct check_facts *fx,
			 struct check_advice *a)
{
	switch (r->cause) {
	case CT_C_NETFILTER_DROP:
		advise_drop_unnamed(fx, a);
		break;
	case CT_C_ACCEPT_QUEUE_FULL:
		advise_queue(fx, a);
		break;
	case CT_C_NO_LISTENER:
		advise_no_listener(fx, a);
		break;
	case CT_C_NO_ROUTE:
	case CT_C_ICMP_UNREACHABLE:
		if (r->facts.icmp_sent)
			add(a, "this host answered the SYN with ICMP type %u code %u itself",
			    r->facts.icmp_type, r->facts.icmp_code);
		add(a, "route lookup (ip route get): %s", fx->route[0] ? fx->route : "(no answer)");
		if (r->cause == CT_C_NO_ROUTE)
			add(a, "add a route to the destination, or fix the one above");
		break;
	case CT_C_RST_RECEIVED:
		add(a, "an RST answered the SYN, from the destination or a firewall on the path: "
		    "check that the service listens there and what filters the port");
		break;
	case CT_C_LOCAL_DROP:
		add(a, "this host's kernel dropped it (reason %s)",
		    r->facts.other_reason ? r->facts.other_reason : "unknown");
		break;
	case CT_C_NO_SYNACK:
	case CT_C_UNKNOWN:
		if (r->facts.dest_local && check_full_listener(fx)) {
			/* the kernel consumes such a SYN without a drop reason, and
			 * a listener full since before check started is not read */
			add(a, "the SYNs went unanswered, and sock_diag (as ss -lt) shows the listener's "
			    "accept queue full now (more waiting than its backlog allows):");
			advise_queue(fx, a);
			break;
		}
		advise_timeout(r, fx, a);
		break;
	default:
		if (r->verdict == CT_V_TIMEOUT || r->verdict == CT_V_ABANDONED)
			advise_timeout(r, fx, a);
		else
			add(a, "no specific advice for cause %s: the evidence above is what the "
			    "kernel reported", ct_cause_name(r->cause));
	}
}

void check_advise(const struct ct_result *r, const struct check_facts *fx, struct check_advice *a)
{
	a->n = 0;
	if (r->verdict == CT_V_OK) {
		add(a, "connected to %s: nothing to do", fx->dest);
		return;
	}
	if (r->verdict == CT_V_SLOW) {
		add(a, "connected to %s, slowly: %u SYN retransmit(s); see the evidence above",
		    fx->dest, r->flow.syn_retrans);
		return;
	}
	/* a rule the trace named is the answer, whatever the cause says it did */
	if (fx->hit.found) {
		advise_nft(fx, a);
		return;
	}
	advise_cause(r, fx, a);
}

void check_advise_unresolved(const char *host, const char *gai, struct check_advice *a)
{
	a->n = 0;
	add(a, "%s does not resolve: %s", host, gai);
	add(a, "check the name, /etc/hosts and the resolvers in /etc/resolv.conf "
	    "(getent ahosts %s asks the same way this check did)", host);
}
