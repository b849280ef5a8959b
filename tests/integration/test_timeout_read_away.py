# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""A kernel timeout whose error the application reads first is still a timeout.

When the retransmit timer gives up on a connecting socket, kernels before
6.10 (Debian 12's 6.1) set sk_err, wake the owner, and only then close the
socket: an owner on another CPU that reads SO_ERROR at once clears sk_err
before the close is traced, and the attempt looked closed by the
application (abandoned, app_closed). Here non-blocking connects to a port
whose SYNs nft drops have their SO_ERROR read in a busy loop, to hit that
window; every one must be timeout, errno ETIMEDOUT, cause netfilter_drop.
On 6.18 the socket is closed before the owner is woken: the same
assertions hold without the race.

The window is a few microseconds: this loop does not hit it reliably (it
passed twice in the 6.1 guest with the fix taken out; curl hit it once in
that guest's suite). What it holds on both kernels: a client that reads its
socket's error as eagerly as it can still gets timeout verdicts, never
abandoned ones."""

import json

from ctharness import Conntrace, free_port

N = 16

# N non-blocking connects, whose SO_ERROR is read in a busy loop until each
# has one, each closed as soon as it is read: the loop reads a socket every
# few microseconds, so some reads fall between the kernel setting sk_err and
# closing the socket (pre-6.10).
EAGER = r"""
import errno, json, socket, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
socks = []
for _ in range(n):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setblocking(False)
    s.connect_ex(("127.0.0.1", port))
    socks.append(s)
got, deadline = {}, time.monotonic() + 60
while socks and time.monotonic() < deadline:
    for s in list(socks):
        e = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if e:
            k = errno.errorcode.get(e, str(e))
            got[k] = got.get(k, 0) + 1
            socks.remove(s)
            s.close()
got["still connecting"] = len(socks)
print(json.dumps(got), flush=True)
"""


def test_timeout_read_first_by_the_owner(netns):
    port = free_port()
    netns.sysctl("net.ipv4.tcp_syn_retries", 1)
    netns.drop_syns(port)
    with Conntrace("--netns", netns.inode, "--port", port) as ct:
        p = netns.exec(["/usr/bin/python3", "-c", EAGER, str(port), str(N)], timeout=120)
        got = json.loads(p.stdout.splitlines()[-1])
        assert got == {"ETIMEDOUT": N, "still connecting": 0}, got
        ct.wait_for(lambda r: r.get("type") == "verdict" and len(ct.verdicts()) >= N,
                    timeout=30, what=f"{N} verdicts")
        summary = ct.stop()
    wrong = [r for r in ct.verdicts() if (r["verdict"], r["errno"], r["cause"]) !=
             ("timeout", "ETIMEDOUT", "netfilter_drop")]
    assert not wrong, json.dumps(wrong[:3], indent=1)
    assert summary["verdicts"]["timeout"] == N, summary
