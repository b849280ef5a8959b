// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <string.h>
#include "correlate.h"
#include "filter.h"
#include "tracer.h"

/*
 * Filters: -p/--pid, --port, --netns, --comm, --cgroup.
 *
 * The kernel applies them first (conntrace.bpf.c), so most records never
 * reach user space. The collector applies them again, here, for the
 * records the kernel could not judge: a flow whose table entry was evicted
 * comes back without its owner or ports, and a listener reading has a port
 * but no owning process, so the owner filters hide listeners.
 */
bool filter_owner_filtered(const struct tracer_config *tc)
{
	return tc->ntgids || tc->comm[0] || tc->cgroup_id;
}

bool filter_flow_wanted(const struct tracer_config *tc, const struct ct_result *r)
{
	const struct ct_flow *f = &r->flow;

	if (!tracer_tgid_wanted(tc, f->pid))
		return false;
	if (tc->comm[0] && strncmp(f->comm, tc->comm, sizeof(f->comm)))
		return false;
	/* the kernel judged --cgroup for every flow whose owner it knew */
	if (tc->cgroup_id && (f->flags & CT_F_NO_HISTORY))
		return false;
	/* inbound: pid and comm are the listener's, its cgroup is not known */
	if (tc->cgroup_id && r->inbound)
		return false;
	if (tc->netns && f->netns != tc->netns)
		return false;
	return tracer_port_wanted(tc, f->sport, f->dport);
}

bool filter_listener_wanted(const struct tracer_config *tc, const struct ct_listener *l)
{
	if (filter_owner_filtered(tc))
		return false;	/* a listener's owner is not known here */
	if (tc->netns && l->netns != tc->netns)
		return false;
	return tracer_port_wanted(tc, l->port, l->port);
}
