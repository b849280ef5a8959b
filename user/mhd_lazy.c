// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * libmicrohttpd, loaded only when --metrics starts its server.
 *
 * Debian's libmicrohttpd pulls in GnuTLS and eight more libraries whose
 * constructors run at exec: about 2.4 MiB of resident memory in every run,
 * with or without --metrics (BENCHMARKS.md, peak RSS). In a dynamic build
 * (the Makefile defines CT_MHD_DLOPEN and does not link -lmicrohttpd) these
 * definitions stand in for the few functions metrics.c calls, and the first
 * MHD_start_daemon() opens the library. STATIC=1 links it as before.
 */
#ifdef CT_MHD_DLOPEN
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdint.h>
#include <microhttpd.h>

#define MHD_SONAME "libmicrohttpd.so.12"

static struct {
	struct MHD_Daemon *(*start_va)(unsigned int, uint16_t, MHD_AcceptPolicyCallback, void *,
				       MHD_AccessHandlerCallback, void *, va_list);
	void (*stop)(struct MHD_Daemon *);
	struct MHD_Response *(*from_buffer)(size_t, void *, enum MHD_ResponseMemoryMode);
	enum MHD_Result (*add_header)(struct MHD_Response *, const char *, const char *);
	enum MHD_Result (*queue)(struct MHD_Connection *, unsigned int, struct MHD_Response *);
	void (*destroy)(struct MHD_Response *);
} mhd;

/* Called before the server's thread exists: no lock needed. */
static int mhd_load(void)
{
	void *h;

	if (mhd.start_va)
		return 0;
	h = dlopen(MHD_SONAME, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		fprintf(stderr, "metrics: cannot load %s: %s\n", MHD_SONAME, dlerror());
		return -1;
	}
	*(void **)&mhd.stop = dlsym(h, "MHD_stop_daemon");
	*(void **)&mhd.from_buffer = dlsym(h, "MHD_create_response_from_buffer");
	*(void **)&mhd.add_header = dlsym(h, "MHD_add_response_header");
	*(void **)&mhd.queue = dlsym(h, "MHD_queue_response");
	*(void **)&mhd.destroy = dlsym(h, "MHD_destroy_response");
	*(void **)&mhd.start_va = dlsym(h, "MHD_start_daemon_va");
	if (!mhd.stop || !mhd.from_buffer || !mhd.add_header || !mhd.queue || !mhd.destroy ||
	    !mhd.start_va) {
		fprintf(stderr, "metrics: %s lacks a function conntrace calls\n", MHD_SONAME);
		mhd.start_va = NULL;
		dlclose(h);
		return -1;
	}
	return 0;	/* kept open for the process's life */
}

struct MHD_Daemon *MHD_start_daemon(unsigned int flags, uint16_t port,
				    MHD_AcceptPolicyCallback apc, void *apc_cls,
				    MHD_AccessHandlerCallback dh, void *dh_cls, ...)
{
	struct MHD_Daemon *d;
	va_list ap;

	if (mhd_load())
		return NULL;
	va_start(ap, dh_cls);
	d = mhd.start_va(flags, port, apc, apc_cls, dh, dh_cls, ap);
	va_end(ap);
	return d;
}

/* The rest are only reached through a started daemon: the library is there. */
void MHD_stop_daemon(struct MHD_Daemon *daemon)
{
	if (mhd.stop)
		mhd.stop(daemon);
}

struct MHD_Response *MHD_create_response_from_buffer(size_t size, void *buffer,
						     enum MHD_ResponseMemoryMode mode)
{
	return mhd.from_buffer ? mhd.from_buffer(size, buffer, mode) : NULL;
}

enum MHD_Result MHD_add_response_header(struct MHD_Response *response, const char *header,
					const char *content)
{
	return mhd.add_header ? mhd.add_header(response, header, content) : MHD_NO;
}

enum MHD_Result MHD_queue_response(struct MHD_Connection *connection, unsigned int status_code,
				   struct MHD_Response *response)
{
	return mhd.queue ? mhd.queue(connection, status_code, response) : MHD_NO;
}

void MHD_destroy_response(struct MHD_Response *response)
{
	if (mhd.destroy)
		mhd.destroy(response);
}
#endif
