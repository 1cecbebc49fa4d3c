"""The documents listings send as plain-JSON requests are the ones the generated client sends."""

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from graphql import parse, print_ast

from mcli.graphql.documents import document
from mcli.graphql.generated.client import MAPIClient
from mcli.graphql.generated.input_types import (
    CreateInteractiveRunInput,
    CreateRunInput,
    GetRunsPaginatedInput,
)


class _Capture:
    def __init__(self) -> None:
        self.query = ""

    async def execute(self, query: str, operation_name: str | None, variables: dict[str, Any], **_: Any) -> Any:
        self.query = query
        raise LookupError("captured")


CALLS: dict[str, Callable[[MAPIClient], Coroutine[Any, Any, Any]]] = {
    "get_runs_paginated": lambda api: api.get_runs_paginated(GetRunsPaginatedInput(limit=1), True),
    "create_run": lambda api: api.create_run(CreateRunInput(run_input={"image": "i"})),
    "create_interactive_run": lambda api: api.create_interactive_run(
        CreateInteractiveRunInput(run_input={"image": "i"})
    ),
}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_documents_sent_as_plain_json_match_the_generated_client(name: str) -> None:
    capture = _Capture()
    try:
        asyncio.run(CALLS[name](MAPIClient(capture)))  # type: ignore[arg-type]
    except LookupError:
        pass
    assert print_ast(parse(document(name))) == print_ast(parse(capture.query))
