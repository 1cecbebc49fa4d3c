"""`mcli get runs`, `describe run`, `stop run` and `delete run`."""

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

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


HEADER = ["NAME", "STATUS", "CREATED", "DURATION", "NODES", "GPUS", "CLUSTER"]


def test_get_runs_piped_is_one_plain_line_per_run(cli: Cli, finished: str) -> None:
    result = cli("get", "runs")
    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.split() == HEADER
    row = next(row for row in rows if row.startswith(finished))
    assert row.split()[:2] == [finished, "COMPLETED"] and row.split()[-3:] == ["2", "0", "local"]
    assert "\x1b[" not in result.stdout  # not a terminal: no colours
    assert all(line == line.rstrip() for line in result.stdout.splitlines())


def test_get_runs_piped_or_as_json_never_loads_rich(cli_env: dict[str, str], finished: str) -> None:
    """Output for a pipe needs no terminal library: a cold `mcli get runs | grep` does not pay for importing it."""
    probe = (
        "import sys; from mcli.cli.main import main; code = main(sys.argv[1:]); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'rich'), file=sys.stderr); sys.exit(code)"
    )
    for args in (["get", "runs"], ["get", "runs", "--json"], ["get", "run", finished]):
        result = subprocess.run(
            [sys.executable, "-c", probe, *args], env=cli_env, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr
        assert finished in result.stdout
        assert result.stderr.strip().splitlines()[-1] == "[]", (args, result.stderr)


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


def test_a_mistyped_status_suggests_the_nearest(cli: Cli) -> None:
    result = cli("get", "runs", "--status", "runing")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == "mcli: error: unknown status 'runing'; did you mean RUNNING?\n"


@pytest.mark.parametrize("columns", [80, 200])
def test_get_runs_in_a_terminal_never_cuts_a_name(cli_env: dict[str, str], finished: str, columns: int) -> None:
    long_name = unique("a-rather-long-run-name-people-paste-into-mcli-logs")  # 60 characters
    mcli.create_run(mcli.RunConfig(name=long_name, image="python:3.11", command="true"))
    code, text = run_in_terminal(["get", "runs"], {**cli_env, "TERM": "xterm"}, columns=columns)
    assert code == 0, text
    assert "\x1b[1m" in text  # a terminal gets a bold header
    lines = [ANSI.sub("", line) for line in text.splitlines()]
    assert all(len(line) <= columns for line in lines), lines
    assert any(line.split()[:1] == [long_name] for line in lines), lines
    if columns == 80:  # name, status and creation time fit; the rest is left out, and the caption says so
        assert lines[0].split() == ["NAME", "STATUS"]
        assert lines[-1].startswith("5 more columns: widen the terminal, or -o wide/json")
    else:
        assert lines[0].split() == HEADER


def test_no_color_in_a_terminal(cli_env: dict[str, str], finished: str) -> None:
    code, text = run_in_terminal(["get", "runs"], {**cli_env, "TERM": "xterm", "NO_COLOR": "1"}, columns=200)
    assert code == 0 and "\x1b[" not in text
    assert text.splitlines()[0].split() == HEADER


def test_get_run_and_output_formats(cli: Cli, finished: str) -> None:
    table = cli("get", "run", finished)
    assert table.returncode == 0, table.stderr
    assert [line.split()[:2] for line in table.stdout.splitlines()] == [["NAME", "STATUS"], [finished, "COMPLETED"]]
    as_json = json.loads(cli("get", "run", finished, "-o", "json").stdout)
    as_yaml = yaml.safe_load(cli("get", "run", finished, "--output", "yaml").stdout)
    assert as_json == as_yaml and as_json["name"] == finished and as_json["gpu_type"] == "none"
    wide = cli("get", "runs", "-o", "wide").stdout.splitlines()[0]
    assert wide.split() == [*HEADER, "GPU", "TYPE", "CREATED", "BY", "PRIORITY", "REASON"]
    listing = yaml.safe_load(cli("get", "runs", "-o", "yaml").stdout)
    assert finished in [run["name"] for run in listing]


def test_get_runs_filters_as_in_the_sdk(cli: Cli, finished: str) -> None:
    def names(*args: str) -> set[str]:
        result = cli("get", "runs", "-o", "json", *args)
        assert result.returncode == 0, result.stderr
        return {run["name"] for run in json.loads(result.stdout)}

    assert finished in names("--gpu-type", "none", "--cluster", "local", "--status", "completed")
    assert finished not in names("--gpu-type", "h100")
    assert finished in names("--after", "2000-01-01", "--before", "2999-01-01")
    assert names("--before", "2000-01-01") == set()


@pytest.mark.parametrize(
    "command",
    [
        ["get", "run", "no-such-run"],
        ["describe", "run", "no-such-run"],
        ["logs", "no-such-run"],
        ["logs", "no-such-run", "-f"],
        ["stop", "run", "no-such-run", "-y"],
        ["delete", "run", "no-such-run", "-y"],
        ["start", "run", "no-such-run"],
        ["update", "run", "no-such-run", "--max-retries", "2"],
    ],
    ids=" ".join,
)
def test_not_found_reads_the_same_in_every_command(cli: Cli, command: list[str]) -> None:
    result = cli(*command)
    assert (result.returncode, result.stdout, result.stderr) == (1, "", "mcli: error: Run no-such-run not found\n")


def test_describe_run_as_panels(cli: Cli, finished: str) -> None:
    result = cli("describe", "run", finished)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    titles = [line.split()[1] for line in out.splitlines() if line.startswith("╭─ ")]
    assert titles == ["Run", "Config", "Resumptions", "Lifecycle", "Nodes", "Metadata"]
    assert all(len(line) <= 100 for line in out.splitlines())  # piped: a readable width, not a pipe's
    assert "COMPLETED" in out and "2 node(s)" in out
    assert 'command: echo "rank $NODE_RANK"' in out
    assert "local-node-1" in out
    assert 'team: "cli"' in out


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
