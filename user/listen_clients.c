// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * conntrace listen, the pure part of the SYN queue view: the kernel's SYN
 * queue limit, and the ranking of the remote clients whose SYNs a listener
 * dropped. No libbpf, no system calls: unit-tested (tests/unit/test_listen_syn.c).
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "listen.h"

uint32_t listen_syn_queue_max(uint32_t max_ack_backlog, uint32_t max_syn_backlog,
			      uint32_t syncookies)
{
	uint64_t full = (uint64_t)max_ack_backlog + 1, unproven;

	if (syncookies == 2)
		return 0;
	if (syncookies)
		return full > UINT32_MAX ? UINT32_MAX : (uint32_t)full;
	/* tcp_conn_request(): refused once max_syn - qlen < max_syn >> 2 */
	unproven = (uint64_t)max_syn_backlog - (max_syn_backlog >> 2) + 1;
	if (unproven < full)
		full = unproven;
	return full > UINT32_MAX ? UINT32_MAX : (uint32_t)full;
}

/* By address (family first), then port: one client's records are adjacent. */
static int cmp_rec(const void *pa, const void *pb)
{
	const struct listen_drop_rec *a = pa, *b = pb;
	int c;

	if (a->family != b->family)
		return a->family < b->family ? -1 : 1;
	c = memcmp(a->addr, b->addr, sizeof(a->addr));
	if (c)
		return c;
	return a->port < b->port ? -1 : a->port > b->port;
}

static int cmp_client(const void *pa, const void *pb)
{
	const struct listen_top_client *a = pa, *b = pb;
	uint64_t ta = a->accept_queue_full + a->syn_queue_full;
	uint64_t tb = b->accept_queue_full + b->syn_queue_full;

	if (ta != tb)
		return ta > tb ? -1 : 1;
	if (a->accept_queue_full != b->accept_queue_full)
		return a->accept_queue_full > b->accept_queue_full ? -1 : 1;
	if (a->family != b->family)
		return a->family < b->family ? -1 : 1;
	return memcmp(a->addr, b->addr, sizeof(a->addr));
}

size_t listen_rank_clients(struct listen_drop_rec *recs, size_t n,
			   struct listen_top_client *out, size_t max, size_t *nout)
{
	struct listen_top_client *all;
	size_t i, nall = 0;
	int last_port = -1;

	*nout = 0;
	if (!n)
		return 0;
	qsort(recs, n, sizeof(*recs), cmp_rec);
	all = calloc(n, sizeof(*all));
	if (!all)
		return 0;
	for (i = 0; i < n; i++) {
		const struct listen_drop_rec *r = &recs[i];
		struct listen_top_client *c = nall ? &all[nall - 1] : NULL;

		if (!r->accept_queue_full && !r->syn_queue_full)
			continue; /* nothing lost: not a client of this view */
		if (!c || c->family != r->family || memcmp(c->addr, r->addr, sizeof(r->addr))) {
			c = &all[nall++];
			c->family = r->family;
			memcpy(c->addr, r->addr, sizeof(c->addr));
			last_port = -1;
		}
		/* sorted by port within an address: a repeated port counts once */
		if (r->port != last_port)
			c->ports++;
		last_port = r->port;
		c->accept_queue_full += r->accept_queue_full;
		c->syn_queue_full += r->syn_queue_full;
	}
	qsort(all, nall, sizeof(*all), cmp_client);
	*nout = nall < max ? nall : max;
	memcpy(out, all, *nout * sizeof(*out));
	free(all);
	return nall;
}

size_t listen_format_client(const struct listen_top_client *c, char *buf, size_t sz)
{
	char a[INET6_ADDRSTRLEN];
	int n;

	if (!inet_ntop(c->family == AF_INET6 ? AF_INET6 : AF_INET, c->addr, a, sizeof(a)))
		snprintf(a, sizeof(a), "?");
	n = snprintf(buf, sz, "%s (%" PRIu32 " port%s): %" PRIu64 " SYN%s dropped, %" PRIu64
		     " accept_queue_full, %" PRIu64 " syn_queue_full", a, c->ports,
		     c->ports == 1 ? "" : "s", c->accept_queue_full + c->syn_queue_full,
		     c->accept_queue_full + c->syn_queue_full == 1 ? "" : "s",
		     c->accept_queue_full, c->syn_queue_full);
	return n < 0 ? 0 : (size_t)n;
}
