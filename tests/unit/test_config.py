"""The config file: where it lives, its format and permissions, and API key / endpoint precedence."""

import stat
from pathlib import Path

import pytest
import yaml

import mcli.config as mcli_config
from mcli.config import (
    DEFAULT_ENDPOINT,
    MCLIConfig,
    config_path,
    initialize,
    resolve_api_key,
    resolve_endpoint,
    save_api_key,
)
from mcli.core.errors import MCLIConfigError

ENV_VARS = ("MCLI_CONFIG_PATH", "MCLI_CONFIG_DIR", "MOSAICML_API_KEY", "MOSAICML_API_ENDPOINT", "MCLI_MODE")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- paths --------------------------------------------------------------------------------------------------


def test_default_path_is_under_home(tmp_path: Path) -> None:
    assert config_path() == tmp_path / "home" / ".mosaic" / "mcli_config"


def test_config_dir_then_config_path_take_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MCLI_CONFIG_DIR", str(tmp_path / "dir"))
    assert config_path() == tmp_path / "dir" / "mcli_config"
    monkeypatch.setenv("MCLI_CONFIG_PATH", str(tmp_path / "explicit.yaml"))
    assert config_path() == tmp_path / "explicit.yaml"


def test_paths_are_read_at_call_time(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MCLI_CONFIG_PATH", str(tmp_path / "one"))
    save_api_key("key-one")
    monkeypatch.setenv("MCLI_CONFIG_PATH", str(tmp_path / "two"))
    save_api_key("key-two")
    assert "key-one" in (tmp_path / "one").read_text()
    assert "key-two" in (tmp_path / "two").read_text()


# --- file format and permissions ----------------------------------------------------------------------------


def test_save_creates_the_directory_and_a_0600_file_with_a_yaml_header(tmp_path: Path) -> None:
    path = save_api_key("secret")
    assert path == tmp_path / "home" / ".mosaic" / "mcli_config"
    assert mode_of(path) == 0o600
    assert mode_of(path.parent) & 0o077 == 0
    text = path.read_text()
    assert text.startswith("---\n")
    assert yaml.safe_load(text) == {"MOSAICML_API_KEY": "secret"}


def test_save_tightens_an_existing_world_readable_file(tmp_path: Path) -> None:
    path = config_path()
    path.parent.mkdir(parents=True)
    path.write_text("---\n")
    path.chmod(0o644)
    save_api_key("secret")
    assert mode_of(path) == 0o600


def test_unknown_keys_are_preserved(tmp_path: Path) -> None:
    path = config_path()
    path.parent.mkdir(parents=True)
    path.write_text("---\nMOSAICML_API_KEY: old\nfeature_flags:\n  X: true\nlast_update_check: 2024-01-01\n")
    save_api_key("new")
    data = yaml.safe_load(path.read_text())
    assert data["MOSAICML_API_KEY"] == "new"
    assert data["feature_flags"] == {"X": True}
    assert str(data["last_update_check"]) == "2024-01-01"


def test_empty_or_missing_file_is_an_empty_config(tmp_path: Path) -> None:
    assert MCLIConfig.load() == MCLIConfig()
    path = config_path()
    path.parent.mkdir(parents=True)
    path.write_text("")
    assert MCLIConfig.load() == MCLIConfig()
    path.write_text("---\n")
    assert resolve_api_key() is None


def test_loading_never_writes(tmp_path: Path) -> None:
    path = config_path()
    path.parent.mkdir(parents=True)
    path.write_text("---\nMOSAICML_API_KEY: k\nother: 1\n")
    before = path.stat().st_mtime_ns
    MCLIConfig.load()
    resolve_api_key()
    assert path.stat().st_mtime_ns == before


@pytest.mark.parametrize(
    "content", ["- a\n- b\n", "key: [unclosed\n", "MOSAICML_API_KEY: [1]\n", "mcloud_envs: 5\n"]
)
def test_malformed_files_raise_a_config_error_naming_the_path(content: str) -> None:
    path = config_path()
    path.parent.mkdir(parents=True)
    path.write_text(content)
    with pytest.raises(MCLIConfigError, match=str(path)):
        resolve_api_key()


def test_save_leaves_no_temporary_files(tmp_path: Path) -> None:
    save_api_key("a")
    save_api_key("b")
    assert [p.name for p in config_path().parent.iterdir()] == ["mcli_config"]


# --- API key ------------------------------------------------------------------------------------------------


def test_api_key_env_wins_over_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    save_api_key("from-file")
    assert resolve_api_key() == "from-file"
    monkeypatch.setenv("MOSAICML_API_KEY", "from-env")
    assert resolve_api_key() == "from-env"


def test_empty_env_key_falls_back_to_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    save_api_key("from-file")
    monkeypatch.setenv("MOSAICML_API_KEY", "  ")
    assert resolve_api_key() == "from-file"


def test_no_key_anywhere_is_none() -> None:
    assert resolve_api_key() is None


def test_save_works_while_the_env_var_is_set_and_warns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOSAICML_API_KEY", "env-key")
    with pytest.warns(UserWarning, match="takes precedence"):
        save_api_key("file-key")
    assert MCLIConfig.load().api_key == "file-key"
    assert resolve_api_key() == "env-key"


@pytest.mark.parametrize("bad", ["", "   ", "a b", "a\nb", None, 5])
def test_save_rejects_bad_keys(bad: object) -> None:
    with pytest.raises(ValueError, match="api_key"):
        save_api_key(bad)  # type: ignore[arg-type]
    assert not config_path().exists()


def test_save_strips_surrounding_whitespace() -> None:
    save_api_key("  key\n")
    assert resolve_api_key() == "key"


@pytest.mark.parametrize("mode", ["DEV", "local", "Staging"])
def test_dev_local_and_staging_keys_live_under_mcloud_envs(
    monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    save_api_key("prod-key")
    monkeypatch.setenv("MCLI_MODE", mode)
    assert resolve_api_key() is None  # the production key is never sent to another environment
    save_api_key("mode-key")
    assert resolve_api_key() == "mode-key"
    data = yaml.safe_load(config_path().read_text())
    assert data == {"MOSAICML_API_KEY": "prod-key", "mcloud_envs": {mode.upper(): "mode-key"}}
    monkeypatch.delenv("MCLI_MODE")
    assert resolve_api_key() == "prod-key"


# --- initialize ---------------------------------------------------------------------------------------------


def test_initialize_creates_an_empty_config() -> None:
    path = initialize()
    assert path.read_text() == "---\n"
    assert mode_of(path) == 0o600
    assert resolve_api_key() is None


def test_initialize_keeps_an_existing_config_and_saves_a_given_key() -> None:
    save_api_key("old")
    initialize()
    assert resolve_api_key() == "old"
    initialize(api_key="new")
    assert resolve_api_key() == "new"


# --- endpoint -----------------------------------------------------------------------------------------------


def test_default_endpoint() -> None:
    assert resolve_endpoint() == DEFAULT_ENDPOINT == "https://api.mosaicml.com/graphql"


@pytest.mark.parametrize(
    ("mode", "url"),
    [
        ("PROD", "https://api.mosaicml.com/graphql"),
        ("staging", "https://staging.api.mosaicml.com/graphql"),
        ("DEV", "https://dev.api.mosaicml.com/graphql"),
        ("LOCAL", "http://localhost:3001/graphql"),
        ("DBX_AWS_STAGING", "https://oregon.staging.cloud.databricks.com/api/2.0/genai-mapi/graphql"),
        ("DBX_AZURE_STAGING", "https://westus.staging.azuredatabricks.net/api/2.0/genai-mapi/graphql"),
        ("NONSENSE", "https://api.mosaicml.com/graphql"),
    ],
)
def test_mode_endpoints(monkeypatch: pytest.MonkeyPatch, mode: str, url: str) -> None:
    monkeypatch.setenv("MCLI_MODE", mode)
    assert resolve_endpoint() == url


def test_endpoint_env_wins_over_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCLI_MODE", "DEV")
    monkeypatch.setenv("MOSAICML_API_ENDPOINT", "http://127.0.0.1:9999/graphql")
    assert resolve_endpoint() == "http://127.0.0.1:9999/graphql"


@pytest.mark.parametrize("value", ["local", "LOCAL", " Local "])
def test_local_endpoint_is_returned_as_the_special_value(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("MOSAICML_API_ENDPOINT", value)
    assert resolve_endpoint() == mcli_config.LOCAL_ENDPOINT == "local"


def test_a_call_reads_the_config_file_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The endpoint and the key a call uses both come from one read of the file."""
    from mcli.connection import credentials

    save_api_key("from-file")
    mcli_config.MCLIConfig(api_key="from-file", endpoint="http://127.0.0.1:9/graphql").save()
    reads: list[Path | None] = []
    load = MCLIConfig.load.__func__  # type: ignore[attr-defined]

    def counted(cls: type[MCLIConfig], path: Path | None = None) -> MCLIConfig:
        reads.append(path)
        return load(cls, path)  # type: ignore[no-any-return]

    monkeypatch.setattr(MCLIConfig, "load", classmethod(counted))
    found = credentials()
    assert (found.endpoint, found.api_key) == ("http://127.0.0.1:9/graphql", "from-file")
    assert len(reads) == 1
