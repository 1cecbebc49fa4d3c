"""The `compute` and `scheduling` sections of a RunConfig: pydantic models that read like the seed's dicts."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Strict: a YAML typo such as `gpus: "8x"` or `preemptible: "no"` must fail loudly instead of being coerced.
_STRICT = ConfigDict(
    extra="forbid", strict=True, populate_by_name=True, validate_assignment=True, defer_build=True
)


def gpu_type_as_str(value: Any) -> Any:
    # YAML reads `gpu_type: 3090` as an int; the official client sends it as a string too.
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class _ReadsLikeADict(BaseModel):
    """`section["key"]`, `section.get("key")`, `"key" in section` and `dict(section.items())`, as the seed's dicts
    read; keys are field names or the API's camelCase aliases, and only keys that were set are listed."""

    def _field_for(self, key: str) -> str:
        for name, info in type(self).model_fields.items():
            if key in (name, info.alias):
                return name
        raise KeyError(key)

    def __getitem__(self, key: str) -> Any:
        value = getattr(self, self._field_for(key))
        if value is None:
            raise KeyError(key)
        return value

    def __setitem__(self, key: str, value: Any) -> None:
        setattr(self, self._field_for(key), value)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key) is not None

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    def keys(self) -> list[str]:
        return [name for name in type(self).model_fields if getattr(self, name) is not None]

    def items(self) -> list[tuple[str, Any]]:
        return [(name, getattr(self, name)) for name in self.keys()]

    def to_api(self) -> dict[str, Any]:
        """The camelCase object the API expects, without unset keys."""
        return {
            (info.alias or name): getattr(self, name)
            for name, info in type(self).model_fields.items()
            if getattr(self, name) is not None
        }


class ComputeConfig(_ReadsLikeADict):
    """Where and on what a run executes. Keys may be written in snake_case or the API's camelCase.

    Attributes:
        cluster: Cluster to use (optional if you only have one).
        gpus: GPUs in all.
        gpu_type: GPU type (optional if the cluster has only one).
        nodes: Nodes to spread the GPUs over.
        instance: Instance type name.
        cpus: CPUs in all.
        node_names: Run on these nodes only.
    """

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
        return gpu_type_as_str(value)

    def to_api(self) -> dict[str, Any]:
        """The camelCase `compute` object, without unset keys."""
        return {
            key: list(value) if isinstance(value, list) else value for key, value in super().to_api().items()
        }


class SchedulingConfig(_ReadsLikeADict):
    """How a run is scheduled; reads like the seed's dict (`config.scheduling["priority"]`).

    Attributes:
        priority: Priority label (e.g. "low", "high").
        preemptible: Whether the run may be preempted.
        max_retries: Retries after a failure.
        retry_on_system_failure: Retry when the failure is the system's, not the run's.
        max_duration: Hours after which the run is stopped.
    """

    model_config = _STRICT

    priority: str | None = None
    preemptible: bool | None = None
    max_retries: int | None = Field(default=None, ge=0, alias="maxRetries")
    retry_on_system_failure: bool | None = Field(default=None, alias="retryOnSystemFailure")
    max_duration: float | None = Field(default=None, gt=0, allow_inf_nan=False, alias="maxDuration")


def known_keys(model: type[BaseModel]) -> dict[str, str]:
    """Every accepted spelling (field name and alias) -> field name."""
    keys: dict[str, str] = {}
    for name, field in model.model_fields.items():
        keys[name] = name
        if field.alias:
            keys[field.alias] = name
    return keys
