"""The local server's SQLite tables, the migrations that let older data dirs open, and how a run maps to a row
(used by `store.py`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from mcli.local import fastjson
from mcli.local.records import Run

SCHEMA = """
CREATE TABLE IF NOT EXISTS users(
  id TEXT PRIMARY KEY, email TEXT NOT NULL UNIQUE, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS api_keys(
  key_hash TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users(id), created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS runs(
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  user_id TEXT NOT NULL,
  created_by_email TEXT NOT NULL,
  name TEXT NOT NULL,
  status TEXT NOT NULL,
  reason TEXT,
  created_at REAL NOT NULL,
  updated_at REAL NOT NULL,
  started_at REAL,
  ended_at REAL,
  priority TEXT NOT NULL,
  max_retries INTEGER,
  preemptible INTEGER NOT NULL,
  retry_on_system_failure INTEGER NOT NULL,
  max_duration_seconds INTEGER,
  is_deleted INTEGER NOT NULL DEFAULT 0,
  run_type TEXT NOT NULL,
  image TEXT NOT NULL,
  command TEXT NOT NULL,
  run_input TEXT NOT NULL,
  metadata TEXT NOT NULL,
  cluster_name TEXT NOT NULL,
  gpu_type TEXT NOT NULL,
  gpus INTEGER NOT NULL,
  cpus INTEGER NOT NULL,
  nodes INTEGER NOT NULL,
  -- Automatic resumptions used since the run was created or last restarted (checked against max_retries).
  retries_used INTEGER NOT NULL DEFAULT 0);
-- A name is unique among a user's live runs; deleted runs free their name.
CREATE UNIQUE INDEX IF NOT EXISTS runs_user_live_name ON runs(user_id, name) WHERE is_deleted = 0;
CREATE INDEX IF NOT EXISTS runs_user_name ON runs(user_id, name);
-- Pages are read newest first (seq DESC) per user; these keep filtered pages index-driven at 100k runs.
CREATE INDEX IF NOT EXISTS runs_user_seq ON runs(user_id, is_deleted, seq);
CREATE INDEX IF NOT EXISTS runs_user_status ON runs(user_id, status, seq);
CREATE INDEX IF NOT EXISTS runs_user_created ON runs(user_id, created_at);
CREATE INDEX IF NOT EXISTS runs_user_ended ON runs(user_id, ended_at);
CREATE INDEX IF NOT EXISTS runs_active ON runs(status)
  WHERE status IN ('PENDING', 'QUEUED', 'STARTING', 'RUNNING', 'TERMINATING');
CREATE TABLE IF NOT EXISTS resumptions(
  run_id TEXT NOT NULL, execution_index INTEGER NOT NULL, cluster_name TEXT NOT NULL, cpus INTEGER NOT NULL,
  gpu_type TEXT NOT NULL, gpus INTEGER NOT NULL, nodes INTEGER NOT NULL, start_time REAL, end_time REAL,
  status TEXT NOT NULL, reason TEXT, PRIMARY KEY(run_id, execution_index)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS lifecycle(
  id INTEGER PRIMARY KEY, run_id TEXT NOT NULL, execution_index INTEGER NOT NULL, status TEXT NOT NULL,
  start_time REAL NOT NULL, end_time REAL, reason TEXT);
CREATE INDEX IF NOT EXISTS lifecycle_run ON lifecycle(run_id, id);
CREATE TABLE IF NOT EXISTS events(
  id INTEGER PRIMARY KEY, run_id TEXT NOT NULL, execution_index INTEGER NOT NULL, event_type TEXT NOT NULL,
  event_time REAL NOT NULL, message TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS events_run ON events(run_id, id);
CREATE TABLE IF NOT EXISTS run_nodes(
  run_id TEXT NOT NULL, execution_index INTEGER NOT NULL, rank INTEGER NOT NULL, name TEXT NOT NULL,
  status TEXT NOT NULL, reason TEXT, exit_code INTEGER, handle TEXT,
  PRIMARY KEY(run_id, execution_index, rank)) WITHOUT ROWID;
"""

# Data dirs written before the executor seam kept a rank's `pid` and `proc_start`; the executor's opaque handle
# replaces them (the local executor's handle holds the same two facts).
MIGRATE_RANK_HANDLES = """
ALTER TABLE run_nodes ADD COLUMN handle TEXT;
UPDATE run_nodes SET handle = json_object('pid', pid, 'start', proc_start) WHERE pid IS NOT NULL;
ALTER TABLE run_nodes DROP COLUMN pid;
ALTER TABLE run_nodes DROP COLUMN proc_start;
"""

RUN_COLUMNS = (
    "seq, id, user_id, name, status, reason, created_at, updated_at, started_at, ended_at, created_by_email, "
    "priority, max_retries, preemptible, retry_on_system_failure, max_duration_seconds, is_deleted, run_type, "
    "image, command, run_input, metadata, cluster_name, gpu_type, gpus, cpus, nodes"
)

# A new run row; `seq` is assigned by SQLite. Its values come from `run_values`.
_INSERTED_COLUMNS = RUN_COLUMNS.replace("seq, ", "", 1)
INSERT_RUN = (
    f"INSERT INTO runs({_INSERTED_COLUMNS}) VALUES ({','.join('?' * len(_INSERTED_COLUMNS.split(', ')))})"
)

# Columns a caller may change through `update_run`.
UPDATABLE = frozenset(
    {
        "status",
        "reason",
        "updated_at",
        "started_at",
        "ended_at",
        "priority",
        "max_retries",
        "preemptible",
        "retry_on_system_failure",
        "max_duration_seconds",
        "is_deleted",
        "metadata",
    }
)


def row_to_run(row: Sequence[Any]) -> Run:
    return Run(
        seq=row[0],
        id=row[1],
        user_id=row[2],
        name=row[3],
        status=row[4],
        reason=row[5],
        created_at=row[6],
        updated_at=row[7],
        started_at=row[8],
        completed_at=row[9],
        created_by_email=row[10],
        priority=row[11],
        max_retries=row[12],
        preemptible=bool(row[13]),
        retry_on_system_failure=bool(row[14]),
        max_duration_seconds=row[15],
        is_deleted=bool(row[16]),
        run_type=row[17],
        image=row[18],
        command=row[19],
        run_input=fastjson.loads(row[20]),
        metadata=fastjson.loads(row[21]),
        cluster_name=row[22],
        gpu_type=row[23],
        gpus=row[24],
        cpus=row[25],
        nodes=row[26],
    )


def run_values(run: Run) -> tuple[Any, ...]:
    """The values `INSERT_RUN` takes, in its column order."""
    return (
        run.id,
        run.user_id,
        run.name,
        run.status,
        run.reason,
        run.created_at,
        run.updated_at,
        run.started_at,
        run.completed_at,
        run.created_by_email,
        run.priority,
        run.max_retries,
        int(run.preemptible),
        int(run.retry_on_system_failure),
        run.max_duration_seconds,
        int(run.is_deleted),
        run.run_type,
        run.image,
        run.command,
        json.dumps(run.run_input),
        json.dumps(run.metadata),
        run.cluster_name,
        run.gpu_type,
        run.gpus,
        run.cpus,
        run.nodes,
    )
