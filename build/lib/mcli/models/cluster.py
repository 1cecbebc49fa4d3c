"""Clusters: where runs can go, the node types they offer, and what is in use on them (built from generated models)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mcli.graphql.generated.fragments import ClusterInstanceFields, ClusterRunFields
    from mcli.graphql.generated.get_clusters import (
        GetClustersGetClusters,
        GetClustersGetClustersUtilization,
        GetClustersGetClustersUtilizationInstanceUtils,
    )


@dataclass(frozen=True)
class ClusterNode:
    """One node of a cluster."""

    name: str
    is_alive: bool
    is_schedulable: bool


@dataclass(frozen=True)
class Instance:
    """A type of node in a cluster: `gpus` per node, `nodes` of them (names as in the 0.8.3 SDK)."""

    name: str
    gpu_type: str
    gpus: int
    nodes: int
    cpus: int | None = None
    memory: str | None = None
    storage: str | None = None
    gpu_nums: list[int] = field(default_factory=list)
    node_details: list[ClusterNode] = field(default_factory=list)

    @classmethod
    def from_graphql(cls, instance: ClusterInstanceFields) -> Instance:
        return cls(
            name=instance.name,
            gpu_type=instance.gpu_type,
            gpus=instance.gpus_per_node,
            nodes=instance.num_nodes,
            cpus=instance.cpus,
            memory=instance.memory,
            storage=instance.storage,
            gpu_nums=list(instance.gpu_nums),
            node_details=[ClusterNode(n.name, n.is_alive, n.is_schedulable) for n in instance.nodes],
        )


@dataclass(frozen=True)
class InstanceUtilization:
    """GPU use of one instance type."""

    instance: Instance
    gpus_used: int
    gpus_available: int
    gpus_total: int

    @classmethod
    def from_graphql(cls, util: GetClustersGetClustersUtilizationInstanceUtils) -> InstanceUtilization:
        return cls(
            instance=Instance.from_graphql(util.instance),
            gpus_used=util.gpus_used,
            gpus_available=util.gpus_available,
            gpus_total=util.gpus_total,
        )


@dataclass(frozen=True)
class ClusterUtilizationByRun:
    """A run holding capacity on a cluster, or waiting for it."""

    id: str
    user: str
    name: str
    gpu_num: int
    instance: str
    created_at: datetime
    gpu_type: str | None = None
    priority: str | None = None
    preemptible: bool = False
    retry_on_system_failure: bool = False
    start_time: datetime | None = None
    estimated_end_time: datetime | None = None
    max_duration_seconds: int | None = None
    reason: str | None = None

    @classmethod
    def from_graphql(cls, run: ClusterRunFields) -> ClusterUtilizationByRun:
        return cls(
            id=run.id,
            user=run.user_name,
            name=run.run_name,
            gpu_num=run.gpu_num,
            instance=run.instance,
            created_at=run.created_at,
            gpu_type=run.gpu_type,
            priority=run.scheduling.priority,
            preemptible=bool(run.scheduling.preemptible),
            retry_on_system_failure=bool(run.scheduling.retry_on_system_failure),
            # Only active runs carry times, only queued ones a reason.
            start_time=getattr(run, "start_time", None),
            estimated_end_time=getattr(run, "estimated_end_time", None),
            max_duration_seconds=getattr(run, "max_duration_seconds", None),
            reason=getattr(run, "reason", None),
        )


@dataclass(frozen=True)
class ClusterUtilization:
    """What is in use on a cluster: GPUs per instance, runs holding capacity, runs waiting in line (first first)."""

    cluster_instance_utils: list[InstanceUtilization]
    active_runs_by_user: list[ClusterUtilizationByRun]
    queued_runs_by_user: list[ClusterUtilizationByRun]

    @classmethod
    def from_graphql(cls, util: GetClustersGetClustersUtilization) -> ClusterUtilization:
        return cls(
            cluster_instance_utils=[InstanceUtilization.from_graphql(i) for i in util.instance_utils],
            active_runs_by_user=[ClusterUtilizationByRun.from_graphql(r) for r in util.active_runs_by_user],
            queued_runs_by_user=[ClusterUtilizationByRun.from_graphql(r) for r in util.queued_runs_by_user],
        )


@dataclass(frozen=True)
class ClusterDetails:
    """A cluster runs can be submitted to. `utilization` is None unless it was asked for."""

    id: str
    name: str
    provider: str
    allow_fractional: bool = False
    allow_multinode: bool = False
    cluster_instances: list[Instance] = field(default_factory=list)
    submission_types: list[str] = field(default_factory=list)
    is_multitenant: bool = False
    reservation_type: str | None = None
    scheduler_enabled: bool = False
    utilization: ClusterUtilization | None = None

    @classmethod
    def from_graphql(cls, cluster: GetClustersGetClusters) -> ClusterDetails:
        return cls(
            id=cluster.id,
            name=cluster.name,
            provider=cluster.provider,
            allow_fractional=cluster.allow_fractional,
            allow_multinode=cluster.allow_multinode,
            cluster_instances=[Instance.from_graphql(i) for i in cluster.allowed_instances],
            submission_types=list(cluster.allowed_submission_types),
            is_multitenant=cluster.is_multi_tenant,
            reservation_type=cluster.reservation_type,
            scheduler_enabled=cluster.scheduler_enabled,
            utilization=ClusterUtilization.from_graphql(cluster.utilization) if cluster.utilization else None,
        )
