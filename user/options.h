/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Command-line options of the verdict stream (conntrace without a subcommand). */
#ifndef CONNTRACE_OPTIONS_H
#define CONNTRACE_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include "tracer.h"

struct ct_options {
	struct tracer_config tc;
	bool json;
	bool detail;
	bool probes;
	bool all;
	unsigned verdict_mask;	/* bit per enum ct_verdict that is printed */
	int color;		/* -1 auto, 0 never, 1 always */
	const char *user;	/* drop to this user once attached */
};

/*
 * Parses argv into o (defaults first). 0, or -EINVAL with a one-line message
 * in err: the caller prints it and exits 2. --help and --version print and
 * exit 0 from inside.
 */
int ct_options_parse(struct ct_options *o, int argc, char **argv, char *err, size_t errsz);

#endif
