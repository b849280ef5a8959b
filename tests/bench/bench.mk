# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# The benchmark (issue 5); included by the main Makefile. Needs root.
#
#   make bench                  5 interleaved rounds (about 10 minutes), the writers, the bulk transfer (about 6)
#   make bench BENCH_QUICK=1    smoke test: one short round, about a minute
#   make bench BENCH_ARGS='--rounds 7 --modes untraced,default'   (bench.py --help)
#   make bench-writer           the writers alone, ns per line (WRITER_BASE=DIR: before/after)
#   make bench-established      a bulk transfer, healthy then retransmit-heavy, untraced vs traced (issue 13)
#
# Prints a report with PASS/FAIL per target and writes it, with every raw
# figure, to $(BENCH_OUT)/run-*/{report.md,results.json}. A FAIL does not fail
# the build; a benchmark that cannot run does. Method and results: BENCHMARKS.md.
# Recipes are silenced by the main Makefile's $(Q).

# Wherever this is included, its rules must not become the default goal.
bench_saved_goal := $(.DEFAULT_GOAL)

BENCH_OUT     ?= build/bench
BENCH_CFLAGS  ?= -O2 -g
BENCH_PYTHON  ?= /usr/bin/python3
BENCH_ARGS    ?=
BENCH_LOADGEN := $(BENCH_OUT)/loadgen

$(BENCH_LOADGEN): tests/bench/loadgen.c
	$(call msg,CC-BENCH,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(BENCH_CFLAGS) -std=gnu11 -D_GNU_SOURCE -Wall -Wextra $(WERROR_FLAG) -pthread \
		-o $@ $<

BENCH_BULK    := $(BENCH_OUT)/bulk

$(BENCH_BULK): tests/bench/bulk.c
	$(call msg,CC-BENCH,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(BENCH_CFLAGS) -std=gnu11 -D_GNU_SOURCE -Wall -Wextra $(WERROR_FLAG) -o $@ $<

# The reference (bpftrace) and the drops (nftables) are Debian packages.
.PHONY: bench-deps
bench-deps:
	$(Q)command -v bpftrace >/dev/null && command -v nft >/dev/null || \
		{ DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bpftrace nftables; }

# The writers' micro-benchmark (issue 11): ns per verdict line, JSON and
# text, median of WRITER_ROUNDS runs of 3 rounds each. With WRITER_BASE=DIR
# (another tree's build directory, e.g. a worktree of main built with
# `make build/libconntrace.a`) the same benchmark is also linked against that
# library, the two binaries run in alternation, and their bytes are compared
# (writer_bench --dump). make bench appends the figures to its report.
WRITER_BENCH  := $(BENCH_OUT)/writer_bench
WRITER_BASE   ?=
WRITER_ROUNDS ?= 5

$(WRITER_BENCH): tests/bench/writer_bench.c $(LIB)
	$(call msg,CC-BENCH,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS)

$(WRITER_BENCH)-base: tests/bench/writer_bench.c $(WRITER_BASE)/libconntrace.a
	$(call msg,CC-BENCH,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(filter-out -I$(OUT) -Iuser,$(CFLAGS)) -I$(WRITER_BASE) \
		-I$(WRITER_BASE)/../user $(LDFLAGS) -o $@ $< $(WRITER_BASE)/libconntrace.a $(LDLIBS)

WRITER_BENCH_RUN = \
	$(if $(WRITER_BASE),TZ=UTC $(WRITER_BENCH)-base --dump > $(BENCH_OUT)/writer-before.txt && \
		TZ=UTC $(WRITER_BENCH) --dump > $(BENCH_OUT)/writer-after.txt && \
		{ cmp -s $(BENCH_OUT)/writer-before.txt $(BENCH_OUT)/writer-after.txt && \
		  echo "writer: before and after write the same bytes (writer_bench --dump)" || \
		  echo "writer: before and after DIFFER: diff $(BENCH_OUT)/writer-before.txt $(BENCH_OUT)/writer-after.txt"; } &&) \
	for i in $$(seq $(WRITER_ROUNDS)); do \
		$(if $(WRITER_BASE),$(WRITER_BENCH)-base --rounds 3 --label before || exit 1;) \
		$(WRITER_BENCH) --rounds 3 --label after || exit 1; \
	done | $(BENCH_PYTHON) tests/bench/writer_median.py

.PHONY: bench-writer
bench-writer: $(WRITER_BENCH) $(if $(WRITER_BASE),$(WRITER_BENCH)-base)
	$(Q)$(WRITER_BENCH_RUN)

.PHONY: bench
bench: $(BIN) $(BENCH_LOADGEN) $(BENCH_BULK) bench-deps $(WRITER_BENCH) $(if $(WRITER_BASE),$(WRITER_BENCH)-base)
	$(Q)$(BENCH_PYTHON) tests/bench/bench.py --conntrace ./$(BIN) \
		--loadgen $(BENCH_LOADGEN) --out $(BENCH_OUT) \
		$(if $(filter 1,$(BENCH_QUICK)),--quick) $(BENCH_ARGS)
	$(Q){ echo; echo "## Writer (make bench-writer): ns per verdict line, median"; echo; \
		$(WRITER_BENCH_RUN); } | tee -a "$$(ls -td $(BENCH_OUT)/run-* | head -1)/report.md"
	$(Q){ echo; echo "## Bulk transfer, healthy and retransmit-heavy (make bench-established)"; echo; \
		$(ESTAB_BENCH_RUN); } | tee -a "$$(ls -td $(BENCH_OUT)/run-* | head -1)/report.md"

# What following established connections costs a healthy bulk transfer
# (issue 13): untraced, traced, untraced, ...: the median of each traced
# transfer's ratio to the untraced ones around it (tests/bench/bulk.c, two
# processes pinned to two CPUs), with a bootstrap interval of that median: a
# round moves by up to +-12 % here, hence 61 rounds (about 5 minutes).
# Then the same transfer retransmit-heavy: ESTAB_LOSS % of its segments
# dropped by nft at random (default 2), fewer rounds.
ESTAB_BENCH_RUN = $(BENCH_PYTHON) tests/bench/established_bulk.py --conntrace ./$(BIN) \
	--bulk $(BENCH_BULK) --rounds $(or $(ESTAB_ROUNDS),61) --secs $(or $(ESTAB_SECS),2) && \
	$(BENCH_PYTHON) tests/bench/established_bulk.py --conntrace ./$(BIN) \
	--bulk $(BENCH_BULK) --rounds $(or $(ESTAB_LOSS_ROUNDS),7) --secs $(or $(ESTAB_SECS),2) \
	--loss $(or $(ESTAB_LOSS),2)

.PHONY: bench-established
bench-established: $(BIN) $(BENCH_BULK)
	$(Q)$(ESTAB_BENCH_RUN)

.DEFAULT_GOAL := $(bench_saved_goal)
