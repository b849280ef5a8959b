#!/usr/bin/python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""ns per run of every program of one `conntrace -j` during one loadgen storm,
from kernel.bpf_stats_enabled=1 (restored after), in a namespace of its own.

usage: prog_cost.py CONNTRACE refused|accept SECONDS [conntrace args...]
(build/bench/loadgen first: make build/bench/loadgen). Other traffic on the
machine runs the same programs: read ns/run, not the counts."""
import json, os, re, signal, subprocess, sys, time

ct, mode, secs = sys.argv[1], sys.argv[2], float(sys.argv[3])
extra = sys.argv[4:]
NS = "ctsk-bench"
LOADGEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                       "build", "bench", "loadgen")
PORT = {"refused": 5102, "accept": 5101}[mode]

def sh(*a, **kw):
    return subprocess.run(a, check=True, capture_output=True, text=True, **kw).stdout

def progs(pid):
    ids = set()
    for fd in os.listdir(f"/proc/{pid}/fdinfo"):
        try:
            t = open(f"/proc/{pid}/fdinfo/{fd}").read()
        except OSError:
            continue
        for m in re.finditer(r"^prog_id:\s*(\d+)", t, re.M):
            ids.add(int(m.group(1)))
    out = json.loads(sh("bpftool", "-j", "prog", "show"))
    return {p["id"]: p for p in out if p["id"] in ids}

subprocess.run(["ip", "netns", "del", NS], capture_output=True)
sh("ip", "netns", "add", NS)
sh("ip", "-n", NS, "link", "set", "lo", "up")
old = open("/proc/sys/kernel/bpf_stats_enabled").read().strip()
p = None
try:
    p = subprocess.Popen([ct, "-j", *extra], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 30
    while time.time() < deadline and len(progs(p.pid)) < 5:
        time.sleep(0.2)
    time.sleep(0.5)
    open("/proc/sys/kernel/bpf_stats_enabled", "w").write("1")
    b = progs(p.pid)
    lg = sh("ip", "netns", "exec", NS, LOADGEN, mode, "--duration", str(secs),
            "--threads", "2", "--port", str(PORT))
    a = progs(p.pid)
    open("/proc/sys/kernel/bpf_stats_enabled", "w").write(old)
    print("loadgen:", lg.strip())
    for i in sorted(a, key=lambda i: a[i]["name"]):
        dn = a[i].get("run_cnt", 0) - b.get(i, {}).get("run_cnt", 0)
        dt = a[i].get("run_time_ns", 0) - b.get(i, {}).get("run_time_ns", 0)
        dm = a[i].get("recursion_misses", 0) - b.get(i, {}).get("recursion_misses", 0)
        if dn:
            print(f"{a[i]['name']:26s} runs {dn:9d}  ns/run {dt / dn:7.1f}  misses {dm}")
finally:
    open("/proc/sys/kernel/bpf_stats_enabled", "w").write(old)
    if p:
        p.send_signal(signal.SIGINT)
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()
    subprocess.run(["ip", "netns", "del", NS], capture_output=True)
