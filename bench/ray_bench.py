"""The Ray executor on a simulated 3-node Ray cluster (head + 2 workers, 1 CPU and 2 GPUs each, one machine).

    .venv/bin/python bench/ray_bench.py [--reps N]     # prints JSON; bench/run.py --ray calls measure()

- submit -> RUNNING: our SDK's `create_run` of a 2-node run (2 GPUs per rank) until `wait_for_run_status`
  sees RUNNING: placement group, two actors, their commands started.
- live line latency: a 1-node run prints a line with its own wall time every 10 ms; our SDK's `follow_run_logs`
  subtracts it from the time the line arrives (rank -> actor -> server log -> websocket -> client).
- throughput per rank: a 2-node run whose ranks each print BYTES bytes as fast as `yes` can; the run completes only
  once the server holds every byte, so bytes / (RUNNING -> COMPLETED) is what one rank's output moves at.

The cluster is stopped with `cluster.shutdown()` (never `ray stop`), the server with SIGTERM, both checked gone.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # `python bench/ray_bench.py` from a checkout

KEY = "ray-bench-key-0123456789"
THROUGHPUT_BYTES = 200 * 1024 * 1024
LATENCY_LINES = 300
GOALS = {
    "submit_to_running_s": ("<=", 1.5),
    "line_latency_p50_ms": ("<=", 5.0),
    "line_latency_p99_ms": ("<=", 20.0),
    "throughput_per_rank_mb_s": (">=", 30.0),
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _start_server(data_dir: Path, address: str) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    args = [sys.executable, "-m", "mcli.local", "serve", "--port", str(port), "--data-dir", str(data_dir)]
    args += ["--api-key", KEY, "--executor", "ray", "--ray-address", address, "--log-level", "warning"]
    data_dir.mkdir(parents=True)
    output = data_dir.parent / "server.log"
    with open(output, "wb") as sink:  # a file, not a pipe: nobody has to drain it
        proc = subprocess.Popen(args, stdout=sink, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if b"mcli local server listening on" in output.read_bytes():
            return proc, f"http://127.0.0.1:{port}/graphql"
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    raise RuntimeError("the Ray server did not start:\n" + output.read_text()[-4000:])


def _submit_to_running(reps: int) -> list[float]:
    import mcli
    from mcli import RunConfig, RunStatus

    times = []
    for rep in range(reps):
        config = RunConfig(
            name=f"submit-{rep}", image="bench", command="true", compute={"gpus": 4, "nodes": 2}
        )
        started = time.perf_counter()
        run = mcli.create_run(config)
        mcli.wait_for_run_status(run, RunStatus.RUNNING, timeout=60)
        times.append(time.perf_counter() - started)
        mcli.wait_for_run_status(run, RunStatus.COMPLETED, timeout=60)
    return times


def _line_latencies() -> list[float]:
    import mcli
    from mcli import RunConfig, RunStatus

    printer = (
        f"{sys.executable} -c 'import time\nfor i in range({LATENCY_LINES}):\n"
        "    print(repr(time.time()), flush=True)\n    time.sleep(0.01)'"
    )
    run = mcli.create_run(
        RunConfig(name="latency", image="bench", command=printer, compute={"gpus": 2, "nodes": 1})
    )
    latencies = []
    for line in mcli.follow_run_logs(run):
        latencies.append((time.time() - float(line)) * 1000)
    mcli.wait_for_run_status(run, RunStatus.COMPLETED, timeout=60)
    if len(latencies) != LATENCY_LINES:
        raise RuntimeError(f"followed {len(latencies)} of {LATENCY_LINES} lines")
    return latencies[10:]  # the first lines also measure the follower catching up with the start


def _throughput(nbytes: int) -> float:
    import mcli
    from mcli import RunConfig, RunStatus

    line = "x" * 99
    command = f"yes {line} | head -c {nbytes}"
    run = mcli.create_run(
        RunConfig(name="throughput", image="bench", command=command, compute={"gpus": 4, "nodes": 2})
    )
    mcli.wait_for_run_status(run, RunStatus.RUNNING, timeout=60)
    started = time.perf_counter()
    done = mcli.wait_for_run_status(run, RunStatus.COMPLETED, timeout=600)
    elapsed = time.perf_counter() - started
    if done.status != RunStatus.COMPLETED:
        raise RuntimeError(f"throughput run ended {done.status}: {done.reason}")
    for rank in (0, 1):
        # The whole output is in the server's log: the tail is where `head -c` cut it.
        if len(mcli.get_run_logs(run, rank=rank, tail=1)) != (nbytes % 100 or 100):
            raise RuntimeError(f"rank {rank}'s log is not {nbytes} bytes")
    return nbytes / elapsed / 1e6


def measure(reps: int = 5, throughput_bytes: int = THROUGHPUT_BYTES) -> dict[str, Any]:
    ray_tmp = tempfile.mkdtemp(prefix="r", dir="/tmp")
    os.environ["RAY_TMPDIR"] = ray_tmp  # before ray is imported
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # every Ray process on 127.0.0.1
    from ray.cluster_utils import Cluster

    work = Path(tempfile.mkdtemp(prefix="mcli-ray-bench-"))
    cluster = Cluster(
        initialize_head=True,
        connect=False,
        head_node_args={"num_cpus": 1, "num_gpus": 2, "include_dashboard": False},
    )
    server = None
    saved = {
        name: os.environ.get(name)
        for name in ("MOSAICML_API_ENDPOINT", "MOSAICML_API_KEY", "MCLI_CONFIG_DIR")
    }
    try:
        for _ in range(2):
            cluster.add_node(num_cpus=1, num_gpus=2)
        cluster.wait_for_nodes()
        server, endpoint = _start_server(work / "data", cluster.address)
        os.environ.update(
            MOSAICML_API_ENDPOINT=endpoint, MOSAICML_API_KEY=KEY, MCLI_CONFIG_DIR=str(work / "cfg")
        )
        submit = _submit_to_running(reps)
        latencies = _line_latencies()
        throughput = _throughput(throughput_bytes)
    finally:
        if server is not None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        cluster.shutdown()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(ray_tmp, ignore_errors=True)
    figures = {
        "submit_to_running_s": statistics.median(submit),
        "submit_to_running_max_s": max(submit),
        "line_latency_p50_ms": _percentile(latencies, 0.5),
        "line_latency_p99_ms": _percentile(latencies, 0.99),
        "throughput_per_rank_mb_s": throughput,
    }
    goals = []
    for name, (op, target) in GOALS.items():
        value = figures[name]
        ok = value <= target if op == "<=" else value >= target
        goals.append(
            {"figure": name, "goal": f"{op} {target}", "value": value, "status": "PASS" if ok else "FAIL"}
        )
    return {"figures": figures, "goals": goals, "reps": reps, "throughput_bytes": throughput_bytes}


def markdown(results: dict[str, Any]) -> str:
    lines = [
        "### Ray executor (simulated 3-node cluster, bench/ray_bench.py)",
        "",
        "| figure | goal | value | status |",
        "|---|---|---|---|",
    ]
    for goal in results["goals"]:
        lines.append(f"| {goal['figure']} | {goal['goal']} | {goal['value']:.3g} | {goal['status']} |")
    lines.append(
        f"\nsubmit -> RUNNING worst of {results['reps']}: {results['figures']['submit_to_running_max_s']:.3g} s"
    )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--reps", type=int, default=5, help="submit -> RUNNING repetitions (default %(default)s)"
    )
    parser.add_argument("--mb", type=int, default=THROUGHPUT_BYTES // 2**20, help="MiB each rank prints")
    args = parser.parse_args(argv)
    results = measure(args.reps, args.mb * 2**20)
    print(json.dumps(results, indent=2))
    print(markdown(results))
    return 1 if any(goal["status"] == "FAIL" for goal in results["goals"]) else 0


if __name__ == "__main__":
    sys.exit(main())
