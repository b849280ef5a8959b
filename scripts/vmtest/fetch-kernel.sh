#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Fetch and unpack the second kernel (Debian 12's 6.1, pinned in common.sh)
# into the cache, and make sure the host has what booting it needs.
# Idempotent: a second call finds the unpacked tree and returns at once.
# The pinned package and version (VMTEST_KPKG, VMTEST_KPKG_VERSION) are at the
# top of common.sh, shared with run.sh and mkinitramfs.sh.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# Host packages: qemu-system-x86 (the emulator), busybox-static (the guest's
# initramfs userland), cpio (to pack the initramfs).
need=()
for p in qemu-system-x86 busybox-static cpio; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
	vmtest_log "installing host packages: ${need[*]}"
	apt-get install -y --no-install-recommends "${need[@]}" ||
		{ apt-get update && apt-get install -y --no-install-recommends "${need[@]}"; } ||
		vmtest_die "cannot install ${need[*]}"
fi

stamp=$VMTEST_KDIR/.vmtest-complete
if [ -f "$stamp" ] && [ -f "$VMTEST_VMLINUZ" ]; then
	vmtest_log "kernel $VMTEST_KPKG $VMTEST_KPKG_VERSION already in $VMTEST_KDIR"
	exit 0
fi

if ! apt-cache show "$VMTEST_KPKG=$VMTEST_KPKG_VERSION" >/dev/null 2>&1; then
	{
		echo "vmtest: error: $VMTEST_KPKG version $VMTEST_KPKG_VERSION is not in the apt lists."
		echo "  Try 'apt-get update'. If it is gone from the archive, pin a newer one in"
		echo "  scripts/vmtest/common.sh (VMTEST_KPKG, VMTEST_KPKG_VERSION). Available now:"
		apt-cache search '^linux-image-6\.1\.0-[0-9]+-amd64$' | sort -V | sed 's/^/    /'
	} >&2
	exit 1
fi

# Work in a scratch directory inside the cache and move the result into place
# only when complete, so an interrupted run never leaves a half tree behind.
work=$(mktemp -d "$VMTEST_CACHE/fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT

vmtest_log "downloading $VMTEST_KPKG=$VMTEST_KPKG_VERSION"
# apt drops privileges to _apt for downloads, which cannot write into a
# root-owned cache directory; download as root instead (same signed archive).
(cd "$work" && apt-get download -o APT::Sandbox::User=root "$VMTEST_KPKG=$VMTEST_KPKG_VERSION") ||
	vmtest_die "apt-get download $VMTEST_KPKG=$VMTEST_KPKG_VERSION failed"
deb=$(ls "$work"/*.deb)

vmtest_log "unpacking $(basename "$deb")"
dpkg -x "$deb" "$work/tree"
[ -f "$work/tree/boot/vmlinuz-$VMTEST_KREL" ] ||
	vmtest_die "package has no boot/vmlinuz-$VMTEST_KREL"
[ -d "$work/tree/lib/modules/$VMTEST_KREL" ] ||
	vmtest_die "package has no lib/modules/$VMTEST_KREL"

# The package ships no modules.dep (its postinst runs depmod); generate it so
# the guest's modprobe resolves dependencies and aliases (module autoload).
# The host has no kmod, so use busybox's depmod.
busybox depmod -b "$work/tree" "$VMTEST_KREL"

touch "$work/tree/.vmtest-complete"
rm -rf "$VMTEST_KDIR"
mkdir -p "$(dirname "$VMTEST_KDIR")"
mv "$work/tree" "$VMTEST_KDIR"
vmtest_log "kernel ready: $VMTEST_VMLINUZ"
