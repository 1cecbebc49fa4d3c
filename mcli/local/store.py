"""SQLite persistence (WAL): users, API key hashes, runs, resumptions, lifecycle, events and node ranks.

The tables, the migrations of older data dirs and the mapping of a run row live in `storeschema.py`.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from mcli.local.records import (
    ACTIVE_STATUSES,
    TERMINAL_STATUSES,
    Event,
    Lifecycle,
    Node,
    Resumption,
    Run,
    RunFilter,
    User,
)
from mcli.local.storeschema import (
    INSERT_RUN,
    MIGRATE_RANK_HANDLES,
    RUN_COLUMNS,
    SCHEMA,
    UPDATABLE,
    row_to_run,
    run_values,
)
from mcli.local.timeutil import now


def hash_key(api_key: str) -> str:
    # Keys are 256-bit random tokens, so a plain SHA-256 is enough (no password stretching needed).
    return hashlib.sha256(api_key.encode()).hexdigest()


def new_api_key() -> str:
    return "mcli-local-" + secrets.token_urlsafe(32)


# Run ids per `IN (...)` query: well under SQLite's limit on bound parameters.
_IN_BATCH = 500


def _in_clause(column: str, values: Sequence[Any], where: list[str], params: list[Any]) -> None:
    where.append(f"{column} IN ({','.join('?' * len(values))})")
    params.extend(values)


class Store:
    """One SQLite connection. The server uses it from its event loop thread only."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        self.db.execute("PRAGMA journal_mode=WAL")
        # NORMAL is durable against a process crash (SIGKILL) in WAL mode; only an OS crash can lose commits.
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)
        self._migrate()

    def _migrate(self) -> None:
        columns = {row[1] for row in self.db.execute("PRAGMA table_info(run_nodes)")}
        if "handle" not in columns:
            with self.transaction():
                for statement in MIGRATE_RANK_HANDLES.strip().split(";\n"):
                    self.db.execute(statement)
        if "retries_used" not in {row[1] for row in self.db.execute("PRAGMA table_info(runs)")}:
            # Data dirs from before automatic resumptions: no run has used any.
            self.db.execute("ALTER TABLE runs ADD COLUMN retries_used INTEGER NOT NULL DEFAULT 0")

    def close(self) -> None:
        self.db.close()

    # -- users and keys ---------------------------------------------------------------------------------

    def get_user_by_email(self, email: str) -> User | None:
        row = self.db.execute("SELECT id, email FROM users WHERE email = ?", (email,)).fetchone()
        return User(row[0], row[1]) if row else None

    def create_user(self, email: str) -> User:
        user = User(uuid.uuid4().hex, email)
        self.db.execute("INSERT INTO users(id, email, created_at) VALUES (?, ?, ?)", (user.id, email, now()))
        return user

    def add_api_key(self, user_id: str, api_key: str) -> None:
        self.db.execute(
            "INSERT OR IGNORE INTO api_keys(key_hash, user_id, created_at) VALUES (?, ?, ?)",
            (hash_key(api_key), user_id, now()),
        )

    def user_for_key_hash(self, key_hash: str) -> User | None:
        row = self.db.execute(
            "SELECT u.id, u.email FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.key_hash = ?",
            (key_hash,),
        ).fetchone()
        return User(row[0], row[1]) if row else None

    # -- runs -------------------------------------------------------------------------------------------

    def insert_run(self, run: Run, resumption: Resumption) -> Run:
        with self.transaction():
            cur = self.db.execute(INSERT_RUN, run_values(run))
            run.seq = int(cur.lastrowid or 0)
            self._insert_resumption(run.id, resumption)
            self.db.execute(
                "INSERT INTO lifecycle(run_id, execution_index, status, start_time) VALUES (?, 0, ?, ?)",
                (run.id, run.status, run.created_at),
            )
            self.add_event(run.id, 0, "CREATED", run.created_at, f"Run {run.name} created")
        run.resumptions = [resumption]
        return run

    def bulk_insert_runs(self, runs: Iterable[tuple[Run, Resumption]]) -> None:
        """Insert many finished runs in one transaction (benchmarks and imports); no lifecycle rows."""
        with self.transaction():
            for run, resumption in runs:
                self.db.execute(INSERT_RUN, run_values(run))
                self._insert_resumption(run.id, resumption)
        self.db.execute("ANALYZE")

    def _insert_resumption(self, run_id: str, r: Resumption) -> None:
        self.db.execute(
            "INSERT INTO resumptions VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (
                run_id,
                r.execution_index,
                r.cluster_name,
                r.cpus,
                r.gpu_type,
                r.gpus,
                r.nodes,
                r.start_time,
                r.end_time,
                r.status,
                r.reason,
            ),
        )

    def transaction(self) -> _Transaction:
        return _Transaction(self.db)

    def get_run(self, run_id: str) -> Run:
        row = self.db.execute(f"SELECT {RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,)).fetchone()
        run = row_to_run(row)
        self._attach_resumptions([run])
        return run

    def name_taken(self, user_id: str, name: str) -> bool:
        row = self.db.execute(
            "SELECT 1 FROM runs WHERE user_id = ? AND name = ? AND is_deleted = 0", (user_id, name)
        ).fetchone()
        return row is not None

    def find_run_by_name(self, user_id: str, name: str) -> Run | None:
        """The live run with this name: a deleted run is gone, and its name may belong to a newer run."""
        row = self.db.execute(
            f"SELECT {RUN_COLUMNS} FROM runs WHERE user_id = ? AND name = ? AND is_deleted = 0",
            (user_id, name),
        ).fetchone()
        if row is None:
            return None
        run = row_to_run(row)
        self._attach_resumptions([run])
        return run

    def query_runs(
        self,
        user_id: str,
        flt: RunFilter,
        include_deleted: bool,
        limit: int | None,
        before_seq: int | None = None,
    ) -> list[Run]:
        where = ["user_id = ?"]
        params: list[Any] = [user_id]
        # A name always means the live run: after `delete run NAME`, every client (the official one asks with
        # include_deleted for `describe` and `logs`) finds nothing. Listings without names may include deleted runs.
        if not include_deleted or flt.names is not None:
            where.append("is_deleted = 0")
        if before_seq is not None:
            where.append("seq < ?")
            params.append(before_seq)
        if flt.names is not None:
            _in_clause("name", flt.names, where, params)
        if flt.statuses is not None:
            _in_clause("status", flt.statuses, where, params)
        if flt.cluster_names is not None:
            _in_clause("cluster_name", flt.cluster_names, where, params)
        if flt.gpu_types is not None:
            _in_clause("gpu_type", flt.gpu_types, where, params)
        if flt.gpu_nums is not None:
            _in_clause("gpus", flt.gpu_nums, where, params)
        if flt.run_types is not None:
            _in_clause("run_type", flt.run_types, where, params)
        for column, op, value in (
            ("created_at", "<", flt.created_lt),
            ("created_at", ">=", flt.created_gte),
            ("ended_at", "<", flt.ended_lt),
            ("ended_at", ">=", flt.ended_gte),
        ):
            if value is not None:
                where.append(f"{column} {op} ?")
                params.append(value)
        sql = f"SELECT {RUN_COLUMNS} FROM runs WHERE {' AND '.join(where)} ORDER BY seq DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        runs = [row_to_run(row) for row in self.db.execute(sql, params)]
        self._attach_resumptions(runs)
        return runs

    def _attach_resumptions(self, runs: list[Run]) -> None:
        if not runs:
            return
        by_id = {run.id: run for run in runs}
        rows = self._grouped(
            "SELECT run_id, execution_index, cluster_name, cpus, gpu_type, gpus, nodes, start_time, end_time, "
            "status, reason FROM resumptions",
            list(by_id),
            "run_id, execution_index",
        )
        for run_id, found in rows.items():
            by_id[run_id].resumptions.extend(Resumption(*row) for row in found)

    def active_runs(self) -> list[Run]:
        rows = self.db.execute(
            f"SELECT {RUN_COLUMNS} FROM runs WHERE status IN ({','.join('?' * len(ACTIVE_STATUSES))}) "
            "ORDER BY seq",
            ACTIVE_STATUSES,
        ).fetchall()
        runs = [row_to_run(row) for row in rows]
        self._attach_resumptions(runs)
        return runs

    def update_run(self, run_id: str, **changes: Any) -> None:
        unknown = set(changes) - UPDATABLE
        if unknown:
            raise ValueError(f"not updatable: {sorted(unknown)}")
        if "metadata" in changes:
            changes["metadata"] = json.dumps(changes["metadata"])
        cols = ", ".join(f"{key} = ?" for key in changes)
        self.db.execute(f"UPDATE runs SET {cols} WHERE id = ?", [*changes.values(), run_id])

    def set_status(self, run_id: str, status: str, at: float, reason: str | None) -> None:
        """Record a status transition on the run, its latest resumption and its lifecycle."""
        terminal = status in TERMINAL_STATUSES
        with self.transaction():
            self.db.execute(
                "UPDATE runs SET status = ?, reason = ?, updated_at = ?,"
                " started_at = CASE WHEN ? AND started_at IS NULL THEN ? ELSE started_at END,"
                " ended_at = CASE WHEN ? THEN ? ELSE ended_at END WHERE id = ?",
                (status, reason, at, status == "RUNNING", at, terminal, at, run_id),
            )
            self.db.execute(
                "UPDATE resumptions SET status = ?, reason = ?,"
                " start_time = CASE WHEN ? AND start_time IS NULL THEN ? ELSE start_time END,"
                " end_time = CASE WHEN ? THEN ? ELSE end_time END"
                " WHERE run_id = ? AND execution_index = (SELECT MAX(execution_index) FROM resumptions"
                " WHERE run_id = ?)",
                (status, reason, status == "RUNNING", at, terminal, at, run_id, run_id),
            )
            self.db.execute(
                "UPDATE lifecycle SET end_time = ? WHERE run_id = ? AND end_time IS NULL", (at, run_id)
            )
            self.db.execute(
                "INSERT INTO lifecycle(run_id, execution_index, status, start_time, end_time, reason)"
                " VALUES (?, (SELECT MAX(execution_index) FROM resumptions WHERE run_id = ?), ?, ?, ?, ?)",
                (run_id, run_id, status, at, at if terminal else None, reason),
            )

    def end_resumption(self, run_id: str, execution_index: int, status: str, at: float, reason: str | None) -> None:
        """End one execution (it failed and the run will be resumed) without ending the run."""
        with self.transaction():
            self.db.execute(
                "UPDATE resumptions SET status = ?, reason = ?, end_time = ? WHERE run_id = ? AND execution_index = ?",
                (status, reason, at, run_id, execution_index),
            )
            self.db.execute(
                "UPDATE lifecycle SET end_time = ? WHERE run_id = ? AND end_time IS NULL", (at, run_id)
            )
            self.db.execute(
                "INSERT INTO lifecycle(run_id, execution_index, status, start_time, end_time, reason)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (run_id, execution_index, status, at, at, reason),
            )

    def add_resumption(self, run_id: str, at: float, reason: str | None, retries_used: str) -> int:
        """Begin a new execution of a run, PENDING, with the latest one's compute; the run is PENDING again.

        `retries_used` says what happens to the run's count of automatic resumptions: "count" one more, "keep"
        it, or "reset" it (a user restarted the run). Returns the new execution index.
        """
        counter = {"count": "retries_used + 1", "keep": "retries_used", "reset": "0"}[retries_used]
        with self.transaction():
            latest = self.db.execute(
                "SELECT execution_index, cluster_name, cpus, gpu_type, gpus, nodes FROM resumptions"
                " WHERE run_id = ? ORDER BY execution_index DESC LIMIT 1",
                (run_id,),
            ).fetchone()
            index = int(latest[0]) + 1
            cluster_name, cpus, gpu_type, gpus, nodes = latest[1:]
            self._insert_resumption(
                run_id, Resumption(index, cluster_name, cpus, gpu_type, gpus, nodes, None, None, "PENDING", reason)
            )
            self.db.execute(
                f"UPDATE runs SET status = 'PENDING', reason = ?, updated_at = ?, ended_at = NULL,"
                f" retries_used = {counter} WHERE id = ?",
                (reason, at, run_id),
            )
            self.db.execute(
                "UPDATE lifecycle SET end_time = ? WHERE run_id = ? AND end_time IS NULL", (at, run_id)
            )
            self.db.execute(
                "INSERT INTO lifecycle(run_id, execution_index, status, start_time, reason) VALUES (?, ?, ?, ?, ?)",
                (run_id, index, "PENDING", at, reason),
            )
        return index

    def retries_used(self, run_id: str) -> int:
        row = self.db.execute("SELECT retries_used FROM runs WHERE id = ?", (run_id,)).fetchone()
        return int(row[0]) if row else 0

    def last_restart(self, run_id: str) -> int:
        """The execution index a user last restarted the run at (0 if never): time limits count from there."""
        row = self.db.execute(
            "SELECT MAX(execution_index) FROM events WHERE run_id = ? AND event_type = 'RESTARTED'", (run_id,)
        ).fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def add_event(self, run_id: str, execution_index: int, event_type: str, at: float, message: str) -> None:
        self.db.execute(
            "INSERT INTO events(run_id, execution_index, event_type, event_time, message) VALUES (?,?,?,?,?)",
            (run_id, execution_index, event_type, at, message),
        )

    def _grouped(self, select: str, run_ids: list[str], order: str, key_columns: int = 1) -> dict[Any, list[Any]]:
        """Rows of `select` for many runs, grouped by their first `key_columns` columns (run_id first), in
        `order` within each group."""
        grouped: dict[Any, list[Any]] = {}
        for start in range(0, len(run_ids), _IN_BATCH):
            batch = run_ids[start : start + _IN_BATCH]
            marks = ",".join("?" * len(batch))
            for row in self.db.execute(f"{select} WHERE run_id IN ({marks}) ORDER BY {order}", batch):
                key = row[0] if key_columns == 1 else row[:key_columns]
                grouped.setdefault(key, []).append(row[key_columns:])
        return grouped

    def lifecycles(self, run_ids: list[str]) -> dict[str, list[Lifecycle]]:
        """`lifecycle(run_id)` of many runs."""
        rows = self._grouped(
            "SELECT run_id, execution_index, status, start_time, end_time, reason FROM lifecycle", run_ids, "id"
        )
        return {run_id: [Lifecycle(*row) for row in found] for run_id, found in rows.items()}

    def nodes_of(self, run_ids: list[str]) -> dict[tuple[str, int], list[Node]]:
        """`nodes(run_id, execution_index)` of many runs, by (run id, execution index)."""
        rows = self._grouped(
            "SELECT run_id, execution_index, rank, name, status, reason, exit_code FROM run_nodes",
            run_ids,
            "rank",
            key_columns=2,
        )
        return {key: [Node(*row) for row in found] for key, found in rows.items()}

    def events_of(self, run_ids: list[str]) -> dict[str, list[Event]]:
        """`events(run_id)` of many runs."""
        rows = self._grouped(
            "SELECT run_id, execution_index, event_type, event_time, message FROM events", run_ids, "id"
        )
        return {run_id: [Event(*row) for row in found] for run_id, found in rows.items()}


    # -- node ranks -------------------------------------------------------------------------------------

    def put_node(self, run_id: str, execution_index: int, rank: int, name: str, status: str) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO run_nodes(run_id, execution_index, rank, name, status) VALUES (?,?,?,?,?)",
            (run_id, execution_index, rank, name, status),
        )

    def update_node(self, run_id: str, execution_index: int, rank: int, **changes: Any) -> None:
        cols = ", ".join(f"{key} = ?" for key in changes)
        self.db.execute(
            f"UPDATE run_nodes SET {cols} WHERE run_id = ? AND execution_index = ? AND rank = ?",
            [*changes.values(), run_id, execution_index, rank],
        )

    def nodes(self, run_id: str, execution_index: int) -> list[Node]:
        rows = self.db.execute(
            "SELECT rank, name, status, reason, exit_code FROM run_nodes WHERE run_id = ? AND execution_index = ?"
            " ORDER BY rank",
            (run_id, execution_index),
        )
        return [Node(*row) for row in rows]

    def rank_handles(self, run_id: str, execution_index: int) -> dict[int, dict[str, Any]]:
        """The executor's handle of every started rank of an execution, by rank."""
        rows = self.db.execute(
            "SELECT rank, handle FROM run_nodes WHERE run_id = ? AND execution_index = ? AND handle IS NOT NULL",
            (run_id, execution_index),
        )
        return {int(row[0]): json.loads(row[1]) for row in rows}


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.db.execute("COMMIT" if exc_type is None else "ROLLBACK")
