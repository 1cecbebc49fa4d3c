"""Client bad-input matrix: the public SDK refuses bad arguments at call time with an exception naming the problem,
and sends NOTHING: the server's request counter (HTTP requests, websocket connections and messages) stays put."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import mcli
from mcli.local import LocalServer

from .conftest import KEY, report

GOOD = {"name": "bad-input-probe", "image": "local/x:1", "command": "true"}


def _run(**changes: Any) -> dict[str, Any]:
    config = {**GOOD, **changes}
    return {k: v for k, v in config.items() if v is not _DROP}


_DROP = object()
NOW = dt.datetime(2026, 1, 2, tzinfo=dt.UTC)

# (case id, call, words the message must contain (any one, case-insensitive))
CASES: list[tuple[str, Callable[[], Any], tuple[str, ...]]] = [
    ("image-not-str", lambda: mcli.create_run(_run(image=1)), ("image",)),
    ("gpu-num-str", lambda: mcli.create_run(_run(gpu_num="8")), ("gpu_num",)),
    ("unknown-key", lambda: mcli.create_run(_run(bogus_key=1)), ("bogus_key",)),
    ("missing-image", lambda: mcli.create_run(_run(image=_DROP)), ("image",)),
    ("missing-command", lambda: mcli.create_run(_run(command=_DROP)), ("command",)),
    ("negative-gpus", lambda: mcli.create_run(_run(compute={"gpus": -1})), ("gpus",)),
    ("negative-cpus", lambda: mcli.create_run(_run(cpus=-1)), ("cpus",)),
    ("env-not-mapping", lambda: mcli.create_run(_run(env_variables=5)), ("env_variables",)),
    ("priority-int", lambda: mcli.create_run(_run(scheduling={"priority": 3})), ("priority",)),
    ("scheduling-unknown", lambda: mcli.create_run(_run(scheduling={"max_retires": 3})), ("max_retires",)),
    ("parameters-nan", lambda: mcli.create_run(_run(parameters={"x": float("nan")})), ("parameters",)),
    ("metadata-int-key", lambda: mcli.create_run(_run(metadata={1: 2})), ("metadata",)),
    ("integration-not-mapping", lambda: mcli.create_run(_run(integrations=["x"])), ("integration",)),
    ("gpu-conflict", lambda: mcli.create_run(_run(gpu_num=8, compute={"gpus": 4})), ("gpu_num",)),
    ("config-not-mapping", lambda: mcli.create_run("not a config"), ("mapping",)),  # type: ignore[arg-type]
    ("create-timeout-negative", lambda: mcli.create_run(_run(), timeout=-1), ("timeout",)),
    ("bad-run-name", lambda: mcli.create_run(_run(name="Not A Valid Name!")), ("name",)),
    ("status-unknown", lambda: mcli.get_runs(statuses=["BOGUS"]), ("status",)),
    ("gpu-nums-negative", lambda: mcli.get_runs(gpu_nums=[-1]), ("gpu_nums",)),
    ("before-not-date", lambda: mcli.get_runs(before="not a date"), ("before",)),
    ("empty-date-range", lambda: mcli.get_runs(after=NOW, before=NOW - dt.timedelta(days=1)), ("after",)),
    ("limit-zero", lambda: mcli.get_runs(limit=0), ("limit",)),
    ("clusters-mapping", lambda: mcli.get_runs(cluster_names={"a": 1}), ("cluster_names",)),
    ("get-runs-timeout-zero", lambda: mcli.get_runs(timeout=0), ("timeout",)),
    ("include-deleted-str", lambda: mcli.get_runs(include_deleted="yes"), ("include_deleted",)),  # type: ignore[arg-type]
    ("get-run-empty-name", lambda: mcli.get_run(""), ("run",)),
    ("get-run-int", lambda: mcli.get_run(123), ("run",)),  # type: ignore[arg-type]
    ("stop-runs-blank-name", lambda: mcli.stop_runs(["ok-name", " "]), ("run",)),
    ("stop-runs-reason-int", lambda: mcli.stop_runs(["ok-name"], reason=5), ("reason",)),  # type: ignore[arg-type]
    ("stop-run-none", lambda: mcli.stop_run(None), ("run",)),  # type: ignore[arg-type]
    ("delete-runs-not-iterable", lambda: mcli.delete_runs(5), ("runs",)),  # type: ignore[arg-type]
    ("metadata-inf", lambda: mcli.update_run_metadata("ok-name", {"x": float("inf")}), ("metadata",)),
    ("metadata-list", lambda: mcli.update_run_metadata("ok-name", [1]), ("metadata",)),  # type: ignore[arg-type]
    ("logs-rank-negative", lambda: mcli.get_run_logs("ok-name", rank=-1), ("rank",)),
    ("logs-rank-str", lambda: mcli.get_run_logs("ok-name", rank="0"), ("rank",)),  # type: ignore[arg-type]
    ("logs-failed-and-rank", lambda: mcli.get_run_logs("ok-name", rank=0, failed=True), ("failed",)),
    ("logs-resumption-negative", lambda: mcli.get_run_logs("ok-name", resumption=-1), ("resumption",)),
    ("follow-tail-negative", lambda: mcli.follow_run_logs("ok-name", tail=-1), ("tail",)),
    ("follow-timeout-str", lambda: mcli.follow_run_logs("ok-name", timeout="5"), ("timeout",)),  # type: ignore[arg-type]
    ("wait-status-unknown", lambda: mcli.wait_for_run_status("ok-name", "BOGUS"), ("status",)),
    ("watch-empty-name", lambda: mcli.watch_run_status(""), ("run",)),
]

EMPTY_CASES: list[tuple[str, Callable[[], Any]]] = [
    ("stop-runs-empty", lambda: mcli.stop_runs([])),
    ("delete-runs-empty", lambda: mcli.delete_runs([])),
    ("stop-runs-empty-future", lambda: mcli.stop_runs([], future=True).result(5)),  # type: ignore[union-attr]
]
SEEN: list[str] = []


@pytest.fixture(scope="module")
def quiet_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    with LocalServer(data_dir=tmp_path_factory.mktemp("bad-input"), api_key=KEY) as server:
        yield server
    gaps = len(SDK_GAPS)
    report(
        f"client bad-input matrix: {len(CASES) + len(EMPTY_CASES)} cases ({len(CASES)} refusals + "
        f"{len(EMPTY_CASES)} empty lists), 0 requests sent; {gaps} known SDK gaps xfail"
    )


@pytest.fixture
def configured(quiet_server: LocalServer, sdk_env: Callable[[str, str | None], None]) -> LocalServer:
    sdk_env(quiet_server.endpoint, KEY)
    return quiet_server


# Known SDK gaps (mcli/aio.py and mcli/models, owned by other engineers): strict xfail, so fixing them is noticed.
SDK_GAPS: dict[str, str] = {}


def _param(case_id: str, call: Callable[[], Any], words: tuple[str, ...]) -> Any:
    marks = [pytest.mark.xfail(strict=True, reason=SDK_GAPS[case_id])] if case_id in SDK_GAPS else []
    return pytest.param(call, words, id=case_id, marks=marks)


@pytest.mark.parametrize(("call", "words"), [_param(i, c, w) for i, c, w in CASES])
def test_bad_input_refused_before_any_request(
    configured: LocalServer, call: Callable[[], Any], words: tuple[str, ...]
) -> None:
    before = configured.stats.total
    with pytest.raises((ValueError, TypeError, mcli.MCLIException)) as info:
        result = call()
        if hasattr(result, "__next__"):  # a generator that would only fail when iterated
            next(result)
    SEEN.append(str(info.value))
    # RunConfigException is a MAPIException (as in the seed), but one raised here carries no server errors.
    assert not getattr(info.value, "errors", None), f"the server answered: {info.value}"
    message = str(info.value).lower()
    assert any(word.lower() in message for word in words), f"{info.value!r} does not name {words}"
    assert configured.stats.total == before, "a request was sent"


@pytest.mark.parametrize("call", [pytest.param(c, id=i) for i, c in EMPTY_CASES])
def test_empty_run_lists_send_nothing(configured: LocalServer, call: Callable[[], Any]) -> None:
    before = configured.stats.total
    assert call() == []
    SEEN.append("empty")
    assert configured.stats.total == before


def test_counter_counts(configured: LocalServer) -> None:
    """The counter itself works: a real call is seen."""
    before = configured.stats.total
    assert mcli.get_runs() == []
    assert configured.stats.total > before
