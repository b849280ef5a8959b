# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Medians of writer_bench's lines (make bench-writer): one line per
(label, mode) with the median over the runs, and the target's verdict."""
import statistics
import sys

TARGET_NS = 1000.0  # issue 11: JSON at most 1 us per verdict line


def main():
    runs = {}
    for line in sys.stdin:
        fields = line.split()
        if not fields or fields[0] not in ("json", "text", "text-d"):
            continue
        kv = dict(f.split("=", 1) for f in fields[1:])
        runs.setdefault((kv["label"], fields[0]), []).append(float(kv["ns_per_line"]))
    if not runs:
        sys.exit("writer_median: no results from writer_bench")
    for (label, mode), v in sorted(runs.items()):
        med = statistics.median(v)
        verdict = ""
        if mode == "json" and label == "after":
            verdict = " PASS" if med <= TARGET_NS else " FAIL"
        print(f"writer {label:6} {mode:6}: {med:7.1f} ns per line (median of {len(v)} runs: "
              f"{', '.join(f'{x:.0f}' for x in v)}){verdict}")


if __name__ == "__main__":
    main()
