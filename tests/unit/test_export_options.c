// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * ct_options_parse() for the export options: -o/--output, --rotate-size,
 * --rotate-keep, --metrics. Good values land in the right fields; bad ones,
 * and options missing the one they need, are refused with -EINVAL and one
 * line naming the option (main prints it and exits 2). Same table style as
 * test_options.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/types.h>
#include "correlate.h"
#include "options.h"

#define CHECK(cond, ...) do { if (!(cond)) fail_msg(__VA_ARGS__); } while (0)

#define MAX_ARGS 8

struct argl {
	const char *a[MAX_ARGS + 1];
};

static const char *describe(const struct argl *l)
{
	static char buf[512];
	size_t n = 0;

	buf[0] = '\0';
	for (int i = 0; l->a[i] && n < sizeof(buf); i++)
		n += snprintf(buf + n, sizeof(buf) - n, "%s'%.60s'", i ? " " : "", l->a[i]);
	return buf;
}

/* argp may permute argv: every call gets a fresh, writable copy, freed after */
static int parse(struct ct_options *o, char *err, size_t errsz, const struct argl *l)
{
	char *argv[MAX_ARGS + 2];
	int argc = 0, rc;

	argv[argc++] = strdup("conntrace");
	for (int i = 0; l->a[i]; i++)
		argv[argc++] = strdup(l->a[i]);
	argv[argc] = NULL;
	for (int i = 0; i < argc; i++)
		assert_non_null(argv[i]);
	memset(err, 0, errsz);
	rc = ct_options_parse(o, argc, argv, err, errsz);
	for (int i = 0; i < argc; i++)
		free(argv[i]);
	return rc;
}

static struct ct_options must_parse(const struct argl *l)
{
	struct ct_options o;
	char err[256];
	int rc = parse(&o, err, sizeof(err), l);

	CHECK(rc == 0, "%s: expected 0, got %d (%s)", describe(l), rc, err);
	return o;
}

static void expect_refused(const struct argl *l, const char *names)
{
	struct ct_options o;
	char err[256];
	int rc = parse(&o, err, sizeof(err), l);

	CHECK(rc == -EINVAL, "%s: expected -EINVAL, got %d", describe(l), rc);
	CHECK(err[0] && !strchr(err, '\n') && !strchr(err, '\033'),
	      "%s: expected a one-line message, got '%s'", describe(l), err);
	CHECK(strstr(err, names), "%s: expected the message to name '%s', got '%s'", describe(l),
	      names, err);
}

static void test_defaults(void **state)
{
	static const struct argl none = { { NULL } };
	struct ct_options o;

	(void)state;
	o = must_parse(&none);
	assert_string_equal(o.output, "");
	assert_int_equal(o.rotate_size, 0);
	assert_int_equal(o.rotate_keep, 0);
	assert_false(o.metrics);
	assert_false(o.tc.emit_ok);	/* fast OK connects stay in the kernel */
	assert_int_equal(o.buffer_size, 64ULL << 20);	/* --buffer, documented default */
}

static void test_buffer(void **state)
{
	static const struct argl k = { { "--buffer", "256K" } }, g = { { "--buffer=2G" } };

	(void)state;
	assert_int_equal(must_parse(&k).buffer_size, 256 << 10);
	assert_int_equal(must_parse(&g).buffer_size, 2ULL << 30);
}

static void test_output(void **state)
{
	static const struct { struct argl args; const char *want; } cases[] = {
		{ { { "-o", "/var/log/conntrace.jsonl" } }, "/var/log/conntrace.jsonl" },
		{ { { "-o/tmp/x" } }, "/tmp/x" },
		{ { { "--output", "rel/path" } }, "rel/path" },
		{ { { "--output=/tmp/a b" } }, "/tmp/a b" },
		{ { { "-jo", "/tmp/y" } }, "/tmp/y" },
		{ { { "-o", "-" } }, "" },	/* standard output */
		{ { { "-o", "/tmp/first", "-o", "/tmp/last" } }, "/tmp/last" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ct_options o = must_parse(&cases[i].args);

		CHECK(!strcmp(o.output, cases[i].want), "%s: output '%s', expected '%s'",
		      describe(&cases[i].args), o.output, cases[i].want);
	}
}

static void test_rotation(void **state)
{
	static const struct { struct argl args; uint64_t size; unsigned keep; } cases[] = {
		{ { { "-o", "/tmp/x", "--rotate-size", "100M" } }, 100ULL << 20, 0 },
		{ { { "-o", "/tmp/x", "--rotate-size=4K", "--rotate-keep=1" } }, 4096, 1 },
		{ { { "-o", "/tmp/x", "--rotate-size", "5000", "--rotate-keep", "1000" } }, 5000, 1000 },
		{ { { "--rotate-size", "1G", "-o", "/tmp/x" } }, 1ULL << 30, 0 },	/* any order */
		{ { { "-o", "/tmp/x", "--rotate-size", "1t" } }, 1ULL << 40, 0 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ct_options o = must_parse(&cases[i].args);

		CHECK(o.rotate_size == cases[i].size && o.rotate_keep == cases[i].keep,
		      "%s: size %llu keep %u", describe(&cases[i].args),
		      (unsigned long long)o.rotate_size, o.rotate_keep);
	}
}

static void test_metrics(void **state)
{
	static const struct argl l4 = { { "--metrics", "127.0.0.1:9917" } };
	static const struct argl l6 = { { "--metrics=[::1]:80", "--verdict", "timeout" } };
	struct ct_options o;
	struct sockaddr_in *sin = (struct sockaddr_in *)&o.metrics_addr;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&o.metrics_addr;

	(void)state;
	o = must_parse(&l4);
	assert_true(o.metrics);
	assert_int_equal(sin->sin_family, AF_INET);
	assert_int_equal(ntohs(sin->sin_port), 9917);
	assert_int_equal(ntohl(sin->sin_addr.s_addr), INADDR_LOOPBACK);
	assert_int_equal(o.metrics_addrlen, sizeof(*sin));
	/* metrics count OK verdicts, but the kernel counts those not printed */
	assert_false(o.tc.emit_ok);
	assert_false(o.verdict_mask & (1u << CT_V_OK));

	o = must_parse(&l6);
	assert_int_equal(sin6->sin6_family, AF_INET6);
	assert_int_equal(ntohs(sin6->sin6_port), 80);
	assert_true(IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr));
	assert_false(o.tc.emit_ok);
	assert_int_equal(o.verdict_mask, 1u << CT_V_TIMEOUT);
}

static void test_bad_values_refused_naming_the_option(void **state)
{
	static const struct { const char *opt, *value, *names; } cases[] = {
		{ "--output", "", "--output" },
		{ "--rotate-size", "", "--rotate-size" }, { "--rotate-size", "1X", "not a size" },
		{ "--rotate-size", "4KB", "not a size" }, { "--rotate-size", "-4K", "not a size" },
		{ "--rotate-size", "1K", "out of range" }, { "--rotate-size", "2T", "out of range" },
		{ "--rotate-size", "99999999999999999999", "out of range" },
		{ "--rotate-keep", "0", "--rotate-keep" }, { "--rotate-keep", "1001", "--rotate-keep" },
		{ "--rotate-keep", "x", "--rotate-keep" }, { "--rotate-keep", "-1", "--rotate-keep" },
		{ "--rotate-keep", "", "--rotate-keep" },
		{ "--metrics", "", "--metrics" }, { "--metrics", "9917", "not ADDR:PORT" },
		{ "--metrics", "127.0.0.1", "not ADDR:PORT" }, { "--metrics", "127.0.0.1:0", "out of range" },
		{ "--metrics", "127.0.0.1:65536", "out of range" },
		{ "--metrics", "::1:9917", "brackets" },
		{ "--metrics", "example.org:9917", "not a numeric address" },
		{ "--metrics", "1.2.3.4.5:1", "not a numeric address" },
		{ "--metrics", "\033]0;x\007:1", "not a numeric address" },
		{ "--buffer", "", "--buffer" }, { "--buffer", "1X", "not a size" },
		{ "--buffer", "1K", "out of range" }, { "--buffer", "2T", "out of range" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		/* -o FILE first, so that only the value under test is wrong */
		struct argl sep = { { "-o", "/tmp/x", "--rotate-size", "1M", cases[i].opt,
				      cases[i].value } };
		struct argl joined = { { "-o", "/tmp/x", "--rotate-size", "1M" } };
		char eq[128];

		snprintf(eq, sizeof(eq), "%s=%s", cases[i].opt, cases[i].value);
		joined.a[4] = eq;
		expect_refused(&sep, cases[i].names);
		expect_refused(&joined, cases[i].names);
	}
}

static void test_output_name_too_long(void **state)
{
	static char longname[5000];
	struct argl l = { { "-o", longname } };

	(void)state;
	memset(longname, 'a', sizeof(longname) - 1);
	expect_refused(&l, "--output");
}

static void test_options_that_need_another(void **state)
{
	static const struct { struct argl args; const char *names; } cases[] = {
		{ { { "--rotate-size", "1M" } }, "--rotate-size: needs --output" },
		{ { { "-o", "-", "--rotate-size", "1M" } }, "--rotate-size: needs --output" },
		{ { { "-o", "/tmp/x", "--rotate-keep", "3" } }, "--rotate-keep: needs --rotate-size" },
		{ { { "--rotate-keep", "3" } }, "--rotate-keep: needs --rotate-size" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		expect_refused(&cases[i].args, cases[i].names);
}

static void test_missing_argument_refused(void **state)
{
	static const struct { struct argl args; const char *names; } cases[] = {
		{ { { "-o" } }, "requires an argument -- 'o'" },
		{ { { "-jo" } }, "requires an argument -- 'o'" },
		{ { { "--output" } }, "'--output' requires an argument" },
		{ { { "--metrics" } }, "'--metrics' requires an argument" },
		{ { { "-o", "/tmp/x", "--rotate-size" } }, "'--rotate-size' requires an argument" },
		{ { { "--rotate-keep" } }, "'--rotate-keep' requires an argument" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		expect_refused(&cases[i].args, cases[i].names);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_buffer),
		cmocka_unit_test(test_output),
		cmocka_unit_test(test_rotation),
		cmocka_unit_test(test_metrics),
		cmocka_unit_test(test_bad_values_refused_naming_the_option),
		cmocka_unit_test(test_output_name_too_long),
		cmocka_unit_test(test_options_that_need_another),
		cmocka_unit_test(test_missing_argument_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
