/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Hand-made formatters for the writers' hot path (issue 11): a verdict line
 * must cost under 1 us, and a printf chain costs that alone. Each writes at
 * p, which the caller guarantees has room for the maximum stated, and returns
 * the end; none writes a NUL. Pure C, no state but a per-thread cache of the
 * date part of the last second formatted.
 */
#ifndef CONNTRACE_FMT_H
#define CONNTRACE_FMT_H

#include <stdint.h>

#define FMT_U64_MAX	20	/* 18446744073709551615 */
#define FMT_I64_MAX	20	/* -9223372036854775808 */
#define FMT_IP_MAX	45	/* the longest IPv6 text (INET6_ADDRSTRLEN - 1) */
#define FMT_ENDPOINT_MAX (FMT_IP_MAX + 8)	/* [addr]:65535 */
#define FMT_TS_MAX	30	/* 2026-11-21T19:40:01.123456789Z */

char *fmt_u64(char *p, uint64_t v);
char *fmt_i64(char *p, int64_t v);
/* IPv4 dotted quad, IPv6 as inet_ntop writes it (family: CT_AF_INET or not) */
char *fmt_ip(char *p, uint8_t family, const uint8_t *addr);
/* ADDR:PORT, IPv6 in brackets */
char *fmt_ip_port(char *p, uint8_t family, const uint8_t *addr, uint16_t port);
/* RFC 3339 UTC with nanoseconds */
char *fmt_ts(char *p, uint64_t real_ns);
/*
 * value / unit with decimals (0..3) digits after the point, rounded half to even:
 * fmt_fixed(p, 1234567, 1000000, 1) writes "1.2". At most FMT_U64_MAX + 4.
 */
char *fmt_fixed(char *p, uint64_t value, uint64_t unit, unsigned decimals);

#endif
