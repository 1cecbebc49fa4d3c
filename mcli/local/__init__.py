"""A local, MAPI-compatible server for `mcli`: runs commands as local processes.

Importing this package is cheap; the server's heavy dependencies load when a server starts. The client uses
one entry point, `ensure_daemon()`: the user's local daemon (started on first use), with its endpoint and key.

A request's way through: `server` (start-up, uvicorn; `cli`, `daemon` and `spawn` start and stop it) hands
connections to the ASGI app in `asgi/` (HTTP and websocket handlers, one class per websocket subprotocol), which
checks `auth`, `limits` and `connections` and executes on `schema` (Ariadne on `mcli/schema.graphql`; `fastpath`
for large listings). Resolvers call `engine` (the API operations, with `runinput` and `clusters`), which
keeps its state in `store` (SQLite, tables in `storeschema`, `records` the rows) and runs runs through
`lifecycle` (the state machine of executions), applying `runpolicy` (a rank's environment, what its end means)
on an executor from `executors/`; `process`, `logs` and `logstream` hold the ranks' processes and logs.
"""

from typing import TYPE_CHECKING, Any

from mcli.local.daemon import LocalDaemon, LocalDaemonError, ensure_daemon

if TYPE_CHECKING:
    from mcli.local.server import LocalServer

__all__ = ["LocalDaemon", "LocalDaemonError", "LocalServer", "ensure_daemon"]


def __getattr__(name: str) -> Any:
    if name == "LocalServer":  # the in-process server, for tests and embedding: loaded when asked for
        from mcli.local.server import LocalServer

        return LocalServer
    raise AttributeError(f"module 'mcli.local' has no attribute {name!r}")
