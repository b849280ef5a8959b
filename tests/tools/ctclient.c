// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * ctclient: make exactly one TCP connection attempt and report what the
 * client saw, as one JSON line on stdout. Test helper for conntrace's
 * integration tests.
 *
 *   ctclient [-6] [--name COMM] [--announce] [--wait-stdin]
 *            [--nonblock [--abandon-after MS]] [--timeout-ms MS] [--hold-ms MS]
 *            ADDR PORT
 *
 *   -6                 AF_INET6 (ADDR must be an IPv6 literal, e.g. ::1)
 *   --name COMM        set the thread's comm with prctl(PR_SET_NAME) before
 *                      the socket is created. C-style escapes are decoded so
 *                      any byte but NUL can be passed: \\ \" \' \a \b \e \f
 *                      \n \r \t \v \xH[H] \N[N[N]] (octal). The kernel keeps
 *                      the first 15 bytes.
 *   --announce         print {"event":"connecting",...} before connect()
 *   --wait-stdin       before connect() (after --announce), wait until a line
 *                      (or EOF) arrives on stdin: lets a test start the
 *                      process, learn its pid, then release the attempt
 *   --nonblock         O_NONBLOCK socket; wait for the outcome with poll()
 *   --abandon-after MS (with --nonblock) if not connected after MS ms,
 *                      close the socket: result "abandoned"
 *   --timeout-ms MS    give up after MS ms (blocking: SO_SNDTIMEO, which
 *                      makes connect() fail with EINPROGRESS; non-blocking:
 *                      poll limit, result "EINPROGRESS"). Default: wait for
 *                      the kernel's own verdict.
 *   --hold-ms MS       after a successful connect, keep the connection open
 *                      MS ms before closing (default 0)
 *
 * Result line (always printed once, last line on stdout):
 *   {"event":"result","pid":P,"tid":T,"comm":"...","comm_hex":"...",
 *    "family":"ipv4"|"ipv6","saddr":"...","sport":N,"daddr":"...","dport":N,
 *    "result":"ok"|"abandoned"|"ECONNREFUSED"|"ETIMEDOUT"|...,
 *    "errno":N,"elapsed_ms":N}
 * sport/saddr come from getsockname() taken as early as possible: right
 * after connect() for a non-blocking socket (the port is bound by then),
 * right after connect() returns otherwise; a port seen once is kept even if
 * the kernel releases it when the attempt fails (then sport is the port the
 * attempt used, or 0 if the kernel never bound one, e.g. no route).
 *
 * Exit status: 0 when an attempt was made (whatever its outcome), 2 on a
 * usage error, 1 when the socket could not even be set up.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static void usage(const char *msg)
{
	fprintf(stderr, "ctclient: %s\n"
		"usage: ctclient [-6] [--name COMM] [--announce] "
		"[--wait-stdin] [--nonblock [--abandon-after MS]] "
		"[--timeout-ms MS] [--hold-ms MS] ADDR PORT\n", msg);
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

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decode C-style escapes of src into dst (NUL-terminated). */
static void unescape(const char *src, char *dst, size_t dstsz)
{
	size_t n = 0;

	while (*src) {
		int c = (unsigned char)*src++;

		if (c == '\\') {
			int e = (unsigned char)*src++;

			switch (e) {
			case '\\': c = '\\'; break;
			case '"': c = '"'; break;
			case '\'': c = '\''; break;
			case 'a': c = '\a'; break;
			case 'b': c = '\b'; break;
			case 'e': c = 0x1b; break;
			case 'f': c = '\f'; break;
			case 'n': c = '\n'; break;
			case 'r': c = '\r'; break;
			case 't': c = '\t'; break;
			case 'v': c = '\v'; break;
			case 'x': {
				int h = hexval(*src), h2;

				if (h < 0)
					usage("--name: \\x needs a hex digit");
				src++;
				h2 = hexval(*src);
				if (h2 >= 0) {
					h = h * 16 + h2;
					src++;
				}
				c = h;
				break;
			}
			case '0': case '1': case '2': case '3':
			case '4': case '5': case '6': case '7': {
				int v = e - '0', i;

				for (i = 0; i < 2 && *src >= '0' && *src <= '7'; i++)
					v = v * 8 + (*src++ - '0');
				if (v > 0xff)
					usage("--name: octal escape > \\377");
				c = v;
				break;
			}
			case '\0':
				usage("--name: trailing backslash");
				break;
			default:
				usage("--name: unknown escape");
			}
			if (c == 0)
				usage("--name: NUL byte cannot be part of a comm");
		}
		if (n + 1 >= dstsz)
			usage("--name: too long");
		dst[n++] = (char)c;
	}
	dst[n] = '\0';
}

/* JSON string body: escapes quote, backslash, controls, DEL; bytes >= 0x80
 * become \u00XX (their Latin-1 code point), so the output is plain ASCII. */
static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *errname(int err)
{
	const char *n = strerrorname_np(err);

	return n ? n : "EUNKNOWN";
}

struct local {
	bool seen;
	char addr[INET6_ADDRSTRLEN];
	unsigned port;
};

/* Remember the local address once the kernel has bound a port. */
static void sample_local(int fd, int family, struct local *l)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	const void *a;
	unsigned port;

	if (l->seen || getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return;
	if (family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		a = &s6->sin6_addr;
		port = ntohs(s6->sin6_port);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		a = &s4->sin_addr;
		port = ntohs(s4->sin_port);
	}
	if (!inet_ntop(family, a, l->addr, sizeof(l->addr)))
		strcpy(l->addr, "?");
	l->port = port;
	if (port)
		l->seen = true;
}

int main(int argc, char **argv)
{
	bool v6 = false, nonblock = false, announce = false, wait_stdin = false;
	long abandon_ms = -1, timeout_ms = -1, hold_ms = 0;
	const char *name = NULL, *addr, *result;
	char comm[64] = "", rawname[256];
	struct sockaddr_storage ss;
	struct local loc = { .addr = "" };
	socklen_t sslen;
	long long t0, t1;
	int family, fd, i, err = 0, port;

	for (i = 1; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--")) {
			i++;
			break;
		} else if (!strcmp(a, "-6")) {
			v6 = true;
		} else if (!strcmp(a, "--nonblock")) {
			nonblock = true;
		} else if (!strcmp(a, "--announce")) {
			announce = true;
		} else if (!strcmp(a, "--wait-stdin")) {
			wait_stdin = true;
		} else if (!strcmp(a, "--name")) {
			if (++i >= argc)
				usage("--name needs a value");
			name = argv[i];
		} else if (!strcmp(a, "--abandon-after")) {
			if (++i >= argc)
				usage("--abandon-after needs a value");
			abandon_ms = parse_num(argv[i], 0, 3600000, "--abandon-after");
		} else if (!strcmp(a, "--timeout-ms")) {
			if (++i >= argc)
				usage("--timeout-ms needs a value");
			timeout_ms = parse_num(argv[i], 1, 3600000, "--timeout-ms");
		} else if (!strcmp(a, "--hold-ms")) {
			if (++i >= argc)
				usage("--hold-ms needs a value");
			hold_ms = parse_num(argv[i], 0, 3600000, "--hold-ms");
		} else {
			usage("unknown option");
		}
	}
	if (argc - i != 2)
		usage("need ADDR and PORT");
	if (abandon_ms >= 0 && !nonblock)
		usage("--abandon-after needs --nonblock");
	addr = argv[i];
	port = (int)parse_num(argv[i + 1], 1, 65535, "PORT");

	family = v6 ? AF_INET6 : AF_INET;
	memset(&ss, 0, sizeof(ss));
	if (v6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		if (inet_pton(AF_INET6, addr, &s6->sin6_addr) != 1)
			usage("bad IPv6 ADDR");
		sslen = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		if (inet_pton(AF_INET, addr, &s4->sin_addr) != 1)
			usage("bad IPv4 ADDR");
		sslen = sizeof(*s4);
	}

	if (name) {
		unescape(name, rawname, sizeof(rawname));
		if (prctl(PR_SET_NAME, rawname, 0, 0, 0) < 0) {
			perror("ctclient: prctl(PR_SET_NAME)");
			return 1;
		}
	}
	if (prctl(PR_GET_NAME, comm, 0, 0, 0) < 0) {
		perror("ctclient: prctl(PR_GET_NAME)");
		return 1;
	}

	fd = socket(family, SOCK_STREAM | (nonblock ? SOCK_NONBLOCK : 0), 0);
	if (fd < 0) {
		perror("ctclient: socket");
		return 1;
	}
	if (!nonblock && timeout_ms > 0) {
		struct timeval tv = {
			.tv_sec = timeout_ms / 1000,
			.tv_usec = (timeout_ms % 1000) * 1000,
		};

		if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0) {
			perror("ctclient: SO_SNDTIMEO");
			return 1;
		}
	}

	if (announce) {
		printf("{\"event\":\"connecting\",\"pid\":%d,\"tid\":%ld}\n",
		       (int)getpid(), (long)syscall(SYS_gettid));
		fflush(stdout);
	}
	if (wait_stdin) {
		int ch;

		while ((ch = getchar()) != EOF && ch != '\n')
			;
	}

	t0 = now_ms();
	if (connect(fd, (struct sockaddr *)&ss, sslen) == 0) {
		err = 0;
	} else {
		err = errno;
	}
	sample_local(fd, family, &loc);
	result = NULL;

	if (err == EINPROGRESS && nonblock) {
		struct pollfd pfd = { .fd = fd, .events = POLLOUT };
		long wait = abandon_ms >= 0 ? abandon_ms : timeout_ms;
		int r;

		do {
			r = poll(&pfd, 1, wait >= 0 ? (int)wait : -1);
		} while (r < 0 && errno == EINTR);
		if (r < 0) {
			perror("ctclient: poll");
			return 1;
		}
		if (r == 0) {
			/* still SYN_SENT: give up on it */
			result = abandon_ms >= 0 ? "abandoned" : NULL;
			err = EINPROGRESS;
		} else {
			socklen_t el = sizeof(err);

			if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
				err = errno;
		}
	}
	sample_local(fd, family, &loc);
	if (!err && hold_ms > 0)
		usleep((useconds_t)hold_ms * 1000);
	close(fd);
	t1 = now_ms();

	if (!result)
		result = err ? errname(err) : "ok";

	printf("{\"event\":\"result\",\"pid\":%d,\"tid\":%ld,\"comm\":",
	       (int)getpid(), (long)syscall(SYS_gettid));
	json_str(comm);
	printf(",\"comm_hex\":\"");
	for (i = 0; comm[i]; i++)
		printf("%02x", (unsigned char)comm[i]);
	printf("\",\"family\":\"%s\",\"saddr\":", v6 ? "ipv6" : "ipv4");
	json_str(loc.addr);
	printf(",\"sport\":%u,\"daddr\":", loc.port);
	json_str(addr);
	printf(",\"dport\":%d,\"result\":\"%s\",\"errno\":%d,\"elapsed_ms\":%lld}\n",
	       port, result, err, t1 - t0);
	return fflush(stdout) ? 1 : 0;
}
