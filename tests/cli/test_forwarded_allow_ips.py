"""``--forwarded-allow-ips`` (and its variable) is checked before anything starts."""

from __future__ import annotations

import pytest

from tests.cli.conftest import Cli


def test_serve_refuses_a_forwarder_that_is_no_address(cli: Cli) -> None:
    complaint = cli.fails("serve", "--forwarded-allow-ips", "10.0.0.0/8, proxy.local", code=2)

    assert "--forwarded-allow-ips" in complaint
    assert "'proxy.local' is not an IP address or CIDR network" in complaint


def test_the_variable_is_checked_alike(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DICOMITE_FORWARDED_ALLOW_IPS", "300.1.1.1")

    assert "'300.1.1.1' is not an IP address" in cli.fails("info", code=2)
