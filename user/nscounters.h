/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The verdict stream's view of network namespaces' TcpExt counters
 * (ListenOverflows, ListenDrops), for overflow.h's one definition of a listen
 * overflow: the counters are per namespace, read from inside it, so the
 * collector enters the namespace (setns) for the moment of the read, found by
 * its inode among /run/netns and /proc/PID/ns/net (as `conntrace listen`
 * does, listen_proc.c).
 *
 * Increments are counted from conntrace's start for the namespaces that
 * existed then (nscounters_open() reads them all) and from its creation for
 * a namespace made since. A namespace is told apart from an earlier one that
 * had its inode by its cookie (SO_NETNS_COOKIE, never reused).
 */
#ifndef CONNTRACE_NSCOUNTERS_H
#define CONNTRACE_NSCOUNTERS_H

#include <stdint.h>
#include <linux/types.h>

struct nscounters;

/* Reads every namespace's counters now (needs CAP_SYS_ADMIN); NULL: ENOMEM. */
struct nscounters *nscounters_open(void);
/*
 * overflow_ops.ns_counters: the increments of namespace netns since the
 * previous call for it. -errno when it cannot be found or entered (then a
 * line on stderr, once per namespace, says its overflows are counted by
 * sk_drops, an upper bound).
 */
int nscounters_read(void *nc, __u32 netns, uint64_t *d_overflows, uint64_t *d_drops);
/* overflow_ops.ns_free */
void nscounters_free(void *nc);

#endif
