"""The seed's runs API end to end against the local server."""

import concurrent.futures
import inspect
import threading
import time
import warnings
from datetime import UTC, datetime, timedelta

import pytest

import mcli
import mcli.sdk
from mcli import RunConfig, RunStatus

SEED_SIGNATURES = {
    "create_run": "(run, timeout=10, future=False, _priority=None, _job_type=MCLIJobType.RUN)",
    "delete_runs": "(runs, timeout=10, future=False)",
    "follow_run_logs": "(run, rank=None, timestamps=False, timeout=10, future=False)",
    "get_run_logs": "(run, rank=None, timestamps=False, timeout=10, future=False, failed=False)",
    "get_runs": "(runs=None, cluster_names=None, before=None, after=None, gpu_types=None, gpu_nums=None, "
    "statuses=None, timeout=10, future=False, clusters=None)",
    "initialize": "(api_key=None)",
    "set_api_key": "(api_key)",
    "stop_runs": "(runs, timeout=10, future=False)",
    "wait_for_run_status": "(run, status, timeout=None, future=False)",
}


def seed_view(function: object) -> str:
    # The seed's positional parameters and defaults; our extra keyword-only options come after them.
    parameters = [p for p in inspect.signature(function).parameters.values() if p.kind != p.KEYWORD_ONLY]  # type: ignore[arg-type]
    rendered = []
    for p in parameters:
        default = p.default
        if default is inspect.Parameter.empty:
            rendered.append(p.name)
        else:
            shown = f"{type(default).__name__}.{default.name}" if hasattr(default, "name") and not isinstance(default, str) else repr(default)
            rendered.append(f"{p.name}={shown}")
    return "(" + ", ".join(rendered) + ")"


@pytest.mark.parametrize("name", sorted(SEED_SIGNATURES))
def test_seed_signatures(name: str) -> None:
    assert seed_view(getattr(mcli.sdk, name)) == SEED_SIGNATURES[name]
    assert getattr(mcli, name) is getattr(mcli.sdk, name)


def config(command: str, **extra: object) -> RunConfig:
    return RunConfig(image="python:3.11", command=command, **extra)  # type: ignore[arg-type]


def test_create_follow_wait_and_list() -> None:
    run = mcli.create_run(config('echo "hello $GREETING"; echo "lr=$(cat $PARAMETERS_PATH)"', name="sdk-hello",
                                 env_variables={"GREETING": "world"}, parameters={"lr": 0.5}))
    assert run.name == "sdk-hello" and isinstance(run.status, RunStatus)
    lines = list(mcli.follow_run_logs(run))
    assert lines[0] == "hello world\n"
    assert "0.5" in "".join(lines[1:])
    done = mcli.wait_for_run_status("sdk-hello", RunStatus.COMPLETED, timeout=30)
    assert done.status is RunStatus.COMPLETED and done.completed_at is not None
    assert mcli.get_run_logs(run) == "".join(lines)
    assert [r.name for r in mcli.get_runs(["sdk-hello"])] == ["sdk-hello"]


def test_two_node_run_has_a_log_per_rank() -> None:
    run = mcli.create_run(config('echo "rank $NODE_RANK of $WORLD_SIZE"', compute={"nodes": 2}))
    mcli.wait_for_run_status(run, "completed", timeout=30)
    assert mcli.get_run_logs(run, rank=0) == "rank 0 of 2\n"
    assert mcli.get_run_logs(run, rank=1) == "rank 1 of 2\n"
    with pytest.raises(mcli.KubernetesException) as caught:
        mcli.get_run_logs(run, rank=5)
    assert caught.value.status == 400


def test_wait_raises_run_failed_when_the_run_fails() -> None:
    run = mcli.create_run(config("echo boom; exit 3"))
    with pytest.raises(mcli.RunFailed) as caught:
        mcli.wait_for_run_status(run, RunStatus.COMPLETED, timeout=30)
    assert caught.value.run.status is RunStatus.FAILED
    assert "3" in (mcli.get_run(run).reason or "")
    assert mcli.get_run_logs(run, failed=True) == "boom\n"


def test_wait_times_out_and_stop_ends_stopped() -> None:
    run = mcli.create_run(config("sleep 60"))
    mcli.wait_for_run_status(run, RunStatus.RUNNING, timeout=30)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        mcli.wait_for_run_status(run, RunStatus.COMPLETED, timeout=0.5)
    assert time.monotonic() - started < 3
    stopped = mcli.stop_runs([run])
    assert [r.name for r in stopped] == [run.name]
    final = mcli.wait_for_run_status(run, RunStatus.STOPPED, timeout=30)
    assert final.status is RunStatus.STOPPED


def test_missing_run_is_reported_when_the_function_is_called() -> None:
    with pytest.raises(mcli.NotFoundError):
        mcli.follow_run_logs("no-such-run")
    with pytest.raises(mcli.KubernetesException) as caught:
        mcli.wait_for_run_status("no-such-run", "RUNNING", timeout=10)
    assert caught.value.status == 404


def test_empty_lists_send_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOSAICML_API_ENDPOINT", "http://127.0.0.1:9/graphql")  # nothing listens there
    assert mcli.stop_runs([]) == []
    assert mcli.delete_runs([]) == []


def test_filters_and_paging(monkeypatch: pytest.MonkeyPatch) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    names = [mcli.create_run(config("true", name=f"page-{i}")).name for i in range(5)]
    for name in names:
        mcli.wait_for_run_status(name, RunStatus.COMPLETED, timeout=30)
    monkeypatch.setattr("mcli.paging.PAGE_SIZE", 2)
    listed = mcli.get_runs(names)
    assert [r.name for r in listed] == names[::-1]  # newest first, across three pages
    assert len(mcli.get_runs(names, limit=3)) == 3
    assert {r.name for r in mcli.get_runs(names, statuses=["completed"], after=before)} == set(names)
    assert mcli.get_runs(names, before=before) == []
    assert mcli.get_runs(names, statuses=[RunStatus.FAILED]) == []
    assert len(mcli.get_runs(names, cluster_names=["local"], gpu_nums=[0])) == 5


def test_bad_arguments_fail_before_any_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOSAICML_API_ENDPOINT", "http://127.0.0.1:9/graphql")
    with pytest.raises(ValueError, match="status"):
        mcli.get_runs(statuses=["RUNNNING"])
    with pytest.raises(ValueError, match="before"):
        mcli.get_runs(before="yesterday-ish")
    with pytest.raises(ValueError):
        mcli.create_run(RunConfig(image="python:3.11"))  # no command
    with pytest.raises(ValueError, match="rank"):
        mcli.follow_run_logs("x", rank=-1)


def test_futures_from_many_threads() -> None:
    futures: list[concurrent.futures.Future[mcli.Run]] = []
    lock = threading.Lock()

    def submit() -> None:
        for _ in range(10):
            future = mcli.create_run(config("true"), future=True)
            with lock:
                futures.append(future)  # type: ignore[arg-type]

    threads = [threading.Thread(target=submit) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    runs = [future.result(timeout=60) for future in futures]
    assert len({run.name for run in runs}) == 100


def test_future_of_a_log_generator() -> None:
    run = mcli.create_run(config("printf 'a\\nb\\n'"))
    lines = mcli.follow_run_logs(run, future=True).result(timeout=10)  # type: ignore[union-attr]
    assert list(lines) == ["a\n", "b\n"]
    assert mcli.get_run_logs(run, future=True).result(timeout=10) == "a\nb\n"  # type: ignore[union-attr]


def test_deprecated_arguments_warn_and_work() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = mcli.create_run(config("true"), _priority="low")
        mcli.get_runs([run], clusters=["local"])
    assert sum(issubclass(w.category, DeprecationWarning) for w in caught) >= 2


def test_metadata_merges() -> None:
    run = mcli.create_run(config("true", metadata={"a": 1}))
    mcli.update_run_metadata(run, {"b": {"c": 2}})
    assert mcli.get_run(run).metadata == {"a": 1, "b": {"c": 2}}


def test_delete_hides_the_run() -> None:
    run = mcli.create_run(config("sleep 30"))
    deleted = mcli.delete_run(run)
    assert deleted.name == run.name
    assert mcli.get_runs([run]) == []
    with pytest.raises(mcli.NotFoundError):
        mcli.get_run(run)


def test_a_stale_run_object_is_reported_when_following_starts() -> None:
    run = mcli.create_run(config("true"))
    mcli.delete_run(run)
    with pytest.raises(mcli.NotFoundError):
        mcli.follow_run_logs(run)  # the Run object still names it, but it is gone
