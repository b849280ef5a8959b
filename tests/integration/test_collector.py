# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""The collector's life: how it stops, how its output ends, its clock.

- SIGTERM while standard output is a full pipe that nobody reads: conntrace
  exits promptly with status 0 (a write blocked on the pipe does not hold
  it), and what it wrote is whole JSON lines.
- The reader goes away while verdicts are flowing (`conntrace | head -1`):
  exit 0 at once, never killed by SIGPIPE (status 141 in a shell).
- A stop in the middle of a flood: every attempt the kernel side counted
  gets exactly one verdict (its real one, or pending): the programs are
  detached before the last drain and before the pending flows are dumped.
- A step of the wall clock (NTP) while running: the next verdicts carry the
  new time. The step is simulated for conntrace alone with an LD_PRELOAD
  shim over clock_gettime(CLOCK_REALTIME), built here with cc.

Each test runs conntrace with `--netns` and `--port` on its own port below
1024, in its own namespace.
"""

import fcntl
import json
import os
import random
import signal
import subprocess
import termios
import time
from collections import Counter

import pytest

from ctharness import (START_TIMEOUT, STOP_TIMEOUT, SYNFLOOD, Conntrace, NetNS,
                       conntrace_path, parse_ts, readline_timeout, run)

F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
STOP_DEADLINE = 5.0     # s from SIGTERM to exit with a blocked stdout (grace 1 s)

_ports_used = set()


def own_port():
    """A port in 400-599 unused in this session (test_faults.py takes 600-999):
    no connection takes it as a source port, so --port passes only ours."""
    while True:
        p = random.randint(400, 599)
        if p not in _ports_used:
            _ports_used.add(p)
            return p


@pytest.fixture
def own_ns():
    with NetNS("ctc") as ns:
        yield ns


@pytest.fixture(scope="module", autouse=True)
def synflood_tool():
    if os.geteuid() == 0:
        run(["make", "-C", str(SYNFLOOD.parents[2]), "--no-print-directory",
             os.path.relpath(SYNFLOOD, SYNFLOOD.parents[2])], timeout=120)


def flood(ns, port, *, count, spread_ms, accept=False, name="ctc-flood"):
    cmd = [SYNFLOOD, "--count", count, "--concurrency", 50, "--spread-ms", spread_ms,
           "--name", name]
    if accept:
        cmd.append("--accept")
    return ns.popen([*cmd, "127.0.0.1", port])


def pipe_bytes(fd):
    """Bytes waiting in a pipe (FIONREAD on its read end)."""
    return int.from_bytes(fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"), "little")


def test_sigterm_with_a_full_unread_stdout(own_ns):
    """stdout is a one-page pipe nobody reads; 2000 refused attempts make far
    more verdicts than it (and the collector's buffer) holds, so conntrace
    is blocked on its output when SIGTERM comes. It must exit 0 within
    STOP_DEADLINE (before, SA_RESTART resumed the write and it hung)."""
    port = own_port()
    ct = subprocess.Popen([conntrace_path(), "-j", "-a", "--netns", str(own_ns.inode),
                           "--port", str(port)],
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE)
    try:
        fcntl.fcntl(ct.stdout.fileno(), F_SETPIPE_SZ, 4096)
        start = json.loads(readline_timeout(ct, START_TIMEOUT, "the start record"))
        assert start["type"] == "start", start
        f = flood(own_ns, port, count=2000, spread_ms=1000)
        out, err = f.communicate(timeout=60)
        assert f.returncode == 0, err
        res = json.loads(out.decode().splitlines()[-1])
        assert res["count"] == 2000, res
        # 2000 verdicts (~1.5 MB) cannot be in a 4 KiB pipe and a 64 KiB buffer
        deadline = time.monotonic() + 10
        while pipe_bytes(ct.stdout.fileno()) < 2048:
            assert time.monotonic() < deadline, "conntrace wrote nothing into the pipe"
            time.sleep(0.05)
        assert ct.poll() is None, f"conntrace exited early: rc={ct.returncode}"
        t0 = time.monotonic()
        ct.send_signal(signal.SIGTERM)
        try:
            rc = ct.wait(STOP_DEADLINE)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"conntrace still running {STOP_DEADLINE} s after SIGTERM "
                                 f"with a full stdout (wchan "
                                 f"{open(f'/proc/{ct.pid}/wchan').read()!r})")
        took = time.monotonic() - t0
        rest = ct.stdout.read()
        err = ct.stderr.read().decode()
    finally:
        if ct.poll() is None:
            ct.kill()
            ct.wait()
    assert rc == 0, f"exit status {rc} after SIGTERM; stderr {err!r}"
    assert not err, f"not quiet: {err!r}"
    # what reached the pipe is whole lines of JSON: nothing cut mid-record
    assert rest.endswith(b"\n"), rest[-200:]
    recs = [json.loads(line) for line in rest.splitlines()]
    assert recs and all(r["type"] in ("verdict", "lost", "summary") for r in recs), recs[:3]
    print(f"exited {took:.2f} s after SIGTERM; {len(recs)} records in the pipe")


@pytest.mark.parametrize("json_mode", [False, True], ids=["text", "json"])
def test_reader_gone_while_verdicts_flow(own_ns, json_mode):
    """`conntrace -a --port P | head -1` with refused attempts flowing: head
    exits after the first line while conntrace has verdicts to write. It
    must exit 0 at once and quietly, not die of SIGPIPE (-13 here, 141 in
    a shell), which it did when the reader left between two writes."""
    port = own_port()
    f = flood(own_ns, port, count=40000, spread_ms=20000)
    argv = [conntrace_path(), "-a", "--netns", str(own_ns.inode), "--port", str(port)] + (["-j"] if json_mode else [])
    ct = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    head = subprocess.Popen(["head", "-1"], stdin=ct.stdout, stdout=subprocess.PIPE)
    ct.stdout.close()
    try:
        first, _ = head.communicate(timeout=START_TIMEOUT)
        assert first, "head read nothing"
        try:
            rc = ct.wait(timeout=5)
        except subprocess.TimeoutExpired:
            raise AssertionError("conntrace still running 5 s after its reader went away")
        err = ct.stderr.read().decode()
        assert f.poll() is None, "the flood ended before conntrace did: nothing was flowing"
    finally:
        if ct.poll() is None:
            ct.kill()
            ct.wait()
    assert rc != -signal.SIGPIPE, "killed by SIGPIPE (exit status 141 in a shell)"
    assert rc == 0, f"exit status {rc}; stderr {err!r}"
    lines = [line for line in err.splitlines() if "tracing TCP connection attempts" not in line]
    assert not lines, f"not quiet: {err!r}"


def test_stop_mid_flood_one_verdict_per_attempt(own_ns):
    """SIGINT while synflood connects (accepted: each attempt is over in well
    under a millisecond) and -p selects synflood alone, so the kernel's flow
    counter counts exactly its attempts seen by conntrace. Each must get one
    verdict: none lost because it finished after the last drain, none
    started after it and never reported, none printed twice (pending and
    real). Before, the pending flows were dumped while the programs ran."""
    port = own_port()
    # one SYN in two dropped: attempts end at random times (OK, SLOW after a
    # retransmit, TIMEOUT), many of them around the stop
    own_ns.nft(f"""
table inet cttest {{
    chain input {{
        type filter hook input priority 0; policy accept;
        tcp dport {port} tcp flags & (syn | ack) == syn numgen random mod 2 == 0 drop
    }}
}}
""")
    # sh waits for a line, then becomes synflood: its pid is known before it starts
    f = own_ns.popen(["sh", "-c", f"read go && exec {SYNFLOOD} --accept --count 200000 "
                      f"--concurrency 500 --hold-ms 2000 --spread-ms 20000 "
                      f"--name ctc-stopflood 127.0.0.1 {port}"], stdin=subprocess.PIPE)
    with Conntrace("-a", "--netns", own_ns.inode, "-p", f.pid, "--port", port) as ct:
        f.stdin.write(b"go\n")
        f.stdin.flush()
        deadline = time.monotonic() + 60
        while len(ct.verdicts()) < 1000:
            assert time.monotonic() < deadline, f"only {len(ct.verdicts())} verdicts in 60 s"
            time.sleep(0.05)
        assert f.poll() is None, "the flood ended before the stop"
        summary = ct.stop()
    verdicts = ct.verdicts()
    print(f"{len(verdicts)} verdicts, summary {summary}")
    assert summary["lost_records"] == 0 and summary["flow_evictions"] == 0, summary
    # an attempt is its source port and its start (ports are reused once a
    # socket is closed): two records of one attempt start within a microsecond
    starts = {}
    for r in verdicts:
        start_us = int(parse_ts(r["ts"]) * 1e6) - r["duration_us"]
        starts.setdefault(r["sport"], []).append((start_us, r["verdict"]))
    dups = []
    for sport, v in starts.items():
        v.sort()
        dups += [(sport, a, b) for a, b in zip(v, v[1:]) if b[0] - a[0] < 50]
    assert not dups, f"attempts with several verdicts: {dups[:10]}"
    counted = sum(summary["verdicts"].values())
    assert counted == len(verdicts), (summary["verdicts"], len(verdicts))
    assert counted == summary["flows"], \
        f"{summary['flows']} attempts counted by the kernel side, {counted} verdicts " \
        f"({dict(Counter(r['verdict'] for r in verdicts))})"


SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* CLOCK_REALTIME plus the seconds written in $CT_CLOCK_STEP_FILE. */
int clock_gettime(clockid_t id, struct timespec *ts)
{
	static int (*real)(clockid_t, struct timespec *);
	const char *path = getenv("CT_CLOCK_STEP_FILE");
	long step = 0;
	FILE *f;
	int r;

	if (!real)
		real = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
	r = real(id, ts);
	if (r || id != CLOCK_REALTIME || !path || !(f = fopen(path, "r")))
		return r;
	if (fscanf(f, "%ld", &step) == 1)
		ts->tv_sec += step;
	fclose(f);
	return r;
}
"""


def test_wall_clock_step_followed(own_ns, tmp_path):
    """The wall clock steps forward 3 days (as NTP may step it) while
    conntrace runs: the verdicts after the step are stamped with the new
    time. Before, the offset from CLOCK_BOOTTIME was taken once at start."""
    step_s = 3 * 86400
    (tmp_path / "shim.c").write_text(SHIM)
    run(["cc", "-shared", "-fPIC", "-O2", "-o", tmp_path / "shim.so", tmp_path / "shim.c",
         "-ldl"])
    step_file = tmp_path / "step"
    step_file.write_text("0\n")
    wrapper = tmp_path / "conntrace"
    wrapper.write_text(f"#!/bin/sh\nCT_CLOCK_STEP_FILE={step_file} "
                       f"LD_PRELOAD={tmp_path / 'shim.so'} exec {conntrace_path()} \"$@\"\n")
    wrapper.chmod(0o755)
    port = own_port()

    def refused_burst(name):
        f = flood(own_ns, port, count=3, spread_ms=0, name=name)
        out, err = f.communicate(timeout=30)
        assert f.returncode == 0, err
        return ct.wait_for(lambda r: r.get("type") == "verdict" and r["comm"] == name,
                           what=f"a verdict from {name}")

    with Conntrace("-a", "--netns", own_ns.inode, "--port", port, binary=str(wrapper)) as ct:
        assert abs(parse_ts(ct.start_record["ts"]) - time.time()) < 5, ct.start_record
        before = refused_burst("ctc-before")
        assert abs(parse_ts(before["ts"]) - time.time()) < 5, before["ts"]
        step_file.write_text(f"{step_s}\n")
        after = refused_burst("ctc-after")
        summary = ct.stop()
    skew = parse_ts(after["ts"]) - time.time()
    assert abs(skew - step_s) < 5, \
        f"verdict after a {step_s} s step stamped {after['ts']} ({skew:.1f} s from now)"
    assert abs(parse_ts(summary["ts"]) - time.time() - step_s) < 5, summary["ts"]
