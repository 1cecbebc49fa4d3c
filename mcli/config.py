"""The official client's config file, and how the API key and endpoint are resolved.

Paths and environment variables are read at call time, so changing them (e.g. in tests) takes effect at once.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from mcli.core.errors import InvalidArgumentError, MCLIConfigError

API_KEY_ENV = "MOSAICML_API_KEY"
ENDPOINT_ENV = "MOSAICML_API_ENDPOINT"
MODE_ENV = "MCLI_MODE"
CONFIG_PATH_ENV = "MCLI_CONFIG_PATH"
CONFIG_DIR_ENV = "MCLI_CONFIG_DIR"

DEFAULT_ENDPOINT = "https://api.mosaicml.com/graphql"
# The endpoint value that selects the user's local daemon (started on first use) instead of a URL.
LOCAL_ENDPOINT = "local"

_MODE_ENDPOINTS = {
    "PROD": DEFAULT_ENDPOINT,
    "STAGING": "https://staging.api.mosaicml.com/graphql",
    "DEV": "https://dev.api.mosaicml.com/graphql",
    "LOCAL": "http://localhost:3001/graphql",
    "DBX_AWS_STAGING": "https://oregon.staging.cloud.databricks.com/api/2.0/genai-mapi/graphql",
    "DBX_AZURE_STAGING": "https://westus.staging.azuredatabricks.net/api/2.0/genai-mapi/graphql",
}
# The official client keeps these modes' keys under `mcloud_envs`, so a production key is never sent to them.
_MODES_WITH_OWN_KEY = ("DEV", "LOCAL", "STAGING")

_API_KEY_FIELD = "MOSAICML_API_KEY"
_MODE_KEYS_FIELD = "mcloud_envs"
# Saved beside the key under the environment variable's name. The official client (0.8.3) reads its config
# with `.get` and ignores this key; it takes its endpoint from MOSAICML_API_ENDPOINT only.
_ENDPOINT_FIELD = "MOSAICML_API_ENDPOINT"


def config_path() -> Path:
    """`$MCLI_CONFIG_PATH`, else `$MCLI_CONFIG_DIR/mcli_config`, else `~/.mosaic/mcli_config`."""
    if os.environ.get(CONFIG_PATH_ENV):
        return Path(os.environ[CONFIG_PATH_ENV]).expanduser()
    if os.environ.get(CONFIG_DIR_ENV):
        return Path(os.environ[CONFIG_DIR_ENV]).expanduser() / "mcli_config"
    return Path.home() / ".mosaic" / "mcli_config"


def current_mode() -> str:
    """`$MCLI_MODE`, upper-cased; PROD when unset."""
    return os.environ.get(MODE_ENV, "").strip().upper() or "PROD"


@dataclass
class MCLIConfig:
    """The config file's contents. Keys this SDK does not use are kept in `extra` and written back unchanged."""

    # Keys never appear in the repr (it ends up in logs and tracebacks).
    api_key: str | None = field(default=None, repr=False)
    mode_api_keys: dict[str, str] = field(default_factory=dict, repr=False)
    endpoint: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path | None = None) -> MCLIConfig:
        """Read the config file; a missing or empty file gives an empty config. Never writes."""
        path = path or config_path()
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return cls()
        import yaml  # only when there is a file to read: a cold call configured by environment skips it

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise MCLIConfigError(f"{path}: the config file is not valid YAML: {exc}") from None
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise MCLIConfigError(f"{path}: the config file must hold a mapping, got {type(data).__name__}")
        extra = dict(data)
        api_key = extra.pop(_API_KEY_FIELD, None)
        mode_keys = extra.pop(_MODE_KEYS_FIELD, None) or {}
        endpoint = extra.pop(_ENDPOINT_FIELD, None)
        if api_key is not None and not isinstance(api_key, str):
            raise MCLIConfigError(f"{path}: {_API_KEY_FIELD} must be a string")
        if endpoint is not None and not isinstance(endpoint, str):
            raise MCLIConfigError(f"{path}: {_ENDPOINT_FIELD} must be a string")
        if not isinstance(mode_keys, dict) or not all(isinstance(v, str) for v in mode_keys.values()):
            raise MCLIConfigError(f"{path}: {_MODE_KEYS_FIELD} must map mode names to API keys")
        return cls(
            api_key=api_key,
            mode_api_keys={str(k).upper(): v for k, v in mode_keys.items()},
            endpoint=endpoint or None,
            extra=extra,
        )

    def save(self, path: Path | None = None) -> Path:
        """Write the config atomically with mode 0600, creating its directory if needed; returns the path."""
        path = path or config_path()
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        data: dict[str, Any] = {}
        if self.api_key is not None:
            data[_API_KEY_FIELD] = self.api_key
        if self.mode_api_keys:
            data[_MODE_KEYS_FIELD] = dict(self.mode_api_keys)
        if self.endpoint is not None:
            data[_ENDPOINT_FIELD] = self.endpoint
        data.update(self.extra)
        import yaml

        text = "---\n" + (yaml.safe_dump(data, sort_keys=False, default_flow_style=False) if data else "")
        # mkstemp creates the file 0600, so the key is never readable by others, even briefly.
        fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.replace(temp_name, path)
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise
        os.chmod(path, 0o600)
        return path

    def api_key_for(self, mode: str) -> str | None:
        """The saved key for a mode: DEV, LOCAL and STAGING have their own; other modes use the main key."""
        mode = mode.upper()
        return self.mode_api_keys.get(mode) if mode in _MODES_WITH_OWN_KEY else self.api_key

    def set_api_key(self, api_key: str, mode: str) -> None:
        mode = mode.upper()
        if mode in _MODES_WITH_OWN_KEY:
            self.mode_api_keys[mode] = api_key
        else:
            self.api_key = api_key


def resolve_api_key(load: Callable[[], MCLIConfig] = MCLIConfig.load) -> str | None:
    """`$MOSAICML_API_KEY` if set and non-empty, else the config file's key for the current mode, else None.
    `load` reads the config file (a caller resolving more than one setting reads it once)."""
    return api_key_source(load)[0]


def api_key_source(load: Callable[[], MCLIConfig] = MCLIConfig.load) -> tuple[str | None, str]:
    """The API key (None if there is none) and where it came from: the variable's name, the config file's path,
    or "" when there is no key."""
    from_env = os.environ.get(API_KEY_ENV, "").strip()
    if from_env:
        return from_env, f"${API_KEY_ENV}"
    saved = load().api_key_for(current_mode())
    return saved, str(config_path()) if saved else ""


def resolve_endpoint(load: Callable[[], MCLIConfig] = MCLIConfig.load) -> str:
    """`$MOSAICML_API_ENDPOINT`, else the endpoint saved by `mcli set endpoint`, else the URL for `$MCLI_MODE`
    (unknown modes mean PROD). `load` as in `resolve_api_key`.

    `local` (any case) is returned as `"local"`: it selects the user's local daemon (`mcli.local.daemon`).
    """
    return endpoint_source(load)[0]


def endpoint_source(load: Callable[[], MCLIConfig] = MCLIConfig.load) -> tuple[str, str]:
    """The endpoint and where it came from: the variable's name, the config file's path, or `default`."""
    from_env = os.environ.get(ENDPOINT_ENV, "").strip()
    if from_env:
        return _normal_endpoint(from_env), f"${ENDPOINT_ENV}"
    saved = load().endpoint
    if saved:
        return _normal_endpoint(saved), str(config_path())
    return _MODE_ENDPOINTS.get(current_mode(), DEFAULT_ENDPOINT), "default"


def _normal_endpoint(value: str) -> str:
    value = value.strip()
    return LOCAL_ENDPOINT if value.lower() == LOCAL_ENDPOINT else value


def save_endpoint(endpoint: str | None) -> Path:
    """Save the endpoint (an http(s) URL, or `local` for the local daemon) in the config file; None forgets
    it. Returns the file's path."""
    if endpoint is not None:
        endpoint = _normal_endpoint(endpoint)
        parts = urlsplit(endpoint)
        if endpoint != LOCAL_ENDPOINT and (parts.scheme not in ("http", "https") or not parts.netloc):
            raise InvalidArgumentError(
                f"the endpoint must be an http:// or https:// URL (or `local`), got {endpoint!r}; "
                "for example http://127.0.0.1:8642/graphql"
            )
        if endpoint != LOCAL_ENDPOINT and parts.path in ("", "/"):
            fixed = urlunsplit(parts._replace(path="/graphql"))
            raise InvalidArgumentError(f"the endpoint {endpoint!r} has no path; MAPI answers at /graphql, so use {fixed!r}")
    config = MCLIConfig.load()
    config.endpoint = endpoint
    path = config.save()
    from_env = os.environ.get(ENDPOINT_ENV, "").strip()
    if from_env and endpoint is not None and _normal_endpoint(from_env) != endpoint:
        warnings.warn(
            f"the endpoint was saved to {path}, but ${ENDPOINT_ENV} is set and takes precedence over it",
            UserWarning,
            stacklevel=2,
        )
    return path


def save_api_key(api_key: str) -> Path:
    """Save the API key for the current mode in the config file; returns the file's path.

    It never prompts, so it works while `$MOSAICML_API_KEY` is set; that variable still takes precedence,
    which a warning points out.
    """
    if not isinstance(api_key, str) or not api_key.strip():
        raise InvalidArgumentError("api_key must be a non-empty string")
    api_key = api_key.strip()
    if any(char.isspace() or not char.isprintable() for char in api_key):
        raise InvalidArgumentError("api_key must not contain whitespace or control characters")
    config = MCLIConfig.load()
    config.set_api_key(api_key, current_mode())
    path = config.save()
    from_env = os.environ.get(API_KEY_ENV, "").strip()
    if from_env and from_env != api_key:
        warnings.warn(
            f"the key was saved to {path}, but ${API_KEY_ENV} is set and takes precedence over it",
            UserWarning,
            stacklevel=2,
        )
    return path


def initialize(api_key: str | None = None) -> Path:
    """Create the config file if it is missing, then save `api_key` if given; returns the file's path."""
    path = config_path()
    if not path.exists():
        MCLIConfig().save(path)
    if api_key is not None:
        save_api_key(api_key)
    return path
