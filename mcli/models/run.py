"""Run: an immutable snapshot of a launched run, built from a GraphQL answer (no network here)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from mcli.graphql.generated.enums import RunType

if TYPE_CHECKING:
    # Only for annotations: the result models load with the first request, not with `import mcli`.
    from mcli.graphql.generated.fragments import RunFields, RunSubmission

from mcli.models.config_sections import ComputeConfig, SchedulingConfig
from mcli.models.run_actions import RunActions
from mcli.models.run_config import RunConfig, RunConfigError
from mcli.models.run_status import RunStatus

T = TypeVar("T")


class _LazyField(Generic[T]):
    """A dataclass field that a Run read from an answer leaves unset, built from the run the first time it is read.

    A listing of thousands of runs builds no RunConfigs (pydantic validation) up front, and keeps no recipe
    objects per run either: the value is stored in the instance dict under `_lazy_<name>` when it is set (by
    __init__) or first built (by `build(run)`). Equality, repr, `dataclasses.replace`, copies and pickles read
    the field like any other; a pickle carries what `build` reads, so an unpickled run builds the same value.
    """

    def __init__(self, build: Callable[[Any], T], default: Any = ...) -> None:
        self._build = build
        self._default = default

    def __set_name__(self, owner: type, name: str) -> None:
        self._slot = "_lazy_" + name

    @overload
    def __get__(self, instance: None, owner: type) -> T: ...
    @overload
    def __get__(self, instance: object, owner: type) -> T: ...
    def __get__(self, instance: object | None, owner: type) -> T:
        if instance is None:
            if self._default is ...:
                raise AttributeError(self._slot)  # a required field: no default
            return self._default  # type: ignore[no-any-return]
        values = instance.__dict__
        try:
            return values[self._slot]  # type: ignore[no-any-return]
        except KeyError:
            value = values[self._slot] = self._build(instance)
            return value

    def __set__(self, instance: object, value: T) -> None:
        instance.__dict__[self._slot] = value


# Where a Run read from an answer keeps what its lazy configs are built from (atomic values or the JSON sent,
# never objects of their own, so that a listing adds no per-run objects for the garbage collector to scan).
_SUBMITTED = "_submitted_run_input"
_SENT_PREEMPTIBLE = "_sent_preemptible"
_SENT_RETRY = "_sent_retry_on_system_failure"


@dataclass(frozen=True)
class RunNode:
    """One node rank of a run's latest execution."""

    rank: int | None
    name: str | None = None
    status: str | None = None
    reason: str | None = None

    @classmethod
    def from_json(cls, node: Mapping[str, Any]) -> RunNode:
        return cls(
            rank=node.get("rank"), name=node.get("name"), status=node.get("status"), reason=node.get("reason")
        )


@dataclass(frozen=True)
class Resumption:
    """One execution of a run; a run that was retried or restarted has several."""

    index: int
    cluster: str
    gpu_type: str
    gpus: int
    cpus: int
    node_count: int
    status: RunStatus
    started_at: datetime | None = None
    ended_at: datetime | None = None
    estimated_end_time: datetime | None = None
    reason: str | None = None

    @classmethod
    def from_json(cls, resumption: Mapping[str, Any]) -> Resumption:
        start, end, estimated = (
            resumption.get("startTime"),
            resumption.get("endTime"),
            resumption.get("estimatedEndTime"),
        )
        return _assemble(
            cls,
            {
                "index": resumption["executionIndex"],
                "cluster": resumption["clusterName"],
                "gpu_type": resumption["gpuType"],
                "gpus": resumption["gpus"],
                "cpus": resumption["cpus"],
                "node_count": resumption["nodes"],
                "status": _status(resumption["status"]),
                "started_at": None if start is None else _datetime(start),
                "ended_at": None if end is None else _datetime(end),
                "estimated_end_time": None if estimated is None else _datetime(estimated),
                "reason": resumption.get("reason"),
            },
        )


@dataclass(frozen=True)
class LifecycleEntry:
    """One status a run entered, and when."""

    execution_index: int
    status: RunStatus
    started_at: datetime
    ended_at: datetime | None = None
    reason: str | None = None

    @classmethod
    def from_json(cls, entry: Mapping[str, Any]) -> LifecycleEntry:
        return cls(
            execution_index=entry["executionIndex"],
            status=_status(entry["status"]),
            started_at=_datetime(entry["startTime"]),
            ended_at=_optional_datetime(entry.get("endTime")),
            reason=entry.get("reason"),
        )


@dataclass(frozen=True)
class RunEvent:
    """A human-readable event of a run. `event_type` stays a string so new server event types are kept."""

    resumption_index: int
    event_type: str
    event_time: datetime
    message: str

    @classmethod
    def from_json(cls, event: Mapping[str, Any]) -> RunEvent:
        return cls(
            resumption_index=event["resumptionIndex"],
            event_type=str(event["eventType"]),
            event_time=_datetime(event["eventTime"]),
            message=event["eventMessage"],
        )


@dataclass(frozen=True)
class Run(RunActions):
    """A run that has been launched on the MosaicML platform, as of the moment it was fetched.

    The first fields keep the seed's order. `cluster`, `gpus`, `gpu_type`, `cpus` and `node_count` describe the
    latest resumption. `metadata`, `image`, `nodes`, `lifecycle`, `events` and `submitted_config` come from the
    run's details and are None or empty when details were not requested (`get_runs(include_details=False)`).

    Args:
        run_uid (str): Unique identifier for the run.
        name (str): User-defined name of the run.
        status (RunStatus): Status of the run at a moment in time.
        created_at (datetime): Date and time when the run was created.
        updated_at (datetime): Date and time when the run was last updated.
        config (RunConfig): The run configuration that was used to launch the run, without its name, so that
            `create_run(run.config)` launches it again as a new run.
        started_at (Optional[datetime]): Date and time when the run entered the STARTED RunStatus.
        completed_at (Optional[datetime]): Date and time when the run entered the COMPLETED RunStatus.
        reason (Optional[str]): Why the run is in its status (e.g. why it failed).
        submitted_config (Optional[RunConfig]): The configuration exactly as submitted, name included.
        nodes (List[RunNode]): The node ranks of its latest execution.
    """

    run_uid: str
    name: str
    status: RunStatus
    created_at: datetime
    updated_at: datetime
    config: _LazyField[RunConfig] = _LazyField(lambda run: _config(run))
    started_at: datetime | None = None
    completed_at: datetime | None = None
    reason: str | None = None
    submitted_config: _LazyField[RunConfig | None] = _LazyField(lambda run: _submitted_config(run), None)
    nodes: list[RunNode] = field(default_factory=list)
    created_by: str | None = None
    priority: str | None = None
    preemptible: bool = False
    retry_on_system_failure: bool = False
    max_retries: int | None = None
    max_duration_seconds: int | None = None
    is_deleted: bool = False
    run_type: RunType = RunType.UNKNOWN
    cluster: str | None = None
    gpus: int | None = None
    gpu_type: str | None = None
    cpus: int | None = None
    node_count: int | None = None
    resumptions: list[Resumption] = field(default_factory=list)
    lifecycle: list[LifecycleEntry] = field(default_factory=list)
    events: list[RunEvent] = field(default_factory=list)
    metadata: dict[str, Any] | None = None
    image: str | None = None

    if not TYPE_CHECKING:  # for mypy, the fields are plain attributes

        def __getattr__(self, name: str) -> Any:
            """An empty detail list a Run read from an answer left out: a new list, made when first read.

            A listing of thousands of runs without nodes, lifecycle or events then makes three lists fewer per run
            for the garbage collector to scan. Only called for attributes that are not there.
            """
            if name in _EMPTY_UNTIL_READ:
                made: list[Any] = []
                self.__dict__[name] = made
                return made
            raise AttributeError(
                f"{type(self).__name__!r} object has no attribute {name!r}", name=name, obj=self
            )

    # Runs are equal field by field, but identified by their uid; this keeps them usable in sets and as keys.
    def __hash__(self) -> int:
        return hash(self.run_uid)

    def __repr__(self) -> str:
        """One readable line: name, status, when it was created, where and on how many GPUs."""
        created = self.created_at.strftime("%Y-%m-%d %H:%M:%S %Z").strip()
        gpus = f"gpus={self.gpus}" + (f" x {self.gpu_type}" if self.gpus and self.gpu_type else "")
        return (
            f"Run(name={self.name!r}, status={self.status.value}, created={created}, "
            f"cluster={self.cluster!r}, {gpus})"
        )

    @property
    def latest_resumption(self) -> Resumption | None:
        return self.resumptions[-1] if self.resumptions else None

    @classmethod
    def from_graphql(cls, run: RunFields, details: RunSubmission | None = None) -> Run:
        """Build a Run from the generated `RunFields` model and, optionally, its details.

        `details` is a `RunSubmission` (what was submitted) or the fuller `RunDetailFields` (plus lifecycle, nodes
        and events). When it is not given, the `details` attribute of an operation result is used if present.
        """
        data = run.model_dump(by_alias=True)
        if details is not None:
            data["details"] = details.model_dump(by_alias=True)
        return cls.from_json(data)

    @classmethod
    def from_json(cls, run: Mapping[str, Any]) -> Run:
        """Build a Run straight from a `RunFields` object of a GraphQL answer (with `details` if selected).

        Listings parse thousands of runs this way with no intermediate models; the RunConfigs a Run carries are
        built the first time they are read.
        """
        details = run.get("details")
        if not isinstance(details, Mapping):
            details = None
        resumptions = [Resumption.from_json(item) for item in run["resumptions"]]
        if len(resumptions) > 1:
            resumptions.sort(key=_resumption_index)
        latest = resumptions[-1] if resumptions else None
        status = _status(run["status"])
        reason = run.get("reason")
        if details:
            metadata = details.get("metadata")
            metadata = dict(metadata) if isinstance(metadata, dict) else None
            nodes = details.get("nodes")
            lifecycle = details.get("lifecycle")
            events = details.get("formattedRunEvents")
        else:
            metadata = nodes = lifecycle = events = None
        run_type = run.get("runType")
        values = {
            "run_uid": run["id"],
            "name": run["name"],
            "status": status,
            "created_at": _datetime(run["createdAt"]),
            "updated_at": _datetime(run["updatedAt"]),
            # `config` and `submitted_config` are built from these on first use (see _LazyField).
            _SUBMITTED: details.get("originalRunInput") if details else None,
            _SENT_PREEMPTIBLE: run.get("preemptible"),
            _SENT_RETRY: run.get("retryOnSystemFailure"),
            # From the executions: the first one's start, and the latest one's end once the run is terminal.
            "started_at": resumptions[0].started_at if resumptions else None,
            "completed_at": latest.ended_at if latest and status.is_terminal() else None,
            # The official client read the reason from the last resumption only; prefer the run's own.
            "reason": reason if reason is not None else (latest.reason if latest else None),
            "created_by": run.get("createdByEmail"),
            "priority": run.get("priority"),
            "preemptible": bool(run.get("preemptible")),
            "retry_on_system_failure": bool(run.get("retryOnSystemFailure")),
            "max_retries": run.get("maxRetries"),
            "max_duration_seconds": run.get("maxDurationSeconds"),
            "is_deleted": bool(run.get("isDeleted")),
            "run_type": _RUN_TYPES.get(run_type)
            or (RunType(run_type) if run_type is not None else RunType.UNKNOWN),
            "cluster": latest.cluster if latest else None,
            "gpus": latest.gpus if latest else None,
            "gpu_type": latest.gpu_type if latest else None,
            "cpus": latest.cpus if latest else None,
            "node_count": latest.node_count if latest else None,
            "resumptions": resumptions,
            "metadata": metadata,
            "image": details.get("image") if details else None,
        }
        # An empty list is left out, and made when it is first read (see __getattr__).
        if nodes:
            values["nodes"] = [RunNode.from_json(node) for node in nodes]
        if lifecycle:
            values["lifecycle"] = [LifecycleEntry.from_json(entry) for entry in lifecycle]
        if events:
            values["events"] = [RunEvent.from_json(event) for event in events]
        return _assemble(cls, values)


_EMPTY_UNTIL_READ = frozenset({"nodes", "lifecycle", "events"})
_RUN_TYPES: dict[Any, RunType] = {member.value: member for member in RunType}
_STATUSES: dict[str, RunStatus] = {member.value: member for member in RunStatus}


def _status(value: Any) -> RunStatus:
    """RunStatus.from_string, with the exact values a server sends looked up first (a listing parses thousands)."""
    status = _STATUSES.get(value) if type(value) is str else None
    return status if status is not None else RunStatus.from_string(value)


_AssembledT = TypeVar("_AssembledT")


def _assemble(cls: type[_AssembledT], values: dict[str, Any]) -> _AssembledT:
    """A frozen dataclass instance whose instance dict is `values` (a new dict, every field), without __init__.

    A frozen dataclass's __init__ sets each field through object.__setattr__; taking a dict built by the caller is
    several times faster (a dict display also costs half what 30 keyword arguments do), which counts when a
    listing builds thousands of runs. Callers pass every field (tests/unit/test_run.py checks it); lazy fields
    are left out, and what they are built from is passed instead.
    """
    instance = object.__new__(cls)
    object.__setattr__(instance, "__dict__", values)
    return instance


def _resumption_index(resumption: Resumption) -> int:
    return resumption.index


def _datetime(value: Any) -> datetime:
    """MAPI's `YYYY-MM-DDTHH:MM:SS.sssZ` (or a datetime from a generated model); a naive value is taken as UTC."""
    parsed = (
        _from_iso(value) if type(value) is str else value if isinstance(value, datetime) else _from_iso(value)
    )
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


_from_iso = datetime.fromisoformat


def _optional_datetime(value: Any) -> datetime | None:
    return None if value is None else _datetime(value)


def _submitted_config(run: Run) -> RunConfig | None:
    """The configuration exactly as submitted, from the run input the answer carried (None without one)."""
    original = run.__dict__.get(_SUBMITTED)
    return _read_run_input(original) if isinstance(original, dict) else None


def _read_run_input(original: dict[str, Any]) -> RunConfig | None:
    try:
        return RunConfig.from_run_input(original)
    except RunConfigError:
        # A stored input this client cannot represent must not make the whole run unreadable.
        return None


def _config(run: Run) -> RunConfig:
    """The run's config: what was submitted if this client can read it, else what the run's fields say.

    It has no name (the run's name is `run.name`, and `submitted_config.name`), so `create_run(run.config)` launches
    the same configuration again under a new, unique name. It is built apart from `submitted_config`, so that
    changing one never changes the other.
    """
    values = run.__dict__
    original = values.get(_SUBMITTED)
    if isinstance(original, dict):
        submitted = _read_run_input(original)
        if submitted is not None:
            return submitted.model_copy(update={"name": None})
    latest = run.latest_resumption
    compute = ComputeConfig(
        cluster=latest.cluster if latest else None,
        gpus=latest.gpus if latest else None,
        gpu_type=latest.gpu_type if latest else None,
        cpus=latest.cpus if latest else None,
        nodes=latest.node_count if latest and latest.node_count > 0 else None,
    )
    max_duration = run.max_duration_seconds
    scheduling = SchedulingConfig(
        priority=run.priority,
        # As sent: an absent flag stays unset in the config, where the Run's own field reads it as False.
        preemptible=values.get(_SENT_PREEMPTIBLE),
        max_retries=run.max_retries,
        retry_on_system_failure=values.get(_SENT_RETRY),
        max_duration=max_duration / 3600 if max_duration else None,
    )
    return RunConfig(
        image=run.image,
        compute=compute,
        scheduling=scheduling,
        metadata=run.metadata,
    )
