# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""SYNs dropped on this host's *output* path (an nft output-chain drop): the
SYN never leaves, the attempt times out. Older kernels (6.1) fire
tcp:tcp_retransmit_skb only after a successful transmit, so the retransmits
are counted from the socket's own total_retrans at the end as well: the
verdict's syn_retrans must equal the namespace's TCPSynRetrans delta on
every kernel (run it on the 6.1 guest with make vmtest)."""

from ctharness import Conntrace, flow, free_port, related


def test_output_dropped_syns_are_counted(netns):
    port = free_port()
    netns.sysctl("net.ipv4.tcp_syn_retries", 2)    # ETIMEDOUT after about 7 s
    netns.nft(f"""
table inet ctout {{
    chain output {{
        type filter hook output priority 0; policy accept;
        tcp dport {port} tcp flags & (syn | ack) == syn drop
    }}
}}
""")
    listing = netns.exec(["nft", "list", "table", "inet", "ctout"]).stdout
    assert f"dport {port}" in listing and "drop" in listing, listing
    ct = Conntrace("-a", "--port", port, "--netns", netns.inode).start()
    try:
        before = netns.syn_retrans()
        client = netns.client("127.0.0.1", port)
        res = client.finish(timeout=60)
        delta = netns.syn_retrans() - before
        assert res["result"] == "ETIMEDOUT", res
        # a failed transmit rearms the timer without using up a retry: often more than 2
        assert delta >= 2, f"kernel: TCPSynRetrans delta {delta}, expected tcp_syn_retries 2+"
        rec = ct.wait_for(flow(netns, port), what=f"the verdict for the connect to {port}",
                          context=related(netns, port))
        ct.stop()
    finally:
        ct.kill()
    assert rec["verdict"] == "timeout" and rec["pid"] == client.pid, rec
    assert rec["syn_retrans"] == delta, \
        f"verdict counts {rec['syn_retrans']} SYN retransmits, the kernel {delta}: {rec}"
