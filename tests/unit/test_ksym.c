// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The kallsyms scan (user/ksym.c) on made-up listings: lines cut by the read
 * chunk, names that only start alike, data symbols, aliases, hidden addresses.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "ksym.h"

/* A listing in a memfd: `filler` lines of padding first, then tail. */
static int listing(size_t filler, const char *tail)
{
	int fd = memfd_create("kallsyms", MFD_CLOEXEC);
	char line[128];

	assert_true(fd >= 0);
	for (size_t i = 0; i < filler; i++) {
		int n = snprintf(line, sizeof(line), "ffffffff8100%04zx T filler_function_%zu\n",
				 i, i);

		assert_int_equal(write(fd, line, n), n);
	}
	assert_int_equal(write(fd, tail, strlen(tail)), (ssize_t)strlen(tail));
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	return fd;
}

static int range(size_t filler, const char *tail, const char *name, uint64_t *lo,
		 uint64_t *hi)
{
	int fd = listing(filler, tail), err;

	err = ksym_range_fd(fd, name, lo, hi);
	close(fd);
	return err;
}

static const char tail[] =
	"ffffffff82020000 t tcp_rcv_state_process_x\n"
	"ffffffff82020100 d tcp_rcv_state_process\n"	/* data, not code */
	"ffffffff82020a40 T tcp_rcv_state_process\n"
	"ffffffff82020a40 T alias_at_the_same_address\n"
	"ffffffff82021fb0 T __pfx_tcp_get_syncookie_mss\n"
	"ffffffff82021fc0 T tcp_get_syncookie_mss\n"
	"ffffffffc0201000 t mod_func\t[some_module]\n"
	"ffffffffc0202000 t last_one\t[some_module]\n";

static void test_found(void **state)
{
	uint64_t lo = 0, hi = 0;

	(void)state;
	/* 0, and then enough filler lines that chunk ends cut lines */
	for (size_t filler = 0; filler < 20000; filler += 4999) {
		assert_int_equal(range(filler, tail, "tcp_rcv_state_process", &lo, &hi), 0);
		assert_int_equal(lo, 0xffffffff82020a40ULL);
		assert_int_equal(hi, 0xffffffff82021fb0ULL);
	}
	assert_int_equal(range(3, tail, "mod_func", &lo, &hi), 0);
	assert_int_equal(lo, 0xffffffffc0201000ULL);
	assert_int_equal(hi, 0xffffffffc0202000ULL);
	assert_int_equal(range(3, tail, "filler_function_1", &lo, &hi), 0);
	assert_int_equal(lo, 0xffffffff81000001ULL);
	assert_int_equal(hi, 0xffffffff81000002ULL);
}

static void test_not_found(void **state)
{
	uint64_t lo = 1, hi = 2;

	(void)state;
	assert_int_equal(range(5000, tail, "tcp_rcv_state", &lo, &hi), -ENOENT);
	assert_int_equal(range(5000, tail, "no_such_function", &lo, &hi), -ENOENT);
	/* the last symbol has no end */
	assert_int_equal(range(5000, tail, "last_one", &lo, &hi), -ENOENT);
	assert_int_equal(range(0, "", "tcp_rcv_state_process", &lo, &hi), -ENOENT);
	assert_int_equal(lo, 1);
	assert_int_equal(hi, 2);
}

static void test_hidden(void **state)
{
	static const char zero[] =
		"0000000000000000 T tcp_rcv_state_process\n"
		"0000000000000000 T tcp_get_syncookie_mss\n";
	uint64_t lo, hi;

	(void)state;
	assert_int_equal(range(0, zero, "tcp_rcv_state_process", &lo, &hi), -EPERM);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_found),
		cmocka_unit_test(test_not_found),
		cmocka_unit_test(test_hidden),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
