"""Test your code against a real local MAPI server: no account, no mocks.

```python
from mcli.testing import local_server, mapi_environment

with local_server() as server, mapi_environment(server):
    run = mcli.create_run(mcli.RunConfig(name="t", image="python", command="echo hi"))
```

With pytest, the `mapi_server` and `mapi_env` fixtures do the same (`mcli.testing.pytest_plugin`, loaded
automatically). `mcli.testing.strategies` has hypothesis strategies for property tests; `mcli.testing.server`
holds what this package exports (the server subprocess, its users, the environment). Importing this package is
cheap: its names load on first use.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mcli.testing.server import (
        MapiServer,
        MapiUser,
        ServerStartError,
        async_local_server,
        local_server,
        mapi_environment,
        stop_active_runs,
    )

__all__ = [
    "MapiServer",
    "MapiUser",
    "ServerStartError",
    "async_local_server",
    "local_server",
    "mapi_environment",
    "stop_active_runs",
]


def __getattr__(name: str) -> Any:
    # Lazy, so that pytest loading `mcli.testing.pytest_plugin` in every run of every project costs nothing.
    if name in __all__:
        return getattr(import_module("mcli.testing.server"), name)
    raise AttributeError(f"module 'mcli.testing' has no attribute {name!r}")
