# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""pytest fixtures for conntrace's integration tests (real kernel, root).

    make integration                      # builds everything, runs these
    CONNTRACE=/path/conntrace /usr/bin/python3 -m pytest -v -p no:cacheprovider tests/integration

Binary under test: $CONNTRACE, default <repo>/conntrace; test tools in
$CT_TOOLS_DIR, default <repo>/build/tests (make passes both). Run by hand,
the tools are (re)built here with make.

A suite that cannot test must not pass: without root or kernel BTF the
session stops at once with one line saying why, and a skipped test fails the
session unless its reason is on the short list ALLOWED_SKIPS below (also in
README.md, Testing).
"""

import os
import re

import pytest

from ctharness import CTCLIENT, CTLISTEN, ROOT, VMTEST, NetNS, run
from scenarios import SPECS, run_all

# (pattern of the skip reason, when it is allowed, why). Anything else that
# is skipped fails the session: a skip must not hide a broken feature.
ALLOWED_SKIPS = (
    (r".*under TCG emulation: the host runs it", lambda: VMTEST,
     "in the vmtest guest only: too slow under emulation, the host run has it"),
    (r"an ASan build \(SANITIZE=1\) does not run under valgrind.*", lambda: True,
     "ASan and valgrind exclude each other; the plain build's run has it"),
)


def pytest_sessionstart(session):
    why = None
    if os.geteuid() != 0:
        why = "not root (the tests load BPF programs and create network namespaces)"
    elif not os.access("/sys/kernel/btf/vmlinux", os.R_OK):
        why = "no kernel BTF at /sys/kernel/btf/vmlinux (CONFIG_DEBUG_INFO_BTF)"
    if why:
        pytest.exit(f"integration tests cannot run: {why}", returncode=1)


def skip_reason(report):
    """The reason a test report says it was skipped for."""
    lr = report.longrepr
    reason = lr[2] if isinstance(lr, tuple) and len(lr) == 3 else str(lr)
    return reason[len("Skipped: "):] if reason.startswith("Skipped: ") else reason


def allowed_skip(reason):
    """The ALLOWED_SKIPS entry's explanation, or None if not allowed here."""
    for pattern, when, why in ALLOWED_SKIPS:
        if re.fullmatch(pattern, reason) and when():
            return why
    return None


_skips = []      # (nodeid, reason, explanation or None)


def pytest_runtest_logreport(report):
    if report.skipped and not hasattr(report, "wasxfail"):
        reason = skip_reason(report)
        _skips.append((report.nodeid, reason, allowed_skip(reason)))


def pytest_collectreport(report):
    if report.skipped:          # a whole module skipped at import
        reason = skip_reason(report)
        _skips.append((report.nodeid, reason, allowed_skip(reason)))


def pytest_sessionfinish(session, exitstatus):
    if any(why is None for _, _, why in _skips) and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter):
    if not _skips:
        return
    tr = terminalreporter
    bad = [s for s in _skips if s[2] is None]
    tr.section(f"{len(_skips)} skipped, {len(bad)} of them not allowed")
    for nodeid, reason, why in _skips:
        if why is None:
            tr.line(f"SKIP NOT ALLOWED {nodeid}: {reason}", red=True)
        else:
            tr.line(f"skip allowed {nodeid}: {reason} [{why}]")
    if bad:
        tr.line("a skip fails the run unless its reason is in ALLOWED_SKIPS "
                "(tests/integration/conftest.py, README.md: Testing)", red=True)


@pytest.fixture(scope="session", autouse=True)
def tools():
    """The C test tools (plain C, no libraries): built by make already when
    make runs the tests, or in the vmtest guest (read-only tree, built on the
    host); run by hand, built here with the project Makefile."""
    if not (os.environ.get("MAKELEVEL") or VMTEST):
        rel = [os.path.relpath(p, ROOT) for p in (CTCLIENT, CTLISTEN)]
        run(["make", "-C", ROOT, "--no-print-directory", *rel], timeout=120)
    for p in (CTCLIENT, CTLISTEN):
        assert os.access(p, os.X_OK), f"test tool {p} missing: build it (make)"


@pytest.fixture
def netns():
    """A fresh namespace with lo up; processes killed and namespace deleted
    afterwards, whatever the test did."""
    with NetNS() as ns:
        yield ns


@pytest.fixture(scope="session")
def kernel_outcomes():
    """Every scenario run concurrently against the kernel alone."""
    return run_all(SPECS.values(), traced=False)


@pytest.fixture(scope="session")
def traced_outcomes():
    """Every scenario run concurrently, each under its own conntrace
    filtered to its namespace (scenarios.run_scenario)."""
    return run_all(SPECS.values(), traced=True)
