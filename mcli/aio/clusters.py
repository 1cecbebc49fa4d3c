"""Clusters and what is in use on them (the async twins of `mcli.sdk.clusters`).

`mcli.models.cluster` loads with the first cluster call, not with `mcli.aio`: a command or script that never asks
about clusters does not build its dataclasses.
"""

from __future__ import annotations

from collections.abc import Coroutine, Iterable
from typing import TYPE_CHECKING, Any

from mcli.aio._call import _request
from mcli.core.errors import InvalidArgumentError, NotFoundError
from mcli.filters import build_clusters_input
from mcli.graphql.generated.client import MAPIClient

if TYPE_CHECKING:
    from mcli.models.cluster import ClusterDetails


def get_clusters(
    clusters: Iterable[str | ClusterDetails] | str | None = None,
    *,
    include_utilization: bool = False,
    timeout: float | None = 10,
) -> Coroutine[Any, Any, list[ClusterDetails]]:
    """The clusters runs can go to (all, or those named), with what is in use on them if `include_utilization`.

    Args:
        clusters, include_utilization, timeout: As in `mcli.get_clusters`; `timeout` bounds the awaitable
            (TimeoutError naming the call and the time).

    Returns:
        An awaitable of the list of ClusterDetails.

    Raises:
        ValueError: A bad cluster name or flag (at call time).
    """
    clusters_input = build_clusters_input(clusters)
    if not isinstance(include_utilization, bool):
        raise InvalidArgumentError(f"include_utilization must be True or False, got {include_utilization!r}")

    async def work(api: MAPIClient) -> list[ClusterDetails]:
        from mcli.models.cluster import ClusterDetails

        result = await api.get_clusters(clusters_input, include_utilization)
        return [ClusterDetails.from_graphql(cluster) for cluster in result.get_clusters]

    return _request("get_clusters", timeout, work)


def get_cluster(
    cluster: str | ClusterDetails, *, include_utilization: bool = True, timeout: float | None = 10
) -> Coroutine[Any, Any, ClusterDetails]:
    """One cluster by name, with what is in use on it unless `include_utilization=False`.

    Args:
        cluster, include_utilization, timeout: As in `mcli.get_cluster`; `timeout` bounds the awaitable
            (TimeoutError naming the call and the time).

    Returns:
        An awaitable of the ClusterDetails.

    Raises:
        NotFoundError: No cluster has this name.
    """
    from mcli.models.cluster import ClusterDetails

    name = cluster.name if isinstance(cluster, ClusterDetails) else cluster
    found = get_clusters([name], include_utilization=include_utilization, timeout=timeout)

    async def work() -> ClusterDetails:
        for item in await found:
            if item.name == name:
                return item
        raise NotFoundError(404, f"Cluster {name} not found")

    return work()
