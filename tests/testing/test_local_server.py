"""`mcli.testing` without pytest fixtures: `local_server`, `async_local_server`, `mapi_environment`."""

import os
import shutil
from dataclasses import dataclass

import psutil
import pytest

import mcli
import mcli.aio
from mcli.testing import ServerStartError, async_local_server, local_server, mapi_environment


@dataclass
class Account:
    """Something `mapi_environment` can point at: an endpoint and a key."""

    endpoint: str
    api_key: str


def config(name: str, command: str = "true", **extra: object) -> mcli.RunConfig:
    return mcli.RunConfig(name=name, image="python:3.11", command=command, **extra)  # type: ignore[arg-type]


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_capacity_options_reach_the_server_and_stop_leaves_nothing() -> None:
    with local_server(nodes=3, gpus_per_node=2) as server:
        assert server.endpoint.startswith("http://127.0.0.1:") and len(server.api_key) >= 16
        with mapi_environment(server):
            wide = mcli.create_run(config("wide", compute={"nodes": 3, "gpus": 6}))
            assert mcli.wait_for_run_status(wide, "COMPLETED", timeout=30).status == "COMPLETED"
            with pytest.raises(mcli.MAPIException):  # 4 nodes never fit a 3-node cluster
                mcli.create_run(config("too-wide", compute={"nodes": 4, "gpus": 8}))
            sleeping = mcli.create_run(config("left-running", "echo $$; sleep 300"))
            mcli.wait_for_run_status(sleeping, "RUNNING", timeout=30)
            run_pid = int(next(iter(mcli.follow_run_logs(sleeping))))
        data_dir, server_pid = server.data_dir, server.pid
    assert gone(server_pid) and gone(run_pid)
    assert server.leftovers_killed == []  # the server stopped its own run
    assert not data_dir.exists() and not server.running


def test_a_process_that_escaped_its_run_is_killed_at_stop() -> None:
    with local_server(stop_grace_seconds=0.5) as server, mapi_environment(server):
        run = mcli.create_run(config("escape", "setsid sh -c 'echo $$; exec sleep 300' & sleep 300"))
        stray = int(next(iter(mcli.follow_run_logs(run))))
    assert server.leftovers_killed == [stray] and gone(stray)


def test_keep_data_keeps_the_database_and_log_for_a_restart() -> None:
    with local_server(keep_data=True) as kept, mapi_environment(kept):
        mcli.create_run(config("kept"))
    try:
        assert (kept.data_dir / "server.log").read_text().startswith("mcli local server listening on")
        with local_server(data_dir=kept.data_dir, api_key=kept.api_key) as again, mapi_environment(again):
            assert [run.name for run in mcli.get_runs()] == ["kept"]
        assert again.data_dir.exists()  # a data dir the caller gave is never removed
    finally:
        shutil.rmtree(kept.data_dir)


def test_add_user_gives_a_key_that_sees_only_its_own_runs() -> None:
    with local_server() as server:
        with mapi_environment(server):
            mcli.create_run(config("alice-run"))
        bob = Account(server.endpoint, server.add_user("bob@example.com"))
        assert bob.api_key != server.api_key and len(bob.api_key) >= 16
        with mapi_environment(bob):
            assert mcli.get_runs() == []
            mcli.create_run(config("bob-run"))
            assert [run.name for run in mcli.get_runs()] == ["bob-run"]


def test_switching_servers_in_one_process_is_honoured_and_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOSAICML_API_KEY", "the-users-own-key-0123456789")
    monkeypatch.setenv("MCLI_MODE", "STAGING")
    monkeypatch.delenv("MOSAICML_API_ENDPOINT", raising=False)
    before = dict(os.environ)
    with local_server() as first, local_server() as second:
        with mapi_environment(first) as config_dir:
            mcli.create_run(config("on-first"))
            mcli.set_api_key(first.api_key)  # written to the isolated config home, not ~/.mosaic
            assert (config_dir / "mcli_config").exists()
        with mapi_environment(second):
            assert mcli.get_runs() == []
        with mapi_environment(first):
            assert [run.name for run in mcli.get_runs()] == ["on-first"]
        assert not config_dir.exists()
    assert dict(os.environ) == before


async def test_async_twin_serves_the_async_sdk() -> None:
    async with async_local_server() as server:
        with mapi_environment(server):
            run = await mcli.aio.create_run(config("async-run", "echo async"))
            assert await mcli.aio.get_run_logs(await mcli.aio.wait_for_run_status(run, "COMPLETED")) == "async\n"
        pid = server.pid
    assert gone(pid)


def test_a_server_that_cannot_start_says_why() -> None:
    with pytest.raises(ServerStartError, match="--nodes: must be at least 1"), local_server(nodes=0):
        pass
