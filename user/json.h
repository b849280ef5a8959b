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

/* Room for a whole verdict line: one fwrite per line in the common case. */
#define JSON_LINE_MAX 8192

/*
 * Nesting has no limit: only the current level's state is needed, since a
 * level that is returned to has just written its nested member.
 *
 * A line is built in line[] and written to f by json_eol() in one fwrite; a
 * line longer than line[] is written in pieces as it fills, so any length
 * comes out whole. Nothing reaches f before json_eol() otherwise.
 */
struct json {
	FILE *f;
	unsigned depth;
	bool first;	/* no member written yet at the current level */
	bool after_key;	/* a key was just written: no comma */
	char *p;	/* where the line goes on in line[] */
	char line[JSON_LINE_MAX];
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
/* Ends the line after a top-level value and writes it to the stream. */
void json_eol(struct json *j);

/*
 * A string value that fill() writes straight into the line (up to max - 1
 * bytes and a NUL, in a buffer of max bytes; it returns the length), escaped
 * afterwards only if it has to be: text rendered once, copied only when it
 * holds a byte to escape. max is at most JSON_LINE_MAX / 2.
 */
typedef size_t (*json_fill_fn)(char *buf, size_t max, const void *arg);
void json_str_fill(struct json *j, json_fill_fn fill, const void *arg, size_t max);

/*
 * The hot path's shorthands: a key that is a string literal, quoted and with
 * its colon at compile time, written without a scan (it is the program's
 * own ASCII); and a value already in JSON form (a number, a quoted
 * timestamp or address the caller formatted), written as it is.
 */
#define json_klit(j, key) json_key_raw((j), "\"" key "\":", sizeof("\"" key "\":") - 1)
void json_key_raw(struct json *j, const char *quoted_colon, size_t n);
void json_raw(struct json *j, const char *s, size_t n);

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
