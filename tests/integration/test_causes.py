# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Causes that only particular socket calls show, from a Python client
(Debian's python3) making exactly the calls a C program would: a
non-blocking connect that reads SO_ERROR after an ICMP error, an AF_INET6
dual-stack socket to a v4-mapped address, a self-connect (simultaneous
open), a connect from a second thread, and the `inferred` flag.

Each test runs in its own namespace under its own `conntrace -j -a --netns NS --port P`
and checks the verdict against what the client saw (its errno, SO_ERROR,
pid and thread id) and the namespace's counters (`nstat`)."""

import pytest

from ctharness import Conntrace, flow, free_port, related
from realclients import (Counters, assert_verdict, events, icmp_problems, make_ns,
                         nft_packets, nft_syn_rule, pyclient)

SHORT_WAIT = 5.0    # for a verdict due at once (the default is 20 s)


@pytest.fixture
def ns():
    n = make_ns()
    try:
        yield n
    finally:
        n.destroy()


def traced(ns, port, attempt):
    """Run attempt() under `conntrace -j -a --netns ns --port port`: (its result, the
    verdict or None, every verdict for the port, counter deltas). A verdict
    that does not come within SHORT_WAIT s is looked for in what conntrace
    prints when stopped (pending), so the failure shows it."""
    with Conntrace("-a", "--netns", ns.inode, "--port", port) as ct:
        k = Counters(ns)
        res = attempt()
        try:
            ct.wait_for(flow(ns, port), timeout=SHORT_WAIT, context=related(ns, port),
                        what=f"the verdict for port {port}")
        except AssertionError:
            pass
        d = k.delta()
        ct.stop()
    recs = ct.verdicts(flow(ns, port))
    return res, recs, d


def single(recs, res):
    assert len(recs) == 1, f"{len(recs)} verdicts for one attempt: {recs}\nclient: {res}"
    return recs[0]


# -- ICMP errors on a non-blocking connect --------------------------------------

ICMP_CASES = [
    # id, family, address, nft reject, SO_ERROR, verdict, ICMP out counter,
    # (type, code) of the ICMP sent: ICMP for IPv4, ICMPv6 for IPv6
    ("ipv4-port-unreachable", "4", "127.0.0.1", "reject with icmpx type port-unreachable",
     "ECONNREFUSED", "refused", "IcmpOutDestUnreachs", (3, 3)),
    ("ipv4-host-unreachable", "4", "127.0.0.1", "reject with icmp type host-unreachable",
     "EHOSTUNREACH", "unreachable", "IcmpOutDestUnreachs", (3, 1)),
    ("ipv6-port-unreachable", "6", "::1", "reject with icmpx type port-unreachable",
     "ECONNREFUSED", "refused", "Icmp6OutDestUnreachs", (1, 4)),
    ("ipv6-host-unreachable", "6", "::1", "reject with icmpx type host-unreachable",
     "EHOSTUNREACH", "unreachable", "Icmp6OutDestUnreachs", (1, 3)),
]


@pytest.mark.parametrize("family, addr, rule, so_error, verdict, icmp_out, icmp",
                         [c[1:] for c in ICMP_CASES], ids=[c[0] for c in ICMP_CASES])
def test_nonblocking_connect_icmp_error(ns, family, addr, rule, so_error, verdict, icmp_out,
                                        icmp):
    """connect_ex() returns EINPROGRESS; nft on this host rejects each SYN
    with an ICMP error (the ICMP out counter and the rule's counter agree,
    one per SYN). On loopback the first ICMP usually arrives while connect()
    still owns the socket, so the kernel keeps it as the soft error
    (sk_err_soft; TcpExtLockDroppedIcmps) and retransmits; measured on 6.18:
    over IPv4 select() reports the socket writable at once, over IPv6 only
    after the retransmit's ICMP made it a hard error. Either way SO_ERROR
    gives the ICMP's errno and the client closes: the verdict is the ICMP's
    (refused or unreachable, icmp_unreachable, that errno), not the
    close's. The ICMP's errno is the attempt's errno where it ended the
    attempt (IPv6 here), else it was left on the socket (icmp_error); and
    the evidence shows this host sending that ICMP (icmp_sent), where the
    kernel has a tracepoint for it (IPv4's icmp_send; none for ICMPv6)."""
    port = free_port()
    ns.listen(port, v6=family == "6")
    nft_syn_rule(ns, port, rule)
    res, recs, d = traced(ns, port, lambda: pyclient(
        ns, addr, port, family=family, comm="rt-nonblock", nonblock=True))
    assert (res["connect"], res["writable"], res["so_error"]) == \
        ("EINPROGRESS", True, so_error), res
    sent = nft_packets(ns)
    assert d[icmp_out] == sent == d["TcpExtTCPSynRetrans"] + 1, (sent, d)
    rec = single(recs, res)
    want = dict(verdict=verdict, cause="icmp_unreachable",
                pid=res["spawned_pid"], tid=res["tid"], comm="rt-nonblock",
                family="ipv6" if family == "6" else "ipv4", daddr=addr,
                syn_retrans=d["TcpExtTCPSynRetrans"])
    if res["sport"]:
        want["sport"] = res["sport"]
    assert_verdict(rec, res, extra=icmp_problems(rec, so_error, *icmp), **want)


# -- AF_INET6 dual-stack sockets to v4-mapped addresses --------------------------

def mapped(rec):
    """The destination as the verdict gives it: a v4-mapped IPv6 address, or
    the IPv4 address itself (both are honest for an AF_INET6 socket that
    sends IPv4 packets)."""
    return (rec["family"], rec["daddr"]) in (("ipv6", "::ffff:127.0.0.1"),
                                             ("ipv4", "127.0.0.1"))


def test_dual_stack_to_v4_mapped_closed_port_is_no_listener(ns):
    """An AF_INET6 socket with IPV6_V6ONLY=0 connects to ::ffff:127.0.0.1 on
    a port nothing listens on: the SYN is IPv4, and this host's TCP stack
    answers it with an RST (TcpOutRsts +1): ECONNREFUSED. Same cause as for
    an AF_INET socket: refused/no_listener."""
    port = free_port()
    res, recs, d = traced(ns, port, lambda: pyclient(
        ns, "::ffff:127.0.0.1", port, family="dual", comm="rt-dual"))
    assert res["result"] == "ECONNREFUSED", res
    assert (d["TcpOutRsts"], d["TcpAttemptFails"]) == (1, 1), d
    rec = single(recs, res)
    assert_verdict(rec, res, verdict="refused", cause="no_listener", errno="ECONNREFUSED",
                   pid=res["spawned_pid"], tid=res["tid"], comm="rt-dual", syn_retrans=0)
    assert mapped(rec), rec


def test_dual_stack_to_v4_mapped_listener_is_ok(ns):
    """The same dual-stack socket to a listener on 127.0.0.1: connected, no
    retransmit: ok, with the client's own source port."""
    port = free_port()
    ns.listen(port)
    res, recs, d = traced(ns, port, lambda: pyclient(
        ns, "::ffff:127.0.0.1", port, family="dual", comm="rt-dual"))
    assert res["result"] == "ok" and d["TcpExtTCPSynRetrans"] == 0, (res, d)
    rec = single(recs, res)
    assert_verdict(rec, res, verdict="ok", pid=res["spawned_pid"], tid=res["tid"],
                   comm="rt-dual", sport=res["sport"], syn_retrans=0, errno=None)
    assert mapped(rec), rec


# -- simultaneous open -----------------------------------------------------------

def test_self_connect_is_ok(ns):
    """A socket bound to 127.0.0.1:P connects to 127.0.0.1:P: its SYN comes
    back to itself, it passes through SYN_RECV (simultaneous open) and
    connects to itself (getpeername == getsockname). One attempt, which
    succeeded: ok, and the evidence says it was a simultaneous open."""
    port = free_port()
    res, recs, d = traced(ns, port, lambda: pyclient(
        ns, "127.0.0.1", port, comm="rt-selfconn", bind=True))
    assert res["result"] == "ok" and res["sport"] == port and \
        res["peer"] == ["127.0.0.1", port], res
    assert d["TcpActiveOpens"] == 1 and d["TcpAttemptFails"] == 0, d
    rec = single(recs, res)
    simopen = [] if events(rec, "simultaneous_open") else [
        "no simultaneous_open evidence (the socket passed through SYN_RECV)"]
    assert_verdict(rec, res, extra=simopen, verdict="ok", pid=res["spawned_pid"],
                   tid=res["tid"], comm="rt-selfconn", sport=port, dport=port, errno=None,
                   syn_retrans=d["TcpExtTCPSynRetrans"])


# -- threads ---------------------------------------------------------------------

def test_thread_attempt_names_process_and_thread(ns):
    """A second thread (named rt-thread; the main thread is rt-main) connects
    to a closed port: refused. pid is the process (what ps shows), tid the
    thread that called connect() (threading.get_native_id()), comm that
    thread's name."""
    port = free_port()
    res, recs, d = traced(ns, port, lambda: pyclient(
        ns, "127.0.0.1", port, comm="rt-thread", thread=True))
    assert res["result"] == "ECONNREFUSED" and res["tid"] != res["pid"], res
    assert res["pid"] == res["main_pid"] == res["spawned_pid"], res
    rec = single(recs, res)
    assert_verdict(rec, res, verdict="refused", cause="no_listener", pid=res["pid"],
                   tid=res["tid"], comm="rt-thread")


# -- inferred ----------------------------------------------------------------------

def test_inferred_flag(ns):
    """`inferred` (bool) says whether the verdict rests on an inference
    rather than on an event the kernel showed. An RST sent by this host's
    stack for a closed port is shown by the kernel: false. A client that
    closes while its SYNs are being dropped (non-blocking, 0.5 s): that its
    own timeout was shorter than the kernel's is inferred: true."""
    closed, dropped = free_port(), free_port()
    _, recs, _ = traced(ns, closed, lambda: pyclient(ns, "127.0.0.1", closed, comm="rt-inf"))
    refused = single(recs, None)
    ns.listen(dropped)
    nft_syn_rule(ns, dropped, "drop")
    res, recs, d = traced(ns, dropped, lambda: pyclient(
        ns, "127.0.0.1", dropped, comm="rt-inf", nonblock=True, wait=0.5))
    assert res["result"] == "abandoned" and d["TcpAttemptFails"] == 0, (res, d)
    abandoned = single(recs, res)
    assert (refused["verdict"], refused["cause"]) == ("refused", "no_listener"), refused
    assert (abandoned["verdict"], abandoned["cause"]) == ("abandoned", "app_closed"), abandoned
    assert refused.get("inferred") is False, f"refused/no_listener: {refused}"
    assert abandoned.get("inferred") is True, f"abandoned/app_closed: {abandoned}"
