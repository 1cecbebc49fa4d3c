"""A script written against the seed's documentation runs unchanged against `mcli local serve`."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from mcli.testing import MapiUser

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


def test_seed_script_against_mcli_local_serve(configured: MapiUser, tmp_path: Path) -> None:
    # The suite's `mcli local serve` subprocess (mcli.testing), reached as a user of its own.
    script = tmp_path / "seed_script.py"
    script.write_text(SEED_SCRIPT)
    env = {**os.environ, **configured.environment(), "MCLI_CONFIG_DIR": str(tmp_path / "config")}
    result = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "seed script ok" in result.stdout
