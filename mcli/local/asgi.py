"""ASGI app on one path: GraphQL over HTTP POST and over websockets in both subprotocols.

Ariadne executes every operation; this module handles transport, authentication, the limits on what a request
may cost (`mcli.local.limits`) and error framing. Cheap refusals come first: the key is checked before the body is
read, the body size before it is parsed, the token count while parsing, and the cost before validation.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mcli.local.auth import Authenticator, AuthResult
from mcli.local.connections import ConnectionGuard
from mcli.local.fastpath import log_stream, runs_page
from mcli.local.limits import Limits, estimate_cost, introspection_list_sizes
from mcli.local.records import User
from mcli.local.schema import format_error

if TYPE_CHECKING:
    from collections.abc import Collection

    from graphql import DocumentNode, GraphQLError, GraphQLSchema
    from graphql.utilities.type_info import TypeInfo
    from graphql.validation import ASTValidationRule
    from starlette.responses import Response
    from starlette.types import Receive, Scope, Send
    from starlette.websockets import WebSocket

    from mcli.local.engine import Engine

log = logging.getLogger("mcli.local")
# One line per request at INFO (`mcli local serve --log-level info`); silent unless a handler is configured.
requests_log = logging.getLogger("mcli.local.requests")
# Ariadne logs every resolver error with a traceback; our formatter logs the unexpected ones itself.
_quiet = logging.getLogger("mcli.local.ariadne")
_quiet.addHandler(logging.NullHandler())
_quiet.propagate = False

LEGACY = "graphql-ws"
TRANSPORT = "graphql-transport-ws"
GRAPHQL_PATH = "/graphql"


@dataclass
class RequestStats:
    """What one server instance has received: a cheap counter for tests (no request sent means all stay 0)."""

    http_requests: int = 0
    ws_connections: int = 0
    ws_messages: int = 0

    @property
    def total(self) -> int:
        return self.http_requests + self.ws_connections + self.ws_messages


def _error(message: str, code: int) -> dict[str, Any]:
    return {"message": message, "extensions": {"code": code}}


def _key_from_header(value: str | None) -> str | None:
    if not value:
        return None
    value = value.strip()
    if value.lower().startswith("bearer "):
        value = value[7:].strip()
    return value or None


DOCUMENT_CACHE_SIZE = 256
# Clients send the same few small documents over and over; anything longer is parsed afresh and never kept.
MAX_CACHED_DOCUMENT_CHARS = 16 * 1024
# Operations asking for more runs than this execute one at a time, so normal requests interleave with them.
HEAVY_RUNS = 1_000


@dataclass
class Parsed:
    """A request ready to execute, or `failure` (an error result) when it is refused."""

    document: DocumentNode | None
    op_type: str = ""
    failure: dict[str, Any] = field(default_factory=dict)
    runs: int = 0


def _refused(message: str, code: int = 400) -> Parsed:
    return Parsed(None, failure={"errors": [_error(message, code)]})


class MapiApp:
    def __init__(
        self,
        schema: GraphQLSchema,
        engine: Engine,
        keepalive_seconds: float = 12.0,
        stats: RequestStats | None = None,
        limits: Limits | None = None,
        session_keys: dict[str, User] | None = None,
        guard: ConnectionGuard | None = None,
    ) -> None:
        self.schema = schema
        self.engine = engine
        self.keepalive_seconds = keepalive_seconds
        self.stats = stats if stats is not None else RequestStats()
        self.limits = limits or Limits()
        self.guard = guard or ConnectionGuard(self.limits)
        self.auth = Authenticator(engine.store, self.limits, session_keys)
        self._list_sizes = introspection_list_sizes(schema)
        self._documents: dict[str, DocumentNode] = {}
        self._validated: dict[int, tuple[DocumentNode, list[GraphQLError]]] = {}
        self._heavy = asyncio.Semaphore(1)
        # Set when the server starts shutting down: requests not yet executing are refused with 503.
        self.closing = False

    def authenticate(self, key: str | None, scope: Scope) -> AuthResult:
        client = scope.get("client")
        return self.auth.check(key, client[0] if client else None)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        from starlette.responses import JSONResponse
        from starlette.websockets import WebSocket

        if scope["type"] == "websocket":
            self.stats.ws_connections += 1
            ws = WebSocket(scope, receive, send)
            if scope["path"].rstrip("/") != GRAPHQL_PATH:
                await ws.close(code=4404)
                return
            await WsSession(self, ws).run()
        elif scope["type"] == "http":
            self.stats.http_requests += 1
            started = time.perf_counter()
            response, data, user = await self.handle_http(scope, receive)
            await response(scope, receive, send)
            if requests_log.isEnabledFor(logging.INFO):
                self.log_request(scope["method"], data, user, str(response.status_code), started)
        elif scope["type"] == "lifespan":
            # Started and stopped by LocalServer itself; acknowledge lifespan events without work.
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        else:
            await JSONResponse({"errors": [_error("Unsupported request", 400)]}, 400)(scope, receive, send)

    def log_request(self, method: str, data: Any, user: User | None, outcome: str, started: float) -> None:
        """`POST getRunsPaginated local@mcli.local 200 3.1 ms`: method, operation, user, outcome, duration."""
        elapsed = time.perf_counter() - started
        duration = f"{elapsed * 1000:.1f} ms" if elapsed < 10 else f"{elapsed:.1f} s"
        email = user.email if user is not None else "-"
        requests_log.info("%s %s %s %s %s", method, self.operation_name(data), email, outcome, duration)

    def operation_name(self, data: Any) -> str:
        """The request's operation name, else the name in its (already parsed) document, else `-`."""
        if not isinstance(data, dict):
            return "-"
        name = data.get("operationName")
        if isinstance(name, str) and name:
            return name[:100]
        query = data.get("query")
        document = self._documents.get(query) if isinstance(query, str) else None
        for definition in document.definitions if document is not None else ():
            definition_name = getattr(definition, "name", None)
            if definition_name is not None:
                return str(definition_name.value)
        return "-"

    async def handle_http(self, scope: Scope, receive: Receive) -> tuple[Response, Any, User | None]:
        """The response, the request's JSON body (None if unusable) and the authenticated user."""
        from starlette.datastructures import Headers

        if scope["path"].rstrip("/") != GRAPHQL_PATH:
            return _error_response(f"Not found: {scope['path']}", 404), None, None
        if scope["method"] != "POST":
            response = _error_response("Use POST for queries and mutations, a websocket for subscriptions", 405)
            return response, None, None
        headers = Headers(scope=scope)
        auth = self.authenticate(_key_from_header(headers.get("authorization")), scope)
        if auth.user is None:
            # Answered before the body is read; the connection closes so an unread body is never processed.
            retry = {"retry-after": str(max(1, round(auth.retry_after)))} if auth.status == 429 else {}
            return _error_response(auth.message, auth.status, close=True, headers=retry), None, None
        body = await self._read_body(headers, receive)
        if not isinstance(body, bytes):
            return body, None, auth.user
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return _error_response("The request body is not valid JSON", 400), None, auth.user
        parsed = self.parse(data, allow_subscription=False)
        if parsed.document is None:
            status = max(int(e["extensions"]["code"]) for e in parsed.failure["errors"])
            return _json_response(parsed.failure, status), data, auth.user
        async with self.turn(parsed):
            if self.off_loop(parsed):
                return await asyncio.to_thread(self._answer_sync, parsed, data, auth.user), data, auth.user
            return _answer(await self.execute_parsed(parsed, data, auth.user)), data, auth.user

    async def _read_body(self, headers: Any, receive: Receive) -> bytes | Response:
        """The request body, or the error response when it is too large or too slow to arrive."""
        cap = self.limits.max_request_bytes
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
            async with asyncio.timeout(self.limits.body_timeout_seconds):
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
                f"The request body did not arrive within {self.limits.body_timeout_seconds:g} s", 408, close=True
            )

    def parse(self, data: Any, allow_subscription: bool) -> Parsed:
        """Parse, select the operation and check its cost; validation and execution come later."""
        from ariadne.utils import get_operation_type
        from graphql import GraphQLError, get_operation_ast

        if not isinstance(data, dict) or not isinstance(data.get("query"), str):
            return _refused("The request needs a `query` string")
        variables = data.get("variables") or {}
        if not isinstance(variables, dict):
            return _refused("`variables` must be an object")
        if not isinstance(data.get("operationName") or "", str):
            return _refused("`operationName` must be a string")
        if len(data["query"]) > self.limits.max_query_chars:
            return _refused(
                f"The query document has {len(data['query']):,} characters; the limit is "
                f"{self.limits.max_query_chars:,} (pass large values as variables)"
            )
        try:
            document = self._parsed(data["query"])
            op_type = get_operation_type(document, data.get("operationName")).value
        except GraphQLError as error:
            return Parsed(None, failure={"errors": [format_error(error)]})
        if op_type == "subscription" and not allow_subscription:
            return _refused("Subscriptions are served over a websocket on this path")
        operation = get_operation_ast(document, data.get("operationName"))
        if operation is None:  # get_operation_type found it, so this is only for the type checker
            return _refused("Unknown operation")
        cost = estimate_cost(document, operation, variables, self._list_sizes)
        problem = cost.refusal(self.limits)
        if problem is not None:
            return _refused(problem)
        return Parsed(document, op_type, runs=cost.runs)

    def _parsed(self, query: str) -> DocumentNode:
        from graphql import parse

        if len(query) > MAX_CACHED_DOCUMENT_CHARS:
            return parse(query, max_tokens=self.limits.max_tokens)
        document = self._documents.get(query)
        if document is None:
            document = parse(query, max_tokens=self.limits.max_tokens)
            if len(self._documents) >= DOCUMENT_CACHE_SIZE:
                self._documents.clear()
            self._documents[query] = document
        return document

    def _validate(
        self,
        schema: GraphQLSchema,
        document_ast: DocumentNode,
        rules: Collection[type[ASTValidationRule]] | None = None,
        max_errors: int | None = None,
        type_info: TypeInfo | None = None,
    ) -> list[GraphQLError]:
        from graphql import validate

        if document_ast.loc is None or document_ast.loc.end > MAX_CACHED_DOCUMENT_CHARS:
            return validate(schema, document_ast, rules=rules, max_errors=max_errors)
        # Validation depends only on the (fixed) schema and the document, so cache it per cached document.
        cached = self._validated.get(id(document_ast))
        if cached is None or cached[0] is not document_ast:
            cached = (document_ast, validate(schema, document_ast, rules=rules, max_errors=max_errors))
            if len(self._validated) >= DOCUMENT_CACHE_SIZE:
                self._validated.clear()
            self._validated[id(document_ast)] = cached
        return cached[1]


    def turn(self, parsed: Parsed) -> contextlib.AbstractAsyncContextManager[object]:
        """Hold while executing `parsed` and rendering its answer. Both are synchronous once they start, so
        operations asking for many runs take turns, one at a time, and small requests run in between."""
        return self._heavy if parsed.runs > HEAVY_RUNS else contextlib.nullcontext()

    @staticmethod
    def off_loop(parsed: Parsed) -> bool:
        """Whether `parsed` runs in a worker thread: a query for many runs takes long enough in Python to stall
        every other client if it ran on the loop. Queries only read the store, whose SQLite connection is
        serialized (sqlite3.threadsafety 3); the turn (`turn`) lets one such query run at a time."""
        return parsed.op_type == "query" and parsed.runs > HEAVY_RUNS

    def _answer_sync(self, parsed: Parsed, data: Any, user: User | None) -> Response:
        """The whole answer to a query, rendered, in a worker thread."""
        return _answer(self.execute_sync(parsed, data, user))

    def execute_sync(self, parsed: Parsed, data: Any, user: User | None) -> dict[str, Any]:
        """`execute_parsed` for a query, without the event loop (for a worker thread)."""
        from ariadne import graphql_sync

        if self.closing:
            return {"errors": [_error("The server is shutting down", 503)]}
        context = {"user": user, "engine": self.engine}
        fast = self._fast_page(parsed, data, context)
        if fast is not None:
            return fast
        _, result = graphql_sync(
            self.schema,
            data,
            context_value=context,
            query_document=parsed.document,
            debug=False,
            logger=_quiet.name,
            error_formatter=format_error,
            query_validator=self._validate,
        )
        return dict(result)

    def _fast_page(self, parsed: Parsed, data: Any, context: dict[str, Any]) -> dict[str, Any] | None:
        document = parsed.document
        if parsed.op_type == "query" and document is not None and not self._validate(self.schema, document):
            # Listings skip graphql-core's per-field executor (same JSON; it steps aside for edge cases).
            return runs_page(self.schema, document, data, context)
        return None

    async def execute_parsed(self, parsed: Parsed, data: Any, user: User | None) -> dict[str, Any]:
        from ariadne import graphql

        if self.closing:
            return {"errors": [_error("The server is shutting down", 503)]}
        context = {"user": user, "engine": self.engine}
        fast = self._fast_page(parsed, data, context)
        if fast is not None:
            return fast
        _, result = await graphql(
            self.schema,
            data,
            context_value=context,
            query_document=parsed.document,
            debug=False,
            logger=_quiet.name,
            error_formatter=format_error,
            query_validator=self._validate,
        )
        return dict(result)


def _answer(result: dict[str, Any]) -> Response:
    """The HTTP response for an execution result: 200, or the highest error code when there is no data."""
    status = 200
    errors = result.get("errors")
    if errors and result.get("data") is None:
        status = max(int(e["extensions"]["code"]) for e in errors)
    return _json_response(result, status)


def _json_response(content: Any, status: int, headers: dict[str, str] | None = None) -> Response:
    from starlette.responses import JSONResponse

    return JSONResponse(content, status, headers=headers)


def _error_response(
    message: str, code: int, *, close: bool = False, headers: dict[str, str] | None = None
) -> Response:
    extra = dict(headers or {})
    if close:
        extra["connection"] = "close"
    return _json_response({"errors": [_error(message, code)]}, code, extra)


class WsSession:
    """One websocket connection in either subprotocol, chosen in the client's order of preference."""

    def __init__(self, app: MapiApp, ws: WebSocket) -> None:
        self.app = app
        self.ws = ws
        offered = [p.strip() for p in ws.scope.get("subprotocols", [])]
        self.offered_any = bool(offered)
        # A client that offers nothing gets the legacy protocol, which is what gql assumes in that case.
        self.protocol = next((p for p in offered if p in (LEGACY, TRANSPORT)), LEGACY)
        self.auth = app.authenticate(_key_from_header(ws.headers.get("authorization")), ws.scope)
        self.initialised = False
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.send_lock = asyncio.Lock()
        self.closed = False
        self.cut_off = False
        self._init_deadline: asyncio.Task[None] | None = None

    @property
    def user(self) -> User | None:
        return self.auth.user

    async def send(self, message: dict[str, Any]) -> None:
        if self.closed:
            return
        async with self.send_lock:
            try:
                await self.ws.send_text(json.dumps(message))
            except Exception:  # the peer went away; the receive loop notices and cleans up
                self.closed = True

    async def close(self, code: int) -> None:
        if not self.closed:
            self.closed = True
            with contextlib.suppress(Exception):
                await self.ws.close(code=code)

    async def run(self) -> None:
        from starlette.websockets import WebSocketDisconnect

        # Until it initialises, the socket may be cut off to make room for a new connection.
        self.app.guard.await_init(self, self._cut_off)
        await self.ws.accept(subprotocol=self.protocol if self.offered_any else None)
        keepalive = asyncio.create_task(self._keepalive())
        init_deadline = self._init_deadline = asyncio.create_task(self._require_init())
        try:
            while not self.closed:
                text = await self.ws.receive_text()
                self.app.stats.ws_messages += 1
                try:
                    message = json.loads(text)
                except (ValueError, RecursionError):
                    message = None
                if not isinstance(message, dict) or not isinstance(message.get("type"), str):
                    await self.close(4400)
                    break
                await self.dispatch(message)
        except (WebSocketDisconnect, RuntimeError, KeyError):
            # RuntimeError/KeyError: a disconnect raced with receive, or a binary frame arrived.
            pass
        finally:
            self.closed = True
            self.app.guard.gone(self)
            keepalive.cancel()
            init_deadline.cancel()
            for task in list(self.tasks.values()):
                task.cancel()
            await asyncio.gather(keepalive, init_deadline, *self.tasks.values(), return_exceptions=True)

    def _cut_off(self) -> None:
        self.cut_off = True
        if self._init_deadline is not None:
            self._init_deadline.cancel()

    async def _require_init(self) -> None:
        """Close a socket that has not sent `connection_init` in time: 4408, as graphql-transport-ws specifies.
        The same happens at once when this task is cancelled by the connection guard to make room.

        The legacy protocol has no code for it; it gets a `connection_error` message first, then the same close.
        """
        if not self.cut_off:
            with contextlib.suppress(asyncio.CancelledError):  # cancelled: cut off early to make room
                await asyncio.sleep(self.app.limits.connection_init_timeout_seconds)
        if self.initialised or self.closed:
            return
        if self.protocol == LEGACY:
            await self.send({"type": "connection_error", "payload": {"message": "Connection initialisation timeout"}})
        await self.close(4408)
        # Closing the socket ends the receive loop in `run`, which cleans up.

    async def _keepalive(self) -> None:
        interval = self.app.keepalive_seconds
        while not self.closed:
            await asyncio.sleep(interval)
            if self.initialised:
                await self.send({"type": "ka"} if self.protocol == LEGACY else {"type": "ping"})

    async def dispatch(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        op_id = message.get("id")
        if kind == "connection_init":
            if self.initialised and self.protocol == TRANSPORT:
                await self.close(4429)  # too many initialisation requests
                return
            payload = message.get("payload")
            if isinstance(payload, dict):
                key = _key_from_header(payload.get("Authorization") or payload.get("authorization"))
                if key is not None:
                    self.auth = self.app.authenticate(key, self.ws.scope)
            # Never refuse here: clients retry a refused connection forever. Auth errors go per subscription.
            self.initialised = True
            self.app.guard.initialised(self)
            await self.send({"type": "connection_ack"})
            if self.protocol == LEGACY:
                await self.send({"type": "ka"})
        elif kind == "ping" and self.protocol == TRANSPORT:
            await self.send({"type": "pong"})
        elif kind in ("pong", "ka"):
            return
        elif kind in ("subscribe", "start"):
            if not isinstance(op_id, str) or not op_id:
                await self.close(4400)
                return
            if self.protocol == TRANSPORT and not self.initialised:
                await self.close(4401)
                return
            if op_id in self.tasks:
                if self.protocol == TRANSPORT:
                    await self.close(4409)
                else:
                    await self.send_error(op_id, [_error(f"Operation id {op_id} is already in use", 400)])
                return
            if self.user is None:
                # Refused before the payload is parsed, like an HTTP request without a valid key.
                await self.send_error(op_id, [_error(self.auth.message, self.auth.status or 401)])
                return
            limit = self.app.limits.max_operations_per_socket
            if len(self.tasks) >= limit:
                await self.send_error(
                    op_id, [_error(f"At most {limit} operations may run at once on one websocket", 429)]
                )
                return
            self.tasks[op_id] = asyncio.create_task(self.operate(op_id, message.get("payload")))
        elif kind in ("complete", "stop"):
            task = self.tasks.pop(op_id, None) if isinstance(op_id, str) else None
            if task is not None:
                task.cancel()
        elif kind == "connection_terminate":
            await self.close(1000)
        else:
            await self.close(4400)

    async def send_data(self, op_id: str, payload: dict[str, Any]) -> None:
        await self.send(
            {"type": "next" if self.protocol == TRANSPORT else "data", "id": op_id, "payload": payload}
        )

    async def send_error(self, op_id: str, errors: list[dict[str, Any]]) -> None:
        # graphql-transport-ws sends a list of errors; the legacy protocol a single error object.
        payload: Any = errors if self.protocol == TRANSPORT else errors[0]
        await self.send({"type": "error", "id": op_id, "payload": payload})

    async def operate(self, op_id: str, data: Any) -> None:
        completed = False
        started = time.perf_counter()
        outcome = "cancelled"  # the client unsubscribed or went away
        try:
            completed = await self._operate(op_id, data)
            outcome = "error" if completed else "complete"
        except asyncio.CancelledError:
            raise
        except Exception:
            outcome = "500"
            log.exception("websocket operation %s failed", op_id)
            await self.send_data(op_id, {"errors": [_error("Internal server error", 500)]})
        finally:
            if self.tasks.get(op_id) is asyncio.current_task():
                del self.tasks[op_id]
            if requests_log.isEnabledFor(logging.INFO):
                self.app.log_request("WS", data, self.user, outcome, started)
        if not completed:
            await self.send({"type": "complete", "id": op_id})

    async def _operate(self, op_id: str, data: Any) -> bool:
        """Run one operation; True when it already ended with an `error` message (no `complete` follows)."""
        from ariadne import subscribe

        parsed = self.app.parse(data, allow_subscription=True)
        if parsed.document is None:
            await self.send_error(op_id, parsed.failure["errors"])
            return True
        if parsed.op_type != "subscription":
            async with self.app.turn(parsed):
                if self.app.off_loop(parsed):
                    result = await asyncio.to_thread(self.app.execute_sync, parsed, data, self.user)
                else:
                    result = await self.app.execute_parsed(parsed, data, self.user)
                await self.send_data(op_id, result)
            return False
        context = {"user": self.user, "engine": self.app.engine}
        if not self.app._validate(self.app.schema, parsed.document):
            # Log followers skip graphql-core's per-event execution (same payloads; it steps aside otherwise).
            fast = await log_stream(self.app.schema, parsed.document, data, context)
            if fast is not None:
                try:
                    async for message in fast:
                        await self.send_data(op_id, message)
                        if self.closed:
                            break
                finally:
                    await fast.aclose()
                return False
        _, stream = await subscribe(
            self.app.schema,
            data,
            context_value=context,
            query_document=parsed.document,
            debug=False,
            logger=_quiet.name,
            error_formatter=format_error,
            query_validator=self.app._validate,
        )
        if isinstance(stream, list):
            await self.send_error(op_id, stream)
            return True
        results = stream
        try:
            async for item in results:
                payload: dict[str, Any] = {"data": item.data}
                if item.errors:
                    payload["errors"] = [format_error(e) for e in item.errors]
                await self.send_data(op_id, payload)
                if self.closed:
                    break
        finally:
            await results.aclose()
        return False
