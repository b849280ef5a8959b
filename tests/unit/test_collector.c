// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * collector.c: what a failed poll of the ring buffer means. It cannot be
 * provoked on a real ring from outside, so the mapping the loop uses is
 * tested here: EINTR (a signal) and record counts go on; any other error
 * stops the loop with one line naming the ring and the error, and the exit
 * status is 1, so that systemd's Restart=on-failure restarts conntrace
 * (it exited 0 before).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>
#include "collector.h"

static void test_records_and_signals_go_on(void **state)
{
	char msg[128] = "";

	(void)state;
	assert_int_equal(collector_poll_status(0, msg, sizeof(msg)), 0);
	assert_int_equal(collector_poll_status(42, msg, sizeof(msg)), 0);
	assert_int_equal(collector_poll_status(-EINTR, msg, sizeof(msg)), 0);
	assert_string_equal(msg, "");
}

static void test_poll_errors_stop_with_one_line(void **state)
{
	const int errs[] = { EBADF, EINVAL, EFAULT, ENOMEM };
	char msg[128];

	(void)state;
	for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++) {
		int err;

		msg[0] = '\0';
		err = collector_poll_status(-errs[i], msg, sizeof(msg));
		assert_int_equal(err, -errs[i]);
		assert_non_null(strstr(msg, "ringbuf: polling failed: "));
		assert_non_null(strstr(msg, strerror(errs[i])));
		assert_null(strchr(msg, '\n'));
		assert_int_equal(collector_exit_status(err), CT_EXIT_FAILURE);
	}
}

static void test_a_clean_stop_exits_0(void **state)
{
	(void)state;
	assert_int_equal(collector_exit_status(0), CT_EXIT_OK);
	assert_int_equal(CT_EXIT_OK, 0);
	assert_int_equal(CT_EXIT_FAILURE, 1);
	assert_int_equal(CT_EXIT_USAGE, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_records_and_signals_go_on),
		cmocka_unit_test(test_poll_errors_stop_with_one_line),
		cmocka_unit_test(test_a_clean_stop_exits_0),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
