"""The `mcli.testing` pytest plugin on the Ray executor: a project's tests run with `--mapi-executor ray`."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from ray_helpers import RayCluster

PROJECT_TEST = textwrap.dedent(
    """
    import mcli


    def test_a_two_node_run_lands_on_ray(mapi_env):
        run = mcli.create_run(
            mcli.RunConfig(name="on-ray", image="local/x", command="echo rank $NODE_RANK", compute={"nodes": 2})
        )
        done = mcli.wait_for_run_status(run, "COMPLETED", timeout=120)
        assert [mcli.get_run_logs(run, rank=rank) for rank in (0, 1)] == ["rank 0\\n", "rank 1\\n"]
        with open("{nodes}", "w") as out:
            out.write("\\n".join(node.name for node in done.nodes))
    """
)


def test_mapi_executor_option_runs_a_projects_tests_on_a_ray_cluster(
    ray_cluster: RayCluster, tmp_path: Path
) -> None:
    project, nodes = tmp_path / "project", tmp_path / "nodes"
    project.mkdir()
    (project / "test_on_ray.py").write_text(PROJECT_TEST.replace("{nodes}", str(nodes)))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MOSAICML_", "MCLI_", "PYTEST_"))}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "--mapi-executor", "ray", "--mapi-ray-address", ray_cluster.address],
        cwd=project, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    names = nodes.read_text().split()
    assert len(set(names)) == 2 and set(names) <= ray_cluster.node_ids()  # two distinct Ray nodes
