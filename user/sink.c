// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * -o/--output: whole lines appended to a file, SIGHUP reopen, size rotation.
 *
 * The writers print through stdio into a fopencookie() stream; its write
 * callback buffers bytes until a newline, so everything below works on whole
 * lines. One write(2) carries a batch of lines; with rotation on, a batch
 * stops at the line that would pass the size limit.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "json.h"
#include "sink.h"

#define STREAM_BUF	(64 * 1024)

struct sink {
	char path[PATH_MAX];
	char epath[128];	/* the path escaped for messages */
	uint64_t rotate_size;
	unsigned rotate_keep;
	FILE *errf;
	FILE *stream;
	int fd;
	uint64_t size;		/* of the current file, as far as we wrote it */
	uint64_t limit;		/* rotate before a line would pass this */
	char *pend;		/* an unfinished line from the stream */
	size_t pend_len, pend_cap;
	bool skip_line;		/* out of memory: drop bytes up to the next newline */
	/* one report per episode: set at the first failure, cleared by a success */
	bool write_failing, rotate_failing, reopen_failing;
	struct sink_stats st;
};

static size_t count_lines(const char *p, size_t n)
{
	size_t k = 0;

	for (const char *e = p + n; (p = memchr(p, '\n', e - p)); p++)
		k++;
	return k;
}

static int open_path(const char *path)
{
	return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
}

static void report(struct sink *s, bool *failing, const char *what, int err)
{
	s->st.write_errors++;
	if (*failing)
		return;
	*failing = true;
	fprintf(s->errf, "conntrace: --output %s: %s failed: %s (counted; reported once)\n",
		s->epath, what, strerror(err));
	fflush(s->errf);
}

/* Writes n bytes that end with a newline; counts what made it and what not. */
static void write_chunk(struct sink *s, const char *p, size_t n)
{
	size_t done = 0, keep;
	int err = 0;

	while (done < n) {
		ssize_t w = write(s->fd, p + done, n - done);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			err = w < 0 ? errno : EIO;
			break;
		}
		done += w;
	}
	if (done == n) {
		s->st.lines += count_lines(p, n);
		s->st.bytes += n;
		s->size += n;
		if (s->write_failing) {
			s->write_failing = false;
			fprintf(s->errf, "conntrace: --output %s: writing again; %llu records lost "
				"so far\n", s->epath, (unsigned long long)s->st.lines_lost);
			fflush(s->errf);
		}
		return;
	}
	/* Keep the whole lines that made it; take back a partial one (disk full
	 * mid-line), so the file stays line by line valid. */
	keep = done;
	while (keep && p[keep - 1] != '\n')
		keep--;
	if (done > keep) {
		off_t end = lseek(s->fd, 0, SEEK_CUR);	/* O_APPEND: the end of the file */

		if (end >= (off_t)(done - keep))
			(void)!ftruncate(s->fd, end - (done - keep));
	}
	s->st.lines += count_lines(p, keep);
	s->st.bytes += keep;
	s->size += keep;
	s->st.lines_lost += count_lines(p + keep, n - keep);
	report(s, &s->write_failing, "write", err);
}

/*
 * path.N-1 -> path.N, ..., path -> path.1, then a new path. On failure
 * nothing is overwritten, writing goes on into the current file, and the
 * next try comes after another rotate_size bytes.
 */
static int rotate(struct sink *s)
{
	char from[PATH_MAX + 16], to[PATH_MAX + 16];
	int fd, err;

	for (unsigned i = s->rotate_keep - 1; i >= 1; i--) {
		snprintf(from, sizeof(from), "%s.%u", s->path, i);
		snprintf(to, sizeof(to), "%s.%u", s->path, i + 1);
		if (rename(from, to) && errno != ENOENT)
			goto fail;
	}
	snprintf(to, sizeof(to), "%s.1", s->path);
	/* ENOENT: moved away by someone else already; a new file is all we need */
	if (rename(s->path, to) && errno != ENOENT)
		goto fail;
	fd = open_path(s->path);
	if (fd < 0)
		goto fail;
	close(s->fd);
	s->fd = fd;
	s->size = 0;
	s->limit = s->rotate_size;
	s->st.rotations++;
	s->rotate_failing = false;
	return 0;
fail:
	err = errno;
	s->limit = s->size + s->rotate_size;
	report(s, &s->rotate_failing, "rotation", err);
	return -err;
}

/* Whole lines of p (n bytes, ending with a newline) that fit under the limit. */
static size_t fit(const struct sink *s, const char *p, size_t n)
{
	size_t room = s->limit > s->size ? s->limit - s->size : 0, len = 0;

	while (len < n) {
		const char *nl = memchr(p + len, '\n', n - len);
		size_t next = nl - p + 1;

		if (next > room)
			break;
		len = next;
	}
	return len;
}

static void write_lines(struct sink *s, const char *p, size_t n)
{
	while (n) {
		size_t chunk = n;

		if (s->rotate_size) {
			chunk = fit(s, p, n);
			if (!chunk && s->size && !rotate(s))
				continue;
			if (!chunk)	/* a line longer than the limit gets a file of its own */
				chunk = (const char *)memchr(p, '\n', n) - p + 1;
		}
		write_chunk(s, p, chunk);
		p += chunk;
		n -= chunk;
	}
}

/* Keeps the bytes of an unfinished line; false when out of memory. */
static bool stash(struct sink *s, const char *p, size_t n)
{
	if (s->pend_len + n > s->pend_cap) {
		size_t cap = (s->pend_len + n) * 2;
		char *np = realloc(s->pend, cap);

		if (!np) {
			/* the line is lost: drop the rest of it as it comes */
			s->pend_len = 0;
			s->st.lines_lost++;
			s->skip_line = true;
			return false;
		}
		s->pend = np;
		s->pend_cap = cap;
	}
	memcpy(s->pend + s->pend_len, p, n);
	s->pend_len += n;
	return true;
}

/* Never an error to stdio: the stream stays usable, the sink counts. */
static ssize_t stream_write(void *cookie, const char *buf, size_t size)
{
	struct sink *s = cookie;
	const char *p = buf, *end = buf + size, *last;

	if (s->skip_line) {
		p = memchr(p, '\n', size);
		if (!p)
			return size;
		p++;
		s->skip_line = false;
	}
	if (!s->pend_len) {
		/* the usual case: whole lines straight from stdio's buffer */
		last = p < end ? memrchr(p, '\n', end - p) : NULL;
		if (last) {
			write_lines(s, p, last + 1 - p);
			p = last + 1;
		}
		if (p < end)
			stash(s, p, end - p);
		return size;
	}
	if (p < end && !stash(s, p, end - p)) {
		/* out of memory: that line is lost; carry on after its end */
		const char *nl = memchr(p, '\n', end - p);

		if (nl) {
			s->skip_line = false;
			stream_write(s, nl + 1, end - nl - 1);
		}
		return size;
	}
	last = memrchr(s->pend, '\n', s->pend_len);
	if (last) {
		size_t n = last + 1 - s->pend;

		write_lines(s, s->pend, n);
		memmove(s->pend, s->pend + n, s->pend_len - n);
		s->pend_len -= n;
	}
	return size;
}

int sink_open(struct sink **out, const struct sink_config *cfg, char *err, size_t errsz)
{
	cookie_io_functions_t io = { .write = stream_write };
	struct sink *s;
	struct stat sb;
	int e;

	*out = NULL;
	s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errsz, "--output: %s", strerror(ENOMEM));
		return -ENOMEM;
	}
	s->fd = -1;
	escape_text(s->epath, sizeof(s->epath), cfg->path, strlen(cfg->path));
	if (!cfg->path[0] || strlen(cfg->path) >= sizeof(s->path)) {
		snprintf(err, errsz, "--output: '%s' is not a usable file name", s->epath);
		e = -EINVAL;
		goto fail;
	}
	strcpy(s->path, cfg->path);
	s->rotate_size = cfg->rotate_size;
	s->rotate_keep = cfg->rotate_keep ? cfg->rotate_keep : SINK_DEFAULT_KEEP;
	s->limit = s->rotate_size;
	s->errf = cfg->errf ? cfg->errf : stderr;

	s->fd = open_path(s->path);
	if (s->fd < 0 || fstat(s->fd, &sb)) {
		e = -errno;
		snprintf(err, errsz, "--output %s: %s", s->epath, strerror(-e));
		goto fail;
	}
	if (s->rotate_size && !S_ISREG(sb.st_mode)) {
		snprintf(err, errsz, "--output %s: not a regular file, so it cannot be rotated "
			 "(--rotate-size)", s->epath);
		e = -EINVAL;
		goto fail;
	}
	s->size = sb.st_size;
	/* A pipe whose reader left, or a file-size limit, must be a counted write
	 * error, not the signal that kills the process by default. */
	if (!S_ISREG(sb.st_mode))
		signal(SIGPIPE, SIG_IGN);
	signal(SIGXFSZ, SIG_IGN);

	s->stream = fopencookie(s, "w", io);
	if (!s->stream || setvbuf(s->stream, NULL, _IOFBF, STREAM_BUF)) {
		e = -ENOMEM;
		snprintf(err, errsz, "--output %s: %s", s->epath, strerror(ENOMEM));
		goto fail;
	}
	*out = s;
	return 0;
fail:
	if (s->stream)
		fclose(s->stream);
	if (s->fd >= 0)
		close(s->fd);
	free(s);
	return e;
}

FILE *sink_stream(struct sink *s)
{
	return s->stream;
}

int sink_reopen(struct sink *s)
{
	struct stat sb;
	int fd, err;

	if (!s)
		return 0;
	fflush(s->stream);	/* what is buffered belongs to the old file */
	fd = open_path(s->path);
	if (fd < 0 || fstat(fd, &sb)) {
		err = errno;
		if (fd >= 0)
			close(fd);
		report(s, &s->reopen_failing, "reopen (SIGHUP)", err);
		return -err;
	}
	close(s->fd);
	s->fd = fd;
	s->size = sb.st_size;
	s->limit = s->rotate_size;
	s->reopen_failing = false;
	s->st.reopens++;
	return 0;
}

void sink_get_stats(const struct sink *s, struct sink_stats *st)
{
	if (s)
		*st = s->st;
	else
		memset(st, 0, sizeof(*st));
}

void sink_close(struct sink *s)
{
	if (!s)
		return;
	fclose(s->stream);	/* flushes through stream_write */
	if (s->pend_len)	/* a record without its newline: it would not parse */
		s->st.lines_lost++;
	close(s->fd);
	if (s->st.write_errors)
		fprintf(s->errf, "conntrace: --output %s: %llu write errors, %llu records lost\n",
			s->epath, (unsigned long long)s->st.write_errors,
			(unsigned long long)s->st.lines_lost);
	free(s->pend);
	free(s);
}

int sink_parse_size(const char *opt, const char *arg, uint64_t *out, char *err, size_t errsz)
{
	unsigned long long v, shift = 0;
	char earg[64];
	char *end;

	escape_text(earg, sizeof(earg), arg, strlen(arg));
	if (!isdigit((unsigned char)*arg))	/* strtoull would take spaces and signs */
		goto bad;
	errno = 0;
	v = strtoull(arg, &end, 10);
	switch (toupper((unsigned char)*end)) {
	case 'K': shift = 10; end++; break;
	case 'M': shift = 20; end++; break;
	case 'G': shift = 30; end++; break;
	case 'T': shift = 40; end++; break;
	}
	if (*end)
		goto bad;
	if (errno == ERANGE || v > SINK_MAX_ROTATE_SIZE >> shift ||
	    v << shift < SINK_MIN_ROTATE_SIZE) {
		snprintf(err, errsz, "%s: %s is out of range (4K to 1T)", opt, earg);
		return -EINVAL;
	}
	*out = v << shift;
	return 0;
bad:
	snprintf(err, errsz, "%s: '%s' is not a size (bytes, or a number with K, M, G or T)",
		 opt, earg);
	return -EINVAL;
}
