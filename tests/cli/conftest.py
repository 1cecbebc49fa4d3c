"""CLI tests run the installed `mcli` command in a subprocess against a real local server (`mcli.testing`'s
subprocess server, one per module)."""

import os
import subprocess
from collections.abc import Iterator

import pytest

from mcli.testing import MapiServer, local_server, mapi_environment

from .helpers import API_KEY, MCLI, Cli


@pytest.fixture(scope="module")
def server() -> Iterator[MapiServer]:
    # Eight nodes, so that runs left sleeping by one test never queue another test's run.
    with local_server(api_key=API_KEY, nodes=8, max_concurrent_runs=64) as local:
        yield local


@pytest.fixture(scope="module")
def cli_env(server: MapiServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("MCLI_", "MOSAICML_"))}
    env.pop("NO_COLOR", None)
    env.update(server.environment(), MCLI_CONFIG_DIR=str(tmp_path_factory.mktemp("mcli-config")))
    return env


@pytest.fixture(autouse=True)
def sdk_env(server: MapiServer, cli_env: dict[str, str]) -> Iterator[None]:
    """Point the SDK in this process at the same server, for setting up and checking runs."""
    with mapi_environment(server, config_dir=cli_env["MCLI_CONFIG_DIR"]):
        yield


@pytest.fixture
def cli(cli_env: dict[str, str]) -> Cli:
    def run(*args: str, input: str | None = None, env: dict[str, str] | None = None, timeout: float = 60):
        return subprocess.run(
            [*MCLI, *args],
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env={**cli_env, **(env or {})},
            timeout=timeout,
        )

    return run
