// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * ctlisten: a TCP listener for conntrace's integration tests.
 *
 *   ctlisten [-6] [--addr ADDR] [--backlog N] [--no-accept] PORT
 *
 *   -6           AF_INET6 (default address ::1; IPV6_V6ONLY set)
 *   --addr ADDR  address to bind (default 127.0.0.1 or ::1)
 *   --backlog N  listen() backlog (default 128)
 *   --no-accept  never call accept(): connections stay in the accept queue
 *                (with --backlog 1 the queue holds 2 before SYNs are dropped)
 *   PORT         port to bind; 0 picks a free one
 *
 * Prints "ready PORT" (the bound port) on stdout once listen() has returned,
 * then accepts and closes connections until killed (or just sleeps with
 * --no-accept). Exit status 2 on a usage error, 1 on a setup error.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void usage(const char *msg)
{
	fprintf(stderr, "ctlisten: %s\nusage: ctlisten [-6] [--addr ADDR] "
		"[--backlog N] [--no-accept] PORT\n", msg);
	exit(2);
}

static long parse_num(const char *s, long lo, long hi, const char *what)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi) {
		char buf[128];

		snprintf(buf, sizeof(buf), "bad %s: '%s'", what, s);
		usage(buf);
	}
	return v;
}

int main(int argc, char **argv)
{
	bool v6 = false, no_accept = false;
	const char *addr = NULL;
	long backlog = 128, port;
	struct sockaddr_storage ss;
	socklen_t sslen;
	int fd, one = 1, i;

	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "-6")) {
			v6 = true;
		} else if (!strcmp(a, "--no-accept")) {
			no_accept = true;
		} else if (!strcmp(a, "--addr")) {
			if (++i >= argc)
				usage("--addr needs a value");
			addr = argv[i];
		} else if (!strcmp(a, "--backlog")) {
			if (++i >= argc)
				usage("--backlog needs a value");
			backlog = parse_num(argv[i], 0, 65535, "--backlog");
		} else {
			usage("unknown option");
		}
	}
	if (argc - i != 1)
		usage("need PORT");
	port = parse_num(argv[i], 0, 65535, "PORT");

	memset(&ss, 0, sizeof(ss));
	if (v6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((unsigned short)port);
		if (inet_pton(AF_INET6, addr ? addr : "::1", &s6->sin6_addr) != 1)
			usage("bad IPv6 address");
		sslen = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons((unsigned short)port);
		if (inet_pton(AF_INET, addr ? addr : "127.0.0.1", &s4->sin_addr) != 1)
			usage("bad IPv4 address");
		sslen = sizeof(*s4);
	}

	fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
	if (fd < 0) {
		perror("ctlisten: socket");
		return 1;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    (v6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)) {
		perror("ctlisten: setsockopt");
		return 1;
	}
	if (bind(fd, (struct sockaddr *)&ss, sslen) < 0) {
		perror("ctlisten: bind");
		return 1;
	}
	if (listen(fd, (int)backlog) < 0) {
		perror("ctlisten: listen");
		return 1;
	}
	sslen = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &sslen) < 0) {
		perror("ctlisten: getsockname");
		return 1;
	}
	port = ntohs(v6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
			: ((struct sockaddr_in *)&ss)->sin_port);
	printf("ready %ld\n", port);
	if (fflush(stdout))
		return 1;

	for (;;) {
		int c;

		if (no_accept) {
			pause();
			continue;
		}
		c = accept(fd, NULL, NULL);
		if (c < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			perror("ctlisten: accept");
			return 1;
		}
		close(c);
	}
}
