// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * bulk: one loopback TCP bulk transfer, for tests/bench/established_bulk.py.
 *
 *   bulk --port P --secs S [--sender-cpu A --receiver-cpu B]
 *
 * Listens on 127.0.0.1:P, forks a receiver process that connects and reads
 * until EOF, and sends 1 MiB writes on the accepted socket for S seconds,
 * then shuts the connection down. Prints one line: the MB/s (10^6 bytes) the
 * receiver read over the time from the first write to its last read.
 *
 * Two processes pinned to two CPUs (when given): the sender and the receiver
 * do not share a CPU or a lock, so the transfer's rate moves with the cost of
 * the kernel's path (conntrace's programs on it) rather than with where the
 * scheduler put two threads from one round to the next.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CHUNK	(1 << 20)

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static void die(const char *what)
{
	fprintf(stderr, "bulk: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void pin(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		die("sched_setaffinity");
}

/* Reads until EOF; writes "bytes ns_of_last_read" to fd out. */
static int receiver(const struct sockaddr_in *sa, int cpu, int out)
{
	static char buf[CHUNK];
	uint64_t got = 0, last = 0;
	int s = socket(AF_INET, SOCK_STREAM, 0);
	char line[64];
	ssize_t n;

	pin(cpu);
	if (s < 0 || connect(s, (const struct sockaddr *)sa, sizeof(*sa)))
		die("receiver: connect");
	while ((n = read(s, buf, sizeof(buf))) > 0) {
		got += n;
		last = now_ns();
	}
	if (n < 0)
		die("receiver: read");
	n = snprintf(line, sizeof(line), "%llu %llu\n", (unsigned long long)got,
		     (unsigned long long)last);
	if (write(out, line, n) != n)
		die("receiver: reporting");
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "secs", required_argument, NULL, 's' },
		{ "sender-cpu", required_argument, NULL, 'S' },
		{ "receiver-cpu", required_argument, NULL, 'R' },
		{},
	};
	static char buf[CHUNK];
	int port = 0, scpu = -1, rcpu = -1, c, ls, s, one = 1, pfd[2], status;
	unsigned long long got, last;
	struct sockaddr_in sa = { .sin_family = AF_INET };
	double secs = 0;
	uint64_t t0, end;
	char line[64];
	ssize_t n;
	FILE *f;
	pid_t pid;

	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'p': port = atoi(optarg); break;
		case 's': secs = atof(optarg); break;
		case 'S': scpu = atoi(optarg); break;
		case 'R': rcpu = atoi(optarg); break;
		default: goto usage;
		}
	}
	if (optind != argc || port < 1 || port > 65535 || secs <= 0)
		goto usage;
	signal(SIGPIPE, SIG_IGN);
	sa.sin_port = htons(port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ls = socket(AF_INET, SOCK_STREAM, 0);
	if (ls < 0 || setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(ls, (struct sockaddr *)&sa, sizeof(sa)) || listen(ls, 1))
		die("listening");
	if (pipe(pfd))
		die("pipe");
	pid = fork();
	if (pid < 0)
		die("fork");
	if (!pid) {
		close(ls);
		close(pfd[0]);
		return receiver(&sa, rcpu, pfd[1]);
	}
	close(pfd[1]);
	pin(scpu);
	s = accept(ls, NULL, NULL);
	if (s < 0)
		die("accept");
	close(ls);
	memset(buf, 'z', sizeof(buf));
	t0 = now_ns();
	end = t0 + (uint64_t)(secs * 1e9);
	while (now_ns() < end) {
		for (size_t off = 0; off < sizeof(buf); off += n)
			if ((n = write(s, buf + off, sizeof(buf) - off)) < 0)
				die("send");
	}
	if (shutdown(s, SHUT_WR))
		die("shutdown");
	f = fdopen(pfd[0], "r");
	if (!f || !fgets(line, sizeof(line), f) || sscanf(line, "%llu %llu", &got, &last) != 2) {
		fprintf(stderr, "bulk: the receiver reported nothing\n");
		return 1;
	}
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status))
		return 1;
	printf("%.1f\n", got / ((last - t0) / 1e9) / 1e6);
	return 0;
usage:
	fprintf(stderr, "usage: bulk --port P --secs S [--sender-cpu A --receiver-cpu B]\n");
	return 2;
}
