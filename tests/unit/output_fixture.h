/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The writer tests' fixture: results built to fill every column, buffers
 * owned by the test, and writers captured with open_memstream(). Included by
 * test_output.c and test_output_json.c (static inline: each uses some of it).
 */
#ifndef CONNTRACE_OUTPUT_FIXTURE_H
#define CONNTRACE_OUTPUT_FIXTURE_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "output.h"

#define CHECK(cond, ...) do { if (!(cond)) fail_msg(__VA_ARGS__); } while (0)

#define MAX_WIDTH 124
/* 2023-11-14T22:13:20.123456789Z */
#define TS_NS 1700000000123456789ULL

/* 15 bytes, 16 with the NUL: the longest task name the kernel keeps */
#define LONG_COMM "abcdefghijklmno"
/* 16 bytes and no NUL: quotes, newline, ESC, invalid UTF-8, DEL, a C1 control */
#define HOSTILE_COMM "\"q\n\x1b[31m\xff\\\t\x7f\xc2\x9bZZ"

/* ---- building results ---- */

static inline void put_addr(uint8_t dst[16], const char *s)
{
	memset(dst, 0, 16);
	if (inet_pton(strchr(s, ':') ? AF_INET6 : AF_INET, s, dst) != 1)
		fail_msg("test bug: '%s' is not an address", s);
}

/* The widest IPv4 line: 7-digit pid, 15-byte comm, 21-column endpoints. */
static inline struct ct_result make_result(enum ct_verdict v, enum ct_cause c)
{
	struct ct_result r = { .verdict = v, .cause = c };
	struct ct_flow *f = &r.flow;

	f->type = CT_REC_FLOW;
	f->family = CT_AF_INET;
	f->state = v == CT_V_OK || v == CT_V_SLOW ? CT_TCP_ESTABLISHED : CT_TCP_CLOSE;
	f->sport = 65535;
	f->dport = 65534;
	f->tid = 4194303;
	f->pid = 4194304;
	f->netns = 4026531840u;
	f->cgroup_id = 12345;
	f->syn_retrans = 127;		/* net.ipv4.tcp_syn_retries at its maximum */
	f->err = v == CT_V_TIMEOUT ? ETIMEDOUT : 0;
	put_addr(f->saddr, "255.255.255.255");
	put_addr(f->daddr, "255.255.255.254");
	memcpy(f->comm, LONG_COMM, sizeof(LONG_COMM));
	r.duration_ns = 127ULL * 1000000000ULL;
	return r;
}

/* A realistic TIMEOUT with evidence, for the JSON fields. */
static inline struct ct_result timeout_result(void)
{
	struct ct_result r = { .verdict = CT_V_TIMEOUT, .cause = CT_C_LOCAL_DROP };
	struct ct_flow *f = &r.flow;

	/* the detail quotes a kernel enum name: a hostile one must come out escaped */
	r.facts = (struct ct_facts){ .end = CT_END_CLOSED, .err = ETIMEDOUT, .syn_retrans = 1,
				     .other_drops = 1, .other_reason = "EVIL\"NAME\\",
				     .duration_ns = 7000123456ULL };
	f->type = CT_REC_FLOW;
	f->family = CT_AF_INET;
	f->state = CT_TCP_CLOSE;
	f->sport = 40000;
	f->dport = 80;
	f->tid = 4242;
	f->pid = 4240;
	f->netns = 4026531840u;
	f->cgroup_id = 9876543210ULL;
	f->syn_retrans = 1;
	f->err = ETIMEDOUT;
	put_addr(f->saddr, "10.0.0.1");
	put_addr(f->daddr, "10.0.0.2");
	memcpy(f->comm, "curl", 5);
	r.duration_ns = 7000123456ULL;
	r.nr_ev = 5;
	r.ev[0] = (struct ct_ev_item){ .t_us = 0, .kind = CT_EV_CONNECT };
	r.ev[1] = (struct ct_ev_item){ .t_us = 1000000, .kind = CT_EV_SYN_RETRANS, .n = 1 };
	r.ev[2] = (struct ct_ev_item){ .t_us = 1000100, .kind = CT_EV_DROP, .n = 1, .synack = true,
				       .reason = "NETFILTER_DROP" };
	r.ev[3] = (struct ct_ev_item){ .t_us = 7000123, .kind = CT_EV_CLOSED, .err = ETIMEDOUT };
	r.ev[4] = (struct ct_ev_item){ .t_us = INT64_MIN, .kind = CT_EV_ACCEPT_QUEUE_FULL,
				       .queue = 129, .queue_known = true, .queue_max = 128 };
	return r;
}

/*
 * Buffers a test allocates are owned by it and freed by its teardown, so a
 * failing check (which leaves the test by longjmp) leaks nothing either.
 */
#define MAX_OWNED 512
static void *owned_ptrs[MAX_OWNED];
static size_t nr_owned;

static inline void *owned(void *p)
{
	assert_non_null(p);
	assert_true(nr_owned < MAX_OWNED);
	owned_ptrs[nr_owned++] = p;
	return p;
}

static inline int free_owned(void **state)
{
	(void)state;
	while (nr_owned)
		free(owned_ptrs[--nr_owned]);
	return 0;
}

/* ---- capture ---- */

struct capture {
	char *buf;
	size_t len;
	FILE *f;
	struct writer w;
};

static inline void cap_text(struct capture *c, bool color, bool detail)
{
	c->buf = NULL;
	c->f = open_memstream(&c->buf, &c->len);
	assert_non_null(c->f);
	writer_text_init(&c->w, c->f, color, detail);
}

static inline void cap_json(struct capture *c)
{
	c->buf = NULL;
	c->f = open_memstream(&c->buf, &c->len);
	assert_non_null(c->f);
	writer_json_init(&c->w, c->f);
}

static inline char *cap_close(struct capture *c)
{
	fclose(c->f);
	return owned(c->buf);
}

static inline void write_start(struct writer *w)
{
	static const struct probe_report probes[] = {
		{ .signal = "connect", .hook = "tp_btf/inet_sock_set_state", .ok = true },
		{ .signal = "drop", .hook = "-", .ok = false, .note = "no \"kfree_skb\"\ttracepoint" },
	};
	struct start_info si = {
		.version = "1.2.3-test",
		.kernel = "6.18.0-test",
		.probes = probes,
		.nr_probes = 2,
		.pid = 777,
		.ts_real_ns = TS_NS,
	};
	int saved, devnull;

	/* text_start() greets on stderr: keep the test output readable */
	fflush(stderr);
	saved = dup(STDERR_FILENO);
	devnull = open("/dev/null", O_WRONLY);
	assert_true(saved >= 0 && devnull >= 0);
	dup2(devnull, STDERR_FILENO);
	w->ops->start(w, &si);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(devnull);
}

/* No C0 but the line ends, no DEL, no C1 control, only valid UTF-8. */
static inline void check_terminal_safe(const char *text)
{
	const unsigned char *s = (const unsigned char *)text;

	for (size_t i = 0; s[i]; i++) {
		CHECK(s[i] >= 0x20 || s[i] == '\n', "expected no raw control byte, found 0x%02x at %zu",
		      s[i], i);
		CHECK(s[i] != 0x7f, "expected no raw DEL, found one at %zu", i);
		CHECK(!(s[i] == 0xc2 && s[i + 1] >= 0x80 && s[i + 1] <= 0x9f),
		      "expected no raw C1 control, found U+%04X at %zu", s[i + 1], i);
		CHECK(s[i] != 0xff && s[i] != 0xc0 && s[i] != 0xc1,
		      "expected no invalid UTF-8 byte, found 0x%02x at %zu", s[i], i);
	}
}

#endif
