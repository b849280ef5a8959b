# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""conntrace check HOST:PORT, run inside a test namespace (`ip netns exec`):
the verdict of its own attempt, what to do about it, the exit status, the
JSON Lines against docs/schema.json, and the nftables trace table it makes
(inet conntrace_check_PID) gone afterwards, also when interrupted.

Name resolution happens only inside the namespace, which has no route out:
a hosts file and a resolv.conf of the test's own, bind-mounted over /etc in a
private mount namespace around `ip netns exec` (nothing is written under /etc,
which is read-only in the qemu guest), give a hosts entry and a resolver on the
namespace's own loopback where nothing listens, so no DNS query ever leaves."""

import json
import os
import re
import signal
import subprocess
import time

import pytest

from ctharness import UNREACH_ADDR, NetNS, conntrace_path, free_port, run
from ctschema import check_line
from fakepeer import FakePeer, peer_addr

CHECK_TIMEOUT = 60      # seconds a check run may take, at most


@pytest.fixture
def ns(tmp_path):
    """A namespace with its own hosts file and a resolver that answers nothing."""
    with NetNS("ctchk") as n:
        n.etc = tmp_path
        (tmp_path / "hosts").write_text("127.0.0.1 svc.test\n::1 svc6.test\n")
        (tmp_path / "resolv.conf").write_text("nameserver 127.0.0.1\n"
                                              "options timeout:1 attempts:1\n")
        yield n
        assert not our_tables(n), f"nft tables left behind: {our_tables(n)}"


def in_ns(ns, *argv):
    """argv run in ns with the test's hosts and resolv.conf over /etc (a private
    mount namespace; every step execs, so the pid is the command's)."""
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c",
            'mount --bind "$1" /etc/hosts && mount --bind "$2" /etc/resolv.conf && '
            'shift 2 && exec "$@"', "sh", str(ns.etc / "hosts"), str(ns.etc / "resolv.conf"),
            "ip", "netns", "exec", ns.name, *argv]


def our_tables(ns):
    out = ns.exec(["nft", "list", "tables"]).stdout
    return re.findall(r"table \S+ (conntrace_check_\d+)", out)


def check(ns, *args, timeout=CHECK_TIMEOUT):
    path = conntrace_path()
    assert os.access(path, os.X_OK), f"conntrace binary {path!r} missing"
    return run(in_ns(ns, path, "check", *args), check=False, timeout=timeout)


def records(p):
    """The JSON Lines of a -j run, each validated against docs/schema.json."""
    lines = p.stdout.splitlines()
    assert lines, f"no output; stderr {p.stderr!r}"
    for line in lines:
        problems = check_line(line)
        assert not problems, (problems, line)
    recs = [json.loads(line) for line in lines]
    assert recs[-1]["type"] == "check", recs[-1]
    return recs


def verdicts(recs):
    return [r for r in recs if r["type"] == "verdict"]


def nft_handle(ns, table, chain, needle):
    """The handle of the rule of table/chain whose text has needle."""
    out = ns.exec(["nft", "-a", "list", "chain", "inet", table, chain]).stdout
    for line in out.splitlines():
        if needle in line:
            return int(re.search(r"# handle (\d+)$", line).group(1))
    raise AssertionError(f"no rule with {needle!r}:\n{out}")


def add_filter(ns, port, stmt, comment):
    ns.nft(f"""
table inet ctfw {{
    chain input {{
        type filter hook input priority 0; policy accept;
        tcp dport {port} {stmt} comment "{comment}"
    }}
}}
""")
    return nft_handle(ns, "ctfw", "input", comment)


def test_listening_port_connects(ns):
    port = free_port()
    ns.listen(port)
    p = check(ns, "-j", f"127.0.0.1:{port}")
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    recs = records(p)
    v = verdicts(recs)
    assert len(v) == 1 and v[0]["verdict"] == "ok", v
    assert v[0]["dport"] == port and v[0]["pid"] == recs[0]["pid"], v
    c = recs[-1]
    assert (c["result"], c["verdict"], c["cause"], c["exit_status"]) == \
        ("connected", "ok", "established", 0), c
    assert c["addresses"] == ["127.0.0.1"] and c["attempts"] == c["connected"] == 1, c


def test_closed_port_no_listener(ns):
    port = free_port()
    p = check(ns, f"127.0.0.1:{port}")
    assert p.returncode == 3, (p.returncode, p.stdout, p.stderr)
    assert re.search(rf"127\.0\.0\.1:{port}\s+out\s+REFUSED\s+1\s+\S+\s+no_listener", p.stdout), p.stdout
    assert f"nothing listens on port {port}" in p.stdout, p.stdout
    assert "NOT CONNECTED (0 of 1 attempts connected)" in p.stdout, p.stdout


def test_no_listener_names_the_listener_nearby(ns):
    """Nothing on 127.0.0.1:PORT, but the port listens on ::1 here and on
    127.0.0.1 in another namespace: both are named."""
    port = free_port()
    ns.listen(port, v6=True)
    with NetNS("ctchk2") as other:
        other.listen(port)
        p = check(ns, "-j", f"127.0.0.1:{port}")
    assert p.returncode == 3, (p.returncode, p.stdout, p.stderr)
    c = records(p)[-1]
    assert (c["verdict"], c["cause"]) == ("refused", "no_listener"), c
    advice = "\n".join(c["advice"])
    assert f"[::1]:{port} in this netns, process ctlisten" in advice, advice
    assert f"127.0.0.1:{port} in netns {other.name}" in advice, advice


def test_nft_drop_names_the_rule(ns):
    port = free_port()
    handle = add_filter(ns, port, "drop", "ct-check drop test")
    p = check(ns, "--timeout", "2", f"127.0.0.1:{port}")
    assert p.returncode == 3, (p.returncode, p.stdout, p.stderr)
    assert re.search(rf":{port}\s+out\s+TIMEOUT\s+\d+\s+\S+\s+netfilter_drop", p.stdout), p.stdout
    want = (f"nftables rule that dropped it: family inet table ctfw chain input handle {handle}: "
            f'tcp dport {port} drop comment "ct-check drop test"')
    assert want in p.stdout, p.stdout
    assert "found by nft trace of this probe's own packets" in p.stdout, p.stdout


@pytest.mark.parametrize("stmt,verdict,cause", [
    ("reject", "refused", "icmp_unreachable"),
    ("reject with tcp reset", "refused", "rst_received"),
], ids=["icmp", "tcp-reset"])
def test_nft_reject_names_the_rule(ns, stmt, verdict, cause):
    port = free_port()
    handle = add_filter(ns, port, stmt, f"ct-check {stmt}")
    p = check(ns, "-j", "--timeout", "5", f"127.0.0.1:{port}")
    assert p.returncode == 3, (p.returncode, p.stdout, p.stderr)
    c = records(p)[-1]
    assert (c["verdict"], c["cause"]) == (verdict, cause), c
    assert c["nft_rule"] == {
        "family": "inet", "table": "ctfw", "chain": "input", "handle": handle,
        "rule": f'tcp dport {port} {stmt} comment "ct-check {stmt}"', "verdict": "reject",
        "found_by": "nft trace of this probe's own packets"}, c["nft_rule"]


def test_concurrent_checks_each_name_their_own_rule(ns):
    """Two checks in one namespace: each sees the trace events of both, and
    keeps only those of the packets its own table marked."""
    ports = [free_port(), free_port()]
    ns.nft(f"""
table inet ctfw {{
    chain input {{
        type filter hook input priority 0; policy accept;
        tcp dport {ports[0]} drop comment "first"
        tcp dport {ports[1]} drop comment "second"
    }}
}}
""")
    handles = [nft_handle(ns, "ctfw", "input", c) for c in ('"first"', '"second"')]
    procs = [subprocess.Popen(in_ns(ns, conntrace_path(), "check", "-j",
                                    "--timeout", "2", f"127.0.0.1:{port}"),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for port in ports]
    outs = [p.communicate(timeout=CHECK_TIMEOUT) for p in procs]
    for p, (out, err), port, handle in zip(procs, outs, ports, handles):
        assert p.returncode == 3, (p.returncode, out, err)
        c = records(subprocess.CompletedProcess([], 3, out, err))[-1]
        assert (c["cause"], c.get("nft_rule", {}).get("handle")) == \
            ("netfilter_drop", handle), (out, err)
        assert c["nft_rule"]["rule"].startswith(f"tcp dport {port} drop"), c


def test_no_route_gives_the_route_lookup(ns):
    """An `unreachable` route in the test's namespace: connect() fails
    locally, nothing is sent."""
    ns.add_unreachable_route()
    p = check(ns, "-j", f"{UNREACH_ADDR}:80")
    assert p.returncode == 3, (p.returncode, p.stdout, p.stderr)
    c = records(p)[-1]
    assert (c["verdict"], c["cause"]) == ("unreachable", "no_route"), c
    assert c["advice"][0] == "route lookup (ip route get): RTNETLINK answers: No route to host", c


def wait_accept_queue(ns, port, n):
    deadline = time.time() + 10
    while time.time() < deadline:
        ss = ns.exec(["ss", "-Hltn", f"sport = :{port}"]).stdout.split()
        if ss and ss[1] == str(n):
            return
        time.sleep(0.05)
    raise AssertionError(f"the accept queue of port {port} did not reach {n}: {ss}")


def test_no_synack_is_beyond_this_host(ns):
    """A silent peer: 192.0.2.0/24 routed to a TUN device inside the test
    namespace, read by fakepeer.py, which answers nothing and drops nothing
    the kernel could report (a peer namespace's full accept queue would be
    seen: it is still this kernel). check's side sees SYNs go and nothing
    come back: the loss is beyond this host, bounded by this namespace's
    timers."""
    port = free_port()
    peer = FakePeer(ns, {port: ("silent", 0)})
    try:
        ns.sysctl("net.ipv4.tcp_syn_retries", 3)
        p = check(ns, "-j", "--timeout", "2", f"{peer_addr(False)}:{port}")
    finally:
        peer.stop()
    assert p.returncode == 3, (p.returncode, p.stdout, p.stderr)
    c = records(p)[-1]
    assert (c["verdict"], c["cause"]) == ("timeout", "no_synack"), c
    assert "nft_rule" not in c, c
    advice = "\n".join(c["advice"])
    assert "the loss is beyond this host" in advice, advice
    assert ("net.ipv4.tcp_syn_retries = 3: the kernel gives up after about 15 s (1 s, then "
            "doubling); this check waited at most 2 s (--timeout)") in advice, advice


def test_full_accept_queue_names_the_listener(ns):
    """listen(fd, 1) and never accept(): two clients fill the queue (a queue
    of 1 holds 2), then check's SYNs go unanswered."""
    port = free_port()
    lst = ns.listen(port, backlog=1, no_accept=True)
    clients = [ns.client("127.0.0.1", port, nonblock=True, timeout_ms=30000) for _ in range(2)]
    wait_accept_queue(ns, port, 2)
    somaxconn = ns.exec(["sysctl", "-n", "net.core.somaxconn"]).stdout.strip()
    p = check(ns, "-j", "--timeout", "2", f"127.0.0.1:{port}")
    for c in clients:
        c.finish()
    assert p.returncode == 3, (p.returncode, p.stdout, p.stderr)
    c = records(p)[-1]
    assert c["verdict"] == "timeout", c
    advice = "\n".join(c["advice"])
    want = (f"listener 127.0.0.1:{port}, ctlisten (pid {lst.proc.pid}): accept queue 2 of max 1 "
            f"(the backlog), net.core.somaxconn {somaxconn}")
    assert want in advice, advice
    assert "raise the backlog" in advice, advice


def test_unresolvable_name(ns):
    p = check(ns, "-j", "nosuch.invalid:80", timeout=20)
    assert p.returncode == 3, (p.returncode, p.stdout, p.stderr)
    recs = records(p)
    assert len(recs) == 1, recs       # decided before any tracing
    c = recs[0]
    assert (c["result"], c["verdict"], c["cause"], c["addresses"]) == \
        ("unresolved", "unresolved", "dns", []), c
    assert c["advice"][0].startswith("nosuch.invalid does not resolve"), c
    t = check(ns, "nosuch.invalid:80", timeout=20)
    assert t.returncode == 3 and "UNRESOLVED (cause dns)" in t.stdout, (t.returncode, t.stdout)


def test_name_from_the_hosts_file(ns):
    port = free_port()
    ns.listen(port)
    p = check(ns, "-j", f"svc.test:{port}")
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    c = records(p)[-1]
    assert c["host"] == "svc.test" and c["addresses"] == ["127.0.0.1"], c


def test_ipv6(ns):
    port = free_port()
    ns.listen(port, v6=True)
    p = check(ns, "-j", f"[::1]:{port}")
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    recs = records(p)
    v = verdicts(recs)
    assert len(v) == 1 and (v[0]["family"], v[0]["daddr"], v[0]["verdict"]) == \
        ("ipv6", "::1", "ok"), v
    closed = free_port()
    p = check(ns, "-j", f"[::1]:{closed}")
    assert p.returncode == 3, (p.returncode, p.stdout, p.stderr)
    c = records(p)[-1]
    assert (c["verdict"], c["cause"], c["addresses"]) == ("refused", "no_listener", ["::1"]), c


def test_count_and_interval(ns):
    port = free_port()
    ns.listen(port)
    p = check(ns, "-j", "--count", "3", "--interval", "50", f"127.0.0.1:{port}")
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    recs = records(p)
    v = verdicts(recs)
    assert [r["verdict"] for r in v] == ["ok"] * 3, v
    assert len({r["sport"] for r in v}) == 3, v
    assert recs[-1]["attempts"] == recs[-1]["connected"] == 3, recs[-1]


def test_interrupted_mid_attempt_leaves_no_table(ns):
    """SIGINT while the SYNs are being dropped: the trace table goes, exit 1."""
    port = free_port()
    add_filter(ns, port, "drop", "ct-check sigint")
    p = subprocess.Popen(in_ns(ns, conntrace_path(), "check", "-j", "--timeout", "30",
                               f"127.0.0.1:{port}"),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 15
        while not our_tables(ns):
            assert time.time() < deadline, "the trace table never appeared"
            assert p.poll() is None, p.communicate()
            time.sleep(0.05)
        assert our_tables(ns) == [f"conntrace_check_{p.pid}"], our_tables(ns)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=15)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 1, (p.returncode, out, err)
    c = json.loads(out.splitlines()[-1])
    assert c["type"] == "check" and c["result"] == "interrupted", c
    assert not our_tables(ns), our_tables(ns)


def test_stale_table_of_a_dead_check_is_removed(ns):
    dead = subprocess.Popen(["true"])
    dead.wait()                        # its pid is free now (and not reused this soon)
    ns.nft(f"table inet conntrace_check_{dead.pid} {{ }}\n")
    assert our_tables(ns) == [f"conntrace_check_{dead.pid}"]
    p = check(ns, f"127.0.0.1:{free_port()}")
    assert p.returncode == 3, (p.returncode, p.stdout, p.stderr)
    assert not our_tables(ns), our_tables(ns)


@pytest.mark.parametrize("args", [
    [], ["host"], ["host:0"], ["host:65536"], ["::1:80"], ["[::1]80"], ["[nothost]:80"],
    ["--count", "0", "h:1"], ["--timeout", "x", "h:1"], ["--bogus", "h:1"], ["a:1", "b:2"],
], ids=lambda a: " ".join(a) or "none")
def test_bad_usage(args):
    p = run([conntrace_path(), "check", *args], check=False, timeout=20)
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    assert len(p.stderr.splitlines()) == 1, p.stderr
    assert p.stdout == "", p.stdout


def test_help_says_the_exit_statuses():
    p = run([conntrace_path(), "check", "--help"], timeout=20)
    assert "Exit status: 0 every attempt connected; 3 not connected" in p.stdout, p.stdout


def test_without_privilege_exit_1():
    p = run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", conntrace_path(),
             "check", "127.0.0.1:80"], check=False, timeout=20)
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    assert len(p.stderr.splitlines()) == 1 and "needs CAP_BPF" in p.stderr, p.stderr
