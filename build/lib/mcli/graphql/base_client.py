"""The base class of the generated client: it hands every operation to the session core.

ariadne-codegen copies this file into `generated/`; edit it here.
"""

from collections.abc import AsyncIterator
from typing import Any, Protocol

from pydantic import BaseModel


class Transport(Protocol):
    """What the generated client needs from the session core."""

    async def execute(
        self,
        query: str,
        operation_name: str | None,
        variables: dict[str, Any],
        *,
        timeout: float | None = None,
        idempotent: bool | None = None,
    ) -> dict[str, Any]: ...

    def subscribe(
        self,
        query: str,
        operation_name: str | None,
        variables: dict[str, Any],
        *,
        connect_timeout: float | None = 10.0,
    ) -> AsyncIterator[dict[str, Any]]: ...


def _jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True, exclude_unset=True)
    if isinstance(value, list):
        return [_jsonable(item) for item in value]
    return value


def to_variables(variables: dict[str, Any] | None) -> dict[str, Any]:
    """Input models become JSON objects; only fields that were set are sent."""
    from mcli.graphql.generated.base_model import UNSET

    return {key: _jsonable(value) for key, value in (variables or {}).items() if value is not UNSET}


class SessionBaseClient:
    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    async def execute(
        self,
        query: str,
        operation_name: str | None = None,
        variables: dict[str, Any] | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        return await self.transport.execute(query, operation_name, to_variables(variables), **options)

    def get_data(self, response: dict[str, Any]) -> dict[str, Any]:
        return response

    def execute_ws(
        self,
        query: str,
        operation_name: str | None = None,
        variables: dict[str, Any] | None = None,
        **options: Any,
    ) -> AsyncIterator[dict[str, Any]]:
        return self.transport.subscribe(query, operation_name, to_variables(variables), **options)
