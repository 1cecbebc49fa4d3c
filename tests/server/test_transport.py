"""HTTP and websocket transport: both subprotocols, keep-alive, auth, and error framing."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
import websockets

from mcli.local import LocalServer

from .conftest import KEY
from .helpers import CREATE, LOGS, RUNS_LIGHT, WATCH, Api, GqlError, WsClient, post, post_raw

PROTOCOLS = ["graphql-transport-ws", "graphql-ws"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_watch_and_logs_over_each_protocol(server: LocalServer, api: Api, protocol: str) -> None:
    run = await api.create(command="echo one; sleep 0.3; echo two")
    client = WsClient(server.endpoint, protocol)
    await client.connect(KEY)
    try:
        statuses = [
            d["watchRunStatus"]
            async for d in client.stream(WATCH, {"watchRunStatusInput": {"name": run["name"]}})
        ]
        assert statuses[-1] == "COMPLETED"
        assert statuses == sorted(set(statuses), key=statuses.index)  # each change once
        text, offsets = await client.logs(name=run["name"], follow=False)
        assert text == b"one\ntwo\n"
        assert offsets[-1] == len(text)
    finally:
        await client.close()


async def test_server_echoes_first_offered_protocol(server: LocalServer) -> None:
    # The official client offers graphql-ws first and uses whatever the server echoes.
    client = WsClient(server.endpoint, "graphql-ws")
    await client.connect(KEY, offer=["graphql-ws", "graphql-transport-ws"])
    await client.close()
    client = WsClient(server.endpoint, "graphql-transport-ws")
    await client.connect(KEY, offer=["graphql-transport-ws", "graphql-ws"])
    await client.close()


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_keepalive(make_server: Callable[..., LocalServer], protocol: str) -> None:
    server = make_server(keepalive_seconds=0.1)
    async with websockets.connect(server.endpoint.replace("http", "ws"), subprotocols=[protocol]) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": KEY}}))
        kinds = [json.loads(await ws.recv())["type"] for _ in range(3)]
    assert kinds[0] == "connection_ack"
    assert set(kinds[1:]) == ({"ka"} if protocol == "graphql-ws" else {"ping"})


async def test_http_auth(server: LocalServer) -> None:
    variables = {"getRunsPaginatedData": {"filters": {}}}
    for key in (None, "", "wrong-key", "Bearer wrong-key"):
        status, body = await post_raw(server.endpoint, key, {"query": RUNS_LIGHT, "variables": variables})
        assert status == 401
        assert body["errors"][0]["extensions"]["code"] == 401
    for key in (KEY, f"Bearer {KEY}"):
        data = await post(server.endpoint, key, RUNS_LIGHT, variables)
        assert data["getRunsPaginated"]["runs"] == []


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_ws_bad_key_acks_then_fails_subscription(server: LocalServer, api: Api, protocol: str) -> None:
    run = await api.create(command="true")
    client = WsClient(server.endpoint, protocol)
    await client.connect("wrong-key")
    try:
        with pytest.raises(GqlError) as err:
            await client.collect(WATCH, {"watchRunStatusInput": {"name": run["name"]}})
        assert err.value.code == 401
    finally:
        await client.close()


async def test_ws_key_from_upgrade_header(server: LocalServer, api: Api) -> None:
    run = await api.create(command="true")
    client = WsClient(server.endpoint)
    await client.connect(None, headers={"Authorization": f"Bearer {KEY}"})
    try:
        statuses = await client.collect(WATCH, {"watchRunStatusInput": {"name": run["name"]}})
        assert statuses[-1]["watchRunStatus"] == "COMPLETED"
    finally:
        await client.close()


async def test_bad_requests_get_json_400(server: LocalServer) -> None:
    cases: list[tuple[object, bytes | None]] = [
        (None, b"{not json"),
        ([1, 2], None),
        ({"variables": {}}, None),
        ({"query": "{ getRunsPaginated"}, None),
        ({"query": "{ nope }"}, None),
        ({"query": RUNS_LIGHT, "variables": {"getRunsPaginatedData": {"limit": "x"}}}, None),
        ({"query": RUNS_LIGHT, "variables": "nope"}, None),
        ({"query": LOGS, "variables": {"getRunLogsInput": {"name": "x"}}}, None),
    ]
    for payload, raw in cases:
        status, body = await post_raw(server.endpoint, KEY, payload, raw)
        assert status == 400, (payload, body)
        assert body["errors"][0]["extensions"]["code"] == 400
        assert "Traceback" not in json.dumps(body)


async def test_every_error_has_numeric_code(server: LocalServer) -> None:
    with pytest.raises(GqlError) as err:
        await post(server.endpoint, KEY, CREATE, {"createRunData": {"runInput": {"image": "x"}}})
    assert err.value.code == 400
    assert err.value.errors[0]["message"].startswith("Bad run request: command")


async def test_ws_protocol_errors_do_not_crash(server: LocalServer) -> None:
    client = WsClient(server.endpoint)
    await client.connect(KEY)
    try:
        with pytest.raises(GqlError) as err:
            await client.collect("subscription { nope }", {})
        assert err.value.errors[0]["extensions"]["code"] == 400
        await client.ws.send("not json")
        with pytest.raises(websockets.ConnectionClosed):
            await client.recv()
        assert client.ws.close_code == 4400
    finally:
        await client.close()
    # The server keeps serving afterwards.
    assert (await Api(server.endpoint, KEY).page())["runs"] == []
