# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Which service, container or pod (issue 14): verdicts carry the owner's
cgroup path, systemd unit, container id and pod UID; --cgroup, --comm and
lists for --pid and --port choose among owners in the kernel.

The cgroups are made here in the cgroup2 hierarchy (found in mountinfo: at
/sys/fs/cgroup, or /sys/fs/cgroup/unified on a hybrid system), shaped as
kubelet with containerd and systemd make them. A client is moved into its
cgroup by a shell that writes its own pid to cgroup.procs and then execs
`ip netns exec`: that remounts /sys in a mount namespace of its own, where
the cgroup2 mount is not, so the move must come first."""

import json
import os
import secrets
import signal
import subprocess
import time

import pytest

from ctharness import (CTCLIENT, CTLISTEN, Conntrace, conntrace_path, flow,
                       free_port, readline_timeout, related, run)
from ctschema import check_record


def cgroup2_mount():
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, _, post = line.partition(" - ")
            if post.split()[0] == "cgroup2":
                return pre.split()[4].replace("\\040", " ")
    return None


MOUNT = cgroup2_mount()
pytestmark = pytest.mark.skipif(MOUNT is None, reason="no cgroup2 hierarchy is mounted")


class Cgroups:
    """Cgroups made by a test, removed (deepest first) at the end; a parent
    that existed before, or that another test still uses, is left."""

    def __init__(self):
        self.made = []

    def make(self, rel):
        path = MOUNT
        for part in rel.strip("/").split("/"):
            path = os.path.join(path, part)
            if not os.path.isdir(path):
                os.mkdir(path)
                self.made.append(path)
        return path

    def rmdir(self, path):
        os.rmdir(path)
        self.made.remove(path)

    def cleanup(self):
        for path in reversed(self.made):
            try:
                os.rmdir(path)
            except FileNotFoundError:
                pass
            except OSError as e:        # still used by a parallel test: its to remove
                if e.errno != 16:       # EBUSY
                    raise
        self.made = []


@pytest.fixture
def cgroups():
    cg = Cgroups()
    try:
        yield cg
    finally:
        cg.cleanup()


def pod_paths():
    """A containerd container of a Guaranteed pod, as kubelet's systemd
    driver names it: the UID's dashes are underscores in the slice."""
    uid = "-".join(secrets.token_hex(n) for n in (4, 2, 2, 2, 6))
    cid = secrets.token_hex(32)
    pod = f"kubepods.slice/kubepods-pod{uid.replace('-', '_')}.slice"
    return uid, cid, pod, f"{pod}/cri-containerd-{cid}.scope"


class CgClient:
    """ctclient in cgroup `cg` (a path under the mount) and namespace ns."""

    def __init__(self, cg, ns, addr, port, *, name):
        script = 'echo $$ > "$0/cgroup.procs" && exec ip netns exec "$@"'
        self.proc = subprocess.Popen(
            ["sh", "-c", script, cg, ns.name, str(CTCLIENT), "--name", name, "--",
             addr, str(port)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE)
        self.pid = self.proc.pid
        ns.procs.append(self.proc)      # killed by the namespace's cleanup too

    def finish(self, timeout=60):
        out, err = self.proc.communicate(timeout=timeout)
        assert self.proc.returncode == 0, (self.proc.returncode, out, err)
        return out.decode().splitlines()[-1]


def rel(path):
    return "/" + os.path.relpath(path, MOUNT)


def test_pod_and_service_attribution(netns, cgroups):
    uid, cid, _, ctr = pod_paths()
    unit = f"ctest-{secrets.token_hex(4)}.service"
    ctr_dir = cgroups.make(ctr)
    svc_dir = cgroups.make(f"ctest.slice/{unit}")
    p_pod, p_svc, p_other = free_port(), free_port(), free_port()
    with Conntrace("--netns", netns.inode, "--port", f"{p_pod},{p_svc}") as ct:
        CgClient(svc_dir, netns, "127.0.0.1", p_other, name="ctc-attr-x").finish()
        a = CgClient(ctr_dir, netns, "127.0.0.1", p_pod, name="ctc-attr-pod")
        b = CgClient(svc_dir, netns, "127.0.0.1", p_svc, name="ctc-attr-svc")
        assert '"ECONNREFUSED"' in a.finish() and '"ECONNREFUSED"' in b.finish()
        ra = ct.wait_for(flow(netns, p_pod), context=related(netns, p_pod),
                         what="the pod client's verdict")
        rb = ct.wait_for(flow(netns, p_svc), context=related(netns, p_svc),
                         what="the service client's verdict")
        ct.stop()
    assert ra["pid"] == a.pid and ra["cgroup_id"] == os.stat(ctr_dir).st_ino, ra
    assert (ra["cgroup"], ra["cgroup_removed"], ra["unit"], ra["container_id"],
            ra["pod_uid"]) == (rel(ctr_dir), False, None, cid, uid), ra
    assert rb["pid"] == b.pid and rb["cgroup_id"] == os.stat(svc_dir).st_ino, rb
    assert (rb["cgroup"], rb["cgroup_removed"], rb["unit"], rb["container_id"],
            rb["pod_uid"]) == (rel(svc_dir), False, unit, None, None), rb
    # --port with a list: only those two ports, from whoever
    wrong = ct.verdicts(lambda r: not {p_pod, p_svc} & {r["dport"], r["sport"]})
    assert not wrong, f"--port {p_pod},{p_svc} printed other ports: {wrong}"


@pytest.mark.parametrize("form", ["relative", "absolute"])
def test_cgroup_filter_shows_only_its_subtree(netns, cgroups, form):
    uid, cid, pod, ctr = pod_paths()
    ctr_dir = cgroups.make(ctr)
    svc_dir = cgroups.make(f"ctest.slice/ctest-{secrets.token_hex(4)}.service")
    pod_dir = os.path.join(MOUNT, pod)
    p_in, p_out = free_port(), free_port()
    # the pod's slice: the container's scope is below it
    with Conntrace("-a", "--netns", netns.inode,
                   "--cgroup", pod if form == "relative" else pod_dir) as ct:
        CgClient(svc_dir, netns, "127.0.0.1", p_out, name="ctc-cgf-out").finish()
        a = CgClient(ctr_dir, netns, "127.0.0.1", p_in, name="ctc-cgf-in")
        a.finish()
        rec = ct.wait_for(flow(netns, p_in), context=related(netns, p_in),
                          what="the verdict of the client inside --cgroup")
        # no settle time: both attempts are over, and a stop drains the ring
        # and decides every flow left before its summary
        summary = ct.stop()
    assert (rec["pid"], rec["pod_uid"], rec["container_id"]) == (a.pid, uid, cid), rec
    # nothing from any task outside the pod's slice, not even counted (filtered
    # in the kernel); --netns: the summary counts this namespace's attempts only
    assert {v: n for v, n in summary["verdicts"].items() if n} == {"refused": 1}, summary
    assert summary["flows"] == 1, summary
    wrong = ct.verdicts(lambda r: not (r["cgroup"] or "").startswith("/" + pod))
    assert not wrong, f"--cgroup {pod} printed attempts from elsewhere: {wrong}"


def test_comm_and_pid_list_filters(netns):
    # one port per attempt: flow() finds an attempt by (netns, port)
    ports = [free_port() for _ in range(3)]
    plist = ",".join(map(str, ports))
    clients = [netns.client("127.0.0.1", p, name=f"ctc-pl-{i}", wait_stdin=True)
               for i, p in enumerate(ports)]
    want = [clients[0].pid, clients[2].pid]
    with Conntrace("--netns", netns.inode, "-p", ",".join(map(str, want)), "--port", plist) as ct, \
            Conntrace("--netns", netns.inode, "--comm", "ctc-pl-1", "--port", plist) as cc:
        for c in clients:
            c.go()
            assert c.finish()["result"] == "ECONNREFUSED"
        for i in (0, 2):
            ct.wait_for(flow(netns, ports[i]), context=related(netns, ports[i]),
                        what=f"the verdict of pid {clients[i].pid}")
        rec = cc.wait_for(flow(netns, ports[1]), context=related(netns, ports[1]),
                          what="the verdict of --comm ctc-pl-1")
        # a stop drains the ring and decides every flow left: no settle time
        s_pids, s_comm = ct.stop(), cc.stop()
    # judged in the kernel: the others are not even flows there
    assert (s_pids["flows"], s_comm["flows"]) == (2, 1), (s_pids, s_comm)
    assert sorted(r["pid"] for r in ct.verdicts()) == sorted(want), ct.verdicts()
    assert rec["pid"] == clients[1].pid and rec["comm"] == "ctc-pl-1", rec
    assert [r["pid"] for r in cc.verdicts()] == [clients[1].pid], cc.verdicts()


def syn_sent(ns, port):
    out = run(["ip", "netns", "exec", ns.name, "ss", "-Htn", "state", "syn-sent",
               "dport", "=", f":{port}"]).stdout
    return bool(out.strip())


def test_cgroup_removed_before_the_verdict(netns, cgroups):
    """A client still connecting when conntrace stops gets a pending verdict
    then; its cgroup is removed before that (the client moved out first):
    the verdict says removed, and has everything else."""
    unit = f"ctest-{secrets.token_hex(4)}.service"
    svc_dir = cgroups.make(f"ctest.slice/{unit}")
    park = cgroups.make(f"ctest.slice/ctest-park-{secrets.token_hex(4)}.service")
    p = free_port()
    netns.listen(p)
    netns.drop_syns(p)
    with Conntrace("--netns", netns.inode, "--port", p) as ct:
        c = CgClient(svc_dir, netns, "127.0.0.1", p, name="ctc-cg-gone")
        deadline = time.monotonic() + 10
        while not syn_sent(netns, p):
            assert time.monotonic() < deadline, "the client never reached SYN-SENT"
            time.sleep(0.05)
        cg_id = os.stat(svc_dir).st_ino
        with open(os.path.join(park, "cgroup.procs"), "w") as f:
            f.write(str(c.pid))
        cgroups.rmdir(svc_dir)
        assert not os.path.exists(svc_dir)
        ct.stop()
        c.proc.send_signal(signal.SIGKILL)
        c.proc.wait(10)
    recs = ct.verdicts(flow(netns, p))
    assert len(recs) == 1, recs
    r = recs[0]
    assert (r["verdict"], r["pid"], r["comm"], r["cgroup_id"]) == \
        ("pending", c.pid, "ctc-cg-gone", cg_id), r
    assert (r["cgroup"], r["cgroup_removed"], r["unit"], r["container_id"], r["pod_uid"]) == \
        (None, True, None, None, None), r


def test_listener_record_names_its_owners_pod(netns, cgroups):
    """`conntrace listen`: a listener's record carries its owner's cgroup,
    container and pod, read from /proc/PID/cgroup once the owner is known."""
    uid, cid, _, ctr = pod_paths()
    ctr_dir = cgroups.make(ctr)
    port = free_port()
    script = 'echo $$ > "$0/cgroup.procs" && exec ip netns exec "$@"'
    srv = subprocess.Popen(["sh", "-c", script, ctr_dir, netns.name, str(CTLISTEN), str(port)],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)
    netns.procs.append(srv)
    assert readline_timeout(srv, 10, "ctlisten ready") == f"ready {port}\n"
    r = subprocess.run([conntrace_path(), "listen", "--once", "-j", "-i", "0.5"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    objs = [json.loads(line) for line in r.stdout.splitlines()]
    mine = [o for o in objs if o["type"] == "listener" and o["netns"] == netns.inode
            and o["lport"] == port]
    assert len(mine) == 1, objs
    lst = mine[0]
    assert not check_record(lst), (check_record(lst), lst)
    assert (lst["pid"], lst["cgroup"], lst["unit"], lst["container_id"], lst["pod_uid"]) == \
        (srv.pid, rel(ctr_dir), None, cid, uid), lst
    srv.kill()
    srv.wait(10)
