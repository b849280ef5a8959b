/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Reading a packet from its skb, for the parts that see packets without a
 * socket (evidence.bpf.c, inbound.bpf.c). Include after conntrace.bpf.h.
 */
#ifndef CONNTRACE_SKB_BPF_H
#define CONNTRACE_SKB_BPF_H

/*
 * Addresses, ports and TCP flags of the packet in an skb, from its network
 * header. Returns false for anything but TCP over IPv4/IPv6. skb must be a
 * tracing program's BTF argument: its fields are read by direct loads (the
 * verifier's exception-handled loads, cheaper than probe_read calls); the
 * packet's bytes still need bpf_probe_read_kernel.
 */
static __always_inline bool parse_skb(const struct sk_buff *skb, struct ct_evidence *e)
{
	unsigned char *head = skb->head;
	__u16 nh = skb->network_header;
	__u8 vhl, proto, tcp[14];
	__u32 thoff;

	if (nh == (__u16)~0U)
		return false;
	if (bpf_probe_read_kernel(&vhl, 1, head + nh))
		return false;
	if ((vhl >> 4) == 4) {
		struct iphdr ip;

		if (bpf_probe_read_kernel(&ip, sizeof(ip), head + nh))
			return false;
		proto = ip.protocol;
		thoff = nh + (vhl & 0xf) * 4;
		e->family = AF_INET;
		__builtin_memcpy(e->saddr, &ip.saddr, 4);
		__builtin_memcpy(e->daddr, &ip.daddr, 4);
	} else if ((vhl >> 4) == 6) {
		struct ipv6hdr ip6;

		if (bpf_probe_read_kernel(&ip6, sizeof(ip6), head + nh))
			return false;
		proto = ip6.nexthdr;	/* extension headers before TCP: not followed */
		thoff = nh + sizeof(ip6);
		e->family = AF_INET6;
		__builtin_memcpy(e->saddr, &ip6.saddr, 16);
		__builtin_memcpy(e->daddr, &ip6.daddr, 16);
	} else {
		return false;
	}
	if (proto != IPPROTO_TCP)
		return false;
	if (bpf_probe_read_kernel(tcp, sizeof(tcp), head + thoff))
		return false;
	e->sport = (tcp[0] << 8) | tcp[1];
	e->dport = (tcp[2] << 8) | tcp[3];
	e->tcp_flags = tcp[13];
	return true;
}

static __always_inline __u32 skb_netns(const struct sk_buff *skb)
{
	struct sock *sk = BPF_CORE_READ(skb, sk);
	struct net_device *dev;

	if (sk)
		return sk_netns(sk);
	dev = BPF_CORE_READ(skb, dev);
	if (dev)
		return BPF_CORE_READ(dev, nd_net.net, ns.inum);
	return 0;
}

#endif
