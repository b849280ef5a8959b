# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# shellcheck shell=bash disable=SC2034  # variables used by the sourcing scripts
# Shared settings of the second-kernel harness; sourced by the other scripts.

# The guest kernel: Debian 12's packaged 6.1 image. Pinned to one exact
# package and version so every run boots the same kernel; bump both together
# (`apt-cache search '^linux-image-6.1.0-[0-9]+-amd64$'`, `apt-cache policy PKG`).
VMTEST_KPKG=linux-image-6.1.0-56-amd64
VMTEST_KPKG_VERSION=6.1.192-2
# The kernel release (uname -r) that package installs.
VMTEST_KREL=${VMTEST_KPKG#linux-image-}

VMTEST_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VMTEST_REPO=$(cd "$VMTEST_DIR/../.." && pwd)
# Downloads, the extracted kernel and the initramfs live here, never in git
# (tests/vm/cache/ is in .gitignore). The guest reads this directory over 9p
# (run.sh shares it at its own path, so /tmp is fine), so it must be an
# absolute path without whitespace or commas (it goes on the kernel command
# line), not under /proc, /sys or /dev.
VMTEST_CACHE=${VMTEST_CACHE:-$VMTEST_REPO/tests/vm/cache}
mkdir -p "$VMTEST_CACHE"
VMTEST_CACHE=$(cd "$VMTEST_CACHE" && pwd)

# Where fetch-kernel.sh unpacks the package (dpkg -x), one directory per version.
VMTEST_KDIR=$VMTEST_CACHE/kernel/${VMTEST_KPKG}_${VMTEST_KPKG_VERSION}
VMTEST_VMLINUZ=$VMTEST_KDIR/boot/vmlinuz-$VMTEST_KREL
VMTEST_MODDIR=$VMTEST_KDIR/lib/modules/$VMTEST_KREL
VMTEST_INITRAMFS=$VMTEST_CACHE/initramfs-$VMTEST_KREL.cpio

vmtest_log() { printf 'vmtest: %s\n' "$*" >&2; }
vmtest_die() { printf 'vmtest: error: %s\n' "$*" >&2; exit 1; }
