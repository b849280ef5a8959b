# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""pytest fixtures for conntrace's integration tests (real kernel, root).

    make integration                      # builds everything, runs these
    CONNTRACE=/path/conntrace /usr/bin/python3 -m pytest -v -p no:cacheprovider tests/integration

Binary under test: $CONNTRACE, default <repo>/conntrace. The test tools
(ctclient, ctlisten) are (re)built here with make. Tests are skipped only
when not root; anything else missing is a failure.
"""

import os
from collections import Counter

import pytest

import ctharness
from ctharness import CTCLIENT, CTLISTEN, ROOT, Conntrace, NetNS, run
from scenarios import SPECS, run_all


def pytest_collection_modifyitems(config, items):
    if os.geteuid() != 0:
        skip = pytest.mark.skip(reason="integration tests need root (BPF, network namespaces)")
        for item in items:
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def tools():
    """Build the C test tools (plain C, no libraries) with the project Makefile."""
    if os.geteuid() != 0:
        return
    rel = [os.path.relpath(p, ROOT) for p in (CTCLIENT, CTLISTEN)]
    run(["make", "-C", ROOT, "--no-print-directory", *rel], timeout=120)


@pytest.fixture
def netns():
    """A fresh namespace with lo up; processes killed and namespace deleted
    afterwards, whatever the test did."""
    with NetNS() as ns:
        yield ns


@pytest.fixture(scope="session")
def ct():
    """One `conntrace -j -a` for the whole session (it traces every namespace:
    tests match their own flows by netns inode and port). At teardown: stop
    it with SIGINT and check the summary and the session-wide invariants."""
    c = Conntrace("-a").start()
    try:
        yield c
        summary = c.stop()
    finally:
        c.kill()
    verdicts = c.verdicts()
    # -a prints every verdict, so the summary must count exactly those
    # (lost_records is not required to be 0: other traffic on the machine,
    # e.g. a benchmark, may overflow the ring buffer)
    printed = Counter(r["verdict"] for r in verdicts)
    for v in ctharness.VERDICTS:
        assert summary["verdicts"][v] == printed[v], \
            f"summary counts {summary['verdicts']} != printed {dict(printed)}"
    # In the tests' namespaces: only ctclient attempts get verdicts (never a
    # listener's accepted socket), and each attempt exactly one (ports are
    # unique in the session, so (netns, dport, family) names one attempt).
    ours = [r for r in verdicts if ctharness.owned(r)]
    strangers = [r for r in ours if r.get("pid") not in ctharness.CLIENT_PIDS]
    assert not strangers, f"verdicts for processes that made no attempt: {strangers}"
    per_flow = Counter((r["netns"], r["dport"], r["family"]) for r in ours)
    dups = {k: n for k, n in per_flow.items() if n > 1}
    assert not dups, f"several verdicts for one attempt: {dups}"


@pytest.fixture(scope="session")
def kernel_outcomes():
    """Every scenario run concurrently against the kernel alone."""
    return run_all(SPECS.values(), ct=None)


@pytest.fixture(scope="session")
def traced_outcomes(ct):
    """Every scenario run concurrently under the session conntrace."""
    return run_all(SPECS.values(), ct=ct)
