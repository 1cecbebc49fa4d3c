"""`mcli init`, `mcli set api-key`, `mcli local`, and --help on every command."""

import argparse
import json
import re
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

from mcli.local import LocalServer
from mcli.local.cli import register as register_local

from .helpers import Cli

COMMANDS = [
    [],
    ["run"],
    ["get"],
    ["get", "runs"],
    ["get", "run"],
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
    ["set", "endpoint"],
    ["config"],
    ["config", "show"],
    ["completion"],
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
    assert "mcli " in example.splitlines()[0]


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
    env = {"MCLI_CONFIG_DIR": str(tmp_path / "new"), "MOSAICML_API_KEY": ""}
    result = cli("init", env=env)
    assert result.returncode == 0, result.stderr
    path = tmp_path / "new" / "mcli_config"
    # Private from the start (it will hold a key), and valid YAML the official client reads: no key yet.
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert not yaml.safe_load(path.read_text())
    # init never overwrites: a key saved meanwhile survives a second init.
    assert cli("set", "api-key", "kept-key-0123456789", env=env).returncode == 0
    assert cli("init", env=env).returncode == 0
    assert yaml.safe_load(path.read_text())["MOSAICML_API_KEY"] == "kept-key-0123456789"


def test_a_wrong_api_key_is_one_line(cli: Cli) -> None:
    result = cli("get", "runs", env={"MOSAICML_API_KEY": "not-the-key"})
    assert result.returncode == 1
    assert result.stderr == "mcli: error: Unauthorized: missing or unknown API key\n"


def test_local_add_user_prints_a_key_that_works(cli: Cli, tmp_path: Path) -> None:
    result = cli("local", "add-user", "alice@example.com", "--data-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    key = result.stdout.strip()
    assert len(key) >= 20
    with LocalServer(data_dir=tmp_path) as server:
        env = {"MOSAICML_API_ENDPOINT": server.endpoint, "MOSAICML_API_KEY": key}
        listed = cli("get", "runs", "-o", "json", env=env)
        assert listed.returncode == 0 and json.loads(listed.stdout) == [], listed.stderr  # alice's (empty) runs
        refused = cli("get", "runs", env={**env, "MOSAICML_API_KEY": key[:-1] + ("x" if key[-1] != "x" else "y")})
        assert refused.returncode == 1 and "Unauthorized" in refused.stderr


def test_a_command_is_required(cli: Cli) -> None:
    result = cli("get")
    assert result.returncode == 2 and "required: OBJECT" in result.stderr


def test_bare_mcli_prints_the_help(cli: Cli) -> None:
    result = cli()
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == cli("--help").stdout


def test_set_endpoint_then_config_show(cli: Cli, tmp_path: Path) -> None:
    env = {"MCLI_CONFIG_DIR": str(tmp_path), "MOSAICML_API_ENDPOINT": "", "MOSAICML_API_KEY": ""}
    assert cli("set", "api-key", "saved-key-0123456789", env=env).returncode == 0
    result = cli("set", "endpoint", "http://127.0.0.1:8642/graphql", env=env)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == f"Endpoint saved in {tmp_path / 'mcli_config'}.\n"
    saved = yaml.safe_load((tmp_path / "mcli_config").read_text())
    assert saved == {
        "MOSAICML_API_KEY": "saved-key-0123456789",
        "MOSAICML_API_ENDPOINT": "http://127.0.0.1:8642/graphql",
    }
    shown = cli("config", "show", env=env)
    assert shown.stdout == (
        f"config file: {tmp_path / 'mcli_config'}\n"
        "mode:        PROD\n"
        f"endpoint:    http://127.0.0.1:8642/graphql  (from {tmp_path / 'mcli_config'})\n"
        f"API key:     ********6789  (from {tmp_path / 'mcli_config'})\n"
    )
    overridden = cli("config", "show", env={**env, "MOSAICML_API_ENDPOINT": "http://elsewhere/graphql"})
    assert "endpoint:    http://elsewhere/graphql  (from $MOSAICML_API_ENDPOINT)\n" in overridden.stdout
    reset = cli("set", "endpoint", "default", env=env)
    assert reset.returncode == 0 and "MOSAICML_API_ENDPOINT" not in yaml.safe_load((tmp_path / "mcli_config").read_text())


def test_a_saved_endpoint_is_used(cli: Cli, cli_env: dict[str, str], tmp_path: Path) -> None:
    env = {"MCLI_CONFIG_DIR": str(tmp_path), "MOSAICML_API_ENDPOINT": ""}
    assert cli("set", "endpoint", cli_env["MOSAICML_API_ENDPOINT"], env=env).returncode == 0
    result = cli("get", "runs", "-o", "json", env=env)
    assert result.returncode == 0, result.stderr


def test_set_endpoint_rejects_a_non_url(cli: Cli, tmp_path: Path) -> None:
    result = cli("set", "endpoint", "127.0.0.1:8642", env={"MCLI_CONFIG_DIR": str(tmp_path)})
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        "mcli: error: the endpoint must be an http:// or https:// URL (or `local`), got '127.0.0.1:8642'; "
        "for example http://127.0.0.1:8642/graphql\n"
    )


def test_an_unreachable_default_endpoint_says_how_to_set_one(cli: Cli, tmp_path: Path) -> None:
    # MCLI_MODE=LOCAL's default endpoint is http://localhost:3001/graphql, where nothing listens here.
    env = {"MCLI_CONFIG_DIR": str(tmp_path), "MOSAICML_API_ENDPOINT": "", "MCLI_MODE": "LOCAL", "MCLI_TIMEOUT": "5"}
    result = cli("get", "runs", env=env)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        "mcli: error: cannot reach http://localhost:3001/graphql, the default endpoint (no endpoint is set). "
        "Set one with `mcli set endpoint URL` or MOSAICML_API_ENDPOINT=URL; `mcli local serve` starts a local "
        "server and prints its URL\n"
    )


def test_bash_completion_walks_the_command_tree(cli: Cli, tmp_path: Path) -> None:
    script = tmp_path / "mcli.bash"
    script.write_text(cli("completion", "bash").stdout)

    def complete(*words: str) -> list[str]:
        line = " ".join(f"'{word}'" for word in words)
        program = f"source {script}; COMP_WORDS=(mcli {line}); COMP_CWORD={len(words)}; _mcli; echo ${{COMPREPLY[@]}}"
        return subprocess.run(["bash", "-c", program], capture_output=True, text=True, check=True).stdout.split()

    assert complete("g") == ["get"]
    assert sorted(complete("get", "r")) == ["run", "runs"]
    assert complete("get", "runs", "--st") == ["--status"]
    assert complete("logs", "some-run", "--ta") == ["--tail"]
    assert "serve" in complete("local", "")


def test_zsh_completion_is_a_compdef(cli: Cli) -> None:
    result = cli("completion", "zsh")
    assert result.returncode == 0 and result.stdout.startswith("#compdef mcli\n")
    assert "'mcli get runs' '" in result.stdout


def _command_parsers(parser: argparse.ArgumentParser, path: str) -> list[tuple[str, argparse.ArgumentParser]]:
    found = [(path, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found += _command_parsers(child, f"{path} {name}")
    return found


def test_every_help_fits_80_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    from mcli.cli.main import build_parser

    monkeypatch.setenv("COLUMNS", "80")  # argparse wraps to the terminal; the examples are written to fit
    parsers = _command_parsers(build_parser(), "mcli")
    assert len(parsers) > 25
    # After the usage block: argparse cannot split a long option group such as [--x | --no-x] in usage lines.
    too_wide = [
        (path, line)
        for path, parser in parsers
        for line in parser.format_help().split("\n\n", 1)[1].splitlines()
        if len(line) > 80
    ]
    assert too_wide == []


def test_help_notes_wrap_as_paragraphs_without_splitting_commands(monkeypatch: pytest.MonkeyPatch) -> None:
    from mcli.cli.main import build_parser

    monkeypatch.setenv("COLUMNS", "80")
    notes = build_parser().format_help().split("NO_COLOR")[0].split("\n\n")[-1]
    # The note is one paragraph refilled to 80 columns: no ragged short line, no command cut at its hyphen.
    assert "`mcli set\napi-key`" in notes or "`mcli set api-key`" in notes.replace("\n", " ")
    assert not any(line.endswith("-") for line in notes.splitlines()), notes
    assert all(len(line) > 60 for line in notes.splitlines()[:-1]), notes
