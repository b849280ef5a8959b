// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * conntrace check: what the advice needs from this host, read after the
 * verdict. Listeners on the port by sock_diag (accept queue and backlog),
 * in this network namespace and in the named ones (a child process enters each, so this
 * one never leaves its own); their owners as `conntrace listen` finds them
 * (resolve_owners, listen_proc.c); sysctls; and `ip route get`'s answer.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include "check.h"
#include "listen_int.h"

/* One inet_diag answer: the listener, if on port. */
static bool take_msg(const struct inet_diag_msg *m, uint16_t port, struct check_listener *l)
{
	char a[INET6_ADDRSTRLEN];

	if (ntohs(m->id.idiag_sport) != port)
		return false;
	memset(l, 0, sizeof(*l));
	inet_ntop(m->idiag_family, m->id.idiag_src, a, sizeof(a));
	snprintf(l->addr, sizeof(l->addr), m->idiag_family == AF_INET6 ? "[%s]:%u" : "%s:%u",
		 a, port);
	l->queue = m->idiag_rqueue;		/* a listener's: its accept queue */
	l->queue_max = m->idiag_wqueue;		/* and sk_max_ack_backlog */
	l->sock_ino = m->idiag_inode;
	return true;
}

/*
 * The listeners on port in the current netns, appended to out[*n..max), by
 * sock_diag (as ss -lt): unlike /proc/net/tcp it gives each listener's
 * backlog (sk_max_ack_backlog) beside its accept queue.
 */
static void read_listeners(uint16_t port, const char *netns, struct check_listener *out,
			   int *n, int max)
{
	static const int families[] = { AF_INET, AF_INET6 };
	static char buf[32768] __attribute__((aligned(4)));

	for (int f = 0; f < 2; f++) {
		struct {
			struct nlmsghdr nh;
			struct inet_diag_req_v2 r;
		} req = {
			.nh = { .nlmsg_len = sizeof(req), .nlmsg_type = SOCK_DIAG_BY_FAMILY,
				.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP },
			.r = { .sdiag_family = families[f], .sdiag_protocol = IPPROTO_TCP,
			       .idiag_states = 1u << TCP_LISTEN },
		};
		int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
		bool done = false;
		ssize_t len;

		if (fd < 0)
			continue;
		if (send(fd, &req, sizeof(req), 0) < 0)
			done = true;
		while (!done && (len = recv(fd, buf, sizeof(buf), 0)) > 0) {
			const struct nlmsghdr *nh = (const void *)buf;
			int rem = len;

			for (; NLMSG_OK(nh, rem); nh = NLMSG_NEXT(nh, rem)) {
				if (nh->nlmsg_type == NLMSG_DONE || nh->nlmsg_type == NLMSG_ERROR) {
					done = true;
					break;
				}
				if (*n < max && take_msg(NLMSG_DATA(nh), port, &out[*n])) {
					snprintf(out[*n].netns, sizeof(out[*n].netns), "%s", netns);
					(*n)++;
				}
			}
		}
		close(fd);
	}
}

/*
 * fork() with a pipe from the child to us: the child's pid, 0 in the child,
 * -1 on failure. The child writes to *wr; the parent reads *rd (its own copy
 * of the write end is closed, so it sees EOF when the child exits).
 */
static pid_t fork_piped(int *rd, int *wr)
{
	int p[2];
	pid_t pid;

	if (pipe2(p, O_CLOEXEC))
		return -1;
	pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid)
		close(p[1]);
	*rd = p[0];
	*wr = p[1];
	return pid;
}

/* In a child that enters /run/netns/name: its listeners, through a pipe. */
static void read_named(const char *name, uint16_t port, struct check_listener *out,
		       int *n, int max)
{
	char path[300];
	int rd, wr, status;
	pid_t pid;

	snprintf(path, sizeof(path), "/run/netns/%s", name);
	pid = fork_piped(&rd, &wr);
	if (pid < 0)
		return;
	if (!pid) {
		struct check_listener l[CHECK_MAX_LISTENERS];
		int fd = open(path, O_RDONLY | O_CLOEXEC), k = 0;

		if (fd < 0 || setns(fd, CLONE_NEWNET))
			_exit(1);
		read_listeners(port, name, l, &k, max - *n);
		_exit(write(wr, l, k * sizeof(l[0])) < 0);
	}
	while (*n < max && read(rd, &out[*n], sizeof(out[0])) == sizeof(out[0]))
		(*n)++;
	close(rd);
	waitpid(pid, &status, 0);
}

/* Named namespaces other than this one. */
static void read_other_netns(uint16_t port, struct check_listener *out, int *n, int max)
{
	struct stat self, st;
	struct dirent *de;
	char path[300];
	DIR *d;

	if (stat("/proc/self/ns/net", &self) || !(d = opendir("/run/netns")))
		return;
	while (*n < max && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/run/netns/%s", de->d_name);
		if (stat(path, &st) || st.st_ino == self.st_ino)
			continue;
		read_named(de->d_name, port, out, n, max);
	}
	closedir(d);
}

int check_find_listeners(uint16_t port, struct check_listener *out, int max)
{
	struct tracked tr[CHECK_MAX_LISTENERS] = { 0 };
	struct state s = { .v = tr };
	int n = 0;

	read_listeners(port, "", out, &n, max);
	read_other_netns(port, out, &n, max);
	/* socket inodes are global: one walk of /proc/PID/fd finds every owner */
	for (int i = 0; i < n && i < CHECK_MAX_LISTENERS; i++)
		tr[i].l.sock_ino = out[i].sock_ino;
	s.n = n < CHECK_MAX_LISTENERS ? n : CHECK_MAX_LISTENERS;
	resolve_owners(&s);
	for (size_t i = 0; i < s.n; i++) {
		out[i].pid = tr[i].l.pid;
		memcpy(out[i].comm, tr[i].l.comm, sizeof(out[i].comm));
	}
	return n;
}

static int read_int(const char *path, long *v)
{
	FILE *f = fopen(path, "re");
	int ok;

	if (!f)
		return -errno;
	ok = fscanf(f, "%ld", v) == 1;
	fclose(f);
	return ok ? 0 : -EINVAL;
}

void check_read_sysctls(struct check_facts *fx)
{
	long v;

	fx->somaxconn = read_int("/proc/sys/net/core/somaxconn", &v) ? 0 : (uint32_t)v;
	fx->syn_retries = read_int("/proc/sys/net/ipv4/tcp_syn_retries", &v) ? -1 : (int)v;
}

void check_route_get(const char *addr, struct check_facts *fx)
{
	int rd, wr, status;
	size_t len = 0;
	ssize_t r;
	pid_t pid;
	char *s;

	fx->route[0] = '\0';
	pid = fork_piped(&rd, &wr);
	if (pid < 0)
		return;
	if (!pid) {
		dup2(wr, 1);
		dup2(wr, 2);
		execlp("ip", "ip", "route", "get", addr, (char *)NULL);
		_exit(127);
	}
	while (len + 1 < sizeof(fx->route) &&
	       (r = read(rd, fx->route + len, sizeof(fx->route) - 1 - len)) > 0)
		len += r;
	fx->route[len] = '\0';
	close(rd);
	waitpid(pid, &status, 0);
	/* one line: newlines and runs of blanks become one space */
	for (s = fx->route; *s; s++)
		if (*s == '\n' || *s == '\t')
			*s = ' ';
	for (s = fx->route; (s = strstr(s, "  "));)
		memmove(s, s + 1, strlen(s));
	len = strlen(fx->route);
	while (len && fx->route[len - 1] == ' ')
		fx->route[--len] = '\0';
}
