"""The getRunsPaginated fast path answers with exactly the JSON graphql-core's executor gives, or steps aside."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mcli.graphql.documents import document
from mcli.local import LocalServer
from mcli.local.engine import Engine
from mcli.local.executors import create_executor
from mcli.local.fastpath import runs_page
from mcli.local.placement import Capacity
from mcli.local.records import Resumption, Run
from mcli.local.schema import build_schema, format_error
from mcli.local.server import DEFAULT_EMAIL, open_store

from .helpers import Api

ROOT = Path(__file__).resolve().parents[2]
OFFICIAL = (
    "query GetRunsPaginated($getRunsPaginatedData: GetRunsPaginatedInput!) {\n"
    "  getRunsPaginated(getRunsPaginatedData: $getRunsPaginatedData) {\n  cursor\n  hasNextPage\n  runs {{\n"
    "    id name status createdAt updatedAt reason createdByEmail priority maxRetries preemptible\n"
    "    retryOnSystemFailure maxDurationSeconds {order} resumptions {{ clusterName cpus gpuType gpus nodes\n"
    "    executionIndex startTime endTime status estimatedEndTime reason }}\n{details}  }}\n  }}\n}}"
)
OFFICIAL_DETAILS = (
    "    details { image originalRunInput metadata lastExecutionId\n"
    "      lifecycle { executionIndex status startTime endTime reason }\n"
    "      nodes { rank name status reason }\n"
    "      formattedRunEvents { resumptionIndex eventType eventTime eventMessage } }\n"
)
# The official client's two documents (mosaicml-cli 0.8.3, api/runs/api_get_runs.py), as it sends them.
OFFICIAL_LIGHT = OFFICIAL.replace("{order}", "isDeleted runType").replace("{details}", "").replace("{{", "{").replace("}}", "}")
OFFICIAL_FULL = (
    OFFICIAL.replace("{order}", "runType isDeleted").replace("{{", "{").replace("}}", "}").replace("{details}", OFFICIAL_DETAILS)
)
# Aliases, fragments inside fragments, inline fragments, __typename, directives by literal and by variable, and one
# response key selected twice with different sub-selections (merged).
TRICKY = """
query Tricky($d: GetRunsPaginatedInput!, $withNodes: Boolean!, $skipEvents: Boolean = true) {
  page: getRunsPaginated(getRunsPaginatedData: $d) {
    __typename
    more: hasNextPage
    runs { ...Basics ... on Run { when: createdAt } details { nodes @include(if: $withNodes) { rank } } }
    runs { status details { formattedRunEvents @skip(if: $skipEvents) { eventType } lifecycle { status } } }
    cursor @skip(if: false)
  }
}
fragment Basics on Run { uid: id name ...Nested resumptions { ... on Resumption { gpus } status } }
fragment Nested on Run { isDeleted name __typename }
"""


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, dict[str, Any], str]]:
    """A data dir with real runs (lifecycle, nodes, events, a failure, a deleted one) and bulk-seeded ones."""
    data_dir = tmp_path_factory.mktemp("fastpath")
    with LocalServer(data_dir=data_dir, api_key="fastpath-key-0123456789", stop_grace_seconds=1.0) as server:
        api = Api(server.endpoint, "fastpath-key-0123456789")

        async def make() -> None:
            await api.create(name="two-nodes", command="echo $NODE_RANK", compute={"nodes": 2},
                             metadata={"team": "x", "n": [1, 2.5, None]}, parameters={"lr": 0.1})  # fmt: skip
            await api.create(name="fails", command="exit 3", envVariables=[{"envKey": "A", "envValue": "b"}])
            await api.create(name="gone", command="true")
            for name in ("two-nodes", "fails", "gone"):
                await api.wait(name)
            await api.delete(["gone"])

        asyncio.run(make())
    store = open_store(data_dir)
    user = store.get_user_by_email(DEFAULT_EMAIL)
    assert user is not None
    base = time.time() - 86400
    store.bulk_insert_runs(_seeded(user.id, i, base) for i in range(30))
    engine = Engine(store, data_dir, create_executor("local", Capacity(), data_dir))
    yield build_schema(), {"user": user, "engine": engine}, DEFAULT_EMAIL
    store.close()


def _seeded(user_id: str, i: int, base: float) -> tuple[Run, Resumption]:
    status = ("COMPLETED", "FAILED", "STOPPED")[i % 3]
    created = base + i
    run = Run(
        seq=0, id=f"seeded{i:04d}", user_id=user_id, name=f"seeded-{i:04d}", status=status,
        reason=None if status == "COMPLETED" else "seeded", created_at=created, updated_at=created + 60,
        started_at=created + 1, completed_at=created + 60, created_by_email="local@mcli.local", priority="medium",
        max_retries=i % 2 or None, preemptible=bool(i % 2), retry_on_system_failure=False,
        max_duration_seconds=3600 if i % 4 == 0 else None, is_deleted=i % 7 == 0, run_type="TRAINING",
        image="img", command="true", run_input={"original": {"name": f"seeded-{i:04d}", "metadata": {"i": i}}},
        metadata={"i": i, "unicode": "é✓"}, cluster_name=f"c{i % 2}", gpu_type="a100_80gb", gpus=i % 3, cpus=0,
        nodes=1,
    )  # fmt: skip
    resumption = Resumption(0, run.cluster_name, 0, run.gpu_type, run.gpus, 1, created + 1, created + 60, status, run.reason)
    return run, resumption


def _executor(schema: Any, data: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
    from ariadne import graphql

    _, result = asyncio.run(graphql(schema, data, context_value=context, error_formatter=format_error))
    return dict(result)


def _both(world: tuple[Any, dict[str, Any], str], query: str, variables: dict[str, Any]) -> tuple[Any, Any]:
    from graphql import parse

    schema, context, _ = world
    data = {"query": query, "variables": variables}
    return runs_page(schema, parse(query), data, context), _executor(schema, data, context)


PAGES: list[dict[str, Any]] = [
    {"limit": 100},
    {"limit": 7},
    {"limit": 5, "includeDeleted": True},
    {"filters": {"status": {"in": ["FAILED", "STOPPED"]}}, "limit": None},
    {"filters": {"name": {"in": ["two-nodes", "fails", "gone"]}}, "includeDeleted": True},
    {"filters": {"clusterName": {"in": ["c1"]}, "gpuNum": {"in": [2]}}},
    {"filters": {"createdAt": {"gte": "2020-01-01T00:00:00Z"}}, "limit": 3},
]


@pytest.mark.parametrize("page", PAGES, ids=[json.dumps(p)[:60] for p in PAGES])
@pytest.mark.parametrize(
    "query, extra",
    [
        (document("get_runs_paginated"), {"includeDetails": True}),
        (document("get_runs_paginated"), {"includeDetails": False}),
        (OFFICIAL_LIGHT, {}),
        (OFFICIAL_FULL, {}),
        (TRICKY, {"withNodes": True}),
        (TRICKY, {"withNodes": False, "skipEvents": False}),
    ],
    ids=["ours-details", "ours-light", "official-light", "official-details", "tricky-a", "tricky-b"],
)
def test_same_json_as_the_executor(
    world: tuple[Any, dict[str, Any], str], query: str, extra: dict[str, Any], page: dict[str, Any]
) -> None:
    key = "d" if query is TRICKY else "getRunsPaginatedData"
    fast, slow = _both(world, query, {key: page, **extra})
    assert "errors" not in slow, slow
    assert fast is not None, "the fast path stepped aside"
    assert json.dumps(fast) == json.dumps(slow)  # same values, same key order


def test_the_next_page_follows_the_cursor_the_same_way(world: tuple[Any, dict[str, Any], str]) -> None:
    query = document("get_runs_paginated")
    first, _ = _both(world, query, {"getRunsPaginatedData": {"limit": 4}, "includeDetails": True})
    assert first is not None and first["data"]["getRunsPaginated"]["hasNextPage"]
    cursor = first["data"]["getRunsPaginated"]["cursor"]
    fast, slow = _both(world, query, {"getRunsPaginatedData": {"limit": 4, "cursor": cursor}, "includeDetails": True})
    assert fast is not None and json.dumps(fast) == json.dumps(slow)


Case = Callable[[], tuple[str, dict[str, Any]]]


@pytest.mark.parametrize(
    "query, variables",
    [
        (document("get_runs_paginated"), {"getRunsPaginatedData": {"limit": 0}, "includeDetails": False}),
        (document("get_runs_paginated"), {"getRunsPaginatedData": {"limit": "x"}, "includeDetails": False}),
        (document("get_runs_paginated"), {"getRunsPaginatedData": {"cursor": "not-a-cursor"}, "includeDetails": False}),
        ("query { getRunsPaginated(getRunsPaginatedData: {}) { runs { name } } __typename }", {}),
        ("query { getClusters(getClustersData: {}) { name } }", {}),
    ],
    ids=["limit-0", "bad-variable", "bad-cursor", "two-root-fields", "another-query"],
)
def test_it_steps_aside_for_errors_and_other_queries(
    world: tuple[Any, dict[str, Any], str], query: str, variables: dict[str, Any]
) -> None:
    fast, _ = _both(world, query, variables)
    assert fast is None


LOGS_ALIASED = """
subscription Logs($i: GetRunLogsInput!) {
  ... on Subscription { stream: getRunLogsV2(getRunLogsInput: $i) { __typename end: endOffset chunk endOffset } }
}
"""


async def _collect(stream: Any) -> list[Any]:
    return [item async for item in stream]


@pytest.mark.parametrize(
    "query", [document("get_run_logs"), LOGS_ALIASED], ids=["ours", "aliased"]
)
@pytest.mark.parametrize(
    "log_input",
    [{"name": "two-nodes"}, {"name": "two-nodes", "nodeRank": 1, "timestamps": True}, {"name": "two-nodes", "tail": 1, "follow": True}],
    ids=["rank-0", "rank-1-timestamps", "tail"],
)
def test_log_payloads_match_the_executor(
    world: tuple[Any, dict[str, Any], str], query: str, log_input: dict[str, Any]
) -> None:
    from ariadne import subscribe
    from graphql import parse

    from mcli.local.fastpath import log_stream

    schema, context, _ = world
    key = "i" if query is LOGS_ALIASED else "getRunLogsInput"
    data = {"query": query, "variables": {key: log_input}}

    async def both() -> tuple[list[Any], list[Any]]:
        fast = await log_stream(schema, parse(query), data, context)
        assert fast is not None, "the fast path stepped aside"
        ok, stream = await subscribe(schema, data, context_value=context, error_formatter=format_error)
        assert ok, stream
        slow = [{"data": item.data} async for item in stream]  # type: ignore[union-attr]
        return await _collect(fast), slow

    fast, slow = asyncio.run(both())
    assert fast and json.dumps(fast) == json.dumps(slow)


def test_a_bad_log_request_is_left_to_the_executor(world: tuple[Any, dict[str, Any], str]) -> None:
    from graphql import parse

    from mcli.local.fastpath import log_stream

    schema, context, _ = world
    query = document("get_run_logs")
    for log_input in ({"name": "no-such-run"}, {"name": "two-nodes", "nodeRank": 5}):
        data = {"query": query, "variables": {"getRunLogsInput": log_input}}
        assert asyncio.run(log_stream(schema, parse(query), data, context)) is None


ODD_VALUES: list[dict[str, Any]] = [
    {"max_retries": True},  # a bool where an Int goes: serialized as 1
    {"max_retries": 2**40},  # beyond Int: a field error
    {"priority": 7},  # an int where a String goes
    {"reason": None},  # null in a nullable field
    {"name": None},  # null in a non-null field
    {"status": "NOT_A_STATUS"},  # not a value of the enum
    {"created_at": "yesterday"},  # not a timestamp
    {"reason": print},  # a callable, which Ariadne calls with `info`: the fast path leaves that to it
]


@pytest.mark.parametrize("odd", ODD_VALUES, ids=[json.dumps(o, default=str)[:40] for o in ODD_VALUES])
def test_odd_record_values_give_the_executors_answer_or_step_aside(
    world: tuple[Any, dict[str, Any], str], odd: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataclasses

    engine = world[1]["engine"]
    real = engine.get_runs_page

    def page_with_odd_run(user: Any, data: dict[str, Any]) -> dict[str, Any]:
        page = real(user, data)
        page["runs"] = [dataclasses.replace(page["runs"][0], **odd), *page["runs"][1:]]
        return page

    monkeypatch.setattr(engine, "get_runs_page", page_with_odd_run)
    fast, slow = _both(world, document("get_runs_paginated"), {"getRunsPaginatedData": {"limit": 5}, "includeDetails": True})
    if "errors" in slow or callable(next(iter(odd.values()))):
        assert fast is None
    else:
        assert fast is not None, "the fast path stepped aside"
        assert json.dumps(fast) == json.dumps(slow)
