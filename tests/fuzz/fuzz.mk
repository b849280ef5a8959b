# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Fuzzing and the soak run, included by the Makefile.
#
#   make fuzz          libFuzzer on the correlator and the writers, until stopped
#                      (new inputs kept in build/fuzz/corpus; FUZZ_ARGS for more)
#   make fuzz-ci       the same for FUZZ_TIME seconds (default 60) from the
#                      checked-in corpus; fails on any crash or check
#   make fuzz-seeds    rewrite tests/fuzz/corpus from tests/fuzz/mkseeds.c
#   make soak          10 minutes of mixed load under conntrace (scripts/soak.sh,
#                      SOAK_ARGS); not part of make test
#
# The fuzzer needs clang's libFuzzer runtime (Debian: clang, which ships
# libclang_rt.fuzzer). A crash leaves its input in build/fuzz/crash-*:
# replay it with build/fuzz/fuzz_correlate FILE, then add it to
# tests/unit/test_fuzz_regressions.c.

FUZZ_CC     ?= clang
FUZZ_TIME   ?= 60
FUZZ_ARGS   ?=
FUZZ_OUT    := $(or $(OUT),build)/fuzz
FUZZ_BIN    := $(FUZZ_OUT)/fuzz_correlate
FUZZ_SEEDS  := tests/fuzz/corpus
# the pure modules: no libbpf, no kernel
FUZZ_SRCS   := user/correlate.c user/classify.c user/render.c user/json.c user/output_json.c user/output_text.c \
               user/fmt.c user/aggregate.c user/overflow.c \
               user/established.c user/inbound.c \
               user/output_common.c
FUZZ_CFLAGS := -g -O1 -std=gnu11 -D_GNU_SOURCE -Wall -Wextra $(WERROR_FLAG) \
               -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
               -fno-omit-frame-pointer -Ibpf -Iuser -DCONNTRACE_VERSION='"fuzz"'

$(FUZZ_BIN): tests/fuzz/fuzz_correlate.c tests/fuzz/fuzz_one.c $(FUZZ_SRCS) \
	    $(wildcard user/*.h) bpf/conntrace.h
	@mkdir -p $(@D)
	$(call msg,FUZZ-CC,$@)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ tests/fuzz/fuzz_correlate.c $(FUZZ_SRCS)

$(FUZZ_OUT)/mkseeds: tests/fuzz/mkseeds.c bpf/conntrace.h
	@mkdir -p $(@D)
	$(call msg,CC,$@)
	$(Q)$(CC) -std=gnu11 -Wall -Wextra $(WERROR_FLAG) -Ibpf -o $@ $<

.PHONY: fuzz fuzz-ci fuzz-seeds soak
fuzz: $(FUZZ_BIN)
	@mkdir -p $(FUZZ_OUT)/corpus
	$(FUZZ_BIN) -artifact_prefix=$(FUZZ_OUT)/ -print_final_stats=1 $(FUZZ_ARGS) \
		$(FUZZ_OUT)/corpus $(FUZZ_SEEDS)

# New inputs go to a fresh directory, so the checked-in corpus stays as it is.
fuzz-ci: $(FUZZ_BIN)
	@rm -rf $(FUZZ_OUT)/ci-corpus && mkdir -p $(FUZZ_OUT)/ci-corpus
	$(FUZZ_BIN) -max_total_time=$(FUZZ_TIME) -timeout=10 -rss_limit_mb=2048 \
		-artifact_prefix=$(FUZZ_OUT)/ -print_final_stats=1 $(FUZZ_ARGS) \
		$(FUZZ_OUT)/ci-corpus $(FUZZ_SEEDS)

fuzz-seeds: $(FUZZ_OUT)/mkseeds
	@mkdir -p $(FUZZ_SEEDS)
	$(FUZZ_OUT)/mkseeds $(FUZZ_SEEDS)

soak: all
	scripts/soak.sh $(SOAK_ARGS)

