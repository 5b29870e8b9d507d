"""DICOMweb client side: the STOW client, multipart bodies, response framing checks."""

from __future__ import annotations

import asyncio
import functools
import http.client
import json
import re
import secrets
import socket
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from _dicom_base import ACCEPT_JSON, TRUST, Server
from _processes import HOST


def multipart_body(parts: Sequence[bytes], boundary: str) -> bytes:
    chunks = []
    for part in parts:
        chunks.append(f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode())
        chunks.append(part)
        chunks.append(b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks)


def stow_failures(status: int, body: bytes, expected: int) -> int:
    """Instances of a STOW request that did not get stored (0 when all are fine)."""
    if status != 200:
        return expected
    try:
        doc = json.loads(body)
    except ValueError:
        return expected
    if not isinstance(doc, dict):
        return expected
    referenced = doc.get("00081199", {}).get("Value", [])
    failed = doc.get("00081198", {}).get("Value", [])
    return max(expected - len(referenced), len(failed))


@dataclass
class StowStats:
    requests: int = 0
    instances: int = 0
    failed_instances: int = 0
    bytes: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    first_error: str | None = None
    # (seconds since the start, instances stored so far) after each request, in order
    progress: list[tuple[float, int]] = field(default_factory=list)

    def rate(self, first: int, last: int) -> float:
        """Instances per second between the requests that brought the count past `first` and
        past `last` (0 when the count did not get that far)."""
        start = (0.0, 0) if first <= 0 else next((p for p in self.progress if p[1] >= first), None)
        end = next((p for p in self.progress if p[1] >= last), None)
        if start is None or end is None or end[0] <= start[0]:
            return 0.0
        return (end[1] - start[1]) / (end[0] - start[0])


async def stow_batches(
    server: Server,
    batches: Sequence[Callable[[], list[bytes]]],
    concurrency: int,
    progress_every_s: float = 0.0,
    *,
    build_first: bool = False,
    on_start: Callable[[], None] | None = None,
    deadline_s: float | None = None,
) -> tuple[StowStats, float]:
    """POST every batch (one multipart/related request each), `concurrency` in flight, each
    on its own kept-alive HTTP/1.1 connection.

    With `build_first`, every request body is read and assembled before the clock starts, so
    the load generator spends its CPU on sending only (as wrk does for the GET kinds) and the
    two cores are left to the server under test; otherwise bodies are built as they are sent
    (for corpora too large to hold in memory). `on_start` runs just before the clock starts.
    After `deadline_s` seconds no further request is started (the batches left are not sent)."""
    stats = StowStats()
    boundary = "dicomite-bench-" + secrets.token_hex(12)
    url = urllib.parse.urlsplit(server.base)
    headers = {
        **server.headers,
        "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
        "Accept": ACCEPT_JSON,
        "Accept-Encoding": "identity",
    }
    queue: asyncio.Queue[Callable[[], tuple[int, bytes]]] = asyncio.Queue()
    for batch in batches:
        if build_first:
            queue.put_nowait(functools.partial(_built, _request_body(batch, boundary)))
        else:
            queue.put_nowait(functools.partial(_request_body, batch, boundary))
    if on_start is not None:
        on_start()
    started = time.perf_counter()
    next_report = started + progress_every_s

    async def worker() -> None:
        nonlocal next_report
        connection = connection_to(url)
        try:
            while deadline_s is None or time.perf_counter() - started < deadline_s:
                try:
                    make = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                count, body = make()
                t0 = time.perf_counter()
                status, payload = await connection.post(f"{url.path}/studies", headers, body)
                stats.latencies_ms.append((time.perf_counter() - t0) * 1000)
                failed = stow_failures(status, payload, count)
                stats.requests += 1
                stats.instances += count - failed
                stats.failed_instances += failed
                stats.bytes += len(body)
                stats.progress.append((time.perf_counter() - started, stats.instances))
                if failed and stats.first_error is None:
                    stats.first_error = f"HTTP {status}: {payload[:400]!r}"
                now = time.perf_counter()
                if progress_every_s and now >= next_report:
                    next_report = now + progress_every_s
                    rate = stats.instances / (now - started)
                    print(
                        f"  {server.name}: {stats.instances} instances stored"
                        f" ({rate:.0f}/s, {stats.failed_instances} failed)",
                        flush=True,
                    )
        finally:
            connection.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return stats, time.perf_counter() - started


class PlainConnection:
    """A minimal HTTP/1.1 client connection (plain TCP, kept alive) for the STOW load.

    The body goes to the socket straight from the prebuilt ``bytes`` (``sock_sendall`` sends
    slices of it, no copy in Python); aiohttp, used before, cost ~0.25 ms of CPU per instance
    for the same requests, on the 2 cores the measured server needs. Responses are read with
    a Content-Length, chunked, or up to the close; a response that says ``Connection: close``
    (or ends with it) gets a new connection for the next request."""

    READ_BYTES = 64 * 1024
    TIMEOUT_S = 300.0

    def __init__(self, host: str, port: int) -> None:
        self.address = (host, port)
        self._sock: socket.socket | None = None
        self._buffer = b""

    @property
    def is_open(self) -> bool:
        return self._sock is not None

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self._buffer = b""

    async def _open(self) -> None:
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        await asyncio.wait_for(loop.sock_connect(sock, self.address), 30)
        self._sock = sock

    async def _send(self, data: bytes) -> None:
        assert self._sock is not None
        await asyncio.get_running_loop().sock_sendall(self._sock, data)

    async def _receive(self) -> bytes:
        assert self._sock is not None
        return await asyncio.get_running_loop().sock_recv(self._sock, self.READ_BYTES)

    async def post(self, target: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        if not self.is_open:
            await self._open()
        host = f"{self.address[0]}:{self.address[1]}"
        head = f"POST {target} HTTP/1.1\r\nHost: {host}\r\n" + "".join(
            f"{name}: {value}\r\n" for name, value in headers.items()
        )
        await self._send(f"{head}Content-Length: {len(body)}\r\n\r\n".encode())
        await self._send(body)
        status, fields, payload = await asyncio.wait_for(self._response(), self.TIMEOUT_S)
        if "close" in fields.get("connection", "").lower():
            self.close()
        return status, payload

    async def _response(self) -> tuple[int, dict[str, str], bytes]:
        head = await self._until(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        fields = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip()
        if "chunked" in fields.get("transfer-encoding", "").lower():
            return status, fields, await self._chunked()
        if "content-length" in fields:
            return status, fields, await self._exactly(int(fields["content-length"]))
        fields["connection"] = "close"  # delimited by the close (RFC 9112 §6.3)
        return status, fields, await self._to_close()

    async def _chunked(self) -> bytes:
        chunks = []
        while True:
            size = int((await self._until(b"\r\n")).split(b";")[0], 16)
            chunks.append(await self._exactly(size))
            await self._exactly(2)  # the CRLF after the chunk
            if size == 0:
                while await self._until(b"\r\n"):  # trailer fields, up to an empty line
                    pass
                return b"".join(chunks)

    async def _until(self, delimiter: bytes) -> bytes:
        while (found := self._buffer.find(delimiter)) < 0:
            await self._fill()
        data, self._buffer = self._buffer[:found], self._buffer[found + len(delimiter) :]
        return data

    async def _exactly(self, size: int) -> bytes:
        while len(self._buffer) < size:
            await self._fill()
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    async def _to_close(self) -> bytes:
        try:
            while True:
                await self._fill()
        except ConnectionError:
            data, self._buffer = self._buffer, b""
            return data

    async def _fill(self) -> None:
        data = await self._receive()
        if not data:
            raise ConnectionError("the server closed the connection")
        self._buffer += data


class TlsConnection(PlainConnection):
    """The same client over TLS, verified against the bench's trust store: asyncio streams,
    since the loop's ``sock_*`` calls speak no TLS."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(host, port)
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    @property
    def is_open(self) -> bool:
        return self._streams is not None

    def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
            self._streams = None
        self._buffer = b""

    async def _open(self) -> None:
        host, port = self.address
        connecting = asyncio.open_connection(host, port, ssl=TRUST, server_hostname=host)
        self._streams = await asyncio.wait_for(connecting, 30)

    async def _send(self, data: bytes) -> None:
        assert self._streams is not None
        self._streams[1].write(data)
        await self._streams[1].drain()

    async def _receive(self) -> bytes:
        assert self._streams is not None
        return await self._streams[0].read(self.READ_BYTES)


def connection_to(url: urllib.parse.SplitResult) -> PlainConnection:
    """A STOW connection to `url`'s server: TLS for https, plain TCP otherwise."""
    host = url.hostname or HOST
    if url.scheme == "https":
        return TlsConnection(host, url.port or 443)
    return PlainConnection(host, url.port or 80)


def _built(body: tuple[int, bytes]) -> tuple[int, bytes]:
    return body


def _request_body(batch: Callable[[], list[bytes]], boundary: str) -> tuple[int, bytes]:
    parts = batch()
    return len(parts), multipart_body(parts, boundary)


def percentile(values: Sequence[float], percent: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(percent / 100 * (len(ordered) - 1))))
    return ordered[index]


def split_multipart(content_type: str, body: bytes) -> list[bytes]:
    """The payloads of a multipart/related body."""
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if match is None:
        raise ValueError(f"no boundary in {content_type!r}")
    delimiter = b"\r\n--" + match[1].encode()
    parts = []
    for chunk in (b"\r\n" + body).split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break
        parts.append(chunk[chunk.index(b"\r\n\r\n") + 4 :])
    return parts


def eof_delimited(server: Server, path: str, accept: str) -> bool:
    """Whether the server ends this response by closing the connection.

    Orthanc does so for multipart WADO responses (`Connection: close`, neither
    Content-Length nor chunked encoding). wrk then counts one read error per
    complete response; those are not failures and are not counted as errors.
    """
    url = urllib.parse.urlsplit(server.base + path)
    conn = (
        http.client.HTTPSConnection(url.hostname or HOST, url.port, timeout=60, context=TRUST)
        if url.scheme == "https"
        else http.client.HTTPConnection(url.hostname or HOST, url.port, timeout=60)
    )
    try:
        target = url.path + (f"?{url.query}" if url.query else "")
        conn.request("GET", target, headers={**server.headers, "Accept": accept})
        resp = conn.getresponse()
        resp.read()
        no_length = resp.getheader("Content-Length") is None
        chunked = "chunked" in (resp.getheader("Transfer-Encoding") or "").lower()
        return resp.status == 200 and no_length and not chunked and resp.will_close
    finally:
        conn.close()
