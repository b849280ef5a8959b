// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * conntrace: one verdict per TCP connection attempt, from kernel tracepoints.
 *
 * `conntrace listen ...` is the accept-queue view (listen.c); anything else
 * is the verdict stream, the collector (collector.c).
 */
#include <string.h>
#include "check.h"
#include "collector.h"
#include "listen.h"

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "listen"))
		return listen_main(argc - 1, argv + 1);
	if (argc > 1 && !strcmp(argv[1], "check"))
		return check_main(argc - 1, argv + 1);
	return collector_main(argc, argv);
}
