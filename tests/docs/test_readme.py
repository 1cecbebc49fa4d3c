"""README's Python examples, run as a reader would: each in a fresh interpreter against a local server."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mcli.local import LocalServer

README = Path(__file__).resolve().parents[2] / "README.md"
KEY = "readme-key-0123456789"


def python_block(after_heading: str) -> str:
    """The first ```python block after a README heading."""
    text = README.read_text()
    section = text[text.index(after_heading) :]
    match = re.search(r"```python\n(.*?)```", section, flags=re.S)
    assert match is not None, after_heading
    return match.group(1)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> LocalServer:
    with LocalServer(data_dir=tmp_path_factory.mktemp("readme"), api_key=KEY, stop_grace_seconds=1) as local:
        yield local  # type: ignore[misc]


def run_python(code: str, server: LocalServer, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("MOSAICML_", "MCLI_"))}
    env.update(MOSAICML_API_ENDPOINT=server.endpoint, MOSAICML_API_KEY=KEY, MCLI_CONFIG_DIR=str(tmp_path))
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path
    )


def test_the_sdk_example_runs_twice(server: LocalServer, tmp_path: Path) -> None:
    code = python_block("## Using the SDK")
    for _ in range(2):
        result = run_python(code, server, tmp_path)
        assert (result.returncode, result.stderr) == (0, ""), result.stderr
        assert result.stdout == "hello\nCOMPLETED\n"


def test_the_lifecycle_example(server: LocalServer, tmp_path: Path) -> None:
    result = run_python(python_block("## Retries, time limits, restarts and clusters"), server, tmp_path)
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    retried, reason, restarted, cluster = result.stdout.splitlines()
    assert retried == "['FAILED', 'FAILED', 'COMPLETED'] attempt 1"
    assert "reached its maximum duration" in reason and "(2 s)" in reason
    assert restarted in ("PENDING [0, 1]", "QUEUED [0, 1]")
    assert cluster.startswith("local [")


def test_the_downstream_example_closes_its_session(server: LocalServer, tmp_path: Path) -> None:
    code = python_block("## For downstream typed clients") + (
        "\nimport asyncio, os\n"
        "print(asyncio.run(newest_runs(os.environ['MOSAICML_API_ENDPOINT'], os.environ['MOSAICML_API_KEY'])))\n"
    )
    result = run_python(code, server, tmp_path)
    # An unclosed aiohttp session prints "Unclosed client session" on stderr at exit.
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    assert result.stdout.startswith("[")
