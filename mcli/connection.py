"""Which MAPI endpoint and key to use, and the session and typed client for the running event loop."""

import asyncio
import concurrent.futures
import contextlib
import functools
import weakref
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from mcli.config import LOCAL_ENDPOINT, MCLIConfig, resolve_api_key, resolve_endpoint
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


_Cached = tuple[Credentials, AsyncSession, MAPIClient, AsyncGenerator[None, None]]
_sessions: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Cached]" = weakref.WeakKeyDictionary()
# Sessions replaced after a key change close in the background; keep them referenced until they have.
_closing: "set[asyncio.Task[None]]" = set()


def credentials() -> Credentials:
    """Resolve the endpoint and key now; fails at once, with no network, when no key is configured or the
    endpoint cannot be a MAPI URL."""
    load = functools.cache(MCLIConfig.load)  # the config file read at most once, and only if it is needed
    endpoint = resolve_endpoint(load)
    if endpoint == LOCAL_ENDPOINT:
        return _local_daemon_credentials()
    check_endpoint(endpoint)
    api_key = resolve_api_key(load)
    if not api_key:
        raise MCLIConfigError(NO_KEY_MESSAGE)
    return Credentials(endpoint, api_key)


def check_endpoint(endpoint: str) -> None:
    """Raise MCLIConfigError, naming MOSAICML_API_ENDPOINT and the fix, unless `endpoint` is an http(s) URL with a
    path (MAPI serves GraphQL at `/graphql`)."""
    example = "https://api.mosaicml.com/graphql, or http://127.0.0.1:8642/graphql for `mcli local serve`"
    try:
        parts = urlsplit(endpoint)
        parts.port  # noqa: B018 -- urlsplit checks the port only when it is read
    except ValueError as exc:  # "Invalid IPv6 URL", "Port out of range 0-65535"
        raise MCLIConfigError(
            f"MOSAICML_API_ENDPOINT={endpoint!r} is not a valid URL ({exc}); set it to a full URL such as {example}"
        ) from None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise MCLIConfigError(
            f"MOSAICML_API_ENDPOINT={endpoint!r} is not an http:// or https:// URL; set it to a full URL such as "
            f"{example}"
        )
    if parts.path in ("", "/"):
        fixed = urlunsplit(parts._replace(path="/graphql"))
        raise MCLIConfigError(
            f"MOSAICML_API_ENDPOINT={endpoint!r} has no path; MAPI answers at /graphql, so set it to {fixed!r}"
        )


def _local_daemon_credentials() -> Credentials:
    """MOSAICML_API_ENDPOINT=local: the user's local daemon, started on first use; it outlives this process."""
    from mcli.local import LocalDaemonError, ensure_daemon

    try:
        daemon = ensure_daemon()
    except (LocalDaemonError, OSError) as exc:
        raise MCLIConfigError(f"MOSAICML_API_ENDPOINT=local: {exc}") from exc
    return Credentials(daemon.endpoint, daemon.api_key)


def client(wanted: Credentials) -> MAPIClient:
    """The typed client for `wanted` on the running loop; a new session when the credentials changed.

    A session lives as long as its loop. It is closed when the loop shuts down its async generators, which
    `asyncio.run(...)` does before closing the loop: no "Unclosed" warning, no `async with` needed, and no task
    left pending for code that waits on `asyncio.all_tasks()`.
    """
    loop = asyncio.get_running_loop()
    cached = _sessions.get(loop)
    if cached is not None and cached[0] == wanted:
        return cached[2]
    if cached is not None:
        closing = loop.create_task(cached[3].aclose())  # the replaced session's closer runs now
        _closing.add(closing)
        closing.add_done_callback(_closing.discard)
    session = AsyncSession(wanted.endpoint, wanted.api_key)
    typed = MAPIClient(session)
    _sessions[loop] = (wanted, session, typed, _closer_for(session))
    return typed


async def _close_at_shutdown(session: AsyncSession) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        await session.close()


def _closer_for(session: AsyncSession) -> AsyncGenerator[None, None]:
    """An async generator started on this loop (so the loop tracks it) whose `aclose()` closes `session`."""
    closer = _close_at_shutdown(session)
    step = closer.__anext__()  # registers it with the running loop's async generator hooks
    try:
        step.send(None)  # runs to the `yield` without suspending
    except StopIteration:
        pass
    return closer


async def close_sessions() -> None:
    """Close this loop's connections now (later calls on the loop open new ones)."""
    cached = _sessions.pop(asyncio.get_running_loop(), None)
    if cached is not None:
        await cached[3].aclose()


background.at_exit(close_sessions)


def close_background_session() -> None:
    """Close and forget the sync API's cached session, waiting at most two seconds.

    `mcli.testing` calls it when a test stops pointing the SDK at its server (at exit, the loop does it).
    """
    shared = background.started_loop()
    if shared is not None:
        with contextlib.suppress(concurrent.futures.TimeoutError, RuntimeError):
            asyncio.run_coroutine_threadsafe(close_sessions(), shared).result(timeout=2)
