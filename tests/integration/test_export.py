# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Export (issue 4): JSON Lines that validate against docs/schema.json, the
output file (SIGHUP reopen, rotation, write errors), Prometheus metrics
scraped by a real Prometheus server, bad export options, `make install` and
the systemd unit.

Network: every connection attempt is made inside a namespace made here, to
127.0.0.1 or ::1 (the unreach scenario's 198.51.100.1 sits behind an
unreachable route in its namespace and is never sent to). The metrics
endpoint and the Prometheus server run in a namespace of their own, on its
loopback. Each test selects its own attempts with --port: ports 30000-32699
are this module's only (the other integration tests draw from 20000-29999,
the ephemeral range starts at 32768).
"""

import json
import os
import random
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.parse
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from ctharness import ROOT, NetNS, conntrace_path, run
from ctschema import SCHEMA_PATH, check_file, check_line, check_record
from scenarios import EXPECTED_RESULT, SPECS

PROMETHEUS = "/usr/bin/prometheus"
PROMTOOL = "/usr/bin/promtool"
PYTHON = "/usr/bin/python3"
METRICS_PORT = 9917      # inside a namespace made here: nothing else listens there
PROM_PORT = 9090

# ctclient decodes C escapes: a " b \ c newline d ESC e 0xff (0xff alone is not UTF-8)
HOSTILE_ARG = r'a"b\\c\nd\ee\xff'
HOSTILE = b'a"b\\c\nd\x1be\xff'

_ports = iter(random.sample(range(30000, 32700), 100))


def export_port():
    return next(_ports)


class ExportNS(NetNS):
    """A test namespace (its own name prefix)."""

    def __init__(self, prefix="ctexp"):
        super().__init__(prefix)


@pytest.fixture
def xns():
    with ExportNS() as ns:
        yield ns


def wait_until(pred, timeout, what, interval=0.1):
    """pred()'s first true value within timeout seconds (bounded, polled)."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class Bg:
    """A running process whose stdout and stderr threads collect."""

    def __init__(self, proc):
        self.proc = proc
        self.pid = proc.pid
        self._out, self._err = [], []
        self._threads = [threading.Thread(target=self._drain, args=(proc.stdout, self._out),
                                          daemon=True),
                         threading.Thread(target=self._drain, args=(proc.stderr, self._err),
                                          daemon=True)]
        for t in self._threads:
            t.start()

    @staticmethod
    def _drain(f, into):
        for chunk in iter(lambda: f.read1(65536), b""):
            into.append(chunk)

    @property
    def out(self):
        return b"".join(self._out)

    @property
    def err(self):
        return b"".join(self._err).decode("utf-8", "replace")

    def running(self):
        return self.proc.poll() is None

    def stop(self, sig=signal.SIGINT, timeout=15):
        if self.running():
            os.kill(self.pid, sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"pid {self.pid} ignored {sig.name} for {timeout}s")
        for t in self._threads:
            t.join(10)
        return rc


def start_conntrace(*args, ns=None):
    args = [str(a) for a in args]
    # like ctharness.Conntrace: filtered in the kernel to the test's namespace
    assert args[:1] == ["listen"] or "--netns" in args, f"conntrace {args} without --netns"
    # the scenarios count outgoing attempts; incoming ones: test_inbound.py
    if args[:1] != ["listen"] and "--direction" not in args:
        args = ["--direction", "out", *args]
    cmd = [conntrace_path(), *args]
    assert os.access(cmd[0], os.X_OK), f"{cmd[0]} missing: build it (make) or set CONNTRACE"
    if ns is not None:
        return Bg(ns.popen(cmd))
    return Bg(subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE))


def records(path):
    """The whole lines of a JSON Lines file, parsed (a line being written is skipped)."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in data.split(b"\n")[:-1]]


def wait_start(path, ct):
    def started():
        assert ct.running(), f"conntrace exited (rc={ct.proc.poll()}): {ct.err}"
        recs = records(path)
        return recs and recs[0]
    first = wait_until(started, 20, f"the start record in {path}")
    assert first["type"] == "start", f"first record is not start: {first}"


def verdicts(recs):
    return [r for r in recs if r["type"] == "verdict"]


_GET = """
import sys, urllib.error, urllib.request
try:
    r = urllib.request.urlopen(sys.argv[1], timeout=5)
    sys.stdout.write(f"{r.status}\\n{r.headers.get('Content-Type')}\\n" + r.read().decode())
except urllib.error.HTTPError as e:
    sys.stdout.write(f"{e.code}\\n\\n")
"""


def ns_get(ns, url):
    """GET url from inside ns: (status, content type, body), or (None, error, '')."""
    p = ns.exec([PYTHON, "-c", _GET, url], check=False, timeout=20)
    if p.returncode != 0:
        return None, p.stderr.strip().splitlines()[-1:], ""
    status, ctype, body = p.stdout.split("\n", 2)
    return int(status), ctype, body


def sample(text, series):
    """The value of `series` (name and labels exactly) in exposition text, or None."""
    for line in text.splitlines():
        name, _, value = line.rpartition(" ")
        if name == series:
            return float(value)
    return None


def connect_loop(ns, port, n, gap=0.005, hold=0.0, nonblock=False):
    """n attempts to 127.0.0.1:port from one python process in ns; prints how
    many were refused. nonblock: leave each pending and close all after hold s."""
    code = """
import socket, sys, time
port, n, gap, hold, nonblock = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), sys.argv[5] == "1"
refused, keep = 0, []
for i in range(n):
    s = socket.socket()
    if nonblock:
        s.setblocking(False)
        try:
            s.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        keep.append(s)
    else:
        try:
            s.connect(("127.0.0.1", port))
        except ConnectionRefusedError:
            refused += 1
        s.close()
    time.sleep(gap)
time.sleep(hold)
print(refused)
"""
    return ns.popen([PYTHON, "-c", code, port, n, gap, hold, "1" if nonblock else "0"])


# ---------------------------------------------------------------------------
# Prometheus


class Prometheus:
    """Debian's Prometheus inside ns, on its loopback, scraping target every
    second, with its storage in a temporary directory removed by stop()."""

    def __init__(self, ns, target):
        assert os.access(PROMETHEUS, os.X_OK), \
            f"{PROMETHEUS} missing: scripts/install-deps.sh installs Debian's prometheus"
        self.ns = ns
        self.dir = tempfile.mkdtemp(prefix="ct-prom-")
        cfg = Path(self.dir, "prometheus.yml")
        cfg.write_text("global:\n"
                       "  scrape_interval: 1s\n"
                       "  scrape_timeout: 1s\n"
                       "scrape_configs:\n"
                       "  - job_name: conntrace\n"
                       "    static_configs:\n"
                       f"      - targets: ['{target}']\n")
        self.bg = Bg(ns.popen([PROMETHEUS, f"--config.file={cfg}",
                               f"--storage.tsdb.path={self.dir}/data",
                               f"--web.listen-address=127.0.0.1:{PROM_PORT}",
                               "--log.level=warn"]))
        self.base = f"http://127.0.0.1:{PROM_PORT}"

        def ready():
            assert self.bg.running(), f"prometheus exited: {self.bg.err[-2000:]}"
            return ns_get(ns, self.base + "/-/ready")[0] == 200
        wait_until(ready, 60, "Prometheus to be ready", interval=0.3)

    def query(self, q):
        status, _, body = ns_get(self.ns, self.base + "/api/v1/query?" +
                                 urllib.parse.urlencode({"query": q}))
        assert status == 200, f"query {q!r}: HTTP {status} {body[:300]}"
        data = json.loads(body)
        assert data["status"] == "success", data
        return data["data"]["result"]

    def stop(self):
        try:
            self.bg.stop(signal.SIGTERM, timeout=30)
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


# ---------------------------------------------------------------------------
# One run for the scenarios: every scenario of scenarios.py and a hostile
# task name, all to one port, under a JSON conntrace (file and metrics,
# scraped by Prometheus) and a text conntrace.


class ExportRun:
    def __init__(self):
        self.ports = {}             # name -> its port
        self.tmp = Path(tempfile.mkdtemp(prefix="ct-export-"))
        self.out = self.tmp / "out.jsonl"
        self.mns = self.ans = self.ct = self.text = self.prom = None
        self.attempts = {}          # name -> (expected verdict, cause, netns inode, client result)
        self.port = None            # the hostile attempt's
        self.stopped = False

    def start(self):
        # conntrace serves its metrics and Prometheus scrapes them in mns (its
        # scrapes are connections too); the attempts are made in ans
        self.mns = ExportNS("ctexp-m").create()
        self.ans = ExportNS("ctexp-a").create()
        # both filtered to the one namespace every attempt is made in: its
        # counts are this run's alone, whatever else runs on the machine
        self.ct = start_conntrace("-j", "-a", "--netns", self.ans.inode, "--ring-size", "8M",
                                  "-o", self.out, "--metrics", f"127.0.0.1:{METRICS_PORT}",
                                  ns=self.mns)
        wait_start(self.out, self.ct)
        self.text = start_conntrace("-a", "--netns", self.ans.inode, "--color", "never")
        wait_until(lambda: self.text.out.startswith(b"TIME ") or not self.text.running(), 20,
                   "the text header")
        assert self.text.running(), f"text conntrace exited: {self.text.err}"
        self.prom = Prometheus(self.mns, f"127.0.0.1:{METRICS_PORT}")

    def run_attempts(self):
        """Every scenario and the hostile name, in the one namespace ans, each
        to a port of its own (so, unlike scenarios.run_all, the attempts
        share the namespace's sysctls, routes and SYN retransmit counter)."""
        ns = self.ans

        def scenario(spec):
            port = self.ports[spec.name] = export_port()
            c = spec.attempt(ns, port, spec.comm, spec)
            assert c.result["result"] in EXPECTED_RESULT[spec.verdict], (spec.name, c.result)
            return spec.verdict, spec.cause or "established", ns.inode, c.result

        def hostile(_):
            self.port = self.ports["hostile"] = export_port()
            c = ns.client("127.0.0.1", self.port, name=HOSTILE_ARG)
            c.finish()
            assert c.result["result"] == "ECONNREFUSED", c.result
            return "refused", "no_listener", ns.inode, c.result

        # slow first, alone: it waits for a SYN retransmit of the namespace,
        # and any other attempt's would do
        slow = [s for s in SPECS.values() if s.verdict == "slow"]
        for s in slow:
            self.attempts[s.name] = scenario(s)
        jobs = [(s.name, scenario, s) for s in SPECS.values() if s not in slow] + \
            [("hostile", hostile, None)]
        with ThreadPoolExecutor(max_workers=len(jobs)) as ex:
            futs = {name: ex.submit(fn, arg) for name, fn, arg in jobs}
            for name, f in futs.items():
                self.attempts[name] = f.result()

        def missing():
            have = {(r["netns"], r["dport"]) for r in verdicts(records(self.out))}
            return [name for name, a in self.attempts.items()
                    if (a[2], self.ports[name]) not in have]
        try:
            wait_until(lambda: not missing(), 30, "a verdict for every attempt in the output file")
        except AssertionError as e:
            # name the attempts without a verdict and show what conntrace did
            # write for their ports: a flake here must be diagnosable from CI's log
            gone = missing()
            ports = {self.ports[n] for n in gone}
            seen = [r for r in records(self.out)
                    if r.get("dport") in ports or r.get("type") not in ("verdict", "start")]
            text = [ln for ln in self.text.out.decode("utf-8", "replace").splitlines()
                    if any(f":{p}" in ln for p in ports)]
            raise AssertionError(f"{e}: no verdict for {gone} (ports {sorted(ports)}, "
                                 f"attempts {[self.attempts[n] for n in gone]}); "
                                 f"records for those ports (and every other kind): {seen}; "
                                 f"the text conntrace's lines for them: {text}; "
                                 f"conntrace stderr: {self.ct.err[-2000:]!r}") from None

    def expected(self):
        return Counter((v, c) for v, c, _, _ in self.attempts.values())

    def stop(self):
        """Stops both conntraces (their exit statuses are checked by the tests)."""
        if not self.stopped:
            self.stopped = True
            self.ct_rc = self.ct.stop()
            self.text_rc = self.text.stop()

    def close(self):
        try:
            for b in (self.ct, self.text):
                if b is not None and b.running():
                    b.stop(signal.SIGKILL)
            if self.prom is not None:
                self.prom.stop()
        finally:
            for ns in (self.ans, self.mns):
                if ns is not None:
                    ns.destroy()
            shutil.rmtree(self.tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def export_run():
    r = ExportRun()
    try:
        r.start()
        r.run_attempts()
        yield r
    finally:
        r.close()


def test_prometheus_scrapes_the_scenario_counts(export_run):
    """A real Prometheus scrapes conntrace every second; its API must show
    conntrace_verdicts_total with exactly the counts the scenarios produced
    (and that the output file shows), the histogram's counts per verdict and
    the SYN retransmits of the same verdicts."""
    r = export_run
    want = r.expected()
    recs = verdicts(records(r.out))
    in_file = Counter((x["verdict"], x["cause"]) for x in recs)
    assert in_file == want, f"output file {dict(in_file)} != scenarios {dict(want)}"

    def prom_counts():
        res = r.prom.query("conntrace_verdicts_total")
        return {(s["metric"]["verdict"], s["metric"]["cause"]): int(float(s["value"][1]))
                for s in res}
    got = None

    def matches():
        nonlocal got
        got = prom_counts()
        return got == dict(want)
    try:
        wait_until(matches, 30, "Prometheus to show the scenario counts", interval=0.5)
    except AssertionError:
        raise AssertionError(f"Prometheus shows {got}, the scenarios produced {dict(want)}")
    print(f"\nPrometheus: conntrace_verdicts_total = {json.dumps(sorted(got.items()))}")

    hist = {s["metric"]["verdict"]: int(float(s["value"][1]))
            for s in r.prom.query("conntrace_connect_duration_seconds_count")}
    per_verdict = Counter(x["verdict"] for x in recs)
    assert {v: n for v, n in hist.items() if n} == dict(per_verdict), (hist, per_verdict)
    retrans = r.prom.query("conntrace_syn_retransmits_total")
    assert int(float(retrans[0]["value"][1])) == sum(x["syn_retrans"] for x in recs), retrans
    up = r.prom.query('up{job="conntrace"}')
    assert up and up[0]["value"][1] == "1", up
    info = r.prom.query("conntrace_build_info")
    assert info and info[0]["metric"]["kernel"] == os.uname().release, info
    assert "connect=" in info[0]["metric"]["probes"], info


def test_promtool_checks_the_scraped_text(export_run):
    status, ctype, body = ns_get(export_run.mns, f"http://127.0.0.1:{METRICS_PORT}/metrics")
    assert status == 200, (status, ctype)
    assert ctype == "text/plain; version=0.0.4; charset=utf-8", ctype
    assert os.access(PROMTOOL, os.X_OK), f"{PROMTOOL} missing (Debian's prometheus package)"
    p = subprocess.run([PROMTOOL, "check", "metrics"], input=body.encode(),
                       capture_output=True, timeout=30)
    assert p.returncode == 0 and not p.stdout.strip() and not p.stderr.strip(), \
        f"promtool check metrics: rc={p.returncode} {p.stdout!r} {p.stderr!r}\n{body[:2000]}"
    print(f"\npromtool check metrics: rc=0, {len(body.splitlines())} lines checked")


def test_hostile_task_name(export_run):
    """A task name with ", \\, a newline, ESC and a byte that is not UTF-8:
    its verdict line is one valid JSON line that round-trips the name (each
    non-UTF-8 byte as its Latin-1 code point), and the text line carries no
    raw control byte."""
    r = export_run
    _, _, inode, client = r.attempts["hostile"]
    assert bytes.fromhex(client["comm_hex"]) == HOSTILE, client     # the kernel has it
    raw = [line for line in r.out.read_bytes().split(b"\n")
           if b"\"type\":\"verdict\"" in line and f"\"netns\":{inode},".encode() in line
           and f"\"dport\":{r.port},".encode() in line]
    assert len(raw) == 1, raw
    assert not check_line(raw[0]), check_line(raw[0])
    assert b'"comm":"a\\"b\\\\c\\nd\\u001be\\u00ff"' in raw[0], raw[0]
    rec = json.loads(raw[0])
    assert rec["comm"].encode("latin-1") == HOSTILE, rec["comm"]
    assert rec["verdict"] == "refused" and rec["pid"] == client["pid"], rec

    # text: wait for its line, then check every line the text writer wrote
    escaped = b'a"b\\\\c\\x0ad\\x1b'        # the COMM column: 15 characters of the escape
    wait_until(lambda: escaped in r.text.out, 20, "the hostile name in the text output")
    for line in r.text.out.split(b"\n"):
        bad = [b for b in line if b < 0x20 or b == 0x7f]
        assert not bad, f"raw control bytes {bad} in text line {line!r}"
        text = line.decode("utf-8")        # valid UTF-8, so no stray byte either
        assert not any(0x80 <= ord(ch) <= 0x9f for ch in text), f"C1 control in {line!r}"
    line = next(x for x in r.text.out.split(b"\n") if escaped in x)
    assert b"REFUSED" in line and f"127.0.0.1:{r.port}".encode() in line, line


def test_every_line_validates_against_the_schema(export_run):
    """Stop both conntraces; every line of the file (start, one verdict per
    scenario, lost if any, summary) is valid JSON, validates against
    docs/schema.json, and the summary counts what was written."""
    r = export_run
    r.stop()
    assert r.ct_rc == 0, f"conntrace exit status {r.ct_rc}: {r.ct.err}"
    assert r.text_rc == 0, f"text conntrace exit status {r.text_rc}: {r.text.err}"
    assert r.ct.out == b"", f"-o must leave stdout alone: {r.ct.out[:200]!r}"
    recs, problems = check_file(r.out)
    assert not problems, "\n".join(problems[:10])
    types = Counter(x["type"] for x in recs)
    assert recs[0]["type"] == "start" and recs[-1]["type"] == "summary", types
    assert types["start"] == 1 and types["summary"] == 1, types
    summary = recs[-1]
    per_verdict = Counter(x["verdict"] for x in recs if x["type"] == "verdict")
    # --netns: the namespace's attempts are all over, none is pending
    for v, n in summary["verdicts"].items():
        assert n == per_verdict[v], (summary["verdicts"], per_verdict)
    assert summary["output_write_errors"] == 0 and summary["output_records_lost"] == 0
    print(f"\n{len(recs)} lines validated: {dict(types)}")


# ---------------------------------------------------------------------------
# The output file


def test_sighup_after_the_file_was_moved(tmp_path, xns):
    """logrotate's way: move the file, SIGHUP. Records from then on go to a
    new file, those before stay in the moved one, and none is lost."""
    port, n = export_port(), 300
    out, moved = tmp_path / "out.jsonl", tmp_path / "out.jsonl.1"
    ct = start_conntrace("-j", "-a", "--netns", xns.inode, "--port", port, "--ring-size", "8M",
                         "-o", out)
    try:
        wait_start(out, ct)
        client = Bg(connect_loop(xns, port, n, gap=0.005))
        wait_until(lambda: len(verdicts(records(out))) >= 30, 20, "30 verdicts before the move")
        os.rename(out, moved)
        os.kill(ct.pid, signal.SIGHUP)
        assert client.proc.wait(60) == 0, client.err
        assert client.out.strip() == str(n).encode(), f"client: {client.out!r} {client.err}"
        # no settle time: the stop below drains the ring and decides every flow
        assert ct.running(), f"conntrace ended on SIGHUP: {ct.err}"
    finally:
        rc = ct.stop()
    assert rc == 0, ct.err
    old, p_old = check_file(moved)
    new, p_new = check_file(out)
    assert not p_old and not p_new, (p_old + p_new)[:5]
    assert old[0]["type"] == "start" and new[-1]["type"] == "summary"
    v_old, v_new = verdicts(old), verdicts(new)
    assert v_old and v_new, f"{len(v_old)} verdicts before the HUP, {len(v_new)} after"
    mine = [v for v in v_old + v_new if v["pid"] == client.pid]
    assert len(mine) == n, f"{len(mine)} verdicts for {n} attempts ({len(v_old)} + {len(v_new)})"
    assert all(v["verdict"] == "refused" for v in mine), Counter(v["verdict"] for v in mine)
    summary = new[-1]
    assert summary["verdicts"]["refused"] == n and summary["output_records_lost"] == 0, summary
    assert summary["lost_records"] == 0, f"the kernel lost records: {summary}"


def test_rotation_keeps_every_record(tmp_path, xns):
    """--rotate-size 4K: files of whole lines under 4K, oldest to newest
    without a gap; --rotate-keep bounds their number."""
    port, n = export_port(), 60
    out = tmp_path / "out.jsonl"
    ct = start_conntrace("-j", "-a", "--netns", xns.inode, "--port", port, "--ring-size", "8M",
                         "-o", out, "--rotate-size", "4K", "--rotate-keep", "100")
    try:
        wait_start(out, ct)
        client = Bg(connect_loop(xns, port, n, gap=0.005))
        assert client.proc.wait(60) == 0, client.err      # the stop drains the rest
    finally:
        rc = ct.stop()
    assert rc == 0, ct.err
    rotated = sorted(tmp_path.glob("out.jsonl.*"), key=lambda p: -int(p.suffix[1:]))
    files = rotated + [out]
    assert len(rotated) >= 3, f"only {len(rotated)} rotations for {n} verdicts of ~600 bytes"
    assert [int(p.suffix[1:]) for p in rotated] == list(range(len(rotated), 0, -1))
    allrecs = []
    for p in files:
        assert p.stat().st_size <= 4096, f"{p}: {p.stat().st_size} bytes"
        recs, problems = check_file(p)
        assert not problems, problems[:5]
        allrecs += recs
    assert allrecs[0]["type"] == "start" and allrecs[-1]["type"] == "summary"
    mine = [v for v in verdicts(allrecs) if v["pid"] == client.pid]
    assert len(mine) == n, f"{len(mine)} verdicts across {len(files)} files for {n} attempts"
    assert allrecs[-1]["verdicts"]["refused"] == n

    # --rotate-keep 2 on the same traffic: FILE, FILE.1, FILE.2 and no more
    for p in files:
        p.unlink()
    ct = start_conntrace("-j", "-a", "--netns", xns.inode, "--port", port, "-o", out,
                         "--rotate-size", "4K", "--rotate-keep", "2")
    try:
        wait_start(out, ct)
        client = Bg(connect_loop(xns, port, n, gap=0.005))
        assert client.proc.wait(60) == 0, client.err
    finally:
        assert ct.stop() == 0, ct.err
    assert sorted(p.name for p in tmp_path.iterdir()) == \
        ["out.jsonl", "out.jsonl.1", "out.jsonl.2"], list(tmp_path.iterdir())


def test_write_errors_are_counted_not_fatal(xns):
    """-o /dev/full: every write fails with ENOSPC. conntrace says so once,
    goes on tracing, counts the errors and the lost records (metrics, the
    closing line) and exits 0."""
    port, n = export_port(), 5
    ct = start_conntrace("-j", "-a", "--netns", xns.inode, "--port", port, "-o", "/dev/full",
                         "--metrics", f"127.0.0.1:{METRICS_PORT}", ns=xns)
    try:
        url = f"http://127.0.0.1:{METRICS_PORT}/metrics"
        wait_until(lambda: not ct.running() or ns_get(xns, url)[0] == 200, 20, "the metrics")
        assert ct.running(), ct.err
        client = Bg(connect_loop(xns, port, n, gap=0.01))
        assert client.proc.wait(30) == 0, client.err

        def counted():
            body = ns_get(xns, url)[2]
            lost = sample(body, "conntrace_output_records_lost_total")
            errors = sample(body, "conntrace_output_write_errors_total")
            return lost is not None and lost >= n + 1 and errors >= 1 and (lost, errors)
        lost, errors = wait_until(counted, 20, "the write errors in the metrics")
        assert ct.running(), f"conntrace ended on write errors: {ct.err}"
        lines = ct.err.splitlines()
        assert len(lines) == 1 and "No space left on device" in lines[0], lines
    finally:
        rc = ct.stop()
    assert rc == 0, ct.err
    lines = ct.err.splitlines()
    assert len(lines) == 2 and re.search(r"\d+ write errors, \d+ records lost", lines[1]), lines


# ---------------------------------------------------------------------------
# Listeners: listen_overflow records and the per-listener metrics


def test_listener_overflows_in_records_and_metrics(tmp_path, xns):
    port = export_port()
    out = tmp_path / "out.jsonl"
    xns.listen(port, backlog=1, no_accept=True)      # holds 2, then drops SYNs
    ct = start_conntrace("-j", "-a", "--netns", xns.inode, "--port", port, "-o", out,
                         "--metrics", f"127.0.0.1:{METRICS_PORT}", ns=xns)
    labels = f'{{netns="{xns.inode}",laddr="127.0.0.1",lport="{port}"}}'
    try:
        wait_start(out, ct)
        client = Bg(connect_loop(xns, port, 6, gap=0.05, hold=4, nonblock=True))
        url = f"http://127.0.0.1:{METRICS_PORT}/metrics"

        def overflowing():
            body = ns_get(xns, url)[2]
            v = sample(body, "conntrace_listen_overflows_total" + labels)
            return v and (v, body)
        value, body = wait_until(overflowing, 20, "conntrace_listen_overflows_total > 0")
        assert sample(body, "conntrace_accept_queue_length_max" + labels) == 1, body
        assert sample(body, "conntrace_accept_queue_length" + labels) == 2, body

        # the listener stream sees it too, and validates
        p = run([conntrace_path(), "listen", "-j", "--once"], timeout=60)
        lines = p.stdout.encode().splitlines()
        assert lines, p.stderr
        for line in lines:
            assert not check_line(line), (check_line(line), line[:300])
        mine = [json.loads(x) for x in lines if json.loads(x)["type"] == "listener"
                and json.loads(x)["netns"] == xns.inode and json.loads(x)["lport"] == port]
        assert len(mine) == 1 and mine[0]["accept_queue_max"] == 1, mine
        client.proc.wait(30)
    finally:
        rc = ct.stop()
    assert rc == 0, ct.err
    recs, problems = check_file(out)
    assert not problems, problems[:5]
    overflows = [x for x in recs if x["type"] == "listen_overflow" and x["netns"] == xns.inode]
    assert overflows, [x["type"] for x in recs]
    # the metric is the total of one of the readings the records report
    assert value in {x["overflows_total"] for x in overflows}, (value, overflows)


# ---------------------------------------------------------------------------
# Bad input


def test_metrics_port_in_use_is_one_line_and_exit_2(xns):
    holder = xns.popen([PYTHON, "-c", "import socket, sys, time\n"
                        "s = socket.socket(); s.bind(('127.0.0.1', int(sys.argv[1])))\n"
                        "s.listen(); print('bound', flush=True); time.sleep(60)",
                        METRICS_PORT])
    assert holder.stdout.readline() == b"bound\n"
    t0 = time.monotonic()
    # no --netns: it must fail before loading anything (nothing is traced)
    p = xns.exec([conntrace_path(), "-j", "--metrics", f"127.0.0.1:{METRICS_PORT}"],
                 check=False, timeout=30)
    elapsed = time.monotonic() - t0
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert p.stderr == f"conntrace: --metrics 127.0.0.1:{METRICS_PORT}: Address already in use\n"
    assert p.stdout == "", "tracing started"
    assert elapsed < 5, f"took {elapsed:.1f}s: the port must be checked before the BPF work"


@pytest.mark.parametrize("args, says", [
    (["--metrics", "127.0.0.1"], "is not ADDR:PORT"),
    (["--metrics", "::1:9917"], "brackets"),
    (["--metrics", "localhost:0"], "out of range"),
    (["--metrics", "example.org:80"], "not a numeric address"),
    (["-o", "/nonexistent-dir/x.jsonl"], "No such file or directory"),
    (["-o", "/tmp", "--rotate-size", "4K"], "Is a directory"),
    (["-o", "/dev/null", "--rotate-size", "4K"], "not a regular file"),
    (["--rotate-size", "1M"], "needs --output"),
    (["-o", "/tmp/ct-x", "--rotate-size", "1X"], "not a size"),
    (["-o", "/tmp/ct-x", "--rotate-size", "1M", "--rotate-keep", "0"], "--rotate-keep"),
], ids=lambda a: " ".join(a) if isinstance(a, list) else None)
def test_bad_export_options(args, says):
    p = run([conntrace_path(), *args], check=False, timeout=20)
    assert p.returncode == 2, (p.returncode, p.stderr)
    lines = p.stderr.splitlines()
    assert len(lines) == 1 and says in lines[0], lines
    assert p.stdout == ""


# ---------------------------------------------------------------------------
# Documents, make install, the systemd unit


def test_schema_documents_every_record_type():
    schema = json.loads(SCHEMA_PATH.read_text())
    doc = (ROOT / "docs" / "schema.md").read_text()
    for t in schema["properties"]["type"]["enum"]:
        assert f"### `{t}`" in doc, f"docs/schema.md has no section for {t}"
    examples = re.search(r"```json\n(.*?)```", doc, re.S).group(1).splitlines()
    assert len(examples) >= 3
    for line in examples:
        assert not check_record(json.loads(line)), (check_record(json.loads(line)), line)


def test_make_install_and_the_systemd_unit(tmp_path):
    dest = tmp_path / "root"
    run(["make", "-C", ROOT, "--no-print-directory", "install", f"DESTDIR={dest}",
         "PREFIX=/usr"], timeout=300)
    binary = dest / "usr/sbin/conntrace"
    man = dest / "usr/share/man/man8/conntrace.8"
    unit = dest / "usr/lib/systemd/system/conntrace.service"
    assert os.access(binary, os.X_OK)
    for p in (man, unit, dest / "usr/share/doc/conntrace/schema.json",
              dest / "usr/share/doc/conntrace/schema.md"):
        assert p.is_file() and (p.stat().st_mode & 0o777) == 0o644, p
    text = unit.read_text()
    assert "\nExecStart=/usr/sbin/conntrace " in text, text
    caps = re.search(r"^CapabilityBoundingSet=(.*)$", text, re.M).group(1).split()
    assert sorted(caps) == ["CAP_BPF", "CAP_PERFMON"], caps

    p = run(["groff", "-man", "-ww", "-z", man], check=False)
    assert p.returncode == 0 and not p.stderr, p.stderr

    # systemd-analyze checks that ExecStart and the man page exist: point them
    # at the installed copies
    local = tmp_path / "conntrace.service"
    local.write_text(text.replace("/usr/sbin/conntrace", str(binary)))
    env = dict(os.environ, MANPATH=str(dest / "usr/share/man"))
    p = subprocess.run(["systemd-analyze", "verify", str(local)], capture_output=True,
                       text=True, env=env, timeout=60)
    assert p.returncode == 0 and not p.stdout.strip() and not p.stderr.strip(), \
        (p.returncode, p.stdout, p.stderr)
    p = subprocess.run(["systemd-analyze", "security", "--offline=yes", str(local)],
                       capture_output=True, text=True, timeout=60)
    m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", p.stdout)
    assert m and float(m.group(1)) < 3.0, p.stdout[-500:] + p.stderr
    print(f"\nsystemd-analyze verify: ok; security exposure {m.group(1)}")
