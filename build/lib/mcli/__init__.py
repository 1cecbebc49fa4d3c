"""mcli: a typed SDK for training runs on the MosaicML platform API, with a local MAPI server.

`import mcli` is cheap: the SDK's names are loaded on first use.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mcli.sdk import *  # noqa: F403

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    sdk = import_module("mcli.sdk")
    if name in sdk.__all__:
        return getattr(sdk, name)
    raise AttributeError(f"module 'mcli' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *import_module("mcli.sdk").__all__])
