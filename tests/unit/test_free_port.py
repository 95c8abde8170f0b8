"""`free_port` (clients/boomerang/local.py): the ports a local stack's servers are given."""

from boomerang.local import free_port


def test_a_port_is_not_handed_out_again_soon():
    # The kernel hands out any port no socket is bound to, so it repeats some soon (here about
    # one pair in 14,000: in 2,000 calls, some 35 repeats less than 256 calls apart). A stack of
    # four servers once got one port twice, and its edge's /readyz was answered by a runner.
    last_seen: dict[int, int] = {}
    for call in range(2000):
        port = free_port()
        assert call - last_seen.get(port, -256) >= 256, (port, call, last_seen[port])
        last_seen[port] = call
