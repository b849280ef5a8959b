/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Kernel symbols from /proc/kallsyms (root sees real addresses). */
#ifndef CONNTRACE_KSYM_H
#define CONNTRACE_KSYM_H

#include <stdint.h>
#include <stdio.h>

/*
 * [lo, hi) of kernel function name: its address and the next higher
 * symbol's, read from f (a kallsyms listing). 0, -ENOENT if name is absent,
 * -EPERM if the addresses are hidden (all zero: kptr_restrict).
 */
int ksym_range(FILE *f, const char *name, uint64_t *lo, uint64_t *hi);
/* The same from /proc/kallsyms; -errno if it cannot be opened. */
int ksym_range_kernel(const char *name, uint64_t *lo, uint64_t *hi);

#endif
