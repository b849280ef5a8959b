#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# shellcheck disable=SC2016  # the bash -c scripts expand in the child
# Check that the vmtest guest offers what conntrace's tests need. Meant to
# run inside the guest:  scripts/vmtest/run.sh -- scripts/vmtest/selftest.sh
# Prints one PASS/FAIL line per check and exits non-zero if any failed.
set -euo pipefail

[ "${VMTEST:-}" = 1 ] || { echo "selftest: run me inside the guest: scripts/vmtest/run.sh -- $0" >&2; exit 2; }

work=$(mktemp -d)
trap 'ip netns del vt-a 2>/dev/null || true; ip netns del vt-b 2>/dev/null || true; rm -rf "$work"' EXIT
pass=0 fail=0
# check NAME CMD...: run CMD (its output indented), record the outcome.
check() {
	local name=$1 out rc=0
	shift
	out=$("$@" 2>&1) || rc=$?
	[ -z "$out" ] || printf '%s\n' "$out" | sed 's/^/    /'
	if [ $rc -eq 0 ]; then
		echo "PASS $name"
		pass=$((pass + 1))
	else
		echo "FAIL $name (exit $rc)"
		fail=$((fail + 1))
	fi
}

check "kernel is 6.1 (uname -r)" bash -c 'uname -r; [[ $(uname -r) == 6.1.* ]]'
check "we are root" bash -c '[ "$(id -u)" = 0 ]'
check "writable /tmp, /run, /var/tmp, /dev/shm" \
	bash -c 'for d in /tmp /run /var/tmp /dev/shm; do touch $d/.vt && rm $d/.vt || exit 1; done'
check "/usr/bin/python3 imports pytest" /usr/bin/python3 -c 'import pytest, sys; print(sys.version.split()[0], "pytest", pytest.__version__)'

# Network namespaces, loopback, veth.
check "ip netns add + lo up" bash -c \
	'ip netns add vt-a && ip -n vt-a link set lo up &&
	 ip -n vt-a link show lo | grep -q "<LOOPBACK,UP" && ip -n vt-a -br addr show lo | grep 127.0.0.1'
check "veth pair between namespaces" bash -c \
	'ip netns add vt-b &&
	 ip link add vt0 netns vt-a type veth peer name vt1 netns vt-b &&
	 ip -n vt-a addr add 192.0.2.1/24 dev vt0 && ip -n vt-a link set vt0 up &&
	 ip -n vt-b addr add 192.0.2.2/24 dev vt1 && ip -n vt-b link set vt1 up &&
	 ip -n vt-a -br link show vt0'
# nftables in a namespace: a reject rule (preloaded nft_reject_inet) and a
# ct rule (nft_ct is not preloaded: exercises module autoload).
check "nft ruleset in a netns (reject + ct autoload)" bash -c '
	ip netns exec vt-a nft -f - <<EOF
table inet vt {
	chain input {
		type filter hook input priority 0; policy accept;
		ct state established,related accept
		tcp dport 9 reject with tcp reset
		tcp dport 10 drop
	}
}
EOF
	ip netns exec vt-a nft list ruleset | grep -q "reject with tcp reset" &&
	grep -q "^nft_ct " /proc/modules'
# TCP on the namespace's loopback, through those rules.
check "TCP over netns loopback: accept, RST, drop" ip netns exec vt-a /usr/bin/python3 -c '
import errno, socket
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(1)
c = socket.create_connection(l.getsockname(), timeout=5); c.close()
s = socket.socket()
assert s.connect_ex(("127.0.0.1", 9)) == errno.ECONNREFUSED
s = socket.socket(); s.settimeout(1)
try:
    s.connect(("127.0.0.1", 10)); raise SystemExit("connect to dropped port succeeded")
except socket.timeout:
    pass
print("connect ok, port 9 ECONNREFUSED, port 10 dropped (timeout)")'
check "nstat in a netns" bash -c 'ip netns exec vt-a nstat -az TcpExtListenOverflows | grep TcpExtListenOverflows'

# BPF prerequisites.
check "/sys/kernel/btf/vmlinux exists" ls -l /sys/kernel/btf/vmlinux
check "bpffs on /sys/fs/bpf" bash -c 'grep -q " /sys/fs/bpf bpf " /proc/mounts'
check "tracefs on /sys/kernel/tracing, tcp events" \
	bash -c 'grep -q " /sys/kernel/tracing tracefs " /proc/mounts && ls /sys/kernel/tracing/events/tcp'
check "mount -t tracefs works" bash -c \
	"mkdir $work/tr && mount -t tracefs nodev $work/tr && ls $work/tr/events/sock/inet_sock_set_state && umount $work/tr"
check "kernel config in /boot" grep -E '^CONFIG_(BPF_SYSCALL|DEBUG_INFO_BTF)=' "/boot/config-$(uname -r)"
check "bpftool feature probe kernel" bash -c 'bpftool feature probe kernel | head -n 12'
check "kprobes available (CONFIG_KPROBES)" bash -c \
	'test -e /sys/kernel/tracing/kprobe_events && grep -q tcp_v4_connect /sys/kernel/tracing/available_filter_functions'

# A real fentry + tp_btf program: build it here, load, attach, and see it fire
# on a loopback connect(). Uses the host's clang and libbpf (via ctypes, so no
# C loader has to be built).
cat >"$work/vt.bpf.c" <<'EOF'
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
char LICENSE[] SEC("license") = "GPL";
unsigned long long fentry_hits, tp_hits;
SEC("fentry/tcp_v4_connect")
int vt_fentry(unsigned long long *ctx) { __sync_fetch_and_add(&fentry_hits, 1); return 0; }
SEC("tp_btf/inet_sock_set_state")
int vt_tp(unsigned long long *ctx) { __sync_fetch_and_add(&tp_hits, 1); return 0; }
EOF
cat >"$work/load.py" <<'EOF'
import ctypes, ctypes.util, socket, sys
lib = ctypes.CDLL(ctypes.util.find_library("bpf") or "libbpf.so.1", use_errno=True)
P = ctypes.c_void_p
for f, res, args in [
    ("bpf_object__open_file", P, [ctypes.c_char_p, P]), ("bpf_object__load", ctypes.c_int, [P]),
    ("bpf_object__next_program", P, [P, P]), ("bpf_program__name", ctypes.c_char_p, [P]),
    ("bpf_program__attach", P, [P]), ("libbpf_get_error", ctypes.c_long, [P]),
    ("bpf_object__next_map", P, [P, P]), ("bpf_map__name", ctypes.c_char_p, [P]),
    ("bpf_map__lookup_elem", ctypes.c_int, [P, P, ctypes.c_size_t, P, ctypes.c_size_t, ctypes.c_ulonglong])]:
    getattr(lib, f).restype, getattr(lib, f).argtypes = res, args
obj = lib.bpf_object__open_file(sys.argv[1].encode(), None)
if not obj or lib.libbpf_get_error(obj):
    sys.exit("open failed")
if lib.bpf_object__load(obj):
    sys.exit("load failed")
links, prog = [], None
while True:
    prog = lib.bpf_object__next_program(obj, prog)
    if not prog:
        break
    link = lib.bpf_program__attach(prog)
    if not link or lib.libbpf_get_error(link):
        sys.exit("attach of %s failed" % lib.bpf_program__name(prog).decode())
    links.append(link)
    print("attached", lib.bpf_program__name(prog).decode())
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(1)
socket.create_connection(l.getsockname()).close()
m = None
while True:
    m = lib.bpf_object__next_map(obj, m)
    if not m or lib.bpf_map__name(m).decode().endswith(".bss"):
        break
key, val = ctypes.c_uint32(0), (ctypes.c_ulonglong * 2)()
if not m or lib.bpf_map__lookup_elem(m, ctypes.byref(key), 4, val, 16, 0):
    sys.exit("cannot read .bss")
print("fentry_hits=%d tp_hits=%d" % (val[0], val[1]))
sys.exit(0 if val[0] >= 1 and val[1] >= 1 else "programs did not fire")
EOF
check "clang builds a BPF object" clang -O2 -g -target bpf -I"/usr/include/$(uname -m)-linux-gnu" -c "$work/vt.bpf.c" -o "$work/vt.bpf.o"
check "fentry/tcp_v4_connect + tp_btf load, attach and fire" /usr/bin/python3 "$work/load.py" "$work/vt.bpf.o"

echo "selftest: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
