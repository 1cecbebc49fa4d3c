"""Listing runs page by page: the cursor is followed with the next page's request already out while this one is
converted, and the cyclic garbage collector paused while thousands of Runs are built."""

import asyncio
from typing import Any

from mcli.core.collector import collector_paused
from mcli.core.errors import MalformedResponseError
from mcli.graphql.documents import document
from mcli.graphql.generated.client import MAPIClient
from mcli.models import Run

PAGE_SIZE = 500
CONVERT_SLICE = 50


async def runs_page(api: MAPIClient, page_input: Any, include_details: bool) -> dict[str, Any]:
    """One getRunsPaginated page as plain JSON (listings parse runs straight into `Run`, with no result models).

    Raises:
        MalformedResponseError: The page is not an object with a `runs` list.
    """
    data = await api.execute(
        query=document("get_runs_paginated"),
        operation_name="GetRunsPaginated",
        variables={"getRunsPaginatedData": page_input, "includeDetails": include_details},
    )
    page = data.get("getRunsPaginated")
    if not isinstance(page, dict) or not isinstance(page.get("runs"), list):
        shown = type(page.get("runs")).__name__ if isinstance(page, dict) else type(page).__name__
        raise MalformedResponseError(
            500,
            f"the server's reply to GetRunsPaginated does not match the API schema: "
            f"getRunsPaginated.runs should be a list, got {shown}",
        )
    return page


def runs_from_json(items: list[Any]) -> list[Run]:
    """Runs from a page's JSON items.

    Raises:
        MalformedResponseError: An item lacks a field or has one of the wrong type; the message names it.
    """
    try:
        return [Run.from_json(item) for item in items]
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as error:
        raise _schema_mismatch(items, error) from None


def _schema_mismatch(items: list[Any], error: Exception) -> MalformedResponseError:
    """Name the first field that breaks the schema, by validating the items against the generated model (only on
    this failure path: listings skip the models)."""
    from pydantic import ValidationError

    from mcli.graphql.generated.get_runs_paginated import GetRunsPaginatedGetRunsPaginatedRuns as RunModel

    prefix = "the server's reply to GetRunsPaginated does not match the API schema"
    for index, item in enumerate(items):
        try:
            RunModel.model_validate(item)
        except ValidationError as invalid:
            first = invalid.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            return MalformedResponseError(500, f"{prefix}: runs[{index}].{where}: {first['msg']}")
    return MalformedResponseError(500, f"{prefix}: {type(error).__name__}: {error}")


async def page_runs(api: MAPIClient, page_input: Any, include_details: bool, limit: int | None) -> list[Run]:
    """Every run matching `page_input`, up to `limit`, following the cursor.

    Raises:
        MalformedResponseError: A page breaks the schema, or the server sent the same cursor twice (following it
            would loop forever).
    """

    async def fetch(request: Any, have: int) -> dict[str, Any]:
        wanted = PAGE_SIZE if limit is None else min(PAGE_SIZE, limit - have)
        return await runs_page(api, request.model_copy(update={"limit": wanted}), include_details)

    runs: list[Run] = []
    seen_cursors: set[str] = set()
    pending: asyncio.Task[dict[str, Any]] | None = asyncio.ensure_future(fetch(page_input, 0))
    try:
        # Thousands of Runs that all stay alive: no collector passes over them while they are made.
        with collector_paused():
            while pending is not None:
                page = await pending
                pending = None
                items = page["runs"]
                cursor = page.get("cursor")
                have = len(runs) + len(items)
                if page.get("hasNextPage") and cursor and (limit is None or have < limit):
                    if cursor in seen_cursors:
                        raise MalformedResponseError(
                            500,
                            f"getRunsPaginated returned the cursor {cursor!r} twice after {have} runs; "
                            "stopping instead of reading the same pages forever",
                        )
                    seen_cursors.add(cursor)
                    next_page = page_input.model_copy(update={"cursor": cursor})
                    pending = asyncio.ensure_future(fetch(next_page, have))
                # Convert in slices, yielding between them, so the next request goes out while this page converts.
                for start in range(0, len(items), CONVERT_SLICE):
                    await asyncio.sleep(0)
                    runs.extend(runs_from_json(items[start : start + CONVERT_SLICE]))
        return runs if limit is None else runs[:limit]
    finally:
        if pending is not None:
            pending.cancel()
