"""Hypothesis strategies for property tests against a local MAPI: run configs and `get_runs` arguments.

```python
from hypothesis import given
from mcli.testing.strategies import run_configs

@given(config=run_configs())
def test_launcher_accepts_any_valid_config(mapi_env, config): ...
```

They are derived from the contract and the SDK rather than from copies of them, so they cannot drift apart:
run statuses come from the `RunStatus` enum in `schema.graphql` and integer bounds from its 32-bit `Int`; the
fields to generate are checked against the SDK's `RunConfig` model (a field added there and not here fails at
once); and every example is passed through the SDK's own validation (`RunConfig.validate_for_submit` and
`to_run_input`, `mcli.filters.build_runs_page_input`) before it is drawn. Needs `pip install hypothesis`.
"""

from __future__ import annotations

import inspect
import math
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

try:
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover - depends on the environment
    raise ImportError("mcli.testing.strategies needs hypothesis: pip install hypothesis") from None

from mcli.filters import _instant, build_runs_page_input
from mcli.graphql import schema_sdl
from mcli.local.placement import Capacity
from mcli.models.config_sections import ComputeConfig, SchedulingConfig
from mcli.models.run_config import RunConfig
from mcli.models.run_status import RunStatus

__all__ = ["get_runs_filters", "run_configs", "run_names", "schema_run_statuses"]

# Commands that are safe to run anywhere: generated configs are really executed by the local server.
SAFE_COMMANDS = ("true", ":", "exit 0", "echo hello", 'echo "rank $NODE_RANK"')
# Fields left out on purpose, with the reason; every other field of the SDK's models is generated.
_NOT_GENERATED = {
    "partitions": "deprecated: the current API ignores it, and setting it warns",
    "optimization_level": "deprecated: the current API ignores it, and setting it warns",
    "parent_name": "names another run, which a config on its own cannot know",
    "compute.instance": "instance types do not exist on the local cluster",
    "compute.node_names": "node names do not exist on the local cluster",
}
# JSON numbers other implementations read exactly (IEEE doubles hold integers up to 2**53).
_JSON_INT = 2**53
# Variables a run's shell or dynamic loader reads: a random value there could break the run, not the config.
_RESERVED_ENV = ("PATH", "HOME", "IFS", "ENV", "BASH_ENV", "SHELL", "PWD", "TMPDIR")


@cache
def _schema() -> Any:
    from graphql import build_schema

    return build_schema(schema_sdl())


def schema_run_statuses() -> list[str]:
    """The `RunStatus` values in `schema.graphql`, in their declared order."""
    return list(_schema().type_map["RunStatus"].values)


def _graphql_max_int() -> int:
    from graphql import GRAPHQL_MAX_INT

    return int(GRAPHQL_MAX_INT)


def _check_covered(model: Any, covered: set[str], prefix: str = "") -> None:
    fields = {prefix + name for name in model.model_fields}
    missing = sorted(fields - covered - set(_NOT_GENERATED))
    if missing:
        raise RuntimeError(
            f"mcli.testing.strategies does not generate {', '.join(missing)}: the SDK's {model.__name__} "
            "gained fields; add them to the strategy (or to _NOT_GENERATED with a reason)"
        )


# Text without NUL (no process can receive it) or lone surrogates (not valid UTF-8).
_TEXT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=20)
_JSON_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(-_JSON_INT, _JSON_INT)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _TEXT
)


def _json_objects(max_leaves: int = 10) -> st.SearchStrategy[dict[str, Any]]:
    values = st.recursive(
        _JSON_LEAVES,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
        max_leaves=max_leaves,
    )
    return st.dictionaries(_TEXT, values, max_size=4)


def run_names() -> st.SearchStrategy[str]:
    """Valid run names (lower-case letters, digits and '-'; short, so that draws rarely collide)."""
    return st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True)


def _images() -> st.SearchStrategy[str]:
    return st.from_regex(r"[a-z0-9]{1,12}(/[a-z0-9._-]{1,12})?(:[a-z0-9._-]{1,8})?", fullmatch=True)


def _env_variables() -> st.SearchStrategy[dict[str, str]]:
    keys = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,15}", fullmatch=True).filter(
        lambda key: key not in _RESERVED_ENV and not key.startswith(("LD_", "PYTHON"))
    )
    return st.dictionaries(keys, _TEXT, max_size=4)


def _integrations() -> st.SearchStrategy[list[dict[str, Any]]]:
    git_repo = st.fixed_dictionaries(
        {
            "integration_type": st.just("git_repo"),
            "git_repo": st.from_regex(r"[a-z]{1,8}/[a-z]{1,8}", fullmatch=True),
        },
        optional={"git_branch": st.from_regex(r"[a-z]{1,8}", fullmatch=True)},
    )
    pip = st.fixed_dictionaries(
        {
            "integration_type": st.just("pip_packages"),
            "packages": st.lists(st.sampled_from(["numpy", "rich"])),
        }
    )
    return st.lists(git_repo | pip, max_size=2)


def _scheduling() -> st.SearchStrategy[dict[str, Any]]:
    strategies: dict[str, st.SearchStrategy[Any]] = {
        "priority": st.sampled_from(["auto", "lowest", "low", "medium", "high", "highest"]),
        "preemptible": st.booleans(),
        "max_retries": st.integers(0, 10),
        "retry_on_system_failure": st.booleans(),
        # Hours; the server keeps whole seconds in a 32-bit Int. At least a minute: the server enforces the limit
        # (it stops the run), and a drawn run must have time to complete.
        "max_duration": st.floats(min_value=1 / 60, max_value=_graphql_max_int() / 3600, allow_nan=False),
    }
    _check_covered(SchedulingConfig, set(strategies))
    return st.fixed_dictionaries({}, optional=strategies)


_COMPUTE_SETTINGS = ("nodes", "gpus", "gpu_type", "cluster", "cpus")


@st.composite
def _compute(draw: st.DrawFn, capacity: Capacity) -> tuple[dict[str, Any], dict[str, Any]]:
    """(compute, top-level fields): each setting in exactly one of the two places the SDK accepts it."""
    nodes = draw(st.integers(1, capacity.nodes))
    gpus_per_rank = draw(st.integers(0, capacity.gpus_per_node))
    settings: dict[str, Any] = {}
    # Without `nodes`, GPUs fill whole nodes and a CPU-only run is one rank: omit it only where that matches.
    implied = max(1, math.ceil(nodes * gpus_per_rank / max(capacity.gpus_per_node, 1)))
    if nodes != implied or draw(st.booleans()):
        settings["nodes"] = nodes
    if gpus_per_rank or draw(st.booleans()):
        settings["gpus"] = nodes * gpus_per_rank
    if draw(st.booleans()):
        settings["gpu_type"] = capacity.gpu_type
    if draw(st.booleans()):
        settings["cluster"] = capacity.cluster_name
    if draw(st.booleans()):
        settings["cpus"] = draw(st.integers(0, 64))
    top_level_name = {"gpus": "gpu_num", "gpu_type": "gpu_type", "cluster": "cluster", "cpus": "cpus"}
    compute: dict[str, Any] = {}
    top: dict[str, Any] = {}
    for name, value in settings.items():
        if name in top_level_name and draw(st.booleans()):
            top[top_level_name[name]] = value
        else:
            compute[name] = value
    return compute, top


def _validated(config: RunConfig) -> RunConfig:
    # The SDK's own checks: a strategy that drifted from them fails here instead of producing bad input.
    config.validate_for_submit()
    config.to_run_input()
    return config


def run_configs(
    *,
    names: st.SearchStrategy[str | None] | None = None,
    commands: st.SearchStrategy[str] | None = None,
    nodes: int | None = None,
    gpus_per_node: int | None = None,
    gpu_type: str | None = None,
    cluster_name: str | None = None,
) -> st.SearchStrategy[RunConfig]:
    """`RunConfig`s that a local server with this capacity accepts (defaults: `mcli local serve`'s).

    `names` draws the run name (default: none or a valid name); `commands` the command, which the server really
    runs (default: a few harmless shell commands), set as `command` or as `entrypoint`.
    """
    default = Capacity()
    capacity = Capacity(
        cluster_name=cluster_name or default.cluster_name,
        nodes=nodes or default.nodes,
        gpus_per_node=default.gpus_per_node if gpus_per_node is None else gpus_per_node,
        gpu_type=gpu_type or default.gpu_type,
    )
    command_strategy = commands if commands is not None else st.sampled_from(SAFE_COMMANDS)
    fields: dict[str, st.SearchStrategy[Any]] = {
        "name": names if names is not None else st.none() | run_names(),
        "image": _images(),
        "env_variables": _env_variables(),
        "parameters": _json_objects(),
        "metadata": _json_objects(),
        "integrations": _integrations(),
        "scheduling": _scheduling(),
    }
    placed = {"command", "entrypoint", "compute", "gpu_num", "gpu_type", "cluster", "cpus"}
    _check_covered(RunConfig, set(fields) | placed)
    _check_covered(ComputeConfig, {f"compute.{name}" for name in _COMPUTE_SETTINGS}, "compute.")

    @st.composite
    def build(draw: st.DrawFn) -> RunConfig:
        data = {name: draw(strategy) for name, strategy in fields.items()}
        data[draw(st.sampled_from(["command", "entrypoint"]))] = draw(command_strategy)
        compute, top = draw(_compute(capacity))
        return _validated(RunConfig.from_dict({**data, "compute": compute, **top}))

    return build()


# `get_runs` arguments that select runs (the others, timeout and future, are how to call, not what to get).
_FILTER_ARGUMENTS = (
    "runs", "cluster_names", "before", "after", "gpu_types", "gpu_nums", "statuses", "limit", "include_deleted",
    "ended_before", "ended_after", "user_emails",
)  # fmt: skip
# (before, after) pairs: `get_runs` refuses an `after` that is not earlier than its `before`.
_RANGES = (("before", "after"), ("ended_before", "ended_after"))


def _instants() -> st.SearchStrategy[Any]:
    """Datetimes (aware or naive), dates, or ISO 8601 strings, as `get_runs` accepts for before/after.

    Half of them fall within a minute of when the strategy was made, where the runs a test just created are.
    """
    now = datetime.now(UTC).replace(tzinfo=None)
    recent = st.integers(-30_000_000, 30_000_000).map(lambda offset: now + timedelta(microseconds=offset))
    moments = recent | st.datetimes(min_value=datetime(2001, 1, 1), max_value=datetime(2100, 1, 1))
    return (
        moments.map(lambda moment: moment.replace(tzinfo=UTC))
        | moments
        | moments.map(lambda moment: moment.date())
        | moments.map(lambda moment: moment.replace(tzinfo=UTC).isoformat())
        | moments.map(lambda moment: moment.date().isoformat())
    )


def _statuses() -> st.SearchStrategy[Any]:
    names = schema_run_statuses()
    as_written = st.sampled_from(names).flatmap(
        lambda name: st.sampled_from([name, name.lower(), name.capitalize(), RunStatus.from_string(name)])
    )
    return st.lists(as_written, max_size=4)


def get_runs_filters(
    *,
    names: st.SearchStrategy[str] | None = None,
    cluster_names: st.SearchStrategy[str] | None = None,
    gpu_types: st.SearchStrategy[str] | None = None,
    user_emails: st.SearchStrategy[str] | None = None,
) -> st.SearchStrategy[dict[str, Any]]:
    """Keyword arguments for `mcli.get_runs(**kwargs)` (and `mcli.aio.get_runs`) that the SDK accepts.

    Each filter is present or absent independently. `names`, `cluster_names` and `gpu_types` draw the values
    to filter by (default: any valid run name; the local cluster's name and GPU type or another); `user_emails`
    only when given (a user may list only their own runs). Statuses come from the schema's `RunStatus`, written as
    enum members or names in any case.
    """
    import mcli.sdk

    parameters = inspect.signature(mcli.sdk.get_runs).parameters
    unknown = [name for name in _FILTER_ARGUMENTS if name not in parameters]
    if unknown:
        raise RuntimeError(f"mcli.get_runs no longer takes {', '.join(unknown)}: update the strategy")
    default = Capacity()
    strategies: dict[str, st.SearchStrategy[Any]] = {
        "runs": st.lists(names if names is not None else run_names(), max_size=4),
        "cluster_names": st.lists(
            cluster_names if cluster_names is not None else st.sampled_from([default.cluster_name, "r7z1"]),
            max_size=2,
        ),
        "before": _instants(),
        "after": _instants(),
        "ended_before": _instants(),
        "ended_after": _instants(),
        "gpu_types": st.lists(
            gpu_types
            if gpu_types is not None
            else st.sampled_from([default.gpu_type, "a100_80gb", "h100_80gb"]),
            max_size=2,
        ),
        "gpu_nums": st.lists(st.integers(0, _graphql_max_int()), max_size=3),
        "statuses": _statuses(),
        "limit": st.integers(1, 10_000),
        "include_deleted": st.booleans(),
    }
    if user_emails is not None:
        strategies["user_emails"] = st.lists(user_emails, min_size=1, max_size=2)

    def valid_range(arguments: dict[str, Any]) -> bool:
        return all(
            _instant(arguments[after], after)[1]
            < _instant(arguments[before], before)[1] - timedelta(seconds=1)
            for before, after in _RANGES
            if before in arguments and after in arguments
        )

    def validated(arguments: dict[str, Any]) -> dict[str, Any]:
        build_runs_page_input(**arguments)  # the SDK's own validation
        return arguments

    return st.fixed_dictionaries({}, optional=strategies).filter(valid_range).map(validated)
