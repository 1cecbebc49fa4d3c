"""The SDK's data models: Run, RunConfig and RunStatus."""

from mcli.graphql.generated.enums import RunType
from mcli.models.config_sections import ComputeConfig, SchedulingConfig
from mcli.models.run import LifecycleEntry, Resumption, Run, RunEvent, RunNode
from mcli.models.run_config import RunConfig, RunConfigError
from mcli.models.run_status import RunStatus

__all__ = [
    "ComputeConfig",
    "LifecycleEntry",
    "Resumption",
    "Run",
    "RunConfig",
    "RunConfigError",
    "RunEvent",
    "RunNode",
    "RunStatus",
    "RunType",
    "SchedulingConfig",
]
