"""Connection limits against a real server process with small limits: slow headers, a connection flood, silent
websockets, oversized websocket messages and failed-key throttling. Every flood is bounded in count and time."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Callable

import pytest
import websockets

from .conftest import KEY, NORMAL_QUERY, Probe, Server, post, report

LIMITS = {
    "header_timeout_seconds": 1.0,
    "connection_init_timeout_seconds": 1.0,
    "max_connections": 200,
    "auth_failure_burst": 20,
    "auth_failures_per_second": 5.0,
    "max_request_bytes": 64 * 1024,
}


@pytest.fixture
def server(start_server: Callable[..., Server]) -> Server:
    return start_server(LIMITS)


def _open_partial(port: int, count: int) -> list[socket.socket]:
    """`count` connections that each send half a request line and then nothing, 50 at a time (a burst larger
    than the whole connection cap inside one accept batch would leave nothing older to evict)."""
    sockets = []
    for i in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(b"POST /graphql HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        sockets.append(sock)
        if i % 50 == 49:
            time.sleep(0.01)
    return sockets


def _closed_by_server(sock: socket.socket, wait: float) -> bool:
    sock.settimeout(wait)
    try:
        return sock.recv(1024) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False


def test_slow_headers_are_cut_off_and_a_flood_evicts_itself(server: Server) -> None:
    with Probe(server.port, interval=0.1) as probe:
        started = time.monotonic()
        # 3x the connection cap: each new one evicts the oldest still waiting for its headers.
        flood = _open_partial(server.port, 600)
        opened = time.monotonic() - started
        status, _ = post(server.port, NORMAL_QUERY)
        assert status == 200
        time.sleep(0.2)  # connections over the cap are cut off a moment after they arrive
        alive = [sock for sock in flood if not _closed_by_server(sock, 0.001)]
        time.sleep(1.5)  # past the header deadline
        survivors = [sock for sock in alive if not _closed_by_server(sock, 0.001)]
    for sock in flood:
        sock.close()
    probe.check()
    report(f"slow headers: 600 half-sent requests (cap 200) opened in {opened:.2f} s, {len(alive)} still open, "
           f"{len(survivors)} left after the 1 s header deadline; {probe.summary()}")
    assert len(alive) <= LIMITS["max_connections"]
    assert survivors == []


def test_busy_connections_beyond_the_cap_get_503(server: Server) -> None:
    async def scenario() -> tuple[int, bytes]:
        sockets = []
        try:
            for _ in range(LIMITS["max_connections"]):
                ws = await websockets.connect(server.endpoint.replace("http", "ws"), subprotocols=["graphql-transport-ws"])
                sockets.append(ws)
                await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": KEY}}))
                assert json.loads(await ws.recv())["type"] == "connection_ack"
            # Every slot is held by an initialised websocket: nothing to cut off, so the next connection gets 503.
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            await asyncio.sleep(0.2)  # over the cap is settled a moment after a connection arrives
            writer.write(b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
            response = await asyncio.wait_for(reader.read(), 5)  # to the end: the server closes it
            writer.close()
            return len(sockets), response
        finally:
            await asyncio.gather(*(ws.close() for ws in sockets))

    held, response = asyncio.run(scenario())
    assert response.startswith(b"HTTP/1.1 503"), response
    assert b"limit of 200 connections" in response
    status, _ = post(server.port, NORMAL_QUERY)  # served again once they are gone
    assert status == 200
    report(f"connection cap: {held} initialised websockets held, the next connection got 503 at once")


@pytest.mark.parametrize("protocol", ["graphql-transport-ws", "graphql-ws"])
def test_silent_websockets_are_closed_with_4408(server: Server, protocol: str) -> None:
    async def scenario() -> list[tuple[int | None, list[str]]]:
        async def silent() -> tuple[int | None, list[str]]:
            async with websockets.connect(server.endpoint.replace("http", "ws"), subprotocols=[protocol]) as ws:
                messages = []
                try:
                    async for message in ws:
                        messages.append(json.loads(message)["type"])
                except websockets.ConnectionClosed:
                    pass
                return ws.close_code, messages

        return await asyncio.wait_for(asyncio.gather(*(silent() for _ in range(100))), 15)

    with Probe(server.port, interval=0.1) as probe:
        started = time.monotonic()
        outcomes = asyncio.run(scenario())
        took = time.monotonic() - started
    probe.check()
    codes = {code for code, _ in outcomes}
    assert codes == {4408}, codes
    expected = ["connection_error"] if protocol == "graphql-ws" else []
    assert all(messages == expected for _, messages in outcomes)
    report(f"100 silent {protocol} websockets: all closed 4408 within {took:.1f} s (init timeout 1 s); "
           f"{probe.summary()}")


def test_websocket_messages_are_capped(server: Server) -> None:
    async def scenario() -> int | None:
        async with websockets.connect(server.endpoint.replace("http", "ws"), subprotocols=["graphql-transport-ws"],
                                      max_size=None) as ws:
            await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": KEY}}))
            await ws.recv()
            await ws.send(json.dumps({"type": "subscribe", "id": "1", "payload": {"query": "x" * 200_000}}))
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 5)
            return ws.close_code

    assert asyncio.run(scenario()) == 1009  # message too big


def test_failed_keys_are_throttled_per_address_but_known_keys_keep_working(server: Server) -> None:
    assert post(server.port, NORMAL_QUERY)[0] == 200  # the real key, seen before the attack
    statuses: list[int] = []
    started = time.monotonic()
    for i in range(300):
        statuses.append(post(server.port, NORMAL_QUERY, key=f"guess-{i:08d}-0123456789")[0])
    took = time.monotonic() - started
    assert statuses[:20] == [401] * 20 and statuses.count(429) >= 250, statuses
    during = post(server.port, NORMAL_QUERY)[0]
    status, body = post(server.port, NORMAL_QUERY, key="another-guess-0123456789")
    assert during == 200 and status == 429 and "retry in" in body["errors"][0]["message"]
    report(f"300 wrong keys in {took:.1f} s: {statuses.count(401)} got 401, {statuses.count(429)} got 429 "
           f"(burst 20, then 5/s); the real key still answered 200")
