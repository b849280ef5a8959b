/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Which service, container or pod a flow belongs to, from its owner's cgroup
 * v2 id (bpf_get_current_cgroup_id() at connect(): the inode number of the
 * cgroup's directory on the cgroup2 mount).
 *
 *	cg_attrib_parse()	pure: a cgroup path -> unit, container id, pod UID
 *	cg_mount_find()		pure: the cgroup2 mount point from mountinfo text
 *	cg_cache_*()		id -> path, resolved on a miss and kept
 */
#ifndef CONNTRACE_CGROUP_H
#define CONNTRACE_CGROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CG_UNIT_MAX	256	/* a systemd unit name is at most 255 bytes */
#define CG_ID_LEN	64	/* a container id: 64 hex digits */
#define CG_UID_MAX	36	/* a pod UID: 8-4-4-4-12, or 32 hex for a static pod */

/* What a cgroup path says; an empty string where it says nothing. */
struct cg_attrib {
	char unit[CG_UNIT_MAX];		/* nearest *.service or *.scope not a container's */
	char container_id[CG_ID_LEN + 1];
	char pod_uid[CG_UID_MAX + 1];	/* with dashes, as Kubernetes writes it */
};

/*
 * path is relative to the cgroup2 mount, as /proc/PID/cgroup shows it
 * ("/system.slice/nginx.service"). Never fails: a is zeroed first.
 */
void cg_attrib_parse(const char *path, struct cg_attrib *a);

/*
 * The mount point of the cgroup2 hierarchy from /proc/self/mountinfo's text
 * (octal escapes undone): the one that shows the whole hierarchy (its root
 * directory's inode is the root cgroup's id, 1), else the first. 0, or
 * -ENOENT when none is mounted, -ENAMETOOLONG.
 */
int cg_mount_find(FILE *mountinfo, char *buf, size_t sz);

/*
 * The cgroup v2 path of process pid from /proc/PID/cgroup (its "0::" line):
 * 0, -ENOENT (gone, or no cgroup2 hierarchy), -ENAMETOOLONG.
 */
int cg_of_pid(int pid, char *buf, size_t sz);

enum cg_state {
	CG_UNKNOWN,	/* no id (an evicted flow), no cgroup2 mount, or unreadable */
	CG_FOUND,
	CG_REMOVED,	/* the cgroup was removed before it could be resolved */
};

struct cg_info {
	uint64_t id;
	enum cg_state state;
	char *path;		/* CG_FOUND: relative to the mount, "/" for the root */
	struct cg_attrib a;	/* CG_FOUND: what the path says */
};

struct cg_cache;

/* mount: the cgroup2 mount point; NULL or "" for none. NULL with errno. */
struct cg_cache *cg_cache_new(const char *mount);
void cg_cache_free(struct cg_cache *c);
/*
 * The cgroup with this id; never NULL (CG_UNKNOWN for id 0 or without a
 * mount). Valid until the next call. Ids are never reused, so what is found
 * (or found removed) is kept.
 */
const struct cg_info *cg_cache_get(struct cg_cache *c, uint64_t id);

/*
 * --cgroup PATH: absolute (under mount) or relative to it, to the cgroup's
 * id (its directory's inode) and level (0 for the root). 0 or -errno, with a
 * one-line message in err.
 */
int cg_target(const char *mount, const char *arg, uint64_t *id, uint32_t *level,
	      char *err, size_t errsz);

#endif
