// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The collector's privileges: checked before anything opens, dropped after (--user). */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/capability.h>
#include "privileges.h"

/* Which privilege is missing, or NULL. Root normally holds them all. */
static const char *missing_privilege(void)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2] = {};
	const int caps[] = { CAP_BPF, CAP_PERFMON };
	const char *names[] = { "CAP_BPF", "CAP_PERFMON" };

	if (syscall(SYS_capget, &hdr, data))
		return geteuid() ? "root" : NULL;
	if (data[CAP_SYS_ADMIN / 32].effective & (1u << (CAP_SYS_ADMIN % 32)))
		return NULL;	/* CAP_SYS_ADMIN covers both */
	for (int i = 0; i < 2; i++)
		if (!(data[caps[i] / 32].effective & (1u << (caps[i] % 32))))
			return names[i];
	return NULL;
}

/* Privileges and BTF, before anything is opened: exit status 1. */
int check_system(struct collector_error *e)
{
	const char *priv = missing_privilege();

	e->status = CT_EXIT_FAILURE;
	if (priv) {
		snprintf(e->msg, sizeof(e->msg), "needs %s: run as root (sudo), or grant CAP_BPF "
			 "and CAP_PERFMON", priv);
		return -EPERM;
	}
	if (access("/sys/kernel/btf/vmlinux", R_OK)) {
		int err = -errno;

		snprintf(e->msg, sizeof(e->msg), "this kernel has no BTF (/sys/kernel/btf/vmlinux: "
			 "%s); it needs CONFIG_DEBUG_INFO_BTF=y", strerror(-err));
		return err;
	}
	return 0;
}

/* Drops to an unprivileged user after the BPF side is set up: the ring buffer
 * and the maps stay usable through the file descriptors already open. */
int drop_privileges(const char *user, char *errmsg, size_t errsz)
{
	struct passwd *pw;

	errno = 0;
	pw = getpwnam(user);
	if (!pw) {
		snprintf(errmsg, errsz, "--user: no user '%s'%s%s", user, errno ? ": " : "",
			 errno ? strerror(errno) : "");
		return -ENOENT;
	}
	if (setgroups(0, NULL) || setgid(pw->pw_gid) || setuid(pw->pw_uid)) {
		int err = -errno;

		snprintf(errmsg, errsz, "--user: cannot become %s: %s", user, strerror(-err));
		return err;
	}
	/* a non-root uid set by a root process keeps no capabilities; make sure */
	if (setuid(0) == 0) {
		snprintf(errmsg, errsz, "--user: still able to regain root after dropping to %s", user);
		return -EPERM;
	}
	return 0;
}
