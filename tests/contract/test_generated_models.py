"""Generated models parse every response shape of the contract, including absent fields and unknown enum values."""

from datetime import UTC, datetime

from mcli.graphql.generated import (
    CreateRun,
    GetRunLogs,
    GetRunsPaginated,
    GetRunsPaginatedInput,
    RunStatus,
    RunType,
    WatchRunStatus,
)


def run_payload(**overrides: object) -> dict[str, object]:
    payload: dict[str, object] = {
        "id": "r-1",
        "name": "hello-abc123",
        "status": "RUNNING",
        "createdAt": "2026-11-28T09:47:47.123Z",
        "updatedAt": "2026-11-28T09:48:00.000Z",
        "reason": None,
        "createdByEmail": "me@example.com",
        "priority": "auto",
        "maxRetries": None,
        "preemptible": False,
        "retryOnSystemFailure": False,
        "maxDurationSeconds": None,
        "isDeleted": False,
        "runType": "TRAINING",
        "resumptions": [
            {
                "executionIndex": 0,
                "clusterName": "local",
                "cpus": 0,
                "gpuType": "a100_80gb",
                "gpus": 16,
                "nodes": 2,
                "startTime": "2026-11-28T09:47:48.000Z",
                "endTime": None,
                "status": "RUNNING",
                "estimatedEndTime": None,
                "reason": None,
            }
        ],
    }
    payload.update(overrides)
    return payload


def test_create_run_with_details() -> None:
    details = {
        "image": "python:3.11",
        "originalRunInput": {"image": "python:3.11", "command": "echo hi", "parameters": {"a": [1, 2]}},
        "metadata": {"team": "x"},
        "lastExecutionId": "e-1",
        "lifecycle": [{"executionIndex": 0, "status": "PENDING", "startTime": "2026-11-28T09:47:47Z",
                       "endTime": None, "reason": None}],
        "nodes": [{"rank": 0, "name": "node-0", "status": "RUNNING", "reason": None}],
        "formattedRunEvents": [],
    }
    result = CreateRun.model_validate({"createRun": [run_payload(details=details)]})
    run = result.create_run[0]
    assert run.status is RunStatus.RUNNING
    assert run.created_at == datetime(2026, 11, 28, 9, 47, 47, 123000, tzinfo=UTC)
    assert run.details is not None and run.details.original_run_input["parameters"] == {"a": [1, 2]}
    assert run.resumptions[0].nodes == 2


def test_absent_details_and_null_optionals_parse() -> None:
    page = GetRunsPaginated.model_validate(
        {"getRunsPaginated": {"cursor": None, "hasNextPage": False, "runs": [run_payload()]}}
    )
    run = page.get_runs_paginated.runs[0]
    assert run.details is None and run.max_retries is None and run.reason is None


def test_unknown_enum_values_from_a_newer_server_do_not_crash() -> None:
    page = GetRunsPaginated.model_validate(
        {"getRunsPaginated": {"cursor": "c", "hasNextPage": True,
                              "runs": [run_payload(status="HIBERNATING", runType="DISTILLATION")]}}
    )
    run = page.get_runs_paginated.runs[0]
    assert run.status is RunStatus.UNKNOWN
    assert run.run_type is RunType.UNKNOWN
    assert WatchRunStatus.model_validate({"watchRunStatus": "SOMETHING_NEW"}).watch_run_status is RunStatus.UNKNOWN


def test_log_chunk_and_offset() -> None:
    message = GetRunLogs.model_validate({"getRunLogsV2": {"chunk": "aGkK", "endOffset": 3}})
    assert message.get_run_logs_v_2.end_offset == 3


def test_inputs_serialise_with_contract_names() -> None:
    page_input = GetRunsPaginatedInput(limit=5, includeDeleted=True)
    assert page_input.model_dump(by_alias=True, exclude_unset=True) == {"limit": 5, "includeDeleted": True}
