# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""The verdict stream and a full accept queue: a listener that never accepts,
listen(fd, 1), and 8 clients in the same namespace. The first two are queued
(a queue of 1 holds 2), the SYNs of the others are dropped on the full queue:
they time out with cause accept_queue_full, and the listener's
listen_overflow records add up to the namespace's ListenOverflows delta."""

import time

from ctharness import Conntrace, NetNS, free_port

CLIENTS = 8


def test_full_accept_queue_in_the_verdict_stream():
    port = free_port()
    with NetNS() as ns, Conntrace("-a") as ct:
        ns.sysctl("net.ipv4.tcp_syn_retries", 2)   # the dropped ones give up after ~7 s
        ns.listen(port, backlog=1, no_accept=True)
        before = ns.counter("ListenOverflows")
        clients = [ns.client("127.0.0.1", port, name=f"ctc-aq{i}") for i in range(CLIENTS)]
        results = [c.finish(timeout=60) for c in clients]
        # the last readings of the listener come once a second
        time.sleep(2.5)
        overflows = ns.counter("ListenOverflows") - before
        records = list(ct.records)
        ct.stop()

    timed_out = [(c, r) for c, r in zip(clients, results) if r["result"] == "ETIMEDOUT"]
    connected = [(c, r) for c, r in zip(clients, results) if r["result"] == "ok"]
    assert len(connected) == 2 and len(timed_out) == CLIENTS - 2, results
    assert overflows > 0

    verdicts = {r["pid"]: r for r in records
                if r.get("type") == "verdict" and r.get("netns") == ns.inode
                and r.get("dport") == port}
    for c, _ in timed_out:
        v = verdicts.get(c.pid)
        assert v, f"no verdict for client {c.pid}"
        assert (v["verdict"], v["cause"]) == ("timeout", "accept_queue_full"), v
        assert "accept queue" in v["detail"], v["detail"]
        assert any(e["event"] == "accept_queue_full" for e in v["evidence"]), v["evidence"]
    for c, _ in connected:
        assert verdicts[c.pid]["verdict"] == "ok", verdicts[c.pid]

    ovf = [r for r in records if r.get("type") == "listen_overflow"
           and r.get("netns") == ns.inode and r.get("lport") == port]
    assert ovf, "no listen_overflow record for the full listener"
    assert all(r["laddr"] == "127.0.0.1" and r["accept_queue_max"] == 1 for r in ovf), ovf
    # only SYNs were dropped here (no ACK-time overflow), so the listener's
    # sk_drops is exact: the records add up to the namespace counter
    assert sum(r["overflows"] for r in ovf) == overflows, (ovf, overflows)
    assert ovf[-1]["overflows_total"] == overflows, ovf[-1]
    # at most one record a second per listener
    stamps = [r["ts"] for r in ovf]
    assert len(stamps) == len(set(s[:19] for s in stamps)), stamps
