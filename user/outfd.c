// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Standard output through fopencookie(): the writers print with stdio, the
 * write callback below waits for room with poll() so that a stop request is
 * seen even while the reader does not read (see outfd.h).
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "outfd.h"

#define STREAM_BUF	(64 * 1024)
#define WAIT_SLICE_MS	100	/* a stop flag set meanwhile is seen this fast */

struct outfd {
	int fd;
	const volatile sig_atomic_t *stop;
	unsigned grace_ms;
	size_t chunk;		/* bytes per write(2): PIPE_BUF unless a file */
	bool may_block;		/* not a regular file: wait for room first */
	bool gone;
	int err;
	uint64_t deadline_ms;	/* set when the stop flag is first seen */
	uint64_t dropped;
	FILE *stream;
};

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000ULL + ts.tv_nsec / 1000000;
}

static uint64_t count_lines(const char *p, size_t n)
{
	uint64_t k = 0;

	for (const char *e = p + n; (p = memchr(p, '\n', e - p)); p++)
		k++;
	return k;
}

/*
 * 0 once the fd takes a write, -ETIMEDOUT once stopped and the grace is
 * over, another -errno if poll() fails. POLLERR/POLLHUP count as writable:
 * the write then says what happened (EPIPE).
 */
static int wait_writable(struct outfd *o)
{
	for (;;) {
		struct pollfd p = { .fd = o->fd, .events = POLLOUT };
		int timeout = WAIT_SLICE_MS, n;

		if (*o->stop) {
			uint64_t now = mono_ms();

			if (!o->deadline_ms)
				o->deadline_ms = now + o->grace_ms;
			/* past the grace: one last look, without waiting */
			timeout = now >= o->deadline_ms ? 0 : (int)(o->deadline_ms - now);
			if (timeout > WAIT_SLICE_MS)
				timeout = WAIT_SLICE_MS;
		}
		n = poll(&p, 1, timeout);
		if (n < 0 && errno != EINTR)
			return -errno;
		if (n > 0 && (p.revents & POLLNVAL))
			return -EBADF;
		if (n > 0)
			return 0;
		if (n == 0 && *o->stop && mono_ms() >= o->deadline_ms)
			return -ETIMEDOUT;
	}
}

/* Up to o->chunk bytes of p, ending at a newline when one is in reach. */
static size_t next_chunk(const struct outfd *o, const char *p, size_t n)
{
	const char *nl;

	if (n <= o->chunk)
		return n;
	nl = memrchr(p, '\n', o->chunk);
	return nl ? (size_t)(nl - p + 1) : o->chunk;
}

static ssize_t outfd_write(void *cookie, const char *buf, size_t size)
{
	struct outfd *o = cookie;
	size_t done = 0;

	while (done < size && !o->gone && !o->err) {
		size_t n = next_chunk(o, buf + done, size - done);
		ssize_t w;

		if (o->may_block && wait_writable(o) < 0)
			break;	/* stopped and the reader did not make room in time */
		w = write(o->fd, buf + done, n);
		if (w < 0 && (errno == EINTR || errno == EAGAIN))
			continue;	/* a signal (the stop flag is checked next) */
		if (w < 0 && errno == EPIPE)
			o->gone = true;
		else if (w <= 0)
			o->err = w < 0 ? errno : EIO;
		else
			done += w;
	}
	if (done < size)
		o->dropped += count_lines(buf + done, size - done);
	/* stdio never sees a failure: it would keep or drop bytes on its own terms */
	return size;
}

int outfd_open(struct outfd **out, const struct outfd_config *cfg)
{
	cookie_io_functions_t io = { .write = outfd_write };
	struct outfd *o;
	struct stat st;

	*out = NULL;
	o = calloc(1, sizeof(*o));
	if (!o)
		return -ENOMEM;
	o->fd = cfg->fd;
	o->stop = cfg->stop;
	o->grace_ms = cfg->grace_ms;
	if (fstat(o->fd, &st)) {
		int err = -errno;

		free(o);
		return err;
	}
	/* a regular file never waits for a reader: one write per flush */
	o->may_block = !S_ISREG(st.st_mode);
	o->chunk = o->may_block ? PIPE_BUF : SIZE_MAX;
	/* a reader gone must be EPIPE, seen here, not a signal that kills */
	signal(SIGPIPE, SIG_IGN);
	o->stream = fopencookie(o, "w", io);
	if (!o->stream || setvbuf(o->stream, NULL, _IOFBF, STREAM_BUF)) {
		if (o->stream)
			fclose(o->stream);
		free(o);
		return -ENOMEM;
	}
	*out = o;
	return 0;
}

FILE *outfd_stream(struct outfd *o)
{
	return o->stream;
}

bool outfd_gone(const struct outfd *o)
{
	return o && o->gone;
}

int outfd_error(const struct outfd *o)
{
	return o ? o->err : 0;
}

uint64_t outfd_lines_dropped(const struct outfd *o)
{
	return o ? o->dropped : 0;
}

void outfd_close(struct outfd *o)
{
	if (!o)
		return;
	fclose(o->stream);	/* flushes through outfd_write */
	free(o);
}
