/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Kernel symbols from /proc/kallsyms (root sees real addresses). */
#ifndef CONNTRACE_KSYM_H
#define CONNTRACE_KSYM_H

#include <pthread.h>
#include <stdbool.h>
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

/*
 * ksym_range_kernel() in a thread, so that start-up goes on meanwhile:
 * _start() begins it (0, or -errno if no thread: then _wait() reads in the
 * caller), _wait() gives its result, _cancel() stops it unread. One of the
 * two must follow every _start(), whatever it returned.
 */
struct ksym_lookup {
	const char *name;
	pthread_t thread;
	bool started;
	bool cancel;	/* set by _cancel(), read by the thread: atomically */
	int err;
	uint64_t lo, hi;
};
int ksym_lookup_start(struct ksym_lookup *l, const char *name);
int ksym_lookup_wait(struct ksym_lookup *l, uint64_t *lo, uint64_t *hi);
void ksym_lookup_cancel(struct ksym_lookup *l);

#endif
