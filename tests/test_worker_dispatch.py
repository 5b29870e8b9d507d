"""``dicomite serve --workers N``: the parent hands each connection to the least busy worker,
replaces a worker that dies, and its workers do not outlive it."""

from __future__ import annotations

import http.client
import multiprocessing
import os
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dicomite.workers import closed_counters
from tests.fixtures.server import Server, make_server

WORKERS = 3
WELL_KNOWN = "/v2.0/.well-known/openid-configuration"


@pytest.fixture
def plain_server(tmp_path: Path) -> Iterator[Server]:
    running = make_server(tmp_path, http=True, extra_args=["--workers", str(WORKERS)])
    running.start()
    yield running
    running.stop()


def _workers(server: Server) -> list[int]:
    """The worker processes: the parent's children that serve (not multiprocessing's helper)."""
    assert server.process is not None
    pid = server.process.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(c) for c in children if "resource_tracker" not in _cmdline(int(c))]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def _server_side_inode(server_port: int, client_port: int) -> str:
    """The inode of the server's end of the loopback connection from ``client_port``."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = fields[1], fields[2]
        if int(local.split(":")[1], 16) == server_port and int(remote.split(":")[1], 16) == (
            client_port
        ):
            return fields[9]
    raise AssertionError(f"no server socket for client port {client_port}")


def _serving_worker(server: Server, connection: http.client.HTTPConnection) -> int:
    assert connection.sock is not None
    inode = _server_side_inode(server.port, connection.sock.getsockname()[1])
    owners = [pid for pid in _workers(server) if inode in _socket_inodes(pid)]
    assert len(owners) == 1, owners
    return owners[0]


def _get(connection: http.client.HTTPConnection, path: str) -> int:
    connection.request("GET", path)
    response = connection.getresponse()
    response.read()
    return response.status


def test_connections_opened_together_are_spread_evenly(plain_server: Server) -> None:
    server = plain_server
    path = f"/{server.tenant_id}{WELL_KNOWN}"
    connections = [
        http.client.HTTPConnection("127.0.0.1", server.port, timeout=30) for _ in range(2 * WORKERS)
    ]
    try:
        for connection in connections:
            connection.connect()
        assert all(_get(c, path) == 200 for c in connections)
        served_by = Counter(_serving_worker(server, c) for c in connections)
        assert sorted(served_by.values()) == [2] * WORKERS, served_by
        # closed connections are counted: the next ones go where there is room again
        for connection in connections[:WORKERS]:
            connection.close()
        time.sleep(0.5)
        again = [http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)]
        again[0].connect()
        assert _get(again[0], path) == 200
        connections += again
    finally:
        for connection in connections:
            connection.close()


def test_a_worker_that_dies_is_replaced(plain_server: Server) -> None:
    server = plain_server
    before = _workers(server)
    assert len(before) == WORKERS
    os.kill(before[0], signal.SIGKILL)
    deadline = time.monotonic() + 30
    while True:
        now = _workers(server)
        if len(now) == WORKERS and before[0] not in now:
            break
        assert time.monotonic() < deadline, f"workers: {now}"
        time.sleep(0.2)
    path = f"/{server.tenant_id}{WELL_KNOWN}"
    for _ in range(3 * WORKERS):  # every worker answers, the new one included
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        try:
            assert _get(connection, path) == 200
        finally:
            connection.close()


def test_workers_leave_when_the_parent_is_killed(plain_server: Server) -> None:
    server = plain_server
    workers = _workers(server)
    assert server.process is not None
    server.process.kill()  # the parent only: its workers see their channel close
    server.process.wait(10)
    deadline = time.monotonic() + 30
    while any(_alive(pid) for pid in workers):
        assert time.monotonic() < deadline, "workers outlived the parent"
        time.sleep(0.2)
    with (
        pytest.raises(ConnectionRefusedError),
        socket.create_connection(("127.0.0.1", server.port), 2),
    ):
        pass


def test_sigterm_stops_parent_and_workers_cleanly(plain_server: Server) -> None:
    server = plain_server
    workers = _workers(server)
    assert server.process is not None
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(30) == 0
    assert not any(_alive(pid) for pid in workers)
    assert "Traceback" not in server.log_text()


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _count_forever(counters: Any) -> None:
    while True:
        counters[0] += 1


def _reset_and_read(counters: Any, out: list[int]) -> None:
    counters[0] = 0
    out.append(counters[0])


def test_a_worker_killed_while_counting_leaves_the_counters_usable() -> None:
    """A worker is killed at any instant, also while it counts a closed connection; the parent
    must still read and reset its slot (a process-shared lock would stay taken)."""
    spawn = multiprocessing.get_context("spawn")
    for _ in range(5):
        counters = closed_counters(2)
        child = spawn.Process(target=_count_forever, args=(counters,))
        child.start()
        deadline = time.monotonic() + 30
        while counters[0] < 10_000:
            assert time.monotonic() < deadline, "the counting process did not start"
            time.sleep(0.01)
        os.kill(child.pid, signal.SIGKILL)  # type: ignore[arg-type]
        child.join()
        reset: list[int] = []
        # in a daemon thread: a lock left taken would hang it, not the test
        thread = threading.Thread(target=_reset_and_read, args=(counters, reset), daemon=True)
        thread.start()
        thread.join(5)
        assert reset == [0], "the killed process left the counters locked"
