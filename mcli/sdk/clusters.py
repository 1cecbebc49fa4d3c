"""Clusters and what is in use on them (`mcli.aio.clusters` is the twin)."""

import concurrent.futures
from collections.abc import Iterable
from typing import TYPE_CHECKING, Literal, overload

from mcli.sdk._call import _aio, _dispatch

if TYPE_CHECKING:  # loaded by the cluster calls (mcli.aio.clusters), not by `import mcli.sdk`
    from mcli.models.cluster import ClusterDetails


@overload
def get_clusters(
    clusters: "Iterable[str | ClusterDetails] | str | None" = None,
    *,
    include_utilization: bool = False,
    timeout: float | None = 10,
    future: Literal[False] = False,
) -> "list[ClusterDetails]": ...
@overload
def get_clusters(
    clusters: "Iterable[str | ClusterDetails] | str | None" = None,
    *,
    include_utilization: bool = False,
    timeout: float | None = 10,
    future: Literal[True],
) -> "concurrent.futures.Future[list[ClusterDetails]]": ...
def get_clusters(
    clusters: "Iterable[str | ClusterDetails] | str | None" = None,
    *,
    include_utilization: bool = False,
    timeout: float | None = 10,
    future: bool = False,
) -> "list[ClusterDetails] | concurrent.futures.Future[list[ClusterDetails]]":
    """The clusters runs can go to (all, or those named); with `include_utilization`, what is in use on them.

    Args:
        clusters: Cluster names (or ClusterDetails) to get; all when None.
        include_utilization (bool): Include the GPUs in use and the active and queued runs.
        timeout (Optional[float]): Time, in seconds, in which the call should complete; else TimeoutError.
            Ignored if `future` is True.
        future (bool): Return a Future at once; get the list with `return_value.result()`.

    Returns:
        List[ClusterDetails]: The clusters (or a Future of the list).

    Raises:
        ValueError: A bad cluster name (at call time).
    """
    work = _aio.get_clusters(
        clusters, include_utilization=include_utilization, timeout=None if future else timeout
    )
    return _dispatch(work, future)


@overload
def get_cluster(
    cluster: "str | ClusterDetails",
    *,
    include_utilization: bool = True,
    timeout: float | None = 10,
    future: Literal[False] = False,
) -> "ClusterDetails": ...
@overload
def get_cluster(
    cluster: "str | ClusterDetails",
    *,
    include_utilization: bool = True,
    timeout: float | None = 10,
    future: Literal[True],
) -> "concurrent.futures.Future[ClusterDetails]": ...
def get_cluster(
    cluster: "str | ClusterDetails",
    *,
    include_utilization: bool = True,
    timeout: float | None = 10,
    future: bool = False,
) -> "ClusterDetails | concurrent.futures.Future[ClusterDetails]":
    """One cluster by name, with what is in use on it

    Args:
        cluster: The cluster's name, or a ClusterDetails to refresh.
        include_utilization (bool): Include the GPUs in use and the active and queued runs (default True).
        timeout (Optional[float]): Time, in seconds, in which the call should complete; else TimeoutError.
            Ignored if `future` is True.
        future (bool): Return a Future at once; get the cluster with `return_value.result()`.

    Returns:
        ClusterDetails: The cluster (or a Future of it).

    Raises:
        NotFoundError: No cluster has this name.
    """
    work = _aio.get_cluster(
        cluster, include_utilization=include_utilization, timeout=None if future else timeout
    )
    return _dispatch(work, future)
