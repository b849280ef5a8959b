/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The running kernel's build configuration, what conntrace needs of it. */
#ifndef CONNTRACE_KCONFIG_H
#define CONNTRACE_KCONFIG_H

/*
 * CONFIG_HZ (jiffies per second) from /proc/config.gz or
 * /boot/config-$(uname -r); 0 when neither says.
 */
unsigned kconfig_hz(void);

#endif
