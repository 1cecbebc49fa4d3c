"""`RayExecutor`: each node rank is a detached, named Ray actor (`ray_rank.RankActor`) on its own Ray node.

A run's ranks are placed all or nothing as one detached placement group with `STRICT_SPREAD` (one bundle of
GPUs/N GPUs per rank). Actors and placement groups are named after the run in a namespace of this server's own
(derived from its data dir), so a restarted server finds them again and resumes each rank's log at the byte
offset its own copy ends at. Capacity comes from the live cluster. `ray` is imported only here (extra `ray`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import socket
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mcli.local.executors.base import (
    Executor,
    ExecutorUnavailable,
    LogSink,
    Placement,
    RankExit,
    RankLaunch,
    RankProcess,
    SystemFailure,
)
from mcli.local.placement import Capacity

log = logging.getLogger("mcli.local")

READ_BYTES = 1024 * 1024
READ_WAIT_SECONDS = 10.0
# How long to watch for the cluster to report a node dead after its actor died, to name the node as the cause.
NODE_DEATH_WAIT_SECONDS = 10.0
# A placement group Ray has not placed by then is held up by work outside this server: the run fails (a system
# failure) instead of blocking every later placement.
PLACEMENT_TIMEOUT_SECONDS = 60.0
# Bundles must ask for something: a CPU-only rank reserves a sliver of a CPU, so many fit on a node.
CPU_ONLY_BUNDLE = {"CPU": 0.01}


def namespace_for(data_dir: Path) -> str:
    """The server's own Ray namespace: the same data dir finds the same actors after a restart."""
    return "mcli-local-" + hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:16]


def _actor_name(key: str, rank: int) -> str:
    return f"{key}-rank-{rank}"


class RayPlacement:
    """The executor's bookkeeping of one placement (`Placement.detail`)."""

    def __init__(self, group: Any, gpus_per_rank: int, world_size: int) -> None:
        self.group = group
        self.gpus_per_rank = gpus_per_rank
        self.world_size = world_size
        self.node_ids: list[str] = []  # known once the group is ready
        self.actors: dict[int, Any] = {}


class RayRank(RankProcess):
    def __init__(self, actor: Any, handle: dict[str, Any], executor: RayExecutor) -> None:
        self.actor = actor
        self._handle = handle
        self._executor = executor

    @property
    def handle(self) -> dict[str, Any]:
        return self._handle

    async def wait(self, sink: LogSink) -> RankExit:
        import ray

        while True:
            offset = sink.size
            try:
                data, spans, code = await self.actor.read.remote(offset, READ_BYTES, READ_WAIT_SECONDS)
            except ray.exceptions.RayActorError as exc:
                return RankExit(None, await self._executor.why_lost(self._handle, exc))
            for i, (start, at) in enumerate(spans):
                end = spans[i + 1][0] if i + 1 < len(spans) else offset + len(data)
                piece = data[max(start, offset) - offset : end - offset]
                if piece:
                    sink.append(piece, at)
            if code is not None:
                return RankExit(code)

    def signal(self, sig: int) -> None:
        self._executor.fire(self.actor.signal.remote(sig))


class RayExecutor(Executor):
    name = "ray"
    ranks_outlive_server = True

    def __init__(self, address: str, capacity: Capacity, data_dir: Path) -> None:
        try:
            import ray
        except ImportError as exc:
            raise ExecutorUnavailable("the Ray executor needs Ray: pip install 'mcli[ray]'") from exc

        self.namespace = namespace_for(data_dir)
        self._template = capacity
        if address != "auto":
            _check_reachable(address)
        try:
            ray.init(
                address=address,
                namespace=self.namespace,
                log_to_driver=False,
                logging_level=logging.WARNING,
            )
        except Exception as exc:  # Ray raises ConnectionError, RuntimeError, ValueError... for a bad cluster
            raise ExecutorUnavailable(f"could not connect to the Ray cluster at {address}: {exc}") from exc
        self._actor_class = ray.remote(_rank_actor_class())
        self._pending: set[str] = set()  # runs whose groups are not ready yet
        self._held: dict[str, RayPlacement] = {}
        self._background: set[asyncio.Future[Any]] = set()

    # -- capacity and placement -------------------------------------------------------------------------

    def _alive_nodes(self) -> dict[str, int]:
        """GPUs of each alive node, by node id."""
        import ray

        return {
            node["NodeID"]: int(node["Resources"].get("GPU", 0)) for node in ray.nodes() if node.get("Alive")
        }

    def capacity(self) -> Capacity:
        nodes = sorted(self._alive_nodes().items(), key=lambda node: (-node[1], node[0]))
        gpus = tuple(count for _, count in nodes)
        return Capacity(
            cluster_name=self._template.cluster_name,
            nodes=len(gpus),
            gpus_per_node=max(gpus, default=0),
            gpu_type=self._template.gpu_type,
            node_gpus=gpus or (0,),
            node_names=tuple(node_id for node_id, _ in nodes) or ("no-alive-ray-node",),
            cpu_ranks_share_nodes=False,
        )

    def place(self, key: str, nodes: int, gpus_per_rank: int) -> Placement | None:
        from ray.util import placement_group
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        if self._pending:
            return None  # where a pending group lands decides what is free; wait until it is known
        free = self._alive_nodes()
        for held in self._held.values():
            for node_id in held.node_ids:
                if node_id in free:
                    free[node_id] -= held.gpus_per_rank
        if sum(1 for gpus in free.values() if gpus >= gpus_per_rank) < nodes:
            return None
        bundle = {"GPU": float(gpus_per_rank)} if gpus_per_rank else CPU_ONLY_BUNDLE
        group = placement_group(
            [dict(bundle) for _ in range(nodes)], strategy="STRICT_SPREAD", name=key, lifetime="detached"
        )
        self._pending.add(key)
        detail = self._held[key] = RayPlacement(group, gpus_per_rank, nodes)
        # The actors are created now, so their worker processes start while the group is being placed.
        for rank in range(nodes):
            detail.actors[rank] = self._actor_class.options(
                name=_actor_name(key, rank),
                namespace=self.namespace,
                lifetime="detached",
                num_cpus=0,
                num_gpus=gpus_per_rank,
                max_restarts=0,
                scheduling_strategy=PlacementGroupSchedulingStrategy(
                    placement_group=group, placement_group_bundle_index=rank
                ),
            ).remote(f"{self.namespace}/{key}/rank-{rank}.log")
        return Placement(key, [], [{} for _ in range(nodes)], "", 0, detail)

    async def prepare(self, placement: Placement) -> None:
        import ray
        from ray.util import placement_group_table

        detail: RayPlacement = placement.detail
        try:
            try:
                await asyncio.wait_for(asyncio.ensure_future(detail.group.ready()), PLACEMENT_TIMEOUT_SECONDS)
            except TimeoutError:
                raise SystemFailure(
                    f"Ray did not place the run's {detail.world_size} node rank(s) within "
                    f"{PLACEMENT_TIMEOUT_SECONDS:.0f} s: work outside this server holds the cluster's resources"
                ) from None
            table = placement_group_table(detail.group)
            detail.node_ids = [table["bundles_to_node_id"][i] for i in range(detail.world_size)]
        finally:
            self._pending.discard(placement.key)
            # Where this group landed is known (or it is gone): runs that waited for that may fit now.
            asyncio.get_running_loop().call_soon(self.capacity_changed)
        try:
            nodes = await asyncio.gather(*(detail.actors[r].node.remote() for r in range(detail.world_size)))
        except ray.exceptions.RayError as exc:
            raise SystemFailure(f"The run's Ray actors could not start: {exc}") from exc
        placement.node_names = [node["node_id"] for node in nodes]
        placement.master_addr = nodes[0]["address"]
        placement.master_port = nodes[0]["free_port"]

    async def start(self, placement: Placement, launch: RankLaunch) -> RankProcess:
        import ray

        detail: RayPlacement = placement.detail
        actor = detail.actors[launch.rank]
        try:
            pid = await actor.start.remote(
                launch.command, dict(launch.env), str(launch.work_dir), dict(launch.files)
            )
        except ray.exceptions.RayActorError as exc:
            raise SystemFailure(f"Node rank {launch.rank} could not start on Ray: {exc}") from exc
        handle = {
            "actor": _actor_name(placement.key, launch.rank),
            "node_id": placement.node_names[launch.rank],
            "pid": pid,
            "gpus": detail.gpus_per_rank,
        }
        return RayRank(actor, handle, self)

    async def release(self, placement: Placement) -> None:
        import ray
        from ray.util import remove_placement_group

        detail: RayPlacement = placement.detail
        self._pending.discard(placement.key)
        self._held.pop(placement.key, None)
        for actor in detail.actors.values():
            with contextlib.suppress(ray.exceptions.RayError, asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.wrap_future(actor.cleanup.remote().future()), 10)
            with contextlib.suppress(ray.exceptions.RayError, ValueError):
                ray.kill(actor, no_restart=True)
        with contextlib.suppress(ray.exceptions.RayError, ValueError):
            remove_placement_group(detail.group)

    # -- restart ----------------------------------------------------------------------------------------

    def reattach(
        self, key: str, world_size: int, handles: Mapping[int, dict[str, Any]]
    ) -> tuple[Placement, dict[int, RankProcess]] | None:
        import ray
        from ray.util import get_placement_group

        actors: dict[int, Any] = {}
        for rank in range(world_size):
            with contextlib.suppress(ValueError):
                actors[rank] = ray.get_actor(_actor_name(key, rank), namespace=self.namespace)
        group = None
        with contextlib.suppress(ValueError, ray.exceptions.RayError):
            group = get_placement_group(key)
        detail = RayPlacement(group, 0, world_size)
        detail.actors = actors
        placement = Placement(
            key, [handles.get(r, {}).get("node_id", "") for r in range(world_size)], [], "", 0, detail
        )
        missing = [r for r in range(world_size) if r not in handles or r not in actors]
        if not missing:
            try:
                ray.get([actors[r].read.remote(0, 0, 0) for r in range(world_size)], timeout=30)
            except (ray.exceptions.RayError, TimeoutError):
                missing = list(range(world_size))
        if missing:
            self._discard(placement)
            where = ", ".join(
                f"node rank {r} ({handles.get(r, {}).get('node_id') or 'never started'})" for r in missing
            )
            raise SystemFailure(f"its Ray actors are gone: {where}")
        if group is not None:
            self._held[key] = detail
            table = ray.util.placement_group_table(group)
            detail.node_ids = list(table.get("bundles_to_node_id", {}).values())
            first = handles[0]
            detail.gpus_per_rank = int(first.get("gpus", 0))
        return placement, {r: RayRank(actors[r], dict(handles[r]), self) for r in range(world_size)}

    def _discard(self, placement: Placement) -> None:
        """Remove what is left of a run that cannot be resumed (its rank groups die with their actors)."""
        import ray
        from ray.util import remove_placement_group

        detail: RayPlacement = placement.detail
        for actor in detail.actors.values():
            with contextlib.suppress(ray.exceptions.RayError, ValueError):
                ray.kill(actor, no_restart=True)
        if detail.group is not None:
            with contextlib.suppress(ray.exceptions.RayError, ValueError):
                remove_placement_group(detail.group)

    # -- helpers ----------------------------------------------------------------------------------------

    async def why_lost(self, handle: Mapping[str, Any], exc: Exception) -> str:
        """Name the Ray node a rank was lost with, when the cluster reports it dead (it may take a moment)."""
        node_id = str(handle.get("node_id", ""))
        deadline = time.monotonic() + NODE_DEATH_WAIT_SECONDS
        while time.monotonic() < deadline:
            if node_id not in self._alive_nodes():
                return f"Ray node {node_id} was lost"
            await asyncio.sleep(0.2)
        return f"The Ray actor of {handle.get('actor')} on node {node_id} died: {type(exc).__name__}"

    def fire(self, ref: Any) -> None:
        """Send a call whose answer nobody waits for, without leaving an unhandled error behind."""
        future = asyncio.wrap_future(ref.future())
        self._background.add(future)
        future.add_done_callback(self._settled)

    def _settled(self, future: asyncio.Future[Any]) -> None:
        self._background.discard(future)
        if not future.cancelled():
            future.exception()

    async def close(self) -> None:
        import ray

        if self._background:
            await asyncio.wait(self._background, timeout=5)
        ray.shutdown()


def _check_reachable(address: str) -> None:
    """Fail in seconds with a fix, where Ray itself would retry for minutes."""
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host or address, int(port) if port.isdigit() else 6379), timeout=5):
            return
    except OSError as exc:
        raise ExecutorUnavailable(
            f"no Ray cluster answers at {address} ({exc.strerror or exc}): give the HEAD:PORT that "
            "`ray start --head` printed, or --ray-address auto on a node of the cluster"
        ) from None


def _rank_actor_class() -> type:
    from mcli.local.executors.ray_rank import RankActor

    return RankActor
