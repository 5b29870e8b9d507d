"""``request-id`` and ``client-request-id`` on every Graph response, as Microsoft Graph sends them.

A plain ASGI middleware (stream-safe): it picks the ids before routing, keeps them in
``scope["state"]`` for error bodies, and adds them to the response headers.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Echo a caller's id only when it is a plain token, so it cannot inject header or log text.
_CLIENT_ID = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")


class RequestIds:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = str(uuid.uuid4())
        offered = Request(scope).headers.get("client-request-id", "")
        client_request_id = offered if _CLIENT_ID.match(offered) else request_id
        state: dict[str, Any] = scope.setdefault("state", {})
        state.update(request_id=request_id, client_request_id=client_request_id)

        async def send_with_ids(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["request-id"] = request_id
                headers["client-request-id"] = client_request_id
            await send(message)

        await self.app(scope, receive, send_with_ids)


def request_ids(request: Request) -> tuple[str, str]:
    state = request.scope.get("state", {})
    request_id = state.get("request_id") or str(uuid.uuid4())
    return str(request_id), str(state.get("client_request_id") or request_id)
