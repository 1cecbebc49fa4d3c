"""A local, MAPI-compatible server for `mcli`: runs commands as local processes.

Importing this package is cheap; the server's heavy dependencies load when a server starts. The client uses
one entry point, `ensure_daemon()`: the user's local daemon (started on first use), with its endpoint and key.
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
