/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Accept-queue overflows per listener for the verdict stream: the kernel
 * lists the listeners it has found full with their sk_drops; this turns the
 * readings, one a second, into overflow counts since the previous one.
 * Pure C, no libbpf.
 */
#ifndef CONNTRACE_OVERFLOW_H
#define CONNTRACE_OVERFLOW_H

#include <linux/types.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "conntrace.h"

struct overflow_report {
	const struct ct_listener *l;
	uint32_t overflows;	/* since the previous reading (or since found full) */
	uint64_t total;		/* since conntrace found it full */
	uint64_t since_ns;	/* CLOCK_BOOTTIME of the previous reading */
};

struct overflow_table;

struct overflow_table *overflow_new(void);
void overflow_free(struct overflow_table *t);
/* Begins a reading taken at now (CLOCK_BOOTTIME ns). */
void overflow_begin(struct overflow_table *t, uint64_t now);
/* One listener of the reading: true, with *r filled, if it dropped SYNs since. */
bool overflow_update(struct overflow_table *t, const struct ct_listener *l,
		     struct overflow_report *r);
/* Ends the reading: listeners it did not list have closed and are forgotten. */
void overflow_end(struct overflow_table *t);
size_t overflow_count(const struct overflow_table *t);

#endif
