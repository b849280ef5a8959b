// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * conntrace listen: what /proc says. The network namespaces to walk (by
 * /run/netns and every process's ns/net), each namespace's sysctls and TcpExt
 * counters (read from inside it), and the owners of listeners that predate us.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "listen_int.h"

struct netns *netns_find(struct netns_set *s, uint64_t ino)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		if (s->v[i].ino == ino)
			return &s->v[i];
	return NULL;
}

/* Keeps an open fd per namespace, deduplicated by inode. */
static void netns_add(struct netns_set *s, const char *path, const char *name)
{
	struct stat st;
	struct netns *ns;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return; /* the process exited, or a stale mount: nothing to walk */
	if (fstat(fd, &st) || netns_find(s, st.st_ino)) {
		close(fd);
		return;
	}
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		struct netns *v = realloc(s->v, cap * sizeof(*v));

		if (!v) {
			close(fd);
			return;
		}
		s->v = v;
		s->cap = cap;
	}
	ns = &s->v[s->n++];
	memset(ns, 0, sizeof(*ns));
	ns->ino = st.st_ino;
	ns->fd = fd;
	snprintf(ns->name, sizeof(ns->name), "%s", name ? name : "");
}

void netns_close_all(struct netns_set *s)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		close(s->v[i].fd);
	s->n = 0;
}

void netns_enumerate(struct netns_set *s)
{
	char path[PATH_MAX];
	struct dirent *de;
	DIR *d;

	netns_add(s, "/proc/thread-self/ns/net", NULL);
	d = opendir("/run/netns");
	if (d) {
		while ((de = readdir(d))) {
			if (de->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "/run/netns/%s", de->d_name);
			netns_add(s, path, de->d_name);
		}
		closedir(d);
	}
	d = opendir("/proc");
	if (!d)
		return;
	while ((de = readdir(d))) {
		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/ns/net", de->d_name);
		netns_add(s, path, NULL);
	}
	closedir(d);
}

static int read_u32_file(const char *path, uint32_t *out)
{
	char buf[32];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return n < 0 ? -errno : -EIO;
	buf[n] = '\0';
	*out = (uint32_t)strtoul(buf, NULL, 10);
	return 0;
}

/*
 * /proc/net/netstat holds header/value line pairs per prefix; take the
 * TcpExt ones by column name (their order differs between kernels).
 */
static int read_netstat(struct listen_ns_counters *c)
{
	static const struct { const char *name; size_t off; } want[] = {
		{ "ListenOverflows", offsetof(struct listen_ns_counters, listen_overflows) },
		{ "ListenDrops", offsetof(struct listen_ns_counters, listen_drops) },
		{ "SyncookiesSent", offsetof(struct listen_ns_counters, syncookies_sent) },
		{ "TCPReqQFullDoCookies", offsetof(struct listen_ns_counters, reqq_full_cookies) },
		{ "TCPReqQFullDrop", offsetof(struct listen_ns_counters, reqq_full_drop) },
	};
	char *hdr = NULL, *val = NULL, *hs, *vs, *h, *v;
	size_t hcap = 0, vcap = 0, i;
	FILE *f = fopen("/proc/thread-self/net/netstat", "re");
	int err = -ENOENT;

	if (!f)
		return -errno;
	memset(c, 0, sizeof(*c));
	while (getline(&hdr, &hcap, f) > 0 && getline(&val, &vcap, f) > 0) {
		if (strncmp(hdr, "TcpExt:", 7) || strncmp(val, "TcpExt:", 7))
			continue;
		h = strtok_r(hdr + 7, " \n", &hs);
		v = strtok_r(val + 7, " \n", &vs);
		for (; h && v; h = strtok_r(NULL, " \n", &hs), v = strtok_r(NULL, " \n", &vs))
			for (i = 0; i < sizeof(want) / sizeof(want[0]); i++)
				if (!strcmp(h, want[i].name))
					*(uint64_t *)((char *)c + want[i].off) = strtoull(v, NULL, 10);
		err = 0;
		break;
	}
	free(hdr);
	free(val);
	fclose(f);
	return err;
}

/* The sysctls and counters of the namespace the thread is in now. */
int netns_read_proc(struct netns *ns)
{
	if (read_u32_file("/proc/sys/net/core/somaxconn", &ns->somaxconn))
		ns->somaxconn = 0;
	if (read_u32_file("/proc/sys/net/ipv4/tcp_max_syn_backlog", &ns->max_syn_backlog))
		ns->max_syn_backlog = 0;
	if (read_u32_file("/proc/sys/net/ipv4/tcp_syncookies", &ns->syncookies))
		ns->syncookies = 0;
	ns->prev = ns->now;
	return read_netstat(&ns->now);
}

/* Like ss -p: find the process holding socket:[ino] among /proc/PID/fd. */
void resolve_owners(struct state *s)
{
	char path[PATH_MAX], link[64];
	struct dirent *pe, *fe;
	size_t i, want = 0;
	DIR *pd, *fd;

	for (i = 0; i < s->n; i++)
		if (!s->v[i].l.pid && !s->v[i].owner_tried && s->v[i].l.sock_ino)
			want++;
	if (!want || !(pd = opendir("/proc")))
		return;
	while (want && (pe = readdir(pd))) {
		if (pe->d_name[0] < '1' || pe->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/fd", pe->d_name);
		if (!(fd = opendir(path)))
			continue;
		while (want && (fe = readdir(fd))) {
			unsigned long long ino;
			ssize_t n;

			snprintf(path, sizeof(path), "/proc/%s/fd/%s", pe->d_name, fe->d_name);
			n = readlink(path, link, sizeof(link) - 1);
			if (n <= 0)
				continue;
			link[n] = '\0';
			if (sscanf(link, "socket:[%llu]", &ino) != 1)
				continue;
			for (i = 0; i < s->n; i++) {
				struct listener *l = &s->v[i].l;
				FILE *cf;

				if (l->pid || s->v[i].owner_tried || l->sock_ino != ino)
					continue;
				l->pid = atoi(pe->d_name);
				snprintf(path, sizeof(path), "/proc/%s/comm", pe->d_name);
				if ((cf = fopen(path, "re"))) {
					if (fgets(l->comm, sizeof(l->comm), cf))
						l->comm[strcspn(l->comm, "\n")] = '\0';
					fclose(cf);
				}
				s->v[i].owner_tried = true;
				want--;
			}
		}
		closedir(fd);
	}
	closedir(pd);
	/* Not found (a kernel socket, or the owner exited): do not rescan. */
	for (i = 0; i < s->n; i++)
		if (!s->v[i].l.pid)
			s->v[i].owner_tried = true;
}
