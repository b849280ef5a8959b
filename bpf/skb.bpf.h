/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Reading a packet from its skb, for the parts that see packets without a
 * socket (evidence.bpf.c, inbound.bpf.c). Include after conntrace.bpf.h.
 */
#ifndef CONNTRACE_SKB_BPF_H
#define CONNTRACE_SKB_BPF_H

/* IPv6's header and TCP's first 24 bytes: one read covers most packets (a
 * power of two: offsets into it are masked, which the verifier follows) */
#define PARSE_READ 64

/*
 * Addresses, ports and TCP flags of the packet in an skb, from its network
 * header. Returns false for anything but TCP over IPv4/IPv6. skb must be a
 * tracing program's BTF argument: its fields are read by direct loads (the
 * verifier's exception-handled loads, cheaper than probe_read calls). The
 * packet's bytes need bpf_probe_read_kernel: one read of PARSE_READ bytes
 * (within the head buffer, whose skb_shared_info follows the data), a second
 * only for IPv4 options longer than 30 bytes.
 */
static __always_inline bool parse_skb(const struct sk_buff *skb, struct ct_evidence *e)
{
	unsigned char *head = skb->head;
	__u16 nh = skb->network_header;
	__u8 buf[PARSE_READ], proto, tcp[14];
	__u32 thoff, m = PARSE_READ - 1;

	if (nh == (__u16)~0U)
		return false;
	if (bpf_probe_read_kernel(buf, sizeof(buf), head + nh))
		return false;
	if ((buf[0] >> 4) == 4) {
		struct iphdr *ip = (struct iphdr *)buf;

		proto = ip->protocol;
		thoff = (buf[0] & 0xf) * 4;
		e->family = AF_INET;
		__builtin_memcpy(e->saddr, &ip->saddr, 4);
		__builtin_memcpy(e->daddr, &ip->daddr, 4);
	} else if ((buf[0] >> 4) == 6) {
		struct ipv6hdr *ip6 = (struct ipv6hdr *)buf;

		proto = ip6->nexthdr;	/* extension headers before TCP: not followed */
		thoff = sizeof(*ip6);
		e->family = AF_INET6;
		__builtin_memcpy(e->saddr, &ip6->saddr, 16);
		__builtin_memcpy(e->daddr, &ip6->daddr, 16);
	} else {
		return false;
	}
	if (proto != IPPROTO_TCP)
		return false;
	if (thoff + sizeof(tcp) <= PARSE_READ) {
		e->sport = (buf[thoff & m] << 8) | buf[(thoff + 1) & m];
		e->dport = (buf[(thoff + 2) & m] << 8) | buf[(thoff + 3) & m];
		e->tcp_flags = buf[(thoff + 13) & m];
		return true;
	}
	if (bpf_probe_read_kernel(tcp, sizeof(tcp), head + nh + thoff))
		return false;
	e->sport = (tcp[0] << 8) | tcp[1];
	e->dport = (tcp[2] << 8) | tcp[3];
	e->tcp_flags = tcp[13];
	return true;
}

/* skb: a tracing program's BTF argument (direct loads, as in parse_skb) */
static __always_inline __u32 skb_netns(const struct sk_buff *skb)
{
	struct sock *sk = skb->sk;
	struct net_device *dev;

	if (sk)
		return sk_netns(sk);
	dev = skb->dev;
	if (dev)
		return dev->nd_net.net->ns.inum;
	return 0;
}

#endif
