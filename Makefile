# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# conntrace: build the BPF objects, their skeletons and the collector.
#
#   make            build ./conntrace
#   make run        install the Debian packages needed, build, start tracing
#   make test       unit tests (cmocka) and integration tests (real kernel, root)
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

OUT     := build
ARCH    := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')
VERSION := $(shell git describe --always --dirty 2>/dev/null || echo 0.1)

ifeq ($(V),1)
Q :=
msg :=
else
Q := @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

CFLAGS  ?= -O2 -g
CFLAGS  += -std=gnu11 -D_GNU_SOURCE -Wall -Wextra -Werror -MMD -MP \
           -I$(OUT) -Ibpf -Iuser
LDLIBS  := -lbpf -lelf -lz
LDLIBS  += $(shell pkg-config --libs libmicrohttpd 2>/dev/null || echo -lmicrohttpd)
ifeq ($(SANITIZE),1)
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS += -fsanitize=address,undefined
endif

BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -Wall -Werror \
              -Ivmlinux -Ibpf -MMD -MP

# conntrace's kernel side is several parts, one per signal family, compiled
# apart and linked into one object, build/conntrace.bpf.o, with one skeleton.
# Every other bpf/*.bpf.c is an object and a skeleton of its own. flow comes
# first: it defines the shared maps (see bpf/conntrace.bpf.h).
CT_PARTS  := flow evidence listener connect
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

# The flags a file was built with are among its inputs: switching SANITIZE=1
# on or off (or CC, CFLAGS, LDFLAGS) rebuilds the collector, tests and tools.
BUILD_FLAGS := $(OUT)/.build-flags
BUILD_FLAGS_NOW := $(CC) $(CFLAGS) $(LDFLAGS)
ifneq ($(BUILD_FLAGS_NOW),$(shell cat $(BUILD_FLAGS) 2>/dev/null))
$(shell mkdir -p $(OUT) && echo '$(BUILD_FLAGS_NOW)' > $(BUILD_FLAGS))
endif
$(USER_OBJS) $(UNIT_BINS) $(TOOL_BINS): $(BUILD_FLAGS)

.PHONY: all
all: conntrace $(TOOL_BINS)

conntrace: $(USER_OBJS)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

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
$(shell mkdir -p $(OUT) && echo '$(VERSION_LINE)' > $(OUT)/version.h)
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

# The fault tests flood the machine (100 000 half-open connects, overflowed
# rings): they run on their own, after the scenarios, so the scenarios' shared
# conntrace never has to wade through them.
PYTEST := $(PYTHON) -m pytest -v -p no:cacheprovider
FAULTS := tests/integration/test_faults.py

.PHONY: integration
integration: all
	$(Q)$(PYTEST) --ignore=$(FAULTS) tests/integration $(PYTEST_ARGS)
	$(Q)$(PYTEST) $(FAULTS) $(PYTEST_ARGS)

.PHONY: test
test: deps
	$(Q)$(MAKE) --no-print-directory all unit
	$(Q)$(MAKE) --no-print-directory integration
	$(Q)$(MAKE) --no-print-directory vm-integration
	$(Q)$(MAKE) --no-print-directory fuzz-ci

# The same integration tests on Debian's 6.1 kernel under qemu, which allows
# fentry: the other hook path. The guest sees this tree read-only.
.PHONY: vm-integration
vm-integration: all
	$(Q)$(MAKE) --no-print-directory vmtest \
		VMTEST_CMD='sh -c "$(PYTEST) --ignore=$(FAULTS) tests/integration && $(PYTEST) $(FAULTS)"' \
		VMTEST_ARGS='--env CONNTRACE=$(CURDIR)/conntrace --env PYTHONDONTWRITEBYTECODE=1 --timeout 1500'

.PHONY: vmlinux
vmlinux:
	$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > vmlinux/vmlinux.h

.PHONY: install
install: conntrace
	install -D -m 0755 conntrace $(DESTDIR)$(PREFIX)/sbin/conntrace
	install -D -m 0644 docs/conntrace.8 $(DESTDIR)$(PREFIX)/share/man/man8/conntrace.8
	install -D -m 0644 -t $(DESTDIR)$(PREFIX)/share/doc/conntrace docs/schema.md docs/schema.json
	install -d $(DESTDIR)$(PREFIX)/lib/systemd/system
	sed 's|/usr/local/sbin/|$(PREFIX)/sbin/|' scripts/conntrace.service \
		> $(DESTDIR)$(PREFIX)/lib/systemd/system/conntrace.service
	chmod 0644 $(DESTDIR)$(PREFIX)/lib/systemd/system/conntrace.service

.PHONY: clean
clean:
	rm -rf $(OUT) conntrace

-include $(wildcard $(OUT)/*.d $(OUT)/bpf/*.d $(OUT)/user/*.d $(OUT)/tests/*.d)

# A second kernel: Debian's 6.1 under qemu (fentry path). See scripts/vmtest/.
include scripts/vmtest/vmtest.mk
-include tests/bench/bench.mk

# Fuzzing (make fuzz, make fuzz-ci) and the soak run (make soak).
-include tests/fuzz/fuzz.mk
