#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Install the Debian 12 packages conntrace needs to build, run and test.
# Idempotent: does nothing (and needs no network) when all are present.
set -euo pipefail

PKGS=(
	make gcc clang llvm pkg-config          # build: collector and BPF objects
	libbpf-dev bpftool libelf-dev zlib1g-dev # libbpf, skeleton generator
	libcmocka-dev libclang-rt-14-dev valgrind # unit tests, the fuzzer runtime, memcheck
	iproute2 nftables jq                     # integration tests: netns, drops
	curl nginx-light haproxy wrk apache2-utils socat # real clients and servers (test_real_clients.py)
	python3 python3-pytest                   # integration test runner
	qemu-system-x86 busybox-static cpio      # second kernel under qemu (make vmtest)
	libmicrohttpd-dev prometheus python3-jsonschema # --metrics; export tests: Prometheus, schema
	libunistring-dev                         # make STATIC=1: libunistring.a (GnuTLS, libidn2)
	libsystemd-dev python3-yaml              # sd_notify (service mode); the DaemonSet test
)

missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing packages: ${missing[*]}; run as root (sudo make ...)" >&2
	exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
