"""A mutation is never sent twice: a proxy forwards each request to the real local server, then resets the client's
connection before the reply can reach it. One create_run call creates at most one run, and the caller learns that
the outcome is unknown and how to check."""

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from types import TracebackType

import pytest

import mcli
from mcli import RunConfig
from mcli.core.errors import APIConnectionError, OutcomeUnknownError
from mcli.local import LocalServer


class ReplyDroppingProxy:
    """Forwards client bytes to the server; the moment the server starts replying, resets the client connection
    (TCP RST) instead of passing the reply on. `requests` counts connections that carried a request."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.requests = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None

    def __enter__(self) -> "ReplyDroppingProxy":
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=5)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._server is not None:
            self._loop.call_soon_threadsafe(self._server.close)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        sent = False

        async def upstream() -> None:
            nonlocal sent
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await reader.read(65536):
                    if not sent:
                        sent = True
                        self.requests += 1
                    up_writer.write(data)
                    await up_writer.drain()

        forwarding = asyncio.ensure_future(upstream())
        with contextlib.suppress(OSError):
            await up_reader.read(1)  # the server processed the request and started its reply
        writer.transport.abort()  # reset: the client never sees the reply
        forwarding.cancel()
        up_writer.close()


@pytest.fixture
def proxy(server: LocalServer) -> Iterator[ReplyDroppingProxy]:
    port = int(server.endpoint.split(":")[2].split("/")[0])
    with ReplyDroppingProxy(port) as running:
        yield running


def test_create_run_is_sent_once_and_the_outcome_is_reported_unknown(
    proxy: ReplyDroppingProxy, server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = {run.name for run in mcli.get_runs(include_details=False)}
    monkeypatch.setenv("MOSAICML_API_ENDPOINT", f"http://127.0.0.1:{proxy.port}/graphql")
    with pytest.raises(OutcomeUnknownError) as caught:
        mcli.create_run(RunConfig(image="img", command="true"))  # no name: each send would create another run
    monkeypatch.setenv("MOSAICML_API_ENDPOINT", server.endpoint)
    message = str(caught.value)
    assert "unknown" in message and "mcli.get_runs(" in message, message
    assert proxy.requests == 1
    created = {run.name for run in mcli.get_runs(include_details=False)} - before
    assert len(created) == 1  # the server did create it, exactly once


def test_named_create_run_says_how_to_check_by_name(
    proxy: ReplyDroppingProxy, server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOSAICML_API_ENDPOINT", f"http://127.0.0.1:{proxy.port}/graphql")
    with pytest.raises(OutcomeUnknownError, match=r"mcli\.get_runs\(\['once-only'\]\)"):
        mcli.create_run(RunConfig(name="once-only", image="img", command="true"))
    monkeypatch.setenv("MOSAICML_API_ENDPOINT", server.endpoint)
    assert proxy.requests == 1
    assert [run.name for run in mcli.get_runs(["once-only"])] == ["once-only"]


def test_queries_are_retried(proxy: ReplyDroppingProxy, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOSAICML_API_ENDPOINT", f"http://127.0.0.1:{proxy.port}/graphql")
    with pytest.raises(APIConnectionError, match="broke before GetRunsPaginated's reply"):
        mcli.get_runs(timeout=30)
    assert proxy.requests == 4
