# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Real clients and servers for conntrace's integration tests.

curl, nginx, haproxy, wrk, ab and socat from Debian, and small Python
clients and servers (Debian's /usr/bin/python3) for what no packaged tool
does on demand: a non-blocking connect that reads SO_ERROR, a dual-stack
socket, a self-connect, a connect from a second thread, a listener that
stalls before it accepts. All run inside a test namespace (NetNS) and talk
only to 127.0.0.1 / ::1 there, or to 198.51.100.1 behind the namespace's
own `unreachable` route (never sent).

The kernel's own view comes from `nstat -azsj` inside the namespace
(absolute values, no history file read or written).
"""

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import textwrap
import threading
import time
from pathlib import Path

from ctharness import NetNS, check_verdict, readline_timeout

PY = "/usr/bin/python3"


def make_ns(prefix="rt"):
    """A fresh test namespace (created; destroy() it)."""
    return NetNS(prefix).create()


def kernel_at_least(major, minor):
    m = re.match(r"(\d+)\.(\d+)", os.uname().release)
    return (int(m.group(1)), int(m.group(2))) >= (major, minor)


def has_tracepoint(name):
    """True if the running kernel has tracepoint `name` (e.g. icmp_send):
    its BTF then names the type btf_trace_NAME (no tracefs needed)."""
    with open("/sys/kernel/btf/vmlinux", "rb") as f:
        return b"\0btf_trace_" + name.encode() + b"\0" in f.read()


# -- the kernel's counters --------------------------------------------------

def nstat(ns):
    """Every SNMP/netstat counter of the namespace: {"TcpExtListenOverflows": n, ...}."""
    p = ns.exec(["env", "NSTAT_HISTORY=/dev/null", "nstat", "-azsj"])
    return {k: int(v) for k, v in json.loads(p.stdout)["kernel"].items()}


class Counters:
    """Deltas of the namespace's counters since construction."""

    def __init__(self, ns):
        self.ns = ns
        self.before = nstat(ns)

    def delta(self):
        now = nstat(self.ns)
        return {k: now[k] - self.before.get(k, 0) for k in now}


# -- nftables ---------------------------------------------------------------

def nft_syn_rule(ns, port, action, table="realtest"):
    """One rule on this namespace's input path, for pure SYNs (SYN set, ACK
    clear) to `port`, IPv4 and IPv6, with a counter: `drop`, `reject with
    tcp reset`, `reject with icmpx type port-unreachable`, ... The rule is
    on input: the SYN leaves the client and meets the firewall on the way in,
    as at a real server; a reject's RST or ICMP then comes back to the client."""
    ns.nft(f"""
table inet {table} {{
    chain input {{
        type filter hook input priority 0; policy accept;
        tcp dport {port} tcp flags & (syn | ack) == syn counter {action}
    }}
}}
""")
    listing = ns.exec(["nft", "list", "table", "inet", table]).stdout
    assert f"dport {port}" in listing, listing


def nft_packets(ns, table="realtest"):
    """Packets the rule's counter has seen (the SYNs it dropped or rejected)."""
    listing = ns.exec(["nft", "list", "table", "inet", table]).stdout
    m = re.search(r"counter packets (\d+)", listing)
    assert m, listing
    return int(m.group(1))


def nft_delete(ns, table="realtest"):
    ns.exec(["nft", "delete", "table", "inet", table])


# -- waiting on sockets -----------------------------------------------------

def wait_until(cond, timeout, what, step=0.02):
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(step)


def sockets(ns, state, port, which="dport"):
    """`ss` lines for TCP sockets in `state` with `which` (dport/sport) = port."""
    p = ns.exec(["ss", "-Htn", "state", state, f"( {which} = :{port} )"])
    return [line for line in p.stdout.splitlines() if line.strip()]


def wait_listening(ns, port, timeout=10):
    wait_until(lambda: sockets(ns, "listening", port, "sport"), timeout,
               f"a listener on port {port} in {ns.name}")


def children(pid):
    """Child pids of pid (all its threads' children)."""
    out = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            out += map(int, Path(f"/proc/{pid}/task/{tid}/children").read_text().split())
        except OSError:
            pass
    return out


def threads(pid):
    return {int(t) for t in os.listdir(f"/proc/{pid}/task")}


def _starttime(pid):
    """Field 22 of /proc/PID/stat: with the pid, names one process for good."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def stop_process(proc, sig=signal.SIGTERM, timeout=10):
    """Signal a process we started (by its pid) and reap it; SIGKILL if it
    does not exit in time. Children it leaves behind (e.g. nginx workers of
    a killed master) are killed by pid, if still the same processes."""
    if proc.poll() is not None:
        return proc.returncode
    kids = [(k, _starttime(k)) for k in children(proc.pid)]
    try:
        os.kill(proc.pid, sig)
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    for k, start in kids:
        if start is not None and _starttime(k) == start:
            try:
                os.kill(k, signal.SIGKILL)
            except ProcessLookupError:
                pass
    return proc.returncode


# -- curl -------------------------------------------------------------------

class CurlResult:
    """What curl saw: exit code, the errno text of its failed connect (from
    -v: "connect to X port P failed: Connection refused"), the HTTP status."""

    def __init__(self, pid, rc, stdout, stderr, elapsed):
        self.pid, self.rc, self.stdout, self.stderr, self.elapsed = (
            pid, rc, stdout, stderr, elapsed)
        m = re.search(r"(?:connect to \S+ port \d+ failed|Immediate connect fail for \S+): (.+)",
                      stderr)
        self.connect_error = m.group(1).strip() if m else None
        # curl words its connect timeout two ways, by where the timer fired
        self.timed_out = ("Timeout was reached" in stderr or
                          re.search(r"Connection timeout? after \d+ ms", stderr) is not None)
        m = re.search(r"^http_code=(\d+)$", stdout, re.M)
        self.http_code = int(m.group(1)) if m else None

    def __repr__(self):
        tail = "\n".join(self.stderr.splitlines()[-6:])
        return (f"<curl pid {self.pid} rc {self.rc} after {self.elapsed:.2f}s, connect error "
                f"{self.connect_error!r}, http {self.http_code}; stderr tail:\n{tail}>")


def curl_start(ns, url, *args):
    """Start curl in ns (its pid is the spawned pid: ip netns exec execs it)."""
    cmd = ["curl", "-sS", "-v", "-o", "/dev/null", "-w", "http_code=%{http_code}\\n",
           *args, url]
    t0 = time.monotonic()
    p = ns.popen(cmd)
    p.t0 = t0
    return p


def curl_finish(p, timeout=60):
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        raise AssertionError(f"curl did not finish within {timeout}s")
    return CurlResult(p.pid, p.returncode, out.decode(), err.decode("utf-8", "replace"),
                      time.monotonic() - p.t0)


def curl(ns, url, *args, timeout=60):
    return curl_finish(curl_start(ns, url, *args), timeout)


# -- a Python client: the socket calls a C program would make ----------------

CLIENT_PY = textwrap.dedent(r'''
    import ctypes, errno, json, os, select, socket, sys, threading, time

    def setcomm(name):
        ctypes.CDLL(None).prctl(15, name.encode(), 0, 0, 0)     # PR_SET_NAME

    def attempt(opt, out):
        setcomm(opt["comm"])
        fam = socket.AF_INET if opt["family"] == "4" else socket.AF_INET6
        s = socket.socket(fam, socket.SOCK_STREAM)
        if opt["family"] == "dual":
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        if opt["bind"]:
            s.bind((opt["addr"], opt["port"]))
        out["pid"], out["tid"] = os.getpid(), threading.get_native_id()
        t0 = time.monotonic()
        if opt["nonblock"]:
            s.setblocking(False)
            rc = s.connect_ex((opt["addr"], opt["port"]))
            out["connect"] = errno.errorcode.get(rc, rc) if rc else "0"
            _, w, _ = select.select([], [s], [], opt["wait"])
            out["writable"] = bool(w)
            err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            out["so_error"] = errno.errorcode.get(err, err) if err else None
            out["result"] = out["so_error"] or ("ok" if w else "abandoned")
        else:
            rc = s.connect_ex((opt["addr"], opt["port"]))
            out["result"] = errno.errorcode.get(rc, rc) if rc else "ok"
        out["elapsed_ms"] = round((time.monotonic() - t0) * 1000, 3)
        try:
            out["sport"] = s.getsockname()[1]
        except OSError:
            out["sport"] = None
        if out["result"] == "ok":
            out["peer"] = list(s.getpeername()[:2])
        s.close()

    opt = json.loads(sys.argv[1])
    out = {"main_pid": os.getpid(), "main_tid": threading.get_native_id()}
    if opt["thread"]:
        setcomm("rt-main")
        t = threading.Thread(target=attempt, args=(opt, out))
        t.start()
        t.join()
    else:
        attempt(opt, out)
    print(json.dumps(out), flush=True)
''')


def pyclient(ns, addr, port, *, family="4", comm="rt-client", nonblock=False, wait=5.0,
             thread=False, bind=False, timeout=60):
    """Run the Python client in ns; its JSON result plus "spawned_pid".
    family "4", "6", or "dual" (AF_INET6 with IPV6_V6ONLY=0). nonblock:
    connect_ex, select for writability up to `wait` s, SO_ERROR, close.
    thread: the attempt is made by a second thread named `comm` (the main
    thread is "rt-main"). bind: bind to (addr, port) first (self-connect)."""
    opt = {"addr": addr, "port": port, "family": family, "comm": comm, "nonblock": nonblock,
           "wait": wait, "thread": thread, "bind": bind}
    p = ns.popen([PY, "-c", CLIENT_PY, json.dumps(opt)])
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        raise AssertionError(f"python client did not finish within {timeout}s: {opt}")
    assert p.returncode == 0, f"python client rc={p.returncode}: {err.decode()}"
    res = json.loads(out.decode().splitlines()[-1])
    res["spawned_pid"] = p.pid
    assert res["main_pid"] == p.pid, res
    return res


# -- a listener that stalls, then serves HTTP --------------------------------

STALL_PY = textwrap.dedent(r'''
    import socket, sys
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", int(sys.argv[1])))
    s.listen(int(sys.argv[2]))
    print("ready", flush=True)
    sys.stdin.readline()                  # stalled: accepts nothing until told
    while True:
        c, _ = s.accept()
        c.settimeout(10)
        data = b""
        while b"\r\n\r\n" not in data:
            d = c.recv(4096)
            if not d:
                break
            data += d
        c.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        c.close()
''')


class StalledServer:
    """listen(backlog) on 127.0.0.1:port, no accept() until release(); then
    a minimal HTTP/1.0 server, one connection at a time."""

    def __init__(self, ns, port, backlog):
        self.proc = ns.popen([PY, "-c", STALL_PY, str(port), str(backlog)],
                             stdin=subprocess.PIPE)
        line = readline_timeout(self.proc, 10, "the stalled server ready")
        assert line == "ready\n", line

    def release(self):
        self.proc.stdin.write(b"go\n")
        self.proc.stdin.flush()


# -- nginx and haproxy, each in the foreground with its own files ------------

class Nginx:
    """nginx (nginx-light) in the foreground, master + one worker, with its
    prefix, configuration, pid file and logs in a temporary directory.
    `http` is the body of its http {} block (server blocks)."""

    def __init__(self, ns, http):
        self.dir = Path(tempfile.mkdtemp(prefix="rt-nginx-"))
        self.saved_log = ""
        d = self.dir
        (d / "tmp").mkdir()
        (d / "nginx.conf").write_text(textwrap.dedent(f"""\
            worker_processes 1;
            user root;
            error_log {d}/error.log info;
            events {{ worker_connections 64; }}
            http {{
                access_log off;
                client_body_temp_path {d}/tmp;
                proxy_temp_path {d}/tmp;
                fastcgi_temp_path {d}/tmp;
                uwsgi_temp_path {d}/tmp;
                scgi_temp_path {d}/tmp;
            """) + textwrap.indent(textwrap.dedent(http), "    ") + "}\n")
        self.argv = ["nginx", "-p", d, "-c", d / "nginx.conf", "-e", d / "error.log",
                     "-g", f"daemon off; pid {d}/nginx.pid;"]
        ns.exec(self.argv[:1] + ["-t"] + self.argv[1:])
        self.proc = ns.popen(self.argv)
        self.pid = self.proc.pid           # the master: ip netns exec execs nginx
        self.worker = wait_until(lambda: children(self.pid), 10, "nginx's worker")[0]
        wait_until(lambda: "start worker process" in self.log(), 10, "nginx started")

    def log(self):
        if not self.dir.exists():
            return self.saved_log
        try:
            return (self.dir / "error.log").read_text()
        except FileNotFoundError:
            return ""

    def stop(self):
        stop_process(self.proc, signal.SIGQUIT)     # graceful: the worker exits first
        self.saved_log = self.log()
        shutil.rmtree(self.dir, ignore_errors=True)


class Haproxy:
    """haproxy in the foreground (-db), its configuration and admin socket
    in a temporary directory. `body` follows the global and defaults sections."""

    def __init__(self, ns, body, nbthread=2):
        self.dir = Path(tempfile.mkdtemp(prefix="rt-haproxy-"))
        self.sock = self.dir / "admin.sock"
        cfg = self.dir / "haproxy.cfg"
        cfg.write_text(textwrap.dedent(f"""\
            global
                stats socket {self.sock} mode 600 level admin
                nbthread {nbthread}
            defaults
                mode tcp
                timeout connect 1s
                timeout client 5s
                timeout server 5s
            """) + textwrap.dedent(body))
        ns.exec(["haproxy", "-c", "-f", cfg])
        self.ns = ns
        self.proc = ns.popen(["haproxy", "-db", "-f", cfg])
        self.pid = self.proc.pid
        wait_until(self.sock.exists, 10, "haproxy's admin socket")

    def stat(self):
        """`show stat` over the admin socket (with socat): rows as dicts."""
        p = self.ns.exec(["socat", "stdio", f"unix-connect:{self.sock}"], input="show stat\n")
        lines = [line for line in p.stdout.splitlines() if line.strip()]
        names = lines[0].lstrip("# ").split(",")
        return [dict(zip(names, line.split(","))) for line in lines[1:]]

    def server(self, name):
        rows = [r for r in self.stat() if r["svname"] == name]
        assert len(rows) == 1, rows
        return rows[0]

    def stop(self):
        rc = stop_process(self.proc, signal.SIGTERM)
        out, err = self.proc.communicate()
        shutil.rmtree(self.dir, ignore_errors=True)
        return rc, err.decode("utf-8", "replace")


# -- text output of a default conntrace ---------------------------------------

class TextConntrace:
    """`conntrace ARGS` without -j: its text lines, read by a thread."""

    def __init__(self, binary, *args):
        self.proc = subprocess.Popen([binary, *map(str, args)], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.lines = []
        self.cond = threading.Condition()
        self.eof = False
        threading.Thread(target=self._read, daemon=True).start()
        self.wait_line(lambda line: line.startswith("TIME "), 15, "the header line")

    def _read(self):
        for raw in iter(self.proc.stdout.readline, b""):
            with self.cond:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self.cond.notify_all()
        with self.cond:
            self.eof = True
            self.cond.notify_all()

    def wait_line(self, pred, timeout, what):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for line in self.lines:
                    if pred(line):
                        return line
                left = deadline - time.monotonic()
                if self.eof or left <= 0:
                    raise AssertionError(f"conntrace (text): no {what} within {timeout}s; "
                                         f"lines {self.lines}")
                self.cond.wait(left)

    def stop(self):
        os.kill(self.proc.pid, signal.SIGINT)
        rc = self.proc.wait(15)
        err = self.proc.stderr.read().decode("utf-8", "replace")
        assert rc == 0, f"conntrace (text) exit {rc}: {err}"
        with self.cond:
            return list(self.lines)

    def kill(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


# -- checking a verdict -------------------------------------------------------

def mismatches(rec, **want):
    """check_verdict()'s problems plus every field that differs from `want`."""
    p = check_verdict(rec)
    for k, v in want.items():
        if rec.get(k) != v:
            p.append(f"{k}: got {rec.get(k)!r}, want {v!r}")
    return p


def assert_verdict(rec, context="", extra=(), **want):
    """Fail with every mismatch at once (and the problems in `extra`)."""
    p = mismatches(rec, **want) + list(extra)
    assert not p, (f"{len(p)} mismatches:\n  " + "\n  ".join(p) +
                   f"\nrecord: {json.dumps(rec)}\n{context}")


def events(rec, name):
    return [e for e in rec["evidence"] if e.get("event") == name]


def icmp_problems(rec, errno, icmp_type, icmp_code):
    """What is wrong with a verdict's account of an ICMP error that this
    host's firewall sent for the SYN. Its errno is the attempt's errno when
    it ended the attempt; when the application closed the socket first
    (having read it with SO_ERROR) it is left on the socket, and shows as an
    `icmp_error` evidence item instead. Where the kernel has a tracepoint
    for sending it (icmp:icmp_send, for IPv4 only: 6.18 has none for
    ICMPv6), the evidence shows this host sending it (`icmp_sent`, with
    the ICMP type and code when given)."""
    p = []
    left = [e.get("errno") for e in events(rec, "icmp_error")]
    if rec["errno"] is None:
        if errno not in left:
            p.append(f"errno null and no icmp_error {errno} in the evidence")
    elif rec["errno"] != errno:
        p.append(f"errno: got {rec['errno']!r}, want {errno!r}")
    if any(x != errno for x in left):
        p.append(f"icmp_error evidence {left}, want {errno}")
    if has_tracepoint("icmpv6_send" if rec["family"] == "ipv6" else "icmp_send"):
        sent = events(rec, "icmp_sent")
        if not sent:
            p.append("no icmp_sent evidence (this host's firewall sent the ICMP)")
        for e in sent:
            got = (e.get("icmp_type", icmp_type), e.get("icmp_code", icmp_code))
            if got != (icmp_type, icmp_code):
                p.append(f"icmp_sent {e}: want type {icmp_type} code {icmp_code}")
    return p


def full_queue_problems(rec, queue_max=1):
    """What is wrong with a verdict's evidence of a full accept queue: there
    must be some (an `accept_queue_full` event, or drops with the kernel's
    reason TCP_LISTEN_OVERFLOW, depending on the kernel's hooks), with the
    listener's limit, and the length it shows (null when only overflows over
    an interval are known) must be above that limit: the queue was full."""
    full = events(rec, "accept_queue_full")
    overflow = [e for e in events(rec, "drop") if e.get("reason") == "TCP_LISTEN_OVERFLOW"]
    p = []
    if not full and not overflow:
        p.append(f"no evidence of the full accept queue (accept_queue_full event or "
                 f"TCP_LISTEN_OVERFLOW drops): {rec['evidence']}")
    for e in full:
        q, qmax = e.get("accept_queue"), e.get("accept_queue_max")
        if qmax != queue_max or (q is not None and q <= qmax):
            p.append(f"accept_queue_full evidence does not show a full queue (more than "
                     f"{queue_max} queued): {e}")
    return p
