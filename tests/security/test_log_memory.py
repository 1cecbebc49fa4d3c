"""Reading a large log in bounded memory: `mcli logs` copies it out chunk by chunk, and `get_run_logs` holds the
text pieces and the result, nothing more (no base64, no per-line strings). Peak memory is measured in fresh
client processes (ru_maxrss), against a 64 MiB log."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import mcli

from .conftest import KEY, Server, report

MIB = 1024 * 1024
LOG_BYTES = 64 * MIB
MEASURE = """
import json, resource, sys
import mcli
mcli.get_run("big")  # imports, connection and loop warmed up: what is left to measure is the log itself
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
if sys.argv[1] == "get_run_logs":
    size = len(mcli.get_run_logs("big", timeout=120))
else:
    from mcli.cli.main import main
    sys.argv = ["mcli", "logs", "big"]
    size = -1  # what it printed is counted by the parent, from the file its stdout went to
    main()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"size": size, "before": before, "grew": peak - before}), file=sys.stderr)
"""


def _measure(server: Server, mode: str, out: Path) -> tuple[dict[str, int], float]:
    env = {**os.environ, "MOSAICML_API_ENDPOINT": server.endpoint, "MOSAICML_API_KEY": KEY}
    started = time.monotonic()
    # Printed to a file (as fast to write as /dev/null, and countable after).
    with open(out, "wb") as sink:
        done = subprocess.run([sys.executable, "-c", MEASURE, mode], stdout=sink, stderr=subprocess.PIPE,
                              env=env, timeout=180, check=True)
    took = time.monotonic() - started
    measured = json.loads(done.stderr.decode().strip().splitlines()[-1])
    if measured["size"] == -1:
        measured["size"] = out.stat().st_size
    return measured, took


def test_large_log_memory(
    start_server: Callable[..., Server], sdk_at: Callable[..., None], tmp_path: Path
) -> None:
    server = start_server()
    sdk_at(server)
    line = "0123456789" * 7  # 71-byte lines with the newline
    mcli.create_run(mcli.RunConfig(name="big", image="x", command=f"yes {line} | head -c {LOG_BYTES}"))
    deadline = time.monotonic() + 60
    while mcli.get_run("big").status.value != "COMPLETED" and time.monotonic() < deadline:
        time.sleep(0.2)
    whole, whole_took = _measure(server, "get_run_logs", tmp_path / "whole.out")
    streamed, streamed_took = _measure(server, "mcli logs", tmp_path / "streamed.out")
    assert whole["size"] == LOG_BYTES
    assert streamed["size"] == LOG_BYTES  # the whole log was printed, not just its first chunks
    whole_extra = whole["grew"] / LOG_BYTES
    streamed_extra = streamed["grew"] / MIB
    report(f"64 MiB log: client at {whole['before'] / MIB:.0f} MiB before reading; get_run_logs peak grew "
           f"{whole_extra:.2f}x the log ({whole_took:.1f} s); mcli logs peak grew {streamed_extra:.0f} MiB "
           f"({streamed_took:.1f} s)")
    # The result plus its pieces (about 2x); before, lines and base64 made it 2.5x and more.
    assert whole_extra < 2.3
    # Streaming holds a few chunks of 512 KiB, whatever the log's size.
    assert streamed_extra < 40
