"""The documents listings send as plain-JSON requests are the ones the generated client sends."""

import asyncio
from typing import Any

from graphql import parse, print_ast

from mcli.graphql.documents import document
from mcli.graphql.generated.client import MAPIClient
from mcli.graphql.generated.input_types import GetRunsPaginatedInput


class _Capture:
    def __init__(self) -> None:
        self.query = ""

    async def execute(self, query: str, operation_name: str | None, variables: dict[str, Any], **_: Any) -> Any:
        self.query = query
        raise LookupError("captured")


def test_get_runs_paginated_document_matches_the_generated_client() -> None:
    capture = _Capture()
    try:
        asyncio.run(MAPIClient(capture).get_runs_paginated(GetRunsPaginatedInput(limit=1), True))  # type: ignore[arg-type]
    except LookupError:
        pass
    assert print_ast(parse(document("get_runs_paginated"))) == print_ast(parse(capture.query))
