"""MOSAICML_API_ENDPOINT=local: runs outlive the script that launched them, through a per-user daemon."""

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import psutil
from conftest import LocalUser

from mcli.local.daemon import wait_gone
from mcli.local.spawn import start_server_process, stop_server_process

LAUNCH = """
import mcli
run = mcli.create_run(mcli.RunConfig(name="embedded-1", image="python:3.11", command="sleep 1; echo done"))
print(run.name, run.status.value)
"""

CHECK = """
import mcli
run = mcli.wait_for_run_status("embedded-1", "COMPLETED", timeout=60)
print(run.status.value, mcli.get_run_logs(run), end="")
"""


def test_a_run_outlives_the_script_that_launched_it(local_user: LocalUser) -> None:
    launched = local_user.python(LAUNCH)
    assert launched.returncode == 0, launched.stderr
    assert launched.stdout.split()[0] == "embedded-1"
    daemon = local_user.daemon()
    assert daemon is not None and daemon.alive()
    assert stat.S_IMODE(local_user.record.stat().st_mode) == 0o600  # it holds the key

    checked = local_user.python(CHECK)
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout == "COMPLETED done\n"
    assert local_user.daemon() == daemon  # reused, not restarted
    assert [p.pid for p in local_user.serve_processes()] == [daemon.pid]


def test_concurrent_first_uses_start_one_daemon(local_user: LocalUser, tmp_path: Path) -> None:
    # Each process gets ready (interpreter up, mcli imported), says so, and waits for the go file: then all three
    # make their first call at once, whatever the machine's load.
    code = (
        "import pathlib, sys, time, mcli.sdk\n"
        "barrier = pathlib.Path(sys.argv[1])\n"
        "(barrier / sys.argv[2]).touch()\n"
        "deadline = time.monotonic() + 60\n"
        "while not (barrier / 'go').exists() and time.monotonic() < deadline:\n"
        "    time.sleep(0.002)\n"
        "print(len(mcli.sdk.get_runs()))\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(tmp_path), f"ready-{i}"], env=local_user.env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(3)
    ]
    deadline = time.monotonic() + 60
    while len(list(tmp_path.glob("ready-*"))) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    (tmp_path / "go").touch()
    outputs = [proc.communicate(timeout=60) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0, 0], outputs
    assert [out for out, _ in outputs] == ["0\n"] * 3
    daemon = local_user.daemon()
    assert daemon is not None
    assert [p.pid for p in local_user.serve_processes()] == [daemon.pid]


def test_a_killed_daemon_is_replaced_and_its_runs_reconciled(local_user: LocalUser) -> None:
    launched = local_user.python(
        'import mcli; mcli.create_run(mcli.RunConfig(name="long", image="x", command="sleep 60"))\n'
        'mcli.wait_for_run_status("long", "RUNNING", timeout=30)'
    )
    assert launched.returncode == 0, launched.stderr
    first = local_user.daemon()
    assert first is not None
    run_processes = [p for p in psutil.Process(first.pid).children() if "sleep 60" in " ".join(p.cmdline())]
    assert run_processes

    os.kill(first.pid, signal.SIGKILL)
    assert wait_gone(first, 10)
    status = local_user.mcli("local", "status")
    assert status.returncode == 1 and "not running" in status.stdout
    assert f"the last one (pid {first.pid}) exited without `mcli local stop`" in status.stdout
    assert "1 run(s) it left active will be marked FAILED" in status.stdout

    checked = local_user.python('import mcli; run = mcli.get_runs(["long"])[0]; print(run.status.value, run.reason)')
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.startswith("FAILED The local server restarted while the run was RUNNING")
    second = local_user.daemon()
    assert second is not None and second.pid != first.pid and second.alive()
    assert second.api_key == first.api_key  # the dead daemon's key is reused, not a new one piled up
    assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in run_processes)
    assert [p.pid for p in local_user.serve_processes()] == [second.pid]


def test_status_and_stop_without_active_runs(local_user: LocalUser) -> None:
    status = local_user.mcli("local", "status")
    assert status.returncode == 1 and "not running" in status.stdout
    assert not local_user.record.exists()  # status never starts a daemon

    assert local_user.mcli("get", "runs").returncode == 0
    daemon = local_user.daemon()
    assert daemon is not None
    status = local_user.mcli("local", "status")
    assert status.returncode == 0, status.stderr
    assert f"running (pid {daemon.pid}" in status.stdout
    assert f"endpoint: {daemon.endpoint}" in status.stdout
    assert f"data dir: {local_user.data_dir}" in status.stdout
    assert "active runs: 0" in status.stdout

    stopped = local_user.mcli("local", "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert f"(pid {daemon.pid}) stopped" in stopped.stdout
    assert not daemon.alive() and not local_user.record.exists()
    assert local_user.mcli("local", "status").returncode == 1


def test_stop_refuses_while_runs_are_active_and_force_stops_them(local_user: LocalUser) -> None:
    launched = local_user.python(
        'import mcli; mcli.create_run(mcli.RunConfig(name="busy", image="x", command="sleep 60"))\n'
        'mcli.wait_for_run_status("busy", "RUNNING", timeout=30)'
    )
    assert launched.returncode == 0, launched.stderr
    daemon = local_user.daemon()
    assert daemon is not None
    assert "active runs: 1 (busy)" in local_user.mcli("local", "status").stdout

    refused = local_user.mcli("local", "stop")
    assert refused.returncode == 1
    assert "1 active run(s) (busy)" in refused.stderr and "--force" in refused.stderr
    assert daemon.alive()

    forced = local_user.mcli("local", "stop", "--force")
    assert forced.returncode == 0, forced.stderr
    assert not daemon.alive() and not local_user.record.exists()

    after = local_user.python('import mcli; run = mcli.get_runs(["busy"])[0]; print(run.status.value, run.reason)')
    assert after.stdout.startswith("FAILED The local server shut down while the run was active"), after


def test_the_key_stays_out_of_the_data_dir_and_the_runs(local_user: LocalUser) -> None:
    result = local_user.python(
        'import mcli; run = mcli.create_run(mcli.RunConfig(name="env", image="x", command="env"))\n'
        'run = mcli.wait_for_run_status(run, "COMPLETED", timeout=60); print(mcli.get_run_logs(run))'
    )
    assert result.returncode == 0, result.stderr
    assert "RUN_NAME=env" in result.stdout
    daemon = local_user.daemon()
    assert daemon is not None
    assert daemon.api_key not in result.stdout and "MCLI_LOCAL_API_KEY" not in result.stdout
    files = [path for path in local_user.data_dir.rglob("*") if path.is_file()]
    assert local_user.data_dir / "daemon.log" in files
    assert [path for path in files if daemon.api_key.encode() in path.read_bytes()] == []


def test_one_server_per_data_dir(local_user: LocalUser, tmp_path: Path) -> None:
    """A foreground `mcli local serve` over the daemon's data dir would take its runs for leftovers: it refuses."""
    launched = local_user.python(
        'import mcli; mcli.create_run(mcli.RunConfig(name="busy", image="x", command="sleep 60"))\n'
        'mcli.wait_for_run_status("busy", "RUNNING", timeout=30)'
    )
    assert launched.returncode == 0, launched.stderr
    daemon = local_user.daemon()
    assert daemon is not None
    refused = local_user.mcli("local", "serve", "--port", "0")
    assert refused.returncode == 1
    assert f"another mcli local server (pid {daemon.pid}) is serving from {local_user.data_dir}" in refused.stderr
    assert "mcli local stop" in refused.stderr
    still = local_user.python('import mcli; print(mcli.get_runs(["busy"])[0].status.value)')
    assert still.stdout == "RUNNING\n", still.stderr
    assert local_user.mcli("local", "stop", "--force").returncode == 0

    # And the other way round: the daemon does not start over a data dir a foreground server holds.
    foreground = start_server_process(["--port=0", f"--data-dir={local_user.data_dir}"],
                                      log_path=tmp_path / "serve.log", env=local_user.env)
    try:
        failed = local_user.python("import mcli; mcli.get_runs()")
        assert failed.returncode == 1
        assert "MCLIConfigError" in failed.stderr
        assert f"another mcli local server (pid {foreground.pid})" in failed.stderr
    finally:
        stop_server_process(foreground.process, grace_seconds=10)
    assert not psutil.pid_exists(foreground.pid)
