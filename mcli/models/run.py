"""Run: an immutable snapshot of a launched run, built from the generated GraphQL models (no network here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mcli.graphql.generated.enums import RunType

if TYPE_CHECKING:
    # Only for annotations: the result models load with the first request, not with `import mcli`.
    from mcli.graphql.generated.fragments import (
        RunDetailFieldsFormattedRunEvents,
        RunDetailFieldsLifecycle,
        RunDetailFieldsNodes,
        RunFields,
        RunFieldsResumptions,
        RunSubmission,
    )

from mcli.models.run_actions import RunActions
from mcli.models.run_config import ComputeConfig, RunConfig, RunConfigError, SchedulingConfig
from mcli.models.run_status import RunStatus


@dataclass(frozen=True)
class RunNode:
    """One node rank of a run's latest execution."""

    rank: int | None
    name: str | None = None
    status: str | None = None
    reason: str | None = None

    @classmethod
    def from_graphql(cls, node: RunDetailFieldsNodes) -> RunNode:
        return cls(rank=node.rank, name=node.name, status=node.status, reason=node.reason)


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
    def from_graphql(cls, resumption: RunFieldsResumptions) -> Resumption:
        return cls(
            index=resumption.execution_index,
            cluster=resumption.cluster_name,
            gpu_type=resumption.gpu_type,
            gpus=resumption.gpus,
            cpus=resumption.cpus,
            node_count=resumption.nodes,
            status=RunStatus.from_graphql(resumption.status),
            started_at=resumption.start_time,
            ended_at=resumption.end_time,
            estimated_end_time=resumption.estimated_end_time,
            reason=resumption.reason,
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
    def from_graphql(cls, entry: RunDetailFieldsLifecycle) -> LifecycleEntry:
        return cls(
            execution_index=entry.execution_index,
            status=RunStatus.from_graphql(entry.status),
            started_at=entry.start_time,
            ended_at=entry.end_time,
            reason=entry.reason,
        )


@dataclass(frozen=True)
class RunEvent:
    """A human-readable event of a run. `event_type` stays a string so new server event types are kept."""

    resumption_index: int
    event_type: str
    event_time: datetime
    message: str

    @classmethod
    def from_graphql(cls, event: RunDetailFieldsFormattedRunEvents) -> RunEvent:
        return cls(
            resumption_index=event.resumption_index,
            event_type=event.event_type,
            event_time=event.event_time,
            message=event.event_message,
        )


@dataclass(frozen=True)
class Run(RunActions):
    """A run that has been launched on the MosaicML platform, as of the moment it was fetched.

    The first fields keep the seed's order. `cluster`, `gpus`, `gpu_type`, `cpus` and `node_count` describe the
    latest resumption. `metadata`, `image`, `nodes`, `lifecycle`, `events` and `submitted_config` come from the
    run's details and are None or empty when details were not requested.
    """

    run_uid: str
    name: str
    status: RunStatus
    created_at: datetime
    updated_at: datetime
    config: RunConfig
    started_at: datetime | None = None
    completed_at: datetime | None = None
    reason: str | None = None
    submitted_config: RunConfig | None = None
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

    # Runs are equal field by field, but identified by their uid; this keeps them usable in sets and as keys.
    def __hash__(self) -> int:
        return hash(self.run_uid)

    @property
    def latest_resumption(self) -> Resumption | None:
        return self.resumptions[-1] if self.resumptions else None

    @classmethod
    def from_graphql(cls, run: RunFields, details: RunSubmission | None = None) -> Run:
        """Build a Run from the generated `RunFields` model and, optionally, its details.

        `details` is a `RunSubmission` (what was submitted) or the fuller `RunDetailFields` (plus lifecycle, nodes
        and events). When it is not given, the `details` attribute of an operation result is used if present.
        """
        from mcli.graphql.generated.fragments import RunDetailFields, RunSubmission

        if details is None:
            carried = getattr(run, "details", None)
            details = carried if isinstance(carried, RunSubmission) else None
        full = details if isinstance(details, RunDetailFields) else None
        resumptions = sorted(
            (Resumption.from_graphql(item) for item in run.resumptions), key=lambda r: r.index
        )
        latest = resumptions[-1] if resumptions else None
        status = RunStatus.from_graphql(run.status)
        submitted = _submitted_config(details)
        known = _config_from_known_fields(run, latest, details)
        return cls(
            run_uid=run.id,
            name=run.name,
            status=status,
            created_at=run.created_at,
            updated_at=run.updated_at,
            config=submitted or known,
            # From the executions: the first one's start, and the latest one's end once the run is terminal.
            started_at=resumptions[0].started_at if resumptions else None,
            completed_at=latest.ended_at if latest and status.is_terminal() else None,
            # The official client read the reason from the last resumption only; prefer the run's own.
            reason=run.reason if run.reason is not None else (latest.reason if latest else None),
            submitted_config=submitted,
            nodes=[RunNode.from_graphql(node) for node in full.nodes] if full else [],
            created_by=run.created_by_email,
            priority=run.priority,
            preemptible=run.preemptible,
            retry_on_system_failure=run.retry_on_system_failure,
            max_retries=run.max_retries,
            max_duration_seconds=run.max_duration_seconds,
            is_deleted=run.is_deleted,
            run_type=run.run_type,
            cluster=latest.cluster if latest else None,
            gpus=latest.gpus if latest else None,
            gpu_type=latest.gpu_type if latest else None,
            cpus=latest.cpus if latest else None,
            node_count=latest.node_count if latest else None,
            resumptions=resumptions,
            lifecycle=[LifecycleEntry.from_graphql(entry) for entry in full.lifecycle] if full else [],
            events=[RunEvent.from_graphql(event) for event in full.formatted_run_events] if full else [],
            metadata=dict(details.metadata) if details and isinstance(details.metadata, dict) else None,
            image=details.image if details else None,
        )


def _submitted_config(details: RunSubmission | None) -> RunConfig | None:
    original = details.original_run_input if details else None
    if not isinstance(original, dict):
        return None
    try:
        return RunConfig.from_run_input(original)
    except RunConfigError:
        # A stored input this client cannot represent must not make the whole run unreadable.
        return None


def _config_from_known_fields(
    run: RunFields, latest: Resumption | None, details: RunSubmission | None
) -> RunConfig:
    compute = ComputeConfig(
        cluster=latest.cluster if latest else None,
        gpus=latest.gpus if latest else None,
        gpu_type=latest.gpu_type if latest else None,
        cpus=latest.cpus if latest else None,
        nodes=latest.node_count if latest and latest.node_count > 0 else None,
    )
    scheduling = SchedulingConfig(
        priority=run.priority,
        preemptible=run.preemptible,
        max_retries=run.max_retries,
        retry_on_system_failure=run.retry_on_system_failure,
        max_duration=run.max_duration_seconds / 3600 if run.max_duration_seconds else None,
    )
    metadata = details.metadata if details and isinstance(details.metadata, dict) else None
    return RunConfig(
        name=run.name,
        image=details.image if details else None,
        compute=compute,
        scheduling=scheduling,
        metadata=metadata,
    )
