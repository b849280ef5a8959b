// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * conntrace check: what the advice needs from this host, read after the
 * verdict. Listeners on the port from /proc/net/tcp[6] (for a listener,
 * tx_queue is its backlog and rx_queue its accept queue), in this network
 * namespace and in the named ones (a child process enters each, so this
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
#include "check.h"
#include "listen_int.h"

#define TCP_LISTEN_STATE 0x0A

/* One /proc/net/tcp[6] line, if it is a listener on port. */
static bool parse_line(const char *line, bool v6, uint16_t port, struct check_listener *l)
{
	char local[64], a[64];
	unsigned lport, st, tx, rx;
	unsigned long long ino;
	uint32_t w[4];

	if (sscanf(line, " %*u: %63[0-9A-Fa-f]:%x %*s %x %x:%x %*s %*s %*s %*s %llu",
		   local, &lport, &st, &tx, &rx, &ino) != 6)
		return false;
	if (st != TCP_LISTEN_STATE || lport != port)
		return false;
	memset(l, 0, sizeof(*l));
	/* each 32-bit word is printed from memory as a host-order number */
	for (int i = 0; i < (v6 ? 4 : 1); i++) {
		char word[9] = { 0 };

		memcpy(word, local + 8 * i, 8);
		w[i] = strtoul(word, NULL, 16);
	}
	inet_ntop(v6 ? AF_INET6 : AF_INET, w, a, sizeof(a));
	snprintf(l->addr, sizeof(l->addr), v6 ? "[%s]:%u" : "%s:%u", a, lport);
	l->queue = rx;
	l->queue_max = tx;
	l->sock_ino = ino;
	return true;
}

/* The listeners on port in the current netns, appended to out[*n..max). */
static void read_proc_tcp(uint16_t port, const char *netns, struct check_listener *out,
			  int *n, int max)
{
	static const char *const files[] = { "/proc/thread-self/net/tcp",
					     "/proc/thread-self/net/tcp6" };
	char line[512];

	for (int f = 0; f < 2; f++) {
		FILE *fp = fopen(files[f], "re");

		if (!fp)
			continue;
		while (*n < max && fgets(line, sizeof(line), fp))
			if (parse_line(line, f == 1, port, &out[*n])) {
				snprintf(out[*n].netns, sizeof(out[*n].netns), "%s", netns);
				(*n)++;
			}
		fclose(fp);
	}
}

/* In a child that enters /run/netns/name: its listeners, through a pipe. */
static void read_named(const char *name, uint16_t port, struct check_listener *out,
		       int *n, int max)
{
	char path[300];
	int p[2], status;
	pid_t pid;

	snprintf(path, sizeof(path), "/run/netns/%s", name);
	if (pipe2(p, O_CLOEXEC))
		return;
	pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return;
	}
	if (!pid) {
		struct check_listener l[CHECK_MAX_LISTENERS];
		int fd = open(path, O_RDONLY | O_CLOEXEC), k = 0;

		if (fd < 0 || setns(fd, CLONE_NEWNET))
			_exit(1);
		read_proc_tcp(port, name, l, &k, max - *n);
		_exit(write(p[1], l, k * sizeof(l[0])) < 0);
	}
	close(p[1]);
	while (*n < max && read(p[0], &out[*n], sizeof(out[0])) == sizeof(out[0]))
		(*n)++;
	close(p[0]);
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

	read_proc_tcp(port, "", out, &n, max);
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
	int p[2], status;
	size_t len = 0;
	ssize_t r;
	pid_t pid;
	char *s;

	fx->route[0] = '\0';
	if (pipe2(p, O_CLOEXEC))
		return;
	pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return;
	}
	if (!pid) {
		dup2(p[1], 1);
		dup2(p[1], 2);
		execlp("ip", "ip", "route", "get", addr, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	while (len + 1 < sizeof(fx->route) &&
	       (r = read(p[0], fx->route + len, sizeof(fx->route) - 1 - len)) > 0)
		len += r;
	fx->route[len] = '\0';
	close(p[0]);
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
