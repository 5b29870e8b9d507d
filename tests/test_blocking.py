"""Blocking calls from the event loop: results, errors, and cancellation that waits for them;
and the threading rule (``dicomite.blocking``'s docstring) held by the whole app."""

from __future__ import annotations

import ast
import base64
import hashlib
import inspect
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import jwt
import pytest
from argon2 import PasswordHasher
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import event
from starlette.applications import Starlette
from starlette.routing import BaseRoute, Mount, Route

import dicomite
from dicomite.app import create_app
from dicomite.blocking import finished, run_blocking, start_blocking
from dicomite.bootstrap import Context, prepare
from dicomite.clock import utcnow
from dicomite.identity import users
from dicomite.identity.users import DicomDataRole
from tests.fixtures.dicom import make_dataset, to_bytes
from tests.fixtures.directory import DICOM_SCOPE, GRAPH_SCOPE, Admin, make_certificate
from tests.fixtures.loops import on_event_loop, run_async
from tests.fixtures.stores import sqlite_url, store_settings
from tests.portal.conftest import PASSWORD, PortalClient, sign_in


def test_runs_in_another_thread_and_returns_its_result() -> None:
    async def main() -> tuple[int, int, int]:
        total, thread = await run_blocking(lambda a, b: (a + b, threading.get_ident()), 2, 3)
        return total, thread, threading.get_ident()

    total, thread, caller = run_async(main)
    assert total == 5 and thread != caller


def test_raises_what_the_call_raised() -> None:
    def fail() -> None:
        raise OSError(28, "No space left on device")

    async def main() -> None:
        await run_blocking(fail)

    with pytest.raises(OSError, match="No space left"):
        run_async(main)


def test_a_started_call_is_awaited_later_and_several_run_at_once() -> None:
    gate = threading.Barrier(3, timeout=5)  # each call waits for the other two

    async def main() -> list[int]:
        futures = [start_blocking(gate.wait) for _ in range(3)]
        results = [await finished(f) for f in futures]
        return [*results, await finished(futures[0])]  # a done one, again

    results = run_async(main)
    assert sorted(results[:3]) == [0, 1, 2] and results[3] == results[0]


def test_a_cancelled_caller_waits_for_the_call_to_end() -> None:
    ended: list[float] = []

    def slow() -> None:
        time.sleep(0.3)
        ended.append(time.monotonic())

    cancelled_at: list[float] = []

    async def caller() -> None:
        try:
            await run_blocking(slow)
        finally:
            cancelled_at.append(time.monotonic())

    async def main() -> None:
        async with anyio.create_task_group() as group:
            group.start_soon(caller)
            await anyio.sleep(0.05)
            group.cancel_scope.cancel()

    run_async(main)
    assert ended and cancelled_at and ended[0] <= cancelled_at[0]


def test_an_ended_call_is_seen_done_without_the_event_loop_running() -> None:
    ended = threading.Event()

    async def main() -> tuple[bool, int]:
        future = start_blocking(lambda: ended.set() or 7)
        assert ended.wait(5)  # blocks the loop: nothing it would have to run can run
        for _ in range(500):  # the pool sets the result just after the call returns
            if future.done():
                break
            time.sleep(0.001)
        return future.done(), await finished(future)

    assert run_async(main) == (True, 7)


# --- the threading rule -------------------------------------------------------------------

SRC = Path(dicomite.__file__).parent
# Ways to hand work to a thread other than ``dicomite.blocking``: each would be a second pool.
OTHER_POOLS = {"to_thread", "run_in_executor", "run_in_threadpool", "ThreadPoolExecutor"}
OTHER_POOL_MODULES = {"anyio.to_thread", "starlette.concurrency"}
# The command-line client is no server: its uploads run in parallel in a pool of its own.
NOT_SERVED = {SRC / "blocking.py", *SRC.glob("cli/*.py")}


def _other_pools(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name in OTHER_POOL_MODULES]
        elif isinstance(node, ast.ImportFrom):
            names = {node.module or ""} | {f"{node.module}.{a.name}" for a in node.names}
            found += sorted(names & OTHER_POOL_MODULES)
            found += [a.name for a in node.names if a.name in OTHER_POOLS]
        elif isinstance(node, ast.Attribute) and node.attr in OTHER_POOLS:
            found.append(node.attr)
    return found


def test_only_the_blocking_module_hands_work_to_threads() -> None:
    offenders = {
        str(path.relative_to(SRC)): found
        for path in sorted(SRC.rglob("*.py"))
        if path not in NOT_SERVED and (found := _other_pools(ast.parse(path.read_text())))
    }
    assert offenders == {}


def test_the_scan_sees_each_other_pool() -> None:
    sources = [
        "import anyio.to_thread",
        "from starlette.concurrency import run_in_threadpool",
        "from concurrent.futures import ThreadPoolExecutor",
        "loop.run_in_executor(None, f)",
        "asyncio.to_thread(f)",
    ]
    assert all(_other_pools(ast.parse(source)) for source in sources)


def _routes(routes: list[BaseRoute]) -> Iterator[Route]:
    for route in routes:
        if isinstance(route, Mount):
            yield from _routes(route.routes)
        elif isinstance(route, Route):
            yield route


WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "BEGIN IMMEDIATE")


@dataclass
class Watch:
    """What the server ran where: each database write and password hash, on the event loop or
    in another thread (the test's own set-up, in the test's thread, is left out)."""

    test_thread: int = field(default_factory=threading.get_ident)
    on_loop: list[str] = field(default_factory=list)
    off_loop: list[str] = field(default_factory=list)

    def saw(self, what: str) -> None:
        if threading.get_ident() != self.test_thread:
            (self.on_loop if on_event_loop() else self.off_loop).append(what)

    def sql(self, statement: str) -> None:
        if statement.lstrip().upper().startswith(WRITES):
            self.saw(statement[:60])


@pytest.fixture
def watched(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Starlette, Watch]]:
    settings = store_settings(
        data_dir, sqlite_url(data_dir), http=False, public_url="https://testserver"
    )
    context = prepare(settings)
    context.store.dispose()
    app = create_app(settings)
    watch = Watch()

    def trace(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        dbapi_connection.set_trace_callback(watch.sql)  # every statement, raw cursors too

    event.listen(app.state.services.context.store.engine, "checkout", trace)
    for name in ("hash", "verify"):
        original = getattr(PasswordHasher, name)

        def checked(
            self: PasswordHasher, *args: Any, _run: Any = original, _name: str = name
        ) -> Any:
            watch.saw(f"argon2 {_name}")
            return _run(self, *args)

        monkeypatch.setattr(PasswordHasher, name, checked)
    yield app, watch
    app.state.services.context.store.dispose()


def test_every_route_is_async_so_no_request_runs_in_starlettes_own_pool(
    watched: tuple[Starlette, Watch],
) -> None:
    app, _ = watched
    sync = [r.path for r in _routes(app.routes) if not inspect.iscoroutinefunction(r.endpoint)]
    assert sync == []


def _client_assertion(context: Context, app_id: str, key_pem: bytes, cert_pem: bytes) -> str:
    der = x509.load_pem_x509_certificate(cert_pem).public_bytes(Encoding.DER)
    thumbprint = base64.urlsafe_b64encode(hashlib.sha1(der, usedforsecurity=False).digest())
    now = int(time.time())
    claims = {
        "aud": f"https://testserver/{context.tenant_id}/oauth2/v2.0/token",
        "iss": app_id,
        "sub": app_id,
        "jti": str(uuid.uuid4()),
        "exp": now + 600,
        "nbf": now,
    }
    return jwt.encode(claims, key_pem, "RS256", headers={"x5t": thumbprint.rstrip(b"=").decode()})


def _token(client: PortalClient, context: Context, form: dict[str, str]) -> str:
    response = client.post(
        f"/{context.tenant_id}/oauth2/v2.0/token", data={"grant_type": "client_credentials", **form}
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


Scenario = Callable[[PortalClient, Context], None]


def _certificate_token_and_stow(client: PortalClient, context: Context) -> None:
    admin = Admin(context)
    registered = admin.register(roles=("Dicom.ReadWrite",), secret=False)
    pair = make_certificate()
    admin.add_certificate(registered.app_id, pair.certificate_pem)
    assertion = _client_assertion(
        context, registered.app_id, pair.private_key_pem, pair.certificate_pem
    )
    form = {
        "client_id": registered.app_id,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion,
        "scope": DICOM_SCOPE,
    }
    token = _token(client, context, form)
    stored = client.post(
        "/dicom/v2/studies",
        content=to_bytes(make_dataset()),
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/dicom",
            "Accept": "application/dicom+json",
        },
    )
    assert stored.status_code == 200, stored.text


def _portal_sign_in_and_upload(client: PortalClient, context: Context) -> None:
    name = f"owner@{context.tenant_domain}"
    with context.store.write() as session:
        users.create_user(
            session,
            context.tenant_id,
            utcnow(),
            user_principal_name=name,
            display_name="Owner",
            password=users.new_password(PASSWORD),
            dicom_role=DicomDataRole.OWNER,
        )
    sign_in(client, name)
    uploaded = client.post(
        "/portal/dicom/upload",
        content=to_bytes(make_dataset()),
        headers={"Content-Type": "application/dicom", "X-CSRF-Token": client.csrf()},
    )
    assert uploaded.status_code == 200, uploaded.text


def _graph_write(client: PortalClient, context: Context) -> None:
    admin = Admin(context)
    graph = admin.register(roles=("Application.ReadWrite.All",), api="https://graph.microsoft.com")
    assert graph.secret is not None
    form = {"client_id": graph.app_id, "client_secret": graph.secret, "scope": GRAPH_SCOPE}
    token = _token(client, context, form)
    created = client.post(
        "/graph/v1.0/applications",
        json={"displayName": "written off the loop"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert created.status_code == 201, created.text


def _device_flow(client: PortalClient, context: Context) -> None:
    """Device codes, a pending poll, the person's approval at /devicelogin, the tokens."""
    admin = Admin(context)
    registered = admin.register(secret=False)
    admin.allow_public_client_flows(registered.app_id)
    codes = client.post(
        f"/{context.tenant_id}/oauth2/v2.0/devicecode",
        data={"client_id": registered.app_id, "scope": "openid"},
    ).json()
    form = {
        "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
        "client_id": registered.app_id,
        "device_code": codes["device_code"],
    }
    token_path = f"/{context.tenant_id}/oauth2/v2.0/token"
    assert client.post(token_path, data=form).json()["error"] == "authorization_pending"
    sign_in(client, admin.add_person("DICOM Data Reader", PASSWORD))
    decided = client.submit(
        "/devicelogin/decide", {"code": codes["user_code"], "decision": "accept"}
    )
    assert "You have signed in" in decided.text, decided.text
    assert "id_token" in client.post(token_path, data=form).json()


@pytest.mark.parametrize(
    "scenario",
    [_certificate_token_and_stow, _portal_sign_in_and_upload, _graph_write, _device_flow],
)
def test_no_database_write_and_no_password_hash_on_the_event_loop(
    watched: tuple[Starlette, Watch], scenario: Scenario
) -> None:
    app, watch = watched
    context = app.state.services.context
    with PortalClient(app, base_url="https://testserver") as client:
        scenario(client, context)
    assert not watch.on_loop, "on the event loop:\n" + "\n".join(watch.on_loop)
    assert watch.off_loop  # the hooks saw the scenario's writes (and hashes), in the pool
