"""GraphQL over HTTP POST: the key checked before the body is read, the body size before it is parsed, then the
answer as JSON with the status the errors call for."""

from __future__ import annotations

import asyncio
import gc
import json
from typing import TYPE_CHECKING, Any

from mcli.local import fastjson
from mcli.local.asgi.base import GRAPHQL_PATH, graphql_error, key_from_header
from mcli.local.records import User

if TYPE_CHECKING:
    from starlette.responses import Response
    from starlette.types import Receive, Scope

    from mcli.local.asgi.app import MapiApp, Parsed


async def handle_http(app: MapiApp, scope: Scope, receive: Receive) -> tuple[Response, Any, User | None]:
    """The response, the request's JSON body (None if unusable) and the authenticated user."""
    from starlette.datastructures import Headers

    if scope["path"].rstrip("/") != GRAPHQL_PATH:
        return _error_response(f"Not found: {scope['path']}", 404), None, None
    if scope["method"] != "POST":
        response = _error_response("Use POST for queries and mutations, a websocket for subscriptions", 405)
        return response, None, None
    headers = Headers(scope=scope)
    auth = app.authenticate(key_from_header(headers.get("authorization")), scope)
    if auth.user is None:
        # Answered before the body is read; the connection closes so an unread body is never processed.
        retry = {"retry-after": str(max(1, round(auth.retry_after)))} if auth.status == 429 else {}
        return _error_response(auth.message, auth.status, close=True, headers=retry), None, None
    body = await _read_body(app, headers, receive)
    if not isinstance(body, bytes):
        return body, None, auth.user
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return _error_response("The request body is not valid JSON", 400), None, auth.user
    parsed = app.parse(data, allow_subscription=False)
    if parsed.document is None:
        status = max(int(e["extensions"]["code"]) for e in parsed.failure["errors"])
        return _json_response(parsed.failure, status), data, auth.user
    async with app.turn(parsed):
        if app.off_loop(parsed):
            return await asyncio.to_thread(_answer_sync, app, parsed, data, auth.user), data, auth.user
        return _answer(await app.execute_parsed(parsed, data, auth.user)), data, auth.user


async def _read_body(app: MapiApp, headers: Any, receive: Receive) -> bytes | Response:
    """The request body, or the error response when it is too large or too slow to arrive."""
    cap = app.limits.max_request_bytes
    too_large = _error_response(
        f"The request body is larger than this server's limit of {cap:,} bytes (--max-request-bytes)",
        413,
        close=True,
    )
    declared = headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > cap:
        return too_large
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(app.limits.body_timeout_seconds):
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return _error_response("The client went away", 400, close=True)
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > cap:
                    return too_large
                chunks.append(chunk)
                if not message.get("more_body", False):
                    return b"".join(chunks)
    except TimeoutError:
        return _error_response(
            f"The request body did not arrive within {app.limits.body_timeout_seconds:g} s", 408, close=True
        )


def _answer_sync(app: MapiApp, parsed: Parsed, data: Any, user: User | None) -> Response:
    """The whole answer to a query for many runs, rendered, in a worker thread.

    The cyclic garbage collector is off meanwhile. A 10,000-run answer allocates about half a million dicts,
    lists and records, none in a cycle (reference counting frees them all): left on, the collector ran hundreds
    of times over them, a quarter of the answer's time. It is turned back on once they are freed, so their
    count no longer calls for a collection. The work is bounded (the page size) and such queries take turns
    (`MapiApp.turn`), so the pause is short and never nested."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        result = app.execute_sync(parsed, data, user)
        response = _answer(result)
        del result
        return response
    finally:
        if enabled:
            gc.enable()


def _answer(result: dict[str, Any]) -> Response:
    """The HTTP response for an execution result: 200, or the highest error code when there is no data."""
    status = 200
    errors = result.get("errors")
    if errors and result.get("data") is None:
        status = max(int(e["extensions"]["code"]) for e in errors)
    return _json_response(result, status)


def _json_response(content: Any, status: int, headers: dict[str, str] | None = None) -> Response:
    from starlette.responses import Response

    return Response(fastjson.dumps(content), status, headers=headers, media_type="application/json")


def _error_response(
    message: str, code: int, *, close: bool = False, headers: dict[str, str] | None = None
) -> Response:
    extra = dict(headers or {})
    if close:
        extra["connection"] = "close"
    return _json_response({"errors": [graphql_error(message, code)]}, code, extra)
