"""RunConfig: a run's configuration as users write it, and its translation to the server's `runInput` object."""

from __future__ import annotations

import copy
import difflib
import errno
import math
import os
import re
import sys
import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from mcli.core.errors import MCLIException
from mcli.models import yaml_source

# Run names are RFC 1123 labels, as the platform requires.
_RUN_NAME = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")


class RunConfigError(MCLIException, ValueError):
    """A run configuration is invalid. `fields` names the offending fields, dotted for nested keys."""

    def __init__(self, message: str, fields: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.fields = tuple(fields)


def locate_error(path: str, error: RunConfigError, text: str | None = None) -> RunConfigError:
    """The error as `path:line:column: message` with the offending line of the YAML file (read if `text` is
    None), pointing at the first field the error names."""
    if text is None:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    # An unknown field is wrong by its name; a known one by its value.
    at_key = "unknown field" in str(error)
    line, column = yaml_source.field_position(text, error.fields, at_key)
    return RunConfigError(yaml_source.describe(path, text, line, column, str(error)), error.fields)


# Strict: a YAML typo such as `gpus: "8x"` or `preemptible: "no"` must fail loudly instead of being coerced.
_STRICT = ConfigDict(extra="forbid", strict=True, populate_by_name=True, validate_assignment=True)


def _int_gpu_type_to_str(value: Any) -> Any:
    # YAML reads `gpu_type: 3090` as an int; the official client sends it as a string too.
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class ComputeConfig(BaseModel):
    """Where and on what a run executes. Keys may be written in snake_case or the API's camelCase."""

    model_config = _STRICT

    cluster: str | None = None
    gpus: int | None = Field(default=None, ge=0)
    gpu_type: str | None = Field(default=None, alias="gpuType")
    nodes: int | None = Field(default=None, ge=1)
    instance: str | None = None
    cpus: int | None = Field(default=None, ge=0)
    node_names: list[str] | None = Field(default=None, alias="nodeNames")

    @field_validator("gpu_type", mode="before")
    @classmethod
    def _gpu_type_as_str(cls, value: Any) -> Any:
        return _int_gpu_type_to_str(value)

    def to_api(self) -> dict[str, Any]:
        """The camelCase `compute` object, without unset keys."""
        return {
            field.alias or name: copy.copy(getattr(self, name))
            for name, field in type(self).model_fields.items()
            if getattr(self, name) is not None
        }


class SchedulingConfig(BaseModel):
    """How a run is scheduled. `max_duration` is in hours."""

    model_config = _STRICT

    priority: str | None = None
    preemptible: bool | None = None
    max_retries: int | None = Field(default=None, ge=0, alias="maxRetries")
    retry_on_system_failure: bool | None = Field(default=None, alias="retryOnSystemFailure")
    max_duration: float | None = Field(default=None, gt=0, allow_inf_nan=False, alias="maxDuration")

    def to_api(self) -> dict[str, Any]:
        """The camelCase `scheduling` object, without unset keys."""
        return {
            field.alias or name: getattr(self, name)
            for name, field in type(self).model_fields.items()
            if getattr(self, name) is not None
        }


# Deprecated spellings accepted on input: old name -> new name.
_DEPRECATED_ALIASES = {"run_name": "name", "platform": "cluster"}
# Seed fields the current API no longer reads.
_IGNORED_LEGACY = ("partitions", "optimization_level")
# Top-level fields that belong in `compute` on the wire: top-level name -> compute field.
_FOLDED_INTO_COMPUTE = {"cluster": "cluster", "gpu_type": "gpu_type", "gpu_num": "gpus", "cpus": "cpus"}
# Collection and text fields where an explicit null (an empty YAML key) means "use the default".
_NULL_MEANS_DEFAULT = (
    "integrations",
    "env_variables",
    "scheduling",
    "compute",
    "parameters",
    "metadata",
    "command",
    "entrypoint",
)


class RunConfig(BaseModel):
    """A run configuration for the MosaicML platform.

    Build one with keyword arguments, `RunConfig.from_file(path)` or `RunConfig.from_dict(d)`. Unknown keys and
    wrongly typed values raise `RunConfigError` naming the field. `validate_for_submit()` checks that the
    configuration can be launched; `to_run_input()` produces the JSON object the API expects.
    """

    model_config = ConfigDict(extra="forbid", strict=True, validate_assignment=True)

    name: str | None = None
    gpu_type: str | None = None
    gpu_num: int | None = Field(default=None, ge=0)
    cpus: int | None = Field(default=None, ge=0)
    cluster: str | None = None
    image: str | None = None
    partitions: list[str] | None = None
    optimization_level: int | None = None
    integrations: list[dict[str, Any]] = Field(default_factory=list)
    env_variables: dict[str, str] = Field(default_factory=dict)
    scheduling: SchedulingConfig = Field(default_factory=SchedulingConfig)
    command: str = ""
    parameters: dict[str, Any] = Field(default_factory=dict)
    entrypoint: str = ""
    compute: ComputeConfig = Field(default_factory=ComputeConfig)
    metadata: dict[str, Any] = Field(default_factory=dict)
    parent_name: str | None = None

    if TYPE_CHECKING:
        # The typed signature: the fields plus the deprecated aliases `run_name` and `platform`.
        def __init__(
            self,
            *,
            run_name: str | None = None,
            name: str | None = None,
            gpu_type: str | None = None,
            gpu_num: int | None = None,
            cpus: int | None = None,
            platform: str | None = None,
            cluster: str | None = None,
            image: str | None = None,
            partitions: list[str] | None = None,
            optimization_level: int | None = None,
            integrations: list[dict[str, Any]] | None = None,
            env_variables: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
            scheduling: SchedulingConfig | Mapping[str, Any] | None = None,
            command: str | None = None,
            parameters: dict[str, Any] | None = None,
            entrypoint: str | None = None,
            compute: ComputeConfig | Mapping[str, Any] | None = None,
            metadata: dict[str, Any] | None = None,
            parent_name: str | None = None,
        ) -> None: ...

    else:

        def __init__(self, **data: Any) -> None:
            # Every construction path (keywords, from_dict, from_file) ends here, so errors are always
            # RunConfigError.
            try:
                super().__init__(**_translate_legacy(data))
            except ValidationError as exc:
                raise _config_error(exc) from None

    def __setattr__(self, name: str, value: Any) -> None:
        try:
            super().__setattr__(name, value)
        except ValidationError as exc:
            raise _config_error(exc) from None

    @model_validator(mode="before")
    @classmethod
    def _nulls_to_defaults(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {
                key: value
                for key, value in data.items()
                if not (value is None and key in _NULL_MEANS_DEFAULT)
            }
        return data

    @field_validator("gpu_type", mode="before")
    @classmethod
    def _gpu_type_as_str(cls, value: Any) -> Any:
        return _int_gpu_type_to_str(value)

    @field_validator("env_variables", mode="before")
    @classmethod
    def _normalize_env(cls, value: Any) -> dict[str, str]:
        return _normalize_env_variables(value)

    @field_validator("integrations", mode="before")
    @classmethod
    def _check_integrations(cls, value: Any) -> Any:
        if isinstance(value, list):
            for index, entry in enumerate(value):
                _integration_type(entry, index)
        return value

    @field_validator("parameters", "metadata", mode="after")
    @classmethod
    def _check_json(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        check_json_value(value, info.field_name or "")
        return value

    @model_validator(mode="after")
    def _check_compute_conflicts(self) -> RunConfig:
        for top, sub in _FOLDED_INTO_COMPUTE.items():
            mine, theirs = getattr(self, top), getattr(self.compute, sub)
            if mine is not None and theirs is not None and mine != theirs:
                raise RunConfigError(
                    f"{top}={mine!r} conflicts with compute.{sub}={theirs!r}; set only compute.{sub}",
                    [top, f"compute.{sub}"],
                )
        return self

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunConfig:
        """Build from a mapping of field names (the YAML layout). Deprecated aliases warn and are mapped."""
        if not isinstance(data, Mapping):
            raise RunConfigError(f"a run config must be a mapping of fields, got {type(data).__name__}")
        return cls(**_string_keys(data))

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> RunConfig:
        """Load a YAML run config. A missing file raises FileNotFoundError naming the path."""
        path_str = os.fspath(path)
        try:
            with open(path_str, encoding="utf-8") as handle:
                text = handle.read()
        except FileNotFoundError:
            raise FileNotFoundError(errno.ENOENT, "Run config file not found", path_str) from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise RunConfigError(yaml_source.syntax_error(path_str, text, exc)) from None
        if data is None:
            data = {}
        if not isinstance(data, dict):
            message = f"expected a mapping of run config fields, got {type(data).__name__}"
            raise RunConfigError(yaml_source.describe(path_str, text, 0, 0, message))
        try:
            return cls(**_string_keys(data))
        except RunConfigError as exc:
            raise locate_error(path_str, exc, text) from None

    @classmethod
    def from_run_input(cls, run_input: Mapping[str, Any]) -> RunConfig:
        """Parse a server `runInput`-shaped object (e.g. a run's `originalRunInput`).

        Unknown keys and nulls are ignored, so inputs written by newer or older clients parse.
        """
        source = {key: value for key, value in run_input.items() if value is not None}
        data: dict[str, Any] = {}
        for api_key, field in (
            ("runName", "name"),
            ("parentName", "parent_name"),
            ("image", "image"),
            ("command", "command"),
            ("entrypoint", "entrypoint"),
            ("parameters", "parameters"),
            ("metadata", "metadata"),
        ):
            if api_key in source:
                data[field] = source[api_key]
        if isinstance(source.get("envVariables"), list):
            data["env_variables"] = [
                {"key": entry.get("envKey"), "value": entry.get("envValue")}
                for entry in source["envVariables"]
                if isinstance(entry, Mapping) and entry.get("envValue") is not None
            ]
        if isinstance(source.get("integrations"), list):
            data["integrations"] = [
                {**(entry.get("params") or {}), "integration_type": entry.get("type")}
                for entry in source["integrations"]
                if isinstance(entry, Mapping)
            ]
        compute = _known_keys_only(source.get("compute"), ComputeConfig)
        # Older clients sent these at the top level; 0 and "" were their "unset" defaults.
        for api_key, field in (
            ("cluster", "cluster"),
            ("gpuType", "gpu_type"),
            ("gpuNum", "gpus"),
            ("cpus", "cpus"),
        ):
            if source.get(api_key) not in (None, 0, "") and field not in compute:
                compute[field] = source[api_key]
        data["compute"] = compute
        data["scheduling"] = _known_keys_only(source.get("scheduling"), SchedulingConfig)
        return cls(**data)

    def validate_for_submit(self) -> None:
        """Raise RunConfigError unless the config can be launched: it needs an image and a command."""
        missing = [
            field
            for field, ok in (
                ("image", bool(self.image and self.image.strip())),
                ("command", bool(self.command.strip() or self.entrypoint.strip())),
            )
            if not ok
        ]
        if missing:
            what = " and ".join(repr(field) for field in missing)
            raise RunConfigError(
                f"a run config needs {what} before it can be submitted"
                + (" (or 'entrypoint' instead of 'command')" if "command" in missing else ""),
                missing,
            )
        if self.name is not None and not _RUN_NAME.fullmatch(self.name):
            raise RunConfigError(
                f"name {self.name!r} is not a valid run name: use at most 63 lowercase letters, digits and '-', "
                "starting and ending with a letter or digit",
                ["name"],
            )

    def to_run_input(self) -> dict[str, Any]:
        """The camelCase `runInput` JSON object for `createRun`.

        Top-level gpu_type/gpu_num/cpus/cluster are folded into `compute`; `entrypoint` stands in for an empty
        `command`. NaN, infinity and values JSON cannot carry raise RunConfigError.
        """
        # Nested dicts are mutable, so values set after construction are checked again here.
        check_json_value(self.parameters, "parameters")
        check_json_value(self.metadata, "metadata")
        run_input: dict[str, Any] = {}
        if self.name is not None:
            run_input["runName"] = self.name
        if self.parent_name is not None:
            run_input["parentName"] = self.parent_name
        if self.image is not None:
            run_input["image"] = self.image
        run_input["command"] = self.command.strip() or self.entrypoint.strip()
        run_input["envVariables"] = [
            {"envKey": key, "envValue": value} for key, value in self.env_variables.items()
        ]
        run_input["parameters"] = copy.deepcopy(self.parameters)
        run_input["integrations"] = [
            _integration_to_api(entry, index) for index, entry in enumerate(self.integrations)
        ]
        run_input["compute"] = self.resolved_compute().to_api()
        run_input["scheduling"] = self.scheduling.to_api()
        run_input["metadata"] = copy.deepcopy(self.metadata)
        return run_input

    def resolved_compute(self) -> ComputeConfig:
        """`compute` with the top-level gpu_type/gpu_num/cpus/cluster filled in."""
        update = {
            sub: getattr(self, top)
            for top, sub in _FOLDED_INTO_COMPUTE.items()
            if getattr(self, top) is not None
        }
        return self.compute.model_copy(update=update)


def _string_keys(data: Mapping[Any, Any]) -> dict[str, Any]:
    for key in data:
        if not isinstance(key, str):
            raise RunConfigError(f"run config keys must be strings, got {key!r}", [str(key)])
    return dict(data)


def _stacklevel_outside_module() -> int:
    """A warnings.warn stacklevel for the caller's frame that names the first frame outside this module and
    pydantic, so deprecation warnings point at user code (and are shown by Python's default filters)."""
    frame = sys._getframe(1)
    level = 1
    while frame.f_back is not None and (
        frame.f_code.co_filename == __file__ or f"{os.sep}pydantic{os.sep}" in frame.f_code.co_filename
    ):
        frame = frame.f_back
        level += 1
    return level


def _translate_legacy(data: dict[str, Any]) -> dict[str, Any]:
    """Map deprecated aliases to their fields with a DeprecationWarning, and warn about ignored seed fields."""
    result = dict(data)
    for old, new in _DEPRECATED_ALIASES.items():
        if old not in result:
            continue
        value = result.pop(old)
        warnings.warn(
            f"RunConfig field {old!r} is deprecated; use {new!r}",
            DeprecationWarning,
            stacklevel=_stacklevel_outside_module(),
        )
        if value is None:
            continue
        if result.get(new) is not None and result[new] != value:
            raise RunConfigError(
                f"{old!r} ({value!r}) conflicts with {new!r} ({result[new]!r}); set only {new!r}", [old]
            )
        result[new] = value
    for field in _IGNORED_LEGACY:
        if result.get(field) is not None:
            warnings.warn(
                f"RunConfig field {field!r} is not used by the current API and is ignored",
                DeprecationWarning,
                stacklevel=_stacklevel_outside_module(),
            )
    return result


def _known_keys(model: type[BaseModel]) -> dict[str, str]:
    """Every accepted spelling (field name and alias) -> field name."""
    keys: dict[str, str] = {}
    for name, field in model.model_fields.items():
        keys[name] = name
        if field.alias:
            keys[field.alias] = name
    return keys


def _known_keys_only(value: Any, model: type[BaseModel]) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        return {}
    known = _known_keys(model)
    return {known[key]: item for key, item in value.items() if key in known and item is not None}


def _valid_keys_at(location: Sequence[str]) -> list[str]:
    if list(location) == ["compute"]:
        return list(_known_keys(ComputeConfig))
    if list(location) == ["scheduling"]:
        return list(_known_keys(SchedulingConfig))
    return [*RunConfig.model_fields, *_DEPRECATED_ALIASES]


def _config_error(exc: ValidationError) -> RunConfigError:
    """Rewrite pydantic's errors as one message per field; unknown keys get a "did you mean" hint."""
    problems: list[str] = []
    fields: list[str] = []
    for error in exc.errors():
        location = [str(part) for part in error["loc"]]
        field = ".".join(location)
        cause = error.get("ctx", {}).get("error")
        fields.extend(cause.fields if isinstance(cause, RunConfigError) and cause.fields else [field])
        if isinstance(cause, RunConfigError):
            # Raised by our own checks, which already name the nested path.
            problems.append(str(cause))
        elif error["type"] == "extra_forbidden":
            parent, key = location[:-1], location[-1]
            valid = _valid_keys_at(parent)
            close = difflib.get_close_matches(key, valid, n=1)
            hint = (
                f"did you mean {'.'.join([*parent, close[0]])!r}?"
                if close
                else f"valid fields are: {', '.join(sorted(valid))}"
            )
            problems.append(f"unknown field {field!r}; {hint}")
        else:
            message = error["msg"].removeprefix("Value error, ")
            message = f"{field}: {message}" if field else message
            if error["type"] != "value_error":
                # Type errors are clearer with the offending value; our own messages already describe it.
                shown = repr(error["input"])
                message += f" (got {shown if len(shown) <= 80 else shown[:77] + '...'})"
            problems.append(message)
    return RunConfigError("invalid run config: " + "; ".join(problems), fields)


def _env_value(key: str, value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        # YAML reads `DEBUG: true` as a bool; send the spelling the user wrote, not Python's "True".
        return "true" if value else "false"
    if isinstance(value, int) or (isinstance(value, float) and math.isfinite(value)):
        return str(value)
    raise ValueError(f"the value of {key!r} must be a string or a number, got {type(value).__name__}")


def _normalize_env_variables(value: Any) -> dict[str, str]:
    """Accept {NAME: value} or [{key|name: NAME, value: value}, ...]; return {NAME: "value"}."""
    pairs: list[tuple[Any, Any]] = []
    if isinstance(value, Mapping):
        pairs = list(value.items())
    elif isinstance(value, list | tuple):
        for index, entry in enumerate(value):
            if not (isinstance(entry, Mapping) and "value" in entry and ("key" in entry or "name" in entry)):
                raise ValueError(
                    f"item {index} must be a mapping with 'key' (or 'name') and 'value', got {entry!r}"
                )
            pairs.append((entry.get("key", entry.get("name")), entry["value"]))
    else:
        raise ValueError("must be a mapping {NAME: value} or a list of {key: NAME, value: value} mappings")
    result: dict[str, str] = {}
    for key, raw in pairs:
        if not isinstance(key, str) or not key:
            raise ValueError(f"variable names must be non-empty strings, got {key!r}")
        if key in result:
            raise ValueError(f"variable {key!r} is given twice")
        result[key] = _env_value(key, raw)
    return result


def _integration_type(entry: Any, index: int) -> str:
    if not isinstance(entry, Mapping):
        raise ValueError(f"integration {index} must be a mapping, got {type(entry).__name__}")
    kind = entry.get("integration_type", entry.get("type"))
    if not isinstance(kind, str) or not kind:
        raise ValueError(f"integration {index} needs an 'integration_type' (e.g. git_repo)")
    return kind


def _camel(key: str) -> str:
    # Only underscores start a new word: `git_repo` -> `gitRepo`, and `gitBranch` keeps its capital letter.
    head, *rest = key.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _integration_to_api(entry: dict[str, Any], index: int) -> dict[str, Any]:
    kind = _integration_type(entry, index)
    params = entry.get("params")
    if not isinstance(params, Mapping):
        params = {key: value for key, value in entry.items() if key not in ("integration_type", "type")}
    check_json_value(params, f"integrations[{index}]")
    return {"type": kind, "params": {_camel(key): copy.deepcopy(value) for key, value in params.items()}}


def check_json_value(value: Any, path: str) -> None:
    """Raise unless `value` is plain JSON with finite numbers (json.dumps would emit invalid `NaN` tokens)."""
    if isinstance(value, str | bool | int) or value is None:
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise RunConfigError(
                f"{path or 'value'}: {value} is not allowed; JSON has no NaN or infinity", [path]
            )
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise RunConfigError(f"{path or 'value'}: keys must be strings, got {key!r}", [path])
            check_json_value(item, f"{path}.{key}" if path else key)
        return
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            check_json_value(item, f"{path}[{index}]")
        return
    raise RunConfigError(
        f"{path or 'value'}: {type(value).__name__} values cannot be sent as JSON "
        f"(quote dates and times in YAML)",
        [path],
    )
