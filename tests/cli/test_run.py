"""`mcli run`: launching from YAML with overrides, following to the end, and how errors are shown."""

import subprocess
from pathlib import Path

import mcli

from .helpers import EXAMPLE, MCLI, Cli, unique, write_config


def test_run_prints_the_name_and_applies_overrides(cli: Cli) -> None:
    name = unique("override")
    result = cli(
        "run", "-f", str(EXAMPLE), "--name", name, "--nodes", "1", "--gpus", "0", "--image", "alpine:3"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{name}\n"
    run = mcli.wait_for_run_status(name, "COMPLETED", timeout=30)
    assert (run.node_count, run.gpus, run.image) == (1, 0, "alpine:3")
    assert run.submitted_config is not None
    assert run.submitted_config.env_variables == {"GREETING": "hello"}


def test_cluster_override_reaches_the_server(cli: Cli) -> None:
    result = cli("run", "-f", str(EXAMPLE), "--cluster", "elsewhere")
    assert result.returncode == 1
    assert result.stderr.startswith("mcli: error: ") and "elsewhere" in result.stderr


def test_follow_the_example_to_completion(cli: Cli) -> None:
    name = unique("follow")
    result = cli("run", "-f", str(EXAMPLE), "--name", name, "--follow")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == name
    assert lines[1:] == [f"hello from rank 0 of 2: step {step}" for step in (1, 2, 3)]
    assert f"Run {name} COMPLETED" in result.stderr


def test_follow_a_failing_run_exits_1(cli: Cli, tmp_path: Path) -> None:
    config = write_config(tmp_path, "echo about to fail\nexit 3")
    result = cli("run", "-f", str(config), "--follow")
    assert result.returncode == 1, result.stderr
    assert "about to fail" in result.stdout
    assert "FAILED" in result.stderr and "exited with code 3" in result.stderr


def test_follow_a_stopped_run_exits_3(cli_env: dict[str, str], tmp_path: Path) -> None:
    config = write_config(tmp_path, "echo started\nsleep 60")
    with subprocess.Popen(
        [*MCLI, "run", "-f", str(config), "--follow"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env,
    ) as process:
        assert process.stdout is not None
        name = process.stdout.readline().strip()
        assert process.stdout.readline() == "started\n"
        mcli.stop_run(name)
        assert process.wait(timeout=30) == 3
        assert process.stderr is not None and "STOPPED" in process.stderr.read()


def test_a_bad_config_is_one_line_without_traceback(cli: Cli, tmp_path: Path) -> None:
    config = tmp_path / "typo.yaml"
    config.write_text("image: python:3.11\ncommand: echo hi\ncomptue:\n  nodes: 2\n")
    result = cli("run", "-f", str(config))
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("mcli: error: ") and "did you mean 'compute'" in result.stderr
    assert "Traceback" not in result.stderr


def test_verbose_shows_the_traceback(cli: Cli) -> None:
    result = cli("run", "-f", "missing.yaml", "--verbose")
    assert result.returncode == 1
    assert "Traceback" in result.stderr
    assert result.stderr.splitlines()[-1] == "mcli: error: Run config file not found: missing.yaml"


def test_override_values_are_checked_by_argparse(cli: Cli) -> None:
    result = cli("run", "-f", str(EXAMPLE), "--nodes", "0")
    assert result.returncode == 2
    assert "--nodes: must be at least 1" in result.stderr
