# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""conntrace as users run it, without -a and without --verdict.

The service: the arguments of ExecStart in scripts/conntrace.service (read
from the unit, so a change there is tested), with the output file and the
metrics port moved to the test's own (the metrics on the loopback of the
test namespace, where conntrace runs) and `--netns` added so that only the
test's attempts count. The file must get the failures and no OK attempt;
`/metrics` must count the OK attempts too (the kernel sends every attempt
when --metrics is on); SIGTERM (the unit's KillSignal) ends it with exit 0
and a summary. The default text invocation (`conntrace`, only --netns
added) watches the same attempts: a TIMEOUT and a REFUSED line, no OK line.
The kernel's counters (TcpActiveOpens, TcpAttemptFails) are the oracle for
how many attempts there were and how many failed."""

import json
import os
import re
import shlex
import signal
from concurrent.futures import ThreadPoolExecutor

from ctharness import ROOT, conntrace_path, free_port
from realclients import (Counters, TextConntrace, make_ns, nft_packets, nft_syn_rule, sockets,
                         wait_until)

UNIT = ROOT / "scripts" / "conntrace.service"
OK_CONNECTS = 3


def unit_args(out, metrics):
    """ExecStart's arguments, with --output and --metrics replaced."""
    text = UNIT.read_text().splitlines()
    line = next(x for x in text if x.startswith("ExecStart="))
    # the unit's default options, as systemd expands $CONNTRACE_OPTS (word-split)
    env = {}
    for x in text:
        if x.startswith("Environment="):
            k, _, v = shlex.split(x[len("Environment="):])[0].partition("=")
            env[k] = v
    argv = []
    for w in shlex.split(line[len("ExecStart="):])[1:]:
        argv += env[w[1:]].split() if w.startswith("$") else [w]
    assert "-a" not in argv and "--all" not in argv and "--verdict" not in argv, argv
    swap = {"--output": str(out), "-o": str(out), "--metrics": metrics}
    for i, a in enumerate(argv[:-1]):
        if a in swap:
            argv[i + 1] = swap[a]
    assert str(out) in argv and metrics in argv, (line, argv)
    return argv


def records(path):
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    return [json.loads(x) for x in text.splitlines() if x.endswith("}")]


def scrape(ns, port):
    p = ns.exec(["curl", "-sS", "--max-time", "5", f"http://127.0.0.1:{port}/metrics"],
                check=False)
    return p.stdout if p.returncode == 0 else None


def sample(text, name, **labels):
    """The value of the series `name` with exactly these labels, or 0 if absent."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        m = re.fullmatch(r"(\w+)\{(.*)\} (\S+)", line)
        if m and m.group(1) == name and ",".join(sorted(m.group(2).split(","))) == want:
            return float(m.group(3))
    return 0.0


def test_service_and_default_invocations(tmp_path):
    """Three OK connects to a listener, one refused by this host's stack (no
    listener), one timed out (nft drops its SYNs; tcp_syn_retries=1), all
    in one namespace and at once. The service's file gets exactly the
    refused and the timeout; its /metrics counts verdicts_total
    {verdict="ok",cause="established"} == 3 and every attempt the kernel
    counted (TcpActiveOpens); the text instance prints TIMEOUT and REFUSED
    for those clients and nothing for the OK ones."""
    ns = make_ns("svc")
    svc = text = None
    try:
        ok_port, closed_port, drop_port, mport = (free_port() for _ in range(4))
        ns.sysctl("net.ipv4.tcp_syn_retries", 1)
        ns.listen(ok_port)
        ns.listen(drop_port)
        nft_syn_rule(ns, drop_port, "drop")
        out = tmp_path / "conntrace.jsonl"
        # outgoing attempts only: the counts are checked against TcpActiveOpens, and
        # every attempt here is also an incoming one (test_inbound.py tells those)
        argv = [conntrace_path(), *unit_args(out, f"127.0.0.1:{mport}"), "--netns", ns.inode,
                "--direction", "out"]
        svc = ns.popen(argv)
        wait_until(lambda: any(r["type"] == "start" for r in records(out)) or
                   svc.poll() is not None, 20, "the service's start record")
        assert svc.poll() is None, f"service exited {svc.returncode}: {svc.stderr.read()}"
        # not scraped yet: a scrape is itself an attempt in the namespace
        wait_until(lambda: sockets(ns, "listening", mport, "sport"), 10, "the metrics port")
        text = TextConntrace(conntrace_path(), "--netns", ns.inode, "--direction", "out")

        k = Counters(ns)
        timeout_client = ns.client("127.0.0.1", drop_port, name="svc-timeout")
        with ThreadPoolExecutor(4) as ex:
            oks = list(ex.map(lambda _: ns.client("127.0.0.1", ok_port, name="svc-ok").finish(),
                              range(OK_CONNECTS)))
        refused = ns.client("127.0.0.1", closed_port, name="svc-refused").finish()
        timed_out = timeout_client.finish()
        d = k.delta()
        assert [r["result"] for r in oks] == ["ok"] * OK_CONNECTS, oks
        assert (refused["result"], timed_out["result"]) == ("ECONNREFUSED", "ETIMEDOUT")
        assert (d["TcpActiveOpens"], d["TcpAttemptFails"]) == (OK_CONNECTS + 2, 2), d
        assert nft_packets(ns) == d["TcpExtTCPSynRetrans"] + 1, (nft_packets(ns), d)

        def failures_in_file():
            return sorted((r["verdict"], r["dport"]) for r in records(out)
                          if r["type"] == "verdict")
        wait_until(lambda: len(failures_in_file()) >= 2, 20, "two verdicts in the file")
        # Scrape until the earlier scrapes are counted. Scrape i (from 1) is an OK
        # attempt itself, counted in its own answer or not (own = 1 or 0): then
        # ok == OK_CONNECTS + i - 1 + own and the sum over verdicts equals the
        # kernel's TcpActiveOpens - 1 + own.
        scrapes = []

        def scraped():
            body = scrape(ns, mport)
            scrapes.append((body, k.delta()["TcpActiveOpens"]))
            # OK attempts only counted in the kernel reach /metrics at its next
            # reading (once a second): scrape until the earlier ones are in
            return body and sample(body, "conntrace_verdicts_total", verdict="timeout",
                                   cause="netfilter_drop", direction="outbound") and \
                len(scrapes) >= 2 and \
                sample(body, "conntrace_verdicts_total", verdict="ok", cause="established",
                       direction="outbound") >= OK_CONNECTS + len(scrapes) - 1
        wait_until(scraped, 20, "the timeout in /metrics")
        metrics, opens = scrapes[-1]
        text.wait_line(lambda x: " TIMEOUT " in x, 20, "the TIMEOUT line")
        text.wait_line(lambda x: " REFUSED " in x, 20, "the REFUSED line")

        os.kill(svc.pid, signal.SIGTERM)
        assert svc.wait(15) == 0, svc.stderr.read()
        lines = text.stop()
    finally:
        for p in (svc,):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait(10)
        if text is not None:
            text.kill()
        ns.destroy()

    recs = records(out)
    assert recs[0]["type"] == "start" and recs[-1]["type"] == "summary", (recs[0], recs[-1])
    got = sorted((r["verdict"], r["cause"], r["dport"], r["pid"]) for r in recs
                 if r["type"] == "verdict")
    assert got == sorted([("refused", "no_listener", closed_port, refused["pid"]),
                          ("timeout", "netfilter_drop", drop_port, timed_out["pid"])]), got
    summary = recs[-1]["verdicts"]
    assert (summary["ok"], summary["refused"], summary["timeout"]) == \
        (OK_CONNECTS + len(scrapes), 1, 1), (summary, len(scrapes))

    n = len(scrapes)
    counts = {v: sample(metrics, "conntrace_verdicts_total", verdict=v, cause=c,
                        direction="outbound") for v, c in
              (("ok", "established"), ("refused", "no_listener"), ("timeout", "netfilter_drop"))}
    own = counts["ok"] - (OK_CONNECTS + n - 1)
    assert own in (0, 1) and (counts["refused"], counts["timeout"]) == (1, 1), \
        (counts, n, metrics)
    total = sum(float(x.rpartition(" ")[2]) for x in metrics.splitlines()
                if x.startswith("conntrace_verdicts_total{"))
    assert 'direction="inbound"' not in metrics, metrics
    assert total == opens - 1 + own, (total, opens, own, metrics)

    rows = []
    for line in lines[lines.index(next(x for x in lines if x.startswith("TIME "))) + 1:]:
        # the summary, detail lines, and a loss report (missed events are machine-wide)
        if line.startswith("-- ") or not line.strip() or line.startswith(" ") or \
                " LOST: " in line:
            continue
        cols = line.split()
        assert re.fullmatch(r"\d\d:\d\d:\d\d", cols[0]), line
        assert cols[5] == "out", line    # the DIR column
        rows.append((cols[6], int(cols[1])))
    assert sorted(rows) == sorted([("REFUSED", refused["pid"]), ("TIMEOUT", timed_out["pid"])]), \
        lines
