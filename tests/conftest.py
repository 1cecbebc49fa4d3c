"""Suite-wide isolation: a temporary HOME, and no local daemon left running.

`MOSAICML_API_ENDPOINT=local` starts a per-user daemon recorded under the config dir (`~/.mosaic` by default)
that outlives the process that started it. Every test therefore runs under a temporary HOME, and at the end of
the session every daemon recorded anywhere under pytest's temporary directories is stopped and checked gone.
"""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from mcli.local.daemon import RECORD_NAME, read_record, stop_daemon


@pytest.fixture(scope="session", autouse=True)
def temporary_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("home")
    saved = os.environ.get("HOME")
    os.environ["HOME"] = str(home)
    try:
        yield home
    finally:
        if saved is None:
            del os.environ["HOME"]
        else:
            os.environ["HOME"] = saved
        stop_recorded_daemons(tmp_path_factory.getbasetemp())


def stop_recorded_daemons(root: Path) -> None:
    """Stop every daemon recorded under `root`, and its runs, and check each is gone."""
    for record in root.rglob(RECORD_NAME):
        daemon = read_record(record)
        if daemon is not None and daemon.alive():
            stop_daemon(record, force=True)
            assert not daemon.alive(), f"local daemon {daemon.pid} is still running"
