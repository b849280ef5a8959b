# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Simultaneous open: a TCP socket that connects to its own address and port
goes SYN_SENT -> SYN_RECV -> ESTABLISHED (its SYN crosses itself). It must
get one verdict, ok, like any established attempt. And the other way
SYN_RECV -> ESTABLISHED happens, a server's accepted child, must give none.

Each test runs its own `conntrace -a --port P --netns NS`, so the summary
counts only the attempts to P in the test's namespace: the kernel's flow
count must equal the verdicts printed (pending ones included) plus the
attempts whose record the ring lost."""

import json

import ctharness
from ctharness import Conntrace, flow, readline_timeout, related

# Binds 127.0.0.1:PORT, then connects that same socket to 127.0.0.1:PORT.
SELF_CONNECT = """
import json, os, socket, sys
port = int(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port))
s.connect(("127.0.0.1", port))
print(json.dumps({"pid": os.getpid(), "local": s.getsockname()[1],
                  "peer": s.getpeername()[1]}), flush=True)
s.close()
"""


def check_counts(summary, printed):
    """flows == sum of the verdicts (pending included), which count the
    verdicts printed and the attempts whose record the ring lost."""
    counted = sum(summary["verdicts"].values())
    assert counted == len(printed) + sum(summary["lost_by_verdict"].values()), \
        (summary, printed)
    assert summary["flows"] == counted, \
        f"summary flows {summary['flows']} != verdicts {summary['verdicts']}"


def test_self_connect_is_ok(netns):
    port = ctharness.free_port()
    ct = Conntrace("-a", "--port", port, "--netns", netns.inode).start()
    try:
        proc = netns.popen(["/usr/bin/python3", "-c", SELF_CONNECT, port])
        line = readline_timeout(proc, 10, "the self-connect")
        assert proc.wait(10) == 0, proc.stderr.read()
        res = json.loads(line)
        # the kernel really did a self-connect: same port at both ends
        assert res == {"pid": proc.pid, "local": port, "peer": port}, res
        rec = ct.wait_for(flow(netns, port), what=f"a verdict for the self-connect to {port}",
                          context=related(netns, port))
        problems = ctharness.check_verdict(rec)
        assert not problems, (problems, rec)
        assert rec["verdict"] == "ok", rec
        assert rec["pid"] == proc.pid and rec["sport"] == port, rec
        assert rec["saddr"] == rec["daddr"] == "127.0.0.1", rec
        assert rec["syn_retrans"] == 0, rec
        summary = ct.stop()
    finally:
        ct.kill()
    mine = ct.verdicts(flow(netns, port))
    assert len(mine) == 1, f"one attempt, {len(mine)} verdicts: {mine}"
    check_counts(summary, ct.verdicts())


def test_accepted_connection_gives_no_verdict(netns):
    """A listener's child passes SYN_RECV -> ESTABLISHED too: only the
    client's attempt is a flow."""
    port = ctharness.free_port()
    ct = Conntrace("-a", "--port", port, "--netns", netns.inode).start()
    try:
        netns.listen(port)
        client = netns.client("127.0.0.1", port)
        res = client.finish()
        assert res["errno"] == 0, res
        rec = ct.wait_for(flow(netns, port), what=f"a verdict for the connect to {port}",
                          context=related(netns, port))
        assert rec["verdict"] == "ok" and rec["pid"] == client.pid, rec
        summary = ct.stop()
    finally:
        ct.kill()
    ours = ct.verdicts(lambda r: r.get("netns") == netns.inode)
    assert ours == [rec], f"verdicts other than the client's: {ours}"
    check_counts(summary, ct.verdicts())
