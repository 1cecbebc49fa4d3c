"""The async twin of `mcli.sdk`: the one implementation behind both.

Each function checks its arguments and the configuration when it is called (raising at once, before any request)
and returns an awaitable that does the network work; `mcli.sdk` runs those awaitables on its background loop.
The arguments and their meaning are the same as `mcli.sdk`'s, minus `future`.

Connections belong to the event loop that uses them and close when that loop ends (`asyncio.run(...)` cancels
every task before closing its loop, and mcli closes its connections then), so no "Unclosed client session" warning
appears. `await mcli.aio.aclose()` closes them earlier.

The functions live in modules by job, beside their `mcli.sdk` twins; import them from `mcli.aio`:
`_call` (how every call runs: arguments checked now, the work bounded by `timeout`, schema errors in words),
`runs` (create, create_interactive_run, get, stop, delete), `updates` (update_run, update_run_metadata, start, clone),
`logs` (get_run_logs, follow_run_logs), `status` (watch_run_status, wait_for_run_status) and `clusters`.
"""

from mcli.core.collector import collector_paused

# The transport stack (gql, graphql-core, the generated client, pydantic's models) loads here, on a script's first
# call: tens of thousands of objects that live as long as the process. The collector is paused while they are made,
# as the `mcli` command's start-up does, so that it neither walks them over and over while they load nor takes
# their arrival as a reason for a full collection a moment later (13-15 ms that landed in the first burst of
# calls; it now comes when the program has made enough objects of its own to need one).
with collector_paused():
    import mcli.connection as connection
    from mcli.aio._call import RunRef as RunRef
    from mcli.aio.clusters import get_cluster, get_clusters
    from mcli.aio.logs import follow_run_logs, get_run_logs, log_text_stream
    from mcli.aio.runs import as_run_config as as_run_config
    from mcli.aio.runs import (
        create_interactive_run,
        create_run,
        delete_run,
        delete_runs,
        get_run,
        get_runs,
        stop_run,
        stop_runs,
    )
    from mcli.aio.status import wait_for_run_status, watch_run_status
    from mcli.aio.updates import MAX_DURATION_SECONDS as MAX_DURATION_SECONDS
    from mcli.aio.updates import clone_run, start_run, start_runs, update_run, update_run_metadata
    from mcli.aio.updates import cloned_config as cloned_config
    from mcli.logs import LogStream, OpeningLogStream


async def aclose() -> None:
    """Close this event loop's connections to the platform now.

    They also close by themselves when the loop ends (e.g. at the end of `asyncio.run(...)`); later calls on the
    loop open new ones.

    Args:
        None.

    Returns:
        None, once every connection of this loop is closed.

    Raises:
        Nothing of its own.
    """
    await connection.close_sessions()


__all__ = [
    "LogStream",
    "OpeningLogStream",
    "aclose",
    "clone_run",
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
    "log_text_stream",
    "start_run",
    "start_runs",
    "stop_run",
    "stop_runs",
    "update_run",
    "update_run_metadata",
    "wait_for_run_status",
    "watch_run_status",
]
