// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Kernel I/O. The hook choice is data: the table below says which program
 * carries which signal and on what hook; at start-up each program whose hook
 * this kernel lacks is switched off with bpf_program__set_autoload(), and the
 * connect() error path is chosen by really loading and attaching an fentry
 * probe. What was chosen is kept for the --probes report and the start record.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <linux/bpf.h>
#include <linux/membarrier.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include "conntrace.skel.h"
#include "kenum.h"
#include "tracer.h"

enum hook_kind { HK_TP_BTF, HK_FENTRY, HK_FEXIT, HK_SYSCALL_TP, HK_ITER };

struct prog_def {
	const char *prog;	/* program name in conntrace.bpf.c */
	enum hook_kind kind;
	const char *target;	/* tracepoint or kernel function */
	int signal;		/* index into signals[] */
};

enum {
	SIG_CONNECT, SIG_CONNECT_ERROR, SIG_SYN_RETRANSMIT, SIG_RST_RECEIVED,
	SIG_RST_SENT, SIG_SOCKET_ERROR, SIG_DROP, SIG_LISTEN_QUEUE, SIG_MAX,
};

static const char *const signals[SIG_MAX] = {
	[SIG_CONNECT] = "connect",
	[SIG_CONNECT_ERROR] = "connect_error",
	[SIG_SYN_RETRANSMIT] = "syn_retransmit",
	[SIG_RST_RECEIVED] = "rst_received",
	[SIG_RST_SENT] = "rst_sent",
	[SIG_SOCKET_ERROR] = "socket_error",
	[SIG_DROP] = "drop",
	[SIG_LISTEN_QUEUE] = "listen_queue",
};

static const struct prog_def progs[] = {
	{ "handle_set_state", HK_TP_BTF, "inet_sock_set_state", SIG_CONNECT },
	{ "handle_retransmit", HK_TP_BTF, "tcp_retransmit_skb", SIG_SYN_RETRANSMIT },
	{ "handle_receive_reset", HK_TP_BTF, "tcp_receive_reset", SIG_RST_RECEIVED },
	{ "handle_send_reset", HK_TP_BTF, "tcp_send_reset", SIG_RST_SENT },
	{ "handle_error_report", HK_TP_BTF, "inet_sk_error_report", SIG_SOCKET_ERROR },
	{ "handle_kfree_skb", HK_TP_BTF, "kfree_skb", SIG_DROP },
	{ "handle_data_ready", HK_TP_BTF, "sk_data_ready", SIG_LISTEN_QUEUE },
	{ "fentry_conn_request", HK_FENTRY, "tcp_conn_request", SIG_LISTEN_QUEUE },
	/* read on demand, over the map of listeners found full */
	{ "dump_listeners", HK_ITER, "bpf_map_elem", SIG_LISTEN_QUEUE },
	/* connect() failing before any state change: one of the next two sets */
	{ "fentry_v4_connect", HK_FENTRY, "tcp_v4_connect", SIG_CONNECT_ERROR },
	{ "fexit_v4_connect", HK_FEXIT, "tcp_v4_connect", SIG_CONNECT_ERROR },
	{ "fentry_v6_connect", HK_FENTRY, "tcp_v6_connect", SIG_CONNECT_ERROR },
	{ "fexit_v6_connect", HK_FEXIT, "tcp_v6_connect", SIG_CONNECT_ERROR },
	{ "sys_enter_connect", HK_SYSCALL_TP, "syscalls/sys_enter_connect", SIG_CONNECT_ERROR },
	{ "sys_exit_connect", HK_SYSCALL_TP, "syscalls/sys_exit_connect", SIG_CONNECT_ERROR },
};
#define NR_PROGS (sizeof(progs) / sizeof(progs[0]))

struct tracer {
	struct conntrace_bpf *skel;
	struct btf *vmlinux;
	struct kenum *drop_names, *rst_names;
	struct ring_buffer *rb;
	struct bpf_link *links[NR_PROGS];
	struct probe_report report[SIG_MAX];
	struct bpf_link *listener_iter;	/* NULL without sk_data_ready */
	tracer_record_fn fn;
	void *ctx;
	int ncpus;
};

static bool verbose;

static int print_fn(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG || !verbose)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

static void set_err(char *buf, size_t sz, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sz, fmt, ap);
	va_end(ap);
}

/* Really load and attach a do-nothing fentry program on func. */
static int probe_fentry(const struct btf *btf, const char *func)
{
	struct bpf_insn insns[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0 },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	LIBBPF_OPTS(bpf_prog_load_opts, opts, .expected_attach_type = BPF_TRACE_FENTRY);
	int id, prog, link, err = 0;

	id = btf__find_by_name_kind(btf, func, BTF_KIND_FUNC);
	if (id < 0)
		return -ENOENT;
	opts.attach_btf_id = id;
	prog = bpf_prog_load(BPF_PROG_TYPE_TRACING, "ct_probe", "GPL", insns, 2, &opts);
	if (prog < 0)
		return -errno;
	link = bpf_raw_tracepoint_open(NULL, prog);
	if (link < 0)
		err = -errno;
	else
		close(link);
	close(prog);
	return err;
}

/* Classic tracepoints are found through tracefs: mount it if nobody has. */
static int ensure_tracefs(const char *event, char *note, size_t sz)
{
	char path[256];

	snprintf(path, sizeof(path), "/sys/kernel/tracing/events/%s/id", event);
	if (!access(path, R_OK))
		return 0;
	snprintf(path, sizeof(path), "/sys/kernel/debug/tracing/events/%s/id", event);
	if (!access(path, R_OK))
		return 0;
	if (access("/sys/kernel/tracing/events", F_OK) &&
	    mount("nodev", "/sys/kernel/tracing", "tracefs", 0, NULL)) {
		int err = -errno;

		set_err(note, sz, "tracefs is not mounted and mounting it failed: %s",
			strerror(-err));
		return err;
	}
	snprintf(path, sizeof(path), "/sys/kernel/tracing/events/%s/id", event);
	if (access(path, R_OK)) {
		set_err(note, sz, "tracepoint %s not in this kernel", event);
		return -ENOENT;
	}
	return 0;
}

static bool tp_btf_exists(const struct btf *btf, const char *tp)
{
	char name[128];

	snprintf(name, sizeof(name), "btf_trace_%s", tp);
	return btf__find_by_name_kind(btf, name, BTF_KIND_TYPEDEF) > 0;
}

static void hook_name(char *buf, size_t sz, const struct prog_def *p)
{
	static const char *const prefix[] = {
		[HK_TP_BTF] = "tp_btf", [HK_FENTRY] = "fentry", [HK_FEXIT] = "fexit",
		[HK_SYSCALL_TP] = "tracepoint",
		[HK_ITER] = "iter",
	};

	snprintf(buf, sz, "%s/%s", prefix[p->kind], p->target);
}

/* Decide which programs load; fill the report. */
static int choose_hooks(struct tracer *t, char *errmsg, size_t errsz)
{
	struct probe_report *rep = t->report;
	bool fentry_ok;
	char note[128] = "";
	int err4, err6;

	for (int s = 0; s < SIG_MAX; s++) {
		rep[s].signal = signals[s];
		snprintf(rep[s].hook, sizeof(rep[s].hook), "-");
	}
	for (size_t i = 0; i < NR_PROGS; i++) {
		const struct prog_def *p = &progs[i];
		struct bpf_program *prog = bpf_object__find_program_by_name(t->skel->obj, p->prog);
		struct probe_report *r = &rep[p->signal];

		if (!prog) {
			set_err(errmsg, errsz, "bpf: program %s missing from the object", p->prog);
			return -ENOENT;
		}
		if (p->kind != HK_TP_BTF)
			continue;
		if (!tp_btf_exists(t->vmlinux, p->target)) {
			bpf_program__set_autoload(prog, false);
			snprintf(r->note, sizeof(r->note), "tracepoint %s not in this kernel",
				 p->target);
			continue;
		}
		hook_name(r->hook, sizeof(r->hook), p);
		r->ok = true;
	}
	if (!rep[SIG_CONNECT].ok) {
		set_err(errmsg, errsz, "kernel: no tracepoint sock:inet_sock_set_state in BTF; "
			"conntrace needs it to see connection attempts");
		return -ENOTSUP;
	}
	if (rep[SIG_RST_SENT].ok && btf__find_by_name_kind(t->vmlinux, "sk_rst_reason",
							    BTF_KIND_ENUM) < 0)
		snprintf(rep[SIG_RST_SENT].note, sizeof(rep[SIG_RST_SENT].note),
			 "no reason argument before 6.10: NO_SOCKET is inferred from drops");

	/* connect() errors: fentry/fexit where the kernel allows trampolines */
	err4 = probe_fentry(t->vmlinux, "tcp_v4_connect");
	err6 = probe_fentry(t->vmlinux, "tcp_v6_connect");
	fentry_ok = !err4 && !err6;
	for (size_t i = 0; i < NR_PROGS; i++) {
		const struct prog_def *p = &progs[i];
		struct bpf_program *prog = bpf_object__find_program_by_name(t->skel->obj, p->prog);

		if ((p->kind == HK_FENTRY || p->kind == HK_FEXIT) && p->signal == SIG_CONNECT_ERROR)
			bpf_program__set_autoload(prog, fentry_ok);
		else if (p->kind == HK_SYSCALL_TP)
			bpf_program__set_autoload(prog, false);	/* the fallback, below */
	}
	if (fentry_ok) {
		snprintf(rep[SIG_CONNECT_ERROR].hook, sizeof(rep[SIG_CONNECT_ERROR].hook),
			 "fentry+fexit/tcp_v4_connect,tcp_v6_connect");
		rep[SIG_CONNECT_ERROR].ok = true;
	} else {
		int err = ensure_tracefs("syscalls/sys_exit_connect", note, sizeof(note));

		if (!err)
			err = ensure_tracefs("syscalls/sys_enter_connect", note, sizeof(note));
		for (size_t i = 0; i < NR_PROGS; i++) {
			const struct prog_def *p = &progs[i];

			if (p->kind == HK_SYSCALL_TP)
				bpf_program__set_autoload(
					bpf_object__find_program_by_name(t->skel->obj, p->prog), !err);
		}
		if (!err) {
			snprintf(rep[SIG_CONNECT_ERROR].hook, sizeof(rep[SIG_CONNECT_ERROR].hook),
				 "tracepoint/syscalls/sys_{enter,exit}_connect");
			rep[SIG_CONNECT_ERROR].ok = true;
		}
		snprintf(rep[SIG_CONNECT_ERROR].note, sizeof(rep[SIG_CONNECT_ERROR].note),
			 "fentry not available (%s)%s%s", strerror(-(err4 ? err4 : err6)),
			 err ? ": " : "", err ? note : "");
	}

	/* full listeners: sk_data_ready (above) and, where trampolines work, every
	 * SYN at tcp_conn_request; the iterator reads the listeners they found */
	{
		int err = probe_fentry(t->vmlinux, "tcp_conn_request");
		struct probe_report *r = &rep[SIG_LISTEN_QUEUE];

		bpf_program__set_autoload(t->skel->progs.fentry_conn_request, !err);
		if (!err) {
			snprintf(r->hook, sizeof(r->hook), "%sfentry/tcp_conn_request",
				 r->ok ? "tp_btf/sk_data_ready+" : "");
			r->ok = true;
			r->note[0] = '\0';
		} else if (r->ok) {
			snprintf(r->note, sizeof(r->note), "fentry/tcp_conn_request not available "
				 "(%s): full queues seen when a child is queued", strerror(-err));
		}
		bpf_program__set_autoload(t->skel->progs.dump_listeners, r->ok);
	}
	return 0;
}

static int on_record(void *ctx, void *data, size_t len)
{
	struct tracer *t = ctx;

	return t->fn(t->ctx, data, len);
}

int tracer_open(struct tracer **out, const struct tracer_config *cfg,
		tracer_record_fn fn, void *ctx, char *errmsg, size_t errsz)
{
	struct tracer *t;
	int err;

	verbose = cfg->verbose;
	libbpf_set_print(print_fn);
	t = calloc(1, sizeof(*t));
	if (!t) {
		set_err(errmsg, errsz, "out of memory");
		return -ENOMEM;
	}
	t->fn = fn;
	t->ctx = ctx;
	t->ncpus = libbpf_num_possible_cpus();
	if (t->ncpus < 0) {
		err = t->ncpus;
		set_err(errmsg, errsz, "libbpf: cannot count possible CPUs: %s", strerror(-err));
		goto fail;
	}
	t->vmlinux = btf__load_vmlinux_btf();
	if (!t->vmlinux) {
		err = -errno;
		set_err(errmsg, errsz, "btf: cannot load the kernel's BTF "
			"(/sys/kernel/btf/vmlinux): %s", strerror(-err));
		goto fail;
	}
	t->drop_names = kenum_load(t->vmlinux, "skb_drop_reason", "SKB_DROP_REASON_");
	t->rst_names = kenum_load(t->vmlinux, "sk_rst_reason", "SK_RST_REASON_");

	t->skel = conntrace_bpf__open();
	if (!t->skel) {
		err = -errno;
		set_err(errmsg, errsz, "bpf: cannot open the BPF object: %s", strerror(-err));
		goto fail;
	}
	t->skel->rodata->targ_tgid = cfg->tgid;
	t->skel->rodata->targ_port = cfg->port;
	t->skel->rodata->emit_ok = cfg->emit_ok;
	t->skel->rodata->slow_ns = cfg->slow_ns;
	/* wake the collector early only when a quarter of the ring is used */
	t->skel->rodata->wakeup_bytes = cfg->ring_size / 4;
	t->skel->rodata->max_flows = cfg->max_flows;
	err = bpf_map__set_max_entries(t->skel->maps.events, cfg->ring_size);
	if (!err)
		err = bpf_map__set_max_entries(t->skel->maps.flows, cfg->max_flows);
	if (err) {
		set_err(errmsg, errsz, "bpf: cannot size the maps: %s", strerror(-err));
		goto fail;
	}
	err = choose_hooks(t, errmsg, errsz);
	if (err)
		goto fail;
	/* libbpf loads the BTF again for its relocations: drop ours first */
	btf__free(t->vmlinux);
	t->vmlinux = NULL;
	err = conntrace_bpf__load(t->skel);
	if (err) {
		set_err(errmsg, errsz, "bpf: loading the programs failed: %s%s", strerror(-err),
			verbose ? "" : " (run with -v for the verifier's log)");
		goto fail;
	}
	for (size_t i = 0; i < NR_PROGS; i++) {
		const struct prog_def *p = &progs[i];
		struct bpf_program *prog = bpf_object__find_program_by_name(t->skel->obj, p->prog);
		struct probe_report *r = &t->report[p->signal];

		if (!bpf_program__autoload(prog))
			continue;
		if (p->kind == HK_ITER) {
			union bpf_iter_link_info info = {
				.map.map_fd = bpf_map__fd(t->skel->maps.listeners),
			};
			LIBBPF_OPTS(bpf_iter_attach_opts, io, .link_info = &info,
				    .link_info_len = sizeof(info));

			t->links[i] = bpf_program__attach_iter(prog, &io);
			t->listener_iter = t->links[i];
		} else {
			t->links[i] = bpf_program__attach(prog);
		}
		if (!t->links[i]) {
			err = -errno;
			r->ok = false;
			snprintf(r->note, sizeof(r->note), "attaching %s failed: %s", p->target,
				 strerror(-err));
			if (p->signal == SIG_CONNECT) {
				set_err(errmsg, errsz, "bpf: attaching to %s failed: %s", p->target,
					strerror(-err));
				goto fail;
			}
		}
	}
	t->rb = ring_buffer__new(bpf_map__fd(t->skel->maps.events), on_record, t, NULL);
	if (!t->rb) {
		err = -errno;
		set_err(errmsg, errsz, "ringbuf: cannot set up the consumer: %s", strerror(-err));
		goto fail;
	}
	*out = t;
	return 0;
fail:
	tracer_close(t);
	return err;
}

void tracer_close(struct tracer *t)
{
	if (!t)
		return;
	ring_buffer__free(t->rb);
	for (size_t i = 0; i < NR_PROGS; i++)
		bpf_link__destroy(t->links[i]);
	conntrace_bpf__destroy(t->skel);
	kenum_free(t->drop_names);
	kenum_free(t->rst_names);
	btf__free(t->vmlinux);
	free(t);
}

const struct probe_report *tracer_report(const struct tracer *t, int *nr)
{
	*nr = SIG_MAX;
	return t->report;
}

int tracer_poll(struct tracer *t, int timeout_ms)
{
	int n = ring_buffer__poll(t->rb, timeout_ms);

	if (n < 0)
		return n;
	/* records submitted without a wakeup are only seen by a consume */
	return ring_buffer__consume(t->rb);
}

int tracer_counters(struct tracer *t, uint64_t out[CT_CNT_MAX])
{
	uint64_t vals[t->ncpus];

	for (__u32 k = 0; k < CT_CNT_MAX; k++) {
		out[k] = 0;
		/* the kernel fills every CPU's slot; valgrind only knows of one */
		memset(vals, 0, sizeof(vals));
		if (bpf_map__lookup_elem(t->skel->maps.counters, &k, sizeof(k), vals,
					 sizeof(vals), 0))
			return -errno;
		for (int c = 0; c < t->ncpus; c++)
			out[k] += vals[c];
	}
	return 0;
}

int tracer_dump_pending(struct tracer *t, uint64_t now)
{
	int fd = bpf_map__fd(t->skel->maps.flows);
	__u64 key, next, *prev = NULL;
	struct ct_flow f;

	while (!bpf_map_get_next_key(fd, prev, &next)) {
		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(fd, &key, &f))
			continue;	/* finished meanwhile: it went through the ring */
		f.flags |= CT_F_PENDING;
		f.ts_end = now;
		t->fn(t->ctx, &f, sizeof(f));
	}
	return 0;
}

uint64_t tracer_missed(struct tracer *t)
{
	uint64_t missed = 0;

	for (size_t i = 0; i < NR_PROGS; i++) {
		struct bpf_prog_info info = { 0 };
		__u32 len = sizeof(info);

		/* by program, not link: still counted after tracer_detach() */
		if (!bpf_program__autoload(bpf_object__find_program_by_name(t->skel->obj,
									    progs[i].prog)))
			continue;
		/* the kernel skips a tracing program that fires again on a CPU
		 * where it already runs (an interrupt during it), and only counts it */
		if (!bpf_obj_get_info_by_fd(bpf_program__fd(bpf_object__find_program_by_name(
				t->skel->obj, progs[i].prog)), &info, &len))
			missed += info.recursion_misses;
	}
	return missed;
}

int tracer_listeners(struct tracer *t, tracer_listener_fn fn, void *ctx)
{
	struct ct_listener l;
	size_t got = 0;
	ssize_t n;
	int fd;

	if (!t->listener_iter)
		return -ENOTSUP;
	fd = bpf_iter_create(bpf_link__fd(t->listener_iter));
	if (fd < 0)
		return -errno;
	/* the iterator writes whole records; read() may split them */
	while ((n = read(fd, (char *)&l + got, sizeof(l) - got)) > 0) {
		got += n;
		if (got == sizeof(l)) {
			fn(ctx, &l);
			got = 0;
		}
	}
	n = n < 0 ? -errno : 0;
	close(fd);
	return n;
}

void *tracer_drop_names(const struct tracer *t)
{
	return t->drop_names;
}

void *tracer_rst_names(const struct tracer *t)
{
	return t->rst_names;
}

/*
 * Stop tracing, keep what was traced: the links go (so no program starts
 * again), the maps and the ring stay readable until tracer_close().
 */
int tracer_detach(struct tracer *t)
{
	for (size_t i = 0; i < NR_PROGS; i++) {
		bpf_link__destroy(t->links[i]);
		t->links[i] = NULL;
	}
	t->listener_iter = NULL;
	/*
	 * A program that started before its link went may still be running on
	 * another CPU, about to submit a record. They run under RCU: a grace
	 * period (membarrier's GLOBAL command is synchronize_rcu()) sees them
	 * all finished. Where membarrier is refused (nohz_full), wait a while.
	 */
	if (syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0)) {
		int err = -errno;

		nanosleep(&(struct timespec){ .tv_nsec = 50 * 1000000 }, NULL);
		return err;
	}
	return 0;
}

int tracer_drain(struct tracer *t)
{
	int n, total = 0;

	/* a consume takes what is there; go on until a pass finds nothing */
	while ((n = ring_buffer__consume(t->rb)) > 0)
		total += n;
	return n < 0 ? n : total;
}
