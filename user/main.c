// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * conntrace: one verdict per TCP connection attempt, from kernel tracepoints.
 *
 * `conntrace listen ...` is the accept-queue view (listen.c); anything else
 * is the verdict stream, the collector (collector.c).
 */
#include <malloc.h>
#include <string.h>
#include "check.h"
#include "collector.h"
#include "listen.h"

int main(int argc, char **argv)
{
	/*
	 * Fixed thresholds, not glibc's sliding ones: freeing the kernel's BTF
	 * (5 MiB, mmapped) would otherwise raise the mmap threshold to 5 MiB and
	 * the trim threshold to 10 MiB, so later big buffers land in the heap and
	 * the heap is never given back. Setting them turns the sliding off.
	 */
	mallopt(M_MMAP_THRESHOLD, 128 * 1024);
	mallopt(M_TRIM_THRESHOLD, 256 * 1024);
	if (argc > 1 && !strcmp(argv[1], "listen"))
		return listen_main(argc - 1, argv + 1);
	if (argc > 1 && !strcmp(argv[1], "check"))
		return check_main(argc - 1, argv + 1);
	return collector_main(argc, argv);
}
