"""RunConfig: a run's configuration as users write it (the seed's fields, in the seed's order, plus compute).

Its `compute` and `scheduling` sections live in `mcli.models.config_sections`, the wire translation in
`mcli.models.run_input`, the error rewriting in `mcli.models.config_errors`.
"""

from __future__ import annotations

import errno
import os
import re
import sys
import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from mcli.core.errors import RunConfigException
from mcli.models import yaml_source
from mcli.models.config_errors import config_error, locate_error
from mcli.models.config_sections import ComputeConfig, SchedulingConfig, gpu_type_as_str, known_keys
from mcli.models.run_input import (
    check_json_value,
    fields_from_run_input,
    integration_type,
    normalize_env_variables,
    to_run_input,
)

# The name used before the seed's RunConfigException was adopted.
RunConfigError = RunConfigException

# Run names are RFC 1123 labels, as the platform requires.
_RUN_NAME = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")

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
    """A run configuration for the MosaicML platform

    Values in here are not yet validated and some required values may be missing (`validate_for_submit()` checks
    that it can be launched: it needs `image` and `command`). The seed's arguments may be given positionally, in the
    seed's order; the others are keyword-only. Every field is an attribute that can be read and assigned (an
    assignment is validated). Build one from YAML with `RunConfig.from_file(path)` or from a mapping with
    `RunConfig.from_dict(d)`; unknown keys and wrongly typed values raise RunConfigException naming the field.

    Args:
        run_name (Optional[str]): DEPRECATED alias of `name`.
        name (Optional[str]): User-defined name of the run (leave unset for a unique generated one).
        gpu_type (Optional[str]): GPU type (optional if only one gpu type for your cluster).
        gpu_num (Optional[int]): Number of GPUs.
        cpus (Optional[int]): Number of CPUs.
        platform (Optional[str]): DEPRECATED alias of `cluster`.
        cluster (Optional[str]): Cluster to use (optional if you only have one).
        image (Optional[str]): Docker image (e.g. mosaicml/composer).
        partitions (Optional[List[str]]): Not used by the current API (kept, with a warning).
        optimization_level (Optional[int]): Not used by the current API (kept, with a warning).
        integrations (List[Dict[str, Any]]): List of integrations, each with an `integration_type`.
        env_variables (List[Dict[str, str]]): List of environment variables, `[{"key": K, "value": V}]`; a mapping
            `{K: V}` is accepted too. Numbers and booleans become strings.
        scheduling (SchedulingConfig): Scheduling, e.g. `{"priority": "low"}`; reads like a dict.
        command (str): Command to use when a run starts.
        parameters (Dict[str, Any]): Parameters to mount into the environment.
        entrypoint (str): Alternative to command.
        compute (ComputeConfig): Keyword only. Where and on what to run: cluster, gpus, gpu_type, nodes, cpus...
        metadata (Dict[str, Any]): Keyword only. JSON values stored with the run.
        parent_name (Optional[str]): Keyword only. The run this one continues.

    Raises:
        RunConfigException: A value has the wrong type, a key is unknown, or two fields disagree.
    """

    model_config = ConfigDict(extra="forbid", strict=True, validate_assignment=True, defer_build=True)

    name: str | None = None
    gpu_type: str | None = None
    gpu_num: int | None = Field(default=None, ge=0)
    cpus: int | None = Field(default=None, ge=0)
    cluster: str | None = None
    image: str | None = None
    partitions: list[str] | None = None
    optimization_level: int | None = None
    integrations: list[dict[str, Any]] = Field(default_factory=list)
    env_variables: list[dict[str, str]] = Field(default_factory=list)
    scheduling: SchedulingConfig = Field(default_factory=SchedulingConfig)
    command: str = ""
    parameters: dict[str, Any] = Field(default_factory=dict)
    entrypoint: str = ""
    compute: ComputeConfig = Field(default_factory=ComputeConfig)
    metadata: dict[str, Any] = Field(default_factory=dict)
    parent_name: str | None = None

    def __init__(
        self,
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
        env_variables: Sequence[Mapping[str, Any]] | Mapping[str, Any] | None = None,
        scheduling: SchedulingConfig | Mapping[str, Any] | None = None,
        command: str | None = None,
        parameters: dict[str, Any] | None = None,
        entrypoint: str | None = None,
        *,
        compute: ComputeConfig | Mapping[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        parent_name: str | None = None,
        **unknown: Any,
    ) -> None:
        given = {
            "run_name": run_name,
            "name": name,
            "gpu_type": gpu_type,
            "gpu_num": gpu_num,
            "cpus": cpus,
            "platform": platform,
            "cluster": cluster,
            "image": image,
            "partitions": partitions,
            "optimization_level": optimization_level,
            "integrations": integrations,
            "env_variables": env_variables,
            "scheduling": scheduling,
            "command": command,
            "parameters": parameters,
            "entrypoint": entrypoint,
            "compute": compute,
            "metadata": metadata,
            "parent_name": parent_name,
        }
        # None means "not given" for every field, so only given values are validated (and warned about).
        data = {key: value for key, value in given.items() if value is not None}
        # Every construction path (positional, keywords, from_dict, from_file) ends here, so errors are always
        # RunConfigException; unknown keys reach pydantic, which names them.
        try:
            super().__init__(**_translate_legacy(data), **unknown)
        except ValidationError as exc:
            raise config_error(exc, _valid_keys_at) from None

    def __setattr__(self, name: str, value: Any) -> None:
        try:
            super().__setattr__(name, value)
        except ValidationError as exc:
            raise config_error(exc, _valid_keys_at) from None

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        # Only what was set: the full list of empty defaults would hide the config in a traceback.
        for key, value in super().__repr_args__():
            if key is not None and key in self.model_fields_set:
                yield key, value

    @property
    def run_name(self) -> str | None:
        """DEPRECATED alias of `name`, as in the seed; assigning it sets `name`."""
        return self.name

    @run_name.setter
    def run_name(self, value: str | None) -> None:
        self.name = value

    @property
    def platform(self) -> str | None:
        """DEPRECATED alias of `cluster`, as in the seed; assigning it sets `cluster`."""
        return self.cluster

    @platform.setter
    def platform(self, value: str | None) -> None:
        self.cluster = value

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
        return gpu_type_as_str(value)

    @field_validator("env_variables", mode="before")
    @classmethod
    def _normalize_env(cls, value: Any) -> list[dict[str, str]]:
        return normalize_env_variables(value)

    @field_validator("integrations", mode="before")
    @classmethod
    def _check_integrations(cls, value: Any) -> Any:
        if isinstance(value, list):
            for index, entry in enumerate(value):
                integration_type(entry, index)
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
                raise RunConfigException(
                    f"{top}={mine!r} conflicts with compute.{sub}={theirs!r}; set only compute.{sub}",
                    [top, f"compute.{sub}"],
                )
        return self

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunConfig:
        """Build from a mapping of field names (the YAML layout). Deprecated aliases warn and are mapped.

        Raises:
            RunConfigException: `data` is not a mapping, or holds an invalid value or unknown key.
        """
        if not isinstance(data, Mapping):
            raise RunConfigException(f"a run config must be a mapping of fields, got {type(data).__name__}")
        return cls(**_string_keys(data))

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> RunConfig:
        """Load a YAML run config.

        Raises:
            FileNotFoundError: The file does not exist (naming the path).
            RunConfigException: The file cannot be read (a directory, no permission, not UTF-8), the YAML is invalid
                or not a mapping, or a field is; the message names the file.
        """
        path_str = os.fspath(path)
        try:
            with open(path_str, encoding="utf-8") as handle:
                text = handle.read()
        except FileNotFoundError:
            raise FileNotFoundError(errno.ENOENT, "Run config file not found", path_str) from None
        except OSError as exc:
            raise RunConfigException(f"{path_str}: cannot read the run config: {exc.strerror or exc}") from None
        except UnicodeDecodeError as exc:
            raise RunConfigException(
                f"{path_str}: a run config is UTF-8 YAML text, but byte {exc.start} is not UTF-8 ({exc.reason})"
            ) from None
        import yaml  # only for a file: building RunConfigs in code never pays for the YAML parser

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise RunConfigException(yaml_source.syntax_error(path_str, text, exc)) from None
        if data is None:
            data = {}
        if not isinstance(data, dict):
            message = f"expected a mapping of run config fields, got {type(data).__name__}"
            raise RunConfigException(yaml_source.describe(path_str, text, 0, 0, message))
        try:
            return cls(**_string_keys(data))
        except RunConfigException as exc:
            raise locate_error(path_str, exc, text) from None

    @classmethod
    def from_run_input(cls, run_input: Mapping[str, Any]) -> RunConfig:
        """Parse a server `runInput`-shaped object (e.g. a run's `originalRunInput`).

        Unknown keys and nulls are ignored, so inputs written by newer or older clients parse.
        """
        return cls(
            **fields_from_run_input(run_input, known_keys(ComputeConfig), known_keys(SchedulingConfig))
        )

    def validate_for_submit(self) -> None:
        """Raise RunConfigException unless the config can be launched: it needs an image and a command."""
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
            raise RunConfigException(
                f"a run config needs {what} before it can be submitted"
                + (" (or 'entrypoint' instead of 'command')" if "command" in missing else ""),
                missing,
            )
        if self.name is not None and not _RUN_NAME.fullmatch(self.name):
            raise RunConfigException(
                f"name {self.name!r} is not a valid run name: use at most 63 lowercase letters, digits and '-', "
                "starting and ending with a letter or digit",
                ["name"],
            )

    def to_run_input(self) -> dict[str, Any]:
        """The camelCase `runInput` JSON object for `createRun` (see `mcli.models.run_input.to_run_input`)."""
        return to_run_input(self)

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
            raise RunConfigException(f"run config keys must be strings, got {key!r}", [str(key)])
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
            raise RunConfigException(
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


def _valid_keys_at(location: Sequence[str]) -> list[str]:
    if list(location) == ["compute"]:
        return list(known_keys(ComputeConfig))
    if list(location) == ["scheduling"]:
        return list(known_keys(SchedulingConfig))
    return [*RunConfig.model_fields, *_DEPRECATED_ALIASES]
