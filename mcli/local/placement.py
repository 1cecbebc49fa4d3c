"""A cluster's capacity, and how the local executor places node ranks on its simulated nodes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Capacity:
    """What a cluster offers. `node_gpus` lists each node's GPUs when nodes differ (a live Ray cluster);
    empty means `nodes` nodes of `gpus_per_node` each."""

    cluster_name: str = "local"
    nodes: int = 2
    gpus_per_node: int = 8
    gpu_type: str = "none"
    node_gpus: tuple[int, ...] = ()
    # Each node's name when the cluster names its own nodes (a Ray node id), in `node_gpus` order.
    node_names: tuple[str, ...] = ()
    # The local executor runs extra CPU-only ranks beside each other; Ray spreads every rank on its own node.
    cpu_ranks_share_nodes: bool = True

    def gpus_by_node(self) -> tuple[int, ...]:
        return self.node_gpus or (self.gpus_per_node,) * self.nodes

    def node_name(self, node_index: int) -> str:
        """The node's own name if the cluster names its nodes, else `<cluster>-node-<index>` (as clusters list
        them and run details show them)."""
        if self.node_names:
            return self.node_names[node_index]
        return f"{self.cluster_name}-node-{node_index}"

    def can_ever_fit(self, nodes: int, gpus_per_rank: int) -> bool:
        """Whether some set of `nodes` distinct nodes could hold the ranks once the cluster is idle. A run never
        gets more node ranks than the cluster has nodes, CPU-only runs included."""
        if nodes > len(self.gpus_by_node()):
            return False
        if gpus_per_rank == 0 and self.cpu_ranks_share_nodes:
            return True
        return sum(1 for gpus in self.gpus_by_node() if gpus >= gpus_per_rank) >= nodes


@dataclass(frozen=True)
class RankSlot:
    """Where one node rank runs: a cluster node and the GPU indices it owns there."""

    node_index: int
    gpu_ids: tuple[int, ...]


class Placer:
    """Tracks free GPUs per node. CPU-only ranks take no GPUs and always fit."""

    def __init__(self, capacity: Capacity) -> None:
        self.capacity = capacity
        self._free = [set(range(capacity.gpus_per_node)) for _ in range(capacity.nodes)]

    def place(self, nodes: int, gpus_per_rank: int) -> list[RankSlot] | None:
        if gpus_per_rank == 0:
            return [RankSlot(rank % max(self.capacity.nodes, 1), ()) for rank in range(nodes)]
        # Each rank needs its own node; prefer the fullest nodes that still fit, to keep whole nodes free.
        candidates = sorted(
            (i for i, free in enumerate(self._free) if len(free) >= gpus_per_rank),
            key=lambda i: (len(self._free[i]), i),
        )
        if len(candidates) < nodes:
            return None
        slots = []
        for node_index in sorted(candidates[:nodes]):
            ids = tuple(sorted(self._free[node_index])[:gpus_per_rank])
            self._free[node_index].difference_update(ids)
            slots.append(RankSlot(node_index, ids))
        return slots

    def release(self, slots: list[RankSlot]) -> None:
        for slot in slots:
            self._free[slot.node_index].update(slot.gpu_ids)
