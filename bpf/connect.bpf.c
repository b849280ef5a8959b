// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * conntrace kernel side, connect(): an fentry/fexit pair and a classic
 * syscall-tracepoint pair, of which the loader keeps whichever the kernel
 * allows. They finish a flow closed inside connect() with connect()'s own
 * error, and report a connect() that failed before any state change.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "conntrace.h"
#include "conntrace.bpf.h"

/*
 * With the flows in socket storage, a syscall tracepoint (which may not
 * reach it) leaves the ICMP error it sees on the socket for the attempt's
 * end to take (soft_note_take()).
 */
static __always_inline void soft_note_put(const struct sock *sk, __u64 key)
{
	struct soft_note n = { .err_soft = BPF_CORE_READ(sk, sk_err_soft) };

	if (!n.err_soft)
		return;
	n.ts = bpf_ktime_get_boot_ns();
	if (!bpf_map_update_elem(&soft_notes, &key, &n, BPF_ANY))
		last_soft_note_ns = n.ts;
}

/*
 * connect() returned: finish a flow it closed, or report one that never
 * started. fexit: sk is a BTF pointer (the fexit flavour), else a number
 * read through the task's files (the syscall tracepoints).
 */
static __always_inline void connect_return(const struct sock *sk, struct inflight *in,
					   const void *uaddr, bool fexit, long ret)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	__u64 key, now = bpf_ktime_get_boot_ns();
	struct ct_flow rec = {}, *f;
	__u16 family;

	if (in->deferred) {
		f = bpf_map_lookup_elem(&closed_in_connect, &tid);
		if (!f)
			return;
		if (ret < 0) {
			f->err = -ret;
			f->flags |= CT_F_CONNECT_ERR;
		}
		flow_send(f, f->ts_end);
		bpf_map_delete_elem(&closed_in_connect, &tid);
		return;
	}
	if (!sk || !is_tcp_in(sk, fexit))
		return;
	key = (__u64)sk;
	if (fexit)
		f = flow_get(sk);
	else if (!flows_in_sk)
		f = bpf_map_lookup_elem(&flows, &key);
	else
		f = NULL;	/* out of reach: see soft_note_put() */
	if (f) {
		/* the first SYN is out and the port bound: record the tuple now, so
		 * a flow still connecting when conntrace stops has it too */
		read_tuple_in(f, sk, fexit);
		flow_count_late(f);
		/* on loopback an ICMP error for the first SYN is in before this */
		note_err_soft_in(f, sk, fexit);
		return;
	}
	if (in->sk == key) {
		/* its SYN left: the attempt ended (ICMP) and has its verdict, or
		 * goes on in socket storage this program cannot reach */
		if (!fexit && flows_in_sk)
			soft_note_put(sk, key);
		return;
	}
	if (ret != -ENETUNREACH && ret != -EHOSTUNREACH && ret != -EADDRNOTAVAIL)
		return;
	f = &rec;
	f->type = CT_REC_FLOW;
	f->flags = CT_F_CONNECT_ERR;
	f->state = CT_TCP_CLOSE;
	f->err = -ret;
	f->tid = tid;
	f->pid = bpf_get_current_pid_tgid() >> 32;
	f->netns = sk_netns_in(sk, fexit);
	f->cgroup_id = bpf_get_current_cgroup_id();
	f->ts_start = now;
	f->ts_end = now;
	bpf_get_current_comm(f->comm, sizeof(f->comm));
	read_tuple_in(f, sk, fexit);
	/* The destination is not stored in the socket yet: take it from the call. */
	family = f->family;
	if (family == AF_INET) {
		struct sockaddr_in sin = {};

		if (!fexit)
			bpf_probe_read_user(&sin, sizeof(sin), uaddr);
		else
			bpf_probe_read_kernel(&sin, sizeof(sin), uaddr);
		f->dport = bpf_ntohs(sin.sin_port);
		__builtin_memcpy(f->daddr, &sin.sin_addr, 4);
	} else {
		struct sockaddr_in6 sin6 = {};

		if (!fexit)
			bpf_probe_read_user(&sin6, sizeof(sin6), uaddr);
		else
			bpf_probe_read_kernel(&sin6, sizeof(sin6), uaddr);
		f->dport = bpf_ntohs(sin6.sin6_port);
		__builtin_memcpy(f->daddr, &sin6.sin6_addr, 16);
	}
	if (!owner_wanted(f->pid, f->comm))
		return;
	if (!netns_wanted(f->netns))
		return;
	if (!port_wanted(f->sport, f->dport))
		return;
	/* an attempt flow_start() never saw: a flow all the same */
	count(CT_CNT_CONNECT_FAILED);
	emit_flow(f);
}

/* fentry/fexit flavour: kernels that allow BPF trampolines. */
static __always_inline int fentry_connect(struct sock *sk)
{
	inflight_begin(0, 0);
	return 0;
}

static __always_inline int fexit_connect(struct sock *sk, struct sockaddr *uaddr, int ret)
{
	struct inflight *in = inflight_get();

	if (!in)
		return 0;
	connect_return(sk, in, uaddr, true, ret);
	inflight_end(in);
	return 0;
}

SEC("fentry/tcp_v4_connect")
int BPF_PROG(fentry_v4_connect, struct sock *sk)
{
	return fentry_connect(sk);
}

SEC("fexit/tcp_v4_connect")
int BPF_PROG(fexit_v4_connect, struct sock *sk, struct sockaddr *uaddr, int addr_len, int ret)
{
	return fexit_connect(sk, uaddr, ret);
}

SEC("fentry/tcp_v6_connect")
int BPF_PROG(fentry_v6_connect, struct sock *sk)
{
	return fentry_connect(sk);
}

SEC("fexit/tcp_v6_connect")
int BPF_PROG(fexit_v6_connect, struct sock *sk, struct sockaddr *uaddr, int addr_len, int ret)
{
	return fexit_connect(sk, uaddr, ret);
}

/* Syscall-tracepoint flavour: the layouts of the classic tracepoint records. */
struct sys_enter_connect_ctx {
	__u64 common;
	__s32 nr;
	__s32 pad;
	__u64 fd;
	__u64 uservaddr;
	__u64 addrlen;
};

struct sys_exit_ctx {
	__u64 common;
	__s32 nr;
	__s32 pad;
	__s64 ret;
};

SEC("tracepoint/syscalls/sys_enter_connect")
int sys_enter_connect(struct sys_enter_connect_ctx *ctx)
{
	inflight_begin((__s32)ctx->fd, ctx->uservaddr);
	return 0;
}

/* The socket behind a file descriptor of the current task, or NULL. */
static __always_inline struct sock *fd_to_sock(int fd)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct file **fds, *file;
	struct socket *sock;

	if (fd < 0 || fd >= BPF_CORE_READ(task, files, fdt, max_fds))
		return NULL;
	fds = BPF_CORE_READ(task, files, fdt, fd);
	if (bpf_probe_read_kernel(&file, sizeof(file), fds + fd) || !file)
		return NULL;
	sock = BPF_CORE_READ(file, private_data);
	if (!sock)
		return NULL;
	/* private_data is a struct socket only for socket files */
	if (BPF_CORE_READ(sock, file) != file)
		return NULL;
	return BPF_CORE_READ(sock, sk);
}

SEC("tracepoint/syscalls/sys_exit_connect")
int sys_exit_connect(struct sys_exit_ctx *ctx)
{
	struct inflight *in = inflight_get();
	struct sock *sk = NULL;
	long ret = ctx->ret;

	if (!in)
		return 0;
	if (!in->deferred && (ret == -ENETUNREACH || ret == -EHOSTUNREACH ||
			      ret == -EADDRNOTAVAIL || ret == -EINPROGRESS))
		sk = fd_to_sock(in->fd);
	connect_return(sk, in, (const void *)in->uaddr, false, ret);
	inflight_end(in);
	return 0;
}
