"""Run lifecycle, scheduling against local capacity, subprocess execution, and the API operations.

Everything here runs on the server's event loop thread, so in-memory state needs no locks.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import os
import signal
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mcli.local.errors import ApiError, bad_request, not_found
from mcli.local.logs import MAX_CHUNK, MAX_CHUNK_WITH_TIMESTAMPS, LogFile, utf8_complete_length
from mcli.local.placement import Capacity, Placer, RankSlot
from mcli.local.process import ChildProcess
from mcli.local.records import TERMINAL_STATUSES, Details, Resumption, Run, RunFilter, User
from mcli.local.runinput import RunSpec, generate_name, parse_run_input
from mcli.local.store import Store
from mcli.local.timeutil import now, parse_instant

log = logging.getLogger("mcli.local")

DEFAULT_PAGE = 100
MAX_PAGE = 10_000
PIPE_READ = 64 * 1024


@dataclass
class ActiveRun:
    run: Run
    slots: list[RankSlot]
    procs: dict[int, ChildProcess] = field(default_factory=dict)
    stop_reason: str | None = None
    failure: str | None = None
    task: asyncio.Task[None] | None = None
    killer: asyncio.Task[None] | None = None


def _proc_start_time(pid: int) -> str:
    """Start time of a process (from /proc), to tell a leftover run process from a recycled pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Engine:
    def __init__(
        self,
        store: Store,
        data_dir: Path,
        capacity: Capacity,
        max_concurrent_runs: int | None = None,
        stop_grace_seconds: float = 5.0,
    ) -> None:
        self.store = store
        self.data_dir = data_dir
        self.capacity = capacity
        self.max_concurrent_runs = max_concurrent_runs
        self.stop_grace_seconds = stop_grace_seconds
        self.placer = Placer(capacity)
        self._waiting: list[str] = []
        self._active: dict[str, ActiveRun] = {}
        self._status_events: dict[str, asyncio.Event] = {}
        self._live_logs: dict[Path, LogFile] = {}
        self._shutting_down = False

    # -- startup / shutdown -----------------------------------------------------------------------------

    def reconcile(self) -> None:
        """Runs left active by a previous server process can't be re-attached: kill leftovers, mark FAILED."""
        for run in self.store.active_runs():
            for pid, started in self.store.node_processes(run.id):
                if started and _proc_start_time(pid) == started:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(pid, signal.SIGKILL)
            reason = f"The local server restarted while the run was {run.status}; it was marked FAILED"
            at = now()
            self.store.set_status(run.id, "FAILED", at, reason)
            self.store.add_event(run.id, 0, "FAILED", at, reason)
            for node in self.store.nodes(run.id, 0):
                if node.status not in ("COMPLETED", "FAILED", "STOPPED"):
                    self.store.update_node(run.id, 0, node.rank, status="FAILED", reason=reason)

    async def shutdown(self) -> None:
        self._shutting_down = True
        reason = "The local server shut down while the run was active"
        for run_id in list(self._waiting):
            self._finish_unstarted(run_id, "FAILED", reason)
        self._waiting.clear()
        for active in list(self._active.values()):
            self._begin_stop(active, reason)
        tasks = [a.task for a in self._active.values() if a.task is not None]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    # -- notifications ----------------------------------------------------------------------------------

    def _status_event(self, run_id: str) -> asyncio.Event:
        event = self._status_events.get(run_id)
        if event is None:
            event = self._status_events[run_id] = asyncio.Event()
        return event

    def _set_status(self, run_id: str, status: str, reason: str | None = None) -> None:
        self.store.set_status(run_id, status, now(), reason)
        event = self._status_events.pop(run_id, None)
        if event is not None:
            event.set()

    # -- runs -------------------------------------------------------------------------------------------

    def create_run(self, user: User, run_input: Any) -> Run:
        spec = parse_run_input(run_input, self.capacity)
        if spec.name is None:
            spec.name = generate_name(spec.image)
            while self.store.name_taken(user.id, spec.name):
                spec.name = generate_name(spec.image)
        elif self.store.name_taken(user.id, spec.name):
            raise ApiError(409, f"Run name {spec.name!r} already exists")
        at = now()
        run = self._new_run(user, spec, at)
        resumption = Resumption(
            execution_index=0,
            cluster_name=self.capacity.cluster_name,
            cpus=spec.cpus,
            gpu_type=spec.gpu_type,
            gpus=spec.gpus,
            nodes=spec.nodes,
            start_time=None,
            end_time=None,
            status="PENDING",
            reason=None,
        )
        self.store.insert_run(run, resumption)
        self._waiting.append(run.id)
        self._schedule()
        return self.store.get_run(run.id)

    def _new_run(self, user: User, spec: RunSpec, at: float) -> Run:
        assert spec.name is not None
        return Run(
            seq=0,
            id=uuid.uuid4().hex,
            user_id=user.id,
            name=spec.name,
            status="PENDING",
            reason=None,
            created_at=at,
            updated_at=at,
            started_at=None,
            completed_at=None,
            created_by_email=user.email,
            priority=spec.priority,
            max_retries=spec.max_retries,
            preemptible=spec.preemptible,
            retry_on_system_failure=spec.retry_on_system_failure,
            max_duration_seconds=spec.max_duration_seconds,
            is_deleted=False,
            run_type=spec.run_type,
            image=spec.image,
            command=spec.command,
            run_input={"env": spec.env, "parameters": spec.parameters, "original": spec.original},
            metadata=spec.metadata,
            cluster_name=self.capacity.cluster_name,
            gpu_type=spec.gpu_type,
            gpus=spec.gpus,
            cpus=spec.cpus,
            nodes=spec.nodes,
        )

    def _schedule(self) -> None:
        """Start every waiting run that fits now, oldest first; mark the rest QUEUED."""
        if self._shutting_down:
            return
        still_waiting = []
        for run_id in self._waiting:
            run = self.store.get_run(run_id)
            slots = None
            if self.max_concurrent_runs is None or len(self._active) < self.max_concurrent_runs:
                slots = self.placer.place(run.nodes, run.gpus // run.nodes)
            if slots is None:
                if run.status == "PENDING":
                    self._set_status(run_id, "QUEUED", "Waiting for capacity on the local cluster")
                still_waiting.append(run_id)
                continue
            active = ActiveRun(run=run, slots=slots)
            self._active[run_id] = active
            active.task = asyncio.get_running_loop().create_task(self._execute(active))
        self._waiting = still_waiting

    def _node_name(self, slot: RankSlot) -> str:
        return f"{self.capacity.cluster_name}-node-{slot.node_index}"

    def log_path(self, run_id: str, execution_index: int, rank: int) -> Path:
        return self.data_dir / "logs" / run_id / str(execution_index) / f"rank-{rank}.log"

    async def _execute(self, active: ActiveRun) -> None:
        run = active.run
        try:
            await self._run_processes(active)
        except Exception as exc:  # an executor bug must still end the run, never leave it RUNNING
            log.exception("run %s failed in the executor", run.name)
            active.failure = active.failure or f"Local executor error: {exc}"
            for proc in active.procs.values():
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
        finally:
            if active.killer is not None:
                active.killer.cancel()
            self.placer.release(active.slots)
            del self._active[run.id]
            reason: str | None
            if active.stop_reason is not None and active.failure is None:
                status, reason, event = "STOPPED", active.stop_reason, "STOPPED"
                if self._shutting_down:
                    status, event = "FAILED", "FAILED"
            elif active.failure is not None:
                status, reason, event = "FAILED", active.failure, "FAILED"
            else:
                status, reason, event = "COMPLETED", None, "COMPLETED"
            self._set_status(run.id, status, reason)
            self.store.add_event(run.id, 0, event, now(), reason or f"Run {run.name} completed")
            self._schedule()

    async def _run_processes(self, active: ActiveRun) -> None:
        run = active.run
        self._set_status(run.id, "STARTING")
        run_dir = self.data_dir / "runs" / run.id
        work_dir = run_dir / "work"
        work_dir.mkdir(parents=True, exist_ok=True)
        params_path = run_dir / "parameters.json"
        params_path.write_text(json.dumps(run.run_input.get("parameters", {}), indent=2) + "\n")
        master_port = _free_port()
        readers = []
        world = run.nodes
        for rank, slot in enumerate(active.slots):
            if active.stop_reason is not None:
                break
            self.store.put_node(run.id, 0, rank, self._node_name(slot), "STARTING")
            env = dict(os.environ)
            env.setdefault("PYTHONUNBUFFERED", "1")  # live logs from Python children without extra flags
            env.update(run.run_input.get("env", {}))
            env.update(
                {
                    "RUN_NAME": run.name,
                    "NODE_RANK": str(rank),
                    # One process per node rank, so the world is the node count.
                    "WORLD_SIZE": str(world),
                    "NUM_NODES": str(world),
                    "GPUS_PER_NODE": str(len(slot.gpu_ids)),
                    "MASTER_ADDR": "127.0.0.1",
                    "MASTER_PORT": str(master_port),
                    "PARAMETERS_PATH": str(params_path),
                    "CUDA_VISIBLE_DEVICES": ",".join(str(i) for i in slot.gpu_ids),
                }
            )
            logfile = LogFile(self.log_path(run.id, 0, rank), writable=True)
            self._live_logs[logfile.path] = logfile
            proc = ChildProcess(run.command, cwd=work_dir, env=env)
            active.procs[rank] = proc
            self.store.update_node(
                run.id, 0, rank, status="RUNNING", pid=proc.pid, proc_start=_proc_start_time(proc.pid)
            )
            readers.append(asyncio.create_task(self._pump(active, rank, proc, logfile)))
        if active.stop_reason is None:
            self._set_status(run.id, "RUNNING")
            self.store.add_event(run.id, 0, "STARTED", now(), f"Run {run.name} started")
        else:
            self._begin_stop(active, active.stop_reason)
        await asyncio.gather(*readers)
        for rank in range(len(active.slots)):
            path = self.log_path(run.id, 0, rank)
            live = self._live_logs.pop(path, None)
            if live is not None:
                live.close()

    async def _pump(
        self, active: ActiveRun, rank: int, proc: ChildProcess, logfile: LogFile
    ) -> None:
        """Copy a rank's merged stdout/stderr into its log as it arrives, then record its exit."""
        async for data in proc.output(PIPE_READ):
            logfile.append(data, now())
        code = await proc.wait()
        logfile.close()
        run = active.run
        if code == 0:
            self.store.update_node(run.id, 0, rank, status="COMPLETED", exit_code=0)
            return
        how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
        if active.stop_reason is not None or active.failure is not None:
            why = active.stop_reason or f"Stopped because {active.failure}"
            self.store.update_node(run.id, 0, rank, status="STOPPED", exit_code=code, reason=why)
            return
        reason = f"Node rank {rank} {how}"
        self.store.update_node(run.id, 0, rank, status="FAILED", exit_code=code, reason=reason)
        if active.failure is None:
            active.failure = reason
            # A failing rank takes the run down: stop the other ranks.
            self._signal_all(active, signal.SIGTERM)
            active.killer = asyncio.get_running_loop().create_task(self._kill_later(active))

    def _signal_all(self, active: ActiveRun, sig: int) -> None:
        for proc in active.procs.values():
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, sig)

    async def _kill_later(self, active: ActiveRun) -> None:
        await asyncio.sleep(self.stop_grace_seconds)
        self._signal_all(active, signal.SIGKILL)

    def _begin_stop(self, active: ActiveRun, reason: str) -> None:
        if active.stop_reason is None:
            active.stop_reason = reason
        if active.run.id in self._active and self.store.get_run(active.run.id).status != "TERMINATING":
            self._set_status(active.run.id, "TERMINATING", reason)
        self._signal_all(active, signal.SIGTERM)
        if active.killer is None:
            active.killer = asyncio.get_running_loop().create_task(self._kill_later(active))

    def _finish_unstarted(self, run_id: str, status: str, reason: str) -> None:
        self._set_status(run_id, status, reason)
        self.store.add_event(run_id, 0, status, now(), reason)

    # -- operations -------------------------------------------------------------------------------------

    def _filters(self, raw: dict[str, Any] | None) -> RunFilter:
        raw = raw or {}
        flt = RunFilter()

        def values(key: str) -> list[Any] | None:
            entry = raw.get(key)
            if entry is None or entry.get("in") is None:
                return None
            return list(entry["in"])

        flt.names = values("name")
        flt.statuses = values("status")
        flt.cluster_names = values("cluster_name")
        flt.gpu_types = values("gpu_type")
        flt.gpu_nums = values("gpu_num")
        flt.run_types = values("run_type")
        created = raw.get("created_at") or {}
        ended = raw.get("ended_at") or {}
        flt.created_lt = _instant(created.get("lt"), "createdAt.lt")
        flt.created_gte = _instant(created.get("gte"), "createdAt.gte")
        flt.ended_lt = _instant(ended.get("lt"), "endedAt.lt")
        flt.ended_gte = _instant(ended.get("gte"), "endedAt.gte")
        return flt

    @staticmethod
    def _check_entity(user: User, entity: dict[str, Any] | None) -> None:
        """Only the caller's own runs are reachable; naming anyone else is forbidden."""
        if not entity:
            return
        ids = entity.get("user_ids") or []
        emails = entity.get("emails") or []
        if any(i != user.id for i in ids) or any(e.lower() != user.email.lower() for e in emails):
            raise ApiError(403, "Forbidden: you can only access your own runs")

    def get_runs_page(self, user: User, data: dict[str, Any]) -> dict[str, Any]:
        self._check_entity(user, data.get("entity"))
        limit = data.get("limit")
        if limit is None:
            limit = DEFAULT_PAGE
        if limit < 1:
            raise bad_request(f"limit must be at least 1, got {limit}")
        limit = min(limit, MAX_PAGE)
        before = _decode_cursor(data["cursor"]) if data.get("cursor") else None
        runs = self.store.query_runs(
            user.id, self._filters(data.get("filters")), bool(data.get("include_deleted")), limit + 1, before
        )
        has_next = len(runs) > limit
        runs = runs[:limit]
        cursor = _encode_cursor(runs[-1].seq) if has_next else None
        return {"cursor": cursor, "has_next_page": has_next, "runs": runs}

    def select_for_mutation(self, user: User, data: dict[str, Any]) -> list[Run]:
        self._check_entity(user, data.get("entity"))
        names = ((data.get("filters") or {}).get("name") or {}).get("in")
        if not names:
            raise bad_request("A non-empty name filter is required: refusing to act on all runs")
        runs = self.store.query_runs(
            user.id, self._filters(data.get("filters")), bool(data.get("include_deleted")), None
        )
        if not runs:
            raise not_found(f"No runs found named {', '.join(names)}")
        return runs

    def _select_one(self, user: User, data: dict[str, Any]) -> Run:
        runs = self.select_for_mutation(user, data)
        if len(runs) > 1:
            raise bad_request(f"The filter selects {len(runs)} runs; select exactly one")
        return runs[0]

    def stop_runs(self, user: User, data: dict[str, Any], reason: str | None) -> list[Run]:
        runs = self.select_for_mutation(user, data)
        for run in runs:
            self._stop(run, reason or f"Run stopped by {user.email}")
        return [self.store.get_run(run.id) for run in runs]

    def _stop(self, run: Run, reason: str) -> None:
        if run.id in self._waiting:
            self._waiting.remove(run.id)
            self._finish_unstarted(run.id, "STOPPED", reason)
        elif run.id in self._active:
            self._begin_stop(self._active[run.id], reason)

    async def delete_runs(self, user: User, data: dict[str, Any]) -> list[Run]:
        runs = self.select_for_mutation(user, data)
        waits = []
        for run in runs:
            self._stop(run, f"Run deleted by {user.email}")
            task = self._active[run.id].task if run.id in self._active else None
            if task is not None:
                waits.append(task)
        if waits:
            await asyncio.gather(*waits, return_exceptions=True)
        for run in runs:
            self.store.update_run(run.id, is_deleted=1, updated_at=now())
        return [self.store.get_run(run.id) for run in runs]

    def update_run(self, user: User, data: dict[str, Any], update: dict[str, Any]) -> Run:
        run = self._select_one(user, data)
        changes: dict[str, Any] = {}
        for key in ("priority", "max_retries", "max_duration_seconds"):
            if update.get(key) is not None:
                changes[key] = update[key]
        for key in ("preemptible", "retry_on_system_failure"):
            if update.get(key) is not None:
                changes[key] = int(update[key])
        if changes.get("max_retries", 0) < 0 or changes.get("max_duration_seconds", 1) < 1:
            raise bad_request("maxRetries must be >= 0 and maxDurationSeconds >= 1")
        if changes:
            self.store.update_run(run.id, updated_at=now(), **changes)
        return self.store.get_run(run.id)

    def update_run_metadata(self, user: User, data: dict[str, Any], metadata: Any) -> Run:
        if not isinstance(metadata, dict):
            raise bad_request("metadata must be an object")
        run = self._select_one(user, data)
        merged = {**run.metadata, **metadata}
        self.store.update_run(run.id, metadata=merged, updated_at=now())
        return self.store.get_run(run.id)

    def details(self, run: Run) -> Details:
        return Details(
            image=run.image,
            original_run_input=run.run_input.get("original", {}),
            metadata=run.metadata,
            last_execution_id=f"{run.id}-0",
            lifecycle=self.store.lifecycle(run.id),
            nodes=self.store.nodes(run.id, 0),
            formatted_run_events=self.store.events(run.id),
        )

    def _run_by_name(self, user: User, name: str) -> Run:
        run = self.store.find_run_by_name(user.id, name)
        if run is None:
            raise not_found(f"Run {name} not found")
        return run

    # -- subscriptions ----------------------------------------------------------------------------------

    def watch_status(self, user: User, name: str) -> AsyncIterator[str]:
        run = self._run_by_name(user, name)
        return self._watch(run.id)

    async def _watch(self, run_id: str) -> AsyncIterator[str]:
        last = None
        while True:
            status = self.store.get_run(run_id).status
            # No await between reading the status and taking the event, so no change can slip between them.
            event = None if status in TERMINAL_STATUSES else self._status_event(run_id)
            if status != last:
                yield status
                last = status
            if event is None:
                return
            await event.wait()

    def run_logs(self, user: User, inp: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """Validate a log request now (errors reach the client as subscription errors), stream later."""
        self._check_entity(user, inp.get("entity"))
        run = self._run_by_name(user, inp["name"])
        attempt = inp.get("attempt_index")
        if attempt is not None and not 0 <= attempt < len(run.resumptions):
            raise bad_request(f"Run {run.name} has no attempt {attempt}")
        rank = inp.get("node_rank")
        if rank is not None and not 0 <= rank < run.nodes:
            raise bad_request(f"Run {run.name} has no node rank {rank} (it has {run.nodes})")
        for key in ("offset", "tail"):
            if (inp.get(key) or 0) < 0:
                raise bad_request(f"{key} must not be negative")
        follow = bool(inp.get("follow"))
        if rank is None:
            rank = 0
            if inp.get("failed"):
                # The rank that failed, not the ranks stopped because of it (they exit non-zero too).
                nodes = self.store.nodes(run.id, 0)
                failed = [n.rank for n in nodes if n.status == "FAILED"] or [
                    n.rank for n in nodes if n.exit_code not in (None, 0)
                ]
                rank = failed[0] if failed else 0
        path = self.log_path(run.id, 0, rank)
        if not follow and not path.exists():
            raise bad_request(f"Run {run.name} has not started yet")
        return self._stream_log(run.id, path, inp, follow)

    def _open_log(self, path: Path) -> LogFile | None:
        live = self._live_logs.get(path)
        if live is not None:
            return live
        return LogFile(path) if path.exists() else None

    async def _stream_log(
        self, run_id: str, path: Path, inp: dict[str, Any], follow: bool
    ) -> AsyncIterator[dict[str, Any]]:
        logfile = self._open_log(path)
        while logfile is None:
            # Following a run that has not started: wait for its log, or for it to end without one.
            if self.store.get_run(run_id).status in TERMINAL_STATUSES:
                logfile = self._open_log(path)
                if logfile is None:
                    return
                break
            await self._status_event(run_id).wait()
            logfile = self._open_log(path)
        offset = inp.get("offset") or 0
        tail = inp.get("tail")
        pos = offset if offset > 0 else (logfile.tail_offset(tail) if tail is not None else 0)
        timestamps = bool(inp.get("timestamps"))
        cap = MAX_CHUNK_WITH_TIMESTAMPS if timestamps else MAX_CHUNK
        while True:
            changed = logfile.changed
            if pos < logfile.size:
                data = logfile.read(pos, cap)
                at_end = pos + len(data) >= logfile.size
                usable = len(data) if (at_end and logfile.closed) else utf8_complete_length(data)
                if usable > 0:
                    data = data[:usable]
                    out = data
                    if timestamps:
                        at_line_start = pos == 0 or logfile.byte_before(pos) == b"\n"
                        out = logfile.with_timestamps(data, pos, at_line_start)
                    pos += usable
                    yield {"chunk": base64.b64encode(out).decode("ascii"), "end_offset": pos}
                    continue
            if not follow or changed is None:
                return
            await changed.wait()


def _instant(value: str | None, field: str) -> float | None:
    return None if value is None else parse_instant(value, field)


def _encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"runs:{seq}".encode()).decode()


def _decode_cursor(cursor: str) -> int:
    try:
        prefix, _, seq = base64.urlsafe_b64decode(cursor.encode()).decode().partition(":")
        value = int(seq)
        if prefix != "runs" or not 0 <= value < 2**63:
            raise ValueError(cursor)
        return value
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise bad_request("Invalid cursor") from None
