// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * conntrace listen: the collector. Loads bpf/listen.bpf.c (probing which
 * hooks this kernel allows), walks the TCP listeners of every network
 * namespace with iter/tcp at each refresh, reads each namespace's somaxconn
 * and TcpExt counters, and hands the merged view to listen_logic.c.
 */
#include <argp.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "json.h"
#include "listen.h"
#include "listen_rec.h"
#include "listen.skel.h"

#define elog(fmt, ...) fprintf(stderr, "conntrace listen: " fmt "\n", ##__VA_ARGS__)
#define vlog(fmt, ...) do { if (env.verbose) elog(fmt, ##__VA_ARGS__); } while (0)

#define TRACEFS "/sys/kernel/tracing"

static struct env {
	double interval;
	long count;          /* refreshes to print; 0: until interrupted */
	int port;            /* -1: any */
	int pid;             /* -1: any */
	bool once;
	bool json;
	bool verbose;
	bool no_fentry;
} env = { .interval = 1.0, .port = -1, .pid = -1 };

static volatile sig_atomic_t exiting;

static void on_signal(int sig)
{
	(void)sig;
	exiting = 1;
}

/* ---- options ---------------------------------------------------------- */

enum { OPT_ONCE = 1000, OPT_NO_FENTRY };

static const struct argp_option options[] = {
	{ NULL, 0, NULL, 0, "Which listeners:", 1 },
	{ "port", 'p', "PORT", 0, "Only listeners on local port PORT", 1 },
	{ "pid", 'P', "PID", 0, "Only listeners owned by process PID", 1 },
	{ NULL, 0, NULL, 0, "When:", 2 },
	{ "interval", 'i', "SECONDS", 0, "Refresh every SECONDS (default 1, decimals allowed)", 2 },
	{ "once", OPT_ONCE, NULL, 0, "Print one snapshot (after one interval) and exit", 2 },
	{ "count", 'c', "N", 0, "Exit after N refreshes", 2 },
	{ NULL, 0, NULL, 0, "Output:", 3 },
	{ "json", 'j', NULL, 0, "JSON Lines: one {\"type\":\"listener\"} object per listener per refresh", 3 },
	{ NULL, 0, NULL, 0, "Diagnostics:", 4 },
	{ "no-fentry", OPT_NO_FENTRY, NULL, 0,
	  "Do not try fentry/fexit; count overflows from sk_drops and the netns counters", 4 },
	{ "verbose", 'v', NULL, 0, "Report the hooks chosen, and libbpf's messages", 4 },
	{ NULL, 0, NULL, 0, "Help:", -1 },
	{ 0 },
};

static const char doc[] =
	"Accept-queue (listen backlog) overflows, live, per listening TCP socket in "
	"every network namespace: queue depth now, peak and max, the backlog the "
	"application asked for against net.core.somaxconn, SYN queue, overflows, "
	"SYN-ACK retransmits, resets sent, a history of queue fill, and advice.\v"
	"Columns: ACCQ children waiting for accept(); PEAK highest since the last "
	"refresh; MAX the kernel's limit, min(backlog, somaxconn) (the queue is full "
	"past MAX); BACKLOG what listen() was given (\">=N\": listen() ran before "
	"conntrace, and somaxconn may have cut it); OVF overflows since listen() "
	"(\"~\": shared out from the namespace's ListenOverflows, not exact); SYNRTX "
	"and RST count since conntrace first saw the listener; FILL the peak at each "
	"refresh as a share of the queue.\n\n"
	"Overflows are counted exactly with fentry/fexit where the kernel allows it; "
	"otherwise from each listener's sk_drops (which tcp_listendrop() increments), "
	"exact whenever the namespace's ListenOverflows and ListenDrops moved together.\n\n"
	"Examples:\n"
	"  conntrace listen                   live table, most trouble first\n"
	"  conntrace listen --port 8080 -i 5  one service, refreshed every 5 s\n"
	"  conntrace listen --once -j | jq 'select(.type == \"listener\")'\n"
	"  conntrace listen --pid $(pidof nginx) --count 10 > listen.log";

static void bad_value(const char *opt, const char *arg, const char *want)
{
	fprintf(stderr, "conntrace listen: invalid %s '%s': %s\n", opt, arg, want);
	exit(2);
}

static long parse_long(const char *opt, const char *arg, long lo, long hi, const char *want)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(arg, &end, 10);
	if (errno || end == arg || *end || v < lo || v > hi)
		bad_value(opt, arg, want);
	return v;
}

static error_t parse_opt(int key, char *arg, struct argp_state *state)
{
	char *end;

	switch (key) {
	case 'p':
		env.port = parse_long("--port", arg, 1, 65535, "expected a port 1-65535");
		break;
	case 'P':
		env.pid = parse_long("--pid", arg, 1, INT_MAX, "expected a process id");
		break;
	case 'i':
		errno = 0;
		env.interval = strtod(arg, &end);
		if (errno || end == arg || *end || !(env.interval >= 0.1 && env.interval <= 3600))
			bad_value("--interval", arg, "expected seconds, 0.1 to 3600");
		break;
	case 'c':
		env.count = parse_long("--count", arg, 1, LONG_MAX, "expected a count >= 1");
		break;
	case OPT_ONCE:
		env.once = true;
		break;
	case 'j':
		env.json = true;
		break;
	case OPT_NO_FENTRY:
		env.no_fentry = true;
		break;
	case 'v':
		env.verbose = true;
		break;
	case ARGP_KEY_ARG:
		fprintf(stderr, "conntrace listen: unexpected argument '%s'\n", arg);
		exit(2);
	default:
		(void)state;
		return ARGP_ERR_UNKNOWN;
	}
	return 0;
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list args)
{
	if (level == LIBBPF_DEBUG || !env.verbose)
		return 0;
	return vfprintf(stderr, fmt, args);
}

/* ---- hooks: which programs this kernel allows -------------------------- */

struct hook {
	const char *what;
	struct bpf_program *(*prog)(struct listen_bpf *);
	bool fentry;      /* part of the exact-overflow set, probed by loading */
	bool required;
	const char *btf_tp; /* tp_btf: the tracepoint must exist in this kernel */
	const char *tracefs_event; /* classic: the event must exist in tracefs */
	/* fentry on a function some kernels lack (no SYN cookies, IPv6 as a
	 * module): without it there is nothing to count there, so it is left
	 * out without breaking the set */
	const char *btf_func;
	bool absent;
	const char *status; /* "attached" or why not */
	struct bpf_link *link;
};

#define P(name) static struct bpf_program *p_##name(struct listen_bpf *s) { return s->progs.name; }
P(dump_listeners) P(on_sys_enter_listen) P(on_sys_exit_listen) P(on_set_state)
P(on_data_ready) P(on_synack_retrans) P(on_send_reset) P(conn_request_enter)
P(conn_request_exit) P(check_req_enter) P(check_req_exit)
P(cookie_v4_enter) P(cookie_v4_exit) P(cookie_v6_enter) P(cookie_v6_exit)
#undef P

static struct hook hooks[] = {
	{ "listener walk (iter/tcp)", p_dump_listeners, .required = true },
	{ "listen() backlog (syscalls/sys_enter_listen)", p_on_sys_enter_listen,
	  .tracefs_event = "syscalls/sys_enter_listen" },
	{ "listen() backlog (syscalls/sys_exit_listen)", p_on_sys_exit_listen,
	  .tracefs_event = "syscalls/sys_exit_listen" },
	{ "owner (inet_sock_set_state)", p_on_set_state, .btf_tp = "inet_sock_set_state" },
	{ "queue peak (sk_data_ready)", p_on_data_ready, .btf_tp = "sk_data_ready" },
	{ "SYN-ACK retransmits (tcp_retransmit_synack)", p_on_synack_retrans,
	  .btf_tp = "tcp_retransmit_synack" },
	{ "resets sent (tcp_send_reset)", p_on_send_reset, .btf_tp = "tcp_send_reset" },
	{ "overflows (fentry/tcp_conn_request)", p_conn_request_enter, .fentry = true },
	{ "overflows (fexit/tcp_conn_request)", p_conn_request_exit, .fentry = true },
	{ "overflows (fentry/tcp_check_req)", p_check_req_enter, .fentry = true },
	{ "overflows (fexit/tcp_check_req)", p_check_req_exit, .fentry = true },
	{ "overflows (fentry/cookie_v4_check)", p_cookie_v4_enter, .fentry = true,
	  .btf_func = "cookie_v4_check" },
	{ "overflows (fexit/cookie_v4_check)", p_cookie_v4_exit, .fentry = true,
	  .btf_func = "cookie_v4_check" },
	{ "overflows (fentry/cookie_v6_check)", p_cookie_v6_enter, .fentry = true,
	  .btf_func = "cookie_v6_check" },
	{ "overflows (fexit/cookie_v6_check)", p_cookie_v6_exit, .fentry = true,
	  .btf_func = "cookie_v6_check" },
};
#define NHOOKS (sizeof(hooks) / sizeof(hooks[0]))

static bool fentry_active;

/* Classic tracepoints need tracefs; mount it where it is missing. */
static void ensure_tracefs(void)
{
	struct stat st;

	if (stat(TRACEFS "/events", &st) == 0)
		return;
	if (mount("nodev", TRACEFS, "tracefs", 0, NULL))
		vlog("tracefs: mount on %s failed: %s", TRACEFS, strerror(errno));
	else
		vlog("tracefs: mounted on %s", TRACEFS);
}

static bool tracefs_event_exists(const char *event)
{
	char path[256];

	snprintf(path, sizeof(path), TRACEFS "/events/%s", event);
	if (access(path, F_OK) == 0)
		return true;
	snprintf(path, sizeof(path), "/sys/kernel/debug/tracing/events/%s", event);
	return access(path, F_OK) == 0;
}

/* An "unavailable here" answer from the kernel, as opposed to a bug of ours. */
static bool not_available(int err)
{
	return err == -EPERM || err == -ENOENT || err == -EINVAL ||
	       err == -EOPNOTSUPP || err == -ENOTSUP || err == -524 /* ENOTSUPP */ ||
	       err == -ESRCH || err == -EACCES;
}

static int open_and_load(struct listen_bpf **out, bool with_fentry, struct btf *vmlinux)
{
	struct listen_bpf *skel;
	size_t i;
	int err;

	skel = listen_bpf__open();
	if (!skel)
		return -errno;
	for (i = 0; i < NHOOKS; i++) {
		struct hook *h = &hooks[i];
		bool load = true;
		char name[128];

		if (h->fentry) {
			load = with_fentry;
			h->status = with_fentry ? NULL : (env.no_fentry ? "disabled (--no-fentry)"
								       : "not available: load refused");
			h->absent = h->btf_func &&
				    (!vmlinux || btf__find_by_name_kind(vmlinux, h->btf_func,
									BTF_KIND_FUNC) < 0);
			if (load && h->absent) {
				load = false;
				h->status = "not needed: no such function in this kernel";
			}
		} else if (h->btf_tp) {
			snprintf(name, sizeof(name), "btf_trace_%s", h->btf_tp);
			if (!vmlinux || btf__find_by_name_kind(vmlinux, name, BTF_KIND_TYPEDEF) < 0) {
				load = false;
				h->status = "not available: no such tracepoint";
			}
		} else if (h->tracefs_event && !tracefs_event_exists(h->tracefs_event)) {
			load = false;
			h->status = "not available: no tracefs event";
		}
		bpf_program__set_autoload(h->prog(skel), load);
	}
	err = listen_bpf__load(skel);
	if (err) {
		listen_bpf__destroy(skel);
		return err;
	}
	*out = skel;
	return 0;
}

/*
 * Load with the fentry set first (a real load is the only honest probe:
 * some kernels refuse trampolines with EPERM before the verifier runs),
 * then without it. Attach one by one so an optional hook that fails
 * costs only its own column.
 */
static int load_and_attach(struct listen_bpf **out)
{
	struct btf *vmlinux = btf__load_vmlinux_btf();
	struct listen_bpf *skel = NULL;
	size_t i;
	int err = -ENOENT;

	if (!vmlinux)
		vlog("BTF: cannot load vmlinux BTF: %s", strerror(errno));
	ensure_tracefs();
	if (!env.no_fentry) {
		err = open_and_load(&skel, true, vmlinux);
		if (err && !not_available(err))
			goto out;
		if (err)
			vlog("fentry: not available (%s); using sk_drops", strerror(-err));
	}
	if (!skel) {
		err = open_and_load(&skel, false, vmlinux);
		if (err) {
			elog("bpf: failed to load listen.bpf.o: %s", strerror(-err));
			goto out;
		}
	}

	fentry_active = true;
	for (i = 0; i < NHOOKS; i++) {
		struct hook *h = &hooks[i];
		struct bpf_program *p = h->prog(skel);

		if (!bpf_program__autoload(p)) {
			if (h->fentry && !h->absent)
				fentry_active = false;
			continue;
		}
		h->link = h->required ? bpf_program__attach_iter(p, NULL) : bpf_program__attach(p);
		if (!h->link) {
			err = -errno;
			if (h->required) {
				elog("bpf: failed to attach %s: %s", h->what, strerror(-err));
				goto out;
			}
			h->status = "not available: attach refused";
			if (h->fentry)
				fentry_active = false;
			continue;
		}
		h->status = "attached";
	}
	/* The exact count needs the whole set; a partial one would undercount. */
	if (!fentry_active) {
		for (i = 0; i < NHOOKS; i++) {
			if (hooks[i].fentry && hooks[i].link) {
				bpf_link__destroy(hooks[i].link);
				hooks[i].link = NULL;
				hooks[i].status = "detached: the rest of the fentry set is not available";
			}
		}
	}
	*out = skel;
	skel = NULL;
	err = 0;
out:
	if (skel) {
		for (i = 0; i < NHOOKS; i++) {
			bpf_link__destroy(hooks[i].link);
			hooks[i].link = NULL;
		}
		listen_bpf__destroy(skel);
	}
	btf__free(vmlinux);
	return err;
}

/* ---- network namespaces ------------------------------------------------ */

struct netns {
	uint64_t ino;
	int fd;
	char name[64];       /* from /run/netns, or "" */
	bool walked;         /* its listeners and counters were read this refresh */
	bool have_prev;
	struct listen_ns_counters now, prev;
	uint32_t somaxconn;
	uint32_t max_syn_backlog;
	uint32_t syncookies;
};

struct netns_set {
	struct netns *v;
	size_t n, cap;
};

static struct netns *netns_find(struct netns_set *s, uint64_t ino)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		if (s->v[i].ino == ino)
			return &s->v[i];
	return NULL;
}

/* Keeps an open fd per namespace, deduplicated by inode. */
static void netns_add(struct netns_set *s, const char *path, const char *name)
{
	struct stat st;
	struct netns *ns;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return; /* the process exited, or a stale mount: nothing to walk */
	if (fstat(fd, &st) || netns_find(s, st.st_ino)) {
		close(fd);
		return;
	}
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		struct netns *v = realloc(s->v, cap * sizeof(*v));

		if (!v) {
			close(fd);
			return;
		}
		s->v = v;
		s->cap = cap;
	}
	ns = &s->v[s->n++];
	memset(ns, 0, sizeof(*ns));
	ns->ino = st.st_ino;
	ns->fd = fd;
	snprintf(ns->name, sizeof(ns->name), "%s", name ? name : "");
}

static void netns_close_all(struct netns_set *s)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		close(s->v[i].fd);
	s->n = 0;
}

/* Every namespace: named ones in /run/netns, and those of every process. */
static void netns_enumerate(struct netns_set *s)
{
	char path[PATH_MAX];
	struct dirent *de;
	DIR *d;

	netns_add(s, "/proc/thread-self/ns/net", NULL);
	d = opendir("/run/netns");
	if (d) {
		while ((de = readdir(d))) {
			if (de->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "/run/netns/%s", de->d_name);
			netns_add(s, path, de->d_name);
		}
		closedir(d);
	}
	d = opendir("/proc");
	if (!d)
		return;
	while ((de = readdir(d))) {
		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/ns/net", de->d_name);
		netns_add(s, path, NULL);
	}
	closedir(d);
}

static int read_u32_file(const char *path, uint32_t *out)
{
	char buf[32];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return n < 0 ? -errno : -EIO;
	buf[n] = '\0';
	*out = (uint32_t)strtoul(buf, NULL, 10);
	return 0;
}

/*
 * /proc/net/netstat holds header/value line pairs per prefix; take the
 * TcpExt ones by column name (their order differs between kernels).
 */
static int read_netstat(struct listen_ns_counters *c)
{
	static const struct { const char *name; size_t off; } want[] = {
		{ "ListenOverflows", offsetof(struct listen_ns_counters, listen_overflows) },
		{ "ListenDrops", offsetof(struct listen_ns_counters, listen_drops) },
		{ "SyncookiesSent", offsetof(struct listen_ns_counters, syncookies_sent) },
		{ "TCPReqQFullDoCookies", offsetof(struct listen_ns_counters, reqq_full_cookies) },
		{ "TCPReqQFullDrop", offsetof(struct listen_ns_counters, reqq_full_drop) },
	};
	char *hdr = NULL, *val = NULL, *hs, *vs, *h, *v;
	size_t hcap = 0, vcap = 0, i;
	FILE *f = fopen("/proc/thread-self/net/netstat", "re");
	int err = -ENOENT;

	if (!f)
		return -errno;
	memset(c, 0, sizeof(*c));
	while (getline(&hdr, &hcap, f) > 0 && getline(&val, &vcap, f) > 0) {
		if (strncmp(hdr, "TcpExt:", 7) || strncmp(val, "TcpExt:", 7))
			continue;
		h = strtok_r(hdr + 7, " \n", &hs);
		v = strtok_r(val + 7, " \n", &vs);
		for (; h && v; h = strtok_r(NULL, " \n", &hs), v = strtok_r(NULL, " \n", &vs))
			for (i = 0; i < sizeof(want) / sizeof(want[0]); i++)
				if (!strcmp(h, want[i].name))
					*(uint64_t *)((char *)c + want[i].off) = strtoull(v, NULL, 10);
		err = 0;
		break;
	}
	free(hdr);
	free(val);
	fclose(f);
	return err;
}

/* ---- listener records -------------------------------------------------- */

struct recs {
	struct listen_rec *v;
	size_t n, cap;
};

static int read_iter(int iter_fd, struct recs *r)
{
	char buf[64 * sizeof(struct listen_rec)];
	size_t have = 0;
	ssize_t n;

	/* bpf_seq_write() emits whole records, but read() may split them */
	while ((n = read(iter_fd, buf + have, sizeof(buf) - have)) > 0) {
		size_t k, whole;

		have += n;
		whole = have / sizeof(struct listen_rec);
		if (r->n + whole > r->cap) {
			size_t cap = (r->n + whole) * 2;
			struct listen_rec *v = realloc(r->v, cap * sizeof(*v));

			if (!v)
				return -ENOMEM;
			r->v = v;
			r->cap = cap;
		}
		for (k = 0; k < whole; k++)
			memcpy(&r->v[r->n++], buf + k * sizeof(struct listen_rec),
			       sizeof(struct listen_rec));
		have -= whole * sizeof(struct listen_rec);
		memmove(buf, buf + whole * sizeof(struct listen_rec), have);
	}
	return n < 0 ? -errno : 0;
}

/*
 * iter/tcp walks the namespace of the task that creates the iterator, so
 * enter each namespace, create it and read the namespace's sysctls and
 * counters there, and come back. A failure to come back is fatal.
 */
static int walk_netns(struct netns *ns, int orig_fd, int link_fd, struct recs *r)
{
	int iter_fd, err;

	ns->walked = false;
	if (setns(ns->fd, CLONE_NEWNET))
		return -errno; /* gone, or not enterable: skipped this refresh */
	iter_fd = bpf_iter_create(link_fd);
	err = iter_fd < 0 ? -errno : 0;
	if (read_u32_file("/proc/sys/net/core/somaxconn", &ns->somaxconn))
		ns->somaxconn = 0;
	if (read_u32_file("/proc/sys/net/ipv4/tcp_max_syn_backlog", &ns->max_syn_backlog))
		ns->max_syn_backlog = 0;
	if (read_u32_file("/proc/sys/net/ipv4/tcp_syncookies", &ns->syncookies))
		ns->syncookies = 0;
	ns->prev = ns->now;
	if (!err)
		err = read_netstat(&ns->now);
	if (setns(orig_fd, CLONE_NEWNET)) {
		err = -errno;
		elog("netns: cannot return to the original network namespace: %s", strerror(-err));
		if (iter_fd >= 0)
			close(iter_fd);
		return -ENOTRECOVERABLE;
	}
	if (err) {
		if (iter_fd >= 0)
			close(iter_fd);
		return err;
	}
	err = read_iter(iter_fd, r);
	close(iter_fd);
	if (!err)
		ns->walked = true;
	return err;
}

/* ---- owners of listeners that predate us: /proc/PID/fd ------------------ */

struct tracked {
	struct listener l;
	bool first;          /* first seen at this refresh */
	bool owner_tried;
	uint32_t prev_stamp;
	uint64_t prev_full_events;
	uint64_t prev_fentry;
};

struct state {
	struct tracked *v;  /* sorted by cookie */
	size_t n;
};

static int cmp_tracked(const void *a, const void *b)
{
	const struct tracked *x = a, *y = b;

	return x->l.cookie < y->l.cookie ? -1 : x->l.cookie > y->l.cookie;
}

static int cmp_rec(const void *a, const void *b)
{
	const struct listen_rec *x = a, *y = b;

	return x->cookie < y->cookie ? -1 : x->cookie > y->cookie;
}

static struct tracked *state_find(struct state *s, uint64_t cookie)
{
	struct tracked key = { .l.cookie = cookie };

	return s->n ? bsearch(&key, s->v, s->n, sizeof(*s->v), cmp_tracked) : NULL;
}

/* Like ss -p: find the process holding socket:[ino] among /proc/PID/fd. */
static void resolve_owners(struct state *s)
{
	char path[PATH_MAX], link[64];
	struct dirent *pe, *fe;
	size_t i, want = 0;
	DIR *pd, *fd;

	for (i = 0; i < s->n; i++)
		if (!s->v[i].l.pid && !s->v[i].owner_tried && s->v[i].l.sock_ino)
			want++;
	if (!want || !(pd = opendir("/proc")))
		return;
	while (want && (pe = readdir(pd))) {
		if (pe->d_name[0] < '1' || pe->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/fd", pe->d_name);
		if (!(fd = opendir(path)))
			continue;
		while (want && (fe = readdir(fd))) {
			unsigned long long ino;
			ssize_t n;

			snprintf(path, sizeof(path), "/proc/%s/fd/%s", pe->d_name, fe->d_name);
			n = readlink(path, link, sizeof(link) - 1);
			if (n <= 0)
				continue;
			link[n] = '\0';
			if (sscanf(link, "socket:[%llu]", &ino) != 1)
				continue;
			for (i = 0; i < s->n; i++) {
				struct listener *l = &s->v[i].l;
				FILE *cf;

				if (l->pid || s->v[i].owner_tried || l->sock_ino != ino)
					continue;
				l->pid = atoi(pe->d_name);
				snprintf(path, sizeof(path), "/proc/%s/comm", pe->d_name);
				if ((cf = fopen(path, "re"))) {
					if (fgets(l->comm, sizeof(l->comm), cf))
						l->comm[strcspn(l->comm, "\n")] = '\0';
					fclose(cf);
				}
				s->v[i].owner_tried = true;
				want--;
			}
		}
		closedir(fd);
	}
	closedir(pd);
	/* Not found (a kernel socket, or the owner exited): do not rescan. */
	for (i = 0; i < s->n; i++)
		if (!s->v[i].l.pid)
			s->v[i].owner_tried = true;
}

/* ---- one refresh --------------------------------------------------------- */

struct ctx {
	struct listen_bpf *skel;
	struct netns_set ns;
	struct state st;
	struct recs recs;
	int orig_netns;
	int refresh;         /* 0: the baseline walk */
	size_t ns_skipped;   /* namespaces that could not be walked this refresh */
	struct timespec last;
	double interval_s;
};

static void merge_record(struct ctx *c, const struct listen_rec *r, struct tracked *t,
			 const struct tracked *old, const struct netns *ns)
{
	struct listener *l = &t->l;
	struct listen_stats s;
	bool have_stats;
	int map_fd = bpf_map__fd(c->skel->maps.listeners);

	if (old)
		*t = *old;
	else
		memset(t, 0, sizeof(*t));
	t->first = !old;
	have_stats = bpf_map_lookup_elem(map_fd, &r->cookie, &s) == 0;

	l->cookie = r->cookie;
	l->netns_ino = r->netns_ino;
	l->sock_ino = r->sock_ino;
	l->family = r->family;
	l->lport = r->lport;
	memcpy(l->laddr, r->laddr, sizeof(l->laddr));
	l->accept_queue = r->ack_backlog;
	l->accept_queue_max = r->max_ack_backlog;
	l->syn_queue = r->syn_qlen;
	l->somaxconn = ns->somaxconn;
	l->tcp_max_syn_backlog = ns->max_syn_backlog;
	l->tcp_syncookies = ns->syncookies;
	l->full_now = r->ack_backlog > r->max_ack_backlog;
	l->full_streak = l->full_now ? (old ? old->l.full_streak : 0) + 1 : 0;
	/*
	 * The stamp moves when the listener sends SYN cookies (at most once a
	 * second). A socket starts zeroed, so a listener born since the last
	 * refresh with a stamp has sent them in this interval.
	 */
	if (old)
		l->cookies_interval = r->synq_overflow_ts != old->prev_stamp;
	else
		l->cookies_interval = c->refresh && ns->have_prev && r->synq_overflow_ts;
	t->prev_stamp = r->synq_overflow_ts;
	/* cookies are never reused: only a wrap of the 32-bit counter goes down */
	l->drops_interval = overflow_delta(old ? old->l.drops : 0, r->drops);
	l->drops = r->drops;
	l->interval_s = c->interval_s;

	/* The peak of this epoch, and at least what the walk itself saw. */
	l->accept_queue_peak = r->ack_backlog;
	l->full_events_interval = 0;
	if (have_stats) {
		if (s.peak_epoch == c->skel->bss->peak_epoch && s.peak > l->accept_queue_peak)
			l->accept_queue_peak = s.peak;
		l->full_events_interval = old ? overflow_delta(t->prev_full_events, s.full_events) : 0;
		t->prev_full_events = s.full_events;
		l->synack_retrans = s.synack_retrans;
		l->resets_sent = s.resets_sent;
		if (s.tgid && !l->pid) {
			l->pid = s.tgid;
			memcpy(l->comm, s.comm, sizeof(l->comm));
			l->comm[sizeof(l->comm) - 1] = '\0';
		}
		if (s.backlog_known) {
			l->backlog_requested = s.backlog;
			l->backlog_source = LISTEN_BACKLOG_SYSCALL;
		}
	}
	if (l->backlog_source != LISTEN_BACKLOG_SYSCALL) {
		/* max = min(backlog, somaxconn): below somaxconn, max is the backlog */
		if (l->somaxconn && l->accept_queue_max < l->somaxconn) {
			l->backlog_requested = l->accept_queue_max;
			l->backlog_source = LISTEN_BACKLOG_INFERRED;
		} else {
			l->backlog_requested = -1;
			l->backlog_source = LISTEN_BACKLOG_UNKNOWN;
		}
	}
	listen_history_push(l, l->accept_queue_peak);
}

/* Per namespace: share the overflow increment out, or take fentry's count. */
static void account_overflows(struct ctx *c, struct tracked *v, size_t n)
{
	struct overflow_share *sh = calloc(n ? n : 1, sizeof(*sh));
	int map_fd = bpf_map__fd(c->skel->maps.listeners);
	size_t i, k;

	if (!sh)
		return;
	for (k = 0; k < c->ns.n; k++) {
		struct netns *ns = &c->ns.v[k];
		uint64_t d_ovf, d_drops;
		enum overflow_method m;

		if (!ns->walked)
			continue;
		/* a namespace seen for the first time: its counters since creation */
		d_ovf = ns->now.listen_overflows - (ns->have_prev ? ns->prev.listen_overflows : 0);
		d_drops = ns->now.listen_drops - (ns->have_prev ? ns->prev.listen_drops : 0);
		for (i = 0; i < n; i++) {
			struct listener *l = &v[i].l;

			sh[i].drops = l->netns_ino == ns->ino ? l->drops_interval : 0;
			sh[i].was_full = l->full_now || l->full_events_interval ||
					 l->accept_queue_peak > l->accept_queue_max ||
					 (l->history_len > 1 && l->history[l->history_len - 2] >= 100);
		}
		m = overflow_attribute(d_ovf, d_drops, sh, n);
		for (i = 0; i < n; i++) {
			struct tracked *t = &v[i];
			struct listener *l = &t->l;
			struct listen_stats s;
			bool have_stats;

			if (l->netns_ino != ns->ino)
				continue;
			have_stats = fentry_active &&
				     bpf_map_lookup_elem(map_fd, &l->cookie, &s) == 0;
			if (have_stats && !t->first) {
				/* listen() again on the same socket restarts the BPF count */
				l->overflows_interval = overflow_delta(t->prev_fentry, s.overflows);
				t->prev_fentry = s.overflows;
				l->method_interval = OVERFLOW_METHOD_FENTRY;
			} else {
				/* the sk_drops share; at first sight it covers since listen() */
				l->overflows_interval = sh[i].overflows;
				/* nothing to share: fentry's zero is the exact one */
				l->method_interval = fentry_active && m == OVERFLOW_METHOD_NONE
							     ? OVERFLOW_METHOD_FENTRY : m;
				if (have_stats)
					t->prev_fentry = s.overflows; /* already inside sk_drops */
			}
			l->overflows += l->overflows_interval;
			l->method = t->first ? l->method_interval
					     : overflow_method_merge(l->method, l->method_interval);
			/*
			 * A listener new since the last refresh of a namespace we
			 * already knew had all its life inside the interval; any
			 * other first sight has a total but no interval yet.
			 */
			if (t->first && (!c->refresh || !ns->have_prev)) {
				l->overflows_interval = 0;
				l->interval_s = 0;
			}
		}
		ns->have_prev = true;
	}
	free(sh);
}

static int refresh(struct ctx *c)
{
	int link_fd = bpf_link__fd(hooks[0].link);
	struct state next = { 0 };
	struct timespec ts;
	size_t i;
	int err;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	c->interval_s = c->refresh ? (ts.tv_sec - c->last.tv_sec) +
				     (ts.tv_nsec - c->last.tv_nsec) / 1e9 : 0;
	c->last = ts;

	/* Namespaces come and go: reopen them all at every refresh. */
	for (i = 0; i < c->ns.n; i++) {
		close(c->ns.v[i].fd);
		c->ns.v[i].fd = -1;
	}
	{
		struct netns_set fresh = { 0 };

		netns_enumerate(&fresh);
		for (i = 0; i < fresh.n; i++) {
			struct netns *o = netns_find(&c->ns, fresh.v[i].ino);

			if (o && o->have_prev) { /* keep its counters for the deltas */
				fresh.v[i].now = o->now;
				fresh.v[i].have_prev = true;
			}
		}
		free(c->ns.v);
		c->ns = fresh;
	}

	c->recs.n = 0;
	c->ns_skipped = 0;
	for (i = 0; i < c->ns.n; i++) {
		err = walk_netns(&c->ns.v[i], c->orig_netns, link_fd, &c->recs);
		if (err == -ENOTRECOVERABLE)
			return err;
		c->ns_skipped += err != 0;
		if (err)
			vlog("netns %" PRIu64 ": skipped this refresh: %s", c->ns.v[i].ino,
			     strerror(-err));
	}

	next.v = calloc(c->recs.n + c->st.n + 1, sizeof(*next.v));
	if (!next.v)
		return -ENOMEM;
	/* by cookie: a socket seen twice (it should not be) is merged once */
	qsort(c->recs.v, c->recs.n, sizeof(*c->recs.v), cmp_rec);
	for (i = 0; i < c->recs.n; i++) {
		const struct listen_rec *r = &c->recs.v[i];
		struct netns *ns = netns_find(&c->ns, r->netns_ino);

		if (!ns || (i && r->cookie == c->recs.v[i - 1].cookie))
			continue;
		merge_record(c, r, &next.v[next.n], state_find(&c->st, r->cookie), ns);
		next.n++;
	}
	/*
	 * A namespace that could not be walked this time keeps its listeners
	 * as they were, rather than losing their history and totals.
	 */
	for (i = 0; i < c->st.n; i++) {
		struct netns *ns = netns_find(&c->ns, c->st.v[i].l.netns_ino);

		if (ns && !ns->walked)
			next.v[next.n++] = c->st.v[i];
	}
	qsort(next.v, next.n, sizeof(*next.v), cmp_tracked);
	account_overflows(c, next.v, next.n);
	for (i = 0; i < next.n; i++)
		listen_advise(&next.v[i].l);
	resolve_owners(&next);

	/* Listeners that closed simply are not in `next`. */
	free(c->st.v);
	c->st = next;
	c->skel->bss->peak_epoch++; /* restart the peaks for the next interval */
	c->refresh++;
	return 0;
}

/* ---- output -------------------------------------------------------------- */

static bool utf8_locale(void)
{
	const char *v = getenv("LC_ALL");

	if (!v || !*v)
		v = getenv("LC_CTYPE");
	if (!v || !*v)
		v = getenv("LANG");
	return v && (strcasestr(v, "utf-8") || strcasestr(v, "utf8"));
}

static bool selected(const struct listener *l)
{
	return (env.port < 0 || l->lport == env.port) && (env.pid < 0 || l->pid == env.pid);
}

/* Short enough for an 80-column terminal: the table's budget counts on it. */
static const char *method_summary(void)
{
	return fentry_active
		? "overflows: fentry/fexit on tcp_conn_request, tcp_check_req, cookie_check (exact)"
		: "overflows: per-listener sk_drops, exact (~: attributed from ListenOverflows)";
}

static void print_start_json(struct json *j)
{
	struct timespec rt;
	size_t i;

	clock_gettime(CLOCK_REALTIME, &rt);
	listen_json_head(j, "listen_start", rt.tv_sec + rt.tv_nsec / 1e9);
	json_kstr(j, "method", fentry_active ? "fentry" : "sk_drops");
	json_key(j, "hooks");
	json_obj_begin(j);
	for (i = 0; i < NHOOKS; i++)
		json_kstr(j, hooks[i].what, hooks[i].status ? hooks[i].status : "?");
	json_obj_end(j);
	json_obj_end(j);
	json_eol(j);
}

static int print_refresh(struct ctx *c, struct json *j)
{
	struct listener *rows = calloc(c->st.n ? c->st.n : 1, sizeof(*rows));
	struct listen_table_opts o = { .utf8 = utf8_locale(), .show_advice = true };
	struct timespec rt;
	size_t i, n = 0, k;
	double ts;

	if (!rows)
		return -ENOMEM;
	clock_gettime(CLOCK_REALTIME, &rt);
	ts = rt.tv_sec + rt.tv_nsec / 1e9;
	for (i = 0; i < c->st.n; i++)
		if (selected(&c->st.v[i].l))
			rows[n++] = c->st.v[i].l;
	qsort(rows, n, sizeof(*rows), listen_cmp_trouble);

	if (env.json) {
		for (k = 0; k < c->ns.n; k++) {
			struct netns *ns = &c->ns.v[k];
			uint64_t sum = 0, cnt = 0;

			if (!ns->walked)
				continue;
			for (i = 0; i < c->st.n; i++) {
				if (c->st.v[i].l.netns_ino != ns->ino)
					continue;
				cnt++;
				sum += c->st.v[i].l.overflows;
			}
			if (!cnt && !ns->name[0])
				continue; /* a namespace with nothing listening: noise */
			listen_json_head(j, "netns", ts);
			json_key(j, "time");
			json_double(j, ts, 3);
			json_ku64(j, "netns", ns->ino);
			json_kstr(j, "name", ns->name);
			json_ku64(j, "somaxconn", ns->somaxconn);
			json_ku64(j, "tcp_max_syn_backlog", ns->max_syn_backlog);
			json_ku64(j, "tcp_syncookies", ns->syncookies);
			json_ku64(j, "listeners", cnt);
			json_ku64(j, "listen_overflows", ns->now.listen_overflows);
			json_ku64(j, "listen_drops", ns->now.listen_drops);
			json_ku64(j, "syncookies_sent", ns->now.syncookies_sent);
			json_ku64(j, "reqq_full_do_cookies", ns->now.reqq_full_cookies);
			json_ku64(j, "reqq_full_drop", ns->now.reqq_full_drop);
			json_ku64(j, "listener_overflows", sum);
			json_obj_end(j);
			json_eol(j);
		}
		for (i = 0; i < n; i++)
			listen_json_listener(j, &rows[i], ts);
		if (c->skel->bss->lost.stats_map_full || c->skel->bss->lost.pending_map_full ||
		    c->ns_skipped) {
			listen_json_head(j, "listen_lost", ts);
			json_ku64(j, "stats_map_full", c->skel->bss->lost.stats_map_full);
			json_ku64(j, "pending_map_full", c->skel->bss->lost.pending_map_full);
			json_ku64(j, "netns_skipped", c->ns_skipped);
			json_obj_end(j);
			json_eol(j);
		}
	} else {
		bool tty = isatty(STDOUT_FILENO);
		char when[32];
		struct tm tm;
		size_t nns = 0;

		localtime_r(&rt.tv_sec, &tm);
		strftime(when, sizeof(when), "%H:%M:%S", &tm);
		for (k = 0; k < c->ns.n; k++)
			nns += c->ns.v[k].walked;
		if (tty) {
			struct winsize ws;

			if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col && ws.ws_row) {
				o.width = ws.ws_col;
				/* the two summary lines, and the cursor's line */
				o.max_lines = env.once ? 0 : (ws.ws_row > 5 ? ws.ws_row - 3 : 2);
			}
		}
		if (tty && !env.once)
			fputs("\033[H\033[2J", stdout); /* redraw in place, top-like */
		else if (c->refresh > 2)
			fputc('\n', stdout); /* plain lines when piped: one block each */
		printf("conntrace listen %s  every %.1fs  %zu of %zu listeners, %zu netns",
		       when, env.interval, n, c->st.n, nns);
		if (c->ns_skipped)
			printf(" (%zu more not walkable: -v says why)", c->ns_skipped);
		putchar('\n');
		printf("%s\n", method_summary());
		if (c->skel->bss->lost.stats_map_full || c->skel->bss->lost.pending_map_full)
			printf("lost: %llu listener entries (BPF map full), %llu listen() backlogs\n",
			       (unsigned long long)c->skel->bss->lost.stats_map_full,
			       (unsigned long long)c->skel->bss->lost.pending_map_full);
		listen_print_table(stdout, rows, n, &o);
	}
	free(rows);
	/* a reader at the other end of a pipe gets each refresh whole, now */
	return fflush(stdout) ? -errno : 0;
}

static void print_hooks(void)
{
	size_t i;

	for (i = 0; i < NHOOKS; i++)
		elog("hook %-45s %s", hooks[i].what, hooks[i].status ? hooks[i].status : "?");
	elog("method: %s", method_summary());
}

static void sleep_interval(double s)
{
	struct timespec ts = { (time_t)s, (long)((s - (time_t)s) * 1e9) };

	while (!exiting && nanosleep(&ts, &ts) && errno == EINTR)
		;
}

int listen_main(int argc, char **argv)
{
	static const struct argp argp = { options, parse_opt, NULL, doc, NULL, NULL, NULL };
	struct ctx c = { .orig_netns = -1 };
	struct json j;
	char *args[argc + 2];
	struct sigaction sa = { .sa_handler = on_signal };
	int err, i;
	long printed = 0;

	/* argp names the program after argv[0]: make usage say the subcommand */
	args[0] = "conntrace listen";
	for (i = 1; i < argc; i++)
		args[i] = argv[i];
	args[argc > 0 ? argc : 1] = NULL;
	argp_err_exit_status = 2;
	if (argp_parse(&argp, argc > 0 ? argc : 1, args, 0, NULL, NULL))
		return 2;

	libbpf_set_print(libbpf_print);
	json_init(&j, stdout);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	c.orig_netns = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (c.orig_netns < 0) {
		err = -errno;
		elog("netns: cannot open /proc/thread-self/ns/net: %s", strerror(-err));
		return 1;
	}
	err = load_and_attach(&c.skel);
	if (err) {
		close(c.orig_netns);
		return 1;
	}
	if (env.verbose)
		print_hooks();
	if (env.json) {
		print_start_json(&j);
		fflush(stdout);
	}

	/* The baseline walk: totals since listen(); rates need a second one. */
	err = refresh(&c);
	while (!err && !exiting) {
		sleep_interval(env.interval);
		if (exiting)
			break;
		err = refresh(&c);
		if (err)
			break;
		err = print_refresh(&c, &j);
		if (err)
			break;
		printed++;
		if (env.once || (env.count && printed >= env.count))
			break;
	}
	if (err)
		elog("refresh failed: %s", strerror(-err));

	for (i = 0; i < (int)NHOOKS; i++) {
		bpf_link__destroy(hooks[i].link);
		hooks[i].link = NULL;
	}
	listen_bpf__destroy(c.skel);
	netns_close_all(&c.ns);
	free(c.ns.v);
	free(c.st.v);
	free(c.recs.v);
	close(c.orig_netns);
	return err ? 1 : 0;
}
