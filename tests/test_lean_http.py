"""The httptools protocol without body copies, run by the installed uvicorn on a loopback port."""

from __future__ import annotations

import hashlib
import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn

from dicomite.lean_http import READ_BUFFER_BYTES, BodyChunks, LeanHttp


async def _digest_app(scope: dict, receive, send) -> None:  # type: ignore[no-untyped-def]
    """Answers with the body's length, SHA-256, and the types of the chunks it was given."""
    if scope["type"] != "http":
        return
    digest, size, types = hashlib.sha256(), 0, set()
    while True:
        message = await receive()
        types.add(type(message["body"]).__name__)
        digest.update(message["body"])
        size += len(message["body"])
        if not message.get("more_body"):
            break
    body = json.dumps({"size": size, "sha256": digest.hexdigest(), "types": sorted(types)})
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body.encode()})


class CountingHttp(LeanHttp):
    """Counts the reads the event loop made into the shared buffer."""

    reads = 0

    def buffer_updated(self, nbytes: int) -> None:
        CountingHttp.reads += 1
        super().buffer_updated(nbytes)


@pytest.fixture(scope="module", params=["uvloop", "asyncio"])
def port(request: pytest.FixtureRequest) -> Iterator[int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    config = uvicorn.Config(
        _digest_app, host="127.0.0.1", port=free, http=CountingHttp,  # type: ignore[arg-type] loop=request.param,
        log_level="warning",
    )  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.02)
    yield free
    server.should_exit = True
    thread.join(10)


def _post(port: int, body: bytes | Iterator[bytes], chunked: bool = False) -> dict:  # type: ignore[type-arg]
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("POST", "/", body=body, encode_chunked=chunked)
        response = connection.getresponse()
        assert response.status == 200
        return json.loads(response.read())  # type: ignore[no-any-return]
    finally:
        connection.close()


@pytest.mark.parametrize("size", [0, 1, 65_536, 3_000_001])
def test_bodies_arrive_whole_as_bytes(port: int, size: int) -> None:
    body = bytes(i % 251 for i in range(size))
    answer = _post(port, body)
    assert answer == {
        "size": size,
        "sha256": hashlib.sha256(body).hexdigest(),
        "types": ["bytes"],
    }


def test_the_event_loop_reads_into_the_shared_buffer(port: int) -> None:
    before = CountingHttp.reads
    body = bytes(range(256)) * 16384  # 4 MiB: several reads of at most READ_BUFFER_BYTES
    assert _post(port, body)["sha256"] == hashlib.sha256(body).hexdigest()
    assert CountingHttp.reads - before >= len(body) // READ_BUFFER_BYTES


def test_chunked_bodies_arrive_whole(port: int) -> None:
    pieces = [b"a" * 70_000, b"", b"b" * 3, b"c" * 1_000_000]
    answer = _post(port, iter([p for p in pieces if p]), chunked=True)
    joined = b"".join(pieces)
    assert answer["size"] == len(joined)
    assert answer["sha256"] == hashlib.sha256(joined).hexdigest()


def test_pipelined_requests_keep_their_own_bodies(port: int) -> None:
    first, second = b"x" * 200_000, b"y" * 10
    requests = b"".join(
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        for body in (first, second)
    )
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(requests)
        received = b""
        while received.count(b'"sha256"') < 2:
            chunk = sock.recv(65_536)
            assert chunk, "connection closed early"
            received += chunk
    assert hashlib.sha256(first).hexdigest().encode() in received
    assert hashlib.sha256(second).hexdigest().encode() in received


def test_one_chunk_is_handed_on_without_a_copy() -> None:
    chunk = b"pixel data" * 1000
    chunks = BodyChunks()
    chunks += chunk
    assert bytes(chunks) is chunk
    chunks += b"more"
    assert len(chunks) == len(chunk) + 4 and bytes(chunks) == chunk + b"more"
