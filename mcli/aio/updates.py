"""Changing a launched run: its scheduling settings and metadata, restarts, and clones (the async twins of
`mcli.sdk.updates`).
"""

from collections.abc import Coroutine, Iterable, Mapping
from typing import Any

from mcli.aio._call import RunRef, _check_timeout, _done, _optional_index, _request, _single
from mcli.aio.runs import _create, _existing, _fetch_run
from mcli.core.errors import InvalidArgumentError, NotFoundError, RunConfigException
from mcli.filters import build_name_selector, names_of, run_name
from mcli.graphql.generated.client import MAPIClient
from mcli.graphql.generated.input_types import UpdateRunInput, UpdateRunMetadataInput
from mcli.models import Run, RunConfig
from mcli.models.run_input import check_json_value

# A GraphQL Int (32-bit) of seconds.
MAX_DURATION_SECONDS = 2**31 - 1


def update_run_metadata(
    run: RunRef, metadata: Mapping[str, Any], *, timeout: float | None = 10
) -> Coroutine[Any, Any, Run]:
    """Merge keys into a run's metadata (keys not given are kept). The twin of `mcli.update_run_metadata`.

    Args:
        run, metadata, timeout: As in `mcli.update_run_metadata`; `timeout` bounds the awaitable (TimeoutError
            naming the call and the time).

    Returns:
        An awaitable of the updated Run.

    Raises:
        ValueError: `metadata` is not a mapping of JSON values with string keys.
        NotFoundError: No run has this name.
    """
    name = run_name(run)
    if not isinstance(metadata, Mapping) or not all(isinstance(key, str) for key in metadata):
        raise InvalidArgumentError(f"metadata must be a mapping with string keys, got {metadata!r}")
    payload = dict(metadata)
    check_json_value(payload, "metadata")

    async def work(api: MAPIClient) -> Run:
        result = await api.update_run_metadata(
            build_name_selector([name]), UpdateRunMetadataInput(metadata=payload)
        )
        if not result.update_run_metadata:
            raise NotFoundError(404, f"Run {name} not found")
        updated = result.update_run_metadata[0]
        return Run.from_graphql(updated, updated.details)

    return _request("update_run_metadata", timeout, work)


def _optional_bool(value: object, what: str) -> bool | None:
    if value is not None and not isinstance(value, bool):
        raise InvalidArgumentError(f"{what} must be True, False or None, got {value!r}")
    return value


def update_run(
    run: RunRef,
    *,
    preemptible: bool | None = None,
    priority: str | None = None,
    max_retries: int | None = None,
    retry_on_system_failure: bool | None = None,
    max_duration: float | None = None,
    timeout: float | None = 10,
) -> Coroutine[Any, Any, Run]:
    """Change a run's scheduling settings; settings left as None keep their value. The twin of `mcli.update_run`.

    `max_duration` is in hours (sent as whole seconds); on a running run it moves the deadline, counted from when
    the current execution started. `max_retries` is how many times a failed execution is resumed.

    Args:
        run, preemptible, priority, max_retries, retry_on_system_failure, max_duration, timeout: As in
            `mcli.update_run`; `timeout` bounds the awaitable (TimeoutError naming the call and the time).

    Returns:
        An awaitable of the updated Run.

    Raises:
        ValueError: Nothing to update, or a setting of the wrong type (at call time).
        NotFoundError: No run has this name.
    """
    name = run_name(run)
    update = UpdateRunInput()
    if (value := _optional_bool(preemptible, "preemptible")) is not None:
        update.preemptible = value
    if (value := _optional_bool(retry_on_system_failure, "retry_on_system_failure")) is not None:
        update.retry_on_system_failure = value
    if priority is not None:
        if not isinstance(priority, str) or not priority.strip():
            raise InvalidArgumentError(f"priority must be a non-empty string such as 'low', got {priority!r}")
        update.priority = priority.strip()
    if (retries := _optional_index(max_retries, "max_retries must be a number of retries")) is not None:
        update.max_retries = retries
    if max_duration is not None:
        if (
            isinstance(max_duration, bool)
            or not isinstance(max_duration, int | float)
            or not max_duration > 0
        ):
            raise InvalidArgumentError(
                f"max_duration must be a positive number of hours, got {max_duration!r}"
            )
        seconds = round(max_duration * 3600)
        if not 1 <= seconds <= MAX_DURATION_SECONDS:
            raise InvalidArgumentError(
                f"max_duration must be from 1 second to {MAX_DURATION_SECONDS // 3600} hours, got {max_duration!r}"
            )
        update.max_duration_seconds = seconds
    if not update.model_fields_set:
        raise InvalidArgumentError(
            "nothing to update: pass preemptible, priority, max_retries, retry_on_system_failure or max_duration"
        )

    async def work(api: MAPIClient) -> Run:
        result = await api.update_run(build_name_selector([name]), update)
        if not result.update_run:
            raise NotFoundError(404, f"Run {name} not found")
        updated = result.update_run[0]
        return Run.from_graphql(updated, updated.details)

    return _request("update_run", timeout, work)


def start_runs(runs: Iterable[RunRef], *, timeout: float | None = 10) -> Coroutine[Any, Any, list[Run]]:
    """Restart stopped or failed runs. The twin of `mcli.start_runs`; an empty list does nothing and sends nothing.

    Args:
        runs, timeout: As in `mcli.start_runs`; `timeout` bounds the awaitable (TimeoutError naming the call
            and the time).

    Returns:
        An awaitable of the Runs, each PENDING at the start of a new resumption.

    Raises:
        NotFoundError: A name matches no run; it is named, and no run was started.
        BadRequestError: A run is active or completed; none was started.
    """
    names = names_of(runs, "runs")
    if not names:
        _check_timeout(timeout)
        return _done([])

    async def work(api: MAPIClient) -> list[Run]:
        await _existing(api, names, "started")
        result = await api.start_runs(build_name_selector(names))
        return [Run.from_graphql(item, item.details) for item in result.start_runs]

    return _request("start_runs", timeout, work)


def start_run(run: RunRef, *, timeout: float | None = 10) -> Coroutine[Any, Any, Run]:
    """Restart one stopped or failed run as a new resumption. The twin of `mcli.start_run`.

    Args:
        run, timeout: As in `mcli.start_run`; `timeout` bounds the awaitable (TimeoutError naming the call and
            the time).

    Returns:
        An awaitable of the Run, PENDING at the start of a new resumption.

    Raises:
        NotFoundError: No run has this name.
        BadRequestError: The run is active or completed.
    """
    name = run_name(run)
    return _single(start_runs([name], timeout=timeout), name)


# Shortcuts `clone` accepts for compute and scheduling settings, as the 0.8.3 `Run.clone` does.
_CLONE_COMPUTE = ("cluster", "instance", "nodes", "gpu_type", "gpus", "cpus", "node_names")


_CLONE_SCHEDULING = ("priority", "preemptible", "max_retries", "retry_on_system_failure", "max_duration")


# Deprecated top-level spellings of compute settings, cleared when a clone changes compute.
_TOP_LEVEL_COMPUTE = ("cluster", "gpu_type", "gpu_num", "cpus")


def cloned_config(config: RunConfig, changes: Mapping[str, Any]) -> RunConfig:
    """`config` with `changes` applied: RunConfig fields, or the compute and scheduling shortcuts above.

    The name is dropped unless given, so that the server names the new run.
    """
    valid = (
        (set(RunConfig.model_fields) - set(_TOP_LEVEL_COMPUTE)) | set(_CLONE_COMPUTE) | set(_CLONE_SCHEDULING)
    )
    unknown = sorted(set(changes) - valid)
    if unknown:
        raise InvalidArgumentError(
            f"clone() got unknown settings {', '.join(unknown)}; valid ones are {', '.join(sorted(valid))}"
        )
    data = config.model_dump(exclude_none=True)
    data["name"] = None
    compute = {key: value for key, value in changes.items() if key in _CLONE_COMPUTE}
    scheduling = {key: value for key, value in changes.items() if key in _CLONE_SCHEDULING}
    data.update(
        {key: value for key, value in changes.items() if key not in compute and key not in scheduling}
    )
    if compute:
        for key in _TOP_LEVEL_COMPUTE:
            data.pop(key, None)
        data["compute"] = {**config.compute.model_dump(exclude_none=True), **compute}
    if scheduling:
        data["scheduling"] = {**config.scheduling.model_dump(exclude_none=True), **scheduling}
    return RunConfig.model_validate(data)


def clone_run(run: RunRef, *, timeout: float | None = 10, **changes: Any) -> Coroutine[Any, Any, Run]:
    """Launch a new run from a run's submitted config with `changes` applied (see `cloned_config`).

    Args:
        run, timeout: As in the synchronous call; `timeout` bounds the awaitable (TimeoutError naming the call and the time).

    Returns:
        An awaitable of the new Run (named by the server unless `name` is among the changes).

    Raises:
        ValueError: An unknown setting among `changes`.
        NotFoundError: No run has this name.
        RunConfigException: The run has no submitted config, or the changed config is invalid.
    """
    name = run_name(run)
    known = run.submitted_config if isinstance(run, Run) else None
    if known is not None:
        cloned_config(known, changes)  # bad changes fail now, before any request

    async def work(api: MAPIClient) -> Run:
        submitted = known or (await _fetch_run(api, name, True)).submitted_config
        if submitted is None:
            raise RunConfigException(f"Run {name} has no submitted config to clone")
        config = cloned_config(submitted, changes)
        config.validate_for_submit()
        return await _create(api, config.to_run_input(), config.name)

    return _request("clone_run", timeout, work)
