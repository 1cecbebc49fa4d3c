"""Following a run live: wait for it to start, stream its logs, and turn its final status into an exit code."""

from __future__ import annotations

import sys

import mcli
from mcli.cli import output
from mcli.cli.common import CLIError
from mcli.models import Run, RunStatus
from mcli.sdk import log_text

# Exit codes of `mcli run --follow` and `mcli logs -f`. STOPPED is 3, not 2, because argparse uses 2 for usage
# errors; 130 is the shell's convention for Ctrl-C.
EXIT_COMPLETED = 0
EXIT_FAILED = 1
EXIT_STOPPED = 3
EXIT_INTERRUPTED = 130


def exit_codes_help(flag: str) -> str:
    return (
        f"exit status with {flag}: 0 if the run completed, 1 if it failed (or on any\n"
        "error), 3 if it was stopped, 130 if you pressed Ctrl-C (which stops following,\n"
        "not the run)"
    )


def _exit_code(status: RunStatus) -> int:
    if status is RunStatus.COMPLETED:
        return EXIT_COMPLETED
    if status is RunStatus.STOPPED:
        return EXIT_STOPPED
    return EXIT_FAILED


def follow(
    name: str, rank: int | None, timestamps: bool, tail: int | None, wait: bool, resumption: int | None = None
) -> int:
    """Stream the run's logs (first waiting for it to start, if `wait`), then report how it ended.

    Without `resumption` the logs of the latest resumption, then of each later one (a retried run's too).
    """
    try:
        if wait:
            _wait_until_started(name)
        _stream_logs(name, rank=rank, timestamps=timestamps, tail=tail, resumption=resumption)
        return _report_end(_final_status(name))
    except KeyboardInterrupt:
        return _interrupted(name)


def _wait_until_started(name: str) -> None:
    """Show the run's status until it is running (or already over, when its logs are all there is)."""
    with output.live_status(name) as line:
        for update in mcli.watch_run_status(name):
            line.update(update)
            if update.status.after(RunStatus.RUNNING, inclusive=True):
                if update.status is RunStatus.RUNNING:
                    line.update(mcli.get_run(name))  # with its nodes: how many ranks are up
                break


def _stream_logs(
    name: str,
    rank: int | None = None,
    timestamps: bool = False,
    tail: int | None = None,
    resumption: int | None = None,
) -> None:
    # Copied out as the text arrives, a chunk at a time (not a write per line): flushed so that a pipe sees each
    # piece as it comes.
    for piece in log_text(name, rank, timestamps, tail=tail, resumption=resumption, follow=True):
        sys.stdout.write(piece)
        sys.stdout.flush()


def _final_status(name: str) -> Run:
    """The run once it has ended: its status stream stops after a terminal status."""
    updates = list(mcli.watch_run_status(name))
    if not updates:
        raise CLIError(f"the server sent no status for run {name}")
    return updates[-1]


def _report_end(run: Run) -> int:
    """Say how the run ended, on stderr so stdout keeps only its logs; return the matching exit code."""
    reason = f": {run.reason}" if run.reason and run.status is not RunStatus.COMPLETED else ""
    output.console(sys.stderr).print(
        f"Run {run.name} ", output.status_text(run.status), reason, sep="", markup=False
    )
    return _exit_code(run.status)


def _interrupted(name: str) -> int:
    print(
        f"\nmcli: stopped following; run {name} keeps going\n  stop it with: mcli stop run {name}",
        file=sys.stderr,
    )
    return EXIT_INTERRUPTED
