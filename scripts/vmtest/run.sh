#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Run a command as root inside a guest booted on the second kernel (Debian's
# 6.1, see common.sh), with the host's whole root filesystem shared read-only
# over virtio-9p, so the guest has the host's userland and this repo's
# freshly built binaries at the same absolute paths.
#
#   scripts/vmtest/run.sh [options] -- CMD [ARG...]
#
# Options:
#   --timeout SEC    kill the guest after SEC seconds (default 600, or $VMTEST_TIMEOUT)
#   --env NAME=VAL   set NAME in the guest's environment (repeatable)
#   --env NAME       pass the host's value of NAME into the guest
#   --rw DIR         share host directory DIR writable, at the same path (repeatable)
#   --modules A,B    load these guest modules at boot, besides the default set
#   --cwd DIR        run CMD in DIR (default: the current directory)
#   --mem SIZE       guest memory (default 2G)     --smp N  guest CPUs (default 2)
#   --quiet          do not stream the console; print its tail only on failure
#   --kmsg           show all kernel boot messages (no `quiet` on the command line)
#
# CMD runs with a clean environment (PATH, HOME=/tmp, LANG=C.UTF-8, TERM=dumb,
# VMTEST=1, VMTEST_KERNEL=<uname -r>, plus --env), stdin from /dev/null, and
# stdout/stderr on the guest console, which is streamed to this script's stdout.
# Writable in the guest: /tmp, /var/tmp, /run, /dev/shm (fresh tmpfs) and --rw dirs.
# The working directory and $VMTEST_CACHE are shared again at their own paths
# (read-only), so they are visible even under /tmp.
#
# Exit status: CMD's exit status in the guest; 124 if the timeout expired;
# 125 if the guest never reported one (failed boot, panic, harness error).
# A kernel WARNING/BUG/Oops/panic on the console fails the run (125) even if
# CMD passed.
# The whole console log of the last run is kept in $VMTEST_CACHE/last-console.log.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# Loaded at boot: what the integration tests use (nftables drop/reject rules,
# veth pairs, tun devices: /dev/net/tun appears only once tun is loaded).
# Anything else is autoloaded on first use, as on a normal system.
default_modules=nf_tables,nft_reject_inet,nft_reject_ipv4,nft_reject_ipv6,veth,tun

# usage [STATUS]: print the comment block at the top; on stderr if an error.
usage() {
	local st=${1:-2}
	sed -n '3,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}" >&$((st ? 2 : 1))
	exit "$st"
}

timeout=${VMTEST_TIMEOUT:-600}
mem=2G smp=2 quiet=0 kmsg=0 cwd=$PWD modules=$default_modules
envs=() rws=()
while [ $# -gt 0 ]; do
	case "$1" in
	--timeout) timeout=${2:?}; shift 2 ;;
	--env) envs+=("${2:?}"); shift 2 ;;
	--rw) rws+=("${2:?}"); shift 2 ;;
	--modules) modules+=",${2:?}"; shift 2 ;;
	--cwd) cwd=${2:?}; shift 2 ;;
	--mem) mem=${2:?}; shift 2 ;;
	--smp) smp=${2:?}; shift 2 ;;
	--quiet) quiet=1; shift ;;
	--kmsg) kmsg=1; shift ;;
	--) shift; break ;;
	-h | --help) usage 0 ;;
	*) echo "vmtest: unknown option $1" >&2; usage ;;
	esac
done
[ $# -gt 0 ] || { echo "vmtest: no command given" >&2; usage; }
[[ $timeout =~ ^[1-9][0-9]*$ ]] || vmtest_die "--timeout wants whole seconds, got '$timeout'"

# Paths the guest must see as they are on the host. The guest puts fresh
# tmpfs on /tmp, /var/tmp, /run, /dev/shm and /boot, which hides the host's
# files there, so the working directory and the cache are also shared as
# read-only 9p mounts of their own, at the same paths, mounted over those
# tmpfs: a checkout anywhere (/tmp/x, say) works. Not allowed: the pseudo
# filesystems (the guest has its own), and whitespace or commas (the paths go
# on the kernel command line, comma-separated).
guest_visible() {
	case "$1/" in
	/proc/* | /sys/* | /dev/*) return 1 ;;
	esac
	[[ $1 == /* && $1 != *[[:space:],]* ]]
}
# share_ro DIR: share DIR read-only at its path, unless a directory already
# shared read-only contains it. Parents are added before their children.
ro_paths=()
share_ro() {
	local d=$1 p
	[ "$d" != / ] || return 0       # the host root share is that
	for p in ${ro_paths[@]+"${ro_paths[@]}"}; do
		case "$d/" in "$p"/*) return 0 ;; esac
	done
	ro_paths+=("$d")
}
cwd=$(cd "$cwd" && pwd -P)
guest_visible "$cwd" || vmtest_die "working directory $cwd cannot be shared with the guest (under /proc, /sys or /dev, or whitespace or a comma in it)"
guest_visible "$VMTEST_CACHE" || vmtest_die "VMTEST_CACHE=$VMTEST_CACHE cannot be shared with the guest"
# The shorter path first, so that a parent is shared before its children.
if [ ${#VMTEST_CACHE} -lt ${#cwd} ]; then
	share_ro "$VMTEST_CACHE"; share_ro "$cwd"
else
	share_ro "$cwd"; share_ro "$VMTEST_CACHE"
fi
rw_paths=()
for d in ${rws[@]+"${rws[@]}"}; do
	d=$(cd "$d" && pwd -P) || vmtest_die "--rw $d: no such directory"
	guest_visible "$d" || vmtest_die "--rw $d cannot be shared with the guest"
	rw_paths+=("$d")
done
[[ $modules =~ ^[A-Za-z0-9_,-]+$ ]] || vmtest_die "bad --modules list '$modules'"

# The kernel (idempotent) and an initramfs at least as new as its sources.
[ -f "$VMTEST_KDIR/.vmtest-complete" ] || "$VMTEST_DIR/fetch-kernel.sh"
if [ ! -f "$VMTEST_INITRAMFS" ] ||
	[ -n "$(find "$VMTEST_DIR/init" "$VMTEST_DIR/mkinitramfs.sh" "$VMTEST_DIR/common.sh" \
		-newer "$VMTEST_INITRAMFS")" ]; then
	"$VMTEST_DIR/mkinitramfs.sh"
fi

# One guest at a time on this machine: TCG keeps both cores busy.
exec 9>"$VMTEST_CACHE/vmtest.lock"
if ! flock -n 9; then
	vmtest_log "waiting for another vmtest guest to finish"
	flock 9
fi

mkdir -p "$VMTEST_CACHE/runs"
run=$(mktemp -d "$VMTEST_CACHE/runs/run.XXXXXX")
qpid=
# shellcheck disable=SC2317  # called from the EXIT trap
cleanup() {
	if [ -n "$qpid" ] && kill -0 "$qpid" 2>/dev/null; then
		kill -TERM "$qpid" 2>/dev/null || true
		for _ in 1 2 3 4 5; do kill -0 "$qpid" 2>/dev/null || break; sleep 1; done
		kill -KILL "$qpid" 2>/dev/null || true
		wait "$qpid" 2>/dev/null || true
	fi
	[ -z "${tpid:-}" ] || { kill "$tpid" 2>/dev/null || true; wait "$tpid" 2>/dev/null || true; }
	rm -rf "$run"
}
trap cleanup EXIT
trap 'vmtest_log "interrupted"; exit 130' INT TERM HUP

# A per-run token on the exit marker, so that output of CMD that happens to
# contain "VMTEST-EXIT=" (a test printing a log, say) cannot fake a result.
id=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')

# The job script: read by the guest's init over 9p (the cache is part of the
# shared host root) and run with `env -i` in the chroot.
job=$run/job.sh
{
	echo '# generated by scripts/vmtest/run.sh'
	echo 'export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
	echo 'export HOME=/tmp LANG=C.UTF-8 TERM=dumb VMTEST=1'
	# shellcheck disable=SC2016  # expanded in the guest
	echo 'export VMTEST_KERNEL=$(uname -r)'
	for e in ${envs[@]+"${envs[@]}"}; do
		name=${e%%=*}
		[[ $name =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || vmtest_die "--env $e: bad variable name"
		if [[ $e == *=* ]]; then
			val=${e#*=}
		else
			[ -n "${!name+set}" ] || vmtest_die "--env $name: not set on the host"
			val=${!name}
		fi
		printf 'export %s=%q\n' "$name" "$val"
	done
	printf 'cd -- %q || exit 125\n' "$cwd"
	printf 'exec'
	printf ' %q' "$@"
	printf '\n'
} >"$job"

append="console=ttyS0 panic=-1 rdinit=/init"
[ "$kmsg" = 1 ] || append+=" quiet"
append+=" vmtest.job=$job vmtest.id=$id vmtest.moddir=$VMTEST_MODDIR vmtest.modules=$modules"
[ ${#ro_paths[@]} -eq 0 ] || append+=" vmtest.ro=$(IFS=,; echo "${ro_paths[*]}")"
[ ${#rw_paths[@]} -eq 0 ] || append+=" vmtest.rw=$(IFS=,; echo "${rw_paths[*]}")"
# shellcheck disable=SC2054  # the commas belong to qemu's option syntax
qemu=(qemu-system-x86_64
	# KVM exists on these machines but does not boot guests: emulate.
	# One host thread for all vCPUs (thread=single, VMTEST_TCG_THREAD=multi
	# to change): with multi-threaded TCG a vCPU was seen spinning at a kernel
	# text site another vCPU had just patched (a tracepoint's static key, an
	# fentry call: attach/detach during a connect flood), 2 soft lockups in 13
	# runs of test_collector.py; none in 20 single-threaded, at the same speed.
	-accel "tcg,thread=${VMTEST_TCG_THREAD:-single}" -cpu max -m "$mem" -smp "$smp"
	# Serial console on stdio; no network device at all (tests use netns
	# loopback and veth only); a guest reboot (panic=-1) ends qemu.
	-nographic -vga none -nic none -no-reboot
	-kernel "$VMTEST_VMLINUZ" -initrd "$VMTEST_INITRAMFS" -append "$append"
	# The host root, read-only. multidevs=remap keeps inode numbers unique
	# across the host's filesystems seen through the one share.
	-virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap
	-pidfile "$run/qemu.pid")
# The working directory and the cache, read-only (tags ro0, ro1, ...): the
# host root share shows them too, but not where the guest mounts a tmpfs.
i=0
for d in ${ro_paths[@]+"${ro_paths[@]}"}; do
	qemu+=(-virtfs "local,path=$d,mount_tag=ro$i,security_model=none,readonly=on,multidevs=remap")
	i=$((i + 1))
done
i=0
for d in ${rw_paths[@]+"${rw_paths[@]}"}; do
	qemu+=(-virtfs "local,path=$d,mount_tag=rw$i,security_model=none,multidevs=remap")
	i=$((i + 1))
done

log=$run/console.log
# SeaBIOS resets and clears the "screen" on the serial line (ESC c, ESC [2J):
# strip terminal control sequences so a CI log or a terminal stays readable.
console_filter() { sed -u -e 's/\x1bc//g' -e 's/\x1b\[[0-9;?]*[A-Za-z]//g' -e 's/\r$//'; }
vmtest_log "booting $VMTEST_KREL (timeout ${timeout}s): $*"
start=$SECONDS
# qemu runs in the background so that the timeout and signals are handled
# here (a non-interactive shell's background jobs ignore SIGINT; cleanup
# stops qemu by pid). The console goes to a file, streamed by tail.
: >"$log"   # exists before tail opens it (the redirection below is in the child)
"${qemu[@]}" </dev/null >>"$log" 2>&1 &
qpid=$!
tpid=
if [ "$quiet" = 0 ]; then
	tail -n +1 -f -s 0.2 --pid="$qpid" "$log" | console_filter &
	tpid=$!
fi
timed_out=0
while kill -0 "$qpid" 2>/dev/null; do
	if [ $((SECONDS - start)) -ge "$timeout" ]; then
		timed_out=1
		break
	fi
	sleep 0.2
done
if [ "$timed_out" = 1 ]; then
	kill -TERM "$qpid" 2>/dev/null || true
	for _ in 1 2 3 4 5; do kill -0 "$qpid" 2>/dev/null || break; sleep 1; done
	kill -KILL "$qpid" 2>/dev/null || true
fi
qrc=0
wait "$qpid" || qrc=$?
qpid=
if [ -n "$tpid" ]; then wait "$tpid" || true; tpid=; fi
elapsed=$((SECONDS - start))
console_filter <"$log" >"$VMTEST_CACHE/last-console.log"

fail() {
	vmtest_log "FAILED: $*"
	echo "----- vmtest: console log tail (full log: $VMTEST_CACHE/last-console.log) -----"
	tail -n 60 "$VMTEST_CACHE/last-console.log"
	echo "----- vmtest: end of console log tail -----"
}

marker=$(grep -a -o "VMTEST-EXIT=[0-9]* id=$id\$" "$VMTEST_CACHE/last-console.log" | tail -n 1 || true)
rc=${marker#VMTEST-EXIT=}
rc=${rc%% *}
# Kernel messages carry a printk timestamp; CMD's own output rarely does.
# init shows warnings (level 4) on the console while CMD runs, so a WARN()
# splat is seen here as well as a BUG, an oops or a panic: each fails the run.
kre='\[ *[0-9]+\.[0-9]+\] '
oops=$(grep -a -E "$kre.*(Kernel panic|BUG:|kernel BUG|Oops|general protection|WARNING:|UBSAN:)" \
	"$VMTEST_CACHE/last-console.log" | head -n 10 || true)
if [ "$timed_out" = 1 ]; then
	fail "guest still running after ${timeout}s: killed"
	exit 124
elif [ -z "$marker" ]; then
	fail "guest stopped after ${elapsed}s (qemu exit $qrc) without reporting an exit status: boot failure, panic or harness error"
	exit 125
elif [ -n "$oops" ]; then
	fail "the guest kernel logged a WARNING, BUG, Oops or panic (exit status of CMD: $rc):"$'\n'"$oops"
	exit 125
fi
vmtest_log "guest finished in ${elapsed}s: exit status $rc"
# With --quiet nothing was shown yet: show what the failing command printed.
[ "$quiet" = 0 ] || [ "$rc" = 0 ] || fail "command exited with status $rc"
exit "$rc"
