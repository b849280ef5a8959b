// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Step 2 of a verdict: the facts of one attempt (struct ct_facts) in,
 * verdict, cause and whether it is inferred out. Pure: no correlator, no
 * evidence store, no text; every rule is one line of a table below, and
 * tests/unit/test_correlate.c runs it over the combinations that matter.
 *
 * inferred is false when the cause names something the kernel reported for
 * this attempt (a drop with its reason, an RST this host sent with reason
 * NO_SOCKET, an ICMP error on the socket or sent by this host, an error
 * connect() returned, the handshake's own timing), and true when it is
 * concluded from the absence of such evidence or from timing alone (no
 * SYN-ACK came back, the application closed the socket, a listener was full
 * at the time, an RST without a reason). docs/schema.md lists it per cause.
 */
#include <errno.h>
#include <string.h>
#include "correlate.h"

static const char *const verdict_names[CT_V_MAX] = {
	"ok", "slow", "timeout", "refused", "unreachable", "abandoned", "pending", "dropped",
	"reset",
};
static const char *const verdict_labels[CT_V_MAX] = {
	"OK", "SLOW", "TIMEOUT", "REFUSED", "UNREACHABLE", "ABANDONED", "PENDING", "DROPPED",
	"RESET",
};
static const char *const cause_names[CT_C_MAX] = {
	[CT_C_ESTABLISHED] = "established",
	[CT_C_NETFILTER_DROP] = "netfilter_drop",
	[CT_C_NO_LISTENER] = "no_listener",
	[CT_C_ACCEPT_QUEUE_FULL] = "accept_queue_full",
	[CT_C_RST_RECEIVED] = "rst_received",
	[CT_C_NO_SYNACK] = "no_synack",
	[CT_C_ICMP_UNREACHABLE] = "icmp_unreachable",
	[CT_C_NO_ROUTE] = "no_route",
	[CT_C_APP_CLOSED] = "app_closed",
	[CT_C_SLOW_HANDSHAKE] = "slow_handshake",
	[CT_C_LOCAL_DROP] = "local_drop",
	[CT_C_LOCAL_ERROR] = "local_error",
	[CT_C_UNKNOWN] = "unknown",
	[CT_C_NO_ACK] = "no_ack",
	[CT_C_RST_SENT] = "rst_sent",
	[CT_C_SYN_QUEUE_FULL] = "syn_queue_full",
};
static const char *const ev_names[CT_EV_MAX] = {
	[CT_EV_CONNECT] = "connect",
	[CT_EV_SYN_RETRANS] = "syn_retransmit",
	[CT_EV_DROP] = "drop",
	[CT_EV_RST_SENT] = "rst_sent",
	[CT_EV_RST_RECEIVED] = "rst_received",
	[CT_EV_ERROR] = "socket_error",
	[CT_EV_ACCEPT_QUEUE_FULL] = "accept_queue_full",
	[CT_EV_ESTABLISHED] = "established",
	[CT_EV_CLOSED] = "closed",
	[CT_EV_CONNECT_ERROR] = "connect_error",
	[CT_EV_ICMP_SENT] = "icmp_sent",
	[CT_EV_ICMP_ERROR] = "icmp_error",
	[CT_EV_SIMOPEN] = "simultaneous_open",
	[CT_EV_SYN_RECEIVED] = "syn_received",
	[CT_EV_SYNACK_RETRANS] = "synack_retransmit",
	[CT_EV_SYN_COOKIE] = "syn_cookie",
};

const char *ct_verdict_name(enum ct_verdict v)
{
	return (unsigned)v < CT_V_MAX ? verdict_names[v] : "?";
}

const char *ct_verdict_label(enum ct_verdict v)
{
	return (unsigned)v < CT_V_MAX ? verdict_labels[v] : "?";
}

const char *ct_cause_name(enum ct_cause c)
{
	return (unsigned)c < CT_C_MAX ? cause_names[c] : "?";
}

const char *ct_ev_kind_name(enum ct_ev_kind k)
{
	return (unsigned)k < CT_EV_MAX ? ev_names[k] : "?";
}

int ct_verdict_parse(const char *s)
{
	for (int v = 0; v < CT_V_MAX; v++)
		if (!strcasecmp(s, verdict_names[v]))
			return v;
	return -1;
}

const char *ct_errno_name(int err)
{
	/* glibc knows every name; NULL for 0 and numbers it does not know */
	return err > 0 ? strerrorname_np(err) : NULL;
}

/*
 * Errors only an ICMP error sets on a socket that sent SYNs (tcp_v4_err,
 * tcp_v6_err; a neighbour that never answered is reported the same way):
 * net/host unreachable, host unknown or isolated, ICMPv6 administratively
 * prohibited or rejected by policy (EACCES), protocol unreachable.
 */
static bool icmp_unreach_errno(int err)
{
	return err == EHOSTUNREACH || err == ENETUNREACH || err == EHOSTDOWN ||
	       err == ENONET || err == EACCES || err == ENOPROTOOPT;
}

#define CLASS(v, c, inf) ((struct ct_class){ .verdict = (v), .cause = (c), .inferred = (inf) })

/* What lost the SYNs: for SLOW, TIMEOUT and PENDING alike. */
static struct ct_class stall(const struct ct_facts *fx, enum ct_verdict v)
{
	if (fx->nf_drops)
		return CLASS(v, CT_C_NETFILTER_DROP, false);
	if (fx->overflow_drops)
		return CLASS(v, CT_C_ACCEPT_QUEUE_FULL, false);
	/* a full queue costs only retransmits: without one it explains nothing */
	if (fx->queue_full && fx->syn_retrans)
		return CLASS(v, CT_C_ACCEPT_QUEUE_FULL, true);
	if (fx->other_drops)
		return CLASS(v, CT_C_LOCAL_DROP, false);
	/* an ICMP error answered a SYN while the socket was busy: it was retransmitted */
	if (fx->err_soft == ECONNREFUSED || icmp_unreach_errno(fx->err_soft))
		return CLASS(v, CT_C_ICMP_UNREACHABLE, false);
	/* a SYN to this host itself was not lost beyond it: do not say so */
	if (fx->syn_retrans && !fx->dest_local)
		return CLASS(v, CT_C_NO_SYNACK, true);
	return CLASS(v, CT_C_UNKNOWN, true);
}

static struct ct_class refused(const struct ct_facts *fx)
{
	const enum ct_verdict v = CT_V_REFUSED;

	/* an RST without a reason (before 6.10) is most likely for want of a listener */
	if (fx->no_socket_drop || (fx->rst_sent && (fx->rst_no_socket || !fx->rst_reason_known)))
		return CLASS(v, CT_C_NO_LISTENER, !fx->rst_no_socket && !fx->no_socket_drop);
	if (fx->rst_sent || fx->rst_received)
		return CLASS(v, CT_C_RST_RECEIVED, false);
	/* no RST: an ICMP port unreachable, seen or taken for granted */
	return CLASS(v, CT_C_ICMP_UNREACHABLE, !fx->icmp_sent && fx->err_soft != ECONNREFUSED);
}

/* Closed without an error: the application gave up, unless ICMP told it to. */
static struct ct_class closed_quietly(const struct ct_facts *fx)
{
	if (fx->err_soft == ECONNREFUSED)
		return CLASS(CT_V_REFUSED, CT_C_ICMP_UNREACHABLE, false);
	if (icmp_unreach_errno(fx->err_soft))
		return CLASS(CT_V_UNREACHABLE, CT_C_ICMP_UNREACHABLE, false);
	if (fx->err_soft)	/* EPROTO, EMSGSIZE, ...: an ICMP error, but not one that says why */
		return CLASS(CT_V_UNREACHABLE, CT_C_UNKNOWN, true);
	return CLASS(CT_V_ABANDONED, CT_C_APP_CLOSED, true);
}

static struct ct_class closed(const struct ct_facts *fx)
{
	int err = fx->err;

	if (!err)
		return closed_quietly(fx);
	if (err == ETIMEDOUT)
		return stall(fx, CT_V_TIMEOUT);
	if (err == ECONNREFUSED || err == ECONNRESET)
		return refused(fx);
	if (icmp_unreach_errno(err))
		return CLASS(CT_V_UNREACHABLE, CT_C_ICMP_UNREACHABLE, false);
	if (err == ENETDOWN)	/* the interface went down, or an ICMP said so */
		return CLASS(CT_V_UNREACHABLE, CT_C_ICMP_UNREACHABLE, !fx->err_soft && !fx->icmp_sent);
	return CLASS(CT_V_UNREACHABLE, CT_C_UNKNOWN, true);
}

static struct ct_class established(const struct ct_facts *fx)
{
	if (fx->simopen)	/* both ends sent a SYN: nothing was lost */
		return CLASS(CT_V_OK, CT_C_ESTABLISHED, false);
	if (fx->syn_retrans)
		return stall(fx, CT_V_SLOW);
	if (fx->slow)
		return CLASS(CT_V_SLOW, CT_C_SLOW_HANDSHAKE, false);
	return CLASS(CT_V_OK, CT_C_ESTABLISHED, false);
}

/*
 * Causes that rest on evidence that did not come (no local RST, no drop, no
 * ICMP seen): when the kernel lost records while the attempt ran, that
 * absence proves nothing.
 */
static bool rests_on_absence(const struct ct_facts *fx, const struct ct_class *k)
{
	switch (k->cause) {
	case CT_C_NO_SYNACK:
		return true;
	case CT_C_RST_RECEIVED:
		return !fx->rst_sent;
	case CT_C_ICMP_UNREACHABLE:
		return k->inferred;
	default:
		return false;
	}
}

struct ct_class ct_classify(const struct ct_facts *fx)
{
	struct ct_class k;

	switch (fx->end) {
	case CT_END_PENDING:
		k = stall(fx, CT_V_PENDING);
		break;
	case CT_END_CONNECT_ERROR:
		k = fx->err == ENETUNREACH || fx->err == EHOSTUNREACH ?
		    CLASS(CT_V_UNREACHABLE, CT_C_NO_ROUTE, false) :
		    CLASS(CT_V_UNREACHABLE, CT_C_LOCAL_ERROR, false);
		break;
	case CT_END_ESTABLISHED:
		k = established(fx);
		break;
	default:
		k = closed(fx);
		break;
	}
	if (fx->lossy && rests_on_absence(fx, &k))
		k = CLASS(k.verdict, CT_C_UNKNOWN, true);
	return k;
}
