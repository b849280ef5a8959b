#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Build the guest's initramfs into the cache: static busybox, scripts/vmtest/init,
# and the few modules needed to mount the host root over virtio-9p. Everything
# else (nf_tables, veth, ...) is loaded later from the host's copy of the
# module tree, so the image stays small (a few MB, uncompressed: the kernel
# reads plain cpio and skipping compression saves boot time under TCG).
# Needs fetch-kernel.sh to have run.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

[ -f "$VMTEST_MODDIR/modules.dep" ] ||
	vmtest_die "no kernel in $VMTEST_KDIR: run scripts/vmtest/fetch-kernel.sh first"
busybox=$(command -v busybox) || vmtest_die "busybox not found (apt-get install busybox-static)"
# A dynamically linked busybox would need its libraries in the image too.
if LC_ALL=C ldd "$busybox" >/dev/null 2>&1; then
	vmtest_die "$busybox is dynamically linked; install busybox-static"
fi

work=$(mktemp -d "$VMTEST_CACHE/initramfs.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir -p "$root"/{bin,sbin,dev,proc,sys,newroot,lib/modules/"$VMTEST_KREL"}

cp "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list); do
	[ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
done
# The kernel's module autoload runs /sbin/modprobe.
ln -s ../bin/busybox "$root/sbin/modprobe"
install -m 0755 "$VMTEST_DIR/init" "$root/init"

# The 9p stack and its dependencies, as modules.dep lists them (the
# dependency list of each module is complete, not just direct ones).
mods=(virtio_pci 9pnet_virtio 9p)
for m in "${mods[@]}"; do
	line=$(grep -E "(^|/)$m\.ko(\.[gx]z|\.zst)?:" "$VMTEST_MODDIR/modules.dep") ||
		vmtest_die "module $m not in $VMTEST_MODDIR/modules.dep"
	for f in ${line/:/}; do
		mkdir -p "$root/lib/modules/$VMTEST_KREL/$(dirname "$f")"
		cp "$VMTEST_MODDIR/$f" "$root/lib/modules/$VMTEST_KREL/$f"
	done
done
cp "$VMTEST_MODDIR"/modules.{dep,alias,symbols,builtin,order} "$root/lib/modules/$VMTEST_KREL/"

(cd "$root" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --owner 0:0 --quiet) >"$work/out.cpio"
mv "$work/out.cpio" "$VMTEST_INITRAMFS"
vmtest_log "initramfs ready: $VMTEST_INITRAMFS ($(du -h "$VMTEST_INITRAMFS" | cut -f1))"
