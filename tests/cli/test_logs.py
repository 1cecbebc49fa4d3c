"""`mcli logs`: whole logs, one rank, the tail, following, and Ctrl-C."""

import signal
import subprocess
from collections.abc import Iterator

import pytest

import mcli

from .helpers import MCLI, Cli, unique


@pytest.fixture(scope="module")
def failed(cli_env: dict[str, str]) -> str:
    """A two-node run whose rank 1 fails after printing a few lines."""
    # Rank 1 fails a second after printing, so rank 0 has printed too before it is stopped.
    command = (
        'for i in 1 2 3; do echo "rank $NODE_RANK line $i"; done; '
        'if [ "$NODE_RANK" = 1 ]; then sleep 1; exit 1; fi; sleep 30'
    )
    with pytest.MonkeyPatch.context() as patch:
        for key in ("MOSAICML_API_ENDPOINT", "MOSAICML_API_KEY"):
            patch.setenv(key, cli_env[key])
        run = mcli.create_run(
            mcli.RunConfig(name=unique("logs"), image="python:3.11", command=command, compute={"nodes": 2})
        )
        for _ in mcli.watch_run_status(run):
            pass
    return run.name


@pytest.fixture
def sleeping() -> Iterator[str]:
    config = mcli.RunConfig(name=unique("sleeping"), image="python:3.11", command="echo started; sleep 60")
    run = mcli.create_run(config)
    yield run.name
    mcli.delete_runs(mcli.get_runs(runs=[run.name]))


def lines(rank: int) -> str:
    return "".join(f"rank {rank} line {i}\n" for i in (1, 2, 3))


def test_logs_of_rank_0_by_default(cli: Cli, failed: str) -> None:
    result = cli("logs", failed)
    assert (result.returncode, result.stdout) == (0, lines(0)), result.stderr


def test_logs_of_one_rank(cli: Cli, failed: str) -> None:
    assert cli("logs", failed, "--rank", "1").stdout == lines(1)


def test_logs_of_the_failed_rank(cli: Cli, failed: str) -> None:
    assert cli("logs", failed, "--failed").stdout == lines(1)


def test_failed_cannot_be_followed(cli: Cli, failed: str) -> None:
    result = cli("logs", failed, "--failed", "-f")
    assert result.returncode == 1
    assert result.stderr.startswith("mcli: error: --failed") and "--follow" in result.stderr


def test_logs_tail_and_timestamps(cli: Cli, failed: str) -> None:
    assert cli("logs", failed, "--tail", "1").stdout == "rank 0 line 3\n"
    stamped = cli("logs", failed, "--tail", "2", "--timestamps").stdout.splitlines()
    assert len(stamped) == 2
    assert all(line.split(" ", 1)[0].endswith("Z") for line in stamped)


def test_follow_a_finished_run_reports_its_status(cli: Cli, failed: str) -> None:
    result = cli("logs", failed, "-f", "--rank", "1")
    assert (result.returncode, result.stdout) == (1, lines(1))
    assert f"Run {failed} FAILED" in result.stderr


def test_logs_of_a_missing_rank_or_run(cli: Cli, failed: str) -> None:
    result = cli("logs", failed, "--rank", "7")
    assert result.returncode == 1
    assert result.stderr == f"mcli: error: Run {failed} has no node rank 7 (it has 2 nodes)\n"
    assert cli("logs", "no-such-run").stderr == "mcli: error: Run no-such-run not found\n"


def test_rank_and_failed_are_exclusive(cli: Cli, failed: str) -> None:
    result = cli("logs", failed, "--rank", "1", "--failed")
    assert result.returncode == 2 and "not allowed with argument" in result.stderr


def test_ctrl_c_stops_following_but_not_the_run(cli_env: dict[str, str], sleeping: str) -> None:
    with subprocess.Popen(
        [*MCLI, "logs", sleeping, "-f"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env,
    ) as process:
        assert process.stdout is not None and process.stdout.readline() == "started\n"
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 130
        assert process.stderr is not None
        message = process.stderr.read().strip()
    assert message == f"mcli: stopped following; run {sleeping} keeps going\n  stop it with: mcli stop run {sleeping}"
    assert mcli.get_run(sleeping).status == mcli.RunStatus.RUNNING
