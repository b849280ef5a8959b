// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Streaming JSON writer and byte escaping for JSON and terminals. */
#include <inttypes.h>
#include <math.h>
#include <string.h>
#include "json.h"

/*
 * Length of the valid UTF-8 sequence at s (at most n bytes), or 0 if the
 * bytes there are not one: overlong forms, surrogates and code points above
 * U+10FFFF are invalid. *cp receives the code point.
 */
static size_t utf8_seq(const unsigned char *s, size_t n, uint32_t *cp)
{
	uint32_t c;
	size_t len;

	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
		c = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		c = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		c = s[0] & 0x07;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3f);
	}
	if ((len == 3 && c < 0x800) || (len == 4 && (c < 0x10000 || c > 0x10ffff)) ||
	    (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return len;
}

/* C0, DEL and C1 controls: terminals act on them. */
static int is_control(uint32_t cp)
{
	return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f);
}

static void json_sep(struct json *j)
{
	if (j->after_key) {
		j->after_key = false;
		return;
	}
	if (j->depth > 0) {
		if (!j->first)
			fputc(',', j->f);
		j->first = false;
	}
}

void json_init(struct json *j, FILE *f)
{
	memset(j, 0, sizeof(*j));
	j->f = f;
}

static void open_level(struct json *j, int ch)
{
	json_sep(j);
	fputc(ch, j->f);
	j->depth++;
	j->first = true;
}

void json_obj_begin(struct json *j)
{
	open_level(j, '{');
}

void json_arr_begin(struct json *j)
{
	open_level(j, '[');
}

static void close_level(struct json *j, int ch)
{
	fputc(ch, j->f);
	if (j->depth > 0)
		j->depth--;
	j->first = false;	/* the level returned to has just written this member */
	j->after_key = false;
}

void json_obj_end(struct json *j)
{
	close_level(j, '}');
}

void json_arr_end(struct json *j)
{
	close_level(j, ']');
}

/* Plain printable ASCII, the bulk of every line: written a run at a time. */
static bool plain_ascii(unsigned char c)
{
	return c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
}

static void put_escaped(FILE *f, const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;

	fputc_unlocked('"', f);
	while (i < n && s[i]) {
		uint32_t cp;
		size_t run = i, len;

		while (run < n && plain_ascii(s[run]))
			run++;
		if (run > i) {
			fwrite_unlocked(s + i, 1, run - i, f);
			i = run;
			continue;
		}
		if (!s[i])
			break;
		len = utf8_seq(s + i, n - i, &cp);
		if (!len) {
			/* not UTF-8: the byte as its Latin-1 code point */
			fprintf(f, "\\u%04x", s[i]);
			i++;
			continue;
		}
		if (cp == '"')
			fputs_unlocked("\\\"", f);
		else if (cp == '\\')
			fputs_unlocked("\\\\", f);
		else if (cp == '\n')
			fputs_unlocked("\\n", f);
		else if (cp == '\t')
			fputs_unlocked("\\t", f);
		else if (cp == '\r')
			fputs_unlocked("\\r", f);
		else if (is_control(cp))
			fprintf(f, "\\u%04x", cp);
		else
			fwrite_unlocked(s + i, 1, len, f);
		i += len;
	}
	fputc_unlocked('"', f);
}

void json_key(struct json *j, const char *key)
{
	json_sep(j);
	put_escaped(j->f, key, strlen(key));
	fputc(':', j->f);
	j->after_key = true;
}

void json_strn(struct json *j, const char *s, size_t n)
{
	json_sep(j);
	put_escaped(j->f, s, n);
}

void json_str(struct json *j, const char *s)
{
	if (!s) {
		json_null(j);
		return;
	}
	json_strn(j, s, strlen(s));
}

void json_u64(struct json *j, uint64_t v)
{
	json_sep(j);
	fprintf(j->f, "%" PRIu64, v);
}

void json_i64(struct json *j, int64_t v)
{
	json_sep(j);
	fprintf(j->f, "%" PRId64, v);
}

void json_double(struct json *j, double v, int decimals)
{
	json_sep(j);
	if (isfinite(v))
		fprintf(j->f, "%.*f", decimals, v);
	else
		fputs("null", j->f);	/* JSON has no NaN or Infinity */
}

void json_bool(struct json *j, bool v)
{
	json_sep(j);
	fputs(v ? "true" : "false", j->f);
}

void json_null(struct json *j)
{
	json_sep(j);
	fputs("null", j->f);
}

void json_eol(struct json *j)
{
	fputc('\n', j->f);
	j->depth = 0;
	j->after_key = false;
}

void json_kstr(struct json *j, const char *key, const char *s)
{
	json_key(j, key);
	json_str(j, s);
}

void json_ku64(struct json *j, const char *key, uint64_t v)
{
	json_key(j, key);
	json_u64(j, v);
}

void json_ki64(struct json *j, const char *key, int64_t v)
{
	json_key(j, key);
	json_i64(j, v);
}

void json_kbool(struct json *j, const char *key, bool v)
{
	json_key(j, key);
	json_bool(j, v);
}

size_t escape_text(char *out, size_t outsz, const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0, o = 0;

	if (!outsz)
		return 0;
	while (i < n && s[i]) {
		uint32_t cp;
		size_t len = utf8_seq(s + i, n - i, &cp);
		char tmp[8];
		size_t tl;

		if (len && !is_control(cp) && cp != '\\') {
			if (o + len >= outsz)
				break;
			memcpy(out + o, s + i, len);
			o += len;
			i += len;
			continue;
		}
		if (s[i] == '\\')
			tl = (size_t)snprintf(tmp, sizeof(tmp), "\\\\");
		else
			tl = (size_t)snprintf(tmp, sizeof(tmp), "\\x%02x", s[i]);
		if (o + tl >= outsz)
			break;
		memcpy(out + o, tmp, tl);
		o += tl;
		i++;	/* a control or invalid sequence: escape byte by byte */
	}
	out[o] = '\0';
	return o;
}
