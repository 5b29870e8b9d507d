"""Reading Graph request bodies: JSON objects of at most 1 MB, strictly typed properties.

Unknown properties are refused as Graph refuses them; instance annotations (``@odata.type``)
are ignored. Properties Graph knows but Dicomite does not model are accepted only with an
empty value (null, [], false, "", or an object of those), so a body copied from a GET response
can be sent back.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request

from dicomite.graph.errors import (
    BadRequest,
    InvalidRequest,
    PayloadTooLarge,
    UnsupportedMediaType,
    unknown_property,
)

MAX_BODY_BYTES = 1024 * 1024
_JSON_TYPES = ("application/json", "text/json")
_UNREADABLE = (
    "Unable to read JSON request payload. Please ensure Content-Type header is set and "
    "payload is of valid JSON format."
)


async def read_json(request: Request) -> dict[str, Any]:
    """The body as a JSON object; an empty body is ``{}`` (actions with optional bodies)."""
    raw = await _read_limited(request)
    if not raw.strip():
        return {}
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in _JSON_TYPES:
        raise UnsupportedMediaType(
            f"Content-Type '{media_type[:100]}' is not supported; send application/json."
        )
    try:
        value = json.loads(raw, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        raise BadRequest(_UNREADABLE) from None
    if not isinstance(value, dict):
        raise BadRequest(_UNREADABLE)
    return value


async def _read_limited(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise PayloadTooLarge("The request body is larger than 1 MB.")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise PayloadTooLarge("The request body is larger than 1 MB.")
    return bytes(body)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def check_properties(
    body: Mapping[str, Any],
    type_name: str,
    supported: Collection[str],
    tolerated: Collection[str] = (),
) -> None:
    for name, value in body.items():
        if name.startswith("@") or "@odata." in name or name in supported:
            continue
        if name not in tolerated:
            raise unknown_property(name, type_name)
        if not _is_empty(value):
            raise InvalidRequest(f"Property '{name}' is not supported by Dicomite.")


def _is_empty(value: Any) -> bool:
    if isinstance(value, dict):
        return all(_is_empty(v) for v in value.values())
    return value is None or value is False or value == [] or value == ""


def member(body: Mapping[str, Any], name: str, type_name: str) -> dict[str, Any]:
    """A nested object (``api``, ``web``, ``passwordCredential``); null counts as empty."""
    value = body.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidRequest(f"'{name}' must be a microsoft.graph.{type_name} object.")
    return value


def text(body: Mapping[str, Any], name: str, *, required: bool = False) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise InvalidRequest(f"'{name}' is required and must be a string.")
    return value


def array(body: Mapping[str, Any], name: str, item_type: type = object) -> list[Any]:
    value = body.get(name)
    if not isinstance(value, list) or not all(isinstance(v, item_type) for v in value):
        kind = "strings" if item_type is str else "objects" if item_type is dict else "values"
        raise InvalidRequest(f"'{name}' must be an array of {kind}.")
    return value


def timestamp(body: Mapping[str, Any], name: str) -> datetime | None:
    """An ``Edm.DateTimeOffset``; a value without an offset is taken as UTC."""
    value = body.get(name)
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value if isinstance(value, str) else "?")
    except ValueError:
        raise InvalidRequest(
            f"Cannot convert the literal '{str(value)[:64]}' to the expected type "
            "'Edm.DateTimeOffset'."
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
