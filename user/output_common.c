// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <arpa/inet.h>
#include <stdio.h>
#include <time.h>
#include "output.h"

void fmt_addr(char *buf, size_t sz, uint8_t family, const uint8_t *addr)
{
	if (!inet_ntop(family == CT_AF_INET ? AF_INET : AF_INET6, addr, buf, sz))
		snprintf(buf, sz, "?");
}

void fmt_endpoint(char *buf, size_t sz, uint8_t family, const uint8_t *addr, uint16_t port)
{
	char a[INET6_ADDRSTRLEN];

	fmt_addr(a, sizeof(a), family, addr);
	snprintf(buf, sz, family == CT_AF_INET ? "%s:%u" : "[%s]:%u", a, port);
}

void fmt_rfc3339(char *buf, size_t sz, uint64_t real_ns)
{
	time_t secs = real_ns / 1000000000ULL;
	struct tm tm;

	gmtime_r(&secs, &tm);
	snprintf(buf, sz, "%04d-%02d-%02dT%02d:%02d:%02d.%09lluZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		 (unsigned long long)(real_ns % 1000000000ULL));
}
