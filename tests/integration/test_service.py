# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Service mode (issue 14): systemd's notify protocol (READY=1 once the probes
are attached, WATCHDOG=1 when WatchdogSec= is set, STOPPING=1), spoken to a
socket this test listens on as systemd would; the unit file's options from
EnvironmentFile; the Kubernetes DaemonSet manifest parses and asks for what
docs/deploy.md says, with arguments the real conntrace accepts."""

import json
import os
import signal
import socket
import subprocess
import time

import yaml

from ctharness import ROOT, conntrace_path, free_port, readline_timeout, run


class Notify:
    """An AF_UNIX datagram socket like systemd's $NOTIFY_SOCKET."""

    def __init__(self, tmp_path):
        self.path = str(tmp_path / "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.messages = []

    def recv(self, timeout):
        """Messages (each a list of lines) until timeout passes with none new."""
        got = []
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                got.append(self.sock.recv(4096).decode().split("\n"))
            except socket.timeout:
                break
        self.messages += got
        return got

    def wait_for(self, line, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(deadline - time.monotonic(), 0.01))
            try:
                msg = self.sock.recv(4096).decode().split("\n")
            except socket.timeout:
                break
            self.messages.append(msg)
            if line in msg:
                return msg
        raise AssertionError(f"no {line} within {timeout}s; got {self.messages}")

    def close(self):
        self.sock.close()


def start(tmp_path, notify, ns, **env):
    e = dict(os.environ, NOTIFY_SOCKET=notify.path, **env)
    e.pop("WATCHDOG_PID", None)
    # filtered to an empty namespace of the test's: nothing else reaches it
    p = subprocess.Popen([conntrace_path(), "-j", "--netns", str(ns.inode),
                          "--port", str(free_port())], env=e,
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return p


def stop(p):
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=15)
    assert p.returncode == 0, (p.returncode, err)
    return out


def test_ready_watchdog_stopping(tmp_path, netns):
    notify = Notify(tmp_path)
    p = start(tmp_path, notify, netns, WATCHDOG_USEC="200000")
    try:
        rec = json.loads(readline_timeout(p, 15, "the start record"))
        assert rec["type"] == "start", rec
        # READY comes after the start record (written and flushed first)
        msg = notify.wait_for("READY=1", 5)
        assert any(m.startswith("STATUS=") for m in msg), msg
        # pinged at half of WATCHDOG_USEC: about 10 in a second
        pings = [m for m in notify.recv(1.0) if "WATCHDOG=1" in m]
        assert len(pings) >= 5, notify.messages
        out = stop(p)
        notify.wait_for("STOPPING=1", 5)
        assert json.loads(out.splitlines()[-1])["type"] == "summary"
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(10)
        notify.close()


def test_no_watchdog_without_watchdog_usec(tmp_path, netns):
    notify = Notify(tmp_path)
    p = start(tmp_path, notify, netns)
    try:
        readline_timeout(p, 15, "the start record")
        notify.wait_for("READY=1", 5)
        assert not [m for m in notify.recv(0.6) if "WATCHDOG=1" in m], notify.messages
        stop(p)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(10)
        notify.close()


def test_unit_reads_options_from_environment_file():
    text = (ROOT / "scripts" / "conntrace.service").read_text()
    lines = text.splitlines()
    assert "Type=notify" in lines and "EnvironmentFile=-/etc/default/conntrace" in lines
    assert "ExecStart=/usr/local/sbin/conntrace $CONNTRACE_OPTS" in lines
    assert any(line.startswith("WatchdogSec=") for line in lines)
    # the default options in the unit are ones conntrace accepts
    env = [line for line in lines if line.startswith('Environment="CONNTRACE_OPTS=')]
    assert len(env) == 1, env
    opts = env[0][len('Environment="CONNTRACE_OPTS='):-1].split()
    p = run([conntrace_path(), *opts, "--usage"], check=False, timeout=20)
    assert p.returncode == 0, (opts, p.stderr)


def test_daemonset_manifest():
    docs = list(yaml.safe_load_all((ROOT / "deploy" / "daemonset.yaml").read_text()))
    ds = [d for d in docs if d and d.get("kind") == "DaemonSet"]
    assert len(ds) == 1 and ds[0]["apiVersion"] == "apps/v1", docs
    spec = ds[0]["spec"]
    pod = spec["template"]["spec"]
    assert spec["selector"]["matchLabels"].items() <= \
        spec["template"]["metadata"]["labels"].items()
    assert not pod.get("hostNetwork") and not pod.get("hostPID")
    (c,) = pod["containers"]
    sc = c["securityContext"]
    assert sc["capabilities"] == {"drop": ["ALL"], "add": ["BPF", "PERFMON", "DAC_READ_SEARCH"]}
    assert not sc.get("privileged") and sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True
    vols = {v["name"]: v["hostPath"]["path"] for v in pod["volumes"]}
    mounts = {m["mountPath"]: vols[m["name"]] for m in c["volumeMounts"]}
    assert all(m.get("readOnly") for m in c["volumeMounts"]), c["volumeMounts"]
    assert mounts == {"/host/sys/fs/cgroup": "/sys/fs/cgroup",
                      "/sys/kernel/tracing": "/sys/kernel/tracing"}, mounts
    # JSON Lines on standard output, with arguments the real conntrace accepts
    assert "--json" in c["args"] and "--output" not in c["args"] and "-o" not in c["args"]
    p = run([conntrace_path(), *c["args"], "--usage"], check=False, timeout=20)
    assert p.returncode == 0, (c["args"], p.stderr)
