"""Validation of a submitted `runInput` into what the executor needs."""

from __future__ import annotations

import json
import math
import re
import secrets
import string
from dataclasses import dataclass
from typing import Any

from mcli.local.errors import ApiError, bad_request
from mcli.local.placement import Capacity

_RFC1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Counts are returned as GraphQL `Int` (32-bit signed) and stored as SQLite integers: refuse larger values up front.
MAX_INT = 2**31 - 1
RUN_TYPES = ("TRAINING", "SECRET_TEST", "INTERACTIVE", "HERO_RUN", "FINETUNING", "PRETRAINING", "UNKNOWN")
# Keys the official client cannot read back as null in `originalRunInput`.
_NO_NULL_KEYS = ("integrations", "envVariables", "scheduling", "compute", "dependentDeployment")


def unavailable(message: str) -> ApiError:
    return bad_request(message, "INSTANCE_TYPE_UNAVAILABLE")


def bad_field(message: str) -> ApiError:
    return bad_request(f"Bad run request: {message}")


def valid_run_name(name: str) -> bool:
    return len(name) <= 63 and _RFC1123.match(name) is not None


def generate_name(image: str) -> str:
    """`<prefix>-<6 random chars>`, the prefix taken from the image name when it makes a valid label."""
    base = image.rsplit("/", 1)[-1].split(":", 1)[0].split("@", 1)[0].lower()
    base = re.sub(r"[^a-z0-9-]+", "-", base).strip("-")[:40].strip("-") or "run"
    suffix = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(6))
    return f"{base}-{suffix}"


@dataclass
class RunSpec:
    name: str | None
    image: str
    command: str
    env: dict[str, str]
    parameters: Any
    metadata: dict[str, Any]
    priority: str
    preemptible: bool
    max_retries: int | None
    retry_on_system_failure: bool
    max_duration_seconds: int | None
    run_type: str
    gpus: int
    nodes: int
    cpus: int
    gpu_type: str
    original: dict[str, Any]


def _opt_int(value: Any, field: str, minimum: int) -> int | None:
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or (isinstance(value, float) and not math.isfinite(value))
        or int(value) != value
    ):
        raise bad_field(f"{field} must be an integer")
    if value < minimum:
        raise bad_field(f"{field} must be at least {minimum}")
    if value > MAX_INT:
        raise bad_field(f"{field} must be at most {MAX_INT}")
    return int(value)


def _no_nul(value: str, field: str) -> str:
    # A NUL byte cannot be passed to a process (argv or environment): refuse it now, not when the run starts.
    if "\x00" in value:
        raise bad_field(f"{field} must not contain a NUL character")
    return value


def _env_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value)


def _parse_env(raw: Any) -> dict[str, str]:
    if raw is None:
        return {}
    items: list[tuple[Any, Any]]
    if isinstance(raw, dict):
        items = list(raw.items())
    elif isinstance(raw, list):
        items = []
        for entry in raw:
            if not isinstance(entry, dict) or "envKey" not in entry:
                raise bad_field("envVariables entries need envKey and envValue")
            items.append((entry["envKey"], entry.get("envValue")))
    else:
        raise bad_field("envVariables must be a list of {envKey, envValue}")
    env: dict[str, str] = {}
    for key, value in items:
        if not isinstance(key, str) or not _ENV_KEY.match(key):
            raise bad_field(f"envVariables key {key!r} is not a valid variable name")
        env[key] = "" if value is None else _no_nul(_env_value(value), f"envVariables {key}")
    return env


def _dict_field(run_input: dict[str, Any], key: str) -> dict[str, Any]:
    value = run_input.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise bad_field(f"{key} must be an object")
    return value


def parse_run_input(run_input: Any, capacity: Capacity) -> RunSpec:
    if not isinstance(run_input, dict):
        raise bad_field("runInput must be an object")
    image = run_input.get("image")
    if not isinstance(image, str) or not image.strip():
        raise bad_field("image is a required field")
    command = run_input.get("command")
    if not isinstance(command, str) or not command.strip():
        raise bad_field("command is a required field")
    _no_nul(command, "command")
    name = run_input.get("runName", run_input.get("name"))
    if name is not None and (not isinstance(name, str) or not valid_run_name(name)):
        raise bad_field(
            f"runName {name!r} is not a valid name: use at most 63 lower-case letters, digits and '-', "
            "starting and ending with a letter or digit"
        )
    parameters = run_input.get("parameters")
    if parameters is None:
        parameters = {}
    metadata = _dict_field(run_input, "metadata")
    scheduling = _dict_field(run_input, "scheduling")
    compute = _dict_field(run_input, "compute")

    priority = scheduling.get("priority", "auto")
    if not isinstance(priority, str):
        raise bad_field("scheduling.priority must be a string")
    max_duration = scheduling.get("maxDuration")
    if max_duration is not None and (
        isinstance(max_duration, bool)
        or not isinstance(max_duration, int | float)
        or not 1 <= round(max_duration * 3600) <= MAX_INT
    ):
        # The run is stopped once it has run this long, so a limit must leave it at least a second.
        raise bad_field(
            f"scheduling.maxDuration must be a number of hours from 1/3600 (one second) to {MAX_INT // 3600}"
        )
    run_type = run_input.get("runType", "TRAINING")
    if run_type not in RUN_TYPES:
        raise bad_field(f"runType must be one of {', '.join(RUN_TYPES)}")

    gpus, nodes, cpus, gpu_type = _resolve_compute(run_input, compute, capacity)
    original = {k: v for k, v in run_input.items() if not (k in _NO_NULL_KEYS and v is None)}
    return RunSpec(
        name=name,
        image=image,
        command=command,
        env=_parse_env(run_input.get("envVariables")),
        parameters=parameters,
        metadata=metadata,
        priority=priority,
        preemptible=bool(scheduling.get("preemptible", False)),
        max_retries=_opt_int(scheduling.get("maxRetries"), "scheduling.maxRetries", 0),
        retry_on_system_failure=bool(scheduling.get("retryOnSystemFailure", False)),
        max_duration_seconds=None if max_duration is None else round(max_duration * 3600),
        run_type=run_type,
        gpus=gpus,
        nodes=nodes,
        cpus=cpus,
        gpu_type=gpu_type,
        original=original,
    )


def _resolve_compute(
    run_input: dict[str, Any], compute: dict[str, Any], capacity: Capacity
) -> tuple[int, int, int, str]:
    """(gpus, nodes, cpus, gpu type) for a request, or an error when it can never fit the local cluster."""
    cluster = compute.get("cluster") or run_input.get("cluster")
    if cluster and cluster != capacity.cluster_name:
        raise unavailable(
            f"Cluster {cluster!r} is not available; the local cluster is {capacity.cluster_name!r}"
        )
    gpu_type = compute.get("gpuType") or run_input.get("gpuType")
    gpus = _opt_int(compute.get("gpus", run_input.get("gpuNum")), "compute.gpus", 0) or 0
    nodes = _opt_int(compute.get("nodes"), "compute.nodes", 1)
    cpus = _opt_int(compute.get("cpus", run_input.get("cpus")), "compute.cpus", 0) or 0
    if gpu_type is not None and not isinstance(gpu_type, str):
        raise bad_field("compute.gpuType must be a string")
    if gpu_type and gpu_type.lower() not in (capacity.gpu_type.lower(), "none", "cpu"):
        raise unavailable(
            f"GPU type {gpu_type!r} is not available; the local cluster has {capacity.gpu_type!r}"
        )
    nodes_given = nodes is not None
    if nodes is None:
        if gpus > sum(capacity.gpus_by_node()):
            raise unavailable(_never_fits(capacity, gpus, None))
        # Without an explicit node count, GPUs fill whole nodes; a CPU-only run is one node rank.
        nodes = max(1, math.ceil(gpus / max(capacity.gpus_per_node, 1))) if gpus else 1
        if gpus % nodes:
            raise bad_field(
                f"compute.gpus ({gpus}) fills whole nodes of {capacity.gpus_per_node} GPUs: ask for a multiple of "
                f"{capacity.gpus_per_node}, or set compute.nodes to spread them evenly"
            )
    if gpus % nodes:
        raise bad_field(f"compute.gpus ({gpus}) must divide evenly over compute.nodes ({nodes})")
    if not capacity.can_ever_fit(nodes, gpus // nodes):
        raise unavailable(_never_fits(capacity, gpus, nodes if nodes_given else None))
    return gpus, nodes, cpus, (capacity.gpu_type if gpus else "none")


def _never_fits(capacity: Capacity, gpus: int, nodes: int | None) -> str:
    """Which limit a GPU request breaks, from the cluster's real capacity, naming only what the user set."""
    by_node = capacity.gpus_by_node()
    total, widest = sum(by_node), max(by_node, default=0)
    where = f"cluster {capacity.cluster_name!r} has {_describe_nodes(capacity)}"
    if nodes is None:
        if gpus > total:
            return f"{gpus} GPUs can never fit: {where}, {total} GPUs in all; ask for at most {total}"
        return (
            f"{gpus} GPUs can never fit: {where}; ask for a multiple of {widest} GPUs, or set compute.nodes "
            f"so that each node gets at most {widest}"
        )
    per_node = gpus // nodes
    if nodes > len(by_node):
        return f"compute.nodes={nodes} can never fit: {where}; use at most {len(by_node)} nodes"
    return (
        f"{gpus} GPUs on compute.nodes={nodes} need {per_node} GPUs on each node, which can never fit: {where}; "
        f"use at most {widest} GPUs per node"
    )


def _describe_nodes(capacity: Capacity) -> str:
    if not capacity.node_gpus:
        kind = "" if capacity.gpu_type.lower() in ("none", "cpu") else f" {capacity.gpu_type}"
        return f"{capacity.nodes} node(s) x {capacity.gpus_per_node}{kind} GPUs"
    return f"{len(capacity.node_gpus)} node(s) with {', '.join(map(str, capacity.node_gpus))} GPU(s)"
