"""User code runs unchanged with MOSAICML_API_ENDPOINT=local: README's quickstart and the seed-style script."""

import sys
from pathlib import Path

from conftest import LocalUser
from sdk.test_seed_script import SEED_SCRIPT

ROOT = Path(__file__).resolve().parents[2]


def test_readme_quickstart_with_an_empty_home(local_user: LocalUser) -> None:
    """README's first command: MOSAICML_API_ENDPOINT=local python examples/quickstart.py."""
    result = local_user.run(sys.executable, str(ROOT / "examples" / "quickstart.py"))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    name = lines[0].split()[1]
    assert lines[0] == f"created {name} (PENDING)"
    assert "  | rank 0 of 2: step 3" in lines
    assert f"{name} is COMPLETED" in lines
    daemon = local_user.daemon()
    assert daemon is not None and daemon.alive()  # left running for the next script, stopped by the fixture


def test_seed_script_against_the_local_daemon(local_user: LocalUser, tmp_path: Path) -> None:
    script = tmp_path / "seed_script.py"
    script.write_text(SEED_SCRIPT)
    result = local_user.run(sys.executable, str(script), timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "seed script ok" in result.stdout
    assert local_user.daemon() is not None
