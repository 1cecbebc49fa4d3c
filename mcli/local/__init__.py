"""A local, MAPI-compatible server for `mcli`: runs commands as local processes.

Importing this package is cheap; the server's heavy dependencies load when a server starts.
"""

from mcli.local.server import LocalServer

__all__ = ["LocalServer"]
