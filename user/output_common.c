// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The writers' shared formatters, as NUL-terminated strings (see fmt.h). */
#include <string.h>
#include "fmt.h"
#include "output.h"

/* Formats into a scratch buffer with room for any value, then copies what fits. */
static void copy_out(char *buf, size_t sz, const char *s, size_t n)
{
	if (!sz)
		return;
	if (n >= sz)
		n = sz - 1;
	memcpy(buf, s, n);
	buf[n] = '\0';
}

void fmt_addr(char *buf, size_t sz, uint8_t family, const uint8_t *addr)
{
	char tmp[FMT_IP_MAX + 1];

	copy_out(buf, sz, tmp, fmt_ip(tmp, family, addr) - tmp);
}

void fmt_endpoint(char *buf, size_t sz, uint8_t family, const uint8_t *addr, uint16_t port)
{
	char tmp[FMT_ENDPOINT_MAX + 1];

	copy_out(buf, sz, tmp, fmt_ip_port(tmp, family, addr, port) - tmp);
}

void fmt_rfc3339(char *buf, size_t sz, uint64_t real_ns)
{
	char tmp[FMT_TS_MAX + 1];

	copy_out(buf, sz, tmp, fmt_ts(tmp, real_ns) - tmp);
}
