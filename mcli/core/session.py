"""The one async session core: HTTP with keep-alive, a websocket for subscriptions, retries, timeouts, errors.

Queries and mutations are POSTs over a keep-alive pool (`mcli.core.http`, on h11); subscriptions share one
websocket (`mcli.core.websocket`, on `websockets`) that speaks `graphql-transport-ws` and `graphql-ws`. Documents
are sent as written and answers are handed on as parsed JSON: nothing on the way parses GraphQL, so a cold command
pays for neither a GraphQL library nor a general-purpose HTTP client. A GraphQL error (the server answered) versus a
connection failure is the retry line.
"""

import asyncio
import errno
import json
import logging
from collections.abc import AsyncIterator
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import urlsplit

from mcli.core.errors import (
    APIConnectionError,
    AuthenticationError,
    MalformedResponseError,
    MAPIException,
    OutcomeUnknownError,
    error_for_status,
)
from mcli.core.http import ConnectFailed, ConnectionPool, Response
from mcli.core.keys import check_transport_security, mask
from mcli.core.retry import REQUESTS, RetryPolicy, retry_delay

if TYPE_CHECKING:
    from mcli.core.websocket import GraphQLSocket

log = logging.getLogger("mcli")

CLIENT_HEADERS = {"x-mosaicml-client": "mcli-typed", "Content-Type": "application/json"}
# Statuses that mean "not processed, try again later". A GraphQL error is an answer, never retried.
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
# Statuses after which a request that is not safe to repeat is known not to have run.
NOT_PROCESSED_STATUSES = frozenset({429, 503})
REQUEST_ID_HEADERS = ("x-request-id", "request-id", "x-amzn-requestid", "x-correlation-id")
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


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


def _payload(query: str, variables: dict[str, Any], operation_name: str | None) -> dict[str, Any]:
    payload: dict[str, Any] = {"query": query, "variables": variables}
    if operation_name:
        payload["operationName"] = operation_name
    return payload


class AsyncSession:
    """A connection to one MAPI endpoint with one API key, bound to the event loop that first uses it.

    Use it as `async with AsyncSession(endpoint, key) as session:` (or call `close()`), so that its
    connections are closed before the loop ends.
    """

    def __init__(self, endpoint: str, api_key: str, *, retry: RetryPolicy | None = None) -> None:
        check_transport_security(endpoint)
        self.endpoint = endpoint
        self.api_key = api_key
        self.retry = retry or REQUESTS
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

        Args:
            query: The GraphQL document, sent as written.
            operation_name: The operation to run, named in errors.
            variables: JSON-ready variables.
            timeout: Seconds for all attempts together; the one in flight is cancelled when it passes.
            idempotent: Whether repeating the request is harmless; by default queries are, mutations are not.

        Returns:
            The reply's `data` object.

        Raises:
            MAPIException: A GraphQL error (never retried), an HTTP error, or a reply that is not GraphQL
                (MalformedResponseError).
            APIConnectionError: The server could not be reached after the retries (connection failures and
                429/502/503/504 are retried with jittered backoff, honouring Retry-After). A request that is not
                safe to repeat is retried only when the failure proves it never ran; otherwise `may_have_run`.
            TimeoutError: `timeout` passed; the message names the operation and the time.
        """
        safe_to_repeat = idempotent if idempotent is not None else not query.lstrip().startswith("mutation")
        body = json.dumps(_payload(query, variables, operation_name)).encode()
        what = operation_name or "the request"
        try:
            async with asyncio.timeout(timeout):
                attempt = 1
                while True:
                    try:
                        return await self._post(body, what)
                    except MAPIException as error:
                        delay = retry_delay(error, attempt, safe_to_repeat, self.retry)
                        if delay is None:
                            if error.transient and error.may_have_run and not safe_to_repeat:
                                raise _outcome_unknown(what, error) from None
                            raise
                        log.debug("retrying %s in %.2fs after: %s", what, delay, error)
                        await asyncio.sleep(delay)
                        attempt += 1
        except TimeoutError:
            raise TimeoutError(f"{what} to {self.endpoint} did not finish within {timeout:g} s") from None

    async def _post(self, body: bytes, what: str) -> dict[str, Any]:
        if self._http is None:
            self._http = ConnectionPool(self.endpoint, self.headers)
        try:
            response = await self._http.post(body)
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
        return self._read_reply(what, response)

    def _read_reply(self, what: str, response: Response) -> dict[str, Any]:
        request_id = next(
            (response.headers[name] for name in REQUEST_ID_HEADERS if response.headers.get(name)), None
        )
        try:
            reply: Any = json.loads(response.body)
        except ValueError:
            reply = None
        errors = reply.get("errors") if isinstance(reply, dict) else None
        if isinstance(errors, list) and errors and all(isinstance(error, dict) for error in errors):
            # An answer, whatever the HTTP status (as MAPI's own clients read it).
            raise MAPIException.from_graphql_errors(errors, request_id=request_id)
        if response.status >= 400:
            raise self._http_error(what, response, request_id)
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
        return data

    def _http_error(self, what: str, response: Response, request_id: str | None) -> MAPIException:
        status, shown = response.status, _snippet(response.body)
        message = f"HTTP {status} {response.reason} from {self.endpoint} for {what}".replace("  ", " ")
        message += f": {shown}" if shown else ""
        if status == 401:
            return AuthenticationError(
                401,
                message
                + "; the API key was refused: check MOSAICML_API_KEY or set one with `mcli set api-key`",
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

        what = operation_name or "the subscription"
        try:
            async with asyncio.timeout(connect_timeout):
                socket = await self._ws_session()
        except TimeoutError:
            raise TimeoutError(
                f"opening a websocket to {self.endpoint} for {what} did not finish within {connect_timeout:g} s"
            ) from None
        try:
            async for data in socket.subscribe(_payload(query, variables, operation_name)):
                yield data
        except SocketClosed as e:
            await self._drop_ws(socket)
            raise connection_lost(self.endpoint, what, e) from None

    async def _ws_session(self) -> "GraphQLSocket":
        if self._ws is not None and self._ws.alive:
            return self._ws
        from websockets.exceptions import InvalidStatus, WebSocketException

        from mcli.core.websocket import GraphQLSocket, SocketClosed

        async with self._ws_lock:
            if self._ws is not None and not self._ws.alive:
                await self._drop_ws(self._ws)
            if self._ws is None:
                try:
                    self._ws = await GraphQLSocket.open(
                        websocket_url(self.endpoint), self.api_key, self.headers
                    )
                except InvalidStatus as e:
                    response = e.response
                    raise self._http_error(
                        "opening a websocket",
                        Response(
                            response.status_code,
                            bytes(response.body or b""),
                            response.reason_phrase,
                            {name.lower(): value for name, value in response.headers.raw_items()},
                        ),
                        None,
                    ) from None
                except (TimeoutError, SocketClosed, WebSocketException, OSError, ValueError) as e:
                    raise APIConnectionError(
                        503, unreachable_message(self.endpoint, e), transient=True, may_have_run=False
                    ) from None
            return self._ws

    async def _drop_ws(self, socket: "GraphQLSocket") -> None:
        if socket is not self._ws:
            return
        self._ws = None
        await socket.close()

    async def close(self) -> None:
        """Close the HTTP pool and the websocket, waiting at most about two seconds."""
        http, self._http = self._http, None
        ws, self._ws = self._ws, None
        if http is not None:
            await http.close()
        if ws is not None:
            await ws.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.close()


def _outcome_unknown(what: str, error: MAPIException) -> OutcomeUnknownError:
    """A change that may have taken effect: say so, and that it was deliberately not sent again."""
    return OutcomeUnknownError(
        error.status,
        f"{error.message}; whether {what} took effect is unknown, and it was not sent again because repeating it "
        "could apply it twice: check the result before retrying",
        request_id=error.request_id,
        transient=False,
    )


def _snippet(raw: bytes, limit: int = 200) -> str:
    text = " ".join(raw.decode("utf-8", errors="replace").split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _describe(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


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
