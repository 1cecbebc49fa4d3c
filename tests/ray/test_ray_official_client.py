"""The unmodified official client (`mosaicml-cli==0.8.3`) against a server on the Ray executor."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from pathlib import Path

from ray_helpers import KEY, RayServer

_CONFORMANCE = Path(__file__).resolve().parents[1] / "conformance" / "test_official_client.py"


def _official_python() -> Path:
    """The cached venv of tests/conformance (installed there on first use)."""
    spec = importlib.util.spec_from_file_location("official_client_conformance", _CONFORMANCE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    python: Path = module.official_python()
    return python


def test_official_client_multi_node_run_on_ray(ray_server: RayServer, tmp_path: Path) -> None:
    python = _official_python()
    script = tmp_path / "official_ray_script.py"  # outside the repo, so our `mcli` can't shadow theirs
    shutil.copy(Path(__file__).with_name("official_ray_script.py"), script)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MOSAICML_", "MCLI_", "PYTHON"))}
    env.update(
        MOSAICML_API_ENDPOINT=ray_server.endpoint,
        MOSAICML_API_KEY=KEY,
        MCLI_CONFIG_DIR=str(tmp_path / "mcli-config"),
        MCLI_TIMEOUT="60",
    )
    proc = subprocess.run(
        [str(python), str(script)], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=240
    )
    assert proc.returncode == 0, f"{proc.stdout}\n{proc.stderr[-4000:]}"
    assert "official client on ray: ok" in proc.stdout
