from __future__ import annotations

import functools
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mcli.local import LocalServer

from .helpers import Api, ServerProcess

KEY = "test-key-alice"


@pytest.fixture
def make_server(make_server: Callable[..., LocalServer]) -> Callable[..., LocalServer]:
    """The suite's in-process server factory (tests/conftest.py) with this directory's defaults."""
    # a GPU type for the gpuType filters to find
    return functools.partial(make_server, api_key=KEY, stop_grace_seconds=2.0, gpu_type="a100_80gb")


@pytest.fixture
def server(make_server: Callable[..., LocalServer]) -> LocalServer:
    return make_server()


@pytest.fixture
def api(server: LocalServer) -> Api:
    return Api(server.endpoint, KEY)


@pytest.fixture
def server_process(tmp_path: Path) -> Iterator[ServerProcess]:
    sp = ServerProcess(tmp_path / "data")
    yield sp
    if sp.proc is not None and sp.proc.poll() is None:
        sp.stop(signal.SIGKILL)
