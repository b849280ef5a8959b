// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Standard output through fopencookie(): the writers print with stdio. To a
 * regular file the bytes are written at once. To a pipe, socket or terminal
 * they are queued in memory and a writer thread writes them, waiting for
 * room with poll() in slices so that a stop request is seen even while the
 * reader does not read (see outfd.h): the collector's thread never blocks
 * on its reader, so it goes on draining the ring.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "outfd.h"

#define STREAM_BUF	(64 * 1024)
#define WAIT_SLICE_MS	100	/* a stop flag set meanwhile is seen this fast */
/*
 * The writer thread is woken by outfd_kick() (the collector's, once a
 * drain) or when this much waits, not for every stdio flush: a futex call
 * and a context switch per 64 KB were a fifth of conntrace's time in a
 * JSON storm to /dev/null (perf). Not a whole drain either: a lagging
 * reader would be handed bursts, and the queue would grow.
 */
#define WAKE_BYTES	(128 * 1024)
#define MAX_SPARE	2	/* chunks kept for reuse: no page faults per flush */

/* A stdio flush's bytes, waiting for the reader. */
struct chunk {
	struct chunk *next;
	size_t len, cap;
	char data[];
};

struct outfd {
	int fd;
	const volatile sig_atomic_t *stop;
	unsigned grace_ms;
	size_t chunk;		/* bytes per write(2): PIPE_BUF unless a file */
	bool may_block;		/* not a regular file: the writer thread writes */
	uint64_t deadline_ms;	/* writer: once stopped, give up at this time */
	FILE *stream;
	/* shared by the collector's thread and the writer thread */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t thread;
	bool started, closing;
	struct chunk *head, *tail;
	struct chunk *spare;	/* written chunks kept for reuse */
	unsigned nr_spare;
	bool idle;		/* the writer thread waits for a chunk */
	size_t queued;		/* bytes in the chunks */
	bool gone;
	bool dead;		/* the writer quit: gone, failed, or stopped unread */
	int err;
	uint64_t dropped;
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
 * 0 once the fd takes a write, -ETIMEDOUT once stopped and the reader took
 * nothing for the grace, another -errno if poll() fails. POLLERR/POLLHUP
 * count as writable: the write then says what happened (EPIPE).
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

/*
 * Writes buf whole unless the reader went away, a write failed, or a stop
 * came and the reader then took nothing for the grace period. The bytes
 * written; the outcome in o->gone / o->err (set under the lock).
 */
static size_t write_out(struct outfd *o, const char *buf, size_t size)
{
	size_t done = 0;
	bool gone = false;
	int err = 0;

	while (done < size && !gone && !err) {
		size_t n = next_chunk(o, buf + done, size - done);
		ssize_t w;

		if (o->may_block && wait_writable(o) < 0)
			break;	/* stopped and the reader did not make room in time */
		w = write(o->fd, buf + done, n);
		if (w < 0 && (errno == EINTR || errno == EAGAIN))
			continue;	/* a signal (the stop flag is checked next) */
		if (w < 0 && errno == EPIPE)
			gone = true;
		else if (w <= 0)
			err = w < 0 ? errno : EIO;
		else
			done += w;
		/* a reader that takes what it is given gets the grace anew */
		if (w > 0 && o->deadline_ms)
			o->deadline_ms = mono_ms() + o->grace_ms;
	}
	if (gone || err) {
		pthread_mutex_lock(&o->lock);
		o->gone |= gone;
		if (!o->err)
			o->err = err;
		pthread_mutex_unlock(&o->lock);
	}
	return done;
}

static struct chunk *chunk_alloc(size_t cap)
{
	struct chunk *c = malloc(sizeof(*c) + cap);

	if (c)
		c->cap = cap;
	return c;
}

static void chunk_free(struct chunk *c)
{
	free(c);
}

/* A written chunk: kept for the next flush, or freed. Called with the lock held. */
static void chunk_put(struct outfd *o, struct chunk *c)
{
	if (o->nr_spare < MAX_SPARE && c->cap == STREAM_BUF) {
		c->next = o->spare;
		o->spare = c;
		o->nr_spare++;
		return;
	}
	chunk_free(c);
}

/* A chunk for size bytes: a spare one, else allocated. Called with the lock held. */
static struct chunk *chunk_get(struct outfd *o, size_t size)
{
	struct chunk *c = o->spare;

	if (c && size <= c->cap) {
		o->spare = c->next;
		o->nr_spare--;
		return c;
	}
	/* the size it holds, not a buffer's: a lagging reader leaves many
	 * small chunks (the end of each drain) queued */
	return chunk_alloc(size);
}

static void free_spares(struct outfd *o)
{
	struct chunk *c;

	while ((c = o->spare)) {
		o->spare = c->next;
		chunk_free(c);
	}
	o->nr_spare = 0;
}

/* Frees the queue; its lines count as dropped. Called with the lock held. */
static void drop_queue(struct outfd *o)
{
	struct chunk *c;

	while ((c = o->head)) {
		o->head = c->next;
		o->dropped += count_lines(c->data, c->len);
		chunk_put(o, c);
	}
	o->tail = NULL;
	o->queued = 0;
}

/* The writer thread: the queue in order, until closed and empty. */
static void *writer_main(void *arg)
{
	struct outfd *o = arg;

	pthread_mutex_lock(&o->lock);
	for (;;) {
		struct chunk *c = o->head;
		size_t done, len;

		if (!c && o->closing)
			break;
		if (!c) {
			o->idle = true;
			pthread_cond_wait(&o->cond, &o->lock);
			o->idle = false;
			continue;
		}
		pthread_mutex_unlock(&o->lock);
		/* written while still queued: outfd_queued() counts it until it is out */
		done = write_out(o, c->data, c->len);
		pthread_mutex_lock(&o->lock);
		o->head = c->next;
		if (!o->head)
			o->tail = NULL;
		o->queued -= c->len;
		len = c->len;
		if (done < len)
			o->dropped += count_lines(c->data + done, len - done);
		chunk_put(o, c);
		if (done < len) {
			/* gone, failed, or stopped and not read: what waits is lost too */
			o->dead = true;
			drop_queue(o);
			break;
		}
	}
	pthread_mutex_unlock(&o->lock);
	return NULL;
}

/* stdio's flush: queued for the writer thread, or written at once to a file. */
static ssize_t outfd_write(void *cookie, const char *buf, size_t size)
{
	struct outfd *o = cookie;
	struct chunk *c;
	size_t done;

	if (!o->may_block) {
		done = write_out(o, buf, size);
		if (done < size)
			o->dropped += count_lines(buf + done, size - done);
		return size;	/* stdio never sees a failure: it would keep or drop bytes */
	}
	pthread_mutex_lock(&o->lock);
	c = o->dead ? NULL : chunk_get(o, size);
	if (!c) {
		o->dropped += count_lines(buf, size);
		pthread_mutex_unlock(&o->lock);
		return size;
	}
	pthread_mutex_unlock(&o->lock);
	memcpy(c->data, buf, size);
	c->len = size;
	c->next = NULL;
	pthread_mutex_lock(&o->lock);
	if (o->tail)
		o->tail->next = c;
	else
		o->head = c;
	o->tail = c;
	o->queued += size;
	if (o->idle && o->queued >= WAKE_BYTES)
		pthread_cond_signal(&o->cond);
	pthread_mutex_unlock(&o->lock);
	return size;
}

void outfd_kick(struct outfd *o)
{
	if (!o || !o->started)
		return;
	pthread_mutex_lock(&o->lock);
	if (o->idle && o->head)
		pthread_cond_signal(&o->cond);
	pthread_mutex_unlock(&o->lock);
}

/* The writer thread takes no signal: the stop signals wake the collector's. */
static int start_writer(struct outfd *o)
{
	sigset_t all, old;
	int err;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	err = pthread_create(&o->thread, NULL, writer_main, o);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err)
		return -err;
	o->started = true;
	return 0;
}

int outfd_open(struct outfd **out, const struct outfd_config *cfg)
{
	cookie_io_functions_t io = { .write = outfd_write };
	struct outfd *o;
	struct stat st;
	int err;

	*out = NULL;
	o = calloc(1, sizeof(*o));
	if (!o)
		return -ENOMEM;
	o->fd = cfg->fd;
	o->stop = cfg->stop;
	o->grace_ms = cfg->grace_ms;
	pthread_mutex_init(&o->lock, NULL);
	pthread_cond_init(&o->cond, NULL);
	if (fstat(o->fd, &st)) {
		err = -errno;
		goto fail;
	}
	/* a regular file never waits for a reader: one write per flush */
	o->may_block = !S_ISREG(st.st_mode);
	o->chunk = o->may_block ? PIPE_BUF : SIZE_MAX;
	/* a reader gone must be EPIPE, seen here, not a signal that kills */
	signal(SIGPIPE, SIG_IGN);
	err = -ENOMEM;
	o->stream = fopencookie(o, "w", io);
	if (!o->stream || setvbuf(o->stream, NULL, _IOFBF, STREAM_BUF))
		goto fail;
	err = o->may_block ? start_writer(o) : 0;
	if (err)
		goto fail;
	*out = o;
	return 0;
fail:
	if (o->stream)
		fclose(o->stream);
	pthread_cond_destroy(&o->cond);
	pthread_mutex_destroy(&o->lock);
	free(o);
	return err;
}

FILE *outfd_stream(struct outfd *o)
{
	return o->stream;
}

bool outfd_gone(struct outfd *o)
{
	bool gone;

	if (!o)
		return false;
	pthread_mutex_lock(&o->lock);
	gone = o->gone;
	pthread_mutex_unlock(&o->lock);
	return gone;
}

int outfd_error(struct outfd *o)
{
	int err;

	if (!o)
		return 0;
	pthread_mutex_lock(&o->lock);
	err = o->err;
	pthread_mutex_unlock(&o->lock);
	return err;
}

size_t outfd_queued(struct outfd *o)
{
	size_t n;

	if (!o)
		return 0;
	pthread_mutex_lock(&o->lock);
	n = o->queued;
	pthread_mutex_unlock(&o->lock);
	return n;
}

uint64_t outfd_lines_dropped(struct outfd *o)
{
	uint64_t n;

	if (!o)
		return 0;
	pthread_mutex_lock(&o->lock);
	n = o->dropped;
	pthread_mutex_unlock(&o->lock);
	return n;
}

void outfd_close(struct outfd *o)
{
	if (!o)
		return;
	fclose(o->stream);	/* flushes through outfd_write */
	if (o->started) {
		/* the thread writes what waits (within the grace once stopped) */
		pthread_mutex_lock(&o->lock);
		o->closing = true;
		pthread_cond_signal(&o->cond);
		pthread_mutex_unlock(&o->lock);
		pthread_join(o->thread, NULL);
	}
	drop_queue(o);
	free_spares(o);
	pthread_cond_destroy(&o->cond);
	pthread_mutex_destroy(&o->lock);
	free(o);
}
