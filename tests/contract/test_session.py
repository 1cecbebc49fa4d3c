"""The session core against a real HTTP server on 127.0.0.1: keep-alive, retries, timeouts, the loop thread."""

import asyncio
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web

from mcli.core import loop
from mcli.core.errors import APIConnectionError, NotFoundError
from mcli.core.retry import RetryPolicy
from mcli.core.session import AsyncSession

QUERY = "query Q { __typename }"
MUTATION = "mutation M { __typename }"
FAST = RetryPolicy(max_attempts=4, initial_delay=0.01, max_delay=0.02)

Handler = Callable[[web.Request], Any]


class FakeMAPI:
    """Answers each POST with the next scripted reply; records peers and requests."""

    def __init__(self) -> None:
        self.replies: list[Handler] = []
        self.requests: list[dict[str, Any]] = []
        self.peers: set[Any] = set()
        self.cancelled = 0
        self.url = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.peers.add(request.transport.get_extra_info("peername") if request.transport else None)
        self.requests.append({"headers": dict(request.headers), "body": await request.json()})
        reply = self.replies.pop(0) if self.replies else ok
        try:
            return await reply(request)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise


async def ok(request: web.Request) -> web.StreamResponse:
    return web.json_response({"data": {"__typename": "Query"}})


def status(code: int) -> Handler:
    async def reply(request: web.Request) -> web.StreamResponse:
        return web.Response(status=code, text="upstream trouble")

    return reply


def graphql_error(code: int) -> Handler:
    async def reply(request: web.Request) -> web.StreamResponse:
        return web.json_response({"errors": [{"message": "nope", "extensions": {"code": code}}]})

    return reply


def slow(seconds: float) -> Handler:
    async def reply(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(seconds)
        return await ok(request)

    return reply


@pytest.fixture
async def fake() -> AsyncIterator[FakeMAPI]:
    mapi = FakeMAPI()
    app = web.Application()
    app.router.add_post("/graphql", mapi.handle)
    runner = web.AppRunner(app, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    mapi.url = f"http://127.0.0.1:{port}/graphql"
    yield mapi
    await runner.cleanup()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_one_keep_alive_connection_for_many_calls(fake: FakeMAPI) -> None:
    session = AsyncSession(fake.url, "key-1")
    for _ in range(20):
        assert await session.execute(QUERY, "Q", {}) == {"__typename": "Query"}
    await session.close()
    assert len(fake.peers) == 1
    assert fake.requests[0]["headers"]["Authorization"] == "key-1"


async def test_query_retries_gateway_errors_then_succeeds(fake: FakeMAPI) -> None:
    fake.replies = [status(503), status(502), status(429)]
    session = AsyncSession(fake.url, "k", retry=FAST)
    assert await session.execute(QUERY, "Q", {}) == {"__typename": "Query"}
    assert len(fake.requests) == 4
    await session.close()


async def test_graphql_errors_are_never_retried(fake: FakeMAPI) -> None:
    fake.replies = [graphql_error(503)]
    session = AsyncSession(fake.url, "k", retry=FAST)
    with pytest.raises(APIConnectionError) as caught:
        await session.execute(QUERY, "Q", {})
    assert caught.value.status == 503 and len(fake.requests) == 1
    fake.replies = [graphql_error(404)]
    with pytest.raises(NotFoundError):
        await session.execute(QUERY, "Q", {})
    assert len(fake.requests) == 2
    await session.close()


async def test_mutation_is_not_blindly_repeated(fake: FakeMAPI) -> None:
    session = AsyncSession(fake.url, "k", retry=FAST)
    fake.replies = [status(502)]  # the mutation may have run behind the gateway
    with pytest.raises(APIConnectionError):
        await session.execute(MUTATION, "M", {})
    assert len(fake.requests) == 1
    fake.replies = [status(503)]  # not processed: safe to send again
    assert await session.execute(MUTATION, "M", {}) == {"__typename": "Query"}
    assert len(fake.requests) == 3
    fake.replies = [status(502)]  # the caller vouches that repeating is safe
    assert await session.execute(MUTATION, "M", {}, idempotent=True) == {"__typename": "Query"}
    await session.close()


async def test_connection_refused_is_retried_then_reported() -> None:
    session = AsyncSession(f"http://127.0.0.1:{free_port()}/graphql", "k", retry=FAST)
    started = time.monotonic()
    with pytest.raises(APIConnectionError) as caught:
        await session.execute(MUTATION, "M", {})
    assert caught.value.status == 503 and "unable to connect" in caught.value.message
    assert time.monotonic() - started < 5
    await session.close()


async def test_timeout_cancels_the_request(fake: FakeMAPI) -> None:
    fake.replies = [slow(5)]
    session = AsyncSession(fake.url, "k")
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await session.execute(QUERY, "Q", {}, timeout=0.3)
    assert time.monotonic() - started < 2
    for _ in range(50):
        if fake.cancelled:
            break
        await asyncio.sleep(0.02)
    assert fake.cancelled == 1  # the server saw the request go away
    await session.close()


def test_background_loop_serves_many_threads_and_a_running_loop() -> None:
    results: list[int] = []

    async def work(value: int) -> int:
        await asyncio.sleep(0.01)
        return value

    threads = [threading.Thread(target=lambda v=v: results.append(loop.run(work(v)))) for v in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == list(range(50))

    async def inside_a_notebook() -> int:
        return loop.run(work(7))  # a sync call made while this thread runs its own loop

    assert asyncio.run(inside_a_notebook()) == 7
    futures = [loop.submit(work(v)) for v in range(200)]
    assert [f.result(timeout=5) for f in futures] == list(range(200))


async def test_request_body_is_plain_json(fake: FakeMAPI) -> None:
    # The body carries query, variables and operationName only.
    session = AsyncSession(fake.url, "k")
    await session.execute(QUERY, "Q", {"a": 1})
    await session.close()
    body = fake.requests[0]["body"]
    assert json.loads(json.dumps(body))["variables"] == {"a": 1}
    assert set(body) <= {"query", "variables", "operationName"}
