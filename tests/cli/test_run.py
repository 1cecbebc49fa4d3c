"""`mcli run`: launching from YAML with overrides, following to the end, and how errors are shown."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

import mcli

from .helpers import EXAMPLE, MCLI, Cli, run_in_terminal, unique, write_config

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def test_run_prints_the_name_and_applies_overrides(cli: Cli) -> None:
    name = unique("override")
    result = cli(
        "run", "-f", str(EXAMPLE), "--name", name, "--nodes", "1", "--gpus", "0", "--image", "alpine:3"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{name}\n"
    run = mcli.wait_for_run_status(name, "COMPLETED", timeout=30)
    assert (run.node_count, run.gpus, run.image) == (1, 0, "alpine:3")
    assert run.submitted_config is not None
    assert run.submitted_config.env_variables == [{"key": "GREETING", "value": "hello"}]


# What a plain `mcli run -f` (no --follow) has no use for, and so must not pay for at start-up: the terminal library,
# the local server's stack, anyio's event-loop backend (gql's request timeout scope, which mcli does not use), the
# cluster models.
NOT_LOADED_BY_RUN = (
    "rich", "mcli.local.server", "ariadne", "starlette", "anyio._backends._asyncio", "mcli.models.cluster",
)  # fmt: skip


def test_run_loads_only_what_launching_needs(cli_env: dict[str, str]) -> None:
    name = unique("lean")
    probe = (
        "import sys; from mcli.cli.main import main; code = main(sys.argv[1:]); "
        f"loaded = [m for m in {NOT_LOADED_BY_RUN!r} if m in sys.modules]; print(loaded, file=sys.stderr); "
        "sys.exit(code)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe, "run", "-f", str(EXAMPLE), "--name", name],
        env=cli_env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{name}\n"
    assert result.stderr.strip().splitlines()[-1] == "[]", result.stderr


def test_the_command_skips_pydantic_plugin_discovery(cli_env: dict[str, str]) -> None:
    """`mcli` tells pydantic there are no plugins instead of importing importlib.metadata to look (the run config
    is still validated: test_a_bad_config_points_at_the_line_and_column runs the same entry point)."""
    probe = (
        "import atexit, sys; import mcli.cli.main as m\n"
        "atexit.register(lambda: print('metadata loaded:', 'importlib.metadata' in sys.modules, file=sys.stderr))\n"
        "sys.argv[0] = 'mcli'; m.run()"
    )
    name = unique("pluginless")
    launched = subprocess.run(
        [sys.executable, "-c", probe, "run", "-f", str(EXAMPLE), "--name", name],
        env=cli_env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert launched.returncode == 0, launched.stderr
    assert launched.stdout == f"{name}\n" and "metadata loaded: False" in launched.stderr


def test_the_pydantic_stand_in_answers_anything_else_from_the_real_loader() -> None:
    """A pydantic version that asks its plugin loader for more than `get_plugins` still gets it."""
    probe = (
        "import sys, mcli.cli.main as m; m._without_pydantic_plugins()\n"
        "from pydantic.plugin._loader import PYDANTIC_ENTRY_POINT_GROUP, get_plugins\n"
        "print(PYDANTIC_ENTRY_POINT_GROUP, list(get_plugins()))"
    )
    probed = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert probed.returncode == 0, probed.stderr
    assert probed.stdout == "pydantic []\n"


def test_the_command_runs_with_the_garbage_collector_on(cli_env: dict[str, str]) -> None:
    """`mcli` pauses the collector for its start-up only: a follow that runs for hours must not pile up garbage."""
    probe = (
        "import gc, sys; import mcli.cli.main as m; command = m._run_command\n"
        "def observed(args):\n"
        "    print('collector on:', gc.isenabled(), 'api loaded:', 'mcli.aio' in sys.modules, file=sys.stderr)\n"
        "    return command(args)\n"
        "m._run_command = observed; sys.argv[0] = 'mcli'; m.run()"
    )
    name = unique("collected")
    for args, api in ((["run", "-f", str(EXAMPLE), "--name", name], True), (["config", "show"], False)):
        result = subprocess.run(
            [sys.executable, "-c", probe, *args], env=cli_env, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr
        assert f"collector on: True api loaded: {api}" in result.stderr


def test_cluster_override_reaches_the_server(cli: Cli) -> None:
    result = cli("run", "-f", str(EXAMPLE), "--cluster", "elsewhere")
    assert result.returncode == 1
    assert result.stderr.startswith("mcli: error: ") and "elsewhere" in result.stderr


def test_follow_the_example_to_completion(cli: Cli) -> None:
    name = unique("follow")
    result = cli("run", "-f", str(EXAMPLE), "--name", name, "--follow")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == name
    assert lines[1:] == [f"hello from rank 0 of 2: step {step}" for step in (1, 2, 3)]
    assert f"Run {name} COMPLETED" in result.stderr


def test_follow_a_failing_run_exits_1(cli: Cli, tmp_path: Path) -> None:
    config = write_config(tmp_path, "echo about to fail\nexit 3")
    result = cli("run", "-f", str(config), "--follow")
    assert result.returncode == 1, result.stderr
    assert "about to fail" in result.stdout
    assert "FAILED" in result.stderr and "exited with code 3" in result.stderr


def test_follow_a_stopped_run_exits_3(cli_env: dict[str, str], tmp_path: Path) -> None:
    config = write_config(tmp_path, "echo started\nsleep 60")
    with subprocess.Popen(
        [*MCLI, "run", "-f", str(config), "--follow"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env,
    ) as process:
        assert process.stdout is not None
        name = process.stdout.readline().strip()
        assert process.stdout.readline() == "started\n"
        mcli.stop_run(name)
        assert process.wait(timeout=30) == 3
        assert process.stderr is not None and "STOPPED" in process.stderr.read()


YAML_ERRORS = [
    (
        'name: hello\nimage: "python:3.11\ncommand: echo hi\n',
        '{path}:2:8: unclosed quoted string\n  image: "python:3.11\n         ^\n',
    ),
    (
        "image: python:3.11\n  command: echo hi\n",
        "{path}:2:10: unexpected ':' (indent the line under its key, or quote the value)\n"
        "    command: echo hi\n           ^\n",
    ),
    (
        'image: python:3.11\ncommand: echo hi\ncompute:\n  gpus: "8x"\n',
        "{path}:4:9: invalid run config: compute.gpus: Input should be a valid integer (got '8x')\n"
        '    gpus: "8x"\n          ^\n',
    ),
    (
        "image: python:3.11\ncommand: echo hi\ncomptue:\n  nodes: 2\n",
        "{path}:3:1: invalid run config: unknown field 'comptue'; did you mean 'compute'?\n  comptue:\n  ^\n",
    ),
    (
        "image: python:3.11\ncommand: echo hi\nscheduling:\n  max_retries: 2\n  maxduration: 1\n",
        "{path}:5:3: invalid run config: unknown field 'scheduling.maxduration'; did you mean "
        "'scheduling.max_duration'?\n    maxduration: 1\n    ^\n",
    ),
    (
        "name: hello\ncommand: echo hi\n",
        "{path}:1:1: a run config needs 'image' before it can be submitted\n  name: hello\n  ^\n",
    ),
    (
        "image: python:3.11\ncompute:\n  nodes: 2\n",
        "{path}:1:1: a run config needs 'command' before it can be submitted (or 'entrypoint' instead of "
        "'command')\n  image: python:3.11\n  ^\n",
    ),
]


@pytest.mark.parametrize(("text", "message"), YAML_ERRORS, ids=range(len(YAML_ERRORS)))
def test_a_bad_config_points_at_the_line_and_column(cli: Cli, tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "run.yaml"
    config.write_text(text)
    result = cli("run", "-f", str(config))
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == "mcli: error: " + message.format(path=config)


def test_verbose_shows_the_traceback(cli: Cli) -> None:
    result = cli("run", "-f", "missing.yaml", "--verbose")
    assert result.returncode == 1
    assert "Traceback" in result.stderr
    assert result.stderr.splitlines()[-1] == "mcli: error: Run config file not found: missing.yaml"


def test_override_values_are_checked_by_argparse(cli: Cli) -> None:
    result = cli("run", "-f", str(EXAMPLE), "--nodes", "0")
    assert result.returncode == 2
    assert "--nodes: must be at least 1" in result.stderr


def test_follow_in_a_terminal_shows_the_status_line(cli_env: dict[str, str]) -> None:
    name = unique("live")
    code, text = run_in_terminal(["run", "-f", str(EXAMPLE), "--name", name, "--follow"], cli_env, columns=80)
    assert code == 0, text
    lines = [ANSI.sub("", line).replace("\x1b[2K", "").strip() for line in text.replace("\r", "\n").splitlines()]
    # The spinner's last frame is replaced by the path the run took, which stays on screen.
    summary = next(line for line in lines if line.startswith(f"{name}  ") and "ranks up" in line)
    assert summary.endswith("2/2 ranks up") and "RUNNING" in summary
    assert f"Run {name} COMPLETED" in lines


def test_a_taken_name_says_what_to_do(cli: Cli) -> None:
    name = unique("twice")
    assert cli("run", "-f", str(EXAMPLE), "--name", name).returncode == 0
    again = cli("run", "-f", str(EXAMPLE), "--name", name)
    assert (again.returncode, again.stdout) == (1, "")
    assert again.stderr == (
        f"mcli: error: A run named '{name}' already exists; to reuse the name, delete it first "
        f"(mcli delete run {name}); leave the run's name unset to get a unique one, or choose another name\n"
    )
    assert cli("run", "-f", str(EXAMPLE)).returncode == 0  # no name: a new generated one every time
