// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Option parsing with argp. Bad values are refused with one line naming the
 * option and what it takes; argp's own error output (two lines) is switched
 * off, so an unknown option is named here too.
 */
#include <argp.h>
#include <ctype.h>
#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "cgroup.h"
#include "correlate.h"
#include "version.h"
#include "json.h"
#include "metrics.h"
#include "aggregate.h"
#include "options.h"
#include "sink.h"

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
"  conntrace --port 80,443 --comm curl   curl's attempts to or from 80 or 443\n"
"  conntrace -j --cgroup system.slice/nginx.service   a service's attempts\n"
"  conntrace -j --cgroup kubepods.slice   every pod's (with its pod_uid)\n"
"  conntrace --netns blue         attempts made in namespace /run/netns/blue\n"
"  conntrace --probes             which kernel hooks this kernel allows\n"
"  conntrace -j -o /var/log/conntrace/conntrace.jsonl --rotate-size 100M \\\n"
"            --metrics 127.0.0.1:9917   as a service: a file and Prometheus\n"
"  conntrace listen --help        the accept-queue view of every listener\n"
"  conntrace check HOST:PORT      try a connection, say why it fails and what to do\n"
"\v"
"Exit status: 0 after SIGINT or SIGTERM (a summary is printed) or when the\n"
"reader of the output goes away; 1 when the kernel side cannot be set up, or\n"
"reading the ring buffer or writing standard output fails; 2 for a bad\n"
"command line.";

enum {
	OPT_PORT = 1000, OPT_VERDICT, OPT_SLOW, OPT_PROBES, OPT_RING_SIZE, OPT_MAX_FLOWS,
	OPT_COLOR, OPT_USAGE, OPT_USER, OPT_NETNS, OPT_COMM, OPT_CGROUP, OPT_PHASE,
	OPT_ROTATE_SIZE, OPT_ROTATE_KEEP, OPT_METRICS,	/* export */
	OPT_NO_AGGREGATE,
	OPT_BUFFER,	/* issue 11 */
	OPT_DIRECTION = 1100,	/* issue 12 */
	OPT_NO_SK_STORAGE = 1200,	/* issue 11: where the flow table is */
};

/* --no-aggregate's help gives the threshold */
_Static_assert(AGG_PER_SEC == 10, "--help says 10 a second: keep it true");

static const struct argp_option options[] = {
	{ NULL, 0, NULL, 0, "Which attempts:", 1 },
	{ "all", 'a', NULL, 0, "Also print OK verdicts (with --verdict, the list decides)", 1 },
	{ "pid", 'p', "PID[,PID]", 0, "Only attempts made by these processes (up to 8)", 1 },
	{ "port", OPT_PORT, "PORT[,PORT]", 0, "Only attempts with one of these ports at either "
	  "end (up to 8)", 1 },
	{ "comm", OPT_COMM, "NAME", 0, "Only attempts made by threads of this name (the "
	  "kernel keeps its first 15 characters)", 1 },
	{ "cgroup", OPT_CGROUP, "PATH", 0, "Only attempts made in this cgroup v2 and below it: "
	  "a path under the cgroup2 mount, or relative to it (system.slice/nginx.service)", 1 },
	{ "netns", OPT_NETNS, "NS", 0, "Only attempts made in this network namespace: its "
	  "inode number (stat -Lc %i /proc/PID/ns/net) or its name under /run/netns", 1 },
	{ "verdict", OPT_VERDICT, "LIST", 0,
	  "Only these verdicts, comma-separated: ok,slow,timeout,refused,unreachable,"
	  "abandoned,pending,dropped,reset", 1 },
	{ "phase", OPT_PHASE, "PHASE", 0, "Only verdicts about this phase: connect (the "
	  "attempt), established (a connection that died after it), both (default)", 1 },
	{ "slow", OPT_SLOW, "MS", 0, "An established attempt slower than MS is SLOW "
	  "(default 1000; 0: only retransmits make SLOW)", 1 },
	{ "direction", OPT_DIRECTION, "DIR", 0, "out: attempts this host makes; in: SYNs that "
	  "arrive for a local address; both (default)", 1 },
	{ NULL, 0, NULL, 0, "Output:", 2 },
	{ "json", 'j', NULL, 0, "JSON Lines: a start record, one verdict per line, a summary", 2 },
	{ "detail", 'd', NULL, 0, "Text: the one-sentence detail under each verdict", 2 },
	{ "color", OPT_COLOR, "WHEN", 0, "Colour the verdicts: auto (on a terminal), always, "
	  "never", 2 },
	{ "no-aggregate", OPT_NO_AGGREGATE, NULL, 0, "Text: print every verdict. By default, "
	  "past 10 a second for one verdict, cause and destination, the rest are counted and "
	  "printed as one line a second (JSON always has every verdict)", 2 },
	{ NULL, 0, NULL, 0, "Kernel:", 3 },
	{ "probes", OPT_PROBES, NULL, 0, "Load and attach, print the hook used for each "
	  "signal or why none is available, and exit", 3 },
	{ "ring-size", OPT_RING_SIZE, "BYTES", 0, "Ring buffer size, a power of two from 4K "
	  "to 1G (K, M, G suffixes; default 1M)", 3 },
	{ "max-flows", OPT_MAX_FLOWS, "N", 0, "Connection attempts tracked at once in the "
	  "kernel's table where attempts cannot live in their sockets (--probes: flow_state; "
	  "default 65536); beyond, the oldest are evicted and counted", 3 },
	{ "no-sk-storage", OPT_NO_SK_STORAGE, NULL, 0, "Keep attempts in the kernel's table "
	  "(--max-flows) even where this kernel lets them live in their sockets", 3 },
	{ "verbose", 'v', NULL, 0, "libbpf's messages (the verifier's log on failure)", 3 },
	{ "user", OPT_USER, "NAME", 0, "Once attached, drop to this user, keeping no "
	  "capabilities; tracing goes on through the open descriptors", 3 },
	/* export: sink.c, metrics.c */
	{ NULL, 0, NULL, 0, "Export:", 4 },
	{ "output", 'o', "FILE", 0, "Append the records to FILE instead of standard output; "
	  "SIGHUP reopens it (after logrotate moved it)", 4 },
	{ "rotate-size", OPT_ROTATE_SIZE, "SIZE", 0, "Rotate FILE before it passes SIZE "
	  "(K, M, G, T suffixes; 4K to 1T): FILE moves to FILE.1, FILE.1 to FILE.2, ...", 4 },
	{ "rotate-keep", OPT_ROTATE_KEEP, "N", 0, "Rotated files kept, FILE.1 to FILE.N "
	  "(1 to 1000, default 5)", 4 },
	{ "metrics", OPT_METRICS, "ADDR:PORT", 0, "Serve Prometheus metrics at "
	  "http://ADDR:PORT/metrics (127.0.0.1:9917, [::1]:9917, :9917 for every address)", 4 },
	{ "buffer", OPT_BUFFER, "SIZE", 0, "Lines waiting for a slow reader of standard output "
	  "are kept up to SIZE (K, M, G suffixes; 4K to 1T, default 64M); verdicts beyond it "
	  "are not printed but still counted", 4 },
	{ NULL, 0, NULL, 0, "Other:", -1 },
	/* argp's own are off (ARGP_NO_HELP): its error path would be silent */
	{ "help", '?', NULL, 0, "Give this help list", -1 },
	{ "usage", OPT_USAGE, NULL, 0, "Give a short usage message", -1 },
	{ "version", 'V', NULL, 0, "Print program version", -1 },
	{},
};

struct parse_state {
	struct ct_options *o;
	char *err;
	size_t errsz;
	bool failed;
};

static int fail(struct parse_state *ps, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int fail(struct parse_state *ps, const char *fmt, ...)
{
	va_list ap;

	if (!ps->failed) {
		va_start(ap, fmt);
		vsnprintf(ps->err, ps->errsz, fmt, ap);
		va_end(ap);
	}
	ps->failed = true;
	return EINVAL;
}

/* A user's value made safe to echo in a one-line message. */
static char escaped_last[64];

static const char *esc(const char *arg)
{
	escape_text(escaped_last, sizeof(escaped_last), arg, strlen(arg));
	return escaped_last;
}

/* A whole decimal number in [min, max]. */
static int parse_num(struct parse_state *ps, const char *opt, const char *arg,
		     unsigned long long min, unsigned long long max, const char *unit,
		     unsigned long long *out)
{
	unsigned long long v;
	char *end;

	if (!isdigit((unsigned char)*arg))	/* strtoull would take spaces and signs */
		return fail(ps, "%s: '%s' is not %s", opt, esc(arg), unit);
	errno = 0;
	v = strtoull(arg, &end, 10);
	if (*end)
		return fail(ps, "%s: '%s' is not %s", opt, esc(arg), unit);
	if (errno == ERANGE || v < min || v > max)
		return fail(ps, "%s: %s is out of range (%llu to %llu)", opt, esc(arg), min, max);
	*out = v;
	return 0;
}

/* BYTES with an optional K, M or G: a power of two from 4K to 1G. */
static int parse_size(struct parse_state *ps, const char *opt, const char *arg,
		      unsigned long long *out)
{
	unsigned long long v, mult = 1;
	char *end;

	if (!isdigit((unsigned char)*arg))
		return fail(ps, "%s: '%s' is not a size", opt, esc(arg));
	errno = 0;
	v = strtoull(arg, &end, 10);
	if (end == arg)
		return fail(ps, "%s: '%s' is not a size", opt, esc(arg));
	if (*end == 'K' || *end == 'k')
		mult = 1ULL << 10, end++;
	else if (*end == 'M' || *end == 'm')
		mult = 1ULL << 20, end++;
	else if (*end == 'G' || *end == 'g')
		mult = 1ULL << 30, end++;
	if (*end)
		return fail(ps, "%s: '%s' is not a size", opt, esc(arg));
	if (errno == ERANGE || v > (1ULL << 30) / mult || v * mult < 4096 ||
	    ((v * mult) & (v * mult - 1)))
		return fail(ps, "%s: %s is not a power of two from 4K to 1G", opt, esc(arg));
	*out = v * mult;
	return 0;
}

/*
 * NS: a network namespace's inode number, or the name `ip netns add` gave it
 * (a bind mount of the namespace at /run/netns/NAME, whose inode it is).
 */
static int parse_netns(struct parse_state *ps, const char *arg, uint32_t *out)
{
	unsigned long long v;
	struct stat st, self;
	char path[256];
	int err;

	if (*arg && strspn(arg, "0123456789") == strlen(arg)) {
		err = parse_num(ps, "--netns", arg, 1, UINT32_MAX, "a namespace inode number", &v);
		*out = v;
		return err;
	}
	if (!*arg || strchr(arg, '/') || !strcmp(arg, ".") || !strcmp(arg, "..") ||
	    strlen(arg) > 200)
		return fail(ps, "--netns: '%s' is not a namespace inode number or a name under "
			    "/run/netns", esc(arg));
	snprintf(path, sizeof(path), "/run/netns/%s", arg);
	if (stat(path, &st))
		return fail(ps, "--netns: no network namespace '%s' in /run/netns: %s", esc(arg),
			    strerror(errno));
	/* every namespace lives on the one nsfs: a leftover plain file does not */
	if (stat("/proc/self/ns/net", &self) || st.st_dev != self.st_dev)
		return fail(ps, "--netns: /run/netns/%s is not a network namespace", esc(arg));
	*out = st.st_ino;
	return 0;
}

/* Up to CT_MAX_TARGETS comma-separated numbers in [min, max]. */
static int parse_list(struct parse_state *ps, const char *opt, const char *arg,
		      unsigned long long max, const char *unit, unsigned long long *out,
		      unsigned *n)
{
	const char *p = arg;
	char item[32];

	*n = 0;
	do {
		size_t len = strcspn(p, ",");

		if (*n == CT_MAX_TARGETS)
			return fail(ps, "%s: more than %d values in '%s'", opt, CT_MAX_TARGETS,
				    esc(arg));
		if (!len || len >= sizeof(item))
			return fail(ps, "%s: '%s' is not %s", opt, esc(arg), unit);
		memcpy(item, p, len);
		item[len] = '\0';
		if (parse_num(ps, opt, item, 1, max, unit, &out[(*n)++]))
			return EINVAL;
		p += len;
	} while (*p++ == ',');
	return 0;
}

/* --cgroup: a cgroup of the cgroup2 hierarchy this system mounts. */
static int parse_cgroup(struct parse_state *ps, const char *arg, struct tracer_config *tc)
{
	char mount[4096] = "", msg[256];
	FILE *f = fopen("/proc/self/mountinfo", "re");

	if (f) {
		cg_mount_find(f, mount, sizeof(mount));
		fclose(f);
	}
	if (!*arg)
		return fail(ps, "--cgroup: empty path");
	if (cg_target(mount, arg, &tc->cgroup_id, &tc->cgroup_level, msg, sizeof(msg)))
		return fail(ps, "--cgroup: %s", msg);
	return 0;
}

static int parse_verdicts(struct parse_state *ps, const char *arg, unsigned *mask)
{
	const char *p = arg;

	*mask = 0;
	while (*p) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);
		char name[16];
		int v = -1;

		if (!n)
			return fail(ps, "--verdict: empty name in '%s'", esc(arg));
		if (n < sizeof(name)) {
			memcpy(name, p, n);
			name[n] = '\0';
			v = ct_verdict_parse(name);
		}
		if (v < 0)
			return fail(ps, "--verdict: unknown verdict in '%s' (ok, slow, timeout, "
				    "refused, unreachable, abandoned, pending, dropped, reset)", esc(arg));
		*mask |= 1u << v;
		p += n;
		if (comma && !*++p)
			return fail(ps, "--verdict: empty name in '%s'", esc(arg));
	}
	if (!*mask)
		return fail(ps, "--verdict: empty list");
	return 0;
}

/* What to trace and how: filters, thresholds, kernel sizes, privileges. */
static error_t parse_trace_opt(int key, char *arg, struct parse_state *ps)
{
	unsigned long long v = 0, list[CT_MAX_TARGETS];
	struct ct_options *o = ps->o;
	unsigned n = 0;
	int err = 0;

	switch (key) {
	case 'a':
		o->all = true;
		break;
	case 'p':
		err = parse_list(ps, "--pid", arg, 4194304, "a process id", list, &n);
		for (o->tc.ntgids = 0; !err && o->tc.ntgids < n; o->tc.ntgids++)
			o->tc.tgids[o->tc.ntgids] = list[o->tc.ntgids];
		break;
	case OPT_PORT:
		err = parse_list(ps, "--port", arg, 65535, "a port", list, &n);
		for (o->tc.nports = 0; !err && o->tc.nports < n; o->tc.nports++)
			o->tc.ports[o->tc.nports] = list[o->tc.nports];
		break;
	case OPT_COMM:
		if (!*arg)
			return fail(ps, "--comm: empty name");
		/* the kernel's task name is 15 characters: compare those */
		snprintf(o->tc.comm, sizeof(o->tc.comm), "%s", arg);
		break;
	case OPT_CGROUP:
		return parse_cgroup(ps, arg, &o->tc);
	case OPT_NETNS:
		return parse_netns(ps, arg, &o->tc.netns);
	case OPT_VERDICT:
		err = parse_verdicts(ps, arg, &o->verdict_mask);
		break;
	case OPT_PHASE:
		if (ct_phase_parse(arg) < 0)
			return fail(ps, "--phase: '%s' is not connect, established or both", esc(arg));
		o->phase_mask = ct_phase_parse(arg);
		break;
	case OPT_SLOW:
		err = parse_num(ps, "--slow", arg, 0, 3600000, "a number of milliseconds", &v);
		o->tc.slow_ns = v * 1000000ULL;
		break;
	case OPT_PROBES:
		o->probes = true;
		break;
	case OPT_DIRECTION:
		if (!strcmp(arg, "in"))
			o->tc.direction = CT_DIR_IN;
		else if (!strcmp(arg, "out"))
			o->tc.direction = CT_DIR_OUT;
		else if (!strcmp(arg, "both"))
			o->tc.direction = CT_DIR_IN | CT_DIR_OUT;
		else
			return fail(ps, "--direction: '%s' is not in, out or both", esc(arg));
		break;
	case OPT_RING_SIZE:
		err = parse_size(ps, "--ring-size", arg, &v);
		o->tc.ring_size = v;
		break;
	case OPT_MAX_FLOWS:
		err = parse_num(ps, "--max-flows", arg, 1024, 1 << 24, "a number of flows", &v);
		o->tc.max_flows = v;
		break;
	case OPT_NO_SK_STORAGE:
		o->tc.no_sk_storage = true;
		break;
	case 'v':
		o->tc.verbose = true;
		break;
	case OPT_USER:
		if (!*arg)
			return fail(ps, "--user: empty user name");
		/* looked up now: an unknown user is a bad command line (exit 2),
		 * found before anything is loaded */
		if (!getpwnam(arg))
			return fail(ps, "--user: no such user '%s'", esc(arg));
		o->user = arg;
		break;
	default:
		return ARGP_ERR_UNKNOWN;
	}
	return err;
}

/* What to write and where: formats, the output file, the metrics server. */
static error_t parse_output_opt(int key, char *arg, struct parse_state *ps)
{
	struct ct_options *o = ps->o;
	unsigned long long v = 0;
	char msg[256];	/* export: a message from sink.c or metrics.c */
	int err = 0;

	switch (key) {
	case 'j':
		o->json = true;
		break;
	case 'd':
		o->detail = true;
		break;
	case OPT_NO_AGGREGATE:
		o->no_aggregate = true;
		break;
	case OPT_COLOR:
		if (!strcmp(arg, "auto"))
			o->color = -1;
		else if (!strcmp(arg, "always"))
			o->color = 1;
		else if (!strcmp(arg, "never"))
			o->color = 0;
		else
			err = fail(ps, "--color: '%s' is not auto, always or never", esc(arg));
		break;
	case 'o':
		if (!arg[0] || strlen(arg) >= sizeof(o->output))
			err = fail(ps, "--output: '%s' is not a usable file name", esc(arg));
		else	/* "-": standard output */
			snprintf(o->output, sizeof(o->output), "%s", strcmp(arg, "-") ? arg : "");
		break;
	case OPT_ROTATE_SIZE:
		if (sink_parse_size("--rotate-size", arg, &o->rotate_size, msg, sizeof(msg)))
			err = fail(ps, "%s", msg);
		break;
	case OPT_BUFFER:
		if (sink_parse_size("--buffer", arg, &o->buffer_size, msg, sizeof(msg)))
			err = fail(ps, "%s", msg);
		break;
	case OPT_ROTATE_KEEP:
		err = parse_num(ps, "--rotate-keep", arg, 1, SINK_MAX_KEEP, "a number of files", &v);
		o->rotate_keep = v;
		break;
	case OPT_METRICS:
		o->metrics = true;
		if (metrics_parse_addr(arg, &o->metrics_addr, &o->metrics_addrlen, msg,
				       sizeof(msg)))
			err = fail(ps, "%s", msg);
		break;
	default:
		return ARGP_ERR_UNKNOWN;
	}
	return err;
}

static error_t parse_opt(int key, char *arg, struct argp_state *state)
{
	struct parse_state *ps = state->input;
	error_t err;

	/* each group answers ARGP_ERR_UNKNOWN for keys that are not its own */
	err = parse_trace_opt(key, arg, ps);
	if (err == ARGP_ERR_UNKNOWN)
		err = parse_output_opt(key, arg, ps);
	if (err != ARGP_ERR_UNKNOWN)
		return err;
	switch (key) {
	case '?':
		argp_help(state->root_argp, stdout, ARGP_HELP_STD_HELP, state->name);
		exit(0);
	case OPT_USAGE:
		argp_help(state->root_argp, stdout, ARGP_HELP_USAGE, state->name);
		exit(0);
	case 'V':
		printf("%s\n", argp_program_version);
		exit(0);
	case ARGP_KEY_ARG:
		return fail(ps, "unexpected argument '%s'", esc(arg));
	default:
		return ARGP_ERR_UNKNOWN;
	}
}

/*
 * The long option that a (possibly abbreviated) name means: an exact match,
 * or the only option it is a prefix of, as getopt_long takes them.
 */
static const struct argp_option *find_long(const char *name, size_t n)
{
	const struct argp_option *opt, *found = NULL;
	int matches = 0;

	for (opt = options; opt->name || opt->doc; opt++) {
		if (!opt->name || strncmp(opt->name, name, n))
			continue;
		if (strlen(opt->name) == n)
			return opt;
		found = opt;
		matches++;
	}
	return matches == 1 ? found : NULL;
}

/*
 * argp with ARGP_NO_ERRS says only that something was wrong: find the first
 * argument that is not a known option, or a known one used wrongly.
 */
static void name_bad_option(struct parse_state *ps, int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const struct argp_option *opt;

		if (!strcmp(a, "--"))
			break;
		if (a[0] != '-' || !a[1])
			continue;
		if (a[1] == '-') {
			size_t n = strcspn(a + 2, "=");
			bool has_value = a[2 + n] == '=';

			opt = find_long(a + 2, n);
			if (!opt) {
				fail(ps, "unrecognized option '%s'", esc(a));
				return;
			}
			if (!opt->arg && has_value) {
				fail(ps, "option '--%s' doesn't allow an argument", opt->name);
				return;
			}
			if (opt->arg && !has_value && i + 1 >= argc) {
				fail(ps, "option '--%s' requires an argument", opt->name);
				return;
			}
			if (opt->arg && !has_value)
				i++;
			continue;
		}
		for (const char *c = a + 1; *c; c++) {
			for (opt = options; opt->name || opt->doc; opt++)
				if (opt->key == *c)
					break;
			if (!opt->name && !opt->doc) {
				fail(ps, "invalid option -- '%s'", esc((char[2]){ *c, 0 }));
				return;
			}
			if (opt->arg) {
				if (!c[1] && i + 1 >= argc) {
					fail(ps, "option requires an argument -- '%c'", *c);
					return;
				}
				if (!c[1])
					i++;
				break;
			}
		}
	}
	fail(ps, "bad command line");
}

int ct_options_parse(struct ct_options *o, int argc, char **argv, char *err, size_t errsz)
{
	static const struct argp argp = { options, parse_opt, NULL, doc, NULL, NULL, NULL };
	struct parse_state ps = { .o = o, .err = err, .errsz = errsz };
	int rc;

	memset(o, 0, sizeof(*o));
	o->tc.slow_ns = 1000 * 1000000ULL;
	o->tc.ring_size = 1 << 20;
	o->tc.max_flows = 65536;
	o->tc.direction = CT_DIR_IN | CT_DIR_OUT;
	o->color = -1;
	o->buffer_size = CT_DEFAULT_BUFFER;
	o->phase_mask = (1u << CT_PHASE_CONNECT) | (1u << CT_PHASE_ESTABLISHED);

	rc = argp_parse(&argp, argc, argv, ARGP_NO_ERRS | ARGP_NO_HELP, NULL, &ps);
	if (rc && !ps.failed)
		name_bad_option(&ps, argc, argv);
	if (rc || ps.failed)
		return -EINVAL;

	if (!o->verdict_mask) {
		o->verdict_mask = ~0u & ~(1u << CT_V_OK);
		if (o->all)
			o->verdict_mask |= 1u << CT_V_OK;
	}
	/* export: options that need another */
	if (o->rotate_size && !o->output[0]) {
		snprintf(err, errsz, "--rotate-size: needs --output FILE");
		return -EINVAL;
	}
	if (o->rotate_keep && !o->rotate_size) {
		snprintf(err, errsz, "--rotate-keep: needs --rotate-size");
		return -EINVAL;
	}
	/* the kernel only sends fast clean connects when someone prints them, or
	 * counts them: --metrics counts every verdict, --verdict or not */
	/* OK attempts not printed are counted in the kernel, durations too (issue 11) */
	o->tc.emit_ok = o->verdict_mask & (1u << CT_V_OK);
	return 0;
}
