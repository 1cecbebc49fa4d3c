"""A real server process with chosen limits: `python serve.py PORT DATA_DIR KEY LIMITS_JSON [SERVE_OPTIONS_JSON]`.

The same code path as `mcli local serve` (run_forever), with `Limits` small enough for tests to reach in seconds.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from mcli.local.limits import Limits
from mcli.local.placement import Capacity
from mcli.local.process import RunUser
from mcli.local.server import ServeOptions, bootstrap, run_forever


def main() -> None:
    port, data_dir, key, limits = int(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], json.loads(sys.argv[4])
    extra = json.loads(sys.argv[5]) if len(sys.argv) > 5 else {}
    bootstrap(data_dir, key)
    if "run_as" in extra:
        extra["run_as"] = RunUser.lookup(extra["run_as"])
    options = ServeOptions(
        data_dir=data_dir,
        capacity=Capacity(nodes=extra.pop("nodes", 2), gpus_per_node=extra.pop("gpus_per_node", 8)),
        stop_grace_seconds=1.0,
        limits=Limits(**limits),
        **extra,
    )
    run_forever(options, "127.0.0.1", port, lambda endpoint: print(f"listening on {endpoint}", flush=True))


if __name__ == "__main__":
    main()
