"""Care for the API key on the client: never over plain http to another host, never in a repr."""

from __future__ import annotations

import ipaddress
import os
from urllib.parse import urlsplit

from mcli.core.errors import MCLIConfigError

ALLOW_INSECURE_ENV = "MOSAICML_ALLOW_INSECURE"


def mask(api_key: str | None) -> str:
    """How a key appears in reprs and messages: never any of its characters."""
    return "None" if api_key is None else f"'<redacted, {len(api_key)} chars>'"


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_transport_security(endpoint: str) -> None:
    """Refuse to send a key over plain http:// to a host other than this machine, unless the user opted in."""
    parts = urlsplit(endpoint)
    if parts.scheme.lower() not in ("http", "ws") or _is_loopback(parts.hostname or ""):
        return
    if os.environ.get(ALLOW_INSECURE_ENV, "").strip().lower() in ("1", "true", "yes"):
        return
    raise MCLIConfigError(
        f"Refusing to send the API key over plain {parts.scheme}:// to {parts.hostname}: anyone on the network "
        f"could read it. Use an https:// endpoint, or set {ALLOW_INSECURE_ENV}=1 to send it anyway."
    )
