"""Runs: launch, list, get, stop and delete (the async twins of `mcli.sdk.runs`)."""

from collections.abc import Coroutine, Iterable, Mapping
from typing import Any

from mcli.aio._call import RunRef, _check_timeout, _done, _request, _single
from mcli.core.errors import (
    CallTimeoutError,
    InvalidArgumentError,
    MalformedResponseError,
    NotFoundError,
    OutcomeUnknownError,
    RunConfigException,
)
from mcli.filters import build_name_selector, build_runs_page_input, names_of, run_name
from mcli.graphql.documents import document
from mcli.graphql.generated.client import MAPIClient
from mcli.graphql.generated.input_types import CreateInteractiveRunInput, CreateRunInput, StopRunsInput
from mcli.models import Run, RunConfig, RunStatus
from mcli.paging import page_runs, runs_from_json, runs_page


def as_run_config(run: object) -> RunConfig:
    """A RunConfig from a RunConfig or a mapping of its fields.

    Raises:
        RunConfigException: `run` is neither, or the mapping is not a valid run config.
    """
    if isinstance(run, RunConfig):
        return run
    if isinstance(run, Mapping):
        return RunConfig.from_dict(run)
    raise RunConfigException(f"run must be a RunConfig or a mapping of its fields, got {type(run).__name__}")


def _check_it(name: str | None) -> str:
    if name:
        return f"check with mcli.get_runs([{name!r}]) before trying again"
    return "check the newest runs with mcli.get_runs(limit=5) before trying again"


def create_run(run: RunConfig | Mapping[str, Any], *, timeout: float | None = 10) -> Coroutine[Any, Any, Run]:
    """Launch a run. The async twin of `mcli.create_run`.

    Args:
        run: A RunConfig (or a mapping of its fields) with at least `image` and `command`.
        timeout: Seconds for the call, or None to wait as long as it takes.

    Returns:
        An awaitable of the launched Run.

    Raises:
        RunConfigException: The config is incomplete or invalid (at call time, before any request).
        InstanceTypeUnavailable: The requested compute can never be placed on the cluster.
        ConflictError: A run with this name exists; leave `name` unset or choose another.
        OutcomeUnknownError: The request was sent and the connection broke before the reply; it is never sent
            twice, and the message says how to check whether the run was created.
        TimeoutError: `timeout` passed; the message says so, and how to check whether the run was created.
    """
    config = as_run_config(run)
    config.validate_for_submit()
    run_input = config.to_run_input()
    name = config.name

    coroutine = _request("create_run", timeout, lambda api: _create(api, run_input, name))

    async def explained() -> Run:
        try:
            return await coroutine
        except TimeoutError as error:
            raise CallTimeoutError(f"{error}; the run may have been created: {_check_it(name)}") from None

    return explained()


def create_interactive_run(
    run: RunConfig | Mapping[str, Any], *, seconds: int | None = None, timeout: float | None = 10
) -> Coroutine[Any, Any, Run]:
    """Launch an interactive run: it sleeps for `seconds` (the server's default, an hour locally, when None),
    holding its compute. The async twin of `mcli.create_interactive_run`.

    Args:
        run: A RunConfig (or a mapping of its fields) with at least `image`; its command is replaced by the sleep.
        seconds: How long the run stays up.
        timeout: Seconds for the call, or None to wait as long as it takes.

    Returns:
        An awaitable of the launched Run (run type INTERACTIVE).

    Raises:
        RunConfigException: The config is invalid (at call time, before any request).
        ValueError: `seconds` is not a whole number from 1 to 2**31 - 1.
    """
    config = as_run_config(run)
    config.model_copy(
        update={"command": "sleep"}
    ).validate_for_submit()  # any command is replaced by the sleep
    if seconds is not None and (
        isinstance(seconds, bool) or not isinstance(seconds, int) or not 1 <= seconds < 2**31
    ):
        raise ValueError(f"seconds must be a whole number of seconds from 1 to {2**31 - 1}, got {seconds!r}")
    create = CreateInteractiveRunInput(run_input=config.to_run_input())
    if seconds is not None:
        create.seconds = seconds

    async def work(api: MAPIClient) -> Run:
        data = await api.execute(
            query=document("create_interactive_run"),
            operation_name="CreateInteractiveRun",
            variables={"createRunData": create},
        )
        return _created_run(data, "createInteractiveRun")

    return _request("create_interactive_run", timeout, work)


async def _create(api: MAPIClient, run_input: dict[str, Any], name: str | None) -> Run:
    try:
        data = await api.execute(
            query=document("create_run"),
            operation_name="CreateRun",
            variables={"createRunData": CreateRunInput(run_input=run_input)},
        )
    except OutcomeUnknownError as error:
        unknown = OutcomeUnknownError(
            error.status,
            f"{error.lost}; whether the run was created is unknown, and createRun was "
            f"not sent again because that could create the run twice: {_check_it(name)}",
            request_id=error.request_id,
        )
        unknown.lost = error.lost
        raise unknown from None
    return _created_run(data, "createRun")


def _created_run(data: dict[str, Any], field: str) -> Run:
    """The new run a create mutation answered with, read straight from the JSON as listings read runs.

    Going through the generated result model (validated, dumped back to a dict, then read) took 21 us per create
    against 8 us; the model is used only to name what is wrong with a reply that does not read.

    Raises:
        MalformedResponseError: The reply is an empty list, or breaks the schema (the message names the field).
    """
    created: Any = data.get(field)
    if isinstance(created, list) and not created:
        raise MalformedResponseError(500, f"{field} answered with an empty list instead of the new run")
    try:
        return Run.from_json(created[0])
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as error:
        from mcli.graphql.generated.create_interactive_run import CreateInteractiveRun
        from mcli.graphql.generated.create_run import CreateRun

        # A ValidationError naming the field; `_request` turns it into a MalformedResponseError.
        (CreateRun if field == "createRun" else CreateInteractiveRun).model_validate(data)
        raise MalformedResponseError(
            500, f"the server's reply to {field} does not match the API schema: {type(error).__name__}: {error}"
        ) from None


def get_runs(
    runs: Iterable[RunRef] | None = None,
    cluster_names: Iterable[Any] | None = None,
    before: Any = None,
    after: Any = None,
    gpu_types: Iterable[Any] | None = None,
    gpu_nums: Iterable[int] | None = None,
    statuses: Iterable[RunStatus | str] | None = None,
    *,
    timeout: float | None = 10,
    clusters: Iterable[Any] | None = None,
    limit: int | None = None,
    include_details: bool = True,
    include_deleted: bool = False,
    ended_before: Any = None,
    ended_after: Any = None,
    user_emails: Iterable[str] | None = None,
) -> Coroutine[Any, Any, list[Run]]:
    """Runs matching every given filter, newest first, with all their details. The twin of `mcli.get_runs`.

    Args:
        runs, cluster_names, before, after, gpu_types, gpu_nums, statuses, clusters: as `mcli.get_runs`.
        timeout: Seconds for the whole listing, every page included, or None.
        limit: At most this many runs (default: all, following pages).
        include_details: True (default) fills `config.image`, `config.command`, `submitted_config`, `nodes`,
            `lifecycle` and `metadata`; False is a cheaper listing without them.
        include_deleted: Include deleted runs.
        ended_before, ended_after: Bound when runs ended (runs that have not ended never match).
        user_emails: Whose runs (by default the caller's own).

    Returns:
        An awaitable of the list of Runs.

    Raises:
        ValueError: A filter value is invalid (at call time).
        MAPIException: The platform answered with an error or could not be reached.
    """
    page_input = build_runs_page_input(
        runs=runs,
        cluster_names=cluster_names,
        before=before,
        after=after,
        gpu_types=gpu_types,
        gpu_nums=gpu_nums,
        statuses=statuses,
        clusters=clusters,
        limit=limit,
        include_deleted=include_deleted,
        ended_before=ended_before,
        ended_after=ended_after,
        user_emails=user_emails,
    )
    if not isinstance(include_details, bool):
        raise InvalidArgumentError(f"include_details must be True or False, got {include_details!r}")
    return _request("get_runs", timeout, lambda api: page_runs(api, page_input, include_details, limit))


async def _fetch_run(api: MAPIClient, name: str, include_details: bool) -> Run:
    page_input = build_runs_page_input(runs=[name], limit=1)
    page = await runs_page(api, page_input, include_details)
    if not page["runs"]:
        raise NotFoundError(404, f"Run {name} not found")
    return runs_from_json(page["runs"][:1])[0]


def get_run(
    run: RunRef, *, timeout: float | None = 10, include_details: bool = True
) -> Coroutine[Any, Any, Run]:
    """One run by name, with its details. The twin of `mcli.get_run`.

    Args:
        run, timeout, include_details: As in `mcli.get_run`; `timeout` bounds the awaitable (TimeoutError
            naming the call and the time).

    Returns:
        An awaitable of the Run.

    Raises:
        NotFoundError: No run has this name (a KubernetesException, 404).
    """
    name = run_name(run)
    return _request("get_run", timeout, lambda api: _fetch_run(api, name, include_details))


async def _existing(api: MAPIClient, names: list[str], action: str) -> None:
    """Raise NotFoundError naming every run in `names` that does not exist, before anything is changed."""
    found = await page_runs(api, build_runs_page_input(runs=names), False, None)
    found_names = {run.name for run in found}
    missing = [name for name in names if name not in found_names]
    if missing:
        listed = ", ".join(repr(name) for name in missing)
        raise NotFoundError(
            404, f"no run named {listed}; nothing was {action} (check the names with mcli.get_runs())"
        )


def stop_runs(
    runs: Iterable[RunRef], *, reason: str | None = None, timeout: float | None = 10
) -> Coroutine[Any, Any, list[Run]]:
    """Stop runs. The twin of `mcli.stop_runs`; an empty list does nothing and sends nothing.

    Args:
        runs, reason, timeout: As in `mcli.stop_runs`; `timeout` bounds the awaitable (TimeoutError naming the
            call and the time).

    Returns:
        An awaitable of the Runs with their status right after the request (STOPPING or TERMINATING while their
        processes end; `wait_for_run_status(run, "STOPPED")` waits for the stop to finish).

    Raises:
        NotFoundError: A name matches no run; it is named, and no run was stopped.
    """
    names = names_of(runs, "runs")
    if reason is not None and not isinstance(reason, str):
        raise InvalidArgumentError(f"reason must be a string, got {reason!r}")
    if not names:
        _check_timeout(timeout)
        return _done([])

    async def work(api: MAPIClient) -> list[Run]:
        await _existing(api, names, "stopped")
        options = StopRunsInput(reason=reason) if reason else None
        result = await api.stop_runs(build_name_selector(names), options)
        return [Run.from_graphql(item, item.details) for item in result.stop_runs]

    return _request("stop_runs", timeout, work)


def delete_runs(runs: Iterable[RunRef], *, timeout: float | None = 10) -> Coroutine[Any, Any, list[Run]]:
    """Delete runs, stopping active ones first. The twin of `mcli.delete_runs`; an empty list sends nothing.

    Args:
        runs, timeout: As in `mcli.delete_runs`; `timeout` bounds the awaitable (TimeoutError naming the call
            and the time).

    Returns:
        An awaitable of the deleted Runs.

    Raises:
        NotFoundError: A name matches no run; it is named, and no run was deleted.
    """
    names = names_of(runs, "runs")
    if not names:
        _check_timeout(timeout)
        return _done([])

    async def work(api: MAPIClient) -> list[Run]:
        await _existing(api, names, "deleted")
        result = await api.delete_runs(build_name_selector(names))
        return [Run.from_graphql(item, item.details) for item in result.delete_runs]

    return _request("delete_runs", timeout, work)


def stop_run(
    run: RunRef, *, reason: str | None = None, timeout: float | None = 10
) -> Coroutine[Any, Any, Run]:
    """Stop one run. The twin of `mcli.stop_run`.

    Args:
        run, reason, timeout: As in `mcli.stop_run`; `timeout` bounds the awaitable (TimeoutError naming the
            call and the time).

    Returns:
        An awaitable of the Run with its status right after the request (see `stop_runs`).

    Raises:
        NotFoundError: No run has this name.
    """
    name = run_name(run)
    return _single(stop_runs([name], reason=reason, timeout=timeout), name)


def delete_run(run: RunRef, *, timeout: float | None = 10) -> Coroutine[Any, Any, Run]:
    """Delete one run. The twin of `mcli.delete_run`.

    Args:
        run, timeout: As in `mcli.delete_run`; `timeout` bounds the awaitable (TimeoutError naming the call
            and the time).

    Returns:
        An awaitable of the deleted Run.

    Raises:
        NotFoundError: No run has this name.
    """
    name = run_name(run)
    return _single(delete_runs([name], timeout=timeout), name)
