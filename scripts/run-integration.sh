#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Run the integration tests (pytest, real kernel) so that a run that cannot
# test, hangs, or upsets the kernel fails instead of passing:
#
#   scripts/run-integration.sh --check
#       only the preconditions (root, kernel BTF): one line and exit 1 if unmet
#   scripts/run-integration.sh [--timeout SEC] [TEST...] [-- PYTEST-ARG...]
#       without TEST: the whole suite in two pytest runs (everything but
#       test_faults.py, then test_faults.py, whose floods run on their own);
#       with TEST (files or node ids): those, in one run
#
# Every pytest run gets SEC seconds (default $INTEGRATION_TIMEOUT, else 600);
# then it is interrupted (SIGINT: fixtures clean up, pytest shows where it
# was), killed 60 s later, and the run fails saying so. Afterwards the kernel
# log written during the runs must hold no WARNING, BUG, Oops, general
# protection fault or panic. Environment: PYTHON (default /usr/bin/python3);
# CONNTRACE and CT_TOOLS_DIR go through to the tests.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2

PYTHON=${PYTHON:-/usr/bin/python3}
FAULTS=tests/integration/test_faults.py
timeout=${INTEGRATION_TIMEOUT:-600}
# What counts as the kernel complaining: splats of WARN(), BUG(), oopses,
# sanitizers built into the kernel, panics.
KLOG_RE='WARNING:|BUG:|kernel BUG|Oops|general protection|Kernel panic|UBSAN:'

say() { printf 'integration: %s\n' "$*" >&2; }

# check: why the tests cannot run here, in one line; nothing if they can.
check() {
	if [ "$(id -u)" -ne 0 ]; then
		echo "cannot run: not root (the tests load BPF programs and create network namespaces); run as root, e.g. sudo make test"
	elif [ ! -r /sys/kernel/btf/vmlinux ]; then
		echo "cannot run: no kernel BTF at /sys/kernel/btf/vmlinux (a kernel built without CONFIG_DEBUG_INFO_BTF); conntrace needs it"
	fi
}

tests=() extra=() check_only=0
while [ $# -gt 0 ]; do
	case "$1" in
	--check) check_only=1; shift ;;
	--timeout) timeout=${2:?}; shift 2 ;;
	--) shift; extra=("$@"); break ;;
	*) tests+=("$1"); shift ;;
	esac
done
[[ $timeout =~ ^[1-9][0-9]*$ ]] || { say "--timeout wants whole seconds, got '$timeout'"; exit 2; }
why=$(check)
[ -z "$why" ] || { say "$why"; exit 1; }
[ "$check_only" = 0 ] || exit 0

# The kernel log: remember the timestamp of its last line now, and look only
# at newer lines afterwards (timestamps only grow, so a ring buffer that wraps
# meanwhile hides nothing new). Without printk timestamps: the line count.
klog_mark() {
	local ts
	ts=$(dmesg | sed -n '$s/^\[ *\([0-9]*\.[0-9]*\)\].*/\1/p')
	if [ -n "$ts" ]; then echo "t $ts"; else echo "n $(dmesg | wc -l)"; fi
}
klog_since() {
	case "$1" in
	t\ *) dmesg | awk -v t="${1#t }" 'match($0, /^\[ *[0-9]+\.[0-9]+\]/) &&
		substr($0, 2, RLENGTH - 2) + 0 > t + 0' ;;
	n\ *) dmesg | tail -n +"$((${1#n } + 1))" ;;
	esac
}
dmesg >/dev/null || { say "cannot read the kernel log (dmesg) to check it after the tests"; exit 1; }
mark=$(klog_mark)

# pytest_run NAME ARG...: one pytest run under the timeout; records its result.
results=() failed=0
pytest_run() {
	local name=$1 start=$SECONDS rc=0 took
	shift
	timeout --foreground -s INT -k 60 "$timeout" \
		"$PYTHON" -m pytest -v -p no:cacheprovider "$@" ${extra[@]+"${extra[@]}"} || rc=$?
	took=$((SECONDS - start))
	if [ "$rc" = 124 ] || { [ "$rc" = 137 ] && [ "$took" -ge "$timeout" ]; }; then
		say "$name: no result within ${timeout}s: interrupted (INTEGRATION_TIMEOUT raises the limit)"
		results+=("$name: TIMED OUT after ${took}s")
		failed=1
	elif [ "$rc" != 0 ]; then
		results+=("$name: FAILED (pytest exit $rc) in ${took}s")
		failed=1
	else
		results+=("$name: passed in ${took}s")
	fi
}

if [ ${#tests[@]} -gt 0 ]; then
	pytest_run "${tests[*]}" "${tests[@]}"
else
	pytest_run "tests/integration (but test_faults.py)" --ignore="$FAULTS" tests/integration
	pytest_run "$FAULTS" "$FAULTS"
fi

problems=$(klog_since "$mark" | grep -E "$KLOG_RE")
if [ -n "$problems" ]; then
	say "the kernel logged $(printf '%s\n' "$problems" | wc -l) problem line(s) during the tests:"
	printf '%s\n' "$problems" | head -n 40 >&2
	results+=("kernel log: FAILED (WARNING/BUG/Oops above; dmesg has the full log)")
	failed=1
else
	results+=("kernel log: clean (no WARNING, BUG, Oops, general protection, panic)")
fi
for r in "${results[@]}"; do say "$r"; done
exit "$failed"
