// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * conntrace: one verdict per TCP connection attempt, from kernel tracepoints.
 *
 * Reads top to bottom: parse options, check privileges, open the correlator,
 * load and attach the BPF side (tracer.c), then drain the ring buffer on a
 * timer until SIGINT/SIGTERM, flush what is still connecting and summarise.
 */
#include <argp.h>
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
#include "kenum.h"
#include "output.h"
#include "tracer.h"

#define DRAIN_MS	10	/* the ring is drained at least this often */
#define LOSS_CHECK_NS	1000000000ULL

static struct opts {
	struct tracer_config tc;
	bool json;
	bool detail;
	bool probes;
	bool all;
	unsigned verdict_mask;	/* bit per enum ct_verdict; 0: default */
	int color;		/* -1 auto, 0 never, 1 always */
} opts = {
	.tc = {
		.slow_ns = 1000 * 1000000ULL,
		.ring_size = 1 << 20,
		.max_flows = 65536,
	},
	.color = -1,
};

const char *argp_program_version = "conntrace " CONNTRACE_VERSION;
static const char doc[] =
"Explains TCP connection failures from inside the kernel: one verdict per\n"
"outgoing connection attempt (OK, SLOW, TIMEOUT, REFUSED, UNREACHABLE,\n"
"ABANDONED) with its cause and the kernel's evidence.\n"
"\n"
"Examples:\n"
"  conntrace                      failed or slow attempts, live\n"
"  conntrace -a --port 5432       every attempt to or from port 5432\n"
"  conntrace -j > verdicts.jsonl  JSON Lines for a log pipeline\n"
"  conntrace --verdict timeout,refused -d   only those, with the detail\n"
"  conntrace -p 1234              attempts made by process 1234\n"
"  conntrace --probes             which kernel hooks this kernel allows\n"
"  conntrace listen               accept-queue view of every listener\n";

enum {
	OPT_PORT = 1000, OPT_VERDICT, OPT_SLOW, OPT_PROBES, OPT_RING_SIZE, OPT_MAX_FLOWS,
	OPT_COLOR,
};

static const struct argp_option options[] = {
	{ NULL, 0, NULL, 0, "Which attempts:", 1 },
	{ "all", 'a', NULL, 0, "Also print OK verdicts", 1 },
	{ "pid", 'p', "PID", 0, "Only attempts made by this process", 1 },
	{ "port", OPT_PORT, "PORT", 0, "Only attempts with this port at either end", 1 },
	{ "verdict", OPT_VERDICT, "LIST", 0,
	  "Only these verdicts, comma-separated: ok,slow,timeout,refused,unreachable,"
	  "abandoned,pending", 1 },
	{ "slow", OPT_SLOW, "MS", 0, "An established attempt slower than MS is SLOW "
	  "(default 1000; 0: only retransmits make SLOW)", 1 },
	{ NULL, 0, NULL, 0, "Output:", 2 },
	{ "json", 'j', NULL, 0, "JSON Lines: a start record, one verdict per line, a summary", 2 },
	{ "detail", 'd', NULL, 0, "Text: the one-sentence detail under each verdict", 2 },
	{ "color", OPT_COLOR, "WHEN", 0, "Colour the verdicts: auto (a terminal), always, never", 2 },
	{ NULL, 0, NULL, 0, "Kernel:", 3 },
	{ "probes", OPT_PROBES, NULL, 0, "Load and attach, print the hook used for each "
	  "signal or why none is available, and exit", 3 },
	{ "ring-size", OPT_RING_SIZE, "BYTES", 0, "Ring buffer size, a power of two from 4K "
	  "to 1G (K, M, G suffixes; default 1M)", 3 },
	{ "max-flows", OPT_MAX_FLOWS, "N", 0, "Connection attempts tracked at once in the "
	  "kernel (default 65536); beyond, the oldest are evicted and counted", 3 },
	{ "verbose", 'v', NULL, 0, "libbpf's messages (verifier log on failure)", 3 },
	{ NULL, 0, NULL, 0, "Other:", -1 },
	{},
};

static void usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("conntrace: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(" (see --help)\n", stderr);
	exit(2);
}

/* A whole decimal number in [min, max], or a usage error naming the option. */
static unsigned long long parse_num(const char *opt, const char *arg, unsigned long long min,
				    unsigned long long max, const char *unit)
{
	unsigned long long v;
	char *end;

	errno = 0;
	if (!arg || !*arg || *arg == '-' || *arg == '+')
		usage_error("%s: '%s' is not a number of %s", opt, arg ? arg : "", unit);
	v = strtoull(arg, &end, 10);
	if (*end)
		usage_error("%s: '%s' is not a number of %s", opt, arg, unit);
	if (errno == ERANGE || v < min || v > max)
		usage_error("%s: %s is out of range (%llu to %llu %s)", opt, arg, min, max, unit);
	return v;
}

static unsigned long long parse_size(const char *opt, const char *arg)
{
	unsigned long long v, mult = 1;
	char *end;

	errno = 0;
	if (!*arg || *arg == '-' || *arg == '+')
		usage_error("%s: '%s' is not a size", opt, arg);
	v = strtoull(arg, &end, 10);
	if (end == arg)
		usage_error("%s: '%s' is not a size", opt, arg);
	if (*end == 'K' || *end == 'k')
		mult = 1ULL << 10, end++;
	else if (*end == 'M' || *end == 'm')
		mult = 1ULL << 20, end++;
	else if (*end == 'G' || *end == 'g')
		mult = 1ULL << 30, end++;
	if (*end || errno == ERANGE || v > (1ULL << 30) / mult)
		usage_error("%s: '%s' is not a size from 4K to 1G", opt, arg);
	v *= mult;
	if (v < 4096 || v > (1ULL << 30) || (v & (v - 1)))
		usage_error("%s: %s is not a power of two from 4K to 1G", opt, arg);
	return v;
}

static unsigned parse_verdicts(const char *arg)
{
	char *copy = strdup(arg), *save = NULL, *tok;
	unsigned mask = 0;

	if (!copy)
		usage_error("out of memory");
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		int v = ct_verdict_parse(tok);

		if (v < 0)
			usage_error("--verdict: unknown verdict '%s' (ok, slow, timeout, refused, "
				    "unreachable, abandoned, pending)", tok);
		mask |= 1u << v;
	}
	free(copy);
	if (!mask)
		usage_error("--verdict: empty list");
	return mask;
}

static error_t parse_opt(int key, char *arg, struct argp_state *state)
{
	switch (key) {
	case 'a':
		opts.all = true;
		break;
	case 'p':
		opts.tc.tgid = parse_num("--pid", arg, 1, 4194304, "a process id");
		break;
	case OPT_PORT:
		opts.tc.port = parse_num("--port", arg, 1, 65535, "a port");
		break;
	case OPT_VERDICT:
		opts.verdict_mask = parse_verdicts(arg);
		break;
	case OPT_SLOW:
		opts.tc.slow_ns = parse_num("--slow", arg, 0, 3600000, "milliseconds") * 1000000ULL;
		break;
	case 'j':
		opts.json = true;
		break;
	case 'd':
		opts.detail = true;
		break;
	case OPT_COLOR:
		if (!strcmp(arg, "auto"))
			opts.color = -1;
		else if (!strcmp(arg, "always"))
			opts.color = 1;
		else if (!strcmp(arg, "never"))
			opts.color = 0;
		else
			usage_error("--color: '%s' is not auto, always or never", arg);
		break;
	case OPT_PROBES:
		opts.probes = true;
		break;
	case OPT_RING_SIZE:
		opts.tc.ring_size = parse_size("--ring-size", arg);
		break;
	case OPT_MAX_FLOWS:
		opts.tc.max_flows = parse_num("--max-flows", arg, 1024, 1 << 24, "flows");
		break;
	case 'v':
		opts.tc.verbose = true;
		break;
	case ARGP_KEY_ARG:
		usage_error("unexpected argument '%s'", arg);
	default:
		return ARGP_ERR_UNKNOWN;
	}
	(void)state;
	return 0;
}

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
	static const struct argp argp = { options, parse_opt, NULL, doc, NULL, NULL, NULL };
	struct tracer *t = NULL;
	struct app a = { 0 };
	struct utsname uts;
	uint64_t cnt[CT_CNT_MAX] = { 0 }, last_lost = 0, last_evicted = 0;
	uint64_t start_boot, last_check, last_check_real;
	char errmsg[256];
	const char *priv;
	int err, nr;
	struct corr_config cc = { 0 };

	argp_err_exit_status = 2;
	argp_parse(&argp, argc, argv, 0, NULL, NULL);

	a.verdict_mask = opts.verdict_mask;
	if (!a.verdict_mask) {
		a.verdict_mask = ~0u & ~(1u << CT_V_OK);
		if (opts.all)
			a.verdict_mask |= 1u << CT_V_OK;
	}
	opts.tc.emit_ok = a.verdict_mask & (1u << CT_V_OK);

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
