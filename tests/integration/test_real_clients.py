# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Verdicts for real clients and servers: curl, nginx, haproxy, wrk, ab, socat.

Each test makes its own namespace, runs its own `conntrace -j --port P` on
the port it uses (so everything that instance prints is this test's), and
checks the verdict and cause against what the client itself reported (exit
code, the errno text of its failed connect, HTTP status, its error log) and
against the namespace's own counters (`nstat`): TcpExtTCPSynRetrans equals
the verdict's syn_retrans, TcpOutRsts counts the RSTs this host's TCP stack
sent, TcpAttemptFails the attempts the kernel failed (not those the
application closed), TcpExtListenOverflows the SYNs dropped on a full
accept queue, and the nft rule's own counter the SYNs it dropped or rejected.
"""

import os
import re
import signal

import pytest

from ctharness import UNREACH_ADDR, Conntrace, conntrace_path, flow, free_port, related
from realclients import (PY, Counters, Haproxy, Nginx, StalledServer, TextConntrace,
                         assert_verdict, curl, curl_finish, curl_start, events,
                         full_queue_problems, icmp_problems, kernel_at_least, make_ns,
                         nft_packets, nft_syn_rule, sockets, stop_process, threads,
                         wait_listening, wait_until)


@pytest.fixture
def ns():
    n = make_ns()
    try:
        yield n
    finally:
        n.destroy()


def lo(v6):
    return "::1" if v6 else "127.0.0.1"


def url(v6, port, path="/"):
    return f"http://[::1]:{port}{path}" if v6 else f"http://127.0.0.1:{port}{path}"


def one_verdict(ct, ns, port, what):
    """The verdict for `port`; after stopping conntrace, that it was the only one."""
    rec = ct.wait_for(flow(ns, port), context=related(ns, port), what=what)
    return rec


def only(ct, ns, port):
    got = ct.verdicts(flow(ns, port))
    assert len(got) == 1, f"{len(got)} verdicts for one attempt to port {port}: {got}"
    return got[0]


def traced_curl(ns, port, *curl_args, v6=False, host=None, timeout=60, summary=None):
    """curl once to port under `conntrace -j -a --netns NS --port port`: (curl's result,
    the verdict, the namespace's counter deltas). With a dict as `summary`, conntrace's
    summary record is copied into it."""
    target = f"http://{host}:{port}/" if host else url(v6, port)
    with Conntrace("-a", "--netns", ns.inode, "--port", port) as ct:
        k = Counters(ns)
        res = curl(ns, target, *curl_args, timeout=timeout)
        one_verdict(ct, ns, port, f"the verdict for curl {target}")
        d = k.delta()
        got = ct.stop()
    if summary is not None:
        summary.update(got)
    return res, only(ct, ns, port), d


def drop_counts(rec, packet="syn"):
    return sum(e.get("count", 1) for e in events(rec, "drop")
               if e.get("packet") == packet and e.get("reason") == "NETFILTER_DROP")


# -- curl ---------------------------------------------------------------------

@pytest.mark.parametrize("v6", [False, True], ids=["ipv4", "ipv6"])
def test_curl_closed_port_is_refused_no_listener(ns, v6):
    """Nothing listens: this host's TCP stack answers curl's SYN with an RST
    (TcpOutRsts +1, TcpAttemptFails +1); curl exits 7, "Connection refused"."""
    port = free_port()
    res, rec, d = traced_curl(ns, port, v6=v6)
    assert res.rc == 7 and res.connect_error == "Connection refused", res
    assert (d["TcpOutRsts"], d["TcpAttemptFails"], d["TcpExtTCPSynRetrans"]) == (1, 1, 0), d
    assert_verdict(rec, res, verdict="refused", cause="no_listener", errno="ECONNREFUSED",
                   pid=res.pid, tid=res.pid, comm="curl", family="ipv6" if v6 else "ipv4",
                   saddr=lo(v6), daddr=lo(v6), syn_retrans=0)
    sent = events(rec, "rst_sent")
    if kernel_at_least(6, 10):          # tcp_send_reset has its reason since 6.10
        assert len(sent) == 1 and sent[0]["reason"] == "NO_SOCKET", rec["evidence"]
    else:
        # older kernels trace no RST sent without a socket: the SYN's
        # NO_SOCKET drop is the evidence (README, no_listener)
        drops = [e for e in events(rec, "drop") if e.get("reason") == "NO_SOCKET"]
        assert len(sent) == 1 or len(drops) == 1, rec["evidence"]


def test_curl_gives_up_first_is_abandoned_app_closed(ns):
    """A listener hidden by an nft drop rule; curl --connect-timeout 1.5 closes
    its socket while the kernel still retransmits the SYN: curl exits 28
    "Timeout was reached", the kernel never failed the attempt
    (TcpAttemptFails +0), the rule dropped syn_retrans + 1 SYNs. The verdict
    rests on the close, not on a kernel error: inferred."""
    port = free_port()
    ns.listen(port)
    nft_syn_rule(ns, port, "drop")
    res, rec, d = traced_curl(ns, port, "--connect-timeout", "1.5")
    assert res.rc == 28 and res.timed_out and res.connect_error is None, res
    assert d["TcpAttemptFails"] == 0, d
    assert nft_packets(ns) == d["TcpExtTCPSynRetrans"] + 1, (nft_packets(ns), d)
    assert_verdict(rec, res, verdict="abandoned", cause="app_closed", pid=res.pid,
                   tid=res.pid, comm="curl", syn_retrans=d["TcpExtTCPSynRetrans"])
    assert rec["errno"] in (None, "EINPROGRESS"), rec
    # curl's 1.5 s count from its own start, a moment before its connect()
    # (0.12 s in the 6.1 guest under emulation, once)
    assert 1_000_000 <= rec["duration_us"] <= 2_500_000, rec
    assert rec.get("inferred") is True, f"abandoned is an inference: {rec}"


@pytest.mark.parametrize("v6", [False, True], ids=["ipv4", "ipv6"])
def test_curl_dropped_syns_time_out_netfilter_drop(ns, v6):
    """tcp_syn_retries=2 in the namespace, every SYN dropped by nft: the
    kernel gives up after ~7 s with ETIMEDOUT (TcpAttemptFails +1); curl
    (no timeout of its own) says "Connection timed out". The rule's counter,
    the drop evidence and syn_retrans + 1 all count the same SYNs."""
    port = free_port()
    ns.sysctl("net.ipv4.tcp_syn_retries", 2)
    ns.listen(port, v6=v6)
    nft_syn_rule(ns, port, "drop")
    summary = {}
    res, rec, d = traced_curl(ns, port, v6=v6, summary=summary)
    assert res.rc == 28 and res.connect_error == "Connection timed out", res
    assert d["TcpAttemptFails"] == 1 and 2 <= d["TcpExtTCPSynRetrans"] <= 10, d
    assert_verdict(rec, res, verdict="timeout", cause="netfilter_drop", errno="ETIMEDOUT",
                   pid=res.pid, tid=res.pid, comm="curl", daddr=lo(v6),
                   syn_retrans=d["TcpExtTCPSynRetrans"])
    sent, seen, missed = nft_packets(ns), drop_counts(rec), summary["missed_events"]
    assert sent == rec["syn_retrans"] + 1, (sent, rec["evidence"])
    # every SYN's drop is in the evidence, unless the kernel skipped program runs
    # (counted, host-wide, in missed_events): once on 6.18 over IPv6 in CI, 5 of 6,
    # with the 6th SYN's retransmit event also unseen (its time 0 in the evidence)
    assert sent - missed <= seen <= sent, \
        dict(sent=sent, seen=seen, missed_events=missed, evidence=rec["evidence"])
    assert rec["duration_us"] >= 5_000_000, rec


@pytest.mark.parametrize("rule, said, verdict, errno, icmp", [
    ("reject with icmpx type port-unreachable", "Connection refused", "refused",
     "ECONNREFUSED", (3, 3)),
    ("reject with icmp type host-unreachable", "No route to host", "unreachable",
     "EHOSTUNREACH", (3, 1)),
    ("reject with icmp type net-unreachable", "Network is unreachable", "unreachable",
     "ENETUNREACH", (3, 0)),
], ids=["port-unreachable", "host-unreachable", "net-unreachable"])
def test_curl_icmp_reject_is_icmp_unreachable(ns, rule, said, verdict, errno, icmp):
    """An nft rule on this host rejects curl's SYN with an ICMP error
    (IcmpOutDestUnreachs +1 per SYN rejected). The ICMP reaches the socket
    while connect() still holds it, so the kernel keeps it as the soft error
    (TcpExtLockDroppedIcmps) and curl, polling, reads it from SO_ERROR at
    once and closes: curl exits 7 with that errno's text. The verdict is the
    ICMP's, not the close's, and this host's icmp_send shows in the evidence."""
    port = free_port()
    ns.listen(port)
    nft_syn_rule(ns, port, rule)
    res, rec, d = traced_curl(ns, port)
    assert res.rc == 7 and res.connect_error == said, res
    assert d["IcmpOutDestUnreachs"] == nft_packets(ns) >= 1, (d["IcmpOutDestUnreachs"], d)
    assert_verdict(rec, res, extra=icmp_problems(rec, errno, *icmp), verdict=verdict,
                   cause="icmp_unreachable", pid=res.pid, tid=res.pid, comm="curl",
                   syn_retrans=d["TcpExtTCPSynRetrans"])


def test_curl_unreachable_route_is_unreachable_no_route(ns):
    """198.51.100.0/24 is an `unreachable` route in the namespace: connect()
    fails at once with EHOSTUNREACH and no SYN is sent (TcpActiveOpens +0);
    curl: "Immediate connect fail ... No route to host", exit 7."""
    port = free_port()
    ns.add_unreachable_route()
    ns.assert_unreachable_route()
    res, rec, d = traced_curl(ns, port, host=UNREACH_ADDR)
    assert res.rc == 7 and res.connect_error == "No route to host", res
    assert d["TcpActiveOpens"] == 0 and d["TcpExtTCPSynRetrans"] == 0, d
    assert_verdict(rec, res, verdict="unreachable", cause="no_route", errno="EHOSTUNREACH",
                   pid=res.pid, tid=res.pid, comm="curl", daddr=UNREACH_ADDR, sport=0,
                   syn_retrans=0)


def test_curl_tcp_reset_reject_is_refused_rst_received(ns):
    """`reject with tcp reset`: nft answers the SYN with an RST that this
    host's TCP stack did not send (TcpOutRsts +0, the rule's counter 1,
    TcpAttemptFails +1); curl exits 7, "Connection refused"."""
    port = free_port()
    ns.listen(port)
    nft_syn_rule(ns, port, "reject with tcp reset")
    res, rec, d = traced_curl(ns, port)
    assert res.rc == 7 and res.connect_error == "Connection refused", res
    assert (d["TcpOutRsts"], d["TcpAttemptFails"], nft_packets(ns)) == (0, 1, 1), d
    assert_verdict(rec, res, verdict="refused", cause="rst_received", errno="ECONNREFUSED",
                   pid=res.pid, tid=res.pid, comm="curl", syn_retrans=0)
    assert events(rec, "rst_received") and not events(rec, "rst_sent"), rec["evidence"]


def http_server(ns, port, root):
    """python3 -m http.server on 127.0.0.1:port, serving the empty directory root."""
    p = ns.popen([PY, "-m", "http.server", "--bind", "127.0.0.1", "--directory", root, port])
    wait_listening(ns, port)
    return p


def slow_curl(ns, port, counters):
    """curl while nft drops the SYNs to port; once the kernel has
    retransmitted (TCPSynRetrans moved), an accept rule is put in front of
    the drop rule (whose counter then stays readable) and the next
    retransmit connects. Returns curl's result."""
    nft_syn_rule(ns, port, "drop")
    p = curl_start(ns, url(False, port))
    wait_until(lambda: counters.delta()["TcpExtTCPSynRetrans"] >= 1, 15,
               "a SYN retransmit")
    ns.exec(["nft", "insert", "rule", "inet", "realtest", "input", "tcp", "dport", str(port),
             "accept"])
    return curl_finish(p)


def test_curl_slow_after_dropped_syns_names_netfilter_drop(ns, tmp_path):
    """The first SYNs are dropped by nft, then let through: curl gets its
    200 after ~2 s; TCPSynRetrans == syn_retrans == the SYNs the rule
    dropped. SLOW names what cost the time: netfilter_drop."""
    port = free_port()
    http_server(ns, port, tmp_path)
    with Conntrace("-a", "--netns", ns.inode, "--port", port) as ct:
        k = Counters(ns)
        res = slow_curl(ns, port, k)
        one_verdict(ct, ns, port, "the SLOW verdict")
        d = k.delta()
        ct.stop()
    rec = only(ct, ns, port)
    assert res.rc == 0 and res.http_code == 200 and res.elapsed >= 0.9, res
    dropped = nft_packets(ns)
    assert dropped == d["TcpExtTCPSynRetrans"] >= 1, (dropped, d)
    assert_verdict(rec, res, verdict="slow", pid=res.pid, tid=res.pid, comm="curl",
                   syn_retrans=dropped, errno=None)
    assert drop_counts(rec) == dropped, rec["evidence"]
    assert rec["cause"] == "netfilter_drop", \
        f"SLOW must name the root cause of the lost SYNs: {rec}"


# -- nginx --------------------------------------------------------------------

def test_nginx_upstream_connects(ns):
    """nginx (master + 1 worker) proxies to two upstreams with
    proxy_connect_timeout 1s: one hidden by an nft drop rule, one closed.
    The worker gives up on the first after 1 s (nginx logs "upstream timed
    out (110: Connection timed out) while connecting to upstream", curl gets
    504; TcpAttemptFails +0 for it): abandoned/app_closed. The second is
    refused by this host's stack (502, "Connection refused"): refused/
    no_listener. Both verdicts name the worker (pid = tid = the worker, comm
    nginx), not the master."""
    front, up_drop, up_closed = free_port(), free_port(), free_port()
    nft_syn_rule(ns, up_drop, "drop")
    ngx = Nginx(ns, f"""
        server {{
            listen 127.0.0.1:{front};
            proxy_connect_timeout 1s;
            location /drop {{ proxy_pass http://127.0.0.1:{up_drop}; }}
            location /closed {{ proxy_pass http://127.0.0.1:{up_closed}; }}
        }}
        """)
    try:
        with Conntrace("-a", "--netns", ns.inode, "--port", up_drop) as ct_drop, \
                Conntrace("-a", "--netns", ns.inode, "--port", up_closed) as ct_closed:
            k = Counters(ns)
            r_drop = curl(ns, url(False, front, "/drop"))
            one_verdict(ct_drop, ns, up_drop, "nginx's abandoned upstream connect")
            d_drop = k.delta()
            r_closed = curl(ns, url(False, front, "/closed"))
            one_verdict(ct_closed, ns, up_closed, "nginx's refused upstream connect")
            d = k.delta()
            ct_drop.stop()
            ct_closed.stop()
    finally:
        ngx.stop()
    log = ngx.log()
    w = ngx.worker
    assert r_drop.rc == 0 and r_drop.http_code == 504, r_drop
    assert re.search(rf"\[error\] {w}#{w}: .*upstream timed out \(110: Connection timed out\) "
                     rf"while connecting to upstream.*127\.0\.0\.1:{up_drop}", log), log
    assert r_closed.rc == 0 and r_closed.http_code == 502, r_closed
    assert re.search(rf"\[error\] {w}#{w}: .*connect\(\) failed \(111: Connection refused\) "
                     rf"while connecting to upstream.*127\.0\.0\.1:{up_closed}", log), log
    assert d_drop["TcpAttemptFails"] == 0, d_drop
    assert d["TcpAttemptFails"] == 1 and d["TcpOutRsts"] == 1, d

    rec = only(ct_drop, ns, up_drop)
    assert_verdict(rec, log[-2000:], verdict="abandoned", cause="app_closed", pid=w, tid=w,
                   comm="nginx", daddr="127.0.0.1",
                   syn_retrans=d_drop["TcpExtTCPSynRetrans"])
    assert nft_packets(ns) == rec["syn_retrans"] + 1, (nft_packets(ns), rec)
    assert 900_000 <= rec["duration_us"] <= 2_000_000, rec
    rec = only(ct_closed, ns, up_closed)
    assert_verdict(rec, log[-2000:], verdict="refused", cause="no_listener",
                   errno="ECONNREFUSED", pid=w, tid=w, comm="nginx", syn_retrans=0)


def accept_queue(ns, port):
    """The listener's accept queue length (ss: Recv-Q of a listening socket)."""
    lines = sockets(ns, "listening", port, "sport")
    return int(lines[0].split()[0]) if lines else None


def test_nginx_started_before_conntrace_full_accept_queue(ns):
    """nginx listens (backlog=1) before conntrace starts, the usual case on a
    server; its worker is stopped (SIGSTOP: nothing is accepted). Two curls
    fill the accept queue; two more have their SYNs dropped on it
    (TcpExtListenOverflows) and give up after --connect-timeout 2 (exit 28).
    conntrace --direction in found the listener at start-up (iter/tcp), so
    each dropped curl gets an inbound verdict, by the source port curl was
    told to use (--local-port), with cause accept_queue_full; no listen() was
    seen, so no owner is named."""
    front = free_port()
    ngx = Nginx(ns, f"""
        server {{
            listen 127.0.0.1:{front} backlog=1;
            location / {{ return 200; }}
        }}
        """)
    os.kill(ngx.worker, signal.SIGSTOP)
    held = []
    try:
        with Conntrace("-a", "--netns", ns.inode, "--port", front, "--direction", "in") as ct:
            k = Counters(ns)
            ports = [free_port() for _ in range(4)]
            for p in ports[:2]:
                held.append(curl_start(ns, url(False, front), "--local-port", p,
                                       "--max-time", "20"))
            wait_until(lambda: accept_queue(ns, front) == 2, 10,
                       "two connections in nginx's accept queue")
            dropped = [curl_start(ns, url(False, front), "--local-port", p,
                                  "--connect-timeout", "2") for p in ports[2:]]
            res = [curl_finish(p) for p in dropped]
            d = k.delta()
            ct.stop()
    finally:
        os.kill(ngx.worker, signal.SIGCONT)
        for p in held:
            curl_finish(p)
        ngx.stop()
    for r in res:
        assert r.rc == 28, r        # curl: "Connection timed out"
    assert d["TcpExtListenOverflows"] >= 2, d
    recs = ct.verdicts(lambda r: r.get("direction") == "inbound" and r["dport"] == front)
    for p in ports[2:]:
        mine = [r for r in recs if r["sport"] == p]
        assert len(mine) == 1, f"inbound verdicts for curl's port {p}: {mine} (all: {recs})"
        v = mine[0]
        assert v["verdict"] in ("pending", "dropped") and v["cause"] == "accept_queue_full", v
        assert v["pid"] is None and v["comm"] is None, v
        assert "accept_queue_full" in [e["event"] for e in v["evidence"]], v


def test_curl_storm_summary_counts_both_directions(ns):
    """conntrace as a server runs it by default (--direction both), with -a,
    while curl fetches 100 pages from nginx (keepalive_timeout 0: one
    connection each) and then 150 URLs of a closed port (curl goes on after
    each refusal). On loopback each attempt is seen from both ends: 100 ok and
    150 refused outgoing (TcpActiveOpens), the same incoming. The summary
    says so (inbound_verdicts the incoming share), its flows equal the sum of
    its verdicts, and it counts what was printed."""
    front, closed = free_port(), free_port()
    ngx = Nginx(ns, f"""
        server {{
            listen 127.0.0.1:{front};
            keepalive_timeout 0;
            location / {{ return 200; }}
        }}
        """)
    try:
        with Conntrace("-a", "--netns", ns.inode, "--direction", "both") as ct:
            k = Counters(ns)
            ok = curl(ns, f"http://127.0.0.1:{front}/[1-100]")
            refused = curl(ns, f"http://127.0.0.1:{closed}/[1-150]")
            d = k.delta()
            summary = ct.stop()
    finally:
        ngx.stop()
    assert ok.stdout.count("http_code=200") == 100, ok
    assert refused.rc == 7 and refused.stdout.count("http_code=000") == 150, refused
    assert d["TcpActiveOpens"] == 250 and d["TcpAttemptFails"] == 150, d
    printed = {}
    for r in ct.verdicts():
        key = (r["direction"], r["verdict"], r["dport"])
        printed[key] = printed.get(key, 0) + 1
    assert printed == {("outbound", "ok", front): 100, ("inbound", "ok", front): 100,
                       ("outbound", "refused", closed): 150,
                       ("inbound", "refused", closed): 150}, printed
    assert summary["lost_records"] == 0, summary
    assert summary["inbound_verdicts"]["ok"] == 100, summary
    assert summary["inbound_verdicts"]["refused"] == 150, summary
    assert sum(summary["inbound_verdicts"].values()) == 250, summary
    assert summary["verdicts"]["ok"] == 200 and summary["verdicts"]["refused"] == 300, summary
    assert summary["flows"] == sum(summary["verdicts"].values()) == 500, summary


# -- haproxy ------------------------------------------------------------------

def test_haproxy_health_checks_refused(ns):
    """haproxy (2 threads) checks two servers every 500 ms: one port has no
    listener (this host's stack sends an RST: TcpOutRsts counts them), one is
    rejected by nft with a TCP reset. haproxy marks both DOWN with
    L4CON "Connection refused". Every check is one attempt the kernel failed
    (TcpAttemptFails), and each gets exactly one verdict: refused/no_listener
    or refused/rst_received, pid = haproxy, tid = one of its threads."""
    closed, reset = free_port(), free_port()
    nft_syn_rule(ns, reset, "reject with tcp reset")
    with Conntrace("-a", "--netns", ns.inode, "--port", closed) as ct_closed, \
            Conntrace("-a", "--netns", ns.inode, "--port", reset) as ct_reset:
        def v_closed():
            return ct_closed.verdicts(flow(ns, closed))

        def v_reset():
            return ct_reset.verdicts(flow(ns, reset))

        k = Counters(ns)
        hap = Haproxy(ns, f"""
            backend be
                server closed 127.0.0.1:{closed} check inter 500ms
                server reset 127.0.0.1:{reset} check inter 500ms
            """)
        try:
            tids = threads(hap.pid)
            wait_until(lambda: len(v_closed()) >= 3 and len(v_reset()) >= 3, 15,
                       "three checks of each server")
            # haproxy may start its worker threads after its first checks
            tids |= threads(hap.pid)
            st_closed, st_reset = hap.server("closed"), hap.server("reset")
        finally:
            rc, err = hap.stop()
        d = k.delta()           # haproxy is gone: every attempt has ended
        wait_until(lambda: len(v_closed()) + len(v_reset()) >= d["TcpAttemptFails"], 10,
                   f"{d['TcpAttemptFails']} verdicts (TcpAttemptFails)")
        # nothing more may come: a stop drains the ring and decides every flow
        # left before its summary, so an extra verdict would be printed by then
        ct_closed.stop()
        ct_reset.stop()
    for st in (st_closed, st_reset):
        assert (st["status"], st["check_status"], st["last_chk"]) == \
            ("DOWN", "L4CON", "Connection refused"), st
    assert re.search(r'Server be/closed is DOWN, reason: Layer4 connection problem, '
                     r'info: "Connection refused"', err), err
    r_closed, r_reset = v_closed(), v_reset()
    assert len(r_closed) + len(r_reset) == d["TcpAttemptFails"], (len(r_closed), len(r_reset), d)
    assert len(r_closed) == d["TcpOutRsts"], (len(r_closed), d)
    assert len(r_reset) == nft_packets(ns), (len(r_reset), nft_packets(ns))
    assert d["TcpExtTCPSynRetrans"] == 0, d
    for recs, cause in ((r_closed, "no_listener"), (r_reset, "rst_received")):
        for rec in recs:
            assert_verdict(rec, verdict="refused", cause=cause, errno="ECONNREFUSED",
                           pid=hap.pid, comm="haproxy", netns=ns.inode, syn_retrans=0)
            assert rec["tid"] in tids, (rec, tids)


# -- wrk, ab: a full accept queue -----------------------------------------------

def test_wrk_full_accept_queue_times_out_accept_queue_full(ns):
    """A listener with listen(fd, 1) that never accepts holds 2 connections;
    every later SYN is dropped on its full accept queue
    (TcpExtListenOverflows). wrk -c4 for 5 s: 2 attempts connect (ok), the
    others retransmit until the kernel gives up after ~3 s (tcp_syn_retries=1;
    TcpAttemptFails counts them: timeout/accept_queue_full), wrk reconnects,
    and the attempts still connecting when it stops are abandoned. Every
    dropped SYN is one of the verdicts' syn_retrans + 1."""
    port = free_port()
    ns.sysctl("net.ipv4.tcp_syn_retries", 1)
    ns.listen(port, backlog=1, no_accept=True)
    with Conntrace("-a", "--netns", ns.inode, "--port", port) as ct:
        k = Counters(ns)
        p = ns.popen(["wrk", "-t1", "-c4", "-d5s", "--timeout", "30s", url(False, port)])
        out, err = p.communicate(timeout=60)
        d = k.delta()           # wrk has exited: every attempt has ended
        wait_until(lambda: len(ct.verdicts(flow(ns, port))) >= d["TcpActiveOpens"], 15,
                   f"{d['TcpActiveOpens']} verdicts (TcpActiveOpens)")
        ct.stop()               # drains the ring: any extra verdict is printed by then
    out = out.decode()
    assert p.returncode == 0 and re.search(r"\b0 requests in", out), (out, err)
    recs = ct.verdicts(flow(ns, port))
    assert len(recs) == d["TcpActiveOpens"], (len(recs), d)
    by = {}
    for r in recs:
        by.setdefault(r["verdict"], []).append(r)
    assert set(by) <= {"ok", "timeout", "abandoned"}, {v: len(r) for v, r in by.items()}
    assert len(by.get("ok", [])) == 2, by.get("ok")
    timeouts = by.get("timeout", [])
    assert len(timeouts) == d["TcpAttemptFails"] >= 1, (len(timeouts), d)
    for r in recs:
        assert (r["pid"], r["comm"]) == (p.pid, "wrk"), r
    for r in timeouts:
        assert_verdict(r, verdict="timeout", cause="accept_queue_full", errno="ETIMEDOUT")
        assert not full_queue_problems(r), (full_queue_problems(r), r)
    for r in by.get("abandoned", []):
        assert r["cause"] == "app_closed", r
    failed = [r for r in recs if r["verdict"] != "ok"]
    assert sum(r["syn_retrans"] for r in recs) == d["TcpExtTCPSynRetrans"], d
    assert sum(r["syn_retrans"] + 1 for r in failed) == d["TcpExtListenOverflows"], \
        ([(r["verdict"], r["syn_retrans"]) for r in failed], d["TcpExtListenOverflows"])


def test_ab_stalled_listener_is_slow_accept_queue_full(ns):
    """A server with listen(fd, 1) that does not accept for a while. Two
    curls connect (ok) and wait in its accept queue, which is then full (a
    queue of 1 holds 2). ab's SYN and its first retransmit are dropped on
    the full queue (TcpExtListenOverflows). Then the server accepts and
    answers both curls, and ab's next retransmit gets through: ab completes
    its request. ab's attempt is SLOW, and its cause is the full accept
    queue, whose overflows are exactly its lost SYNs."""
    port = free_port()
    srv = StalledServer(ns, port, backlog=1)
    with Conntrace("-a", "--netns", ns.inode, "--port", port) as ct:
        k = Counters(ns)
        curls = [curl_start(ns, url(False, port)) for _ in range(2)]
        wait_until(lambda: len(ct.verdicts(flow(ns, port))) >= 2, 15,
                   "the two curls connected")
        p = ns.popen(["ab", "-n", "1", "-c", "1", "-s", "20", url(False, port)])
        wait_until(lambda: k.delta()["TcpExtListenOverflows"] >= 2, 15,
                   "ab's SYN and a retransmit dropped on the full queue")
        srv.release()
        out, err = p.communicate(timeout=60)
        got = [curl_finish(c) for c in curls]
        d = k.delta()
        wait_until(lambda: len(ct.verdicts(flow(ns, port))) >= 3, 15, "3 verdicts")
        ct.stop()               # drains the ring: any extra verdict is printed by then
    out = out.decode()
    assert p.returncode == 0, (out, err)
    assert re.search(r"Complete requests:\s+1\n", out) and \
        re.search(r"Failed requests:\s+0\n", out), out
    assert all(c.rc == 0 and c.http_code == 200 for c in got), got
    recs = ct.verdicts(flow(ns, port))
    assert sorted((r["verdict"], r["pid"], r["comm"]) for r in recs) == sorted(
        [("ok", c.pid, "curl") for c in got] + [("slow", p.pid, "ab")]), recs
    slow = next(r for r in recs if r["verdict"] == "slow")
    assert d["TcpExtListenOverflows"] == d["TcpExtTCPSynRetrans"] == slow["syn_retrans"] >= 2, \
        (d["TcpExtListenOverflows"], d["TcpExtTCPSynRetrans"], slow)
    assert_verdict(slow, verdict="slow", pid=p.pid, tid=p.pid, comm="ab", errno=None)
    # the queue was full (2 queued, limit 1) while ab's SYNs were dropped
    problems = full_queue_problems(slow)
    if slow["cause"] != "accept_queue_full":
        problems.append(f"cause {slow['cause']!r}: SLOW must name the root cause of the "
                        "lost SYNs, accept_queue_full")
    assert not problems, f"{problems}\nrecord: {slow}"


# -- a process killed while connecting ----------------------------------------

def test_socat_killed_while_connecting_is_abandoned(ns):
    """socat connects (blocking) to a listener hidden by an nft drop rule and
    is killed with SIGKILL while its socket is in SYN-SENT: the kernel closes
    the socket as the process exits; it never failed the attempt
    (TcpAttemptFails +0). Verdict abandoned/app_closed, pid = socat."""
    port = free_port()
    ns.listen(port)
    nft_syn_rule(ns, port, "drop")
    with Conntrace("-a", "--netns", ns.inode, "--port", port) as ct:
        k = Counters(ns)
        p = ns.popen(["socat", "-u", f"TCP:127.0.0.1:{port}", "-"])
        wait_until(lambda: sockets(ns, "syn-sent", port), 10, "socat's SYN-SENT socket")
        os.kill(p.pid, signal.SIGKILL)
        p.wait(10)
        rec = one_verdict(ct, ns, port, "the verdict for the killed socat")
        d = k.delta()
        ct.stop()
    rec = only(ct, ns, port)
    assert p.returncode == -signal.SIGKILL
    assert d["TcpAttemptFails"] == 0 and d["TcpActiveOpens"] == 1, d
    assert_verdict(rec, verdict="abandoned", cause="app_closed", pid=p.pid, tid=p.pid,
                   comm="socat", syn_retrans=d["TcpExtTCPSynRetrans"])


# -- the default invocation ---------------------------------------------------

def test_default_invocation_prints_failures_and_slow_not_ok(ns, tmp_path):
    """Without -a or --verdict, conntrace prints the attempts that failed or
    struggled, never the ones that went well: an OK curl, a SLOW one (SYNs
    dropped by nft until the kernel has retransmitted) and a REFUSED one
    (the server stopped), watched by a default JSON instance and a default
    text instance (both --port on the test's port)."""
    port = free_port()
    srv = http_server(ns, port, tmp_path)
    text = None
    with Conntrace("--netns", ns.inode, "--port", port) as ct:
        try:
            text = TextConntrace(conntrace_path(), "--netns", ns.inode, "--port", port)
            k = Counters(ns)
            ok = curl(ns, url(False, port))
            slow = slow_curl(ns, port, k)
            stop_process(srv)
            refused = curl(ns, url(False, port))
            ct.wait_for(lambda r: flow(ns, port)(r) and r["verdict"] == "refused",
                        what="the refused verdict")
            text.wait_line(lambda line: " REFUSED " in line, 20, "REFUSED line")
            # an OK verdict, if one were printed, would be by the end of the
            # stops: each drains its ring and decides every flow left
            lines = text.stop()
            ct.stop()
        finally:
            if text:
                text.kill()
    assert ok.rc == 0 and ok.http_code == 200, ok
    assert slow.rc == 0 and slow.http_code == 200 and slow.elapsed >= 0.9, slow
    assert refused.rc == 7 and refused.connect_error == "Connection refused", refused

    # (--netns: only this namespace's attempts reach either conntrace)
    assert all(flow(ns, port)(r) for r in ct.verdicts()), ct.verdicts()
    got = sorted((r["verdict"], r["pid"]) for r in ct.verdicts())
    assert got == sorted([("slow", slow.pid), ("refused", refused.pid)]), ct.verdicts()

    rows = []
    for line in lines[lines.index(next(x for x in lines if x.startswith("TIME "))) + 1:]:
        if line.startswith("-- "):      # the summary line at exit
            continue
        cols = line.split()
        assert len(cols) >= 9 and re.fullmatch(r"\d\d:\d\d:\d\d", cols[0]), line
        assert cols[5] in ("out", "in"), line    # DIR: both by default
        if cols[5] == "out" and int(cols[1]) in (ok.pid, slow.pid, refused.pid):
            rows.append((cols[6], int(cols[1]), cols[2], cols[4]))
    assert sorted(rows) == sorted([
        ("REFUSED", refused.pid, "curl", f"127.0.0.1:{port}"),
        ("SLOW", slow.pid, "curl", f"127.0.0.1:{port}")]), lines
