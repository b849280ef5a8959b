/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The collector: conntrace without a subcommand. It owns everything between
 * the command line and the exit status: the tracer (BPF side), the
 * correlator, the output (stdout or the -o file), the metrics server, the
 * user-space filters, loss reporting, signals and the privilege drop.
 *
 *	collector_open()	set up and attach; the start record is written
 *	collector_run()		drain the ring until a stop signal or the reader leaves
 *	collector_finish()	detach, drain the ring to the end, then flush the
 *				flows still connecting (pending) and write the summary
 *	collector_close()	free everything
 *
 * collector_main() strings them together for main().
 */
#ifndef CONNTRACE_COLLECTOR_H
#define CONNTRACE_COLLECTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include "options.h"

/* Exit statuses of `conntrace` (options.c's --help says them). */
#define CT_EXIT_OK	0
#define CT_EXIT_FAILURE	1	/* the kernel side, the ring or the output failed */
#define CT_EXIT_USAGE	2	/* a bad command line */

/* Why collector_open() failed. */
struct collector_error {
	int status;		/* CT_EXIT_FAILURE or CT_EXIT_USAGE */
	char msg[256];		/* one line, without the "conntrace: " prefix */
};

struct collector;

/* 0 or a negative errno, with e filled. o must outlive the collector. */
int collector_open(struct collector **out, const struct ct_options *o,
		   struct collector_error *e);
/*
 * Until SIGINT/SIGTERM or the reader of stdout goes away: 0. A failure
 * (polling the ring, writing stdout): a negative errno, after one line on
 * stderr naming what failed.
 */
int collector_run(struct collector *c);
/* Detach, drain, pending flows, summary (unless the reader left). 0 or -errno. */
int collector_finish(struct collector *c);
void collector_close(struct collector *c);

/*
 * What a return of tracer_poll() means for the loop: 0 to go on (records
 * or none, or EINTR from a signal), else the negative errno to stop with,
 * after one line naming what failed in msg.
 */
int collector_poll_status(int poll_ret, char *msg, size_t msgsz);
/* The exit status for collector_run()'s result. */
int collector_exit_status(int run_err);

/*
 * For a command that drives the collector itself (conntrace check, check.c):
 * a callback for every verdict the filters let through (before --verdict),
 * one drain of the ring (collector_run's step: up to 10 ms), whether a stop
 * signal came, and the output stream, to write its own lines between.
 */
struct ct_result;
typedef void (*collector_verdict_fn)(const struct ct_result *r, void *ctx);
void collector_on_verdict(struct collector *c, collector_verdict_fn fn, void *ctx);
int collector_step(struct collector *c);
bool collector_stopping(void);
FILE *collector_stream(struct collector *c);

/* conntrace [OPTIONS]: parse, open, run, finish; returns the exit status. */
int collector_main(int argc, char **argv);

#endif
