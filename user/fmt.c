// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Hand-made formatters for the writers: integers, addresses, timestamps. */
#include <arpa/inet.h>
#include <linux/types.h>
#include <string.h>
#include <time.h>
#include "conntrace.h"
#include "fmt.h"

/* Two digits at a time: half the divisions of a digit-by-digit loop. */
static const char digits2[201] =
	"0001020304050607080910111213141516171819"
	"2021222324252627282930313233343536373839"
	"4041424344454647484950515253545556575859"
	"6061626364656667686970717273747576777879"
	"8081828384858687888990919293949596979899";

char *fmt_u64(char *p, uint64_t v)
{
	char tmp[FMT_U64_MAX];
	char *t = tmp + sizeof(tmp);
	size_t n;

	while (v >= 100) {
		unsigned d = (v % 100) * 2;

		v /= 100;
		*--t = digits2[d + 1];
		*--t = digits2[d];
	}
	if (v >= 10) {
		*--t = digits2[v * 2 + 1];
		*--t = digits2[v * 2];
	} else {
		*--t = '0' + v;
	}
	n = tmp + sizeof(tmp) - t;
	memcpy(p, t, n);
	return p + n;
}

char *fmt_i64(char *p, int64_t v)
{
	if (v >= 0)
		return fmt_u64(p, v);
	*p++ = '-';
	return fmt_u64(p, -(uint64_t)v);	/* INT64_MIN negated in unsigned: exact */
}

static char *put2(char *p, unsigned v)
{
	p[0] = digits2[v * 2];
	p[1] = digits2[v * 2 + 1];
	return p + 2;
}

char *fmt_ip(char *p, uint8_t family, const uint8_t *addr)
{
	char a[INET6_ADDRSTRLEN];
	size_t n;

	if (family == CT_AF_INET) {
		for (int i = 0; i < 4; i++) {
			if (i)
				*p++ = '.';
			p = fmt_u64(p, addr[i]);
		}
		return p;
	}
	/* IPv6's zero-run compression is inet_ntop's job; it is not the common case */
	if (!inet_ntop(AF_INET6, addr, a, sizeof(a)))
		strcpy(a, "?");
	n = strlen(a);
	memcpy(p, a, n);
	return p + n;
}

char *fmt_ip_port(char *p, uint8_t family, const uint8_t *addr, uint16_t port)
{
	if (family != CT_AF_INET)
		*p++ = '[';
	p = fmt_ip(p, family, addr);
	if (family != CT_AF_INET)
		*p++ = ']';
	*p++ = ':';
	return fmt_u64(p, port);
}

/*
 * The date and time of day change once a second, the nanoseconds every
 * line: gmtime_r runs once a second. Per thread, so no lock is needed.
 */
static __thread struct {
	int64_t secs;
	char text[20];	/* 2026-11-21T19:40:01 */
} ts_cache = { .secs = -1 };

char *fmt_ts(char *p, uint64_t real_ns)
{
	int64_t secs = real_ns / 1000000000ULL;
	uint32_t ns = real_ns % 1000000000ULL;

	if (secs != ts_cache.secs) {
		time_t t = secs;
		struct tm tm;
		char *q = ts_cache.text;

		gmtime_r(&t, &tm);
		q = put2(q, (tm.tm_year + 1900) / 100 % 100);
		q = put2(q, (tm.tm_year + 1900) % 100);
		*q++ = '-';
		q = put2(q, tm.tm_mon + 1);
		*q++ = '-';
		q = put2(q, tm.tm_mday);
		*q++ = 'T';
		q = put2(q, tm.tm_hour);
		*q++ = ':';
		q = put2(q, tm.tm_min);
		*q++ = ':';
		put2(q, tm.tm_sec);
		ts_cache.secs = secs;
	}
	memcpy(p, ts_cache.text, sizeof(ts_cache.text) - 1);
	p += sizeof(ts_cache.text) - 1;
	*p++ = '.';
	p[0] = '0' + ns / 100000000;
	p = put2(p + 1, ns / 1000000 % 100);
	p = put2(p, ns / 10000 % 100);
	p = put2(p, ns / 100 % 100);
	p = put2(p, ns % 100);
	*p++ = 'Z';
	return p;
}

char *fmt_fixed(char *p, uint64_t value, uint64_t unit, unsigned decimals)
{
	static const uint64_t pow10[] = { 1, 10, 100, 1000 };
	uint64_t scale, whole, frac, step, rem;

	if (decimals > 3)
		decimals = 3;
	scale = pow10[decimals];
	/* value / (unit / scale), rounded half to even at the last digit shown as
	 * printf rounds a tie */
	step = unit / scale;
	if (!step)
		step = 1;
	whole = value / step;	/* in units of 10^-decimals */
	rem = value % step;
	if (rem > step - rem || (rem == step - rem && (whole & 1)))
		whole++;
	frac = whole % scale;
	p = fmt_u64(p, whole / scale);
	if (!decimals)
		return p;
	*p++ = '.';
	for (unsigned d = decimals; d--; ) {
		p[d] = '0' + frac % 10;
		frac /= 10;
	}
	return p + decimals;
}
