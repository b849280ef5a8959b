#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Soak: conntrace under ten minutes of mixed connection attempts, to show
# that its memory stays flat and that it loses nothing. Not part of
# `make test`; run it with `make soak` (root, after `make`).
#
#   scripts/soak.sh [--duration SEC] [--out DIR] [--ring-size BYTES] [--all-traffic]
#
# In a namespace of its own, every second: 100 connects that succeed
# (synflood --accept), 5 to an address where nothing listens (REFUSED), 2
# abandoned after 300 ms against an nft drop (ABANDONED), 2 to a route that
# is unreachable (UNREACHABLE) and 1 left to time out (TIMEOUT, about 7 s
# each with tcp_syn_retries=2). `conntrace -j -a` runs throughout with its
# default sizes; its RSS is sampled every 5 s. At the end every attempt must
# have exactly its verdict, with no lost record, no eviction, and RSS flat.
#
# Every attempt goes to one port below 1024 (on 127.0.0.1 to 127.0.0.3 and
# the unreachable address), and conntrace runs with `--port` on it: on a
# machine shared with other floods, the ring buffer then carries only the
# soak's records, while the kernel side still follows every connection on
# the machine. --all-traffic drops the filter (for a machine of its own).
#
# Output in DIR (default build/soak): conntrace.jsonl, rss.tsv, attempts
# (one line per attempt made), and report.md: the result, ready for
# BENCHMARKS.md. Exit status 0 when the soak passed, 1 when it did not.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=600
OUT=build/soak
RING=
ALL=
while [ $# -gt 0 ]; do
	case "$1" in
	--duration) DURATION=$2; shift 2 ;;
	--out) OUT=$2; shift 2 ;;
	--ring-size) RING=$2; shift 2 ;;
	--all-traffic) ALL=1; shift ;;
	-h|--help) sed -n '3,26p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "soak: unknown argument '$1' (see --help)" >&2; exit 2 ;;
	esac
done
case "$DURATION" in ''|*[!0-9]*) echo "soak: --duration wants seconds" >&2; exit 2 ;; esac
[ "$(id -u)" -eq 0 ] || { echo "soak: must run as root (BPF, network namespaces)" >&2; exit 1; }

CONNTRACE=${CONNTRACE:-./conntrace}
TOOLS=build/tests
PY=/usr/bin/python3
for f in "$CONNTRACE" "$TOOLS/ctclient" "$TOOLS/ctlisten" "$TOOLS/synflood"; do
	[ -x "$f" ] || { echo "soak: $f missing: run make first" >&2; exit 1; }
done

NS=ctsoak-$$
PORT=$((600 + $$ % 400))	# every attempt's destination port
A_OK=127.0.0.1		# synflood's own listener: OK
A_CLOSED=127.0.0.2	# nothing listens: REFUSED
A_DROP=127.0.0.3	# a listener behind an nft drop: ABANDONED, TIMEOUT
UNREACH=198.51.100.1	# only ever behind an unreachable route in $NS

mkdir -p "$OUT"
rm -f "$OUT"/conntrace.jsonl "$OUT"/rss.tsv "$OUT"/attempts "$OUT"/report.md
PIDS=()
CT_PID=

cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	[ -n "$CT_PID" ] && kill -INT "$CT_PID" 2>/dev/null || true
	# whatever still runs in the namespace (listener, clients)
	ip netns pids "$NS" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
	wait 2>/dev/null || true
	ip netns del "$NS" 2>/dev/null || true
}
trap cleanup EXIT

inns() { ip netns exec "$NS" "$@"; }

ip netns add "$NS"
ip -n "$NS" link set lo up
inns sysctl -q -w net.ipv4.tcp_syn_retries=2 net.core.somaxconn=65535
ip -n "$NS" route add unreachable 198.51.100.0/24
# the safety check before any attempt to a non-loopback address
if ip -n "$NS" route get "$UNREACH" >/dev/null 2>&1; then
	echo "soak: $UNREACH is routable in $NS; refusing to run" >&2
	exit 1
fi
inns nft -f - <<EOF
table inet soak {
	chain input {
		type filter hook input priority 0; policy accept;
		ip daddr $A_DROP tcp dport $PORT tcp flags & (syn | ack) == syn drop
	}
}
EOF
NETNS_INODE=$(stat -Lc %i "/run/netns/$NS")
ip netns exec "$NS" "$TOOLS/ctlisten" --addr "$A_DROP" "$PORT" >/dev/null 2>&1 &
PIDS+=($!)

FILTER=(--port "$PORT")
[ -z "$ALL" ] || FILTER=()
"$CONNTRACE" -j -a "${FILTER[@]}" ${RING:+--ring-size "$RING"} \
	>"$OUT/conntrace.jsonl" 2>"$OUT/conntrace.err" &
CT_PID=$!
for _ in $(seq 100); do
	grep -q '"type":"start"' "$OUT/conntrace.jsonl" 2>/dev/null && break
	kill -0 "$CT_PID" 2>/dev/null || { cat "$OUT/conntrace.err" >&2; exit 1; }
	sleep 0.2
done
grep -q '"type":"start"' "$OUT/conntrace.jsonl" || { echo "soak: conntrace did not start" >&2; exit 1; }

# One line per attempt in $OUT/attempts: the verdict it must get, and for
# ctclient's the result it printed (pid, source port, errno, time).
attempt() {	# VERDICT CTCLIENT-ARGS...
	local v=$1 res
	shift
	res=$(inns "$TOOLS/ctclient" --name "soak-$v" "$@" 2>/dev/null | tail -1) &&
		printf '%s\t%s\n' "$v" "$res" >>"$OUT/attempts"
}

START=$(date +%s)
END=$((START + DURATION))
echo "soak: $DURATION s of mixed load in $NS (netns $NETNS_INODE), conntrace pid $CT_PID, output in $OUT"
printf 't_s\trss_kb\n' >"$OUT/rss.tsv"
(	# RSS every 5 s
	while kill -0 "$CT_PID" 2>/dev/null; do
		printf '%s\t%s\n' "$(($(date +%s) - START))" \
			"$(awk '/^VmRSS/ {print $2}' "/proc/$CT_PID/status")" >>"$OUT/rss.tsv"
		sleep 5
	done
) &
PIDS+=($!)

sec=0
while [ "$(date +%s)" -lt "$END" ]; do
	tick=$(date +%s.%N)
	n=$(inns "$TOOLS/synflood" --accept --count 100 --concurrency 100 --name soak-ok \
		"$A_OK" "$PORT" | sed -n 's/.*"count":\([0-9]*\).*"failed":0.*/\1/p')
	[ -n "$n" ] && for _ in $(seq "$n"); do echo ok; done >>"$OUT/attempts"
	for _ in 1 2 3 4 5; do attempt refused "$A_CLOSED" "$PORT"; done
	for _ in 1 2; do attempt abandoned --nonblock --abandon-after 300 "$A_DROP" "$PORT" & done
	for _ in 1 2; do attempt unreachable "$UNREACH" "$PORT"; done
	attempt timeout "$A_DROP" "$PORT" &
	sec=$((sec + 1))
	if [ $((sec % 60)) -eq 0 ]; then
		echo "soak: $((sec / 60)) min, $(wc -l <"$OUT/attempts") attempts, conntrace RSS" \
			"$(awk '/^VmRSS/ {print $2 " " $3}' "/proc/$CT_PID/status")"
	fi
	sleep "$($PY -c "import sys; print(max(0.0, 1 - ($(date +%s.%N) - $tick)))")"
done
echo "soak: load stopped; waiting for the last timeouts"
# attempts still running (timeouts take about 7 s) end on their own
for _ in $(seq 30); do
	[ -z "$(pgrep -f "ctclient --name soak-" || true)" ] && break
	sleep 1
done
sleep 2
# programs the kernel skipped (a tracepoint firing while the program already
# ran on that CPU): the kernel counts them, conntrace does not report them yet
for fd in /proc/"$CT_PID"/fdinfo/*; do
	awk '/^prog_id:/ {print $2}' "$fd" 2>/dev/null
done | sort -u | while read -r id; do
	bpftool -j prog show id "$id" 2>/dev/null
	echo
done >"$OUT/progs.jsonl"
kill -INT "$CT_PID"
wait "$CT_PID" && rc=0 || rc=$?
CT_PID=
STOPPED=$(date +%s)

$PY - "$OUT" "$NETNS_INODE" "$rc" "$DURATION" "$((STOPPED - START))" "${ALL:-$PORT}" <<'EOF'
import collections, json, sys
out, netns, rc, duration, elapsed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), \
    int(sys.argv[4]), int(sys.argv[5])
port = None if sys.argv[6] == "1" else int(sys.argv[6])
attempts = [(l.rstrip("\n").split("\t", 1) + [""])[:2] for l in open(f"{out}/attempts")]
want = collections.Counter(a[0] for a in attempts)
verdicts = []
got, bad, summary, lost, start = collections.Counter(), 0, None, [], None
for line in open(f"{out}/conntrace.jsonl", "rb"):
    try:
        r = json.loads(line)
    except ValueError:
        bad += 1
        continue
    t = r.get("type")
    if t == "verdict" and r.get("netns") == netns:
        got[r["verdict"]] += 1
        verdicts.append(r)
    elif t == "summary":
        summary = r
    elif t == "lost":
        lost.append(r)
    elif t == "start":
        start = r
misses = {}
for l in open(f"{out}/progs.jsonl"):
    if l.strip():
        p = json.loads(l)
        misses[p["name"]] = misses.get(p["name"], 0) + p.get("recursion_misses", 0)
rss = [tuple(map(int, l.split())) for l in open(f"{out}/rss.tsv").readlines()[1:] if l.strip()]
warm = [kb for t, kb in rss if 60 <= t < 120] or [rss[0][1]]
tail = [kb for t, kb in rss if t >= max(rss[-1][0] - 120, 0)]
growth = max(tail) - max(warm)
problems = []
if rc != 0:
    problems.append(f"conntrace exit status {rc}")
if bad:
    problems.append(f"{bad} lines of output are not JSON")
if summary is None:
    problems.append("no summary record")
else:
    for k in ("lost_records", "flow_evictions", "flow_table_full", "malformed_records"):
        if summary[k]:
            problems.append(f"summary {k} = {summary[k]}")
if lost:
    problems.append(f"{len(lost)} lost records in the stream")
for v in sorted(set(want) | set(got)):
    if want[v] != got[v]:
        problems.append(f"{v}: {want[v]} attempts made, {got[v]} verdicts")
# ctclient's attempts one by one: (verdict, pid) names one
seen = {(r["verdict"], r["pid"]) for r in verdicts}
for v, res in attempts:
    if res:
        c = json.loads(res)
        if (v, c["pid"]) not in seen:
            problems.append(f"no {v} verdict for ctclient {res}")
if summary and summary.get("missed_events", 0) < sum(misses.values()):
    problems.append(f"the kernel skipped conntrace's programs {sum(misses.values())} times; "
                    f"conntrace reported {summary.get('missed_events', 0)}")
if growth > 1024:
    problems.append(f"RSS grew {growth} kB between minute 2 and the last 2 minutes")
verdict = "PASS" if not problems else "FAIL"
total = sum(want.values())
lines = [
    f"### Soak: {verdict}",
    "",
    f"`make soak`: {duration} s of mixed load ({elapsed} s with the drain), "
    f"kernel {start['kernel'] if start else '?'}, conntrace {start['version'] if start else '?'}, "
    "default ring buffer (1 MiB) and flow table (65536), "
    + (f"`--port {port}` (the soak's own traffic only)." if port else "no filter (all traffic)."),
    "",
    "| attempts | made | verdicts |",
    "|---|---:|---:|",
    *[f"| {v} | {want[v]} | {got[v]} |" for v in sorted(set(want) | set(got))],
    f"| total | {total} | {sum(got.values())} |",
    "",
    f"- lost records {summary['lost_records'] if summary else '?'}, "
    f"flow evictions {summary['flow_evictions'] if summary else '?'}, "
    f"all flows seen on the machine {summary['flows'] if summary else '?'} "
    f"(other processes' included), verdicts printed "
    f"{sum(summary['verdicts'].values()) if summary else '?'}",
    f"- programs skipped by the kernel (recursion_misses): {sum(misses.values())} "
    f"({', '.join(f'{n} {m}' for n, m in sorted(misses.items()) if m) or 'none'}); "
    f"evidence left unmatched {summary['evidence_unmatched'] if summary else '?'}, "
    f"flows untracked {summary['flows_untracked'] if summary else '?'}",
    f"- RSS (kB): start {rss[0][1]}, minute 2 max {max(warm)}, last 2 minutes max "
    f"{max(tail)}, end {rss[-1][1]}, peak {max(kb for _, kb in rss)}; "
    f"growth after warm-up {growth} kB ({len(rss)} samples, every 5 s)",
]
if problems:
    lines += ["", "Problems:", *[f"- {p}" for p in problems]]
report = "\n".join(lines) + "\n"
open(f"{out}/report.md", "w").write(report)
print(report)
sys.exit(0 if not problems else 1)
EOF
