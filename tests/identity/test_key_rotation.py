"""``dicomite keys rotate``: the next key is published before it signs, the previous one stays
published while its tokens live."""

from __future__ import annotations

import json
import time

import jwt

from tests.fixtures.server import Server
from tests.identity.test_tokens import jwks, verify

GRAPH = "https://graph.microsoft.com"
LEAD = 5  # seconds between publishing the next key and signing with it


def kids(server: Server) -> list[str]:
    return [key.key_id for key in jwks(server).keys if key.key_id]


def wait_for(condition: object, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.2)


def test_rotation_publishes_first_then_signs(fresh_server: Server) -> None:
    server = fresh_server
    before = server.graph_token()
    old_kid = jwt.get_unverified_header(before)["kid"]
    assert kids(server) == [old_kid]

    rotated_at = time.monotonic()
    server.invoke("keys", "rotate", "--lead", str(LEAD))
    wait_for(lambda: len(kids(server)) == 2)
    new_kid = next(k for k in kids(server) if k != old_kid)
    if time.monotonic() - rotated_at < LEAD - 1:  # inside the lead time: the old key signs
        assert jwt.get_unverified_header(server.graph_token())["kid"] == old_kid

    wait_for(lambda: jwt.get_unverified_header(server.graph_token())["kid"] == new_kid, 15)
    after = server.graph_token()
    assert verify(server, after, GRAPH)["aud"] == GRAPH
    assert verify(server, before, GRAPH)["aud"] == GRAPH  # earlier tokens still verify
    assert set(kids(server)) == {old_kid, new_kid}
    states = {
        k["kid"]: k["state"] for k in json.loads(server.invoke("keys", "list", "--json").stdout)
    }
    assert states == {old_kid: "retiring", new_kid: "active"}  # retires when its tokens expire
