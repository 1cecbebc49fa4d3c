"""Which MAPI endpoint and key to use, and the session and typed client for the running event loop."""

import asyncio
import atexit
import concurrent.futures
import contextlib
import weakref
from dataclasses import dataclass

from mcli.config import LOCAL_ENDPOINT, resolve_api_key, resolve_endpoint
from mcli.core import loop as background
from mcli.core.errors import MCLIConfigError
from mcli.core.keys import mask
from mcli.core.session import AsyncSession
from mcli.graphql.generated.client import MAPIClient

NO_KEY_MESSAGE = (
    "No API key is configured. Set one with `mcli set api-key KEY` or mcli.set_api_key(KEY), or set the "
    "MOSAICML_API_KEY environment variable. To use a local server instead, set MOSAICML_API_ENDPOINT=local."
)


@dataclass(frozen=True)
class Credentials:
    endpoint: str
    api_key: str

    def __repr__(self) -> str:
        return f"Credentials(endpoint={self.endpoint!r}, api_key={mask(self.api_key)})"


_sessions: (
    "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[Credentials, AsyncSession, MAPIClient]]"
)
_sessions = weakref.WeakKeyDictionary()
# Sessions replaced after a key change close in the background; keep them referenced until they have.
_closing: "set[asyncio.Task[None]]" = set()


def credentials() -> Credentials:
    """Resolve the endpoint and key now; fails at once, with no network, when no key is configured."""
    endpoint = resolve_endpoint()
    if endpoint == LOCAL_ENDPOINT:
        return _local_daemon_credentials()
    api_key = resolve_api_key()
    if not api_key:
        raise MCLIConfigError(NO_KEY_MESSAGE)
    return Credentials(endpoint, api_key)


def _local_daemon_credentials() -> Credentials:
    """MOSAICML_API_ENDPOINT=local: the user's local daemon, started on first use; it outlives this process."""
    from mcli.local import LocalDaemonError, ensure_daemon

    try:
        daemon = ensure_daemon()
    except (LocalDaemonError, OSError) as exc:
        raise MCLIConfigError(f"MOSAICML_API_ENDPOINT=local: {exc}") from exc
    return Credentials(daemon.endpoint, daemon.api_key)


def client(wanted: Credentials) -> MAPIClient:
    """The typed client for `wanted` on the running loop; a new session when the credentials changed."""
    loop = asyncio.get_running_loop()
    cached = _sessions.get(loop)
    if cached is not None and cached[0] == wanted:
        return cached[2]
    if cached is not None:
        closing = loop.create_task(cached[1].close())
        _closing.add(closing)
        closing.add_done_callback(_closing.discard)
    session = AsyncSession(wanted.endpoint, wanted.api_key)
    typed = MAPIClient(session)
    _sessions[loop] = (wanted, session, typed)
    return typed


@atexit.register
def close_background_session() -> None:
    """Close and forget the sync API's cached session, waiting at most two seconds.

    Runs at exit; `mcli.testing` calls it when a test stops pointing the SDK at its server.
    """
    shared = background.started_loop()
    cached = _sessions.pop(shared, None) if shared is not None else None
    if cached is not None:
        with contextlib.suppress(concurrent.futures.TimeoutError, RuntimeError):
            background.submit(cached[1].close()).result(timeout=2)
