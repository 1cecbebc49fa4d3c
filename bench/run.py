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
import urllib.request
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
COLD_RUNS = 50  # what `mcli get runs` lists in the cold figures

sys.path.insert(0, str(ROOT))  # `python bench/run.py` from a checkout

import daemon_bench  # noqa: E402
import ray_bench  # noqa: E402

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

    def seed(self, list_runs: int, bulk_runs: int, cold_runs: int = COLD_RUNS) -> float:
        """Users: the default one (creates, logs), `list` with `list_runs` runs, `bulk` with `bulk_runs` runs,
        `cold` with `cold_runs` runs (what `mcli get runs` lists in the cold figures)."""
        self.keys["main"] = "bench-" + uuid.uuid4().hex
        bootstrap(self.data_dir, self.keys["main"])
        self.keys["list"] = add_user(self.data_dir, "list@bench.local")
        self.keys["bulk"] = add_user(self.data_dir, "bulk@bench.local")
        self.keys["cold"] = add_user(self.data_dir, "cold@bench.local")
        store = open_store(self.data_dir)
        base = time.time() - 10 * 86400
        try:
            for email, count, varied in (
                ("list@bench.local", list_runs, False),
                ("bulk@bench.local", bulk_runs, True),
                ("cold@bench.local", cold_runs, True),
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

    def start_replay(self, log_path: Path) -> str:
        """The replay server (bench/replay.py) in record mode, forwarding to the local server; its endpoint."""
        job = {"upstream": self.endpoint, "log_path": str(log_path), "chunk_size": MAX_CHUNK}
        proc = subprocess.Popen(
            [sys.executable, str(BENCH / "replay.py"), json.dumps(job)],
            stdout=subprocess.PIPE, text=True, cwd=self.work, env=clean_env({}),
        )  # fmt: skip
        self.procs.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError("the replay server did not start")
        return f"http://127.0.0.1:{json.loads(line)['port']}/graphql"

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            stop_process(proc)
        self.procs.clear()

    # -- running drivers ------------------------------------------------------------------------------------

    def driver(
        self, client: str, job: dict[str, Any], key: str = "main", endpoint: str | None = None
    ) -> dict[str, Any]:
        env = self.client_env(client, key, endpoint)
        job = {**job, "client": client}
        proc = subprocess.run(
            [str(self.pythons[client]), str(DRIVER), json.dumps(job)],
            capture_output=True, text=True, cwd=self.work, env=env, timeout=SUBPROCESS_TIMEOUT,
        )  # fmt: skip
        if proc.returncode != 0 or not proc.stdout.strip():
            raise RuntimeError(f"{client} {job['kind']} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
        return result

    def client_env(self, client: str, key: str, endpoint: str | None = None) -> dict[str, str]:
        config_dir = self.work / f"config-{client}"
        config_dir.mkdir(exist_ok=True)
        return clean_env(
            {"MOSAICML_API_ENDPOINT": endpoint or self.endpoint, "MOSAICML_API_KEY": self.keys[key],
             "MCLI_CONFIG_DIR": str(config_dir), "HOME": str(self.work)}
        )  # fmt: skip

    def cold(self, client: str, argv: list[str], key: str) -> float:
        """Wall time of one fresh process, start to exit, as a person running it meets it (output discarded)."""
        bin_dir = self.pythons[client].parent
        command = [str(bin_dir / argv[0]), *argv[1:]]
        started = time.perf_counter()
        proc = subprocess.run(
            command, cwd=self.work, env=self.client_env(client, key), timeout=SUBPROCESS_TIMEOUT,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        wall = time.perf_counter() - started
        if proc.returncode != 0:
            raise RuntimeError(f"{client} {argv} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        return wall


# -- cold: a fresh process per measurement, as a person meets each command --------------------------------------

# What a person types or writes; the official client's follow yields raw chunks, so its script counts their lines.
FIRST_GET_RUNS = "import mcli; mcli.get_runs()"
FOLLOW_SCRIPT = {
    "ours": "import mcli\nn = 0\nfor line in mcli.follow_run_logs({run!r}):\n    n += 1\nprint(n)",
    "official": "import mcli\nn = 0\nfor chunk in mcli.follow_run_logs({run!r}):\n    n += len(chunk.splitlines())\nprint(n)",
}
RUN_YAML = "name: {name}\nimage: bench\ncommand: 'true'\ncompute:\n  gpus: 0\n"
# The floor under a cold command: the same request from a bare script (urllib, no SDK, a minimal selection).
# What is left is the interpreter, the connection and the server's own work, which no client can remove.
FLOOR_SCRIPT = (
    "import json, os, urllib.request\n"
    "body = json.dumps({{'query': {query!r}, 'variables': {variables!r}}}).encode()\n"
    "headers = {{'Authorization': os.environ['MOSAICML_API_KEY'], 'Content-Type': 'application/json'}}\n"
    "request = urllib.request.Request(os.environ['MOSAICML_API_ENDPOINT'], data=body, headers=headers)\n"
    "print(json.loads(urllib.request.urlopen(request).read())['data'])\n"
)
FLOOR_CREATE = "mutation C($d: CreateRunInput!) { createRun(createRunData: $d) { name } }"
FLOOR_LIST = "query L($d: GetRunsPaginatedInput!) { getRunsPaginated(getRunsPaginatedData: $d) { runs { name status } } }"
# The floor under the follow script for any client on the design card's stack: it imports gql, graphql-core,
# pydantic and websockets (as such a client must), then follows the log over a bare websocket with the cheapest
# parts known (one pydantic model validating each message, pybase64, splitlines, a loop over every line). No mcli:
# no session, no resumable stream, no run lookup, no second thread.
FOLLOW_FLOOR_SCRIPT = """\
import asyncio, json, os
import gql, graphql, pybase64, pydantic
import websockets.asyncio.client as wsc


class LogChunk(pydantic.BaseModel):
    chunk: str
    endOffset: int


async def follow(run):
    key = os.environ["MOSAICML_API_KEY"]
    query = "subscription L($i: GetRunLogsInput!) {{ getRunLogsV2(getRunLogsInput: $i) {{ chunk endOffset }} }}"
    lines, pending = 0, ""
    async with wsc.connect(os.environ["MOSAICML_API_ENDPOINT"].replace("http", "ws", 1),
                           subprotocols=["graphql-transport-ws"], additional_headers={{"Authorization": key}},
                           max_size=None, compression=None) as ws:
        await ws.send(json.dumps({{"type": "connection_init", "payload": {{}}}}))
        await ws.recv()
        variables = {{"i": {{"name": run, "follow": True}}}}
        await ws.send(json.dumps({{"id": "1", "type": "subscribe", "payload": {{"query": query, "variables": variables}}}}))
        while (message := json.loads(await ws.recv()))["type"] == "next":
            chunk = LogChunk.model_validate(message["payload"]["data"]["getRunLogsV2"])
            pieces = (pending + pybase64.b64decode(chunk.chunk).decode()).splitlines(keepends=True)
            pending = pieces.pop() if pieces and not pieces[-1].endswith("\\n") else ""
            for _ in pieces:
                lines += 1
    return lines + (1 if pending else 0)


print(asyncio.run(follow({run!r})))
"""


def cold_commands(bench: Bench, client: str, rep: int, log_run: str) -> dict[str, tuple[list[str], str]]:
    """figure -> (argv, user key); argv[0] is found next to the client's python."""
    yaml_path = bench.work / f"run-{client}-{rep}.yaml"
    yaml_path.write_text(RUN_YAML.format(name=f"cold-{client}-{rep}"))
    return {
        "cold_get_runs_cli": (["mcli", "get", "runs"], "cold"),
        "cold_logs_cli": (["mcli", "logs", log_run], "main"),
        "cold_run_cli": (["mcli", "run", "-f", str(yaml_path)], "main"),
        "cold_first_get_runs": (["python", "-c", FIRST_GET_RUNS], "cold"),
        "cold_follow_script": (["python", "-c", FOLLOW_SCRIPT[client].format(run=log_run)], "main"),
    }


def floor_commands(rep: int, log_run: str) -> dict[str, tuple[list[str], str]]:
    """figure -> (argv, user key) of the bare-script floor under it (run with our venv's python)."""
    create = {"d": {"runInput": {"runName": f"cold-floor-{rep}", "image": "bench", "command": "true",
                                 "compute": {"gpus": 0}}}}  # fmt: skip
    listing = {"d": {"limit": COLD_RUNS}}
    return {
        "cold_get_runs_cli": (
            ["python", "-c", FLOOR_SCRIPT.format(query=FLOOR_LIST, variables=listing)],
            "cold",
        ),
        "cold_run_cli": (["python", "-c", FLOOR_SCRIPT.format(query=FLOOR_CREATE, variables=create)], "main"),
        "cold_follow_script": (["python", "-c", FOLLOW_FLOOR_SCRIPT.format(run=log_run)], "main"),
    }


def measure_cold(bench: Bench, clients: list[str], reps: int, log_run: str, raw: dict[str, Any]) -> None:
    for rep in range(reps):
        order = clients if rep % 2 == 0 else clients[::-1]
        log(f"cold {rep + 1}/{reps} ({', '.join(order)})")
        commands = {client: cold_commands(bench, client, rep, log_run) for client in clients}
        floors = floor_commands(rep, log_run)
        for figure in commands[clients[0]]:
            for client in order:  # alternate: each figure's two clients back to back
                argv, key = commands[client][figure]
                raw[figure][client].append(bench.cold(client, argv, key))
            if figure in floors:
                argv, key = floors[figure]
                raw[figure]["ceiling"].append(bench.cold("ours", argv, key))


def cold_breakdown(bench: Bench, reps: int) -> dict[str, float]:
    """Where a cold `mcli.get_runs()` of ours spends its time, medians over `reps` fresh processes."""
    samples: dict[str, list[float]] = {}
    for _ in range(reps):
        started = time.perf_counter()
        subprocess.run([str(bench.pythons["ours"]), "-c", "pass"], check=True, cwd=bench.work, timeout=60)
        samples.setdefault("interpreter", []).append(time.perf_counter() - started)
        for name, value in bench.driver("ours", {"kind": "cold_breakdown"}, key="cold").items():
            if isinstance(value, float):
                samples.setdefault(name, []).append(value)
    return {name: statistics.median(values) for name, values in samples.items()}


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


FIGURES: dict[str, tuple[str, str, bool, str]] = {
    # name: (section, unit, higher is better, what)
    "cold_get_runs_cli": ("cold", "s", False, "`mcli get runs` (50 runs), process start to exit"),
    "cold_logs_cli": ("cold", "s", False, "`mcli logs RUN` of a finished 200,000-line run, start to exit"),
    "cold_run_cli": ("cold", "s", False, "`mcli run -f YAML`, start to exit"),
    "cold_first_get_runs": ("cold", "s", False, "`python -c 'import mcli; mcli.get_runs()'`, start to exit"),
    "cold_follow_script": ("cold", "s", False, "a script that follows the 200,000-line run to the end"),
    "client_get_runs_10000": ("client", "s", False, "get_runs of 10,000 runs with details, replayed answers"),
    "client_get_runs_10000_no_details": (
        "client",
        "s",
        False,
        "get_runs(include_details=False), replayed answers",
    ),
    "client_create_100": ("client", "s", False, "100 concurrent create_run(future=True), replayed answers"),
    "client_follow_lines_per_s": ("client", "lines/s", True, "warm follow of 200,000 lines, replayed stream"),
    "client_first_follow_lines_per_s": (
        "client",
        "lines/s",
        True,
        "the same follow as a process's first (no goal; the cold follow script is the goal for it)",
    ),
    "server_get_runs_10000": ("server", "s", False, "getRunsPaginated of 10,000 runs, our full selection"),
    "server_query_p50": ("server", "ms", False, "filtered getRunsPaginated pages of 100, p50"),
    "live_latency_p50": ("server", "ms", False, "one follower: line written -> line yielded, p50"),
    "live_latency_p99": ("server", "ms", False, "one follower: line written -> line yielded, p99"),
    "fanout_latency_p50": ("server", "ms", False, "100 followers of one run: written -> yielded, p50"),
    "fanout_latency_p99": ("server", "ms", False, "100 followers of one run: written -> yielded, p99"),
}


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def evaluate(figures: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The issue's goals; a goal whose inputs were not measured (a section skipped, --no-official) is SKIP."""

    def fig(name: str, who: str) -> float | None:
        value = figures.get(name, {}).get(who)
        return value if isinstance(value, int | float) else None

    def vs_official(name: str) -> float | None:
        return ratio(fig(name, "ours"), fig(name, "official"))

    goals = [
        ("cold `mcli get runs` vs official", vs_official("cold_get_runs_cli"), "<=", 0.5, "x"),
        ("cold `mcli run -f` vs official", vs_official("cold_run_cli"), "<=", 0.5, "x"),
        ("cold follow script vs official", vs_official("cold_follow_script"), "<=", 0.5, "x"),
        ("cold first get_runs vs official", vs_official("cold_first_get_runs"), "<=", 0.6, "x"),
        ("cold `mcli logs` vs official", vs_official("cold_logs_cli"), "<=", 0.6, "x"),
        ("client: get_runs 10,000 vs official", vs_official("client_get_runs_10000"), "<=", 0.4, "x"),
        ("client: 100 concurrent creates vs official", vs_official("client_create_100"), "<=", 0.4, "x"),
        ("client: warm follow vs official", vs_official("client_follow_lines_per_s"), ">=", 1.5, "x"),
        ("client: warm follow vs bare websockets", ratio(fig("client_follow_lines_per_s", "ours"), fig("client_follow_lines_per_s", "ceiling")), ">=", 0.8, "x"),
        ("server: getRunsPaginated of 10,000", fig("server_get_runs_10000", "ours"), "<=", 0.3, "s"),
        ("server: filtered query p50", fig("server_query_p50", "ours"), "<=", 50.0, "ms"),
        ("live latency p50", fig("live_latency_p50", "ours"), "<=", 20.0, "ms"),
        ("live latency p99", fig("live_latency_p99", "ours"), "<=", 100.0, "ms"),
        ("fan-out (100 followers) p50", fig("fanout_latency_p50", "ours"), "<=", 5.0, "ms"),
        ("fan-out (100 followers) p99", fig("fanout_latency_p99", "ours"), "<=", 20.0, "ms"),
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
    rows = [
        "| section | figure | unit | ours | official | ceiling (floor for times) | ours / official |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, figure in results["figures"].items():
        if figure.get("ours") is None:
            continue  # its section was not run
        rows.append(
            f"| {figure['section']} | {name} | {figure['unit']} | {fmt(figure.get('ours'))} | "
            f"{fmt(figure.get('official'))} | {fmt(figure.get('ceiling'))} | "
            f"{fmt(ratio(figure.get('ours'), figure.get('official')))} |"
        )
    rows += ["", "| goal | value | target | result |", "|---|---|---|---|"]
    for goal in results["goals"]:
        rows.append(
            f"| {goal['goal']} | {fmt(goal['value'])} {goal['unit']} | {goal['op']} {goal['target']} {goal['unit']} "
            f"| **{goal['status']}** |"
        )
    cpu = results.get("client_cpu_s")
    if cpu:
        parts = "; ".join(
            f"{job}: " + ", ".join(f"{who} {value * 1000:.0f} ms" for who, value in by_client.items())
            for job, by_client in cpu.items()
        )
        rows += [
            "",
            f"Client CPU time in the client section (process time of the measured part, medians): {parts}.",
        ]
    floor = results.get("follow_floor_lines_per_s")
    official = results["figures"]["client_follow_lines_per_s"].get("official")
    if floor and official:
        rows += [
            "",
            f"Warm follow floor (one thread, no SDK: websockets, the chunk sliced out of the JSON, pybase64, "
            f"splitlines, a loop over every line; `ceiling_client` with `floor`): {floor:,.0f} lines/s, "
            f"{floor / official:.2f}x official; the 1.5x goal asks for {1.5 * official / floor:.0%} of it.",
        ]
    follow_floor = results["figures"].get("cold_follow_script", {})
    if follow_floor.get("ceiling") and follow_floor.get("official"):
        least, theirs = follow_floor["ceiling"], follow_floor["official"]
        rows += [
            "",
            f"Cold follow floor (a bare script on the design card's stack: it imports gql, graphql-core, pydantic and "
            f"websockets, then follows over a bare websocket with one pydantic model per message, pybase64, "
            f"splitlines and a loop over every line; no mcli): {least:.3f} s, {least / theirs:.2f}x official; the "
            f"<= 0.5x goal asks for {0.5 * theirs:.3f} s, {0.5 * theirs / least:.0%} of it.",
        ]
    breakdown = results.get("cold_breakdown")
    if breakdown:
        parts = ", ".join(f"{name} {value * 1000:.0f} ms" for name, value in breakdown.items())
        rows += ["", f"Where a cold `mcli.get_runs()` of ours spends its time (medians): {parts}."]
    cfg = results["config"]
    rows += [
        "",
        f"Sections {', '.join(cfg['sections'])}; {cfg['cold_reps']} cold repetition(s) and {cfg['repetitions']} "
        f"warm one(s), medians; {cfg['list_runs']:,} listed runs, {cfg['bulk_runs']:,} runs behind the filtered "
        f"query, {cfg['log_lines']:,} log lines; {results['environment']['cpus']} CPUs, "
        f"load average {results['environment']['load_average']} at the start, "
        f"Python {results['environment']['python']}, {results['finished_at']}.",
    ]
    return "\n".join(rows) + "\n"


# -- the run ---------------------------------------------------------------------------------------------------

SECTIONS = ("cold", "client", "server")


def sizes(args: argparse.Namespace) -> dict[str, Any]:
    if args.quick:
        return dict(repetitions=args.reps or 1, cold_reps=args.reps or 1, concurrent=10, list_runs=200,
                    bulk_runs=200, log_lines=2000, live_count=30, query_n=10, fanout=4, fanout_lines=40)  # fmt: skip
    return dict(repetitions=args.reps or 3, cold_reps=max(5, args.reps or 5), concurrent=100, list_runs=10_000,
                bulk_runs=100_000, log_lines=200_000, live_count=300, query_n=100, fanout=50,
                fanout_lines=400)  # fmt: skip


def measure_client(
    bench: Bench, clients: list[str], cfg: dict[str, Any], log_path: Path, log_run: str, raw: dict[str, Any]
) -> None:
    """Client work alone: each job is recorded once through the replay server, then replayed from memory."""
    replay = bench.start_replay(log_path)
    ceiling_url = bench.start_ceiling(log_path)
    jobs = {
        client: {
            "list": ({"kind": "get_runs", "limit": cfg["list_runs"], "include_details": True}, "list"),
            "list_no_details": (
                {"kind": "get_runs", "limit": cfg["list_runs"], "include_details": False},
                "list",
            ),
            "create": (
                {"kind": "create_concurrent", "prefix": f"replay-{client}", "n": cfg["concurrent"]},
                "main",
            ),
            "follow": ({"kind": "follow", "run": log_run}, "main"),
            "first_follow": ({"kind": "follow", "run": log_run, "cold": True}, "main"),
        }
        for client in clients
    }
    log("recording the local server's answers")
    for client in clients:
        for job, key in jobs[client].values():
            bench.driver(client, job, key=key, endpoint=replay)
    urllib.request.urlopen(
        urllib.request.Request(replay.replace("/graphql", "/__replay"), data=b"{}"), timeout=30
    )
    for rep in range(cfg["repetitions"]):
        order = clients if rep % 2 == 0 else clients[::-1]
        log(f"client {rep + 1}/{cfg['repetitions']} ({', '.join(order)})")
        for client in order:
            job, key = jobs[client]["list"]
            res = bench.driver(client, job, key=key, endpoint=replay)
            check(res["count"] == cfg["list_runs"], f"{client} get_runs returned {res['count']}")
            raw["client_get_runs_10000"][client].append(res["wall_s"])
            raw.setdefault("client_cpu_s", {}).setdefault("get_runs_10000", {}).setdefault(client, []).append(
                res["cpu_s"]
            )
            job, key = jobs[client]["list_no_details"]
            res = bench.driver(client, job, key=key, endpoint=replay)
            check(
                res["count"] == cfg["list_runs"],
                f"{client} get_runs(include_details=False) returned {res['count']}",
            )
            raw["client_get_runs_10000_no_details"][client].append(res["wall_s"])
        for client in order:
            job, key = jobs[client]["create"]
            res = bench.driver(client, job, key=key, endpoint=replay)
            raw["client_create_100"][client].append(res["wall_s"])
            raw.setdefault("client_cpu_s", {}).setdefault("create_100", {}).setdefault(client, []).append(
                res["cpu_s"]
            )
        for client in [*order, "ceiling", "floor"]:
            if client in ("ceiling", "floor"):
                job = {"kind": "ceiling_client", "url": ceiling_url, "floor": client == "floor"}
                res = bench.driver("ours", job)
            else:
                job, key = jobs[client]["follow"]
                res = bench.driver(client, job, key=key, endpoint=replay)
            # The official client yields raw chunks, whose `splitlines` count a line cut by a chunk edge twice.
            check(abs(res["lines"] - cfg["log_lines"]) <= 50, f"{client} followed {res['lines']} lines")
            if client == "floor":
                raw.setdefault("follow_floor_lines_per_s", []).append(cfg["log_lines"] / res["wall_s"])
            else:
                raw["client_follow_lines_per_s"][client].append(cfg["log_lines"] / res["wall_s"])
            raw.setdefault("client_cpu_s", {}).setdefault("follow", {}).setdefault(client, []).append(
                res["cpu_s"]
            )
        for client in order:
            job, key = jobs[client]["first_follow"]
            res = bench.driver(client, job, key=key, endpoint=replay)
            check(abs(res["lines"] - cfg["log_lines"]) <= 50, f"{client} followed {res['lines']} lines")
            raw["client_first_follow_lines_per_s"][client].append(cfg["log_lines"] / res["wall_s"])


def measure_server(
    bench: Bench, clients: list[str], cfg: dict[str, Any], base: float, raw: dict[str, Any]
) -> None:
    """The server's own cost: raw requests for a 10,000-run listing and filtered pages; follower latency."""
    for rep in range(cfg["repetitions"]):
        log(f"server {rep + 1}/{cfg['repetitions']}")
        job = {"kind": "server_list", "url": bench.endpoint, "api_key": bench.keys["list"], "n": 3,
               "limit": cfg["list_runs"]}  # fmt: skip
        res = bench.driver("ours", job)
        check(res["count"] == cfg["list_runs"], f"server_list returned {res['count']}")
        raw["server_get_runs_10000"]["ours"].append(statistics.median(res["latencies_s"]))
        job = {"kind": "server_query", "url": bench.endpoint, "api_key": bench.keys["bulk"], "n": cfg["query_n"],
               "limit": 100, "filters": server_filters(base, cfg["bulk_runs"])}  # fmt: skip
        res = bench.driver("ours", job)
        pooled = [v for values in res["latencies_s"].values() for v in values]
        raw["server_query_p50"]["ours"].append(percentile(pooled, 50) * 1000)
        raw.setdefault("server_query_by_filter_p50_ms", []).append(
            {label: percentile(values, 50) * 1000 for label, values in res["latencies_s"].items()}
        )
        for client in clients if rep % 2 == 0 else clients[::-1]:
            job = {"kind": "live", "name": f"live-{client}-{rep}", "pause": 1.5, "count": cfg["live_count"],
                   "interval": 0.01}  # fmt: skip
            res = bench.driver(client, job)
            check(
                len(res["latencies_ms"]) == cfg["live_count"], f"{client} live saw {len(res['latencies_ms'])}"
            )
            raw["live_latency_p50"][client].append(percentile(res["latencies_ms"], 50))
            raw["live_latency_p99"][client].append(percentile(res["latencies_ms"], 99))
        latencies = fanout(bench, f"fanout-{rep}", cfg["fanout"], cfg["fanout_lines"])
        raw["fanout_latency_p50"]["ours"].append(percentile(latencies, 50))
        raw["fanout_latency_p99"]["ours"].append(percentile(latencies, 99))


def fanout(bench: Bench, name: str, per_process: int, lines: int) -> list[float]:
    """Two processes of `per_process` mcli.aio followers each, on one run printing a line every 5 ms."""
    bench.driver(
        "ours", {"kind": "create_live", "name": name, "pause": 4.0, "count": lines, "interval": 0.005}
    )
    job = json.dumps({"kind": "fanout", "run": name, "followers": per_process, "client": "ours"})
    env = bench.client_env("ours", "main")
    procs = [
        subprocess.Popen(
            [sys.executable, str(DRIVER), job], stdout=subprocess.PIPE, text=True, cwd=bench.work, env=env
        )
        for _ in range(2)
    ]
    latencies: list[float] = []
    for proc in procs:
        out, _ = proc.communicate(timeout=SUBPROCESS_TIMEOUT)
        check(proc.returncode == 0, f"fan-out follower process failed ({proc.returncode})")
        res = json.loads(out.strip().splitlines()[-1])
        check(res["lines"] == per_process * lines, f"fan-out followers saw {res['lines']} lines")
        latencies += res["latencies_ms"]
    return latencies


def run(args: argparse.Namespace) -> dict[str, Any]:
    cfg = sizes(args)
    sections = args.sections or list(SECTIONS)
    clients = ["ours"] if args.no_official else ["ours", "official"]
    work = Path(tempfile.mkdtemp(prefix="mcli-bench-"))
    bench = Bench(args, work)
    if not args.no_official:
        bench.pythons["official"] = official_python()
    raw: dict[str, Any] = {k: {c: [] for c in [*clients, "ceiling"]} for k in FIGURES}
    load_average = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    breakdown: dict[str, float] = {}
    try:
        log(f"seeding {cfg['list_runs']:,} + {cfg['bulk_runs']:,} + {COLD_RUNS} runs in {work}")
        base = bench.seed(cfg["list_runs"], cfg["bulk_runs"])
        bench.start_server()
        log(f"creating the {cfg['log_lines']:,}-line log run")
        made = bench.driver("ours", {"kind": "setup_log_run", "name": "bulk-log", "lines": cfg["log_lines"]})
        log_path = bench.data_dir / "logs" / made["id"] / "0" / "rank-0.log"
        if "cold" in sections:
            measure_cold(bench, clients, cfg["cold_reps"], made["name"], raw)
            breakdown = cold_breakdown(bench, cfg["cold_reps"])
            total = median(raw["cold_first_get_runs"]["ours"]) or 0.0
            breakdown["exit and the rest"] = max(0.0, total - sum(breakdown.values()))
        if "client" in sections:
            measure_client(bench, clients, cfg, log_path, made["name"], raw)
        if "server" in sections:
            measure_server(bench, clients, cfg, base, raw)
    finally:
        bench.stop_all()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    figures: dict[str, dict[str, Any]] = {}
    for name, (section, unit, higher, what) in FIGURES.items():
        figure: dict[str, Any] = {"section": section, "unit": unit, "higher_is_better": higher, "what": what}
        for who in ("ours", "official", "ceiling"):
            figure[who] = median(raw[name].get(who, []))
        figures[name] = figure
    return {
        "config": {
            **cfg,
            "sections": sections,
            "quick": args.quick,
            "official": not args.no_official,
            "log_chunk_bytes": MAX_CHUNK,
        },
        "environment": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_average": load_average,
        },
        "finished_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "figures": figures,
        "goals": evaluate(figures),
        "cold_breakdown": breakdown,
        "follow_floor_lines_per_s": median(raw.get("follow_floor_lines_per_s", [])),
        "client_cpu_s": {
            job: {who: statistics.median(values) for who, values in by_client.items()}
            for job, by_client in raw.get("client_cpu_s", {}).items()
        },
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
    parser.add_argument(
        "--ray", action="store_true", help="also measure the Ray executor (bench/ray_bench.py)"
    )
    parser.add_argument(
        "--sections", nargs="+", choices=SECTIONS, help="measure only these sections (default: all)"
    )
    args = parser.parse_args(argv)

    results = run(args)
    log("measuring MOSAICML_API_ENDPOINT=local (bench/daemon_bench.py)")
    results["local_daemon"] = daemon_bench.measure(reps=1 if args.quick else 5)
    args.out.mkdir(parents=True, exist_ok=True)
    results_path = args.out / "results.json"
    results_path.write_text(json.dumps(results, indent=2) + "\n")
    table = markdown(results) + "\n" + daemon_bench.markdown(results["local_daemon"])
    if args.ray:
        log("measuring the Ray executor on a simulated 3-node cluster (bench/ray_bench.py)")
        results["ray"] = ray_bench.measure(reps=1 if args.quick else 5)
        results_path.write_text(json.dumps(results, indent=2) + "\n")
        table += "\n" + ray_bench.markdown(results["ray"])
    (args.out / "results.md").write_text(table)
    print(table)
    if not args.no_chart:
        print(chart(results_path, args.out / "results.png"))
    if args.quick:
        return 0  # no timed assertions in the smoke test
    goals = results["goals"] + (results["ray"]["goals"] if args.ray else [])
    return 1 if any(goal["status"] == "FAIL" for goal in goals) else 0


if __name__ == "__main__":
    sys.exit(main())
