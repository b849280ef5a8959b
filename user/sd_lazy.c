// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * libsystemd, loaded only under a service manager that asks for
 * notifications ($NOTIFY_SOCKET or $WATCHDOG_USEC set).
 *
 * service.c needs two functions of it, but linking libsystemd maps it and
 * its six libraries (gcrypt, zstd, lzma, lz4, cap, gpg-error) into every run:
 * about 0.8 MiB resident. These definitions stand in for the two, and
 * behave as libsystemd's do when the variables are unset: 0, nothing sent.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <systemd/sd-daemon.h>

#define SD_SONAME "libsystemd.so.0"

/* The symbol from libsystemd, opened once; NULL if it cannot be. */
static void *sd_sym(const char *name)
{
	static void *h;
	static bool tried;

	if (!tried) {
		tried = true;
		h = dlopen(SD_SONAME, RTLD_NOW | RTLD_LOCAL);
		if (!h)
			fprintf(stderr, "service: cannot load %s: %s\n", SD_SONAME, dlerror());
	}
	return h ? dlsym(h, name) : NULL;
}

int sd_notify(int unset_environment, const char *state)
{
	int (*fn)(int, const char *);

	if (!getenv("NOTIFY_SOCKET"))
		return 0;
	*(void **)&fn = sd_sym("sd_notify");
	return fn ? fn(unset_environment, state) : -ENOSYS;
}

int sd_watchdog_enabled(int unset_environment, uint64_t *usec)
{
	int (*fn)(int, uint64_t *);

	if (!getenv("WATCHDOG_USEC"))
		return 0;
	*(void **)&fn = sd_sym("sd_watchdog_enabled");
	return fn ? fn(unset_environment, usec) : -ENOSYS;
}
