"""`mcli local serve|add-user|status|stop`, also reachable as `python -m mcli.local ...`.

This module owns the commands' arguments, help and examples; `mcli` mounts them under `mcli local`.
"""

from __future__ import annotations

import argparse
import dataclasses
import errno
import ipaddress
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from mcli.cli.common import CLIError, HelpFormatter, non_negative, positive
from mcli.local.daemon import API_KEY_ENV, LocalDaemonError, active_run_names, read_record, stop_daemon
from mcli.local.executors import EXECUTORS
from mcli.local.limits import DEFAULT_MAX_CONCURRENT_RUNS, DEFAULT_MAX_LOG_BYTES, Limits
from mcli.local.paths import DEFAULT_DATA_DIR

# The server (Ariadne, Starlette, SQLite, the executors) is imported by the commands that need it, not here:
# `mcli` builds this parser for every command, and a cold `mcli run` or `mcli get runs` must not pay for it.

MIN_KEY_LENGTH = 16

DEFAULT_PORT = 8642
LOG_LEVELS = ("debug", "info", "warning", "error")

_SERVE_EXAMPLES = f"""\
examples:
  mcli local serve --api-key my-local-key
  mcli local serve --port {DEFAULT_PORT + 1} --nodes 4 --gpu-type h100 --log-level warning

It prints the two `export` lines that point mcli (or the official client) at it."""

_ADD_USER_EXAMPLES = """\
example:
  mcli local add-user alice@example.com     # prints alice's new API key"""


def register(subparsers: Any, parents: list[argparse.ArgumentParser] | None = None) -> None:
    """Add `serve` and `add-user` to an argparse subparsers object; `parents` adds the host CLI's options."""
    common: dict[str, Any] = {
        "parents": parents or [],
        "formatter_class": HelpFormatter,
    }
    serve = subparsers.add_parser(
        "serve",
        help="Run a local MAPI-compatible server",
        description="Run a local MAPI-compatible server: runs are local processes, one per node rank.",
        epilog=_SERVE_EXAMPLES,
        **common,
    )
    serve.add_argument(
        "--host", default="127.0.0.1", metavar="ADDRESS", help="address to listen on (default: %(default)s)"
    )
    serve.add_argument(
        "--port",
        type=non_negative,
        default=DEFAULT_PORT,
        metavar="PORT",
        help="port to listen on (default: %(default)s)",
    )
    serve.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA_DIR,
        metavar="DIR",
        help="where runs, logs and API keys are kept (default: %(default)s)",
    )
    serve.add_argument(
        "--api-key",
        default=os.environ.get(API_KEY_ENV) or None,
        type=_api_key,
        metavar="KEY",
        help=f"also accept this API key (at least {MIN_KEY_LENGTH} characters) for the default user "
        f"local@mcli.local (default: ${API_KEY_ENV}, which, unlike an argument, ps does not show)",
    )
    serve.add_argument(
        "--cluster-name",
        default="local",
        metavar="NAME",
        help="the cluster name runs report (default: %(default)s)",
    )
    serve.add_argument(
        "--nodes",
        type=positive,
        default=2,
        metavar="N",
        help="nodes in the local cluster (default: %(default)s)",
    )
    serve.add_argument(
        "--gpus-per-node",
        type=non_negative,
        default=8,
        metavar="N",
        help="GPU slots per node that runs can request (default: %(default)s)",
    )
    serve.add_argument(
        "--gpu-type",
        default="none",
        metavar="TYPE",
        help="the GPU type runs report, e.g. a100_80gb (default: %(default)s: processes run on the CPU)",
    )
    serve.add_argument(
        "--max-concurrent-runs",
        type=positive,
        default=DEFAULT_MAX_CONCURRENT_RUNS,
        metavar="N",
        help="queue runs beyond N active ones, and beyond what the cluster's nodes and GPUs hold "
        "(default: %(default)s)",
    )
    serve.add_argument(
        "--stop-grace-seconds",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="how long a stopped run gets between SIGTERM and SIGKILL (default: %(default)s)",
    )
    serve.add_argument(
        "--max-log-bytes",
        type=positive,
        default=DEFAULT_MAX_LOG_BYTES,
        metavar="BYTES",
        help="cut each rank's log at this size, with a marker line saying so (default: %(default)s, 10 GiB)",
    )
    serve.add_argument(
        "--run-as",
        metavar="USER",
        help="run commands as this user, who cannot read the data dir (the server must run as root; default: "
        "the server's own user, whose runs can read everything the server can)",
    )
    serve.add_argument(
        "--max-request-bytes",
        type=positive,
        default=Limits.max_request_bytes,
        metavar="BYTES",
        help="largest request body or websocket message accepted; larger gets 413 (default: %(default)s)",
    )
    serve.add_argument(
        "--executor",
        choices=EXECUTORS,
        default="local",
        help="local: runs are processes on this machine; ray: runs are actors on a Ray cluster, one node rank "
        "per Ray node (needs the `ray` extra) (default: %(default)s)",
    )
    serve.add_argument(
        "--ray-address",
        metavar="ADDRESS",
        help="with --executor ray: the cluster's HEAD:6379, as `ray start --head` prints it, or auto",
    )
    serve.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        default="info",
        metavar="LEVEL",
        help="debug, info (one line per request), warning or error (default: %(default)s)",
    )
    # The local daemon's launcher learns the pid at once and the endpoint once listening through this pipe.
    serve.add_argument("--ready-fd", type=int, default=None, help=argparse.SUPPRESS)
    serve.set_defaults(func=_serve)

    user = subparsers.add_parser(
        "add-user",
        help="Create an API key for a (new) user",
        description="Create a user if needed and print a new API key for them.",
        epilog=_ADD_USER_EXAMPLES,
        **common,
    )
    user.add_argument("email", help="the user's email address")
    user.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA_DIR,
        metavar="DIR",
        help="the server's data dir (default: %(default)s)",
    )
    user.set_defaults(func=_add_user)

    status = subparsers.add_parser(
        "status",
        help="Show the local daemon that MOSAICML_API_ENDPOINT=local uses",
        description="Show whether the local daemon runs (exit 0) or not (exit 1): its endpoint, data dir, log, "
        "uptime and active runs. It never starts one.",
        epilog=_STATUS_EXAMPLES,
        **common,
    )
    status.set_defaults(func=_status)

    stop = subparsers.add_parser(
        "stop",
        help="Stop the local daemon that MOSAICML_API_ENDPOINT=local uses",
        description="Stop the local daemon. It refuses while runs are active, unless --force, which stops them "
        "(SIGTERM, then SIGKILL after the grace period). The next use of MOSAICML_API_ENDPOINT=local starts a "
        "new one.",
        epilog=_STOP_EXAMPLES,
        **common,
    )
    stop.add_argument("--force", action="store_true", help="stop the active runs too")
    stop.set_defaults(func=_stop)


_STATUS_EXAMPLES = """\
example:
  mcli local status     # pid, uptime, endpoint, data dir, log, active runs"""

_STOP_EXAMPLES = """\
examples:
  mcli local stop            # refuses while runs are active
  mcli local stop --force    # stops the active runs too"""


def _api_key(text: str) -> str:
    key = text.strip()
    if len(key) < MIN_KEY_LENGTH:
        raise argparse.ArgumentTypeError(
            f"must be at least {MIN_KEY_LENGTH} characters (a short key is easy to guess); "
            "leave it out to have one generated"
        )
    if any(char.isspace() or not char.isprintable() for char in key):
        raise argparse.ArgumentTypeError("must not contain whitespace or control characters")
    return key


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _configure_logging(level: str) -> None:
    """The server's messages (one line per request at info) go to stderr; the startup banner to stdout."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", datefmt="%H:%M:%S"))
    logger = logging.getLogger("mcli.local")
    logger.setLevel(level.upper())
    logger.addHandler(handler)


def _serve(args: argparse.Namespace) -> int:
    from mcli.local.executors.base import ExecutorUnavailable
    from mcli.local.placement import Capacity
    from mcli.local.process import RunUser
    from mcli.local.server import DEFAULT_EMAIL, DataDirInUse, ServeOptions, bootstrap, run_forever

    if args.ready_fd is not None:
        os.write(args.ready_fd, f"{os.getpid()}\n".encode())
    # The runs inherit this environment: the key is not theirs. Nor is it printed (the output may be a log file).
    key_from_env = args.api_key is not None and args.api_key == os.environ.pop(API_KEY_ENV, None)
    data_dir = args.data_dir.expanduser()
    _configure_logging(args.log_level)
    if not _is_loopback(args.host):
        print(
            f"warning: listening on {args.host} lets every host that can reach this machine send API keys to "
            "this server over plain http; keep it on 127.0.0.1, or put it behind an https proxy",
            file=sys.stderr,
            flush=True,
        )
    run_as = None
    if args.run_as is not None and args.executor != "local":
        raise CLIError("--run-as applies to the local executor; on Ray, commands run as the Ray workers' user")
    if args.run_as is not None:
        try:
            run_as = RunUser.lookup(args.run_as)
        except ValueError as error:
            raise CLIError(f"--run-as {args.run_as}: {error}") from None
    boot = bootstrap(data_dir, args.api_key)
    options = ServeOptions(
        data_dir=data_dir,
        capacity=Capacity(args.cluster_name, args.nodes, args.gpus_per_node, args.gpu_type),
        max_concurrent_runs=args.max_concurrent_runs,
        stop_grace_seconds=args.stop_grace_seconds,
        limits=dataclasses.replace(Limits(), max_request_bytes=args.max_request_bytes),
        executor=args.executor,
        ray_address=args.ray_address,
        max_log_bytes=args.max_log_bytes,
        run_as=run_as,
    )

    def listening(endpoint: str) -> None:
        lines = [f"mcli local server listening on {endpoint}", f"data dir: {data_dir}"]
        if boot.created and args.api_key is None:
            # Shown this once: the data dir keeps only its hash.
            lines.append(f"created default user {DEFAULT_EMAIL} with API key: {boot.api_key}")
        elif boot.created:
            lines.append(f"created default user {DEFAULT_EMAIL} with the API key given by --api-key")
        elif args.api_key is None:
            lines += [
                "API keys are stored hashed and cannot be shown again; for a new one:",
                f"  mcli local add-user {DEFAULT_EMAIL} --data-dir {data_dir}",
            ]
        if run_as is None and os.geteuid() == 0:
            lines += [
                "note: runs execute as root, like this server, so they can read its data dir",
                "(other users' runs and logs); --run-as USER runs them as that user instead",
            ]
        key = "KEY" if key_from_env else args.api_key or boot.api_key or "KEY"
        if key_from_env:
            lines.append(f"API key: the one given in ${API_KEY_ENV} (the local daemon's is in its record)")
        lines += [
            "",
            "Point mcli (or the official client) at this server in another shell:",
            f"  export MOSAICML_API_ENDPOINT={endpoint}",
            f"  export MOSAICML_API_KEY={key}",
            "or save both for every shell:",
            f"  mcli set endpoint {endpoint}",
            f"  mcli set api-key {key}",
            "",
            "Press Ctrl-C to stop the server (and its active runs).",
        ]
        print("\n".join(lines), flush=True)
        if args.ready_fd is not None:
            os.write(args.ready_fd, f"{endpoint}\n".encode())
            os.close(args.ready_fd)

    try:
        run_forever(options, args.host, args.port, listening)
    except (DataDirInUse, ExecutorUnavailable) as error:
        raise CLIError(str(error)) from None
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise CLIError(
                f"port {args.port} on {args.host} is already in use (is another server running?); "
                f"choose another with --port, e.g. --port {args.port + 1}"
            ) from None
        raise
    return 0


def _add_user(args: argparse.Namespace) -> int:
    from mcli.local.server import add_user

    print(add_user(args.data_dir.expanduser(), args.email))
    return 0


def _status(args: argparse.Namespace) -> int:
    daemon = read_record()
    if daemon is None or not daemon.alive():
        print("mcli local daemon: not running (the first use of MOSAICML_API_ENDPOINT=local starts it)")
        if daemon is not None:
            left = active_run_names(daemon)
            print(f"the last one (pid {daemon.pid}) exited without `mcli local stop`; its log: {daemon.log}")
            if left:
                print(f"{len(left)} run(s) it left active will be marked FAILED when the next one starts")
        return 1
    active = active_run_names(daemon)
    shown = f" ({', '.join(active[:10])}{', ...' if len(active) > 10 else ''})" if active else ""
    print(f"mcli local daemon: running (pid {daemon.pid}, up {_duration(time.time() - daemon.started_at)})")
    print(f"endpoint: {daemon.endpoint}")
    print(f"data dir: {daemon.data_dir}")
    print(f"log: {daemon.log}")
    print(f"active runs: {len(active)}{shown}")
    return 0


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m {secs:02d}s" if hours else f"{minutes}m {secs:02d}s"


def _stop(args: argparse.Namespace) -> int:
    try:
        daemon = stop_daemon(force=args.force)
    except LocalDaemonError as error:
        raise CLIError(str(error)) from None
    print("mcli local daemon: not running" if daemon is None else f"mcli local daemon (pid {daemon.pid}) stopped")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mcli.local", description="Local MAPI server")
    register(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    args = parser.parse_args(argv)
    try:
        result: int = args.func(args)
    except CLIError as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return 1
    return result


if __name__ == "__main__":
    sys.exit(main())
