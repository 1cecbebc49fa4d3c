"""Run.from_graphql on the generated models, with and without details, and with values from a newer server."""

import dataclasses
import pickle
from datetime import UTC, datetime
from typing import Any

import pytest

from mcli.graphql.generated.fragments import RunDetailFields, RunFields
from mcli.graphql.generated.get_runs_paginated import GetRunsPaginatedGetRunsPaginatedRuns
from mcli.models import (
    ComputeConfig,
    LifecycleEntry,
    Resumption,
    Run,
    RunConfig,
    RunEvent,
    RunNode,
    RunStatus,
    RunType,
    SchedulingConfig,
)


def resumption(index: int, **overrides: Any) -> dict[str, Any]:
    return {
        "executionIndex": index,
        "clusterName": f"c{index}",
        "cpus": 4,
        "gpuType": "a100",
        "gpus": 8,
        "nodes": 1,
        "startTime": f"2024-01-0{index + 1}T00:00:00.000Z",
        "endTime": None,
        "status": "RUNNING",
        "estimatedEndTime": None,
        "reason": None,
        **overrides,
    }


def run_payload(**overrides: Any) -> dict[str, Any]:
    return {
        "id": "uid-1",
        "name": "my-run",
        "status": "RUNNING",
        "createdAt": "2024-01-01T00:00:00.000Z",
        "updatedAt": "2024-01-02T00:00:00.000Z",
        "reason": None,
        "createdByEmail": "me@example.com",
        "priority": "auto",
        "maxRetries": None,
        "preemptible": False,
        "retryOnSystemFailure": True,
        "maxDurationSeconds": None,
        "isDeleted": False,
        "runType": "TRAINING",
        "resumptions": [resumption(0)],
        **overrides,
    }


def details_payload(**overrides: Any) -> dict[str, Any]:
    return {
        "image": "mosaicml/composer",
        "originalRunInput": {
            "runName": "my-run",
            "image": "mosaicml/composer",
            "command": "python train.py",
            "compute": {"gpus": 8, "cluster": "c0"},
            "envVariables": [],
            "metadata": {"a": 1},
        },
        "metadata": {"a": 1, "b": [2]},
        "lastExecutionId": "exec-1",
        "lifecycle": [
            {
                "executionIndex": 0,
                "status": "PENDING",
                "startTime": "2024-01-01T00:00:00.000Z",
                "endTime": "2024-01-01T00:00:01.000Z",
                "reason": None,
            },
            {
                "executionIndex": 0,
                "status": "RUNNING",
                "startTime": "2024-01-01T00:00:01.000Z",
                "endTime": None,
                "reason": None,
            },
        ],
        "nodes": [
            {"rank": 0, "name": "node-a", "status": "Running", "reason": None},
            {"rank": None, "name": None, "status": None, "reason": None},
        ],
        "formattedRunEvents": [
            {
                "resumptionIndex": 0,
                "eventType": "CREATED",
                "eventTime": "2024-01-01T00:00:00.000Z",
                "eventMessage": "Run created",
            }
        ],
        **overrides,
    }


def build(run: dict[str, Any], details: dict[str, Any] | None = None) -> Run:
    return Run.from_graphql(
        RunFields.model_validate(run),
        RunDetailFields.model_validate(details) if details is not None else None,
    )


def test_seed_fields_from_a_run_without_details() -> None:
    run = build(run_payload())
    assert run.run_uid == "uid-1" and run.name == "my-run"
    assert run.status is RunStatus.RUNNING
    assert run.created_at == datetime(2024, 1, 1, tzinfo=UTC)
    assert run.updated_at == datetime(2024, 1, 2, tzinfo=UTC)
    assert run.reason is None and run.submitted_config is None and run.nodes == []
    assert run.created_by == "me@example.com" and run.priority == "auto" and run.run_type is RunType.TRAINING
    assert run.retry_on_system_failure is True and run.preemptible is False and run.is_deleted is False
    assert (run.cluster, run.gpus, run.gpu_type, run.cpus, run.node_count) == ("c0", 8, "a100", 4, 1)
    assert run.metadata is None and run.image is None and run.lifecycle == [] and run.events == []


def test_config_without_details_is_built_from_known_fields() -> None:
    run = build(run_payload(maxRetries=3, maxDurationSeconds=5400, priority="low", preemptible=True))
    assert run.config.name is None and run.name == "my-run"  # a config launches a new run under a new name
    assert run.config.compute == ComputeConfig(cluster="c0", gpus=8, gpu_type="a100", cpus=4, nodes=1)
    assert run.config.scheduling.max_retries == 3
    assert run.config.scheduling.max_duration == 1.5  # hours
    assert run.config.scheduling.priority == "low" and run.config.scheduling.preemptible is True


def test_details_fill_in_config_metadata_nodes_lifecycle_and_events() -> None:
    run = build(run_payload(), details_payload())
    assert run.submitted_config is not None
    assert run.submitted_config.command == "python train.py"
    # The config is what was submitted, minus the name: create_run(run.config) launches it again as a new run.
    assert run.config == run.submitted_config.model_copy(update={"name": None})
    assert run.submitted_config.name == run.name and run.config.name is None
    assert run.image == "mosaicml/composer"
    assert run.metadata == {"a": 1, "b": [2]}
    assert run.nodes == [RunNode(rank=0, name="node-a", status="Running"), RunNode(rank=None)]
    assert run.lifecycle[1] == LifecycleEntry(
        execution_index=0, status=RunStatus.RUNNING, started_at=datetime(2024, 1, 1, 0, 0, 1, tzinfo=UTC)
    )
    assert run.events == [
        RunEvent(
            resumption_index=0,
            event_type="CREATED",
            event_time=datetime(2024, 1, 1, tzinfo=UTC),
            message="Run created",
        )
    ]


def test_details_carried_by_an_operation_result_are_used() -> None:
    payload = {**run_payload(), "details": details_payload()}
    run = Run.from_graphql(GetRunsPaginatedGetRunsPaginatedRuns.model_validate(payload))
    assert run.image == "mosaicml/composer" and run.submitted_config is not None


def test_absent_optional_details_fields() -> None:
    run = build(
        run_payload(),
        details_payload(
            image=None,
            originalRunInput=None,
            metadata=None,
            lastExecutionId=None,
            lifecycle=[],
            nodes=[],
            formattedRunEvents=[],
        ),
    )
    assert run.submitted_config is None and run.metadata is None and run.image is None
    assert run.config.name is None and run.name == "my-run"  # a config launches a new run under a new name


def test_unparseable_original_input_does_not_break_the_run() -> None:
    run = build(run_payload(), details_payload(originalRunInput={"runName": 5}))
    assert run.submitted_config is None
    assert run.config.compute.cluster == "c0"


def test_unknown_enum_values_from_a_newer_server_become_unknown() -> None:
    run = build(
        run_payload(
            status="PAUSED", runType="DISTILLATION", resumptions=[resumption(0, status="HIBERNATING")]
        ),
        details_payload(
            lifecycle=[
                {
                    "executionIndex": 0,
                    "status": "WARMING",
                    "startTime": "2024-01-01T00:00:00Z",
                    "endTime": None,
                    "reason": None,
                }
            ],
            formattedRunEvents=[
                {
                    "resumptionIndex": 0,
                    "eventType": "NEW_EVENT",
                    "eventTime": "2024-01-01T00:00:00Z",
                    "eventMessage": "m",
                }
            ],
        ),
    )
    assert run.status is RunStatus.UNKNOWN
    assert run.run_type is RunType.UNKNOWN
    assert run.resumptions[0].status is RunStatus.UNKNOWN
    assert run.lifecycle[0].status is RunStatus.UNKNOWN
    assert run.events[0].event_type == "NEW_EVENT"


def test_latest_resumption_wins_even_when_the_server_sends_them_out_of_order() -> None:
    run = build(
        run_payload(
            resumptions=[
                resumption(1, clusterName="late", gpus=16, reason="retried"),
                resumption(0, clusterName="early"),
            ]
        )
    )
    assert [r.index for r in run.resumptions] == [0, 1]
    assert run.cluster == "late" and run.gpus == 16
    assert run.latest_resumption == run.resumptions[-1]
    assert isinstance(run.resumptions[0], Resumption)


def test_reason_prefers_the_runs_own_reason_over_the_last_resumptions() -> None:
    assert build(run_payload(reason="exit 1", resumptions=[resumption(0, reason="other")])).reason == "exit 1"
    assert build(run_payload(reason=None, resumptions=[resumption(0, reason="OOM")])).reason == "OOM"


def test_no_resumptions_is_tolerated() -> None:
    run = build(run_payload(resumptions=[]))
    assert run.cluster is None and run.gpus is None and run.latest_resumption is None
    assert run.started_at is None
    assert run.config.compute == ComputeConfig()


def test_started_and_completed_come_from_execution_times() -> None:
    run = build(
        run_payload(
            status="COMPLETED",
            resumptions=[
                resumption(0, status="FAILED", endTime="2024-01-01T05:00:00Z"),
                resumption(1, status="COMPLETED", endTime="2024-01-03T00:00:00Z"),
            ],
        )
    )
    assert run.started_at == datetime(2024, 1, 1, tzinfo=UTC)
    assert run.completed_at == datetime(2024, 1, 3, tzinfo=UTC)
    assert build(run_payload()).completed_at is None  # still running


def test_run_is_frozen_and_hashable_by_uid() -> None:
    run = build(run_payload())
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.name = "other"  # type: ignore[misc]
    same = build(run_payload())
    assert run == same and len({run, same}) == 1
    assert run != dataclasses.replace(run, status=RunStatus.FAILED)


def test_run_can_be_built_directly_with_the_seed_signature() -> None:
    now = datetime.now(UTC)
    run = Run("uid", "name", RunStatus.PENDING, now, now, RunConfig(name="name"))
    assert run.nodes == [] and run.started_at is None and run.run_type is RunType.UNKNOWN


def test_a_run_read_straight_from_json_equals_one_read_through_the_generated_models() -> None:
    payload = run_payload(resumptions=[resumption(1), resumption(0)], details=details_payload())
    direct = Run.from_json(payload)
    via_models = Run.from_graphql(GetRunsPaginatedGetRunsPaginatedRuns.model_validate(payload))
    for field in dataclasses.fields(Run):
        assert getattr(direct, field.name) == getattr(via_models, field.name), field.name
    assert direct.config.compute.gpus == 8 and direct.submitted_config is not None
    assert direct.submitted_config.model_copy(update={"name": None}) == direct.config


def test_every_field_is_set_when_a_run_is_read_from_json() -> None:
    # from_json fills the instance dict directly; a field added to Run must be added there too.
    for run in (Run.from_json(run_payload(details=details_payload())), Run.from_json(run_payload())):
        for field in dataclasses.fields(Run):
            assert hasattr(run, field.name), field.name
        for field in dataclasses.fields(Resumption):
            assert hasattr(run.resumptions[0], field.name), field.name
        assert {f.name for f in dataclasses.fields(Run)} == set(dataclasses.asdict(run))


def test_configs_read_later_survive_copies_pickles_and_replacement() -> None:
    run = Run.from_json(run_payload(details=details_payload()))
    copied = pickle.loads(pickle.dumps(run))
    replaced = dataclasses.replace(run, status=RunStatus.FAILED)
    assert copied == run and copied.config == run.config and copied.submitted_config == run.submitted_config
    assert replaced.config == run.config and replaced.status is RunStatus.FAILED
    assert isinstance(run.config, RunConfig) and run.config is run.config  # built once, then kept


def test_configs_built_on_first_read_equal_configs_built_at_once() -> None:
    # A Run read from an answer builds its configs only when they are read; they must be what building them
    # straight from the answer gives, taken apart from each other, and the same after a pickle taken before.
    with_details = details_payload()
    run = Run.from_json(run_payload(details=with_details))
    unread = pickle.loads(pickle.dumps(run))
    submitted = RunConfig.from_run_input(with_details["originalRunInput"])
    assert run.submitted_config == submitted and unread.submitted_config == submitted
    assert run.config == submitted.model_copy(update={"name": None}) == unread.config
    assert run.config is not run.submitted_config and run.config.compute is not run.submitted_config.compute
    run.config.compute.gpus = 16
    assert run.submitted_config.compute.gpus == 8  # changing one config never changes the other

    # Without details: built from the run's own fields, the scheduling flags as the server sent them.
    bare = Run.from_json(run_payload(preemptible=None, maxRetries=2, maxDurationSeconds=7200, priority="low"))
    assert bare.preemptible is False and bare.retry_on_system_failure is True
    assert bare.submitted_config is None
    assert bare.config == RunConfig(
        compute=ComputeConfig(cluster="c0", gpus=8, gpu_type="a100", cpus=4, nodes=1),
        scheduling=SchedulingConfig(
            priority="low", preemptible=None, max_retries=2, retry_on_system_failure=True, max_duration=2.0
        ),
    )


def test_empty_detail_lists_made_on_first_read_behave_like_lists_set_at_once() -> None:
    # A Run read from an answer makes its empty nodes/lifecycle/events lists only when they are read.
    first, second = (Run.from_json(run_payload(details=details_payload(nodes=[], lifecycle=[]))) for _ in "ab")
    unread = pickle.loads(pickle.dumps(first))
    assert first.nodes == [] and first.nodes is first.nodes and first.nodes is not second.nodes
    first.nodes.append(RunNode(rank=0))
    assert first.nodes == [RunNode(rank=0)] and second.nodes == [] and unread.nodes == []
    assert second.lifecycle == [] and len(second.events) == 1  # a list with items is made at once
    eager = dataclasses.replace(second)  # through __init__: every field set at once
    assert eager == second and eager.nodes == [] and "nodes" in vars(eager)
    with pytest.raises(AttributeError, match="'Run' object has no attribute 'node'"):
        second.node  # noqa: B018 - a typo still fails as it always did
