"""The runs API the seed documents, synchronous, with `future=True` Futures.

Every function is a thin wrapper over its twin in `mcli.aio`: arguments are checked here, at call time, and the
work runs on mcli's one background event loop, so these work from scripts, threads and notebooks alike.

The functions live in modules by job, beside their `mcli.aio` twins; import them from `mcli.sdk` (or `mcli`):
`_call` (the lazy `mcli.aio` and the dispatch to the loop), `runs` (create, create_interactive_run, get, stop,
delete), `logs` (get_run_logs, follow_run_logs), `status` (watch_run_status, wait_for_run_status), `updates`
(update_run, update_run_metadata, start_runs) and `clusters`; `initialize` and `set_api_key` are here.
"""

from typing import TYPE_CHECKING, Any

from mcli.config import initialize as _initialize
from mcli.config import save_api_key
from mcli.core.errors import (
    APIConnectionError,
    AuthenticationError,
    BadRequestError,
    CallTimeoutError,
    ConflictError,
    InstanceTypeUnavailable,
    InvalidArgumentError,
    KubernetesException,
    MAPIException,
    MCLIConfigError,
    MCLIException,
    NotFoundError,
    RunConfigException,
    RunFailed,
)
from mcli.logs import LogLine
from mcli.models import Run, RunConfig, RunStatus
from mcli.sdk.clusters import get_cluster, get_clusters
from mcli.sdk.logs import follow_run_logs, get_run_logs
from mcli.sdk.logs import log_text as log_text
from mcli.sdk.runs import (
    MCLIJobType,
    create_interactive_run,
    create_run,
    delete_run,
    delete_runs,
    get_run,
    get_runs,
    stop_run,
    stop_runs,
)
from mcli.sdk.status import wait_for_run_status, watch_run_status
from mcli.sdk.updates import start_run, start_runs, update_run, update_run_metadata

if TYPE_CHECKING:
    from mcli.models.cluster import ClusterDetails


def __getattr__(name: str) -> Any:
    # ClusterDetails loads on first use: `mcli run`, `mcli get runs` and a script's get_runs() never build the
    # cluster dataclasses (about 3 ms of a cold start).
    if name == "ClusterDetails":
        from mcli.models.cluster import ClusterDetails

        return ClusterDetails
    raise AttributeError(f"module 'mcli.sdk' has no attribute {name!r}")


def initialize(api_key: str | None = None) -> None:
    """Initialize the MosaicML platform

    Creates mcli's config file (`~/.mosaic/mcli_config`, mode 0600) if it is missing, then saves `api_key` if
    given.

    Args:
        api_key (Optional[str]): Optional value to set.

    Returns:
        None.

    Raises:
        ValueError: `api_key` is empty or contains whitespace.
    """
    _initialize(api_key)


def set_api_key(api_key: str) -> None:
    """Set the api key for the MosaicML platform

    Saves it in mcli's config file (mode 0600); later calls use it. MOSAICML_API_KEY in the environment still
    takes precedence (a warning says so).

    Args:
        api_key (str): value to set.

    Returns:
        None.

    Raises:
        ValueError: `api_key` is empty or contains whitespace.
    """
    save_api_key(api_key)


__all__ = [
    "APIConnectionError",
    "AuthenticationError",
    "BadRequestError",
    "CallTimeoutError",
    "ClusterDetails",
    "ConflictError",
    "InstanceTypeUnavailable",
    "InvalidArgumentError",
    "KubernetesException",
    "LogLine",
    "MAPIException",
    "MCLIConfigError",
    "MCLIException",
    "MCLIJobType",
    "NotFoundError",
    "Run",
    "RunConfig",
    "RunConfigException",
    "RunFailed",
    "RunStatus",
    "create_interactive_run",
    "create_run",
    "delete_run",
    "delete_runs",
    "follow_run_logs",
    "get_cluster",
    "get_clusters",
    "get_run",
    "get_run_logs",
    "get_runs",
    "initialize",
    "set_api_key",
    "start_run",
    "start_runs",
    "stop_run",
    "stop_runs",
    "update_run",
    "update_run_metadata",
    "wait_for_run_status",
    "watch_run_status",
]
