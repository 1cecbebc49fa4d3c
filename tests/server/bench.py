"""Bulk-insert runs straight through the store and time getRunsPaginated over HTTP.

Run as a script: `python -m tests.server.bench [N]` (from the repo root), or use `bulk_insert` in tests.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from mcli.local import LocalServer
from mcli.local.records import Resumption, Run
from mcli.local.server import DEFAULT_EMAIL, bootstrap, open_store

STATUSES = ["COMPLETED"] * 80 + ["FAILED"] * 15 + ["STOPPED"] * 4 + ["RUNNING"]
QUERIES: dict[str, dict[str, Any]] = {
    "first page (100)": {"filters": {}},
    "status FAILED": {"filters": {"status": {"in": ["FAILED"]}}},
    "status STOPPED (4%)": {"filters": {"status": {"in": ["STOPPED"]}}},
    "name in 3": {"filters": {"name": {"in": ["bench-17", "bench-50000", "bench-99998"]}}},
    "createdAt range": {"filters": {"createdAt": {"gte": "2024-03-01", "lt": "2024-03-08"}}},
    "endedAt range + gpuType": {
        "filters": {"endedAt": {"gte": "2024-06-01"}, "gpuType": {"in": ["a100_80gb"]}}
    },
    "gpuNum 16 + cluster": {"filters": {"gpuNum": {"in": [16]}, "clusterName": {"in": ["local"]}}},
    "limit 1 page 2": {"filters": {}, "limit": 1},
}


def bulk_insert(data_dir: Path, count: int, seed: int = 0) -> None:
    """Insert `count` finished runs for the default user, created over 2024 in order."""
    bootstrap(data_dir, None)
    store = open_store(data_dir)
    user = store.get_user_by_email(DEFAULT_EMAIL)
    assert user is not None
    rng = random.Random(seed)
    start = 1704067200.0  # 2024-01-01
    step = 366 * 86400 / count

    def rows() -> Any:
        for i in range(count):
            created = start + i * step
            status = rng.choice(STATUSES)
            ended = None if status == "RUNNING" else created + rng.uniform(60, 7200)
            gpus = rng.choice([0, 1, 8, 16])
            gpu_type = "a100_80gb" if gpus else "none"
            run = Run(
                seq=0,
                id=uuid.UUID(int=rng.getrandbits(128)).hex,
                user_id=user.id,
                name=f"bench-{i}",
                status=status,
                reason=None,
                created_at=created,
                updated_at=ended or created,
                started_at=created + 1,
                completed_at=ended,
                created_by_email=user.email,
                priority="auto",
                max_retries=0,
                preemptible=False,
                retry_on_system_failure=False,
                max_duration_seconds=None,
                is_deleted=False,
                run_type="TRAINING",
                image="bench",
                command="true",
                run_input={"env": {}, "parameters": {}, "original": {"image": "bench", "command": "true"}},
                metadata={},
                cluster_name="local",
                gpu_type=gpu_type,
                gpus=gpus,
                cpus=0,
                nodes=max(1, gpus // 8),
            )
            resumption = Resumption(
                0, "local", 0, gpu_type, gpus, run.nodes, created + 1, ended, status, None
            )
            yield run, resumption

    store.bulk_insert_runs(rows())
    store.close()


async def measure(endpoint: str, key: str, repeats: int = 30) -> dict[str, float]:
    """p50 milliseconds per query shape, over HTTP with the full run selection."""
    from .helpers import RUNS_LIGHT, post

    results = {}
    for label, inp in QUERIES.items():
        timings = []
        for _ in range(repeats):
            begin = time.perf_counter()
            data = await post(endpoint, key, RUNS_LIGHT, {"getRunsPaginatedData": inp})
            timings.append((time.perf_counter() - begin) * 1000)
            assert data["getRunsPaginated"]["runs"] is not None
        results[label] = statistics.median(timings)
    return results


def main(count: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        began = time.perf_counter()
        bulk_insert(data_dir, count)
        print(f"inserted {count} runs in {time.perf_counter() - began:.1f} s")
        with LocalServer(data_dir=data_dir) as server:
            assert server.api_key is not None
            for label, p50 in asyncio.run(measure(server.endpoint, server.api_key)).items():
                print(f"  {label:28s} p50 {p50:6.1f} ms")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
