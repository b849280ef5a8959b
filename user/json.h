/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * A streaming JSON writer: one object per line (JSON Lines).
 *
 * Strings are written from raw bytes: valid UTF-8 passes through, control
 * bytes and the JSON specials are escaped, and each byte that is not part of
 * a valid UTF-8 sequence is written as \u00XX (its Latin-1 code point), so a
 * task name of arbitrary bytes always yields a valid line.
 */
#ifndef CONNTRACE_JSON_H
#define CONNTRACE_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/*
 * Nesting has no limit: only the current level's state is needed, since a
 * level that is returned to has just written its nested member.
 */
struct json {
	FILE *f;
	unsigned depth;
	bool first;	/* no member written yet at the current level */
	bool after_key;	/* a key was just written: no comma */
};

void json_init(struct json *j, FILE *f);
void json_obj_begin(struct json *j);
void json_obj_end(struct json *j);
void json_arr_begin(struct json *j);
void json_arr_end(struct json *j);
void json_key(struct json *j, const char *key);
void json_str(struct json *j, const char *s);
void json_strn(struct json *j, const char *s, size_t n); /* stops at NUL */
void json_u64(struct json *j, uint64_t v);
void json_i64(struct json *j, int64_t v);
void json_double(struct json *j, double v, int decimals);
void json_bool(struct json *j, bool v);
void json_null(struct json *j);
/* Ends the line after a top-level value and flushes. */
void json_eol(struct json *j);

/* Shorthands for "key": value members. */
void json_kstr(struct json *j, const char *key, const char *s);
void json_ku64(struct json *j, const char *key, uint64_t v);
void json_ki64(struct json *j, const char *key, int64_t v);
void json_kbool(struct json *j, const char *key, bool v);

/*
 * Escape bytes for a terminal: printable ASCII and valid UTF-8 pass through,
 * everything else becomes \xNN (and a backslash becomes \\). Writes at most
 * outsz - 1 bytes plus a NUL; returns the length written.
 */
size_t escape_text(char *out, size_t outsz, const char *s, size_t n);

#endif
