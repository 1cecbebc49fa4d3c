"""The legacy graphql-ws subprotocol (subscriptions-transport-ws, what gql assumes when nothing is offered):
`data` results, one error object, `ka` keepalives, and problems said in messages rather than close codes."""

from __future__ import annotations

from typing import Any

from mcli.local.asgi.base import graphql_error
from mcli.local.asgi.websocket import WsSession


class GraphQLWsSession(WsSession):
    protocol = "graphql-ws"
    keepalive = {"type": "ka"}
    data_type = "data"

    async def init_timed_out(self) -> None:
        # The protocol has no close code for it, so it is said first.
        await self.send(
            {"type": "connection_error", "payload": {"message": "Connection initialisation timeout"}}
        )

    async def acknowledged(self) -> None:
        await self.send(self.keepalive)

    async def refused(self, op_id: str) -> bool:
        if op_id in self.tasks:
            await self.send_error(op_id, [graphql_error(f"Operation id {op_id} is already in use", 400)])
            return True
        return False

    def error_payload(self, errors: list[dict[str, Any]]) -> Any:
        return errors[0]
