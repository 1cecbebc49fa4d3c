"""A replay server: answers each client with bytes the local server sent before, with no GraphQL execution.

    python replay.py '{"upstream": URL, "log_path": PATH, "chunk_size": N}'    # prints {"port": P}, serves until killed

It starts in record mode: every POST is forwarded to `upstream` (the local server) and its answer is kept, keyed by
the exact request body (and, as a fallback, by operation name). `POST /__replay` switches it to replay mode, where
a POST is answered from memory. Subscriptions are answered the same way in both modes: a getRunLogsV2 subscription
receives the log at `log_path` as the local server sends a finished run's log (base64 chunks of `chunk_size`
bytes with their end offsets), prepared in advance; any other subscription completes at once. So a client measured
against it pays only for its own work: HTTP, JSON, its models, its line splitting.

A bare ASGI app on uvicorn (the local server's HTTP and websocket stack, without Ariadne), run in the project's
venv by run.py.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sys
from typing import Any

LOG_SUBSCRIPTION = "getRunLogsV2"
PROTOCOLS = ("graphql-transport-ws", "graphql-ws")


def log_payloads(path: str, chunk_size: int) -> list[str]:
    """Each `payload` of the getRunLogsV2 stream of a finished run, as JSON text."""
    with open(path, "rb") as fh:
        data = fh.read()
    payloads = []
    for start in range(0, len(data), chunk_size):
        chunk = data[start : start + chunk_size]
        item = {"chunk": base64.b64encode(chunk).decode("ascii"), "endOffset": start + len(chunk)}
        payloads.append(json.dumps({"data": {LOG_SUBSCRIPTION: item}}))
    return payloads


class Replay:
    def __init__(self, upstream: str, payloads: list[str]) -> None:
        self.upstream = upstream
        self.payloads = payloads
        self.recording = True
        self.by_body: dict[bytes, bytes] = {}
        self.by_operation: dict[str, bytes] = {}
        self.session: Any = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            await self.http(scope, receive, send)
        elif scope["type"] == "websocket":
            await self.websocket(scope, receive, send)

    async def http(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        parts = []
        while True:
            event = await receive()
            parts.append(event.get("body", b""))
            if not event.get("more_body"):
                break
        body = b"".join(parts)
        if scope["path"] == "/__replay":
            self.recording = False
            answer = json.dumps({"recorded": len(self.by_body)}).encode()
        elif self.recording:
            answer = await self.forward(scope, body)
        else:
            answer = self.by_body.get(body) or self.by_operation[self.operation(body)]
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(answer)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": answer})

    @staticmethod
    def operation(body: bytes) -> str:
        try:
            return str(json.loads(body).get("operationName"))
        except (ValueError, AttributeError):
            return ""

    async def forward(self, scope: dict[str, Any], body: bytes) -> bytes:
        import aiohttp

        if self.session is None:
            self.session = aiohttp.ClientSession()
        headers = {
            k.decode(): v.decode()
            for k, v in scope["headers"]
            if k.lower() in (b"authorization", b"content-type")
        }
        async with self.session.post(self.upstream, data=body, headers=headers) as response:
            answer: bytes = await response.read()
        self.by_body[body] = answer
        self.by_operation[self.operation(body)] = answer
        return answer

    async def websocket(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        offered = [p.strip() for p in scope.get("subprotocols", [])]
        protocol = next((p for p in offered if p in PROTOCOLS), None)
        await receive()  # websocket.connect
        await send({"type": "websocket.accept", "subprotocol": protocol})
        modern = protocol == "graphql-transport-ws"
        streams: dict[str, asyncio.Task[None]] = {}

        async def text(message: str) -> None:
            await send({"type": "websocket.send", "text": message})

        async def stream(op_id: str, query: str) -> None:
            head = (
                '{"id":' + json.dumps(op_id) + ',"type":"' + ("next" if modern else "data") + '","payload":'
            )
            if LOG_SUBSCRIPTION in query:
                for payload in self.payloads:
                    await text(head + payload + "}")
            await text(json.dumps({"id": op_id, "type": "complete"}))

        try:
            while True:
                event = await receive()
                if event["type"] == "websocket.disconnect":
                    return
                message = json.loads(event.get("text") or event.get("bytes") or "{}")
                kind = message.get("type")
                if kind == "connection_init":
                    await text('{"type":"connection_ack"}')
                elif kind == "ping":
                    await text('{"type":"pong"}')
                elif kind in ("subscribe", "start"):
                    op_id = str(message.get("id"))
                    query = str((message.get("payload") or {}).get("query", ""))
                    streams[op_id] = asyncio.ensure_future(stream(op_id, query))
                elif kind in ("complete", "stop"):
                    task = streams.pop(str(message.get("id")), None)
                    if task is not None:
                        task.cancel()
        finally:
            for task in streams.values():
                task.cancel()


def main() -> None:
    import uvicorn

    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))
    from mcli.local.server import bind_socket

    job = json.loads(sys.argv[1])
    app = Replay(job["upstream"], log_payloads(job["log_path"], int(job["chunk_size"])))
    sock = bind_socket("127.0.0.1", 0)
    config = uvicorn.Config(
        app, lifespan="off", log_level="warning", ws_per_message_deflate=False, ws_max_size=16 * 1024 * 1024
    )
    server = uvicorn.Server(config)
    print(json.dumps({"port": sock.getsockname()[1]}), flush=True)
    asyncio.run(server.serve(sockets=[sock]))


if __name__ == "__main__":
    main()
