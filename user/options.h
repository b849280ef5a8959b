/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Command-line options of the verdict stream (conntrace without a subcommand). */
#ifndef CONNTRACE_OPTIONS_H
#define CONNTRACE_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include "tracer.h"

struct ct_options {
	struct tracer_config tc;
	bool json;
	bool detail;
	bool probes;
	bool all;
	unsigned verdict_mask;	/* bit per enum ct_verdict that is printed */
	unsigned phase_mask;	/* bit per enum ct_phase that is printed (--phase) */
	int color;		/* -1 auto, 0 never, 1 always */
	bool no_aggregate;	/* text: print every verdict, even in a storm */
	const char *user;	/* drop to this user once attached */
	/* export (sink.c, metrics.c) */
	char output[4096];	/* -o FILE; empty: stdout */
	uint64_t rotate_size;	/* --rotate-size bytes; 0: never */
	unsigned rotate_keep;	/* --rotate-keep; 0: the sink's default */
	bool metrics;		/* --metrics given: serve metrics_addr */
	struct sockaddr_storage metrics_addr;
	socklen_t metrics_addrlen;
	uint64_t buffer_size;	/* --buffer: bytes of lines waiting for stdout's reader */
};

/* --buffer's default: 64 MiB of lines (about 94,000 refused JSON verdicts) */
#define CT_DEFAULT_BUFFER	(64ULL << 20)

/*
 * Parses argv into o (defaults first). 0, or -EINVAL with a one-line message
 * in err: the caller prints it and exits 2. --help and --version print and
 * exit 0 from inside.
 */
int ct_options_parse(struct ct_options *o, int argc, char **argv, char *err, size_t errsz);

#endif
