// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * systemd's notify protocol through libsystemd's sd_notify(). The watchdog
 * is pinged from the loop that drains the ring, not from a thread of its
 * own, so a collector stuck anywhere in that loop stops the pings and
 * systemd restarts it.
 */
#include <stdbool.h>
#include <stdio.h>
#include <systemd/sd-daemon.h>
#include "service.h"

/* Process-wide, like $NOTIFY_SOCKET itself. */
static uint64_t watchdog_ns;	/* half of WatchdogSec=; 0: no watchdog */
static uint64_t last_ping_ns;

void service_ready(void)
{
	uint64_t usec = 0;

	/* > 0: WATCHDOG_USEC is set (and WATCHDOG_PID, if set, is this process) */
	if (sd_watchdog_enabled(0, &usec) > 0)
		watchdog_ns = usec * 1000 / 2;
	sd_notify(0, "READY=1\nSTATUS=tracing TCP connection attempts");
}

void service_watchdog(uint64_t now_ns)
{
	if (!watchdog_ns || now_ns - last_ping_ns < watchdog_ns)
		return;
	last_ping_ns = now_ns;
	sd_notify(0, "WATCHDOG=1");
}

void service_stopping(void)
{
	sd_notify(0, "STOPPING=1\nSTATUS=writing the pending attempts and the summary");
}
