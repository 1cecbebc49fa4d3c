"""Plain records the store returns and the GraphQL layer renders (attribute names follow the schema in snake_case)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ACTIVE_STATUSES = ("PENDING", "QUEUED", "STARTING", "RUNNING", "TERMINATING")
TERMINAL_STATUSES = ("COMPLETED", "STOPPED", "FAILED")


@dataclass
class User:
    id: str
    email: str


@dataclass
class Resumption:
    execution_index: int
    cluster_name: str
    cpus: int
    gpu_type: str
    gpus: int
    nodes: int
    start_time: float | None
    end_time: float | None
    status: str
    reason: str | None
    estimated_end_time: float | None = None


@dataclass
class Run:
    seq: int
    id: str
    user_id: str
    name: str
    status: str
    reason: str | None
    created_at: float
    updated_at: float
    started_at: float | None
    completed_at: float | None
    created_by_email: str
    priority: str
    max_retries: int | None
    preemptible: bool
    retry_on_system_failure: bool
    max_duration_seconds: int | None
    is_deleted: bool
    run_type: str
    image: str
    command: str
    run_input: dict[str, Any]
    metadata: dict[str, Any]
    cluster_name: str
    gpu_type: str
    gpus: int
    cpus: int
    nodes: int
    resumptions: list[Resumption] = field(default_factory=list)

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


@dataclass
class Lifecycle:
    execution_index: int
    status: str
    start_time: float
    end_time: float | None
    reason: str | None


@dataclass
class Node:
    rank: int
    name: str
    status: str
    reason: str | None
    exit_code: int | None = None


@dataclass
class Event:
    resumption_index: int
    event_type: str
    event_time: float
    event_message: str


@dataclass
class Details:
    image: str
    original_run_input: dict[str, Any]
    metadata: dict[str, Any]
    last_execution_id: str
    lifecycle: list[Lifecycle]
    nodes: list[Node]
    formatted_run_events: list[Event]


@dataclass
class RunFilter:
    """Filters for a run query; None means "not filtered"."""

    names: list[str] | None = None
    statuses: list[str] | None = None
    created_lt: float | None = None
    created_gte: float | None = None
    ended_lt: float | None = None
    ended_gte: float | None = None
    cluster_names: list[str] | None = None
    gpu_types: list[str] | None = None
    gpu_nums: list[int] | None = None
    run_types: list[str] | None = None
