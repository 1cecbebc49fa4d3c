"""One real Ray cluster for the session (`ray.cluster_utils.Cluster`: a head and two workers, 1 CPU and 2 GPUs
each, dashboard off) and `mcli local serve --executor ray` subprocesses connected to it.

Ray keeps its state in a short RAY_TMPDIR under /tmp (its socket paths must stay short) and is told to treat this
machine as a laptop (RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0) so that every Ray process talks over 127.0.0.1 only.
The cluster is shut down with `cluster.shutdown()`; never with `ray stop`, which would stop every Ray on the machine.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from ray_helpers import FAST_HEALTH_CHECKS, GPUS_PER_NODE, KEY, RayCluster, RayServer


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[RayCluster]:
    ray_tmp = tempfile.mkdtemp(prefix="r", dir="/tmp")
    saved = {name: os.environ.get(name) for name in ("RAY_TMPDIR", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")}
    os.environ["RAY_TMPDIR"] = ray_tmp  # before ray is imported: it reads this once
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    from ray.cluster_utils import Cluster

    cluster = Cluster(
        initialize_head=True,
        connect=False,
        head_node_args={
            "num_cpus": 1,
            "num_gpus": GPUS_PER_NODE,
            "include_dashboard": False,
            "_system_config": FAST_HEALTH_CHECKS,
        },
    )
    try:
        for _ in range(2):
            cluster.add_node(num_cpus=1, num_gpus=GPUS_PER_NODE)
        cluster.wait_for_nodes()
        yield RayCluster(cluster, cluster.address)
    finally:
        cluster.shutdown()
        shutil.rmtree(ray_tmp, ignore_errors=True)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture(scope="module")
def ray_server(ray_cluster: RayCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RayServer]:
    server = RayServer(tmp_path_factory.mktemp("ray-data"), ray_cluster.address).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def sdk_env(ray_server: RayServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Point our SDK (and CLI subprocesses given the returned env) at the module's Ray server."""
    env = {
        "MOSAICML_API_ENDPOINT": ray_server.endpoint,
        "MOSAICML_API_KEY": KEY,
        "MCLI_CONFIG_DIR": str(tmp_path / "mcli-config"),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("MCLI_CONFIG_PATH", raising=False)
    return {**os.environ, **env}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the Ray tests last, so the session's cluster (about 1 GB) is up only while they run."""
    here = Path(__file__).parent
    items.sort(key=lambda item: item.path.is_relative_to(here))
