/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Kernel symbols from /proc/kallsyms (root sees real addresses). */
#ifndef CONNTRACE_KSYM_H
#define CONNTRACE_KSYM_H

#include <stdint.h>

/*
 * [lo, hi) of kernel function name: its address and the first higher
 * address listed after it, read from fd (a kallsyms listing, the kernel's
 * symbols sorted by address) only as far as that line. 0, -ENOENT if name
 * is absent (or last), -EPERM if the addresses are hidden (all zero:
 * kptr_restrict), -errno if reading fails.
 */
int ksym_range_fd(int fd, const char *name, uint64_t *lo, uint64_t *hi);
/* The same from /proc/kallsyms; -errno if it cannot be opened. */
int ksym_range_kernel(const char *name, uint64_t *lo, uint64_t *hi);

#endif
