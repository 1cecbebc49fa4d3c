"""`LocalProcessExecutor`: each rank is `/bin/sh -c COMMAND` in its own session on the server's machine, on a
simulated cluster of `Capacity.nodes` nodes whose GPUs are handed out as CUDA_VISIBLE_DEVICES indices."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
from collections.abc import Mapping
from typing import Any

from mcli.local.executors.base import (
    Executor,
    LogSink,
    Placement,
    RankExit,
    RankLaunch,
    RankProcess,
    prepare_work_dir,
)
from mcli.local.placement import Capacity, Placer, RankSlot
from mcli.local.process import ChildProcess, RunUser, proc_start_time
from mcli.local.timeutil import now

PIPE_READ = 64 * 1024


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalRank(RankProcess):
    def __init__(self, proc: ChildProcess) -> None:
        self.proc = proc
        self._handle = {"pid": proc.pid, "start": proc_start_time(proc.pid)}

    @property
    def handle(self) -> dict[str, Any]:
        return self._handle

    async def wait(self, sink: LogSink) -> RankExit:
        async for data in self.proc.output(PIPE_READ):
            sink.append(data, now())
        return RankExit(await self.proc.wait())

    def signal(self, sig: int) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, sig)


class LocalProcessExecutor(Executor):
    name = "local"

    def __init__(self, capacity: Capacity, run_as: RunUser | None = None) -> None:
        self._capacity = capacity
        self.placer = Placer(capacity)
        self.run_as = run_as

    def capacity(self) -> Capacity:
        return self._capacity

    def place(self, key: str, nodes: int, gpus_per_rank: int) -> Placement | None:
        slots = self.placer.place(nodes, gpus_per_rank)
        if slots is None:
            return None
        return Placement(
            key=key,
            node_names=[self._capacity.node_name(slot.node_index) for slot in slots],
            rank_env=[{"CUDA_VISIBLE_DEVICES": ",".join(str(i) for i in slot.gpu_ids)} for slot in slots],
            master_addr="127.0.0.1",
            master_port=_free_port(),
            detail=slots,
        )

    async def prepare(self, placement: Placement) -> None:
        return None  # the placer's bookkeeping is the reservation

    async def start(self, placement: Placement, launch: RankLaunch) -> RankProcess:
        prepare_work_dir(launch.work_dir, launch.files, self.run_as)
        return LocalRank(ChildProcess(launch.command, cwd=launch.work_dir, env=launch.env, user=self.run_as))

    async def release(self, placement: Placement) -> None:
        slots: list[RankSlot] = placement.detail
        self.placer.release(slots)

    def reattach(
        self, key: str, world_size: int, handles: Mapping[int, dict[str, Any]]
    ) -> tuple[Placement, dict[int, RankProcess]] | None:
        # A rank's output pipe died with the previous server, so its process cannot be followed: kill what is left.
        for handle in handles.values():
            pid, started = handle.get("pid"), handle.get("start")
            if isinstance(pid, int) and started and proc_start_time(pid) == started:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)
        return None
