// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Cgroup attribution. The kernel gives a flow its owner's cgroup v2 id; what
 * an operator searches for is the systemd unit, the container or the pod, and
 * all three are spelled in the cgroup's path by the managers that made it:
 *
 *   systemd         /system.slice/nginx.service, /user.slice/.../session-3.scope
 *   Docker          /system.slice/docker-<64hex>.scope, or /docker/<64hex> (cgroupfs)
 *   containerd      .../cri-containerd-<64hex>.scope
 *   CRI-O, Podman   .../crio-<64hex>.scope, .../libpod-<64hex>.scope
 *   kubelet         /kubepods.slice/kubepods-burstable.slice/
 *                       kubepods-burstable-pod<uid with _>.slice/...,
 *                   or /kubepods/burstable/pod<uid>/<64hex> (cgroupfs driver)
 *
 * The id is the inode number of the cgroup's directory (kernfs ids are inode
 * numbers on 64-bit kernels) and doubles as a kernfs file handle, so
 * open_by_handle_at() finds the directory in one call where it is allowed
 * (CAP_DAC_READ_SEARCH); elsewhere (after --user, or a kernel without kernfs
 * handles) the tree is walked for a directory with that inode number. Ids
 * are never reused, so every answer, "removed" included, can be kept.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <linux/magic.h>
#include <unistd.h>
#include "cgroup.h"

#define CG_CACHE_SLOTS	1024	/* a power of two; emptied when 3/4 full */
#define CG_WALK_DEPTH	64
#define FILEID_KERNFS	0xfe	/* the kernel's handle type for kernfs (cgroup2) */

static bool is_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strchr("0123456789abcdef", s[i]) || !s[i])
			return false;
	return true;
}

static bool has_suffix(const char *s, size_t n, const char *suf)
{
	size_t m = strlen(suf);

	return n >= m && !memcmp(s + n - m, suf, m);
}

static bool has_prefix(const char *s, size_t n, const char *pre)
{
	size_t m = strlen(pre);

	return n >= m && !memcmp(s, pre, m);
}

/* A pod UID as it appears in a path: 32 to 36 of hex, '-' or '_'. */
static bool copy_uid(const char *s, size_t n, char *uid)
{
	if (n < 32 || n > CG_UID_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] != '-' && s[i] != '_' && !is_hex(s + i, 1))
			return false;
		/* kubelet's systemd driver writes '_' where the UID has '-' */
		uid[i] = s[i] == '_' ? '-' : s[i];
	}
	uid[n] = '\0';
	return true;
}

/* The pod of a kubepods slice, or of a pod directory under /kubepods. */
static bool pod_component(const char *s, size_t n, bool in_kubepods, char *uid)
{
	if (has_prefix(s, n, "kubepods") && has_suffix(s, n, ".slice") && n > 10) {
		/* the last "-pod" of kubepods-<qos>-pod<uid>.slice */
		for (size_t i = n - 10 + 1; i-- > 0;)
			if (!memcmp(s + i, "-pod", 4))
				return copy_uid(s + i + 4, n - 6 - (i + 4), uid);
		return false;
	}
	return in_kubepods && has_prefix(s, n, "pod") && copy_uid(s + 3, n - 3, uid);
}

/*
 * A container's own cgroup: a runtime's <prefix><64hex>.scope, or a bare
 * 64-hex directory under /docker or under a pod (the cgroupfs drivers).
 */
static bool container_component(const char *s, size_t n, bool parent_holds, char *id)
{
	static const char *const prefixes[] = { "docker-", "cri-containerd-", "crio-", "libpod-" };

	if (n == CG_ID_LEN && parent_holds && is_hex(s, n)) {
		memcpy(id, s, CG_ID_LEN);
		id[CG_ID_LEN] = '\0';
		return true;
	}
	if (!has_suffix(s, n, ".scope"))
		return false;
	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
		size_t m = strlen(prefixes[i]);

		/* crio-conmon-<id>.scope and the like are not the container: not hex */
		if (n == m + CG_ID_LEN + 6 && has_prefix(s, n, prefixes[i]) &&
		    is_hex(s + m, CG_ID_LEN)) {
			memcpy(id, s + m, CG_ID_LEN);
			id[CG_ID_LEN] = '\0';
			return true;
		}
	}
	return false;
}

void cg_attrib_parse(const char *path, struct cg_attrib *a)
{
	bool in_kubepods = false, parent_holds = false;
	const char *s = path;

	memset(a, 0, sizeof(*a));
	/* each field is the deepest that matches: a nested one is the more precise */
	while (*s) {
		size_t n = strcspn(s, "/");
		char id[CG_ID_LEN + 1], uid[CG_UID_MAX + 1];
		bool holds = false;

		if (n && container_component(s, n, parent_holds, id)) {
			memcpy(a->container_id, id, sizeof(id));
		} else if (n && pod_component(s, n, in_kubepods, uid)) {
			memcpy(a->pod_uid, uid, sizeof(uid));
			holds = true;
		} else if ((has_suffix(s, n, ".service") || has_suffix(s, n, ".scope")) &&
			   n < CG_UNIT_MAX) {
			memcpy(a->unit, s, n);
			a->unit[n] = '\0';
		}
		if (n == 6 && !memcmp(s, "docker", 6))
			holds = true;
		if (has_prefix(s, n, "kubepods"))
			in_kubepods = true;
		parent_holds = holds;
		s += n;
		s += *s == '/';
	}
}

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static int unescape(const char *s, size_t n, char *buf, size_t sz)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		char ch = s[i];

		if (ch == '\\' && i + 3 < n && strspn(s + i + 1, "01234567") >= 3) {
			ch = (char)((s[i + 1] - '0') << 6 | (s[i + 2] - '0') << 3 | (s[i + 3] - '0'));
			i += 3;
		}
		if (o + 1 >= sz)
			return -ENAMETOOLONG;
		buf[o++] = ch;
	}
	buf[o] = '\0';
	return 0;
}

/* The hierarchy's own root: the root cgroup's kernfs id, hence inode, is 1. */
static bool hierarchy_root(const char *path)
{
	struct statfs sfs;
	struct stat st;

	return !statfs(path, &sfs) && sfs.f_type == CGROUP2_SUPER_MAGIC &&
	       !stat(path, &st) && st.st_ino == 1;
}

int cg_mount_find(FILE *mountinfo, char *buf, size_t sz)
{
	char *line = NULL, path[4096];
	size_t cap = 0;
	int err = -ENOENT;

	/*
	 * id parent maj:min root mountpoint options [optional...] - fstype source super.
	 * In a container with a cgroup namespace, the runtime's cgroup2 mount
	 * shows only its own subtree: a host's hierarchy bound in (the DaemonSet
	 * does) is preferred, known by its root, else the first one is taken.
	 */
	while (getline(&line, &cap, mountinfo) > 0) {
		const char *f = line, *sep = strstr(line, " - ");
		size_t n;

		if (!sep || strncmp(sep + 3, "cgroup2 ", 8))
			continue;
		for (int i = 0; i < 4 && f; i++) {
			f = strchr(f, ' ');
			f = f ? f + 1 : NULL;
		}
		if (!f)
			continue;
		n = strcspn(f, " ");
		if (unescape(f, n, path, sizeof(path)) || strlen(path) >= sz) {
			if (err == -ENOENT)
				err = -ENAMETOOLONG;
			continue;
		}
		if (err && err != -EEXIST) {
			strcpy(buf, path);
			err = -EEXIST;	/* the first: kept unless a root comes */
		}
		if (hierarchy_root(path)) {
			strcpy(buf, path);
			err = 0;
			break;
		}
	}
	free(line);
	return err == -EEXIST ? 0 : err;
}

int cg_of_pid(int pid, char *buf, size_t sz)
{
	char path[64], *line = NULL;
	size_t cap = 0;
	int err = -ENOENT;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/cgroup", pid);
	f = fopen(path, "re");
	if (!f)
		return -ENOENT;
	/* hierarchy-id:controllers:path; cgroup v2 is hierarchy 0 with none */
	while (err == -ENOENT && getline(&line, &cap, f) > 0) {
		size_t n = strcspn(line, "\n");

		if (strncmp(line, "0::", 3))
			continue;
		err = n - 3 < sz ? 0 : -ENAMETOOLONG;
		if (!err)
			snprintf(buf, sz, "%.*s", (int)(n - 3), line + 3);
	}
	free(line);
	fclose(f);
	return err;
}

struct cg_cache {
	char *mount;		/* NULL: no cgroup2 mount */
	int mfd;		/* the mount's root directory */
	uint64_t root_id;
	bool handles;		/* open_by_handle_at() answers for this mount */
	size_t used;
	struct cg_info slot[CG_CACHE_SLOTS];
	struct cg_info miss;	/* what cg_cache_get() returns for what is not kept */
};

/* Whether this mount's file handles are kernfs ids we may open. */
static bool handles_work(int mfd, uint64_t root_id)
{
	struct {
		struct file_handle fh;
		uint64_t id;
	} h = { .fh.handle_bytes = sizeof(uint64_t) };
	int mnt_id, fd;

	if (name_to_handle_at(mfd, "", &h.fh, &mnt_id, AT_EMPTY_PATH) ||
	    h.fh.handle_type != FILEID_KERNFS || h.id != root_id)
		return false;
	fd = open_by_handle_at(mfd, &h.fh, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return false;	/* EPERM without CAP_DAC_READ_SEARCH */
	close(fd);
	return true;
}

struct cg_cache *cg_cache_new(const char *mount)
{
	struct cg_cache *c = calloc(1, sizeof(*c));
	struct stat st;

	if (!c)
		return NULL;
	c->mfd = -1;
	if (!mount || !*mount)
		return c;
	c->mfd = open(mount, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	c->mount = strdup(mount);
	if (c->mfd < 0 || !c->mount || fstat(c->mfd, &st)) {
		int err = errno;

		cg_cache_free(c);
		errno = err;
		return NULL;
	}
	c->root_id = st.st_ino;
	c->handles = handles_work(c->mfd, c->root_id);
	return c;
}

static void cache_clear(struct cg_cache *c)
{
	for (size_t i = 0; i < CG_CACHE_SLOTS; i++) {
		free(c->slot[i].path);
		c->slot[i].path = NULL;
		c->slot[i].id = 0;
	}
	c->used = 0;
}

void cg_cache_free(struct cg_cache *c)
{
	if (!c)
		return;
	cache_clear(c);
	free(c->miss.path);
	if (c->mfd >= 0)
		close(c->mfd);
	free(c->mount);
	free(c);
}

/* Depth-first search of dir for a directory whose inode is id; its path into buf. */
static int walk(int dfd, uint64_t id, char *buf, size_t len, size_t sz, int depth)
{
	DIR *d = fdopendir(dfd);
	struct dirent *e;
	int found = -ENOENT;

	if (!d) {
		close(dfd);
		return -errno;
	}
	while (found == -ENOENT && (e = readdir(d))) {
		size_t n = strlen(e->d_name);
		int sub;

		if (e->d_type != DT_DIR || !strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (len + 1 + n + 1 > sz)
			continue;
		buf[len] = '/';
		memcpy(buf + len + 1, e->d_name, n + 1);
		if (e->d_ino == id)
			found = 0;
		else if (depth < CG_WALK_DEPTH &&
			 (sub = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0)
			/* an unreadable subtree does not hold it as far as we can tell */
			found = walk(sub, id, buf, len + 1 + n, sz, depth + 1) ? -ENOENT : 0;
	}
	closedir(d);
	if (found)
		buf[len] = '\0';
	return found;
}

/* The directory of the handle id, relative to the mount: 0, -ESTALE (removed) or -errno. */
static int by_handle(struct cg_cache *c, uint64_t id, char *buf, size_t sz)
{
	struct {
		struct file_handle fh;
		uint64_t id;
	} h = { .fh.handle_bytes = sizeof(uint64_t), .fh.handle_type = FILEID_KERNFS, .id = id };
	size_t mlen = strlen(c->mount);
	char link[64], *full;
	ssize_t n;
	int fd, err = 0;

	fd = open_by_handle_at(c->mfd, &h.fh, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	full = malloc(sz + mlen);
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = full ? readlink(link, full, sz + mlen - 1) : -1;
	if (n < 0)
		err = full ? -errno : -ENOMEM;
	else if ((size_t)n < mlen || memcmp(full, c->mount, mlen) ||
		 (full[mlen] != '/' && (size_t)n != mlen))
		err = -EXDEV;	/* reached through another mount: let the walk say */
	else
		snprintf(buf, sz, "%.*s", (int)(n - mlen), full + mlen);
	free(full);
	close(fd);
	return err;
}

static void resolve(struct cg_cache *c, struct cg_info *info)
{
	char buf[4096] = "";
	int err = -ENOENT, dfd;

	info->state = CG_UNKNOWN;
	if (info->id == c->root_id) {
		err = 0;
	} else if (c->handles) {
		err = by_handle(c, info->id, buf, sizeof(buf));
		if (err == -ESTALE || err == -ENOENT) {
			info->state = CG_REMOVED;
			return;
		}
		if (err)	/* not allowed any more (--user dropped it): walk from now on */
			c->handles = false;
	}
	if (err) {
		dfd = openat(c->mfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		err = dfd < 0 ? -errno : walk(dfd, info->id, buf, 0, sizeof(buf), 0);
		if (err == -ENOENT) {
			/* the owner connected from it, so it existed: it is gone */
			info->state = CG_REMOVED;
			return;
		}
		if (err)
			return;
	}
	info->path = strdup(buf[0] ? buf : "/");
	if (!info->path)
		return;
	info->state = CG_FOUND;
	cg_attrib_parse(info->path, &info->a);
}

const struct cg_info *cg_cache_get(struct cg_cache *c, uint64_t id)
{
	size_t i = (id * 0x9E3779B97F4A7C15ULL) >> 54;	/* 10 bits: CG_CACHE_SLOTS */
	struct cg_info *info;

	free(c->miss.path);
	memset(&c->miss, 0, sizeof(c->miss));
	if (!id || !c->mount)
		return &c->miss;
	for (;; i = (i + 1) & (CG_CACHE_SLOTS - 1)) {
		if (c->slot[i].id == id)
			return &c->slot[i];
		if (!c->slot[i].id)
			break;
	}
	if (c->used >= CG_CACHE_SLOTS / 4 * 3) {
		cache_clear(c);
		return cg_cache_get(c, id);
	}
	info = &c->slot[i];
	info->id = id;
	resolve(c, info);
	if (info->state == CG_UNKNOWN) {
		/* a failure may pass (a walk racing an rmdir): not kept */
		c->miss = *info;
		memset(info, 0, sizeof(*info));
		return &c->miss;
	}
	c->used++;
	return info;
}

int cg_target(const char *mount, const char *arg, uint64_t *id, uint32_t *level,
	      char *err, size_t errsz)
{
	size_t mlen = mount ? strlen(mount) : 0;
	const char *rel = arg, *s;
	char full[4096];
	struct stat st, root;

	if (!mlen) {
		snprintf(err, errsz, "no cgroup2 hierarchy is mounted (see /proc/self/mountinfo)");
		return -ENOENT;
	}
	/* a path under the mount is a file name; anything else is a cgroup path */
	if (!strncmp(arg, mount, mlen) && (arg[mlen] == '/' || !arg[mlen]))
		rel = arg + mlen;
	*level = 0;
	for (s = rel; *s;) {
		size_t n = strcspn(s, "/");

		if (n == 2 && !memcmp(s, "..", 2)) {
			snprintf(err, errsz, "'..' is not allowed");
			return -EINVAL;
		}
		if (n && !(n == 1 && *s == '.'))
			(*level)++;
		s += n;
		s += *s == '/';
	}
	if ((size_t)snprintf(full, sizeof(full), "%s/%s", mount, rel) >= sizeof(full)) {
		snprintf(err, errsz, "path too long");
		return -ENAMETOOLONG;
	}
	errno = 0;
	if (stat(full, &st) || !S_ISDIR(st.st_mode)) {
		snprintf(err, errsz, "no cgroup %s: %s", full, errno ? strerror(errno) :
			 "not a directory");
		return -ENOENT;
	}
	if (stat(mount, &root) || root.st_dev != st.st_dev) {
		snprintf(err, errsz, "%s is not on the cgroup2 mount %s", full, mount);
		return -EINVAL;
	}
	*id = st.st_ino;
	return 0;
}
