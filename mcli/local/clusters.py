"""`getClusters`: the local cluster's capacity and what is in use on it, in the shape MAPI returns.

The local server has one cluster. Its nodes are described once per instance type: a GPU instance when the nodes
have GPUs, and a `cpu` instance for CPU-only runs (which take no GPUs and always fit).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from mcli.local.placement import Capacity
from mcli.local.records import Run

CPU_INSTANCE = "cpu"
SUBMISSION_TYPES = ("TRAINING",)


@dataclass
class ClusterNode:
    name: str
    is_alive: bool
    is_schedulable: bool
    up_time: dict[str, float | None]


@dataclass
class ClusterInstance:
    name: str
    gpu_type: str
    gpus_per_node: int
    gpu_nums: list[int]
    num_nodes: int
    nodes: list[ClusterNode]
    cpus: int | None = None
    memory: str | None = None
    storage: str | None = None


@dataclass
class InstanceUtilization:
    instance: ClusterInstance
    cluster_id: str
    gpus_used: int
    gpus_available: int
    gpus_total: int


@dataclass
class ClusterRunUtilization:
    id: str
    created_at: float
    user_name: str
    run_name: str
    instance: str
    gpu_num: int
    gpu_type: str
    scheduling: dict[str, Any]
    max_duration_seconds: int | None
    start_time: float | None
    estimated_end_time: float | None
    reason: str | None


@dataclass
class ClusterUtilization:
    instance_utils: list[InstanceUtilization]
    active_runs_by_user: list[ClusterRunUtilization]
    queued_runs_by_user: list[ClusterRunUtilization]
    active_deployments_by_user: list[Any] = field(default_factory=list)
    queued_deployments_by_user: list[Any] = field(default_factory=list)


@dataclass
class ClusterDetails:
    id: str
    name: str
    allowed_instances: list[ClusterInstance]
    utilization: ClusterUtilization
    provider: str = "LOCAL"
    allow_fractional: bool = True
    allow_multinode: bool = True
    allowed_submission_types: tuple[str, ...] = SUBMISSION_TYPES
    is_multi_tenant: bool = False
    reservation_type: str | None = None
    scheduler_enabled: bool = True


def gpu_instance_name(capacity: Capacity) -> str:
    # The GPU type may be "none" (simulated GPUs on a machine without any): name the instance after GPUs then.
    kind = "gpu" if capacity.gpu_type.lower() in ("", "none", "cpu") else capacity.gpu_type
    return f"{kind}-{max(capacity.gpus_by_node())}x"


def instance_of(capacity: Capacity, run: Run) -> str:
    return gpu_instance_name(capacity) if run.gpus and any(capacity.gpus_by_node()) else CPU_INSTANCE


def _gpu_nums(gpus_by_node: tuple[int, ...]) -> list[int]:
    """Every total a run may ask for: the same count on each of one or more nodes that have that many."""
    return sorted(
        {
            per_node * nodes
            for per_node in range(1, max(gpus_by_node) + 1)
            for nodes in range(1, sum(1 for gpus in gpus_by_node if gpus >= per_node) + 1)
        }
    )


def describe_cluster(
    capacity: Capacity,
    up_since: float,
    active: list[Run],
    queued: list[Run],
    deadlines: dict[str, float | None],
) -> ClusterDetails:
    """The one local cluster: its instances, GPU use per instance, and the runs holding or waiting for it.

    GPUs in use are those the active runs hold, so the figure is the same whichever executor runs them.
    """
    cluster_id = uuid.uuid5(uuid.NAMESPACE_URL, f"mcli-local:{capacity.cluster_name}").hex
    gpus_by_node = capacity.gpus_by_node()
    nodes = [
        ClusterNode(capacity.node_name(i), True, True, {"start_date": up_since, "end_date": None})
        for i in range(len(gpus_by_node))
    ]
    cpu = ClusterInstance(CPU_INSTANCE, "None", 0, [0], len(nodes), nodes)
    instances = [cpu]
    utils = [InstanceUtilization(cpu, cluster_id, 0, 0, 0)]
    gpu_nodes = [node for node, gpus in zip(nodes, gpus_by_node, strict=True) if gpus]
    if gpu_nodes:
        gpu = ClusterInstance(
            gpu_instance_name(capacity),
            capacity.gpu_type,
            max(gpus_by_node),
            _gpu_nums(gpus_by_node),
            len(gpu_nodes),
            gpu_nodes,
        )
        total = sum(gpus_by_node)
        used = min(total, sum(run.gpus for run in active))
        instances.insert(0, gpu)
        utils.insert(0, InstanceUtilization(gpu, cluster_id, used, total - used, total))
    return ClusterDetails(
        id=cluster_id,
        name=capacity.cluster_name,
        allowed_instances=instances,
        utilization=ClusterUtilization(
            instance_utils=utils,
            active_runs_by_user=[_run_use(capacity, run, deadlines.get(run.id)) for run in active],
            queued_runs_by_user=[_run_use(capacity, run, None) for run in queued],
        ),
    )


def _run_use(capacity: Capacity, run: Run, deadline: float | None) -> ClusterRunUtilization:
    latest = run.resumptions[-1] if run.resumptions else None
    start = latest.start_time if latest else None
    return ClusterRunUtilization(
        id=run.id,
        created_at=run.created_at,
        user_name=run.created_by_email,
        run_name=run.name,
        instance=instance_of(capacity, run),
        gpu_num=run.gpus,
        gpu_type=run.gpu_type,
        scheduling={
            "priority": run.priority,
            "retry_on_system_failure": run.retry_on_system_failure,
            "preemptible": run.preemptible,
        },
        max_duration_seconds=run.max_duration_seconds,
        start_time=start,
        estimated_end_time=deadline,
        reason=run.reason if run.status in ("PENDING", "QUEUED") else None,
    )


def matches(cluster: ClusterDetails, filters: dict[str, Any] | None) -> bool:
    """Whether a cluster passes `getClusters` filters (`name.in`, `allowedSubmissionTypes.has`)."""
    filters = filters or {}
    names = (filters.get("name") or {}).get("in")
    if names is not None and cluster.name not in names:
        return False
    wanted = (filters.get("allowed_submission_types") or {}).get("has")
    return wanted is None or wanted in cluster.allowed_submission_types
