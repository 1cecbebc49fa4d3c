"""The wire translation of a RunConfig: to the server's camelCase `runInput` object, and back from a stored one."""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mcli.core.errors import RunConfigException

if TYPE_CHECKING:
    from mcli.models.run_config import RunConfig

# RunConfig field -> runInput key, for the fields copied as they are.
_PLAIN_FIELDS = (
    ("name", "runName"),
    ("parent_name", "parentName"),
    ("image", "image"),
    ("command", "command"),
    ("entrypoint", "entrypoint"),
    ("parameters", "parameters"),
    ("metadata", "metadata"),
)
# Older clients sent these at the top level of runInput; the compute field each maps to.
_LEGACY_COMPUTE_KEYS = (("cluster", "cluster"), ("gpuType", "gpu_type"), ("gpuNum", "gpus"), ("cpus", "cpus"))


def to_run_input(config: RunConfig) -> dict[str, Any]:
    """The camelCase `runInput` JSON object for `createRun`.

    Top-level gpu_type/gpu_num/cpus/cluster are folded into `compute`; `entrypoint` stands in for an empty
    `command`. NaN, infinity and values JSON cannot carry raise RunConfigException.
    """
    # Nested values are mutable, so what was changed after construction is checked again here.
    check_json_value(config.parameters, "parameters")
    check_json_value(config.metadata, "metadata")
    run_input: dict[str, Any] = {}
    if config.name is not None:
        run_input["runName"] = config.name
    if config.parent_name is not None:
        run_input["parentName"] = config.parent_name
    if config.image is not None:
        run_input["image"] = config.image
    run_input["command"] = config.command.strip() or config.entrypoint.strip()
    try:
        env = normalize_env_variables(config.env_variables)
    except ValueError as error:
        raise RunConfigException(f"env_variables: {error}", ["env_variables"]) from None
    run_input["envVariables"] = [{"envKey": entry["key"], "envValue": entry["value"]} for entry in env]
    run_input["parameters"] = copy.deepcopy(config.parameters)
    run_input["integrations"] = [
        integration_to_api(entry, index) for index, entry in enumerate(config.integrations)
    ]
    run_input["compute"] = config.resolved_compute().to_api()
    run_input["scheduling"] = config.scheduling.to_api()
    run_input["metadata"] = copy.deepcopy(config.metadata)
    return run_input


def fields_from_run_input(
    run_input: Mapping[str, Any], compute_keys: dict[str, str], scheduling_keys: dict[str, str]
) -> dict[str, Any]:
    """RunConfig fields from a server `runInput`-shaped object (e.g. a run's `originalRunInput`).

    Unknown keys and nulls are ignored, so inputs written by newer or older clients parse. `compute_keys` and
    `scheduling_keys` map every accepted spelling of those objects' keys to their field names.
    """
    source = {key: value for key, value in run_input.items() if value is not None}
    data: dict[str, Any] = {field: source[api_key] for field, api_key in _PLAIN_FIELDS if api_key in source}
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
    compute = _known_keys_only(source.get("compute"), compute_keys)
    # 0 and "" were older clients' "unset" defaults.
    for api_key, field in _LEGACY_COMPUTE_KEYS:
        if source.get(api_key) not in (None, 0, "") and field not in compute:
            compute[field] = source[api_key]
    data["compute"] = compute
    data["scheduling"] = _known_keys_only(source.get("scheduling"), scheduling_keys)
    return data


def _known_keys_only(value: Any, known: dict[str, str]) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        return {}
    return {known[key]: item for key, item in value.items() if key in known and item is not None}


def _env_value(key: str, value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        # YAML reads `DEBUG: true` as a bool; send the spelling the user wrote, not Python's "True".
        return "true" if value else "false"
    if isinstance(value, int) or (isinstance(value, float) and math.isfinite(value)):
        return str(value)
    raise ValueError(f"the value of {key!r} must be a string or a number, got {type(value).__name__}")


def normalize_env_variables(value: Any) -> list[dict[str, str]]:
    """Accept {NAME: value} or [{key|name: NAME, value: value}, ...]; return the seed's [{key: NAME, value: "value"}].

    Raises:
        ValueError: Not one of those shapes, a name that is not a non-empty string, a name given twice, or a value
            that is neither a string nor a number.
    """
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
    seen: set[str] = set()
    result: list[dict[str, str]] = []
    for key, raw in pairs:
        if not isinstance(key, str) or not key:
            raise ValueError(f"variable names must be non-empty strings, got {key!r}")
        if key in seen:
            raise ValueError(f"variable {key!r} is given twice")
        seen.add(key)
        result.append({"key": key, "value": _env_value(key, raw)})
    return result


def integration_type(entry: Any, index: int) -> str:
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


def integration_to_api(entry: dict[str, Any], index: int) -> dict[str, Any]:
    try:
        kind = integration_type(entry, index)
    except ValueError as error:
        raise RunConfigException(f"integrations: {error}", ["integrations"]) from None
    params = entry.get("params")
    if not isinstance(params, Mapping):
        params = {key: value for key, value in entry.items() if key not in ("integration_type", "type")}
    check_json_value(params, f"integrations[{index}]")
    return {"type": kind, "params": {_camel(key): copy.deepcopy(value) for key, value in params.items()}}


def check_json_value(value: Any, path: str) -> None:
    """Raise RunConfigException unless `value` is plain JSON with finite numbers (json.dumps would emit invalid
    `NaN` tokens)."""
    if isinstance(value, str | bool | int) or value is None:
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise RunConfigException(
                f"{path or 'value'}: {value} is not allowed; JSON has no NaN or infinity", [path]
            )
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise RunConfigException(f"{path or 'value'}: keys must be strings, got {key!r}", [path])
            check_json_value(item, f"{path}.{key}" if path else key)
        return
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            check_json_value(item, f"{path}[{index}]")
        return
    raise RunConfigException(
        f"{path or 'value'}: {type(value).__name__} values cannot be sent as JSON (quote dates and times in YAML)",
        [path],
    )
