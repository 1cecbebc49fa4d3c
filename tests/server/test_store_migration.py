"""A data dir written before the executor seam (rank pid/proc_start columns) still opens, and its leftovers go."""

from __future__ import annotations

import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from mcli.local import LocalServer

from .conftest import KEY
from .helpers import Api

# run_nodes as the server wrote it before ranks had an executor handle.
_OLD_RUN_NODES = """
DROP TABLE run_nodes;
CREATE TABLE run_nodes(
  run_id TEXT NOT NULL, execution_index INTEGER NOT NULL, rank INTEGER NOT NULL, name TEXT NOT NULL,
  status TEXT NOT NULL, reason TEXT, exit_code INTEGER, pid INTEGER, proc_start TEXT,
  PRIMARY KEY(run_id, execution_index, rank)) WITHOUT ROWID;
"""


def _proc_start(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]


async def test_old_data_dir_opens_and_its_leftover_rank_is_killed(
    make_server: Callable[..., LocalServer], tmp_path: Path
) -> None:
    data_dir = tmp_path / "old"
    first = make_server(data_dir=data_dir)
    api = Api(first.endpoint, KEY)
    await api.create(name="done", command="echo done")
    await api.create(name="left", command="true")
    await api.wait("done")
    await api.wait("left")
    first.stop()

    # Make the data dir look like an old server's that was killed while "left" ran as `leftover`.
    leftover = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        db = sqlite3.connect(data_dir / "mcli-local.db")
        run_id = db.execute("SELECT id FROM runs WHERE name = 'left'").fetchone()[0]
        done_id = db.execute("SELECT id FROM runs WHERE name = 'done'").fetchone()[0]
        db.executescript(_OLD_RUN_NODES)
        db.execute(
            "INSERT INTO run_nodes VALUES (?, 0, 0, 'local-node-0', 'RUNNING', NULL, NULL, ?, ?)",
            (run_id, leftover.pid, _proc_start(leftover.pid)),
        )
        db.execute("INSERT INTO run_nodes VALUES (?, 0, 0, 'local-node-0', 'COMPLETED', NULL, 0, NULL, NULL)", (done_id,))
        db.execute("UPDATE runs SET status = 'RUNNING', ended_at = NULL WHERE id = ?", (run_id,))
        db.commit()
        db.close()

        second = make_server(data_dir=data_dir)
        api = Api(second.endpoint, KEY)
        left = await api.get("left")
        assert left["status"] == "FAILED" and "restarted" in left["reason"]
        assert [(n["rank"], n["status"]) for n in left["details"]["nodes"]] == [(0, "FAILED")]
        done = await api.get("done")
        assert done["status"] == "COMPLETED"
        assert [(n["name"], n["status"]) for n in done["details"]["nodes"]] == [("local-node-0", "COMPLETED")]
        deadline = time.monotonic() + 5
        while leftover.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert leftover.poll() is not None  # the old rank's process group was killed on start
        await api.create(name="after", command="echo after")
        assert (await api.wait("after"))["status"] == "COMPLETED"
    finally:
        if leftover.poll() is None:
            leftover.kill()
        leftover.wait()
