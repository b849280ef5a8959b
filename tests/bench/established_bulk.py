#!/usr/bin/python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""What following established connections costs a healthy bulk transfer.

In a throwaway namespace, a loopback TCP bulk transfer (one connection, one
sender and one receiver thread, 1 MiB writes) runs for --secs seconds,
alternately without and with `conntrace -j --netns NS` running, for --rounds
rounds each. Prints the median throughput of each, their ratio (traced /
untraced; the issue's target is >= 0.98), and, with kernel.bpf_stats_enabled,
how often and how long conntrace's established-connection programs ran during
the traced transfers. Needs root; run from the top of the tree after make.

    tests/bench/established_bulk.py [--rounds 7] [--secs 4] [--conntrace ./conntrace]
"""

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import time

BULK = r"""
import socket, sys, threading, time
port, secs = int(sys.argv[1]), float(sys.argv[2])
ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", port)); ls.listen(1)
c = socket.create_connection(("127.0.0.1", port)); s, _ = ls.accept()
got = [0]
def sink():
    b = bytearray(1 << 20)
    while True:
        n = s.recv_into(b)
        if not n:
            break
        got[0] += n
t = threading.Thread(target=sink); t.start()
buf = b"z" * (1 << 20); t0 = time.monotonic(); end = t0 + secs
while time.monotonic() < end:
    c.sendall(buf)
c.shutdown(socket.SHUT_WR); t.join()
print(got[0] / (time.monotonic() - t0) / 1e6)
"""

PROGS = ("handle_estab_state", "handle_estab_retransmit", "handle_estab_receive_reset",
         "handle_estab_send_reset", "handle_kfree_skb")


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def prog_stats():
    """run_cnt and run_time_ns of conntrace's programs, by name (summed)."""
    out = {}
    for p in json.loads(sh(["bpftool", "-j", "prog", "show"]).stdout):
        if p.get("name") in PROGS or p.get("name") in [n[:15] for n in PROGS]:
            o = out.setdefault(p["name"], [0, 0])
            o[0] += p.get("run_cnt", 0)
            o[1] += p.get("run_time_ns", 0)
    return out


def bulk(ns, port, secs):
    return float(sh(["ip", "netns", "exec", ns, "/usr/bin/python3", "-c", BULK, str(port),
                     str(secs)], timeout=secs + 60).stdout)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--secs", type=float, default=4.0)
    ap.add_argument("--conntrace", default="./conntrace")
    a = ap.parse_args()
    ns = f"ctbulk-{secrets.token_hex(3)}"
    sh(["ip", "netns", "add", ns])
    stats_was = sh(["sysctl", "-n", "kernel.bpf_stats_enabled"]).stdout.strip()
    sh(["sysctl", "-qw", "kernel.bpf_stats_enabled=1"])
    untraced, traced, cost = [], [], {}
    try:
        sh(["ip", "-n", ns, "link", "set", "lo", "up"])
        inode = os.stat(f"/run/netns/{ns}").st_ino
        port = 30000 + secrets.randbelow(20000)
        for r in range(a.rounds):
            untraced.append(bulk(ns, port, a.secs))
            ct = subprocess.Popen([a.conntrace, "-j", "--netns", str(inode)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            try:
                time.sleep(1.5)     # attached (its start record comes within a second)
                before = prog_stats()
                traced.append(bulk(ns, port, a.secs))
                after = prog_stats()
            finally:
                ct.terminate()
                ct.wait(15)
            for name, (cnt, ns_) in after.items():
                b = before.get(name, [0, 0])
                c = cost.setdefault(name, [0, 0])
                c[0] += cnt - b[0]
                c[1] += ns_ - b[1]
            print(f"round {r + 1}: untraced {untraced[-1]:.0f} MB/s, traced {traced[-1]:.0f} MB/s",
                  flush=True)
    finally:
        sh(["sysctl", "-qw", f"kernel.bpf_stats_enabled={stats_was}"])
        subprocess.run(["ip", "netns", "del", ns])
    mu, mt = statistics.median(untraced), statistics.median(traced)
    print(f"median untraced {mu:.0f} MB/s, traced {mt:.0f} MB/s, ratio {mt / mu:.3f} "
          f"({a.rounds} rounds of {a.secs} s; load average {open('/proc/loadavg').read().split()[0]})")
    for name, (cnt, t) in sorted(cost.items()):
        print(f"{name}: {cnt} runs, {t} ns in all, during the traced transfers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
