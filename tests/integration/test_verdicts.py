# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""One verdict per connection attempt, checked field by field.

All scenarios run concurrently, each in its own namespace under its own
`conntrace -j -a --netns NS` (see traced_outcomes in conftest.py); each test then
checks its own attempt's verdict against what the client and the kernel
saw (pid, comm, ports, errno, the namespace's TCPSynRetrans delta)."""

import json

import pytest

from ctharness import Conntrace
from scenarios import SPECS, mismatches


def test_start_record(netns):
    with Conntrace("--netns", netns.inode) as ct:
        rec = ct.start_record
        ct.stop()
    assert rec["type"] == "start" and rec["schema"] == "2.0", rec
    assert isinstance(rec["probes"], dict) and rec["probes"], rec


@pytest.mark.parametrize("name", list(SPECS))
def test_verdict(traced_outcomes, name):
    out = traced_outcomes[name]
    if isinstance(out, BaseException):
        raise out
    problems = mismatches(out)
    assert not problems, (
        f"{name}: {len(problems)} mismatches:\n  " + "\n  ".join(problems) +
        f"\nrecord: {json.dumps(out.record)}\nclient: {json.dumps(out.client)}"
        f"\nTCPSynRetrans delta: {out.syn_retrans_delta}")
