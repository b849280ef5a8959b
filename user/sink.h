/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The output file of -o/--output: records appended as whole lines, reopened
 * on SIGHUP (logrotate's convention), rotated by size on its own with
 * --rotate-size and --rotate-keep.
 *
 * The writers keep writing to a FILE: sink_stream() is a stdio stream whose
 * bytes the sink cuts into lines, so a line never straddles two files and a
 * failed write never leaves half a line behind (the file is truncated back
 * to its last whole line). A write error is reported once per episode on
 * errf and counted, never fatal: the records it cost are counted as lost.
 */
#ifndef CONNTRACE_SINK_H
#define CONNTRACE_SINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define SINK_MIN_ROTATE_SIZE	4096ULL
#define SINK_MAX_ROTATE_SIZE	(1ULL << 40)
#define SINK_MAX_KEEP		1000
#define SINK_DEFAULT_KEEP	5

struct sink_config {
	const char *path;
	uint64_t rotate_size;	/* rotate before a line would pass it; 0: never */
	unsigned rotate_keep;	/* rotated files kept: path.1 (newest) .. path.N */
	FILE *errf;		/* one-line reports; NULL: stderr */
};

struct sink_stats {
	uint64_t lines;		/* lines (records) written whole */
	uint64_t bytes;
	uint64_t write_errors;	/* failed writes, opens and renames */
	uint64_t lines_lost;	/* lines not written because of them */
	uint64_t rotations;
	uint64_t reopens;	/* successful SIGHUP reopens */
};

struct sink;

/*
 * Opens (creates, mode 0640 less the umask) cfg->path for appending.
 * 0, or a negative errno with a one-line message in err.
 */
int sink_open(struct sink **out, const struct sink_config *cfg, char *err, size_t errsz);
/* The stream the writers write to. Its writes never fail: the sink counts. */
FILE *sink_stream(struct sink *s);
/*
 * Writes what is buffered to the current file, then opens the path anew
 * (the old file was moved away). If it cannot be opened, the error is
 * reported and counted and writing goes on into the old file. 0 or -errno.
 */
int sink_reopen(struct sink *s);
/* Counters; a NULL sink has all zero. */
void sink_get_stats(const struct sink *s, struct sink_stats *st);
/* Flushes, closes, and says on errf how many records were lost if any. */
void sink_close(struct sink *s);

/*
 * SIZE: bytes, with an optional K, M, G or T suffix (powers of 1024), from
 * SINK_MIN_ROTATE_SIZE to SINK_MAX_ROTATE_SIZE. 0 or -EINVAL with a
 * one-line message naming opt in err.
 */
int sink_parse_size(const char *opt, const char *arg, uint64_t *out, char *err, size_t errsz);

#endif
