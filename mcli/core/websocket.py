"""GraphQL subscriptions over one shared websocket, in either subprotocol MAPI may pick.

`graphql-transport-ws` (the graphql-ws library's protocol) and the legacy `graphql-ws` (Apollo's
subscriptions-transport-ws) differ only in message names, so one small multiplexer on the `websockets` library
speaks both: a reader task routes each message to its subscription's queue by id, and answers pings. Messages are
handed on as parsed JSON, with no document parsing or result objects in between; a long string that needs no
unescaping (a base64 log chunk) is sliced out of the text rather than walked by the JSON parser (`parse_message`).
"""

import asyncio
import contextlib
import itertools
import json
from collections.abc import AsyncIterator
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, PayloadTooBig, WebSocketException

from mcli.core.errors import APIConnectionError, MalformedResponseError, MAPIException

TRANSPORT_WS = "graphql-transport-ws"
LEGACY_WS = "graphql-ws"
# Offered in this order; a server that echoes none is taken to speak the legacy protocol (as gql does).
SUBPROTOCOLS = [TRANSPORT_WS, LEGACY_WS]
# A silent dead websocket is noticed within about PING_INTERVAL + PING_TIMEOUT seconds.
PING_INTERVAL = 10.0
PING_TIMEOUT = 10.0
ACK_TIMEOUT = 10.0
# Log chunks are up to about 700 KiB of base64; leave headroom instead of failing on a big message.
MAX_MESSAGE = 16 * 1024 * 1024

_LOST = object()  # queued to every subscription when the connection ends
# A string this long in a message (a base64 log chunk) is cut out of the text before the JSON parser runs.
LIFT_MIN_CHARS = 4096
_LIFTED = "\ue000mcli-lifted-"  # stands in for a cut-out string while the rest is parsed


# The close code for a message over the size limit (RFC 6455).
MESSAGE_TOO_BIG = 1009


class SocketClosed(Exception):
    """The websocket ended; `reason` says how, `code` is its close code when known."""

    def __init__(self, reason: str, code: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


class GraphQLSocket:
    """One open, acknowledged websocket carrying any number of subscriptions."""

    def __init__(self, ws: ClientConnection, protocol: str) -> None:
        self._ws = ws
        self._protocol = protocol
        self._ids = itertools.count(1)
        self._queues: dict[str, asyncio.Queue[Any]] = {}
        self._lost: str | None = None
        self._lost_code: int | None = None
        self._reader = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def open(cls, url: str, api_key: str, init_payload: dict[str, str]) -> "GraphQLSocket":
        """Connect, offer both subprotocols, send `connection_init` and wait for the server's ack."""
        ws = await connect(
            url,
            subprotocols=SUBPROTOCOLS,  # type: ignore[arg-type]
            additional_headers={"Authorization": api_key},
            open_timeout=10,
            ping_interval=PING_INTERVAL,
            ping_timeout=PING_TIMEOUT,
            max_size=MAX_MESSAGE,
            close_timeout=1.0,
            # Log chunks are base64: deflate costs both ends more CPU than it saves on the wire.
            compression=None,
        )
        protocol = ws.subprotocol or LEGACY_WS
        try:
            await ws.send(json.dumps({"type": "connection_init", "payload": init_payload}))
            async with asyncio.timeout(ACK_TIMEOUT):
                while True:
                    message = json.loads(await ws.recv())
                    kind = message.get("type") if isinstance(message, dict) else None
                    if kind == "connection_ack":
                        break
                    if kind == "ping":
                        await ws.send('{"type":"pong"}')
                    elif kind not in ("ka", "pong"):
                        raise SocketClosed(f"the server refused the connection: {message!r}")
        except BaseException:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), 1.0)
            raise
        return cls(ws, str(protocol))

    @property
    def alive(self) -> bool:
        return self._lost is None and not self._reader.done()

    async def _read(self) -> None:
        reason = "the server closed the connection"
        try:
            async for raw in self._ws:
                message = parse_message(raw)
                kind = message.get("type")
                if kind == "ping":
                    await self._ws.send('{"type":"pong"}')
                    continue
                queue = self._queues.get(message.get("id"))
                if queue is not None:
                    # Never wait here: one subscription whose reader went away must not stall the others.
                    queue.put_nowait(message)
                # Anything else (ka, pong, a late message of a finished subscription) needs no answer.
        except (WebSocketException, OSError, ValueError, AttributeError, TypeError, RecursionError) as e:
            reason = repr(e)
            self._lost_code = _close_code(e)
        finally:
            self._lost = reason
            for queue in self._queues.values():
                queue.put_nowait(_LOST)

    async def subscribe(self, payload: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """Yield each result (`data`, and `errors` when the server sent some) of one operation until it completes.

        An `error` message is yielded as a result with errors and ends the operation; a lost connection raises
        SocketClosed; a message that is not a result raises MalformedResponseError. Leaving early tells the server
        to stop.
        """
        if self._lost is not None:
            raise SocketClosed(self._lost, self._lost_code)
        op_id = str(next(self._ids))
        queue: asyncio.Queue[Any] = asyncio.Queue()
        self._queues[op_id] = queue
        start = "subscribe" if self._protocol == TRANSPORT_WS else "start"
        completed = False
        try:
            await self._ws.send(json.dumps({"id": op_id, "type": start, "payload": payload}))
            while True:
                message = await queue.get()
                if message is _LOST:
                    raise SocketClosed(self._lost or "the connection ended", self._lost_code)
                kind = message.get("type")
                if kind in ("next", "data"):
                    result = message.get("payload")
                    if not isinstance(result, dict):
                        raise MalformedResponseError(
                            500, f"malformed subscription message: {_shown(message)}"
                        )
                    if not result.get("errors") and not isinstance(result.get("data"), dict):
                        raise MalformedResponseError(
                            500, f"a subscription message has no data object: {_shown(message)}"
                        )
                    yield result
                elif kind == "error":
                    completed = True  # an error ends the operation on the server too
                    errors = message.get("payload")
                    errors = (
                        errors if isinstance(errors, list) else [errors if isinstance(errors, dict) else {}]
                    )
                    yield {"data": None, "errors": errors}
                    return
                elif kind == "complete":
                    completed = True
                    return
        finally:
            del self._queues[op_id]
            if not completed and self._lost is None:
                stop = "complete" if self._protocol == TRANSPORT_WS else "stop"
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(1.0):
                        await self._ws.send(json.dumps({"id": op_id, "type": stop}))

    async def close(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(BaseException):
            await self._reader
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2.0):
                await self._ws.close()


def connection_lost(endpoint: str, what: str, closed: SocketClosed) -> MAPIException:
    """The error for a websocket that ended under a subscription.

    A message over MAX_MESSAGE is a MalformedResponseError, never retried (the same message would come again at the
    same offset); anything else is a transient APIConnectionError, after which the caller resubscribes.
    """
    if closed.code == MESSAGE_TOO_BIG:
        return MalformedResponseError(
            500,
            f"a {what} message from {endpoint} was larger than mcli's {MAX_MESSAGE // 2**20} MiB limit; "
            "the server should send smaller chunks",
        )
    return APIConnectionError(
        503, f"connection to {endpoint} lost during {what}: {closed.reason}", transient=True
    )


def parse_message(text: str | bytes) -> Any:
    """`json.loads(text)`, quicker for a message carrying long strings that need no unescaping (log chunks).

    The JSON parser walks a string character by character and builds a copy; a 700 KiB base64 chunk costs it about
    0.4 ms. In a text without a backslash every string is the run of characters between two quotes, so each long
    one is sliced out (one copy at memory speed) and a short placeholder parsed in its place, then put back.
    """
    if not isinstance(text, str) or len(text) < LIFT_MIN_CHARS or "\\" in text or _LIFTED in text:
        return json.loads(text)
    pieces: list[str] = []
    lifted: list[str] = []
    copied = 0  # text before this index is in `pieces`
    opening = text.find('"')
    while opening != -1:
        closing = text.find('"', opening + 1)
        if closing == -1:
            break  # unterminated: the parser below says so
        if closing - opening > LIFT_MIN_CHARS:
            pieces += (text[copied:opening], f'"{_LIFTED}{len(lifted)}"')
            lifted.append(text[opening + 1 : closing])
            copied = closing + 1
        opening = text.find('"', closing + 1)
    if not lifted:
        return json.loads(text)
    pieces.append(text[copied:])
    return _put_back(json.loads("".join(pieces)), lifted)


def _put_back(value: Any, lifted: list[str]) -> Any:
    """`value` with each placeholder string (a value or a key) replaced by the string it stands for."""
    if isinstance(value, str):
        return lifted[int(value[len(_LIFTED) :])] if value.startswith(_LIFTED) else value
    if isinstance(value, dict):
        return {_put_back(key, lifted): _put_back(item, lifted) for key, item in value.items()}
    if isinstance(value, list):
        return [_put_back(item, lifted) for item in value]
    return value


def _shown(message: Any) -> str:
    text = repr(message)
    return text if len(text) <= 200 else text[:197] + "..."


def _close_code(error: BaseException) -> int | None:
    """The close code behind a websocket failure (ours, when we refused an oversized message)."""
    if isinstance(error, PayloadTooBig):
        return MESSAGE_TOO_BIG
    if isinstance(error, ConnectionClosed):
        for frame in (error.sent, error.rcvd):
            if frame is not None and frame.code == MESSAGE_TOO_BIG:
                return MESSAGE_TOO_BIG
        frame = error.rcvd or error.sent
        return frame.code if frame is not None else None
    return None
