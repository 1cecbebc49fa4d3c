"""The policy of running a run's node ranks, apart from the machinery that applies it (`mcli.local.lifecycle`):
what environment a rank gets (`rank_environment`), what a rank's end means (`classify_rank_exit`), how much
running time a run has left under its limit, and where runs' work directories live.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mcli.local.executors.base import Placement, RankExit
from mcli.local.records import Run


@dataclass(frozen=True)
class Failure:
    """Why a run failed. `system` is True when the platform failed it (server restarted, node lost, executor
    error), False when the run's own command did."""

    reason: str
    system: bool


@dataclass(frozen=True)
class RankOutcome:
    """What a rank's end means for the rank's node status and for the run."""

    status: str  # COMPLETED, STOPPED or FAILED
    reason: str | None
    failure: Failure | None  # set when this rank's end fails the run


def classify_rank_exit(rank: int, ended: RankExit, stopping_because: str | None) -> RankOutcome:
    """The one place a rank's end is classified. `stopping_because` is set while the run is being stopped (by a
    user, a shutdown or another rank's failure): a non-zero exit then is the stop, not a failure."""
    if ended.exit_code == 0:
        return RankOutcome("COMPLETED", None, None)
    if stopping_because is not None:
        return RankOutcome("STOPPED", stopping_because, None)
    if ended.system_failure is not None:
        return RankOutcome("FAILED", ended.system_failure, Failure(ended.system_failure, system=True))
    code = ended.exit_code
    how = (
        "ended without an exit code"
        if code is None
        else (f"was killed by signal {-code}" if code < 0 else f"exited with code {code}")
    )
    reason = f"Node rank {rank} {how}"
    return RankOutcome("FAILED", reason, Failure(reason, system=False))


SERVER_PID_ENV = "MCLI_LOCAL_SERVER_PID"


# Where a rank finds programs when the server's own PATH is unset.
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def base_environment(home: str | None = None) -> dict[str, str]:
    """What every rank starts from: PATH, HOME and the locale, never the rest of the server's environment (it
    may hold the operator's keys and tokens)."""
    env = {
        "PATH": os.environ.get("PATH") or DEFAULT_PATH,
        "HOME": home or os.environ.get("HOME") or "/",
        "LANG": os.environ.get("LANG") or "C.UTF-8",
        "PYTHONUNBUFFERED": "1",  # live logs from Python children without extra flags
    }
    for name in ("LC_ALL", "TZ"):
        if os.environ.get(name):
            env[name] = os.environ[name]
    return env


def rank_environment(
    run: Run, rank: int, placement: Placement, parameters_path: Path, home: str | None = None
) -> dict[str, str]:
    """The complete environment of one node rank's command: a minimal base, the run's own env variables, then
    the rank's variables (which the run cannot override)."""
    env = base_environment(home)
    env.update(run.run_input.get("env", {}))
    env.update(
        {
            "RUN_NAME": run.name,
            "NODE_RANK": str(rank),
            # One process per node rank, so the world is the node count.
            "WORLD_SIZE": str(run.nodes),
            "NUM_NODES": str(run.nodes),
            "GPUS_PER_NODE": str(run.gpus // run.nodes),
            "MASTER_ADDR": placement.master_addr,
            "MASTER_PORT": str(placement.master_port),
            "PARAMETERS_PATH": str(parameters_path),
            # Which server started the rank, so that a process that escaped its run can still be found.
            SERVER_PID_ENV: str(os.getpid()),
        }
    )
    env.update(placement.rank_env[rank])
    return env


def running_time_left(run: Run, at: float, since: int = 0) -> float | None:
    """Seconds of running the run has left under its max duration at `at`, counting the running time of every
    execution from index `since` on (a restart starts the count afresh); None without a limit or before its
    latest execution has started."""
    if run.max_duration_seconds is None or not run.resumptions or run.resumptions[-1].start_time is None:
        return None
    *earlier, current = run.resumptions
    assert current.start_time is not None
    used = sum(
        r.end_time - r.start_time
        for r in earlier
        if r.execution_index >= since and r.start_time is not None and r.end_time is not None
    )
    return run.max_duration_seconds - used - (at - current.start_time)


def describe_limit(seconds: int) -> str:
    return f"{seconds / 3600:g} hours ({seconds} s)"


def shared_work_root(data_dir: Path) -> Path:
    """A directory under the system temp dir that the server owns and other users may only traverse (0711),
    one per data dir; each run's own directory in it belongs to the run's user (0700)."""
    digest = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:16]
    root = Path(tempfile.gettempdir()) / f"mcli-local-runs-{digest}"
    with contextlib.suppress(FileExistsError):
        root.mkdir(mode=0o711)
    info = root.lstat()
    # Another user could have made it first (the temp dir is shared): use it only if it is ours and real.
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
        raise RuntimeError(f"{root} exists but does not belong to this server's user; remove it and restart")
    os.chmod(root, 0o711)
    return root
