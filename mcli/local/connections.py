"""Connection limits uvicorn does not enforce itself: a deadline for request headers and a cap on connections.

uvicorn closes an idle keep-alive connection after `timeout_keep_alive`, but a client that sends one byte of
headers and then nothing holds its connection (and a file descriptor) forever, and connections beyond
`limit_concurrency` are still accepted. Here every HTTP connection must complete each request's headers within
`header_timeout_seconds`, and over `max_connections` the `ConnectionGuard` cuts off the connections that are
holding a slot without using it (a flood of them then only evicts itself); if every connection is busy, new
requests get 503.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mcli.local.limits import Limits


TRIM_DELAY_SECONDS = 0.02
# After answering a request whose body it never read (401 before the body, 413), the server half-closes and
# reads and drops what is still arriving for at most this long before closing: closing a socket with unread data
# sends a reset, and a reset can destroy the answer in the client's buffers before the client reads it.
LINGER_SECONDS = 2.0
# A connection that has sent nothing for this long is not a request the server simply has not read yet.
SILENT_GRACE_SECONDS = 1.0


def _service_unavailable(limit: int) -> Callable[..., Awaitable[None]]:
    """An ASGI app answering every request with 503 (and closing the connection)."""
    body = json.dumps(
        {
            "errors": [
                {
                    "message": f"The server is at its limit of {limit:,} connections; retry shortly",
                    "extensions": {"code": 503},
                }
            ]
        }
    ).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"retry-after", b"1"),
        (b"connection", b"close"),
        (b"content-length", str(len(body)).encode()),
    ]

    async def refuse(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return refuse


class ConnectionGuard:
    """One server's connections that may be cut off to make room: HTTP connections still waiting for request
    headers, and websockets that have not sent `connection_init` yet, each oldest first (dicts keep insertion
    order).

    Over the cap, a moment after new connections arrive (they come in batches, and the loop reads what each sent
    only after the batch), the server cuts off, oldest first: connections that sent part of their headers (a real
    client sends its request in one go), then uninitialised websockets, then connections that have sent nothing
    for a second. A complete request arriving over the cap makes room the same way (any waiting connection will
    do); when every connection is busy, it gets 503 (answered, never reset).
    """

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        # protocol -> (header deadline, when it started waiting)
        self.partial: dict[Any, tuple[asyncio.TimerHandle, float]] = {}
        self.silent: dict[Any, tuple[asyncio.TimerHandle, float]] = {}
        self.uninitialised: dict[Any, Callable[[], object]] = {}
        # Cut off but not gone yet (closing takes a loop turn or more): not counted against the cap.
        self.closing: set[Any] = set()
        self._trim: asyncio.TimerHandle | None = None

    def excess(self, connections: int) -> int:
        return connections - len(self.closing) - self.limits.max_connections

    def trim_soon(self, loop: asyncio.AbstractEventLoop, connections: set[Any]) -> None:
        if self._trim is None:
            self._trim = loop.call_later(TRIM_DELAY_SECONDS, self._trim_now, loop, connections)

    def _trim_now(self, loop: asyncio.AbstractEventLoop, connections: set[Any]) -> None:
        self._trim = None
        excess = self.excess(len(connections))
        while excess > 0 and self.cut_off_one(silent_since=loop.time() - SILENT_GRACE_SECONDS):
            excess -= 1

    def cut_off_one(self, silent_since: float, sparing: Any = None) -> bool:
        """Cut off the connection that can best go (see the class); False when none can."""
        for protocol in self.partial:
            if protocol is not sparing:
                protocol.headers_too_slow()
                return True
        for session, evict in self.uninitialised.items():
            del self.uninitialised[session]
            self.closing.add(session)
            evict()
            return True
        for protocol, (_, since) in self.silent.items():
            if since > silent_since:
                break
            if protocol is not sparing:
                protocol.headers_too_slow()
                return True
        return False

    def await_init(self, session: Any, evict: Callable[[], object]) -> None:
        """`session` (a websocket) holds a slot without `connection_init` until `initialised` or `gone`."""
        self.uninitialised[session] = evict

    def initialised(self, session: Any) -> None:
        self.uninitialised.pop(session, None)

    def gone(self, session: Any) -> None:
        """`session` has ended; its connection closes within about a second (the close handshake)."""
        self.uninitialised.pop(session, None)
        if session in self.closing:
            asyncio.get_running_loop().call_later(1.0, self.closing.discard, session)


def guarded_http_protocol(guard: ConnectionGuard) -> Any:
    """An h11 protocol class for uvicorn's `http` setting that enforces `guard`'s limits."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    limits = guard.limits
    refusal = _service_unavailable(limits.max_connections)

    class LingeringTransport:
        """The connection's transport, whose close() lingers while the client may still be sending a body."""

        def __init__(self, protocol: GuardedH11Protocol, transport: asyncio.Transport) -> None:
            self._protocol = protocol
            self._transport = transport

        def __getattr__(self, name: str) -> Any:
            return getattr(self._transport, name)

        def close(self) -> None:
            protocol, transport = self._protocol, self._transport
            # Only while h11 owns the connection: after a websocket upgrade (h11 still waits for the upgrade
            # request's "body") the websocket protocol closes it, and a FIN here would break its close handshake.
            owned = transport.get_protocol() is protocol
            if owned and protocol.conn.their_state is h11.SEND_BODY and transport.can_write_eof() and not protocol.lingering:
                protocol.lingering = True
                transport.write_eof()  # the answer is complete: FIN after it, then drain before closing
                protocol.loop.call_later(LINGER_SECONDS, transport.close)
                return
            transport.close()

    class GuardedH11Protocol(H11Protocol):
        lingering = False

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self.transport = LingeringTransport(self, transport)  # type: ignore[assignment]
            if guard.excess(len(self.connections)) > 0:
                guard.trim_soon(self.loop, self.connections)
            self._await_headers()

        def waiting(self) -> bool:
            return self in guard.partial or self in guard.silent

        def _await_headers(self) -> None:
            self._headers_arrived()
            timer = self.loop.call_later(limits.header_timeout_seconds, self.headers_too_slow)
            guard.silent[self] = (timer, self.loop.time())

        def _headers_arrived(self) -> None:
            entry = guard.partial.pop(self, None) or guard.silent.pop(self, None)
            if entry is not None:
                entry[0].cancel()

        def headers_too_slow(self) -> None:
            self._headers_arrived()
            if not self.transport.is_closing():
                guard.closing.add(self)
                self.transport.close()

        def data_received(self, data: bytes) -> None:
            if self.lingering:
                return  # the rest of a body the server has already answered: dropped
            if b"\r\n\r\n" in data and guard.excess(len(self.connections)) > 0 and self.waiting():
                # A whole request arrives over the cap: it is served if another connection can make room (any
                # still waiting, however young: this one is complete), else it gets 503.
                if not guard.cut_off_one(silent_since=math.inf, sparing=self):
                    self.app = refusal
            super().data_received(data)
            # Upgraded to a websocket (another protocol owns the transport now), or a request is under way.
            if self.transport.get_protocol() is not self or self.conn.their_state is not h11.IDLE:
                self._headers_arrived()
            elif self in guard.silent:
                guard.partial[self] = guard.silent.pop(self)

        def on_response_complete(self) -> None:
            super().on_response_complete()
            # Kept alive and idle: the next request's headers are due within the same deadline.
            if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
                self._await_headers()

        def eof_received(self) -> None:
            if self.lingering:
                self.transport.close()  # the client finished sending: nothing left to drain

        def connection_lost(self, exc: Exception | None) -> None:
            self._headers_arrived()
            guard.closing.discard(self)
            super().connection_lost(exc)

    return GuardedH11Protocol
