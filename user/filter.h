/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef CONNTRACE_FILTER_H
#define CONNTRACE_FILTER_H

#include <stdbool.h>
#include "conntrace.h"

struct ct_result;
struct tracer_config;

/* Whether an owner filter (-p/--pid, --comm, --cgroup) is set. */
bool filter_owner_filtered(const struct tracer_config *tc);
/* Whether the options let this verdict through (an inbound one too). */
bool filter_flow_wanted(const struct tracer_config *tc, const struct ct_result *r);
/* Whether the options let this listener's readings through. */
bool filter_listener_wanted(const struct tracer_config *tc, const struct ct_listener *l);

#endif
