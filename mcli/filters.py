"""Turn `get_runs`-style arguments into the generated GraphQL inputs, validating every value up front.

Each bad value raises ValueError naming the argument, before any request is made. A single value where a list is
expected (`runs="my-run"`, `statuses=RunStatus.RUNNING`) counts as a one-element list.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from enum import Enum
from typing import Any

from mcli.core.errors import InvalidArgumentError
from mcli.graphql.generated.input_types import (
    ClusterFilters,
    DateRangeFilter,
    Entity,
    GetClustersInput,
    GetRunsInput,
    GetRunsPaginatedInput,
    IntInFilter,
    RunFilters,
    RunStatusInFilter,
    StringInFilter,
)
from mcli.models.run_status import RunStatus

DateLike = datetime | date | str


def build_runs_page_input(
    runs: Any = None,
    cluster_names: Any = None,
    before: DateLike | None = None,
    after: DateLike | None = None,
    gpu_types: Any = None,
    gpu_nums: Any = None,
    statuses: Any = None,
    clusters: Any = None,
    limit: int | None = None,
    include_deleted: bool = False,
    cursor: str | None = None,
    ended_before: DateLike | None = None,
    ended_after: DateLike | None = None,
    user_emails: Any = None,
) -> GetRunsPaginatedInput:
    """The `getRunsPaginatedData` input for one page of runs.

    `runs` are names or objects with a `.name` (e.g. Run); `cluster_names` (or its deprecated alias `clusters`,
    whose warning is the caller's job) are names or objects with a `.name`; `before`/`after` are datetimes (naive
    means local time), dates or ISO 8601 strings (no offset means UTC); `gpu_types` are strings or enums;
    `gpu_nums` are non-negative ints; `statuses` are RunStatus values or their names in any case;
    `ended_before`/`ended_after` bound the end time like `before`/`after` bound the creation time; `user_emails`
    selects whose runs. An empty list matches no runs. Filters left as None are not sent.
    """
    if cluster_names is not None and clusters is not None:
        raise InvalidArgumentError("pass cluster_names or its deprecated alias clusters, not both")
    filters = RunFilters()
    if runs is not None:
        filters.name = StringInFilter(in_=names_of(runs, "runs"))
    cluster_values, cluster_arg = (
        (clusters, "clusters") if clusters is not None else (cluster_names, "cluster_names")
    )
    if cluster_values is not None:
        filters.cluster_name = StringInFilter(in_=names_of(cluster_values, cluster_arg))
    if before is not None or after is not None:
        filters.created_at = _date_range(before, after)
    if ended_before is not None or ended_after is not None:
        filters.ended_at = _date_range(ended_before, ended_after, ("ended_before", "ended_after"))
    if gpu_types is not None:
        filters.gpu_type = StringInFilter(in_=_gpu_types(gpu_types))
    if gpu_nums is not None:
        filters.gpu_num = IntInFilter(in_=_gpu_nums(gpu_nums))
    if statuses is not None:
        filters.status = RunStatusInFilter(in_=[status.to_graphql() for status in _statuses(statuses)])
    if not isinstance(include_deleted, bool):
        raise InvalidArgumentError(f"include_deleted must be True or False, got {include_deleted!r}")
    page = GetRunsPaginatedInput(filters=filters, include_deleted=include_deleted, limit=_limit(limit))
    if user_emails is not None:
        page.entity = Entity(emails=names_of(user_emails, "user_emails"))
    if cursor is not None:
        # Only set when given, so the first page's request carries no cursor key at all.
        page.cursor = _cursor(cursor)
    return page


def build_name_selector(runs: Any) -> GetRunsInput:
    """The `getRunsData` input selecting runs by name, for stop/delete/update mutations.

    Raises ValueError for an empty selection: an empty name filter must never reach the server, where it could
    mean "all runs".
    """
    names = names_of(runs, "runs")
    if not names:
        raise InvalidArgumentError("runs must name at least one run")
    return GetRunsInput(filters=RunFilters(name=StringInFilter(in_=names)))


def build_clusters_input(clusters: Any = None) -> GetClustersInput:
    """The `getClustersData` input: every cluster, or those named (names or objects with a `.name`)."""
    filters = ClusterFilters()
    if clusters is not None:
        filters.name = StringInFilter(in_=names_of(clusters, "clusters"))
    return GetClustersInput(filters=filters)


def _as_list(value: Any, argument: str) -> list[Any]:
    # Strings, enums and single objects (a Run) are one value, not something to iterate over.
    if isinstance(value, str | bytes | Enum) or not isinstance(value, Iterable):
        return [value]
    if isinstance(value, Mapping):
        raise InvalidArgumentError(f"{argument} must be a list, not a mapping")
    return list(value)


def _unique(values: list[Any]) -> list[Any]:
    return list(dict.fromkeys(values))


def run_name(run: Any, argument: str = "run") -> str:
    """The name of a run given as a name or an object with a `.name` (a Run); ValueError otherwise."""
    name = run if isinstance(run, str) else getattr(run, "name", None)
    if not isinstance(name, str) or not name.strip():
        raise InvalidArgumentError(f"{argument} must be a run name or a Run, got {run!r}")
    return name.strip()


def names_of(value: Any, argument: str) -> list[str]:
    """Unique names from one name or object with a `.name`, or a list of them; ValueError naming the bad item."""
    names = []
    for index, item in enumerate(_as_list(value, argument)):
        name = item if isinstance(item, str) else getattr(item, "name", None)
        if not isinstance(name, str) or not name.strip():
            raise InvalidArgumentError(
                f"{argument}[{index}] must be a non-empty name or an object with a .name, got {item!r}"
            )
        names.append(name.strip())
    return _unique(names)


def _gpu_types(value: Any) -> list[str]:
    result = []
    for index, item in enumerate(_as_list(value, "gpu_types")):
        text = item.value if isinstance(item, Enum) else item
        if not isinstance(text, str) or not text.strip():
            raise InvalidArgumentError(
                f"gpu_types[{index}] must be a non-empty string or a GPU type enum, got {item!r}"
            )
        result.append(text.strip())
    return _unique(result)


def _gpu_nums(value: Any) -> list[int]:
    result = []
    for index, item in enumerate(_as_list(value, "gpu_nums")):
        if isinstance(item, bool) or not isinstance(item, int) or item < 0:
            raise InvalidArgumentError(f"gpu_nums[{index}] must be a non-negative integer, got {item!r}")
        result.append(item)
    return _unique(result)


def _statuses(value: Any) -> list[RunStatus]:
    result = []
    for index, item in enumerate(_as_list(value, "statuses")):
        status = RunStatus.from_string(item)
        # from_string maps anything unrecognised to UNKNOWN; only an explicit "unknown" may mean UNKNOWN here.
        if status is RunStatus.UNKNOWN and not (isinstance(item, str) and item.strip().upper() == "UNKNOWN"):
            valid = ", ".join(status.value for status in RunStatus)
            raise InvalidArgumentError(f"statuses[{index}]: {item!r} is not a run status; valid values are {valid}")
        result.append(status)
    return _unique(result)


def _instant(value: DateLike, argument: str) -> tuple[str, datetime]:
    """The ISO string to send and the instant it denotes (for the before/after sanity check)."""
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.astimezone()  # naive datetimes are local time
        return aware.isoformat(), aware
    if isinstance(value, date):
        return value.isoformat(), datetime(value.year, value.month, value.day, tzinfo=UTC)
    if not isinstance(value, str):
        raise InvalidArgumentError(f"{argument} must be a datetime, a date or an ISO 8601 string, got {value!r}")
    text = value.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return day.isoformat(), datetime(day.year, day.month, day.day, tzinfo=UTC)
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidArgumentError(f"{argument} must be an ISO 8601 date or date-time, got {value!r}") from None
    # The server reads a string without an offset as UTC; sending the offset makes that explicit.
    aware = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return aware.isoformat(), aware


def _date_range(
    before: DateLike | None, after: DateLike | None, arguments: tuple[str, str] = ("before", "after")
) -> DateRangeFilter:
    before_arg, after_arg = arguments
    lt = _instant(before, before_arg) if before is not None else None
    gte = _instant(after, after_arg) if after is not None else None
    if lt and gte and gte[1] >= lt[1]:
        raise InvalidArgumentError(
            f"{after_arg} ({gte[0]}) must be earlier than {before_arg} ({lt[0]}); no run could match"
        )
    # Only given bounds are set, so an open end is omitted from the request instead of sent as null.
    date_range = DateRangeFilter()
    if lt:
        date_range.lt = lt[0]
    if gte:
        date_range.gte = gte[0]
    return date_range


def _limit(limit: int | None) -> int | None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise InvalidArgumentError(f"limit must be a positive integer, got {limit!r}")
    return limit


def _cursor(cursor: Any) -> str:
    if not isinstance(cursor, str) or not cursor:
        raise InvalidArgumentError(f"cursor must be a non-empty string from the previous page, got {cursor!r}")
    return cursor
