"""The command handlers: each takes the parsed arguments and returns the exit status."""

from __future__ import annotations

import argparse
import difflib
import sys

import mcli
from mcli.cli import output
from mcli.cli.common import CLIError
from mcli.cli.follow import follow
from mcli.models import ComputeConfig, Run, RunConfig, RunConfigError, RunStatus
from mcli.models.config_errors import locate_error
from mcli.sdk import log_text

# --- run ---------------------------------------------------------------------------------------------------

# Override flag -> (top-level RunConfig field that folds into compute, or None; compute field).
_COMPUTE_OVERRIDES = {
    "cluster": ("cluster", "cluster"),
    "gpus": ("gpu_num", "gpus"),
    "gpu_type": ("gpu_type", "gpu_type"),
    "nodes": (None, "nodes"),
}


def apply_overrides(config: RunConfig, args: argparse.Namespace) -> RunConfig:
    """The config with the command line's values in place of the file's."""
    if args.name is not None:
        config.name = args.name
    if args.image is not None:
        config.image = args.image
    for flag, (top_field, compute_field) in _COMPUTE_OVERRIDES.items():
        value = getattr(args, flag)
        if value is None:
            continue
        if top_field is not None:
            # The file may use the legacy top-level spelling; clear it so it neither wins nor conflicts.
            setattr(config, top_field, None)
        values = config.compute.model_dump(exclude_none=True)
        config.compute = ComputeConfig.model_validate({**values, compute_field: value})
    return config


def run(args: argparse.Namespace) -> int:
    config = apply_overrides(RunConfig.from_file(args.file), args)
    try:
        config.validate_for_submit()
    except RunConfigError as error:
        overridden = {field for field in ("name", "image") if getattr(args, field) is not None}
        flag = next((f"--{field}" for field in error.fields if field in overridden), None)
        if flag is not None:  # the flag's value is wrong, not the file's
            raise CLIError(f"{flag}: {error}") from None
        raise locate_error(args.file, error) from None
    created = mcli.create_run(config)
    print(created.name, flush=True)
    if not args.follow:
        return 0
    return follow(created.name, rank=None, timestamps=False, tail=None, wait=True)


# --- get runs / get run ------------------------------------------------------------------------------------


def _split(values: list[str] | None) -> list[str] | None:
    """`--status a,b --status c` -> [a, b, c]."""
    if values is None:
        return None
    return [item.strip() for value in values for item in value.split(",") if item.strip()]


_STATUS_NAMES = RunStatus.known_values()


def parse_statuses(values: list[str] | None) -> list[RunStatus] | None:
    """`--status running,failed` as statuses; a typo gets the nearest status name as a suggestion."""
    names = _split(values)
    if names is None:
        return None
    statuses: list[RunStatus] = []
    for name in names:
        status = RunStatus.from_string(name)
        if status is RunStatus.UNKNOWN:
            close = difflib.get_close_matches(name.upper(), _STATUS_NAMES, n=1, cutoff=0.6)
            hint = f"did you mean {close[0]}?" if close else f"expected one of {', '.join(_STATUS_NAMES)}"
            raise CLIError(f"unknown status {name!r}; {hint}")
        statuses.append(status)
    return statuses


def get_runs(args: argparse.Namespace) -> int:
    runs = mcli.get_runs(
        cluster_names=_split(args.cluster),
        gpu_types=_split(args.gpu_type),
        statuses=parse_statuses(args.status),
        before=args.before,
        after=args.after,
        limit=args.limit,
        include_details=False,  # the table needs none of them, and a listing without is much cheaper
    )
    return _show_runs(list(runs), args.output)


def get_run(args: argparse.Namespace) -> int:
    return _show_runs([mcli.get_run(args.run, include_details=False)], args.output, single=True)


def _show_runs(runs: list[Run], output_format: str | None, single: bool = False) -> int:
    if output_format in ("json", "yaml"):
        output.print_data(runs[0] if single else runs, output_format)
        return 0
    if not runs:
        print("No runs found.", file=sys.stderr)
        return 0
    output.print_runs(runs, wide=output_format == "wide")
    return 0


# --- logs --------------------------------------------------------------------------------------------------


def logs(args: argparse.Namespace) -> int:
    if args.follow:
        if args.failed:
            raise CLIError("--failed picks the failed node of a finished run; it cannot be used with --follow")
        return follow(
            args.run,
            rank=args.rank,
            timestamps=args.timestamps,
            tail=args.tail,
            wait=False,
            resumption=args.resumption,
        )
    # Copied out chunk by chunk as it arrives: any size of log in bounded memory, with no overall timeout.
    pieces = log_text(
        args.run,
        rank=args.rank,
        timestamps=args.timestamps,
        failed=args.failed,
        tail=args.tail,
        resumption=args.resumption,
    )
    for piece in pieces:
        sys.stdout.write(piece)
    sys.stdout.flush()
    return 0


# --- describe run ------------------------------------------------------------------------------------------


def describe_run(args: argparse.Namespace) -> int:
    run = mcli.get_run(args.run)
    out = output.console(pipe_width=output.PANEL_PIPE_WIDTH)
    for panel in output.describe_run(run):
        out.print(panel)
    return 0


# --- stop / delete -----------------------------------------------------------------------------------------


def not_found(names: list[str]) -> CLIError:
    """The one not-found message, for every command (the SDK's NotFoundError reads the same)."""
    return CLIError(f"Run {', '.join(names)} not found")


def existing_runs(names: list[str]) -> list[Run]:
    """The named runs, looked up first so that a typo fails with the one not-found message before anything
    happens."""
    found = mcli.get_runs(runs=names, include_details=False)
    found_names = {run.name for run in found}
    missing = [name for name in dict.fromkeys(names) if name not in found_names]
    if missing:
        raise not_found(missing)
    return list(found)


def _confirm(verb: str, names: list[str], assume_yes: bool) -> list[Run]:
    """Look the runs up (so a typo fails before anything happens), then ask unless --yes."""
    found = existing_runs(names)
    if assume_yes:
        return list(found)
    if not sys.stdin.isatty():
        raise CLIError(f"refusing to {verb} runs without confirmation: stdin is not a terminal (pass --yes)")
    listing = ", ".join(f"{run.name} ({run.status.value})" for run in found)
    sys.stderr.write(f"{verb.capitalize()} {len(found)} run(s): {listing}? [y/N] ")
    sys.stderr.flush()
    answer = sys.stdin.readline().strip().lower()
    if answer not in ("y", "yes"):
        raise CLIError(f"not confirmed; nothing to {verb}")
    return list(found)


def stop_runs(args: argparse.Namespace) -> int:
    found = _confirm("stop", args.names, args.yes)
    for run in mcli.stop_runs(found):
        print(f"Stopping run {run.name} ({run.status.value})")
    return 0


def delete_runs(args: argparse.Namespace) -> int:
    found = _confirm("delete", args.names, args.yes)
    for run in mcli.delete_runs(found):
        print(f"Deleted run {run.name}")
    return 0


# --- config ------------------------------------------------------------------------------------------------


def init(args: argparse.Namespace) -> int:
    mcli.initialize()
    print("mcli is initialized; save your API key with: mcli set api-key KEY")
    return 0


def set_api_key(args: argparse.Namespace) -> int:
    mcli.set_api_key(args.key)
    print("API key saved.")
    return 0


def set_endpoint(args: argparse.Namespace) -> int:
    from mcli.config import save_endpoint

    endpoint = None if args.url == "default" else args.url
    path = save_endpoint(endpoint)
    print(f"Endpoint {'saved' if endpoint else 'reset to the default'} in {path}.")
    return 0


def _masked(key: str) -> str:
    return "*" * 8 + key[-4:] if len(key) > 8 else "*" * len(key)


def config_show(args: argparse.Namespace) -> int:
    """Where mcli will connect and with which key, and where each came from."""
    from mcli.config import LOCAL_ENDPOINT, api_key_source, config_path, current_mode, endpoint_source

    endpoint, endpoint_from = endpoint_source()
    key, key_from = api_key_source()
    if endpoint == LOCAL_ENDPOINT:
        shown_key = "the local daemon's own (see `mcli local status`)"
    else:
        shown_key = f"{_masked(key)}  (from {key_from})" if key else "not set: mcli set api-key KEY"
    rows = [
        ("config file", str(config_path()) + ("" if config_path().exists() else " (not created yet)")),
        ("mode", current_mode()),
        ("endpoint", f"{endpoint}  (from {endpoint_from})"),
        ("API key", shown_key),
    ]
    print("\n".join(f"{label + ':':<13}{value}" for label, value in rows))
    return 0


def completion(args: argparse.Namespace) -> int:
    from mcli.cli.completion import script

    print(script(args.parser_root, args.shell), end="")
    return 0
