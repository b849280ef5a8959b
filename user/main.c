// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * conntrace: one verdict per TCP connection attempt, from kernel tracepoints.
 *
 * Reads top to bottom: parse options, check privileges, open the correlator,
 * load and attach the BPF side (tracer.c), then drain the ring buffer on a
 * timer until SIGINT/SIGTERM, flush what is still connecting and summarise.
 */
#include <errno.h>
#include <limits.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>
#include <linux/capability.h>
#include "correlate.h"
#include "options.h"
#include "overflow.h"
#include "kenum.h"
#include "listen.h"
#include "output.h"
#include "tracer.h"

#define DRAIN_MS	10	/* the ring is drained at least this often */
#define LOSS_CHECK_NS	1000000000ULL

static struct ct_options opts;

static volatile sig_atomic_t exiting;

/*
 * Whether stdout is a pipe or socket whose reader has gone (`conntrace | head
 * -1`): checked on every drain, so conntrace ends at once rather than at its
 * next write, which may be long in coming when nothing fails.
 */
static bool reader_gone(void)
{
	struct pollfd p = { .fd = STDOUT_FILENO, .events = 0 };
	static int is_pipe = -1;
	struct stat st;

	if (is_pipe < 0)
		is_pipe = !fstat(STDOUT_FILENO, &st) && (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode));
	return is_pipe && poll(&p, 1, 0) == 1 && (p.revents & (POLLERR | POLLHUP));
}

/* Drops to an unprivileged user after the BPF side is set up: the ring buffer
 * and the maps stay usable through the file descriptors already open. */
static int drop_privileges(const char *user, char *errmsg, size_t errsz)
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

static void on_signal(int sig)
{
	(void)sig;
	exiting = 1;
}

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

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

struct app {
	struct correlator *corr;
	struct overflow_table *overflows;
	struct writer w;
	int64_t boot_to_real;	/* add to a CLOCK_BOOTTIME stamp for wall time */
	unsigned verdict_mask;
};

static int on_record(void *ctx, void *data, size_t len)
{
	struct app *a = ctx;

	/* malformed records are counted by the correlator and reported */
	corr_feed(a->corr, data, len, clock_ns(CLOCK_BOOTTIME));
	return 0;
}

static void on_verdict(const struct ct_result *r, void *ctx)
{
	struct app *a = ctx;
	const struct ct_flow *f = &r->flow;

	if (!(a->verdict_mask & (1u << r->verdict)))
		return;
	/* the kernel filters too; evicted flows have no owner to filter on */
	if (opts.tc.tgid && f->tgid != opts.tc.tgid)
		return;
	if (opts.tc.port && f->sport != opts.tc.port && f->dport != opts.tc.port)
		return;
	a->w.ops->verdict(&a->w, r, f->ts_end + a->boot_to_real);
}

/*
 * A listener dropped SYNs on its full queue: say so (at most once a reading,
 * so once a second), and tell the correlator it was full over the interval so
 * the flows that lost SYNs to it get accept_queue_full.
 */
static void on_listener(void *ctx, const struct ct_listener *l)
{
	struct app *a = ctx;
	struct overflow_report r;
	struct ct_evidence e = {
		.type = CT_REC_LISTEN_FULL,
		.family = l->family,
		.sport = l->port,
		.netns = l->netns,
		.queue_max = l->queue_max,
	};

	if (!overflow_update(a->overflows, l, &r))
		return;
	memcpy(e.saddr, l->addr, sizeof(e.saddr));
	e.ts = r.since_ns;
	e.queue = l->queue_max + 1;	/* full since the previous reading at least */
	corr_feed(a->corr, &e, sizeof(e), r.since_ns);
	if (l->queue <= l->queue_max) {
		e.ts = clock_ns(CLOCK_BOOTTIME);
		e.queue = l->queue;	/* and drained by now */
		corr_feed(a->corr, &e, sizeof(e), e.ts);
	}
	if (opts.tc.tgid || (opts.tc.port && l->port != opts.tc.port))
		return;	/* a listener's owner is not known here */
	a->w.ops->listen_overflow(&a->w, &r, clock_ns(CLOCK_BOOTTIME) + a->boot_to_real,
				  r.since_ns + a->boot_to_real);
}

static void print_probes(const struct probe_report *rep, int nr)
{
	printf("%-15s %-48s %s\n", "SIGNAL", "HOOK", "NOTE");
	for (int i = 0; i < nr; i++)
		printf("%-15s %-48s %s\n", rep[i].signal, rep[i].ok ? rep[i].hook : "(none)",
		       rep[i].note);
}

int main(int argc, char **argv)
{
	struct tracer *t = NULL;
	struct app a = { 0 };
	struct utsname uts;
	uint64_t cnt[CT_CNT_MAX] = { 0 }, last_lost = 0, last_evicted = 0;
	uint64_t start_boot, last_check, last_check_real;
	char errmsg[256];
	const char *priv;
	bool reader_left = false;
	int err, nr;
	struct corr_config cc = { 0 };

	if (argc > 1 && !strcmp(argv[1], "listen"))
		return listen_main(argc - 1, argv + 1);
	if (ct_options_parse(&opts, argc, argv, errmsg, sizeof(errmsg))) {
		fprintf(stderr, "conntrace: %s (see --help)\n", errmsg);
		return 2;
	}
	a.verdict_mask = opts.verdict_mask;

	priv = missing_privilege();
	if (priv) {
		fprintf(stderr, "conntrace: needs %s: run as root (sudo), or grant CAP_BPF and "
			"CAP_PERFMON\n", priv);
		return 1;
	}
	if (access("/sys/kernel/btf/vmlinux", R_OK)) {
		fprintf(stderr, "conntrace: this kernel has no BTF (/sys/kernel/btf/vmlinux: %s); "
			"it needs CONFIG_DEBUG_INFO_BTF=y\n", strerror(errno));
		return 1;
	}

	cc.slow_ns = opts.tc.slow_ns;
	cc.emit = on_verdict;
	cc.emit_ctx = &a;
	a.corr = corr_new(&cc);
	if (!a.corr) {
		fprintf(stderr, "conntrace: correlator: %s\n", strerror(errno));
		return 1;
	}
	err = tracer_open(&t, &opts.tc, on_record, &a, errmsg, sizeof(errmsg));
	if (err) {
		fprintf(stderr, "conntrace: %s\n", errmsg);
		corr_free(a.corr);
		return 1;
	}
	if (opts.probes) {
		const struct probe_report *rep = tracer_report(t, &nr);

		print_probes(rep, nr);
		tracer_close(t);
		corr_free(a.corr);
		return 0;
	}
	/* names from this kernel's BTF, now that the tracer has loaded it */
	corr_free(a.corr);
	cc.drop_reason_name = kenum_name;
	cc.drop_names = tracer_drop_names(t);
	cc.rst_reason_name = kenum_name;
	cc.rst_names = tracer_rst_names(t);
	a.corr = corr_new(&cc);
	if (!a.corr) {
		fprintf(stderr, "conntrace: correlator: %s\n", strerror(errno));
		tracer_close(t);
		return 1;
	}

	if (opts.user && drop_privileges(opts.user, errmsg, sizeof(errmsg))) {
		fprintf(stderr, "conntrace: %s\n", errmsg);
		tracer_close(t);
		corr_free(a.corr);
		return 1;
	}
	a.overflows = overflow_new();
	if (!a.overflows) {
		fprintf(stderr, "conntrace: out of memory\n");
		tracer_close(t);
		corr_free(a.corr);
		return 1;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	if (opts.json)
		writer_json_init(&a.w, stdout);
	else
		writer_text_init(&a.w, stdout, opts.color < 0 ? isatty(STDOUT_FILENO) &&
				 !getenv("NO_COLOR") : opts.color, opts.detail);

	start_boot = clock_ns(CLOCK_BOOTTIME);
	a.boot_to_real = (int64_t)clock_ns(CLOCK_REALTIME) - (int64_t)start_boot;
	uname(&uts);
	{
		struct start_info si = {
			.version = CONNTRACE_VERSION,
			.kernel = uts.release,
			.pid = getpid(),
			.ts_real_ns = start_boot + a.boot_to_real,
		};

		si.probes = tracer_report(t, &si.nr_probes);
		a.w.ops->start(&a.w, &si);
		fflush(stdout);
	}

	last_check = start_boot;
	last_check_real = start_boot + a.boot_to_real;
	while (!exiting) {
		uint64_t now;

		err = tracer_poll(t, DRAIN_MS);
		if (err < 0 && err != -EINTR) {
			fprintf(stderr, "conntrace: ringbuf: polling failed: %s\n", strerror(-err));
			break;
		}
		now = clock_ns(CLOCK_BOOTTIME);
		corr_tick(a.corr, now);
		if (now - last_check >= LOSS_CHECK_NS) {
			overflow_begin(a.overflows, now);
			if (!tracer_listeners(t, on_listener, &a))
				overflow_end(a.overflows);
		}
		if (now - last_check >= LOSS_CHECK_NS && !tracer_counters(t, cnt)) {
			if (cnt[CT_CNT_RINGBUF_LOST] != last_lost ||
			    cnt[CT_CNT_FLOW_EVICTED] != last_evicted) {
				struct loss_info li = {
					.lost_records = cnt[CT_CNT_RINGBUF_LOST],
					.flow_evictions = cnt[CT_CNT_FLOW_EVICTED],
					.new_lost = cnt[CT_CNT_RINGBUF_LOST] - last_lost,
					.new_evictions = cnt[CT_CNT_FLOW_EVICTED] - last_evicted,
					.since_real_ns = last_check_real,
					.ts_real_ns = now + a.boot_to_real,
				};

				a.w.ops->loss(&a.w, &li);
				last_lost = cnt[CT_CNT_RINGBUF_LOST];
				last_evicted = cnt[CT_CNT_FLOW_EVICTED];
			}
			last_check = now;
			last_check_real = now + a.boot_to_real;
		}
		if ((fflush(stdout) && ferror(stdout)) || reader_gone()) {
			reader_left = true;	/* nobody to summarise for */
			break;
		}
	}

	if (reader_left)
		goto out;
	/* what is left in the ring, then the attempts still connecting */
	tracer_poll(t, 0);
	{
		uint64_t now = clock_ns(CLOCK_BOOTTIME);
		struct summary_info si = { 0 };

		tracer_dump_pending(t, now);
		corr_flush(a.corr);
		tracer_counters(t, cnt);
		si.stats = corr_stats(a.corr);
		si.lost_records = cnt[CT_CNT_RINGBUF_LOST];
		si.flow_evictions = cnt[CT_CNT_FLOW_EVICTED];
		si.flow_nospace = cnt[CT_CNT_FLOW_NOSPACE];
		si.flows_untracked = cnt[CT_CNT_FLOW_UNTRACKED];
		si.flows = cnt[CT_CNT_FLOWS];
		si.duration_s = (now - start_boot) / 1e9;
		si.ts_real_ns = now + a.boot_to_real;
		a.w.ops->summary(&a.w, &si);
		fflush(stdout);
	}
out:
	tracer_close(t);
	corr_free(a.corr);
	overflow_free(a.overflows);
	return 0;
}
