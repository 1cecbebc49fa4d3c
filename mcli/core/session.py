"""The one async session core: gql's client over HTTP keep-alive and a shared websocket; retries, timeouts, errors.

Every operation is a gql `GraphQLRequest` run by a gql `Client` session: queries and mutations over
`HTTPTransport`, subscriptions over `WebsocketTransport` (`mcli.core.transports`, gql transports on h11 and
`websockets`). Documents are parsed once by graphql-core and sent as written. gql's split is the retry line: a
`TransportQueryError` is an answer (never retried), a transport failure is a MAPIException that says whether the
request may have run.
"""

import asyncio
import functools
import logging
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any, Self

from gql import Client, GraphQLRequest
from gql.client import AsyncClientSession
from gql.transport.exceptions import TransportQueryError
from graphql import DocumentNode, ExecutionResult, parse

from mcli.core.errors import CallTimeoutError, MAPIException, OutcomeUnknownError
from mcli.core.keys import check_transport_security, mask
from mcli.core.retry import REQUESTS, RetryPolicy, retry_delay
from mcli.core.transports import REQUEST_ID_EXTENSION, HTTPTransport, WebsocketTransport

log = logging.getLogger("mcli")

CLIENT_HEADERS = {"x-mosaicml-client": "mcli-typed", "Content-Type": "application/json"}

__all__ = ["CLIENT_HEADERS", "AsyncSession"]


@functools.lru_cache(maxsize=64)
def _document(query: str) -> DocumentNode:
    """A document parsed once per process (the operations are a fixed set), keeping its source text."""
    return parse(query)


class _ClientSession(AsyncClientSession):
    """gql's session, minus one cost of its request path that buys mcli nothing.

    gql wraps every request in anyio's `fail_after(execute_timeout)`, even with no timeout, and that first call
    imports anyio's asyncio backend: about 10 ms of a cold `mcli run`. Our clients have no schema, no batching and
    no gql timeout (the session core bounds each call with asyncio), which leaves gql's request path exactly
    "the transport's result": that is what this runs. With any of those set, gql's own path runs unchanged. gql's
    `execute` (which turns GraphQL errors into TransportQueryError) still wraps it.
    """

    async def _execute(
        self,
        request: GraphQLRequest,
        *,
        serialize_variables: bool | None = None,
        parse_result: bool | None = None,
        **kwargs: Any,
    ) -> ExecutionResult:
        client = self.client
        if client.schema is None and not client.batching_enabled and client.execute_timeout is None:
            result: ExecutionResult = await self.transport.execute(request, **kwargs)
            return result
        return await super()._execute(
            request, serialize_variables=serialize_variables, parse_result=parse_result, **kwargs
        )


def _answer_error(error: TransportQueryError) -> MAPIException:
    """The MAPIException for an answer that carried GraphQL errors."""
    request_id = (error.extensions or {}).get(REQUEST_ID_EXTENSION) if isinstance(error.extensions, dict) else None
    errors = [e for e in (error.errors or []) if isinstance(e, dict)] or [{"message": str(error)}]
    return MAPIException.from_graphql_errors(errors, request_id=request_id)


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
        self._http = HTTPTransport(endpoint, self.headers)
        self._ws = WebsocketTransport(endpoint, api_key, self.headers)
        # gql sessions over the two transports; timeouts are the session core's (per call), never gql's default.
        self._queries = _ClientSession(Client(transport=self._http, execute_timeout=None))
        self._subscriptions = AsyncClientSession(Client(transport=self._ws, execute_timeout=None))

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
        request = GraphQLRequest(_document(query), variable_values=variables, operation_name=operation_name)
        what = operation_name or "the request"
        try:
            async with asyncio.timeout(timeout):
                attempt = 1
                while True:
                    try:
                        return await self._queries.execute(request)
                    except TransportQueryError as answer:
                        raise _answer_error(answer) from None
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
            raise CallTimeoutError(f"{what} to {self.endpoint} did not finish within {timeout:g} s") from None

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
                socket = await self._ws.open_socket()
        except TimeoutError:
            raise CallTimeoutError(
                f"opening a websocket to {self.endpoint} for {what} did not finish within {connect_timeout:g} s"
            ) from None
        request = GraphQLRequest(_document(query), variable_values=variables, operation_name=operation_name)
        try:
            async for data in self._subscriptions.subscribe(request):
                yield data
        except TransportQueryError as answer:
            raise _answer_error(answer) from None
        except SocketClosed as e:
            await self._ws.drop(socket)
            raise connection_lost(self.endpoint, what, e) from None

    async def close(self) -> None:
        """Close the HTTP pool and the websocket, waiting at most about two seconds."""
        await self._http.close()
        await self._ws.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.close()


def _outcome_unknown(what: str, error: MAPIException) -> OutcomeUnknownError:
    """A change that may have taken effect: say so, and that it was deliberately not sent again."""
    unknown = OutcomeUnknownError(
        error.status,
        f"{error.message}; whether {what} took effect is unknown, and it was not sent again because repeating it "
        "could apply it twice: check the result before retrying",
        request_id=error.request_id,
        transient=False,
    )
    unknown.lost = error.message
    return unknown
