"""Smoke test of the benchmark harness: a tiny run of our client only, no timed assertions."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIGURES = {
    "cold_get_runs_cli",
    "cold_logs_cli",
    "cold_run_cli",
    "cold_first_get_runs",
    "cold_follow_script",
    "client_get_runs_10000",
    "client_get_runs_10000_no_details",
    "client_create_100",
    "client_follow_lines_per_s",
    "client_first_follow_lines_per_s",
    "server_get_runs_10000",
    "server_query_p50",
    "live_latency_p50",
    "live_latency_p99",
    "fanout_latency_p50",
    "fanout_latency_p99",
}


def test_bench_quick_writes_every_figure(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "run.py"),
            "--quick",
            "--no-official",
            "--no-chart",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert set(results["figures"]) == FIGURES
    for name, figure in results["figures"].items():
        assert isinstance(figure["ours"], int | float) and figure["ours"] > 0, (name, figure)
        assert figure["official"] is None, name
    assert results["figures"]["client_follow_lines_per_s"]["ceiling"] > 0
    assert results["follow_floor_lines_per_s"] > 0
    assert set(results["cold_breakdown"]) >= {"interpreter", "import", "connect", "request", "work"}
    assert {goal["status"] for goal in results["goals"]} <= {"PASS", "FAIL", "SKIP"}
    assert "| client_follow_lines_per_s |" in (tmp_path / "results.md").read_text()
