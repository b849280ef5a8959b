# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Text mode in a storm (issue 11): past 10 a second for one (verdict, cause,
destination), the rest of that second is one aggregated line with its count.

- A refused storm (synflood to a port nothing listens on, in the test's own
  namespace), conntrace in text mode with --netns and --port: at most 10
  REFUSED lines a second, aggregated lines for the others, and the printed
  lines plus the aggregated counts equal the refused attempts, which equal
  the attempts made (the summary line says so too).
- The same storm with --no-aggregate: a line for every attempt, no aggregate.
"""

import random
import re
import signal
import subprocess

import pytest

from ctharness import (START_TIMEOUT, STOP_TIMEOUT, SYNFLOOD, NetNS, conntrace_path,
                       readline_timeout, run)

ATTEMPTS = 3000
SPREAD_MS = 2500        # about 1,200 a second: several seconds' aggregates
PER_SEC = 10            # AGG_PER_SEC in user/aggregate.h, as --help says

_ports_used = set()

AGG_RE = re.compile(r"^(\d\d:\d\d:\d\d) REFUSED (\w+) to (\S+) x ([\d,]+) more in the last "
                    r"(\d+\.\d) s, aggregated \(over 10 a second\): --no-aggregate prints each$")
SUMMARY_RE = re.compile(r"^-- (\d+) attempts in [\d.]+ s(?: \([^)]*\))?:.* refused (\d+) .*; lost records (\d+)")


def own_port():
    """A port in 300-399 unused in this session (test_collector.py takes
    400-599, test_faults.py 600-999): no connection takes it as a source
    port, so --port passes only this test's attempts."""
    while True:
        p = random.randint(300, 399)
        if p not in _ports_used:
            _ports_used.add(p)
            return p


@pytest.fixture
def own_ns():
    with NetNS("cta") as ns:
        yield ns


@pytest.fixture(scope="module", autouse=True)
def synflood_tool():
    run(["make", "-C", str(SYNFLOOD.parents[2]), "--no-print-directory",
         str(SYNFLOOD.relative_to(SYNFLOOD.parents[2]))], timeout=120)


def storm(ns, *extra):
    """conntrace in text mode while ATTEMPTS refused connects run; its stdout lines."""
    port = own_port()
    # outgoing only: each refused connect is also an incoming attempt (test_inbound.py)
    ct = subprocess.Popen([conntrace_path(), "--port", str(port), "--netns", str(ns.inode),
                           "--direction", "out", "--color=never", *extra],
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE)
    try:
        header = readline_timeout(ct, START_TIMEOUT, "the text header")
        assert header.startswith("TIME "), header
        flood = ns.exec([str(SYNFLOOD), "--count", str(ATTEMPTS), "--concurrency", "50",
                         "--spread-ms", str(SPREAD_MS), "--name", "ctagg", "127.0.0.1",
                         str(port)], timeout=120)
        assert '"event":"done"' in flood.stdout, flood.stdout
        ct.send_signal(signal.SIGINT)
        out, err = ct.communicate(timeout=STOP_TIMEOUT)
    finally:
        if ct.poll() is None:
            ct.kill()
            ct.wait()
    assert ct.returncode == 0, f"exit status {ct.returncode}; stderr {err!r}"
    lines = out.decode().splitlines()
    m = SUMMARY_RE.match(lines[-1])
    assert m, f"no summary line last: {lines[-3:]}"
    refused, lost = int(m.group(2)), int(m.group(3))
    assert lost == 0, f"the ring lost {lost} records: the counts below would not be exact"
    assert refused == ATTEMPTS, f"summary: {refused} refused of {ATTEMPTS} attempts: {lines[-1]}"
    return port, lines[:-1]


def split(lines, port):
    """(REFUSED verdict lines, aggregates as (time, cause, dest, count, secs))."""
    verdicts, aggs = [], []
    for line in lines:
        m = AGG_RE.match(line)
        if m:
            aggs.append((m.group(1), m.group(2), m.group(3), int(m.group(4).replace(",", "")),
                         float(m.group(5))))
            continue
        cols = line.split()
        if len(cols) > 1 and cols[1] == "LOST:":
            continue    # the kernel's skipped runs (any program, machine-wide): the summary
                        # above proved the count exact
        assert len(cols) >= 10 and cols[5] == "out" and cols[6] == "REFUSED", \
            f"unexpected line: {line!r}"
        assert cols[4] == f"127.0.0.1:{port}" and cols[9] == "no_listener", line
        verdicts.append(cols)
    return verdicts, aggs


def test_refused_storm_is_aggregated(own_ns):
    port, lines = storm(own_ns)
    verdicts, aggs = split(lines, port)
    assert aggs, f"no aggregated line in a storm of {ATTEMPTS}: {lines[:15]}"
    assert all(a[1] == "no_listener" and a[2] == f"127.0.0.1:{port}" for a in aggs), aggs
    total = len(verdicts) + sum(a[3] for a in aggs)
    assert total == ATTEMPTS, \
        f"{len(verdicts)} lines + {sum(a[3] for a in aggs)} aggregated != {ATTEMPTS} refused"
    # each second (aggregate to aggregate) prints at most PER_SEC lines of the key
    seconds = len(aggs) + 1
    assert len(verdicts) <= PER_SEC * seconds, \
        f"{len(verdicts)} lines in {seconds} aggregation seconds: more than {PER_SEC} a second"
    assert len(lines) < ATTEMPTS / 10, f"the terminal got {len(lines)} lines for {ATTEMPTS}"
    print(f"{len(verdicts)} lines and {len(aggs)} aggregates "
          f"({', '.join(str(a[3]) for a in aggs)}) for {ATTEMPTS} refused attempts")


def test_no_aggregate_prints_every_verdict(own_ns):
    port, lines = storm(own_ns, "--no-aggregate")
    verdicts, aggs = split(lines, port)
    assert not aggs, f"--no-aggregate printed aggregates: {aggs[:3]}"
    assert len(verdicts) == ATTEMPTS, f"{len(verdicts)} lines for {ATTEMPTS} refused attempts"
