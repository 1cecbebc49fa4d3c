"""Running the local server: bootstrap of the data dir, the uvicorn loop, and the in-process `LocalServer`.

ariadne and uvicorn are imported inside functions so that `import mcli.local` stays light.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from mcli.local.asgi import RequestStats
from mcli.local.limits import DEFAULT_MAX_CONCURRENT_RUNS, DEFAULT_MAX_LOG_BYTES, Limits
from mcli.local.paths import DB_NAME, DEFAULT_DATA_DIR
from mcli.local.placement import Capacity
from mcli.local.process import RunUser
from mcli.local.store import Store, new_api_key

if TYPE_CHECKING:
    from mcli.local.asgi import MapiApp
    from mcli.local.engine import Engine

DEFAULT_EMAIL = "local@mcli.local"
LOCK_NAME = "server.lock"
# Where versions before keys were stored hashed only kept the default key in plain text; removed on start.
LEGACY_KEY_FILE = "api_key"


@dataclass
class Bootstrap:
    # The default user's key when this start created it or was given it; None otherwise (only hashes are
    # stored, so an existing key cannot be shown again: `add-user` makes a new one).
    api_key: str | None
    created: bool


def secure_data_dir(data_dir: Path) -> None:
    """Make `data_dir` readable by its owner only: 0700 for it and every directory in it, 0600 for files.

    Applied on every start, so a data dir made by an older version or by hand gets the same modes.
    """
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(data_dir, 0o700)
    for root, dirs, files in os.walk(data_dir):
        for name in dirs:
            with contextlib.suppress(FileNotFoundError):
                os.chmod(os.path.join(root, name), 0o700, follow_symlinks=False)
        for name in files:
            path = os.path.join(root, name)
            with contextlib.suppress(FileNotFoundError):
                if not os.path.islink(path):
                    os.chmod(path, 0o600)


def open_store(data_dir: Path) -> Store:
    secure_data_dir(data_dir)
    store = Store(data_dir / DB_NAME)
    os.chmod(data_dir / DB_NAME, 0o600)  # SQLite creates it with the umask's mode; its -wal/-shm follow it
    return store


def bootstrap(data_dir: Path, api_key: str | None) -> Bootstrap:
    """Create the default user on first start; register `api_key` for it (idempotent). Keys are stored hashed."""
    store = open_store(data_dir)
    try:
        legacy = data_dir / LEGACY_KEY_FILE
        if legacy.exists():
            legacy.unlink()  # its key's hash is already registered: it keeps working
        user = store.get_user_by_email(DEFAULT_EMAIL)
        created = user is None
        if user is None:
            user = store.create_user(DEFAULT_EMAIL)
            key = api_key or new_api_key()
            store.add_api_key(user.id, key)
            return Bootstrap(key, created)
        if api_key:
            store.add_api_key(user.id, api_key)
        return Bootstrap(api_key, created)
    finally:
        store.close()


def add_user(data_dir: Path, email: str) -> str:
    """A new API key for `email`, creating the user if needed. Only its hash is stored: show it now."""
    store = open_store(data_dir)
    try:
        user = store.get_user_by_email(email) or store.create_user(email)
        key = new_api_key()
        store.add_api_key(user.id, key)
        return key
    finally:
        store.close()


def bind_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP (not 0) makes asyncio set TCP_NODELAY on accepted connections; without it every kept-alive
    # response waits ~40 ms on Nagle against the client's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    # A deep backlog so a burst of connections (see `connections.py` for how floods are shed) waits, not fails.
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


@dataclass
class ServeOptions:
    data_dir: Path
    capacity: Capacity
    # None means no limit; the default keeps a flood of creates from starting thousands of processes at once.
    max_concurrent_runs: int | None = DEFAULT_MAX_CONCURRENT_RUNS
    stop_grace_seconds: float = 5.0
    keepalive_seconds: float = 12.0
    stats: RequestStats = field(default_factory=RequestStats)
    executor: str = "local"  # or "ray"
    ray_address: str | None = None
    limits: Limits = field(default_factory=Limits)
    # A key for the default user valid only while this server runs (never stored): the embedded server's.
    session_key: str | None = None
    max_log_bytes: int | None = DEFAULT_MAX_LOG_BYTES  # per rank; None means no limit
    run_as: RunUser | None = None  # the account runs execute as (the server must run as root)


class DataDirInUse(RuntimeError):
    """Another server is serving from the same data dir."""


@contextlib.contextmanager
def data_dir_lock(data_dir: Path) -> Iterator[None]:
    """One server per data dir: a second one would take the first one's runs for leftovers and kill them.

    An flock, so the kernel releases it when the server exits, however it exits; its file names the holder.
    """
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(data_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise DataDirInUse(
                f"another mcli local server (pid {holder}) is serving from {data_dir}; stop it first (if it is "
                "the local daemon of MOSAICML_API_ENDPOINT=local: `mcli local stop`), or use another --data-dir"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)


async def serve(
    options: ServeOptions,
    sock: socket.socket,
    on_ready: Callable[[Any, Engine], None],
) -> None:
    """Serve until the uvicorn server handed to `on_ready` is told to exit; then stop every run."""
    with data_dir_lock(options.data_dir):
        await _serve_locked(options, sock, on_ready)


async def _serve_locked(
    options: ServeOptions,
    sock: socket.socket,
    on_ready: Callable[[Any, Engine], None],
) -> None:
    import uvicorn

    from mcli.local.asgi import MapiApp
    from mcli.local.connections import ConnectionGuard, guarded_http_protocol
    from mcli.local.engine import Engine
    from mcli.local.executors import create_executor
    from mcli.local.schema import build_schema
    from mcli.local.store import hash_key

    executor = create_executor(
        options.executor, options.capacity, options.data_dir, options.ray_address, run_as=options.run_as
    )
    store = open_store(options.data_dir)
    engine = Engine(
        store,
        options.data_dir,
        executor,
        options.max_concurrent_runs,
        options.stop_grace_seconds,
        max_log_bytes=options.max_log_bytes,
        run_as=options.run_as,
    )
    try:
        engine.reconcile()
        session_keys = {}
        default_user = store.get_user_by_email(DEFAULT_EMAIL)
        if options.session_key is not None and default_user is not None:
            session_keys[hash_key(options.session_key)] = default_user
        guard = ConnectionGuard(_fit_open_file_limit(options.limits))
        app = MapiApp(
            build_schema(), engine, options.keepalive_seconds, options.stats, options.limits, session_keys, guard
        )
        config = uvicorn.Config(
            app,
            lifespan="off",
            log_level="warning",
            log_config=None,  # leave the host application's logging configuration alone
            http=guarded_http_protocol(guard),
            ws="websockets-sansio",
            ws_max_size=options.limits.max_request_bytes,
            ws_ping_interval=20.0,
            ws_ping_timeout=20.0,
            # Requests in flight get this long to finish, while the runs are being stopped (see below).
            timeout_graceful_shutdown=1,
        )
        server = _make_server_class(app)(config)
        on_ready(server, engine)
        await server.serve(sockets=[sock])
    finally:
        await engine.shutdown()
        store.close()


def _make_server_class(app: MapiApp) -> Any:
    import uvicorn

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            # Signals are handled by our callers: uvicorn's handler re-raises them after serving, which
            # would kill the process before the runs are stopped.
            yield

        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            # Stop the runs while the connections drain, not after: the whole shutdown then takes about the
            # runs' stop grace, however busy the server was.
            app.closing = True
            runs = asyncio.create_task(app.engine.shutdown())
            try:
                await super().shutdown(sockets)
            finally:
                await runs

    return Server


# File descriptors kept free for everything but client connections: the database, run pipes and logs.
_RESERVED_FDS = 512


def _fit_open_file_limit(limits: Limits) -> Limits:
    """`limits` with a connection cap the process's open-file limit can hold (raising the soft limit to the hard
    one first): running out of descriptors would stop the server from accepting anyone at all."""
    import dataclasses
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = limits.max_connections + _RESERVED_FDS
    if soft != resource.RLIM_INFINITY and soft < wanted:
        raised = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft != resource.RLIM_INFINITY and soft < wanted:
        return dataclasses.replace(limits, max_connections=max(16, soft - _RESERVED_FDS))
    return limits


def run_forever(options: ServeOptions, host: str, port: int, on_listening: Callable[[str], None]) -> None:
    """Serve in the current (main) thread until SIGINT or SIGTERM.

    The first signal stops accepting work and stops the active runs gracefully (SIGTERM, then SIGKILL after
    the grace period), saying how many; a second one kills them at once.
    """
    sock = bind_socket(host, port)

    async def main() -> None:
        loop = asyncio.get_running_loop()

        def ready(server: Any, engine: Engine) -> None:
            signals = 0

            def on_signal() -> None:
                nonlocal signals
                signals += 1
                if signals == 1:
                    count = engine.active_run_count()
                    if count:
                        grace = options.stop_grace_seconds
                        print(
                            f"\nStopping the server and its {count} active run{'s' if count != 1 else ''} "
                            f"(each gets {grace:g} s to exit). Press Ctrl-C again to kill them now.",
                            file=sys.stderr,
                            flush=True,
                        )
                    else:
                        print("\nStopping the server.", file=sys.stderr, flush=True)
                    server.should_exit = True
                else:
                    print("Killing the active runs now.", file=sys.stderr, flush=True)
                    engine.kill_active_runs()
                    server.force_exit = True

            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, on_signal)
            on_listening(endpoint_for(sock))

        await serve(options, sock, ready)

    try:
        asyncio.run(main())
    finally:
        sock.close()


def endpoint_for(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/graphql"


class LocalServer:
    """An in-process local MAPI server on a background thread with its own event loop.

    Use as a context manager, or call `start()` and `stop()`. `endpoint` is the http URL of `/graphql`
    and `api_key` the default user's key: the one given, or a new one that is valid only while this server runs
    (the data dir keeps key hashes only).
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
        *,
        cluster_name: str = "local",
        nodes: int = 2,
        gpus_per_node: int = 8,
        gpu_type: str = "none",
        max_concurrent_runs: int | None = DEFAULT_MAX_CONCURRENT_RUNS,
        stop_grace_seconds: float = 5.0,
        keepalive_seconds: float = 12.0,
        limits: Limits | None = None,
        executor: str = "local",
        ray_address: str | None = None,
        max_log_bytes: int | None = DEFAULT_MAX_LOG_BYTES,
        run_as: str | None = None,
    ) -> None:
        self.data_dir = Path(data_dir or DEFAULT_DATA_DIR).expanduser()
        self.host = host
        self.port = port
        self._requested_key = api_key
        self.api_key: str | None = None
        self.options = ServeOptions(
            data_dir=self.data_dir,
            capacity=Capacity(cluster_name, nodes, gpus_per_node, gpu_type),
            max_concurrent_runs=max_concurrent_runs,
            stop_grace_seconds=stop_grace_seconds,
            keepalive_seconds=keepalive_seconds,
            limits=limits or Limits(),
            executor=executor,
            ray_address=ray_address,
            max_log_bytes=max_log_bytes,
            run_as=RunUser.lookup(run_as) if run_as is not None else None,
        )
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: Any = None
        self._sock: socket.socket | None = None
        self._endpoint: str | None = None
        self._error: BaseException | None = None

    @property
    def stats(self) -> RequestStats:
        """Requests this instance has received (HTTP requests, websocket connections and messages)."""
        return self.options.stats

    @property
    def endpoint(self) -> str:
        if self._endpoint is None:
            raise RuntimeError("LocalServer is not started")
        return self._endpoint

    def start(self) -> LocalServer:
        if self._thread is not None:
            return self
        self.api_key = bootstrap(self.data_dir, self._requested_key).api_key
        if self.api_key is None:
            # Keys are stored hashed, so an existing one cannot be read back: use one valid for this process.
            self.api_key = self.options.session_key = new_api_key()
        self._sock = bind_socket(self.host, self.port)
        self._endpoint = endpoint_for(self._sock)
        ready = threading.Event()

        def on_ready(server: Any, engine: Engine) -> None:
            self._server = server
            self._loop = asyncio.get_running_loop()

        def run() -> None:
            assert self._sock is not None
            try:
                asyncio.run(serve(self.options, self._sock, on_ready))
            except BaseException as exc:
                self._error = exc
            finally:
                ready.set()

        self._thread = threading.Thread(target=run, name="mcli-local-server", daemon=True)
        self._thread.start()
        while not ready.is_set():
            if self._server is not None and self._server.started:
                break
            ready.wait(0.01)
        if self._error is not None:
            self._thread.join()
            self._thread = None
            raise RuntimeError("the local server failed to start") from self._error
        return self

    def stop(self) -> None:
        if self._thread is None:
            return
        if self._loop is not None and self._server is not None:
            server = self._server
            with contextlib.suppress(RuntimeError):  # the loop may already be closed
                self._loop.call_soon_threadsafe(setattr, server, "should_exit", True)
        self._thread.join()
        self._thread = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
