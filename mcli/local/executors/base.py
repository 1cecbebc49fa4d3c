"""The executor seam: what the run lifecycle (`mcli/local/lifecycle.py`) asks of whatever runs node ranks.

The lifecycle owns statuses, the store and the logs. An executor only places a run's ranks (all or nothing),
starts each rank's command with the environment and work dir it is handed, streams the rank's output bytes into
the log sink it is handed, signals the rank's process group, reports how the rank ended, reports capacity, and
re-attaches to ranks that outlived a server restart. It never imports the engine.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from mcli.local.placement import Capacity
from mcli.local.process import RunUser


class LogSink(Protocol):
    """Where a rank's output goes: the per-rank log that clients follow."""

    @property
    def size(self) -> int:
        """Bytes already in the log: where a re-attached rank's output resumes."""
        ...

    def append(self, data: bytes, at: float) -> None: ...


class ExecutorUnavailable(Exception):
    """The executor cannot start (its extra is not installed, its cluster does not answer): a user can fix it."""


class SystemFailure(Exception):
    """The platform, not the run's command, ended or prevented a rank (node lost, actors gone, ...)."""


@dataclass(frozen=True)
class RankLaunch:
    """Everything a rank's command needs. The environment is complete but for what only the executor knows on
    the rank's node (Ray's CUDA_VISIBLE_DEVICES); `files` (path -> text) are written on the rank's node before the
    command starts in `work_dir`."""

    rank: int
    command: str
    env: Mapping[str, str]
    work_dir: Path
    files: Mapping[str, str] = field(default_factory=dict)


def prepare_work_dir(work_dir: str | Path, files: Mapping[str, str], owner: RunUser | None = None) -> None:
    """Create the rank's work dir and write its files (on the node the rank runs on), readable by their owner
    only; with `owner`, they and the run's directory holding them belong to that user."""
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True, mode=0o700)
    made = {work, work.parent}
    for path, text in files.items():
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        made |= {target, target.parent}
    if owner is not None:
        for made_path in made:
            os.chown(made_path, owner.uid, owner.gid)


@dataclass(frozen=True)
class RankExit:
    """How a rank ended. `exit_code` is negative for a signal and None when no code is known; `system_failure`
    says why the platform ended the rank when its command did not end by itself."""

    exit_code: int | None
    system_failure: str | None = None


@dataclass
class Placement:
    """A run's ranks placed on nodes and holding their resources until `Executor.release`.

    `node_names[i]` is where rank i runs (shown in the run's details); `rank_env[i]` is what the placement decides
    for rank i's environment (its devices); `master_addr` is rank 0's address.
    """

    key: str  # unique per execution of a run: what the executor names its placement and ranks by
    node_names: list[str]
    rank_env: list[dict[str, str]]
    master_addr: str
    master_port: int
    detail: Any = field(default=None, repr=False)  # the executor's own bookkeeping


class RankProcess(ABC):
    """One started node rank."""

    @property
    @abstractmethod
    def handle(self) -> dict[str, Any]:
        """JSON-able identity the store keeps, from which `Executor.reattach` finds the rank again."""

    @abstractmethod
    async def wait(self, sink: LogSink) -> RankExit:
        """Copy the rank's output into `sink` (from `sink.size` on) until it ends; then how it ended."""

    @abstractmethod
    def signal(self, sig: int) -> None:
        """Send `sig` to the rank's whole process group; nothing once the rank has ended."""


class Executor(ABC):
    name: str
    # True when ranks keep running without the server (a Ray cluster): a clean shutdown then leaves them running
    # for the next server to re-attach, instead of stopping them.
    ranks_outlive_server: bool = False
    # Set by the lifecycle: call when runs that did not fit may fit now for a reason other than a run ending.
    capacity_changed: Callable[[], None] = staticmethod(lambda: None)

    @abstractmethod
    def capacity(self) -> Capacity:
        """The cluster as it is now: what a run is checked against at create time."""

    @abstractmethod
    def place(self, key: str, nodes: int, gpus_per_rank: int) -> Placement | None:
        """Reserve `nodes` ranks of `gpus_per_rank` GPUs, each on its own node when GPUs are asked for; None when
        they do not all fit now."""

    @abstractmethod
    async def prepare(self, placement: Placement) -> None:
        """Wait until the placement's resources are held and its nodes known; raises SystemFailure."""

    @abstractmethod
    async def start(self, placement: Placement, launch: RankLaunch) -> RankProcess:
        """Start one rank; raises SystemFailure when the platform cannot."""

    @abstractmethod
    async def release(self, placement: Placement) -> None:
        """Free the placement once every rank has ended (or when it was never started), and clear anything left
        of the run on its nodes."""

    @abstractmethod
    def reattach(
        self, key: str, world_size: int, handles: Mapping[int, dict[str, Any]]
    ) -> tuple[Placement, dict[int, RankProcess]] | None:
        """Find a previous server's ranks again. None when this executor's ranks cannot outlive the server (what
        is left of them is killed); raises SystemFailure when they should have but are gone."""

    async def close(self) -> None:
        """Disconnect at server shutdown (ranks have been stopped already)."""
        return None
