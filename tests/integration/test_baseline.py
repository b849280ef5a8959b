# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""The scenarios against the kernel alone, without conntrace: proves the
scaffolding (namespaces, nft drops, the unreachable route, ctclient's
errnos, TCPSynRetrans deltas) so a failure in test_verdicts.py is
conntrace's, not the environment's."""

import pytest

from scenarios import SPECS


@pytest.mark.parametrize("name", list(SPECS))
def test_kernel_baseline(kernel_outcomes, name):
    out = kernel_outcomes[name]
    if isinstance(out, BaseException):
        raise out
    assert out.record is None
    print(f"{name}: {out.client} TCPSynRetrans delta {out.syn_retrans_delta}")
