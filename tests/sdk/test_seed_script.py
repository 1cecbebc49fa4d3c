"""A script written against the seed's documentation runs unchanged against `mcli local serve`."""

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

SEED_SCRIPT = textwrap.dedent(
    """
    import warnings
    warnings.simplefilter("ignore", DeprecationWarning)
    from mcli.sdk import (RunConfig, RunStatus, create_run, delete_runs, follow_run_logs, get_run_logs, get_runs,
                          initialize, stop_runs, wait_for_run_status, KubernetesException, RunFailed)

    initialize()
    config = RunConfig(run_name="seed-run", image="mosaicml/composer", gpu_num=0, cluster="local",
                       command="echo step 1; echo step 2",
                       env_variables=[{"key": "MODE", "value": "seed"}], parameters={"epochs": 1})
    run = create_run(config, timeout=10)
    lines = list(follow_run_logs(run))
    assert lines == ["step 1\\n", "step 2\\n"], lines
    run = wait_for_run_status(run, RunStatus.COMPLETED, timeout=60)
    assert run.status == RunStatus.COMPLETED and run.status.after(RunStatus.RUNNING)
    assert get_run_logs(run) == "step 1\\nstep 2\\n"
    assert [r.name for r in get_runs(["seed-run"], statuses=[RunStatus.COMPLETED])] == ["seed-run"]

    future = create_run(RunConfig(name="seed-sleep", image="img", command="sleep 30"), future=True)
    sleeper = future.result(timeout=10)
    wait_for_run_status(sleeper, "running", timeout=30)
    stop_runs([sleeper])
    try:
        wait_for_run_status(sleeper, RunStatus.COMPLETED, timeout=30)
        raise SystemExit("a stopped run must not count as completed")
    except RunFailed:
        pass
    try:
        get_run_logs("no-such-run")
        raise SystemExit("expected a not-found error")
    except KubernetesException as error:
        assert error.status == 404
    delete_runs(get_runs(["seed-run", "seed-sleep"]))
    assert get_runs(["seed-run", "seed-sleep"]) == []
    print("seed script ok")
    """
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_seed_script_against_mcli_local_serve(tmp_path: Path) -> None:
    port, key = free_port(), "seed-script-key-0123456789"
    mcli_command = Path(sys.executable).with_name("mcli")
    server = subprocess.Popen(
        [str(mcli_command), "local", "serve", "--port", str(port), "--data-dir", str(tmp_path / "data"),
         "--api-key", key],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.05)
        script = tmp_path / "seed_script.py"
        script.write_text(SEED_SCRIPT)
        env = {**os.environ, "MOSAICML_API_ENDPOINT": f"http://127.0.0.1:{port}/graphql", "MOSAICML_API_KEY": key,
               "MCLI_CONFIG_DIR": str(tmp_path / "config")}
        result = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120,
                                check=False)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "seed script ok" in result.stdout
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=15)
