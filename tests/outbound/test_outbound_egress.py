"""The egress rule: which addresses a connector may reach by default, and what the allow list
opens."""

from __future__ import annotations

import pytest

from control_plane.outbound.egress import EgressPolicy, parse_allow

REFUSED = [
    "127.0.0.1",
    "127.0.0.2",
    "0.0.0.0",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",  # cloud metadata
    "100.100.100.200",  # Alibaba's metadata, in the shared 100.64/10
    "100.64.0.1",
    "192.0.0.192",  # Oracle's metadata
    "224.0.0.1",
    "239.255.255.250",
    "255.255.255.255",
    "240.0.0.1",
    "192.0.2.1",  # documentation
    "198.18.0.1",  # benchmarking
    "::1",
    "::",
    "fe80::1",
    "fe80::1%eth0",
    "fc00::1",
    "fd00:ec2::254",  # AWS metadata over IPv6
    "ff02::1",
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::ffff:169.254.169.254",
    "::ffff:10.0.0.1",
    "::127.0.0.1",  # IPv4-compatible
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "64:ff9b::7f00:1",
    "2002:7f00:1::",  # 6to4 of 127.0.0.1
    "2002:a9fe:a9fe::1",
    "2001:db8::1",  # documentation
]

ALLOWED = ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"]


@pytest.mark.parametrize("address", REFUSED)
def test_refused_by_default(address):
    assert EgressPolicy().refusal(address)


@pytest.mark.parametrize("address", ALLOWED)
def test_public_addresses_allowed(address):
    assert EgressPolicy().refusal(address) == ""


def test_refusals_say_why():
    policy = EgressPolicy()
    assert "loopback" in policy.refusal("127.0.0.1")
    assert "link-local" in policy.refusal("169.254.169.254")
    assert "private" in policy.refusal("10.0.0.1")
    assert "169.254.169.254" in policy.refusal("::ffff:169.254.169.254")


def test_allow_list_opens_exactly_its_ranges():
    policy = EgressPolicy(parse_allow("127.0.0.1/32, 10.1.0.0/16"))
    assert policy.refusal("127.0.0.1") == ""
    assert policy.refusal("10.1.200.3") == ""
    assert policy.refusal("127.0.0.2")
    assert policy.refusal("10.2.0.1")
    assert policy.refusal("169.254.169.254")


def test_allow_list_bare_address_and_errors():
    assert parse_allow("") == ()
    assert [str(n) for n in parse_allow("::1,127.0.0.1")] == ["::1/128", "127.0.0.1/32"]
    with pytest.raises(ValueError, match="BOOMERANG_EGRESS_ALLOW"):
        parse_allow("127.0.0.1/33")
    with pytest.raises(ValueError, match="not a CIDR"):
        parse_allow("localhost")
