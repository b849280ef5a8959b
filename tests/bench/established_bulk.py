#!/usr/bin/python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""What following established connections costs a healthy bulk transfer.

In a throwaway namespace, a loopback TCP bulk transfer (tests/bench/bulk.c:
one connection, a sender and a receiver process pinned to two CPUs, 1 MiB
writes) runs for --secs seconds, alternately without and with `conntrace -j
--netns NS` running: untraced, traced, untraced, ..., untraced (--rounds
traced transfers, each between two untraced ones). Each traced transfer is
compared with the mean of the untraced ones around it; prints the median of
those ratios (the issue's target is >= 0.98; kernel.bpf_stats_enabled off)
with their range, and the medians of each kind. Then one more traced transfer
with bpf_stats on: how often and how long each program that conntrace
attached ran (found by the conntrace's pid in `bpftool perf show`, so other
tracers' programs are not counted), and the CPU time the conntrace process
itself used while idle and during that transfer. Needs root; run from the
top of the tree after make (bulk is build/bench/bulk).

With --loss PCT an nft rule in the namespace drops that share of the data
segments at random (`numgen random`), so the same transfer is retransmit-heavy:
every retransmit and every recovery runs the established-connection programs.
The kernel's own RetransSegs of the namespace, per round, says how heavy.

    tests/bench/established_bulk.py [--rounds 61] [--secs 2] [--loss 1] [--conntrace ./conntrace]
"""

import argparse
import ctypes
import json
import os
import random
import secrets
import statistics
import subprocess
import sys
import threading
import time





def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def attached(pid):
    """prog id -> tracepoint or function, for every program process pid attached."""
    perf = json.loads(sh(["bpftool", "-j", "perf", "show"]).stdout)
    return {e["prog_id"]: e.get("tracepoint") or e.get("func") or e.get("fd_type", "?")
            for e in perf if e.get("pid") == pid}


def prog_stats(ids):
    """(hook/name) -> [run_cnt, run_time_ns] of the programs ids (id -> hook)."""
    out = {}
    for p in json.loads(sh(["bpftool", "-j", "prog", "show"]).stdout):
        if p["id"] in ids:
            out[f"{ids[p['id']]}/{p.get('name', '?')}"] = [p.get("run_cnt", 0),
                                                           p.get("run_time_ns", 0)]
    return out


def enable_stats():
    """An fd that keeps BPF run-time stats on while open (bpf(BPF_ENABLE_STATS)):
    unlike the kernel.bpf_stats_enabled sysctl, it never turns them off for
    someone else measuring at the same time. x86-64 and arm64 syscall numbers."""
    nr = {"x86_64": 321, "aarch64": 280}[os.uname().machine]
    attr = (ctypes.c_uint32 * 4)(0)         # .enable_stats.type = BPF_STATS_RUN_TIME
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.syscall(nr, 32, ctypes.byref(attr), ctypes.sizeof(attr))   # BPF_ENABLE_STATS
    if fd < 0:
        raise OSError(ctypes.get_errno(), "bpf(BPF_ENABLE_STATS)")
    return fd


def task_cpu_ns(pid):
    """utime + stime of process pid, in ns (all its threads)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1e9 / os.sysconf("SC_CLK_TCK")


def retrans_segs(ns):
    """The namespace's Tcp RetransSegs (/proc/net/snmp seen from inside it)."""
    lines = [l.split() for l in sh(["ip", "netns", "exec", ns, "cat", "/proc/net/snmp"])
             .stdout.splitlines() if l.startswith("Tcp:")]
    return int(lines[1][lines[0].index("RetransSegs")])


BULK_BIN = None  # tests/bench/bulk.c, built
RETRANS = []    # RetransSegs of each transfer, to say how retransmit-heavy it was


CPUS = []        # --sender-cpu, --receiver-cpu: two CPUs this process may use


def bulk(ns, port, secs):
    r0 = retrans_segs(ns)
    pin = ["--sender-cpu", str(CPUS[0]), "--receiver-cpu", str(CPUS[1])] if CPUS else []
    rate = float(sh(["ip", "netns", "exec", ns, BULK_BIN, "--port", str(port),
                     "--secs", str(secs), *pin], timeout=secs + 60).stdout)
    RETRANS.append(retrans_segs(ns) - r0)
    return rate


def drop_share(ns, port, pct):
    """nft in the namespace: drop pct % of the segments to port, at random."""
    rules = (f"table inet ctbulk {{\n chain out {{\n type filter hook output priority 0\n"
             f" tcp dport {port} numgen random mod 10000 < {round(pct * 100)} drop\n }}\n}}\n")
    sh(["ip", "netns", "exec", ns, "nft", "-f", "-"], input=rules)


def started(ct):
    """Waits for conntrace's start record (its programs are attached), then
    drains its stdout in a thread; False if it exited first."""
    line = ct.stdout.readline()
    threading.Thread(target=lambda: [None for _ in ct.stdout], daemon=True).start()
    return line.startswith(b'{"type":"start"')


def traced(a, ns, inode, port, stats):
    """One transfer with conntrace running: (MB/s, program costs, collector CPU).
    Costs, and the collector's CPU when idle, only with stats (then
    kernel.bpf_stats_enabled=1 for that transfer)."""
    cost, cpu = {}, {}
    ct = subprocess.Popen([a.conntrace, "-j", "--netns", str(inode)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        if not started(ct):
            raise RuntimeError(f"conntrace did not start: {ct.stderr.read().decode()[-500:]}")
        # bpftool takes seconds here: only for the one transfer that is costed
        ids = attached(ct.pid) if stats else []
        c0, w0 = task_cpu_ns(ct.pid), time.monotonic_ns()
        if stats:
            time.sleep(1.0)     # idle: what the collector costs with nothing to do
        c1, w1 = task_cpu_ns(ct.pid), time.monotonic_ns()
        fd = enable_stats() if stats else None
        before = prog_stats(ids) if stats else {}
        rate = bulk(ns, port, a.secs)
        after = prog_stats(ids) if stats else {}
        if fd is not None:
            os.close(fd)
        c2, w2 = task_cpu_ns(ct.pid), time.monotonic_ns()
        cpu = {"idle": (c1 - c0, w1 - w0), "transfer": (c2 - c1, w2 - w1)}
    finally:
        ct.terminate()
        ct.wait(15)
    for name, (cnt, t) in after.items():
        b = before.get(name, [0, 0])
        cost[name] = [cnt - b[0], t - b[1]]
    return rate, cost, cpu


def median_interval(xs, resamples=2000):
    """95 % interval of the median of xs: percentiles of the medians of
    resamples drawn with replacement (seeded: the same figures give the same
    interval)."""
    rng = random.Random(1)
    meds = sorted(statistics.median(rng.choices(xs, k=len(xs))) for _ in range(resamples))
    return meds[int(0.025 * resamples)], meds[int(0.975 * resamples) - 1]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=61)
    ap.add_argument("--secs", type=float, default=2.0)
    ap.add_argument("--conntrace", default="./conntrace")
    ap.add_argument("--bulk", default="build/bench/bulk")
    ap.add_argument("--loss", type=float, default=0.0,
                    help="drop this %% of the data segments (nft numgen): retransmit-heavy")
    a = ap.parse_args()
    if not 0 <= a.loss < 100:
        ap.error("--loss: a percentage in [0, 100)")
    if a.rounds < 1:
        ap.error("--rounds: at least 1")
    global BULK_BIN
    BULK_BIN = os.path.abspath(a.bulk)
    if not os.access(BULK_BIN, os.X_OK):
        ap.error(f"--bulk: {a.bulk} is not built (make {a.bulk})")
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) >= 2:
        CPUS[:] = allowed[:2]
    ns = f"ctbulk-{secrets.token_hex(3)}"
    sh(["ip", "netns", "add", ns])
    # throughput without bpf_stats (its two clock reads per program run would
    # count against the traced runs); the costs from one more transfer with it
    stats_on = [sh(["sysctl", "-n", "kernel.bpf_stats_enabled"]).stdout.strip() == "1"]
    untraced, traced_mbs, ratios = [], [], []
    try:
        sh(["ip", "-n", ns, "link", "set", "lo", "up"])
        inode = os.stat(f"/run/netns/{ns}").st_ino
        port = 30000 + secrets.randbelow(20000)
        if a.loss:
            drop_share(ns, port, a.loss)
        untraced.append(bulk(ns, port, a.secs))
        for r in range(a.rounds):
            traced_mbs.append(traced(a, ns, inode, port, False)[0])
            untraced.append(bulk(ns, port, a.secs))
            ratios.append(traced_mbs[-1] / ((untraced[-2] + untraced[-1]) / 2))
            print(f"round {r + 1}: untraced {untraced[-2]:.0f}, traced {traced_mbs[-1]:.0f}, "
                  f"untraced {untraced[-1]:.0f} MB/s: ratio {ratios[-1]:.3f}", flush=True)
        stats_on.append(sh(["sysctl", "-n", "kernel.bpf_stats_enabled"]).stdout.strip() == "1")
        rate, cost, cpu = traced(a, ns, inode, port, True)
    finally:
        subprocess.run(["ip", "netns", "del", ns])
    if any(stats_on):
        print("note: kernel.bpf_stats_enabled was on (someone else) during the throughput "
              "rounds: the traced runs paid for it")
    mu, mt = statistics.median(untraced), statistics.median(traced_mbs)
    kind = f"{a.loss:g} % of segments dropped" if a.loss else "healthy"
    pinned = f"sender on CPU {CPUS[0]}, receiver on CPU {CPUS[1]}" if CPUS else "not pinned"
    lo, hi = median_interval(ratios)
    print(f"{kind}: ratio traced/untraced, median of {a.rounds} {statistics.median(ratios):.3f} "
          f"({min(ratios):.3f}-{max(ratios):.3f}; 95 % interval of the median {lo:.3f}-{hi:.3f}, "
          f"bootstrap); median untraced {mu:.0f} MB/s "
          f"({len(untraced)} transfers), traced {mt:.0f} MB/s ({a.rounds} transfers of {a.secs} s, "
          f"{pinned}; load average {open('/proc/loadavg').read().split()[0]}; "
          f"retransmitted segments per transfer, median {statistics.median(RETRANS):.0f})")
    print(f"conntrace's programs during one more traced transfer, with bpf_stats "
          f"({rate:.0f} MB/s; hook/program: runs, ns in all, ns per run):")
    for name, (cnt, t) in sorted(cost.items(), key=lambda kv: -kv[1][1]):
        print(f"  {name}: {cnt} runs, {t} ns, {t / cnt if cnt else 0:.0f} ns/run")
    for k, (c, w) in cpu.items():
        print(f"conntrace process CPU, {k}: {100 * c / w if w else 0:.2f} % of one core "
              f"({c / 1e6:.0f} ms in {w / 1e9:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
