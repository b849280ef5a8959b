// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Network namespaces' ListenOverflows and ListenDrops for the verdict stream:
 * enter the namespace, read /proc/thread-self/net/netstat there (listen_proc.c),
 * come back. Only the collector's own thread moves; the metrics thread stays.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "listen_int.h"
#include "nscounters.h"
#include "overflow.h"

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

struct ns_seen {
	uint64_t ino, cookie;	/* cookie 0: the kernel has none (before 5.14) */
	uint64_t overflows, drops;	/* at the previous read */
	char hint[sizeof("/run/netns/") + 64];	/* where it was found last time */
	bool warned;
};

struct nscounters {
	int self_fd;		/* the collector's own namespace, to come back to */
	bool stuck;		/* could not come back once: enter no more */
	struct ns_seen *v;
	size_t n, cap;
};

/* The cookie of the namespace the thread is in, or 0. */
static uint64_t netns_cookie(void)
{
	uint64_t cookie = 0;
	socklen_t len = sizeof(cookie);
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return 0;
	if (getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, &cookie, &len))
		cookie = 0;
	close(fd);
	return cookie;
}

/* Enter the namespace of fd, read its counters and cookie, come back. */
static int read_inside(struct nscounters *nc, int fd, struct listen_ns_counters *out,
		       uint64_t *cookie)
{
	struct netns ns = { 0 };
	int err;

	if (nc->stuck)
		return -ENOTRECOVERABLE;
	if (setns(fd, CLONE_NEWNET))
		return -errno;
	err = netns_read_proc(&ns);
	*cookie = netns_cookie();
	if (setns(nc->self_fd, CLONE_NEWNET)) {
		err = -errno;
		fprintf(stderr, "conntrace: netns: cannot return to the collector's network "
			"namespace: %s; namespaces' counters are no longer read\n", strerror(-err));
		nc->stuck = true;
		return -ENOTRECOVERABLE;
	}
	*out = ns.now;
	return err;
}

static struct ns_seen *seen_add(struct nscounters *nc, uint64_t ino)
{
	struct ns_seen *s;

	if (nc->n == nc->cap) {
		size_t cap = nc->cap ? nc->cap * 2 : 16;
		struct ns_seen *v = realloc(nc->v, cap * sizeof(*v));

		if (!v)
			return NULL;
		nc->v = v;
		nc->cap = cap;
	}
	s = &nc->v[nc->n++];
	memset(s, 0, sizeof(*s));
	s->ino = ino;
	return s;
}

static struct ns_seen *seen_find(struct nscounters *nc, uint64_t ino)
{
	for (size_t i = 0; i < nc->n; i++)
		if (nc->v[i].ino == ino)
			return &nc->v[i];
	return NULL;
}

struct nscounters *nscounters_open(void)
{
	struct nscounters *nc = calloc(1, sizeof(*nc));
	struct netns_set set = { 0 };

	if (!nc)
		return NULL;
	nc->self_fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (nc->self_fd < 0)
		nc->stuck = true;	/* nowhere to come back to: never leave */
	/* the baseline: every namespace there is now (listen_proc.c finds them) */
	netns_enumerate(&set);
	for (size_t i = 0; i < set.n && !nc->stuck; i++) {
		struct listen_ns_counters c;
		struct ns_seen *s;
		uint64_t cookie;

		if (read_inside(nc, set.v[i].fd, &c, &cookie) || !(s = seen_add(nc, set.v[i].ino)))
			continue;
		s->cookie = cookie;
		s->overflows = c.listen_overflows;
		s->drops = c.listen_drops;
		if (set.v[i].name[0])	/* struct netns names are under 64 bytes */
			snprintf(s->hint, sizeof(s->hint), "/run/netns/%.63s", set.v[i].name);
	}
	netns_close_all(&set);
	free(set.v);
	return nc;
}

void nscounters_free(void *p)
{
	struct nscounters *nc = p;

	if (!nc)
		return;
	if (nc->self_fd >= 0)
		close(nc->self_fd);
	free(nc->v);
	free(nc);
}

/* path, opened, if it is namespace ino; else -1. */
static int open_if(const char *path, uint64_t ino)
{
	struct stat st;
	int fd;

	if (stat(path, &st) || st.st_ino != ino)
		return -1;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0 && (fstat(fd, &st) || st.st_ino != ino)) {
		close(fd);	/* replaced in between */
		fd = -1;
	}
	return fd;
}

/* A file of namespace s->ino: where it was last time, or a mount in
 * /run/netns, or a process in it. The place found becomes the hint. */
static int find_netns(struct ns_seen *s)
{
	static const char *const dirs[] = { "/run/netns", "/proc" };
	char path[sizeof(((struct ns_seen *)0)->hint)];
	struct dirent *de;
	int fd = -1;
	DIR *d;

	if (s->hint[0] && (fd = open_if(s->hint, s->ino)) >= 0)
		return fd;
	for (size_t k = 0; k < 2 && fd < 0; k++) {
		if (!(d = opendir(dirs[k])))
			continue;
		while (fd < 0 && (de = readdir(d))) {
			if (k ? de->d_name[0] < '1' || de->d_name[0] > '9' : de->d_name[0] == '.')
				continue;
			/* a name too long for the hint is not looked at */
			if (snprintf(path, sizeof(path), k ? "/proc/%s/ns/net" : "/run/netns/%s",
				     de->d_name) < (int)sizeof(path))
				fd = open_if(path, s->ino);
		}
		closedir(d);
	}
	if (fd >= 0)
		memcpy(s->hint, path, sizeof(path));
	return fd < 0 ? -ENOENT : fd;
}

int nscounters_read(void *p, __u32 netns, uint64_t *d_overflows, uint64_t *d_drops)
{
	struct nscounters *nc = p;
	struct listen_ns_counters c;
	struct ns_seen *s;
	uint64_t cookie = 0;
	int fd, err;

	if (!nc)
		return -EINVAL;
	s = seen_find(nc, netns);
	if (!s && !(s = seen_add(nc, netns)))
		return -ENOMEM;
	fd = find_netns(s);
	err = fd < 0 ? fd : read_inside(nc, fd, &c, &cookie);
	if (fd >= 0)
		close(fd);
	if (err) {
		if (!s->warned && err != -ENOTRECOVERABLE)
			fprintf(stderr, "conntrace: netns %u: cannot read its ListenOverflows (%s): "
				"its listen overflows are counted from sk_drops, an upper bound\n",
				netns, err == -ENOENT ? "not found in /run/netns or /proc/*/ns/net"
						      : strerror(-err));
		s->warned = true;
		return err;
	}
	/* another namespace behind a reused inode: counted from its creation */
	if (s->cookie != cookie) {
		s->overflows = s->drops = 0;
		s->cookie = cookie;
	}
	*d_overflows = overflow_delta(s->overflows, c.listen_overflows);
	*d_drops = overflow_delta(s->drops, c.listen_drops);
	s->overflows = c.listen_overflows;
	s->drops = c.listen_drops;
	return 0;
}
