"""Sign-in, sessions and CSRF through the portal's pages."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from dicomite.app import create_app
from dicomite.bootstrap import Context
from dicomite.clock import utcnow
from dicomite.identity import signin, users
from dicomite.portal import sessions
from dicomite.store.tables import PortalSession
from tests.portal.conftest import CSRF_FIELD, PASSWORD, PortalClient, sign_in


def _post_sign_in(client: PortalClient, name: str, password: str, next_path: str = "") -> object:
    token = CSRF_FIELD.search(client.get("/portal/signin").text)
    assert token
    return client.post(
        "/portal/signin",
        data={
            "csrf_token": token.group(1),
            "username": name,
            "password": password,
            "next": next_path,
        },
        follow_redirects=False,
    )


def test_pages_need_a_session(portal_client: PortalClient) -> None:
    response = portal_client.get("/portal/apps?search=x", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/portal/signin?next=/portal/apps%3Fsearch%3Dx"


def test_sign_in_sets_a_hardened_cookie_and_returns_to_the_page(
    portal_client: PortalClient, person: Callable[[str], str]
) -> None:
    response = _post_sign_in(portal_client, person("developer"), PASSWORD, "/portal/apps")
    assert response.status_code == 303  # type: ignore[attr-defined]
    assert response.headers["location"] == "/portal/apps"  # type: ignore[attr-defined]
    cookie = next(
        c
        for c in response.headers.get_list("set-cookie")  # type: ignore[attr-defined]
        if c.startswith("__Host-dicomite-session=")
    )
    flags = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "secure", "path=/", "samesite=lax"} <= flags
    assert not any(flag.startswith("domain") for flag in flags)


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/graph/v1.0"])
def test_sign_in_never_redirects_elsewhere(
    portal_client: PortalClient, person: Callable[[str], str], target: str
) -> None:
    response = _post_sign_in(portal_client, person("developer"), PASSWORD, target)
    assert response.headers["location"] == "/portal/"  # type: ignore[attr-defined]


def test_wrong_password_and_unknown_user_look_the_same(
    portal_client: PortalClient, person: Callable[[str], str]
) -> None:
    wrong = _post_sign_in(portal_client, person("developer"), "Wrong-Passw0rd")
    unknown = _post_sign_in(portal_client, "ghost@nowhere", "Wrong-Passw0rd")
    assert wrong.status_code == unknown.status_code == 401  # type: ignore[attr-defined]
    message = re.compile(r'role="alert">([^<]+)<')
    assert message.search(wrong.text).group(1) == message.search(unknown.text).group(1)  # type: ignore[attr-defined,union-attr]


def test_sign_in_form_needs_its_csrf_cookie(
    portal_client: PortalClient, person: Callable[[str], str]
) -> None:
    name = person("developer")
    portal_client.get("/portal/signin")
    response = portal_client.post(
        "/portal/signin", data={"csrf_token": "forged", "username": name, "password": PASSWORD}
    )
    assert response.status_code == 403
    assert "Sign out" not in response.text


def test_repeated_failures_are_throttled(
    portal_client: PortalClient, person: Callable[[str], str]
) -> None:
    name = person("developer")
    statuses = [_post_sign_in(portal_client, name, "Wrong-Passw0rd").status_code for _ in range(6)]  # type: ignore[attr-defined]
    assert statuses[:5] == [401] * 5 and statuses[5] == 429
    locked = _post_sign_in(portal_client, name, PASSWORD)  # even the right password waits
    assert locked.status_code == 429  # type: ignore[attr-defined]
    assert int(locked.headers["retry-after"]) > 0  # type: ignore[attr-defined]


@pytest.mark.parametrize("token", [None, "", "forged-token"])
def test_posts_without_the_session_csrf_token_are_refused(
    signed_in: Callable[[str], PortalClient], token: str | None
) -> None:
    client = signed_in("global-admin")
    data = {"name": "Should not exist"} | ({"csrf_token": token} if token is not None else {})
    response = client.post("/portal/apps/new", data=data)
    assert response.status_code == 403
    assert "Should not exist" not in client.get("/portal/apps").text


def test_csrf_token_of_another_session_is_refused(signed_in: Callable[[str], PortalClient]) -> None:
    mine, theirs = signed_in("global-admin"), signed_in("app-admin")
    response = mine.post("/portal/apps/new", data={"csrf_token": theirs.csrf(), "name": "Nope"})
    assert response.status_code == 403


def test_sign_out_ends_the_session(signed_in: Callable[[str], PortalClient]) -> None:
    client = signed_in("developer")
    cookie = client.cookies.get("__Host-dicomite-session")
    assert client.submit("/portal/signout").url.path == "/portal/signin"
    client.cookies.set("__Host-dicomite-session", cookie or "")
    assert client.get("/portal/apps", follow_redirects=False).status_code == 303


def test_idle_sessions_expire(
    signed_in: Callable[[str], PortalClient], portal_context: Context
) -> None:
    client = signed_in("developer")
    with portal_context.store.write() as session:
        for row in session.query(PortalSession).all():
            row.last_seen_at = utcnow() - sessions.IDLE_TIMEOUT - timedelta(seconds=1)
    assert client.get("/portal/apps", follow_redirects=False).status_code == 303


def test_pages_carry_security_headers(signed_in: Callable[[str], PortalClient]) -> None:
    headers = signed_in("developer").get("/portal/apps").headers
    assert "script-src 'self'" in headers["content-security-policy"]
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["cache-control"] == "no-store"


def test_unknown_portal_page_is_a_page_not_json(portal_client: PortalClient) -> None:
    response = portal_client.get("/portal/no/such/page")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")


def test_root_leads_to_the_portal(portal_client: PortalClient) -> None:
    assert portal_client.get("/", follow_redirects=False).headers["location"] == "/portal/"


def test_sign_in_works_with_the_name_in_any_case(
    portal_client: PortalClient, person: Callable[[str], str]
) -> None:
    sign_in(portal_client, person("developer").upper())


NAV = re.compile(r'<nav class="sidebar" aria-label="Main">(.*?)</nav>', re.S)


@pytest.mark.parametrize(
    ("role", "links"),
    [
        (
            "global-admin",
            [
                "Home",
                "App registrations",
                "Enterprise applications",
                "Sign-in logs",
                "Users",
                "DICOM studies",
                "Extended query tags",
            ],
        ),
        ("developer", ["Home", "App registrations", "Enterprise applications", "Sign-in logs"]),
        ("reader", ["Home", "DICOM studies", "Extended query tags"]),
        ("nobody", ["Home"]),
    ],
)
def test_navigation_shows_what_the_roles_allow(
    signed_in: Callable[[str], PortalClient], role: str, links: list[str]
) -> None:
    home = signed_in(role).get("/portal/")
    nav = NAV.search(home.text)
    assert nav
    assert re.findall(r">([^<>]+)</a>", nav.group(1)) == links


def test_people_without_a_directory_role_cannot_list_applications(
    signed_in: Callable[[str], PortalClient],
) -> None:
    response = signed_in("reader").get("/portal/apps")
    assert response.status_code == 403
    assert "needs a directory role" in response.text


def test_oversized_forms_are_refused_before_they_are_held(
    signed_in: Callable[[str], PortalClient],
) -> None:
    client = signed_in("global-admin")
    huge = {"csrf_token": client.csrf(), "name": "x" * (3 * 1024 * 1024)}
    assert client.post("/portal/apps/new", data=huge).status_code == 413

    def chunked() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield b"csrf_token=x&name="
        for _ in range(40):
            yield b"y" * 65536

    response = client.post(
        "/portal/apps/new",
        content=chunked(),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 413
    assert "xxxxxxxxxx" not in client.get("/portal/apps").text  # nothing was registered


def test_expired_sessions_are_forgotten_at_the_next_sign_in(
    signed_in: Callable[[str], PortalClient], portal_context: Context
) -> None:
    signed_in("developer")
    with portal_context.store.write() as session:
        for row in session.query(PortalSession).all():
            row.expires_at = utcnow() - timedelta(seconds=1)
    signed_in("reader")
    with portal_context.store.read() as session:
        assert session.query(PortalSession).count() == 1  # only the new one


# ------------------------------------------------- item 3: no hash under a write lock, no flood


@dataclass
class HashProbe:
    """Wraps the real password functions the server calls (in its threads; the test's own
    setup in the main thread is let through): counts the hashes and, at each one,
    checks from a connection of its own that nothing holds SQLite's write lock (another
    connection can take BEGIN IMMEDIATE) and that no event loop runs in the thread."""

    database: Path
    hashes: int = 0
    write_lock_held: int = 0
    on_event_loop: int = 0

    def wrap(self, real: Callable[[str, str], object]) -> Callable[[str, str], object]:
        def probed(first: str, *rest: str) -> object:
            if threading.current_thread() is threading.main_thread():
                return real(first, *rest)  # the test's own setup, not the server's work
            self.hashes += 1
            self.write_lock_held += not self._can_take_the_write_lock()
            self.on_event_loop += _event_loop_runs_here()
            return real(first, *rest)

        return probed

    def _can_take_the_write_lock(self) -> bool:
        """A lock held around the hash is held by the caller of the hash, which waits for this
        check: it is never given up, however long the wait. The wait lets another thread's
        short write (and SQLite's transient busy states) pass."""
        connection = sqlite3.connect(self.database, timeout=2, isolation_level=None)
        try:
            connection.execute("BEGIN IMMEDIATE")
            connection.execute("ROLLBACK")
            return True
        except sqlite3.OperationalError:  # "database is locked"
            return False
        finally:
            connection.close()


def _event_loop_runs_here() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


@pytest.fixture
def probe(portal_context: Context, monkeypatch: pytest.MonkeyPatch) -> HashProbe:
    found = HashProbe(portal_context.settings.data_dir / "dicomite.db")
    monkeypatch.setattr(signin, "verify_password", found.wrap(signin.verify_password))  # type: ignore[arg-type]
    for module in (signin, users):  # sign-in's upgrade; new users and password resets
        monkeypatch.setattr(module, "hash_password", found.wrap(module.hash_password))  # type: ignore[arg-type]
    return found


def test_no_password_hash_runs_under_the_write_lock_or_on_the_event_loop(
    portal_client: PortalClient,
    person: Callable[[str], str],
    portal_context: Context,
    probe: HashProbe,
) -> None:
    name, hashes = person("developer"), probe.hashes
    old = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    with portal_context.store.write() as session:  # an old hash: sign-in upgrades it
        users.user_by_name(session, portal_context.tenant_id, name).password_hash = old

    assert _post_sign_in(portal_client, name, "Wrong-Passw0rd").status_code == 401  # type: ignore[attr-defined]
    assert _post_sign_in(portal_client, "ghost@nowhere", "Wrong-Passw0rd").status_code == 401  # type: ignore[attr-defined]
    assert _post_sign_in(portal_client, name, PASSWORD).status_code == 303  # type: ignore[attr-defined]

    assert probe.hashes - hashes == 4  # three checks and the upgrade
    assert (probe.write_lock_held, probe.on_event_loop) == (0, 0)
    with portal_context.store.read() as session:
        assert users.user_by_name(session, portal_context.tenant_id, name).password_hash != old


def test_no_password_hash_runs_under_the_write_lock_when_an_administrator_sets_one(
    signed_in: Callable[[str], PortalClient], portal_context: Context, probe: HashProbe
) -> None:
    admin = signed_in("global-admin")
    before = probe.hashes
    form = {
        "user_principal_name": "new@example.test",
        "display_name": "New",
        "password_choice": "type",
        "password": "Brand-new-Passw0rd",
    }
    assert admin.submit("/portal/users/new", form, follow_redirects=False).status_code == 303
    with portal_context.store.read() as session:
        created = users.user_by_name(session, portal_context.tenant_id, "new@example.test")
    reset = {"password_choice": "type", "password": "Another-Passw0rd"}
    assert admin.submit(f"/portal/users/{created.id}/password", reset).status_code == 200

    assert probe.hashes == before + 2
    assert (probe.write_lock_held, probe.on_event_loop) == (0, 0)


def test_a_throttled_address_costs_no_password_hash(
    portal_client: PortalClient, person: Callable[[str], str], probe: HashProbe
) -> None:
    name = person("developer")
    for number in range(20):  # one address guessing many names: locked at the 20th failure
        _post_sign_in(portal_client, f"guess{number}@nowhere", "Wrong-Passw0rd")
    hashes = probe.hashes

    flood = [_post_sign_in(portal_client, name, PASSWORD) for _ in range(10)]

    assert [r.status_code for r in flood] == [429] * 10  # type: ignore[attr-defined]
    assert probe.hashes == hashes


def test_an_account_locked_at_an_address_costs_no_password_hash(
    portal_client: PortalClient, person: Callable[[str], str], probe: HashProbe
) -> None:
    name, hashes = person("developer"), probe.hashes
    statuses = [_post_sign_in(portal_client, name, "Wrong-Passw0rd").status_code for _ in range(8)]  # type: ignore[attr-defined]

    assert statuses == [401] * 5 + [429] * 3
    assert probe.hashes - hashes == 5


def test_the_peer_is_the_address_unless_it_is_a_trusted_proxy(
    portal_context: Context, person: Callable[[str], str]
) -> None:
    name = person("developer")
    app = create_app(portal_context.settings)
    with (
        PortalClient(app, base_url="https://testserver", client=("192.0.2.7", 1)) as guesser,
        PortalClient(app, base_url="https://testserver", client=("192.0.2.8", 1)) as owner,
    ):
        for _ in range(5):
            forwarded = {"x-forwarded-for": "203.0.113.1"}  # not believed: no trusted proxies
            guesser.headers.update(forwarded)
            assert _post_sign_in(guesser, name, "Wrong-Passw0rd").status_code == 401  # type: ignore[attr-defined]
        guesser.headers["x-forwarded-for"] = "203.0.113.2"

        assert _post_sign_in(guesser, name, PASSWORD).status_code == 429  # type: ignore[attr-defined]
        assert _post_sign_in(owner, name, PASSWORD).status_code == 303  # type: ignore[attr-defined]
