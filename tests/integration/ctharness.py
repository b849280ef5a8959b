# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Helpers for conntrace's integration tests.

Network namespaces (NetNS), the test tools (ctclient, ctlisten), nftables,
per-namespace /proc/net/netstat counters, and a runner for the conntrace
binary (Conntrace) that collects its JSON Lines output.

Network rules (see /work/shared/KERNEL-FACTS.md): traffic only to
127.0.0.0/8 or ::1 inside namespaces made here. The one non-loopback
address, 198.51.100.1, is only ever used behind an `unreachable` route in
the test's own namespace, so connect() fails locally without sending.
"""

import ipaddress
import json
import os
import random
import re
import secrets
import select
import signal
import subprocess
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The Makefile passes its $(OUT)/tests (build-asan/tests in a SANITIZE=1 run).
TOOLS_DIR = Path(os.environ.get("CT_TOOLS_DIR") or ROOT / "build" / "tests")
CTCLIENT = TOOLS_DIR / "ctclient"
CTLISTEN = TOOLS_DIR / "ctlisten"

START_TIMEOUT = 15.0     # conntrace: from exec to its start record
VERDICT_TIMEOUT = 20.0   # from the end of an attempt to its verdict record
STOP_TIMEOUT = 15.0      # from SIGINT/SIGTERM to exit

VERDICTS = ("ok", "slow", "timeout", "refused", "unreachable", "abandoned", "pending")

UNREACH_PREFIX = "198.51.100.0/24"   # TEST-NET-2, only behind an unreachable route
UNREACH_ADDR = "198.51.100.1"

def conntrace_path():
    return os.environ.get("CONNTRACE") or str(ROOT / "conntrace")


def run(cmd, *, input=None, timeout=30, check=True):
    """Run cmd (a list), capture text output; raise with details on failure."""
    p = subprocess.run([str(c) for c in cmd], input=input, capture_output=True,
                       text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(
            f"command failed (rc={p.returncode}): {' '.join(map(str, cmd))}\n"
            f"stdout: {p.stdout}\nstderr: {p.stderr}")
    return p


class _Ports:
    """Hand out destination ports unique within the session (20000-29999,
    below the ephemeral range), so a (netns, dport) pair identifies one
    attempt even when the kernel reuses a deleted namespace's inode."""

    def __init__(self):
        self._lock = threading.Lock()
        self._used = set()

    def take(self):
        with self._lock:
            while True:
                p = random.randint(20000, 29999)
                if p not in self._used:
                    self._used.add(p)
                    return p


PORTS = _Ports()


def free_port():
    return PORTS.take()


def readline_timeout(proc, timeout, what):
    """Read one line from proc.stdout (binary pipe) within timeout seconds.
    Reads byte by byte from the fd so nothing past the line is consumed."""
    fd = proc.stdout.fileno()
    deadline = time.monotonic() + timeout
    buf = b""
    while not buf.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; got {buf!r}")
        r, _, _ = select.select([fd], [], [], left)
        if not r:
            continue
        b = os.read(fd, 1)
        if not b:
            proc.wait(5)
            err = proc.stderr.read() if proc.stderr else b""
            raise AssertionError(f"{what}: process exited (rc={proc.returncode}) first; "
                                 f"stdout {buf!r}, stderr {err!r}")
        buf += b
    return buf.decode()


def parse_netstat(text):
    """/proc/net/netstat: pairs of 'Section: names...' / 'Section: values...'."""
    out = {}
    lines = text.splitlines()
    for i in range(0, len(lines) - 1, 2):
        hk, _, hv = lines[i].partition(":")
        vk, _, vv = lines[i + 1].partition(":")
        if hk != vk:
            raise AssertionError(f"unexpected /proc/net/netstat layout near {lines[i]!r}")
        names, values = hv.split(), vv.split()
        if len(names) != len(values):
            raise AssertionError(f"/proc/net/netstat {hk}: {len(names)} names, {len(values)} values")
        out[hk] = {n: int(v) for n, v in zip(names, values)}
    return out


class Listener:
    def __init__(self, ns, port, v6=False, backlog=None, no_accept=False, addr=None):
        cmd = [CTLISTEN]
        if v6:
            cmd.append("-6")
        if addr is not None:
            cmd += ["--addr", addr]
        if backlog is not None:
            cmd += ["--backlog", str(backlog)]
        if no_accept:
            cmd.append("--no-accept")
        cmd.append(str(port))
        self.proc = ns.popen(cmd)
        line = readline_timeout(self.proc, 10, f"ctlisten ready ({ns.name})")
        m = re.fullmatch(r"ready (\d+)\n", line)
        if not m:
            raise AssertionError(f"ctlisten printed {line!r}")
        self.port = int(m.group(1))
        if port:
            assert self.port == port


class Client:
    """One ctclient run inside a namespace. The spawned pid is the client's
    own pid: `ip netns exec` execs the command without forking."""

    def __init__(self, ns, addr, port, *, v6=False, name=None, nonblock=False,
                 abandon_after=None, timeout_ms=None, announce=False, wait_stdin=False):
        cmd = [CTCLIENT]
        if v6:
            cmd.append("-6")
        if name is not None:
            cmd += ["--name", name]
        if announce or wait_stdin:
            cmd.append("--announce")
        if wait_stdin:
            cmd.append("--wait-stdin")
        if nonblock:
            cmd.append("--nonblock")
        if abandon_after is not None:
            cmd += ["--abandon-after", str(abandon_after)]
        if timeout_ms is not None:
            cmd += ["--timeout-ms", str(timeout_ms)]
        cmd += ["--", addr, str(port)]
        self.ns = ns
        self.cmd = cmd
        self.wall_start = time.time()
        self.proc = ns.popen(cmd, stdin=subprocess.PIPE if wait_stdin else subprocess.DEVNULL)
        self.pid = self.proc.pid
        self.announced = None
        if announce or wait_stdin:
            self.announced = json.loads(readline_timeout(self.proc, 10, "ctclient --announce"))
            assert self.announced["pid"] == self.pid, (self.announced, self.pid)

    def go(self):
        """Release a --wait-stdin client: it connects now."""
        self.proc.stdin.write(b"\n")
        self.proc.stdin.flush()         # finish()'s communicate() closes it

    def finish(self, timeout=60):
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"ctclient did not finish within {timeout}s: {self.cmd}")
        self.wall_end = time.time()
        if self.proc.returncode != 0:
            raise AssertionError(f"ctclient rc={self.proc.returncode}: {self.cmd}\n"
                                 f"stdout {out!r}\nstderr {err!r}")
        lines = out.decode().splitlines()
        res = json.loads(lines[-1])
        assert res["event"] == "result", res
        assert res["pid"] == self.pid == res["tid"], \
            f"ctclient reported pid {res['pid']}/tid {res['tid']}, spawned pid {self.pid}"
        self.result = res
        return res


class NetNS:
    """A fresh network namespace with lo up; destroy() (or leaving the
    `with` block) kills every process started in it and deletes it."""

    def __init__(self, prefix="ct"):
        self.name = f"{prefix}-{secrets.token_hex(4)}"
        self.procs = []
        self.created = False
        self.inode = None

    def __enter__(self):
        return self.create()

    def __exit__(self, *exc):
        self.destroy()

    def create(self):
        run(["ip", "netns", "add", self.name])
        self.created = True
        try:
            run(["ip", "-n", self.name, "link", "set", "lo", "up"])
            self.inode = os.stat(f"/run/netns/{self.name}").st_ino
            inside = int(self.exec(["stat", "-Lc", "%i", "/proc/self/ns/net"]).stdout)
            assert inside == self.inode, (inside, self.inode)
        except BaseException:
            self.destroy()
            raise
        return self

    def destroy(self):
        for p in self.procs:
            if p.poll() is None:
                try:
                    os.kill(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                pass
            for f in (p.stdin, p.stdout, p.stderr):
                if f:
                    f.close()
        self.procs = []
        if self.created:
            run(["ip", "netns", "del", self.name], check=False)
            self.created = False
            assert not os.path.exists(f"/run/netns/{self.name}"), f"netns {self.name} left behind"

    # -- running things inside ------------------------------------------
    def exec(self, cmd, **kw):
        return run(["ip", "netns", "exec", self.name, *cmd], **kw)

    def popen(self, cmd, stdin=subprocess.DEVNULL):
        p = subprocess.Popen(["ip", "netns", "exec", self.name, *map(str, cmd)],
                             stdin=stdin, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        self.procs.append(p)
        return p

    def listen(self, port, **kw):
        return Listener(self, port, **kw)

    def client(self, addr, port, **kw):
        return Client(self, addr, port, **kw)

    # -- configuration --------------------------------------------------
    def sysctl(self, key, value):
        self.exec(["sysctl", "-q", "-w", f"{key}={value}"])
        got = self.exec(["sysctl", "-n", key]).stdout.strip()
        assert got == str(value), f"{key}: wrote {value}, reads {got}"

    def nft(self, script):
        self.exec(["nft", "-f", "-"], input=script)

    def drop_syns(self, port, table="cttest"):
        """Drop pure SYNs (SYN set, ACK clear) to `port`, IPv4 and IPv6.
        Hooked at *input*: the SYN leaves the client and is lost on the way
        in, as with a firewall in the path (kfree_skb reason NETFILTER_DROP),
        and the client's connect() sees no error, only silence. SYN-ACKs are
        not matched (ACK set), so the listener's replies are never hit."""
        self.nft(f"""
table inet {table} {{
    chain input {{
        type filter hook input priority 0; policy accept;
        tcp dport {port} tcp flags & (syn | ack) == syn drop
    }}
}}
""")
        listing = self.exec(["nft", "list", "table", "inet", table]).stdout
        assert f"dport {port}" in listing and "drop" in listing, listing

    def undrop(self, table="cttest"):
        self.exec(["nft", "delete", "table", "inet", table])

    def add_unreachable_route(self, prefix=UNREACH_PREFIX):
        run(["ip", "-n", self.name, "route", "add", "unreachable", prefix])
        self.assert_unreachable_route(prefix)

    def assert_unreachable_route(self, prefix=UNREACH_PREFIX):
        """The safety check before touching a non-loopback address."""
        routes = json.loads(run(["ip", "-n", self.name, "-j", "route", "show",
                                 "type", "unreachable"]).stdout or "[]")
        assert any(r.get("dst") == prefix and r.get("type", "unreachable") == "unreachable"
                   for r in routes), f"no unreachable route {prefix} in {self.name}: {routes}"
        got = run(["ip", "-n", self.name, "route", "get", UNREACH_ADDR], check=False)
        assert got.returncode != 0, f"{UNREACH_ADDR} is routable in {self.name}: {got.stdout}"

    # -- counters -------------------------------------------------------
    def netstat(self):
        return parse_netstat(self.exec(["cat", "/proc/net/netstat"]).stdout)

    def counter(self, name, section="TcpExt"):
        return self.netstat()[section][name]

    def syn_retrans(self):
        return self.counter("TCPSynRetrans")


# ---------------------------------------------------------------------------
# conntrace runner

class Conntrace:
    """Runs `conntrace -j ARGS`; a thread parses stdout lines as JSON into
    .records, another collects stderr. Use start(), wait_for(), stop()."""

    def __init__(self, *args, binary=None, unfiltered=None):
        self.binary = binary or conntrace_path()
        args = [str(a) for a in args]
        # Tracepoints are global: another test's or a benchmark's traffic on
        # this machine must not reach a test's counts or fill its ring, so
        # every test conntrace is filtered in the kernel to the namespace its
        # test made. An exception names its reason (unfiltered="why").
        if args[:1] != ["listen"] and not unfiltered and not any(
                a == "--netns" or a.startswith("--netns=") for a in args):
            raise AssertionError(f"conntrace {args} without --netns: filter it to the "
                                 "test's namespace, or say why not (unfiltered=...)")
        # tests written for the attempts a namespace makes see only those,
        # unless they ask for incoming ones (test_inbound.py)
        if args[:1] != ["listen"] and not any(a == "--direction" or
                                              a.startswith("--direction=") for a in args):
            args = ["--direction", "out", *args]
        self.argv = [self.binary, "-j", *args]
        self.records = []
        self.bad_lines = []
        self._stderr = []
        self.cond = threading.Condition()
        self.eof = False
        self.proc = None
        self.start_record = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.kill()

    def start(self, timeout=START_TIMEOUT):
        if not (os.path.isfile(self.binary) and os.access(self.binary, os.X_OK)):
            raise AssertionError(f"conntrace binary {self.binary!r} is missing or not "
                                 "executable: build it (make) or set CONNTRACE=/path")
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._threads = [threading.Thread(target=self._read_stdout, daemon=True),
                         threading.Thread(target=self._read_stderr, daemon=True)]
        for t in self._threads:
            t.start()
        try:
            rec = self.wait_for(lambda r: r.get("type") == "start", timeout,
                                what="the start record")
            assert self.records[0] is rec, \
                f"start record is not the first line: {self.records[0]}"
            problems = check_start(rec)
            assert not problems, f"bad start record {rec}: {problems}"
        except BaseException:
            self.kill()
            raise
        self.start_record = rec
        return self

    def _read_stdout(self):
        for raw in iter(self.proc.stdout.readline, b""):
            try:
                rec = json.loads(raw.decode("utf-8"))
                if not isinstance(rec, dict):
                    raise ValueError("not a JSON object")
            except ValueError as e:     # includes UnicodeDecodeError
                with self.cond:
                    self.bad_lines.append((raw, str(e)))
                    self.cond.notify_all()
                continue
            with self.cond:
                self.records.append(rec)
                self.cond.notify_all()
        with self.cond:
            self.eof = True
            self.cond.notify_all()

    def _read_stderr(self):
        for raw in iter(self.proc.stderr.readline, b""):
            with self.cond:
                self._stderr.append(raw)

    @property
    def stderr(self):
        with self.cond:
            return b"".join(self._stderr).decode("utf-8", "replace")

    def mark(self):
        with self.cond:
            return len(self.records)

    def wait_for(self, pred, timeout=VERDICT_TIMEOUT, what="a matching record", since=0,
                 context=None):
        """First record (from index `since`) for which pred is true.
        On timeout or exit, fail with the records `context` selects."""
        deadline = time.monotonic() + timeout
        i = since
        with self.cond:
            while True:
                while i < len(self.records):
                    r = self.records[i]
                    i += 1
                    if pred(r):
                        return r
                left = deadline - time.monotonic()
                if self.eof or left <= 0:
                    ctx = [r for r in self.records if context and context(r)]
                    why = (f"conntrace exited (rc={self.proc.poll()})" if self.eof
                           else f"nothing within {timeout}s (if its summary then shows "
                                "lost_records > 0, it dropped events under load)")
                    raise AssertionError(
                        f"waiting for {what}: {why}; {len(self.records)} records, "
                        f"{len(self.bad_lines)} bad lines {self.bad_lines[:3]}\n"
                        f"related records: {json.dumps(ctx[-10:])}\n"
                        f"stderr: {b''.join(self._stderr).decode('utf-8', 'replace')[-2000:]}")
                self.cond.wait(left)

    def verdicts(self, pred=lambda r: True, phase="connect"):
        """Verdict records of one phase (connect: the attempts; established:
        connections that died after the handshake; None: both)."""
        with self.cond:
            return [r for r in self.records if r.get("type") == "verdict" and pred(r)
                    and (phase is None or r.get("phase") == phase)]

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGINT, timeout=STOP_TIMEOUT):
        """Signal, expect exit 0 and exactly one summary record, last."""
        assert self.running(), f"conntrace already exited rc={self.proc.poll()}: {self.stderr}"
        os.kill(self.proc.pid, sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"conntrace ignored {sig.name} for {timeout}s")
        for t in self._threads:
            t.join(10)
        assert rc == 0, f"conntrace exit status {rc} after {sig.name}; stderr: {self.stderr}"
        assert not self.bad_lines, f"non-JSON lines on stdout: {self.bad_lines[:5]}"
        summaries = [r for r in self.records if r.get("type") == "summary"]
        assert len(summaries) == 1, f"{len(summaries)} summary records; last: {self.records[-3:]}"
        assert self.records[-1] is summaries[0], f"summary is not last: {self.records[-3:]}"
        problems = check_summary(summaries[0])
        assert not problems, f"bad summary {summaries[0]}: {problems}"
        return summaries[0]

    def kill(self):
        if self.running():
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


def flow(ns, dport):
    """Predicate: a verdict for an attempt from namespace ns to dport."""
    return lambda r: (r.get("type") == "verdict" and r.get("phase") == "connect"
                      and r.get("netns") == ns.inode and r.get("dport") == dport)


def established(ns, sport=None, dport=None):
    """Predicate: an established verdict in namespace ns, for a connection
    with these ports (None: any)."""
    return lambda r: (r.get("type") == "verdict" and r.get("phase") == "established"
                      and r.get("netns") == ns.inode
                      and (sport is None or r.get("sport") == sport)
                      and (dport is None or r.get("dport") == dport))


def related(ns, dport):
    """Diagnostic context when a verdict does not show up."""
    return lambda r: (r.get("type") == "verdict"
                      and (r.get("netns") == ns.inode or r.get("dport") == dport))


# ---------------------------------------------------------------------------
# record schema checks: each returns a list of problems (empty when fine)

def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


TS_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z")


def parse_ts(ts):
    """RFC 3339 UTC with nanoseconds -> float seconds since the epoch."""
    import calendar
    secs = calendar.timegm(time.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S"))
    return secs + int(ts[20:29]) / 1e9


def check_start(rec):
    p = []
    if rec.get("schema") != "2.0":
        p.append(f"schema {rec.get('schema')!r} != '2.0'")
    if not isinstance(rec.get("probes"), dict) or not rec["probes"]:
        p.append("probes is not a non-empty object")
    return p


def check_summary(rec):
    p = []
    v = rec.get("verdicts")
    if not isinstance(v, dict):
        return ["verdicts is not an object"]
    for k in VERDICTS:
        if not _is_int(v.get(k)) or v[k] < 0:
            p.append(f"verdicts.{k} = {v.get(k)!r}")
    for k in ("lost_records", "flow_evictions"):
        if not _is_int(rec.get(k)) or rec[k] < 0:
            p.append(f"{k} = {rec.get(k)!r}")
    return p


VERDICT_KEYS = ("type", "ts", "verdict", "cause", "detail", "pid", "tid", "comm", "netns",
                "cgroup_id", "family", "saddr", "sport", "daddr", "dport", "syn_retrans",
                "duration_us", "errno", "evidence")


def check_verdict(rec):
    p = [f"missing key {k!r}" for k in VERDICT_KEYS if k not in rec]
    if p:
        return p
    if not isinstance(rec["ts"], str) or not TS_RE.fullmatch(rec["ts"]):
        p.append(f"ts {rec['ts']!r} is not YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ")
    if rec["verdict"] not in VERDICTS:
        p.append(f"verdict {rec['verdict']!r}")
    if not (isinstance(rec["cause"], str) and rec["cause"]) and not (
            rec["verdict"] == "ok" and rec["cause"] is None):
        p.append(f"cause {rec['cause']!r}")
    if rec["detail"] is not None and not isinstance(rec["detail"], str):
        p.append(f"detail {rec['detail']!r}")
    for k in ("pid", "tid", "netns"):
        if not _is_int(rec[k]) or rec[k] <= 0:
            p.append(f"{k} {rec[k]!r}")
    for k in ("cgroup_id", "syn_retrans", "duration_us"):
        if not _is_int(rec[k]) or rec[k] < 0:
            p.append(f"{k} {rec[k]!r}")
    if not isinstance(rec["comm"], str):
        p.append(f"comm {rec['comm']!r}")
    fam = {"ipv4": ipaddress.IPv4Address, "ipv6": ipaddress.IPv6Address}.get(rec["family"])
    if fam is None:
        p.append(f"family {rec['family']!r}")
    else:
        for k in ("saddr", "daddr"):
            try:
                fam(rec[k])
            except (ValueError, TypeError):
                p.append(f"{k} {rec[k]!r} is not an {rec['family']} address")
    if not _is_int(rec["sport"]) or not 0 <= rec["sport"] <= 65535:
        p.append(f"sport {rec['sport']!r}")
    if not _is_int(rec["dport"]) or not 1 <= rec["dport"] <= 65535:
        p.append(f"dport {rec['dport']!r}")
    if rec["errno"] is not None and not (isinstance(rec["errno"], str)
                                         and re.fullmatch(r"E[A-Z0-9]+", rec["errno"])):
        p.append(f"errno {rec['errno']!r}")
    if not isinstance(rec["evidence"], list):
        p.append(f"evidence {rec['evidence']!r}")
    return p


def cgroup2_id_of_self():
    """Inode of this process's cgroup v2 directory (= the BPF cgroup id a
    child inherits), or None when no cgroup2 hierarchy is mounted."""
    path = None
    with open("/proc/self/cgroup") as f:
        for line in f:
            if line.startswith("0::"):
                path = line[3:].strip()
    if path is None:
        return None
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, _, post = line.partition(" - ")
            if post.split()[0] == "cgroup2":
                mnt = pre.split()[4]
                return os.stat(mnt + path).st_ino
    return None


# ---------------------------------------------------------------------------
# Faults and floods (test_faults.py): the BPF objects a process owns, its
# memory, the kernel's own loss counters.

SYNFLOOD = TOOLS_DIR / "synflood"
VMTEST = os.environ.get("VMTEST") == "1"


def bpf_fd_ids(pid):
    """The BPF objects process pid holds open, read from /proc/PID/fdinfo:
    {"prog": ids, "map": ids, "link": ids}. (This bpftool prints no `pids`
    column, so a process's objects are found from the process itself.)"""
    ids = {"prog": set(), "map": set(), "link": set()}
    fddir = f"/proc/{pid}/fdinfo"
    for fd in os.listdir(fddir):
        try:
            with open(f"{fddir}/{fd}") as f:
                text = f.read()
        except OSError:
            continue        # closed meanwhile
        m = re.search(r"^link_id:\s*(\d+)", text, re.M)
        if m:               # a link's fdinfo names its program too
            ids["link"].add(int(m.group(1)))
            continue
        for kind in ("prog", "map"):
            m = re.search(rf"^{kind}_id:\s*(\d+)", text, re.M)
            if m:
                ids[kind].add(int(m.group(1)))
    return ids


def bpf_live_ids(kind):
    """Ids of every BPF object of this kind (prog, map, link) on the machine."""
    out = run(["bpftool", "-j", kind, "show"]).stdout
    return {o["id"] for o in json.loads(out or "[]")}


def bpf_objects_left(ids, timeout=10.0):
    """Of a dict like bpf_fd_ids() returns, what still exists after up to
    `timeout` s (the kernel frees BPF objects asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        left = {k: v & bpf_live_ids(k) for k, v in ids.items()}
        if not any(left.values()) or time.monotonic() > deadline:
            return {k: sorted(v) for k, v in left.items() if v}
        time.sleep(0.2)


def bpf_map_info(map_id):
    return json.loads(run(["bpftool", "-j", "map", "show", "id", str(map_id)]).stdout)


def bpf_maps_of(pid):
    """name -> `bpftool map show` info, for the maps process pid holds."""
    return {i["name"]: i for i in map(bpf_map_info, bpf_fd_ids(pid)["map"])}


def counter_names():
    """enum ct_counter of bpf/conntrace.h, in order (the counters map's keys)."""
    text = (ROOT / "bpf" / "conntrace.h").read_text()
    body = re.search(r"enum ct_counter \{(.*?)\};", text, re.S).group(1)
    return [n for n in re.findall(r"^\s*(CT_CNT_\w+)", body, re.M) if n != "CT_CNT_MAX"]


def kernel_counters(pid):
    """The kernel side's per-CPU counters of the conntrace process pid,
    summed over CPUs, read with bpftool: {"CT_CNT_RINGBUF_LOST": n, ...}."""
    names = counter_names()
    info = bpf_maps_of(pid)["counters"]
    dump = json.loads(run(["bpftool", "-j", "map", "dump", "id", str(info["id"])]).stdout)
    out = {}
    for e in dump:
        if "formatted" in e:
            key = e["formatted"]["key"]
            total = sum(v["value"] for v in e["formatted"]["values"])
        else:               # no BTF: little-endian hex bytes
            key = int.from_bytes(bytes(int(b, 16) for b in e["key"]), "little")
            total = sum(int.from_bytes(bytes(int(b, 16) for b in v["value"]), "little")
                        for v in e["values"])
        out[names[key]] = total
    return out


def proc_status(pid):
    """/proc/PID/status as a dict of strings."""
    with open(f"/proc/{pid}/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def rss_kb(pid):
    return int(proc_status(pid)["VmRSS"].split()[0])


def synflood(ns, addr, port, *, count, concurrency=1000, sources=1, accept=False,
             spread_ms=0, hold_ms=0, name="synflood", timeout=300):
    """Run tests/tools/synflood in ns; its result line as a dict."""
    cmd = [SYNFLOOD, "--count", count, "--concurrency", concurrency, "--name", name]
    if sources > 1:
        cmd += ["--sources", sources]
    if accept:
        cmd.append("--accept")
    if spread_ms:
        cmd += ["--spread-ms", spread_ms]
    if hold_ms:
        cmd += ["--hold-ms", hold_ms]
    if ":" in addr:
        cmd.append("-6")
    p = ns.exec([*map(str, cmd), "--", addr, str(port)], timeout=timeout)
    res = json.loads(p.stdout.splitlines()[-1])
    assert res["event"] == "done" and res["count"] == count, res
    return res


class HeldConntrace(Conntrace):
    """A conntrace whose standard output nobody reads (after its start
    record) until resume()."""

    def start(self, timeout=START_TIMEOUT):
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._threads = [threading.Thread(target=self._read_stderr, daemon=True)]
        self._threads[0].start()
        try:
            rec = json.loads(readline_timeout(self.proc, timeout, "the start record"))
            assert rec.get("type") == "start", rec
        except BaseException:
            self.kill()
            raise
        self.records.append(rec)
        self.start_record = rec
        return self

    def resume(self):
        t = threading.Thread(target=self._read_stdout, daemon=True)
        t.start()
        self._threads.append(t)
