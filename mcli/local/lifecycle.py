"""Run lifecycle and scheduling: queue runs for capacity, start their node ranks through an `Executor`, record
how each rank ended, and end the run (COMPLETED, STOPPED or FAILED).

The policy it applies lives in `mcli.local.runpolicy`: `rank_environment` builds a rank's whole environment,
and `classify_rank_exit` decides whether a rank's end is a success, a stop, a failure of the run's command or a
failure of the system (server restarted, node lost). Everything here runs on the server's event loop thread,
so in-memory state needs no locks. Its length is one job: the state machine of a run's executions (start,
follow, stop, retry, time limits, re-attach after a restart).
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
from dataclasses import dataclass, field
from pathlib import Path

from mcli.local.executors.base import Executor, Placement, RankExit, RankLaunch, RankProcess, SystemFailure
from mcli.local.logs import LogFile, RunLogs
from mcli.local.process import RunUser
from mcli.local.records import TERMINAL_STATUSES, Run
from mcli.local.runpolicy import (
    Failure,
    classify_rank_exit,
    describe_limit,
    rank_environment,
    running_time_left,
    shared_work_root,
)
from mcli.local.store import Store
from mcli.local.timeutil import now

log = logging.getLogger("mcli.local")


# While runs wait for capacity, look again this often: an executor's capacity can grow by itself (a Ray node
# joins, a placement becomes ready), not only when a run ends.
RESCHEDULE_SECONDS = 1.0


# At most this many executions per run (automatic retries and restarts together), so no run can loop forever.
MAX_RESUMPTIONS = 100


def execution_key(run_id: str, execution_index: int) -> str:
    """What an executor names an execution's placement and ranks by (unique per execution of a run)."""
    return f"{run_id}-{execution_index}"


def latest_index(run: Run) -> int:
    """The execution index of the run's latest resumption (the one that is running or ran last)."""
    return run.resumptions[-1].execution_index if run.resumptions else 0


@dataclass
class ActiveRun:
    run: Run
    placement: Placement
    execution_index: int
    ranks: dict[int, RankProcess] = field(default_factory=dict)
    waiters: list[asyncio.Task[None]] = field(default_factory=list)
    stop_reason: str | None = None
    failure: Failure | None = None
    ending: asyncio.Event = field(default_factory=asyncio.Event)  # set by the first stop or failure
    task: asyncio.Task[None] | None = None
    killer: asyncio.Task[None] | None = None
    detached: bool = False  # left running at shutdown for the next server to re-attach
    deadline: asyncio.Task[None] | None = None

    def stopping_because(self) -> str | None:
        if self.stop_reason is not None:
            return self.stop_reason
        return None if self.failure is None else f"Stopped because {self.failure.reason}"


class RunLifecycle:
    def __init__(
        self,
        store: Store,
        data_dir: Path,
        executor: Executor,
        logs: RunLogs,
        max_concurrent_runs: int | None = None,
        stop_grace_seconds: float = 5.0,
        run_as: RunUser | None = None,
    ) -> None:
        self.store = store
        self.data_dir = data_dir
        self.executor = executor
        self.run_as = run_as
        # A run's work dir and parameters: in the data dir, or with `run_as` outside it (its user must not read
        # the data dir, nor reach it: the data dir usually sits in the server user's home).
        self.work_root = data_dir / "runs" if run_as is None else shared_work_root(data_dir)
        self.logs = logs
        self.max_concurrent_runs = max_concurrent_runs
        self.stop_grace_seconds = stop_grace_seconds
        self._waiting: list[str] = []
        self._active: dict[str, ActiveRun] = {}
        self._status_events: dict[str, asyncio.Event] = {}
        self._shutting_down = False
        self._shutdown: asyncio.Future[None] | None = None
        self._rescheduler: asyncio.TimerHandle | None = None
        executor.capacity_changed = self._schedule

    # -- startup / shutdown -----------------------------------------------------------------------------

    def reconcile(self) -> None:
        """Take over the runs a previous server process left active: re-attach to ranks that outlived it,
        FAILED (a system failure) for the rest."""
        for run in self.store.active_runs():
            restarted = f"The local server restarted while the run was {run.status}"
            index = latest_index(run)
            handles = self.store.rank_handles(run.id, index)
            try:
                found = (
                    None
                    if run.status in ("PENDING", "QUEUED")
                    else self.executor.reattach(execution_key(run.id, index), run.nodes, handles)
                )
            except SystemFailure as exc:
                self._fail_unattached(run, f"{restarted} and could not re-attach to it: {exc}")
                continue
            if found is None:
                self._fail_unattached(run, f"{restarted}; it was marked FAILED")
                continue
            placement, ranks = found
            active = self._active[run.id] = ActiveRun(run, placement, index, ranks=ranks)
            for rank, proc in ranks.items():
                sink = self.logs.writer(self.logs.path(run.id, index, rank))
                active.waiters.append(
                    asyncio.get_running_loop().create_task(self._follow_rank(active, rank, proc, sink))
                )
            if run.status == "TERMINATING":
                self._begin_stop(active, run.reason or "Stopped")
            else:
                if run.status == "STARTING":  # every rank had started when the previous server died
                    self.set_status(run.id, "RUNNING")
                    self.store.add_event(run.id, index, "STARTED", now(), f"Run {run.name} started")
                self._arm_deadline(active)
            active.task = asyncio.get_running_loop().create_task(self._execute(active, resumed=True))

    def _fail_unattached(self, run: Run, reason: str) -> None:
        """A run the server lost by restarting: a system failure, resumed if its retry policy allows."""
        index = latest_index(run)
        for node in self.store.nodes(run.id, index):
            if node.status not in TERMINAL_STATUSES:
                self.store.update_node(run.id, index, node.rank, status="FAILED", reason=reason)
        self._conclude(run, index, "FAILED", reason, Failure(reason, system=True))

    def active_run_count(self) -> int:
        """Runs that a shutdown would end: running ones (stopped) and queued ones (failed)."""
        return len(self._active) + len(self._waiting)

    def kill_active_runs(self) -> None:
        """SIGKILL every active run now, without waiting out the stop grace period (a second Ctrl-C)."""
        for active in list(self._active.values()):
            self._signal_all(active, signal.SIGKILL)

    async def shutdown(self) -> None:
        """Stop scheduling, stop (or detach) the active runs and close the executor. Every call after the first
        waits for that first one: the server starts it while connections drain and calls it again on its way
        out."""
        if self._shutdown is None:
            self._shutdown = asyncio.ensure_future(self._shut_down())
        await asyncio.shield(self._shutdown)

    async def _shut_down(self) -> None:
        self._shutting_down = True
        if self._rescheduler is not None:
            self._rescheduler.cancel()
        reason = "The local server shut down while the run was active"
        for run_id in list(self._waiting):
            self._finish_unstarted(run_id, "FAILED", reason)
        self._waiting.clear()
        for active in list(self._active.values()):
            if self.executor.ranks_outlive_server and len(active.ranks) == active.run.nodes:
                # Its ranks keep running (on a Ray cluster); the next server with this data dir re-attaches.
                active.detached = True
                for waiter in active.waiters:
                    waiter.cancel()
            else:
                self._begin_stop(active, reason)
        tasks = [a.task for a in self._active.values() if a.task is not None]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        await self.executor.close()

    # -- notifications ----------------------------------------------------------------------------------

    def status_event(self, run_id: str) -> asyncio.Event:
        """An event set at the run's next status change."""
        event = self._status_events.get(run_id)
        if event is None:
            event = self._status_events[run_id] = asyncio.Event()
        return event

    def set_status(self, run_id: str, status: str, reason: str | None = None) -> None:
        self.store.set_status(run_id, status, now(), reason)
        self._notify(run_id)

    def _notify(self, run_id: str) -> None:
        event = self._status_events.pop(run_id, None)
        if event is not None:
            event.set()

    # -- scheduling -------------------------------------------------------------------------------------

    def submit(self, run_id: str) -> None:
        self._waiting.append(run_id)
        self._schedule()

    def _schedule(self) -> None:
        """Start every waiting run that fits now, oldest first; mark the rest QUEUED."""
        if self._shutting_down:
            return
        still_waiting = []
        for run_id in self._waiting:
            run = self.store.get_run(run_id)
            placement = None
            if self.max_concurrent_runs is None or len(self._active) < self.max_concurrent_runs:
                key = execution_key(run.id, latest_index(run))
                placement = self.executor.place(key, run.nodes, run.gpus // run.nodes)
            if placement is None:
                if run.status == "PENDING":
                    self.set_status(run_id, "QUEUED", "Waiting for capacity on the local cluster")
                still_waiting.append(run_id)
                continue
            active = self._active[run_id] = ActiveRun(run, placement, latest_index(run))
            active.task = asyncio.get_running_loop().create_task(self._execute(active))
        self._waiting = still_waiting
        if still_waiting and self._rescheduler is None:
            self._rescheduler = asyncio.get_running_loop().call_later(RESCHEDULE_SECONDS, self._reschedule)

    def _reschedule(self) -> None:
        self._rescheduler = None
        self._schedule()

    # -- execution --------------------------------------------------------------------------------------

    async def _execute(self, active: ActiveRun, resumed: bool = False) -> None:
        run = active.run
        try:
            if not resumed:
                await self._start_ranks(active)
        except SystemFailure as exc:
            self._fail(active, Failure(str(exc), system=True))
        except Exception as exc:  # an executor bug must still end the run, never leave it RUNNING
            log.exception("run %s failed in the %s executor", run.name, self.executor.name)
            self._fail(active, Failure(f"Executor error: {exc}", system=True))
            self._signal_all(active, signal.SIGKILL)
        try:
            await asyncio.gather(*active.waiters)
        except asyncio.CancelledError:
            if active.detached:
                # Left running for the next server to re-attach: nothing of it is released or concluded.
                self._cancel_helpers(active)
                del self._active[run.id]
                return
            await self._end_execution(active)
            raise
        await self._end_execution(active)

    def _cancel_helpers(self, active: ActiveRun) -> None:
        for helper in (active.killer, active.deadline):
            if helper is not None:
                helper.cancel()

    async def _end_execution(self, active: ActiveRun) -> None:
        run = active.run
        self._cancel_helpers(active)
        try:
            await self.executor.release(active.placement)
        except Exception:  # the run has ended either way; what is left is the executor's to clear
            log.exception("could not release the placement of run %s", run.name)
        del self._active[run.id]
        status, reason = self._run_outcome(active)
        # A run being stopped (by a user, its time limit or a shutdown) is never resumed.
        failure = active.failure if active.stop_reason is None else None
        self._conclude(run, active.execution_index, status, reason, failure)
        self._schedule()

    # -- how an execution ends: resumed, or the run ends ----------------------------------------------------

    def _conclude(
        self, run: Run, index: int, status: str, reason: str | None, failure: Failure | None
    ) -> None:
        """Record how execution `index` ended. A failure the run's retry policy covers begins a new execution
        (PENDING, then scheduled like a new run); anything else (and every stop) ends the run with this status."""
        how = self._retry_policy(run.id, failure) if status == "FAILED" else None
        if failure is None or how is None:
            self.set_status(run.id, status, reason)
            self.store.add_event(run.id, index, status, now(), reason or f"Run {run.name} completed")
            return
        at = now()
        self.store.end_resumption(run.id, index, "FAILED", at, failure.reason)
        self.store.add_event(run.id, index, "FAILED", at, failure.reason)
        current = self.store.get_run(run.id)
        why = "a system failure" if failure.system else "a failure"
        budget = (
            "system failures are always retried"
            if how == "keep"
            else f"automatic retry {self.store.retries_used(run.id) + 1} of {current.max_retries}"
        )
        pending = f"Resuming after {why} ({budget}): {failure.reason}"
        new_index = self.store.add_resumption(run.id, at, pending, how)
        self.store.add_event(
            run.id, new_index, "REQUEUED", at, f"Run {run.name} resumed as resumption {new_index}"
        )
        self._notify(run.id)
        self.submit(run.id)

    def _retry_policy(self, run_id: str, failure: Failure | None) -> str | None:
        """How a failed execution is resumed: "keep" (a system failure the run retries without using up its
        retries), "count" (one of its `max_retries`), or None (the run ends FAILED)."""
        if failure is None or self._shutting_down:
            return None
        run = self.store.get_run(run_id)
        if len(run.resumptions) >= MAX_RESUMPTIONS:
            return None
        if failure.system and run.retry_on_system_failure:
            return "keep"
        if self.store.retries_used(run_id) < (run.max_retries or 0):
            return "count"
        return None

    def _run_outcome(self, active: ActiveRun) -> tuple[str, str | None]:
        if active.failure is not None:
            return "FAILED", active.failure.reason
        if active.stop_reason is not None:
            # A stop caused by the server shutting down is a failure of the system, not the user's stop.
            return ("FAILED" if self._shutting_down else "STOPPED"), active.stop_reason
        return "COMPLETED", None

    async def _start_ranks(self, active: ActiveRun) -> None:
        run, placement = active.run, active.placement
        self.set_status(run.id, "STARTING")
        if not await self._prepared(active):
            return
        run_dir = self.run_dir(run.id)
        work_dir = run_dir / "work"
        params_path = run_dir / "parameters.json"
        files = {str(params_path): json.dumps(run.run_input.get("parameters", {}), indent=2) + "\n"}
        for rank in range(run.nodes):
            if active.stop_reason is not None or active.failure is not None:
                break
            self.store.put_node(run.id, active.execution_index, rank, placement.node_names[rank], "STARTING")
            sink = self.logs.writer(self.logs.path(run.id, active.execution_index, rank))
            try:
                home = self.run_as.home if self.run_as is not None else None
                env = rank_environment(run, rank, placement, params_path, home)
                launch = RankLaunch(rank, run.command, env, work_dir, files)
                proc = await self.executor.start(placement, launch)
            except BaseException:
                self.logs.finish(sink.path)
                raise
            active.ranks[rank] = proc
            self.store.update_node(
                run.id, active.execution_index, rank, status="RUNNING", handle=json.dumps(proc.handle)
            )
            active.waiters.append(
                asyncio.get_running_loop().create_task(self._follow_rank(active, rank, proc, sink))
            )
        if active.stop_reason is None and active.failure is None:
            self.set_status(run.id, "RUNNING")
            self.store.add_event(run.id, active.execution_index, "STARTED", now(), f"Run {run.name} started")
            self._arm_deadline(active)
        elif active.stop_reason is not None:
            self._begin_stop(active, active.stop_reason)

    async def _prepared(self, active: ActiveRun) -> bool:
        """Wait for the executor to hold the placement, unless the run is stopped first."""
        preparing = asyncio.ensure_future(self.executor.prepare(active.placement))
        ending = asyncio.ensure_future(active.ending.wait())
        try:
            await asyncio.wait({preparing, ending}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ending.cancel()
            if not preparing.done():
                preparing.cancel()
        if not preparing.done() or preparing.cancelled():
            return False
        preparing.result()  # raises SystemFailure
        return True

    async def _follow_rank(self, active: ActiveRun, rank: int, proc: RankProcess, sink: LogFile) -> None:
        """Copy a rank's output into its log as it arrives, then record how it ended."""
        try:
            ended = await proc.wait(sink)
        except Exception as exc:
            log.exception("lost node rank %d of run %s", rank, active.run.name)
            ended = RankExit(None, f"The server lost track of node rank {rank}: {exc}")
        finally:
            self.logs.finish(sink.path)
        outcome = classify_rank_exit(rank, ended, active.stopping_because())
        self.store.update_node(
            active.run.id,
            active.execution_index,
            rank,
            status=outcome.status,
            exit_code=ended.exit_code,
            reason=outcome.reason,
        )
        if outcome.failure is not None:
            self._fail(active, outcome.failure)

    def _fail(self, active: ActiveRun, failure: Failure) -> None:
        """The first failure ends the run: stop the other ranks."""
        if active.failure is not None:
            return
        active.failure = failure
        active.ending.set()
        self._signal_all(active, signal.SIGTERM)
        if active.killer is None:
            active.killer = asyncio.get_running_loop().create_task(self._kill_later(active))

    def _signal_all(self, active: ActiveRun, sig: int) -> None:
        for proc in active.ranks.values():
            proc.signal(sig)

    async def _kill_later(self, active: ActiveRun) -> None:
        await asyncio.sleep(self.stop_grace_seconds)
        self._signal_all(active, signal.SIGKILL)

    # -- stopping ---------------------------------------------------------------------------------------

    def stop(self, run: Run, reason: str) -> None:
        if run.id in self._waiting:
            self._waiting.remove(run.id)
            self._finish_unstarted(run.id, "STOPPED", reason)
        elif run.id in self._active:
            self._begin_stop(self._active[run.id], reason)

    def run_dir(self, run_id: str) -> Path:
        """Where a run's work dir and parameters file are."""
        return self.work_root / run_id

    def active_run_ids(self) -> list[str]:
        """Runs holding capacity now, oldest first."""
        return list(self._active)

    def queued_run_ids(self) -> list[str]:
        """Runs waiting for capacity, first in line first."""
        return list(self._waiting)

    def task_of(self, run_id: str) -> asyncio.Task[None] | None:
        """The task that ends when the run does; None when it is not active."""
        active = self._active.get(run_id)
        return None if active is None else active.task

    def _begin_stop(self, active: ActiveRun, reason: str) -> None:
        if active.stop_reason is None:
            active.stop_reason = reason
        active.ending.set()
        if active.run.id in self._active and self.store.get_run(active.run.id).status != "TERMINATING":
            self.set_status(active.run.id, "TERMINATING", reason)
        self._signal_all(active, signal.SIGTERM)
        if active.killer is None:
            active.killer = asyncio.get_running_loop().create_task(self._kill_later(active))

    def _finish_unstarted(self, run_id: str, status: str, reason: str) -> None:
        self.set_status(run_id, status, reason)
        self.store.add_event(run_id, latest_index(self.store.get_run(run_id)), status, now(), reason)

    # -- time limits ------------------------------------------------------------------------------------

    def deadline(self, run_id: str) -> float | None:
        """When the run's running execution will reach its max duration; None when it has no such deadline."""
        run = self.store.get_run(run_id)
        at = now()
        left = running_time_left(run, at, self.store.last_restart(run_id))
        return None if left is None or run.status != "RUNNING" else at + max(0.0, left)

    def limits_changed(self, run_id: str) -> None:
        """The run's max duration changed: move the deadline of its running execution."""
        active = self._active.get(run_id)
        if active is not None and active.stop_reason is None and active.failure is None:
            self._arm_deadline(active)

    def _arm_deadline(self, active: ActiveRun) -> None:
        """Stop the run once its running time reaches its max duration (counted over its executions since it was
        created or last restarted: automatic retries share the limit, a restart gets it afresh)."""
        if active.deadline is not None:
            active.deadline.cancel()
            active.deadline = None
        run = self.store.get_run(active.run.id)
        left = running_time_left(run, now(), self.store.last_restart(run.id))
        if left is not None and run.max_duration_seconds is not None:
            reason = (
                f"Run {run.name} reached its maximum duration of {describe_limit(run.max_duration_seconds)}"
            )
            active.deadline = asyncio.get_running_loop().create_task(
                self._expire(active, max(0.0, left), reason)
            )

    async def _expire(self, active: ActiveRun, delay: float, reason: str) -> None:
        await asyncio.sleep(delay)
        active.deadline = None  # done: a later cancel must not reach the stop below
        self._begin_stop(active, reason)
