/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * conntrace check HOST:PORT: try the connection, say why it failed and what
 * to do about it.
 *
 * check.c         the command: options, resolving, the attempts, output
 * check_nft.c     nftables: a temporary table tracing only the probe's own
 *                 packets, the trace read from netlink, the rule's text
 * check_facts.c   what the advice needs from this host: listeners (by
 *                 sock_diag, in this netns and the named ones), their
 *                 owners, sysctls, the route lookup
 * check_advice.c  pure: HOST:PORT parsing, cause + facts -> what to do
 */
#ifndef CONNTRACE_CHECK_H
#define CONNTRACE_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "correlate.h"

/* Exit statuses of `conntrace check` (its --help and docs/conntrace.8 say them). */
#define CHECK_EXIT_CONNECTED	0
#define CHECK_EXIT_FAILURE	1	/* could not run: privilege, kernel, interrupted */
#define CHECK_EXIT_USAGE	2
#define CHECK_EXIT_NOT_CONNECTED 3

/* `conntrace check ...` (argv[0] is "check"): returns the exit status. */
int check_main(int argc, char **argv);

struct check_target {
	char host[256];		/* without the brackets of an IPv6 address */
	uint16_t port;
	bool literal6;		/* written [ADDR]: must be an IPv6 address */
};

/* Parses HOST:PORT. 0, or -EINVAL with one line in err. */
int check_parse_target(const char *s, struct check_target *t, char *err, size_t errsz);

/* How long the kernel tries a SYN with tcp_syn_retries retransmits, in s. */
unsigned check_syn_wait_s(unsigned syn_retries);

/* The rule (or chain policy) whose verdict dropped or rejected the probe. */
struct check_nft_hit {
	bool found;
	bool policy;		/* the chain's policy, not a rule */
	char family[16];	/* ip, ip6, inet, ... */
	char table[64];
	char chain[64];
	uint64_t handle;
	char verdict[16];	/* drop, reject (a reject is a drop after its reply) */
	char rule[512];		/* as nft lists it; "" when not found */
};

/* A listening socket, from sock_diag. */
struct check_listener {
	char netns[64];		/* "" for this one; else the name in /run/netns */
	char addr[64];		/* ADDR:PORT, IPv6 in brackets */
	uint32_t queue, queue_max;	/* accept queue now and its max (backlog) */
	uint64_t sock_ino;
	int pid;		/* 0: not known */
	char comm[16];
};

#define CHECK_MAX_LISTENERS 8

/* What the advice for one attempt rests on, gathered after its verdict. */
struct check_facts {
	char dest[80];			/* ADDR:PORT */
	bool nft_tried;			/* the probe's packets were traced */
	char nft_note[160];		/* why they could not be, or "" */
	struct check_nft_hit hit;
	struct check_listener listeners[CHECK_MAX_LISTENERS];
	int nr_listeners;
	uint32_t somaxconn;		/* 0: not read */
	char route[256];		/* the route lookup's answer, one line */
	int syn_retries;		/* -1: not read */
	double timeout_s;		/* --timeout */
};

/* Lines of "what to do": each NUL-terminated, at most CHECK_ADVICE_LINES. */
#define CHECK_ADVICE_LINES 8
#define CHECK_ADVICE_LEN 512
struct check_advice {
	int n;
	char line[CHECK_ADVICE_LINES][CHECK_ADVICE_LEN];
};

/* The cause's "what to do" from the facts alone. */
void check_advise(const struct ct_result *r, const struct check_facts *fx, struct check_advice *a);

/* A listener in this netns serving fx->dest whose accept queue is full now, or NULL. */
const struct check_listener *check_full_listener(const struct check_facts *fx);

/* The advice when HOST does not resolve; gai is gai_strerror()'s text. */
void check_advise_unresolved(const char *host, const char *gai, struct check_advice *a);

/* ---- check_nft.c ---- */
struct check_nft;
/* Removes tables left by a check that died, then opens the trace socket and
 * makes the table. 0, or -errno with note saying why nothing can be traced. */
int check_nft_open(struct check_nft **out, char *note, size_t notesz);
/* Traces only the packets of this 5-tuple (either way); 0 or -errno. */
int check_nft_trace(struct check_nft *n, int family, const void *daddr, uint16_t dport,
		    uint16_t sport, char *note, size_t notesz);
/* Reads the trace events so far; fills hit when a rule dropped a packet. */
void check_nft_collect(struct check_nft *n, struct check_nft_hit *hit);
/* Deletes the table and closes the socket; NULL is fine. */
void check_nft_close(struct check_nft *n);

/* ---- check_facts.c ---- */
/* Listeners on port in this netns and in the named ones. */
int check_find_listeners(uint16_t port, struct check_listener *out, int max);
void check_read_sysctls(struct check_facts *fx);
/* `ip route get ADDR`'s answer in fx->route. */
void check_route_get(const char *addr, struct check_facts *fx);

#endif
