"""The API operations behind the GraphQL resolvers: create, list, stop, delete, update and describe runs, watch a
run's status and read its logs.

The work is split by job: `lifecycle.py` schedules runs and runs their ranks through an executor
(`executors/`), `logstream.py` streams logs, and `Engine` here checks each request and ties them together.
Everything runs on the server's event loop thread, so in-memory state needs no locks.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from mcli.local.clusters import ClusterDetails, describe_cluster, matches
from mcli.local.errors import ApiError, bad_request, not_found
from mcli.local.executors.base import Executor
from mcli.local.lifecycle import MAX_RESUMPTIONS, RunLifecycle, latest_index
from mcli.local.limits import DEFAULT_PAGE, MAX_PAGE
from mcli.local.logs import RunLogs
from mcli.local.logstream import LogStreams
from mcli.local.process import RunUser
from mcli.local.records import TERMINAL_STATUSES, Details, Resumption, Run, RunFilter, User
from mcli.local.runinput import MAX_INT, RunSpec, generate_name, parse_run_input
from mcli.local.store import Store
from mcli.local.timeutil import now, parse_instant

# How long an interactive run stays up when the request does not say.
INTERACTIVE_SECONDS = 3600


class Engine:
    def __init__(
        self,
        store: Store,
        data_dir: Path,
        executor: Executor,
        max_concurrent_runs: int | None = None,
        stop_grace_seconds: float = 5.0,
        *,
        max_log_bytes: int | None = None,
        run_as: RunUser | None = None,
    ) -> None:
        self.store = store
        self.data_dir = data_dir
        self.executor = executor
        self.logs = RunLogs(data_dir, max_log_bytes)
        self.lifecycle = RunLifecycle(
            store, data_dir, executor, self.logs, max_concurrent_runs, stop_grace_seconds, run_as
        )
        self.streams = LogStreams(store, self.logs, self.lifecycle.status_event)
        self.up_since = now()

    def reconcile(self) -> None:
        self.lifecycle.reconcile()

    def active_run_count(self) -> int:
        return self.lifecycle.active_run_count()

    def kill_active_runs(self) -> None:
        self.lifecycle.kill_active_runs()

    async def shutdown(self) -> None:
        await self.lifecycle.shutdown()

    # -- runs -------------------------------------------------------------------------------------------

    def create_run(self, user: User, run_input: Any) -> Run:
        capacity = self.executor.capacity()
        spec = parse_run_input(run_input, capacity)
        if spec.name is None:
            spec.name = generate_name(spec.image)
            while self.store.name_taken(user.id, spec.name):
                spec.name = generate_name(spec.image)
        elif self.store.name_taken(user.id, spec.name):
            raise ApiError(
                409,
                # Clients add how to avoid the clash (the official one says nothing, so the hint is ours).
                f"A run named {spec.name!r} already exists; to reuse the name, delete it first "
                f"(mcli delete run {spec.name})",
            )
        at = now()
        run = self._new_run(user, spec, at, capacity.cluster_name)
        resumption = Resumption(
            execution_index=0,
            cluster_name=capacity.cluster_name,
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
        self.lifecycle.submit(run.id)
        return self.store.get_run(run.id)

    def create_interactive_run(self, user: User, run_input: Any, seconds: int | None) -> Run:
        """A run that sleeps for `seconds` (default an hour), holding its resources: MAPI replaces the command."""
        if not isinstance(run_input, dict):
            raise bad_request("Bad run request: runInput must be an object")
        if seconds is None:
            seconds = INTERACTIVE_SECONDS
        if not 1 <= seconds <= MAX_INT:
            raise bad_request(f"seconds must be from 1 to {MAX_INT}, got {seconds}")
        interactive = {**run_input, "command": f"sleep {seconds}", "runType": "INTERACTIVE"}
        if not interactive.get("image"):
            interactive["image"] = "local/interactive"  # the local server runs no images; MAPI picks a default too
        return self.create_run(user, interactive)

    def _new_run(self, user: User, spec: RunSpec, at: float, cluster_name: str) -> Run:
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
            cluster_name=cluster_name,
            gpu_type=spec.gpu_type,
            gpus=spec.gpus,
            cpus=spec.cpus,
            nodes=spec.nodes,
        )

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
            self.lifecycle.stop(run, reason or f"Run stopped by {user.email}")
        return [self.store.get_run(run.id) for run in runs]

    async def delete_runs(self, user: User, data: dict[str, Any]) -> list[Run]:
        runs = self.select_for_mutation(user, data)
        waits = []
        for run in runs:
            self.lifecycle.stop(run, f"Run deleted by {user.email}")
            task = self.lifecycle.task_of(run.id)
            if task is not None:
                waits.append(task)
        if waits:
            await asyncio.gather(*waits, return_exceptions=True)
        for run in runs:
            self.store.update_run(run.id, is_deleted=1, updated_at=now())
            # A deleted run's logs and work dir go with it (the record stays, for includeDeleted listings).
            self.logs.delete(run.id)
            shutil.rmtree(self.lifecycle.run_dir(run.id), ignore_errors=True)
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
        if "max_duration_seconds" in changes:
            self.lifecycle.limits_changed(run.id)
        return self.store.get_run(run.id)

    def start_runs(self, user: User, data: dict[str, Any]) -> list[Run]:
        """Restart stopped or failed runs: each begins a new execution, PENDING, and is scheduled again."""
        runs = self.select_for_mutation(user, data)
        for run in runs:
            if run.status not in ("STOPPED", "FAILED"):
                advice = "clone it to run it again" if run.status == "COMPLETED" else "stop it first"
                raise bad_request(
                    f"Run {run.name} is {run.status}: only stopped or failed runs can be started ({advice})"
                )
            if len(run.resumptions) >= MAX_RESUMPTIONS:
                raise bad_request(f"Run {run.name} already has {MAX_RESUMPTIONS} resumptions, the most a run may have")
        for run in runs:
            at = now()
            index = self.store.add_resumption(run.id, at, f"Restarted by {user.email}", "reset")
            self.store.add_event(run.id, index, "RESTARTED", at, f"Run {run.name} restarted by {user.email}")
        results = [self.store.get_run(run.id) for run in runs]  # PENDING, before scheduling moves them on
        for run in runs:
            self.lifecycle.submit(run.id)
        return results

    def update_run_metadata(self, user: User, data: dict[str, Any], metadata: Any) -> Run:
        if not isinstance(metadata, dict):
            raise bad_request("metadata must be an object")
        run = self._select_one(user, data)
        merged = {**run.metadata, **metadata}
        self.store.update_run(run.id, metadata=merged, updated_at=now())
        return self.store.get_run(run.id)

    def get_clusters(self, user: User, data: dict[str, Any]) -> list[ClusterDetails]:
        """The local cluster, if it passes the filters: capacity, GPU use, and every user's active and queued runs."""
        cluster = describe_cluster(
            self.executor.capacity(),
            self.up_since,
            [self.store.get_run(run_id) for run_id in self.lifecycle.active_run_ids()],
            [self.store.get_run(run_id) for run_id in self.lifecycle.queued_run_ids()],
            {run_id: self.lifecycle.deadline(run_id) for run_id in self.lifecycle.active_run_ids()},
        )
        return [cluster] if matches(cluster, data.get("filters")) else []

    def details(self, run: Run) -> Details:
        return self.details_many([run])[0]

    def details_many(self, runs: list[Run]) -> list[Details]:
        """`details(run)` of every run, read in three queries instead of three per run (big listings)."""
        ids = [run.id for run in runs]
        lifecycles = self.store.lifecycles(ids)
        nodes = self.store.nodes_of(ids)
        events = self.store.events_of(ids)
        return [
            Details(
                image=run.image,
                original_run_input=run.run_input.get("original", {}),
                metadata=run.metadata,
                last_execution_id=f"{run.id}-{latest_index(run)}",
                lifecycle=lifecycles.get(run.id, []),
                nodes=nodes.get((run.id, latest_index(run)), []),
                formatted_run_events=events.get(run.id, []),
            )
            for run in runs
        ]

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
            event = None if status in TERMINAL_STATUSES else self.lifecycle.status_event(run_id)
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
        # Each execution has its own logs; without an attempt index, the latest execution's.
        index = latest_index(run) if attempt is None else attempt
        if rank is None:
            rank = 0
            if inp.get("failed"):
                # The rank that failed, not the ranks stopped because of it (they exit non-zero too).
                nodes = self.store.nodes(run.id, index)
                failed = [n.rank for n in nodes if n.status == "FAILED"] or [
                    n.rank for n in nodes if n.exit_code not in (None, 0)
                ]
                rank = failed[0] if failed else 0
        path = self.logs.path(run.id, index, rank)
        if not follow and not path.exists():
            raise bad_request(
                f"Run {run.name} has not started yet"
                if index == latest_index(run)
                else f"Resumption {index} of run {run.name} ended before it started"
            )
        return self.streams.stream(
            run.id,
            path,
            offset=inp.get("offset") or 0,
            tail=inp.get("tail"),
            timestamps=bool(inp.get("timestamps")),
            follow=follow,
        )


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
