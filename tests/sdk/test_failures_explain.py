"""Failures that point at the fix, against the real local server: endpoints, capacity, oversized messages, the async
twin's three forms, and no "Unclosed" warning when mcli.aio runs inside the user's own asyncio.run."""

import os
import socket
import subprocess
import sys
import textwrap
import time

import pytest

import mcli
import mcli.aio
from mcli import RunConfig, RunStatus, connection
from mcli.core import websocket
from mcli.core.errors import (
    APIConnectionError,
    InstanceTypeUnavailable,
    MalformedResponseError,
    MCLIConfigError,
)
from mcli.local import LocalServer


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("endpoint", "words"),
    [
        ("127.0.0.1:8642/graphql", ("not an http:// or https:// url", "MOSAICML_API_ENDPOINT")),
        ("api.mosaicml.com", ("not an http:// or https:// url", "MOSAICML_API_ENDPOINT")),
        (
            "http://127.0.0.1:8642",
            ("has no path", "'http://127.0.0.1:8642/graphql'", "MOSAICML_API_ENDPOINT"),
        ),
        ("https://api.example.com/", ("has no path", "/graphql")),
        ("http://[::1/graphql", ("not a valid url (invalid ipv6 url)", "MOSAICML_API_ENDPOINT")),
        ("http://127.0.0.1:99999/graphql", ("not a valid url (port out of range", "MOSAICML_API_ENDPOINT")),
    ],
)
def test_an_unusable_endpoint_says_so_before_any_request(
    endpoint: str, words: tuple[str, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOSAICML_API_ENDPOINT", endpoint)
    with pytest.raises(MCLIConfigError) as caught:
        mcli.get_runs()
    for word in words:
        assert word.lower() in str(caught.value).lower(), caught.value


def test_nothing_listening_names_the_setting_and_mcli_local_serve(monkeypatch: pytest.MonkeyPatch) -> None:
    endpoint = f"http://127.0.0.1:{_free_port()}/graphql"
    monkeypatch.setenv("MOSAICML_API_ENDPOINT", endpoint)
    for call in (lambda: mcli.get_runs(), lambda: list(mcli.follow_run_logs("x"))):
        with pytest.raises(APIConnectionError) as caught:
            call()
        message = str(caught.value)
        assert "nothing is listening" in message and "MOSAICML_API_ENDPOINT" in message, message
        assert "mcli local serve" in message and endpoint in message, message
        assert "ssl" not in message.lower(), message  # a plain-http endpoint never mentions TLS


def test_gpus_that_can_never_fit_name_the_limit(server: LocalServer) -> None:
    capacity = mcli.get_cluster("local")
    with pytest.raises(InstanceTypeUnavailable) as caught:
        mcli.create_run(RunConfig(image="img", command="true", compute={"gpus": 100}))
    message = str(caught.value)
    assert "100 GPUs can never fit" in message and "node(s) x" in message, message
    assert "nodes=" not in message  # no node count the user did not set
    with pytest.raises(InstanceTypeUnavailable, match=r"compute.nodes=1 need 16 GPUs on each node"):
        mcli.create_run(RunConfig(image="img", command="true", compute={"gpus": 16, "nodes": 1}))
    assert capacity.name == "local"


def test_an_oversized_websocket_message_is_not_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    run = mcli.create_run(RunConfig(image="img", command="python3 -c \"print('x' * 300000)\""))
    mcli.wait_for_run_status(run, "COMPLETED", timeout=60)
    monkeypatch.setattr(websocket, "MAX_MESSAGE", 64 * 1024)  # the server's chunk is bigger than this
    connection.close_background_session()  # the next websocket is opened with the smaller limit
    started = time.monotonic()
    with pytest.raises(MalformedResponseError, match="larger than mcli's"):
        mcli.get_run_logs(run, timeout=30)
    assert time.monotonic() - started < 5  # not resubscribed at the same offset over and over


async def test_follow_run_logs_with_await_async_for_and_async_with() -> None:
    run = await mcli.aio.create_run(RunConfig(image="img", command="printf 'a\\nb\\n'"))
    await mcli.aio.wait_for_run_status(run, RunStatus.COMPLETED, timeout=30)
    assert [line async for line in mcli.aio.follow_run_logs(run)] == ["a\n", "b\n"]
    async with mcli.aio.follow_run_logs(run) as lines:
        assert [line async for line in lines] == ["a\n", "b\n"]
    stream = await mcli.aio.follow_run_logs(run)
    assert [line async for line in stream] == ["a\n", "b\n"]
    await stream.aclose()
    with pytest.raises(mcli.NotFoundError):
        async for _ in mcli.aio.follow_run_logs("no-such-run-anywhere"):
            pass


def test_no_unclosed_warning_after_the_users_own_asyncio_run(server: LocalServer) -> None:
    script = textwrap.dedent(
        """
        import asyncio, gc, warnings
        warnings.simplefilter("always")
        import mcli, mcli.aio

        async def main():
            run = await mcli.aio.create_run(mcli.RunConfig(image="img", command="echo hi"))
            async def follow():
                return [line async for line in mcli.aio.follow_run_logs(run)]
            results = await asyncio.gather(*(follow() for _ in range(20)))
            assert all(lines == ["hi\\n"] for lines in results), results
            await mcli.aio.get_runs(limit=5)

        asyncio.run(main())
        asyncio.run(main())  # a second loop gets its own connections
        gc.collect()
        print("DONE", flush=True)
        """
    )
    env = {**os.environ, "PYTHONWARNINGS": "always", "PYTHONASYNCIODEBUG": "0"}
    result = subprocess.run(
        [sys.executable, "-X", "dev", "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and "DONE" in result.stdout, result.stderr
    for warning in ("Unclosed", "unclosed", "Task was destroyed", "never awaited"):
        assert warning not in result.stderr, result.stderr
