"""The seed's shapes, exactly, against the real local server: RunConfig's positional order and attributes,
get_runs' details, relaunching a listed run, not-found before touching anything, lifecycle-aware waits, repr and
help()."""

import inspect
import pydoc
import subprocess
import sys

import pytest

import mcli
import mcli.aio
import mcli.sdk
from mcli import RunConfig, RunFailed, RunStatus
from mcli.core import errors

SEED_ORDER = [
    "run_name", "name", "gpu_type", "gpu_num", "cpus", "platform", "cluster", "image", "partitions",
    "optimization_level", "integrations", "env_variables", "scheduling", "command", "parameters", "entrypoint",
]  # fmt: skip


def test_run_config_takes_the_seeds_positional_order() -> None:
    parameters = list(inspect.signature(RunConfig).parameters.values())
    assert [p.name for p in parameters[: len(SEED_ORDER)]] == SEED_ORDER
    assert all(p.kind is p.POSITIONAL_OR_KEYWORD for p in parameters[: len(SEED_ORDER)])
    assert all(p.kind in (p.KEYWORD_ONLY, p.VAR_KEYWORD) for p in parameters[len(SEED_ORDER) :])
    config = RunConfig(
        None, "pos", None, 0, 2, None, "local", "img", None, None,
        [{"integration_type": "pip_packages", "packages": ["x"]}], [{"key": "A", "value": "1"}], {"priority": "low"},
        "echo hi", {"lr": 0.1}, "",
    )  # fmt: skip
    assert (config.name, config.gpu_num, config.cpus, config.cluster, config.image) == (
        "pos",
        0,
        2,
        "local",
        "img",
    )
    assert config.env_variables == [{"key": "A", "value": "1"}]
    assert config.scheduling["priority"] == "low" and config.scheduling.get("preemptible") is None
    assert config.command == "echo hi" and config.parameters == {"lr": 0.1}
    assert config.run_name == "pos" and config.platform == "local"
    with pytest.raises(TypeError):
        RunConfig(*([None] * 16), {"cluster": "local"})  # type: ignore[misc]  # compute is keyword-only


def test_every_seed_field_is_a_readable_assignable_attribute() -> None:
    config = RunConfig()
    values = {
        "run_name": "a", "name": "b", "gpu_type": "none", "gpu_num": 0, "cpus": 1, "platform": "local",
        "cluster": "local", "image": "img", "partitions": ["p"], "optimization_level": 1,
        "integrations": [{"integration_type": "git_repo", "git_repo": "x/y"}], "env_variables": [{"key": "K", "value": "v"}],
        "command": "true", "parameters": {"a": 1}, "entrypoint": "python x.py",
    }  # fmt: skip
    for field, value in values.items():
        setattr(config, field, value)
        assert getattr(config, field) == value, field
    config.scheduling = {"priority": "high"}  # type: ignore[assignment]
    assert config.scheduling["priority"] == "high"
    config.scheduling["max_retries"] = 2
    assert config.to_run_input()["scheduling"] == {"priority": "high", "maxRetries": 2}
    with pytest.raises(mcli.RunConfigException, match="gpu_num"):
        config.gpu_num = "eight"  # type: ignore[assignment]


def test_env_variables_are_the_seeds_list_and_accept_a_mapping() -> None:
    config = RunConfig(env_variables={"A": "1", "B": 2})
    assert config.env_variables == [{"key": "A", "value": "1"}, {"key": "B", "value": "2"}]
    config.env_variables.append({"key": "C", "value": "3"})
    assert config.to_run_input()["envVariables"][-1] == {"envKey": "C", "envValue": "3"}


def _done(command: str) -> mcli.Run:
    run = mcli.create_run(RunConfig(image="img", command=command))
    try:
        mcli.wait_for_run_status(run, "COMPLETED", timeout=60)
    except RunFailed:
        pass
    return run


def test_get_runs_returns_every_detail_by_default_and_a_cheap_listing_on_request() -> None:
    run = _done("echo hi")
    full = mcli.get_runs([run.name])[0]
    assert full.config.image == "img" and full.config.command == "echo hi"
    assert full.submitted_config is not None and full.submitted_config.command == "echo hi"
    assert full.nodes and full.nodes[0].rank == 0
    assert any(entry.status is RunStatus.RUNNING for entry in full.lifecycle)
    cheap = mcli.get_runs([run.name], include_details=False)[0]
    assert cheap.submitted_config is None and cheap.nodes == [] and cheap.status is RunStatus.COMPLETED


def test_a_listed_run_can_be_launched_again() -> None:
    run = _done("echo again")
    listed = mcli.get_runs([run.name])[0]
    relaunched = mcli.create_run(listed.config)
    assert relaunched.name != run.name
    assert mcli.wait_for_run_status(relaunched, "COMPLETED", timeout=60).config.command == "echo again"


def test_stop_and_delete_with_an_unknown_name_touch_nothing() -> None:
    sleeper = mcli.create_run(RunConfig(image="img", command="sleep 30"))
    mcli.wait_for_run_status(sleeper, "RUNNING", timeout=30)
    for call in (mcli.stop_runs, mcli.delete_runs):
        with pytest.raises(mcli.KubernetesException) as caught:
            call([sleeper, "no-such-run-here"])
        assert caught.value.status == 404 and "no-such-run-here" in str(caught.value)
        assert sleeper.name not in str(caught.value)
        assert mcli.get_run(sleeper).status is RunStatus.RUNNING
    stopped = mcli.stop_runs([sleeper])
    assert [run.name for run in stopped] == [sleeper.name]
    assert stopped[0].status in (RunStatus.STOPPING, RunStatus.TERMINATING, RunStatus.STOPPED)
    assert mcli.wait_for_run_status(sleeper, "STOPPED", timeout=30).status is RunStatus.STOPPED


def test_wait_for_a_status_the_run_passed_before_failing() -> None:
    run = _done("sleep 0.3; exit 3")
    assert mcli.get_run(run).status is RunStatus.FAILED
    for status in ("PENDING", "queued", RunStatus.STARTING, "RUNNING"):
        assert mcli.wait_for_run_status(run, status, timeout=10).status is RunStatus.FAILED
    assert mcli.wait_for_run_status(run, "failed", timeout=10).status is RunStatus.FAILED
    for never in ("COMPLETED", "STOPPED"):
        with pytest.raises(RunFailed, match=rf"ended FAILED \(Node rank 0 exited with code 3\) without reaching {never}") as caught:
            mcli.wait_for_run_status(run, never, timeout=10)
        assert caught.value.run.status is RunStatus.FAILED
    with pytest.raises(ValueError, match="garbage"):
        mcli.wait_for_run_status(run, "garbage")


def test_repr_of_a_run_is_one_readable_line() -> None:
    run = _done("true")
    text = repr(mcli.get_run(run))
    assert "\n" not in text and len(text) < 200, text
    for part in (run.name, "COMPLETED", "local", "gpus=0", "created="):
        assert part in text, text


def _public_functions() -> list[str]:
    return [name for name in mcli.sdk.__all__ if inspect.isfunction(getattr(mcli.sdk, name))]


@pytest.mark.parametrize("name", _public_functions())
def test_help_shows_args_returns_and_raises(name: str) -> None:
    function = getattr(mcli, name)
    doc = inspect.getdoc(function) or ""
    for section in ("Args:", "Returns:", "Raises:"):  # help() reads the same for every function
        assert section in doc, f"mcli.{name} lacks {section}"
    if "future" in inspect.signature(function).parameters:
        assert "return_value.result()" in doc and "TimeoutError" in doc, name
    twin = getattr(mcli.aio, name, None)
    if twin is not None:
        twin_doc = inspect.getdoc(twin) or ""
        for section in ("Args:", "Returns:", "Raises:"):
            assert section in twin_doc, f"mcli.aio.{name} lacks {section}"
    assert name in pydoc.render_doc(function)


def test_every_async_function_shows_args_returns_and_raises() -> None:
    functions = [name for name in mcli.aio.__all__ if inspect.isfunction(getattr(mcli.aio, name))]
    assert "aclose" in functions and "create_run" in functions
    lacking = [
        (name, section)
        for name in functions
        for section in ("Args:", "Returns:", "Raises:")
        if section not in (inspect.getdoc(getattr(mcli.aio, name)) or "")
    ]
    assert lacking == []


def test_run_methods_show_args_returns_and_raises() -> None:
    methods = ("refresh", "stop", "delete", "update", "update_metadata", "clone")
    lacking = [
        (name, section)
        for name in methods
        for section in ("Args:", "Returns:", "Raises:", "future")
        if section not in (inspect.getdoc(getattr(mcli.Run, name)) or "")
    ]
    assert lacking == []


def test_classes_and_exceptions_are_documented() -> None:
    for cls in (mcli.Run, mcli.RunConfig, mcli.RunStatus, mcli.LogLine):
        assert len(inspect.getdoc(cls) or "") > 40, cls
    for name in dir(errors):
        value = getattr(errors, name)
        if isinstance(value, type) and issubclass(value, Exception) and value.__module__ == errors.__name__:
            assert value.__doc__ and len(value.__doc__) > 20, name
    for name in ("initialize", "set_api_key"):
        assert "Args:" in (inspect.getdoc(getattr(mcli, name)) or "")


def test_bare_import_reaches_the_async_twin_and_lists_only_public_names() -> None:
    probe = "import mcli; print(mcli.aio.create_run.__module__[:8], 'import_module' in dir(mcli), 'aio' in dir(mcli))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False)
    assert (result.returncode, result.stdout) == (0, "mcli.aio False True\n"), result.stderr
    assert {"create_run", "RunConfig", "InvalidArgumentError", "CallTimeoutError"} <= set(dir(mcli))
    assert not {"Any", "TYPE_CHECKING", "import_module"} & set(dir(mcli))
