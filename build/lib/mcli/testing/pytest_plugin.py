"""pytest fixtures for a real local MAPI server: `mapi_server`, `mapi_env`, `mapi_server_factory`.

Loaded through the `pytest11` entry point in every pytest run where mcli is installed, so importing it costs
nothing beyond the standard library: the server's code loads only when a test asks for a fixture.

- `mapi_server` (session): a `mcli local serve` subprocess on a free 127.0.0.1 port, temporary data dir, random
  key (`mcli.testing.MapiServer`); stopped, with every run it started, at the end of the session.
- `mapi_env` (function): `mcli` in this process, and the processes it starts, talk to `mapi_server` for one test
  as a new user who sees only this test's runs (endpoint and key variables, an empty config home under
  `tmp_path`); runs left active are stopped and everything is restored afterwards.
- `mapi_server_factory` (function): `mapi_server_factory(nodes=1)` starts another server for one test.
- `mapi_server_options` (session): the options `mapi_server` starts with; override it in a conftest.py to change
  them for a project, e.g. `return {**mapi_server_options, "max_concurrent_runs": 64}`.
"""

from __future__ import annotations

import contextlib
import re
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from mcli.testing import MapiServer, MapiUser

_KEPT_DATA_DIRS: list[Path] = []


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mapi", "local MAPI server for tests (mcli.testing)")
    group.addoption("--mapi-executor", default=None, help="the server's run executor (default: the server's)")
    group.addoption("--mapi-ray-address", default=None, help="the Ray cluster for --mapi-executor=ray")
    group.addoption("--mapi-nodes", type=int, default=None, help="nodes in the server's cluster")
    group.addoption(
        "--mapi-gpus-per-node", type=int, default=None, help="GPUs per node in the server's cluster"
    )
    group.addoption(
        "--mapi-keep-data",
        action="store_true",
        help="keep the servers' data dirs (database, logs) for debugging",
    )


@pytest.fixture(scope="session")
def mapi_server_options(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Keyword arguments for `mcli.testing.MapiServer`, from the `--mapi-*` command-line options."""
    config = request.config
    options = {
        "executor": config.getoption("mapi_executor"),
        "ray_address": config.getoption("mapi_ray_address"),
        "nodes": config.getoption("mapi_nodes"),
        "gpus_per_node": config.getoption("mapi_gpus_per_node"),
    }
    return {name: value for name, value in options.items() if value is not None}


def _start(request: pytest.FixtureRequest, options: dict[str, Any]) -> MapiServer:
    from mcli.testing import MapiServer

    keep = bool(request.config.getoption("mapi_keep_data"))
    server = MapiServer(**{"keep_data": keep, **options}).start()
    if server.keep_data:
        _KEPT_DATA_DIRS.append(server.data_dir)
    return server


@pytest.fixture(scope="session")
def mapi_server(request: pytest.FixtureRequest, mapi_server_options: dict[str, Any]) -> Iterator[MapiServer]:
    """One local MAPI server for the session: `.endpoint`, `.api_key`, `.data_dir`, `.add_user(email)`."""
    server = _start(request, mapi_server_options)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def mapi_env(mapi_server: MapiServer, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MapiUser]:
    """`mcli` talks to `mapi_server` during this test, as a new user who sees only this test's runs.

    The config home is `tmp_path / "mcli-config"`. Runs the test leaves active are stopped after it.
    """
    from mcli.core.errors import MCLIException
    from mcli.testing import mapi_environment, stop_active_runs

    label = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40] or "test"
    user = mapi_server.new_user(f"{label}-{secrets.token_hex(3)}@mapi-env.test")
    with mapi_environment(user, config_dir=tmp_path / "mcli-config"):
        yield user
        # Free the capacity for the next test; a failure here (the test broke the server) is not the test's.
        with contextlib.suppress(MCLIException):
            stop_active_runs()


@pytest.fixture
def mapi_server_factory(
    request: pytest.FixtureRequest,
) -> Iterator[Callable[..., MapiServer]]:
    """Start more servers in a test, each with its own options (as `MapiServer`'s); all stop afterwards."""
    with contextlib.ExitStack() as started:

        def start(**options: Any) -> MapiServer:
            server = _start(request, options)
            started.callback(server.stop)
            return server

        yield start


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for data_dir in _KEPT_DATA_DIRS:
        terminalreporter.write_line(f"mcli local MAPI data kept in {data_dir} (server output: server.log)")
