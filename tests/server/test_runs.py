"""Run lifecycle, scheduling, environment, mutations, filters, pagination and tenancy."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from mcli.local import LocalServer
from mcli.local.server import add_user

from .conftest import KEY
from .helpers import UPDATE, UPDATE_METADATA, Api, GqlError, post


async def test_create_and_complete(api: Api) -> None:
    run = await api.create(
        name="hello-run",
        command="echo hi",
        envVariables=[{"envKey": "FOO", "envValue": "bar"}],
        parameters={"lr": 0.1},
        metadata={"team": "x"},
        scheduling={"priority": "low", "maxRetries": 2, "maxDuration": 1.5},
    )
    assert run["name"] == "hello-run"
    assert run["status"] in ("PENDING", "QUEUED")
    assert run["createdByEmail"] == "local@mcli.local"
    assert run["priority"] == "low" and run["maxRetries"] == 2 and run["maxDurationSeconds"] == 5400
    assert run["createdAt"].endswith("Z") and len(run["createdAt"]) == 24
    assert len(run["resumptions"]) == 1
    done = await api.wait("hello-run")
    assert done["status"] == "COMPLETED"
    assert done["startedAt"] and done["completedAt"]
    assert done["resumptions"][0]["status"] == "COMPLETED"
    details = done["details"]
    assert details["originalRunInput"]["parameters"] == {"lr": 0.1}
    assert details["metadata"] == {"team": "x"}
    assert [lc["status"] for lc in details["lifecycle"]] == ["PENDING", "STARTING", "RUNNING", "COMPLETED"]
    assert [e["eventType"] for e in details["formattedRunEvents"]] == ["CREATED", "STARTED", "COMPLETED"]
    assert details["nodes"] == [{"rank": 0, "name": "local-node-0", "status": "COMPLETED", "reason": None}]


async def test_generated_name_and_validation(api: Api) -> None:
    run = await api.create(image="docker.io/mosaicml/pytorch:latest", command="true")
    assert run["name"].startswith("pytorch-") and len(run["name"]) == len("pytorch-") + 6
    await api.create(name="dup", command="true")
    with pytest.raises(GqlError) as err:
        await api.create(name="dup", command="true")
    assert err.value.code == 409
    for bad, field in (
        ({"name": "Bad_Name", "command": "true"}, "runName"),
        ({"command": "true", "image": ""}, "image"),
        ({"command": ""}, "command"),
        ({"command": "true", "envVariables": "x"}, "envVariables"),
    ):
        with pytest.raises(GqlError) as err:
            await api.create(**bad)
        assert err.value.code == 400
        assert err.value.errors[0]["message"].startswith("Bad run request:")
        assert field in err.value.errors[0]["message"]


@pytest.mark.parametrize(
    "compute",
    [
        {"gpus": 24},
        {"gpus": 16, "nodes": 1},
        {"cluster": "elsewhere"},
        {"gpus": 8, "gpuType": "h100"},
        {"nodes": 3, "gpus": 3 * 8},
    ],
)
async def test_never_fits_is_refused(api: Api, compute: dict[str, object]) -> None:
    with pytest.raises(GqlError) as err:
        await api.create(command="true", compute=compute)
    assert err.value.code == 400
    assert err.value.errors[0]["extensions"]["type"] == "INSTANCE_TYPE_UNAVAILABLE"


async def test_multi_node_env_and_gpus(api: Api) -> None:
    cmd = (
        'echo "$RUN_NAME $NODE_RANK $WORLD_SIZE $MASTER_ADDR $MASTER_PORT $CUDA_VISIBLE_DEVICES $FOO"; '
        'cat "$PARAMETERS_PATH"; pwd'
    )
    run = await api.create(
        name="multi",
        command=cmd,
        compute={"gpus": 8, "nodes": 2},
        parameters={"a": [1, 2]},
        envVariables=[{"envKey": "FOO", "envValue": 7}],
    )
    assert run["resumptions"][0]["gpus"] == 8 and run["resumptions"][0]["nodes"] == 2
    assert run["resumptions"][0]["gpuType"] == "a100_80gb"
    done = await api.wait("multi")
    assert done["status"] == "COMPLETED"
    from .helpers import WsClient

    client = WsClient(api.endpoint)
    await client.connect(KEY)
    try:
        outputs = [
            (await client.logs(name="multi", nodeRank=rank))[0].decode().splitlines() for rank in (0, 1)
        ]
    finally:
        await client.close()
    ports = set()
    for rank, lines in enumerate(outputs):
        name, node_rank, world, addr, port, cuda, foo = lines[0].split(" ")
        assert (name, node_rank, world, addr, cuda, foo) == (
            "multi",
            str(rank),
            "2",
            "127.0.0.1",
            "0,1,2,3",
            "7",
        )
        ports.add(port)
        assert json.loads("".join(lines[1:-1])) == {"a": [1, 2]}
        assert lines[-1].endswith("/work")
    assert len(ports) == 1
    assert [n["name"] for n in done["details"]["nodes"]] == ["local-node-0", "local-node-1"]


async def test_failing_rank_fails_run_and_stops_others(api: Api) -> None:
    await api.create(
        name="fails", command='if [ "$NODE_RANK" = 1 ]; then exit 3; fi; sleep 30', compute={"nodes": 2}
    )
    done = await api.wait("fails", timeout=15)
    assert done["status"] == "FAILED"
    assert "rank 1" in done["reason"] and "code 3" in done["reason"]
    assert done["resumptions"][0]["reason"] == done["reason"]
    nodes = {n["rank"]: n for n in done["details"]["nodes"]}
    assert nodes[1]["status"] == "FAILED" and nodes[0]["status"] == "STOPPED"


async def test_stop_running_run(api: Api) -> None:
    await api.create(name="sleeper", command="sleep 60")
    await api.wait("sleeper", {"RUNNING"})
    stopped = await api.stop(["sleeper"], reason="enough")
    assert stopped[0]["status"] in ("TERMINATING", "STOPPED")
    done = await api.wait("sleeper", timeout=10)
    assert done["status"] == "STOPPED" and done["reason"] == "enough"


async def test_stop_escalates_to_sigkill(make_server: Callable[..., LocalServer]) -> None:
    server = make_server(stop_grace_seconds=0.5)
    api = Api(server.endpoint, KEY)
    await api.create(name="stubborn", command="trap '' TERM; echo ready; sleep 60 & wait; sleep 60")
    await api.wait("stubborn", {"RUNNING"})
    await asyncio.sleep(0.2)
    await api.stop(["stubborn"])
    assert (await api.wait("stubborn", timeout=10))["status"] == "STOPPED"


async def test_queued_under_concurrency_limit(make_server: Callable[..., LocalServer]) -> None:
    server = make_server(max_concurrent_runs=1)
    api = Api(server.endpoint, KEY)
    await api.create(name="first", command="sleep 30")
    await api.create(name="second", command="true")
    await api.wait("first", {"RUNNING"})
    assert (await api.get("second"))["status"] == "QUEUED"
    await api.stop(["first"])  # frees the only slot: the queued run starts
    done = await api.wait("second")
    assert done["status"] == "COMPLETED"
    assert [lc["status"] for lc in done["details"]["lifecycle"]][:2] == ["PENDING", "QUEUED"]


async def test_queued_while_gpus_are_full(make_server: Callable[..., LocalServer]) -> None:
    server = make_server(nodes=1, gpus_per_node=4)
    api = Api(server.endpoint, KEY)
    await api.create(name="big", command="sleep 30", compute={"gpus": 4})
    await api.create(name="small", command='echo "$CUDA_VISIBLE_DEVICES"', compute={"gpus": 2})
    await api.create(name="cpu", command="true", compute={"gpus": 0})
    await api.wait("big", {"RUNNING"})
    assert (await api.get("small"))["status"] == "QUEUED"
    assert (await api.wait("cpu"))["status"] == "COMPLETED"  # CPU-only runs need no GPUs
    await api.stop(["big"])  # frees the GPUs: the queued run starts
    assert (await api.wait("small"))["status"] == "COMPLETED"


async def test_stop_queued_run(make_server: Callable[..., LocalServer]) -> None:
    server = make_server(max_concurrent_runs=1)
    api = Api(server.endpoint, KEY)
    await api.create(name="blocker", command="sleep 30")
    await api.create(name="waiting", command="true")
    await api.wait("waiting", {"QUEUED"})
    assert (await api.stop(["waiting"]))[0]["status"] == "STOPPED"
    await api.stop(["blocker"])


async def test_delete_running_run(api: Api) -> None:
    await api.create(name="todelete", command="sleep 60")
    await api.wait("todelete", {"RUNNING"})
    deleted = await api.delete(["todelete"])
    assert deleted[0]["isDeleted"] is True and deleted[0]["status"] == "STOPPED"
    assert (await api.page(filters={"name": {"in": ["todelete"]}}))["runs"] == []
    # Gone for every client: the official `describe`/`logs` look names up with includeDeleted=True.
    assert (await api.page(filters={"name": {"in": ["todelete"]}}, includeDeleted=True))["runs"] == []
    listing = await api.page(includeDeleted=True)
    assert [(r["name"], r["isDeleted"]) for r in listing["runs"] if r["name"] == "todelete"] == [("todelete", True)]
    await api.create(name="todelete", command="true")  # a deleted run frees its name


async def test_mutations_refuse_empty_name_filter(api: Api) -> None:
    await api.create(name="keepme", command="sleep 30")
    for filters in ({}, {"name": {"in": []}}, {"status": {"in": ["RUNNING"]}}):
        for query, extra in (
            (UPDATE, {"updateRunData": {"priority": "high"}}),
            (UPDATE_METADATA, {"updateRunMetadataData": {"metadata": {"a": 1}}}),
        ):
            with pytest.raises(GqlError) as err:
                await post(api.endpoint, KEY, query, {"getRunsData": {"filters": filters}, **extra})
            assert err.value.code == 400
        with pytest.raises(GqlError) as err:
            await post(
                api.endpoint,
                KEY,
                "mutation($g: GetRunsInput!) { stopRuns(getRunsData: $g) { name } }",
                {"g": {"filters": filters}},
            )
        assert err.value.code == 400
    assert (await api.get("keepme"))["status"] in ("PENDING", "STARTING", "RUNNING")
    await api.stop(["keepme"])


async def test_update_run_and_metadata_merge(api: Api) -> None:
    await api.create(name="meta", command="true", metadata={"a": 1, "b": 2})
    data = await post(
        api.endpoint,
        KEY,
        UPDATE_METADATA,
        {
            "getRunsData": {"filters": {"name": {"in": ["meta"]}}},
            "updateRunMetadataData": {"metadata": {"b": 3, "c": "NaN"}},
        },
    )
    assert data["updateRunMetadata"][0]["details"]["metadata"] == {"a": 1, "b": 3, "c": "NaN"}
    data = await post(
        api.endpoint,
        KEY,
        UPDATE,
        {
            "getRunsData": {"filters": {"name": {"in": ["meta"]}}},
            "updateRunData": {
                "preemptible": True,
                "priority": "lowest",
                "maxRetries": 4,
                "maxDurationSeconds": 60,
            },
        },
    )
    run = data["updateRun"][0]
    assert (run["preemptible"], run["priority"], run["maxRetries"], run["maxDurationSeconds"]) == (
        True,
        "lowest",
        4,
        60,
    )
    with pytest.raises(GqlError) as err:
        await post(
            api.endpoint,
            KEY,
            UPDATE,
            {"getRunsData": {"filters": {"name": {"in": ["nope"]}}}, "updateRunData": {}},
        )
    assert err.value.code == 404


async def test_tenancy(server: LocalServer, api: Api) -> None:
    bob_key = add_user(Path(server.data_dir), "bob@example.com")
    bob = Api(server.endpoint, bob_key)
    await api.create(name="alice-run", command="sleep 30")
    assert (await bob.page())["runs"] == []
    with pytest.raises(GqlError) as err:
        await bob.stop(["alice-run"])
    assert err.value.code == 404
    with pytest.raises(GqlError) as err:
        await bob.delete(["alice-run"])
    assert err.value.code == 404
    from .helpers import WATCH, WsClient

    client = WsClient(server.endpoint)
    await client.connect(bob_key)
    try:
        with pytest.raises(GqlError) as gerr:
            await client.collect(WATCH, {"watchRunStatusInput": {"name": "alice-run"}})
        assert gerr.value.errors[0]["extensions"]["code"] == 404
        with pytest.raises(GqlError):
            await client.logs(name="alice-run", follow=True)
    finally:
        await client.close()
    with pytest.raises(GqlError) as err:
        await bob.page(entity={"emails": ["local@mcli.local"]})
    assert err.value.code == 403
    # Bob may use the same name for his own run.
    await bob.create(name="alice-run", command="true")
    assert (await api.get("alice-run"))["createdByEmail"] == "local@mcli.local"
    await api.stop(["alice-run"])


async def test_filters_and_pagination(api: Api) -> None:
    await api.create(name="ok-1", command="true")
    await api.create(name="bad-1", command="exit 1")
    await api.create(name="gpu-1", command="true", compute={"gpus": 2}, runType="FINETUNING")
    for name in ("ok-1", "bad-1", "gpu-1"):
        await api.wait(name)
    names = lambda page: [r["name"] for r in page["runs"]]  # noqa: E731
    assert names(await api.page()) == ["gpu-1", "bad-1", "ok-1"]  # newest first
    assert names(await api.page(filters={"status": {"in": ["FAILED"]}})) == ["bad-1"]
    assert names(await api.page(filters={"name": {"in": ["ok-1", "gpu-1"]}})) == ["gpu-1", "ok-1"]
    assert names(await api.page(filters={"gpuNum": {"in": [2]}})) == ["gpu-1"]
    assert names(await api.page(filters={"gpuType": {"in": ["a100_80gb"]}})) == ["gpu-1"]
    assert names(await api.page(filters={"clusterName": {"in": ["local"]}})) == ["gpu-1", "bad-1", "ok-1"]
    assert names(await api.page(filters={"clusterName": {"in": ["other"]}})) == []
    assert names(await api.page(filters={"runType": {"in": ["FINETUNING"]}})) == ["gpu-1"]
    assert names(
        await api.page(filters={"createdAt": {"gte": "2000-01-01", "lt": "2999-01-01T00:00:00+02:00"}})
    ) == ["gpu-1", "bad-1", "ok-1"]
    assert names(await api.page(filters={"createdAt": {"lt": "2000-01-01"}})) == []
    assert names(await api.page(filters={"endedAt": {"gte": "2000-01-01T00:00:00.123456Z"}})) == [
        "gpu-1",
        "bad-1",
        "ok-1",
    ]
    with pytest.raises(GqlError) as err:
        await api.page(filters={"createdAt": {"lt": "yesterday"}})
    assert err.value.code == 400
    seen = []
    page = await api.page(limit=1)
    while True:
        seen += names(page)
        if not page["hasNextPage"]:
            assert page["cursor"] is None
            break
        page = await api.page(limit=1, cursor=page["cursor"])
    assert seen == ["gpu-1", "bad-1", "ok-1"]
    for bad in ({"limit": 0}, {"cursor": "garbage!"}):
        with pytest.raises(GqlError) as err:
            await api.page(**bad)
        assert err.value.code == 400
