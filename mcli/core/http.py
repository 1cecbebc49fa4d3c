"""A small keep-alive HTTP/1.1 client for GraphQL POSTs: h11 frames the messages, asyncio streams carry them.

The session core needs one thing from HTTP: POST a JSON body to one endpoint and read the whole answer, over a
pool of reused connections. h11 (the sans-I/O HTTP/1.1 library under httpcore and uvicorn) does the protocol,
including chunked bodies and keep-alive rules, and imports in a few milliseconds, where a general-purpose client
such as aiohttp costs a cold command ~100 ms before its first byte is sent.
"""

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import h11

if TYPE_CHECKING:
    import ssl

READ_SIZE = 256 * 1024
# Connections open at once. Requests beyond this wait for a free connection: a server handles a request per
# connection at a time, and every extra connection costs both sides a handshake and its own state (100
# concurrent creates on 100 connections took longer than on 10, against the local server and a replay server).
MAX_CONNECTIONS = 10
# An idle connection older than this is closed rather than reused: servers drop idle keep-alive connections
# (uvicorn after 5 s), and a request written into a half-closed socket fails after it may have been read.
IDLE_SECONDS = 4.0


class ConnectFailed(OSError):
    """The connection could not be opened: the request was never sent."""


class ProtocolFailure(OSError):
    """The server's answer was not valid HTTP/1.1, or it closed the connection mid-answer."""


@dataclass
class Response:
    status: int
    body: bytes
    reason: str = ""
    # Lower-cased names; a repeated header keeps its last value.
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    protocol: h11.Connection = field(default_factory=lambda: h11.Connection(h11.CLIENT))
    idle_since: float = 0.0

    def reusable(self) -> bool:
        return (
            not self.reader.at_eof()
            and not self.writer.is_closing()
            and time.monotonic() - self.idle_since < IDLE_SECONDS
        )

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


class ConnectionPool:
    """Keep-alive connections to one URL; at most `limit` open at once, idle ones reused newest first."""

    def __init__(self, url: str, headers: dict[str, str], *, limit: int = MAX_CONNECTIONS) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self._tls = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._tls else 80)
        self._target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        default_port = parts.port is None or parts.port == (443 if self._tls else 80)
        host_header = parts.hostname if default_port else f"{parts.hostname}:{parts.port}"
        self._headers = [("Host", host_header), *headers.items()]
        self._idle: list[_Connection] = []
        self._slots = asyncio.Semaphore(limit)
        self._ssl: ssl.SSLContext | None = None

    def _ssl_context(self) -> "ssl.SSLContext":
        """One context per pool: loading the CA store costs tens of milliseconds, so only https pays, once."""
        if self._ssl is None:
            import ssl

            self._ssl = ssl.create_default_context()
        return self._ssl

    async def post(self, body: bytes) -> Response:
        """POST `body`; the connection goes back to the pool only after a complete, reusable exchange."""
        async with self._slots:
            connection = await self._acquire()
            try:
                response = await self._exchange(connection, body)
            except BaseException:
                connection.close()  # cancelled or broken mid-exchange: never reuse it
                raise
            self._release(connection)
            return response

    async def _acquire(self) -> _Connection:
        while self._idle:
            connection = self._idle.pop()
            if connection.reusable():
                return connection
            connection.close()
        try:
            if self._tls:
                reader, writer = await asyncio.open_connection(
                    self._host, self._port, ssl=self._ssl_context(), limit=READ_SIZE
                )
            else:
                reader, writer = await asyncio.open_connection(self._host, self._port, limit=READ_SIZE)
        except OSError as e:
            raise ConnectFailed(e.errno, str(e)) from e
        return _Connection(reader, writer)

    async def _exchange(self, connection: _Connection, body: bytes) -> Response:
        protocol = connection.protocol
        headers = [*self._headers, ("Content-Length", str(len(body)))]
        connection.writer.write(
            protocol.send(h11.Request(method="POST", target=self._target, headers=headers))
            + protocol.send(h11.Data(data=body))
            + protocol.send(h11.EndOfMessage())
        )
        await connection.writer.drain()
        status = 0
        reason = ""
        response_headers: dict[str, str] = {}
        parts: list[bytes] = []
        try:
            while True:
                event = protocol.next_event()
                if event is h11.NEED_DATA:
                    protocol.receive_data(await connection.reader.read(READ_SIZE))
                elif isinstance(event, h11.Response):
                    status = event.status_code
                    reason = event.reason.decode("latin-1", "replace")
                    response_headers = {
                        name.decode("latin-1"): value.decode("latin-1", "replace")
                        for name, value in event.headers
                    }
                elif isinstance(event, h11.Data):
                    parts.append(bytes(event.data))
                elif isinstance(event, h11.EndOfMessage):
                    break
                elif isinstance(event, h11.ConnectionClosed):
                    raise ProtocolFailure("the server closed the connection before answering")
        except h11.RemoteProtocolError as e:
            raise ProtocolFailure(f"invalid HTTP answer: {e}") from None
        return Response(status, parts[0] if len(parts) == 1 else b"".join(parts), reason, response_headers)

    def _release(self, connection: _Connection) -> None:
        protocol = connection.protocol
        if protocol.our_state is h11.DONE and protocol.their_state is h11.DONE:
            protocol.start_next_cycle()
            connection.idle_since = time.monotonic()
            self._idle.append(connection)
        else:
            connection.close()

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()
        for connection in idle:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.writer.wait_closed(), 1.0)
