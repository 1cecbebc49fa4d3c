"""Bad arguments to every seed call are refused before anything is sent, with an error in mcli's tree that names the
argument: `except mcli.MCLIException` catches them, and they are still ValueErrors (TimeoutErrors for timeouts), as
the seed's users catch them."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import mcli
from mcli import RunConfig

GOOD = RunConfig(image="python:3.11", command="echo hi")

BAD_CALLS: list[tuple[str, Callable[[], Any], str]] = [
    ("create_run timeout", lambda: mcli.create_run(GOOD, timeout="a"), "timeout must be a positive number"),
    ("create_run timeout 0", lambda: mcli.create_run(GOOD, timeout=0), "timeout must be a positive number"),
    ("get_runs runs", lambda: mcli.get_runs([5]), r"runs\[0\] must be a non-empty name"),
    ("get_runs statuses", lambda: mcli.get_runs(statuses=["runing"]), r"statuses\[0\]: 'runing' is not a run status"),
    ("get_runs before", lambda: mcli.get_runs(before="garbage"), "before must be an ISO 8601 date"),
    ("get_runs after", lambda: mcli.get_runs(after=[1]), "after must be a datetime"),
    ("get_runs gpu_nums", lambda: mcli.get_runs(gpu_nums=["a"]), r"gpu_nums\[0\] must be a non-negative integer"),
    ("get_runs gpu_types", lambda: mcli.get_runs(gpu_types=[5]), r"gpu_types\[0\] must be a non-empty string"),
    ("get_runs cluster_names", lambda: mcli.get_runs(cluster_names=[None]), r"cluster_names\[0\]"),
    ("get_runs future", lambda: mcli.get_runs(statuses=["nope"], future=True).result(), "'nope' is not a run status"),
    ("get_run_logs run", lambda: mcli.get_run_logs(5), "run must be a run name or a Run, got 5"),
    ("get_run_logs rank", lambda: mcli.get_run_logs("some-run", rank=-1), "rank must be a node rank"),
    ("follow_run_logs rank", lambda: list(mcli.follow_run_logs("some-run", rank="a")), "rank must be a node rank"),
    ("wait status", lambda: mcli.wait_for_run_status("some-run", "runing"), "'runing' is not a run status"),
    ("wait run", lambda: mcli.wait_for_run_status(None, "RUNNING"), "run must be a run name or a Run, got None"),
    ("wait timeout", lambda: mcli.wait_for_run_status("some-run", "RUNNING", timeout=-1), "timeout must be"),
    ("stop_runs", lambda: mcli.stop_runs([5]), r"runs\[0\] must be a non-empty name"),
    ("delete_runs", lambda: mcli.delete_runs([None]), r"runs\[0\] must be a non-empty name"),
    ("set_api_key", lambda: mcli.set_api_key(5), "api_key must be a non-empty string"),
    ("initialize", lambda: mcli.initialize(api_key="two words"), "api_key must not contain whitespace"),
    ("RunStatus", lambda: mcli.RunStatus("garbage"), "'garbage' is not a run status; valid values are PENDING"),
    ("RunStatus.before", lambda: mcli.RunStatus.RUNNING.before("x"), "'x' is not a run status"),
    ("update_run", lambda: mcli.update_run("some-run", max_retries="a"), "max_retries must be a number of retries"),
]


@pytest.mark.parametrize(("label", "call", "message"), BAD_CALLS, ids=[label for label, _, _ in BAD_CALLS])
def test_bad_argument_is_an_mcli_value_error_naming_it(label: str, call: Callable[[], Any], message: str) -> None:
    with pytest.raises(mcli.InvalidArgumentError, match=message) as caught:
        call()
    assert isinstance(caught.value, mcli.MCLIException) and isinstance(caught.value, ValueError), label
    assert mcli.get_runs() == []  # nothing was created, stopped or deleted on the server


def test_a_timeout_is_an_mcli_exception_and_a_timeout_error() -> None:
    with pytest.raises(mcli.CallTimeoutError, match=r"get_runs did not finish within 0\.0001 s") as caught:
        mcli.get_runs(timeout=0.0001)
    assert isinstance(caught.value, mcli.MCLIException) and isinstance(caught.value, TimeoutError)


def test_an_unreadable_run_config_file_is_a_run_config_exception(tmp_path: Path) -> None:
    with pytest.raises(mcli.RunConfigException, match=f"{tmp_path}: cannot read the run config: Is a directory"):
        RunConfig.from_file(tmp_path)
    binary = tmp_path / "run.yaml"
    binary.write_bytes(b"image: \xff\xfe")
    with pytest.raises(mcli.RunConfigException, match=r"run.yaml: a run config is UTF-8 YAML text, but byte 7"):
        RunConfig.from_file(binary)
