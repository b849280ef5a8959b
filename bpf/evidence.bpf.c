// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * conntrace kernel side, the evidence that can only be matched to a flow by
 * its addresses: SYNs dropped, RSTs and ICMP errors this host sent in answer
 * to a SYN. The skb of such a packet usually has no socket; it is sent only
 * when it concerns a destination this host recently connected to.
 *
 * The packet tracepoints that other parts need too (kfree_skb, with the
 * established connections' drops and the incoming SYNs dropped;
 * tcp_send_reset, with established connections reset and incoming SYNs
 * refused) have one program here each: it turns the common case away first,
 * parses the packet once and hands it to each part (established.bpf.h,
 * inbound.bpf.h), in the order their programs had when they were apart.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "conntrace.h"
#include "conntrace.bpf.h"
#include "established.bpf.h"
#include "skb.bpf.h"
#include "inbound.bpf.h"

/* The skb this CPU last sent an RST for: its NO_SOCKET drop says nothing more. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} rst_skb SEC(".maps");

/* Whether a packet belongs to an attempt this host made: to or from a recent destination. */
static __always_inline bool local_attempt(const struct ct_evidence *e, __u64 now)
{
	struct dest_key dk = { .family = e->family };
	__u64 *ts;

	/* a SYN goes to the destination, a SYN-ACK comes from it */
	if (e->tcp_flags & CT_TCP_ACK) {
		dk.port = e->sport;
		__builtin_memcpy(dk.addr, e->saddr, sizeof(dk.addr));
	} else {
		dk.port = e->dport;
		__builtin_memcpy(dk.addr, e->daddr, sizeof(dk.addr));
	}
	ts = bpf_map_lookup_elem(&dests, &dk);
	return ts && now - *ts < DEST_TTL_NS;
}

/* A SYN dropped (e, parsed, within the port filter): evidence for an attempt this host made. */
static __always_inline void syn_dropped(const struct sk_buff *skb, const struct sock *sk,
					struct ct_evidence *e, __u32 reason)
{
	struct ct_flow *f;

	if (bpf_core_enum_value_exists(enum skb_drop_reason, SKB_DROP_REASON_NO_SOCKET) &&
	    reason == bpf_core_enum_value(enum skb_drop_reason, SKB_DROP_REASON_NO_SOCKET)) {
		__u32 zero = 0;
		__u64 *last = bpf_map_lookup_elem(&rst_skb, &zero);

		/* tcp_v4_rcv answered it with an RST first: already reported. Forgotten
		 * once matched: the address is reused (fclones), and a later NO_SOCKET
		 * drop of another packet there must not be skipped. */
		if (last && *last == (__u64)skb) {
			*last = 0;
			return;
		}
	}

	/* A SYN still owned by its connecting socket is matched here. */
	if (sk && (f = flow_get(sk))) {
		f->drops++;
		f->drop_reason = reason;
		return;
	}
	e->ts = bpf_ktime_get_boot_ns();
	if (!local_attempt(e, e->ts))
		return;
	e->type = CT_REC_DROP;
	e->has_reason = 1;
	e->reason = reason;
	e->netns = skb_netns(skb);
	if (!evidence_netns_wanted(e->netns, e->family, e->saddr, e->daddr))
		return;
	emit(e, sizeof(*e));
}

/*
 * A packet dropped: for an established connection followed, a SYN of an
 * attempt this host made, an incoming SYN. Most drops are of neither.
 */
SEC("tp_btf/kfree_skb")
int BPF_PROG(handle_kfree_skb, struct sk_buff *skb, void *location, enum skb_drop_reason reason)
{
	struct ct_evidence e = {};
	const struct sock *sk;

	if (reason == SKB_NOT_DROPPED_YET)
		return 0;
	if (bpf_core_enum_value_exists(enum skb_drop_reason, SKB_CONSUMED) &&
	    reason == bpf_core_enum_value(enum skb_drop_reason, SKB_CONSUMED))
		return 0;
	sk = skb->sk;	/* a direct load: skb is the tracepoint's BTF argument */
	/* a packet of an established connection: its state, if followed */
	if (sk)
		estab_note_drop(sk, reason);
	if (!parse_skb(skb, &e) || !(e.tcp_flags & CT_TCP_SYN) || !port_wanted(e.sport, e.dport))
		return 0;
	/* the SYN-ACK, the SYN this host sent, or a SYN it received */
	syn_dropped(skb, sk, &e, reason);
	/* a SYN this host sends still has its socket: that is an outgoing attempt */
	if ((targ_dir & CT_DIR_IN) && !sk && syn_only(&e))
		in_syn_dropped(skb, &e, reason);
	return 0;
}

/*
 * The packet in skb is a SYN (not a SYN-ACK) of an attempt this host made,
 * within the port filter: e is filled with it and stamped now.
 */
static __always_inline bool syn_of_local_attempt(const struct sk_buff *skb,
						 struct ct_evidence *e)
{
	if (!skb || !parse_skb(skb, e) || !(e->tcp_flags & CT_TCP_SYN) ||
	    (e->tcp_flags & CT_TCP_ACK))
		return false;
	if (!port_wanted(e->sport, e->dport))
		return false;
	e->ts = bpf_ktime_get_boot_ns();
	return local_attempt(e, e->ts);
}

/* An RST answering the SYN e of an attempt this host made (stamped): the evidence. */
static __always_inline void rst_for_syn(const struct sock *sk, const struct sk_buff *skb,
					struct ct_evidence *e, __u32 reason, bool has_reason)
{
	__u32 zero = 0;
	__u64 *last;

	e->type = CT_REC_RST_SENT;
	if (has_reason) {
		e->reason = reason;
		e->has_reason = 1;
	}
	e->netns = sk ? sk_netns(sk) : skb_netns(skb);
	if (!evidence_netns_wanted(e->netns, e->family, e->saddr, e->daddr))
		return;
	emit(e, sizeof(*e));
	last = bpf_map_lookup_elem(&rst_skb, &zero);
	if (last)
		*last = (__u64)skb;
}

/*
 * This host sent an RST: in answer to a SYN of an attempt it made (evidence),
 * for an established socket (established.bpf.h), in answer to an incoming SYN
 * (inbound.bpf.h). skb is NULL for an RST a socket sends as it closes.
 */
SEC("tp_btf/tcp_send_reset")
int BPF_PROG(handle_send_reset, const struct sock *sk, const struct sk_buff *skb)
{
	struct ct_evidence e = {};
	bool has_reason = false, syn;
	__u32 reason = 0;

	/* The reason argument exists since 6.10, together with its enum. */
	if (bpf_core_type_exists(enum sk_rst_reason)) {
		reason = (__u32)ctx[2];
		has_reason = true;
	}
	/* Only an RST answering a SYN says something about a connect attempt. */
	syn = skb && parse_skb(skb, &e) && (e.tcp_flags & CT_TCP_SYN) &&
	      !(e.tcp_flags & CT_TCP_ACK) && port_wanted(e.sport, e.dport);
	if (syn) {
		e.ts = bpf_ktime_get_boot_ns();
		if (local_attempt(&e, e.ts))
			rst_for_syn(sk, skb, &e, reason, has_reason);
	}
	if (sk)
		estab_send_reset(sk, skb, reason, has_reason);
	if (syn && (targ_dir & CT_DIR_IN) && syn_only(&e))
		in_syn_reset(sk, skb, &e);
	return 0;
}

/*
 * This host sent an ICMP error (icmp:icmp_send, on 6.1 and 6.18): e.g.
 * an nft `reject with icmp ...` answering a SYN. The skb is the offending
 * packet, its network header the SYN's IP header. IPv4 only: icmpv6_send
 * has no tracepoint.
 */
SEC("tp_btf/icmp_send")
int BPF_PROG(handle_icmp_send, const struct sk_buff *skb, int type, int code)
{
	struct ct_evidence e = {};

	if (!syn_of_local_attempt(skb, &e))
		return 0;
	e.type = CT_REC_ICMP_SENT;
	e.has_reason = 1;
	e.reason = (type & 0xff) << 8 | (code & 0xff);
	e.netns = skb_netns(skb);
	if (!evidence_netns_wanted(e.netns, e.family, e.saddr, e.daddr))
		return 0;
	emit(&e, sizeof(e));
	return 0;
}
