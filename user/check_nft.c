// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * conntrace check: which nftables rule dropped or rejected the probe.
 *
 * Only the probe's own packets are affected: a table of ours,
 * inet conntrace_check_PID, has two chains ahead of every filter chain
 * (priority -350, before raw and conntrack) whose only rules set nftrace on
 * the probe's 5-tuple, either way. The kernel then reports each rule those
 * packets meet on the NFNLGRP_NFTRACE netlink group, which this file reads
 * itself (subscribed before the SYN leaves, so nothing is missed). Every
 * check in the netns receives every trace event, so a packet is taken as
 * ours by the ports in its dumped TCP header, and its trace id then ties
 * the later events to it. A DROP verdict names family, table, chain and
 * rule handle, and `nft -a list chain` gives the rule's text. The table goes away at the end of check,
 * when it is interrupted (check.c stops on the collector's stop flag), and,
 * when a check was killed, at the start of the next one.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/netlink.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nf_tables.h>
#include "check.h"

#define TABLE_PREFIX "conntrace_check_"
#define NFT_OUT_MAX 65536

#define MAX_IDS 32

struct check_nft {
	int fd;			/* NETLINK_NETFILTER, NFNLGRP_NFTRACE */
	char table[48];
	bool made;		/* the table exists */
	/* trace ids of the packets whose TCP header has our ports: another
	 * check in this netns traces its own packets, and their events reach
	 * us too */
	uint32_t ids[MAX_IDS];
	unsigned nr_ids;
	uint16_t sport, dport;	/* the attempt's */
};

/* Runs nft with args (and script on its stdin); its output in out. */
static int run_nft(const char *const args[], const char *script, char *out, size_t outsz)
{
	int in[2], res[2], status;
	size_t len = 0;
	ssize_t n;
	pid_t pid;

	if (pipe2(in, O_CLOEXEC))
		return -errno;
	if (pipe2(res, O_CLOEXEC)) {
		status = -errno;
		close(in[0]);
		close(in[1]);
		return status;
	}
	pid = fork();
	if (pid < 0) {
		status = -errno;
		for (int i = 0; i < 2; i++) {
			close(in[i]);
			close(res[i]);
		}
		return status;
	}
	if (!pid) {
		char *argv[12] = { "nft" };

		for (int i = 0; args[i] && i < 10; i++)
			argv[i + 1] = (char *)args[i];
		dup2(in[0], 0);
		dup2(res[1], 1);
		dup2(res[1], 2);
		execvp("nft", argv);
		_exit(127);
	}
	close(in[0]);
	close(res[1]);
	if (script && write(in[1], script, strlen(script)) < 0)
		status = 0;	/* nft then fails on its input, and says so */
	close(in[1]);
	while (out && len + 1 < outsz && (n = read(res[0], out + len, outsz - 1 - len)) > 0)
		len += n;
	if (out)
		out[len] = '\0';
	close(res[0]);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
		return -ENOENT;
	return WIFEXITED(status) && !WEXITSTATUS(status) ? 0 : -EIO;
}

/* Tables named conntrace_check_PID whose check is gone (killed): delete them. */
static void remove_stale(void)
{
	const char *args[] = { "list", "tables", NULL };
	char *out = malloc(NFT_OUT_MAX), *line, *save = NULL;

	if (!out || run_nft(args, NULL, out, NFT_OUT_MAX)) {
		free(out);
		return;
	}
	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char fam[16], name[64];
		long pid;

		if (sscanf(line, "table %15s %63s", fam, name) != 2 ||
		    strncmp(name, TABLE_PREFIX, strlen(TABLE_PREFIX)))
			continue;
		pid = strtol(name + strlen(TABLE_PREFIX), NULL, 10);
		if (pid > 0 && (pid == getpid() || (kill(pid, 0) && errno == ESRCH))) {
			const char *del[] = { "delete", "table", fam, name, NULL };

			run_nft(del, NULL, NULL, 0);
		}
	}
	free(out);
}

int check_nft_open(struct check_nft **out, char *note, size_t notesz)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	unsigned grp = NFNLGRP_NFTRACE;
	int rcvbuf = 1 << 20;
	struct check_nft *n;

	*out = NULL;
	remove_stale();
	n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	snprintf(n->table, sizeof(n->table), TABLE_PREFIX "%d", (int)getpid());
	n->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_NETFILTER);
	if (n->fd < 0 || bind(n->fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    setsockopt(n->fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &grp, sizeof(grp))) {
		int err = -errno;

		snprintf(note, notesz, "nftables trace socket: %s", strerror(-err));
		check_nft_close(n);
		return err;
	}
	setsockopt(n->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	*out = n;
	return 0;
}

int check_nft_trace(struct check_nft *n, int family, const void *daddr, uint16_t dport,
		    uint16_t sport, char *note, size_t notesz)
{
	const char *args[] = { "-f", "-", NULL };
	const char *ip = family == AF_INET6 ? "ip6" : "ip";
	char addr[64], script[2048], out[1024];
	int err;

	inet_ntop(family, daddr, addr, sizeof(addr));
	/* the SYN leaves by output; on loopback it comes back by prerouting,
	 * as does the reply from elsewhere */
	snprintf(script, sizeof(script),
		 "table inet %1$s {\n"
		 " chain out { type filter hook output priority -350; policy accept; }\n"
		 " chain pre { type filter hook prerouting priority -350; policy accept; }\n"
		 "}\n"
		 "flush chain inet %1$s out\n"
		 "flush chain inet %1$s pre\n"
		 "add rule inet %1$s out %2$s daddr %3$s tcp sport %4$u tcp dport %5$u meta nftrace set 1\n"
		 "add rule inet %1$s out %2$s saddr %3$s tcp sport %5$u tcp dport %4$u meta nftrace set 1\n"
		 "add rule inet %1$s pre %2$s daddr %3$s tcp sport %4$u tcp dport %5$u meta nftrace set 1\n"
		 "add rule inet %1$s pre %2$s saddr %3$s tcp sport %5$u tcp dport %4$u meta nftrace set 1\n",
		 n->table, ip, addr, sport, dport);
	n->made = true;	/* even a failed load may have made part of it: delete it */
	n->sport = sport;
	n->dport = dport;
	err = run_nft(args, script, out, sizeof(out));
	if (err) {
		out[strcspn(out, "\n")] = '\0';
		snprintf(note, notesz, "nft could not add the trace table: %s",
			 err == -ENOENT ? "nft is not installed" : out);
	}
	return err;
}

static const char *family_name(int f)
{
	switch (f) {
	case NFPROTO_INET:	return "inet";
	case NFPROTO_IPV4:	return "ip";
	case NFPROTO_IPV6:	return "ip6";
	case NFPROTO_ARP:	return "arp";
	case NFPROTO_BRIDGE:	return "bridge";
	case NFPROTO_NETDEV:	return "netdev";
	}
	return "?";
}

/* `nft -a list chain`'s line for handle h, without the handle comment. */
static void rule_text(struct check_nft_hit *h)
{
	const char *args[] = { "-a", "list", "chain", h->family, h->table, h->chain, NULL };
	char *out = malloc(NFT_OUT_MAX), *line, *save = NULL, tag[48];

	if (!out || run_nft(args, NULL, out, NFT_OUT_MAX)) {
		free(out);
		return;
	}
	snprintf(tag, sizeof(tag), " # handle %" PRIu64, h->handle);
	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		size_t len = strlen(line), tl = strlen(tag);

		if (len < tl || strcmp(line + len - tl, tag))
			continue;
		line[len - tl] = '\0';
		line += strspn(line, " \t");
		snprintf(h->rule, sizeof(h->rule), "%s", line);
		break;
	}
	free(out);
	if (strstr(h->rule, "reject"))
		snprintf(h->verdict, sizeof(h->verdict), "reject");
}

struct trace_ev {
	const char *table, *chain;
	uint64_t handle;
	bool has_handle, has_verdict, has_id, has_ports;
	uint32_t type, id;
	int32_t verdict;
	uint16_t sport, dport;	/* from the transport header, when dumped */
};

static void parse_verdict(const struct nlattr *nest, struct trace_ev *ev)
{
	const struct nlattr *a = (const void *)((const char *)nest + NLA_HDRLEN);
	int rem = nest->nla_len - NLA_HDRLEN;

	for (; rem >= NLA_HDRLEN && a->nla_len >= NLA_HDRLEN && a->nla_len <= rem;
	     rem -= NLA_ALIGN(a->nla_len), a = (const void *)((const char *)a + NLA_ALIGN(a->nla_len)))
		if ((a->nla_type & NLA_TYPE_MASK) == NFTA_VERDICT_CODE && a->nla_len >= NLA_HDRLEN + 4) {
			uint32_t v;

			memcpy(&v, (const char *)a + NLA_HDRLEN, 4);
			ev->verdict = (int32_t)ntohl(v);
			ev->has_verdict = true;
		}
}

/* One NFT_MSG_TRACE: its attributes into ev. */
static void parse_trace(const struct nlmsghdr *nh, struct trace_ev *ev)
{
	const struct nlattr *a = (const void *)((const char *)NLMSG_DATA(nh) +
						NLMSG_ALIGN(sizeof(struct nfgenmsg)));
	int rem = (int)nh->nlmsg_len - NLMSG_SPACE(sizeof(struct nfgenmsg));

	for (; rem >= NLA_HDRLEN && a->nla_len >= NLA_HDRLEN && a->nla_len <= rem;
	     rem -= NLA_ALIGN(a->nla_len), a = (const void *)((const char *)a + NLA_ALIGN(a->nla_len))) {
		const char *p = (const char *)a + NLA_HDRLEN;
		int plen = a->nla_len - NLA_HDRLEN;
		uint64_t h;
		uint32_t t;

		switch (a->nla_type & NLA_TYPE_MASK) {
		case NFTA_TRACE_TABLE:
			ev->table = plen > 0 && memchr(p, 0, plen) ? p : NULL;
			break;
		case NFTA_TRACE_CHAIN:
			ev->chain = plen > 0 && memchr(p, 0, plen) ? p : NULL;
			break;
		case NFTA_TRACE_RULE_HANDLE:
			if (plen >= 8) {
				memcpy(&h, p, 8);
				ev->handle = be64toh(h);
				ev->has_handle = true;
			}
			break;
		case NFTA_TRACE_TYPE:
			if (plen >= 4) {
				memcpy(&t, p, 4);
				ev->type = ntohl(t);
			}
			break;
		case NFTA_TRACE_TRANSPORT_HEADER:
			if (plen >= 4) {	/* TCP: source port, then destination */
				ev->sport = (uint8_t)p[0] << 8 | (uint8_t)p[1];
				ev->dport = (uint8_t)p[2] << 8 | (uint8_t)p[3];
				ev->has_ports = true;
			}
			break;
		case NFTA_TRACE_ID:
			if (plen >= 4) {
				memcpy(&t, p, 4);
				ev->id = ntohl(t);
				ev->has_id = true;
			}
			break;
		case NFTA_TRACE_VERDICT:
			parse_verdict(a, ev);
			break;
		}
	}
}

static bool is_ours(const struct check_nft *n, uint32_t id)
{
	for (unsigned i = 0; i < n->nr_ids && i < MAX_IDS; i++)
		if (n->ids[i] == id)
			return true;
	return false;
}

/* A DROP verdict outside our table: the rule (or policy) that dropped it. */
static void take(struct check_nft *n, const struct nlmsghdr *nh, struct check_nft_hit *hit)
{
	const struct nfgenmsg *g = NLMSG_DATA(nh);
	struct trace_ev ev = { 0 };

	if (nh->nlmsg_len < NLMSG_SPACE(sizeof(*g)) ||
	    NFNL_SUBSYS_ID(nh->nlmsg_type) != NFNL_SUBSYS_NFTABLES ||
	    NFNL_MSG_TYPE(nh->nlmsg_type) != NFT_MSG_TRACE)
		return;
	parse_trace(nh, &ev);
	if (!ev.table || !ev.chain || !ev.has_id)
		return;
	/* the first event of a packet in each hook carries its headers (as
	 * `nft monitor trace` prints them): an id is ours when they show our
	 * ports, either way */
	if (ev.has_ports && !is_ours(n, ev.id) &&
	    ((ev.sport == n->sport && ev.dport == n->dport) ||
	     (ev.sport == n->dport && ev.dport == n->sport)))
		n->ids[n->nr_ids++ % MAX_IDS] = ev.id;
	if (!strcmp(ev.table, n->table) || !is_ours(n, ev.id) || !ev.has_verdict ||
	    ev.verdict != NF_DROP || hit->found)
		return;
	if (ev.type != NFT_TRACETYPE_RULE && ev.type != NFT_TRACETYPE_POLICY)
		return;
	hit->found = true;
	hit->policy = ev.type == NFT_TRACETYPE_POLICY;
	snprintf(hit->family, sizeof(hit->family), "%s", family_name(g->nfgen_family));
	snprintf(hit->table, sizeof(hit->table), "%s", ev.table);
	snprintf(hit->chain, sizeof(hit->chain), "%s", ev.chain);
	snprintf(hit->verdict, sizeof(hit->verdict), "drop");
	hit->handle = ev.handle;
	if (!hit->policy && ev.has_handle)
		rule_text(hit);
}

void check_nft_collect(struct check_nft *n, struct check_nft_hit *hit)
{
	static char buf[65536] __attribute__((aligned(4)));
	ssize_t len;

	memset(hit, 0, sizeof(*hit));
	if (!n)
		return;
	n->nr_ids = 0;	/* learned again from this attempt's events, queued in order */
	/* ENOBUFS: the socket overflowed and events were lost; read on */
	while ((len = recv(n->fd, buf, sizeof(buf), 0)) > 0 ||
	       (len < 0 && (errno == EINTR || errno == ENOBUFS))) {
		const struct nlmsghdr *nh = (const void *)buf;
		int rem = len;

		if (len < 0)
			continue;
		for (; NLMSG_OK(nh, rem); nh = NLMSG_NEXT(nh, rem))
			take(n, nh, hit);
	}
}

void check_nft_close(struct check_nft *n)
{
	if (!n)
		return;
	if (n->made) {
		const char *del[] = { "delete", "table", "inet", n->table, NULL };

		run_nft(del, NULL, NULL, 0);
		n->made = false;
	}
	if (n->fd >= 0)
		close(n->fd);
	free(n);
}
