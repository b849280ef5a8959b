# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Counts that stay exact in a storm (issue 11).

Each test runs its own `conntrace -j --netns NS --port P` on its own
namespace, so the summary counts only its own attempts, however busy the
machine is. A client in the namespace makes blocking connects to a closed
port and counts the ECONNREFUSED it gets: that is the truth the summary,
the `lost` records and /metrics must equal, by verdict, whether each
attempt's verdict was printed, dropped because the output buffer was full,
or counted in the kernel because the ring had no room for its record.

The accounting identity checked everywhere (incoming attempts in flows too):
    flows == sum(verdicts)            (pending included)
    verdicts[v] == printed[v] + lost_by_verdict[v] + buffer_dropped_by_verdict[v]
                   (+ ok_not_sent for ok)
"""

import json
import os
import signal
import time
import urllib.request
from collections import Counter

import pytest

import ctharness
from ctharness import HeldConntrace, ROOT, SYNFLOOD, Conntrace, NetNS, run

# Blocking connects to a closed port, as fast as Python goes: one JSON line
# with what connect() returned, by errno name.
REFUSER = r"""
import errno, json, socket, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
got = {}
for _ in range(n):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    e = s.connect_ex(("127.0.0.1", port))
    s.close()
    k = errno.errorcode.get(e, str(e)) if e else "ok"
    got[k] = got.get(k, 0) + 1
print(json.dumps(got), flush=True)
"""

STORM = 30000


@pytest.fixture(scope="module", autouse=True)
def synflood_tool():
    run(["make", "-C", ROOT, "--no-print-directory", os.path.relpath(SYNFLOOD, ROOT)],
        timeout=120)


@pytest.fixture
def own_ns():
    """A namespace of this test alone."""
    with NetNS("cts") as ns:
        yield ns


def free_local_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def refuse_storm(ns, port, n):
    """n blocking connects to 127.0.0.1:port in ns; what they returned."""
    p = run(["ip", "netns", "exec", ns.name, "/usr/bin/python3", "-c", REFUSER,
             str(port), str(n)], timeout=600)
    got = json.loads(p.stdout.splitlines()[-1])
    assert sum(got.values()) == n, got
    return got


def scrape(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line.startswith("conntrace_verdicts_total{"):
            labels, value = line[len("conntrace_verdicts_total{"):].split("} ")
            kv = dict(x.split("=", 1) for x in labels.split(","))
            key = (kv["verdict"].strip('"'), kv["cause"].strip('"'))
            out[key] = int(value)
    return out


def metrics_by_verdict(port):
    by = Counter()
    for (verdict, _), n in scrape(port).items():
        by[verdict] += n
    return by


def wait_until(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        got = pred()
        if got:
            return got
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(0.2)


def check_identity(summary, printed):
    """The summary accounts for every attempt, and for how each was counted."""
    v = summary["verdicts"]
    assert summary["flows"] == sum(v.values()), \
        f"flows {summary['flows']} != sum of verdicts {v}: {summary}"
    for k in ctharness.VERDICTS:
        parts = printed[k] + summary["lost_by_verdict"].get(k, 0) + \
            summary["buffer_dropped_by_verdict"].get(k, 0) + \
            (summary["ok_not_sent"] if k == "ok" else 0)
        assert v[k] == parts, \
            f"{k}: summary {v[k]} != printed {printed[k]} + lost " \
            f"{summary['lost_by_verdict']} + dropped {summary['buffer_dropped_by_verdict']}" \
            f" (+ ok_not_sent {summary['ok_not_sent']}): {summary}"


def last_lost(records):
    lost = [r for r in records if r.get("type") == "lost"]
    return lost[-1] if lost else None


@pytest.mark.parametrize("buffer", [None, "256K"], ids=["default-buffer", "buffer-256K"])
def test_stalled_reader_counts_exact(own_ns, buffer):
    """stdout is not read for the whole refused storm, then read again: the
    summary's and /metrics' refused counts equal the ECONNREFUSED the client
    got; the lines waited in memory (default 64 MiB) or, with a small
    --buffer, those beyond it were dropped and counted by verdict; the ring
    was never held up by the reader."""
    ns = own_ns
    port, mport = free_local_port(), free_local_port()
    args = ["--netns", ns.name, "--port", port,
            "--metrics", f"127.0.0.1:{mport}"]
    if buffer:
        args += ["--buffer", buffer]
    ct = HeldConntrace(*args).start()
    try:
        got = refuse_storm(ns, port, STORM)
        refused = got.get("ECONNREFUSED", 0)
        assert refused == STORM, f"the client's connects: {got}"
        # counted while still nobody reads: metrics see every attempt
        wait_until(lambda: metrics_by_verdict(mport)["refused"] == refused, 30,
                   f"/metrics counting {refused} refused ({scrape(mport)})")
        assert ct.running(), f"conntrace exited while its reader paused: {ct.stderr}"
        by_cause = scrape(mport)
        ct.resume()
        summary = ct.stop(timeout=120)
    finally:
        ct.kill()
    printed = Counter(r["verdict"] for r in ct.verdicts())
    print(f"client {got}; summary {summary}; printed {dict(printed)}; metrics {by_cause}")
    assert summary["verdicts"]["refused"] == refused, (summary, refused)
    assert sum(summary["verdicts"].values()) == refused, summary
    check_identity(summary, printed)
    # what the reader missed is said, by verdict, in the stream itself
    dropped = summary["buffer_dropped_by_verdict"]["refused"]
    if buffer:
        assert dropped > 0, f"{STORM} verdicts fit in a {buffer} buffer? {summary}"
        assert printed["refused"] > 0, summary
    else:
        assert dropped == 0, f"the default buffer dropped {dropped}: {summary}"
    lost = last_lost(ct.records)
    if dropped:
        assert lost and lost["buffer_records_total"] == dropped, (lost, summary)
    # the ring was drained while the reader stalled: whatever it lost was
    # counted by verdict, and nothing else vanished
    assert summary["lost_records"] >= summary["lost_by_verdict"]["refused"], summary


def test_small_ring_storm_counts_exact(own_ns):
    """A 4 KiB ring, conntrace stopped (SIGSTOP) during a refused storm and
    an accept storm, so most records cannot cross the ring: the kernel counts
    them by verdict, and the summary still equals the attempts by verdict;
    the OK ones (no -a) are counted in the kernel, not sent."""
    ns = own_ns
    port, aport = free_local_port(), free_local_port()
    ct = Conntrace("--netns", ns.name, "--ring-size", 4096).start()
    try:
        os.kill(ct.proc.pid, signal.SIGSTOP)
        try:
            got = refuse_storm(ns, port, STORM // 3)
            flood = ns.popen([SYNFLOOD, "--accept", "--count", 3000, "--concurrency", 300,
                              "--name", "cts-accept", "127.0.0.1", aport])
            out, err = flood.communicate(timeout=120)
            assert flood.returncode == 0, err
            res = json.loads(out.decode().splitlines()[-1])
        finally:
            os.kill(ct.proc.pid, signal.SIGCONT)
        refused = got.get("ECONNREFUSED", 0)
        assert refused == STORM // 3, got
        assert res["connected"] + res["inprogress"] == 3000 and res["failed"] == 0, res
        ct.wait_for(lambda r: r.get("type") == "lost" and r["lost_by_verdict"]["refused"] > 0,
                    timeout=10, what="a lost record counting refused attempts")
        summary = ct.stop()
    finally:
        ct.kill()
    printed = Counter(r["verdict"] for r in ct.verdicts())
    print(f"client {got}, accept storm {res}; summary {summary}; printed {dict(printed)}")
    assert summary["lost_by_verdict"]["refused"] > 0, summary
    assert summary["verdicts"]["refused"] == refused, (summary, refused)
    assert summary["verdicts"]["ok"] == 3000, summary
    assert summary["ok_not_sent"] == 3000, summary
    assert sum(summary["verdicts"].values()) == refused + 3000, summary
    check_identity(summary, printed)
    lost = [r for r in ct.records if r.get("type") == "lost"]
    assert sum(r["lost_by_verdict"]["refused"] for r in lost) == \
        summary["lost_by_verdict"]["refused"], (lost, summary)


def scrape_text(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        return r.read().decode()


def sample(text, series):
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_ok_counted_in_the_kernel_for_metrics(own_ns):
    """--metrics without -a: OK attempts do not cross the ring (no record, no
    line), yet /metrics counts each one, with its duration in the histogram,
    and the summary says they were counted in the kernel."""
    ns = own_ns
    port, mport, n = free_local_port(), free_local_port(), 3000
    ct = Conntrace("--netns", ns.name, "--port", port, "--metrics", f"127.0.0.1:{mport}").start()
    try:
        flood = ns.popen([SYNFLOOD, "--accept", "--count", n, "--concurrency", 300,
                          "--name", "cts-ok", "127.0.0.1", port])
        out, err = flood.communicate(timeout=120)
        assert flood.returncode == 0, err
        res = json.loads(out.decode().splitlines()[-1])
        assert res["connected"] + res["inprogress"] == n and res["failed"] == 0, res
        ok = 'conntrace_verdicts_total{verdict="ok",cause="established",direction="outbound"}'
        text = wait_until(lambda: (lambda t: t if sample(t, ok) == n else None)(
            scrape_text(mport)), 30, f"/metrics counting {n} ok")
        summary = ct.stop()
    finally:
        ct.kill()
    cnt = sample(text, 'conntrace_connect_duration_seconds_count{verdict="ok"}')
    inf = sample(text, 'conntrace_connect_duration_seconds_bucket{verdict="ok",le="+Inf"}')
    le1 = sample(text, 'conntrace_connect_duration_seconds_bucket{verdict="ok",le="1"}')
    total = sample(text, 'conntrace_connect_duration_seconds_sum{verdict="ok"}')
    print(f"synflood {res}; summary {summary}; ok count {cnt} le=1 {le1} sum {total}")
    assert cnt == inf == le1 == n, (cnt, inf, le1)    # OK: faster than --slow (1 s)
    assert 0 < total < n, total
    assert not ct.verdicts(), ct.verdicts()[:3]
    assert summary["ok_not_sent"] == summary["verdicts"]["ok"] == n, summary
    assert summary["lost_records"] == 0, summary
    check_identity(summary, Counter())


@pytest.mark.parametrize("direction", ["both", "in"])
def test_incoming_attempts_counted(own_ns, direction):
    """With incoming attempts followed (--direction both, the default, or in),
    a refused connect on loopback is seen from both ends: its client's
    attempt (outbound) and the SYN this host answered with an RST (inbound).
    The summary's flows count both, so that flows == sum(verdicts) still
    holds, and inbound_verdicts says which share was incoming."""
    ns, n = own_ns, 3000
    port = free_local_port()
    ct = Conntrace("--netns", ns.name, "--port", port, "--direction", direction).start()
    try:
        got = refuse_storm(ns, port, n)
        assert got.get("ECONNREFUSED", 0) == n, got
        summary = ct.stop()
    finally:
        ct.kill()
    printed = Counter((r["direction"], r["verdict"]) for r in ct.verdicts())
    print(f"client {got}; summary {summary}; printed {dict(printed)}")
    assert summary["lost_records"] == 0, summary    # 3000 records fit the default ring
    inbound, outbound = (n, n) if direction == "both" else (n, 0)
    assert summary["inbound_verdicts"]["refused"] == inbound, summary
    assert sum(summary["inbound_verdicts"].values()) == inbound, summary
    assert summary["verdicts"]["refused"] == inbound + outbound, summary
    assert printed[("inbound", "refused")] == inbound, printed
    assert printed[("outbound", "refused")] == outbound, printed
    check_identity(summary, Counter(r["verdict"] for r in ct.verdicts()))
