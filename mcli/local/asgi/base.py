"""What the HTTP and websocket handlers of the local server share: the path, loggers and error framing."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("mcli.local")
# One line per request at INFO (`mcli local serve --log-level info`); silent unless a handler is configured.
requests_log = logging.getLogger("mcli.local.requests")
# Ariadne logs every resolver error with a traceback; our formatter logs the unexpected ones itself.
ariadne_log = logging.getLogger("mcli.local.ariadne")
ariadne_log.addHandler(logging.NullHandler())
ariadne_log.propagate = False

GRAPHQL_PATH = "/graphql"


def graphql_error(message: str, code: int) -> dict[str, Any]:
    return {"message": message, "extensions": {"code": code}}


def key_from_header(value: str | None) -> str | None:
    if not value:
        return None
    value = value.strip()
    if value.lower().startswith("bearer "):
        value = value[7:].strip()
    return value or None
