# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Command line: bad input is refused with exit status 2 before tracing
starts; --probes reports which hook serves each signal."""

import os

import pytest

from ctharness import conntrace_path, run


def conntrace(*args, timeout=60):
    path = conntrace_path()
    assert os.access(path, os.X_OK), f"conntrace binary {path!r} missing; build it or set CONNTRACE"
    return run([path, *args], check=False, timeout=timeout)


def test_unknown_option_one_line():
    p = conntrace("--bogus", timeout=20)
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert len(p.stderr.splitlines()) == 1, f"want one line on stderr, got {p.stderr!r}"
    assert p.stdout == "", p.stdout


@pytest.mark.parametrize("args", [
    ["--slow", "abc"],
    ["--pid", "-1"],
    ["--port", "70000"],
], ids=lambda a: " ".join(a))
def test_bad_value(args):
    p = conntrace(*args, timeout=20)     # must fail at once, before any BPF work
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert p.stderr.strip(), "no error message on stderr"
    assert p.stdout == "", f"printed on stdout (tracing started?): {p.stdout!r}"


def test_probes_report():
    p = conntrace("--probes")
    assert p.returncode == 0, (p.returncode, p.stderr)
    report = p.stdout
    assert report.strip(), "empty --probes report"
    # On this kernel (no kprobes, no fentry) the signals can only come from
    # these tracepoints; the report must name them.
    for hook in ("inet_sock_set_state", "tcp_retransmit_skb", "kfree_skb"):
        assert hook in report, f"--probes does not mention {hook}:\n{report}"


def probe_rows():
    p = conntrace("--probes")
    assert p.returncode == 0, (p.returncode, p.stderr)
    rows = {}
    for line in p.stdout.splitlines()[1:]:
        signal, hook, *note = line.split(None, 2)
        rows[signal] = (hook, note[0] if note else "")
    return rows


def test_connect_error_hook_is_chosen_by_the_kernel():
    """fentry where the kernel allows trampolines (the 6.1 guest, VMTEST=1),
    the syscall tracepoints with the reason said where it does not (6.18)."""
    hook, note = probe_rows()["connect_error"]
    if os.environ.get("VMTEST"):
        assert hook.startswith("fentry+fexit/tcp_v4_connect"), (hook, note)
    elif hook.startswith("tracepoint/syscalls"):
        assert "fentry not available" in note, (hook, note)
    else:
        assert hook.startswith("fentry+fexit/"), (hook, note)
