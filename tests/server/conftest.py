from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mcli.local import LocalServer

from .helpers import Api

KEY = "test-key-alice"


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Callable[..., LocalServer]]:
    """Start in-process servers on free ports with their own data dirs; all are stopped afterwards."""
    servers: list[LocalServer] = []

    def make(**kwargs: Any) -> LocalServer:
        kwargs.setdefault("data_dir", tmp_path / f"data{len(servers)}")
        kwargs.setdefault("api_key", KEY)
        kwargs.setdefault("stop_grace_seconds", 2.0)
        kwargs.setdefault("gpu_type", "a100_80gb")  # a GPU type for the gpuType filters to find
        server = LocalServer(port=0, **kwargs).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def server(make_server: Callable[..., LocalServer]) -> LocalServer:
    return make_server()


@pytest.fixture
def api(server: LocalServer) -> Api:
    return Api(server.endpoint, KEY)
