# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""The writer in the whole collector (issue 11): conntrace -j in a refused
storm, its CPU time (user + system, from wait4) per verdict written, less
that of the same run without the storm (start-up: BTF, loading, attaching),
for one or more binaries in interleaved rounds. Root; a namespace of its own, traffic
to 127.0.0.1 inside it only.

  writer_storm.py [--rounds 5] [--count 20000] [--spread-ms 2000] \\
      --synflood build/tests/synflood NAME=BINARY [NAME=BINARY ...]

Prints, per binary, the median over the rounds of CPU us per verdict, and
the verdict lines written against the attempts made (all must be there)."""

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

NS = f"ctws{os.getpid()}"
PORT = 399  # below 1024: no connection takes it as its source port


def sh(*cmd, **kw):
    return subprocess.run(list(map(str, cmd)), check=True, capture_output=True, text=True, **kw)


def one_run(binary, inode, synflood, count, spread_ms):
    with tempfile.TemporaryFile() as out:
        ct = subprocess.Popen([binary, "-j", "--netns", str(inode), "--port", str(PORT)],
                              stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while os.fstat(out.fileno()).st_size == 0:    # the start record: attached
            if time.monotonic() > deadline or ct.poll() is not None:
                ct.kill()
                sys.exit(f"{binary}: no start record")
            time.sleep(0.05)
        if count:
            sh("ip", "netns", "exec", NS, synflood, "--count", count, "--concurrency", 50,
               "--spread-ms", spread_ms, "--name", "ctstorm", "127.0.0.1", PORT, timeout=300)
        else:
            time.sleep(spread_ms / 1000)
        time.sleep(0.5)     # the hold for late evidence, then the last drain
        ct.send_signal(signal.SIGINT)
        _, status, ru = os.wait4(ct.pid, 0)
        ct.returncode = os.waitstatus_to_exitcode(status)
        if ct.returncode != 0:
            sys.exit(f"{binary}: exit status {ct.returncode}")
        out.seek(0)
        verdicts = sum(1 for line in out if line.startswith(b'{"type":"verdict"'))
    return (ru.ru_utime + ru.ru_stime) * 1e6, verdicts


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--count", type=int, default=20000)
    ap.add_argument("--spread-ms", type=int, default=2000)
    ap.add_argument("--synflood", default="build/tests/synflood")
    ap.add_argument("binaries", nargs="+", metavar="NAME=BINARY")
    a = ap.parse_args()
    bins = [b.split("=", 1) for b in a.binaries]
    sh("ip", "netns", "add", NS)
    try:
        sh("ip", "-n", NS, "link", "set", "lo", "up")
        inode = os.stat(f"/run/netns/{NS}").st_ino
        res = {name: [] for name, _ in bins}
        for r in range(a.rounds):
            for name, binary in (bins if r % 2 == 0 else bins[::-1]):
                idle_us, _ = one_run(binary, inode, a.synflood, 0, a.spread_ms)
                cpu_us, n = one_run(binary, inode, a.synflood, a.count, a.spread_ms)
                res[name].append(((cpu_us - idle_us) / max(n, 1), n))
                print(f"round {r + 1} {name}: {cpu_us / 1e3:.0f} ms CPU, idle "
                      f"{idle_us / 1e3:.0f} ms, {n} verdicts", file=sys.stderr)
        for name, v in res.items():
            per = [x for x, _ in v]
            print(f"{name}: {statistics.median(per):.2f} us CPU per verdict (median of "
                  f"{len(per)}: {', '.join(f'{x:.2f}' for x in per)}); verdicts "
                  f"{min(n for _, n in v)}..{max(n for _, n in v)} of {a.count}")
    finally:
        subprocess.run(["ip", "netns", "del", NS])


if __name__ == "__main__":
    main()
