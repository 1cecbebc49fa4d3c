"""RunConfig: construction, validation errors, deprecated aliases, files, and the runInput it sends."""

import json
import math
import os
import stat
from pathlib import Path
from typing import Any

import pytest

import mcli
from mcli.core.errors import MCLIException
from mcli.models import ComputeConfig, RunConfig, RunConfigError, SchedulingConfig


def test_seed_defaults() -> None:
    config = RunConfig()
    assert config.name is None and config.image is None and config.cluster is None
    assert config.gpu_type is None and config.gpu_num is None and config.cpus is None
    assert config.partitions is None and config.optimization_level is None
    assert config.integrations == [] and config.env_variables == [] and config.parameters == {}
    assert config.command == "" and config.entrypoint == ""
    assert config.scheduling == SchedulingConfig() and config.compute == ComputeConfig()
    assert config.metadata == {} and config.parent_name is None


def test_defaults_are_not_shared_between_instances() -> None:
    first, second = RunConfig(), RunConfig()
    first.parameters["a"] = 1
    assert second.parameters == {}


def test_from_dict_with_every_field() -> None:
    config = RunConfig.from_dict(
        {
            "name": "my-run",
            "image": "mosaicml/composer",
            "command": "python train.py",
            "gpu_type": "a100",
            "gpu_num": 8,
            "cpus": 16,
            "cluster": "c1",
            "integrations": [{"integration_type": "git_repo", "git_repo": "org/repo"}],
            "env_variables": {"FOO": "bar"},
            "parameters": {"lr": 0.1, "nested": {"a": [1, 2]}},
            "scheduling": {"priority": "low", "max_retries": 2},
            "metadata": {"team": "x"},
            "parent_name": "parent",
            "entrypoint": "",
        }
    )
    assert config.name == "my-run" and config.gpu_num == 8 and config.cluster == "c1"
    assert config.env_variables == [{"key": "FOO", "value": "bar"}]
    assert config.scheduling.max_retries == 2 and config.scheduling.priority == "low"
    assert config.parameters["nested"] == {"a": [1, 2]}
    assert config.parent_name == "parent"


def test_compute_accepts_snake_and_camel_case_keys() -> None:
    snake = RunConfig(
        compute={
            "gpu_type": "a100",
            "node_names": ["n1"],
            "gpus": 8,
            "nodes": 1,
            "instance": "i",
            "cpus": 4,
            "cluster": "c",
        }
    )
    camel = RunConfig(
        compute={
            "gpuType": "a100",
            "nodeNames": ["n1"],
            "gpus": 8,
            "nodes": 1,
            "instance": "i",
            "cpus": 4,
            "cluster": "c",
        }
    )
    assert snake.compute == camel.compute
    assert snake.compute.node_names == ["n1"]
    assert RunConfig(compute=ComputeConfig(gpus=2)).compute.gpus == 2


def test_scheduling_accepts_snake_and_camel_case_keys() -> None:
    config = RunConfig(scheduling={"retryOnSystemFailure": True, "maxDuration": 2, "preemptible": False})
    assert config.scheduling.retry_on_system_failure is True
    assert config.scheduling.max_duration == 2.0
    assert config.scheduling.preemptible is False


def test_integer_gpu_type_from_yaml_becomes_a_string() -> None:
    assert RunConfig.from_dict({"gpu_type": 3090}).gpu_type == "3090"
    assert RunConfig.from_dict({"compute": {"gpu_type": 3090}}).compute.gpu_type == "3090"


def test_null_collections_mean_defaults() -> None:
    # An empty YAML key (`env_variables:`) reads as None.
    config = RunConfig.from_dict(
        {
            "env_variables": None,
            "parameters": None,
            "scheduling": None,
            "compute": None,
            "integrations": None,
            "metadata": None,
            "command": None,
        }
    )
    assert config.env_variables == [] and config.parameters == {} and config.command == ""


# --- deprecated aliases -------------------------------------------------------------------------------------


def test_run_name_is_a_deprecated_alias_of_name() -> None:
    with pytest.warns(DeprecationWarning, match="'run_name' is deprecated; use 'name'"):
        config = RunConfig(run_name="old")
    assert config.name == "old"


def test_platform_is_a_deprecated_alias_of_cluster() -> None:
    with pytest.warns(DeprecationWarning, match="'platform' is deprecated; use 'cluster'"):
        config = RunConfig.from_dict({"platform": "c1"})
    assert config.cluster == "c1"


def test_deprecation_warning_points_at_the_callers_line() -> None:
    with pytest.warns(DeprecationWarning) as record:
        RunConfig.from_dict({"run_name": "x"})
    assert record[0].filename == __file__


def test_alias_agreeing_with_the_new_field_is_fine_but_a_conflict_is_an_error() -> None:
    with pytest.warns(DeprecationWarning):
        assert RunConfig.from_dict({"run_name": "a", "name": "a"}).name == "a"
    with (
        pytest.warns(DeprecationWarning),
        pytest.raises(RunConfigError, match=r"'run_name'.*conflicts with 'name'"),
    ):
        RunConfig.from_dict({"run_name": "a", "name": "b"})


def test_ignored_seed_fields_warn_but_are_kept() -> None:
    with pytest.warns(DeprecationWarning, match="'partitions' is not used"):
        config = RunConfig(partitions=["p1"])
    assert config.partitions == ["p1"]
    assert "partitions" not in config.to_run_input()


# --- environment variables ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        {"FOO": "bar", "N": "1"},
        [{"key": "FOO", "value": "bar"}, {"key": "N", "value": 1}],
        [{"name": "FOO", "value": "bar"}, {"name": "N", "value": "1"}],
    ],
)
def test_env_variables_accept_a_mapping_or_a_list(value: Any) -> None:
    assert RunConfig(env_variables=value).env_variables == [{"key": "FOO", "value": "bar"}, {"key": "N", "value": "1"}]


def test_env_values_become_strings_with_yaml_spelling_for_booleans() -> None:
    config = RunConfig(env_variables={"A": 1, "B": 1.5, "C": True, "D": False})
    assert {e["key"]: e["value"] for e in config.env_variables} == {"A": "1", "B": "1.5", "C": "true", "D": "false"}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"A": None}, "value of 'A' must be a string or a number"),
        ({"A": {"x": 1}}, "value of 'A' must be a string or a number"),
        ({"A": float("nan")}, "value of 'A' must be a string or a number"),
        ({"": "x"}, "non-empty strings"),
        ([{"key": "A"}], "item 0 must be a mapping with 'key'"),
        ([{"value": "x"}], "item 0 must be a mapping with 'key'"),
        (["A=1"], "item 0 must be a mapping"),
        ([{"key": "A", "value": "1"}, {"name": "A", "value": "2"}], "'A' is given twice"),
        ("A=1", "must be a mapping"),
    ],
)
def test_bad_env_variables_name_the_field(value: Any, message: str) -> None:
    with pytest.raises(RunConfigError, match=message) as caught:
        RunConfig(env_variables=value)
    assert "env_variables" in str(caught.value)
    assert caught.value.fields == ("env_variables",)


# --- validation errors --------------------------------------------------------------------------------------


def test_errors_are_value_errors_and_mcli_exceptions() -> None:
    with pytest.raises(RunConfigError) as caught:
        RunConfig.from_dict({"gpu_num": "eight"})
    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, MCLIException)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"name": 5}, "name"),
        ({"image": ["a"]}, "image"),
        ({"gpu_num": "8"}, "gpu_num"),
        ({"gpu_num": True}, "gpu_num"),
        ({"gpu_num": -1}, "gpu_num"),
        ({"cpus": 1.5}, "cpus"),
        ({"command": ["echo", "hi"]}, "command"),
        ({"parameters": ["a"]}, "parameters"),
        ({"metadata": "x"}, "metadata"),
        ({"integrations": {"type": "git_repo"}}, "integrations"),
        ({"scheduling": "low"}, "scheduling"),
        ({"scheduling": {"preemptible": "no"}}, "scheduling.preemptible"),
        ({"scheduling": {"max_retries": -1}}, "scheduling.max_retries"),
        ({"scheduling": {"max_duration": float("inf")}}, "scheduling.max_duration"),
        ({"compute": {"gpus": "8"}}, "compute.gpus"),
        ({"compute": {"nodes": 0}}, "compute.nodes"),
        ({"compute": {"node_names": "n1"}}, "compute.node_names"),
        ({"parent_name": 1}, "parent_name"),
    ],
)
def test_wrong_types_name_the_field(data: dict[str, Any], field: str) -> None:
    with pytest.raises(RunConfigError) as caught:
        RunConfig.from_dict(data)
    assert caught.value.fields == (field,)
    assert f"{field}:" in str(caught.value)


@pytest.mark.parametrize(
    ("data", "suggestion"),
    [
        ({"imgae": "x"}, "did you mean 'image'?"),
        ({"env_variable": {}}, "did you mean 'env_variables'?"),
        ({"gpu_nums": 1}, "did you mean 'gpu_num'?"),
        ({"compute": {"gpu": 1}}, "did you mean 'compute.gpus'?"),
        ({"scheduling": {"max_retry": 1}}, "did you mean 'scheduling.max_retries'?"),
    ],
)
def test_unknown_keys_suggest_the_closest_valid_key(data: dict[str, Any], suggestion: str) -> None:
    with pytest.raises(RunConfigError, match="unknown field") as caught:
        RunConfig.from_dict(data)
    assert suggestion in str(caught.value)


def test_unknown_key_far_from_everything_lists_valid_keys() -> None:
    with pytest.raises(RunConfigError, match=r"valid fields are: .*image"):
        RunConfig.from_dict({"zzzzzz": 1})


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(RunConfigError) as caught:
        RunConfig.from_dict({"imgae": "x", "gpu_num": "8"})
    assert set(caught.value.fields) == {"imgae", "gpu_num"}


def test_non_mapping_and_non_string_keys_are_rejected() -> None:
    with pytest.raises(RunConfigError, match="must be a mapping"):
        RunConfig.from_dict(["image"])  # type: ignore[arg-type]
    with pytest.raises(RunConfigError, match="keys must be strings"):
        RunConfig.from_dict({1: "x"})  # type: ignore[dict-item]


def test_assignment_is_validated_too() -> None:
    config = RunConfig()
    with pytest.raises(RunConfigError, match="gpu_num"):
        config.gpu_num = "8"  # type: ignore[assignment]
    config.gpu_num = 4
    assert config.gpu_num == 4


def test_integration_without_type_is_rejected() -> None:
    with pytest.raises(RunConfigError, match="integration 0 needs an 'integration_type'"):
        RunConfig(integrations=[{"git_repo": "a/b"}])


def test_top_level_compute_fields_that_disagree_with_compute_are_rejected() -> None:
    with pytest.raises(RunConfigError, match=r"gpu_num=8 conflicts with compute\.gpus=4") as caught:
        RunConfig(gpu_num=8, compute={"gpus": 4})
    assert caught.value.fields == ("gpu_num", "compute.gpus")
    assert RunConfig(cluster="c", compute={"cluster": "c"}).to_run_input()["compute"] == {"cluster": "c"}


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_nan_and_infinity_are_rejected_anywhere_in_parameters_and_metadata(bad: float) -> None:
    with pytest.raises(RunConfigError, match=r"parameters\.opt\.lrs\[1\]"):
        RunConfig(parameters={"opt": {"lrs": [0.1, bad]}})
    with pytest.raises(RunConfigError, match=r"metadata\.score"):
        RunConfig(metadata={"score": bad})


def test_nan_added_after_construction_is_caught_by_to_run_input() -> None:
    config = RunConfig(image="img", command="x")
    config.parameters["lr"] = math.nan
    with pytest.raises(RunConfigError, match=r"parameters\.lr"):
        config.to_run_input()


def test_non_json_values_are_rejected_with_a_hint() -> None:
    import datetime

    with pytest.raises(RunConfigError, match=r"parameters\.when: date values cannot be sent as JSON"):
        RunConfig(parameters={"when": datetime.date(2024, 1, 1)})


# --- files --------------------------------------------------------------------------------------------------


def test_from_file_reads_yaml(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text(
        "name: my-run\nimage: mosaicml/composer\ncommand: |\n  echo hi\ncompute:\n  gpus: 8\n"
        "env_variables:\n  - key: FOO\n    value: bar\nparameters:\n  lr: 0.001\n"
    )
    config = RunConfig.from_file(path)
    assert config.name == "my-run" and config.compute.gpus == 8
    assert config.env_variables == [{"key": "FOO", "value": "bar"}]
    assert config.command == "echo hi\n"
    assert RunConfig.from_file(str(path)) == config


def test_from_file_missing_raises_file_not_found_with_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(FileNotFoundError) as caught:
        RunConfig.from_file(missing)
    assert str(missing) in str(caught.value)
    assert caught.value.filename == str(missing)


def test_from_file_errors_name_the_file_and_field(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("image: x\nimgae: x\n")
    with pytest.raises(RunConfigError) as caught:
        RunConfig.from_file(path)
    assert str(caught.value) == (
        f"{path}:2:1: invalid run config: unknown field 'imgae'; did you mean 'image'?\n  imgae: x\n  ^"
    )
    assert caught.value.fields == ("imgae",)
    path.write_text("- a\n- b\n")
    with pytest.raises(RunConfigError) as caught:
        RunConfig.from_file(path)
    assert str(caught.value) == f"{path}:1:1: expected a mapping of run config fields, got list\n  - a\n  ^"
    path.write_text("name: [unclosed\n")
    with pytest.raises(RunConfigError) as caught:
        RunConfig.from_file(path)
    assert str(caught.value) == f"{path}:1:7: unclosed '[' list\n  name: [unclosed\n        ^"


def test_from_file_empty_gives_an_empty_config_that_cannot_be_submitted(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("")
    config = RunConfig.from_file(path)
    assert config == RunConfig()
    with pytest.raises(RunConfigError):
        config.validate_for_submit()


def test_from_file_with_deprecated_alias_warns(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("run_name: legacy\nplatform: c1\n")
    with pytest.warns(DeprecationWarning):
        config = RunConfig.from_file(path)
    assert (config.name, config.cluster) == ("legacy", "c1")
    assert stat.S_ISREG(os.stat(path).st_mode)


# --- validate_for_submit ------------------------------------------------------------------------------------


def test_validate_for_submit_requires_image_and_command() -> None:
    RunConfig(image="img", command="echo").validate_for_submit()
    RunConfig(image="img", entrypoint="echo").validate_for_submit()
    with pytest.raises(RunConfigError, match="'image'") as caught:
        RunConfig(command="echo").validate_for_submit()
    assert caught.value.fields == ("image",)
    with pytest.raises(RunConfigError, match=r"'command'.*entrypoint") as caught:
        RunConfig(image="img", command="   ").validate_for_submit()
    assert caught.value.fields == ("command",)
    with pytest.raises(RunConfigError) as caught:
        RunConfig().validate_for_submit()
    assert caught.value.fields == ("image", "command")


# --- to_run_input -------------------------------------------------------------------------------------------


def test_to_run_input_shape() -> None:
    config = RunConfig(
        name="my-run",
        image="img",
        command="  echo hi  ",
        gpu_type="a100",
        gpu_num=8,
        cpus=4,
        cluster="c1",
        env_variables={"FOO": "bar", "N": 1},
        integrations=[
            {"integration_type": "git_repo", "git_repo": "a/b", "ssh_clone": True, "gitBranch": "x"}
        ],
        parameters={"a": {"b_c": 1}},
        scheduling={
            "priority": "low",
            "max_retries": 2,
            "retry_on_system_failure": True,
            "preemptible": True,
            "max_duration": 1.5,
        },
        compute={"nodes": 1, "instance": "i1", "node_names": ["n1"]},
        metadata={"m": 1},
        parent_name="parent",
    )
    assert config.to_run_input() == {
        "runName": "my-run",
        "parentName": "parent",
        "image": "img",
        "command": "echo hi",
        "envVariables": [{"envKey": "FOO", "envValue": "bar"}, {"envKey": "N", "envValue": "1"}],
        "parameters": {"a": {"b_c": 1}},
        "integrations": [
            {"type": "git_repo", "params": {"gitRepo": "a/b", "sshClone": True, "gitBranch": "x"}}
        ],
        "compute": {
            "cluster": "c1",
            "gpus": 8,
            "gpuType": "a100",
            "nodes": 1,
            "instance": "i1",
            "cpus": 4,
            "nodeNames": ["n1"],
        },
        "scheduling": {
            "priority": "low",
            "preemptible": True,
            "maxRetries": 2,
            "retryOnSystemFailure": True,
            "maxDuration": 1.5,
        },
        "metadata": {"m": 1},
    }


def test_to_run_input_is_plain_json() -> None:
    # What the server receives is exactly what json round-trips: a tuple arrives as a list, text unchanged.
    config = RunConfig(image="img", command="x", parameters={"t": (1, 2)}, metadata={"u": "ü"})
    sent = json.loads(json.dumps(config.to_run_input(), allow_nan=False))
    assert sent["parameters"] == {"t": [1, 2]} and sent["metadata"] == {"u": "ü"}
    assert sent == json.loads(json.dumps(sent))
    with pytest.raises(mcli.RunConfigException, match=r"parameters\.x"):
        RunConfig(image="img", command="x", parameters={"x": float("inf")}).to_run_input()


def test_to_run_input_minimal_omits_unset_keys() -> None:
    run_input = RunConfig(image="img", command="x").to_run_input()
    assert run_input == {
        "image": "img",
        "command": "x",
        "envVariables": [],
        "parameters": {},
        "integrations": [],
        "compute": {},
        "scheduling": {},
        "metadata": {},
    }


def test_entrypoint_is_used_when_command_is_empty() -> None:
    assert RunConfig(image="i", entrypoint="python x.py").to_run_input()["command"] == "python x.py"
    assert RunConfig(image="i", command="a", entrypoint="b").to_run_input()["command"] == "a"


def test_integration_params_keep_camel_case_keys_and_accept_params_form() -> None:
    config = RunConfig(
        integrations=[
            {"type": "wandb", "params": {"project": "p", "entity_name": "e", "gitBranch": "main"}},
        ]
    )
    assert config.to_run_input()["integrations"] == [
        {"type": "wandb", "params": {"project": "p", "entityName": "e", "gitBranch": "main"}}
    ]


def test_to_run_input_does_not_alias_the_configs_dicts() -> None:
    config = RunConfig(image="i", command="c", parameters={"a": {"b": 1}})
    run_input = config.to_run_input()
    run_input["parameters"]["a"]["b"] = 2
    assert config.parameters == {"a": {"b": 1}}


# --- from_run_input -----------------------------------------------------------------------------------------


def test_from_run_input_round_trips_to_run_input() -> None:
    config = RunConfig(
        name="r",
        image="img",
        command="echo",
        env_variables={"A": "1"},
        parameters={"p": [1]},
        integrations=[{"integration_type": "git_repo", "git_repo": "a/b"}],
        metadata={"k": "v"},
        compute={"gpus": 8, "gpu_type": "a100", "cluster": "c", "node_names": ["n"]},
        scheduling={"priority": "high", "max_retries": 1, "max_duration": 2.0},
        parent_name="p0",
    )
    assert RunConfig.from_run_input(config.to_run_input()).to_run_input() == config.to_run_input()


def test_from_run_input_tolerates_unknown_keys_nulls_and_old_layouts() -> None:
    config = RunConfig.from_run_input(
        {
            "runName": "r",
            "image": "img",
            "command": "c",
            "parentName": None,
            "dependentDeployment": {},
            "gpuType": "a100",
            "gpuNum": 8,
            "cpus": 0,
            "cluster": "c1",
            "run_id": "abc123",
            "partitions": None,
            "integrations": None,
            "envVariables": [{"envKey": "A", "envValue": 3}, {"envKey": "B", "envValue": None}],
            "scheduling": {"priority": "low", "priorityInt": 3, "maxRetries": None, "watchdogEnabled": True},
            "compute": {"instance": "x", "somethingNew": 1},
            "metadata": None,
        }
    )
    assert config.name == "r" and config.parent_name is None
    assert config.env_variables == [{"key": "A", "value": "3"}]
    assert config.scheduling == SchedulingConfig(priority="low")
    # Legacy top-level compute keys move into compute; cpus 0 was the old "unset" default.
    assert config.compute == ComputeConfig(instance="x", gpu_type="a100", gpus=8, cluster="c1")
    assert config.gpu_num is None and config.cpus is None


def test_from_run_input_emits_no_warnings(recwarn: pytest.WarningsRecorder) -> None:
    RunConfig.from_run_input({"runName": "r", "optimizationLevel": 0, "entrypoint": "x"})
    assert len(recwarn) == 0
