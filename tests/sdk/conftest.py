"""SDK tests run against a real local server on 127.0.0.1 with its own temporary data dir."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from mcli.local import LocalServer

API_KEY = "sdk-test-key-0123456789"


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    with LocalServer(
        data_dir=tmp_path_factory.mktemp("mapi"), api_key=API_KEY, max_concurrent_runs=64, stop_grace_seconds=1.0
    ) as local:
        yield local


@pytest.fixture(autouse=True)
def configured(server: LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LocalServer:
    monkeypatch.setenv("MOSAICML_API_ENDPOINT", server.endpoint)
    monkeypatch.setenv("MOSAICML_API_KEY", API_KEY)
    monkeypatch.setenv("MCLI_CONFIG_DIR", str(tmp_path / "mcli-config"))
    monkeypatch.delenv("MCLI_CONFIG_PATH", raising=False)
    return server
