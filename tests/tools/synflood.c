// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * synflood: many non-blocking TCP connects, fast, for conntrace's fault
 * tests. Run it inside a test namespace against a loopback port.
 *
 *   synflood [-6] [--count N] [--concurrency C] [--sources K] [--accept]
 *            [--spread-ms MS] [--hold-ms MS] [--name COMM] ADDR PORT
 *
 *   --count N        connects in all (default 100000)
 *   --concurrency C  sockets kept open at once (default 1000): once C are
 *                    open they are all closed, then the next batch starts.
 *                    A socket still in SYN_SENT when closed is an abandoned
 *                    attempt; with SYNs dropped (nft) each batch holds C
 *                    half-open connects at its end.
 *   --sources K      IPv4: spread the sources over 127.0.0.1 .. 127.0.0.K
 *                    (bound with IP_BIND_ADDRESS_NO_PORT, so ports are
 *                    still chosen by connect()), for more than one
 *                    ip_local_port_range worth of concurrent attempts
 *   --accept         also listen on ADDR PORT (backlog 65535) and accept and
 *                    close whatever is queued between connects: every
 *                    attempt connects (verdict OK)
 *   --spread-ms MS   pace the connects evenly over about MS ms (default: as
 *                    fast as possible)
 *   --hold-ms MS     keep each full batch open MS ms before closing it: with
 *                    SYNs dropped, its attempts time out in the kernel's
 *                    timers instead of being abandoned
 *   --name COMM      the task name (prctl PR_SET_NAME), default "synflood"
 *
 * RLIMIT_NOFILE is raised to its hard limit. Prints one JSON line when done:
 *   {"event":"done","pid":P,"count":N,"inprogress":N,"connected":N,
 *    "failed":N,"first_errno":N,"accepted":N,"batches":N,"elapsed_ms":N}
 * Exit status: 0 when every connect was made (whatever its outcome), 1 on a
 * setup error, 2 on a usage error.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

static void usage(const char *msg)
{
	fprintf(stderr, "synflood: %s\nusage: synflood [-6] [--count N] [--concurrency C] "
		"[--sources K] [--accept] [--spread-ms MS] [--hold-ms MS] [--name COMM] ADDR PORT\n",
		msg);
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

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void die(const char *what)
{
	fprintf(stderr, "synflood: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* Accept and close everything queued on a non-blocking listener. */
static long drain(int lfd)
{
	long n = 0;
	int fd;

	if (lfd < 0)
		return 0;
	while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
		close(fd);
		n++;
	}
	return n;
}

int main(int argc, char **argv)
{
	long count = 100000, conc = 1000, sources = 1, spread_ms = 0, hold_ms = 0, port;
	long inprogress = 0, connected = 0, failed = 0, accepted = 0, batches = 0;
	const char *name = "synflood", *addr;
	bool v6 = false, do_accept = false;
	struct sockaddr_storage dst = { 0 };
	socklen_t dstlen;
	int first_errno = 0, lfd = -1, one = 1, *fds, nfds = 0, i;
	struct rlimit rl;
	double t0;

	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--")) {
			i++;
			break;
		}
		if (!strcmp(a, "-6"))
			v6 = true;
		else if (!strcmp(a, "--accept"))
			do_accept = true;
		else if (i + 1 >= argc)
			usage("missing value");
		else if (!strcmp(a, "--count"))
			count = parse_num(argv[++i], 1, 100000000, "--count");
		else if (!strcmp(a, "--concurrency"))
			conc = parse_num(argv[++i], 1, 1000000, "--concurrency");
		else if (!strcmp(a, "--sources"))
			sources = parse_num(argv[++i], 1, 254, "--sources");
		else if (!strcmp(a, "--spread-ms"))
			spread_ms = parse_num(argv[++i], 0, 3600000, "--spread-ms");
		else if (!strcmp(a, "--hold-ms"))
			hold_ms = parse_num(argv[++i], 0, 3600000, "--hold-ms");
		else if (!strcmp(a, "--name"))
			name = argv[++i];
		else
			usage("unknown option");
	}
	if (argc - i != 2)
		usage("want ADDR PORT");
	addr = argv[i];
	port = parse_num(argv[i + 1], 1, 65535, "port");
	if (v6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&dst;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		if (inet_pton(AF_INET6, addr, &s6->sin6_addr) != 1)
			usage("bad IPv6 address");
		dstlen = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&dst;

		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		if (inet_pton(AF_INET, addr, &s4->sin_addr) != 1)
			usage("bad IPv4 address");
		dstlen = sizeof(*s4);
	}
	if (v6 && sources > 1)
		usage("--sources is for IPv4");

	/* a batch of C sockets, the listener and its children need descriptors */
	if (getrlimit(RLIMIT_NOFILE, &rl))
		die("getrlimit");
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl))
		die("setrlimit");
	if ((rlim_t)conc + 64 > rl.rlim_cur) {
		fprintf(stderr, "synflood: --concurrency %ld needs more than RLIMIT_NOFILE %llu\n",
			conc, (unsigned long long)rl.rlim_cur);
		return 1;
	}
	fds = calloc(conc, sizeof(*fds));
	if (!fds)
		die("calloc");
	prctl(PR_SET_NAME, name, 0, 0, 0);

	if (do_accept) {
		lfd = socket(dst.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
		if (lfd < 0)
			die("socket (listener)");
		setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (v6)
			setsockopt(lfd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		if (bind(lfd, (struct sockaddr *)&dst, dstlen))
			die("bind (listener)");
		if (listen(lfd, 65535))
			die("listen");
	}

	t0 = now_ms();
	for (long n = 0; n < count; n++) {
		int fd;

		if (spread_ms) {
			double due = t0 + (double)spread_ms * n / count, t = now_ms();

			if (due > t)
				usleep((useconds_t)((due - t) * 1000));
		}
		fd = socket(dst.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
		if (fd < 0)
			die("socket");
		if (sources > 1) {
			struct sockaddr_in src = { .sin_family = AF_INET };

			src.sin_addr.s_addr = htonl(0x7f000001 + n % sources);
			setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
			if (bind(fd, (struct sockaddr *)&src, sizeof(src)))
				die("bind (source)");
		}
		if (!connect(fd, (struct sockaddr *)&dst, dstlen)) {
			connected++;
		} else if (errno == EINPROGRESS) {
			inprogress++;
		} else {
			if (!first_errno)
				first_errno = errno;
			failed++;
		}
		fds[nfds++] = fd;
		if (do_accept && (n & 63) == 0)
			accepted += drain(lfd);
		if (nfds == conc || n + 1 == count) {
			if (hold_ms)
				usleep((useconds_t)hold_ms * 1000);
			accepted += drain(lfd);
			for (int k = 0; k < nfds; k++)
				close(fds[k]);
			nfds = 0;
			batches++;
		}
	}
	accepted += drain(lfd);
	if (lfd >= 0)
		close(lfd);
	printf("{\"event\":\"done\",\"pid\":%d,\"count\":%ld,\"inprogress\":%ld,"
	       "\"connected\":%ld,\"failed\":%ld,\"first_errno\":%d,\"accepted\":%ld,"
	       "\"batches\":%ld,\"elapsed_ms\":%.0f}\n", getpid(), count, inprogress, connected,
	       failed, first_errno, accepted, batches, now_ms() - t0);
	free(fds);
	return 0;
}
