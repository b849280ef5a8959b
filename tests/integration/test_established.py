# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Established connections that die: a verdict of phase "established" for
each (timeout with the timer that gave up, or reset with its direction),
its cause, and the kernel's evidence; none for a healthy connection.

Every scenario runs in a fresh namespace with net.ipv4.tcp_retries2 lowered
(the kernel gives up after about 7 s instead of 15 minutes), on 127.0.0.1
or ::1, under its own `conntrace --netns NS --phase established`. A scenario
is a Python script run inside the namespace: it makes the connection, cuts
or resets it with nft, and prints what the kernel told the application and
the namespace's own counters (/proc/net/snmp, netstat) around it. Every
JSON line conntrace writes is checked against docs/schema.json."""

import json
import os
import re
import subprocess

import pytest

import ctharness
import ctschema
from ctharness import Conntrace, established, readline_timeout

RETRIES2 = 3            # ~7 s to ETIMEDOUT on loopback (RTO from 200 ms)
SCRIPT_TIMEOUT = 40

# Shared by the scenario scripts: nft inside the namespace, the kernel's
# counters, a connected pair of sockets on loopback.
COMMON = r"""
import json, os, socket, subprocess, sys, time
port, family = int(sys.argv[1]), sys.argv[2]
AF = socket.AF_INET6 if family == "ipv6" else socket.AF_INET
LO = "::1" if family == "ipv6" else "127.0.0.1"

def nft(rule, table, hook):
    subprocess.run(["nft", "-f", "-"], check=True, text=True, input=(
        f"table inet {table} {{\n chain c {{\n  type filter hook {hook} priority 0;"
        f" policy accept;\n  {rule}\n }}\n}}\n"))

def counters():
    out = {}
    for path in ("/proc/net/snmp", "/proc/net/netstat"):
        lines = open(path).read().splitlines()
        for names, values in zip(lines[::2], lines[1::2]):
            sect = names.split(":")[0]
            for n, v in zip(names.split()[1:], values.split()[1:]):
                out[sect + n] = int(v)
    return out

def pair():
    ls = socket.socket(AF, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((LO, port))
    ls.listen(4)
    c = socket.create_connection((LO, port))
    s, _ = ls.accept()
    return c, s

def wait_err(sock, limit=30):
    t = time.monotonic()
    sock.settimeout(limit)
    try:
        data = sock.recv(100)
        return "eof" if not data else "data", time.monotonic() - t
    except OSError as e:
        return os.strerror(e.errno) if e.errno else str(e), time.monotonic() - t

def report(**kw):
    print(json.dumps(kw), flush=True)
"""

# The path is cut mid-stream: the data the client sends after it reaches the
# server (dropped on input there, so the client's first send does leave), then
# every retransmit is dropped on output by this host's netfilter.
CUT = COMMON + r"""
c, s = pair()
c.send(b"x" * 1000); s.recv(1000)
before = counters()
nft(f"tcp dport {port} drop", "ctcut_in", "input")
c.send(b"y" * 1000)
time.sleep(0.05)
nft(f"tcp dport {port} drop", "ctcut_out", "output")
err, took = wait_err(c)
after = counters()
report(sport=c.getsockname()[1], err=err, took=took,
       retrans_segs=after["TcpRetransSegs"] - before["TcpRetransSegs"],
       timeouts=after["TcpExtTCPTimeouts"] - before["TcpExtTCPTimeouts"])
"""

# An nft `reject with tcp reset` answers the client's data after an idle period.
REJECT = COMMON + r"""
c, s = pair()
c.send(b"x" * 100); s.recv(100)
nft(f"tcp dport {port} tcp flags & (syn | rst) == 0 reject with tcp reset", "ctrej", "output")
time.sleep(0.5)
c.send(b"y" * 100)
err, took = wait_err(c)
report(sport=c.getsockname()[1], err=err)
"""

# The server closes with data it never read: its kernel resets the connection.
UNREAD = COMMON + r"""
c, s = pair()
c.send(b"x" * 100)
time.sleep(0.2)
server_port = s.getsockname()[1]
s.close()
err, took = wait_err(c)
report(sport=c.getsockname()[1], err=err, pid=os.getpid())
"""

# Keepalive with short timers on an idle connection whose peer's answers are
# dropped (on the peer's output): the client's keepalive gives up.
KEEPALIVE = COMMON + r"""
c, s = pair()
c.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
c.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 1)
c.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 1)
c.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 2)
nft(f"tcp sport {port} drop", "ctka", "output")
err, took = wait_err(c)
report(sport=c.getsockname()[1], err=err, took=took)
"""

# TCP_USER_TIMEOUT set, the path cut as in CUT: the user timeout decides.
USER_TIMEOUT = COMMON + r"""
c, s = pair()
c.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, 2000)
c.send(b"x" * 1000); s.recv(1000)
nft(f"tcp dport {port} drop", "ctut_in", "input")
c.send(b"y" * 1000)
time.sleep(0.05)
nft(f"tcp dport {port} drop", "ctut_out", "output")
err, took = wait_err(c)
report(sport=c.getsockname()[1], err=err, took=took)
"""

# The server never reads and its window shuts; then its answers to the
# client's window probes are dropped (on the server's output).
ZERO_WINDOW = COMMON + r"""
ls = socket.socket(AF, socket.SOCK_STREAM)
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
ls.bind((LO, port)); ls.listen(1)
c = socket.create_connection((LO, port)); s, _ = ls.accept()
c.setblocking(False)
sent = 0
deadline = time.monotonic() + 10
while time.monotonic() < deadline:
    try:
        sent += c.send(b"w" * 65536)
    except BlockingIOError:
        time.sleep(0.2)     # the window is shut once nothing more goes for a while
        try:
            sent += c.send(b"w" * 65536)
        except BlockingIOError:
            break
nft(f"tcp sport {port} drop", "ctzw", "output")
c.setblocking(True)
err, took = wait_err(c)
report(sport=c.getsockname()[1], err=err, took=took, sent=sent)
"""

# A long healthy transfer, both ends closing in order.
HEALTHY = COMMON + r"""
import threading
c, s = pair()
sport = c.getsockname()[1]
total = 64 << 20
def sink():
    got = 0
    while got < total:
        got += len(s.recv(1 << 16))
    s.close()
t = threading.Thread(target=sink); t.start()
buf = b"z" * (1 << 16)
for _ in range(total // len(buf)):
    c.sendall(buf)
t.join()
c.close()
report(sport=sport, sent=total)
"""


def run_script(ns, script, port, family="ipv4"):
    proc = ns.popen(["/usr/bin/python3", "-c", script, port, family])
    line = readline_timeout(proc, SCRIPT_TIMEOUT, "the scenario script")
    assert proc.wait(10) == 0, proc.stderr.read()
    return proc, json.loads(line)


@pytest.fixture
def ns(netns):
    netns.sysctl("net.ipv4.tcp_retries2", RETRIES2)
    yield netns


def start_conntrace(ns, *extra):
    return Conntrace("--netns", ns.inode, "--phase", "established", *extra).start()


def stop_and_check(ct):
    """Stop conntrace, validate every line against the schema; the summary."""
    summary = ct.stop()
    for rec in ct.records:
        problems = ctschema.check_record(rec)
        assert not problems, (problems, rec)
    return summary


def kernel_at_least(major, minor):
    got = tuple(int(x) for x in re.match(r"(\d+)\.(\d+)", os.uname().release).groups())
    return got >= (major, minor)


def rst_reason_kernel():
    """Whether this kernel names the reason of an RST it sends (6.10+)."""
    btf = subprocess.run(["bpftool", "btf", "dump", "file", "/sys/kernel/btf/vmlinux"],
                         capture_output=True, text=True, check=True).stdout
    return re.search(r"ENUM 'sk_rst_reason'", btf) is not None


@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
def test_cut_path_times_out_on_netfilter_drops(ns, family):
    port = ctharness.free_port()
    ct = start_conntrace(ns)
    try:
        _, res = run_script(ns, CUT, port, family)
        assert res["err"] == "Connection timed out", res
        rec = ct.wait_for(established(ns, res["sport"], port),
                          what="the cut connection's established verdict")
        summary = stop_and_check(ct)
    finally:
        ct.kill()
    est = rec["established"]
    assert (rec["verdict"], rec["cause"], rec["timer"]) == \
        ("timeout", "netfilter_drop", "retransmit"), rec
    assert rec["errno"] == "ETIMEDOUT" and est["state"] == "established", rec
    # the kernel's own count of retransmits (and of RTO firings) in the namespace
    assert res["retrans_segs"] > 0, res
    assert est["retransmits"]["count"] == res["retrans_segs"] == res["timeouts"], (est, res)
    # every retransmit after the output rule (a tail loss probe may come before it)
    assert 0 < est["netfilter_drops"] <= est["retransmits"]["count"], est
    assert est["unacked_bytes"] == 1000, est
    first, last = est["retransmits"]["first_us"], est["retransmits"]["last_us"]
    # 6.18 traces a retransmit netfilter drops on output, 6.1 only one that left:
    # there the count is the socket's own and the times are unknown
    if kernel_at_least(6, 18):
        assert first is not None and last is not None, est
    if first is not None:
        assert first > last > 0, est
        assert first / 1e6 <= res["took"] + 0.5, (est, res)
    assert summary["established_verdicts"] == {"timeout": 1, "reset": 0}, summary


def test_nft_reset_mid_stream_is_a_reset_received(ns):
    port = ctharness.free_port()
    ct = start_conntrace(ns)
    try:
        _, res = run_script(ns, REJECT, port)
        assert res["err"] == "Connection reset by peer", res
        rec = ct.wait_for(established(ns, res["sport"], port),
                          what="the rejected connection's established verdict")
        stop_and_check(ct)
    finally:
        ct.kill()
    assert (rec["verdict"], rec["cause"], rec["reset"]) == \
        ("reset", "rst_received", "received"), rec
    assert rec["errno"] == "ECONNRESET" and not rec["inferred"], rec
    # idle for 0.5 s before the data the RST answered (jiffies: a few ms of slack)
    assert 400000 <= rec["established"]["idle_us"] <= 5000000, rec


def test_peer_closing_with_unread_data_resets_both_ends(ns):
    port = ctharness.free_port()
    ct = start_conntrace(ns)
    try:
        proc, res = run_script(ns, UNREAD, port)
        assert res["err"] == "Connection reset by peer", res
        recv_side = ct.wait_for(established(ns, res["sport"], port),
                                what="the client's reset verdict")
        send_side = ct.wait_for(established(ns, port, res["sport"]),
                                what="the server's reset verdict")
        stop_and_check(ct)
    finally:
        ct.kill()
    assert (recv_side["verdict"], recv_side["cause"], recv_side["reset"]) == \
        ("reset", "rst_received", "received"), recv_side
    assert (send_side["verdict"], send_side["cause"], send_side["reset"]) == \
        ("reset", "rst_sent", "sent"), send_side
    if rst_reason_kernel():
        assert send_side["reset_reason"] == "TCP_ABORT_ON_CLOSE", send_side
        # its own close() sent it: the owner is known
        assert send_side["pid"] == res["pid"] and send_side["comm"] == "python3", send_side
    else:
        assert send_side["reset_reason"] is None, send_side



def cgroup2_mount():
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, _, post = line.partition(" - ")
            if post.split()[0] == "cgroup2":
                return pre.split()[4]
    return None


def test_owner_filters_judge_the_owner_that_reset(ns):
    """--comm and --cgroup are judged in the kernel, in the task whose close()
    sent the RST; a verdict whose owner is not known (the RST received, in
    softirq) is hidden, as is one whose owner the filter excludes (--cgroup: an
    empty cgroup made here; user space could not tell it from the socket's)."""
    port = ctharness.free_port()
    mount = cgroup2_mount()
    empty = os.path.join(mount, f"ct-estab-{os.getpid()}") if mount else None
    if empty:
        os.mkdir(empty)
    ct = other = None
    try:
        ct = start_conntrace(ns, "--comm", "python3")
        other = start_conntrace(ns, *(("--cgroup", empty) if empty else ("--comm", "ct-nobody")))
        _, res = run_script(ns, UNREAD, port)
        assert res["err"] == "Connection reset by peer", res
        owner_known = rst_reason_kernel()
        if owner_known:
            ct.wait_for(established(ns, port, res["sport"]), what="the server's reset verdict")
        # the script has exited, both sockets are closed: stopping drains the rest
        summary = stop_and_check(ct)
        other_summary = stop_and_check(other)
    finally:
        for c in (ct, other):
            if c:
                c.kill()
        if empty:
            os.rmdir(empty)
    got = [(r["sport"], r["cause"], r["pid"]) for r in ct.verdicts(established(ns), phase=None)]
    assert got == ([(port, "rst_sent", res["pid"])] if owner_known else []), got
    assert summary["established_verdicts"]["reset"] == len(got), summary
    assert other.verdicts(phase=None) == [], other.verdicts(phase=None)
    assert other_summary["established_verdicts"] == {"timeout": 0, "reset": 0}, other_summary

def test_keepalive_gives_up_when_the_peer_does_not_answer(ns):
    port = ctharness.free_port()
    ct = start_conntrace(ns)
    try:
        _, res = run_script(ns, KEEPALIVE, port)
        assert res["err"] == "Connection timed out", res
        rec = ct.wait_for(established(ns, res["sport"], port),
                          what="the keepalive timeout's verdict")
        stop_and_check(ct)
    finally:
        ct.kill()
    assert (rec["verdict"], rec["timer"]) == ("timeout", "keepalive"), rec
    # the peer's answers were dropped on its side: this socket saw no drop of its own
    assert rec["cause"] == "no_ack", rec
    est = rec["established"]
    assert est["keepalive"] and est["probes_out"] == 2 and est["unacked_bytes"] == 0, est


def test_user_timeout_decides_when_set(ns):
    port = ctharness.free_port()
    ct = start_conntrace(ns)
    try:
        _, res = run_script(ns, USER_TIMEOUT, port)
        assert res["err"] == "Connection timed out", res
        rec = ct.wait_for(established(ns, res["sport"], port),
                          what="the user timeout's verdict")
        stop_and_check(ct)
    finally:
        ct.kill()
    assert (rec["verdict"], rec["timer"], rec["cause"]) == \
        ("timeout", "user_timeout", "netfilter_drop"), rec
    assert rec["established"]["user_timeout_ms"] == 2000, rec
    # the kernel gave up about 2 s after the last acknowledgement, not after tcp_retries2
    assert 1.5 <= res["took"] <= 4.5, res


def test_window_probes_unanswered_time_out(ns):
    port = ctharness.free_port()
    ct = start_conntrace(ns)
    try:
        _, res = run_script(ns, ZERO_WINDOW, port)
        assert res["err"] == "Connection timed out", res
        rec = ct.wait_for(established(ns, res["sport"], port),
                          what="the zero-window timeout's verdict")
        stop_and_check(ct)
    finally:
        ct.kill()
    assert (rec["verdict"], rec["timer"], rec["cause"]) == \
        ("timeout", "zero_window_probe", "no_ack"), rec
    est = rec["established"]
    assert est["probes_out"] > 0 and est["unacked_bytes"] == 0, est


def test_healthy_transfer_gives_no_established_verdict(ns):
    port = ctharness.free_port()
    ct = Conntrace("--netns", ns.inode, "-a").start()
    try:
        _, res = run_script(ns, HEALTHY, port)
        # its connect verdict marks the point where every record about it was sent
        ct.wait_for(ctharness.flow(ns, port), what="the healthy connection's ok verdict")
        # no settle time: the script has closed both ends, and a stop drains
        # the ring, so an established verdict would be printed by its end
        summary = stop_and_check(ct)
    finally:
        ct.kill()
    assert ct.verdicts(lambda r: r["netns"] == ns.inode, phase="established") == [], \
        ct.verdicts(phase="established")
    assert summary["established_verdicts"] == {"timeout": 0, "reset": 0}, summary
    assert summary["verdicts"]["ok"] == 1, summary


CURL_SERVER = r"""
import http.server, socketserver, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        # more than the send buffer holds: the handler blocks in its write and
        # the socket stays established (an orphan would go by tcp_orphan_retries)
        self.send_header("Content-Length", str(64 << 20))
        self.end_headers()
        for _ in range(64):
            self.wfile.write(b"a" * (1 << 20))
    def log_message(self, *a):
        pass
socketserver.TCPServer.allow_reuse_address = True
with socketserver.TCPServer(("127.0.0.1", int(sys.argv[1])), H) as srv:
    print("ready", flush=True)
    srv.serve_forever()
"""


def test_curl_is_reset_after_its_server_timed_out(ns):
    """curl (not ours) fetches from Python's http.server while the server's
    data is dropped on its way in: the server retransmits in vain and its
    kernel gives up; curl, idle, keeps the connection with keepalive probes
    (--keepalive-time 1) until the next one meets the dead socket's RST."""
    port = ctharness.free_port()
    ct = start_conntrace(ns)
    try:
        server = ns.popen(["/usr/bin/python3", "-c", CURL_SERVER, port])
        readline_timeout(server, 10, "the http server")
        # data from the server (longer than a pure ACK) is lost on input
        ns.nft(f"""
table inet ctcurl {{
    chain c {{
        type filter hook input priority 0; policy accept;
        tcp sport {port} ip length > 100 drop
    }}
}}
""")
        curl = ns.exec(["curl", "-sS", "-o", "/dev/null", "--keepalive-time", "1",
                        "--max-time", "30", f"http://127.0.0.1:{port}/"], check=False,
                       timeout=40)
        assert curl.returncode == 56 and "reset by peer" in curl.stderr, \
            (curl.returncode, curl.stderr)
        srv = ct.wait_for(established(ns, sport=port), what="the server's verdict")
        cli = ct.wait_for(established(ns, dport=port), what="curl's verdict")
        stop_and_check(ct)
    finally:
        ct.kill()
    assert (srv["verdict"], srv["timer"], srv["cause"]) == \
        ("timeout", "retransmit", "no_ack"), srv
    assert srv["established"]["retransmits"]["count"] > 0, srv
    assert srv["established"]["unacked_bytes"] > 0, srv
    assert (cli["verdict"], cli["cause"], cli["reset"]) == \
        ("reset", "rst_received", "received"), cli
    assert cli["established"]["keepalive"] and cli["established"]["idle_us"] is not None, cli
