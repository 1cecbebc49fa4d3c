"""`mcli init`, `mcli set api-key`, `mcli local`, and --help on every command."""

import argparse
import re
import stat
from pathlib import Path

import pytest
import yaml

from mcli.local.cli import register as register_local

from .helpers import Cli

COMMANDS = [
    [],
    ["run"],
    ["get"],
    ["get", "runs"],
    ["logs"],
    ["describe"],
    ["describe", "run"],
    ["stop"],
    ["stop", "run"],
    ["delete"],
    ["delete", "run"],
    ["init"],
    ["set"],
    ["set", "api-key"],
    ["local"],
    ["local", "serve"],
    ["local", "add-user"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda command: " ".join(command) or "mcli")
def test_help_has_an_example(cli: Cli, command: list[str]) -> None:
    result = cli(*command, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: {' '.join(['mcli', *command])}")
    example = re.split(r"^examples?:\n", result.stdout, maxsplit=1, flags=re.M)[1]
    assert example.lstrip().startswith("mcli ")


def test_every_local_serve_flag_has_help() -> None:
    parser = argparse.ArgumentParser()
    subparsers = parser.add_subparsers()
    register_local(subparsers)
    for command in ("serve", "add-user"):
        actions = subparsers.choices[command]._actions
        assert len(actions) > 1
        assert [action.dest for action in actions if not action.help] == [], command


def test_set_api_key_writes_a_private_config(cli: Cli, tmp_path: Path) -> None:
    config_dir = tmp_path / "config"
    env = {"MCLI_CONFIG_DIR": str(config_dir), "MOSAICML_API_KEY": ""}
    result = cli("set", "api-key", "my-secret-key", env=env)
    assert (result.returncode, result.stdout, result.stderr) == (0, "API key saved.\n", "")
    path = config_dir / "mcli_config"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert yaml.safe_load(path.read_text())["MOSAICML_API_KEY"] == "my-secret-key"


def test_set_api_key_warns_when_the_environment_wins(cli: Cli, tmp_path: Path) -> None:
    result = cli("set", "api-key", "another-key", env={"MCLI_CONFIG_DIR": str(tmp_path)})
    assert result.returncode == 0
    assert result.stderr.startswith("mcli: warning: ") and "MOSAICML_API_KEY is set" in result.stderr


def test_set_a_malformed_api_key_is_one_line(cli: Cli, tmp_path: Path) -> None:
    result = cli("set", "api-key", "two words", env={"MCLI_CONFIG_DIR": str(tmp_path)})
    assert result.returncode == 1
    assert result.stderr == "mcli: error: api_key must not contain whitespace or control characters\n"


def test_init_creates_the_config_file(cli: Cli, tmp_path: Path) -> None:
    result = cli("init", env={"MCLI_CONFIG_DIR": str(tmp_path / "new")})
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "new" / "mcli_config").exists()


def test_a_wrong_api_key_is_one_line(cli: Cli) -> None:
    result = cli("get", "runs", env={"MOSAICML_API_KEY": "not-the-key"})
    assert result.returncode == 1
    assert result.stderr == "mcli: error: Unauthorized: missing or unknown API key\n"


def test_local_add_user_prints_a_key(cli: Cli, tmp_path: Path) -> None:
    result = cli("local", "add-user", "alice@example.com", "--data-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.strip()) >= 20


def test_a_command_is_required(cli: Cli) -> None:
    result = cli("get")
    assert result.returncode == 2 and "required: OBJECT" in result.stderr
