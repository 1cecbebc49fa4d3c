"""Server bugs found by the fuzzer, each pinned: all were 500s (or a run that failed in the executor)."""

from __future__ import annotations

import asyncio
import base64
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mcli.local import LocalServer

from .conftest import KEY

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from server.helpers import post_raw


def _create(extra: str) -> str:
    return (
        'mutation { createRun(createRunData: {runInput: {image: "local/x:1", command: "true", runName: "reg"'
        + extra
        + "}}) { name details { originalRunInput } } }"
    )


HUGE_CURSOR = base64.urlsafe_b64encode(b"runs:99999999999999999999999").decode()
CASES = {
    # JSON input holding a number JSON cannot carry: was a 500 text/plain answer (response not serialisable).
    "json-infinity-parameters": (_create(", parameters: {x: 1e400}"), "finite"),
    "json-infinity-metadata-update": (
        'mutation { updateRunMetadata(getRunsData: {filters: {name: {in: ["reg"]}}}, '
        "updateRunMetadataData: {metadata: {a: -1e400}}) { name } }",
        "finite",
    ),
    # Integers beyond SQLite's 64 bits (and GraphQL's 32-bit Int output): OverflowError -> 500.
    "huge-cpus": (_create(", compute: {cpus: 100000000000000000000000}"), "compute.cpus"),
    "huge-max-retries": (_create(", scheduling: {maxRetries: 100000000000000000000000}"), "maxRetries"),
    "huge-max-duration": (_create(", scheduling: {maxDuration: 1e300}"), "maxDuration"),
    "cpus-above-int32": (_create(", compute: {cpus: 3000000000}"), "compute.cpus"),
    "huge-cursor": (
        f'query {{ getRunsPaginated(getRunsPaginatedData: {{cursor: "{HUGE_CURSOR}"}}) {{ runs {{ name }} }} }}',
        "cursor",
    ),
    # NUL cannot reach a process: the run was accepted, then FAILED with "Local executor error" and a traceback.
    "nul-in-command": (
        'mutation { createRun(createRunData: {runInput: {image: "local/x:1", command: "true\\u0000"}}) { name } }',
        "command",
    ),
    "nul-in-env": (_create(', envVariables: {A: "x\\u0000y"}'), "envVariables"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_values_are_400_not_500(make_local: Callable[..., LocalServer], case: str) -> None:
    server = make_local()
    query, word = CASES[case]

    async def go() -> tuple[int, Any, Any]:
        status, body = await post_raw(server.endpoint, KEY, {"query": query})
        _, runs = await post_raw(
            server.endpoint, KEY, {"query": "query { getRunsPaginated(getRunsPaginatedData: {}) { runs { name } } }"}
        )
        return status, body, runs

    status, body, runs = asyncio.run(go())
    assert status == 400, body
    assert [e["extensions"]["code"] for e in body["errors"]] == [400], body
    assert word.lower() in body["errors"][0]["message"].lower(), body
    assert runs["data"]["getRunsPaginated"]["runs"] == []
