"""Smart lockout from the wire: a running ``dicomite serve`` counts failed portal sign-ins per
account at the client's address, so a guesser locks out only themselves; the address is the
socket peer, or ``X-Forwarded-For`` when the peer is a trusted proxy (``--forwarded-allow-ips``).

Addresses are simulated with X-Forwarded-For through a server that trusts 127.0.0.1, and with
real loopback source addresses (127.0.0.2, 127.0.0.3: Linux routes all of 127/8 to lo).
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fixtures.server import Server, make_server

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
WRONG = "Wrong-Passw0rd-1"
USER_PASSWORD = "Lockout-Passw0rd-7"


class Browser:
    """One sign-in form, posted again and again as a person (or a script) would: each answer
    carries the next form's CSRF token and cookie."""

    def __init__(self, server: Server, source: str = "127.0.0.1") -> None:
        context = ssl.create_default_context(cafile=server.ca_file)
        transport = httpx.HTTPTransport(verify=context, local_address=source)
        # 127.0.0.1, not "localhost" (which may resolve to ::1, unreachable from 127.0.0.2)
        base = f"https://127.0.0.1:{server.port}"
        self.client = httpx.Client(base_url=base, transport=transport, timeout=60)
        self.token = self._token(self.client.get("/portal/signin"))

    def sign_in(self, name: str, password: str, forwarded_for: str | None = None) -> int:
        headers = {"x-forwarded-for": forwarded_for} if forwarded_for else {}
        form = {"csrf_token": self.token, "username": name, "password": password, "next": ""}
        response = self.client.post("/portal/signin", data=form, headers=headers)
        if response.status_code in (401, 429):
            self.token = self._token(response)
        elif response.status_code == 303:  # signed in: a fresh form for the next attempt
            self.client.cookies.clear()
            self.token = self._token(self.client.get("/portal/signin"))
        return response.status_code

    @staticmethod
    def _token(response: httpx.Response) -> str:
        found = TOKEN.search(response.text)
        assert found, f"{response.status_code}: {response.text[:300]}"
        return found.group(1)

    def close(self) -> None:
        self.client.close()


def _started(base: Path, extra_args: list[str]) -> Server:
    server = make_server(base, extra_args=extra_args)
    server.start()
    return server


@pytest.fixture(scope="module")
def trusting(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server behind a (simulated) proxy on 127.0.0.1."""
    server = _started(tmp_path_factory.mktemp("trusting"), ["--forwarded-allow-ips", "127.0.0.1"])
    yield server
    server.stop()


@pytest.fixture(scope="module")
def untrusting(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server at its defaults: no proxy is trusted."""
    server = _started(tmp_path_factory.mktemp("untrusting"), [])
    yield server
    server.stop()


@pytest.fixture
def browser(trusting: Server) -> Iterator[Browser]:
    opened = Browser(trusting)
    yield opened
    opened.close()


def test_wrong_passwords_from_one_address_do_not_lock_the_admin_out_elsewhere(
    trusting: Server, browser: Browser
) -> None:
    admin = trusting.admin_username
    guesses = [browser.sign_in(admin, WRONG, "198.51.100.7") for _ in range(7)]
    assert guesses == [401] * 5 + [429] * 2

    assert browser.sign_in(admin, trusting.admin_password, "203.0.113.9") == 303
    assert browser.sign_in(admin, trusting.admin_password, "198.51.100.7") == 429


def test_a_trusted_proxy_chain_is_read_from_the_right(trusting: Server, browser: Browser) -> None:
    admin = trusting.admin_username
    for number in range(
        5
    ):  # the client writes a false address first; the proxy appends the real one
        assert browser.sign_in(admin, WRONG, f"203.0.113.{number}, 198.51.100.8") == 401

    assert browser.sign_in(admin, trusting.admin_password, "203.0.113.50, 198.51.100.8") == 429
    assert browser.sign_in(admin, trusting.admin_password, "198.51.100.9") == 303


def test_forwarded_for_from_an_untrusted_peer_is_ignored(untrusting: Server) -> None:
    admin, password = untrusting.admin_username, untrusting.admin_password
    guesser, owner = Browser(untrusting, "127.0.0.2"), Browser(untrusting, "127.0.0.3")
    try:
        for number in range(5):
            assert guesser.sign_in(admin, WRONG, f"203.0.113.{number}") == 401

        assert guesser.sign_in(admin, password, "203.0.113.99") == 429  # the peer is locked
        assert owner.sign_in(admin, password, "203.0.113.0") == 303  # another peer is not
    finally:
        guesser.close()
        owner.close()


def test_guessing_from_many_addresses_is_still_slowed_per_name(
    trusting: Server, browser: Browser
) -> None:
    name = f"target@{trusting.data_dir.parent.name}.example"
    trusting.cli("users", "add", name, "--password-stdin", stdin=USER_PASSWORD + "\n")
    assert browser.sign_in(name, USER_PASSWORD, "198.51.100.77") == 303  # the owner's place

    guesses = [browser.sign_in(name, WRONG, f"192.0.2.{number}") for number in range(51)]

    assert guesses == [401] * 50 + [429]  # one guess per address, fifty in all
    assert browser.sign_in(name, USER_PASSWORD, "192.0.2.200") == 429
    assert browser.sign_in(name, USER_PASSWORD, "198.51.100.77") == 303, "familiar: not locked"
