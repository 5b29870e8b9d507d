"""A Graph client on the shared server, authorized as the bootstrap management client."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.fixtures.server import Server
from tests.graph.helpers import graph_client


@pytest.fixture(scope="session")
def graph(server: Server) -> Iterator[httpx.Client]:
    with graph_client(server, server.graph_token()) as client:
        yield client


@pytest.fixture
def anonymous(server: Server) -> Iterator[httpx.Client]:
    with graph_client(server, None) as client:
        yield client
