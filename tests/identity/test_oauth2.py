"""Which token requests leave the event loop (``TokenService.blocks``)."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from dicomite.identity.oauth2 import TokenRequest, TokenService

SECRET = {"grant_type": "client_credentials", "client_id": "c", "client_secret": "s"}
ASSERTION = {"grant_type": "client_credentials", "client_id": "c", "client_assertion": "a.b.c"}
CODE = {"grant_type": "authorization_code", "client_id": "c", "code": "x"}
REFRESH = {"grant_type": "refresh_token", "client_id": "c", "refresh_token": "x"}


def _service(*, sqlite: bool) -> TokenService:
    unused: Any = None
    return TokenService(
        public_url="https://localhost",
        view=SimpleNamespace(reads_in_process=sqlite),  # type: ignore[arg-type]
        keys=unused,
        protection=unused,
        replay=unused,
        signins=unused,
        lifetime=timedelta(hours=1),
        people=unused,
        external_keys=unused,
    )


@pytest.mark.parametrize(
    ("form", "sqlite", "blocks"),
    [
        (SECRET, True, False),  # in-memory caches, one indexed row: on the event loop
        (ASSERTION, True, True),  # the jti record is a database write
        (SECRET, False, True),  # PostgreSQL: every read waits on the network
        (CODE, True, True),  # redeeming a code or refresh token writes
        (REFRESH, True, True),
    ],
)
def test_requests_that_write_or_wait_go_to_the_pool(
    form: dict[str, str], sqlite: bool, blocks: bool
) -> None:
    request = TokenRequest(tenant="t", version=2, form=form)
    assert _service(sqlite=sqlite).blocks(request) is blocks
