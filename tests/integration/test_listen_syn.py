# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""`conntrace listen`'s SYN queue view on the real kernel (root): the SYN
queue limit, SYN cookies per listener, and the remote clients whose SYNs a
listener dropped (--top), checked against what the clients saw and against
the namespace's own counters (/proc/net/netstat inside it).

Each test makes its own namespace (test_listen.Netns), a listener that never
accepts (build/tests/lqlisten), and clients from distinct 127.x source
addresses inside it; curl from Debian is one of the clients in the first.
"""
import json
import os
import shutil
import signal
import subprocess
import threading
import time

import pytest

from ctharness import ROOT, run
from ctschema import check_line
from test_listen import CONNTRACE, LQLISTEN, PY, Netns, complete_lines

# Tools these tests run, and the Debian package that has each.
TOOLS = {"ip": "iproute2", "nft": "nftables", "sysctl": "procps", "curl": "curl",
         "ss": "iproute2"}


@pytest.fixture(scope="module", autouse=True)
def setup():
    """A missing tool is a failure that says what to install, never a skip."""
    if os.geteuid() != 0:
        return
    missing = {t: pkg for t, pkg in TOOLS.items() if not shutil.which(t)}
    if missing:
        pytest.fail("setup: missing %s: apt-get install -y %s" %
                    (", ".join(missing), " ".join(sorted(set(missing.values())))))
    run(["make", "-C", ROOT, "--no-print-directory", os.path.relpath(LQLISTEN, ROOT)],
        timeout=120)


@pytest.fixture
def ns():
    n = Netns()
    try:
        # a dropped SYN is sent 3 times (1 + 2 retries, ~1 s apart), then ETIMEDOUT
        n.sysctl("net.ipv4.tcp_syn_retries", 2)
        yield n
    finally:
        n.close()


# One non-blocking connect from each source address in argv[2:] to
# 127.0.0.1:argv[1] (to [::1] from an IPv6 source); waits until each has connected or failed (deadline
# 30 s), prints [[source, source port, 0 or errno, SYNs sent], ...] as JSON
# (SYNs sent: 1 + the socket's tcpi_total_retrans), and keeps
# its sockets open until its standard input closes.
CLIENTS = r"""
import json, select, socket, struct, sys, time
port, srcs = int(sys.argv[1]), sys.argv[2:]
socks = []
for a in srcs:
    v6 = ":" in a
    s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET)
    s.setblocking(False)
    s.bind((a, 0))
    try:
        s.connect(("::1" if v6 else "127.0.0.1", port))
    except BlockingIOError:
        pass
    socks.append(s)
result, pending, deadline = {}, list(socks), time.monotonic() + 30
while pending and time.monotonic() < deadline:
    _, w, _ = select.select([], pending, [], 0.2)
    for s in w:
        result[s] = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        pending.remove(s)
def syns(s):  # 1 + tcpi_total_retrans (struct tcp_info: 8 bytes, then __u32s)
    info = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
    return 1 + struct.unpack_from("I", info, 8 + 23 * 4)[0]
print(json.dumps([[s.getsockname()[0], s.getsockname()[1], result.get(s, -1), syns(s)]
                  for s in socks]), flush=True)
sys.stdin.read()
"""

# Pure ACKs to the port are dropped: a handshake's request stays in the SYN
# queue (the client believes it connected), and a cookie's ACK never lands.
NFT_DROP_ACKS = ("table inet lqsyn {\n chain in {\n type filter hook input priority 0;\n"
                 " tcp dport %d tcp flags == ack drop\n }\n}\n")


def watch(ns, port, tmp_path):
    """`conntrace listen -j -i 0.5 --top 16 --port PORT` until its start line."""
    out_path = tmp_path / "out.jsonl"
    with open(out_path, "w") as out:
        ct = subprocess.Popen([CONNTRACE, "listen", "-j", "-i", "0.5", "--top", "16",
                               "--port", str(port)], stdout=out, stderr=subprocess.PIPE,
                              text=True)
    ns.procs.append(ct)
    deadline = time.monotonic() + 60
    while not complete_lines(out_path) and time.monotonic() < deadline:
        assert ct.poll() is None, "conntrace listen exited: " + ct.stderr.read()
        time.sleep(0.1)
    start = complete_lines(out_path)[0]
    assert start["type"] == "listen_start"
    return ct, out_path, start


def stop_after(ct, out_path, ns, port, refreshes=2):
    """Our listener's records, once `refreshes` of them walked after now."""
    since = time.time()

    def ours():
        return [o for o in complete_lines(out_path) if o["type"] == "listener"
                and o["netns"] == ns.ino and o["lport"] == port]
    deadline = time.monotonic() + 60
    while (len([o for o in ours() if o["time"] > since]) < refreshes
           and time.monotonic() < deadline):
        time.sleep(0.2)
    ct.send_signal(signal.SIGINT)
    ct.wait(timeout=30)
    assert ct.returncode == 0, ct.stderr.read()
    # every line of the stream validates against docs/schema.json
    for line in out_path.read_bytes().splitlines():
        assert not check_line(line), (check_line(line), line[:300])
    return ours()


def clients(ns, port, srcs, hold=False):
    """Run CLIENTS in the namespace: [(source, sport, 0 or errno, SYNs)], and with
    hold the process, whose sockets stay open until its stdin is closed."""
    p = ns.spawn(PY, "-c", CLIENTS, str(port), *srcs, stdin=subprocess.PIPE,
                 stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline()  # CLIENTS has its own deadline
    assert line, "the clients failed"
    got = [tuple(x) for x in json.loads(line)]
    if hold:
        return got, p
    p.stdin.close()
    p.wait(timeout=30)
    return got


def lost_syns(total, lost):
    """Every SYN each client socket in `lost` sent was dropped: the SYNs
    and ports reported per address are the clients' own (the SYNs a socket
    sent are 1 + its tcpi_total_retrans). Returns the SYNs they sent."""
    want = {}
    for src, _, _, syns in lost:
        w = want.setdefault(src, [0, 0])
        w[0] += syns
        w[1] += 1
    assert {a: t[:2] for a, t in total.items()} == want
    return sum(w[0] for w in want.values())


def drops_by_client(records):
    """Every interval's dropped_clients summed: {raddr: [syns, ports, aq, sq]}."""
    total = {}
    for o in records:
        assert o["dropped_clients"] is not None, "SYNs at the listener are not seen"
        assert len(o["dropped_clients"]) == o["dropped_clients_total"]  # --top 16 is enough
        for c in o["dropped_clients"]:
            t = total.setdefault(c["raddr"], [0, 0, 0, 0])
            t[0] += c["syns_dropped"]
            t[1] = max(t[1], c["ports"])
            t[2] += c["causes"]["accept_queue_full"]
            t[3] += c["causes"]["syn_queue_full"]
            assert c["syns_dropped"] == (c["causes"]["accept_queue_full"] +
                                         c["causes"]["syn_queue_full"])
    return total


def syn_recv(ns, port):
    """Requests in the SYN queue of 127.0.0.1:port, as ss counts them."""
    out = ns.run("ss", "-Htn", "state", "syn-recv", "sport", "= :%d" % port).stdout
    return len(out.splitlines())


def test_clients_that_lost_syns_to_a_full_accept_queue(ns, tmp_path):
    """listen(fd, 1), never accept(): 2 clients get in, the other 7 (one of
    them curl) lose every SYN to the full accept queue. Each is named with
    the SYNs it lost; the sum is the namespace's ListenOverflows."""
    port = 9481
    ct, out_path, start = watch(ns, port, tmp_path)
    ns.listener(backlog=1, port=port)
    before = ns.tcpext()
    srcs = ["127.0.0.%d" % i for i in range(11, 17)] + ["127.0.0.16"]
    got = clients(ns, port, srcs)
    # curl from Debian, after the queue is full: its SYNs are dropped until
    # the kernel gives up (tcp_syn_retries=2), well inside --connect-timeout
    c = subprocess.run(["ip", "netns", "exec", ns.name, "curl", "-sS", "--interface",
                        "127.0.0.20", "--connect-timeout", "20", "-o", "/dev/null",
                        "http://127.0.0.1:%d/" % port], capture_output=True, text=True,
                       timeout=60)
    after = ns.tcpext()
    records = stop_after(ct, out_path, ns, port)
    assert ns.tcpext()["ListenOverflows"] == after["ListenOverflows"]  # nothing more came
    overflows = after["ListenOverflows"] - before["ListenOverflows"]
    drops = after["ListenDrops"] - before["ListenDrops"]
    total = drops_by_client(records)
    print("clients %s; curl rc %d %s; ListenOverflows +%d, ListenDrops +%d; reported %s "
          "(start: %s)" % (got, c.returncode, c.stderr.strip(), overflows, drops, total,
                           start["hooks"]["syn_at_listener"]))
    assert c.returncode == 28 or "timed out" in c.stderr, c.stderr  # never connected
    connected = [g for g in got if g[2] == 0]
    lost = [g for g in got if g[2] != 0]
    assert len(connected) == 2 and all(g[2] == 110 for g in lost)  # ETIMEDOUT
    # every SYN of a client that never got in was dropped; curl's are the rest
    curl = total.pop("127.0.0.20")
    n = lost_syns(total, lost)
    assert total["127.0.0.16"][1] == 2  # two source ports from one address
    assert curl[1] == 1 and curl[0] >= 3  # its first SYN and at least 2 retries
    assert all(t[2] == t[0] for t in list(total.values()) + [curl])  # accept_queue_full
    assert n + curl[0] == overflows == drops
    # the text view names them too, under the listener
    lst = records[-1]
    assert lst["syn_queue_max"] == 2 and lst["syn_queue"] == 0  # 1 + 1, cookies on


@pytest.mark.parametrize("backlog,max_syn,limit", [(8, 8, 7), (2, 2048, 3)])
def test_syn_queue_limit_and_syn_queue_full(ns, tmp_path, backlog, max_syn, limit):
    """Cookies off, the handshakes' ACKs dropped: the SYN queue fills to the
    limit shown (ss counts the requests) and the next clients lose their SYNs
    to the full SYN queue. (8, 8): tcp_max_syn_backlog's last quarter is kept
    for proven peers; (2, 2048): the request queue holds backlog + 1."""
    port = 9482
    ns.sysctl("net.ipv4.tcp_syncookies", 0)
    ns.sysctl("net.ipv4.tcp_max_syn_backlog", max_syn)
    ns.run("nft", "-f", "-", input=NFT_DROP_ACKS % port)
    ct, out_path, start = watch(ns, port, tmp_path)
    ns.listener(backlog=backlog, port=port)
    before = ns.tcpext()
    srcs = ["127.0.0.%d" % (31 + i) for i in range(limit + 3)]
    # ss samples the SYN queue while the clients run: under pressure the
    # kernel gives old requests fewer SYN-ACK retries, and on a slow machine
    # (the qemu guest) some expire before the last client gives up
    samples, done = [], threading.Event()
    sampler = threading.Thread(target=lambda: [samples.append(syn_recv(ns, port))
                                               for _ in iter(lambda: done.wait(0.05), True)])
    sampler.start()
    try:
        got, held = clients(ns, port, srcs, hold=True)
    finally:
        done.set()
        sampler.join()
    # while the clients hold their sockets (closing them ends the requests)
    queued = max(samples + [syn_recv(ns, port)])
    after = ns.tcpext()
    records = stop_after(ct, out_path, ns, port)
    held.stdin.close()
    total = drops_by_client(records)
    drops = after["ListenDrops"] - before["ListenDrops"]
    print("backlog %d, tcp_max_syn_backlog %d: ss syn-recv %d, shown syn_queue_max %d, "
          "syn_queue %s; clients %s; ListenDrops +%d, TCPReqQFullDrop +%d; reported %s" %
          (backlog, max_syn, queued, records[-1]["syn_queue_max"],
           [o["syn_queue"] for o in records], got, drops,
           after["TCPReqQFullDrop"] - before["TCPReqQFullDrop"], total))
    assert records[-1]["syn_queue_max"] == limit
    assert queued == limit
    # (under pressure the kernel gives old requests fewer SYN-ACK retries:
    # some may expire before the last refresh)
    assert max(o["syn_queue"] for o in records) == limit
    lost = [g for g in got if g[2] != 0]
    assert len(lost) == 3 and all(g[2] == 110 for g in lost)
    n = lost_syns(total, lost)
    assert all(t[3] == t[0] for t in total.values())  # all syn_queue_full
    assert n == drops
    assert after["ListenOverflows"] == before["ListenOverflows"]


def test_syn_cookies_always(ns, tmp_path):
    """tcp_syncookies=2: every SYN is answered with a cookie, counted exactly
    per listener; SyncookiesSent of the namespace agrees."""
    port = 9483
    ns.sysctl("net.ipv4.tcp_syncookies", 2)
    ct, out_path, start = watch(ns, port, tmp_path)
    ns.listener(backlog=16, port=port)
    before = ns.tcpext()
    got = clients(ns, port, ["127.0.0.%d" % i for i in range(41, 46)])
    after = ns.tcpext()
    records = stop_after(ct, out_path, ns, port)
    sent = after["SyncookiesSent"] - before["SyncookiesSent"]
    lst = records[-1]
    print("SyncookiesSent +%d; reported %s (%s); syn_queue_max %d" %
          (sent, lst["syn_cookies"], lst["syn_cookies_method"], lst["syn_queue_max"]))
    assert all(g[2] == 0 for g in got)
    assert sent == 5
    assert lst["syn_cookies"] == sent and lst["syn_cookies_method"] == "exact"
    assert lst["syn_queue_max"] == 0 and lst["dropped_clients"] == []


def test_syn_cookies_when_the_syn_queue_is_full(ns, tmp_path):
    """tcp_syncookies=1, the ACKs dropped so the SYN queue stays full: the
    SYNs past its limit (backlog 2: 3 requests) get cookies. Exact where
    fentry loads, inferred (from the queue staying at its limit) elsewhere."""
    port = 9484
    ns.sysctl("net.ipv4.tcp_syncookies", 1)
    ns.run("nft", "-f", "-", input=NFT_DROP_ACKS % port)
    ct, out_path, start = watch(ns, port, tmp_path)
    ns.listener(backlog=2, port=port)
    before = ns.tcpext()
    got, held = clients(ns, port, ["127.0.0.%d" % i for i in range(51, 57)], hold=True)
    after = ns.tcpext()
    records = stop_after(ct, out_path, ns, port)
    held.stdin.close()
    sent = after["SyncookiesSent"] - before["SyncookiesSent"]
    lst = records[-1]
    print("SyncookiesSent +%d, TCPReqQFullDoCookies +%d; reported %s (%s); syn_queue %d "
          "of %d; start: %s" % (sent, after["TCPReqQFullDoCookies"] -
                                before["TCPReqQFullDoCookies"], lst["syn_cookies"],
                                lst["syn_cookies_method"], lst["syn_queue"],
                                lst["syn_queue_max"], start["method"]))
    assert all(g[2] == 0 for g in got)  # the client side completes either way
    assert lst["syn_queue_max"] == 3 and lst["syn_queue"] == 3
    assert sent == 3
    assert lst["syn_cookies"] == sent
    if start["method"] == "fentry":
        assert lst["syn_cookies_method"] == "exact"
    else:
        assert lst["syn_cookies_method"] == "inferred"
    assert lst["dropped_clients"] == []


def test_dual_stack_listener_names_ipv4_and_ipv6_clients(ns, tmp_path):
    """A listener on [::] (dual stack), its queue filled: the IPv4 and the
    IPv6 clients that lose SYNs are named with their own addresses."""
    port = 9486
    ct, out_path, start = watch(ns, port, tmp_path)
    ns.listener(backlog=1, port=port, addr="::")
    before = ns.tcpext()
    got = clients(ns, port, ["127.0.0.71", "::1", "127.0.0.72", "::1"])
    after = ns.tcpext()
    records = stop_after(ct, out_path, ns, port)
    total = drops_by_client(records)
    overflows = after["ListenOverflows"] - before["ListenOverflows"]
    print("clients %s; ListenOverflows +%d; reported %s" % (got, overflows, total))
    lost = [g for g in got if g[2] != 0]
    assert len(lost) == 2
    n = lost_syns(total, lost)
    assert all(t[2] == t[0] for t in total.values())  # all accept_queue_full
    assert n == overflows


def test_text_view_names_the_clients(ns):
    """The text table: SYNMAX and COOKIES columns, and under the listener the
    clients that lost SYNs in the interval (the listener's queue is full
    before conntrace starts; the clients retry while it watches)."""
    port = 9485
    ns.listener(backlog=1, port=port)
    clients(ns, port, ["127.0.0.61", "127.0.0.62"])  # both get in: the queue is full
    # this one goes on retrying (about once a second) for as long as conntrace runs
    ns.sysctl("net.ipv4.tcp_syn_retries", 6)
    ns.spawn(PY, "-c", CLIENTS, str(port), "127.0.0.63", stdout=subprocess.DEVNULL,
             stdin=subprocess.PIPE)
    r = subprocess.run([CONNTRACE, "listen", "--once", "-i", "2.5", "--port", str(port)],
                       capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, LC_ALL="C"))
    assert r.returncode == 0, r.stderr
    print(r.stdout)
    header = [line for line in r.stdout.splitlines() if line.startswith("NETNS")][0]
    assert "SYNMAX" in header and "COOKIES" in header
    assert "< 127.0.0.63 (1 port): " in r.stdout
    assert "accept_queue_full, 0 syn_queue_full" in r.stdout
