"""No secret in reach: keys are stored hashed only, the data dir is private whatever existed before, the client
never sends a key over plain http to another host, and reprs never show a key."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import mcli
from mcli.connection import Credentials
from mcli.core.errors import MCLIConfigError
from mcli.core.session import AsyncSession
from mcli.local import LocalServer
from mcli.local.server import add_user, open_store
from mcli.local.store import new_api_key

from .conftest import KEY, query, report


def _port(server: LocalServer) -> int:
    return int(server.endpoint.rsplit(":", 1)[1].split("/")[0])


def _files(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file()]


def _assert_nowhere(root: Path, *secrets: str) -> None:
    for path in _files(root):
        data = path.read_bytes()
        for secret in secrets:
            assert secret.encode() not in data, f"{path} holds a key"


def test_keys_are_stored_hashed_and_shown_once(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with LocalServer(data_dir=data_dir) as first:
        created = first.api_key
        assert created is not None
        bob = add_user(data_dir, "bob@example.com")
        assert query(_port(first), "{ __typename }", key=bob)[0] == 200
    _assert_nowhere(data_dir, created, bob)
    # The next start cannot show the first key again: it gets a key valid for this process only; both work.
    with LocalServer(data_dir=data_dir) as second:
        port = _port(second)
        assert second.api_key not in (None, created)
        assert query(port, "{ __typename }", key=second.api_key)[0] == 200
        assert query(port, "{ __typename }", key=created)[0] == 200
    assert second.api_key is not None
    _assert_nowhere(data_dir, created, bob, second.api_key)
    with LocalServer(data_dir=data_dir) as third:
        port = _port(third)
        assert query(port, "{ __typename }", key=second.api_key)[0] == 401  # that process's key died with it


def test_an_existing_data_dir_is_made_private(tmp_path: Path) -> None:
    data_dir = tmp_path / "old"
    legacy_key = new_api_key()
    store = open_store(data_dir)
    try:
        store.add_api_key(store.create_user("local@mcli.local").id, legacy_key)
    finally:
        store.close()
    # What an older version or a careless hand left: readable by everyone, and the key in plain text.
    (data_dir / "api_key").write_text(legacy_key + "\n")
    (data_dir / "logs" / "r1" / "0").mkdir(parents=True)
    (data_dir / "logs" / "r1" / "0" / "rank-0.log").write_text("old log\n")
    for path in [data_dir, *data_dir.rglob("*")]:
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    with LocalServer(data_dir=data_dir) as server:
        port = _port(server)
        assert query(port, "{ __typename }", key=legacy_key)[0] == 200  # the old key keeps working
    assert not (data_dir / "api_key").exists()
    modes = {path.relative_to(data_dir).as_posix(): stat.S_IMODE(path.stat().st_mode)
             for path in [data_dir, *data_dir.rglob("*")]}
    assert all(mode == (0o700 if (data_dir / name).is_dir() else 0o600) for name, mode in modes.items()), modes
    _assert_nowhere(data_dir, legacy_key)
    report(f"existing data dir: {len(modes)} entries made 0700/0600, legacy key file removed, its key still works")


@pytest.mark.parametrize("endpoint", ["http://10.1.2.3:8642/graphql", "http://mapi.example.com/graphql"])
def test_no_key_over_plain_http_to_another_host(
    endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MCLI_CONFIG_DIR", str(tmp_path))
    monkeypatch.setenv("MOSAICML_API_ENDPOINT", endpoint)
    monkeypatch.setenv("MOSAICML_API_KEY", KEY)
    monkeypatch.delenv("MOSAICML_ALLOW_INSECURE", raising=False)
    with pytest.raises(MCLIConfigError) as error:
        mcli.get_runs(timeout=5)
    assert "https://" in str(error.value) and "MOSAICML_ALLOW_INSECURE=1" in str(error.value)
    assert KEY not in str(error.value)
    monkeypatch.setenv("MOSAICML_ALLOW_INSECURE", "1")
    AsyncSession(endpoint, KEY)  # opted in: allowed


@pytest.mark.parametrize(
    "endpoint", ["http://127.0.0.1:1/graphql", "http://localhost:1/graphql", "http://[::1]:1/graphql",
                 "https://mapi.example.com/graphql"]
)
def test_loopback_and_https_are_fine(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MOSAICML_ALLOW_INSECURE", raising=False)
    AsyncSession(endpoint, KEY)


def test_reprs_never_show_the_key() -> None:
    from mcli.config import MCLIConfig

    for shown in (repr(Credentials("http://127.0.0.1/graphql", KEY)), repr(AsyncSession("http://127.0.0.1/x", KEY)),
                  repr(MCLIConfig(api_key=KEY, mode_api_keys={"DEV": KEY}))):
        assert KEY not in shown, shown


def _serve(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mcli.local", "serve", "--data-dir", str(data_dir), *args],
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def test_serve_refuses_short_keys_and_warns_about_other_hosts(tmp_path: Path) -> None:
    short = _serve("--api-key", "abc", "--port", "0", data_dir=tmp_path / "a")
    assert short.returncode == 2 and "at least 16 characters" in short.stderr
    # 192.0.2.1 (TEST-NET-1) is not on this machine: the warning comes first, then the bind fails.
    exposed = _serve("--host", "192.0.2.1", "--port", "0", "--api-key", KEY, data_dir=tmp_path / "b")
    assert "warning: listening on 192.0.2.1" in exposed.stderr and "https" in exposed.stderr
    assert exposed.returncode != 0
