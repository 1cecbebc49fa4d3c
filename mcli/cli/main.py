"""`mcli`: the command line's parser, and the one place where errors become messages and exit statuses."""

from __future__ import annotations

import argparse
import atexit
import contextlib
import gc
import os
import sys
import threading
import traceback
import types
import warnings
from collections.abc import Callable
from importlib import import_module
from typing import Any, NoReturn, TextIO

import mcli
from mcli.cli.common import CLIError, HelpFormatter, non_negative, positive, positive_hours
from mcli.core.errors import APIConnectionError

# The command handlers (and with them pydantic and the models) are imported by `build_parser`, so that `run()`
# can pause the garbage collector before they load (see `_start_up`).

Handler = Callable[[argparse.Namespace], int]


class _Builder:
    """Adds commands that all take --verbose and show their examples in --help."""

    def __init__(self) -> None:
        # SUPPRESS: a subcommand's default must not overwrite `mcli --verbose ...` given before it.
        self.common = argparse.ArgumentParser(add_help=False)
        self.common.add_argument(
            "-v",
            "--verbose",
            action="store_true",
            default=argparse.SUPPRESS,
            help="show tracebacks of errors",
        )

    def command(
        self,
        subparsers: Any,
        name: str,
        summary: str,
        example: str,
        handler: Handler | None = None,
        notes: str = "",
        api: bool = True,
        **kwargs: Any,
    ) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = subparsers.add_parser(
            name,
            help=summary,
            description=summary,
            epilog="example:\n  " + example.replace("\n", "\n  ") + (f"\n\n{notes}" if notes else ""),
            formatter_class=HelpFormatter,
            parents=[self.common],
            **kwargs,
        )
        if handler is not None:
            # `api`: the command talks to the platform, so `run()` loads the SDK's transport stack during start-up.
            parser.set_defaults(func=handler, api=api)
        return parser

    def group(self, subparsers: Any, name: str, summary: str, example: str) -> Any:
        """A noun-taking verb such as `get` (`mcli get runs`)."""
        parser = self.command(subparsers, name, summary, example)
        return parser.add_subparsers(dest="object", required=True, metavar="OBJECT")


def _output_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-o",
        "--output",
        choices=("table", "wide", "json", "yaml"),
        default="table",
        metavar="FORMAT",
        help="table (default), wide (more columns), json or yaml (for scripts)",
    )
    parser.add_argument(
        "--json", action="store_const", dest="output", const="json", help="the same as --output json"
    )


def build_parser() -> argparse.ArgumentParser:
    from mcli.cli import commands, lifecycle
    from mcli.cli.follow import exit_codes_help
    from mcli.local.cli import register as register_local

    parser = argparse.ArgumentParser(
        prog="mcli",
        description="Launch, watch and manage training runs on the MosaicML platform.",
        epilog="example:\n  mcli run -f examples/run.yaml --follow\n  mcli get runs --status running\n\n"
        "The endpoint and API key come from MOSAICML_API_ENDPOINT and MOSAICML_API_KEY,\n"
        "else from the config file written by `mcli set endpoint` and `mcli set api-key`\n"
        "(see `mcli config show`). Try it on one machine: `mcli local serve` starts a\n"
        "local server. NO_COLOR turns colours off.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="show tracebacks of errors")
    parser.add_argument("--version", action="version", version=f"mcli {mcli.__version__}")
    builder = _Builder()
    verbs = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = builder.command(
        verbs,
        "run",
        "Launch a run from a YAML run config",
        "mcli run -f examples/run.yaml --name hello --nodes 2 --follow",
        commands.run,
        notes=exit_codes_help("--follow"),
    )
    run.add_argument("-f", "--file", required=True, help="the YAML run config")
    run.add_argument("--name", help="override the run's name (it must be unused)")
    run.add_argument("--image", help="override the Docker image")
    run.add_argument("--cluster", help="override compute.cluster")
    run.add_argument("--gpus", type=non_negative, help="override compute.gpus")
    run.add_argument("--gpu-type", help="override compute.gpu_type")
    run.add_argument("--nodes", type=positive, help="override compute.nodes")
    run.add_argument(
        "--follow",
        action="store_true",
        help="wait for the run to start, stream its logs, report how it ended",
    )

    get = builder.group(verbs, "get", "List objects", "mcli get runs --status running --limit 10")
    get_runs = builder.command(
        get,
        "runs",
        "List runs, newest first",
        "mcli get runs --status failed,stopped --after 2024-01-31 --limit 20\n"
        "mcli get runs --cluster local --gpu-type a100_80gb -o wide\n"
        "mcli get runs -o json | jq -r '.[].name'",
        commands.get_runs,
    )
    for flag, what in (
        ("status", "in these statuses"),
        ("cluster", "on these clusters"),
        ("gpu-type", "on these GPU types"),
    ):
        get_runs.add_argument(
            f"--{flag}",
            action="append",
            metavar=flag.upper().replace("-", "_"),
            help=f"only runs {what} (repeat or comma-separate)",
        )
    get_runs.add_argument(
        "--before", metavar="TIME", help="only runs created before this ISO 8601 date or time"
    )
    get_runs.add_argument(
        "--after", metavar="TIME", help="only runs created at or after this ISO 8601 date or time"
    )
    get_runs.add_argument("--limit", type=positive, metavar="N", help="at most N runs")
    _output_flags(get_runs)

    get_run = builder.command(
        get,
        "run",
        "Show one run as a table row, JSON or YAML",
        "mcli get run hello-abc12\nmcli get run hello-abc12 -o yaml",
        commands.get_run,
    )
    get_run.add_argument("run", metavar="RUN", help="the run's name")
    _output_flags(get_run)

    get_clusters = builder.command(
        get,
        "clusters",
        "List the clusters runs can go to, with their instance types",
        "mcli get clusters\nmcli get clusters --json",
        lifecycle.get_clusters,
    )
    get_clusters.add_argument("--json", action="store_true", help="print a JSON list for scripts")

    util = builder.command(
        verbs,
        "util",
        "Show GPU use per cluster, and the runs holding or waiting for GPUs",
        "mcli util\nmcli util local --json",
        lifecycle.util,
    )
    util.add_argument("clusters", nargs="*", metavar="CLUSTER", help="only these clusters (default: all)")
    util.add_argument("--json", action="store_true", help="print a JSON list for scripts")

    update = builder.group(verbs, "update", "Change objects", "mcli update run hello-abc12 --max-retries 3")
    update_run = builder.command(
        update,
        "run",
        "Change a run's scheduling settings",
        "mcli update run hello-abc12 --max-retries 3 --max-duration 1.5\n"
        "mcli update run hello-abc12 --priority low --no-preemptible",
        lifecycle.update_run,
        notes="--max-duration on a running run moves its deadline, counted from when its current execution "
        "started.",
    )
    update_run.add_argument("run", metavar="RUN", help="the run's name")
    update_run.add_argument("--priority", help="priority label, for example low or lowest")
    update_run.add_argument(
        "--preemptible",
        action=argparse.BooleanOptionalAction,
        help="whether higher-priority runs may stop and requeue it",
    )
    update_run.add_argument(
        "--max-retries",
        type=non_negative,
        metavar="N",
        help="resume a failed run automatically up to N times",
    )
    update_run.add_argument(
        "--retry-on-system-failure",
        action=argparse.BooleanOptionalAction,
        help="resume it when the system (not its command) fails, e.g. a node is lost",
    )
    update_run.add_argument(
        "--max-duration",
        type=positive_hours,
        metavar="HOURS",
        help="stop it after this many hours of running",
    )

    start = builder.group(verbs, "start", "Restart objects", "mcli start run hello-abc12")
    start_run = builder.command(
        start,
        "run",
        "Restart stopped or failed runs, each as a new resumption",
        "mcli start run hello-abc12\nmcli start run hello-abc12 other-def34 && mcli logs hello-abc12 -f",
        lifecycle.start_runs,
        notes="A restarted run keeps its name, config and earlier resumptions' logs (mcli logs RUN --resumption N).",
    )
    start_run.add_argument("names", nargs="+", metavar="NAME", help="run names")

    logs = builder.command(
        verbs,
        "logs",
        "Print a run's logs",
        "mcli logs hello-abc12 --rank 1 --tail 20\nmcli logs hello-abc12 -f",
        commands.logs,
        notes=exit_codes_help("-f"),
    )
    logs.add_argument("run", metavar="RUN", help="the run's name")
    logs.add_argument("-f", "--follow", action="store_true", help="stream the logs live until the run ends")
    which = logs.add_mutually_exclusive_group()
    which.add_argument("--rank", type=non_negative, metavar="N", help="the logs of node rank N (default 0)")
    which.add_argument("--failed", action="store_true", help="the logs of the first node that failed")
    logs.add_argument("-t", "--timestamps", action="store_true", help="prefix each line with its time")
    logs.add_argument("--tail", type=non_negative, metavar="N", help="only the last N lines")
    logs.add_argument(
        "--resumption",
        type=non_negative,
        metavar="N",
        help="the logs of resumption N (0 is the first execution; default the latest, and -f goes on to later ones)",
    )

    describe = builder.group(
        verbs, "describe", "Show the details of an object", "mcli describe run hello-abc12"
    )
    describe_run = builder.command(
        describe,
        "run",
        "Show a run's config, lifecycle, nodes and metadata",
        "mcli describe run hello-abc12",
        commands.describe_run,
    )
    describe_run.add_argument("run", metavar="RUN", help="the run's name")

    for verb, handler, summary in (
        ("stop", commands.stop_runs, "Stop runs (they can be described and deleted later)"),
        ("delete", commands.delete_runs, "Delete runs, stopping active ones first"),
    ):
        group = builder.group(verbs, verb, f"{verb.capitalize()} objects", f"mcli {verb} run hello-abc12")
        target = builder.command(
            group,
            "run",
            summary,
            f"mcli {verb} run hello-abc12 other-def34\nmcli {verb} run hello-abc12 --yes   # no prompt",
            handler,
        )
        target.add_argument("names", nargs="+", metavar="NAME", help="run names")
        target.add_argument(
            "-y",
            "--yes",
            action="store_true",
            help="do not ask for confirmation (needed when stdin is not a terminal)",
        )

    builder.command(
        verbs, "init", "Create mcli's config file if it is missing", "mcli init", commands.init, api=False
    )

    set_group = builder.group(verbs, "set", "Change mcli's configuration", "mcli set api-key YOUR-KEY")
    api_key = builder.command(
        set_group,
        "api-key",
        "Save your API key in mcli's config file (readable only by you)",
        "mcli set api-key YOUR-KEY",
        commands.set_api_key,
        notes="MOSAICML_API_KEY, when set, still takes precedence over the saved key.",
        api=False,
    )
    api_key.add_argument("key", metavar="KEY", help="the API key")
    endpoint = builder.command(
        set_group,
        "endpoint",
        "Save the MAPI endpoint mcli connects to",
        "mcli set endpoint http://127.0.0.1:8642/graphql   # a `mcli local serve`\n"
        "mcli set endpoint default                          # MosaicML's own",
        commands.set_endpoint,
        notes="MOSAICML_API_ENDPOINT, when set, still takes precedence over the saved endpoint. The official "
        "0.8.3 client reads only the key from the config file: give it the endpoint with MOSAICML_API_ENDPOINT.",
        api=False,
    )
    endpoint.add_argument(
        "url", metavar="URL", help="an http(s) URL, `local` (the local daemon) or `default`"
    )

    config = builder.group(verbs, "config", "Show mcli's configuration", "mcli config show")
    builder.command(
        config,
        "show",
        "Show the endpoint and API key mcli will use, and where each comes from",
        "mcli config show",
        commands.config_show,
        api=False,
    )

    completion = builder.command(
        verbs,
        "completion",
        "Print a shell completion script",
        "source <(mcli completion bash)      # in ~/.bashrc\n"
        "source <(mcli completion zsh)       # in ~/.zshrc",
        commands.completion,
        api=False,
    )
    completion.add_argument("shell", choices=("bash", "zsh"), help="bash or zsh")
    completion.set_defaults(parser_root=parser)

    local = builder.group(
        verbs,
        "local",
        "Run a local MAPI-compatible server; show or stop the local daemon",
        "mcli local status",
    )
    register_local(local, parents=[builder.common])
    return parser


def _error(message: str, stream: TextIO = sys.stderr) -> None:
    print(f"mcli: error: {message}", file=stream)


def _message(error: BaseException) -> str:
    """What went wrong, without the class names and status codes a user cannot act on: one line, except for a
    run config's error, whose second and third lines show the offending line and a caret under the spot."""
    from mcli.models import RunConfigError

    if isinstance(error, APIConnectionError):
        return _connection_message(error)
    if isinstance(error, RunConfigError):
        return str(error)
    if isinstance(error, mcli.MAPIException):
        text = error.message
    elif isinstance(error, FileNotFoundError) and error.filename:
        text = f"{error.strerror}: {error.filename}"
    else:
        text = str(error) or type(error).__name__
    return " ".join(text.split())


def _connection_message(error: APIConnectionError) -> str:
    """When nobody chose the endpoint, the fix is to choose one, not to debug DNS."""
    from mcli.config import endpoint_source

    endpoint, source = endpoint_source()
    if source != "default":
        return f"{' '.join(error.message.split())} (the endpoint comes from {source})"
    return (
        f"cannot reach {endpoint}, the default endpoint (no endpoint is set). Set one with "
        "`mcli set endpoint URL` or MOSAICML_API_ENDPOINT=URL; `mcli local serve` starts a local server "
        "and prints its URL"
    )


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    print(f"mcli: warning: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    return 0 if args is None else _run_command(args)


def _parse_args(argv: list[str] | None) -> argparse.Namespace | None:
    """The parsed command line, or None for a bare `mcli` (after printing the help)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:  # bare `mcli`
        parser.print_help()
        return None
    return args


def _show_warnings() -> None:
    warnings.showwarning = _show_warning
    # Deprecated fields in a user's run config are worth a line; Python hides DeprecationWarnings by default.
    warnings.filterwarnings("default", category=DeprecationWarning, module=r"mcli\.")


def _run_command(args: argparse.Namespace) -> int:
    _show_warnings()
    handler: Handler = args.func
    try:
        return handler(args)
    except KeyboardInterrupt:
        from mcli.cli.follow import EXIT_INTERRUPTED

        print("\nmcli: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # `mcli logs RUN | head` closes the pipe early: not an error. Point stdout at devnull so that the
        # interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (CLIError, mcli.MCLIException, ValueError, OSError) as error:
        if args.verbose:
            traceback.print_exc()
        _error(_message(error))
        return 1
    except Exception as error:
        if args.verbose:
            traceback.print_exc()
        _error(f"unexpected {type(error).__name__}: {_message(error)} (run with --verbose for details)")
        return 1


def _start_up() -> argparse.Namespace | None:
    """Parse the command line and load what the command will use, with the cyclic garbage collector paused.

    Start-up makes some hundred thousand objects that live as long as the process (the parser, modules, pydantic's
    and graphql-core's classes), and the collector walked them about 110 times while they were made: 15-20 ms of a
    cold `mcli run`. It resumes before the command's own work (which can follow a run for hours, or serve), with
    those objects frozen out of its way.
    """
    gc.disable()
    try:
        _without_pydantic_plugins()
        args = _parse_args(None)
        if args is not None and getattr(args, "api", False):
            _show_warnings()
            # The SDK's transport stack (gql, graphql-core), which the command's first call would import. A failure
            # here is left for that import to report, through the command's usual error handling.
            with contextlib.suppress(Exception):
                import_module("mcli.aio")
        return args
    finally:
        gc.freeze()
        gc.enable()


def _without_pydantic_plugins() -> None:
    """Tell pydantic, before it builds its first validator, that this process has no pydantic plugins.

    pydantic looks for plugins (entry points of the `pydantic` group) when it builds its first validator, and
    importing importlib.metadata for that (with most of the email package) is about 15 ms of a cold `mcli run`. The
    `mcli` command validates only mcli's own models (run configs, the platform's replies), which no plugin is there
    to observe, so it gives pydantic the answer pydantic itself gives under PYDANTIC_DISABLE_PLUGINS=__all__: none.
    Scripts that import mcli are left alone, and so is a process where pydantic already looked.
    """
    if _PLUGIN_LOADER not in sys.modules:
        loader = types.ModuleType(_PLUGIN_LOADER, "No pydantic plugins in the `mcli` command (see mcli.cli.main).")
        setattr(loader, "get_plugins", _no_plugins)  # noqa: B010 (mypy knows no attributes of a module made here)
        setattr(loader, "__getattr__", _real_plugin_loader_attribute)  # noqa: B010
        sys.modules[_PLUGIN_LOADER] = loader


_PLUGIN_LOADER = "pydantic.plugin._loader"


def _no_plugins() -> tuple[()]:
    return ()


def _real_plugin_loader_attribute(name: str) -> Any:
    """Anything else a pydantic version asks of the loader comes from the real module, loaded then: the stand-in
    only ever answers `get_plugins`. (Dunder names are the import system asking what kind of module this is.)"""
    if name.startswith("__"):
        raise AttributeError(name)
    stand_in = sys.modules.pop(_PLUGIN_LOADER)
    try:
        real = import_module(_PLUGIN_LOADER)
    finally:
        sys.modules[_PLUGIN_LOADER] = stand_in
    return getattr(real, name)


def run() -> NoReturn:
    """The `mcli` command: `main()` (its start-up with the garbage collector paused, see `_start_up`), then an exit
    that skips the interpreter's teardown.

    After a command's work is done, freeing every module it imported (gql, graphql-core, pydantic, rich) took a
    cold `mcli get runs` another 50-100 ms. The exit handlers still run (mcli's connection cleanup, logging's
    flush) and both output streams are flushed first; only the teardown is skipped. Work still running in a
    non-daemon thread (a foreground server's) gets the ordinary exit, which waits for it.
    """
    args = _start_up()
    code = 0 if args is None else _run_command(args)
    if any(not thread.daemon for thread in threading.enumerate() if thread is not threading.main_thread()):
        sys.exit(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, ValueError):  # a reader that went away, or a stream already closed
            pass
    os._exit(code)


if __name__ == "__main__":
    run()
