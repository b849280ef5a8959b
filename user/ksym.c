// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Kernel symbols: where a function's code lies, so that a tracepoint's
 * caller address (skb:consume_skb's location) can be matched to it.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <string.h>
#include "ksym.h"

int ksym_range(FILE *f, const char *name, uint64_t *lo, uint64_t *hi)
{
	char line[512], sym[256], type;
	uint64_t addr, start = 0, next = UINT64_MAX;
	bool found = false;

	/* two passes: the listing is not sorted by address (modules) */
	rewind(f);
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%" SCNx64 " %c %255s", &addr, &type, sym) == 3 &&
		    !strcmp(sym, name) && (type == 't' || type == 'T')) {
			start = addr;
			found = true;
			break;
		}
	}
	if (!found)
		return -ENOENT;
	if (!start)
		return -EPERM;
	rewind(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%" SCNx64, &addr) == 1 && addr > start && addr < next)
			next = addr;
	if (next == UINT64_MAX)
		return -ENOENT;
	*lo = start;
	*hi = next;
	return 0;
}

int ksym_range_kernel(const char *name, uint64_t *lo, uint64_t *hi)
{
	FILE *f = fopen("/proc/kallsyms", "re");
	int err;

	if (!f)
		return -errno;
	err = ksym_range(f, name, lo, hi);
	fclose(f);
	return err;
}
