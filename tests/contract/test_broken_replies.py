"""A matrix of broken server replies: each raises a MAPIException subclass whose message says what was wrong.

A small fake MAPI (aiohttp on 127.0.0.1) answers the SDK's real calls with one scripted reply each; nothing raw
(pydantic's ValidationError, IndexError, KeyError, AssertionError) ever reaches the caller.
"""

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from aiohttp import web

import mcli
from mcli import RunConfig
from mcli.core.errors import (
    APIConnectionError,
    AuthenticationError,
    InternalServerError,
    MalformedResponseError,
    MAPIException,
    MCLIException,
    OutcomeUnknownError,
    RateLimitError,
)

Reply = Callable[[dict[str, Any]], web.StreamResponse]
RUN = {
    "id": "r1",
    "name": "r1",
    "status": "RUNNING",
    "createdAt": "2026-01-01T00:00:00+00:00",
    "updatedAt": "2026-01-01T00:00:00+00:00",
    "reason": None,
    "createdByEmail": "a@b.c",
    "priority": "auto",
    "maxRetries": None,
    "preemptible": False,
    "retryOnSystemFailure": False,
    "isDeleted": False,
    "runType": "TRAINING",
    "maxDurationSeconds": None,
    "resumptions": [],
}


class FakeMAPI:
    """Answers every POST with `reply(body)`; the websocket path is not served."""

    def __init__(self) -> None:
        self.reply: Reply = lambda body: web.json_response({"data": {}})
        self.requests: list[dict[str, Any]] = []
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        return self.reply(body)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/graphql", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/graphql"

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Iterator[FakeMAPI]:
    mapi = FakeMAPI()
    mapi.start()
    monkeypatch.setenv("MOSAICML_API_ENDPOINT", mapi.url)
    monkeypatch.setenv("MOSAICML_API_KEY", "k")
    monkeypatch.setenv("MCLI_CONFIG_DIR", str(tmp_path))
    yield mapi
    mapi.stop()


def data(payload: Any) -> Reply:
    return lambda body: web.json_response(payload)


def text(status: int, body: str, **headers: str) -> Reply:
    return lambda _: web.Response(status=status, text=body, headers=headers)


def page(runs: Any) -> dict[str, Any]:
    return {"data": {"getRunsPaginated": {"cursor": None, "hasNextPage": False, "runs": runs}}}


CREATE = lambda: mcli.create_run(RunConfig(name="x", image="i", command="true"))  # noqa: E731
INTERACTIVE = lambda: mcli.create_interactive_run(RunConfig(name="x", image="i"))  # noqa: E731
LIST = lambda: mcli.get_runs(timeout=5)  # noqa: E731

# (id, call, reply, expected class, words the message must contain)
CASES: list[tuple[str, Callable[[], Any], Reply, type[MAPIException], tuple[str, ...]]] = [
    ("data-null", LIST, data({"data": None}), MalformedResponseError, ("no data", "null")),
    ("no-data-key", LIST, data({"extensions": {}}), MalformedResponseError, ("no data", "missing")),
    ("not-an-object", LIST, data([1, 2]), MalformedResponseError, ("not graphql json",)),
    (
        "missing-field",
        LIST,
        data(page([{k: v for k, v in RUN.items() if k != "name"}])),
        MalformedResponseError,
        ("getrunspaginated", "runs[0].name", "field required"),
    ),
    (
        "object-for-list",
        LIST,
        data(page(RUN)),
        MalformedResponseError,
        ("getrunspaginated", "runs should be a list"),
    ),
    (
        "wrong-type",
        LIST,
        data(page([{**RUN, "createdAt": 5}])),
        MalformedResponseError,
        ("runs[0].createdat",),
    ),
    (
        "create-empty-list",
        CREATE,
        data({"data": {"createRun": []}}),
        MalformedResponseError,
        ("createrun", "empty list"),
    ),
    (
        "interactive-empty-list",
        INTERACTIVE,
        data({"data": {"createInteractiveRun": []}}),
        MalformedResponseError,
        ("createinteractiverun", "empty list"),
    ),
    (
        "create-missing-field",
        CREATE,
        data({"data": {"createRun": [{k: v for k, v in RUN.items() if k != "status"}]}}),
        MalformedResponseError,
        ("create_run", "createrun.0.status", "field required"),
    ),
    (
        "interactive-wrong-type",
        INTERACTIVE,
        data({"data": {"createInteractiveRun": [{**RUN, "updatedAt": []}]}}),
        MalformedResponseError,
        ("create_interactive_run", "createinteractiverun.0.updatedat"),
    ),
    (
        "create-object",
        CREATE,
        data({"data": {"createRun": {"bogus": 1}}}),
        MalformedResponseError,
        ("create_run", "createrun"),
    ),
    (
        "401-html",
        LIST,
        text(401, "<html>Unauthorized</html>"),
        AuthenticationError,
        ("401", "mosaicml_api_key"),
    ),
    (
        "500-html",
        LIST,
        text(500, "<html><h1>Internal error</h1></html>"),
        InternalServerError,
        ("500", "internal error"),
    ),
    ("200-not-json", LIST, text(200, "hello"), MalformedResponseError, ("not graphql json", "hello")),
    ("200-empty", LIST, text(200, ""), MalformedResponseError, ("empty body",)),
    (
        "errors-not-list",
        LIST,
        data({"errors": {"message": "x"}, "data": None}),
        MalformedResponseError,
        ("no data",),
    ),
    (
        "error-extensions-odd",
        LIST,
        data({"errors": [{"message": "boom", "extensions": "x"}]}),
        InternalServerError,
        ("boom",),
    ),
    # JSON nested deeper than Python's stack: json.loads raises RecursionError, which must not escape.
    ("nested-too-deep", LIST, text(200, "[" * 100_000 + "]" * 100_000), MalformedResponseError, ("not graphql json",)),
    # A GraphQL error without a numeric code takes the HTTP status it came with.
    (
        "graphql-429",
        LIST,
        lambda _: web.json_response({"errors": [{"message": "slow down"}]}, status=429, headers={"Retry-After": "0"}),
        RateLimitError,
        ("429", "slow down"),
    ),
]


@pytest.mark.parametrize(
    ("call", "reply", "expected", "words"), [pytest.param(c, r, e, w, id=i) for i, c, r, e, w in CASES]
)
def test_broken_reply_raises_a_mapi_exception_saying_what_was_wrong(
    fake: FakeMAPI,
    call: Callable[[], Any],
    reply: Reply,
    expected: type[MAPIException],
    words: tuple[str, ...],
) -> None:
    fake.reply = reply
    with pytest.raises(MCLIException) as caught:
        call()
    assert isinstance(caught.value, expected), repr(caught.value)
    message = str(caught.value).lower()
    for word in words:
        assert word in message, f"{caught.value} does not say {word!r}"


def test_5xx_from_a_proxy_is_retried_then_reported_with_its_body(fake: FakeMAPI) -> None:
    fake.reply = text(503, "upstream down", **{"Retry-After": "0"})
    with pytest.raises(APIConnectionError) as caught:
        mcli.get_runs(timeout=10)
    assert len(fake.requests) == 4  # retried: a query is safe to repeat
    assert "503" in str(caught.value) and "upstream down" in str(caught.value)


def test_a_rate_limit_with_a_graphql_body_is_retried(fake: FakeMAPI) -> None:
    fake.reply = lambda _: web.json_response(
        {"errors": [{"message": "slow down"}]}, status=429, headers={"Retry-After": "0"}
    )
    with pytest.raises(RateLimitError, match="slow down"):
        mcli.get_runs(timeout=10)
    assert len(fake.requests) == 4  # a 429 is "not now", whatever its body says


def test_request_id_is_kept(fake: FakeMAPI) -> None:
    fake.reply = lambda _: web.json_response(
        {"errors": [{"message": "nope", "extensions": {"code": 404}}]}, headers={"X-Request-Id": "req-123"}
    )
    with pytest.raises(MAPIException) as caught:
        mcli.get_runs()
    assert caught.value.request_id == "req-123" and "req-123" in str(caught.value)


def test_a_repeated_cursor_is_a_server_error(fake: FakeMAPI) -> None:
    fake.reply = data({"data": {"getRunsPaginated": {"cursor": "same", "hasNextPage": True, "runs": [RUN]}}})
    with pytest.raises(MalformedResponseError, match="cursor 'same' twice"):
        mcli.get_runs()


def test_conflict_suggests_leaving_the_name_unset(fake: FakeMAPI) -> None:
    fake.reply = data({"errors": [{"message": "Run x already exists", "extensions": {"code": 409}}]})
    with pytest.raises(mcli.ConflictError, match="leave the run's name unset"):
        CREATE()


def test_json_bodies_are_read_whatever_the_status(fake: FakeMAPI) -> None:
    fake.reply = lambda _: web.json_response(
        {"errors": [{"message": "bad key", "extensions": {"code": 401}}]}, status=401
    )
    with pytest.raises(AuthenticationError, match="bad key"):
        LIST()
    assert json.loads(json.dumps(fake.requests[0]))["operationName"] == "GetRunsPaginated"


def test_a_change_whose_reply_is_lost_is_not_sent_again(fake: FakeMAPI) -> None:
    def reply(body: dict[str, Any]) -> web.StreamResponse:
        if body["operationName"] == "GetRunsPaginated":
            return web.json_response(page([RUN]))
        return web.Response(status=502, text="bad gateway")  # the change may have run behind the gateway

    fake.reply = reply
    with pytest.raises(OutcomeUnknownError) as caught:
        mcli.stop_runs(["r1"])
    assert [body["operationName"] for body in fake.requests] == ["GetRunsPaginated", "StopRuns"]
    message = str(caught.value)
    assert "502" in message and "whether StopRuns took effect is unknown" in message and "not sent again" in message


def test_an_answer_the_fast_json_parser_refuses_is_read_as_before(fake: FakeMAPI) -> None:
    # pydantic-core's parser stops at 200 levels of nesting and at a lone surrogate escape, which json.loads
    # accepts: such an answer is valid JSON, and it must read as it always did.
    deep: Any = "bottom"
    for _ in range(300):
        deep = [deep]
    details = {"image": "i", "originalRunInput": None, "metadata": {"deep": deep}, "lastExecutionId": None,
               "lifecycle": [], "nodes": [], "formattedRunEvents": []}  # fmt: skip
    fake.reply = text(200, json.dumps(page([{**RUN, "reason": "half \ud800 a pair", "details": details}])))
    (run,) = LIST()
    assert run.reason == "half \ud800 a pair"
    assert run.metadata == {"deep": deep} and run.image == "i"
