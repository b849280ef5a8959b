// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The kernel's CONFIG_HZ: the TCP socket's receive times are in jiffies, and
 * BPF has no way to learn their length (no kallsyms for data here).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <zlib.h>
#include "kconfig.h"

static unsigned hz_in(gzFile f)
{
	char line[256];
	unsigned hz = 0;

	while (gzgets(f, line, sizeof(line)))
		if (!strncmp(line, "CONFIG_HZ=", 10)) {
			hz = strtoul(line + 10, NULL, 10);
			break;
		}
	return hz;
}

unsigned kconfig_hz(void)
{
	char path[128 + sizeof(((struct utsname *)0)->release)];
	struct utsname uts;
	unsigned hz = 0;
	gzFile f;

	/* gzopen reads a plain file too: /boot/config-* is not compressed */
	f = gzopen("/proc/config.gz", "rb");
	if (f) {
		hz = hz_in(f);
		gzclose(f);
	}
	if (hz || uname(&uts))
		return hz;
	snprintf(path, sizeof(path), "/boot/config-%s", uts.release);
	f = gzopen(path, "rb");
	if (f) {
		hz = hz_in(f);
		gzclose(f);
	}
	return hz;
}
