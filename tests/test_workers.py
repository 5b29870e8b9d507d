"""``dicomite serve --workers 2``: several processes on one store serve every request and pick
up a key rotation made by another process (the CLI)."""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import jwt
import pytest
from sqlalchemy import select

from dicomite.store.db import Store
from dicomite.store.tables import SigningKey
from tests.fixtures.postgres import PostgresServer
from tests.fixtures.server import Server, make_server
from tests.fixtures.stores import BACKENDS, sqlite_url

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
REQUESTS = 200


@pytest.fixture(params=BACKENDS)
def workers_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    args = ["--workers", "2"]
    if request.param == "postgresql":
        postgres: PostgresServer = request.getfixturevalue("postgres_server")
        args += ["--database-url", postgres.create_database()]
    running = make_server(tmp_path, extra_args=args)
    running.start()
    yield running
    running.stop()


def _database_url(server: Server) -> str:
    args = server.extra_args
    return args[args.index("--database-url") + 1] if "--database-url" in args else ""


def _token_kid(server: Server, context: ssl.SSLContext) -> str:
    """One token over a new connection, so that requests spread over the workers."""
    with httpx.Client(verify=context, timeout=60, headers={"Connection": "close"}) as client:
        response = client.post(
            server.token_url,
            data={
                "grant_type": "client_credentials",
                "client_id": server.client_id,
                "client_secret": server.client_secret,
                "scope": GRAPH_SCOPE,
            },
        )
    assert response.status_code == 200, response.text
    return str(jwt.get_unverified_header(response.json()["access_token"])["kid"])


def _newest_kid(server: Server) -> str:
    store = Store(_database_url(server) or sqlite_url(server.data_dir))
    try:
        with store.read() as session:
            return str(
                session.scalars(
                    select(SigningKey.kid).order_by(SigningKey.created_at.desc())
                ).first()
            )
    finally:
        store.dispose()


def _worker_processes(server: Server) -> list[int]:
    assert server.process is not None
    children = Path(f"/proc/{server.process.pid}/task/{server.process.pid}/children")
    return [int(pid) for pid in children.read_text().split()]


def test_workers_serve_concurrent_tokens_and_follow_key_rotation(workers_server: Server) -> None:
    server = workers_server
    context = ssl.create_default_context(cafile=server.ca_file)
    assert len(_worker_processes(server)) >= 2

    with ThreadPoolExecutor(max_workers=16) as pool:
        kids = list(pool.map(lambda _: _token_kid(server, context), range(REQUESTS)))
    assert len(kids) == REQUESTS and len(set(kids)) == 1

    database = ["--database-url", _database_url(server)] if _database_url(server) else []
    rotated = server.cli("keys", "rotate", "--lead", "0", *database)
    new_kid = _newest_kid(server)
    assert new_kid != kids[0], rotated.stdout

    deadline = time.monotonic() + 5
    with ThreadPoolExecutor(max_workers=8) as pool:
        while True:
            latest = list(pool.map(lambda _: _token_kid(server, context), range(16)))
            if set(latest) == {new_kid}:
                break
            assert time.monotonic() < deadline, f"workers still sign with {set(latest)}"
            time.sleep(0.25)
    log = server.log_text()
    assert "database is locked" not in log
    assert "Traceback" not in log, log
