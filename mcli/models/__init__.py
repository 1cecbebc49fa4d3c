"""The SDK's data models: Run, RunConfig and RunStatus.

`run` (Run, with `run_actions` its API methods), `run_status`, `cluster`; `run_config` (RunConfig) with its
`compute`/`scheduling` sections in `config_sections`, the wire translation in `run_input`, and the error rewriting
in `config_errors` and `yaml_source`.
"""

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
