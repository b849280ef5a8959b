// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Writes the fuzzer's seed corpus: one file per scenario the correlator
 * knows (each verdict and cause, held flows, overflowing evidence, hostile
 * names, malformed records), in fuzz_one.c's input format, built from the
 * record structs of conntrace.h so a layout change is followed.
 *
 *   mkseeds DIR       (make fuzz-seeds: DIR is tests/fuzz/corpus)
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/types.h>
#include "conntrace.h"

#define MS	1000000ULL
#define T0	(999000 * MS)	/* 999 s after boot; the fuzzer's clock starts at 1000 s */
#define NETNS	4026532901u

/* Reasons as fuzz_one.c's fake kernel enums name them (value % table size). */
#define DROP_NO_SOCKET		1
#define DROP_NETFILTER		2
#define DROP_LISTEN_OVERFLOW	3
#define DROP_OTHER		5
#define RST_NO_SOCKET		1

enum { OP_FLOW, OP_EVIDENCE, OP_RAW, OP_TICK, OP_FLUSH };

static uint8_t buf[65536];
static size_t len;

static void put(const void *p, size_t n)
{
	if (len + n > sizeof(buf))
		abort();
	memcpy(buf + len, p, n);
	len += n;
}

static void op(uint8_t o)
{
	put(&o, 1);
}

static void begin(uint8_t config)
{
	len = 0;
	put(&config, 1);
}

static void finish(const char *dir, const char *name)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(buf, 1, len, f) != len || fclose(f)) {
		perror(path);
		exit(1);
	}
}

static struct ct_flow v4flow(uint16_t sport, uint16_t dport, uint8_t state, int err,
			     uint64_t start, uint64_t end)
{
	struct ct_flow f = {
		.type = CT_REC_FLOW, .family = CT_AF_INET, .state = state, .sport = sport,
		.dport = dport, .pid = 4242, .tid = 4242, .netns = NETNS, .err = err,
		.cgroup_id = 77, .ts_start = start, .ts_end = end,
	};
	uint32_t lo = htonl(0x7f000001);

	memcpy(f.saddr, &lo, 4);
	memcpy(f.daddr, &lo, 4);
	snprintf(f.comm, sizeof(f.comm), "ctc-seed");
	return f;
}

static struct ct_evidence v4ev(uint8_t type, uint16_t sport, uint16_t dport, uint8_t flags,
			       uint32_t reason, uint64_t ts)
{
	struct ct_evidence e = {
		.type = type, .family = CT_AF_INET, .tcp_flags = flags, .has_reason = 1,
		.sport = sport, .dport = dport, .netns = NETNS, .reason = reason, .ts = ts,
	};
	uint32_t lo = htonl(0x7f000001);

	memcpy(e.saddr, &lo, 4);
	memcpy(e.daddr, &lo, 4);
	return e;
}

static void flow(const struct ct_flow *f)
{
	op(OP_FLOW);
	put(f, sizeof(*f));
}

static void ev(const struct ct_evidence *e)
{
	op(OP_EVIDENCE);
	put(e, sizeof(*e));
}

static void tick(uint32_t us)
{
	op(OP_TICK);
	put(&us, sizeof(us));
}

/* One seed per verdict and cause. */
static void seeds_verdicts(const char *dir)
{
	struct ct_flow f;
	struct ct_evidence e;

	/* refused: this host answered the SYN with an RST (no listener) */
	begin(0);
	e = v4ev(CT_REC_RST_SENT, 40001, 20001, CT_TCP_SYN, RST_NO_SOCKET, T0 + MS / 10);
	ev(&e);
	f = v4flow(40001, 20001, CT_TCP_CLOSE, 111, T0, T0 + MS / 5);
	f.flags = CT_F_RST_RCVD;
	f.ts_rst = T0 + MS / 5;
	flow(&f);
	finish(dir, "refused-no-listener");

	/* refused by a peer: an RST this host did not send */
	begin(0);
	f = v4flow(40002, 20002, CT_TCP_CLOSE, 111, T0, T0 + MS);
	f.flags = CT_F_RST_RCVD;
	f.ts_rst = T0 + MS;
	flow(&f);
	finish(dir, "refused-rst-received");

	/* timeout: SYNs dropped by netfilter, one in the kernel's own count */
	begin(0);
	for (int i = 0; i < 3; i++) {
		e = v4ev(CT_REC_DROP, 40003, 20003, CT_TCP_SYN, DROP_NETFILTER,
			 T0 + i * 1000 * MS);
		ev(&e);
	}
	f = v4flow(40003, 20003, CT_TCP_CLOSE, 110, T0, T0 + 7000 * MS);
	f.syn_retrans = 5;
	for (int i = 0; i < 5; i++)
		f.retrans_us[i] = (i + 1) * 1000000;
	f.drops = 1;
	f.drop_reason = DROP_NETFILTER;
	f.err_report = 110;
	f.ts_err = T0 + 7000 * MS;
	flow(&f);
	finish(dir, "timeout-netfilter");

	/* timeout with nothing seen here: lost beyond this host */
	begin(0);
	f = v4flow(40004, 20004, CT_TCP_CLOSE, 110, T0, T0 + 7000 * MS);
	f.syn_retrans = 8;
	for (int i = 0; i < CT_MAX_RETRANS; i++)
		f.retrans_us[i] = (i + 1) * 1000000;
	flow(&f);
	finish(dir, "timeout-no-synack");

	/* slow: the listener's accept queue was full while the SYNs arrived */
	begin(0);
	e = v4ev(CT_REC_LISTEN_FULL, 20005, 0, 0, 0, T0 - 100 * MS);
	e.queue = 3;
	e.queue_max = 1;
	ev(&e);
	f = v4flow(40005, 20005, CT_TCP_ESTABLISHED, 0, T0, T0 + 1100 * MS);
	f.syn_retrans = 1;
	f.retrans_us[0] = 1000000;
	flow(&f);
	e.queue = 0;
	e.ts = T0 + 2000 * MS;
	ev(&e);
	finish(dir, "slow-accept-queue-full");

	/* slow handshake, ok, and a listener overflow drop */
	begin(0);
	f = v4flow(40006, 20006, CT_TCP_ESTABLISHED, 0, T0, T0 + 1500 * MS);
	flow(&f);
	f = v4flow(40007, 20007, CT_TCP_ESTABLISHED, 0, T0, T0 + MS / 10);
	flow(&f);
	e = v4ev(CT_REC_DROP, 40008, 20008, CT_TCP_SYN, DROP_LISTEN_OVERFLOW, T0 + MS);
	ev(&e);
	f = v4flow(40008, 20008, CT_TCP_ESTABLISHED, 0, T0, T0 + 1000 * MS);
	f.syn_retrans = 1;
	f.retrans_us[0] = 1000000;
	flow(&f);
	finish(dir, "slow-and-ok");

	/* connect() failing at once: no route, no port, another error */
	begin(0);
	f = v4flow(0, 20009, CT_TCP_CLOSE, 101, T0, T0);
	f.flags = CT_F_CONNECT_ERR;
	flow(&f);
	f.err = 99;
	flow(&f);
	f.err = 1;
	f.sport = 40009;
	flow(&f);
	finish(dir, "connect-errors");
}

/* Abandoned, pending, evicted, dual-stack and held flows. */
static void seeds_lifecycle(const char *dir)
{
	struct ct_flow f;
	struct ct_evidence e;

	/* abandoned while SYNs were dropped, ICMP unreachable, unknown errno */
	begin(0);
	e = v4ev(CT_REC_DROP, 40010, 20010, CT_TCP_SYN, DROP_OTHER, T0 + MS);
	ev(&e);
	f = v4flow(40010, 20010, CT_TCP_CLOSE, 0, T0, T0 + 300 * MS);
	flow(&f);
	f = v4flow(40011, 20011, CT_TCP_CLOSE, 113, T0, T0 + 300 * MS);
	flow(&f);
	f = v4flow(40012, 20012, CT_TCP_CLOSE, 4095, T0, T0 + 300 * MS);
	flow(&f);
	finish(dir, "abandoned-unreachable");

	/* pending at exit, evicted and untracked flows */
	begin(0);
	f = v4flow(40013, 20013, CT_TCP_SYN_SENT, 0, T0, T0 + 2000 * MS);
	f.flags = CT_F_PENDING;
	f.syn_retrans = 1;
	flow(&f);
	f = v4flow(40014, 20014, CT_TCP_CLOSE, 0, 0, T0);
	f.flags = CT_F_EVICTED;
	flow(&f);
	f.flags = CT_F_UNTRACKED;
	f.state = CT_TCP_ESTABLISHED;
	flow(&f);
	op(OP_FLUSH);
	finish(dir, "pending-evicted-untracked");

	/* IPv6 socket to a v4-mapped address: its packets are IPv4 */
	begin(0);
	e = v4ev(CT_REC_RST_SENT, 40015, 20015, CT_TCP_SYN, RST_NO_SOCKET, T0 + MS);
	ev(&e);
	f = v4flow(40015, 20015, CT_TCP_CLOSE, 111, T0, T0 + 2 * MS);
	f.family = CT_AF_INET6;
	memset(f.saddr, 0, 16);
	f.saddr[10] = f.saddr[11] = 0xff;
	f.saddr[12] = 127;
	f.saddr[15] = 1;
	memcpy(f.daddr, f.saddr, 16);
	flow(&f);
	f.daddr[10] = 0;	/* plain IPv6 ::127.0.0.1 */
	flow(&f);
	finish(dir, "ipv6-v4-mapped");

	/* held flows: late evidence, the clock, a flush */
	begin(1);
	f = v4flow(40016, 20016, CT_TCP_CLOSE, 111, T0, T0 + MS);
	flow(&f);
	e = v4ev(CT_REC_RST_SENT, 40016, 20016, CT_TCP_SYN, RST_NO_SOCKET, T0 + 2 * MS);
	ev(&e);
	tick(60000);
	f = v4flow(40017, 20017, CT_TCP_CLOSE, 110, T0, T0 + 900 * MS);
	flow(&f);
	op(OP_FLUSH);
	finish(dir, "held-late-evidence");
}

/* ICMP errors, simultaneous open, listeners re-reported full. */
static void seeds_new_rules(const char *dir)
{
	struct ct_flow f;
	struct ct_evidence e;

	/* ICMP errors: a soft error on an abandoned socket, one this host sent */
	begin(0);
	e = v4ev(CT_REC_ICMP_SENT, 40018, 20018, CT_TCP_SYN, 3 << 8 | 3, T0 + MS / 10);
	ev(&e);
	f = v4flow(40018, 20018, CT_TCP_CLOSE, 0, T0, T0 + 1500 * MS);
	f.err_soft = 111;
	flow(&f);
	f = v4flow(40019, 20019, CT_TCP_CLOSE, 0, T0, T0 + 1500 * MS);
	f.err_soft = 113;
	flow(&f);
	f = v4flow(40020, 20020, CT_TCP_CLOSE, 0, T0, T0 + 1500 * MS);
	f.err_soft = 71;	/* EPROTO */
	flow(&f);
	finish(dir, "icmp-errors");

	/* a simultaneous open, and a listener re-reported full */
	begin(0);
	f = v4flow(40021, 40021, CT_TCP_ESTABLISHED, 0, T0, T0 + 1200 * MS);
	f.flags = CT_F_SIMOPEN;
	f.syn_retrans = 1;
	f.retrans_us[0] = 1000000;
	flow(&f);
	for (int i = 0; i < 3; i++) {
		e = v4ev(CT_REC_LISTEN_FULL, 20022, 0, 0, 0, T0 + i * 1000 * MS);
		e.queue = 2 + i;
		e.queue_max = 1;
		ev(&e);
	}
	f = v4flow(40022, 20022, CT_TCP_CLOSE, 110, T0, T0 + 7000 * MS);
	f.syn_retrans = 2;
	flow(&f);
	finish(dir, "simopen-listener-periods");
}

/* Bounds and hostile input: overflowing evidence, escape sequences, malformed records. */
static void seeds_bounds(const char *dir)
{
	struct ct_flow f;
	struct ct_evidence e;

	/* the evidence store overflows (max 8) and expires (1 s), no enum names */
	begin(2 | 8 | 32);
	for (int i = 0; i < 20; i++) {
		e = v4ev(CT_REC_DROP, 41000 + i, 20018, CT_TCP_SYN | CT_TCP_ACK, DROP_NETFILTER,
			 T0 + i * MS);
		ev(&e);
	}
	tick(2000000);
	f = v4flow(41019, 20018, CT_TCP_CLOSE, 110, T0, T0 + 20 * MS);
	flow(&f);
	finish(dir, "evidence-overflow-expiry");

	/* a task name made of terminal escapes and bytes that are not UTF-8 */
	begin(4 | 16);
	f = v4flow(40019, 20019, CT_TCP_CLOSE, 111, T0, T0 + MS);
	memcpy(f.comm, "\x1b]0;x\x07\x9b\xff\xc2\x9b\\\"\n\t\r", 15);
	f.comm[15] = 'Z';	/* no terminating NUL */
	flow(&f);
	finish(dir, "hostile-comm-colour");
	begin(4);
	flow(&f);
	finish(dir, "hostile-comm");

	/* malformed: short, empty, unknown type, bad family, time backwards */
	begin(0);
	op(OP_RAW);
	put("\x03\x01\x02", 4);		/* length 3: type, family, flags */
	op(OP_RAW);
	put("\x00", 1);			/* length 0 */
	op(OP_RAW);
	put("\x01\x09", 2);		/* length 1: type 9 */
	f = v4flow(40020, 20020, CT_TCP_CLOSE, 111, T0 + 5 * MS, T0);
	flow(&f);
	f.family = 7;
	flow(&f);
	e = v4ev(CT_REC_DROP, 1, 2, 0, 0, 0);
	e.family = 0;
	ev(&e);
	finish(dir, "malformed");
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : "tests/fuzz/corpus";

	seeds_verdicts(dir);
	seeds_lifecycle(dir);
	seeds_new_rules(dir);
	seeds_bounds(dir);
	return 0;
}
