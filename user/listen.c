// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * conntrace listen: the command. Options, the refresh loop and the output
 * of each refresh (text table or JSON Lines); the kernel side is in
 * listen_kernel.c, /proc in listen_proc.c, the pure logic in listen_logic.c.
 */
#include <argp.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "cgroup.h"
#include "json.h"
#include "listen_int.h"

static struct env {
	double interval;
	long count;          /* refreshes to print; 0: until interrupted */
	int port;            /* -1: any */
	int pid;             /* -1: any */
	int top;             /* clients that lost SYNs shown per listener */
	bool once;
	bool json;
	bool verbose;
	bool no_fentry;
} env;

static volatile sig_atomic_t exiting;

static void on_signal(int sig)
{
	(void)sig;
	exiting = 1;
}

/* ---- options ---------------------------------------------------------- */

/* The same short option means the same in every command: -p is --pid as in
 * `conntrace`, and --port is long only there and here. */
enum { OPT_ONCE = 1000, OPT_NO_FENTRY, OPT_PORT, OPT_USAGE, OPT_TOP };

static const struct argp_option options[] = {
	{ NULL, 0, NULL, 0, "Which listeners:", 1 },
	{ "pid", 'p', "PID", 0, "Only listeners owned by process PID", 1 },
	{ "port", OPT_PORT, "PORT", 0, "Only listeners on local port PORT", 1 },
	{ NULL, 0, NULL, 0, "When:", 2 },
	{ "interval", 'i', "SECONDS", 0, "Refresh every SECONDS (default 1, decimals allowed)", 2 },
	{ "once", OPT_ONCE, NULL, 0, "Print one snapshot (after one interval) and exit", 2 },
	{ "count", 'c', "N", 0, "Exit after N refreshes", 2 },
	{ NULL, 0, NULL, 0, "Output:", 3 },
	{ "json", 'j', NULL, 0, "JSON Lines: one {\"type\":\"listener\"} object per listener per refresh", 3 },
	{ "top", OPT_TOP, "N", 0, "Name the N remote clients per listener that lost the most SYNs "
	  "in the last interval (default 5, 0 to 32; 0: none)", 3 },
	{ NULL, 0, NULL, 0, "Diagnostics:", 4 },
	{ "no-fentry", OPT_NO_FENTRY, NULL, 0,
	  "Do not try fentry/fexit; count overflows from sk_drops and the netns counters", 4 },
	{ "verbose", 'v', NULL, 0, "The hook report (as `conntrace --probes`), and libbpf's messages", 4 },
	{ NULL, 0, NULL, 0, "Help:", -1 },
	/* argp's own are off (ARGP_NO_HELP), as in `conntrace`: its errors are two lines */
	{ "help", '?', NULL, 0, "Give this help list", -1 },
	{ "usage", OPT_USAGE, NULL, 0, "Give a short usage message", -1 },
	{ 0 },
};

static const char doc[] =
	"Accept-queue (listen backlog) overflows, live, per listening TCP socket in "
	"every network namespace: queue depth now, peak and max, the backlog the "
	"application asked for against net.core.somaxconn, SYN queue, overflows, "
	"SYN-ACK retransmits, resets sent, SYN cookies, the remote clients whose SYNs "
	"were dropped, a history of queue fill, and advice.\v"
	"Columns: ACCQ children waiting for accept(); PEAK highest since the last "
	"refresh; MAX the kernel's limit, min(backlog, somaxconn) (the queue is full "
	"past MAX); BACKLOG what listen() was given (\">=N\": listen() ran before "
	"conntrace, and somaxconn may have cut it); OVF overflows since listen() "
	"(\"~\": shared out from the namespace's ListenOverflows, not exact); SYNQ "
	"requests (SYN_RECV) in the SYN queue; SYNMAX its limit, the requests it holds "
	"before tcp_conn_request() drops the next SYN (tcp_syncookies=0) or answers it "
	"with a SYN cookie (1): MAX + 1, and with cookies off at most "
	"tcp_max_syn_backlog * 3/4 + 1 for peers not proven; 0 with tcp_syncookies=2; "
	"COOKIES SYN cookies sent (\"~\": inferred from the SYN queue staying at its "
	"limit, where fentry is refused and tcp_syncookies=1; \"-\": SYNs not seen); "
	"SYNRTX, RST and COOKIES count since conntrace first saw the listener; FILL the "
	"peak at each refresh as a share of the queue. Under a listener, the clients "
	"(remote addresses) whose SYNs it dropped in the last interval, most first "
	"(--top), with their source ports and the cause: accept_queue_full or "
	"syn_queue_full.\n\n"
	"An overflow is a SYN or final ACK dropped because the accept queue was full "
	"(the kernel's TcpExtListenOverflows). They are counted exactly with "
	"fentry/fexit where the kernel allows it; otherwise from each listener's "
	"sk_drops (which tcp_listendrop() increments), exact whenever the namespace's "
	"ListenOverflows and ListenDrops moved together.\n\n"
	"Examples:\n"
	"  conntrace listen                   live table, most trouble first\n"
	"  conntrace listen --port 8080 -i 5  one service, refreshed every 5 s\n"
	"  conntrace listen -p 1234           the listeners of process 1234\n"
	"  conntrace listen --once -j | jq 'select(.type == \"listener\")'\n"
	"  conntrace listen -p $(pidof nginx) --count 10 > listen.log\n"
	"  conntrace listen --once -v         which hooks this kernel allows\n\n"
	"Exit status: 0 after SIGINT or SIGTERM or the last refresh, 1 when the "
	"kernel side cannot be set up, 2 for a bad command line.";

struct parse_state {
	char err[256];
	bool failed;
};

static error_t fail(struct parse_state *ps, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static error_t fail(struct parse_state *ps, const char *fmt, ...)
{
	va_list ap;

	if (!ps->failed) {
		va_start(ap, fmt);
		vsnprintf(ps->err, sizeof(ps->err), fmt, ap);
		va_end(ap);
	}
	ps->failed = true;
	return EINVAL;
}

static error_t parse_long(struct parse_state *ps, const char *opt, const char *arg,
			  long lo, long hi, const char *want, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(arg, &end, 10);
	if (errno || end == arg || *end || v < lo || v > hi || *arg == ' ' || *arg == '+')
		return fail(ps, "invalid %s '%s': %s", opt, arg, want);
	*out = v;
	return 0;
}

static error_t parse_opt(int key, char *arg, struct argp_state *state)
{
	struct parse_state *ps = state->input;
	char *end;
	long v = 0;
	error_t err = 0;

	switch (key) {
	case 'p':
		err = parse_long(ps, "--pid", arg, 1, INT_MAX, "expected a process id", &v);
		env.pid = v;
		break;
	case OPT_PORT:
		err = parse_long(ps, "--port", arg, 1, 65535, "expected a port 1-65535", &v);
		env.port = v;
		break;
	case 'i':
		errno = 0;
		env.interval = strtod(arg, &end);
		if (errno || end == arg || *end || !(env.interval >= 0.1 && env.interval <= 3600))
			err = fail(ps, "invalid --interval '%s': expected seconds, 0.1 to 3600", arg);
		break;
	case 'c':
		err = parse_long(ps, "--count", arg, 1, LONG_MAX, "expected a count >= 1", &v);
		env.count = v;
		break;
	case OPT_TOP:
		err = parse_long(ps, "--top", arg, 0, LISTEN_TOP_MAX, "expected a count 0-32", &v);
		env.top = v;
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
	case '?':	/* argp_state_help() is silent under ARGP_NO_ERRS */
		argp_help(state->root_argp, stdout, ARGP_HELP_STD_HELP, state->name);
		exit(0);
	case OPT_USAGE:
		argp_help(state->root_argp, stdout, ARGP_HELP_USAGE, state->name);
		exit(0);
	case ARGP_KEY_ARG:
		return fail(ps, "unexpected argument '%s'", arg);
	default:
		return ARGP_ERR_UNKNOWN;
	}
	return err;
}

/* argp with ARGP_NO_ERRS only says something was wrong: say what, in one line. */
static void name_bad_option(struct parse_state *ps, int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const struct argp_option *o;
		size_t n;

		if (!strcmp(a, "--"))
			break;
		if (a[0] != '-' || !a[1])
			continue;
		n = a[1] == '-' ? strcspn(a + 2, "=") : 1;
		for (o = options; o->name || o->doc; o++) {
			bool match = a[1] == '-' ? o->name && !strncmp(o->name, a + 2, n)
						 : o->key == a[1];

			if (match)
				break;
		}
		if (!o->name && !o->doc) {
			fail(ps, "unrecognized option '%s'", a);
			return;
		}
		if (o->arg && !strchr(a, '=') && (a[1] == '-' || !a[2]) && i + 1 >= argc) {
			fail(ps, "option '%s' requires an argument", a);
			return;
		}
		if (o->arg && !strchr(a, '=') && (a[1] == '-' || !a[2]))
			i++;
	}
	fail(ps, "bad command line");
}

/* 0, or 2 (a bad command line, said in one line) for listen_main to return. */
static int parse_args(int argc, char **argv)
{
	static const struct argp argp = { options, parse_opt, NULL, doc, NULL, NULL, NULL };
	struct parse_state ps = { .failed = false };
	char *args[argc + 2];
	int i;

	env = (struct env){ .interval = 1.0, .port = -1, .pid = -1, .top = LISTEN_TOP_DEFAULT };
	/* argp names the program after argv[0]: make usage say the subcommand */
	args[0] = "conntrace listen";
	for (i = 1; i < argc; i++)
		args[i] = argv[i];
	args[argc > 0 ? argc : 1] = NULL;
	if (argp_parse(&argp, argc > 0 ? argc : 1, args, ARGP_NO_ERRS | ARGP_NO_HELP, NULL,
		       &ps) && !ps.failed)
		name_bad_option(&ps, argc, args);
	if (!ps.failed)
		return 0;
	fprintf(stderr, "conntrace listen: %s (see --help)\n", ps.err);
	return 2;
}

/* ---- output ------------------------------------------------------------ */

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
static const char *method_summary(const struct listen_ctx *c)
{
	return listen_kernel_fentry(c->k)
		? "overflows: fentry/fexit on tcp_conn_request, tcp_check_req, cookie_check (exact)"
		: "overflows: per-listener sk_drops, exact (~: attributed from ListenOverflows)";
}

/*
 * The hook report (the struct `--probes` prints), as docs/schema.md has
 * listen_start's "hooks": each signal and "attached: HOOK" or
 * "not available: WHY".
 */
static void print_start_json(const struct listen_ctx *c, struct json *j)
{
	const struct probe_report *rep;
	struct timespec rt;
	char status[sizeof(rep->hook) + sizeof(rep->note) + 32];
	size_t i, nr;

	clock_gettime(CLOCK_REALTIME, &rt);
	listen_json_head(j, "listen_start", rt.tv_sec + rt.tv_nsec / 1e9);
	json_kstr(j, "method", listen_kernel_fentry(c->k) ? "fentry" : "sk_drops");
	json_key(j, "hooks");
	json_obj_begin(j);
	rep = listen_kernel_report(c->k, &nr);
	for (i = 0; i < nr; i++) {
		if (rep[i].ok)
			snprintf(status, sizeof(status), "attached: %s%s%s%s", rep[i].hook,
				 rep[i].note[0] ? " (" : "", rep[i].note, rep[i].note[0] ? ")" : "");
		else
			snprintf(status, sizeof(status), "not available: %s",
				 rep[i].note[0] ? rep[i].note : "refused");
		json_kstr(j, rep[i].signal, status);
	}
	json_obj_end(j);
	json_obj_end(j);
	json_eol(j);
}

/* One {"type":"netns"} line per namespace walked that has listeners or a name. */
static void print_netns_json(const struct listen_ctx *c, struct json *j, double ts)
{
	size_t i, k;

	for (k = 0; k < c->ns.n; k++) {
		const struct netns *ns = &c->ns.v[k];
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
}

static int print_refresh(struct listen_ctx *c, struct json *j)
{
	struct listener *rows = calloc(c->st.n ? c->st.n : 1, sizeof(*rows));
	struct listen_table_opts o = { .utf8 = utf8_locale(), .show_advice = true };
	struct timespec rt;
	size_t i, n = 0, k;
	struct listen_lost lost = listen_kernel_lost(c->k);
	double ts;

	if (!rows)
		return -ENOMEM;
	clock_gettime(CLOCK_REALTIME, &rt);
	ts = rt.tv_sec + rt.tv_nsec / 1e9;
	for (i = 0; i < c->st.n; i++) {
		struct listener *l = &c->st.v[i].l;

		/* the owner's cgroup (unit, container, pod), once the owner is known */
		if (l->pid && !l->cgroup_tried) {
			l->cgroup_tried = true;
			if (cg_of_pid(l->pid, l->cgroup, sizeof(l->cgroup)))
				l->cgroup[0] = '\0';
		}
		if (selected(l))
			rows[n++] = *l;
	}
	qsort(rows, n, sizeof(*rows), listen_cmp_trouble);

	if (env.json) {
		print_netns_json(c, j, ts);
		for (i = 0; i < n; i++)
			listen_json_listener(j, &rows[i], ts);
		if (lost.stats_map_full || lost.pending_map_full || lost.clients_map_full ||
		    lost.socks_map_full || c->ns_skipped) {
			listen_json_head(j, "listen_lost", ts);
			json_ku64(j, "stats_map_full", lost.stats_map_full);
			json_ku64(j, "pending_map_full", lost.pending_map_full);
			json_ku64(j, "clients_map_full", lost.clients_map_full);
			json_ku64(j, "socks_map_full", lost.socks_map_full);
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
		printf("%s\n", method_summary(c));
		if (lost.stats_map_full || lost.pending_map_full || lost.clients_map_full ||
		    lost.socks_map_full)
			printf("lost: %llu listener entries (BPF map full), %llu listen() backlogs, "
			       "%llu SYN drops not told by client, %llu listeners SYNs cannot find\n",
			       (unsigned long long)lost.stats_map_full,
			       (unsigned long long)lost.pending_map_full,
			       (unsigned long long)lost.clients_map_full,
			       (unsigned long long)lost.socks_map_full);
		listen_print_table(stdout, rows, n, &o);
	}
	free(rows);
	/* a reader at the other end of a pipe gets each refresh whole, now */
	return fflush(stdout) ? -errno : 0;
}

/* -v: the same report as `conntrace --probes`, on stderr. */
static void print_hooks(const struct listen_ctx *c)
{
	const struct probe_report *rep;
	size_t nr;

	rep = listen_kernel_report(c->k, &nr);
	hooks_print_report(stderr, "conntrace listen: ", rep, nr);
	elog("method: %s", method_summary(c));
}

static void sleep_interval(double s)
{
	struct timespec ts = { (time_t)s, (long)((s - (time_t)s) * 1e9) };

	while (!exiting && nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* The baseline walk (totals since listen()), then one refresh per interval. */
static int run(struct listen_ctx *c, struct json *j)
{
	long printed = 0;
	int err;

	err = listen_refresh(c);
	while (!err && !exiting) {
		sleep_interval(env.interval);
		if (exiting)
			break;
		err = listen_refresh(c);
		if (err) {
			elog("refresh failed: %s", strerror(-err));
			break;
		}
		err = print_refresh(c, j);
		if (err) {
			elog("standard output: %s", strerror(-err));
			break;
		}
		if (env.once || (env.count && ++printed >= env.count))
			break;
	}
	return err;
}

int listen_main(int argc, char **argv)
{
	struct listen_ctx c = { .orig_netns = -1 };
	struct sigaction sa = { .sa_handler = on_signal };
	struct json j;
	int err;

	err = parse_args(argc, argv);
	if (err)
		return err;
	hooks_libbpf_logging(env.verbose);
	json_init(&j, stdout);
	c.top = env.top;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	c.orig_netns = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (c.orig_netns < 0) {
		elog("netns: cannot open /proc/thread-self/ns/net: %s", strerror(errno));
		return 1;
	}
	err = listen_kernel_open(&c.k, env.no_fentry);
	if (err) {
		close(c.orig_netns);
		return 1;
	}
	if (env.verbose)
		print_hooks(&c);
	if (env.json) {
		print_start_json(&c, &j);
		if (fflush(stdout))
			err = -errno;
	}
	if (!err)
		err = run(&c, &j);

	listen_kernel_close(c.k);
	netns_close_all(&c.ns);
	free(c.ns.v);
	free(c.st.v);
	free(c.recs.v);
	free(c.drops);
	close(c.orig_netns);
	return err ? 1 : 0;
}
