#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Investigation behind BENCHMARKS.md: what the ring buffer's wakeup policy costs
# in the kernel. One refused-connect storm (2 s, loopback, a throwaway netns)
# under `conntrace -j --ring-size SIZE`; prints the mean run time of the
# inet_sock_set_state program (the one that emits flows), the IRQ-work
# interrupts the machine took, and the records conntrace lost.
#
#   tests/bench/ring-wakeups.sh 1M 64M     (from the repository, as root, after make bench)
#
# The collector wakes early once a quarter of the ring is used; from then on
# every record is sent with BPF_RB_FORCE_WAKEUP. A ring too big to reach that
# point shows the cost without the forced wakeups.
set -euo pipefail
cd "$(dirname "$0")/../.."

CONNTRACE=${CONNTRACE:-./conntrace}
LOADGEN=${LOADGEN:-build/bench/loadgen}
NS=ctbench-ring-$$
OUT=/dev/shm/ctbench-ring-$$.out
CT=
STATS_OLD=$(cat /proc/sys/kernel/bpf_stats_enabled)

cleanup() {
	[ -n "$CT" ] && kill -INT "$CT" 2>/dev/null && wait "$CT" 2>/dev/null
	echo "$STATS_OLD" > /proc/sys/kernel/bpf_stats_enabled
	ip netns del "$NS" 2>/dev/null || true
	rm -f "$OUT"
}
trap cleanup EXIT INT TERM

# run_time_ns and run_cnt summed over the given program ids
prog_stats() {
	bpftool prog show -j | /usr/bin/python3 -c '
import json, sys
ids = {int(x) for x in sys.argv[1:]}
t = n = 0
for p in json.load(sys.stdin):
    if p["id"] in ids:
        t += p.get("run_time_ns", 0)
        n += p.get("run_cnt", 0)
print(t, n)' "$@"
}

irq_work() { awk '/IWI/ { s = 0; for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) s += $i; print s }' /proc/interrupts; }

ip netns add "$NS"
ip -n "$NS" link set lo up
ip netns exec "$NS" sysctl -q -w net.ipv4.ip_local_port_range="10000 65535"

for size in "${@:-1M 64M}"; do
	"$CONNTRACE" -j --ring-size "$size" > "$OUT" 2>/dev/null &
	CT=$!
	until grep -q '"type":"start"' "$OUT" 2>/dev/null; do sleep 0.05; done
	ids=$(bpftool perf show -j | /usr/bin/python3 -c '
import json, sys
print(" ".join(str(e["prog_id"]) for e in json.load(sys.stdin)
               if e["pid"] == int(sys.argv[1]) and e.get("tracepoint") == "inet_sock_set_state"))' "$CT")
	echo 1 > /proc/sys/kernel/bpf_stats_enabled
	read -r t0 n0 < <(prog_stats $ids)
	i0=$(irq_work)
	attempts=$(ip netns exec "$NS" "$LOADGEN" refused --duration 2 --port 5002 |
		/usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["attempts"])')
	i1=$(irq_work)
	read -r t1 n1 < <(prog_stats $ids)
	echo "$STATS_OLD" > /proc/sys/kernel/bpf_stats_enabled
	sleep 2
	kill -INT "$CT"
	wait "$CT" || true
	CT=
	lost=$(grep -o '"lost_records":[0-9]*' "$OUT" | tail -1 | cut -d: -f2)
	echo "ring $size: $attempts refused attempts; inet_sock_set_state" \
		"$(( (t1 - t0) / (n1 - n0) )) ns/run over $(( n1 - n0 )) runs;" \
		"IRQ-work interrupts $(( i1 - i0 )); lost records ${lost:-?}"
done
