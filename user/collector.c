// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The collector (conntrace without a subcommand), top to bottom: privileges,
 * the output and the metrics server (a bad one is a bad command line), the
 * BPF side (tracer.c) and the correlator, signals and the privilege drop,
 * then the ring drained on a timer until a stop signal. Stopping detaches
 * the programs first, so nothing new starts, drains the ring to its end,
 * and only then flushes the flows still connecting and writes the summary:
 * each attempt gets exactly one line.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>
#include "cgroup.h"
#include "collector.h"
#include "correlate.h"
#include "counts.h"
#include "established.h"
#include "kconfig.h"
#include "kenum.h"
#include "metrics.h"
#include "nscounters.h"
#include "outfd.h"
#include "output.h"
#include "filter.h"
#include "inbound.h"
#include "overflow.h"
#include "privileges.h"
#include "service.h"
#include "sink.h"
#include "tracer.h"
#include "version.h"

#define DRAIN_MS	10	/* the ring is drained at least this often */
#define LOSS_CHECK_NS	1000000000ULL
#define STOP_GRACE_MS	1000	/* after a stop signal, how long stdout may block */

/* Set by the handlers; process-wide like the signals themselves. */
static volatile sig_atomic_t exiting, reopen;

struct collector {
	const struct ct_options *o;
	struct tracer *t;
	struct correlator *corr;
	struct estab_config estab;	/* established connections (established.c) */
	struct inbound *inb;		/* incoming attempts (--direction in, both) */
	struct overflow_table *overflows;
	struct writer w;
	/* the output: the -o file (sink) or standard output (so) */
	FILE *out;
	struct sink *sink;
	struct outfd *so;
	struct metrics *metrics;	/* NULL without --metrics */
	/* attempts by verdict after -p/--port, before --verdict, however counted */
	struct ct_counts counts;
	struct cg_cache *cg;		/* cgroup ids to paths, units, containers, pods */
	uint64_t est_verdicts[CT_V_MAX];	/* established connections' verdicts, likewise */
	/*
	 * Incoming attempts' verdicts, also in counts.delivered: the kernel counts
	 * only outgoing attempts (CT_CNT_FLOWS); an incoming one is an attempt from
	 * its first SYN's record on (inbound.c), so it adds to flows here.
	 */
	uint64_t in_verdicts[CT_V_MAX];
	uint64_t est_dropped;		/* ... of them not written: the --buffer was full */
	/* add to a CLOCK_BOOTTIME stamp for wall time; taken again for every
	 * batch of records, so that a step of the wall clock (NTP) is followed */
	int64_t boot_to_real_ns;
	bool clock_stale;	/* a new batch: take the offset again when used */
	uint64_t start_boot, last_check;
	bool reader_left;
	/* what the last `lost` record that reached the output covered */
	uint64_t lost, evicted, out_lost, missed, since_real_ns;
	uint64_t lost_v[CT_V_MAX], dropped;
	collector_verdict_fn verdict_fn;	/* conntrace check */
	void *verdict_ctx;
};

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/*
 * The wall clock's offset from CLOCK_BOOTTIME (BPF's stamps). Read once per
 * batch, when its first record is written (after the poll woke for it):
 * two vDSO calls per batch, and a clock step shows from the next record.
 */
static int64_t boot_to_real(struct collector *c)
{
	if (c->clock_stale) {
		c->boot_to_real_ns = (int64_t)clock_ns(CLOCK_REALTIME) -
				     (int64_t)clock_ns(CLOCK_BOOTTIME);
		c->clock_stale = false;
	}
	return c->boot_to_real_ns;
}

/* ------------------------------------------------------------------------
 * From the ring to the output. */

static void on_verdict(const struct ct_result *r, void *ctx);

static int on_record(void *ctx, void *data, size_t len)
{
	struct collector *c = ctx;
	struct ct_result r;

	/* an established connection's record is a verdict by itself */
	if (len && *(const __u8 *)data == CT_REC_ESTAB &&
	    !estab_result(&r, data, len, &c->estab)) {
		on_verdict(&r, c);
		return 0;
	}
	/* malformed records are counted by the correlator and reported */
	if (len && *(const __u8 *)data == CT_REC_INBOUND)
		inbound_feed(c->inb, data, len, clock_ns(CLOCK_BOOTTIME));
	else
		corr_feed(c->corr, data, len, clock_ns(CLOCK_BOOTTIME));
	return 0;
}

static void on_verdict(const struct ct_result *r, void *ctx)
{
	struct collector *c = ctx;
	const struct ct_flow *f = &r->flow;

	if (!filter_flow_wanted(&c->o->tc, r) || !(c->o->phase_mask & (1u << r->phase)))
		return;
	/* an established connection's owner is known (and judged) only when it reset it */
	if (r->phase == CT_PHASE_ESTABLISHED && filter_owner_filtered(&c->o->tc) && !r->est.owner)
		return;
	/* the summary counts what the filters let through; an established
	 * connection's death is not a connect attempt: apart, out of flows' sum */
	if (r->phase == CT_PHASE_ESTABLISHED)
		c->est_verdicts[r->verdict]++;
	else
		c->counts.delivered[r->verdict]++;
	if (r->phase != CT_PHASE_ESTABLISHED && r->inbound)
		c->in_verdicts[r->verdict]++;
	metrics_verdict(c->metrics, r);	/* export: every verdict, printed or not */
	if (c->verdict_fn)
		c->verdict_fn(r, c->verdict_ctx);
	if (!(c->o->verdict_mask & (1u << r->verdict)))
		return;
	/* a reader that stalls: the lines wait in the buffer, up to its bound */
	if (outfd_queued(c->so) >= c->o->buffer_size) {
		if (r->phase == CT_PHASE_ESTABLISHED)
			c->est_dropped++;	/* not an attempt: in the loss total only */
		else
			c->counts.dropped[r->verdict]++;
		return;
	}
	c->w.cg = f->flags & CT_F_NO_HISTORY || r->inbound ? NULL : cg_cache_get(c->cg, f->cgroup_id);
	c->w.ops->verdict(&c->w, r, f->ts_end + boot_to_real(c));
}

/*
 * A listener of a reading, with its overflows counted (overflow_end()): say
 * so when it dropped SYNs on its full queue (at most once a reading, so once a
 * second), and tell the correlator it was full over the interval so the flows
 * that lost SYNs to it get accept_queue_full.
 */
static void on_overflow(void *ctx, const struct overflow_report *r)
{
	struct collector *c = ctx;
	const struct ct_listener *l = r->l;
	uint64_t now = clock_ns(CLOCK_BOOTTIME);
	struct corr_listener cl = {
		.netns = l->netns,
		.family = l->family,
		.port = l->port,
		.queue = l->queue,
		.queue_max = l->queue_max,
		.overflows = r->overflows,
		.since = r->since_ns,
		.until = now,
	};

	/* export: every listener of the reading to the metrics, dropping or not */
	if (c->metrics && filter_listener_wanted(&c->o->tc, l)) {
		struct metrics_listener ml = {
			.netns = l->netns, .lport = l->port, .overflows = r->total,
			.accept_queue = l->queue, .accept_queue_max = l->queue_max,
		};

		fmt_addr(ml.laddr, sizeof(ml.laddr), l->family, l->addr);
		metrics_listener_add(c->metrics, &ml);
	}
	/* with no overflows too: a queue read drained ends a full period */
	memcpy(cl.addr, l->addr, sizeof(cl.addr));
	corr_listener_full(c->corr, &cl, now);
	if (!r->overflows || !filter_listener_wanted(&c->o->tc, l))
		return;
	c->w.ops->listen_overflow(&c->w, r, now + boot_to_real(c), r->since_ns + boot_to_real(c));
}

/*
 * A listener found full, from the kernel's list: its sk_drops increment is
 * counted against its namespace's ListenOverflows and ListenDrops once the
 * whole list is read (overflow_end(), which calls on_overflow()), since a
 * SYN dropped on a full SYN queue moves sk_drops too.
 */
static void on_listener(void *ctx, const struct ct_listener *l)
{
	struct collector *c = ctx;

	overflow_add(c->overflows, l);	/* out of memory: read again in a second */
}

/* The overflow table, with the namespaces' counters read from now on. */
static struct overflow_table *new_overflow_table(struct collector *c)
{
	struct overflow_ops ops = {
		.ns_counters = nscounters_read,
		.ns_free = nscounters_free,
		.ns_ctx = nscounters_open(),	/* NULL: sk_drops, unchecked */
		.report = on_overflow,
		.report_ctx = c,
	};

	return overflow_new(&ops);
}

/*
 * export: the kernel's loss counters and the output file's, to the metrics
 * and, when one of them moved, as a `lost` record. A lost record that the
 * output could not take is lost itself: the next one covers its interval.
 */
static void report_loss(struct collector *c, const uint64_t cnt[CT_CNT_MAX], uint64_t missed,
			uint64_t now_real)
{
	struct sink_stats ss;
	uint64_t new_lost_v[CT_V_MAX], dropped = 0;
	struct loss_info li = {
		.lost_records = cnt[CT_CNT_RINGBUF_LOST],
		.flow_evictions = cnt[CT_CNT_FLOW_EVICTED],
		.new_lost = cnt[CT_CNT_RINGBUF_LOST] - c->lost,
		.new_evictions = cnt[CT_CNT_FLOW_EVICTED] - c->evicted,
		.since_real_ns = c->since_real_ns,
		.ts_real_ns = now_real,
	};

	counts_from_kernel(&c->counts, cnt);
	for (int v = 0; v < CT_V_MAX; v++) {
		new_lost_v[v] = c->counts.lost[v] - c->lost_v[v];
		dropped += c->counts.dropped[v];
	}
	li.new_lost_by_verdict = new_lost_v;
	dropped += c->est_dropped;
	li.buffer_dropped = dropped;
	li.new_buffer_dropped = dropped - c->dropped;
	sink_get_stats(c->sink, &ss);
	metrics_kernel_counters(c->metrics, li.lost_records, li.flow_evictions);
	metrics_kernel_verdicts(c->metrics, c->counts.lost, c->counts.ok_unsent);
	if (c->metrics) {
		uint64_t okh[CT_OKH_MAX];

		if (!tracer_ok_hist(c->t, okh))
			metrics_kernel_ok_hist(c->metrics, okh);
	}
	metrics_output_counters(c->metrics, ss.write_errors, ss.lines_lost);
	li.output_lost = ss.lines_lost;
	li.new_output_lost = ss.lines_lost - c->out_lost;
	li.missed = missed;
	li.new_missed = missed - c->missed;
	if (li.new_lost || li.new_evictions || li.new_output_lost || li.new_missed ||
	    li.new_buffer_dropped) {
		c->w.ops->loss(&c->w, &li);
		fflush(c->out);
		sink_get_stats(c->sink, &ss);
		if (ss.lines_lost != li.output_lost)
			return;
	}
	c->lost = li.lost_records;
	c->evicted = li.flow_evictions;
	c->out_lost = li.output_lost;
	c->missed = li.missed;
	memcpy(c->lost_v, c->counts.lost, sizeof(c->lost_v));
	c->dropped = dropped;
	c->since_real_ns = now_real;
}

/* ------------------------------------------------------------------------
 * Process set-up: signals (privileges: privileges.c). */

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

/*
 * Without SA_RESTART: a stop signal interrupts whatever blocks (a write to
 * a slow terminal, epoll_wait) instead of resuming it; outfd.c checks the
 * flag between its waits. SIGPIPE is ignored: a reader gone is EPIPE.
 */
static void install_signals(bool hup)
{
	struct sigaction sa = { .sa_handler = on_signal };

	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	if (hup) {	/* logrotate moved the file: reopen it */
		sa.sa_handler = on_hup;
		sigaction(SIGHUP, &sa, NULL);
	}
	signal(SIGPIPE, SIG_IGN);
}

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

/* ------------------------------------------------------------------------
 * Opening. */

/* The output and the metrics socket: a bad one is a bad command line (2),
 * found before the kernel side is set up. */
static int open_export(struct collector *c, struct collector_error *e)
{
	const struct ct_options *o = c->o;
	int err;

	e->status = CT_EXIT_USAGE;
	if (o->output[0]) {
		struct sink_config sc = { .path = o->output, .rotate_size = o->rotate_size,
					  .rotate_keep = o->rotate_keep };

		err = sink_open(&c->sink, &sc, e->msg, sizeof(e->msg));
		if (err)
			return err;
		c->out = sink_stream(c->sink);
	} else {
		struct outfd_config oc = { .fd = STDOUT_FILENO, .stop = &exiting,
					   .grace_ms = STOP_GRACE_MS };

		err = outfd_open(&c->so, &oc);
		if (err) {
			e->status = CT_EXIT_FAILURE;
			snprintf(e->msg, sizeof(e->msg), "standard output: %s", strerror(-err));
			return err;
		}
		c->out = outfd_stream(c->so);
	}
	if (!o->metrics)
		return 0;
	c->metrics = metrics_new();
	if (!c->metrics) {
		err = -errno;
		e->status = CT_EXIT_FAILURE;
		snprintf(e->msg, sizeof(e->msg), "metrics: %s", strerror(-err));
		return err;
	}
	return metrics_bind(c->metrics, (struct sockaddr *)&o->metrics_addr,
			    o->metrics_addrlen, e->msg, sizeof(e->msg));
}

/* The cgroup2 mount's id cache; without a mount, every cgroup is unknown. */
static struct cg_cache *open_cgroups(void)
{
	struct cg_cache *cg = NULL;
	char mount[4096];
	FILE *f = fopen("/proc/self/mountinfo", "re");

	if (f && !cg_mount_find(f, mount, sizeof(mount)))
		cg = cg_cache_new(mount);
	if (f)
		fclose(f);
	return cg ? cg : cg_cache_new(NULL);
}

/* The BPF side and the correlator that its records feed: exit status 1. */
static int open_kernel(struct collector *c, struct collector_error *e)
{
	struct corr_config cc = { 0 };
	int err;

	e->status = CT_EXIT_FAILURE;
	err = tracer_open(&c->t, &c->o->tc, on_record, c, e->msg, sizeof(e->msg));
	if (err)
		return err;
	/* records reach the correlator only from tracer_poll() */
	cc.slow_ns = c->o->tc.slow_ns;
	cc.emit = on_verdict;
	cc.emit_ctx = c;
	cc.drop_reason_name = kenum_name;	/* names from this kernel's BTF */
	cc.drop_names = tracer_drop_names(c->t);
	cc.rst_reason_name = kenum_name;
	cc.rst_names = tracer_rst_names(c->t);
	c->estab = (struct estab_config){
		.drop_reason_name = kenum_name, .drop_names = cc.drop_names,
		.rst_reason_name = kenum_name, .rst_names = cc.rst_names,
		.hz = kconfig_hz(),
	};
	c->corr = corr_new(&cc);
	c->inb = inbound_new(&(struct inbound_config){
		.drop_reason_name = kenum_name, .drop_names = tracer_drop_names(c->t),
		.emit = on_verdict, .emit_ctx = c,
	});
	c->overflows = new_overflow_table(c);
	/* opened before --user drops the right to open cgroups by id */
	c->cg = open_cgroups();
	if (!c->corr || !c->inb || !c->overflows || !c->cg) {
		snprintf(e->msg, sizeof(e->msg), "correlator: out of memory");
		return -ENOMEM;
	}
	return 0;
}

/* The start record, once every probe is attached, then the metrics server. */
static int write_start(struct collector *c, struct collector_error *e)
{
	struct utsname uts;
	struct start_info si = {
		.version = CONNTRACE_VERSION,
		.pid = getpid(),
	};

	uname(&uts);
	si.kernel = uts.release;
	c->start_boot = clock_ns(CLOCK_BOOTTIME);
	c->clock_stale = true;
	si.ts_real_ns = c->start_boot + boot_to_real(c);
	c->last_check = c->start_boot;
	c->since_real_ns = si.ts_real_ns;
	si.probes = tracer_report(c->t, &si.nr_probes);
	c->w.ops->start(&c->w, &si);
	fflush(c->out);
	outfd_kick(c->so);
	/* export: the server starts once the hooks are known */
	metrics_build_info(c->metrics, si.version, si.kernel, si.probes, si.nr_probes);
	e->status = CT_EXIT_FAILURE;
	/* its thread keeps the stop signals off (metrics.c): they wake this one */
	return metrics_start(c->metrics, e->msg, sizeof(e->msg));
}

int collector_open(struct collector **out, const struct ct_options *o,
		   struct collector_error *e)
{
	struct collector *c;
	int err;

	*out = NULL;
	err = check_system(e);
	if (err)
		return err;
	c = calloc(1, sizeof(*c));
	if (!c) {
		snprintf(e->msg, sizeof(e->msg), "out of memory");
		return -ENOMEM;
	}
	c->o = o;
	err = open_export(c, e);
	if (!err)
		err = open_kernel(c, e);
	if (!err && o->user) {
		e->status = CT_EXIT_FAILURE;
		err = drop_privileges(o->user, e->msg, sizeof(e->msg));
	}
	if (err) {
		collector_close(c);
		return err;
	}
	install_signals(c->sink != NULL);
	if (o->json) {
		writer_json_init(&c->w, c->out);
	} else {	/* a file (c->sink) is never a terminal */
		writer_text_init(&c->w, c->out, o->color < 0 ? !c->sink && isatty(STDOUT_FILENO) &&
				 !getenv("NO_COLOR") : o->color, o->detail);
		writer_text_aggregate(&c->w, o->no_aggregate ? 0 : AGG_PER_SEC,
				      clock_ns(CLOCK_REALTIME));
	}
	err = write_start(c, e);
	if (err) {
		collector_close(c);
		return err;
	}
	service_ready();	/* systemd Type=notify: attached and started */
	*out = c;
	return 0;
}

/* ------------------------------------------------------------------------
 * Running. */

int collector_poll_status(int poll_ret, char *msg, size_t msgsz)
{
	if (poll_ret >= 0 || poll_ret == -EINTR)
		return 0;	/* records, none, or a signal: the loop checks the flag */
	snprintf(msg, msgsz, "ringbuf: polling failed: %s", strerror(-poll_ret));
	return poll_ret;
}

int collector_exit_status(int run_err)
{
	/* a failure is a status systemd's Restart=on-failure acts on */
	return run_err ? CT_EXIT_FAILURE : CT_EXIT_OK;
}

/* Once a second: listeners found full, then the loss counters. */
static void periodic(struct collector *c, uint64_t now)
{
	uint64_t cnt[CT_CNT_MAX];

	if (now - c->last_check < LOSS_CHECK_NS)
		return;
	c->w.ops->tick(&c->w, now + boot_to_real(c));	/* text: the aggregated lines */
	overflow_begin(c->overflows, now);
	metrics_listeners_begin(c->metrics);
	if (!tracer_listeners(c->t, on_listener, c)) {
		overflow_end(c->overflows);
		metrics_listeners_end(c->metrics);
	}
	if (!tracer_counters(c->t, cnt)) {
		report_loss(c, cnt, tracer_missed(c->t), now + boot_to_real(c));
		c->last_check = now;
	}
}

/* Whether the output can go on; false with reader_left set, or -errno. */
static int check_output(struct collector *c)
{
	int err;

	fflush(c->out);
	outfd_kick(c->so);	/* the writer thread takes this drain's lines */
	if (outfd_gone(c->so) || (!c->sink && reader_gone())) {
		c->reader_left = true;	/* nobody to summarise for */
		return 0;
	}
	err = outfd_error(c->so);
	if (err) {
		fprintf(stderr, "conntrace: standard output: write failed: %s\n", strerror(err));
		return -err;
	}
	return 0;
}

/* One drain of the ring and what follows it. */
static int step(struct collector *c)
{
	char msg[128];
	uint64_t now;
	int err;

	c->clock_stale = true;	/* the records this poll brings are a new batch */
	err = collector_poll_status(tracer_poll(c->t, DRAIN_MS), msg, sizeof(msg));
	if (err) {
		fprintf(stderr, "conntrace: %s\n", msg);
		return err;
	}
	now = clock_ns(CLOCK_BOOTTIME);
	corr_tick(c->corr, now);
	inbound_tick(c->inb, now);
	periodic(c, now);
	service_watchdog(now);
	err = check_output(c);
	if (err)
		return err;
	if (reopen) {	/* export: SIGHUP */
		reopen = 0;
		sink_reopen(c->sink);
	}
	return 0;
}

int collector_step(struct collector *c)
{
	return step(c);
}

void collector_on_verdict(struct collector *c, collector_verdict_fn fn, void *ctx)
{
	c->verdict_fn = fn;
	c->verdict_ctx = ctx;
}

bool collector_stopping(void)
{
	return exiting;
}

FILE *collector_stream(struct collector *c)
{
	return c->out;
}

int collector_run(struct collector *c)
{
	int err = 0;

	/* the records of the first batch are stamped with write_start()'s offset */
	while (!exiting && !c->reader_left && !err)
		err = step(c);
	return err;
}

/* ------------------------------------------------------------------------
 * Stopping. */

static void write_summary(struct collector *c, uint64_t now)
{
	struct summary_info si = { 0 };
	uint64_t cnt[CT_CNT_MAX] = { 0 }, verdicts[CT_V_MAX];
	struct sink_stats ss;

	tracer_counters(c->t, cnt);
	/* the last interval's loss too, as a `lost` record, before the totals */
	report_loss(c, cnt, tracer_missed(c->t), now + boot_to_real(c));
	counts_verdicts(&c->counts, verdicts);
	si.stats = corr_stats(c->corr);
	si.verdicts = verdicts;
	si.lost_by_verdict = c->counts.lost;
	si.dropped_by_verdict = c->counts.dropped;
	si.ok_unsent = c->counts.ok_unsent;
	si.est_verdicts = c->est_verdicts;
	si.lost_records = cnt[CT_CNT_RINGBUF_LOST];
	si.flow_evictions = cnt[CT_CNT_FLOW_EVICTED];
	si.flow_nospace = cnt[CT_CNT_FLOW_NOSPACE];
	si.flows_untracked = cnt[CT_CNT_FLOW_UNTRACKED];
	si.missed_events = tracer_missed(c->t);
	si.in_verdicts = c->in_verdicts;
	si.flows = c->counts.flows;
	for (int v = 0; v < CT_V_MAX; v++)
		si.flows += c->in_verdicts[v];
	si.duration_s = (now - c->start_boot) / 1e9;
	si.ts_real_ns = now + boot_to_real(c);
	sink_get_stats(c->sink, &ss);
	si.output_write_errors = ss.write_errors;
	si.output_records_lost = ss.lines_lost;
	c->w.ops->summary(&c->w, &si);
	fflush(c->out);
}

int collector_finish(struct collector *c)
{
	uint64_t now;
	int err;

	/*
	 * Detach first: no program runs once this returns, so no flow can
	 * finish after the drain below (and be lost) or finish between the
	 * drain and the dump of pending flows (and be printed twice).
	 */
	service_stopping();
	err = tracer_detach(c->t);
	c->clock_stale = true;
	/* everything the programs submitted, whether the poll woke for it or not */
	tracer_drain(c->t);
	if (c->reader_left)
		return err;
	now = clock_ns(CLOCK_BOOTTIME);
	/* what is left in the flow table is still connecting: pending */
	tracer_dump_pending(c->t, now);
	corr_flush(c->corr);
	inbound_flush(c->inb, now);	/* incoming attempts not over: pending */
	write_summary(c, now);
	return err;
}

void collector_close(struct collector *c)
{
	if (!c)
		return;
	metrics_free(c->metrics);	/* stops its thread before the state it reads goes */
	overflow_free(c->overflows);
	corr_free(c->corr);
	cg_cache_free(c->cg);
	inbound_free(c->inb);
	tracer_close(c->t);
	sink_close(c->sink);
	outfd_close(c->so);
	free(c);
}

/* ------------------------------------------------------------------------
 * conntrace [OPTIONS] */

/* --probes: load and attach, print which hook carries each signal, exit. */
static int probes_main(const struct ct_options *o)
{
	struct collector_error e = { 0 };
	struct tracer *t;
	const struct probe_report *rep;
	int nr;

	if (check_system(&e) ||
	    tracer_open(&t, &o->tc, on_record, NULL, e.msg, sizeof(e.msg))) {
		fprintf(stderr, "conntrace: %s\n", e.msg);
		return CT_EXIT_FAILURE;
	}
	rep = tracer_report(t, &nr);
	hooks_print_report(stdout, "", rep, nr);
	tracer_close(t);
	return CT_EXIT_OK;
}

int collector_main(int argc, char **argv)
{
	static struct ct_options opts;	/* the collector keeps a pointer */
	struct collector_error e = { 0 };
	struct collector *c;
	int err;

	if (ct_options_parse(&opts, argc, argv, e.msg, sizeof(e.msg))) {
		fprintf(stderr, "conntrace: %s (see --help)\n", e.msg);
		return CT_EXIT_USAGE;
	}
	if (opts.probes)
		return probes_main(&opts);
	if (collector_open(&c, &opts, &e)) {
		fprintf(stderr, "conntrace: %s\n", e.msg);
		return e.status;
	}
	err = collector_run(c);
	/* after a failure too: what was seen so far, then exit 1 */
	collector_finish(c);
	collector_close(c);
	return collector_exit_status(err);
}
