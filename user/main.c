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
#include "version.h"
#include "options.h"
#include "overflow.h"
#include "kenum.h"
#include "listen.h"
#include "metrics.h"
#include "output.h"
#include "sink.h"
#include "tracer.h"

#define DRAIN_MS	10	/* the ring is drained at least this often */
#define LOSS_CHECK_NS	1000000000ULL

static struct ct_options opts;

static volatile sig_atomic_t exiting, reopen;

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

static void on_hup(int sig)
{
	(void)sig;
	reopen = 1;
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
	uint64_t verdicts[CT_V_MAX];	/* after -p/--port, before --verdict */
	struct overflow_table *overflows;
	struct writer w;
	int64_t boot_to_real;	/* add to a CLOCK_BOOTTIME stamp for wall time */
	unsigned verdict_mask;
	/* export: the output file and the metrics (NULL when not asked for) */
	FILE *out;
	struct sink *sink;
	struct metrics *metrics;
	/* what the last `lost` record that reached the output covered */
	uint64_t lost, evicted, out_lost, missed, since_real_ns;
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

	/* the kernel filters too; evicted flows have no owner to filter on */
	if (opts.tc.tgid && f->pid != opts.tc.tgid)
		return;
	if (opts.tc.port && f->sport != opts.tc.port && f->dport != opts.tc.port)
		return;
	a->verdicts[r->verdict]++;	/* the summary counts what the filters let through */
	metrics_verdict(a->metrics, r);	/* export: every verdict, printed or not */
	if (!(a->verdict_mask & (1u << r->verdict)))
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
	struct overflow_report r = { 0 };
	bool dropped = overflow_update(a->overflows, l, &r);
	uint64_t now = clock_ns(CLOCK_BOOTTIME);
	struct corr_listener cl = {
		.netns = l->netns,
		.family = l->family,
		.port = l->port,
		.queue = l->queue,
		.queue_max = l->queue_max,
		.overflows = r.overflows,
		.since = r.since_ns,
		.until = now,
	};

	/* export: every listener of the reading to the metrics, dropping or not */
	if (r.l && a->metrics && !opts.tc.tgid && (!opts.tc.port || l->port == opts.tc.port)) {
		struct metrics_listener ml = {
			.netns = l->netns, .lport = l->port, .overflows = r.total,
			.accept_queue = l->queue, .accept_queue_max = l->queue_max,
		};

		fmt_addr(ml.laddr, sizeof(ml.laddr), l->family, l->addr);
		metrics_listener_add(a->metrics, &ml);
	}
	if (!dropped)
		return;
	memcpy(cl.addr, l->addr, sizeof(cl.addr));
	corr_listener_full(a->corr, &cl, now);
	if (opts.tc.tgid || (opts.tc.port && l->port != opts.tc.port))
		return;	/* a listener's owner is not known here */
	a->w.ops->listen_overflow(&a->w, &r, now + a->boot_to_real,
				  r.since_ns + a->boot_to_real);
}

/*
 * export: the kernel's loss counters and the output file's, to the metrics
 * and, when one of them moved, as a `lost` record. A lost record that the
 * output could not take is lost itself: the next one covers its interval.
 */
static void report_loss(struct app *a, const uint64_t cnt[CT_CNT_MAX], uint64_t missed,
			uint64_t now_real)
{
	struct sink_stats ss;
	struct loss_info li = {
		.lost_records = cnt[CT_CNT_RINGBUF_LOST],
		.flow_evictions = cnt[CT_CNT_FLOW_EVICTED],
		.new_lost = cnt[CT_CNT_RINGBUF_LOST] - a->lost,
		.new_evictions = cnt[CT_CNT_FLOW_EVICTED] - a->evicted,
		.since_real_ns = a->since_real_ns,
		.ts_real_ns = now_real,
	};

	sink_get_stats(a->sink, &ss);
	metrics_kernel_counters(a->metrics, li.lost_records, li.flow_evictions);
	metrics_output_counters(a->metrics, ss.write_errors, ss.lines_lost);
	li.output_lost = ss.lines_lost;
	li.new_output_lost = ss.lines_lost - a->out_lost;
	li.missed = missed;
	li.new_missed = missed - a->missed;
	if (li.new_lost || li.new_evictions || li.new_output_lost || li.new_missed) {
		a->w.ops->loss(&a->w, &li);
		fflush(a->out);
		sink_get_stats(a->sink, &ss);
		if (ss.lines_lost != li.output_lost)
			return;
	}
	a->lost = li.lost_records;
	a->evicted = li.flow_evictions;
	a->out_lost = li.output_lost;
	a->missed = li.missed;
	a->since_real_ns = now_real;
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
	uint64_t cnt[CT_CNT_MAX] = { 0 };
	uint64_t start_boot, last_check;
	char errmsg[256];
	const char *priv;
	bool reader_left = false;
	int err, nr, rc = 1;
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

	/* a bad --output or --metrics is a bad command line, found before the
	 * kernel side is set up */
	a.out = stdout;
	if (!opts.probes && opts.output[0]) {
		struct sink_config sc = { .path = opts.output, .rotate_size = opts.rotate_size,
					  .rotate_keep = opts.rotate_keep };

		if (sink_open(&a.sink, &sc, errmsg, sizeof(errmsg))) {
			fprintf(stderr, "conntrace: %s\n", errmsg);
			rc = 2;
			goto cleanup;
		}
		a.out = sink_stream(a.sink);
	}
	if (!opts.probes && opts.metrics) {
		a.metrics = metrics_new();
		if (!a.metrics) {
			fprintf(stderr, "conntrace: metrics: %s\n", strerror(errno));
			goto cleanup;
		}
		if (metrics_bind(a.metrics, (struct sockaddr *)&opts.metrics_addr,
				 opts.metrics_addrlen, errmsg, sizeof(errmsg))) {
			fprintf(stderr, "conntrace: %s\n", errmsg);
			rc = 2;
			goto cleanup;
		}
	}

	err = tracer_open(&t, &opts.tc, on_record, &a, errmsg, sizeof(errmsg));
	if (err) {
		fprintf(stderr, "conntrace: %s\n", errmsg);
		goto cleanup;
	}
	if (opts.probes) {
		const struct probe_report *rep = tracer_report(t, &nr);

		print_probes(rep, nr);
		rc = 0;
		goto cleanup;
	}
	/* records reach the correlator only from tracer_poll(), below */
	cc.slow_ns = opts.tc.slow_ns;
	cc.emit = on_verdict;
	cc.emit_ctx = &a;
	cc.drop_reason_name = kenum_name;	/* names from this kernel's BTF */
	cc.drop_names = tracer_drop_names(t);
	cc.rst_reason_name = kenum_name;
	cc.rst_names = tracer_rst_names(t);
	a.corr = corr_new(&cc);
	a.overflows = overflow_new();
	if (!a.corr || !a.overflows) {
		fprintf(stderr, "conntrace: correlator: out of memory\n");
		goto cleanup;
	}
	if (opts.user && drop_privileges(opts.user, errmsg, sizeof(errmsg))) {
		fprintf(stderr, "conntrace: %s\n", errmsg);
		goto cleanup;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	if (a.sink)
		signal(SIGHUP, on_hup);	/* logrotate moved the file: reopen it */
	if (opts.json)
		writer_json_init(&a.w, a.out);
	else	/* a file (a.sink) is never a terminal */
		writer_text_init(&a.w, a.out, opts.color < 0 ? !a.sink && isatty(STDOUT_FILENO) &&
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
		fflush(a.out);
		/* export: the server starts once the hooks are known */
		metrics_build_info(a.metrics, si.version, si.kernel, si.probes, si.nr_probes);
		if (metrics_start(a.metrics, errmsg, sizeof(errmsg))) {
			fprintf(stderr, "conntrace: %s\n", errmsg);
			goto cleanup;
		}
	}

	last_check = start_boot;
	a.since_real_ns = start_boot + a.boot_to_real;
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
			metrics_listeners_begin(a.metrics);
			if (!tracer_listeners(t, on_listener, &a)) {
				overflow_end(a.overflows);
				metrics_listeners_end(a.metrics);
			}
		}
		if (now - last_check >= LOSS_CHECK_NS && !tracer_counters(t, cnt)) {
			report_loss(&a, cnt, tracer_missed(t), now + a.boot_to_real);
			last_check = now;
		}
		if ((fflush(a.out) && ferror(a.out)) || (!a.sink && reader_gone())) {
			reader_left = true;	/* nobody to summarise for */
			break;
		}
		if (reopen) {	/* export: SIGHUP */
			reopen = 0;
			sink_reopen(a.sink);
		}
	}

	rc = 0;
	if (reader_left)
		goto cleanup;
	/* what is left in the ring, then the attempts still connecting */
	tracer_poll(t, 0);
	{
		uint64_t now = clock_ns(CLOCK_BOOTTIME);
		struct summary_info si = { 0 };
		struct sink_stats ss;

		tracer_dump_pending(t, now);
		corr_flush(a.corr);
		tracer_counters(t, cnt);
		si.stats = corr_stats(a.corr);
		si.verdicts = a.verdicts;
		si.lost_records = cnt[CT_CNT_RINGBUF_LOST];
		si.flow_evictions = cnt[CT_CNT_FLOW_EVICTED];
		si.flow_nospace = cnt[CT_CNT_FLOW_NOSPACE];
		si.flows_untracked = cnt[CT_CNT_FLOW_UNTRACKED];
		si.missed_events = tracer_missed(t);
		si.flows = cnt[CT_CNT_FLOWS];
		si.duration_s = (now - start_boot) / 1e9;
		si.ts_real_ns = now + a.boot_to_real;
		sink_get_stats(a.sink, &ss);
		si.output_write_errors = ss.write_errors;
		si.output_records_lost = ss.lines_lost;
		a.w.ops->summary(&a.w, &si);
		fflush(a.out);
	}
cleanup:
	metrics_free(a.metrics);	/* stops its thread before the state it reads goes */
	overflow_free(a.overflows);
	corr_free(a.corr);
	tracer_close(t);
	sink_close(a.sink);
	return rc;
}
