"""The client address rule: the socket peer, or X-Forwarded-For read from the right through
trusted proxies only."""

from __future__ import annotations

import pytest

from dicomite.client_address import (
    MAX_HOPS,
    InvalidForwarder,
    client_address,
    trusted_proxies,
)

NONE = trusted_proxies("")
PROXY = trusted_proxies("10.0.0.1")
PROXIES = trusted_proxies(" 10.0.0.0/8 , ::1 ")


def test_without_trusted_proxies_the_peer_is_the_client() -> None:
    assert client_address("192.0.2.1", ["203.0.113.9"], NONE) == "192.0.2.1"


def test_an_untrusted_peer_is_the_client_even_with_a_trusted_proxy_configured() -> None:
    assert client_address("192.0.2.1", ["203.0.113.9"], PROXY) == "192.0.2.1"


def test_a_trusted_peer_forwards_the_address_it_saw() -> None:
    assert client_address("10.0.0.1", ["203.0.113.9"], PROXY) == "203.0.113.9"


def test_what_the_client_wrote_left_of_the_proxys_entry_is_ignored() -> None:
    assert client_address("10.0.0.1", ["1.1.1.1, 203.0.113.9"], PROXY) == "203.0.113.9"
    assert client_address("10.0.0.1", ["1.1.1.1", "203.0.113.9"], PROXY) == "203.0.113.9"


def test_a_chain_of_trusted_proxies_is_walked_to_the_first_untrusted_hop() -> None:
    chain = ["1.1.1.1, 203.0.113.9, 10.2.3.4, 10.0.0.2"]
    assert client_address("::1", chain, PROXIES) == "203.0.113.9"


def test_garbage_from_a_trusted_proxy_stops_at_the_last_address_known() -> None:
    assert client_address("10.0.0.1", ["nonsense"], PROXY) == "10.0.0.1"
    assert client_address("10.0.0.1", [], PROXY) == "10.0.0.1"
    assert client_address("::1", ["junk, 10.9.9.9"], PROXIES) == "10.9.9.9"


def test_addresses_are_normalised() -> None:
    assert client_address("::ffff:192.0.2.1", [], NONE) == "192.0.2.1"
    assert client_address("10.0.0.1", ["[2001:DB8::1]"], PROXY) == "2001:db8::1"


def test_a_peer_that_is_not_an_ip_address_is_kept_as_it_is() -> None:
    assert client_address("testclient", ["203.0.113.9"], PROXIES) == "testclient"
    assert client_address(None, [], NONE) == "unknown"


def test_a_long_forwarded_chain_is_walked_only_so_far() -> None:
    chain = ", ".join(["203.0.113.9"] + ["10.0.0.1"] * (MAX_HOPS + 5))
    assert client_address("10.0.0.1", [chain], PROXY) == "10.0.0.1"


@pytest.mark.parametrize("setting", ["10.0.0.1, nope", "10.0.0.0/33", "*"])
def test_a_setting_that_is_no_address_or_network_is_refused(setting: str) -> None:
    with pytest.raises(InvalidForwarder, match="is not an IP address or CIDR network"):
        trusted_proxies(setting)
