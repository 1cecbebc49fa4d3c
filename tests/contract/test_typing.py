"""A user's strictly typed script sees precise types: a Run, or a Future of one with future=True."""

import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent(
    """
    import concurrent.futures
    from collections.abc import Generator
    from typing import assert_type

    import mcli
    from mcli import Run, RunConfig, aio

    config = RunConfig(image="python:3.11", command="true")
    assert_type(mcli.create_run(config), Run)
    assert_type(mcli.create_run(config, future=True), concurrent.futures.Future[Run])
    assert_type(mcli.get_runs(statuses=["RUNNING"]), list[Run])
    assert_type(mcli.get_run_logs("r"), str)
    assert_type(mcli.follow_run_logs("r"), Generator[str, None, None])
    assert_type(mcli.wait_for_run_status("r", "COMPLETED", future=True), concurrent.futures.Future[Run])

    async def twin() -> None:
        assert_type(await aio.get_run("r"), Run)
    """
)


def test_public_api_is_precisely_typed(tmp_path: Path) -> None:
    script = tmp_path / "user_script.py"
    script.write_text(SCRIPT)
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(script)],
        capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
