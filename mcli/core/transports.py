"""The two gql transports the session core runs every operation through: HTTP for queries and mutations, a websocket
for subscriptions, as MAPI serves them (one path; POST, or a websocket upgrade on the same URL).

gql's `Client` owns the request/answer contract: a `GraphQLRequest` goes in, an `ExecutionResult` comes out, and an
answer with `errors` becomes gql's `TransportQueryError` (the server answered: never retried), while a transport that
could not deliver raises before any result exists (retry territory). That split is the session core's retry line.

gql's own HTTP transports sit on aiohttp, httpx or requests, which a cold command pays 100 ms or more to import
before its first byte; gql's documented extension point is the `AsyncTransport` interface, so these two carry
requests on lighter stacks: h11 over asyncio streams (`mcli.core.http`) and one multiplexed `websockets`
connection (`mcli.core.websocket`). Each sends the document's source text as written and reads answers as JSON.
"""

import asyncio
import errno
import json
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from gql import GraphQLRequest
from gql.transport.async_transport import AsyncTransport
from graphql import ExecutionResult
from pydantic_core import from_json

from mcli.core.errors import (
    APIConnectionError,
    AuthenticationError,
    MalformedResponseError,
    MAPIException,
    error_for_status,
)
from mcli.core.http import ConnectFailed, ConnectionPool, Response

if TYPE_CHECKING:
    from mcli.core.websocket import GraphQLSocket

# Statuses that mean "not processed, try again later". A GraphQL error is an answer, never retried.
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
# Statuses after which a request that is not safe to repeat is known not to have run.
NOT_PROCESSED_STATUSES = frozenset({429, 503})
REQUEST_ID_HEADERS = ("x-request-id", "request-id", "x-amzn-requestid", "x-correlation-id")
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
# Where an HTTP answer's request id travels on its ExecutionResult, for the error the session core raises.
REQUEST_ID_EXTENSION = "mcliRequestId"


def request_payload(request: GraphQLRequest) -> dict[str, Any]:
    """The JSON body of `request`: its document's text as written (not re-printed), variables, operation name."""
    location = request.document.loc
    payload: dict[str, Any] = {
        "query": location.source.body if location is not None else "",
        "variables": request.variable_values or {},
    }
    if request.operation_name:
        payload["operationName"] = request.operation_name
    return payload


def websocket_url(endpoint: str) -> str:
    if endpoint.startswith("https://"):
        return "wss://" + endpoint.removeprefix("https://")
    if endpoint.startswith("http://"):
        return "ws://" + endpoint.removeprefix("http://")
    return endpoint


def unreachable_message(endpoint: str, error: BaseException) -> str:
    """Why `endpoint` could not be reached, and what to check: MOSAICML_API_ENDPOINT, or `mcli local serve`."""
    parts = urlsplit(endpoint)
    host, port = parts.hostname or endpoint, parts.port or (443 if parts.scheme == "https" else 80)
    cause = error.__cause__ if isinstance(error.__cause__, BaseException) else error
    code = getattr(cause, "errno", None)
    text = str(cause)
    if type(cause).__name__.startswith("SSL") or "CERTIFICATE" in text.upper():
        what = f"the TLS connection to {host}:{port} failed ({text})"
    elif code == errno.ECONNREFUSED or "Connect call failed" in text:
        what = f"nothing is listening at {host}:{port} (connection refused)"
    elif code in (-2, -3, -5) or "Name or service not known" in text:
        what = f"the host name {host!r} could not be resolved"
    elif isinstance(cause, TimeoutError):
        what = f"connecting to {host}:{port} timed out"
    else:
        what = f"connecting to {host}:{port} failed ({text or type(cause).__name__})"
    advice = f"check MOSAICML_API_ENDPOINT (now {endpoint})"
    if host in LOOPBACK_HOSTS:
        advice += "; to run a local server there, start `mcli local serve`"
    return f"unable to connect to MAPI at {endpoint}: {what}; {advice}"


def http_error(endpoint: str, what: str, response: Response, request_id: str | None) -> MAPIException:
    """The exception for an HTTP error status that carried no GraphQL errors."""
    status, shown = response.status, _snippet(response.body)
    message = f"HTTP {status} {response.reason} from {endpoint} for {what}".replace("  ", " ")
    message += f": {shown}" if shown else ""
    if status == 401:
        return AuthenticationError(
            401,
            message + "; the API key was refused: check MOSAICML_API_KEY or set one with `mcli set api-key`",
            request_id=request_id,
            may_have_run=False,
        )
    return error_for_status(
        status,
        message,
        request_id=request_id,
        retry_after=_retry_after(response.headers.get("retry-after")),
        transient=status in RETRYABLE_STATUSES,
        may_have_run=status not in NOT_PROCESSED_STATUSES,
    )


class HTTPTransport(AsyncTransport):
    """Queries and mutations as POSTs over a keep-alive pool; an answer is an ExecutionResult, anything else raises.

    Raises (from `execute`): APIConnectionError when the exchange failed (`may_have_run=False` only when the
    connection was never made), the status's MAPIException for an HTTP error without GraphQL errors, and
    MalformedResponseError for a reply that is not GraphQL JSON.
    """

    def __init__(self, endpoint: str, headers: dict[str, str]) -> None:
        self.endpoint = endpoint
        self.headers = headers
        self.pool: ConnectionPool | None = None

    async def connect(self) -> None:
        """Nothing to open up front: connections are made on first use and kept alive."""

    async def close(self) -> None:
        pool, self.pool = self.pool, None
        if pool is not None:
            await pool.close()

    async def execute(self, request: GraphQLRequest, *args: Any, **kwargs: Any) -> ExecutionResult:
        what = request.operation_name or "the request"
        if self.pool is None:
            self.pool = ConnectionPool(self.endpoint, self.headers)
        body = json.dumps(request_payload(request)).encode()
        try:
            response = await self.pool.post(body)
        except ConnectFailed as e:
            # The connection was never made, so the request never left: safe to send again.
            raise APIConnectionError(
                503, unreachable_message(self.endpoint, e), transient=True, may_have_run=False
            ) from None
        except OSError as e:
            raise APIConnectionError(
                503,
                f"the connection to {self.endpoint} broke before {what}'s reply arrived ({_describe(e)})",
                transient=True,
                may_have_run=True,
            ) from None
        return self._result(what, response)

    def _result(self, what: str, response: Response) -> ExecutionResult:
        request_id = next(
            (response.headers[name] for name in REQUEST_ID_HEADERS if response.headers.get(name)), None
        )
        reply = _parse_json(response.body)
        errors = reply.get("errors") if isinstance(reply, dict) else None
        if isinstance(errors, list) and errors and all(isinstance(error, dict) for error in errors):
            # An answer, whatever the HTTP status (as MAPI's own clients read it); an error without its own
            # numeric code takes the HTTP status, so a 429 or 503 with a GraphQL body is still one.
            if response.status >= 400 and not _has_numeric_code(errors[0]):
                extensions = errors[0].get("extensions")
                extensions = {**extensions} if isinstance(extensions, dict) else {}
                errors = [{**errors[0], "extensions": {**extensions, "code": response.status}}, *errors[1:]]
            if response.status in RETRYABLE_STATUSES:
                # "Not now" at the HTTP level (a rate limit, a gateway), whatever the body: retried like any 429/5xx.
                busy = MAPIException.from_graphql_errors(errors, request_id=request_id)
                busy.transient = True
                busy.retry_after = _retry_after(response.headers.get("retry-after"))
                busy.may_have_run = response.status not in NOT_PROCESSED_STATUSES
                raise busy
            extensions = {REQUEST_ID_EXTENSION: request_id} if request_id else None
            return ExecutionResult(data=None, errors=errors, extensions=extensions)
        if response.status >= 400:
            raise http_error(self.endpoint, what, response, request_id)
        if not isinstance(reply, dict):
            shown = "an empty body" if not response.body.strip() else repr(_snippet(response.body))
            raise MalformedResponseError(
                500,
                f"the reply to {what} from {self.endpoint} is not GraphQL JSON: {shown}",
                request_id=request_id,
            )
        data = reply.get("data")
        if not isinstance(data, dict):
            shown = "missing" if "data" not in reply else "null" if data is None else type(data).__name__
            raise MalformedResponseError(
                500,
                f"the reply to {what} has no data (`data` is {shown}) and no errors",
                request_id=request_id,
            )
        return ExecutionResult(data=data)

    def subscribe(self, request: GraphQLRequest, *args: Any, **kwargs: Any) -> AsyncGenerator[ExecutionResult, None]:
        raise NotImplementedError("MAPI serves subscriptions over its websocket, not over HTTP POST")


class WebsocketTransport(AsyncTransport):
    """Subscriptions over one shared, acknowledged websocket, reopened on the next use after it is lost.

    A lost connection ends a subscription with `SocketClosed`; resuming is the caller's job, because only the caller
    knows where to resume from.
    """

    def __init__(self, endpoint: str, api_key: str, headers: dict[str, str]) -> None:
        self.endpoint = endpoint
        self.api_key = api_key
        self.headers = headers
        self._socket: GraphQLSocket | None = None
        self._lock = asyncio.Lock()

    async def connect(self) -> None:
        """Nothing to open up front: `open_socket` opens the websocket when a subscription needs it."""

    async def open_socket(self) -> "GraphQLSocket":
        """The shared websocket, opened (or reopened after a loss) when needed."""
        if self._socket is not None and self._socket.alive:
            return self._socket
        from websockets.exceptions import InvalidStatus, WebSocketException

        from mcli.core.websocket import GraphQLSocket, SocketClosed

        async with self._lock:
            if self._socket is not None and not self._socket.alive:
                await self.drop(self._socket)
            if self._socket is None:
                try:
                    self._socket = await GraphQLSocket.open(
                        websocket_url(self.endpoint), self.api_key, self.headers
                    )
                except InvalidStatus as e:
                    response = e.response
                    raise http_error(
                        self.endpoint,
                        "opening a websocket",
                        Response(
                            response.status_code,
                            bytes(response.body or b""),
                            response.reason_phrase,
                            {name.lower(): value for name, value in response.headers.raw_items()},
                        ),
                        None,
                    ) from None
                except (TimeoutError, SocketClosed, WebSocketException, OSError, ValueError, RecursionError) as e:
                    raise APIConnectionError(
                        503, unreachable_message(self.endpoint, e), transient=True, may_have_run=False
                    ) from None
            return self._socket

    async def drop(self, socket: "GraphQLSocket") -> None:
        """Forget a socket that failed, so the next subscription opens a fresh one."""
        if socket is not self._socket:
            return
        self._socket = None
        await socket.close()

    async def subscribe(
        self, request: GraphQLRequest, *args: Any, **kwargs: Any
    ) -> AsyncGenerator[ExecutionResult, None]:
        socket = await self.open_socket()
        async for result in socket.subscribe(request_payload(request)):
            yield ExecutionResult(data=result.get("data"), errors=result.get("errors"))

    async def execute(self, request: GraphQLRequest, *args: Any, **kwargs: Any) -> ExecutionResult:
        raise NotImplementedError("queries and mutations go over HTTP POST, as MAPI serves them")

    async def close(self) -> None:
        socket, self._socket = self._socket, None
        if socket is not None:
            await socket.close()


def _parse_json(body: bytes) -> Any:
    """The JSON value of an answer's body, or None if it is not JSON.

    pydantic-core's parser (Rust) reads a 10,000-run listing in about two thirds of the time json.loads takes, and
    shares the repeated strings (keys, statuses, cluster names) instead of allocating each anew; what it refuses
    (JSON nested over 200 levels deep, a lone surrogate escape) gets a second reading by json.loads, so that an
    answer reads as before.
    """
    try:
        return from_json(body)
    except ValueError:
        pass
    try:
        return json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: JSON nested deeper than Python's stack
        return None


def _snippet(raw: bytes, limit: int = 200) -> str:
    text = " ".join(raw.decode("utf-8", errors="replace").split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _describe(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _has_numeric_code(error: dict[str, Any]) -> bool:
    extensions = error.get("extensions")
    code = extensions.get("code") if isinstance(extensions, dict) else None
    return isinstance(code, int) and not isinstance(code, bool)


def _retry_after(value: str | None) -> float | None:
    """Seconds from a `Retry-After` header, in either of its forms (seconds, or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from datetime import UTC, datetime
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
