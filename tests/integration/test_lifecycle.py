# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Start and stop: an attempt still connecting when conntrace stops is
flushed as verdict "pending", with its owner, its ports and the evidence
seen so far, and counted in the summary."""

import re
import time

from ctharness import Conntrace, free_port


def test_stop_while_connecting(netns):
    port = free_port()
    netns.listen(port)
    netns.drop_syns(port)
    with Conntrace("-a", "--netns", netns.inode) as ct:
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
    assert summary["verdicts"].get("pending", 0) >= 1, summary
    mine = ct.verdicts(lambda r: r["netns"] == netns.inode and r["dport"] == port)
    assert len(mine) == 1, f"expected one line for the unfinished attempt, got {mine}"
    r = mine[0]
    assert r["verdict"] == "pending", r
    assert (r["pid"], r["comm"], r["sport"]) == (c.pid, "ctc-inflight", sport), r
    # its first SYN was dropped by the nft rule: that evidence is already in
    assert r["cause"] == "netfilter_drop", r
    assert any(e["event"] == "drop" and e.get("reason") == "NETFILTER_DROP"
               for e in r["evidence"]), r["evidence"]
