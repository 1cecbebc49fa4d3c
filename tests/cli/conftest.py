"""CLI tests run the installed `mcli` command in a subprocess against a real local server (one per module)."""

import os
import subprocess
from collections.abc import Iterator

import pytest

from mcli.local import LocalServer

from .helpers import API_KEY, MCLI, Cli


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    # Eight nodes, so that runs left sleeping by one test never queue another test's run.
    with LocalServer(
        data_dir=tmp_path_factory.mktemp("mapi"),
        api_key=API_KEY,
        nodes=8,
        max_concurrent_runs=64,
        stop_grace_seconds=1.0,
    ) as local:
        yield local


@pytest.fixture(scope="module")
def cli_env(server: LocalServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("MCLI_", "MOSAICML_"))}
    env.pop("NO_COLOR", None)
    env.update(
        MOSAICML_API_ENDPOINT=server.endpoint,
        MOSAICML_API_KEY=API_KEY,
        MCLI_CONFIG_DIR=str(tmp_path_factory.mktemp("mcli-config")),
    )
    return env


@pytest.fixture(autouse=True)
def sdk_env(cli_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Point the SDK in this process at the same server, for setting up and checking runs."""
    for key in ("MOSAICML_API_ENDPOINT", "MOSAICML_API_KEY", "MCLI_CONFIG_DIR"):
        monkeypatch.setenv(key, cli_env[key])
    monkeypatch.delenv("MCLI_CONFIG_PATH", raising=False)


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
