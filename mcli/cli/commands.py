"""The command handlers: each takes the parsed arguments and returns the exit status."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from typing import Any

import yaml

import mcli
from mcli.cli.common import CLIError
from mcli.cli.follow import follow
from mcli.cli.output import (
    Style,
    format_duration,
    format_time,
    run_duration,
    status_styles,
    table,
    terminal_width,
)
from mcli.models import ComputeConfig, Run, RunConfig
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
    created = mcli.create_run(config)
    print(created.name, flush=True)
    if not args.follow:
        return 0
    return follow(created.name, rank=None, timestamps=False, tail=None, wait=True)


# --- get runs ----------------------------------------------------------------------------------------------


def _split(values: list[str] | None) -> list[str] | None:
    """`--status a,b --status c` -> [a, b, c]."""
    if values is None:
        return None
    return [item.strip() for value in values for item in value.split(",") if item.strip()]


def run_summary(run: Run) -> dict[str, Any]:
    """A run as a JSON object for scripts: stable keys, ISO 8601 times."""

    def iso(moment: datetime | None) -> str | None:
        return moment.isoformat() if moment is not None else None

    return {
        "name": run.name,
        "status": run.status.value,
        "reason": run.reason,
        "created_at": iso(run.created_at),
        "started_at": iso(run.started_at),
        "completed_at": iso(run.completed_at),
        "created_by": run.created_by,
        "cluster": run.cluster,
        "nodes": run.node_count,
        "gpus": run.gpus,
        "gpu_type": run.gpu_type,
        "priority": run.priority,
    }


def get_runs(args: argparse.Namespace) -> int:
    runs = mcli.get_runs(
        cluster_names=_split(args.cluster),
        statuses=_split(args.status),
        before=args.before,
        after=args.after,
        limit=args.limit,
        include_details=False,  # the table needs none of them, and a listing without is much cheaper
    )
    if args.json:
        print(json.dumps([run_summary(run) for run in runs], indent=2))
        return 0
    if not runs:
        print("No runs found.", file=sys.stderr)
        return 0
    style = Style(sys.stdout)
    headers = ["NAME", "STATUS", "CREATED", "DURATION", "NODES/GPUS", "CLUSTER"]
    rows = [
        [
            run.name,
            run.status.value,
            format_time(run.created_at),
            run_duration(run),
            f"{run.node_count if run.node_count is not None else '-'}/{run.gpus if run.gpus is not None else '-'}",
            run.cluster or "-",
        ]
        for run in runs
    ]
    colours = [[(), status_styles(run.status), (), (), (), ()] for run in runs]
    # Names and clusters give way first when the terminal is narrow; the other columns are short already.
    lines = table(headers, rows, style, terminal_width(sys.stdout), shrinkable=(0, 5), colours=colours)
    print("\n".join(lines))
    return 0


# --- logs --------------------------------------------------------------------------------------------------


def logs(args: argparse.Namespace) -> int:
    if args.follow:
        if args.failed:
            raise CLIError(
                "--failed picks the failed node of a finished run; it cannot be used with --follow"
            )
        return follow(args.run, rank=args.rank, timestamps=args.timestamps, tail=args.tail, wait=False)
    # Copied out chunk by chunk as it arrives: any size of log in bounded memory, with no overall timeout.
    for piece in log_text(args.run, rank=args.rank, timestamps=args.timestamps, failed=args.failed, tail=args.tail):
        sys.stdout.write(piece)
    sys.stdout.flush()
    return 0


# --- describe run ------------------------------------------------------------------------------------------


class _ConfigDumper(yaml.SafeDumper):
    """Multi-line strings (usually the command) as YAML block literals, the way people write them."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_ConfigDumper.add_representer(str, _represent_str)


def _retry_policy(run: Run) -> str:
    retries = f"up to {run.max_retries or 0} automatic"
    return retries + (", also after system failures" if run.retry_on_system_failure else "")


def describe_run(args: argparse.Namespace) -> int:
    run = mcli.get_run(args.run)
    style = Style(sys.stdout)
    reason = f" ({run.reason})" if run.reason else ""
    gpus = f"{run.gpus if run.gpus is not None else '?'} GPU(s)" + (
        f" {run.gpu_type}" if run.gpu_type else ""
    )
    compute = (
        f"{run.node_count if run.node_count is not None else '?'} node(s), {gpus} on {run.cluster or '?'}"
    )
    fields = [
        ("Name", run.name),
        ("Status", style.status(run.status) + reason),
        ("Created", f"{format_time(run.created_at)} by {run.created_by or '?'}"),
        ("Started", format_time(run.started_at)),
        ("Ended", format_time(run.completed_at)),
        ("Duration", run_duration(run)),
        ("Compute", compute),
        ("Image", run.image or "-"),
        ("Priority", run.priority or "-"),
        ("Retries", _retry_policy(run)),
        ("Max time", format_duration(run.max_duration_seconds) if run.max_duration_seconds else "-"),
    ]
    out = [style("Run", "bold")]
    out += [f"  {label + ':':<10} {value}" for label, value in fields]

    config = run.submitted_config or run.config
    dumped = yaml.dump(
        config.model_dump(mode="json", exclude_defaults=True), Dumper=_ConfigDumper, sort_keys=False
    )
    out += ["", style("Config", "bold"), *(f"  {line}" for line in dumped.splitlines())]

    out += ["", style("Resumptions", "bold")]
    resumptions = [
        [
            str(resumption.index),
            style.status(resumption.status),
            format_time(resumption.started_at),
            format_time(resumption.ended_at),
            resumption.reason or "",
        ]
        for resumption in run.resumptions
    ]
    out += [f"  {line}" for line in table(["INDEX", "STATUS", "STARTED", "ENDED", "REASON"], resumptions, style)]

    out += ["", style("Lifecycle", "bold")]
    lifecycle = [
        [entry.status.value, format_time(entry.started_at), format_time(entry.ended_at), entry.reason or ""]
        for entry in run.lifecycle
    ]
    out += [f"  {line}" for line in table(["STATUS", "STARTED", "ENDED", "REASON"], lifecycle, style)]

    out += ["", style("Nodes", "bold")]
    nodes = [
        [
            str(node.rank) if node.rank is not None else "-",
            node.name or "-",
            node.status or "-",
            node.reason or "",
        ]
        for node in run.nodes
    ]
    out += [f"  {line}" for line in table(["RANK", "NAME", "STATUS", "REASON"], nodes, style)]

    out += ["", style("Metadata", "bold")]
    if run.metadata:
        out += [f"  {key}: {json.dumps(value)}" for key, value in run.metadata.items()]
    else:
        out.append("  (none)")
    print("\n".join(out))
    return 0


# --- stop / delete -----------------------------------------------------------------------------------------


def _confirm(verb: str, names: list[str], assume_yes: bool) -> list[Run]:
    """Look the runs up (so a typo fails before anything happens), then ask unless --yes."""
    found = mcli.get_runs(runs=names, include_details=False)
    missing = sorted(set(names) - {run.name for run in found})
    if missing:
        raise CLIError(f"no run named {', '.join(missing)}")
    if assume_yes:
        return found
    if not sys.stdin.isatty():
        raise CLIError(f"refusing to {verb} runs without confirmation: stdin is not a terminal (pass --yes)")
    listing = ", ".join(f"{run.name} ({run.status.value})" for run in found)
    sys.stderr.write(f"{verb.capitalize()} {len(found)} run(s): {listing}? [y/N] ")
    sys.stderr.flush()
    answer = sys.stdin.readline().strip().lower()
    if answer not in ("y", "yes"):
        raise CLIError(f"not confirmed; nothing to {verb}")
    return found


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
