# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Where the kernel keeps an attempt while it connects (issue 11): in its
socket (socket-local storage) where this kernel lets tracing programs use it,
else in the LRU table keyed by socket address (--no-sk-storage forces it).
--probes and the start record say which (flow_state). Either way a 4-tuple
reused at once by a new socket, again and again, gives one right verdict per
attempt: socket memory is reused at once too, so a new socket often sits at
the address of the one before it."""

import json
import os
import subprocess
import time

import pytest

import ctharness
from ctharness import Conntrace, readline_timeout, run

# N rounds, one source port: a refused attempt to CLOSED, then an accepted
# one to OPEN, each from a new socket bound to SPORT. An accepted connection
# is reset on close (SO_LINGER 0): no TIME_WAIT keeps its 4-tuple from the
# next round.
REUSE = """
import errno, json, os, socket, struct, sys
sport, closed, opened, n = map(int, sys.argv[1:])
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", opened))
srv.listen(64)
out = {"pid": os.getpid(), "refused": 0, "ok": 0, "other": []}
for i in range(n):
    for port in (closed, opened):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.bind(("127.0.0.1", sport))
        err = s.connect_ex(("127.0.0.1", port))
        if err == errno.ECONNREFUSED and port == closed:
            out["refused"] += 1
        elif err == 0 and port == opened:
            out["ok"] += 1
            c, _ = srv.accept()
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            c.close()
        else:
            out["other"].append([port, errno.errorcode.get(err, err)])
        s.close()
print(json.dumps(out), flush=True)
"""

MODES = {"default": [], "lru": ["--no-sk-storage"]}


def kernel_allows_sk_storage():
    """Tracing programs may call bpf_sk_storage_get() since 5.11."""
    major, minor = (int(x) for x in os.uname().release.split(".")[:2])
    return (major, minor) >= (5, 11)


def wait_settled(ct, pred, want, timeout=60.0, settle=3.0):
    """Until want verdicts match pred, or their number stops moving for
    settle seconds (the rest lost: the summary then says so)."""
    deadline, last, since = time.monotonic() + timeout, -1, time.monotonic()
    while time.monotonic() < deadline:
        n = len(ct.verdicts(pred))
        if n >= want:
            return
        if n != last:
            last, since = n, time.monotonic()
        elif time.monotonic() - since >= settle:
            return
        time.sleep(0.25)


def flow_state_row(*args):
    p = run([ctharness.conntrace_path(), "--probes", *args], timeout=60)
    row = next(l for l in p.stdout.splitlines() if l.split()[0] == "flow_state")
    return row.split(None, 2)


def test_probes_say_where_attempts_live():
    _, hook, note = flow_state_row()
    if kernel_allows_sk_storage():
        assert hook == "sk_storage" and "socket" in note, (hook, note)
    else:
        assert hook == "lru_hash" and "refused" in note, (hook, note)
    _, hook, note = flow_state_row("--no-sk-storage")
    assert hook == "lru_hash" and "--no-sk-storage" in note, (hook, note)


@pytest.mark.parametrize("mode", sorted(MODES))
def test_start_record_says_where_attempts_live(netns, mode):
    with Conntrace("--port", ctharness.free_port(), "--netns", netns.inode, *MODES[mode]) as ct:
        fs = ct.start_record["probes"]["flow_state"]
        ct.stop()
    want = "sk_storage" if mode == "default" and kernel_allows_sk_storage() else "lru_hash"
    assert fs["hook"] == want, fs


@pytest.mark.parametrize("mode", sorted(MODES))
def test_same_tuple_reused_at_once(netns, mode):
    rounds = 150
    sport, closed, opened = (ctharness.free_port() for _ in range(3))
    ct = Conntrace("-a", "--port", f"{closed},{opened}", "--netns", netns.inode,
                   *MODES[mode]).start()
    try:
        proc = netns.popen(["/usr/bin/python3", "-c", REUSE, sport, closed, opened, rounds])
        line = readline_timeout(proc, 60, "the reused 4-tuples")
        assert proc.wait(10) == 0, proc.stderr.read()
        res = json.loads(line)
        assert (res["refused"], res["ok"], res["other"]) == (rounds, rounds, []), res
        wait_settled(ct, lambda r: r["dport"] in (closed, opened), 2 * rounds)
        summary = ct.stop()
    finally:
        ct.kill()
    for port, verdict in ((closed, "refused"), (opened, "ok")):
        mine = ct.verdicts(lambda r, p=port: r.get("dport") == int(p))
        assert len(mine) == rounds, (port, len(mine), mine[:3])
        wrong = [r for r in mine if r["verdict"] != verdict or r["sport"] != int(sport)
                 or r["pid"] != res["pid"] or r["untracked"] or r["evicted"]]
        assert not wrong, (verdict, wrong[:3])
    assert summary["flows"] == 2 * rounds, summary
    assert summary["flows_untracked"] == 0 and summary["flow_evictions"] == 0, summary


FLOOD = 20_000


@pytest.mark.skipif(ctharness.VMTEST, reason="20 000 connects under TCG emulation: the host "
                    "runs it")
@pytest.mark.skipif(not kernel_allows_sk_storage(), reason="no socket storage for tracing "
                    "programs before 5.11: the LRU table's flood is test_faults.py's")
def test_flood_in_sockets_evicts_nothing(netns):
    """20 000 half-open connects (SYNs dropped by nft), 8192 at a time,
    with --max-flows 4096: the LRU table would evict (test_faults.py); in
    socket storage nothing is evicted and nothing is refused a record:
    every attempt gets its verdict, with its owner, or is counted lost
    (in the ring, or as an event the kernel skipped)."""
    port = ctharness.free_port()
    netns.sysctl("net.ipv4.tcp_syn_retries", 1)
    netns.exec(["sysctl", "-q", "-w", "net.ipv4.ip_local_port_range=1024 65535"])
    netns.drop_syns(port)
    ct = Conntrace("--max-flows", 4096, "--port", port, "--netns", netns.inode).start()
    try:
        assert ct.start_record["probes"]["flow_state"]["hook"] == "sk_storage", \
            ct.start_record["probes"]
        res = ctharness.synflood(netns, "127.0.0.1", port, count=FLOOD, concurrency=8192,
                                 sources=4, name="ctc-skflood")
        assert res["inprogress"] + res["connected"] == FLOOD and res["failed"] == 0, res
        assert res["connected"] == 0, f"SYNs were not dropped: {res}"
        wait_settled(ct, lambda r: r["dport"] == port, FLOOD)
        summary = ct.stop()
    finally:
        ct.kill()
    ours = ct.verdicts(lambda r: r["dport"] == port)
    # an end the kernel skipped (a program already running on that CPU) is
    # the only way an attempt may go without a verdict or a lost record, and
    # the summary counts those events (machine-wide: a bound, not an equality)
    got = len(ours) + summary["lost_records"]
    assert FLOOD - summary["missed_events"] <= got <= FLOOD, (len(ours), summary)
    assert (summary["flow_evictions"], summary["flow_table_full"],
            summary["flows_untracked"]) == (0, 0, 0), summary
    assert summary["flows"] == FLOOD, summary
    bad = [r for r in ours if r["evicted"] or r["untracked"] or r["comm"] != "ctc-skflood"
           or r["verdict"] not in ("abandoned", "timeout")]
    assert not bad, bad[:3]


# One socket, three connects to a closed port, kept open after: Linux lets a
# socket whose connect() was refused connect() again.
KEEP = """
import errno, json, os, socket, sys
s = socket.socket()
got = [errno.errorcode.get(e, e) for e in
       (s.connect_ex(("127.0.0.1", int(sys.argv[1]))) for _ in range(3))]
print(json.dumps({"pid": os.getpid(), "sport": s.getsockname()[1], "got": got}), flush=True)
sys.stdin.read()     # open until the test has stopped conntrace
"""


@pytest.mark.parametrize("mode", sorted(MODES))
def test_refused_socket_kept_open_and_reused(netns, mode):
    """A refused attempt whose socket stays open: in socket storage its state
    stays in the socket, marked ended, until the socket is freed. It is no
    pending attempt when conntrace stops, and each connect() again on that
    socket is an attempt of its own: three refused verdicts, nothing more."""
    port = ctharness.free_port()
    ct = Conntrace("--port", port, "--netns", netns.inode, *MODES[mode]).start()
    proc = None
    try:
        proc = netns.popen(["/usr/bin/python3", "-c", KEEP, port], stdin=subprocess.PIPE)
        res = json.loads(readline_timeout(proc, 30, "the three connects"))
        assert res["got"] == ["ECONNREFUSED"] * 3, res
        ct.wait_for(lambda r: r.get("type") == "verdict" and len(ct.verdicts()) >= 3,
                    what="three refused verdicts")
        summary = ct.stop()     # the socket is still open
    finally:
        ct.kill()
        if proc:
            proc.communicate(b"", timeout=10)
    mine = ct.verdicts()
    # connect() again binds another source port
    assert [(r["verdict"], r["cause"], r["pid"]) for r in mine] == \
        [("refused", "no_listener", res["pid"])] * 3, json.dumps(mine, indent=1)
    assert mine[-1]["sport"] == res["sport"] and len({r["sport"] for r in mine}) == 3, mine
    assert summary["verdicts"]["refused"] == 3 and summary["verdicts"]["pending"] == 0, summary
    assert summary["flows"] == 3, summary
