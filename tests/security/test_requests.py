"""Cheap rejections: no key, oversized bodies, too many tokens, costly operations, deep JSON; SIGTERM under load.

Each attack runs while a probe sends a normal query, which must keep being answered.
"""

from __future__ import annotations

import json
import signal
import socket
import threading
import time
from collections.abc import Callable

import pytest

from .conftest import KEY, Probe, Server, post, query, report

MIB = 1024 * 1024
RUNS_DOC = "query Q($d: GetRunsPaginatedInput!) { getRunsPaginated(getRunsPaginatedData: $d) { cursor runs { name } } }"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> object:
    from .conftest import Server as S

    instance = S(tmp_path_factory.mktemp("requests"), {}, {})
    instance.start()
    yield instance
    instance.stop()


def _raw_exchange(
    port: int, head: bytes, body: bytes = b"", timeout: float = 10, answer_first: bool = False
) -> tuple[bytes, int, float]:
    """Send `head`, then up to len(body) bytes until the server stops reading; (response, bytes sent, seconds).
    With `answer_first`, wait for the server's answer to the headers alone before sending any of the body."""
    started = time.monotonic()
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(head)
        response = b""
        if answer_first:
            response = sock.recv(65536)
            try:
                while sent < len(body):
                    sent += sock.send(body[sent : sent + 65536])
            except OSError:  # the server closed the connection: it never reads the body
                pass
            return response, sent, time.monotonic() - started
        sock.setblocking(False)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                data = sock.recv(65536)
                if not data:
                    break
                response += data
            except BlockingIOError:
                pass
            if sent < len(body):
                try:
                    sent += sock.send(body[sent : sent + 65536])
                except BlockingIOError:
                    time.sleep(0.001)
                except OSError:  # closed by the server: it will not read the rest
                    break
            elif not response:
                time.sleep(0.001)
            elif b"\r\n\r\n" in response:
                header, _, rest = response.partition(b"\r\n\r\n")
                length = [int(v.split(b":")[1]) for v in header.split(b"\r\n") if v.lower().startswith(b"content-length")]
                if length and len(rest) >= length[0]:
                    break
        return response, sent, time.monotonic() - started


def _head(length: int, key: str | None) -> bytes:
    auth = f"Authorization: {key}\r\n" if key else ""
    return (f"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{auth}"
            f"Content-Length: {length}\r\n\r\n").encode()


def test_no_key_is_401_before_the_body_is_read(server: Server) -> None:
    before = server.rss()
    body = b"{" * (16 * MIB)
    with Probe(server.port) as probe:
        response, sent, took = _raw_exchange(server.port, _head(64 * MIB, None), body, answer_first=True)
    assert response.startswith(b"HTTP/1.1 401"), response[:200]
    assert b"connection: close" in response.lower()
    probe.check()
    grew = (server.rss() - before) / MIB
    report(f"no key + 64 MiB declared: 401 before any body byte, then the client could push {sent / MIB:.1f} MiB "
           f"into socket buffers before the close ({took * 1000:.0f} ms), server RSS +{grew:.1f} MiB; "
           f"{probe.summary()}")
    assert grew < 20


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_oversized_body_with_key_is_413(server: Server, declared: bool) -> None:
    body = json.dumps({"query": "{ __typename }", "padding": "x" * (2 * MIB)}).encode()
    if declared:
        response, _, took = _raw_exchange(server.port, _head(len(body), KEY), body)
    else:
        head = (f"POST /graphql HTTP/1.1\r\nHost: x\r\nAuthorization: {KEY}\r\n"
                "Transfer-Encoding: chunked\r\n\r\n").encode()
        chunked = b"".join(f"{len(part):x}\r\n".encode() + part + b"\r\n"
                           for part in (body[i : i + 65536] for i in range(0, len(body), 65536)))
        response, _, took = _raw_exchange(server.port, head, chunked + b"0\r\n\r\n")
    assert response.startswith(b"HTTP/1.1 413"), response[:300]
    error = json.loads(response.partition(b"\r\n\r\n")[2])["errors"][0]
    assert error["extensions"]["code"] == 413 and "--max-request-bytes" in error["message"]
    report(f"2 MiB body with key ({'declared' if declared else 'chunked'}): 413 in {took * 1000:.0f} ms")


def _aliases(n: int, field: str) -> str:
    return "{ " + " ".join(f"a{i}: {field}" for i in range(n)) + " }"


def _fragment_bomb(levels: int) -> str:
    fragments = ["fragment F0 on Query { __typename }"]
    fragments += [f"fragment F{i} on Query {{ ...F{i - 1} ...F{i - 1} }}" for i in range(1, levels)]
    return f"{{ ...F{levels - 1} }} " + " ".join(fragments)


ATTACKS: dict[str, tuple[str, dict[str, object], str]] = {
    "50 aliases of 10,000 runs": (
        _aliases(50, "getRunsPaginated(getRunsPaginatedData: {limit: 10000}) { cursor }"), {}, "runs per request"),
    "two pages of 6,000 by variables": (
        "query Q($a: GetRunsPaginatedInput!, $b: GetRunsPaginatedInput!) { x: getRunsPaginated(getRunsPaginatedData: $a)"
        " { cursor } y: getRunsPaginated(getRunsPaginatedData: $b) { cursor } }",
        {"a": {"limit": 6000}, "b": {"limit": 6000}}, "10,000 runs per request"),
    "60 aliases": (_aliases(60, "__typename"), {}, "the limit is 50"),
    "600 fields": ("{ " + "__typename " * 600 + "}", {}, "the limit is 500"),
    "fragment bomb 2^40": (_fragment_bomb(41), {}, "fields (fragments expanded)"),
    "1 MiB of tokens": ("{ " + "__typename " * 90_000 + "}", {}, "the limit is 100,000"),
    "90 KB of tokens": ("{ " + "__typename " * 9_000 + "}", {}, "3000 tokens"),
    "introspection fan-out": (
        "{ __schema { types { fields { type { fields { type { fields { name } } } } } } } }", {}, "introspection"),
}


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_costly_operations_are_400_naming_the_limit(server: Server, attack: str) -> None:
    text, variables, limit = ATTACKS[attack]
    with Probe(server.port, interval=0.05) as probe:
        timings = []
        for _ in range(10):
            started = time.monotonic()
            status, body = query(server.port, text, variables)
            timings.append(time.monotonic() - started)
            assert status == 400, body
            assert limit in body["errors"][0]["message"], body
            assert body["errors"][0]["extensions"]["code"] == 400
        time.sleep(0.2)
    probe.check()
    report(f"{attack} ({len(text):,} chars): 400 in max {max(timings) * 1000:.0f} ms over 10; {probe.summary()}")


def test_largest_allowed_pages_leave_the_server_responsive(start_server: Callable[..., Server]) -> None:
    """Four clients ask for 10,000 runs (the per-request limit) over and over; normal queries still get through."""
    server = start_server(seed=10_000)
    stop = threading.Event()
    pages: list[float] = []

    def hammer() -> None:
        while not stop.is_set() and len(pages) < 200:
            started = time.monotonic()
            status, body = query(server.port, RUNS_DOC, {"d": {"limit": 10_000}})
            assert status == 200 and len(body["data"]["getRunsPaginated"]["runs"]) == 10_000
            pages.append(time.monotonic() - started)

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    with Probe(server.port, interval=0.1) as probe:
        for thread in threads:
            thread.start()
        time.sleep(8)
        stop.set()
        for thread in threads:
            thread.join(60)
    probe.check()
    report(f"4 clients x 10,000-run pages for 8 s: {len(pages)} pages, max {max(pages):.2f} s each; "
           f"{probe.summary()}; server peak RSS {server.peak_rss / MIB:.0f} MiB")


def test_large_documents_are_not_kept(server: Server) -> None:
    """Distinct documents of 90 KB (one string literal each: few tokens) are parsed, answered and dropped."""
    before = server.rss()
    for i in range(400):
        cursor = f"{i:04d}" + "x" * 90_000
        status, body = query(server.port, f'{{ getRunsPaginated(getRunsPaginatedData: {{cursor: "{cursor}"}}) {{ cursor }} }}')
        assert status == 400 and "Invalid cursor" in body["errors"][0]["message"], body
    grew = (server.rss() - before) / MIB
    report(f"400 distinct 90 KB documents: server RSS +{grew:.1f} MiB (each kept would be about 0.2 MiB)")
    assert grew < 30


def test_deeply_nested_json_is_400(server: Server) -> None:
    status, body = post(server.port, b"[" * 200_000 + b"]" * 200_000)
    assert status == 400 and body["errors"][0]["extensions"]["code"] == 400, body
    status, body = query(server.port, RUNS_DOC, {"d": {"limit": 1, "filters": {"deep": json.loads("[" * 500 + "]" * 500)}}})
    assert status == 400, body


def test_sigterm_under_attack_stops_within_the_grace(start_server: Callable[..., Server]) -> None:
    server = start_server(seed=10_000)
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            try:
                query(server.port, RUNS_DOC, {"d": {"limit": 10_000}})
            except OSError:
                return

    threads = [threading.Thread(target=hammer, daemon=True) for _ in range(6)]
    for thread in threads:
        thread.start()
    time.sleep(2)
    took = server.stop(signal.SIGTERM, timeout=20)
    stop.set()
    for thread in threads:
        thread.join(10)
    report(f"SIGTERM with 6 clients asking 10,000-run pages: exited in {took:.2f} s (stop grace 1 s + 3 s drain)")
    assert server.proc is not None and server.proc.returncode == 0
    assert took < 6
