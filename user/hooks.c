// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The hook layer (hooks.h): probing what this kernel allows, tracefs,
 * libbpf's logging, and attaching a table of programs. Written once, used by
 * `conntrace` (tracer.c) and `conntrace listen` (listen_kernel.c).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>
#include <linux/bpf.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include "hooks.h"

#define TRACEFS "/sys/kernel/tracing"
#define DEBUGFS_TRACING "/sys/kernel/debug/tracing"

static bool verbose;

static int print_fn(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG || !verbose)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

void hooks_libbpf_logging(bool v)
{
	static bool installed;

	verbose = v;
	if (!installed)
		libbpf_set_print(print_fn);
	installed = true;
}

bool hooks_verbose(void)
{
	return verbose;
}

static void note(char *buf, size_t sz, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void note(char *buf, size_t sz, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sz, fmt, ap);
	va_end(ap);
}

int hooks_tracefs_mount(void)
{
	static int result = 1;	/* 1: not tried yet */

	if (result <= 0)
		return result;
	if (!access(TRACEFS "/events", F_OK))
		result = 0;
	else if (mount("nodev", TRACEFS, "tracefs", 0, NULL))
		result = -errno;
	else
		result = 0;
	return result;
}

int hooks_tracefs_event(const char *event, char *buf, size_t sz)
{
	char path[256];
	int err;

	snprintf(path, sizeof(path), TRACEFS "/events/%s/id", event);
	if (!access(path, R_OK))
		return 0;
	snprintf(path, sizeof(path), DEBUGFS_TRACING "/events/%s/id", event);
	if (!access(path, R_OK))
		return 0;
	err = hooks_tracefs_mount();
	if (err) {
		note(buf, sz, "tracefs is not mounted and mounting it failed: %s", strerror(-err));
		return err;
	}
	snprintf(path, sizeof(path), TRACEFS "/events/%s/id", event);
	if (access(path, R_OK)) {
		note(buf, sz, "tracepoint %s not in this kernel", event);
		return -ENOENT;
	}
	return 0;
}

bool hooks_tp_btf_exists(const struct btf *btf, const char *tp)
{
	char name[128];

	snprintf(name, sizeof(name), "btf_trace_%s", tp);
	return btf && btf__find_by_name_kind(btf, name, BTF_KIND_TYPEDEF) > 0;
}

int hooks_probe_fentry(const struct btf *btf, const char *func)
{
	struct bpf_insn insns[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0 },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	LIBBPF_OPTS(bpf_prog_load_opts, opts, .expected_attach_type = BPF_TRACE_FENTRY);
	int id, prog, link, err = 0;

	id = btf ? btf__find_by_name_kind(btf, func, BTF_KIND_FUNC) : -ENOENT;
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

/*
 * A map of socket storage needs BTF for its key (an int) and value: the
 * smallest that will do, loaded for the probe. The map's fd, or -errno.
 */
static int probe_storage_map(enum bpf_map_type type)
{
	LIBBPF_OPTS(bpf_map_create_opts, mo, .map_flags = BPF_F_NO_PREALLOC);
	struct btf *btf = btf__new_empty();
	int id, fd;

	if (!btf)
		return -errno;
	id = btf__add_int(btf, "int", 4, BTF_INT_SIGNED);
	fd = id < 0 ? id : btf__load_into_kernel(btf);	/* 0 or -errno */
	if (fd < 0) {
		btf__free(btf);
		return fd;
	}
	mo.btf_fd = btf__fd(btf);
	mo.btf_key_type_id = id;
	mo.btf_value_type_id = id;
	fd = bpf_map_create(type, "ct_probe", 4, 4, 0, &mo);
	if (fd < 0)
		fd = -errno;
	btf__free(btf);	/* the map holds its own reference */
	return fd;
}

/*
 * Loads a tp_btf program on tracepoint tp that calls a local storage's get
 * helper on a map of that type: 0 where tracing programs may use it. Its
 * owner (r2): the tracepoint's first argument (a socket), or with task set,
 * bpf_get_current_task_btf().
 */
static int probe_storage_get(const struct btf *btf, const char *tp, bool task)
{
	enum bpf_map_type type = task ? BPF_MAP_TYPE_TASK_STORAGE : BPF_MAP_TYPE_SK_STORAGE;
	struct bpf_insn insns[10] = { 0 };
	int id, map, prog, err = 0, n = 0;
	char name[128];

	snprintf(name, sizeof(name), "btf_trace_%s", tp);
	id = btf ? btf__find_by_name_kind(btf, name, BTF_KIND_TYPEDEF) : -ENOENT;
	if (id < 0)
		return -ENOENT;
	map = probe_storage_map(type);
	if (map < 0)
		return map;
	if (task) {
		insns[n++] = (struct bpf_insn){ .code = BPF_JMP | BPF_CALL,
						.imm = BPF_FUNC_get_current_task_btf };
		insns[n++] = (struct bpf_insn){ .code = BPF_ALU64 | BPF_MOV | BPF_X,
						.dst_reg = BPF_REG_2, .src_reg = BPF_REG_0 };
	} else {
		insns[n++] = (struct bpf_insn){ .code = BPF_LDX | BPF_MEM | BPF_DW,
						.dst_reg = BPF_REG_2, .src_reg = BPF_REG_1 };
	}
	/* get(map, owner, NULL, 0); return 0 */
	insns[n++] = (struct bpf_insn){ .code = BPF_LD | BPF_IMM | BPF_DW, .dst_reg = BPF_REG_1,
					.src_reg = BPF_PSEUDO_MAP_FD, .imm = map };
	n++;	/* the second half of the 64-bit load */
	insns[n++] = (struct bpf_insn){ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_3 };
	insns[n++] = (struct bpf_insn){ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_4 };
	insns[n++] = (struct bpf_insn){ .code = BPF_JMP | BPF_CALL,
					.imm = task ? BPF_FUNC_task_storage_get :
						      BPF_FUNC_sk_storage_get };
	insns[n++] = (struct bpf_insn){ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0 };
	insns[n++] = (struct bpf_insn){ .code = BPF_JMP | BPF_EXIT };
	{
		LIBBPF_OPTS(bpf_prog_load_opts, opts, .expected_attach_type = BPF_TRACE_RAW_TP,
			    .attach_btf_id = id);

		prog = bpf_prog_load(BPF_PROG_TYPE_TRACING, task ? "ct_probe_tkst" : "ct_probe_skst",
				     "GPL", insns, n, &opts);
	}
	if (prog < 0)
		err = -errno;
	else
		close(prog);
	close(map);
	return err;
}

int hooks_probe_sk_storage(const struct btf *btf, const char *tp)
{
	return probe_storage_get(btf, tp, false);
}

int hooks_probe_task_storage(const struct btf *btf, const char *tp)
{
	return probe_storage_get(btf, tp, true);
}

bool hooks_not_available(int err)
{
	return err == -EPERM || err == -ENOENT || err == -EINVAL ||
	       err == -EOPNOTSUPP || err == -ENOTSUP || err == -524 /* ENOTSUPP */ ||
	       err == -ESRCH || err == -EACCES;
}

void hooks_name(char *buf, size_t sz, enum hook_kind kind, const char *target)
{
	static const char *const prefix[] = {
		[HK_TP_BTF] = "tp_btf", [HK_FENTRY] = "fentry", [HK_FEXIT] = "fexit",
		[HK_SYSCALL_TP] = "tracepoint", [HK_ITER] = "iter",
	};

	snprintf(buf, sz, "%s/%s", prefix[kind], target);
}

/* A refusal is the same for every function: say it once, without the name. */
static void fentry_note(char *buf, size_t sz, const char *func, int err)
{
	if (err == -ENOENT)
		note(buf, sz, "fentry: no function %s in this kernel", func);
	else
		note(buf, sz, "fentry not available (%s)", strerror(-err));
}

/* Per row, during hooks_select(). */
struct row {
	int err;	/* 0: the hook exists here */
	bool absent;	/* HOOK_IF_PRESENT and the function is not in this kernel */
	bool load;
};

/* Availability of one row's hook; fentry answers are reused per function. */
static int row_available(const struct hook_def *d, const struct btf *btf, unsigned opts,
			 const struct hook_def *defs, struct row *rows, size_t i,
			 char *buf, size_t sz)
{
	switch (d->kind) {
	case HK_TP_BTF:
		if (hooks_tp_btf_exists(btf, d->target))
			return 0;
		note(buf, sz, "tracepoint %s not in this kernel", d->target);
		return -ENOENT;
	case HK_SYSCALL_TP:
		return hooks_tracefs_event(d->target, buf, sz);
	case HK_FENTRY:
	case HK_FEXIT:
		if (opts & HOOKS_NO_FENTRY) {
			note(buf, sz, "fentry disabled (--no-fentry)");
			return -ECANCELED;
		}
		for (size_t k = 0; k < i; k++)
			if ((defs[k].kind == HK_FENTRY || defs[k].kind == HK_FEXIT) &&
			    !strcmp(defs[k].target, d->target) && rows[k].err != -ECANCELED) {
				rows[i].absent = rows[k].absent;
				if (rows[k].err)
					fentry_note(buf, sz, d->target, rows[k].err);
				return rows[k].err;
			}
		{
			int err = hooks_probe_fentry(btf, d->target);

			if (err)
				fentry_note(buf, sz, d->target, err);
			rows[i].absent = err == -ENOENT && (d->flags & HOOK_IF_PRESENT);
			return err;
		}
	case HK_ITER:
		return 0;
	}
	return -EINVAL;
}

/* All the HOOK_SET (or HOOK_FALLBACK) rows of signal s are available. */
static bool group_ok(const struct hook_def *defs, const struct row *rows, size_t n, int s,
		     unsigned flag)
{
	bool any = false;

	for (size_t i = 0; i < n; i++) {
		if (defs[i].signal != s || !(defs[i].flags & flag) || rows[i].absent)
			continue;
		if (rows[i].err)
			return false;
		any = true;
	}
	return any;
}

/* Every distinct reason a signal lost a hook, in order, "; " between. */
static void note_once(struct probe_report *r, const char *why)
{
	size_t off = strlen(r->note), room;

	if (strstr(r->note, why))
		return;
	if (off && off + 2 < sizeof(r->note)) {
		memcpy(r->note + off, "; ", 2);
		off += 2;
	}
	room = sizeof(r->note) - 1 - off;
	if (strlen(why) < room)
		room = strlen(why);
	memcpy(r->note + off, why, room);	/* cut to fit: a note is one line */
	r->note[off + room] = '\0';
}

int hooks_select(struct bpf_object *obj, const struct btf *btf,
		 const struct hook_def *defs, size_t n, const char *const *signals,
		 size_t nsignals, unsigned opts, struct probe_report *rep,
		 char *errmsg, size_t errsz)
{
	struct row *rows = calloc(n ? n : 1, sizeof(*rows));
	char why[128], name[96];
	int err = 0;

	if (!rows)
		return -ENOMEM;
	for (size_t s = 0; s < nsignals; s++) {
		memset(&rep[s], 0, sizeof(rep[s]));
		rep[s].signal = signals[s];
		snprintf(rep[s].hook, sizeof(rep[s].hook), "-");
	}
	/* availability; fallbacks only where their set is missing (tracefs) */
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < n; i++) {
			const struct hook_def *d = &defs[i];

			if (!!(d->flags & HOOK_FALLBACK) != pass)
				continue;
			if (pass && group_ok(defs, rows, n, d->signal, HOOK_SET)) {
				rows[i].err = -ECANCELED;
				continue;
			}
			why[0] = '\0';
			rows[i].err = row_available(d, btf, opts, defs, rows, i, why, sizeof(why));
			if (rows[i].err && !rows[i].absent && why[0])
				note_once(&rep[d->signal], why);
		}
	}
	for (size_t i = 0; i < n; i++) {
		const struct hook_def *d = &defs[i];

		if (d->flags & HOOK_SET)
			rows[i].load = !rows[i].absent && group_ok(defs, rows, n, d->signal, HOOK_SET);
		else if (d->flags & HOOK_FALLBACK)
			rows[i].load = group_ok(defs, rows, n, d->signal, HOOK_FALLBACK);
		else
			rows[i].load = !rows[i].err;
	}
	/* an iterator over what the others record needs one of them */
	for (size_t i = 0; i < n; i++) {
		bool other = false;

		if (!(defs[i].flags & HOOK_WITH_SIGNAL) || !rows[i].load)
			continue;
		for (size_t k = 0; k < n; k++)
			other |= k != i && defs[k].signal == defs[i].signal && rows[k].load &&
				 !(defs[k].flags & HOOK_WITH_SIGNAL);
		rows[i].load = other;
	}
	for (size_t i = 0; i < n && !err; i++) {
		struct bpf_program *p = bpf_object__find_program_by_name(obj, defs[i].prog);

		if (!p) {
			note(errmsg, errsz, "bpf: program %s missing from the object", defs[i].prog);
			err = -ENOENT;
		} else if (defs[i].flags & HOOK_SHARED) {
			continue;	/* its first row decides */
		} else if (!rows[i].load && (defs[i].flags & HOOK_REQUIRED)) {
			hooks_name(name, sizeof(name), defs[i].kind, defs[i].target);
			note(errmsg, errsz, "kernel: no %s (%s), which %s needs", name,
			     rep[defs[i].signal].note[0] ? rep[defs[i].signal].note : "refused",
			     signals[defs[i].signal]);
			err = rows[i].err ? rows[i].err : -ENOTSUP;
		} else {
			bpf_program__set_autoload(p, rows[i].load);
		}
	}
	free(rows);
	return err;
}

static struct bpf_link *attach_one(struct bpf_program *p, const struct hook_def *d,
				   int iter_map_fd)
{
	union bpf_iter_link_info info = { .map.map_fd = iter_map_fd };
	LIBBPF_OPTS(bpf_iter_attach_opts, io, .link_info = &info,
		    .link_info_len = sizeof(info));

	if (d->kind != HK_ITER)
		return bpf_program__attach(p);
	return bpf_program__attach_iter(p, strcmp(d->target, "bpf_map_elem") ? NULL : &io);
}

/* Row i's program is attached: by its own link, or a HOOK_SHARED row's by its first row's. */
static bool row_attached(const struct hook_def *defs, size_t n, struct bpf_link **links, size_t i)
{
	if (links[i] || !(defs[i].flags & HOOK_SHARED))
		return links[i] != NULL;
	for (size_t k = 0; k < n; k++)
		if (!(defs[k].flags & HOOK_SHARED) && !strcmp(defs[k].prog, defs[i].prog))
			return links[k] != NULL;
	return false;
}

/* "fentry+fexit/tcp_v4_connect,tp_btf/sk_data_ready" (no spaces): what carries signal s. */
static void report_hooks(const struct hook_def *defs, size_t n, struct bpf_link **links,
			 int s, struct probe_report *r)
{
	static const char *const kind[] = {
		[HK_TP_BTF] = "tp_btf", [HK_FENTRY] = "fentry", [HK_FEXIT] = "fexit",
		[HK_SYSCALL_TP] = "tracepoint", [HK_ITER] = "iter",
	};
	size_t off = 0, sz = sizeof(r->hook);
	const char *last = NULL;

	r->hook[0] = '\0';
	for (size_t i = 0; i < n && off < sz; i++) {
		if (defs[i].signal != s || !row_attached(defs, n, links, i))
			continue;
		if (last && !strcmp(last, defs[i].target) && off > 0) {
			/* the same target: "fentry" becomes "fentry+fexit" before "/" */
			char *slash = strrchr(r->hook, '/');
			char tail[96];

			snprintf(tail, sizeof(tail), "%s", slash);
			off = slash - r->hook;
			off += snprintf(r->hook + off, sz - off, "+%s%s", kind[defs[i].kind], tail);
		} else {
			off += snprintf(r->hook + off, sz - off, "%s%s/%s", last ? "," : "",
					kind[defs[i].kind], defs[i].target);
		}
		last = defs[i].target;
	}
	r->ok = last != NULL;
	if (!r->ok)
		snprintf(r->hook, sz, "-");
}

/* A set is all or none: a row that did not attach takes the others off. */
static void enforce_sets(const struct hook_def *defs, size_t n, struct bpf_link **links,
			 const bool *wanted, struct probe_report *rep)
{
	for (size_t i = 0; i < n; i++) {
		int s = defs[i].signal;
		bool broken = false;

		if (!(defs[i].flags & HOOK_SET) || !links[i])
			continue;
		for (size_t k = 0; k < n; k++)
			broken |= defs[k].signal == s && (defs[k].flags & HOOK_SET) &&
				  wanted[k] && !links[k];
		if (!broken)
			continue;
		for (size_t k = 0; k < n; k++) {
			if (defs[k].signal == s && (defs[k].flags & HOOK_SET) && links[k]) {
				bpf_link__destroy(links[k]);
				links[k] = NULL;
			}
		}
		note_once(&rep[s], "detached: the rest of its set did not attach");
	}
}

int hooks_attach(struct bpf_object *obj, const struct hook_def *defs, size_t n,
		 struct bpf_link **links, int iter_map_fd, struct probe_report *rep,
		 size_t nsignals, char *errmsg, size_t errsz)
{
	bool *wanted = calloc(n ? n : 1, sizeof(*wanted));
	char name[96], why[192];
	int err = 0;

	if (!wanted)
		return -ENOMEM;
	for (size_t i = 0; i < n && !err; i++) {
		struct bpf_program *p = bpf_object__find_program_by_name(obj, defs[i].prog);

		links[i] = NULL;
		if (!p || !bpf_program__autoload(p) || (defs[i].flags & HOOK_SHARED))
			continue;
		wanted[i] = true;
		links[i] = attach_one(p, &defs[i], iter_map_fd);
		if (links[i])
			continue;
		err = -errno;
		hooks_name(name, sizeof(name), defs[i].kind, defs[i].target);
		snprintf(why, sizeof(why), "attaching %s failed: %s", name, strerror(-err));
		note_once(&rep[defs[i].signal], why);
		if (defs[i].flags & HOOK_REQUIRED)
			note(errmsg, errsz, "bpf: attaching to %s failed: %s", name, strerror(-err));
		else
			err = 0;
	}
	if (!err)
		enforce_sets(defs, n, links, wanted, rep);
	for (size_t s = 0; s < nsignals; s++)
		report_hooks(defs, n, links, s, &rep[s]);
	free(wanted);
	return err;
}

void hooks_detach(struct bpf_link **links, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		bpf_link__destroy(links[i]);
		links[i] = NULL;
	}
}

bool hooks_set_attached(const struct hook_def *defs, size_t n, struct bpf_link **links,
			int signal)
{
	for (size_t i = 0; i < n; i++)
		if (defs[i].signal == signal && (defs[i].flags & HOOK_SET) && links[i])
			return true;
	return false;
}

void hooks_print_report(FILE *f, const char *prefix, const struct probe_report *rep,
			size_t nr)
{
	int ws = (int)strlen("SIGNAL"), wh = (int)strlen("HOOK");

	/* columns fitted to the rows, so they line up whatever the hooks are */
	for (size_t i = 0; i < nr; i++) {
		const char *h = rep[i].ok ? rep[i].hook : "(none)";

		if ((int)strlen(rep[i].signal) > ws)
			ws = (int)strlen(rep[i].signal);
		if ((int)strlen(h) > wh)
			wh = (int)strlen(h);
	}
	fprintf(f, "%s%-*s  %-*s  %s\n", prefix, ws, "SIGNAL", wh, "HOOK", "NOTE");
	for (size_t i = 0; i < nr; i++)
		fprintf(f, "%s%-*s  %-*s  %s\n", prefix, ws, rep[i].signal, wh,
			rep[i].ok ? rep[i].hook : "(none)", rep[i].note);
}

/*
 * Whether skb:consume_skb has its location argument (since 6.3): what tells
 * the SYN a listener took or dropped, where no trampoline reaches
 * tcp_conn_request. The tracepoint's BTF typedef points to its prototype.
 */
bool hooks_consume_has_location(const struct btf *btf)
{
	int id = btf ? btf__find_by_name_kind(btf, "btf_trace_consume_skb", BTF_KIND_TYPEDEF) : -1;
	const struct btf_type *ty = id < 0 ? NULL : btf__type_by_id(btf, id);

	if (!ty)
		return false;
	ty = btf__type_by_id(btf, ty->type);	/* pointer */
	if (!ty || !btf_is_ptr(ty))
		return false;
	ty = btf__type_by_id(btf, ty->type);	/* the prototype: (void *, skb, location) */
	return ty && btf_is_func_proto(ty) && btf_vlen(ty) >= 3;
}
