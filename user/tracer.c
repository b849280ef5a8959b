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
#include <sched.h>
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
#include "hooks.h"
#include "kenum.h"
#include "ksym.h"
#include "listen_int.h"	/* netns_enumerate() */
#include "tracer.h"

enum {
	SIG_CONNECT, SIG_CONNECT_ERROR, SIG_SYN_RETRANSMIT, SIG_RST_RECEIVED,
	SIG_RST_SENT, SIG_SOCKET_ERROR, SIG_DROP, SIG_LISTEN_QUEUE, SIG_ICMP_SENT, SIG_ESTABLISHED,
	SIG_INBOUND_SYN, SIG_INBOUND_DROP, SIG_INBOUND_RST, SIG_SYNACK_RETRANSMIT,
	SIG_INBOUND_ESTABLISHED, SIG_FLOW_STATE, SIG_MAX,
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
	[SIG_ICMP_SENT] = "icmp_sent",
	[SIG_ESTABLISHED] = "established",
	[SIG_INBOUND_SYN] = "inbound_syn",
	[SIG_INBOUND_DROP] = "inbound_drop",
	[SIG_INBOUND_RST] = "inbound_rst",
	[SIG_SYNACK_RETRANSMIT] = "synack_retrans",
	[SIG_INBOUND_ESTABLISHED] = "inbound_estab",
	/* no hook: where the attempts' state lives (choose_flow_table()) */
	[SIG_FLOW_STATE] = "flow_state",
};

/*
 * Which program carries which signal on what hook. Flags (hooks.h): a
 * HOOK_SET is all or none, a HOOK_FALLBACK loads only without its set.
 */
static const struct hook_def progs[] = {
	{ "handle_set_state", HK_TP_BTF, "inet_sock_set_state", SIG_CONNECT, HOOK_REQUIRED },
	{ "handle_retransmit", HK_TP_BTF, "tcp_retransmit_skb", SIG_SYN_RETRANSMIT, HOOK_OPTIONAL },
	{ "handle_receive_reset", HK_TP_BTF, "tcp_receive_reset", SIG_RST_RECEIVED, HOOK_OPTIONAL },
	{ "handle_send_reset", HK_TP_BTF, "tcp_send_reset", SIG_RST_SENT, HOOK_OPTIONAL },
	{ "handle_error_report", HK_TP_BTF, "inet_sk_error_report", SIG_SOCKET_ERROR, HOOK_OPTIONAL },
	{ "handle_kfree_skb", HK_TP_BTF, "kfree_skb", SIG_DROP, HOOK_OPTIONAL },
	{ "handle_data_ready", HK_TP_BTF, "sk_data_ready", SIG_LISTEN_QUEUE, HOOK_OPTIONAL },
	{ "handle_icmp_send", HK_TP_BTF, "icmp_send", SIG_ICMP_SENT, HOOK_OPTIONAL },
	/* how established connections die (established.bpf.c; its state changes in
	 * one program with the incoming attempts', in inbound.bpf.c) */
	{ "handle_sock_state", HK_TP_BTF, "inet_sock_set_state", SIG_ESTABLISHED, HOOK_OPTIONAL },
	{ "handle_estab_retransmit", HK_TP_BTF, "tcp_retransmit_skb", SIG_ESTABLISHED,
	  HOOK_OPTIONAL },
	{ "handle_estab_receive_reset", HK_TP_BTF, "tcp_receive_reset", SIG_ESTABLISHED,
	  HOOK_OPTIONAL },
	/* established connections reset: one program on tcp_send_reset (evidence.bpf.c) */
	{ "handle_send_reset", HK_TP_BTF, "tcp_send_reset", SIG_ESTABLISHED, HOOK_SHARED },
	{ "fentry_conn_request", HK_FENTRY, "tcp_conn_request", SIG_LISTEN_QUEUE, HOOK_OPTIONAL },
	/* read on demand, over the map of listeners found full */
	{ "dump_listeners", HK_ITER, "bpf_map_elem", SIG_LISTEN_QUEUE, HOOK_WITH_SIGNAL },
	/* connect() failing before any state change: one of the next two sets */
	{ "fentry_v4_connect", HK_FENTRY, "tcp_v4_connect", SIG_CONNECT_ERROR, HOOK_SET },
	{ "fexit_v4_connect", HK_FEXIT, "tcp_v4_connect", SIG_CONNECT_ERROR, HOOK_SET },
	{ "fentry_v6_connect", HK_FENTRY, "tcp_v6_connect", SIG_CONNECT_ERROR, HOOK_SET },
	{ "fexit_v6_connect", HK_FEXIT, "tcp_v6_connect", SIG_CONNECT_ERROR, HOOK_SET },
	{ "sys_enter_connect", HK_SYSCALL_TP, "syscalls/sys_enter_connect", SIG_CONNECT_ERROR,
	  HOOK_FALLBACK },
	{ "sys_exit_connect", HK_SYSCALL_TP, "syscalls/sys_exit_connect", SIG_CONNECT_ERROR,
	  HOOK_FALLBACK },
	/* incoming attempts (inbound.bpf.c); a SYN at its listener: one of the next two */
	{ "in_conn_request", HK_FEXIT, "tcp_conn_request", SIG_INBOUND_SYN, HOOK_SET },
	{ "in_consume_skb", HK_TP_BTF, "consume_skb", SIG_INBOUND_SYN, HOOK_FALLBACK },
	/* one program per tracepoint carries these too (evidence.bpf.c, inbound.bpf.c) */
	{ "handle_kfree_skb", HK_TP_BTF, "kfree_skb", SIG_INBOUND_DROP, HOOK_SHARED },
	{ "handle_send_reset", HK_TP_BTF, "tcp_send_reset", SIG_INBOUND_RST, HOOK_SHARED },
	{ "in_retransmit_synack", HK_TP_BTF, "tcp_retransmit_synack", SIG_SYNACK_RETRANSMIT,
	  HOOK_OPTIONAL },
	{ "handle_sock_state", HK_TP_BTF, "inet_sock_set_state", SIG_INBOUND_ESTABLISHED,
	  HOOK_SHARED },
};
#define NR_PROGS (sizeof(progs) / sizeof(progs[0]))

struct tracer {
	struct conntrace_bpf *skel;
	struct btf *vmlinux;
	struct kenum *drop_names, *rst_names;
	struct ksym_lookup syn_loc;	/* tcp_rcv_state_process, read meanwhile */
	bool want_syn_loc;		/* ... and needed: the consume_skb fallback */
	struct ring_buffer *rb;
	struct bpf_link *links[NR_PROGS];
	struct probe_report report[SIG_MAX];
	/* signals whose shared programs run, but whose part the knobs switch off */
	const char *sig_off[SIG_MAX];
	struct bpf_link *listener_iter;	/* NULL without sk_data_ready */
	tracer_record_fn fn;
	void *ctx;
	int ncpus;
	bool flows_in_sk;	/* the flows live in socket storage (flow_store) */
	char flow_note[256];	/* the flow_state line of the report */
};

static void set_err(char *buf, size_t sz, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_err(char *buf, size_t sz, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sz, fmt, ap);
	va_end(ap);
}

/* A program the table chose, switched off for a reason the report gives. */
static void prog_off(struct tracer *t, const char *name, int sig, const char *why)
{
	struct bpf_program *p = bpf_object__find_program_by_name(t->skel->obj, name);
	struct probe_report *rep = &t->report[sig];

	if (!p || !bpf_program__autoload(p))
		return;
	bpf_program__set_autoload(p, false);
	snprintf(rep->note, sizeof(rep->note), "%s", why);
}

/*
 * Incoming attempts: none with --direction out (programs of their own are not
 * loaded; the packet tracepoints' shared ones skip the inbound part by
 * targ_dir, and the report says so); the consume_skb fallback needs
 * tcp_rcv_state_process's address range, and its location argument.
 */
static void choose_inbound(struct tracer *t, const struct tracer_config *cfg)
{
	static const struct { const char *prog; int sig; } in[] = {
		{ "in_conn_request", SIG_INBOUND_SYN }, { "in_consume_skb", SIG_INBOUND_SYN },
		{ "in_retransmit_synack", SIG_SYNACK_RETRANSMIT },
	};
	if (!(cfg->direction & CT_DIR_IN)) {
		bpf_program__set_autoload(t->skel->progs.in_seed_listeners, false);
		for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++)
			prog_off(t, in[i].prog, in[i].sig, "--direction out");
		t->sig_off[SIG_INBOUND_DROP] = t->sig_off[SIG_INBOUND_RST] = "--direction out";
		t->sig_off[SIG_INBOUND_ESTABLISHED] = "--direction out";
		return;
	}
	if (!bpf_program__autoload(t->skel->progs.in_consume_skb))
		return;
	if (!hooks_consume_has_location(t->vmlinux)) {
		prog_off(t, "in_consume_skb", SIG_INBOUND_SYN,
			 "consume_skb has no location argument (before 6.3) and no fexit: "
			 "SYNs to a listener are not seen");
		return;
	}
	t->want_syn_loc = true;	/* set_syn_loc(), once the BTF is no longer needed */
}

/* Runs the in_seed_listeners iterator over the current network namespace. */
static int seed_here(int link_fd, int back_fd, int ns_fd)
{
	char buf[256];
	int fd, err = 0;
	ssize_t n;

	/* iter/tcp walks the namespace of the task that creates the iterator */
	if (setns(ns_fd, CLONE_NEWNET))
		return -errno;	/* gone meanwhile, or not enterable */
	fd = bpf_iter_create(link_fd);
	if (fd < 0)
		err = -errno;
	if (setns(back_fd, CLONE_NEWNET)) {
		if (fd >= 0)
			close(fd);
		return -ENOTRECOVERABLE;
	}
	/* the program writes nothing: reading runs it over every socket */
	while (fd >= 0 && (n = read(fd, buf, sizeof(buf))) > 0)
		;
	if (fd >= 0) {
		if (n < 0)
			err = -errno;
		close(fd);
	}
	return err;
}

/*
 * The listeners open before start into the kernel's table of listeners
 * (in_seed_listeners), once the programs are attached: a listener opened
 * between the two is taken at listen() and kept. In every namespace (or the
 * --netns one), entered in turn. A failure is said in the inbound_syn probe's
 * note: the SYNs such listeners drop on a full queue go unseen. Failing to
 * come back to conntrace's own namespace is fatal.
 */
static int seed_listeners(struct tracer *t, uint32_t only_netns)
{
	struct probe_report *rep = &t->report[SIG_INBOUND_SYN];
	struct netns_set set = { 0 };
	struct bpf_link *link;
	int back, err = 0, first = 0;
	size_t failed = 0;

	if (!bpf_program__autoload(t->skel->progs.in_seed_listeners) || !rep->ok)
		return 0;
	back = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	link = bpf_program__attach_iter(t->skel->progs.in_seed_listeners, NULL);
	if (back < 0 || !link) {
		first = -errno;
		failed = 1;
	} else {
		netns_enumerate(&set);
		for (size_t i = 0; i < set.n; i++) {
			if (only_netns && set.v[i].ino != only_netns)
				continue;
			err = seed_here(bpf_link__fd(link), back, set.v[i].fd);
			if (err == -ENOTRECOVERABLE)
				break;
			if (err && !failed++)
				first = err;
			err = 0;
		}
		netns_close_all(&set);
		free(set.v);
	}
	bpf_link__destroy(link);
	if (back >= 0)
		close(back);
	if (failed)
		snprintf(rep->note, sizeof(rep->note), "listeners open before start not known in "
			 "%zu namespace%s (iter/tcp: %s): SYNs they drop are not seen", failed,
			 failed == 1 ? "" : "s", strerror(-first));
	return err;
}

/* The consume_skb fallback's filter: tcp_rcv_state_process's range, or off. */
static void set_syn_loc(struct tracer *t)
{
	uint64_t lo, hi;
	char why[160];
	int err;

	err = ksym_lookup_wait(&t->syn_loc, &lo, &hi);
	if (err) {
		snprintf(why, sizeof(why), "tcp_rcv_state_process not found in /proc/kallsyms "
			 "(%s): SYNs to a listener are not seen", strerror(-err));
		prog_off(t, "in_consume_skb", SIG_INBOUND_SYN, why);
		return;
	}
	t->skel->rodata->syn_loc_lo = lo;
	t->skel->rodata->syn_loc_hi = hi;
}

/* Decide which programs load (hooks.c, from the table); the caveats. */
static int choose_hooks(struct tracer *t, const struct tracer_config *cfg,
			char *errmsg, size_t errsz)
{
	struct probe_report *rep = t->report;
	int err;

	err = hooks_select(t->skel->obj, t->vmlinux, progs, NR_PROGS, signals, SIG_MAX, 0,
			   rep, errmsg, errsz);
	if (err)
		return err;
	choose_inbound(t, cfg);
	if (btf__find_by_name_kind(t->vmlinux, "sk_rst_reason", BTF_KIND_ENUM) < 0)
		snprintf(rep[SIG_RST_SENT].note, sizeof(rep[SIG_RST_SENT].note),
			 "no reason argument before 6.10: NO_SOCKET is inferred from drops");
	return 0;
}

/*
 * The connect() calls in progress, where tracing programs may not use task
 * storage: an LRU hash keyed by thread id (the programs branch on
 * inflight_in_task), as many entries as threads may be inside connect().
 */
#define INFLIGHT_MAX	16384

static int inflight_as_lru(struct bpf_map *map)
{
	int err = bpf_map__set_type(map, BPF_MAP_TYPE_LRU_HASH);

	if (!err)
		err = bpf_map__set_map_flags(map, 0);
	if (!err)
		err = bpf_map__set_max_entries(map, INFLIGHT_MAX);
	return err;
}

/*
 * Where the attempts' state lives: in each socket (socket-local storage, no
 * eviction, freed with the socket) where this kernel lets tracing programs
 * use it, else the LRU table keyed by socket address. The programs branch on
 * flows_in_sk; the table not in use is left at one entry, and the iterator
 * over it is not loaded.
 */
static int choose_flow_table(struct tracer *t, const struct tracer_config *cfg,
			     char *errmsg, size_t errsz)
{
	struct conntrace_bpf *skel = t->skel;
	int err = -ECANCELED;

	if (!cfg->no_sk_storage)
		err = hooks_probe_sk_storage(t->vmlinux, "inet_sock_set_state");
	t->flows_in_sk = !err;
	skel->rodata->flows_in_sk = t->flows_in_sk;
	if (t->flows_in_sk) {
		/* a connect() in progress: in its thread's storage where allowed too */
		bool in_task = !hooks_probe_task_storage(t->vmlinux, "inet_sock_set_state");

		snprintf(t->flow_note, sizeof(t->flow_note), "per-socket storage: an attempt "
			 "lives in its socket, never evicted, gone with it%s",
			 in_task ? "" : "; connect() calls: an LRU table by thread");
		skel->rodata->inflight_in_task = in_task;
		bpf_program__set_autoload(skel->progs.dump_pending, false);
		err = bpf_map__set_max_entries(skel->maps.flows, 1);
		if (!err && !in_task)
			err = inflight_as_lru(skel->maps.inflight);
	} else {
		snprintf(t->flow_note, sizeof(t->flow_note), "%s%s: an LRU table of %u attempts "
			 "keyed by socket address (beyond, the oldest are evicted)",
			 cfg->no_sk_storage ? "--no-sk-storage" :
			 "socket storage refused to tracing programs: ",
			 cfg->no_sk_storage ? "" : strerror(-err), cfg->max_flows);
		bpf_program__set_autoload(skel->progs.dump_pending_sk, false);
		err = inflight_as_lru(skel->maps.inflight);
	}
	if (err)
		set_err(errmsg, errsz, "bpf: cannot size the flow table: %s", strerror(-err));
	return err;
}

/*
 * The report after the attach: where the flows live, caveats of what
 * attached, signals a shared program carries but skips.
 */
static void report_caveats(struct tracer *t)
{
	struct probe_report *rep = t->report, *fs = &rep[SIG_FLOW_STATE];

	for (int s = 0; s < SIG_MAX; s++) {
		if (!t->sig_off[s])
			continue;
		rep[s].ok = false;
		snprintf(rep[s].hook, sizeof(rep[s].hook), "-");
		snprintf(rep[s].note, sizeof(rep[s].note), "%s", t->sig_off[s]);
	}
	fs->ok = true;
	snprintf(fs->hook, sizeof(fs->hook), "%s", t->flows_in_sk ? "sk_storage" : "lru_hash");
	snprintf(fs->note, sizeof(fs->note), "%s", t->flow_note);
	if (rep[SIG_ICMP_SENT].ok)
		snprintf(rep[SIG_ICMP_SENT].note, sizeof(rep[SIG_ICMP_SENT].note),
			 "IPv4 only: icmpv6_send has no tracepoint");
}

/* The collector's settings: rodata knobs and map sizes, before load. */
static int set_knobs(struct conntrace_bpf *skel, const struct tracer_config *cfg,
		     char *errmsg, size_t errsz)
{
	int err;

	memcpy((void *)skel->rodata->targ_tgids, cfg->tgids, sizeof(cfg->tgids));
	skel->rodata->targ_ntgids = cfg->ntgids;
	memcpy((void *)skel->rodata->targ_ports, cfg->ports, sizeof(cfg->ports));
	skel->rodata->targ_nports = cfg->nports;
	memcpy((void *)skel->rodata->targ_comm, cfg->comm, sizeof(cfg->comm));
	skel->rodata->targ_cgroup_id = cfg->cgroup_id;
	skel->rodata->targ_cgroup_level = cfg->cgroup_level;
	skel->rodata->targ_netns = cfg->netns;
	skel->rodata->emit_ok = cfg->emit_ok;
	skel->rodata->slow_ns = cfg->slow_ns;
	/* wake the collector early only when a quarter of the ring is used */
	skel->rodata->wakeup_bytes = cfg->ring_size / 4;
	skel->rodata->max_flows = cfg->max_flows;
	skel->rodata->targ_dir = cfg->direction;
	err = bpf_map__set_max_entries(skel->maps.events, cfg->ring_size);
	if (!err)
		err = bpf_map__set_max_entries(skel->maps.flows, cfg->max_flows);
	if (err)
		set_err(errmsg, errsz, "bpf: cannot size the maps: %s", strerror(-err));
	return err;
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

	hooks_libbpf_logging(cfg->verbose);
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
	/* only with the consume_skb fallback, known later; started now, it is
	 * read while the BTF is parsed and the hooks are probed */
	if (cfg->direction & CT_DIR_IN)
		ksym_lookup_start(&t->syn_loc, "tcp_rcv_state_process");
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
	err = set_knobs(t->skel, cfg, errmsg, errsz);
	if (err)
		goto fail;
	err = choose_hooks(t, cfg, errmsg, errsz);
	if (!err)
		err = choose_flow_table(t, cfg, errmsg, errsz);
	if (err)
		goto fail;
	/* libbpf loads the BTF again for its relocations: drop ours first */
	btf__free(t->vmlinux);
	t->vmlinux = NULL;
	if (t->want_syn_loc) {
		/*
		 * An attach target set before load makes libbpf parse the BTF
		 * now (7 ms here), while /proc/kallsyms may still be read,
		 * not inside the load after it. On failure the load does it.
		 */
		bpf_program__set_attach_target(t->skel->progs.handle_set_state, 0,
					       "inet_sock_set_state");
		set_syn_loc(t);
	}
	ksym_lookup_cancel(&t->syn_loc);	/* unless it was used: fexit, or --direction */
	err = conntrace_bpf__load(t->skel);
	if (err) {
		set_err(errmsg, errsz, "bpf: loading the programs failed: %s%s", strerror(-err),
			hooks_verbose() ? "" : " (run with -v for the verifier's log)");
		goto fail;
	}
	err = hooks_attach(t->skel->obj, progs, NR_PROGS, t->links,
			   bpf_map__fd(t->skel->maps.listeners), t->report, SIG_MAX, errmsg, errsz);
	if (err)
		goto fail;
	report_caveats(t);	/* of what did attach */
	err = seed_listeners(t, cfg->netns);
	if (err) {
		set_err(errmsg, errsz, "netns: cannot return to conntrace's network namespace "
			"after reading the listeners of another");
		goto fail;
	}
	for (size_t i = 0; i < NR_PROGS; i++)
		if (progs[i].kind == HK_ITER && !strcmp(progs[i].prog, "dump_listeners"))
			t->listener_iter = t->links[i];
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
	ksym_lookup_cancel(&t->syn_loc);
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

/* Slots 0..n of a per-CPU array of __u64, each summed over the CPUs. */
static int sum_percpu(struct tracer *t, const struct bpf_map *map, __u32 n, uint64_t *out)
{
	uint64_t vals[t->ncpus];

	for (__u32 k = 0; k < n; k++) {
		out[k] = 0;
		/* the kernel fills every CPU's slot; valgrind only knows of one */
		memset(vals, 0, sizeof(vals));
		if (bpf_map__lookup_elem(map, &k, sizeof(k), vals, sizeof(vals), 0))
			return -errno;
		for (int c = 0; c < t->ncpus; c++)
			out[k] += vals[c];
	}
	return 0;
}

int tracer_counters(struct tracer *t, uint64_t out[CT_CNT_MAX])
{
	return sum_percpu(t, t->skel->maps.counters, CT_CNT_MAX, out);
}

int tracer_ok_hist(struct tracer *t, uint64_t out[CT_OKH_MAX])
{
	return sum_percpu(t, t->skel->maps.ok_hist, CT_OKH_MAX, out);
}

/* The flows still in the table, their tuples read again from their sockets. */
static int pending_from_iter(struct tracer *t, uint64_t now)
{
	const struct bpf_map *map = t->flows_in_sk ? t->skel->maps.flow_store :
						     t->skel->maps.flows;
	union bpf_iter_link_info info = { .map.map_fd = bpf_map__fd(map) };
	DECLARE_LIBBPF_OPTS(bpf_iter_attach_opts, opts, .link_info = &info,
			    .link_info_len = sizeof(info));
	struct bpf_link *link;
	struct ct_flow f;
	size_t got = 0, fed = 0;
	ssize_t n;
	int fd;

	link = bpf_program__attach_iter(t->flows_in_sk ? t->skel->progs.dump_pending_sk :
					t->skel->progs.dump_pending, &opts);
	if (!link)
		return -errno;
	fd = bpf_iter_create(bpf_link__fd(link));
	if (fd < 0) {
		n = -errno;
		bpf_link__destroy(link);
		return n;
	}
	/* the iterator writes whole records; read() may split them */
	while ((n = read(fd, (char *)&f + got, sizeof(f) - got)) > 0) {
		got += n;
		if (got < sizeof(f))
			continue;
		got = 0;
		f.flags |= CT_F_PENDING;
		f.ts_end = now;
		t->fn(t->ctx, &f, sizeof(f));
		fed++;
	}
	/* a failure before the first record: the caller walks the table instead */
	n = n < 0 && !fed ? -errno : 0;
	close(fd);
	bpf_link__destroy(link);
	return n;
}

/* A hash table of flows as the kernel last wrote it (keys of at most 8 bytes). */
static void pending_from_table(struct tracer *t, const struct bpf_map *map, uint64_t now)
{
	int fd = bpf_map__fd(map);
	__u64 key = 0, next = 0;
	void *prev = NULL;
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
}

int tracer_dump_pending(struct tracer *t, uint64_t now)
{
	int err = pending_from_iter(t, now);

	/* no iterator: the LRU table can be walked (socket storage cannot) */
	if (err && !t->flows_in_sk) {
		pending_from_table(t, t->skel->maps.flows, now);
		err = 0;
	}
	/* closed inside a connect() that had not returned yet */
	pending_from_table(t, t->skel->maps.closed_in_connect, now);
	return err;
}

uint64_t tracer_missed(struct tracer *t)
{
	uint64_t missed = 0;

	for (size_t i = 0; i < NR_PROGS; i++) {
		struct bpf_program *p = bpf_object__find_program_by_name(t->skel->obj,
									 progs[i].prog);
		struct bpf_prog_info info = { 0 };
		__u32 len = sizeof(info);

		/* by program, not link: still counted after tracer_detach();
		 * a shared row's program is counted at its first row */
		if ((progs[i].flags & HOOK_SHARED) || !p || !bpf_program__autoload(p))
			continue;
		/* the kernel skips a tracing program that fires again on a CPU
		 * where it already runs (an interrupt during it), and only counts it */
		if (!bpf_obj_get_info_by_fd(bpf_program__fd(p), &info, &len))
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
