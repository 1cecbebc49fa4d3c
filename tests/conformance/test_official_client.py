"""The unmodified official client (`mosaicml-cli==0.8.3`, installed from PyPI) against a LocalServer."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mcli.local import LocalServer

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".cache" / "official-venv"
SCRIPT = Path(__file__).with_name("official_client_script.py")
KEY = "conformance-key"


def official_python() -> Path:
    """A cached venv with mosaicml-cli 0.8.3 installed from PyPI, created on first use."""
    python = VENV / "bin" / "python"
    marker = VENV / ".mosaicml-cli-0.8.3"
    if marker.exists():
        return python
    shutil.rmtree(VENV, ignore_errors=True)
    VENV.parent.mkdir(exist_ok=True)
    # Keep the cache out of version control without touching the repo's own ignore files.
    (VENV.parent / ".gitignore").write_text("*\n")
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "mosaicml-cli==0.8.3"], capture_output=True, text=True
    )
    if install.returncode != 0:
        pytest.skip(f"cannot install mosaicml-cli==0.8.3 from PyPI: {install.stderr[-500:]}")
    marker.touch()
    return python


@pytest.fixture(scope="module")
def python() -> Path:
    return official_python()


def run_script(python: Path, mode: str, endpoint: str, key: str, tmp_path: Path) -> str:
    script = tmp_path / "official_client_script.py"  # outside the repo, so our `mcli` can't shadow theirs
    shutil.copy(SCRIPT, script)
    config_dir = tmp_path / "mcli-config"
    config_dir.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MOSAICML_", "MCLI_", "PYTHON"))}
    env.update(
        MOSAICML_API_ENDPOINT=endpoint,
        MOSAICML_API_KEY=key,
        MCLI_CONFIG_DIR=str(config_dir),
        MCLI_TIMEOUT="60",
    )
    proc = subprocess.run(
        [str(python), str(script), mode], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=240
    )
    assert proc.returncode == 0, f"{mode} failed:\n{proc.stdout}\n{proc.stderr[-4000:]}"
    return proc.stdout


def test_official_client_end_to_end(python: Path, tmp_path: Path) -> None:
    with LocalServer(data_dir=tmp_path / "data", api_key=KEY, stop_grace_seconds=2) as server:
        out = run_script(python, "good", server.endpoint, KEY, tmp_path)
        assert "official client conformance: ok" in out


def test_official_client_clusters_util_and_run_lifecycle(python: Path, tmp_path: Path) -> None:
    with LocalServer(data_dir=tmp_path / "data", api_key=KEY, stop_grace_seconds=2) as server:
        out = run_script(python, "lifecycle", server.endpoint, KEY, tmp_path)
        assert "lifecycle: ok" in out


def test_official_client_bad_key(python: Path, tmp_path: Path) -> None:
    with LocalServer(data_dir=tmp_path / "data", api_key=KEY) as server:
        out = run_script(python, "badkey", server.endpoint, "not-a-valid-key", tmp_path)
        assert "bad key: ok" in out


def test_official_client_reads_the_key_we_save(python: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mcli

    monkeypatch.setenv("MCLI_CONFIG_DIR", str(tmp_path))
    monkeypatch.delenv("MOSAICML_API_KEY", raising=False)
    mcli.set_api_key("saved-by-us-0123456789")
    env = {**os.environ, "MCLI_CONFIG_DIR": str(tmp_path)}
    env.pop("MOSAICML_API_KEY", None)
    result = subprocess.run(
        [str(python), "-c", "from mcli.config import MCLIConfig; print(MCLIConfig.load_config().api_key)"],
        env=env, capture_output=True, text=True, check=True, cwd=tmp_path,
    )
    assert result.stdout.strip() == "saved-by-us-0123456789"


def test_official_describe_does_not_find_a_run_we_deleted(
    python: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mcli

    with LocalServer(data_dir=tmp_path / "data", api_key=KEY, stop_grace_seconds=1) as server:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MOSAICML_", "MCLI_", "PYTHON"))}
        env.update(MOSAICML_API_ENDPOINT=server.endpoint, MOSAICML_API_KEY=KEY, MCLI_CONFIG_DIR=str(tmp_path))

        def describe(name: str) -> str:
            official = [str(python.with_name("mcli")), "describe", "run", name]
            return subprocess.run(official, env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path).stdout

        monkeypatch.setenv("MOSAICML_API_ENDPOINT", server.endpoint)
        monkeypatch.setenv("MOSAICML_API_KEY", KEY)
        run = mcli.create_run(mcli.RunConfig(name="soon-gone", image="python", command="sleep 30"))
        assert "soon-gone" in describe("soon-gone")
        mcli.delete_runs([run])
        assert describe("soon-gone") == "No runs found with name: soon-gone\n"


def test_official_client_reads_a_config_with_our_saved_endpoint(
    python: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mcli
    from mcli.config import save_endpoint

    monkeypatch.setenv("MCLI_CONFIG_DIR", str(tmp_path))
    monkeypatch.delenv("MOSAICML_API_KEY", raising=False)
    monkeypatch.delenv("MOSAICML_API_ENDPOINT", raising=False)
    mcli.set_api_key("saved-by-us-0123456789")
    save_endpoint("http://127.0.0.1:8642/graphql")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MOSAICML_", "PYTHON"))}
    result = subprocess.run(
        [str(python), "-c", "from mcli.config import MCLIConfig; print(MCLIConfig.load_config().api_key)"],
        env=env, capture_output=True, text=True, check=True, cwd=tmp_path,
    )  # fmt: skip
    # The official client ignores the endpoint key (it reads MOSAICML_API_ENDPOINT only) and keeps the key.
    assert result.stdout.strip() == "saved-by-us-0123456789"
