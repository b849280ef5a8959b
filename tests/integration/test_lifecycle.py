# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Start and stop. The interface this suite was written against promises one
line per *finished* attempt, verdicts among six names, and a summary
counting exactly those six. (conntrace's README instead prints attempts
still connecting at stop as verdict "pending"; until the two agree this
test reports the difference, and checks such a line's ports either way.)"""

import re
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
        while True:
            ss = netns.exec(["ss", "-Htn", "state", "syn-sent"]).stdout
            m = re.search(r"127\.0\.0\.1:(\d+)\s+127\.0\.0\.1:%d\b" % port, ss)
            if m:
                sport = int(m.group(1))
                break
            assert time.monotonic() < deadline, f"client never reached SYN-SENT: {ss!r}"
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
    for r in mine:
        if (r["pid"], r["comm"], r["sport"]) != (c.pid, "ctc-inflight", sport):
            problems.append(f"that line says pid/comm/sport {r['pid']}/{r['comm']!r}/"
                            f"{r['sport']}; the attempt is {c.pid}/'ctc-inflight'/{sport}")
    assert not problems, "\n".join(problems)
