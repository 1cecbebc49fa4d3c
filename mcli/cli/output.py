"""Terminal output on `rich`: run tables, `describe` panels and the live status line while a run starts.

`rich` is imported inside the functions that draw, so `mcli --help` and `mcli get runs -o json` never load it.
Colours follow rich: only on a terminal, never with NO_COLOR set (https://no-color.org).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO

from mcli.models import Run, RunStatus

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.table import Table
    from rich.text import Text

# Widths for output that goes to a pipe or file: tables never wrap (for grep and cut); panels read like a page.
_PIPE_WIDTH = 10_000
PANEL_PIPE_WIDTH = 100

STATUS_STYLES: dict[RunStatus, str] = {
    RunStatus.COMPLETED: "green",
    RunStatus.RUNNING: "cyan",
    RunStatus.FAILED: "red",
    RunStatus.FAILED_PULL: "red",
    RunStatus.STOPPED: "yellow",
    RunStatus.STOPPING: "yellow",
    RunStatus.TERMINATING: "yellow",
}


def console(stream: TextIO | None = None, pipe_width: int = _PIPE_WIDTH) -> Console:
    """A rich console on `stream` (stdout by default): a terminal's own width, else `pipe_width`."""
    from rich.console import Console

    stream = stream if stream is not None else sys.stdout
    # rich drops only colours for NO_COLOR and keeps bold; people who set it want plain text.
    plain = bool(os.environ.get("NO_COLOR"))
    return Console(
        file=stream,
        width=None if stream.isatty() else pipe_width,
        highlight=False,
        color_system=None if plain else "auto",
    )


# --- plain values ------------------------------------------------------------------------------------------


def format_time(moment: datetime | None) -> str:
    """Local wall-clock time to the minute, as people read it in a table."""
    return moment.astimezone().strftime("%Y-%m-%d %H:%M") if moment else "-"


def format_duration(seconds: float) -> str:
    total = int(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def run_duration(run: Run) -> str:
    """Time since the run started, up to its end (or now while it is active)."""
    if run.started_at is None:
        return "-"
    if run.completed_at is not None:
        end = run.completed_at
    else:
        # A run that ended without a completion time stopped changing at its last update.
        end = run.updated_at if run.status.is_terminal() else datetime.now(UTC)
    return format_duration(max(0.0, (end - run.started_at).total_seconds()))


def run_summary(run: Run) -> dict[str, Any]:
    """A run as a JSON/YAML object for scripts: stable keys, ISO 8601 times."""

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


def print_data(runs: Run | list[Run], output: str) -> None:
    """`-o json` / `-o yaml`: the run's summary (`get run`) or a list of them (`get runs`)."""
    data: Any = run_summary(runs) if isinstance(runs, Run) else [run_summary(run) for run in runs]
    if output == "json":
        print(json.dumps(data, indent=2))
    else:
        import yaml

        print(yaml.safe_dump(data, sort_keys=False), end="")


def print_table(make_table: Callable[[int | None], Table]) -> None:
    """A table built for the terminal's width; to a pipe, every column, one line per row, no trailing blanks."""
    out = console()
    if out.is_terminal:
        out.print(make_table(out.width))
        return
    with out.capture() as captured:
        out.print(make_table(None))
    sys.stdout.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))


def _dash(value: object) -> str:
    return "-" if value is None else str(value)


# --- tables ------------------------------------------------------------------------------------------------


def status_text(status: RunStatus, suffix: str = "") -> Text:
    from rich.text import Text

    return Text(status.value + suffix, style=STATUS_STYLES.get(status, ""))


def _table(*headers: str) -> Table:
    from rich.table import Table

    table = Table(box=None, pad_edge=False, padding=(0, 1), header_style="bold")
    for header in headers:
        table.add_column(header, overflow="fold")
    return table


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> Table:
    """A plain table: bold headers, columns two spaces apart; cells are strings or rich Text."""
    result = _table(*headers)
    for row in rows:
        result.add_row(*row)
    return result


def _run_columns(runs: list[Run], wide: bool) -> list[tuple[str, list[str]]]:
    """The columns of a runs listing, most important first, as plain text."""
    columns: list[tuple[str, list[str]]] = [
        ("NAME", [run.name for run in runs]),
        ("STATUS", [run.status.value for run in runs]),
        ("CREATED", [format_time(run.created_at) for run in runs]),
        ("DURATION", [run_duration(run) for run in runs]),
        ("NODES", [_dash(run.node_count) for run in runs]),
        ("GPUS", [_dash(run.gpus) for run in runs]),
        ("CLUSTER", [run.cluster or "-" for run in runs]),
    ]
    if wide:
        columns += [
            ("GPU TYPE", [run.gpu_type or "-" for run in runs]),
            ("CREATED BY", [run.created_by or "-" for run in runs]),
            ("PRIORITY", [run.priority or "-" for run in runs]),
            ("REASON", [" ".join((run.reason or "").split()) for run in runs]),
        ]
    return columns


def print_runs(runs: list[Run], wide: bool = False) -> None:
    """A runs listing: a rich table on a terminal; to a pipe, the same columns as plain text two spaces apart,
    one line per run, without loading rich (a cold `mcli get runs | grep ...` is ~35 ms faster for it)."""
    if sys.stdout.isatty():
        print_table(lambda width: runs_table(runs, wide, width))
        return
    columns = _run_columns(runs, wide)
    widths = [max(len(header), *(len(cell) for cell in cells)) for header, cells in columns]
    rows = [[header for header, _ in columns], *zip(*(cells for _, cells in columns), strict=True)]
    sys.stdout.write(
        "".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() + "\n" for row in rows)
    )


def runs_table(runs: list[Run], wide: bool = False, width: int | None = None) -> Table:
    """Names are never cut (a name is for pasting into `mcli logs`): when the columns do not fit in `width`,
    the least important ones are left out, and the caption says so."""
    columns: list[tuple[str, list[Any]]] = list(_run_columns(runs, wide))
    columns[1] = ("STATUS", [status_text(run.status) for run in runs])
    hidden = 0
    if width is not None:
        widths = [max(len(header), *(len(str(cell)) for cell in cells)) for header, cells in columns]
        # Two columns (name and status) always stay; each column costs its width plus a two-space gap.
        while len(columns) > 2 and sum(widths) + 2 * (len(widths) - 1) > width:
            columns.pop()
            widths.pop()
            hidden += 1
    table = _table(*(header for header, _ in columns))
    for column in table.columns:
        column.no_wrap = True
    for row in zip(*(cells for _, cells in columns), strict=True):
        table.add_row(*row)
    if hidden:
        table.caption = f"{hidden} more column{'s' if hidden > 1 else ''}: widen the terminal, or -o wide/json"
        table.caption_justify = "left"
    return table


# --- describe ----------------------------------------------------------------------------------------------


def _config_yaml(config: dict[str, Any]) -> str:
    """A config as YAML, multi-line strings (usually the command) as block literals, the way people write them."""
    import yaml  # only `describe` draws a config: listings never load the YAML emitter

    class ConfigDumper(yaml.SafeDumper):
        pass

    def represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)

    ConfigDumper.add_representer(str, represent_str)
    return yaml.dump(config, Dumper=ConfigDumper, sort_keys=False).rstrip("\n")


def _retry_policy(run: Run) -> str:
    retries = f"up to {run.max_retries} automatic" if run.max_retries else "none"
    return retries + (", also after system failures" if run.retry_on_system_failure else "")


def describe_run(run: Run) -> list[RenderableType]:
    """Panels: the run at a glance, its config as YAML, its resumptions, lifecycle, nodes and metadata."""
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    def panel(body: RenderableType, title: str) -> Panel:
        return Panel(body, title=f"[bold]{title}[/]", title_align="left", expand=True)

    overview = Table.grid(padding=(0, 2))
    overview.add_column(style="bold", no_wrap=True)
    overview.add_column(overflow="fold")
    gpu_type = f" ({run.gpu_type})" if run.gpu_type and run.gpu_type != "none" else ""
    gpus = f"{_dash(run.gpus)} GPU(s){gpu_type}"
    for label, value in (
        ("Name", Text(run.name)),
        ("Status", status_text(run.status, f" ({run.reason})" if run.reason else "")),
        ("Created", Text(f"{format_time(run.created_at)} by {run.created_by or '?'}")),
        ("Started", Text(format_time(run.started_at))),
        ("Ended", Text(format_time(run.completed_at))),
        ("Duration", Text(run_duration(run))),
        ("Compute", Text(f"{_dash(run.node_count)} node(s), {gpus} on {run.cluster or '?'}")),
        ("Image", Text(run.image or "-")),
        ("Priority", Text(run.priority or "-")),
        ("Retries", Text(_retry_policy(run))),
        ("Max time", Text(format_duration(run.max_duration_seconds) if run.max_duration_seconds else "-")),
    ):
        overview.add_row(label, value)

    config = run.submitted_config or run.config
    dumped = _config_yaml(config.model_dump(mode="json", exclude_defaults=True))

    resumptions = _table("INDEX", "STATUS", "STARTED", "ENDED", "REASON")
    for resumption in run.resumptions:
        resumptions.add_row(
            str(resumption.index),
            status_text(resumption.status),
            format_time(resumption.started_at),
            format_time(resumption.ended_at),
            resumption.reason or "",
        )
    lifecycle = _table("STATUS", "STARTED", "ENDED", "REASON")
    for entry in run.lifecycle:
        lifecycle.add_row(
            status_text(entry.status),
            format_time(entry.started_at),
            format_time(entry.ended_at),
            entry.reason or "",
        )
    nodes = _table("RANK", "NAME", "STATUS", "REASON")
    for node in run.nodes:
        nodes.add_row(_dash(node.rank), node.name or "-", node.status or "-", node.reason or "")
    metadata: RenderableType = (
        Text("\n".join(f"{key}: {json.dumps(value)}" for key, value in run.metadata.items()))
        if run.metadata
        else Text("(none)", style="dim")
    )
    return [
        panel(overview, "Run"),
        panel(Text(dumped), "Config"),
        panel(resumptions if run.resumptions else Text("(none)", style="dim"), "Resumptions"),
        panel(lifecycle if run.lifecycle else Text("(none)", style="dim"), "Lifecycle"),
        panel(nodes if run.nodes else Text("(none)", style="dim"), "Nodes"),
        panel(metadata, "Metadata"),
    ]


# --- waiting for a run -------------------------------------------------------------------------------------


class StatusLine:
    """What a waiting run is doing: statuses seen so far, time waited, ranks up."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.statuses: list[RunStatus] = []
        self.ranks = ""
        self.started = time.monotonic()

    def update(self, run: Run) -> None:
        if not self.statuses or self.statuses[-1] is not run.status:
            self.statuses.append(run.status)
        if run.nodes:
            up = sum(1 for node in run.nodes if (node.status or "").upper() == "RUNNING")
            self.ranks = f"{up}/{len(run.nodes)} ranks up"

    def plain(self) -> str:
        """One line per change, for logs: `hello-abc12: QUEUED (3s)`."""
        latest = self.statuses[-1].value if self.statuses else "..."
        details = ", ".join(filter(None, [format_duration(time.monotonic() - self.started), self.ranks]))
        return f"{self.name}: {latest} ({details})"

    def __rich__(self) -> RenderableType:
        from rich.text import Text

        line = Text(f"{self.name}  ")
        for index, status in enumerate(self.statuses):
            if index:
                line.append(" → ", style="dim")
            line.append_text(status_text(status))
        line.append(f"  {format_duration(time.monotonic() - self.started)}", style="dim")
        if self.ranks:
            line.append(f"  {self.ranks}", style="dim")
        return line


@contextmanager
def live_status(name: str, stream: TextIO | None = None) -> Iterator[StatusLine]:
    """A spinner with the run's status line, redrawn in place on a terminal and removed when done; elsewhere
    one plain line per change."""
    stream = stream if stream is not None else sys.stderr
    line = StatusLine(name)
    if not stream.isatty():
        yield _PlainStatus(line, stream)
        return
    from rich.live import Live
    from rich.spinner import Spinner

    class Animated:
        def __rich__(self) -> RenderableType:
            return Spinner("dots", text=line.__rich__(), style="cyan")

    out = console(stream)
    with Live(Animated(), console=out, refresh_per_second=8, transient=True):
        yield line
    out.print(line)  # the path it took stays on screen: `hello-abc12  PENDING → RUNNING  2s  2/2 ranks up`


class _PlainStatus(StatusLine):
    def __init__(self, line: StatusLine, stream: TextIO) -> None:
        super().__init__(line.name)
        self._stream = stream

    def update(self, run: Run) -> None:
        before = (list(self.statuses), self.ranks)
        super().update(run)
        if (self.statuses, self.ranks) != before:
            print(self.plain(), file=self._stream, flush=True)
