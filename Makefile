# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# conntrace: build the BPF objects, their skeletons and the collector.
#
#   make            build ./conntrace
#   make run        install the Debian packages needed, build, start tracing
#   make test       unit tests (cmocka) and integration tests (real kernel, root)
#   make STATIC=1   one ./conntrace with libbpf, libelf, zlib, libmicrohttpd linked in
#   make SANITIZE=1 ASan+UBSan build in build-asan/ (build-asan/conntrace)
#   make WERROR=1   warnings are errors (make test and CI do this)
#   make vmlinux    regenerate vmlinux/vmlinux.h from the running kernel's BTF
#   make V=1        show the full commands

.DELETE_ON_ERROR:
.DEFAULT_GOAL := all
.SUFFIXES:
.SECONDARY:

CLANG   ?= clang
BPFTOOL ?= bpftool
CC      ?= cc
PYTHON  ?= /usr/bin/python3
PREFIX  ?= /usr/local
DESTDIR ?=

# A sanitizer build has its own directory and binary, so it never clobbers
# the normal one (make test builds both).
OUT     := $(if $(filter 1,$(SANITIZE)),build-asan,build)
BIN     := $(if $(filter build,$(OUT)),conntrace,$(OUT)/conntrace)
ARCH    := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')
VERSION := $(shell git describe --always --dirty 2>/dev/null || echo 0.1)

ifeq ($(V),1)
Q :=
msg :=
else
Q := @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

# Warnings are errors only where the compiler is the one the project is
# tested with (make test and .ci/run pass WERROR=1): a plain make only warns,
# so a distribution's newer compiler with new warnings still builds it.
WERROR  ?= 0
WERROR_FLAG := $(if $(filter 1,$(WERROR)),-Werror)

CFLAGS  ?= -O2 -g
CFLAGS  += -std=gnu11 -D_GNU_SOURCE -Wall -Wextra $(WERROR_FLAG) -MMD -MP \
           -I$(OUT) -Ibpf -Iuser
ifeq ($(STATIC),1)
# One binary to copy to another machine: libbpf, libelf, zlib, libmicrohttpd
# and GnuTLS with its libraries (libmicrohttpd is built with HTTPS support)
# from their .a archives. p11-kit, which GnuTLS needs, ships no static archive
# in Debian (libp11-kit-dev has only the .so): it and glibc stay dynamic.
MHD_STATIC := $(filter-out -lp11-kit,$(shell pkg-config --static --libs libmicrohttpd))
LDLIBS  := -Wl,-Bstatic -lbpf -lelf -lz $(MHD_STATIC) -Wl,-Bdynamic -lp11-kit
else
LDLIBS  := -lbpf -lelf -lz
# libmicrohttpd (and the GnuTLS it pulls in) is opened only when --metrics
# starts its server: user/mhd_lazy.c. Linked, it costs every run ~2.4 MiB.
CFLAGS  += -DCT_MHD_DLOPEN
endif
# sd_notify (Type=notify, the watchdog): libsystemd is opened at run time,
# only when systemd asks for notifications (user/sd_lazy.c), in every build.
ifeq ($(SANITIZE),1)
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS += -fsanitize=address,undefined
endif

BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -Wall $(WERROR_FLAG) \
              -Ivmlinux -Ibpf -MMD -MP

# conntrace's kernel side is several parts, one per signal family, compiled
# apart and linked into one object, build/conntrace.bpf.o, with one skeleton.
# Every other bpf/*.bpf.c is an object and a skeleton of its own. flow comes
# first: it defines the shared maps (see bpf/conntrace.bpf.h).
CT_PARTS  := flow established inbound evidence listener connect
CT_PART_OBJS := $(patsubst %,$(OUT)/bpf/%.bpf.o,$(CT_PARTS))
BPF_SRCS  := $(filter-out $(patsubst %,bpf/%.bpf.c,$(CT_PARTS)),$(wildcard bpf/*.bpf.c))
SKELS     := $(OUT)/conntrace.skel.h $(patsubst bpf/%.bpf.c,$(OUT)/%.skel.h,$(BPF_SRCS))
USER_SRCS := $(wildcard user/*.c)
USER_OBJS := $(patsubst user/%.c,$(OUT)/user/%.o,$(USER_SRCS))
# Everything but main() goes into an archive; unit tests link against it and
# pull in only the objects they use (the pure ones: correlator, formatters).
LIB       := $(OUT)/libconntrace.a
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(OUT)/tests/%,$(UNIT_SRCS))
TOOL_SRCS := $(wildcard tests/tools/*.c)
TOOL_BINS := $(patsubst tests/tools/%.c,$(OUT)/tests/%,$(TOOL_SRCS))

# The flags a file was built with are among its inputs: switching WERROR=1
# or STATIC=1 on or off (or CC, CFLAGS, LDFLAGS) rebuilds the collector, tests
# and tools. (SANITIZE=1 builds in a directory of its own.)
BUILD_FLAGS := $(OUT)/.build-flags
BUILD_FLAGS_NOW := $(CC) $(CFLAGS) $(LDFLAGS) $(LDLIBS) $(CLANG) $(BPF_CFLAGS)
ifneq ($(BUILD_FLAGS_NOW),$(shell cat $(BUILD_FLAGS) 2>/dev/null))
$(shell { mkdir -p $(OUT) && echo '$(BUILD_FLAGS_NOW)' > $(BUILD_FLAGS); } 2>/dev/null)
endif
$(BIN) $(USER_OBJS) $(UNIT_BINS) $(TOOL_BINS) $(BPF_OBJS) $(CT_PART_OBJS): $(BUILD_FLAGS)

.PHONY: all
all: $(BIN) $(TOOL_BINS)

$(BIN): $(USER_OBJS)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $(USER_OBJS) $(LDLIBS)

ifneq ($(BIN),conntrace)
.PHONY: conntrace
conntrace: $(BIN)
endif

$(LIB): $(filter-out $(OUT)/user/main.o,$(USER_OBJS))
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(OUT)/%.bpf.o: bpf/%.bpf.c vmlinux/vmlinux.h | $(OUT)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(CT_PART_OBJS): $(OUT)/bpf/%.bpf.o: bpf/%.bpf.c vmlinux/vmlinux.h | $(OUT)/bpf
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

# libbpf's static linker resolves each part's extern maps and globals
$(OUT)/conntrace.bpf.o: $(CT_PART_OBJS)
	$(call msg,BPF-LINK,$@)
	$(Q)$(BPFTOOL) gen object $@ $^

$(OUT)/%.skel.h: $(OUT)/%.bpf.o
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< > $@

# The version (git describe) in a header rewritten only when it changes, so
# a new commit rebuilds what prints it and nothing else (and a read-only
# tree, as in the qemu guest, is never written to).
VERSION_LINE := \#define CONNTRACE_VERSION "$(VERSION)"
ifneq ($(VERSION_LINE),$(shell cat $(OUT)/version.h 2>/dev/null))
$(shell { mkdir -p $(OUT) && echo '$(VERSION_LINE)' > $(OUT)/version.h; } 2>/dev/null)
endif

# Skeletons and the version are generated headers: build them before any
# collector object, after which -MMD records the real dependency.
$(OUT)/user/%.o: user/%.c | $(SKELS) $(OUT)/version.h $(OUT)/user
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(OUT)/tests/%: tests/unit/%.c $(LIB) | $(OUT)/tests
	$(call msg,CC-TEST,$@)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB) -lcmocka $(LDLIBS)

$(OUT)/tests/%: tests/tools/%.c | $(OUT)/tests
	$(call msg,CC-TOOL,$@)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $<

$(OUT) $(OUT)/bpf $(OUT)/user $(OUT)/tests:
	$(Q)mkdir -p $@

.PHONY: deps
deps:
	$(Q)scripts/install-deps.sh

.PHONY: run
run: deps
	$(Q)$(MAKE) --no-print-directory all
	./conntrace $(ARGS)

.PHONY: unit
unit: $(UNIT_BINS)
	$(Q)scripts/run-unit.sh $(UNIT_BINS)

# scripts/run-integration.sh runs pytest: the whole suite in two runs (the
# fault tests flood the machine, so they run on their own after the
# scenarios), or INTEGRATION_TESTS in one. It fails, in one line, when the
# tests cannot run here (not root, no kernel BTF) and before building, so
# that such a run never passes with skips; it interrupts a pytest run after
# INTEGRATION_TIMEOUT seconds (8 times the longest run measured on a loaded
# 2-core machine: 74 s for the scenarios, 49 s for test_faults.py); it fails
# on a kernel WARNING/BUG/Oops logged meanwhile. PYTEST_ARGS go to pytest.
CONNTRACE           ?= $(CURDIR)/$(BIN)
INTEGRATION_TIMEOUT ?= 600
INTEGRATION_TESTS   ?=
INTEGRATION_ENV      = CONNTRACE=$(CONNTRACE) CT_TOOLS_DIR=$(CURDIR)/$(OUT)/tests PYTHON=$(PYTHON)

.PHONY: integration
integration:
	$(Q)scripts/run-integration.sh --check
	$(Q)$(MAKE) --no-print-directory all
	$(Q)$(INTEGRATION_ENV) scripts/run-integration.sh --timeout $(INTEGRATION_TIMEOUT) \
		$(INTEGRATION_TESTS) -- $(PYTEST_ARGS)

# The unit tests and the integration files that exercise the most of the
# collector's C again, built with ASan and UBSan (in build-asan/, beside the
# normal build): about 40 s more (build 8 s, unit tests 6 s, pytest 26 s).
SANITIZE_TESTS ?= tests/integration/test_verdicts.py tests/integration/test_lifecycle.py \
                  tests/integration/test_export.py

.PHONY: sanitize-test
sanitize-test:
	$(Q)$(MAKE) --no-print-directory SANITIZE=1 unit
	$(Q)$(MAKE) --no-print-directory SANITIZE=1 integration INTEGRATION_TESTS='$(SANITIZE_TESTS)'

.PHONY: test
test: deps
	$(Q)scripts/run-integration.sh --check
	$(Q)$(MAKE) --no-print-directory WERROR=1 all unit
	$(Q)$(MAKE) --no-print-directory WERROR=1 integration
	$(Q)$(MAKE) --no-print-directory WERROR=1 vm-integration
	$(Q)$(MAKE) --no-print-directory WERROR=1 sanitize-test
	$(Q)$(MAKE) --no-print-directory WERROR=1 fuzz-ci

# The same integration tests on Debian's 6.1 kernel under qemu, which allows
# fentry: the other hook path. The guest sees this tree read-only; run.sh
# stops it after VM_INTEGRATION_TIMEOUT seconds and fails on a kernel
# WARNING/BUG/Oops on its console, and the script checks the guest's dmesg;
# each pytest run in the guest is interrupted after VM_PYTEST_TIMEOUT seconds.
VM_INTEGRATION_TIMEOUT ?= 1500
VM_PYTEST_TIMEOUT      ?= 1200
VM_INTEGRATION_ARGS     = --env CONNTRACE=$(CONNTRACE) --env CT_TOOLS_DIR=$(CURDIR)/$(OUT)/tests \
                          --env PYTHONDONTWRITEBYTECODE=1 --timeout $(VM_INTEGRATION_TIMEOUT)

.PHONY: vm-integration
vm-integration: all
	$(Q)$(MAKE) --no-print-directory vmtest \
		VMTEST_CMD='scripts/run-integration.sh --timeout $(VM_PYTEST_TIMEOUT) $(INTEGRATION_TESTS) -- $(PYTEST_ARGS)' \
		VMTEST_ARGS='$(VM_INTEGRATION_ARGS)'

.PHONY: vmlinux
vmlinux:
	$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > vmlinux/vmlinux.h

.PHONY: install
install: $(BIN)
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/sbin/conntrace
	install -D -m 0644 docs/conntrace.8 $(DESTDIR)$(PREFIX)/share/man/man8/conntrace.8
	install -D -m 0644 -t $(DESTDIR)$(PREFIX)/share/doc/conntrace docs/schema.md docs/schema.json
	install -d $(DESTDIR)$(PREFIX)/lib/systemd/system
	sed 's|/usr/local/sbin/|$(PREFIX)/sbin/|' scripts/conntrace.service \
		> $(DESTDIR)$(PREFIX)/lib/systemd/system/conntrace.service
	chmod 0644 $(DESTDIR)$(PREFIX)/lib/systemd/system/conntrace.service

.PHONY: clean
clean:
	rm -rf build build-asan conntrace

-include $(wildcard $(OUT)/*.d $(OUT)/bpf/*.d $(OUT)/user/*.d $(OUT)/tests/*.d)

# A second kernel: Debian's 6.1 under qemu (fentry path). See scripts/vmtest/.
include scripts/vmtest/vmtest.mk
-include tests/bench/bench.mk

# Fuzzing (make fuzz, make fuzz-ci) and the soak run (make soak).
-include tests/fuzz/fuzz.mk
