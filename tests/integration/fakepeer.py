# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""A fake remote peer on a TUN device inside a test namespace.

The namespace routes 192.0.2.0/24 and 2001:db8::/64 (documentation
prefixes) to a TUN device whose other end is this program: every packet the
namespace sends there is read here and never leaves the namespace. The peer
answers each SYN (SYN set, ACK clear) as its plan says for the SYN's
destination port:

    silent      never answers (the SYNs are lost beyond this host)
    synack      a SYN-ACK (the final ACK and everything after are ignored)
    rst         an RST|ACK, as a remote host with nothing on the port
    icmp-port   an ICMP port unreachable (IPv4 type 3 code 3, IPv6 type 1 code 4)
    icmp-host   an ICMP host unreachable (IPv4 type 3 code 1, IPv6 type 1 code 3)
                from a "router" (192.0.2.254, 2001:db8::fe)
    icmp-param  an ICMP parameter problem (IPv4 type 12 code 0, IPv6 type 4 code 0):
                an error that says something was wrong, not why it is unreachable

each after `delay_ms`, and only once `skip` SYNs of the attempt went
unanswered (0: the first SYN is answered). Checksums are computed (IPv4 header, TCP and ICMPv6
over their pseudo-headers, ICMP over its message). The program prints one
JSON line per SYN it saw ({"event":"syn",...}) and per answer it sent
({"event":"sent",...}), so a test has the peer's own account of what
crossed the wire.

    FakePeer(ns, plan)      runs it with `ip netns exec` (TUNSETIFF then makes
                            the device in that namespace), configures the
                            device's addresses; stop() ends it by pid; the
                            device goes with its last file descriptor.
"""

import fcntl
import heapq
import ipaddress
import json
import os
import random
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000

PEER4, LOCAL4, ROUTER4, PREFIX4 = "192.0.2.1", "192.0.2.2", "192.0.2.254", "192.0.2.0/24"
PEER6, LOCAL6, ROUTER6, PREFIX6 = "2001:db8::1", "2001:db8::2", "2001:db8::fe", "2001:db8::/64"

TCP_FIN, TCP_SYN, TCP_RST, TCP_ACK = 0x01, 0x02, 0x04, 0x10

# (ICMP type, code) per family for each ICMP action
ICMP = {
    "icmp-port": {4: (3, 3), 6: (1, 4)},
    "icmp-host": {4: (3, 1), 6: (1, 3)},
    "icmp-param": {4: (12, 0), 6: (4, 0)},
}


# -- checksums and packets -----------------------------------------------------

def csum(data):
    """The Internet checksum (RFC 1071) of data."""
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def pseudo(fam, src, dst, proto, length):
    if fam == 4:
        return src + dst + struct.pack("!BBH", 0, proto, length)
    return src + dst + struct.pack("!I3xB", length, proto)


def ip_packet(fam, src, dst, proto, payload):
    """An IPv4 (with its header checksum) or IPv6 header around payload."""
    if fam == 4:
        hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 0, 0x4000, 64, proto,
                          0, src, dst)
        hdr = hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:]
        return hdr + payload
    return struct.pack("!IHBB16s16s", 6 << 28, len(payload), proto, 64, src, dst) + payload


def tcp_segment(fam, src, dst, sport, dport, seq, ack, flags, options=b""):
    off = (20 + len(options)) // 4
    seg = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, off << 4, flags, 65535, 0, 0) + options
    c = csum(pseudo(fam, src, dst, 6, len(seg)) + seg)
    return seg[:16] + struct.pack("!H", c) + seg[18:]


def parse(pkt):
    """An IPv4/IPv6 TCP packet as a dict, or None for anything else."""
    if not pkt:
        return None
    fam = pkt[0] >> 4
    if fam == 4 and len(pkt) >= 20:
        ihl = (pkt[0] & 0xF) * 4
        if pkt[9] != 6:
            return None
        src, dst, tcp = pkt[12:16], pkt[16:20], pkt[ihl:]
    elif fam == 6 and len(pkt) >= 40:
        if pkt[6] != 6:         # no extension headers in what these tests send
            return None
        src, dst, tcp = pkt[8:24], pkt[24:40], pkt[40:]
    else:
        return None
    if len(tcp) < 20:
        return None
    sport, dport, seq, ack, _, flags = struct.unpack("!HHIIBB", tcp[:14])
    return {"fam": fam, "src": src, "dst": dst, "sport": sport, "dport": dport, "seq": seq,
            "ack": ack, "flags": flags, "raw": pkt}


def answer(p, action):
    """The packet that answers SYN p with `action` (None for silent)."""
    fam, src, dst = p["fam"], p["src"], p["dst"]
    if action == "synack":
        mss = struct.pack("!BBH", 2, 4, 1460)
        seg = tcp_segment(fam, dst, src, p["dport"], p["sport"], random.getrandbits(32),
                          (p["seq"] + 1) & 0xFFFFFFFF, TCP_SYN | TCP_ACK, mss)
        return ip_packet(fam, dst, src, 6, seg)
    if action == "rst":
        seg = tcp_segment(fam, dst, src, p["dport"], p["sport"], 0,
                          (p["seq"] + 1) & 0xFFFFFFFF, TCP_RST | TCP_ACK)
        return ip_packet(fam, dst, src, 6, seg)
    if action in ICMP:
        typ, code = ICMP[action][fam]
        # a port unreachable comes from the peer itself, a host unreachable from a router
        frm = dst if action != "icmp-host" else socket.inet_pton(
            socket.AF_INET if fam == 4 else socket.AF_INET6, ROUTER4 if fam == 4 else ROUTER6)
        if fam == 4:
            ihl = (p["raw"][0] & 0xF) * 4
            body = struct.pack("!BBHI", typ, code, 0, 0) + p["raw"][:ihl + 8]
            body = body[:2] + struct.pack("!H", csum(body)) + body[4:]
            return ip_packet(4, frm, src, 1, body)
        body = struct.pack("!BBHI", typ, code, 0, 0) + p["raw"][:1232]
        c = csum(pseudo(6, frm, src, 58, len(body)) + body)
        body = body[:2] + struct.pack("!H", c) + body[4:]
        return ip_packet(6, frm, src, 58, body)
    return None


# -- the peer (runs inside the namespace) ----------------------------------------

def open_tun(name):
    fd = os.open("/dev/net/tun", os.O_RDWR)
    try:
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    except OSError:
        os.close(fd)
        raise
    return fd


def addr_text(fam, raw):
    return socket.inet_ntop(socket.AF_INET if fam == 4 else socket.AF_INET6, raw)


def serve(name, plan):
    """Read the TUN device until SIGTERM; answer SYNs as `plan` says."""
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    fd = open_tun(name)
    print(json.dumps({"event": "ready", "dev": name}), flush=True)
    due = []            # heap of (when, seq, packet, what)
    n = 0
    syns = {}           # (source, sport, dport) -> SYNs seen
    try:
        while not stop:
            now = time.monotonic()
            while due and due[0][0] <= now:
                _, _, pkt, what = heapq.heappop(due)
                os.write(fd, pkt)
                print(json.dumps({"event": "sent", "t": time.monotonic(), **what}), flush=True)
            wait = min(0.2, max(0.0, due[0][0] - now)) if due else 0.2
            try:
                r, _, _ = select.select([fd], [], [], wait)
            except InterruptedError:
                continue
            if not r:
                continue
            p = parse(os.read(fd, 65536))
            if not p or p["flags"] & (TCP_SYN | TCP_ACK) != TCP_SYN:
                continue
            rule = plan.get(str(p["dport"]), {"action": "silent"})
            seen = {"family": f"ipv{p['fam']}", "saddr": addr_text(p["fam"], p["src"]),
                    "daddr": addr_text(p["fam"], p["dst"]), "sport": p["sport"],
                    "dport": p["dport"], "action": rule["action"]}
            print(json.dumps({"event": "syn", "t": time.monotonic(), **seen}), flush=True)
            key = (p["src"], p["sport"], p["dport"])
            syns[key] = syns.get(key, 0) + 1
            pkt = answer(p, rule["action"]) if syns[key] > rule.get("skip", 0) else None
            if pkt:
                n += 1
                heapq.heappush(due, (time.monotonic() + rule.get("delay_ms", 0) / 1000, n,
                                     pkt, seen))
    finally:
        os.close(fd)


# -- the test side -------------------------------------------------------------

class FakePeer:
    """Runs this file as the peer in namespace ns on TUN device `dev`, then
    gives the device 192.0.2.2/24 and 2001:db8::2/64 (no DAD): the peer is
    192.0.2.1 and 2001:db8::1. plan: {dport: (action, delay_ms[, skip])}."""

    def __init__(self, ns, plan, dev="ctpeer0"):
        self.ns, self.dev = ns, dev
        self.events = []
        self.cond = threading.Condition()
        spec = {str(port): {"action": r[0], "delay_ms": r[1], "skip": r[2] if len(r) > 2 else 0}
                for port, r in plan.items()}
        self.proc = ns.popen([sys.executable, os.path.abspath(__file__), dev, json.dumps(spec)])
        threading.Thread(target=self._read, daemon=True).start()
        self.wait(lambda e: e["event"] == "ready", 10, "the fake peer ready")
        try:
            ns.exec(["ip", "link", "set", dev, "up"])
            ns.exec(["ip", "addr", "add", f"{LOCAL4}/24", "dev", dev])
            ns.exec(["ip", "-6", "addr", "add", f"{LOCAL6}/64", "dev", dev, "nodad"])
            for peer in (PEER4, PEER6):     # the safety check: only ever into the TUN device
                route = json.loads(ns.exec(["ip", "-j", "route", "get", peer]).stdout)
                assert route[0]["dev"] == dev, f"{peer} is not routed to {dev}: {route}"
        except BaseException:
            self.stop()
            raise

    def _read(self):
        for raw in iter(self.proc.stdout.readline, b""):
            with self.cond:
                self.events.append(json.loads(raw))
                self.cond.notify_all()
        with self.cond:
            self.events.append({"event": "exit"})
            self.cond.notify_all()

    def wait(self, pred, timeout, what):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for e in self.events:
                    if pred(e):
                        return e
                left = deadline - time.monotonic()
                if left <= 0 or any(e["event"] == "exit" for e in self.events):
                    err = self.proc.stderr.read().decode() if self.proc.poll() is not None else ""
                    raise AssertionError(f"{what}: not within {timeout}s; peer events "
                                         f"{self.events[-10:]} {err}")
                self.cond.wait(left)

    def seen(self, dport, event="syn"):
        with self.cond:
            return [e for e in self.events if e["event"] == event and e.get("dport") == dport]

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        return self.proc.returncode


def peer_addr(v6):
    return PEER6 if v6 else PEER4


def in_test_prefix(addr):
    a = ipaddress.ip_address(addr)
    return a in ipaddress.ip_network(PREFIX4 if a.version == 4 else PREFIX6)


if __name__ == "__main__":
    serve(sys.argv[1], json.loads(sys.argv[2]))
