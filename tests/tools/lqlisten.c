// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * lqlisten: a TCP listener for the `conntrace listen` tests.
 *
 *   lqlisten [-a ADDR] [-p PORT] [-b BACKLOG] [-A]
 *
 * Binds ADDR:PORT (default 127.0.0.1, port 0 = any), calls listen(fd,
 * BACKLOG) (default 1), prints "PORT\n" once listening, then never calls
 * accept() (so the accept queue fills), or with -A accepts and closes every
 * connection. Exits on SIGTERM/SIGINT.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static volatile sig_atomic_t done;

static void on_signal(int sig)
{
	(void)sig;
	done = 1;
}

int main(int argc, char **argv)
{
	const char *addr = "127.0.0.1";
	int port = 0, backlog = 1, do_accept = 0, opt, fd, one = 1;
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	struct sigaction sa = { .sa_handler = on_signal };
	socklen_t len;

	while ((opt = getopt(argc, argv, "a:p:b:A")) != -1) {
		switch (opt) {
		case 'a': addr = optarg; break;
		case 'p': port = atoi(optarg); break;
		case 'b': backlog = atoi(optarg); break;
		case 'A': do_accept = 1; break;
		default:
			fprintf(stderr, "usage: lqlisten [-a ADDR] [-p PORT] [-b BACKLOG] [-A]\n");
			return 2;
		}
	}
	if (inet_pton(AF_INET, addr, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		len = sizeof(*sin);
	} else if (inet_pton(AF_INET6, addr, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		len = sizeof(*sin6);
	} else {
		fprintf(stderr, "lqlisten: bad address '%s'\n", addr);
		return 2;
	}
	fd = socket(ss.ss_family, SOCK_STREAM, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, (struct sockaddr *)&ss, len) || listen(fd, backlog) ||
	    getsockname(fd, (struct sockaddr *)&ss, &len)) {
		fprintf(stderr, "lqlisten: %s:%d: %s\n", addr, port, strerror(errno));
		return 1;
	}
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	printf("%d\n", ntohs(ss.ss_family == AF_INET ? sin->sin_port : sin6->sin6_port));
	fflush(stdout);
	while (!done) {
		if (do_accept) {
			int c = accept(fd, NULL, NULL);

			if (c >= 0)
				close(c);
		} else {
			pause();
		}
	}
	close(fd);
	return 0;
}
