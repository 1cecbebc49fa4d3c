"""What a downstream project gets: a fresh directory, a test file using `mapi_env` (and README's example), plain
`pytest`.

pytest runs in a subprocess with this interpreter (its environment has mcli installed with the local extra and
pytest, nothing else is configured). Afterwards no process that the run started may be alive: every process of
the child pytest's tree carries a token in its environment, and psutil looks for it.
"""

import os
import secrets
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil

PROJECT_TEST = textwrap.dedent(
    """
    import os

    import mcli


    def test_create_follow_and_stop_runs(mapi_env):
        greeting = mcli.create_run(
            mcli.RunConfig(name="greeting", image="python:3.11", command="echo hello from rank $NODE_RANK")
        )
        assert list(mcli.follow_run_logs(greeting)) == ["hello from rank 0\\n"]
        assert mcli.wait_for_run_status(greeting, "COMPLETED", timeout=30).status == "COMPLETED"

        sleeper = mcli.create_run(
            mcli.RunConfig(name="sleeper", image="python:3.11", command="echo $$ >> {pids}; echo started; sleep 300")
        )
        assert next(iter(mcli.follow_run_logs(sleeper))) == "started\\n"
        mcli.stop_run(sleeper)
        assert mcli.wait_for_run_status(sleeper, "STOPPED", timeout=30).status == "STOPPED"
        assert sorted(run.name for run in mcli.get_runs()) == ["greeting", "sleeper"]


    def test_a_run_left_running_is_stopped_after_the_test(mapi_env):
        with open("{server_pid}", "w") as out:
            out.write(str(mapi_env.server.pid))
        with open("{key}", "w") as out:
            out.write(mapi_env.api_key)
        left = mcli.create_run(
            mcli.RunConfig(name="left-running", image="python:3.11", command="echo $$ >> {pids}; echo started; sleep 300")
        )
        assert next(iter(mcli.follow_run_logs(left))) == "started\\n"


    def test_the_environment_is_restored_after_each_test():
        assert "MOSAICML_API_ENDPOINT" not in os.environ and "MOSAICML_API_KEY" not in os.environ


    def test_the_run_left_running_was_stopped_after_its_test(mapi_server):
        from mcli.testing import MapiUser, mapi_environment

        with open("{key}") as saved:
            previous = MapiUser(mapi_server, "previous", saved.read())
        with mapi_environment(previous):
            assert mcli.get_run("left-running").status in ("TERMINATING", "STOPPED")
    """
)


def readme_example() -> str:
    """The python block of README's "Testing your code against a local MAPI" section."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## Testing your code against a local MAPI", 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def _processes_with(token: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter():
        try:
            if process.environ().get("FRESH_PROJECT_TOKEN") == token:
                found.append(process)
        except psutil.Error:
            continue
    return found


def test_a_fresh_project_tests_against_a_local_mapi_and_leaves_nothing_running(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    pids, server_pid = tmp_path / "run-pids", tmp_path / "server-pid"
    (project / "test_launcher.py").write_text(PROJECT_TEST.format(pids=pids, server_pid=server_pid, key=tmp_path / "key"))
    (project / "test_readme.py").write_text(readme_example())
    token = secrets.token_hex(8)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MOSAICML_", "MCLI_", "PYTEST_"))}
    env["FRESH_PROJECT_TOKEN"] = token

    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q"],
        cwd=project, env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip

    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 passed" in result.stdout
    run_pids = [int(line) for line in pids.read_text().split()]
    assert len(run_pids) == 2 and int(server_pid.read_text()) > 0
    deadline = time.monotonic() + 5  # the last children may still be being reaped by init
    while (left := _processes_with(token)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert left == []


OPTIONS_TEST = textwrap.dedent(
    """
    import mcli
    import pytest


    def test_capacity_comes_from_the_command_line(mapi_env):
        run = mcli.create_run(mcli.RunConfig(image="python:3.11", command="true", compute={"nodes": 3, "gpus": 6}))
        assert mcli.wait_for_run_status(run, "COMPLETED", timeout=30).status == "COMPLETED"
        with pytest.raises(mcli.MAPIException):
            mcli.create_run(mcli.RunConfig(image="python:3.11", command="true", compute={"nodes": 4, "gpus": 8}))
        print("DATA_DIR", mapi_env.server.data_dir)


    def test_options_from_a_conftest_override(mapi_env):
        first = mcli.create_run(mcli.RunConfig(image="python:3.11", command="sleep 60"))
        second = mcli.create_run(mcli.RunConfig(image="python:3.11", command="true"))
        mcli.wait_for_run_status(first, "RUNNING", timeout=30)
        assert mcli.wait_for_run_status(second, "QUEUED", timeout=30).status == "QUEUED"  # one run at a time
    """
)

OPTIONS_CONFTEST = textwrap.dedent(
    """
    import pytest


    @pytest.fixture(scope="session")
    def mapi_server_options(mapi_server_options):
        return {**mapi_server_options, "max_concurrent_runs": 1}
    """
)


def test_command_line_and_conftest_options_reach_the_server(tmp_path: Path) -> None:
    (tmp_path / "test_options.py").write_text(OPTIONS_TEST)
    (tmp_path / "conftest.py").write_text(OPTIONS_CONFTEST)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MOSAICML_", "MCLI_", "PYTEST_"))}
    env["TMPDIR"] = str(tmp_path / "tmp")  # the kept data dir lands here, in this test's own directory
    (tmp_path / "tmp").mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider",
         "--mapi-nodes", "3", "--mapi-gpus-per-node", "2", "--mapi-keep-data"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    data_dir = Path(result.stdout.split("DATA_DIR ", 1)[1].split()[0])
    assert data_dir.parent == tmp_path / "tmp"
    assert f"mcli local MAPI data kept in {data_dir}" in result.stdout
    assert (data_dir / "server.log").exists()


def test_loading_the_plugin_imports_nothing_heavy() -> None:
    probe = (
        "import sys, mcli.testing.pytest_plugin\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'ariadne', 'uvicorn', 'starlette', 'psutil', "
        "'gql', 'aiohttp', 'pydantic', 'hypothesis', 'sqlite3'} or m.startswith(('mcli.local', 'mcli.sdk'))))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "[]"


KILLED_TEST = textwrap.dedent(
    """
    import os
    import signal

    import mcli


    def test_pytest_is_killed_while_a_run_is_active(mapi_env):
        with open("{data_dir}", "w") as out:
            out.write(str(mapi_env.server.data_dir))
        run = mcli.create_run(mcli.RunConfig(name="orphan", image="python:3.11", command="echo started; sleep 300"))
        assert next(iter(mcli.follow_run_logs(run))) == "started\\n"
        os.kill(os.getpid(), signal.SIGKILL)  # no teardown, no atexit
    """
)


def test_a_killed_pytest_leaves_nothing_running(tmp_path: Path) -> None:
    project, data_dir = tmp_path / "project", tmp_path / "data-dir"
    project.mkdir()
    (project / "test_killed.py").write_text(KILLED_TEST.replace("{data_dir}", str(data_dir)))
    token = secrets.token_hex(8)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MOSAICML_", "MCLI_", "PYTEST_"))}
    env["FRESH_PROJECT_TOKEN"] = token
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=project, env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert result.returncode == -9, result.stdout + result.stderr
    deadline = time.monotonic() + 30  # the guard gives the server its grace period, then sweeps
    while (left := _processes_with(token)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert left == []
    assert not Path(data_dir.read_text()).exists()
