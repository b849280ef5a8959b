/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The hook layer every command shares: which BPF programs this kernel
 * allows, decided from a data table.
 *
 * A command describes its programs as rows of struct hook_def (program name,
 * kind of hook, target, the signal it carries, flags) and its signals as an
 * array of names. hooks_select() switches off, before the load, each program
 * whose hook this kernel lacks: tp_btf from BTF, classic tracepoints from
 * tracefs (mounted once if missing), fentry/fexit by a real load and attach of
 * a do-nothing program (EPERM, ENOENT and the like mean "not available",
 * never a fatal error). hooks_attach() attaches what loaded; the outcome, one
 * struct probe_report per signal, is what `--probes`, the start records and
 * `conntrace listen -v` print. A new signal is a new row.
 */
#ifndef CONNTRACE_HOOKS_H
#define CONNTRACE_HOOKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct bpf_object;
struct bpf_link;
struct btf;

enum hook_kind { HK_TP_BTF, HK_FENTRY, HK_FEXIT, HK_SYSCALL_TP, HK_ITER };

enum hook_flags {
	HOOK_OPTIONAL	= 0,	/* loads where its hook exists */
	/* the command cannot run without it: unavailable is an error */
	HOOK_REQUIRED	= 1 << 0,
	/* with the other HOOK_SET rows of its signal, all or none (an exact
	 * count needs every site); a missing one switches the others off */
	HOOK_SET	= 1 << 1,
	/* loaded only when its signal's HOOK_SET is not: the fallback path */
	HOOK_FALLBACK	= 1 << 2,
	/* a function some kernels lack (no SYN cookies, IPv6 as a module):
	 * absent, it is left out without breaking its set */
	HOOK_IF_PRESENT	= 1 << 3,
	/* loaded only when another program of its signal is (an iterator over
	 * what the others record) */
	HOOK_WITH_SIGNAL = 1 << 4,
	/* the program of an earlier row, which also carries this row's signal
	 * (one program per tracepoint doing several parts' work): loaded and
	 * attached once, by that row; this row reports it */
	HOOK_SHARED	= 1 << 5,
};

struct hook_def {
	const char *prog;	/* program name in the BPF object */
	enum hook_kind kind;
	const char *target;	/* tracepoint, "syscalls/event", function, iterator */
	int signal;		/* index into the command's signal names */
	unsigned flags;		/* enum hook_flags */
};

/* One line of the report: a signal and the hooks that carry it. */
struct probe_report {
	const char *signal;	/* "connect", "syn_retransmit", ... */
	char hook[160];		/* what is attached, comma-separated, or "-" */
	bool ok;
	char note[256];		/* why not, or a caveat */
};

/* libbpf's messages on stderr with verbose (never its debug level): the
 * print callback is installed once, whichever command calls first. */
void hooks_libbpf_logging(bool verbose);
bool hooks_verbose(void);

/* Mounts tracefs on /sys/kernel/tracing if nobody has (tried once). */
int hooks_tracefs_mount(void);
/* 0 if classic tracepoint `event` ("syscalls/sys_enter_listen") exists,
 * mounting tracefs first if needed; else a negative errno and a note. */
int hooks_tracefs_event(const char *event, char *note, size_t sz);
bool hooks_tp_btf_exists(const struct btf *btf, const char *tp);
/* Really loads and attaches a do-nothing fentry program on func: 0, or
 * -ENOENT (no such function), -EPERM (trampolines refused), ... */
int hooks_probe_fentry(const struct btf *btf, const char *func);
/* Really loads a tp_btf program on tracepoint tp (whose first argument is a
 * socket) that calls bpf_sk_storage_get(): 0 where tracing programs may use
 * socket storage (5.11 and later), else -EINVAL, -ENOENT, ... */
int hooks_probe_sk_storage(const struct btf *btf, const char *tp);
/* The same with bpf_task_storage_get() on the current task (5.11 and later). */
int hooks_probe_task_storage(const struct btf *btf, const char *tp);

/* skb:consume_skb carries its location (6.3+): see hooks.c */
bool hooks_consume_has_location(const struct btf *btf);
/* An answer meaning "this kernel does not allow it", not a bug of ours. */
bool hooks_not_available(int err);
/* "tp_btf/sk_data_ready", "fentry/tcp_conn_request", ... */
void hooks_name(char *buf, size_t sz, enum hook_kind kind, const char *target);

enum { HOOKS_NO_FENTRY = 1 << 0 };	/* hooks_select() options */

/*
 * Before the load: sets each program's autoload from what this kernel allows
 * and the flags, and fills rep[0..nsignals) (signal names, notes of what is
 * missing). 0, or a negative errno with errmsg set (a program missing from
 * the object, a HOOK_REQUIRED hook unavailable).
 */
int hooks_select(struct bpf_object *obj, const struct btf *btf,
		 const struct hook_def *defs, size_t n, const char *const *signals,
		 size_t nsignals, unsigned opts, struct probe_report *rep,
		 char *errmsg, size_t errsz);
/*
 * After the load: attaches every program that loaded into links[0..n)
 * (iterators over a map get iter_map_fd). A failure costs its own row, or its
 * whole HOOK_SET, and is noted; a HOOK_REQUIRED one fails the call. Then
 * finishes rep: each signal's hooks, ok when one is attached.
 */
int hooks_attach(struct bpf_object *obj, const struct hook_def *defs, size_t n,
		 struct bpf_link **links, int iter_map_fd, struct probe_report *rep,
		 size_t nsignals, char *errmsg, size_t errsz);
void hooks_detach(struct bpf_link **links, size_t n);
/* True if every non-absent row of signal's HOOK_SET is attached. */
bool hooks_set_attached(const struct hook_def *defs, size_t n, struct bpf_link **links,
			int signal);

/* The report as a table: SIGNAL, HOOK, NOTE (prefix before each line). */
void hooks_print_report(FILE *f, const char *prefix, const struct probe_report *rep,
			size_t nr);

#endif
