"""The one async session core: HTTP with keep-alive, a websocket for subscriptions, retries, timeouts, errors.

Queries and mutations are POSTs over a keep-alive pool (`mcli.core.http`, on h11); subscriptions share one
websocket (`mcli.core.websocket`, on `websockets`) that speaks `graphql-transport-ws` and `graphql-ws`. Documents
are sent as written and answers are handed on as parsed JSON: nothing on the way parses GraphQL, so a cold command
pays for neither a GraphQL library nor a general-purpose HTTP client. A GraphQL error (the server answered) versus a
connection failure is the retry line.
"""

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from mcli.core.errors import APIConnectionError, InternalServerError, MAPIException, error_for_status
from mcli.core.http import ConnectFailed, ConnectionPool
from mcli.core.keys import check_transport_security, mask
from mcli.core.retry import NOT_PROCESSED_STATUSES, RETRYABLE_STATUSES, RetryPolicy

if TYPE_CHECKING:
    from mcli.core.websocket import GraphQLSocket

log = logging.getLogger("mcli")

CLIENT_HEADERS = {"x-mosaicml-client": "mcli-typed", "Content-Type": "application/json"}


def websocket_url(endpoint: str) -> str:
    if endpoint.startswith("https://"):
        return "wss://" + endpoint.removeprefix("https://")
    if endpoint.startswith("http://"):
        return "ws://" + endpoint.removeprefix("http://")
    return endpoint


def _payload(query: str, variables: dict[str, Any], operation_name: str | None) -> dict[str, Any]:
    payload: dict[str, Any] = {"query": query, "variables": variables}
    if operation_name:
        payload["operationName"] = operation_name
    return payload


class AsyncSession:
    """A connection to one MAPI endpoint with one API key, bound to the event loop that first uses it."""

    def __init__(self, endpoint: str, api_key: str, *, retry: RetryPolicy | None = None) -> None:
        check_transport_security(endpoint)
        self.endpoint = endpoint
        self.api_key = api_key
        self.retry = retry or RetryPolicy()
        self._http: ConnectionPool | None = None
        self._ws: GraphQLSocket | None = None
        self._ws_lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"AsyncSession(endpoint={self.endpoint!r}, api_key={mask(self.api_key)})"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": self.api_key, **CLIENT_HEADERS}

    async def execute(
        self,
        query: str,
        operation_name: str | None,
        variables: dict[str, Any],
        *,
        timeout: float | None = None,
        idempotent: bool | None = None,
    ) -> dict[str, Any]:
        """Run a query or mutation and return its `data`.

        Connection failures and 429/502/503/504 are retried with jittered backoff. A mutation that is not safe to
        repeat is retried only when the failure proves it never ran. `timeout` bounds all attempts and cancels the
        one in flight.
        """
        safe_to_repeat = idempotent if idempotent is not None else not query.lstrip().startswith("mutation")
        body = json.dumps(_payload(query, variables, operation_name)).encode()
        async with asyncio.timeout(timeout):
            attempt = 1
            while True:
                try:
                    return await self._post(body)
                except _Retryable as failure:
                    if attempt >= self.retry.max_attempts or not (safe_to_repeat or failure.not_processed):
                        raise failure.error from None
                    delay = self.retry.delay(attempt)
                    log.debug("retrying %s in %.2fs after: %s", operation_name, delay, failure.error)
                    await asyncio.sleep(delay)
                    attempt += 1

    async def _post(self, body: bytes) -> dict[str, Any]:
        if self._http is None:
            self._http = ConnectionPool(self.endpoint, self.headers)
        try:
            response = await self._http.post(body)
        except OSError as e:
            lost = APIConnectionError(503, f"unable to connect to MAPI at {self.endpoint}: {e}")
            raise _Retryable(lost, not_processed=isinstance(e, ConnectFailed)) from None
        try:
            result = json.loads(response.body)
        except ValueError:
            result = None
        # As MAPI's own clients do, a JSON answer is read whatever its HTTP status.
        if isinstance(result, dict) and result.get("errors"):
            errors = result["errors"]
            raise MAPIException.from_graphql_errors(
                errors if isinstance(errors, list) else [{"message": str(errors)}]
            )
        if isinstance(result, dict) and isinstance(result.get("data"), dict):
            data: dict[str, Any] = result["data"]
            return data
        text = response.body[:500].decode("utf-8", "replace")
        if response.status >= 400:
            error = error_for_status(
                response.status, f"{response.status}, message='{text}', url='{self.endpoint}'"
            )
            if response.status in RETRYABLE_STATUSES:
                raise _Retryable(error, not_processed=response.status in NOT_PROCESSED_STATUSES)
            raise error
        raise InternalServerError(500, f"malformed response from {self.endpoint}: {text!r}")

    async def subscribe(
        self,
        query: str,
        operation_name: str | None,
        variables: dict[str, Any],
        *,
        connect_timeout: float | None = 10.0,
    ) -> AsyncIterator[dict[str, Any]]:
        """Yield each `data` of a subscription over the shared websocket.

        A GraphQL error ends it with the mapped MAPIException (keeping `extensions.code`); a dropped connection ends
        it with APIConnectionError, and the next subscription opens a fresh websocket. Resuming is the caller's job,
        because only the caller knows where to resume from.
        """
        from mcli.core.websocket import SocketClosed, connection_lost

        async with asyncio.timeout(connect_timeout):
            socket = await self._ws_session()
        try:
            async for data in socket.subscribe(_payload(query, variables, operation_name)):
                yield data
        except SocketClosed as e:
            await self._drop_ws(socket)
            raise connection_lost(self.endpoint, e.reason) from None

    async def _ws_session(self) -> "GraphQLSocket":
        if self._ws is not None and self._ws.alive:
            return self._ws
        from websockets.exceptions import WebSocketException

        from mcli.core.websocket import GraphQLSocket, SocketClosed

        async with self._ws_lock:
            if self._ws is not None and not self._ws.alive:
                await self._drop_ws(self._ws)
            if self._ws is None:
                try:
                    self._ws = await GraphQLSocket.open(
                        websocket_url(self.endpoint), self.api_key, self.headers
                    )
                except (TimeoutError, SocketClosed, WebSocketException, OSError, ValueError) as e:
                    raise APIConnectionError(
                        503, f"unable to open a websocket to {self.endpoint}: {e}"
                    ) from None
            return self._ws

    async def _drop_ws(self, socket: "GraphQLSocket") -> None:
        if socket is not self._ws:
            return
        self._ws = None
        await socket.close()

    async def close(self) -> None:
        """Close the HTTP pool and the websocket."""
        http, self._http = self._http, None
        ws, self._ws = self._ws, None
        if http is not None:
            await http.close()
        if ws is not None:
            await ws.close()


class _Retryable(Exception):
    def __init__(self, error: MAPIException, *, not_processed: bool) -> None:
        super().__init__(str(error))
        self.error = error
        self.not_processed = not_processed
