/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Standard output as a stdio stream that a stop request can cut short.
 *
 * A plain write(2) to a pipe nobody reads blocks for ever, and a signal
 * handler can only set a flag: conntrace would never see it. Here every
 * write to a pipe, socket or terminal first waits for room with poll(), in
 * slices, checking the stop flag between them, and then writes at most
 * PIPE_BUF bytes, which a pipe with room takes without blocking. Once the
 * flag is set, the reader gets a grace period to take what is left; what it
 * does not take by then is dropped (and counted), so a stop is prompt.
 *
 * A reader that went away (EPIPE; SIGPIPE is ignored) marks the stream gone;
 * any other write error is kept for the caller to report.
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
/* The stream to write to. Its writes never fail to stdio: outfd counts. */
FILE *outfd_stream(struct outfd *o);
/* The reader went away (EPIPE). */
bool outfd_gone(const struct outfd *o);
/* The first write error other than EPIPE, as a positive errno; 0 if none. */
int outfd_error(const struct outfd *o);
/* Lines (whole or cut) that were not written: the reader gone, the grace over. */
uint64_t outfd_lines_dropped(const struct outfd *o);
/* Flushes what it still can (within the grace once stopped) and frees. */
void outfd_close(struct outfd *o);

#endif
