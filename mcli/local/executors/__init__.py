"""Executors run a run's node ranks for the lifecycle (`mcli/local/lifecycle.py`) behind one interface
(`base.Executor`): `local.LocalProcessExecutor` runs subprocesses on this machine; `ray_executor.RayExecutor`
(extra `ray`, imported only when chosen) runs each rank as a Ray actor (`ray_rank`) on a Ray cluster's nodes.
`create_executor` picks one by name (`mcli local serve --executor`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only for annotations: `mcli local --help` reads EXECUTORS without loading the executors
    from mcli.local.executors.base import Executor
    from mcli.local.placement import Capacity
    from mcli.local.process import RunUser

EXECUTORS = ("local", "ray")


def create_executor(
    kind: str,
    capacity: Capacity,
    data_dir: Path,
    ray_address: str | None = None,
    *,
    run_as: RunUser | None = None,
) -> Executor:
    if kind == "local":
        from mcli.local.executors.local import LocalProcessExecutor

        return LocalProcessExecutor(capacity, run_as)
    if kind == "ray":
        from mcli.local.executors.ray_executor import RayExecutor

        return RayExecutor(ray_address or "auto", capacity, data_dir)
    raise ValueError(f"unknown executor {kind!r}: choose one of {', '.join(EXECUTORS)}")
