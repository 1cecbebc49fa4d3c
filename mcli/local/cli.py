"""`mcli local serve` and `mcli local add-user`, also reachable as `python -m mcli.local ...`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from mcli.local.placement import Capacity
from mcli.local.server import DEFAULT_DATA_DIR, KEY_FILE, ServeOptions, add_user, bootstrap, run_forever


def register(subparsers: Any) -> None:
    """Add `serve` and `add-user` to an argparse subparsers object."""
    serve = subparsers.add_parser("serve", help="Run the local MAPI server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8642)
    serve.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="default: %(default)s")
    serve.add_argument("--api-key", help="register this API key for the default local user")
    serve.add_argument("--cluster-name", default="local")
    serve.add_argument("--nodes", type=_positive, default=2, help="nodes in the local cluster")
    serve.add_argument("--gpus-per-node", type=_non_negative, default=8)
    serve.add_argument("--gpu-type", default="a100_80gb")
    serve.add_argument("--max-concurrent-runs", type=_positive, default=None, help="default: no limit")
    serve.add_argument("--stop-grace-seconds", type=float, default=5.0, help="SIGTERM to SIGKILL delay")
    serve.set_defaults(func=_serve)

    user = subparsers.add_parser("add-user", help="Create an API key for a (new) user")
    user.add_argument("email")
    user.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    user.set_defaults(func=_add_user)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return value


def _serve(args: argparse.Namespace) -> int:
    data_dir = args.data_dir.expanduser()
    boot = bootstrap(data_dir, args.api_key)
    options = ServeOptions(
        data_dir=data_dir,
        capacity=Capacity(args.cluster_name, args.nodes, args.gpus_per_node, args.gpu_type),
        max_concurrent_runs=args.max_concurrent_runs,
        stop_grace_seconds=args.stop_grace_seconds,
    )

    def listening(endpoint: str) -> None:
        print(f"mcli local server listening on {endpoint}", flush=True)
        print(f"data dir: {data_dir}", flush=True)
        if boot.created:
            print(f"created default user local@mcli.local with API key: {boot.api_key}", flush=True)
        print(f"API key file: {data_dir / KEY_FILE}", flush=True)

    run_forever(options, args.host, args.port, listening)
    return 0


def _add_user(args: argparse.Namespace) -> int:
    print(add_user(args.data_dir.expanduser(), args.email))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mcli.local", description="Local MAPI server")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
