"""The local cluster's capacity and how runs are placed on it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Capacity:
    cluster_name: str = "local"
    nodes: int = 2
    gpus_per_node: int = 8
    gpu_type: str = "a100_80gb"


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
