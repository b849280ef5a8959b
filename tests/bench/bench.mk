# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# The benchmark (issue 5), included by the main Makefile. Needs root.
#
#   make bench                  5 interleaved rounds (about 10 minutes); BENCHMARKS.md
#   make bench BENCH_QUICK=1    smoke test: one short round
#   make bench BENCH_ARGS="--rounds 7 --modes untraced,default"   see bench.py --help
#
# Prints PASS/FAIL per target and writes build/bench/run-*/{report.md,results.json};
# a FAIL does not fail the build, a benchmark that cannot run does.

# Included anywhere in the Makefile: these rules must not become the default goal.
bench_saved_goal := $(.DEFAULT_GOAL)

BENCH_OUT     ?= build/bench
BENCH_CC      ?= $(or $(CC),cc)
BENCH_CFLAGS  ?= -O2 -g
BENCH_PYTHON  ?= /usr/bin/python3
BENCH_LOADGEN := $(BENCH_OUT)/loadgen
BENCH_ARGS    ?=

$(BENCH_LOADGEN): tests/bench/loadgen.c
	@mkdir -p $(@D)
	@printf '  %-8s %s\n' CC $@
	$(if $(filter 1,$(V)),,@)$(BENCH_CC) $(BENCH_CFLAGS) -std=gnu11 -D_GNU_SOURCE \
		-Wall -Wextra -Werror -pthread -o $@ $<

# bpftrace is the reference and nftables makes the drops: Debian packages.
.PHONY: bench-deps
bench-deps:
	@command -v bpftrace >/dev/null && command -v nft >/dev/null || \
		{ DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bpftrace nftables; }

.PHONY: bench
bench: conntrace $(BENCH_LOADGEN) bench-deps
	$(BENCH_PYTHON) tests/bench/bench.py --conntrace ./conntrace \
		--loadgen $(BENCH_LOADGEN) --out $(BENCH_OUT) \
		$(if $(filter 1,$(BENCH_QUICK)),--quick) $(BENCH_ARGS)

.DEFAULT_GOAL := $(bench_saved_goal)
