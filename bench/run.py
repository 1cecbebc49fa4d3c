"""Benchmark our SDK against the official client (mosaicml-cli 0.8.3) on one local server.

    .venv/bin/python bench/run.py                  # full run (about 10 minutes)
    .venv/bin/python bench/run.py --quick --no-official --out /tmp/bench   # CI smoke test

See the "Benchmarks" section of README.md. Every client measurement runs in its own subprocess
(`bench/driver.py`), each client with its own venv's python; the server is a `python -m mcli.local serve`
subprocess on a free 127.0.0.1 port over a temporary data dir.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
DRIVER = BENCH / "driver.py"
CACHE = ROOT / ".cache"
OFFICIAL_VENV = CACHE / "official-venv"  # shared with tests/conformance
OFFICIAL_MARKER = OFFICIAL_VENV / ".mosaicml-cli-0.8.3"
BENCH_VENV = CACHE / "bench-venv"  # matplotlib, kept out of the project's dependencies
BENCH_MARKER = BENCH_VENV / ".matplotlib"
SUBPROCESS_TIMEOUT = 900

sys.path.insert(0, str(ROOT))  # `python bench/run.py` from a checkout

import daemon_bench  # noqa: E402

from mcli.local.logs import MAX_CHUNK  # noqa: E402
from mcli.local.records import Resumption, Run  # noqa: E402
from mcli.local.server import DEFAULT_EMAIL, add_user, bootstrap, open_store  # noqa: E402


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- virtual environments --------------------------------------------------------------------------------------


def _ensure_venv(venv: Path, marker: Path, packages: list[str]) -> Path | None:
    python = venv / "bin" / "python"
    if marker.exists():
        return python
    log(f"creating {venv.relative_to(ROOT)} with {' '.join(packages)}")
    shutil.rmtree(venv, ignore_errors=True)
    CACHE.mkdir(exist_ok=True)
    if not (CACHE / ".gitignore").exists():
        (CACHE / ".gitignore").write_text("*\n")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", *packages], capture_output=True, text=True, timeout=900
    )
    if install.returncode != 0:
        log(f"cannot install {packages}: {install.stderr[-500:]}")
        return None
    marker.touch()
    return python


def official_python() -> Path:
    python = _ensure_venv(OFFICIAL_VENV, OFFICIAL_MARKER, ["mosaicml-cli==0.8.3"])
    if python is None:
        raise SystemExit("the official client could not be installed; use --no-official")
    return python


# -- processes -------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(extra: dict[str, str]) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MOSAICML_", "MCLI_", "PYTHON", "VIRTUAL_ENV"))
    }
    env.update(extra)
    return env


def stop_process(proc: subprocess.Popen[Any], grace: float = 20.0) -> None:
    """SIGTERM by PID, then SIGKILL by PID if it is still there after `grace` seconds."""
    if proc.poll() is not None:
        return
    os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)


class Bench:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args = args
        self.work = work
        self.data_dir = work / "data"
        self.pythons: dict[str, Path] = {"ours": Path(sys.executable)}
        self.keys: dict[str, str] = {}
        self.endpoint = ""
        self.procs: list[subprocess.Popen[Any]] = []

    # -- set-up ---------------------------------------------------------------------------------------------

    def seed(self, list_runs: int, bulk_runs: int) -> float:
        """Users: the default one (creates, logs), `list` with `list_runs` runs, `bulk` with `bulk_runs` runs."""
        self.keys["main"] = "bench-" + uuid.uuid4().hex
        bootstrap(self.data_dir, self.keys["main"])
        self.keys["list"] = add_user(self.data_dir, "list@bench.local")
        self.keys["bulk"] = add_user(self.data_dir, "bulk@bench.local")
        store = open_store(self.data_dir)
        base = time.time() - 10 * 86400
        try:
            for email, count, varied in (
                ("list@bench.local", list_runs, False),
                ("bulk@bench.local", bulk_runs, True),
            ):
                user = store.get_user_by_email(email)
                assert user is not None
                store.bulk_insert_runs(
                    self._finished_run(user.id, email, i, base, varied) for i in range(count)
                )
            assert store.get_user_by_email(DEFAULT_EMAIL) is not None
        finally:
            store.close()
        return base

    @staticmethod
    def _finished_run(user_id: str, email: str, i: int, base: float, varied: bool) -> tuple[Run, Resumption]:
        status = ("COMPLETED", "FAILED", "STOPPED")[i % 3] if varied else "COMPLETED"
        cluster = f"c{i % 4}" if varied else "local"
        gpu_type = ("a100_80gb", "h100_80gb", "none")[i % 3 if not varied else (i // 3) % 3]
        gpus = (0, 1, 8, 16)[(i // 7) % 4] if varied else 0
        nodes = 2 if gpus == 16 else 1
        created = base + i
        run = Run(
            seq=0, id=uuid.uuid4().hex, user_id=user_id, name=f"seed-{i:06d}", status=status,
            reason=None if status == "COMPLETED" else "seeded", created_at=created, updated_at=created + 60,
            started_at=created + 1, completed_at=created + 60, created_by_email=email, priority="medium",
            max_retries=None, preemptible=False, retry_on_system_failure=False, max_duration_seconds=None,
            is_deleted=False, run_type="TRAINING", image="bench", command="true",
            run_input={"env": {}, "parameters": {}, "original": {"name": f"seed-{i:06d}", "image": "bench"}},
            metadata={}, cluster_name=cluster, gpu_type=gpu_type, gpus=gpus, cpus=0, nodes=nodes,
        )  # fmt: skip
        resumption = Resumption(
            0, cluster, 0, gpu_type, gpus, nodes, created + 1, created + 60, status, run.reason
        )
        return run, resumption

    def start_server(self) -> None:
        port = free_port()
        out = open(self.work / "server.out", "w")
        proc = subprocess.Popen(
            [sys.executable, "-m", "mcli.local", "serve", "--port", str(port), "--data-dir", str(self.data_dir),
             "--api-key", self.keys["main"], "--stop-grace-seconds", "2", "--log-level", "warning"],
            stdout=out, stderr=subprocess.STDOUT, cwd=self.work, env=clean_env({}),
        )  # fmt: skip
        self.procs.append(proc)
        deadline = time.monotonic() + 60
        while "listening on" not in (self.work / "server.out").read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start:\n{(self.work / 'server.out').read_text()}")
            time.sleep(0.05)
        self.endpoint = f"http://127.0.0.1:{port}/graphql"
        log(f"server pid {proc.pid} on {self.endpoint}")

    def start_ceiling(self, log_path: Path) -> str:
        job = {"kind": "ceiling_server", "path": str(log_path), "chunk_size": MAX_CHUNK, "max_seconds": 3600}
        proc = subprocess.Popen(
            [sys.executable, str(DRIVER), json.dumps(job)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=self.work,
            env=clean_env({}),
        )
        self.procs.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError("the ceiling server did not start")
        return f"ws://127.0.0.1:{json.loads(line)['port']}/"

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            stop_process(proc)
        self.procs.clear()

    # -- running drivers ------------------------------------------------------------------------------------

    def driver(self, client: str, job: dict[str, Any], key: str = "main") -> dict[str, Any]:
        config_dir = self.work / f"config-{client}"
        config_dir.mkdir(exist_ok=True)
        env = clean_env(
            {"MOSAICML_API_ENDPOINT": self.endpoint, "MOSAICML_API_KEY": self.keys[key],
             "MCLI_CONFIG_DIR": str(config_dir), "HOME": str(self.work)}
        )  # fmt: skip
        job = {**job, "client": client}
        proc = subprocess.run(
            [str(self.pythons[client]), str(DRIVER), json.dumps(job)],
            capture_output=True, text=True, cwd=self.work, env=env, timeout=SUBPROCESS_TIMEOUT,
        )  # fmt: skip
        if proc.returncode != 0 or not proc.stdout.strip():
            raise RuntimeError(f"{client} {job['kind']} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
        return result

    def import_time(self, client: str) -> float:
        env = clean_env({"HOME": str(self.work)})
        started = time.perf_counter()
        subprocess.run(
            [str(self.pythons[client]), "-W", "ignore", "-c", "import mcli.sdk"],
            check=True, cwd=self.work, env=env, timeout=120, capture_output=True,
        )  # fmt: skip
        return time.perf_counter() - started


# -- statistics and reporting ----------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def median(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


FIGURES: dict[str, tuple[str, bool, str]] = {
    # name: (unit, higher is better, what)
    "import_mcli_sdk": ("s", False, "wall time of `python -c 'import mcli.sdk'`"),
    "create_run_p50": ("ms", False, "sequential create_run latency, p50"),
    "create_100_concurrent": ("s", False, "wall time of 100 concurrent future=True creates"),
    "get_runs_10000": ("s", False, "get_runs returning the list user's runs"),
    "follow_lines_per_s": ("lines/s", True, "follow_run_logs of a finished run to the end"),
    "follow_mb_per_s": ("MB/s", True, "the same, in MB/s"),
    "live_latency_p50": ("ms", False, "line written by the run -> line yielded, p50"),
    "live_latency_p99": ("ms", False, "line written by the run -> line yielded, p99"),
    "server_query_p50": ("ms", False, "raw POST getRunsPaginated with filters, p50 (server alone)"),
}


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def evaluate(figures: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The issue's goals; a goal whose inputs are missing (e.g. --no-official) is SKIP."""

    def fig(name: str, who: str) -> float | None:
        value = figures[name].get(who)
        return value if isinstance(value, int | float) else None

    goals = [
        ("follow throughput vs official", ratio(fig("follow_lines_per_s", "ours"), fig("follow_lines_per_s", "official")), ">=", 5.0, "x"),
        ("follow throughput vs ceiling", ratio(fig("follow_lines_per_s", "ours"), fig("follow_lines_per_s", "ceiling")), ">=", 0.5, "x"),
        ("live latency p50", fig("live_latency_p50", "ours"), "<=", 20.0, "ms"),
        ("live latency p99", fig("live_latency_p99", "ours"), "<=", 100.0, "ms"),
        ("get_runs 10,000 vs official", ratio(fig("get_runs_10000", "ours"), fig("get_runs_10000", "official")), "<=", 0.5, "x"),
        ("create_run p50 vs official", ratio(fig("create_run_p50", "ours"), fig("create_run_p50", "official")), "<=", 0.7, "x"),
        ("100 concurrent creates vs official", ratio(fig("create_100_concurrent", "ours"), fig("create_100_concurrent", "official")), "<=", 0.33, "x"),
        ("import mcli.sdk vs official", ratio(fig("import_mcli_sdk", "ours"), fig("import_mcli_sdk", "official")), "<=", 0.5, "x"),
        ("server query p50", fig("server_query_p50", "ours"), "<=", 50.0, "ms"),
    ]  # fmt: skip
    out = []
    for name, value, op, target, unit in goals:
        if value is None:
            status = "SKIP"
        else:
            status = "PASS" if (value >= target if op == ">=" else value <= target) else "FAIL"
        out.append({"goal": name, "value": value, "op": op, "target": target, "unit": unit, "status": status})
    return out


def fmt(value: Any) -> str:
    if not isinstance(value, int | float):
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def markdown(results: dict[str, Any]) -> str:
    rows = ["| figure | unit | ours | official | ceiling | ours / official |", "|---|---|---|---|---|---|"]
    for name, figure in results["figures"].items():
        rows.append(
            f"| {name} | {figure['unit']} | {fmt(figure.get('ours'))} | {fmt(figure.get('official'))} | "
            f"{fmt(figure.get('ceiling'))} | {fmt(ratio(figure.get('ours'), figure.get('official')))} |"
        )
    rows += ["", "| goal | value | target | result |", "|---|---|---|---|"]
    for goal in results["goals"]:
        rows.append(
            f"| {goal['goal']} | {fmt(goal['value'])} {goal['unit']} | {goal['op']} {goal['target']} {goal['unit']} "
            f"| **{goal['status']}** |"
        )
    cfg = results["config"]
    rows += [
        "",
        f"{cfg['repetitions']} repetition(s), medians; {cfg['list_runs']:,} listed runs, {cfg['bulk_runs']:,} runs behind "
        f"the server query, {cfg['log_lines']:,} log lines; {results['environment']['cpus']} CPUs, "
        f"Python {results['environment']['python']}, {results['finished_at']}.",
    ]
    return "\n".join(rows) + "\n"


# -- the run ---------------------------------------------------------------------------------------------------


def sizes(args: argparse.Namespace) -> dict[str, Any]:
    if args.quick:
        return dict(repetitions=args.reps or 1, import_reps=1, create_seq=5, concurrent=10, list_runs=200,
                    bulk_runs=200, log_lines=2000, live_count=30, query_n=10)  # fmt: skip
    return dict(repetitions=args.reps or 3, import_reps=7, create_seq=30, concurrent=100, list_runs=10_000,
                bulk_runs=100_000, log_lines=200_000, live_count=300, query_n=100)  # fmt: skip


def run(args: argparse.Namespace) -> dict[str, Any]:
    cfg = sizes(args)
    clients = ["ours"] if args.no_official else ["ours", "official"]
    work = Path(tempfile.mkdtemp(prefix="mcli-bench-"))
    bench = Bench(args, work)
    if not args.no_official:
        bench.pythons["official"] = official_python()
    raw: dict[str, Any] = {k: {c: [] for c in [*clients, "ceiling"]} for k in FIGURES}
    try:
        log(f"seeding {cfg['list_runs']:,} + {cfg['bulk_runs']:,} runs in {work}")
        base = bench.seed(cfg["list_runs"], cfg["bulk_runs"])
        bench.start_server()
        log(f"creating the {cfg['log_lines']:,}-line log run")
        made = bench.driver("ours", {"kind": "setup_log_run", "name": "bulk-log", "lines": cfg["log_lines"]})
        log_path = bench.data_dir / "logs" / made["id"] / "0" / "rank-0.log"
        ceiling_url = bench.start_ceiling(log_path)
        query_filters = server_filters(base, cfg["bulk_runs"])

        for i in range(cfg["import_reps"]):
            for client in clients if i % 2 == 0 else clients[::-1]:
                raw["import_mcli_sdk"][client].append(bench.import_time(client))
        for rep in range(cfg["repetitions"]):
            order = clients if rep % 2 == 0 else clients[::-1]  # alternate who goes first
            log(f"repetition {rep + 1}/{cfg['repetitions']} ({', '.join(order)})")
            for client in order:
                res = bench.driver(
                    client, {"kind": "create_seq", "prefix": f"seq-{client}-{rep}", "n": cfg["create_seq"]}
                )
                raw["create_run_p50"][client].append(percentile(res["latencies_s"], 50) * 1000)
            for client in order:
                res = bench.driver(
                    client,
                    {"kind": "create_concurrent", "prefix": f"con-{client}-{rep}", "n": cfg["concurrent"]},
                )
                raw["create_100_concurrent"][client].append(res["wall_s"])
            for client in order:
                res = bench.driver(client, {"kind": "get_runs", "limit": cfg["list_runs"]}, key="list")
                check(res["count"] == cfg["list_runs"], f"{client} get_runs returned {res['count']}")
                raw["get_runs_10000"][client].append(res["wall_s"])
            for client in [*order, "ceiling"]:
                if client == "ceiling":
                    res = bench.driver("ours", {"kind": "ceiling_client", "url": ceiling_url})
                else:
                    res = bench.driver(client, {"kind": "follow", "run": made["name"]})
                check(res["lines"] == cfg["log_lines"], f"{client} followed {res['lines']} lines")
                raw["follow_lines_per_s"][client].append(res["lines"] / res["wall_s"])
                raw["follow_mb_per_s"][client].append(res["bytes"] / 1e6 / res["wall_s"])
            for client in order:
                job = {"kind": "live", "name": f"live-{client}-{rep}", "pause": 1.5, "count": cfg["live_count"],
                       "interval": 0.01}  # fmt: skip
                res = bench.driver(client, job)
                check(
                    len(res["latencies_ms"]) == cfg["live_count"],
                    f"{client} live saw {len(res['latencies_ms'])}",
                )
                raw["live_latency_p50"][client].append(percentile(res["latencies_ms"], 50))
                raw["live_latency_p99"][client].append(percentile(res["latencies_ms"], 99))
            job = {"kind": "server_query", "url": bench.endpoint, "api_key": bench.keys["bulk"], "n": cfg["query_n"],
                   "limit": 100, "filters": query_filters}  # fmt: skip
            res = bench.driver("ours", job)
            pooled = [v for values in res["latencies_s"].values() for v in values]
            raw["server_query_p50"]["ours"].append(percentile(pooled, 50) * 1000)
            raw.setdefault("server_query_by_filter_p50_ms", []).append(
                {label: percentile(values, 50) * 1000 for label, values in res["latencies_s"].items()}
            )
    finally:
        bench.stop_all()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    figures: dict[str, dict[str, Any]] = {}
    for name, (unit, higher, what) in FIGURES.items():
        figure: dict[str, Any] = {"unit": unit, "higher_is_better": higher, "what": what}
        for who in ("ours", "official", "ceiling"):
            figure[who] = median(raw[name].get(who, [])) if isinstance(raw[name], dict) else None
        figures[name] = figure
    return {
        "config": {
            **cfg,
            "quick": args.quick,
            "official": not args.no_official,
            "log_chunk_bytes": MAX_CHUNK,
        },
        "environment": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
        "finished_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "figures": figures,
        "goals": evaluate(figures),
        "raw": raw,
    }


def server_filters(base: float, count: int) -> list[dict[str, Any]]:
    def iso(ts: float) -> str:
        return datetime.fromtimestamp(ts, UTC).isoformat()

    return [
        {"label": "status", "filters": {"status": {"in": ["FAILED"]}}},
        {"label": "cluster+gpu_type", "filters": {"clusterName": {"in": ["c2"]}, "gpuType": {"in": ["h100_80gb"]}}},
        {"label": "created_range", "filters": {"createdAt": {"gte": iso(base + count * 0.4), "lt": iso(base + count * 0.6)}}},
        {"label": "gpu_num+status", "filters": {"gpuNum": {"in": [8]}, "status": {"in": ["COMPLETED", "STOPPED"]}}},
        {"label": "names", "filters": {"name": {"in": [f"seed-{i:06d}" for i in range(0, count, max(1, count // 50))]}}},
        {"label": "ended_range+status", "filters": {"endedAt": {"gte": iso(base + count * 0.9)}, "status": {"in": ["STOPPED"]}}},
    ]  # fmt: skip


def check(condition: bool, message: str) -> None:
    if not condition:
        raise RuntimeError(message)


def chart(results_path: Path, png: Path) -> str:
    python = _ensure_venv(BENCH_VENV, BENCH_MARKER, ["matplotlib"])
    if python is None:
        return "chart skipped: matplotlib could not be installed into .cache/bench-venv"
    proc = subprocess.run(
        [str(python), str(BENCH / "chart.py"), str(results_path), str(png)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    return f"chart: {png}" if proc.returncode == 0 else f"chart failed: {proc.stderr[-500:]}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, one repetition (a smoke test)")
    parser.add_argument("--no-official", action="store_true", help="measure our client only")
    parser.add_argument("--reps", type=int, default=None, help="repetitions (default 3, or 1 with --quick)")
    parser.add_argument(
        "--out", type=Path, default=BENCH, help="where results.json/.md/.png go (default bench/)"
    )
    parser.add_argument("--no-chart", action="store_true", help="skip the PNG chart")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data dir")
    args = parser.parse_args(argv)

    results = run(args)
    log("measuring MOSAICML_API_ENDPOINT=local (bench/daemon_bench.py)")
    results["local_daemon"] = daemon_bench.measure(reps=1 if args.quick else 5)
    args.out.mkdir(parents=True, exist_ok=True)
    results_path = args.out / "results.json"
    results_path.write_text(json.dumps(results, indent=2) + "\n")
    table = markdown(results) + "\n" + daemon_bench.markdown(results["local_daemon"])
    (args.out / "results.md").write_text(table)
    print(table)
    if not args.no_chart:
        print(chart(results_path, args.out / "results.png"))
    if args.quick:
        return 0  # no timed assertions in the smoke test
    return 1 if any(goal["status"] == "FAIL" for goal in results["goals"]) else 0


if __name__ == "__main__":
    sys.exit(main())
