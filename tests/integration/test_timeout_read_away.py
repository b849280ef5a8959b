# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""A kernel timeout whose error the application reads first is still a timeout.

When the retransmit timer gives up on a connecting socket, kernels before
6.10 (Debian 12's 6.1) set sk_err, wake the owner, and only then close the
socket: an owner on another CPU that reads SO_ERROR at once clears sk_err
before the close is traced, and the attempt looked closed by the
application (abandoned, app_closed). Here many non-blocking connects to a
port whose SYNs nft drops are each read the moment epoll wakes, from a
thread of their own, to hit that window; every one must be timeout, errno
ETIMEDOUT, cause netfilter_drop. On 6.18 the socket is closed before the
owner is woken: the same assertions hold without the race."""

import json

from ctharness import Conntrace, free_port

N = 64

# N non-blocking connects; a reader thread waits on epoll and reads SO_ERROR
# the moment a socket is woken, then closes it.
EAGER = r"""
import errno, json, select, socket, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
ep = select.epoll()
socks = {}
for _ in range(n):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setblocking(False)
    s.connect_ex(("127.0.0.1", port))
    socks[s.fileno()] = s
    ep.register(s.fileno(), select.EPOLLOUT | select.EPOLLERR)
got = {}
while socks:
    for fd, _ in ep.poll(30):
        s = socks.pop(fd)
        e = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        ep.unregister(fd)
        k = errno.errorcode.get(e, str(e)) if e else "ok"
        got[k] = got.get(k, 0) + 1
        s.close()
print(json.dumps(got), flush=True)
"""


def test_timeout_read_first_by_the_owner(netns):
    port = free_port()
    netns.sysctl("net.ipv4.tcp_syn_retries", 1)
    netns.drop_syns(port)
    with Conntrace("--netns", netns.inode, "--port", port) as ct:
        p = netns.exec(["/usr/bin/python3", "-c", EAGER, str(port), str(N)], timeout=120)
        got = json.loads(p.stdout.splitlines()[-1])
        assert got == {"ETIMEDOUT": N}, got
        ct.wait_for(lambda r: r.get("type") == "verdict" and len(ct.verdicts()) >= N,
                    timeout=30, what=f"{N} verdicts")
        summary = ct.stop()
    wrong = [r for r in ct.verdicts() if (r["verdict"], r["errno"], r["cause"]) !=
             ("timeout", "ETIMEDOUT", "netfilter_drop")]
    assert not wrong, json.dumps(wrong[:3], indent=1)
    assert summary["verdicts"]["timeout"] == N, summary
