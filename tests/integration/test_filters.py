# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Output filters: --port and --verdict, each on its own conntrace.

Pattern: the attempts that must be filtered out are made first, the one
that must show last; once its verdict is seen conntrace is stopped and the
whole output is checked. Every attempt has ended before the stop, and a
stop drains the ring and decides every flow left before the summary
(user/collector.c), so a verdict the filter failed to hide would be printed
by then: no settle time is needed. Each conntrace is also filtered to the
test's namespace (--netns), so its summary counts this test's attempts
only: what --verdict hid must still be counted there."""

import signal

import pytest

from ctharness import UNREACH_ADDR, Conntrace, flow, free_port, related


def refused(ns, port, comm):
    c = ns.client("127.0.0.1", port, name=comm)
    assert c.finish()["result"] == "ECONNREFUSED"
    return c


def test_port_filter(netns):
    keep, other = free_port(), free_port()
    with Conntrace("--netns", netns.inode, "--port", keep) as ct:
        refused(netns, other, "ctc-fport-x")
        c = refused(netns, keep, "ctc-fport")
        rec = ct.wait_for(flow(netns, keep), context=related(netns, keep),
                          what=f"the refused verdict for --port {keep}")
        assert (rec["verdict"], rec["pid"], rec["comm"]) == ("refused", c.pid, "ctc-fport"), rec
        summary = ct.stop(signal.SIGTERM)    # SIGTERM ends it like SIGINT: exit 0, summary
    # --port matches either end of the attempt
    wrong = ct.verdicts(lambda r: keep not in (r["dport"], r["sport"]))
    assert not wrong, f"--port {keep} printed other ports: {wrong}"
    # filtered in the kernel: the other attempt is not even a flow there (user
    # space filters again, so only the kernel's flow count shows this)
    assert {v: n for v, n in summary["verdicts"].items() if n} == {"refused": 1}, summary
    assert summary["flows"] == 1, summary


@pytest.mark.parametrize("verdicts", ["refused", "refused,abandoned"])
def test_verdict_filter(netns, verdicts):
    wanted = set(verdicts.split(","))
    p_unreach, p_abandon, p_refused = free_port(), free_port(), free_port()
    netns.add_unreachable_route()
    netns.listen(p_abandon)
    netns.drop_syns(p_abandon)
    with Conntrace("--netns", netns.inode, "--verdict", verdicts) as ct:
        netns.assert_unreachable_route()
        c = netns.client(UNREACH_ADDR, p_unreach, name="ctc-fv-unr")
        assert c.finish()["result"] in ("EHOSTUNREACH", "ENETUNREACH")
        c = netns.client("127.0.0.1", p_abandon, name="ctc-fv-aband", nonblock=True,
                         abandon_after=500)
        assert c.finish()["result"] == "abandoned"
        c = refused(netns, p_refused, "ctc-fv-ref")
        rec = ct.wait_for(flow(netns, p_refused), context=related(netns, p_refused),
                          what=f"the refused verdict with --verdict {verdicts}")
        assert (rec["verdict"], rec["pid"]) == ("refused", c.pid), rec
        if "abandoned" in wanted:
            rec = ct.wait_for(flow(netns, p_abandon), context=related(netns, p_abandon),
                              what=f"the abandoned verdict with --verdict {verdicts}")
            assert rec["verdict"] == "abandoned", rec
        summary = ct.stop()
    wrong = ct.verdicts(lambda r: r["verdict"] not in wanted)
    assert not wrong, f"--verdict {verdicts} printed: {wrong}"
    assert not ct.verdicts(flow(netns, p_unreach)), "unreachable attempt shown"
    # the hidden ones were seen and decided all the same: the summary counts
    # every attempt of the namespace, printed or not
    counted = {v: n for v, n in summary["verdicts"].items() if n}
    assert counted == {"unreachable": 1, "abandoned": 1, "refused": 1}, summary


def test_pid_filter(netns):
    # Both clients exist (and are parked before connect()) before conntrace
    # starts, so the filter can name one of them.
    port_a, port_b = free_port(), free_port()
    a = netns.client("127.0.0.1", port_a, name="ctc-fpid-a", wait_stdin=True)
    b = netns.client("127.0.0.1", port_b, name="ctc-fpid-b", wait_stdin=True)
    with Conntrace("--netns", netns.inode, "--pid", a.pid) as ct:
        b.go()
        assert b.finish()["result"] == "ECONNREFUSED"
        a.go()
        assert a.finish()["result"] == "ECONNREFUSED"
        rec = ct.wait_for(flow(netns, port_a), context=related(netns, port_a),
                          what=f"the refused verdict with --pid {a.pid}")
        assert (rec["verdict"], rec["pid"], rec["tid"]) == ("refused", a.pid, a.pid), rec
        summary = ct.stop()
    wrong = ct.verdicts(lambda r: r["pid"] != a.pid)
    assert not wrong, f"--pid {a.pid} printed other processes: {wrong}"
    assert {v: n for v, n in summary["verdicts"].items() if n} == {"refused": 1}, summary
    assert summary["flows"] == 1, summary     # -p is judged in the kernel too
