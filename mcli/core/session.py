"""The one async session core: HTTP with keep-alive, a websocket for subscriptions, retries, timeouts, errors.

Built on gql: AIOHTTPTransport keeps one aiohttp connection pool per session; WebsocketsTransport multiplexes every
subscription over one websocket, offering `graphql-transport-ws` and `graphql-ws`. gql's TransportQueryError (the
server answered) versus connection failures is the retry line.
"""

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from gql import Client, GraphQLRequest
from gql.client import AsyncClientSession
from gql.transport.aiohttp import AIOHTTPTransport
from gql.transport.exceptions import (
    TransportClosed,
    TransportConnectionFailed,
    TransportError,
    TransportProtocolError,
    TransportQueryError,
    TransportServerError,
)
from gql.transport.websockets import WebsocketsTransport
from graphql import DocumentNode, parse
from websockets.exceptions import WebSocketException

from mcli.core.errors import APIConnectionError, InternalServerError, MAPIException, error_for_status
from mcli.core.retry import NOT_PROCESSED_STATUSES, RETRYABLE_STATUSES, RetryPolicy

log = logging.getLogger("mcli")

CLIENT_HEADERS = {"x-mosaicml-client": "mcli-typed", "Content-Type": "application/json"}
WS_PROTOCOLS = ["graphql-transport-ws", "graphql-ws"]
# A silent dead websocket is noticed within about PING_INTERVAL + PING_TIMEOUT seconds.
PING_INTERVAL = 10.0
PING_TIMEOUT = 10.0
# Log chunks are up to about 700 KiB of base64; leave headroom instead of failing on a big message.
MAX_WS_MESSAGE = 16 * 1024 * 1024


@functools.lru_cache(maxsize=64)
def _document(query: str) -> DocumentNode:
    return parse(query)


class _Request(GraphQLRequest):
    """A request that sends its query text as written; gql would re-print the parsed document on every call."""

    def __init__(self, query: str, variables: dict[str, Any], operation_name: str | None) -> None:
        super().__init__(_document(query), variable_values=variables, operation_name=operation_name)
        self._query = query

    @property
    def payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = {"query": self._query, "variables": self.variable_values or {}}
        if self.operation_name:
            payload["operationName"] = self.operation_name
        return payload


def websocket_url(endpoint: str) -> str:
    if endpoint.startswith("https://"):
        return "wss://" + endpoint.removeprefix("https://")
    if endpoint.startswith("http://"):
        return "ws://" + endpoint.removeprefix("http://")
    return endpoint


class _NotSent(Exception):
    """Marks a connection failure that happened before the request reached the server."""


class AsyncSession:
    """A connection to one MAPI endpoint with one API key, bound to the event loop that first uses it."""

    def __init__(self, endpoint: str, api_key: str, *, retry: RetryPolicy | None = None) -> None:
        self.endpoint = endpoint
        self.api_key = api_key
        self.retry = retry or RetryPolicy()
        self._http: AsyncClientSession | None = None
        self._http_client: Client | None = None
        self._ws: AsyncClientSession | None = None
        self._ws_client: Client | None = None
        self._http_lock = asyncio.Lock()
        self._ws_lock = asyncio.Lock()

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
        request = _Request(query, variables, operation_name)
        async with asyncio.timeout(timeout):
            attempt = 1
            while True:
                try:
                    return await self._post(request)
                except _Retryable as failure:
                    if attempt >= self.retry.max_attempts or not (safe_to_repeat or failure.not_processed):
                        raise failure.error from None
                    delay = self.retry.delay(attempt)
                    log.debug("retrying %s in %.2fs after: %s", operation_name, delay, failure.error)
                    await asyncio.sleep(delay)
                    attempt += 1

    async def _post(self, request: GraphQLRequest) -> dict[str, Any]:
        session = await self._http_session()
        try:
            result = await session.execute(request)
        except TransportQueryError as e:
            raise MAPIException.from_graphql_errors(e.errors or [{"message": str(e)}]) from None
        except TransportServerError as e:
            error = error_for_status(e.code or 500, str(e))
            if e.code in RETRYABLE_STATUSES:
                raise _Retryable(error, not_processed=e.code in NOT_PROCESSED_STATUSES) from None
            raise error from None
        except TransportProtocolError as e:
            raise InternalServerError(500, f"malformed response from {self.endpoint}: {e}") from None
        except (TransportConnectionFailed, TransportClosed, aiohttp.ClientError, OSError) as e:
            not_sent = isinstance(e.__cause__ or e, aiohttp.ClientConnectorError)
            error = APIConnectionError(503, f"unable to connect to MAPI at {self.endpoint}: {e}")
            raise _Retryable(error, not_processed=not_sent) from None
        if not isinstance(result, dict):
            raise InternalServerError(500, f"malformed response from {self.endpoint}: no data")
        return result

    async def _http_session(self) -> AsyncClientSession:
        if self._http is not None:
            return self._http
        async with self._http_lock:
            if self._http is None:
                transport = AIOHTTPTransport(
                    url=self.endpoint,
                    headers=self.headers,
                    ssl_close_timeout=1,
                    client_session_args={"connector": aiohttp.TCPConnector(limit=100, keepalive_timeout=30)},
                )
                self._http_client = Client(transport=transport, fetch_schema_from_transport=False)
                self._http = await self._http_client.connect_async()  # type: ignore[no-untyped-call]
            return self._http

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
        request = _Request(query, variables, operation_name)
        async with asyncio.timeout(connect_timeout):
            session = await self._ws_session()
        stream = session.subscribe(request)
        try:
            async for data in stream:
                yield data
        except TransportQueryError as e:
            raise MAPIException.from_graphql_errors(e.errors or [{"message": str(e)}]) from None
        except (TransportError, WebSocketException, OSError, asyncio.IncompleteReadError) as e:
            await self._drop_ws(session)
            raise APIConnectionError(503, f"connection to {self.endpoint} lost: {e!r}") from None
        finally:
            # Tell the server we stopped listening (stop/complete), without waiting long on a broken socket.
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    await stream.aclose()

    async def _ws_session(self) -> AsyncClientSession:
        if self._ws is not None and self._ws_alive():
            return self._ws
        async with self._ws_lock:
            if self._ws is not None and not self._ws_alive():
                await self._drop_ws(self._ws)
            if self._ws is None:
                transport = WebsocketsTransport(
                    url=websocket_url(self.endpoint),
                    headers={"Authorization": self.api_key},
                    init_payload=self.headers,
                    subprotocols=WS_PROTOCOLS,
                    connect_timeout=10,
                    ack_timeout=10,
                    close_timeout=2,
                    connect_args={
                        "ping_interval": PING_INTERVAL,
                        "ping_timeout": PING_TIMEOUT,
                        "max_size": MAX_WS_MESSAGE,
                        "close_timeout": 1.0,
                        # Log chunks are base64: deflate costs both ends more CPU than it saves on the wire.
                        "compression": None,
                    },
                )
                client = Client(transport=transport, fetch_schema_from_transport=False)
                try:
                    self._ws = await client.connect_async()  # type: ignore[no-untyped-call]
                except (TimeoutError, TransportError, WebSocketException, OSError) as e:
                    raise APIConnectionError(
                        503, f"unable to open a websocket to {self.endpoint}: {e}"
                    ) from None
                self._ws_client = client
            return self._ws

    def _ws_alive(self) -> bool:
        client = self._ws_client
        transport = client.transport if client is not None else None
        return isinstance(transport, WebsocketsTransport) and transport.adapter.websocket is not None

    async def _drop_ws(self, session: AsyncClientSession) -> None:
        if session is not self._ws:
            return
        client, self._ws, self._ws_client = self._ws_client, None, None
        if client is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2.0):
                    await client.close_async()  # type: ignore[no-untyped-call]

    async def close(self) -> None:
        """Close the HTTP pool and the websocket."""
        for client in (self._http_client, self._ws_client):
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.close_async()  # type: ignore[no-untyped-call]
        self._http = self._http_client = self._ws = self._ws_client = None


class _Retryable(Exception):
    def __init__(self, error: MAPIException, *, not_processed: bool) -> None:
        super().__init__(str(error))
        self.error = error
        self.not_processed = not_processed
