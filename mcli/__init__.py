"""mcli: a typed SDK for training runs on the MosaicML platform API, with a local MAPI server.

The seed's API, synchronous: `create_run`, `get_runs`, `get_run`, `stop_runs`, `delete_runs`, `get_run_logs`,
`follow_run_logs`, `watch_run_status`, `wait_for_run_status`, `initialize`, `set_api_key`, with `Run`, `RunConfig`
and `RunStatus`; every call takes `timeout` (seconds; TimeoutError naming the call after it) and `future=True`
(a concurrent.futures.Future at once). The same calls, async, are in `mcli.aio`. Every failure is an
`MCLIException`; the platform's answers are `MAPIException`s. `help(mcli.create_run)` and the others document
arguments, results and errors.

`import mcli` is cheap: the SDK's names are loaded on first use.

The tree, in layers, each importing only those below it: the contract (`schema.graphql`,
`mcli/graphql/queries/`) and the operations generated from it (`mcli.graphql.generated`); the session core
(`mcli.core`: one async session, retries, errors); the SDK (`mcli.aio` and its synchronous twin `mcli.sdk`, split
alike by job: runs, updates, logs, status, clusters; `mcli.models`, `mcli.filters`, `mcli.logs`, `mcli.paging`);
the command line (`mcli.cli`). Beside them, `mcli.local` serves the same API from this machine, and
`mcli.testing` runs it for tests.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mcli.sdk import *  # noqa: F403

__version__ = "0.1.0"


# Submodules a script reaches as `mcli.aio.create_run(...)` after a bare `import mcli`, as the README writes them.
_SUBMODULES = ("aio",)


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return import_module(f"mcli.{name}")
    sdk = import_module("mcli.sdk")
    if name in sdk.__all__:
        return getattr(sdk, name)
    raise AttributeError(f"module 'mcli' has no attribute {name!r}")


def __dir__() -> list[str]:
    # The public names only: not this module's own imports (import_module, Any), which are no part of the API.
    return sorted(["__version__", *_SUBMODULES, *import_module("mcli.sdk").__all__])
