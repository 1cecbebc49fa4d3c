"""A TCP proxy on 127.0.0.1 that can cut every connection through it, to break websockets mid-stream."""

import asyncio
import contextlib
import random
import threading
from types import TracebackType


class CuttingProxy:
    def __init__(self, target_port: int, *, seed: int = 7) -> None:
        self.target_port = target_port
        self.port = 0
        self.cuts = 0
        self._generation = 0
        self._frozen_through = -1
        self._random = random.Random(seed)
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None

    def __enter__(self) -> "CuttingProxy":
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=5)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
        self._cut_all()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}
        self._generation += 1
        generation = self._generation

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await source.read(65536):
                    if generation <= self._frozen_through:
                        await asyncio.Event().wait()  # silently dead: open, but nothing gets through
                    sink.write(data)
                    await sink.drain()
            sink.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers -= {writer, up_writer}

    def _cut_all(self) -> None:
        for writer in list(self._writers):
            transport = writer.transport
            transport.abort()  # a hard reset, as when a network path dies
        self._writers.clear()

    def freeze_open_connections(self) -> None:
        """Stop forwarding on every open connection without closing it; new connections still work."""
        self._loop.call_soon_threadsafe(setattr, self, "_frozen_through", self._generation)

    def cut_now(self) -> None:
        self.cuts += 1
        self._loop.call_soon_threadsafe(self._cut_all)

    def cut_randomly(self, stop: threading.Event, low: float = 0.05, high: float = 0.3) -> None:
        """Cut every connection at random intervals until `stop` is set."""
        while not stop.wait(self._random.uniform(low, high)):
            self.cut_now()
