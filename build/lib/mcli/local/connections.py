"""Connection limits uvicorn does not enforce itself: a deadline for request headers and a cap on connections.

uvicorn closes an idle keep-alive connection after `timeout_keep_alive`, but a client that sends one byte of
headers and then nothing holds its connection (and a file descriptor) forever, and connections beyond
`limit_concurrency` are still accepted. Here every HTTP connection must complete each request's headers within
`header_timeout_seconds`, and at `max_connections` a new connection first evicts the oldest one still waiting for
its headers (a slow-header flood then only evicts itself); if every connection is busy, the new one gets 503.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio

    from mcli.local.limits import Limits


def _service_unavailable(limit: int) -> bytes:
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
    head = (
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\n"
        f"connection: close\r\ncontent-length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def guarded_http_protocol(limits: Limits) -> Any:
    """An h11 protocol class for uvicorn's `http` setting that enforces `limits` (one class per server)."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    refusal = _service_unavailable(limits.max_connections)
    # Connections waiting for request headers, oldest first (dicts keep insertion order).
    waiting: dict[Any, asyncio.TimerHandle] = {}

    class GuardedH11Protocol(H11Protocol):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if len(self.connections) > limits.max_connections and not _evict_oldest_waiting():
                self.connections.discard(self)
                transport.write(refusal)
                transport.close()
                return
            self._await_headers()

        def _await_headers(self) -> None:
            self._headers_arrived()
            waiting[self] = self.loop.call_later(limits.header_timeout_seconds, self._headers_too_slow)

        def _headers_arrived(self) -> None:
            timer = waiting.pop(self, None)
            if timer is not None:
                timer.cancel()

        def _headers_too_slow(self) -> None:
            waiting.pop(self, None)
            if not self.transport.is_closing():
                self.transport.close()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            # Upgraded to a websocket (another protocol owns the transport now), or a request is under way.
            if self.transport.get_protocol() is not self or self.conn.their_state is not h11.IDLE:
                self._headers_arrived()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            # Kept alive and idle: the next request's headers are due within the same deadline.
            if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
                self._await_headers()

        def connection_lost(self, exc: Exception | None) -> None:
            self._headers_arrived()
            super().connection_lost(exc)

    def _evict_oldest_waiting() -> bool:
        for protocol in waiting:
            protocol._headers_too_slow()
            return True
        return False

    return GuardedH11Protocol
