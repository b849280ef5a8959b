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
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>
#include <linux/capability.h>
#include "correlate.h"
#include "options.h"
#include "kenum.h"
#include "output.h"
#include "tracer.h"

#define DRAIN_MS	10	/* the ring is drained at least this often */
#define LOSS_CHECK_NS	1000000000ULL

static struct ct_options opts;

static volatile sig_atomic_t exiting;

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
	int err, nr;
	struct corr_config cc = { 0 };

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
		if (fflush(stdout) && ferror(stdout))
			break;	/* the reader went away */
	}

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
	tracer_close(t);
	corr_free(a.corr);
	return 0;
}
