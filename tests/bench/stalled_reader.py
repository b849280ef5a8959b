#!/usr/bin/python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""The stalled-reader figure of issue 11, by hand (needs root):

    make build/bench/loadgen
    tests/bench/stalled_reader.py --conntrace ./conntrace --loadgen build/bench/loadgen

A `conntrace -j --netns NS --port P --metrics 127.0.0.1:M` whose standard
output nobody reads (after its start record) while loadgen makes refused
connects (--load accept: accepted ones) in NS for --duration seconds; then
/metrics is scraped, the output read again, SIGINT, and the summary compared
with the attempts loadgen made (its own count of ECONNREFUSED, or of
connects). Prints one JSON line.
"""

import argparse
import json
import os
import secrets
import signal
import socket
import subprocess
import threading
import time
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def metrics_verdict(port, verdict):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    return sum(int(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(f'conntrace_verdicts_total{{verdict="{verdict}"'))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--conntrace", default="./conntrace")
    ap.add_argument("--loadgen", default="build/bench/loadgen")
    ap.add_argument("--duration", type=float, default=4.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--args", default="", help="more conntrace options")
    ap.add_argument("--load", choices=("refused", "accept"), default="refused",
                    help="loadgen's mode: refused connects, or accepted ones (verdict ok)")
    a = ap.parse_args()
    ns = f"ctstall-{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    ct = None
    try:
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        port, mport = free_port(), free_port()
        ct = subprocess.Popen([a.conntrace, "-j", "--netns", ns, "--port", str(port),
                               "--metrics", f"127.0.0.1:{mport}", *a.args.split()],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert json.loads(ct.stdout.readline())["type"] == "start"
        load = subprocess.run(["ip", "netns", "exec", ns, a.loadgen, a.load, "--duration",
                               str(a.duration), "--threads", str(a.threads), "--port",
                               str(port)], capture_output=True, check=True, text=True)
        res = json.loads(load.stdout.splitlines()[-1])
        time.sleep(2.5)     # the metrics take the kernel's counts once a second
        verdict = "ok" if a.load == "accept" else "refused"
        scraped = metrics_verdict(mport, verdict)
        lines = []
        reader = threading.Thread(target=lambda: lines.extend(ct.stdout), daemon=True)
        reader.start()
        os.kill(ct.pid, signal.SIGINT)
        ct.wait(300)
        reader.join(60)
        recs = [json.loads(x) for x in lines]
        summary = [r for r in recs if r.get("type") == "summary"][-1]
        printed = sum(1 for r in recs if r.get("type") == "verdict")
        print(json.dumps({
            "binary": a.conntrace, "duration_s": a.duration,
            "attempts": res["attempts"], "verdict": verdict,
            "client": res["ok"] if a.load == "accept" else res["errors"].get("ECONNREFUSED", 0),
            "summary": summary["verdicts"][verdict],
            "metrics": scraped, "printed_verdicts": printed,
            "lost_records": summary["lost_records"],
            "lost_by_verdict": summary.get("lost_by_verdict"),
            "buffer_dropped_by_verdict": summary.get("buffer_dropped_by_verdict"),
            "ok_not_sent": summary.get("ok_not_sent"),
            "flows": summary["flows"]}))
    finally:
        if ct and ct.poll() is None:
            ct.kill()
        subprocess.run(["ip", "netns", "del", ns])


if __name__ == "__main__":
    main()
