"""Configuration as a user meets it: keys from the config file or the environment, and clear failures."""

import stat
import time
from pathlib import Path

import pytest
import yaml

import mcli
from mcli.testing import MapiServer, MapiUser


def test_no_key_fails_at_once_saying_how_to_set_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MOSAICML_API_KEY")
    started = time.monotonic()
    with pytest.raises(mcli.MCLIConfigError, match="set api-key"):
        mcli.get_runs()
    with pytest.raises(mcli.MCLIConfigError):
        mcli.create_run(mcli.RunConfig(image="python", command="true"), future=True)
    assert time.monotonic() - started < 1


def test_set_api_key_persists_for_the_official_client_and_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, configured: MapiUser
) -> None:
    # The environment variable is set (the official client refuses to save here); we still save.
    mcli.set_api_key(configured.api_key)
    config_file = tmp_path / "mcli-config" / "mcli_config"
    assert stat.S_IMODE(config_file.stat().st_mode) == 0o600
    assert yaml.safe_load(config_file.read_text())["MOSAICML_API_KEY"] == configured.api_key
    monkeypatch.delenv("MOSAICML_API_KEY")
    assert isinstance(mcli.get_runs(limit=1), list)  # the saved key is used


def test_initialize_creates_the_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MOSAICML_API_KEY")
    path = tmp_path / "mcli-config" / "mcli_config"
    mcli.initialize()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert not yaml.safe_load(path.read_text())  # an empty config: no key yet
    with pytest.raises(mcli.MCLIConfigError, match="No API key"):
        mcli.get_runs()
    mcli.initialize(api_key="another-key-0123456789")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert yaml.safe_load(path.read_text()) == {"MOSAICML_API_KEY": "another-key-0123456789"}
    mcli.initialize()  # never overwrites
    assert yaml.safe_load(path.read_text()) == {"MOSAICML_API_KEY": "another-key-0123456789"}


def test_a_wrong_key_is_an_authentication_error_without_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOSAICML_API_KEY", "not-a-real-key")
    started = time.monotonic()
    with pytest.raises(mcli.AuthenticationError):
        mcli.get_runs()
    with pytest.raises(mcli.AuthenticationError):
        mcli.follow_run_logs("any-run")
    assert time.monotonic() - started < 2


def test_timeout_raises_timeout_error(server: MapiServer) -> None:
    run = mcli.create_run(mcli.RunConfig(image="python", command="sleep 5"))
    started = time.monotonic()
    with pytest.raises(TimeoutError, match=r"wait_for_run_status\('.*', 'COMPLETED'\) did not finish within 0.2 s"):
        mcli.wait_for_run_status(run, "COMPLETED", timeout=0.2)
    with pytest.raises(TimeoutError, match=r"get_runs did not finish within 0\.0001 s"):
        mcli.get_runs(timeout=0.0001)
    assert time.monotonic() - started < 2
    with pytest.raises(ValueError, match="timeout"):
        mcli.get_runs(timeout=-1)
    mcli.stop_run(run)
