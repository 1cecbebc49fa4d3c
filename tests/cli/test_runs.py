"""`mcli get runs`, `describe run`, `stop run` and `delete run`."""

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

import mcli

from .helpers import Cli, run_in_terminal, unique, write_config

ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture(scope="module")
def finished(cli_env: dict[str, str]) -> str:
    """A completed two-node run with metadata, shared by the read-only tests."""
    config = mcli.RunConfig(
        name=unique("finished"),
        image="python:3.11",
        command='echo "rank $NODE_RANK"',
        compute={"nodes": 2},
        metadata={"team": "cli"},
    )
    with pytest.MonkeyPatch.context() as patch:
        for key in ("MOSAICML_API_ENDPOINT", "MOSAICML_API_KEY"):
            patch.setenv(key, cli_env[key])
        run = mcli.create_run(config)
        mcli.wait_for_run_status(run, "COMPLETED", timeout=30)
    return run.name


@pytest.fixture
def sleeping() -> Iterator[str]:
    run = mcli.create_run(mcli.RunConfig(name=unique("sleeping"), image="python:3.11", command="sleep 60"))
    yield run.name
    mcli.delete_runs(mcli.get_runs(runs=[run.name]))


def test_get_runs_table(cli: Cli, finished: str) -> None:
    result = cli("get", "runs")
    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["NAME", "STATUS", "CREATED", "DURATION", "NODES/GPUS", "CLUSTER"]
    row = next(row for row in rows if row.startswith(finished))
    assert "COMPLETED" in row and "2/0" in row and row.endswith("local")
    assert "\x1b[" not in result.stdout  # not a terminal: no colours


def test_get_runs_json_and_filters(cli: Cli, finished: str, sleeping: str) -> None:
    mcli.wait_for_run_status(sleeping, "RUNNING", timeout=30)
    result = cli("get", "runs", "--json")
    assert result.returncode == 0, result.stderr
    by_name = {run["name"]: run for run in json.loads(result.stdout)}
    assert by_name[finished]["status"] == "COMPLETED" and by_name[finished]["nodes"] == 2
    assert by_name[sleeping]["status"] == "RUNNING"

    running = json.loads(cli("get", "runs", "--json", "--status", "running").stdout)
    assert {run["name"] for run in running} == {sleeping}
    both = json.loads(cli("get", "runs", "--json", "--status", "RUNNING,completed").stdout)
    assert {finished, sleeping} <= {run["name"] for run in both}
    assert len(json.loads(cli("get", "runs", "--json", "--limit", "1").stdout)) == 1
    assert json.loads(cli("get", "runs", "--json", "--cluster", "nowhere").stdout) == []


def test_get_runs_rejects_a_bad_status(cli: Cli) -> None:
    result = cli("get", "runs", "--status", "sleepy")
    assert result.returncode == 1
    assert result.stderr.startswith("mcli: error: ") and "'sleepy' is not a run status" in result.stderr


def test_get_runs_in_a_terminal_fits_its_width(cli_env: dict[str, str], finished: str) -> None:
    # A 63-character name makes the natural table wider than the terminal, so it must shrink.
    long_name = unique("x" * 54)
    mcli.create_run(mcli.RunConfig(name=long_name, image="python:3.11", command="true"))
    code, text = run_in_terminal(["get", "runs"], {**cli_env, "COLUMNS": "100", "TERM": "xterm"})
    assert code == 0, text
    assert "\x1b[1m" in text  # a terminal gets a bold header
    lines = [ANSI.sub("", line) for line in text.splitlines()]
    assert lines[0].split() == ["NAME", "STATUS", "CREATED", "DURATION", "NODES/GPUS", "CLUSTER"]
    assert all(len(line) <= 100 for line in lines), lines
    assert any(line.startswith(long_name[:20]) and "…" in line for line in lines)


def test_describe_run(cli: Cli, finished: str) -> None:
    result = cli("describe", "run", finished)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for section in ("Run", "Config", "Lifecycle", "Nodes", "Metadata"):
        assert f"\n{section}\n" in f"\n{out}"
    assert "COMPLETED" in out and "2 node(s)" in out
    assert 'command: echo "rank $NODE_RANK"' in out
    assert "local-node-1" in out
    assert 'team: "cli"' in out


def test_describe_a_missing_run(cli: Cli) -> None:
    result = cli("describe", "run", "no-such-run")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == "mcli: error: Run no-such-run not found\n"


def test_stop_needs_confirmation_without_a_terminal(cli: Cli, sleeping: str) -> None:
    result = cli("stop", "run", sleeping)
    assert result.returncode == 1
    assert "refusing to stop" in result.stderr and "--yes" in result.stderr
    assert not mcli.get_run(sleeping).status.is_terminal()


def test_stop_asks_in_a_terminal(cli_env: dict[str, str], sleeping: str) -> None:
    code, text = run_in_terminal(["stop", "run", sleeping], cli_env, answer="n\n")
    assert code == 1
    assert f"Stop 1 run(s): {sleeping} (" in text and "not confirmed" in text
    code, text = run_in_terminal(["stop", "run", sleeping], cli_env, answer="y\n")
    assert code == 0, text
    assert f"Stopping run {sleeping}" in text


def test_stop_with_yes(cli: Cli, sleeping: str) -> None:
    result = cli("stop", "run", sleeping, "--yes")
    assert result.returncode == 0, result.stderr
    assert f"Stopping run {sleeping}" in result.stdout
    assert mcli.wait_for_run_status(sleeping, "STOPPED", timeout=30).status == mcli.RunStatus.STOPPED


def test_delete_needs_confirmation_then_deletes(cli: Cli, tmp_path: Path) -> None:
    name = unique("doomed")
    assert cli("run", "-f", str(write_config(tmp_path, "true")), "--name", name).returncode == 0
    refused = cli("delete", "run", name)
    assert refused.returncode == 1 and "refusing to delete" in refused.stderr
    result = cli("delete", "run", name, "-y")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"Deleted run {name}\n"
    assert mcli.get_runs(runs=[name]) == []


def test_stop_an_unknown_run_fails_before_asking(cli: Cli) -> None:
    result = cli("stop", "run", "no-such-run", "-y")
    assert result.returncode == 1
    assert result.stderr == "mcli: error: no run named no-such-run\n"
