/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The collector's privileges (privileges.c), apart from collector.c for its size. */
#ifndef CONNTRACE_PRIVILEGES_H
#define CONNTRACE_PRIVILEGES_H

#include <stddef.h>
#include "collector.h"

/* Privileges and BTF, before anything is opened: exit status 1. */
int check_system(struct collector_error *e);
/* Drops to an unprivileged user after the BPF side is set up. */
int drop_privileges(const char *user, char *errmsg, size_t errsz);

#endif
