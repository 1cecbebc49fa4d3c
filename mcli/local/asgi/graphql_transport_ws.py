"""The graphql-transport-ws subprotocol (what gql speaks when offered it): `next` results, a list of errors,
`ping`/`pong`, and protocol errors as close codes (4401 unauthorised, 4409 id in use, 4429 init twice)."""

from __future__ import annotations

from typing import Any

from mcli.local.asgi.websocket import WsSession


class GraphQLTransportWsSession(WsSession):
    protocol = "graphql-transport-ws"
    keepalive = {"type": "ping"}
    data_type = "next"

    async def dispatch(self, message: dict[str, Any]) -> None:
        if message["type"] == "ping":
            await self.send({"type": "pong"})
        else:
            await super().dispatch(message)

    async def initialised_again(self) -> bool:
        await self.close(4429)  # too many initialisation requests
        return False

    async def refused(self, op_id: str) -> bool:
        if not self.initialised:
            await self.close(4401)
            return True
        if op_id in self.tasks:
            await self.close(4409)
            return True
        return False

    def error_payload(self, errors: list[dict[str, Any]]) -> Any:
        return errors
