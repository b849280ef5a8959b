/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Kernel enum values to names, read from the running kernel's BTF, because
 * values such as enum skb_drop_reason differ between kernels.
 */
#ifndef CONNTRACE_KENUM_H
#define CONNTRACE_KENUM_H

#include <stdint.h>

struct btf;
struct kenum;

/* Loads enum `name`, stripping `prefix` from each value's name. NULL with
 * errno ENOENT if the kernel has no such enum. */
struct kenum *kenum_load(const struct btf *btf, const char *name, const char *prefix);
void kenum_free(struct kenum *k);
/* Name of a value, or NULL. Matches ct_name_fn: ctx is the struct kenum. */
const char *kenum_name(uint32_t value, void *k);
/* Value of a name (prefix stripped), or -1. */
int64_t kenum_value(const struct kenum *k, const char *name);

#endif
