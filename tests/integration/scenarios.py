# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""The connection-attempt scenarios, runnable with or without conntrace.

Each scenario runs in its own fresh namespace, makes exactly one attempt
with ctclient (comm "ctc-<name>") to a port unique in the session, asserts
what the kernel did (the client's errno, the namespace's TcpExt
TCPSynRetrans delta) and, traced, waits for that attempt's verdict from a
conntrace filtered to the namespace (matched by netns inode and dport only,
so a wrong pid or cause is reported as a mismatch instead of a timeout).
"""

import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Optional

from ctharness import (UNREACH_ADDR, Conntrace, NetNS, cgroup2_id_of_self, check_verdict,
                       flow, free_port, parse_ts, related)

SLACK_MS = 1000   # conntrace's duration may exceed the client's own by at most this


@dataclass
class Spec:
    name: str
    verdict: str
    cause: Optional[str]          # None: not checked (ok)
    family: str
    daddr: str
    saddr: Optional[str]          # None: not checked
    attempt: Callable             # (ns, port, comm, spec) -> finished Client
    errnos: Callable              # client result -> allowed errno values in the record
    retrans: tuple = (0, 0)       # kernel fact: allowed TCPSynRetrans delta (min, max)
    min_elapsed_ms: int = 0       # kernel fact: the client waited at least this long
    sport_may_be_zero: bool = False

    @property
    def v6(self):
        return self.family == "ipv6"

    @property
    def comm(self):
        return f"ctc-{self.name}"[:15]


@dataclass
class Outcome:
    spec: Spec
    ns_name: str
    netns: int
    dport: int
    client: dict                  # ctclient's result line
    spawned_pid: int
    wall_start: float
    wall_end: float
    syn_retrans_delta: int
    record: Optional[dict] = None
    notes: list = field(default_factory=list)


def lo(spec):
    return "::1" if spec.v6 else "127.0.0.1"


# -- attempts ---------------------------------------------------------------

def attempt_ok(ns, port, comm, spec):
    ns.listen(port, v6=spec.v6)
    c = ns.client(lo(spec), port, v6=spec.v6, name=comm)
    c.finish()
    return c


def attempt_refused(ns, port, comm, spec):
    c = ns.client(lo(spec), port, v6=spec.v6, name=comm)   # nothing listens
    c.finish()
    return c


def attempt_timeout(ns, port, comm, spec):
    # net.ipv4.tcp_syn_retries applies to IPv6 too. With 2 and 6.18's
    # tcp_syn_linear_timeouts=4 the budget is 1+2+4 = 7 s, in which the
    # kernel retransmits at ~1,2,3,4,6 s: 5 retransmits, ETIMEDOUT at ~7 s.
    ns.sysctl("net.ipv4.tcp_syn_retries", 2)
    ns.listen(port, v6=spec.v6)          # a listener is there; the firewall hides it
    ns.drop_syns(port, table=f"cttest{port}")   # its own: scenarios may share a namespace
    c = ns.client(lo(spec), port, v6=spec.v6, name=comm)
    c.finish(timeout=60)
    return c


def attempt_slow(ns, port, comm, spec):
    # Drop the SYNs until the kernel has retransmitted once (~1 s: the SYN and
    # that retransmit are both lost), then delete the rule: the next
    # retransmit (~1 s later) connects. Watching the counter instead of
    # sleeping a fixed ~1.5 s keeps this deterministic on a loaded machine:
    # normally 2 retransmits, never 0.
    ns.listen(port, v6=spec.v6)
    ns.drop_syns(port, table=f"cttest{port}")
    before = ns.syn_retrans()
    c = ns.client(lo(spec), port, v6=spec.v6, name=comm, announce=True)
    deadline = time.monotonic() + 15
    while ns.syn_retrans() - before < 1:
        assert time.monotonic() < deadline, "no SYN retransmit within 15 s"
        time.sleep(0.05)
    ns.undrop(table=f"cttest{port}")
    c.finish(timeout=60)
    return c


def attempt_abandoned(ns, port, comm, spec):
    ns.listen(port, v6=spec.v6)
    ns.drop_syns(port, table=f"cttest{port}")
    c = ns.client(lo(spec), port, v6=spec.v6, name=comm, nonblock=True, abandon_after=500)
    c.finish()
    return c


def attempt_unreachable(ns, port, comm, spec):
    # The only non-loopback address: behind an unreachable route in this
    # namespace, so connect() fails locally and nothing is ever sent.
    ns.add_unreachable_route()
    ns.assert_unreachable_route()
    c = ns.client(UNREACH_ADDR, port, v6=False, name=comm)
    c.finish()
    return c


def _name(r):
    return r["result"]


SPECS = {s.name: s for s in [
    Spec("ok4", "ok", None, "ipv4", "127.0.0.1", "127.0.0.1", attempt_ok,
         lambda r: (None,)),
    Spec("ok6", "ok", None, "ipv6", "::1", "::1", attempt_ok, lambda r: (None,)),
    Spec("refused4", "refused", "no_listener", "ipv4", "127.0.0.1", "127.0.0.1",
         attempt_refused, lambda r: ("ECONNREFUSED",)),
    Spec("refused6", "refused", "no_listener", "ipv6", "::1", "::1",
         attempt_refused, lambda r: ("ECONNREFUSED",)),
    Spec("timeout4", "timeout", "netfilter_drop", "ipv4", "127.0.0.1", "127.0.0.1",
         attempt_timeout, lambda r: ("ETIMEDOUT",), retrans=(2, 10), min_elapsed_ms=5000),
    Spec("timeout6", "timeout", "netfilter_drop", "ipv6", "::1", "::1",
         attempt_timeout, lambda r: ("ETIMEDOUT",), retrans=(2, 10), min_elapsed_ms=5000),
    Spec("slow4", "slow", "netfilter_drop", "ipv4", "127.0.0.1", "127.0.0.1",
         attempt_slow, lambda r: (None,), retrans=(1, 4), min_elapsed_ms=900),
    # The application gave up; the socket never had an error. connect()
    # itself returned EINPROGRESS, so accept that name too.
    Spec("abandoned4", "abandoned", "app_closed", "ipv4", "127.0.0.1", "127.0.0.1",
         attempt_abandoned, lambda r: (None, "EINPROGRESS"), retrans=(0, 1),
         min_elapsed_ms=500),
    Spec("unreach4", "unreachable", "no_route", "ipv4", UNREACH_ADDR, None,
         attempt_unreachable, lambda r: (_name(r),), sport_may_be_zero=True),
]}

# kernel facts: what ctclient must see
EXPECTED_RESULT = {
    "ok": ("ok",), "slow": ("ok",), "refused": ("ECONNREFUSED",),
    "timeout": ("ETIMEDOUT",), "abandoned": ("abandoned",),
    "unreachable": ("EHOSTUNREACH", "ENETUNREACH"),
}


def run_scenario(spec, traced=False):
    """Run one scenario in a fresh namespace (deleted on return, even on
    failure); assert the kernel facts. traced: under a `conntrace -j -a`
    filtered in the kernel to that namespace (--netns), started before the
    attempt: wait for the verdict, stop it, and check that the attempt got
    exactly one verdict, the client's, and the summary counts it."""
    with NetNS() as ns:
        port = free_port()
        before = ns.syn_retrans()
        ct = Conntrace("-a", "--netns", ns.inode).start() if traced else None
        try:
            wall_start = time.time()
            c = spec.attempt(ns, port, spec.comm, spec)
            delta = ns.syn_retrans() - before
            r = c.result
            where = f"{spec.name} in {ns.name}: client {json.dumps(r)}, TCPSynRetrans delta {delta}"
            assert r["result"] in EXPECTED_RESULT[spec.verdict], f"kernel: {where}"
            assert spec.retrans[0] <= delta <= spec.retrans[1], f"kernel: {where}"
            assert r["elapsed_ms"] >= spec.min_elapsed_ms, f"kernel: {where}"
            assert r["comm"] == spec.comm, f"kernel: {where}"
            if not spec.sport_may_be_zero:
                assert r["sport"] > 0, f"no local port seen: {where}"
            out = Outcome(spec, ns.name, ns.inode, port, r, c.pid, wall_start, c.wall_end, delta)
            if ct is not None:
                out.record = ct.wait_for(
                    flow(ns, port), context=related(ns, port),
                    what=f"the {spec.name} verdict (netns {ns.inode}, dport {port}, pid {c.pid})")
                # nothing may be retransmitted after the attempt ended
                again = ns.syn_retrans() - before
                assert again == delta, f"kernel: TCPSynRetrans moved on: {delta} -> {again}"
                summary = ct.stop()
                check_alone(ct, summary, out)
        finally:
            if ct is not None:
                ct.kill()
        out.wall_end = time.time()
        return out


def check_alone(ct, summary, out):
    """The namespace's only attempt got one verdict, and nothing else did
    (a listener's accepted socket, say); the summary counts exactly it."""
    recs = ct.verdicts(phase=None)
    assert recs == [out.record], \
        f"{out.spec.name}: one verdict wanted, for pid {out.spawned_pid}: {json.dumps(recs)}"
    counted = {v: n for v, n in summary["verdicts"].items() if n}
    assert counted == {out.record["verdict"]: 1}, f"{out.spec.name}: summary {summary}"


def run_all(specs, traced=False):
    """Run scenarios concurrently (the timeouts take ~7 s each); returns
    name -> Outcome, or the exception that scenario raised."""
    results = {}
    with ThreadPoolExecutor(max_workers=max(1, len(specs))) as ex:
        futs = {s.name: ex.submit(run_scenario, s, traced) for s in specs}
        for name, f in futs.items():
            try:
                results[name] = f.result()
            except BaseException as e:   # re-raised by that scenario's test
                results[name] = e
    return results


def mismatches(out):
    """Everything wrong with out.record, as readable strings."""
    s, rec, c = out.spec, out.record, out.client
    p = check_verdict(rec)
    if p:
        return p

    def want(key, expected):
        if rec[key] != expected:
            p.append(f"{key}: got {rec[key]!r}, want {expected!r}")

    want("verdict", s.verdict)
    if s.cause is not None:
        want("cause", s.cause)
    want("pid", out.spawned_pid)
    want("comm", s.comm)
    want("netns", out.netns)
    want("family", s.family)
    want("daddr", s.daddr)
    want("dport", out.dport)
    if s.saddr is not None:
        want("saddr", s.saddr)
    if s.sport_may_be_zero:
        if rec["sport"] not in (0, c["sport"]):
            p.append(f"sport: got {rec['sport']}, want 0 or {c['sport']}")
    else:
        want("sport", c["sport"])
    want("syn_retrans", out.syn_retrans_delta)     # == the namespace's TCPSynRetrans delta
    allowed = s.errnos(c)
    if rec["errno"] not in allowed:
        p.append(f"errno: got {rec['errno']!r}, want one of {allowed}")
    if s.verdict != "ok" and not rec["evidence"]:
        p.append("evidence is empty for a non-ok verdict")
    dur_ms = rec["duration_us"] / 1000
    if dur_ms > c["elapsed_ms"] + SLACK_MS:
        p.append(f"duration_us {rec['duration_us']} exceeds the client's "
                 f"{c['elapsed_ms']} ms by more than {SLACK_MS} ms")
    if dur_ms < s.min_elapsed_ms * 0.8:
        p.append(f"duration_us {rec['duration_us']} < 0.8 * {s.min_elapsed_ms} ms "
                 "(the kernel made the client wait at least that long)")
    ts = parse_ts(rec["ts"])
    if not out.wall_start - 30 <= ts <= out.wall_end + 30:
        p.append(f"ts {rec['ts']} is outside the scenario's run "
                 f"({out.wall_start:.3f}..{out.wall_end:.3f})")
    cg = cgroup2_id_of_self()
    if cg is not None:
        want("cgroup_id", cg)
    return p
