# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Start and stop: the interface promises one line per *finished* attempt,
verdicts among six names, and a summary counting exactly those six."""

import time

from ctharness import VERDICTS, Conntrace, free_port


def test_stop_while_connecting(netns):
    port = free_port()
    netns.listen(port)
    netns.drop_syns(port)
    with Conntrace("-a") as ct:
        c = netns.client("127.0.0.1", port, name="ctc-inflight", nonblock=True,
                         abandon_after=60000, announce=True)
        deadline = time.monotonic() + 10
        while f":{port}" not in netns.exec(["ss", "-Htn", "state", "syn-sent"]).stdout:
            assert time.monotonic() < deadline, "client never reached SYN-SENT"
            time.sleep(0.05)
        summary = ct.stop()              # the attempt is still in SYN-SENT
    assert c.proc.poll() is None, "the client was expected to be still connecting"
    problems = []
    if set(summary["verdicts"]) != set(VERDICTS):
        problems.append(f"summary verdict counters {sorted(summary['verdicts'])}, "
                        f"interface: {sorted(VERDICTS)}")
    odd = ct.verdicts(lambda r: r["verdict"] not in VERDICTS)
    if odd:
        problems.append(f"{len(odd)} verdicts outside the six, e.g. {odd[0]}")
    mine = ct.verdicts(lambda r: r["netns"] == netns.inode and r["dport"] == port)
    if mine:
        problems.append(f"a verdict for the unfinished attempt: {mine}")
    assert not problems, "\n".join(problems)
