"""GraphQL over a websocket: what both subprotocols share (the receive loop, authentication, the limits on a
socket, running operations). What differs, one class per subprotocol, is in `graphql_transport_ws` and
`graphql_ws`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import TYPE_CHECKING, Any, ClassVar

from mcli.local import fastjson
from mcli.local.asgi.base import graphql_error, key_from_header, log, requests_log
from mcli.local.fastpath import log_stream
from mcli.local.records import User
from mcli.local.schema import format_error

if TYPE_CHECKING:
    from starlette.websockets import WebSocket

    from mcli.local.asgi.app import MapiApp


class WsSession:
    """One websocket connection; a subclass per subprotocol says how its messages are spelled."""

    # The subprotocol's name, and how it spells a keepalive and a result.
    protocol: ClassVar[str]
    keepalive: ClassVar[dict[str, Any]]
    data_type: ClassVar[str]

    def __init__(self, app: MapiApp, ws: WebSocket) -> None:
        self.app = app
        self.ws = ws
        offered = [p.strip() for p in ws.scope.get("subprotocols", [])]
        self.offered_any = bool(offered)
        self.auth = app.authenticate(key_from_header(ws.headers.get("authorization")), ws.scope)
        self.initialised = False
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.send_lock = asyncio.Lock()
        self.closed = False
        self.cut_off = False
        self._init_deadline: asyncio.Task[None] | None = None

    @property
    def user(self) -> User | None:
        return self.auth.user

    async def send(self, message: dict[str, Any]) -> None:
        if self.closed:
            return
        async with self.send_lock:
            try:
                # fastjson (orjson): a log chunk message is 700 KiB of base64 that json.dumps would scan for escapes.
                await self.ws.send_text(fastjson.dumps(message).decode())
            except Exception:  # the peer went away; the receive loop notices and cleans up
                self.closed = True

    async def close(self, code: int) -> None:
        if not self.closed:
            self.closed = True
            with contextlib.suppress(Exception):
                await self.ws.close(code=code)

    async def run(self) -> None:
        from starlette.websockets import WebSocketDisconnect

        # Until it initialises, the socket may be cut off to make room for a new connection.
        self.app.guard.await_init(self, self._cut_off)
        await self.ws.accept(subprotocol=self.protocol if self.offered_any else None)
        keepalive = asyncio.create_task(self._keepalive())
        init_deadline = self._init_deadline = asyncio.create_task(self._require_init())
        try:
            while not self.closed:
                text = await self.ws.receive_text()
                self.app.stats.ws_messages += 1
                try:
                    message = json.loads(text)
                except (ValueError, RecursionError):
                    message = None
                if not isinstance(message, dict) or not isinstance(message.get("type"), str):
                    await self.close(4400)
                    break
                await self.dispatch(message)
        except (WebSocketDisconnect, RuntimeError, KeyError):
            # RuntimeError/KeyError: a disconnect raced with receive, or a binary frame arrived.
            pass
        finally:
            self.closed = True
            self.app.guard.gone(self)
            keepalive.cancel()
            init_deadline.cancel()
            for task in list(self.tasks.values()):
                task.cancel()
            await asyncio.gather(keepalive, init_deadline, *self.tasks.values(), return_exceptions=True)

    def _cut_off(self) -> None:
        self.cut_off = True
        if self._init_deadline is not None:
            self._init_deadline.cancel()

    async def _require_init(self) -> None:
        """Close a socket that has not sent `connection_init` in time: 4408, as graphql-transport-ws specifies.
        The same happens at once when this task is cancelled by the connection guard to make room."""
        if not self.cut_off:
            with contextlib.suppress(asyncio.CancelledError):  # cancelled: cut off early to make room
                await asyncio.sleep(self.app.limits.connection_init_timeout_seconds)
        if self.initialised or self.closed:
            return
        await self.init_timed_out()
        await self.close(4408)
        # Closing the socket ends the receive loop in `run`, which cleans up.

    async def _keepalive(self) -> None:
        interval = self.app.keepalive_seconds
        while not self.closed:
            await asyncio.sleep(interval)
            if self.initialised:
                await self.send(self.keepalive)

    async def dispatch(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        op_id = message.get("id")
        if kind == "connection_init":
            if self.initialised and not await self.initialised_again():
                return
            payload = message.get("payload")
            if isinstance(payload, dict):
                key = key_from_header(payload.get("Authorization") or payload.get("authorization"))
                if key is not None:
                    self.auth = self.app.authenticate(key, self.ws.scope)
            # Never refuse here: clients retry a refused connection forever. Auth errors go per subscription.
            self.initialised = True
            self.app.guard.initialised(self)
            await self.send({"type": "connection_ack"})
            await self.acknowledged()
        elif kind in ("pong", "ka"):
            return
        elif kind in ("subscribe", "start"):
            if not isinstance(op_id, str) or not op_id:
                await self.close(4400)
                return
            if await self.refused(op_id):
                return
            if self.user is None:
                # Refused before the payload is parsed, like an HTTP request without a valid key.
                await self.send_error(op_id, [graphql_error(self.auth.message, self.auth.status or 401)])
                return
            limit = self.app.limits.max_operations_per_socket
            if len(self.tasks) >= limit:
                await self.send_error(
                    op_id,
                    [graphql_error(f"At most {limit} operations may run at once on one websocket", 429)],
                )
                return
            self.tasks[op_id] = asyncio.create_task(self.operate(op_id, message.get("payload")))
        elif kind in ("complete", "stop"):
            task = self.tasks.pop(op_id, None) if isinstance(op_id, str) else None
            if task is not None:
                task.cancel()
        elif kind == "connection_terminate":
            await self.close(1000)
        else:
            await self.close(4400)

    # -- what each subprotocol says its own way --------------------------------------------------------

    async def init_timed_out(self) -> None:
        """Before the 4408 close of a socket that never initialised."""

    async def initialised_again(self) -> bool:
        """A second `connection_init`: whether to handle it as the first (else the socket was closed)."""
        return True

    async def acknowledged(self) -> None:
        """After `connection_ack`."""

    async def refused(self, op_id: str) -> bool:
        """Whether a subscription with this id is refused (and answered) before authentication is checked."""
        raise NotImplementedError

    def error_payload(self, errors: list[dict[str, Any]]) -> Any:
        raise NotImplementedError

    async def send_data(self, op_id: str, payload: dict[str, Any]) -> None:
        await self.send({"type": self.data_type, "id": op_id, "payload": payload})

    async def send_error(self, op_id: str, errors: list[dict[str, Any]]) -> None:
        await self.send({"type": "error", "id": op_id, "payload": self.error_payload(errors)})

    async def operate(self, op_id: str, data: Any) -> None:
        completed = False
        started = time.perf_counter()
        outcome = "cancelled"  # the client unsubscribed or went away
        try:
            completed = await self._operate(op_id, data)
            outcome = "error" if completed else "complete"
        except asyncio.CancelledError:
            raise
        except Exception:
            outcome = "500"
            log.exception("websocket operation %s failed", op_id)
            await self.send_data(op_id, {"errors": [graphql_error("Internal server error", 500)]})
        finally:
            if self.tasks.get(op_id) is asyncio.current_task():
                del self.tasks[op_id]
            if requests_log.isEnabledFor(logging.INFO):
                self.app.log_request("WS", data, self.user, outcome, started)
        if not completed:
            await self.send({"type": "complete", "id": op_id})

    async def _operate(self, op_id: str, data: Any) -> bool:
        """Run one operation; True when it already ended with an `error` message (no `complete` follows)."""
        from ariadne import subscribe

        parsed = self.app.parse(data, allow_subscription=True)
        if parsed.document is None:
            await self.send_error(op_id, parsed.failure["errors"])
            return True
        if parsed.op_type != "subscription":
            async with self.app.turn(parsed):
                if self.app.off_loop(parsed):
                    result = await asyncio.to_thread(self.app.execute_sync, parsed, data, self.user)
                else:
                    result = await self.app.execute_parsed(parsed, data, self.user)
                await self.send_data(op_id, result)
            return False
        context = {"user": self.user, "engine": self.app.engine}
        if not self.app._validate(self.app.schema, parsed.document):
            # Log followers skip graphql-core's per-event execution (same payloads; it steps aside otherwise).
            fast = await log_stream(self.app.schema, parsed.document, data, context)
            if fast is not None:
                try:
                    async for message in fast:
                        await self.send_data(op_id, message)
                        if self.closed:
                            break
                finally:
                    await fast.aclose()
                return False
        _, stream = await subscribe(self.app.schema, data, **self.app.execution_options(parsed, context))
        if isinstance(stream, list):
            await self.send_error(op_id, stream)
            return True
        results = stream
        try:
            async for item in results:
                payload: dict[str, Any] = {"data": item.data}
                if item.errors:
                    payload["errors"] = [format_error(e) for e in item.errors]
                await self.send_data(op_id, payload)
                if self.closed:
                    break
        finally:
            await results.aclose()
        return False
