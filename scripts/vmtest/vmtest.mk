# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Second-kernel tests (Debian's 6.1 under qemu/TCG); included by the main Makefile.
#
#   make vmtest                              boot the guest, run the harness self-test
#   make vmtest VMTEST_CMD='make integration'  run any command in the guest (repo dir)
#   make vmtest VMTEST_ARGS='--env CONNTRACE=./conntrace --timeout 900'
#
# Builds nothing itself: build first on the host (the guest sees the host's
# files read-only, at the same paths). Kernel and initramfs are cached in
# $(VMTEST_CACHE), git-ignored. Recipes are silenced by the main Makefile's $(Q).

VMTEST_CMD   ?= scripts/vmtest/selftest.sh
VMTEST_ARGS  ?=
VMTEST_CACHE ?= $(CURDIR)/tests/vm/cache
export VMTEST_CACHE

.PHONY: vmtest
vmtest:
	$(Q)scripts/vmtest/fetch-kernel.sh
	$(Q)scripts/vmtest/run.sh $(VMTEST_ARGS) -- $(VMTEST_CMD)
