// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * conntrace listen: the kernel side. Loads bpf/listen.bpf.c with the hooks
 * this kernel allows (hooks.c, from the table below), walks the TCP
 * listeners of every network namespace with iter/tcp at each refresh, and
 * merges each walk into the listeners' state: queue depths, peaks, owners,
 * and overflows by overflow.h's one definition.
 */
#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "ksym.h"
#include "listen_int.h"
#include "listen.skel.h"

enum {
	LSIG_LISTENERS, LSIG_BACKLOG, LSIG_OWNER, LSIG_QUEUE_PEAK, LSIG_SYNACK_RETRANSMIT,
	LSIG_RST_SENT, LSIG_OVERFLOWS, LSIG_SYN, LSIG_MAX,
};

static const char *const lsignals[LSIG_MAX] = {
	[LSIG_LISTENERS] = "listeners",
	[LSIG_BACKLOG] = "listen_backlog",
	[LSIG_OWNER] = "owner",
	[LSIG_QUEUE_PEAK] = "queue_peak",
	[LSIG_SYNACK_RETRANSMIT] = "synack_retransmit",
	[LSIG_RST_SENT] = "rst_sent",
	[LSIG_OVERFLOWS] = "overflows",
	[LSIG_SYN] = "syn_at_listener",
};

/*
 * The overflow sites are one HOOK_SET: an exact count needs all of them
 * (a partial set would undercount); the SYN-cookie ones only where the
 * kernel has the function (no SYN cookies, IPv6 as a module).
 */
#define OVF (HOOK_SET)
#define OVF_COOKIE (HOOK_SET | HOOK_IF_PRESENT)
static const struct hook_def lhooks[] = {
	{ "dump_listeners", HK_ITER, "tcp", LSIG_LISTENERS, HOOK_REQUIRED },
	{ "on_sys_enter_listen", HK_SYSCALL_TP, "syscalls/sys_enter_listen", LSIG_BACKLOG,
	  HOOK_SET },
	{ "on_sys_exit_listen", HK_SYSCALL_TP, "syscalls/sys_exit_listen", LSIG_BACKLOG,
	  HOOK_SET },
	{ "on_set_state", HK_TP_BTF, "inet_sock_set_state", LSIG_OWNER, HOOK_OPTIONAL },
	{ "on_data_ready", HK_TP_BTF, "sk_data_ready", LSIG_QUEUE_PEAK, HOOK_OPTIONAL },
	{ "on_synack_retrans", HK_TP_BTF, "tcp_retransmit_synack", LSIG_SYNACK_RETRANSMIT,
	  HOOK_OPTIONAL },
	{ "on_send_reset", HK_TP_BTF, "tcp_send_reset", LSIG_RST_SENT, HOOK_OPTIONAL },
	{ "conn_request_enter", HK_FENTRY, "tcp_conn_request", LSIG_OVERFLOWS, OVF },
	{ "conn_request_exit", HK_FEXIT, "tcp_conn_request", LSIG_OVERFLOWS, OVF },
	{ "check_req_enter", HK_FENTRY, "tcp_check_req", LSIG_OVERFLOWS, OVF },
	{ "check_req_exit", HK_FEXIT, "tcp_check_req", LSIG_OVERFLOWS, OVF },
	{ "cookie_v4_enter", HK_FENTRY, "cookie_v4_check", LSIG_OVERFLOWS, OVF_COOKIE },
	{ "cookie_v4_exit", HK_FEXIT, "cookie_v4_check", LSIG_OVERFLOWS, OVF_COOKIE },
	{ "cookie_v6_enter", HK_FENTRY, "cookie_v6_check", LSIG_OVERFLOWS, OVF_COOKIE },
	{ "cookie_v6_exit", HK_FEXIT, "cookie_v6_check", LSIG_OVERFLOWS, OVF_COOKIE },
	/* each SYN at its listener: cookies, and the clients that lost SYNs */
	{ "syn_enter", HK_FENTRY, "tcp_conn_request", LSIG_SYN, HOOK_SET },
	{ "syn_exit", HK_FEXIT, "tcp_conn_request", LSIG_SYN, HOOK_SET },
	{ "syn_consumed", HK_TP_BTF, "consume_skb", LSIG_SYN, HOOK_FALLBACK },
};
#undef OVF
#undef OVF_COOKIE
#define NR_LHOOKS (sizeof(lhooks) / sizeof(lhooks[0]))

struct listen_kernel {
	struct listen_bpf *skel;
	struct bpf_link *links[NR_LHOOKS];
	struct probe_report report[LSIG_MAX];
	bool fentry;
	bool syn;       /* SYNs at the listener are seen (either path) */
	bool syn_exact; /* ... at tcp_conn_request (fentry/fexit) */
	int iter_link_fd;
};

/* The consume_skb fallback needs the location and tcp_rcv_state_process's range. */
static void choose_syn_fallback(struct listen_kernel *k, const struct btf *btf)
{
	struct probe_report *r = &k->report[LSIG_SYN];
	struct bpf_program *p = k->skel->progs.syn_consumed;
	uint64_t lo, hi;
	int err;

	if (!bpf_program__autoload(p))
		return;
	if (!hooks_consume_has_location(btf)) {
		bpf_program__set_autoload(p, false);
		snprintf(r->note, sizeof(r->note), "consume_skb has no location argument "
			 "(before 6.3) and no fexit: SYN cookies and clients not seen");
		return;
	}
	err = ksym_range_kernel("tcp_rcv_state_process", &lo, &hi);
	if (err) {
		bpf_program__set_autoload(p, false);
		snprintf(r->note, sizeof(r->note), "tcp_rcv_state_process not found in "
			 "/proc/kallsyms (%s): SYN cookies and clients not seen", strerror(-err));
		return;
	}
	k->skel->rodata->syn_loc_lo = lo;
	k->skel->rodata->syn_loc_hi = hi;
	snprintf(r->note, sizeof(r->note), "SYN cookies exact with tcp_syncookies=2, "
		 "inferred with 1");
}

static int open_and_load(struct listen_kernel *k, const struct btf *btf, unsigned opts,
			 char *errmsg, size_t errsz)
{
	int err;

	k->skel = listen_bpf__open();
	if (!k->skel) {
		err = -errno;
		snprintf(errmsg, errsz, "bpf: cannot open listen.bpf.o: %s", strerror(-err));
		return err;
	}
	err = hooks_select(k->skel->obj, btf, lhooks, NR_LHOOKS, lsignals, LSIG_MAX, opts,
			   k->report, errmsg, errsz);
	if (!err)
		choose_syn_fallback(k, btf);
	if (!err) {
		err = listen_bpf__load(k->skel);
		if (err)
			snprintf(errmsg, errsz, "bpf: failed to load listen.bpf.o: %s%s",
				 strerror(-err), hooks_verbose() ? "" : " (-v shows why)");
	}
	if (err) {
		listen_bpf__destroy(k->skel);
		k->skel = NULL;
	}
	return err;
}

/* The overflows row says what counts them when fentry does not. */
static void note_overflow_method(struct listen_kernel *k)
{
	struct probe_report *r = &k->report[LSIG_OVERFLOWS];
	char old[sizeof(r->note)];

	if (k->fentry)
		return;
	memcpy(old, r->note, sizeof(old));
	snprintf(r->note, sizeof(r->note), "%.*s%scounted from sk_drops and ListenOverflows",
		 (int)(sizeof(r->note) - 48), old, old[0] ? ": " : "");
}

/*
 * The overflow set is chosen by probing (a real load and attach of a tiny
 * program); should the whole object still fail to load with it (a verifier
 * of another kernel), it is loaded again without.
 */
int listen_kernel_open(struct listen_kernel **out, bool no_fentry)
{
	struct listen_kernel *k = calloc(1, sizeof(*k));
	struct btf *btf = btf__load_vmlinux_btf();
	char errmsg[256] = "", first[256] = "";
	int err;

	if (!k) {
		btf__free(btf);
		return -ENOMEM;
	}
	if (!btf)
		vlog("BTF: cannot load vmlinux BTF: %s", strerror(errno));
	err = open_and_load(k, btf, no_fentry ? HOOKS_NO_FENTRY : 0, errmsg, sizeof(errmsg));
	if (err && !no_fentry) {
		memcpy(first, errmsg, sizeof(first));
		err = open_and_load(k, btf, HOOKS_NO_FENTRY, errmsg, sizeof(errmsg));
		if (!err) {
			vlog("fentry: %s; counting from sk_drops", first);
			snprintf(k->report[LSIG_OVERFLOWS].note,
				 sizeof(k->report[LSIG_OVERFLOWS].note),
				 "fentry: the programs did not load");
		}
	}
	btf__free(btf);
	if (!err)
		err = hooks_attach(k->skel->obj, lhooks, NR_LHOOKS, k->links, -1, k->report,
				   LSIG_MAX, errmsg, sizeof(errmsg));
	if (err) {
		elog("%s", errmsg);
		listen_kernel_close(k);
		return err;
	}
	k->fentry = hooks_set_attached(lhooks, NR_LHOOKS, k->links, LSIG_OVERFLOWS);
	k->syn_exact = hooks_set_attached(lhooks, NR_LHOOKS, k->links, LSIG_SYN);
	k->syn = k->report[LSIG_SYN].ok;
	note_overflow_method(k);
	k->iter_link_fd = bpf_link__fd(k->links[0]); /* dump_listeners: row 0, required */
	*out = k;
	return 0;
}

void listen_kernel_close(struct listen_kernel *k)
{
	if (!k)
		return;
	hooks_detach(k->links, NR_LHOOKS);
	listen_bpf__destroy(k->skel);
	free(k);
}

const struct probe_report *listen_kernel_report(const struct listen_kernel *k, size_t *nr)
{
	*nr = LSIG_MAX;
	return k->report;
}

bool listen_kernel_fentry(const struct listen_kernel *k)
{
	return k->fentry;
}

bool listen_kernel_syn(const struct listen_kernel *k)
{
	return k->syn;
}

struct listen_lost listen_kernel_lost(const struct listen_kernel *k)
{
	return k->skel->bss->lost;
}

/*
 * The SYN drops since the last call, by listener and client, into c->drops;
 * the map is emptied as it is read (lookup-and-delete: an increment racing
 * with the read lands in the next interval, not nowhere).
 */
static int drain_drops(struct listen_ctx *c)
{
	int fd = bpf_map__fd(c->k->skel->maps.clients);
	struct listen_client_key key, *keys = NULL;
	size_t nkeys = 0, cap = 0, i;
	struct listen_client val;
	void *prev = NULL;
	int err = 0;

	c->ndrops = 0;
	while (!bpf_map_get_next_key(fd, prev, &key)) {
		if (nkeys == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			struct listen_client_key *v = realloc(keys, ncap * sizeof(*v));

			if (!v) {
				free(keys);
				return -ENOMEM;
			}
			keys = v;
			cap = ncap;
		}
		keys[nkeys] = key;
		prev = &keys[nkeys++];
	}
	if (nkeys > c->drops_cap) {
		struct listen_drop_rec *v = realloc(c->drops, nkeys * sizeof(*v));

		if (!v) {
			free(keys);
			return -ENOMEM;
		}
		c->drops = v;
		c->drops_cap = nkeys;
	}
	for (i = 0; i < nkeys; i++) {
		struct listen_drop_rec *d = &c->drops[c->ndrops];

		if (bpf_map_lookup_and_delete_elem(fd, &keys[i], &val))
			continue; /* gone meanwhile */
		d->cookie = keys[i].cookie;
		d->family = keys[i].family;
		d->port = keys[i].port;
		memcpy(d->addr, keys[i].addr, sizeof(d->addr));
		d->accept_queue_full = val.accept_queue_full;
		d->syn_queue_full = val.syn_queue_full;
		c->ndrops++;
	}
	free(keys);
	return err;
}

static int cmp_drop_cookie(const void *a, const void *b)
{
	const struct listen_drop_rec *x = a, *y = b;

	return x->cookie < y->cookie ? -1 : x->cookie > y->cookie;
}

/* Each listener's top clients of this interval (both arrays sorted by cookie). */
static void rank_clients(struct listen_ctx *c, struct tracked *v, size_t n)
{
	size_t i, d = 0, end;

	if (c->ndrops)	/* qsort(NULL, 0, ...) is undefined (UBSan says so) */
		qsort(c->drops, c->ndrops, sizeof(*c->drops), cmp_drop_cookie);
	for (i = 0; i < n; i++) {
		struct listener *l = &v[i].l;

		l->ntop = 0;
		l->dropped_clients = 0;
		while (d < c->ndrops && c->drops[d].cookie < l->cookie)
			d++;
		for (end = d; end < c->ndrops && c->drops[end].cookie == l->cookie; end++)
			;
		if (end > d)
			l->dropped_clients = listen_rank_clients(&c->drops[d], end - d, l->top,
								 (size_t)c->top, &l->ntop);
		d = end;
	}
}

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
	if (!err)
		err = netns_read_proc(ns);
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

static void merge_record(struct listen_ctx *c, const struct listen_rec *r, struct tracked *t,
			 const struct tracked *old, const struct netns *ns)
{
	struct listener *l = &t->l;
	struct listen_stats s;
	bool have_stats;
	int map_fd = bpf_map__fd(c->k->skel->maps.listeners);

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
	l->syn_queue_max = listen_syn_queue_max(r->max_ack_backlog, ns->max_syn_backlog,
						ns->syncookies);
	l->syn_seen = c->k->syn;
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
		if (s.peak_epoch == c->k->skel->bss->peak_epoch && s.peak > l->accept_queue_peak)
			l->accept_queue_peak = s.peak;
		l->full_events_interval = old ? overflow_delta(t->prev_full_events, s.full_events) : 0;
		t->prev_full_events = s.full_events;
		l->synack_retrans = s.synack_retrans;
		l->resets_sent = s.resets_sent;
		l->syn_cookies = s.syn_cookies + s.syn_cookies_inferred;
		l->syn_cookies_inferred = s.syn_cookies_inferred > 0;
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
static void account_overflows(struct listen_ctx *c, struct tracked *v, size_t n)
{
	struct overflow_share *sh = calloc(n ? n : 1, sizeof(*sh));
	int map_fd = bpf_map__fd(c->k->skel->maps.listeners);
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
			have_stats = c->k->fentry &&
				     bpf_map_lookup_elem(map_fd, &l->cookie, &s) == 0;
			/* an entry made at listen() (it has the owner) has counted
			 * every overflow of the socket: exact from first sight */
			if (have_stats && (!t->first || s.tgid)) {
				/* a close and listen() again restarts the BPF count */
				l->overflows_interval = overflow_delta(t->prev_fentry, s.overflows);
				t->prev_fentry = s.overflows;
				l->method_interval = OVERFLOW_METHOD_FENTRY;
			} else {
				/* the sk_drops share; at first sight it covers since listen() */
				l->overflows_interval = sh[i].overflows;
				/* nothing to share: fentry's zero is the exact one */
				l->method_interval = c->k->fentry && m == OVERFLOW_METHOD_NONE
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

int listen_refresh(struct listen_ctx *c)
{
	int link_fd = c->k->iter_link_fd;
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
	err = drain_drops(c);
	if (err) {
		free(next.v);
		return err;
	}
	rank_clients(c, next.v, next.n);
	for (i = 0; i < next.n; i++)
		listen_advise(&next.v[i].l);
	resolve_owners(&next);

	/* Listeners that closed simply are not in `next`. */
	free(c->st.v);
	c->st = next;
	c->k->skel->bss->peak_epoch++; /* restart the peaks for the next interval */
	c->refresh++;
	return 0;
}
