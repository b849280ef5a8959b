# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Integration tests of `conntrace listen` on the real kernel (root).

Each test makes its own network namespace, runs listeners (build/tests/lqlisten)
and clients inside it, sends traffic only to 127.0.0.1 there, and removes the
namespace and every process it started (by pid) even when it fails.
"""
import json
import os
import select
import shutil
import signal
import subprocess
import time

import pytest

from ctharness import ROOT, conntrace_path, run

# The binary under test is the harness's: $CONNTRACE, else <repo>/conntrace.
CONNTRACE = conntrace_path()
LQLISTEN = str(ROOT / "build" / "tests" / "lqlisten")
PY = "/usr/bin/python3"

# Tools these tests run, and the Debian package that has each.
TOOLS = {"ip": "iproute2", "nft": "nftables", "sysctl": "procps", "cat": "coreutils"}


@pytest.fixture(scope="module", autouse=True)
def setup():
    """Everything the tests need, or a failure that says what is missing: a
    broken `conntrace listen` or a missing tool is never a skip. (Not being
    root skips every integration test, in conftest.py.)"""
    if os.geteuid() != 0:
        return
    missing = {t: pkg for t, pkg in TOOLS.items() if not shutil.which(t)}
    if missing:
        pytest.fail("setup: missing %s: apt-get install -y %s" %
                    (", ".join(missing), " ".join(sorted(set(missing.values())))))
    if not (os.path.isfile(CONNTRACE) and os.access(CONNTRACE, os.X_OK)):
        pytest.fail(f"conntrace binary {CONNTRACE!r} is missing or not executable: "
                    "build it (make) or set CONNTRACE=/path")
    run(["make", "-C", ROOT, "--no-print-directory", os.path.relpath(LQLISTEN, ROOT)],
        timeout=120)
    r = subprocess.run([CONNTRACE, "listen", "--help"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, f"`conntrace listen --help` failed (rc={r.returncode}): {r.stderr}"
    assert "accept" in r.stdout, f"`conntrace listen --help` is not listen's help:\n{r.stdout}"


# Clients: N non-blocking connects to 127.0.0.1:PORT, held open HOLD seconds.
CLIENTS = r"""
import socket, sys, time
port, n, hold = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
socks = []
for _ in range(n):
    s = socket.socket()
    s.setblocking(False)
    try:
        s.connect(("127.0.0.1", port))
    except BlockingIOError:
        pass
    socks.append(s)
time.sleep(hold)
"""


class Netns:
    """A throwaway network namespace and the processes started in it."""

    count = 0

    def __init__(self):
        Netns.count += 1
        self.name = "ct-lq-%d-%d" % (os.getpid(), Netns.count)
        self.procs = []
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        subprocess.run(["ip", "-n", self.name, "link", "set", "lo", "up"], check=True)
        self.ino = os.stat("/run/netns/" + self.name).st_ino

    def run(self, *argv, **kw):
        return subprocess.run(["ip", "netns", "exec", self.name, *argv], check=True,
                              capture_output=True, text=True, **kw)

    def spawn(self, *argv, **kw):
        p = subprocess.Popen(["ip", "netns", "exec", self.name, *argv], **kw)
        self.procs.append(p)
        return p

    def sysctl(self, key, value):
        self.run("sysctl", "-qw", "%s=%s" % (key, value))

    def listener(self, backlog, port=0, addr="127.0.0.1"):
        p = self.spawn(LQLISTEN, "-a", addr, "-b", str(backlog), "-p", str(port),
                       stdout=subprocess.PIPE, text=True)
        line = p.stdout.readline()
        assert line.strip().isdigit(), "lqlisten did not start"
        return p, int(line)

    def clients(self, port, n, hold):
        return self.spawn(PY, "-c", CLIENTS, str(port), str(n), str(hold))

    def tcpext(self):
        lines = self.run("cat", "/proc/net/netstat").stdout.splitlines()
        for hdr, val in zip(lines[0::2], lines[1::2]):
            if hdr.startswith("TcpExt:"):
                return dict(zip(hdr.split()[1:], map(int, val.split()[1:])))
        raise AssertionError("no TcpExt in /proc/net/netstat")

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        subprocess.run(["ip", "netns", "del", self.name], check=False)


@pytest.fixture
def ns():
    n = Netns()
    try:
        yield n
    finally:
        n.close()


def run_once(*args):
    """`conntrace listen --once -j`, parsed; fails on any non-JSON line."""
    r = subprocess.run([CONNTRACE, "listen", "--once", "-j", *args],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return [json.loads(line) for line in r.stdout.splitlines()]


def listeners_in(objs, ns, port):
    return [o for o in objs if o["type"] == "listener"
            and o["netns"] == ns.ino and o["lport"] == port]


def rules(listener):
    return {a["rule"] for a in listener["advice"]}


def test_full_queue_overflows_match_namespace_counter(ns):
    """listen(fd, 1), never accept(), 8 clients: the counter and the advice."""
    _, port = ns.listener(backlog=1)
    before = ns.tcpext()
    assert before["ListenOverflows"] == 0  # a fresh namespace
    # Hold the clients a few seconds so their SYNs retransmit into the full
    # queue; once they exit nothing more arrives and the counters stand still.
    ns.clients(port, 8, 3).wait(timeout=60)
    after = ns.tcpext()
    delta = after["ListenOverflows"] - before["ListenOverflows"]
    assert delta > 0, "the accept queue never overflowed"

    objs = run_once("-i", "1", "--port", str(port))
    assert ns.tcpext()["ListenOverflows"] == after["ListenOverflows"]
    [lst] = listeners_in(objs, ns, port)
    print("overflows reported %d, TcpExtListenOverflows delta %d, ListenDrops delta %d, "
          "method %s" % (lst["overflows"], delta,
                         after["ListenDrops"] - before["ListenDrops"], lst["method"]))
    assert lst["comm"] == "lqlisten"
    assert lst["accept_queue_max"] == 1
    assert lst["accept_queue"] > lst["accept_queue_max"] and lst["accept_queue_full"]
    if lst["method"] in ("sk_drops", "fentry"):
        # exact: each of this listener's sk_drops was an overflow (or fentry
        # counted each one)
        assert lst["overflows"] == delta
    else:
        assert lst["method"] == "attributed"
        assert 0 < lst["overflows"] <= delta
    assert "accept_slow" in rules(lst)
    assert any("accept()" in a["text"] for a in lst["advice"])
    [nsobj] = [o for o in objs if o["type"] == "netns" and o["netns"] == ns.ino]
    assert nsobj["listen_overflows"] == after["ListenOverflows"]
    assert nsobj["listener_overflows"] == lst["overflows"]


def complete_lines(path):
    """The JSON objects of the lines written so far (not a partial last one)."""
    text = path.read_text()
    return [json.loads(line) for line in text[:text.rfind("\n") + 1].splitlines()]


def watch(ns, tmp_path):
    """Start `conntrace listen -j` and wait for its start line."""
    out_path = tmp_path / "out.jsonl"
    out = open(out_path, "w")
    ct = subprocess.Popen([CONNTRACE, "listen", "-j", "-i", "0.5"], stdout=out,
                          stderr=subprocess.PIPE, text=True)
    out.close()
    ns.procs.append(ct)
    deadline = time.monotonic() + 60
    while not complete_lines(out_path) and time.monotonic() < deadline:
        time.sleep(0.1)
    start = complete_lines(out_path)[0]
    assert start["type"] == "listen_start"
    return ct, out_path, start


def stop_after_two_refreshes(ct, out_path, ns, since):
    """Our listener objects from refreshes that walked after `since`."""
    def ours():
        return [o for o in complete_lines(out_path)
                if o["type"] == "listener" and o["netns"] == ns.ino]
    deadline = time.monotonic() + 60
    while (len([o for o in ours() if o["time"] > since]) < 2
           and time.monotonic() < deadline):
        time.sleep(0.2)
    ct.send_signal(signal.SIGINT)
    ct.wait(timeout=30)
    assert ct.returncode == 0, ct.stderr.read()
    return ours()


def test_live_overflows_match_namespace_counter(ns, tmp_path):
    """The same, with conntrace running before the listener and the clients:
    the overflows are counted refresh by refresh (by fentry where it loads)."""
    ct, out_path, start = watch(ns, tmp_path)
    _, port = ns.listener(backlog=1)
    ns.clients(port, 8, 3).wait(timeout=60)
    after = ns.tcpext()
    seen = stop_after_two_refreshes(ct, out_path, ns, time.time())
    assert ns.tcpext()["ListenOverflows"] == after["ListenOverflows"]
    lst = seen[-1]
    print("live: overflows reported %d, TcpExtListenOverflows %d, ListenDrops %d, method %s"
          " (start: %s)" % (lst["overflows"], after["ListenOverflows"],
                            after["ListenDrops"], lst["method"], start["method"]))
    assert after["ListenOverflows"] > 0
    assert lst["backlog_requested"] == 1 and lst["backlog_source"] == "listen"
    if lst["method"] in ("sk_drops", "fentry"):
        assert lst["overflows"] == after["ListenOverflows"]
    else:
        assert lst["method"] == "attributed"
        assert 0 < lst["overflows"] <= after["ListenOverflows"]
    if start["method"] == "fentry":
        assert lst["method"] == "fentry"
    assert max(o["accept_queue_peak"] for o in seen) >= 2


# Drop the handshake's pure ACKs to PORT, so 6 clients stay half-open:
# backlog 1 keeps 2 of them as SYN-queue requests, the other 4 get SYN
# cookies. Then let everything through and send one byte from each, in an
# order that fills the accept queue with two cookie clients first, so the
# two request clients overflow in tcp_check_req() and the last two cookie
# clients in cookie_v4_check(): both ACK-time overflow paths.
ACK_CLIENTS = r"""
import socket, struct, subprocess, sys, time
port = int(sys.argv[1])
subprocess.run(["nft", "-f", "-"], check=True, text=True, input=
    "table inet lqt {\n chain in {\n type filter hook input priority 0;\n"
    " tcp dport %d tcp flags == ack drop\n }\n}\n" % port)
socks = []
for _ in range(6):
    s = socket.socket()
    s.setblocking(False)
    try:
        s.connect(("127.0.0.1", port))
    except BlockingIOError:
        pass
    socks.append(s)
time.sleep(0.5)
subprocess.run(["nft", "delete", "table", "inet", "lqt"], check=True)
for i in (2, 3, 0, 1, 4, 5):
    socks[i].send(b"x")
    time.sleep(0.05)
time.sleep(3)
# Reset, not FIN: an orphaned FIN would go on retransmitting into the full
# queue after we exit, and the counters would keep moving.
for s in socks:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
"""


def test_ack_time_overflows(ns, tmp_path):
    """Overflows of the handshake's last segment, with and without SYN cookies.
    On the request path tcp_v4_rcv() adds the dropped segment to sk_drops a
    second time, so without fentry the count is attributed, not exact."""
    ct, out_path, start = watch(ns, tmp_path)
    _, port = ns.listener(backlog=1)
    assert ns.spawn(PY, "-c", ACK_CLIENTS, str(port)).wait(timeout=60) == 0
    after = ns.tcpext()
    seen = stop_after_two_refreshes(ct, out_path, ns, time.time())
    assert ns.tcpext()["ListenOverflows"] == after["ListenOverflows"]
    lst = seen[-1]
    print("ack-time: overflows reported %d (sk_drops %d), TcpExtListenOverflows %d, "
          "ListenDrops %d, SyncookiesSent %d, SyncookiesRecv %d, method %s (start: %s)" %
          (lst["overflows"], lst["drops"], after["ListenOverflows"], after["ListenDrops"],
           after["SyncookiesSent"], after["SyncookiesRecv"], lst["method"],
           start["method"]))
    assert after["ListenOverflows"] > 0
    if lst["method"] in ("sk_drops", "fentry"):
        assert lst["overflows"] == after["ListenOverflows"]
    else:
        assert lst["method"] == "attributed"
        assert 0 < lst["overflows"] <= after["ListenOverflows"]
    if start["method"] == "fentry":
        assert lst["method"] == "fentry"
    if after["SyncookiesSent"]:
        # the listener's cookie stamp moved in one of the refreshes
        assert any("syn_cookies" in rules(o) for o in seen)


def test_somaxconn_caps_the_backlog(ns):
    """somaxconn 4 in the namespace, the application asks for 128."""
    ns.sysctl("net.core.somaxconn", 4)
    port = 9471  # fixed, so conntrace can filter on it before it exists
    ct = subprocess.Popen([CONNTRACE, "listen", "-j", "-i", "0.5", "--port", str(port)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ns.procs.append(ct)
    found = None
    try:
        # the start line comes after every hook is attached
        first = json.loads(ct.stdout.readline())
        assert first["type"] == "listen_start"
        ns.listener(backlog=128, port=port)
        deadline = time.monotonic() + 60
        while found is None and time.monotonic() < deadline:
            ready, _, _ = select.select([ct.stdout], [], [], 1)
            if not ready:
                continue
            line = ct.stdout.readline()
            assert line, "conntrace exited: " + ct.stderr.read()
            obj = json.loads(line)
            if obj["type"] == "listener" and obj["netns"] == ns.ino:
                found = obj
    finally:
        ct.send_signal(signal.SIGINT)
        ct.wait(timeout=30)
    assert found, "the listener never showed up"
    assert found["accept_queue_max"] == 4
    assert found["somaxconn"] == 4
    assert found["backlog_requested"] == 128
    assert found["backlog_source"] == "listen"
    assert "somaxconn" in rules(found)
    assert any("net.core.somaxconn" in a["text"] for a in found["advice"])
    assert ct.returncode == 0


def test_idle_listener_has_no_overflow_and_no_advice(ns):
    _, port = ns.listener(backlog=16)
    _, port6 = ns.listener(backlog=16, addr="::1")
    objs = run_once("-i", "0.5")
    for p, addr, family in ((port, "127.0.0.1", "ipv4"), (port6, "::1", "ipv6")):
        [lst] = listeners_in(objs, ns, p)
        assert (lst["laddr"], lst["family"]) == (addr, family)
        assert lst["accept_queue_max"] == 16
        assert lst["backlog_requested"] == 16  # inferred: 16 < somaxconn
        assert lst["backlog_source"] == "inferred"
        assert lst["accept_queue"] == 0
        assert lst["overflows"] == 0 and lst["overflows_interval"] == 0
        assert lst["advice"] == []


def test_survives_listeners_coming_and_going(ns, tmp_path):
    """Listeners appear and vanish between and during refreshes."""
    out_path = tmp_path / "out.jsonl"
    ports = set()
    steady, steady_port = ns.listener(backlog=8)  # lives through the whole run
    # stdout to a file: a pipe nobody drains would block conntrace
    with open(out_path, "w") as out:
        ct = subprocess.Popen([CONNTRACE, "listen", "-j", "-i", "0.2", "--count", "15"],
                              stdout=out, stderr=subprocess.PIPE, text=True)
        ns.procs.append(ct)
        deadline = time.monotonic() + 120
        while ct.poll() is None and time.monotonic() < deadline:
            p, port = ns.listener(backlog=4)
            ports.add(port)
            ns.clients(port, 2, 0.1)
            time.sleep(0.15)
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=10)
        _, err = ct.communicate(timeout=60)
    assert ct.returncode == 0, err
    objs = [json.loads(line) for line in out_path.read_text().splitlines()]
    assert objs[0]["type"] == "listen_start"
    seen = [o for o in objs if o["type"] == "listener" and o["netns"] == ns.ino]
    print("%d short-lived listeners, %d sightings of them" %
          (len(ports), sum(o["lport"] in ports for o in seen)))
    assert all(o["lport"] in ports | {steady_port} for o in seen)
    # the steady one is in every refresh (15, each with one netns line of ours)
    assert sum(o["lport"] == steady_port for o in seen) == 15
    steady.send_signal(signal.SIGTERM)
    steady.wait(timeout=10)
    # every listener of ours is gone: a last snapshot shows none of them
    assert not [o for o in run_once("-i", "0.2")
                if o["type"] == "listener" and o["netns"] == ns.ino]


def test_text_view_and_bad_option(ns):
    owner, port = ns.listener(backlog=1)
    r = subprocess.run([CONNTRACE, "listen", "--once", "-i", "0.3", "--port", str(port)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    hdr = next(i for i, l in enumerate(lines) if l.startswith("NETNS"))
    assert "sk_drops" in lines[hdr - 1] or "fentry" in lines[hdr - 1]  # the method
    row = lines[hdr + 1]
    assert ("127.0.0.1:%d" % port) in row and "lqlisten" in row
    # the MAX column ends where its header does
    end = lines[hdr].index(" MAX") + 4
    assert row[end - 1] == "1" and row[end] == " "

    # -p (--pid, as in `conntrace`) keeps the owner's listeners only (ip netns
    # exec execs lqlisten)
    r = subprocess.run([CONNTRACE, "listen", "--once", "-j", "-i", "0.3", "-p",
                        str(owner.pid)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    objs = [json.loads(line) for line in r.stdout.splitlines()]
    listed = [o for o in objs if o["type"] == "listener"]
    assert listed and all(o["lport"] == port and o["comm"] == "lqlisten" for o in listed)

    r = subprocess.run([CONNTRACE, "listen", "--interval", "zero"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1 and "--interval" in r.stderr
    r = subprocess.run([CONNTRACE, "listen", "--no-such-option"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1 and "--no-such-option" in r.stderr
