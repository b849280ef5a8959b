/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Running under systemd with Type=notify: READY=1 once the probes are
 * attached, WATCHDOG=1 from the main loop when WatchdogSec= is set,
 * STOPPING=1 on the way out. Without $NOTIFY_SOCKET each is a no-op.
 */
#ifndef CONNTRACE_SERVICE_H
#define CONNTRACE_SERVICE_H

#include <stdint.h>

/* The probes are attached and the start record written. */
void service_ready(void);
/* From the main loop, now in CLOCK_BOOTTIME ns: pings at half the watchdog interval. */
void service_watchdog(uint64_t now_ns);
/* Stop requested: the pending flows and the summary follow. */
void service_stopping(void);

#endif
