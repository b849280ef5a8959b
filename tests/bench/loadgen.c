// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * loadgen: the connection load of conntrace's benchmark (tests/bench/).
 * Runs inside the benchmark's network namespace and talks to loopback only.
 *
 *   loadgen accept  --duration S --threads T --port P   connect+accept+close storm
 *   loadgen refused --duration S --threads T --port P   connects to a closed port
 *   loadgen timeout --n N --port P [--duration MAXWAIT] N parallel connects, left to time out
 *   loadgen slowmix --rate R --duration S --port P      paced connects to a listener
 *                                                       whose SYNs nft drops in part
 *   loadgen stamp   --out FILE                          stdin lines, each prefixed with
 *                                                       its arrival time
 *
 * Each load mode prints one JSON line: attempts, rate, errors by errno name.
 * With --record FILE it also writes one line per attempt,
 * "sport errno syn_retrans elapsed_us", which the harness matches against
 * the verdicts (errno 0: established; -1: still connecting at the deadline).
 * Per-attempt data is kept in memory and written after the load ends, so
 * recording does not slow the storm down.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS	64
#define MAX_ERRNO	256
#define ERR_PENDING	(-1)	/* record: no outcome before the deadline */

struct opts {
	const char *mode;
	double duration;	/* load time; timeout: the longest wait */
	double drain;		/* slowmix: wait this long for stragglers */
	int threads;
	int port;
	int n;			/* timeout: parallel connects */
	int rate;		/* slowmix: attempts per second */
	const char *addr;
	const char *record;
	const char *out;	/* stamp */
};

/* One connection attempt as the application saw it. */
struct attempt {
	uint16_t sport;
	int16_t err;		/* errno; 0: established; ERR_PENDING */
	uint16_t syn_retrans;
	uint32_t elapsed_us;
};

struct recbuf {
	struct attempt *a;
	size_t n, cap;
};

struct worker {
	pthread_t tid;
	struct recbuf rec;
	uint64_t attempts;
	uint64_t ok;
	uint64_t errs[MAX_ERRNO];
};

static struct opts o = {
	.duration = 5, .drain = 10, .threads = 2, .n = 100, .rate = 200, .addr = "127.0.0.1",
};
static struct sockaddr_storage dst;
static socklen_t dst_len;
static int family;
static atomic_bool stop;
static uint64_t deadline_ns;

static uint64_t now_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static void die(const char *what)
{
	fprintf(stderr, "loadgen: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void rec_add(struct recbuf *r, uint16_t sport, int err, unsigned retrans, uint64_t us)
{
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 4096;
		struct attempt *a = realloc(r->a, cap * sizeof(*a));

		if (!a)
			die("out of memory for the per-attempt record");
		r->a = a;
		r->cap = cap;
	}
	r->a[r->n++] = (struct attempt){
		.sport = sport, .err = (int16_t)err, .syn_retrans = (uint16_t)retrans,
		.elapsed_us = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us,
	};
}

static void count_err(struct worker *w, int err)
{
	w->errs[err > 0 && err < MAX_ERRNO ? err : 0]++;
}

static uint16_t local_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len))
		return 0;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

static void parse_addr(void)
{
	memset(&dst, 0, sizeof(dst));
	if (strchr(o.addr, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&dst;

		s6->sin6_family = family = AF_INET6;
		s6->sin6_port = htons(o.port);
		if (inet_pton(AF_INET6, o.addr, &s6->sin6_addr) != 1)
			goto bad;
		dst_len = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&dst;

		s4->sin_family = family = AF_INET;
		s4->sin_port = htons(o.port);
		if (inet_pton(AF_INET, o.addr, &s4->sin_addr) != 1)
			goto bad;
		dst_len = sizeof(*s4);
	}
	return;
bad:
	fprintf(stderr, "loadgen: --addr: '%s' is not an IP address\n", o.addr);
	exit(2);
}

/* Enough descriptors for a burst: the soft limit goes up to the hard one. */
static void raise_nofile(rlim_t need)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		die("getrlimit(RLIMIT_NOFILE)");
	if (rl.rlim_cur < need) {
		rl.rlim_cur = rl.rlim_max;
		if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need)
			rl.rlim_cur = rl.rlim_max = need;	/* needs CAP_SYS_RESOURCE */
		if (setrlimit(RLIMIT_NOFILE, &rl)) {
			fprintf(stderr, "loadgen: need %llu file descriptors, the limit is %llu: %s\n",
				(unsigned long long)need, (unsigned long long)rl.rlim_max,
				strerror(errno));
			exit(1);
		}
	}
}

/* ---- servers ---- */

static int listen_fd = -1;

static void *acceptor(void *arg)
{
	(void)arg;
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);

		if (fd >= 0)
			close(fd);
		else if (errno != EINTR && errno != ECONNABORTED && errno != EMFILE)
			break;	/* shut down */
	}
	return NULL;
}

static void start_server(pthread_t *tids, int n)
{
	int one = 1;

	listen_fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (listen_fd < 0)
		die("socket");
	setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(listen_fd, (struct sockaddr *)&dst, dst_len))
		die("bind");
	if (listen(listen_fd, 4096))
		die("listen");
	for (int i = 0; i < n; i++)
		if ((errno = pthread_create(&tids[i], NULL, acceptor, NULL)))
			die("pthread_create");
}

static void stop_server(pthread_t *tids, int n)
{
	atomic_store(&stop, true);
	shutdown(listen_fd, SHUT_RDWR);	/* wakes the blocked accept() calls */
	for (int i = 0; i < n; i++)
		pthread_join(tids[i], NULL);
	close(listen_fd);
}

/* ---- storms: blocking connect, close, again, until the deadline ---- */

static void *storm_client(void *arg)
{
	struct worker *w = arg;
	bool record = o.record && !strcmp(o.mode, "refused");

	while (now_ns(CLOCK_MONOTONIC) < deadline_ns) {
		int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0), err = 0;

		if (fd < 0) {
			count_err(w, errno);
			w->attempts++;
			continue;
		}
		if (connect(fd, (struct sockaddr *)&dst, dst_len))
			err = errno;
		w->attempts++;
		if (err)
			count_err(w, err);
		else
			w->ok++;
		if (record)
			rec_add(&w->rec, local_port(fd), err, 0, 0);
		close(fd);
	}
	return NULL;
}

/* ---- timeout: N non-blocking connects at once, then wait for each outcome ---- */

struct pending {
	int fd;
	uint16_t sport;
	uint64_t t0;
};

static void finish(struct worker *w, struct pending *p, uint64_t now)
{
	int err = 0;
	socklen_t len = sizeof(err);
	unsigned retrans = 0;

	getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &err, &len);
	if (!err) {
		struct tcp_info ti;

		len = sizeof(ti);
		if (!getsockopt(p->fd, IPPROTO_TCP, TCP_INFO, &ti, &len))
			retrans = ti.tcpi_total_retrans;	/* all SYNs: nothing else was sent */
		w->ok++;
	} else {
		count_err(w, err);
	}
	rec_add(&w->rec, p->sport, err, retrans, (now - p->t0) / 1000);
	close(p->fd);
	p->fd = -1;
}

/* Starts one non-blocking connect; false if it finished at once (recorded). */
static bool start_connect(struct worker *w, int ep, struct pending *p)
{
	struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = p };
	int err = 0;

	w->attempts++;
	p->t0 = now_ns(CLOCK_MONOTONIC);
	p->fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (p->fd < 0) {
		count_err(w, errno);
		rec_add(&w->rec, 0, errno, 0, 0);
		return false;
	}
	if (connect(p->fd, (struct sockaddr *)&dst, dst_len) && errno != EINPROGRESS)
		err = errno;
	p->sport = local_port(p->fd);
	if (err) {
		count_err(w, err);
		rec_add(&w->rec, p->sport, err, 0, 0);
		close(p->fd);
		p->fd = -1;
		return false;
	}
	if (epoll_ctl(ep, EPOLL_CTL_ADD, p->fd, &ev))
		die("epoll_ctl");
	return true;
}

/* Waits until no connect is in flight or until `until` (monotonic ns). */
static size_t wait_outcomes(struct worker *w, int ep, size_t inflight, uint64_t until)
{
	struct epoll_event evs[256];

	while (inflight) {
		uint64_t now = now_ns(CLOCK_MONOTONIC);
		int n, ms;

		if (now >= until)
			break;
		ms = (until - now + 999999) / 1000000;
		n = epoll_wait(ep, evs, 256, ms > 100 ? 100 : ms);
		if (n < 0 && errno != EINTR)
			die("epoll_wait");
		now = now_ns(CLOCK_MONOTONIC);
		for (int i = 0; i < n; i++) {
			finish(w, evs[i].data.ptr, now);
			inflight--;
		}
	}
	return inflight;
}

static void record_pending(struct worker *w, struct pending *p, size_t np)
{
	uint64_t now = now_ns(CLOCK_MONOTONIC);

	for (size_t i = 0; i < np; i++) {
		if (p[i].fd < 0)
			continue;
		count_err(w, 0);
		rec_add(&w->rec, p[i].sport, ERR_PENDING, 0, (now - p[i].t0) / 1000);
		close(p[i].fd);
	}
}

static void run_timeout(struct worker *w)
{
	struct pending *p = calloc(o.n, sizeof(*p));
	int ep = epoll_create1(EPOLL_CLOEXEC);
	size_t inflight = 0;

	if (!p || ep < 0)
		die("setting up the burst");
	for (int i = 0; i < o.n; i++)
		inflight += start_connect(w, ep, &p[i]);
	wait_outcomes(w, ep, inflight, now_ns(CLOCK_MONOTONIC) + o.duration * 1e9);
	record_pending(w, p, o.n);
	close(ep);
	free(p);
}

/* Paced attempts, one every 1/rate s, each closed as soon as it is decided. */
static void run_slowmix(struct worker *w)
{
	size_t total = (size_t)(o.rate * o.duration), inflight = 0;
	struct pending *p = calloc(total ? total : 1, sizeof(*p));
	int ep = epoll_create1(EPOLL_CLOEXEC);
	uint64_t t0 = now_ns(CLOCK_MONOTONIC), step = 1000000000ULL / o.rate;

	if (!p || ep < 0)
		die("setting up the mix");
	for (size_t i = 0; i < total; i++) {
		size_t left;

		inflight += start_connect(w, ep, &p[i]);
		left = wait_outcomes(w, ep, inflight, t0 + (i + 1) * step);
		inflight = left;
	}
	wait_outcomes(w, ep, inflight, now_ns(CLOCK_MONOTONIC) + o.drain * 1e9);
	record_pending(w, p, total);
	close(ep);
	free(p);
}

/* ---- stamp: the harness's timestamping reader of a tracer's stdout ---- */

/*
 * Each line gets CLOCK_REALTIME and CLOCK_MONOTONIC ns of the read() that
 * completed it. Cheap enough to sit behind a tracer at 100k lines/s.
 */
static int run_stamp(void)
{
	static char buf[1 << 16];
	size_t have = 0;
	FILE *out = fopen(o.out, "w");

	if (!out)
		die(o.out);
	signal(SIGINT, SIG_IGN);	/* a Ctrl-C of the harness: read on until EOF */
	for (;;) {
		ssize_t n = read(STDIN_FILENO, buf + have, sizeof(buf) - have);
		unsigned long long real, mono;
		char *line, *nl;

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		real = now_ns(CLOCK_REALTIME);
		mono = now_ns(CLOCK_MONOTONIC);
		have += n;
		line = buf;
		while ((nl = memchr(line, '\n', buf + have - line))) {
			fprintf(out, "%llu %llu ", real, mono);
			fwrite(line, 1, nl - line + 1, out);
			line = nl + 1;
		}
		have -= line - buf;
		memmove(buf, line, have);
		if (have == sizeof(buf)) {	/* a line longer than the buffer: cut it */
			fprintf(out, "%llu %llu ", real, mono);
			fwrite(buf, 1, have, out);
			fputc('\n', out);
			have = 0;
		}
		fflush(out);
	}
	if (have) {
		fprintf(out, "%llu %llu ", (unsigned long long)now_ns(CLOCK_REALTIME),
			(unsigned long long)now_ns(CLOCK_MONOTONIC));
		fwrite(buf, 1, have, out);
		fputc('\n', out);
	}
	return fclose(out) ? 1 : 0;
}

/* ---- results ---- */

static void write_record(struct worker *ws, int nw)
{
	FILE *f = fopen(o.record, "w");

	if (!f)
		die(o.record);
	for (int i = 0; i < nw; i++)
		for (size_t k = 0; k < ws[i].rec.n; k++) {
			const struct attempt *a = &ws[i].rec.a[k];

			fprintf(f, "%u %d %u %u\n", a->sport, a->err, a->syn_retrans, a->elapsed_us);
		}
	if (fclose(f))
		die(o.record);
}

static void report(struct worker *ws, int nw, double elapsed)
{
	uint64_t attempts = 0, ok = 0, errs[MAX_ERRNO] = { 0 }, retrans = 0;
	bool first = true;

	for (int i = 0; i < nw; i++) {
		attempts += ws[i].attempts;
		ok += ws[i].ok;
		for (int e = 0; e < MAX_ERRNO; e++)
			errs[e] += ws[i].errs[e];
		for (size_t k = 0; k < ws[i].rec.n; k++)
			retrans += !ws[i].rec.a[k].err && ws[i].rec.a[k].syn_retrans;
	}
	printf("{\"mode\":\"%s\",\"pid\":%d,\"addr\":\"%s\",\"port\":%d,\"threads\":%d,"
	       "\"elapsed_s\":%.6f,\"attempts\":%llu,\"ok\":%llu,\"rate\":%.1f,"
	       "\"ok_with_syn_retrans\":%llu,\"errors\":{",
	       o.mode, (int)getpid(), o.addr, o.port, nw, elapsed, (unsigned long long)attempts,
	       (unsigned long long)ok, elapsed > 0 ? attempts / elapsed : 0.0,
	       (unsigned long long)retrans);
	for (int e = 0; e < MAX_ERRNO; e++) {
		const char *name = e ? strerrorname_np(e) : "PENDING";

		if (!errs[e])
			continue;
		printf("%s\"%s\":%llu", first ? "" : ",", name ? name : "EUNKNOWN",
		       (unsigned long long)errs[e]);
		first = false;
	}
	printf("},\"record\":");
	if (o.record)
		printf("\"%s\"", o.record);	/* a path the harness chose: no escaping needed */
	else
		printf("null");
	printf("}\n");
}

static void usage(int status)
{
	fprintf(status ? stderr : stdout,
		"usage: loadgen accept|refused|timeout|slowmix|stamp [--duration S] [--threads T]\n"
		"               [--port P] [--n N] [--rate R] [--drain S] [--addr IP]\n"
		"               [--record FILE] [--out FILE]\n");
	exit(status);
}

static void parse_args(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "duration", required_argument, NULL, 'd' },
		{ "threads", required_argument, NULL, 't' },
		{ "port", required_argument, NULL, 'p' },
		{ "n", required_argument, NULL, 'n' },
		{ "rate", required_argument, NULL, 'r' },
		{ "drain", required_argument, NULL, 'D' },
		{ "addr", required_argument, NULL, 'a' },
		{ "record", required_argument, NULL, 'R' },
		{ "out", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	int c;

	if (argc < 2)
		usage(2);
	o.mode = argv[1];
	optind = 2;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 'd': o.duration = atof(optarg); break;
		case 't': o.threads = atoi(optarg); break;
		case 'p': o.port = atoi(optarg); break;
		case 'n': o.n = atoi(optarg); break;
		case 'r': o.rate = atoi(optarg); break;
		case 'D': o.drain = atof(optarg); break;
		case 'a': o.addr = optarg; break;
		case 'R': o.record = optarg; break;
		case 'o': o.out = optarg; break;
		case 'h': usage(0); break;
		default: usage(2);
		}
	}
	if (optind != argc || o.duration <= 0 || o.threads < 1 || o.threads > MAX_THREADS ||
	    o.n < 1 || o.rate < 1 || o.drain < 0)
		usage(2);
	if (strcmp(o.mode, "stamp") && (o.port < 1 || o.port > 65535)) {
		fprintf(stderr, "loadgen: --port: a port from 1 to 65535 is needed\n");
		exit(2);
	}
}

int main(int argc, char **argv)
{
	struct worker *ws;
	pthread_t srv[MAX_THREADS];
	int nw = 1, nsrv = 0;
	uint64_t t0;

	parse_args(argc, argv);
	if (!strcmp(o.mode, "stamp")) {
		if (!o.out)
			usage(2);
		return run_stamp();
	}
	if (strcmp(o.mode, "accept") && strcmp(o.mode, "refused") && strcmp(o.mode, "timeout") &&
	    strcmp(o.mode, "slowmix"))
		usage(2);
	parse_addr();
	signal(SIGPIPE, SIG_IGN);
	raise_nofile((rlim_t)(o.n > o.rate * 16 ? o.n : o.rate * 16) + 64);

	if (!strcmp(o.mode, "accept") || !strcmp(o.mode, "refused"))
		nw = o.threads;
	ws = calloc(nw, sizeof(*ws));
	if (!ws)
		die("out of memory");
	if (!strcmp(o.mode, "accept") || !strcmp(o.mode, "slowmix")) {
		nsrv = !strcmp(o.mode, "accept") ? o.threads : 1;
		start_server(srv, nsrv);
	}

	t0 = now_ns(CLOCK_MONOTONIC);
	if (nw > 1 || !strcmp(o.mode, "accept") || !strcmp(o.mode, "refused")) {
		deadline_ns = t0 + (uint64_t)(o.duration * 1e9);
		for (int i = 0; i < nw; i++)
			if ((errno = pthread_create(&ws[i].tid, NULL, storm_client, &ws[i])))
				die("pthread_create");
		for (int i = 0; i < nw; i++)
			pthread_join(ws[i].tid, NULL);
	} else if (!strcmp(o.mode, "timeout")) {
		run_timeout(ws);
	} else {
		run_slowmix(ws);
	}
	report(ws, nw, (now_ns(CLOCK_MONOTONIC) - t0) / 1e9);
	if (nsrv)
		stop_server(srv, nsrv);
	if (o.record)
		write_record(ws, nw);
	return 0;
}
