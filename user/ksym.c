// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Kernel symbols: where a function's code lies, so that a tracepoint's
 * caller address (skb:consume_skb's location) can be matched to it.
 *
 * /proc/kallsyms is about 5 MB and the kernel spends ~300 ns making each of
 * its ~120,000 lines, so it is read once, in big chunks, and only as far as
 * needed: the kernel's own symbols come first, sorted by address
 * (scripts/kallsyms sorts them), so the first higher address after the
 * name's line is its end. Lines are split with memchr, and only the name is
 * compared before anything is parsed.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "ksym.h"

#define KSYM_CHUNK (128 * 1024)

struct scan {
	const char *name;
	size_t namelen;
	uint64_t start;
	bool found, hidden, done;
	uint64_t next;
};

/* The address at the start of a line; false if the line has none. */
static bool line_addr(const char *s, const char *end, uint64_t *out)
{
	uint64_t v = 0;
	const char *p = s;

	for (; p < end; p++) {
		unsigned d;

		if (*p >= '0' && *p <= '9')
			d = *p - '0';
		else if ((*p | 0x20) >= 'a' && (*p | 0x20) <= 'f')
			d = (*p | 0x20) - 'a' + 10;
		else
			break;
		v = v << 4 | d;
	}
	*out = v;
	return p > s && p < end && *p == ' ';
}

/* One line "ADDR TYPE NAME[\t[MODULE]]", without its newline. */
static void scan_line(struct scan *sc, const char *s, const char *end)
{
	const char *sp = memchr(s, ' ', end - s), *nm;
	uint64_t addr;
	char type;

	if (!sp || end - sp < 4 || sp[2] != ' ')
		return;
	if (sc->found) {
		/* the first higher address after it: where its code ends */
		if (line_addr(s, end, &addr) && addr > sc->start) {
			sc->next = addr;
			sc->done = true;
		}
		return;
	}
	type = sp[1];
	nm = sp + 3;
	if ((size_t)(end - nm) < sc->namelen || memcmp(nm, sc->name, sc->namelen) ||
	    (nm + sc->namelen < end && nm[sc->namelen] != '\t') ||
	    (type != 't' && type != 'T'))
		return;
	line_addr(s, end, &sc->start);
	sc->found = true;
	if (!sc->start) {
		sc->hidden = true;	/* kptr_restrict: every address reads 0 */
		sc->done = true;
	}
}

static bool stopped(const bool *cancel)
{
	return cancel && __atomic_load_n(cancel, __ATOMIC_RELAXED);
}

static int range_fd(int fd, const char *name, uint64_t *lo, uint64_t *hi,
		    const bool *cancel)
{
	struct scan sc = { .name = name, .namelen = strlen(name) };
	char *buf = malloc(KSYM_CHUNK);
	size_t have = 0;
	ssize_t n = 0;

	if (!buf)
		return -ENOMEM;
	while (!sc.done && !stopped(cancel) &&
	       (n = read(fd, buf + have, KSYM_CHUNK - have)) > 0) {
		const char *p = buf, *end = buf + have + n, *nl;

		while (!sc.done && (nl = memchr(p, '\n', end - p))) {
			scan_line(&sc, p, nl);
			p = nl + 1;
		}
		/* a line cut by the chunk's end waits for the rest */
		have = end - p;
		memmove(buf, p, have);
		if (have == KSYM_CHUNK)
			have = 0;	/* no line is that long: not a listing */
	}
	free(buf);
	if (!sc.done && n < 0)
		return -errno;
	if (!sc.done && stopped(cancel))
		return -ECANCELED;
	if (!sc.found)
		return -ENOENT;
	if (sc.hidden)
		return -EPERM;
	if (!sc.done)
		return -ENOENT;	/* the last symbol: its end is unknown */
	*lo = sc.start;
	*hi = sc.next;
	return 0;
}

int ksym_range_fd(int fd, const char *name, uint64_t *lo, uint64_t *hi)
{
	return range_fd(fd, name, lo, hi, NULL);
}

static int range_kernel(const char *name, uint64_t *lo, uint64_t *hi,
			const bool *cancel)
{
	int fd = open("/proc/kallsyms", O_RDONLY | O_CLOEXEC), err;

	if (fd < 0)
		return -errno;
	err = range_fd(fd, name, lo, hi, cancel);
	close(fd);
	return err;
}

int ksym_range_kernel(const char *name, uint64_t *lo, uint64_t *hi)
{
	return range_kernel(name, lo, hi, NULL);
}

/* The kernel makes the listing (~30 ms): meanwhile the caller goes on. */
static void *lookup_thread(void *arg)
{
	struct ksym_lookup *l = arg;

	l->err = range_kernel(l->name, &l->lo, &l->hi, &l->cancel);
	return NULL;
}

int ksym_lookup_start(struct ksym_lookup *l, const char *name)
{
	int err;

	memset(l, 0, sizeof(*l));
	l->name = name;
	err = -pthread_create(&l->thread, NULL, lookup_thread, l);
	l->started = !err;
	return err;
}

int ksym_lookup_wait(struct ksym_lookup *l, uint64_t *lo, uint64_t *hi)
{
	if (!l->started)
		return ksym_range_kernel(l->name, lo, hi);
	pthread_join(l->thread, NULL);
	l->started = false;
	if (!l->err) {
		*lo = l->lo;
		*hi = l->hi;
	}
	return l->err;
}

void ksym_lookup_cancel(struct ksym_lookup *l)
{
	if (!l->started)
		return;
	__atomic_store_n(&l->cancel, true, __ATOMIC_RELAXED);	/* seen at the next chunk */
	pthread_join(l->thread, NULL);
	l->started = false;
}
