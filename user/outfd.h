/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Standard output as a stdio stream that never blocks the collector and
 * that a stop request can cut short.
 *
 * A plain write(2) to a pipe nobody reads blocks for ever: conntrace would
 * stop draining the ring (its records would be lost in the kernel) and never
 * see a stop signal. Here what the writers print to a pipe, socket or
 * terminal is queued in memory, and a writer thread writes it in order,
 * waiting for room with poll() in slices and checking the stop flag between
 * them; at most PIPE_BUF bytes a write, which a pipe with room takes
 * without blocking. How much may wait is the caller's to bound
 * (outfd_queued(): the collector drops verdicts beyond --buffer, counted).
 * Once the flag is set the reader gets a grace period, renewed whenever it
 * takes something; what it does not take by then is dropped (and counted),
 * so a stop is prompt when nobody reads.
 *
 * A regular file takes each flush at once, without the thread. A reader that
 * went away (EPIPE; SIGPIPE is ignored) marks the stream gone; any other
 * write error is kept for the caller to report.
 */
#ifndef CONNTRACE_OUTFD_H
#define CONNTRACE_OUTFD_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct outfd_config {
	int fd;
	const volatile sig_atomic_t *stop;	/* set by a signal handler */
	unsigned grace_ms;	/* once *stop is set, how long a blocked write may wait */
};

struct outfd;

/* 0 or a negative errno. Ignores SIGPIPE for the whole process. */
int outfd_open(struct outfd **out, const struct outfd_config *cfg);
/*
 * Wakes the writer thread for what waits, after the caller flushed the
 * stream. A flush alone wakes it only once 128 KB wait (and outfd_close()
 * does): the caller kicks once per batch of lines, so that a small batch
 * is not left waiting.
 */
void outfd_kick(struct outfd *o);
/* The stream to write to. Its writes never fail to stdio: outfd counts. */
FILE *outfd_stream(struct outfd *o);
/* The reader went away (EPIPE). */
bool outfd_gone(struct outfd *o);
/* The first write error other than EPIPE, as a positive errno; 0 if none. */
int outfd_error(struct outfd *o);
/* Bytes waiting for the reader (0 for a regular file, or o NULL). */
size_t outfd_queued(struct outfd *o);
/* Lines (whole or cut) that were not written: the reader gone, the grace over. */
uint64_t outfd_lines_dropped(struct outfd *o);
/* Flushes and writes what it still can (within the grace once stopped), frees. */
void outfd_close(struct outfd *o);

#endif
