"""Property tests with `mcli.testing.strategies` against the plugin's server: what the strategies draw, the local
server accepts and runs; and its run filtering agrees with filtering the full listing by hand."""

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mcli
from mcli.filters import _instant
from mcli.models.run_status import RunStatus
from mcli.testing import MapiServer, MapiUser, mapi_environment
from mcli.testing.strategies import get_runs_filters, run_configs, schema_run_statuses

# The function-scoped fixtures only point the SDK at a user; nothing in them changes between examples.
PROPERTY = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@pytest.fixture(scope="module")
def accounts(mapi_server: MapiServer) -> dict[str, MapiUser]:
    """Users of the plugin's server for this module, each with their own runs (other tests' runs stay out)."""
    return {
        who: mapi_server.new_user(f"{who}-{uuid.uuid4().hex[:8]}@strategies.test")
        for who in ("creator", "lister")
    }


@pytest.fixture
def creator(accounts: dict[str, MapiUser], tmp_path: Path) -> Iterator[None]:
    with mapi_environment(accounts["creator"], config_dir=tmp_path):
        yield


def test_statuses_are_the_schemas_and_the_sdks() -> None:
    assert schema_run_statuses() == [status.value for status in RunStatus]


@PROPERTY
@given(config=run_configs())
def test_every_drawn_config_is_accepted_and_runs_to_completion(creator: None, config: mcli.RunConfig) -> None:
    run = mcli.create_run(config)
    try:
        if config.name is not None:
            assert run.name == config.name
        done = mcli.wait_for_run_status(run, "COMPLETED", timeout=30)
        submitted = mcli.get_run(run, include_details=True).submitted_config
        assert done.status is RunStatus.COMPLETED and submitted is not None
        assert (submitted.image, submitted.env_variables) == (config.image, config.env_variables)
        assert (submitted.parameters, submitted.metadata) == (config.parameters, config.metadata)
        assert submitted.resolved_compute() == config.resolved_compute()
    finally:
        mcli.delete_run(run)  # frees the name for the next example


@pytest.fixture(scope="module")
def corpus(accounts: dict[str, MapiUser], tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The lister's runs: every end state, one and two nodes, with and without GPUs; one deleted."""
    configs = [
        ("done-cpu", "true", {}, "COMPLETED"),
        ("done-gpu", "true", {"gpus": 4}, "COMPLETED"),
        ("done-two", "true", {"nodes": 2, "gpus": 2}, "COMPLETED"),
        ("failed", "exit 3", {}, "FAILED"),
        ("stopped", "sleep 60", {"gpus": 1}, "STOPPED"),
        ("deleted", "true", {}, "COMPLETED"),
    ]
    with mapi_environment(accounts["lister"], config_dir=tmp_path_factory.mktemp("mcli-config")):
        for name, command, compute, _ in configs:
            mcli.create_run(mcli.RunConfig(name=name, image="python:3.11", command=command, compute=compute))
        mcli.stop_run("stopped")
        for name, _, _, end in configs:
            assert mcli.wait_for_run_status(name, end, timeout=30).status == end
        mcli.delete_run("deleted")
    return [name for name, _, _, _ in configs]


@pytest.fixture
def lister(accounts: dict[str, MapiUser], corpus: list[str], tmp_path: Path) -> Iterator[list[str]]:
    with mapi_environment(accounts["lister"], config_dir=tmp_path):
        yield corpus


def by_hand(everything: list[mcli.Run], arguments: dict[str, Any]) -> list[str]:
    """What get_runs(**arguments) should return, filtering the full listing here."""

    def keep(run: mcli.Run) -> bool:
        checks = [
            # A name never finds a deleted run (its name may belong to a newer one); listings may include them.
            not run.is_deleted or (arguments.get("include_deleted", False) and "runs" not in arguments),
            "runs" not in arguments or run.name in arguments["runs"],
            "cluster_names" not in arguments or run.cluster in arguments["cluster_names"],
            "gpu_types" not in arguments or run.gpu_type in arguments["gpu_types"],
            "gpu_nums" not in arguments or run.gpus in arguments["gpu_nums"],
            "statuses" not in arguments
            or run.status in {RunStatus.from_string(status) for status in arguments["statuses"]},
            "before" not in arguments or run.created_at < _instant(arguments["before"], "before")[1],
            "after" not in arguments or run.created_at >= _instant(arguments["after"], "after")[1],
            # A run that has not ended never matches an end-time bound.
            "ended_before" not in arguments
            or (run.completed_at is not None and run.completed_at < _instant(arguments["ended_before"], "")[1]),
            "ended_after" not in arguments
            or (run.completed_at is not None and run.completed_at >= _instant(arguments["ended_after"], "")[1]),
            "user_emails" not in arguments or run.created_by in arguments["user_emails"],
        ]
        return all(checks)

    names = [run.name for run in everything if keep(run)]
    return names[: arguments["limit"]] if "limit" in arguments else names


@PROPERTY
@given(data=st.data())
def test_get_runs_returns_what_filtering_the_full_listing_gives(
    accounts: dict[str, MapiUser], lister: list[str], data: st.DataObject
) -> None:
    email = st.just(accounts["lister"].email)
    arguments = data.draw(get_runs_filters(names=st.sampled_from([*lister, "never-created"]), user_emails=email))
    everything = mcli.get_runs(include_deleted=True)
    assert {run.name for run in everything} == set(lister)
    assert [run.name for run in mcli.get_runs(**arguments)] == by_hand(everything, arguments)
