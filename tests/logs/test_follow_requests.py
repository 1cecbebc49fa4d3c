"""What following a run asks of the server: a run that had ended is read once and looked up once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import mcli
from mcli import RunConfig, RunStatus
from mcli.local import LocalServer
from mcli.testing import mapi_environment

KEY = "follow-requests-key-0123456789"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    with LocalServer(data_dir=tmp_path_factory.mktemp("follow-requests"), api_key=KEY) as server:
        yield server


@pytest.fixture(autouse=True)
def configured(server: LocalServer, tmp_path: Path) -> Iterator[None]:
    with mapi_environment(server, config_dir=tmp_path / "mcli-config"):
        yield


def test_following_a_finished_run_looks_it_up_once(server: LocalServer) -> None:
    run = mcli.create_run(RunConfig(name="finished", image="python", command="seq 1 3"))
    mcli.wait_for_run_status(run, RunStatus.COMPLETED, timeout=30)
    before = server.stats.http_requests
    assert list(mcli.follow_run_logs(run)) == ["1\n", "2\n", "3\n"]
    # The lookup that checks the run exists; having seen it ended, no second one after the log.
    assert server.stats.http_requests - before == 1


def test_following_a_running_run_goes_on_until_it_ends(server: LocalServer) -> None:
    run = mcli.create_run(RunConfig(name="running", image="python", command="sleep 0.5; echo done"))
    assert list(mcli.follow_run_logs(run)) == ["done\n"]
    assert mcli.get_run(run).status is RunStatus.COMPLETED
