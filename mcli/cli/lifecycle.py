"""Commands for clusters and a run's scheduling: `get clusters`, `util`, `update run`, `start run`."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import mcli
from mcli.cli import output
from mcli.cli.commands import existing_runs
from mcli.cli.common import CLIError
from mcli.cli.output import format_duration

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.table import Table

    from mcli.models.cluster import ClusterDetails, ClusterUtilizationByRun, Instance


def _is_cpu(instance: Instance) -> bool:
    return instance.gpus == 0


def _json_default(value: object) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _print_json(value: object) -> None:
    print(json.dumps(value, indent=2, default=_json_default))


# --- get clusters ------------------------------------------------------------------------------------------


def get_clusters(args: argparse.Namespace) -> int:
    clusters = mcli.get_clusters()
    if args.json:
        _print_json([asdict(cluster) for cluster in clusters])
        return 0
    if not clusters:
        print("No clusters found.", file=sys.stderr)
        return 0
    rows = []
    for cluster in clusters:
        for instance in cluster.cluster_instances:
            gpus = "0" if _is_cpu(instance) else f"{instance.gpus} per node"
            rows.append(
                [cluster.name, cluster.provider, instance.name, instance.gpu_type or "-", gpus, str(instance.nodes)]
            )
    headers = ["NAME", "PROVIDER", "INSTANCE", "GPU TYPE", "GPUS", "NODES"]
    output.print_table(lambda width: output.table(headers, rows))
    return 0


# --- util --------------------------------------------------------------------------------------------------


def _age(moment: datetime) -> str:
    return format_duration(max(0.0, (datetime.now(UTC) - moment).total_seconds()))


def _time_left(run: ClusterUtilizationByRun) -> str:
    if run.estimated_end_time is None:
        return "-"
    return format_duration(max(0.0, (run.estimated_end_time - datetime.now(UTC)).total_seconds()))


def _instances_table(clusters: list[ClusterDetails]) -> Table:
    from rich.text import Text

    rows = []
    for cluster in clusters:
        assert cluster.utilization is not None
        for util in cluster.utilization.cluster_instance_utils:
            if _is_cpu(util.instance):
                continue  # CPU-only instances have no GPUs to account for
            rows.append(
                [
                    cluster.name,
                    util.instance.name,
                    f"{util.instance.gpus}x{util.instance.gpu_type}",
                    str(util.gpus_used),
                    Text(str(util.gpus_available), style="green" if util.gpus_available else "red"),
                    str(util.gpus_total),
                ]
            )
    headers = ["NAME", "INSTANCE", "NODE INFO", "GPUS USED", "GPUS AVAILABLE", "GPUS TOTAL"]
    return output.table(headers, rows)


def _runs_table(clusters: list[ClusterDetails], active: bool) -> RenderableType:
    rows = []
    for cluster in clusters:
        assert cluster.utilization is not None
        runs = cluster.utilization.active_runs_by_user if active else cluster.utilization.queued_runs_by_user
        for position, run in enumerate(runs, start=1):
            row = [cluster.name, run.name, run.user, str(run.gpu_num), run.priority or "-", _age(run.created_at)]
            row += [_time_left(run)] if active else [str(position), run.reason or ""]
            rows.append(row)
    if not rows:
        return "  (none)"
    headers = ["CLUSTER", "RUN", "USER", "GPUS", "PRIORITY", "AGE"]
    headers += ["TIME LEFT"] if active else ["POSITION", "REASON"]
    return output.table(headers, rows)


def util(args: argparse.Namespace) -> int:
    clusters = mcli.get_clusters(args.clusters or None, include_utilization=True)
    if not clusters:
        raise CLIError(f"no clusters named {', '.join(args.clusters)}" if args.clusters else "no clusters found")
    if args.json:
        _print_json([asdict(cluster) for cluster in clusters])
        return 0
    out = output.console()
    sections = (
        ("GPUs", _instances_table(clusters)),
        ("Active runs", _runs_table(clusters, True)),
        ("Queued runs", _runs_table(clusters, False)),
    )
    for index, (title, body) in enumerate(sections):
        out.print(("\n" if index else "") + f"[bold]{title}[/]")
        out.print(body)
    return 0


# --- update run --------------------------------------------------------------------------------------------


def update_run(args: argparse.Namespace) -> int:
    settings: dict[str, Any] = {
        "preemptible": args.preemptible,
        "priority": args.priority,
        "max_retries": args.max_retries,
        "retry_on_system_failure": args.retry_on_system_failure,
        "max_duration": args.max_duration,
    }
    if all(value is None for value in settings.values()):
        raise CLIError(
            "nothing to update: give --priority, --preemptible, --max-retries, --retry-on-system-failure "
            "or --max-duration"
        )
    (run,) = existing_runs([args.run])
    run = mcli.update_run(run, **settings)
    duration = (
        format_duration(run.max_duration_seconds) if run.max_duration_seconds is not None else "none"
    )
    print(
        f"Updated run {run.name}: priority {run.priority}, preemptible {run.preemptible}, "
        f"max retries {run.max_retries if run.max_retries is not None else 0}, "
        f"retry on system failure {run.retry_on_system_failure}, max duration {duration}"
    )
    return 0


# --- start run ---------------------------------------------------------------------------------------------


def start_runs(args: argparse.Namespace) -> int:
    for run in mcli.start_runs(existing_runs(args.names)):
        index = run.latest_resumption.index if run.latest_resumption else 0
        print(f"Restarting run {run.name} as resumption {index} ({run.status.value})")
    return 0
