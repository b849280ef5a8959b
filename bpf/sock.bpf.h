/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Socket helpers shared by the BPF objects (include after vmlinux.h). */
#ifndef CONNTRACE_SOCK_BPF_H
#define CONNTRACE_SOCK_BPF_H

/*
 * sk_drops: tcp_listendrop() increments it for every SYN or ACK the listener
 * drops (full accept queue included), next to the namespace's ListenDrops;
 * tcp_v4_rcv() also adds to it when it discards a segment for the listener
 * (an ACK whose request did not become a child, so an ACK-time overflow
 * counts twice here). Kernels from 6.18 may split it into NUMA counters
 * (sk_drop_counters, used by UDP/raw): add those too.
 */
static __always_inline __u32 read_drops(const struct sock *sk)
{
	__u32 drops = BPF_CORE_READ(sk, sk_drops.counter);

	if (bpf_core_field_exists(sk->sk_drop_counters)) {
		struct numa_drop_counters *c = BPF_CORE_READ(sk, sk_drop_counters);

		if (c)
			drops += BPF_CORE_READ(c, drops0.counter) +
				 BPF_CORE_READ(c, drops1.counter);
	}
	return drops;
}

#endif
