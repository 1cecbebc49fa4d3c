"""`mcli get clusters`, `mcli util` and `mcli update run`."""

import json
from pathlib import Path

import mcli

from .helpers import Cli, unique


def test_get_clusters_lists_instances(cli: Cli) -> None:
    result = cli("get", "clusters")
    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["NAME", "PROVIDER", "INSTANCE", "GPU", "TYPE", "GPUS", "NODES"]
    gpu_rows = [row.split() for row in rows if "per node" in row]
    assert gpu_rows and gpu_rows[0][:3] == ["local", "LOCAL", "gpu-8x"] and gpu_rows[0][-1] == "8"
    listed = json.loads(cli("get", "clusters", "--json").stdout)
    assert [cluster["name"] for cluster in listed] == ["local"]
    assert listed[0]["utilization"] is None


def test_util_shows_gpus_in_use_and_the_runs_holding_them(cli: Cli) -> None:
    name = unique("util")
    run = mcli.create_run(mcli.RunConfig(name=name, image="python:3.11", command="sleep 60", compute={"gpus": 8}))
    try:
        mcli.wait_for_run_status(run, "RUNNING", timeout=30)
        result = cli("util")
        assert result.returncode == 0, result.stderr
        gpus, active = result.stdout.split("Active runs")[0], result.stdout.split("Active runs")[1]
        assert "8xnone" in gpus
        row = next(line for line in active.splitlines() if name in line)
        assert row.split()[:4] == ["local", name, "local@mcli.local", "8"]
        (cluster,) = json.loads(cli("util", "--json").stdout)
        used = cluster["utilization"]["cluster_instance_utils"][0]
        assert used["gpus_used"] >= 8 and used["gpus_total"] == 64
        assert name in [r["name"] for r in cluster["utilization"]["active_runs_by_user"]]
    finally:
        mcli.stop_run(run)
    missing = cli("util", "nowhere")
    assert missing.returncode == 1 and "no clusters named nowhere" in missing.stderr


def test_update_run_changes_settings(cli: Cli) -> None:
    run = mcli.create_run(mcli.RunConfig(name=unique("update"), image="python:3.11", command="true"))
    result = cli("update", "run", run.name, "--max-retries", "3", "--max-duration", "1.5", "--no-preemptible",
                 "--priority", "low")
    assert result.returncode == 0, result.stderr
    assert "max retries 3" in result.stdout and "max duration 1h30m" in result.stdout
    fetched = mcli.get_run(run.name)
    assert (fetched.max_retries, fetched.max_duration_seconds, fetched.priority) == (3, 5400, "low")
    nothing = cli("update", "run", run.name)
    assert nothing.returncode == 1 and "nothing to update" in nothing.stderr
    bad = cli("update", "run", run.name, "--max-duration", "-1")
    assert bad.returncode == 2 and "positive number of hours" in bad.stderr
    missing = cli("update", "run", "no-such-run", "--max-retries", "1")
    assert missing.returncode == 1 and "no-such-run" in missing.stderr


def test_describe_run_shows_resumptions_and_retry_policy(cli: Cli) -> None:
    run = mcli.create_run(mcli.RunConfig(name=unique("describe"), image="python:3.11", command="exit 3",
                                         scheduling={"max_retries": 2, "max_duration": 0.5}))
    mcli.wait_for_run_status(run, "FAILED", timeout=60)
    result = cli("describe", "run", run.name)
    assert result.returncode == 0, result.stderr
    assert "up to 2 automatic" in result.stdout and "30m00s" in result.stdout
    section = result.stdout.split("Resumptions")[1].split("Lifecycle")[0]
    # Inside the panel's border: drop its edges.
    lines = [line.strip("│ ") for line in section.splitlines()[1:]]
    header, *rows = [line for line in lines if line and not line.startswith("╰")]
    assert header.split() == ["INDEX", "STATUS", "STARTED", "ENDED", "REASON"]
    assert rows[0].split()[:2] == ["0", "FAILED"] and "code 3" in rows[0]


FAILS_TWICE = 'n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count; echo "attempt $n"; [ "$n" -ge 3 ]'


def test_run_follow_goes_on_across_resumptions_and_logs_picks_one(cli: Cli, tmp_path: Path) -> None:
    name = unique("flaky")
    config = tmp_path / "flaky.yaml"
    # Each attempt lasts a second, so the follower is attached before the first one fails.
    config.write_text(
        f"name: {name}\nimage: python:3.11\nscheduling:\n  max_retries: 3\n"
        f"command: |\n  {FAILS_TWICE}; status=$?; sleep 1; exit $status\n"
    )
    followed = cli("run", "-f", str(config), "--follow")
    assert followed.returncode == 0, followed.stderr
    assert followed.stdout == f"{name}\nattempt 1\nattempt 2\nattempt 3\n"
    assert "COMPLETED" in followed.stderr
    second = cli("logs", name, "--resumption", "1")
    assert second.returncode == 0 and second.stdout == "attempt 2\n"
    assert cli("logs", name, "-f", "--resumption", "0").stdout == "attempt 1\n"
    assert cli("logs", name, "-f").stdout == "attempt 3\n"  # a finished run: its latest resumption
    described = cli("describe", "run", name).stdout.split("Resumptions")[1].split("Lifecycle")[0]
    rows = [line.strip("│ ") for line in described.splitlines()[2:5]]  # inside the panel, after its header
    assert [row.split()[:2] for row in rows] == [
        ["0", "FAILED"],
        ["1", "FAILED"],
        ["2", "COMPLETED"],
    ]


def test_start_run_restarts_a_stopped_run(cli: Cli) -> None:
    run = mcli.create_run(mcli.RunConfig(name=unique("restart"), image="python:3.11", command="sleep 60"))
    mcli.wait_for_run_status(run, "RUNNING", timeout=30)
    mcli.stop_run(run)
    mcli.wait_for_run_status(run, "STOPPED", timeout=30)
    result = cli("start", "run", run.name)
    assert result.returncode == 0, result.stderr
    assert f"Restarting run {run.name} as resumption 1" in result.stdout
    assert mcli.wait_for_run_status(run, "RUNNING", timeout=30).resumptions[-1].index == 1
    again = cli("start", "run", run.name)
    assert again.returncode == 1 and "only stopped or failed runs can be started" in again.stderr
    mcli.stop_run(run)
