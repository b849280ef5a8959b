// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Streaming JSON writer and byte escaping for JSON and terminals. */
#include <math.h>
#include <string.h>
#include "fmt.h"
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

/* Writes out what the line holds, to make room. */
static void spill(struct json *j)
{
	fwrite_unlocked(j->line, 1, j->p - j->line, j->f);
	j->p = j->line;
}

/* At least n (at most JSON_LINE_MAX) free bytes at j->p. */
static inline void room(struct json *j, size_t n)
{
	if ((size_t)(j->line + sizeof(j->line) - j->p) < n)
		spill(j);
}

static inline void put_ch(struct json *j, char c)
{
	room(j, 1);
	*j->p++ = c;
}

static void put_mem(struct json *j, const void *s, size_t n)
{
	room(j, n < sizeof(j->line) ? n : sizeof(j->line));
	if (n > (size_t)(j->line + sizeof(j->line) - j->p)) {
		fwrite_unlocked(s, 1, n, j->f);	/* longer than a line: spilled above */
		return;
	}
	memcpy(j->p, s, n);
	j->p += n;
}

static void json_sep(struct json *j)
{
	if (j->after_key) {
		j->after_key = false;
		return;
	}
	if (j->depth > 0) {
		if (!j->first)
			put_ch(j, ',');
		j->first = false;
	}
}

void json_init(struct json *j, FILE *f)
{
	/* not the whole of line[]: a line costs what it writes, not 8 KiB of zeroes */
	j->f = f;
	j->depth = 0;
	j->first = false;
	j->after_key = false;
	j->p = j->line;
}

static void open_level(struct json *j, int ch)
{
	json_sep(j);
	put_ch(j, ch);
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
	put_ch(j, ch);
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
static inline bool plain_ascii(unsigned char c)
{
	return c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
}

static const char hex[] = "0123456789abcdef";

/* One code point or stray byte that needs escaping: at most 6 bytes. */
static void put_escape(struct json *j, uint32_t cp)
{
	char *p;

	room(j, 6);
	p = j->p;
	*p++ = '\\';
	switch (cp) {
	case '"': *p++ = '"'; break;
	case '\\': *p++ = '\\'; break;
	case '\n': *p++ = 'n'; break;
	case '\t': *p++ = 't'; break;
	case '\r': *p++ = 'r'; break;
	default:	/* only controls and bytes below 0x100 come here */
		*p++ = 'u';
		*p++ = '0';
		*p++ = '0';
		*p++ = hex[(cp >> 4) & 0xf];
		*p++ = hex[cp & 0xf];
		break;
	}
	j->p = p;
}

/* The bytes of a string value, escaped, without the quotes. */
static void put_escaped_body(struct json *j, const unsigned char *s, size_t n)
{
	size_t i = 0;

	while (i < n && s[i]) {
		uint32_t cp;
		size_t run = i, len;

		while (run < n && plain_ascii(s[run]))
			run++;
		if (run > i) {
			put_mem(j, s + i, run - i);
			i = run;
			continue;
		}
		if (!s[i])
			break;
		len = utf8_seq(s + i, n - i, &cp);
		if (!len) {
			/* not UTF-8: the byte as its Latin-1 code point */
			put_escape(j, s[i]);
			i++;
			continue;
		}
		if (cp == '"' || cp == '\\' || is_control(cp))
			put_escape(j, cp);
		else
			put_mem(j, s + i, len);
		i += len;
	}
}

static void put_escaped(struct json *j, const char *str, size_t n)
{
	put_ch(j, '"');
	put_escaped_body(j, (const unsigned char *)str, n);
	put_ch(j, '"');
}

void json_key(struct json *j, const char *key)
{
	json_sep(j);
	put_escaped(j, key, strlen(key));
	put_ch(j, ':');
	j->after_key = true;
}

void json_key_raw(struct json *j, const char *quoted_colon, size_t n)
{
	json_sep(j);
	put_mem(j, quoted_colon, n);
	j->after_key = true;
}

void json_raw(struct json *j, const char *s, size_t n)
{
	json_sep(j);
	put_mem(j, s, n);
}

void json_strn(struct json *j, const char *s, size_t n)
{
	json_sep(j);
	put_escaped(j, s, n);
}

void json_str(struct json *j, const char *s)
{
	if (!s) {
		json_null(j);
		return;
	}
	json_strn(j, s, strlen(s));
}

void json_str_fill(struct json *j, json_fill_fn fill, const void *arg, size_t max)
{
	char copy[JSON_LINE_MAX / 2];
	size_t len;
	char *s;

	if (max > sizeof(copy))
		max = sizeof(copy);
	json_sep(j);
	put_ch(j, '"');
	room(j, max + 1);
	s = j->p;
	len = fill(s, max, arg);
	for (size_t i = 0; i < len; i++) {
		if (!plain_ascii(s[i])) {
			/* rare: a byte to escape; escaping grows it, so from a copy */
			memcpy(copy, s, len);
			put_escaped_body(j, (const unsigned char *)copy, len);
			put_ch(j, '"');
			return;
		}
	}
	j->p += len;
	put_ch(j, '"');
}

void json_u64(struct json *j, uint64_t v)
{
	json_sep(j);
	room(j, FMT_U64_MAX);
	j->p = fmt_u64(j->p, v);
}

void json_i64(struct json *j, int64_t v)
{
	json_sep(j);
	room(j, FMT_I64_MAX);
	j->p = fmt_i64(j->p, v);
}

void json_double(struct json *j, double v, int decimals)
{
	char buf[64];
	int n;

	json_sep(j);
	if (!isfinite(v)) {
		put_mem(j, "null", 4);	/* JSON has no NaN or Infinity */
		return;
	}
	n = snprintf(buf, sizeof(buf), "%.*f", decimals, v);
	put_mem(j, buf, n > 0 && (size_t)n < sizeof(buf) ? (size_t)n : 0);
}

void json_bool(struct json *j, bool v)
{
	json_sep(j);
	if (v)
		put_mem(j, "true", 4);
	else
		put_mem(j, "false", 5);
}

void json_null(struct json *j)
{
	json_sep(j);
	put_mem(j, "null", 4);
}

void json_eol(struct json *j)
{
	put_ch(j, '\n');
	spill(j);
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
		size_t len, run = i;
		char tmp[8];
		size_t tl;

		/* printable ASCII, most of any text: a run at a time */
		while (run < n && s[run] >= 0x20 && s[run] < 0x7f && s[run] != '\\')
			run++;
		if (run > i) {
			size_t want = run - i, room = outsz - 1 - o, k = want < room ? want : room;

			memcpy(out + o, s + i, k);
			o += k;
			i += k;
			if (k < want)
				break;	/* out is full */
			continue;
		}
		len = utf8_seq(s + i, n - i, &cp);
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
