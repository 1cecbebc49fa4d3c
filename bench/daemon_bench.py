"""What `MOSAICML_API_ENDPOINT=local` costs a script: its first `get_runs`, with and without a running daemon.

    .venv/bin/python bench/daemon_bench.py [--reps N]     # prints JSON; bench/run.py calls measure()

Each repetition takes a new empty HOME (a new user). A fresh interpreter imports `mcli.sdk`, then times its first
`mcli.get_runs(limit=1)` (which starts the daemon: "cold, no daemon") and a second one in the same process
("later call"); a second fresh interpreter then does the same against the daemon the first one left running
("cold, daemon running"). `resolve_us` is one `mcli.connection.credentials()` once the daemon is known: what
every later call pays to find it. The daemon is stopped (by PID, checked gone) after each repetition.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # `python bench/daemon_bench.py` from a checkout

from mcli.local.daemon import RECORD_NAME, read_record, stop_daemon  # noqa: E402

CLIENT = """
import json, time, timeit
t0 = time.perf_counter()
import mcli.sdk
import mcli.connection
t1 = time.perf_counter()
mcli.sdk.get_runs(limit=1)
t2 = time.perf_counter()
mcli.sdk.get_runs(limit=1)
t3 = time.perf_counter()
resolve = min(timeit.repeat(mcli.connection.credentials, number=100, repeat=5)) / 100
print(json.dumps({"import_s": t1 - t0, "first_call_s": t2 - t1, "later_call_s": t3 - t2, "resolve_s": resolve}))
"""

FIGURES = {
    "first_get_runs_no_daemon_ms": ("cold", "first_call_s"),
    "first_get_runs_daemon_running_ms": ("warm", "first_call_s"),
    "later_get_runs_ms": ("warm", "later_call_s"),
    "process_no_daemon_ms": ("cold", "process_s"),
    "process_daemon_running_ms": ("warm", "process_s"),
}


def _client(python: str, home: Path) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MOSAICML_", "MCLI_"))}
    env.update(HOME=str(home), MOSAICML_API_ENDPOINT="local")
    started = time.perf_counter()
    proc = subprocess.run([python, "-c", CLIENT], env=env, capture_output=True, text=True, timeout=120)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"daemon bench client failed: {proc.stderr[-2000:]}")
    result: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    result["process_s"] = wall
    return result


def measure(reps: int = 5, python: str = sys.executable) -> dict[str, Any]:
    """Medians over `reps` new users, in milliseconds (resolve in microseconds), and the raw samples."""
    samples: dict[str, list[dict[str, float]]] = {"cold": [], "warm": []}
    for _ in range(reps):
        home = Path(tempfile.mkdtemp(prefix="mcli-daemon-bench-"))
        record = home / ".mosaic" / RECORD_NAME
        try:
            samples["cold"].append(_client(python, home))
            samples["warm"].append(_client(python, home))
            daemon = read_record(record)
            if daemon is None:
                raise RuntimeError("the daemon bench found no daemon record")
        finally:
            stop_daemon(record, force=True)
            shutil.rmtree(home, ignore_errors=True)
        if daemon.alive():
            raise RuntimeError(f"local daemon {daemon.pid} still runs after stop")
    figures = {
        name: statistics.median(s[key] for s in samples[which]) * 1000
        for name, (which, key) in FIGURES.items()
    }
    figures["resolve_us"] = statistics.median(s["resolve_s"] for s in samples["warm"]) * 1e6
    figures["daemon_start_ms"] = (
        figures["first_get_runs_no_daemon_ms"] - figures["first_get_runs_daemon_running_ms"]
    )
    return {"reps": reps, "figures": figures, "raw": samples}


def markdown(results: dict[str, Any]) -> str:
    rows = ["| MOSAICML_API_ENDPOINT=local | median |", "|---|---|"]
    for name, value in results["figures"].items():
        unit = "µs" if name.endswith("_us") else "ms"
        rows.append(
            f"| {name.rsplit('_', 1)[0]} | {value:,.0f} {unit} |"
            if value >= 100
            else f"| {name.rsplit('_', 1)[0]} | {value:.3g} {unit} |"
        )
    rows.append(f"\n{results['reps']} new users (empty HOMEs), medians.")
    return "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args(argv)
    results = measure(args.reps)
    print(json.dumps(results["figures"], indent=2))
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
