"""The ASGI app: each connection to its handler (HTTP POST, websocket, lifespan), and what both handlers
need: authentication, parsing with the limits on what a request may cost (`mcli.local.limits`), validation and
execution by Ariadne, and the request log."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mcli.local.asgi.base import GRAPHQL_PATH, ariadne_log, graphql_error, requests_log
from mcli.local.asgi.graphql_transport_ws import GraphQLTransportWsSession
from mcli.local.asgi.graphql_ws import GraphQLWsSession
from mcli.local.asgi.http import handle_http
from mcli.local.asgi.websocket import WsSession
from mcli.local.auth import Authenticator, AuthResult
from mcli.local.connections import ConnectionGuard
from mcli.local.fastpath import runs_page
from mcli.local.limits import Limits, estimate_cost, introspection_list_sizes
from mcli.local.records import User
from mcli.local.schema import format_error

if TYPE_CHECKING:
    from collections.abc import Collection

    from graphql import DocumentNode, GraphQLError, GraphQLSchema
    from graphql.utilities.type_info import TypeInfo
    from graphql.validation import ASTValidationRule
    from starlette.types import Receive, Scope, Send
    from starlette.websockets import WebSocket

    from mcli.local.engine import Engine


@dataclass
class RequestStats:
    """What one server instance has received: a cheap counter for tests (no request sent means all stay 0)."""

    http_requests: int = 0
    ws_connections: int = 0
    ws_messages: int = 0

    @property
    def total(self) -> int:
        return self.http_requests + self.ws_connections + self.ws_messages


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
    return Parsed(None, failure={"errors": [graphql_error(message, code)]})


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
            await _session(self, ws).run()
        elif scope["type"] == "http":
            self.stats.http_requests += 1
            started = time.perf_counter()
            response, data, user = await handle_http(self, scope, receive)
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
            await JSONResponse({"errors": [graphql_error("Unsupported request", 400)]}, 400)(
                scope, receive, send
            )

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

    def execute_sync(self, parsed: Parsed, data: Any, user: User | None) -> dict[str, Any]:
        """`execute_parsed` for a query, without the event loop (for a worker thread)."""
        from ariadne import graphql_sync

        context = {"user": user, "engine": self.engine}
        answer = self._answer_without_executor(parsed, data, context)
        if answer is not None:
            return answer
        _, result = graphql_sync(self.schema, data, **self.execution_options(parsed, context))
        return dict(result)

    def _answer_without_executor(
        self, parsed: Parsed, data: Any, context: dict[str, Any]
    ) -> dict[str, Any] | None:
        """The answer when graphql-core's executor is not needed: the server is shutting down, or the query is a
        listing (which skips the per-field executor: same JSON; it steps aside for edge cases)."""
        if self.closing:
            return {"errors": [graphql_error("The server is shutting down", 503)]}
        document = parsed.document
        # Only an operation that lists runs can take the listing's fast path (the cost walk counted them).
        if parsed.runs and document is not None and not self._validate(self.schema, document):
            return runs_page(self.schema, document, data, context)
        return None

    def execution_options(self, parsed: Parsed, context: dict[str, Any]) -> dict[str, Any]:
        """How Ariadne runs every operation (queries, mutations and subscriptions alike)."""
        return {
            "context_value": context,
            "query_document": parsed.document,
            "debug": False,
            "logger": ariadne_log.name,
            "error_formatter": format_error,
            "query_validator": self._validate,
        }

    async def execute_parsed(self, parsed: Parsed, data: Any, user: User | None) -> dict[str, Any]:
        from ariadne import graphql

        context = {"user": user, "engine": self.engine}
        answer = self._answer_without_executor(parsed, data, context)
        if answer is not None:
            return answer
        _, result = await graphql(self.schema, data, **self.execution_options(parsed, context))
        return dict(result)


_SESSIONS: dict[str, type[WsSession]] = {
    session.protocol: session for session in (GraphQLTransportWsSession, GraphQLWsSession)
}


def _session(app: MapiApp, ws: WebSocket) -> WsSession:
    """A session in the first subprotocol the client offers that this server speaks. A client that offers
    none gets the legacy protocol, which is what gql assumes in that case."""
    offered = [p.strip() for p in ws.scope.get("subprotocols", [])]
    return next((_SESSIONS[p] for p in offered if p in _SESSIONS), GraphQLWsSession)(app, ws)
