"""The executable schema: `mcli/schema.graphql` bound to the engine with Ariadne (schema-first)."""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator
from importlib.resources import files
from typing import TYPE_CHECKING, Any, cast

from mcli.local.errors import ApiError, unauthorized
from mcli.local.records import Run, User
from mcli.local.timeutil import format_datetime

if TYPE_CHECKING:
    from typing import TypeAlias

    from graphql import GraphQLError, GraphQLResolveInfo, GraphQLSchema

    from mcli.local.engine import Engine

    Info: TypeAlias = GraphQLResolveInfo[Any]

log = logging.getLogger("mcli.local")


def load_sdl() -> str:
    return (files("mcli") / "schema.graphql").read_text(encoding="utf-8")


def _user(info: Info) -> User:
    user: User | None = info.context.get("user")
    if user is None:
        raise unauthorized()
    return user


def _engine(info: Info) -> Engine:
    engine: Engine = info.context["engine"]
    return engine


def _finite_json(value: Any) -> Any:
    """A JSON input value, refused (as a bad request) if it holds a number JSON cannot carry, such as 1e400."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            raise ValueError("JSON numbers must be finite; 1e400 and the like are out of range")
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return value


def _parse_json_literal(node: Any, variables: dict[str, Any] | None = None) -> Any:
    from graphql import value_from_ast_untyped

    return _finite_json(value_from_ast_untyped(node, variables))


def format_error(error: GraphQLError, debug: bool = False) -> dict[str, Any]:
    """Every error gets a numeric `extensions.code`; unexpected exceptions never leak details."""
    from graphql import GraphQLError

    original = error.original_error
    while isinstance(original, GraphQLError) and original.original_error is not None:
        original = original.original_error
    extensions: dict[str, Any]
    if isinstance(original, ApiError):
        message = original.message
        extensions = {"code": original.code}
        if original.error_type:
            extensions["type"] = original.error_type
    elif original is None or error.path is None:
        # Parse, validation and variable-coercion errors: the request itself is bad.
        message = error.message
        extensions = {"code": 400}
    else:
        log.error("internal error at %s", error.path, exc_info=original)
        message = "Internal server error"
        extensions = {"code": 500}
    formatted: dict[str, Any] = {"message": message, "extensions": extensions}
    if error.locations:
        formatted["locations"] = [{"line": loc.line, "column": loc.column} for loc in error.locations]
    if error.path:
        formatted["path"] = list(error.path)
    return formatted


def build_schema() -> GraphQLSchema:
    from ariadne import (
        MutationType,
        ObjectType,
        QueryType,
        ScalarType,
        SubscriptionType,
        make_executable_schema,
    )

    query = QueryType()
    mutation = MutationType()
    subscription = SubscriptionType()
    run_type = ObjectType("Run")
    datetime_scalar = ScalarType("DateTime", serializer=format_datetime)
    json_scalar = ScalarType("JSON", value_parser=_finite_json, literal_parser=_parse_json_literal)

    @query.field("getRunsPaginated")
    def resolve_runs_page(_: None, info: Info, get_runs_paginated_data: dict[str, Any]) -> Any:
        return _engine(info).get_runs_page(_user(info), get_runs_paginated_data)

    @query.field("getClusters")
    def resolve_clusters(_: None, info: Info, get_clusters_data: dict[str, Any]) -> Any:
        return _engine(info).get_clusters(_user(info), get_clusters_data)

    @mutation.field("createRun")
    def resolve_create(_: None, info: Info, create_run_data: dict[str, Any]) -> list[Run]:
        return [_engine(info).create_run(_user(info), create_run_data["run_input"])]

    @mutation.field("createInteractiveRun")
    def resolve_create_interactive(_: None, info: Info, create_run_data: dict[str, Any]) -> list[Run]:
        engine = _engine(info)
        return [engine.create_interactive_run(_user(info), create_run_data["run_input"], create_run_data.get("seconds"))]

    @mutation.field("stopRuns")
    def resolve_stop(
        _: None, info: Info, get_runs_data: dict[str, Any], stop_runs_data: dict[str, Any] | None = None
    ) -> list[Run]:
        reason = (stop_runs_data or {}).get("reason")
        return _engine(info).stop_runs(_user(info), get_runs_data, reason)

    @mutation.field("deleteRuns")
    async def resolve_delete(_: None, info: Info, get_runs_data: dict[str, Any]) -> list[Run]:
        return await _engine(info).delete_runs(_user(info), get_runs_data)

    @mutation.field("startRuns")
    def resolve_start(_: None, info: Info, get_runs_data: dict[str, Any]) -> list[Run]:
        return _engine(info).start_runs(_user(info), get_runs_data)

    @mutation.field("updateRun")
    def resolve_update(
        _: None, info: Info, get_runs_data: dict[str, Any], update_run_data: dict[str, Any]
    ) -> list[Run]:
        return [_engine(info).update_run(_user(info), get_runs_data, update_run_data)]

    @mutation.field("updateRunMetadata")
    def resolve_update_metadata(
        _: None, info: Info, get_runs_data: dict[str, Any], update_run_metadata_data: dict[str, Any]
    ) -> list[Run]:
        metadata = update_run_metadata_data["metadata"]
        return [_engine(info).update_run_metadata(_user(info), get_runs_data, metadata)]

    @run_type.field("details")
    def resolve_details(run: Run, info: Info) -> Any:
        return _engine(info).details(run)

    # Subscription sources are plain coroutines returning the stream, so a bad request fails at subscribe
    # time (a subscription error) instead of after the stream has started.
    async def logs_source(
        _: None, info: Info, get_run_logs_input: dict[str, Any]
    ) -> AsyncIterator[dict[str, Any]]:
        return _engine(info).run_logs(_user(info), get_run_logs_input)

    # Ariadne's typing only admits generator sources; graphql-core awaits a coroutine source just fine.
    subscription.set_source("getRunLogsV2", cast(Any, logs_source))

    @subscription.field("getRunLogsV2")
    def logs_field(chunk: dict[str, Any], *_: Any, **__: Any) -> dict[str, Any]:
        return chunk

    async def watch_source(_: None, info: Info, watch_run_status_input: dict[str, Any]) -> AsyncIterator[str]:
        return _engine(info).watch_status(_user(info), watch_run_status_input["name"])

    subscription.set_source("watchRunStatus", cast(Any, watch_source))

    @subscription.field("watchRunStatus")
    def watch_field(status: str, *_: Any, **__: Any) -> str:
        return status

    schema: GraphQLSchema = make_executable_schema(
        load_sdl(),
        query,
        mutation,
        subscription,
        run_type,
        datetime_scalar,
        json_scalar,
        convert_names_case=True,
    )
    return schema
