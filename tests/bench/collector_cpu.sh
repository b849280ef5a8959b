#!/bin/bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# conntrace's own CPU time (user + system, /proc/PID/stat) per attempt during
# a refused storm in a namespace of its own, its output to /dev/null (a
# reader that never lags). For comparing two builds, alternated:
#
#   for r in 1 2 3; do for b in /tmp/before/conntrace ./conntrace; do
#     CONNTRACE=$b tests/bench/collector_cpu.sh 4 -j; done; done
#
# usage: collector_cpu.sh SECONDS [conntrace options]   (as root; make build/bench/loadgen)
set -eu
SECS=${1:?usage: collector_cpu.sh SECONDS [conntrace options]}; shift
HERE=$(cd "$(dirname "$0")" && pwd)
CT=${CONNTRACE:-$HERE/../../conntrace}
LOADGEN=$HERE/../../build/bench/loadgen
NS=ct-colcpu-$$
ERR=$(mktemp)
cleanup() { [ -n "${PID:-}" ] && kill -INT "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
            ip netns del "$NS" 2>/dev/null; rm -f "$ERR"; }
trap cleanup EXIT
ip netns add "$NS"
ip -n "$NS" link set lo up
"$CT" --netns "$(stat -L -c %i /run/netns/$NS)" "$@" > /dev/null 2>"$ERR" & PID=$!
sleep 2
kill -0 "$PID" || { echo "conntrace exited: $(cat "$ERR")" >&2; exit 1; }
cpu() { awk '{print $14 + $15}' "/proc/$PID/stat"; }
t0=$(cpu)
out=$(ip netns exec "$NS" "$LOADGEN" refused --duration "$SECS" --threads 2 --port 9998)
sleep 1	# what the storm left in the ring
t1=$(cpu)
python3 - "$t0" "$t1" "$out" "$(getconf CLK_TCK)" <<'PY'
import json, sys
t0, t1, hz = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[4])
lg = json.loads(sys.argv[3])
n = lg["attempts"]
print(f"{n} refused attempts, {lg['rate']:.0f}/s; conntrace CPU {(t1 - t0) / hz:.2f} s "
      f"= {(t1 - t0) / hz / n * 1e6:.2f} us an attempt")
PY
