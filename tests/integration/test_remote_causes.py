# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Causes that come from beyond this host, from a fake remote peer.

Each test makes its own namespace whose 192.0.2.0/24 and 2001:db8::/64 are
routed to a TUN device read by fakepeer.py (the packets never leave the
namespace): the peer is silent, answers late, answers with an RST or with
an ICMP error. ctclient makes one blocking connect() to it under
`conntrace -j --netns NS` (the default invocation: no -a, so the in-kernel
filter decides what reaches user space). Each verdict is checked against
three accounts that do not come from conntrace: what ctclient saw (errno,
elapsed time, source port), what the peer saw and sent (its SYNs, its
answers), and the namespace's own counters (`nstat`: TcpActiveOpens,
TcpAttemptFails, TcpExtTCPSynRetrans, TcpOutRsts, Icmp(6)In/Out...).
"""

import os
import re
import signal
import time

import pytest

from ctharness import Conntrace, flow, free_port, related
from fakepeer import FakePeer, peer_addr
from realclients import Counters, assert_verdict, curl, events, make_ns, mismatches, sockets

SYN_RETRIES = 1     # ETIMEDOUT after 3 s: the SYN and 2 retransmits (1 s, then 2 s)


@pytest.fixture
def remote():
    """make(plan) -> (ns, peer): a fresh namespace with a fake peer on its
    TUN device; both stopped and removed afterwards."""
    made = []

    def make(plan, syn_retries=SYN_RETRIES):
        ns = make_ns("rc")
        made.append((ns, None))
        ns.sysctl("net.ipv4.tcp_syn_retries", syn_retries)
        peer = FakePeer(ns, plan)
        made[-1] = (ns, peer)
        return ns, peer

    yield make
    for ns, peer in made:
        if peer:
            peer.stop()
        ns.destroy()


def fam(v6):
    return "ipv6" if v6 else "ipv4"


V6 = pytest.mark.parametrize("v6", [False, True], ids=["ipv4", "ipv6"])


def traced(ns, port, attempt, *args):
    """attempt() under `conntrace -j --netns NS ARGS`: (its result, the one
    verdict for port, the namespace's counter deltas)."""
    with Conntrace("--netns", ns.inode, *args) as ct:
        k = Counters(ns)
        res = attempt()
        ct.wait_for(flow(ns, port), context=related(ns, port),
                    what=f"the verdict for the attempt to port {port}")
        d = k.delta()
        ct.stop()
    recs = ct.verdicts(flow(ns, port))
    assert len(recs) == 1, f"{len(recs)} verdicts for one attempt: {recs}"
    return res, recs[0], d


def connect(ns, v6, port, comm):
    return lambda: ns.client(peer_addr(v6), port, v6=v6, name=comm).finish()


def peer_syns(peer, port, res):
    """The SYNs the peer saw from this attempt (its source port)."""
    got = peer.seen(port)
    assert got and all(e["sport"] == got[0]["sport"] for e in got), got
    if res.get("sport"):
        assert got[0]["sport"] == res["sport"], (got, res)
    return got


NOT_THIS_HOST = re.compile(r"this host(?:'s (?:TCP stack|firewall))? (?:sent|answered)")


@V6
def test_silent_peer_times_out_no_synack(remote, v6):
    """The peer reads every SYN and never answers; nothing on this host drops
    them. tcp_syn_retries=1: the kernel gives up after ~3 s (TcpAttemptFails
    +1); the peer saw syn_retrans + 1 SYNs, TCPSynRetrans says syn_retrans.
    timeout/no_synack, inferred (it rests on the absence of any answer)."""
    port = free_port()
    ns, peer = remote({port: ("silent", 0)})
    res, rec, d = traced(ns, port, connect(ns, v6, port, "rc-silent"))
    syns = peer_syns(peer, port, res)
    assert res["result"] == "ETIMEDOUT" and res["elapsed_ms"] >= 2500, res
    assert (d["TcpActiveOpens"], d["TcpAttemptFails"]) == (1, 1), d
    assert len(syns) == d["TcpExtTCPSynRetrans"] + 1 >= 2, (syns, d)
    assert_verdict(rec, res, verdict="timeout", cause="no_synack", errno="ETIMEDOUT",
                   inferred=True, pid=res["pid"], tid=res["pid"], comm="rc-silent",
                   family=fam(v6), daddr=peer_addr(v6), sport=syns[0]["sport"],
                   syn_retrans=d["TcpExtTCPSynRetrans"], untracked=False)
    assert not events(rec, "drop") and not events(rec, "rst_received"), rec["evidence"]
    assert rec["duration_us"] >= 2_500_000, rec


@V6
def test_late_synack_is_slow_handshake(remote, v6):
    """The peer answers the SYN with a SYN-ACK 300 ms later (the final ACK is
    ignored): connect() succeeds after >= 300 ms, no SYN retransmitted
    (TCPSynRetrans +0, one SYN at the peer). With --slow 100 and no -a, the
    kernel must still send it to user space: slow/slow_handshake, not
    inferred (the handshake's own timing was observed)."""
    port = free_port()
    ns, peer = remote({port: ("synack", 300)})
    res, rec, d = traced(ns, port, connect(ns, v6, port, "rc-slowsyn"), "--slow", 100)
    syns = peer_syns(peer, port, res)
    sent = peer.seen(port, "sent")
    assert res["result"] == "ok" and res["elapsed_ms"] >= 300, res
    assert len(syns) == len(sent) == 1 and sent[0]["t"] - syns[0]["t"] >= 0.3, (syns, sent)
    assert (d["TcpActiveOpens"], d["TcpAttemptFails"], d["TcpExtTCPSynRetrans"]) == (1, 0, 0), d
    assert_verdict(rec, res, verdict="slow", cause="slow_handshake", errno=None,
                   inferred=False, pid=res["pid"], tid=res["pid"], comm="rc-slowsyn",
                   family=fam(v6), daddr=peer_addr(v6), sport=res["sport"], syn_retrans=0)
    # no longer than the client itself waited (ctclient's elapsed_ms is whole ms)
    assert 300_000 <= rec["duration_us"] <= (res["elapsed_ms"] + 1) * 1000, (rec, res)
    assert events(rec, "established"), rec["evidence"]


@V6
def test_first_syn_unanswered_is_slow_no_synack(remote, v6):
    """The peer ignores the first SYN and answers its retransmit (1 s later)
    with a SYN-ACK at once: connect() succeeds after ~1 s, one SYN
    retransmitted (TCPSynRetrans +1, the peer saw 2 SYNs and sent 1
    SYN-ACK), nothing dropped on this host. slow/no_synack, inferred: the
    lost SYN was lost beyond this host (or the retransmit was spurious)."""
    port = free_port()
    ns, peer = remote({port: ("synack", 0, 1)})
    res, rec, d = traced(ns, port, connect(ns, v6, port, "rc-lostsyn"))
    syns = peer_syns(peer, port, res)
    assert res["result"] == "ok" and res["elapsed_ms"] >= 900, res
    assert (len(syns), len(peer.seen(port, "sent"))) == (2, 1), peer.events
    assert (d["TcpActiveOpens"], d["TcpAttemptFails"], d["TcpExtTCPSynRetrans"]) == (1, 0, 1), d
    assert_verdict(rec, res, verdict="slow", cause="no_synack", errno=None, inferred=True,
                   pid=res["pid"], tid=res["pid"], comm="rc-lostsyn", family=fam(v6),
                   daddr=peer_addr(v6), sport=res["sport"], syn_retrans=1)
    assert not events(rec, "drop"), rec["evidence"]


@V6
def test_remote_rst_is_refused_rst_received(remote, v6):
    """The peer answers the SYN with an RST|ACK: ECONNREFUSED at once
    (TcpAttemptFails +1) and this host's TCP stack sent no RST (TcpOutRsts
    +0). refused/rst_received, with an rst_received event, no rst_sent, and
    a detail that does not say this host sent it."""
    port = free_port()
    ns, peer = remote({port: ("rst", 0)})
    res, rec, d = traced(ns, port, connect(ns, v6, port, "rc-rst"))
    peer_syns(peer, port, res)
    assert res["result"] == "ECONNREFUSED", res
    assert len(peer.seen(port, "sent")) == 1, peer.events
    assert (d["TcpActiveOpens"], d["TcpAttemptFails"], d["TcpOutRsts"]) == (1, 1, 0), d
    assert_verdict(rec, res, verdict="refused", cause="rst_received", errno="ECONNREFUSED",
                   inferred=False, pid=res["pid"], tid=res["pid"], comm="rc-rst",
                   family=fam(v6), daddr=peer_addr(v6), syn_retrans=0)
    assert events(rec, "rst_received") and not events(rec, "rst_sent"), rec["evidence"]
    assert not NOT_THIS_HOST.search(rec["detail"]) and "did not send" in rec["detail"], rec


ICMP_CASES = [
    # id, v6, action, errno, verdict, (counter in, counter out), (type, code) sent
    ("ipv4-port", False, "icmp-port", "ECONNREFUSED", "refused",
     ("IcmpInDestUnreachs", "IcmpOutDestUnreachs")),
    ("ipv4-host", False, "icmp-host", "EHOSTUNREACH", "unreachable",
     ("IcmpInDestUnreachs", "IcmpOutDestUnreachs")),
    ("ipv6-port", True, "icmp-port", "ECONNREFUSED", "refused",
     ("Icmp6InDestUnreachs", "Icmp6OutDestUnreachs")),
    ("ipv6-host", True, "icmp-host", "EHOSTUNREACH", "unreachable",
     ("Icmp6InDestUnreachs", "Icmp6OutDestUnreachs")),
]


@pytest.mark.parametrize("v6, action, errno, verdict, counters", [c[1:] for c in ICMP_CASES],
                         ids=[c[0] for c in ICMP_CASES])
def test_remote_icmp_is_icmp_unreachable(remote, v6, action, errno, verdict, counters):
    """The peer (port unreachable) or a router on its side (host unreachable)
    answers the SYN with an ICMP error: connect() fails with that errno
    (TcpAttemptFails +1); the namespace received one ICMP destination
    unreachable per SYN it sent (one, unless the peer was slower than the
    first retransmit) and sent none. refused or unreachable / icmp_unreachable,
    with no icmp_sent and no RST in the evidence: the error came from
    elsewhere, and the detail does not say this host sent it."""
    port = free_port()
    ns, peer = remote({port: (action, 0)})
    res, rec, d = traced(ns, port, connect(ns, v6, port, "rc-icmp"))
    peer_syns(peer, port, res)
    assert res["result"] == errno, res
    # one ICMP error per SYN that reached the peer: under emulation the peer
    # may answer after the client's first retransmit (1 s), and the second
    # SYN's error may come after the first one failed the attempt
    retrans = d["TcpExtTCPSynRetrans"]
    assert 1 <= d[counters[0]] <= 1 + retrans and d[counters[1]] == 0, \
        ({k: d[k] for k in counters}, retrans)
    assert (d["TcpActiveOpens"], d["TcpAttemptFails"]) == (1, 1), d
    assert_verdict(rec, res, verdict=verdict, cause="icmp_unreachable", errno=errno,
                   pid=res["pid"], tid=res["pid"], comm="rc-icmp", family=fam(v6),
                   daddr=peer_addr(v6), syn_retrans=retrans)
    for e in ("icmp_sent", "rst_sent", "rst_received", "drop"):
        assert not events(rec, e), f"{e} in the evidence: {rec['evidence']}"
    assert not NOT_THIS_HOST.search(rec["detail"]), rec["detail"]


@V6
def test_remote_icmp_parameter_problem_is_unknown(remote, v6):
    """The peer answers the SYN with an ICMP parameter problem: the kernel
    fails the attempt with EPROTO (TcpAttemptFails +1, Icmp(6)InParmProb(lem)s
    +1). That error says something was wrong, not why nothing can connect:
    unreachable/unknown, inferred, with the errno shown."""
    port = free_port()
    ns, peer = remote({port: ("icmp-param", 0)})
    res, rec, d = traced(ns, port, connect(ns, v6, port, "rc-param"))
    peer_syns(peer, port, res)
    assert res["result"] == "EPROTO", res
    assert d["Icmp6InParmProblems" if v6 else "IcmpInParmProbs"] == 1, d
    assert (d["TcpActiveOpens"], d["TcpAttemptFails"]) == (1, 1), d
    assert_verdict(rec, res, verdict="unreachable", cause="unknown", errno="EPROTO",
                   inferred=True, pid=res["pid"], tid=res["pid"], comm="rc-param",
                   family=fam(v6), daddr=peer_addr(v6), syn_retrans=0)


# -- attempts the application does not see end -----------------------------------

@V6
def test_blocking_connect_killed_is_abandoned(remote, v6):
    """A blocking connect() to the silent peer; the process is killed
    (SIGKILL) while its socket is in SYN-SENT, after the peer saw its SYN:
    the kernel closes the socket as the process exits and never failed the
    attempt (TcpAttemptFails +0). abandoned/app_closed, inferred, pid and
    source port those of the killed process's attempt."""
    port = free_port()
    ns, peer = remote({port: ("silent", 0)}, syn_retries=6)
    with Conntrace("--netns", ns.inode) as ct:
        k = Counters(ns)
        c = ns.client(peer_addr(v6), port, v6=v6, name="rc-killed", announce=True)
        syn = peer.wait(lambda e: e["event"] == "syn" and e["dport"] == port, 10,
                        "the client's SYN at the peer")
        assert sockets(ns, "syn-sent", port), "the client's socket is not in SYN-SENT"
        os.kill(c.pid, signal.SIGKILL)
        assert c.proc.wait(10) == -signal.SIGKILL
        rec = ct.wait_for(flow(ns, port), context=related(ns, port),
                          what="the verdict for the killed client")
        d = k.delta()
        ct.stop()
    assert len(ct.verdicts(flow(ns, port))) == 1, ct.verdicts()
    assert (d["TcpActiveOpens"], d["TcpAttemptFails"]) == (1, 0), d
    assert len(peer.seen(port)) == d["TcpExtTCPSynRetrans"] + 1, (peer.seen(port), d)
    assert_verdict(rec, verdict="abandoned", cause="app_closed", inferred=True, pid=c.pid,
                   tid=c.pid, comm="rc-killed", family=fam(v6), sport=syn["sport"],
                   syn_retrans=d["TcpExtTCPSynRetrans"])


@V6
def test_blocking_connects_pending_when_conntrace_stops(remote, v6):
    """Two blocking connect()s to the silent peer are still in SYN-SENT when
    conntrace gets SIGINT: each gets exactly one verdict, pending, with the
    source port the peer saw (and `ss` shows). The first had a SYN
    retransmitted (the peer saw 2 SYNs) with no drop here: no_synack. The
    second is stopped right after its first SYN, before any retransmit:
    nothing tells yet why it waits: unknown (its detail says no SYN was
    retransmitted yet). (The second one's source port is checked by
    test_blocking_connect_pending_before_a_retransmit_has_its_source_port.)"""
    p1, p2 = free_port(), free_port()
    ns, peer = remote({p1: ("silent", 0), p2: ("silent", 0)}, syn_retries=6)
    ct = Conntrace("--netns", ns.inode).start()
    try:
        c1 = ns.client(peer_addr(v6), p1, v6=v6, name="rc-pend1", announce=True)
        peer.wait(lambda e: e["event"] == "syn" and e["dport"] == p1 and
                  len(peer.seen(p1)) >= 2, 10, "a retransmitted SYN at the peer")
        c2 = ns.client(peer_addr(v6), p2, v6=v6, name="rc-pend2", announce=True)
        syn2 = peer.wait(lambda e: e["event"] == "syn" and e["dport"] == p2, 10,
                         "the second client's SYN at the peer")
        t_stop = time.monotonic()
        summary = ct.stop()
        assert time.monotonic() - syn2["t"] < 1.0, \
            "conntrace stopped too late to see the second attempt before its first retransmit"
        ss1, ss2 = sockets(ns, "syn-sent", p1), sockets(ns, "syn-sent", p2)
        assert c1.proc.poll() is None and c2.proc.poll() is None, "a client finished early"
    finally:
        ct.kill()
    assert summary["verdicts"]["pending"] == 2, summary
    r1, r2 = ct.verdicts(flow(ns, p1)), ct.verdicts(flow(ns, p2))
    assert len(r1) == len(r2) == 1, (r1, r2)
    sport1, sport2 = peer.seen(p1)[0]["sport"], syn2["sport"]
    assert f":{sport1} " in ss1[0] and f":{sport2} " in ss2[0], (ss1, ss2)
    retrans1 = len([e for e in peer.seen(p1) if e["t"] <= t_stop]) - 1
    problems = []
    for rec, want in ((r1[0], dict(cause="no_synack", pid=c1.pid, tid=c1.pid, comm="rc-pend1",
                                   sport=sport1)),
                      # its source port: the test below
                      (r2[0], dict(cause="unknown", pid=c2.pid, tid=c2.pid, comm="rc-pend2",
                                   syn_retrans=0))):
        problems += [f"{want['comm']}: {p}" for p in mismatches(
            rec, verdict="pending", inferred=True, family=fam(v6), errno=None, **want)]
    if not (retrans1 >= 1 and r1[0]["syn_retrans"] in (retrans1, retrans1 + 1)):
        problems.append(f"rc-pend1: syn_retrans {r1[0]['syn_retrans']}, the peer saw "
                        f"{retrans1 + 1} SYNs")
    if "no SYN retransmitted yet" not in r2[0]["detail"]:
        problems.append(f"rc-pend2 detail: {r2[0]['detail']!r}")
    assert not problems, "\n".join(problems) + f"\n{r1[0]}\n{r2[0]}"


@V6
def test_blocking_connect_pending_before_a_retransmit_has_its_source_port(remote, v6):
    """A blocking connect() to the silent peer, stopped (SIGINT to
    conntrace) after its first SYN and before any retransmit: the pending
    verdict names the source port of that SYN (what the peer saw, what `ss`
    shows). The kernel binds the port after the socket enters SYN_SENT, and
    a blocking connect() has not returned yet: conntrace must still find it."""
    port = free_port()
    ns, peer = remote({port: ("silent", 0)}, syn_retries=6)
    ct = Conntrace("--netns", ns.inode).start()
    try:
        c = ns.client(peer_addr(v6), port, v6=v6, name="rc-pendport", announce=True)
        syn = peer.wait(lambda e: e["event"] == "syn" and e["dport"] == port, 10,
                        "the SYN at the peer")
        ct.stop()
        ss = sockets(ns, "syn-sent", port)
        assert c.proc.poll() is None, "the client finished early"
    finally:
        ct.kill()
    recs = ct.verdicts(flow(ns, port))
    assert len(recs) == 1 and f":{syn['sport']} " in ss[0], (recs, ss)
    assert_verdict(recs[0], verdict="pending", pid=c.pid, comm="rc-pendport", family=fam(v6),
                   daddr=peer_addr(v6), sport=syn["sport"])


def test_attempt_begun_before_conntrace_is_untracked(remote):
    """A blocking connect() to the silent peer starts before conntrace, which
    is started only once the peer has seen a retransmitted SYN; the kernel
    gives up after ~3 s. conntrace saw only its end: untracked, owner and
    duration unknown (null), yet syn_retrans is the socket's own count (the
    namespace's TCPSynRetrans over the whole attempt) and, with no drop seen
    and the destination beyond this host: timeout/no_synack."""
    port = free_port()
    ns, peer = remote({port: ("silent", 0)})
    k = Counters(ns)
    c = ns.client(peer_addr(False), port, name="rc-early", announce=True)
    peer.wait(lambda e: e["event"] == "syn" and len(peer.seen(port)) >= 2, 10,
              "a retransmitted SYN at the peer")
    with Conntrace("--netns", ns.inode) as ct:
        res = c.finish()
        rec = ct.wait_for(flow(ns, port), context=related(ns, port),
                          what="the verdict for the attempt begun earlier")
        d = k.delta()
        summary = ct.stop()
    assert res["result"] == "ETIMEDOUT", res
    assert (d["TcpActiveOpens"], d["TcpAttemptFails"]) == (1, 1), d
    assert len(peer.seen(port)) == d["TcpExtTCPSynRetrans"] + 1, (peer.seen(port), d)
    assert summary["flows_untracked"] == 1, summary
    want = dict(verdict="timeout", cause="no_synack", errno="ETIMEDOUT", inferred=True,
                untracked=True, evicted=False, pid=None, tid=None, comm=None, cgroup_id=None,
                duration_us=None, family="ipv4", daddr=peer_addr(False),
                sport=peer.seen(port)[0]["sport"], syn_retrans=d["TcpExtTCPSynRetrans"])
    got = {k: rec.get(k) for k in want}
    assert got == want, f"record: {rec}\nclient: {res}"


@pytest.mark.parametrize("v6", [False, True], ids=["ipv4", "ipv6"])
@pytest.mark.parametrize("action, verdict, cause", [
    (("silent", 0), "timeout", "no_synack"),
    (("synack", 300), "slow", "slow_handshake"),
], ids=["silent", "late-synack"])
def test_curl_against_the_remote_peer(remote, v6, action, verdict, cause):
    """The same remote causes with a client this project did not write: curl.
    A silent peer: the kernel gives up (curl exits 7 or 28 with "Connection
    timed out"), timeout/no_synack. A SYN-ACK 300 ms late: curl connects
    (then gives up on the reply, --max-time 2), slow/slow_handshake with
    --slow 100 and no -a."""
    port = free_port()
    ns, peer = remote({port: action})
    host = f"[{peer_addr(v6)}]" if v6 else peer_addr(v6)
    res, rec, d = traced(ns, port, lambda: curl(ns, f"http://{host}:{port}/", "--max-time", "5"),
                         "--slow", 100)
    syns = peer_syns(peer, port, {})
    assert len(syns) == d["TcpExtTCPSynRetrans"] + 1, (syns, d)
    if verdict == "timeout":
        assert res.connect_error == "Connection timed out" or res.rc == 28, res
        assert (d["TcpActiveOpens"], d["TcpAttemptFails"]) == (1, 1), d
    else:
        assert res.connect_error is None and d["TcpExtTCPSynRetrans"] == 0, (res, d)
    assert_verdict(rec, repr(res), verdict=verdict, cause=cause, pid=res.pid, tid=res.pid,
                   comm="curl", family=fam(v6), daddr=peer_addr(v6), sport=syns[0]["sport"],
                   syn_retrans=d["TcpExtTCPSynRetrans"])
