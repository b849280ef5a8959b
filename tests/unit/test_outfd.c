// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * outfd.c: standard output that never blocks its caller and that a stop
 * request can cut short. Real pipes: everything arrives, in order, when the
 * reader reads; a full pipe nobody reads holds the lines in memory, and only
 * until the stop flag is set and the grace is over (the lines left are
 * dropped and counted, the ones written are whole); a reader gone
 * is EPIPE, seen as "gone", never a SIGPIPE that kills; a stop signal
 * arriving while the write waits is seen at once; the writer thread wakes
 * when kicked or when 128 KB wait, not for every flush.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>
#include "outfd.h"

#define CHECK(cond, ...) do { if (!(cond)) fail_msg(__VA_ARGS__); } while (0)

static volatile sig_atomic_t stop;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* A pipe of one page, so that a few lines fill it. */
static void small_pipe(int p[2])
{
	assert_int_equal(pipe(p), 0);
	CHECK(fcntl(p[1], F_SETPIPE_SZ, 4096) >= 4096, "F_SETPIPE_SZ: %s", strerror(errno));
}

/* n lines of 100 bytes: "line NNNNNN xxx...\n" */
static void write_lines(FILE *f, int n)
{
	for (int i = 0; i < n; i++)
		fprintf(f, "line %06d %87s\n", i, "x");
}

struct reader {
	int fd;
	size_t bytes;
	char *buf;
	size_t cap;
};

static void *read_all(void *arg)
{
	struct reader *r = arg;
	ssize_t n;

	for (;;) {
		if (r->bytes == r->cap) {
			r->cap = r->cap ? r->cap * 2 : 65536;
			r->buf = realloc(r->buf, r->cap);
		}
		n = read(r->fd, r->buf + r->bytes, r->cap - r->bytes);
		if (n <= 0)
			break;
		r->bytes += n;
	}
	return NULL;
}

static void test_everything_reaches_a_reader(void **state)
{
	struct outfd_config cfg = { .stop = &stop, .grace_ms = 200 };
	struct reader r = { 0 };
	struct outfd *o;
	pthread_t th;
	int p[2];

	(void)state;
	stop = 0;
	small_pipe(p);
	r.fd = p[0];
	cfg.fd = p[1];
	assert_int_equal(outfd_open(&o, &cfg), 0);
	assert_int_equal(pthread_create(&th, NULL, read_all, &r), 0);
	write_lines(outfd_stream(o), 5000);	/* 500 KB through a 4 KB pipe */
	fflush(outfd_stream(o));
	outfd_kick(o);
	outfd_close(o);
	close(p[1]);
	pthread_join(th, NULL);
	close(p[0]);
	assert_int_equal(r.bytes, 5000 * 100);
	CHECK(!memcmp(r.buf + 4999 * 100, "line 004999 ", 12), "last line: %.12s",
	      r.buf + 4999 * 100);
	free(r.buf);
}

/* Waits up to 3 s for the writer thread to have dropped n lines. */
static void wait_dropped(struct outfd *o, uint64_t n)
{
	double t0 = now_s();

	while (outfd_lines_dropped(o) < n && now_s() - t0 < 3)
		usleep(1000);
}

static void test_a_stalled_reader_does_not_block_the_writer(void **state)
{
	struct outfd_config cfg = { .stop = &stop, .grace_ms = 200 };
	struct reader r = { 0 };
	struct outfd *o;
	pthread_t th;
	double t0;
	int p[2];

	(void)state;
	stop = 0;
	small_pipe(p);
	cfg.fd = p[1];
	assert_int_equal(outfd_open(&o, &cfg), 0);
	/* nobody reads: 500 KB through a 4 KB pipe returns at once, queued */
	t0 = now_s();
	write_lines(outfd_stream(o), 5000);
	fflush(outfd_stream(o));
	outfd_kick(o);
	CHECK(now_s() - t0 < 0.5, "writing to a stalled reader took %.3f s", now_s() - t0);
	CHECK(outfd_queued(o) >= 5000 * 100 - 4096 && outfd_queued(o) <= 5000 * 100,
	      "%zu bytes queued", outfd_queued(o));
	usleep(300 * 1000);	/* longer than the grace: it only counts once stopped */
	assert_int_equal(outfd_lines_dropped(o), 0);
	/* the reader comes back: everything, in order */
	r.fd = p[0];
	assert_int_equal(pthread_create(&th, NULL, read_all, &r), 0);
	outfd_close(o);
	close(p[1]);
	pthread_join(th, NULL);
	close(p[0]);
	assert_int_equal(r.bytes, 5000 * 100);
	for (int i = 0; i < 5000; i += 499) {
		char want[16];

		snprintf(want, sizeof(want), "line %06d ", i);
		CHECK(!memcmp(r.buf + i * 100, want, 12), "line %d: %.12s", i, r.buf + i * 100);
	}
	free(r.buf);
}

static void test_stop_cuts_a_blocked_write_short(void **state)
{
	struct outfd_config cfg = { .stop = &stop, .grace_ms = 300 };
	struct outfd *o;
	char buf[8192];
	double t0, took;
	ssize_t n;
	int p[2], queued = 0;

	(void)state;
	stop = 1;	/* stopping: the reader has 300 ms, and does not read */
	small_pipe(p);
	cfg.fd = p[1];
	assert_int_equal(outfd_open(&o, &cfg), 0);
	t0 = now_s();
	write_lines(outfd_stream(o), 1000);
	fflush(outfd_stream(o));
	outfd_kick(o);
	CHECK(now_s() - t0 < 0.2, "the caller waited %.3f s for the reader", now_s() - t0);
	wait_dropped(o, 1);
	took = now_s() - t0;
	CHECK(took >= 0.25 && took < 2.0, "gave up after %.3f s for a grace of 0.3 s", took);
	/* what made it is whole lines; the rest is counted as dropped */
	assert_int_equal(ioctl(p[0], FIONREAD, &queued), 0);
	CHECK(queued > 0 && queued % 100 == 0, "%d bytes in the pipe", queued);
	assert_int_equal(outfd_lines_dropped(o), 1000 - queued / 100);
	assert_int_equal(outfd_queued(o), 0);
	assert_false(outfd_gone(o));
	assert_int_equal(outfd_error(o), 0);
	/* once it gave up, later lines are dropped at once */
	t0 = now_s();
	write_lines(outfd_stream(o), 1000);
	fflush(outfd_stream(o));
	outfd_kick(o);
	CHECK(now_s() - t0 < 0.2, "after the grace, a write still waited %.3f s", now_s() - t0);
	assert_int_equal(outfd_lines_dropped(o), 2000 - queued / 100);
	n = read(p[0], buf, sizeof(buf));
	assert_int_equal(n, queued);
	CHECK(buf[n - 1] == '\n' && !memcmp(buf, "line 000000 ", 12), "%.12s", buf);
	outfd_close(o);
	close(p[0]);
	close(p[1]);
}

static void *raise_stop_later(void *arg)
{
	(void)arg;
	usleep(200 * 1000);
	stop = 1;
	return NULL;
}

static void test_stop_seen_while_waiting(void **state)
{
	struct outfd_config cfg = { .stop = &stop, .grace_ms = 0 };
	struct outfd *o;
	pthread_t th;
	double t0, took;
	int p[2];

	(void)state;
	stop = 0;
	small_pipe(p);
	cfg.fd = p[1];
	assert_int_equal(outfd_open(&o, &cfg), 0);
	assert_int_equal(pthread_create(&th, NULL, raise_stop_later, NULL), 0);
	t0 = now_s();
	write_lines(outfd_stream(o), 1000);	/* the thread blocks: nobody reads */
	fflush(outfd_stream(o));
	outfd_kick(o);
	wait_dropped(o, 900);
	took = now_s() - t0;
	pthread_join(th, NULL);
	CHECK(took >= 0.15 && took < 1.0, "stop set after 0.2 s, write gave up after %.3f s",
	      took);
	CHECK(outfd_lines_dropped(o) > 900, "%llu lines dropped",
	      (unsigned long long)outfd_lines_dropped(o));
	outfd_close(o);
	close(p[0]);
	close(p[1]);
}

/* Reads what is in the pipe now, without waiting: the bytes read. */
static size_t read_now(int fd, char *buf, size_t cap)
{
	int avail = 0;

	assert_int_equal(ioctl(fd, FIONREAD, &avail), 0);
	if (avail <= 0)
		return 0;
	assert_int_equal(read(fd, buf, cap), avail);
	return avail;
}

/*
 * A flush queues; the writer thread writes once kicked (the collector kicks
 * once a drain) or once 128 KB wait, not for every flush.
 */
static void test_kicked_once_a_batch(void **state)
{
	struct outfd_config cfg = { .stop = &stop, .grace_ms = 200 };
	static char buf[1 << 20];
	struct outfd *o;
	size_t got = 0;
	double t0;
	int p[2];

	(void)state;
	stop = 0;
	assert_int_equal(pipe(p), 0);
	CHECK(fcntl(p[1], F_SETPIPE_SZ, 1 << 20) >= 1 << 20, "F_SETPIPE_SZ: %s", strerror(errno));
	cfg.fd = p[1];
	assert_int_equal(outfd_open(&o, &cfg), 0);
	usleep(50 * 1000);	/* the thread waits for work */
	write_lines(outfd_stream(o), 10);
	fflush(outfd_stream(o));
	usleep(100 * 1000);
	assert_int_equal(read_now(p[0], buf, sizeof(buf)), 0);
	assert_int_equal(outfd_queued(o), 10 * 100);
	outfd_kick(o);
	for (t0 = now_s(); got < 10 * 100 && now_s() - t0 < 3; usleep(1000))
		got += read_now(p[0], buf + got, sizeof(buf) - got);
	assert_int_equal(got, 10 * 100);
	CHECK(!memcmp(buf, "line 000000 ", 12), "%.12s", buf);
	/* without a kick, 128 KB waiting wake it */
	usleep(50 * 1000);
	write_lines(outfd_stream(o), 3000);
	fflush(outfd_stream(o));
	for (got = 0, t0 = now_s(); got < 3000 * 100 && now_s() - t0 < 3; usleep(1000))
		got += read_now(p[0], buf, sizeof(buf));
	assert_int_equal(got, 3000 * 100);
	outfd_close(o);
	close(p[0]);
	close(p[1]);
}

static void test_reader_gone_is_epipe_not_a_signal(void **state)
{
	struct outfd_config cfg = { .stop = &stop, .grace_ms = 100 };
	struct outfd *o;
	int p[2];

	(void)state;
	stop = 0;
	signal(SIGPIPE, SIG_DFL);	/* outfd_open() must ignore it */
	small_pipe(p);
	cfg.fd = p[1];
	assert_int_equal(outfd_open(&o, &cfg), 0);
	close(p[0]);
	write_lines(outfd_stream(o), 10);
	fflush(outfd_stream(o));	/* the thread would die of SIGPIPE */
	outfd_kick(o);
	wait_dropped(o, 10);
	assert_true(outfd_gone(o));
	assert_int_equal(outfd_error(o), 0);
	assert_int_equal(outfd_lines_dropped(o), 10);
	outfd_close(o);
	close(p[1]);
}

static void test_other_write_errors_kept(void **state)
{
	struct outfd_config cfg = { .stop = &stop, .grace_ms = 100 };
	struct outfd *o;
	int fd = open("/dev/full", O_WRONLY);

	(void)state;
	stop = 0;
	assert_true(fd >= 0);
	cfg.fd = fd;
	assert_int_equal(outfd_open(&o, &cfg), 0);
	write_lines(outfd_stream(o), 3);
	fflush(outfd_stream(o));
	outfd_kick(o);
	wait_dropped(o, 3);
	assert_false(outfd_gone(o));
	assert_int_equal(outfd_error(o), ENOSPC);
	assert_int_equal(outfd_lines_dropped(o), 3);
	outfd_close(o);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_everything_reaches_a_reader),
		cmocka_unit_test(test_a_stalled_reader_does_not_block_the_writer),
		cmocka_unit_test(test_stop_cuts_a_blocked_write_short),
		cmocka_unit_test(test_stop_seen_while_waiting),
		cmocka_unit_test(test_kicked_once_a_batch),
		cmocka_unit_test(test_reader_gone_is_epipe_not_a_signal),
		cmocka_unit_test(test_other_write_errors_kept),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
